"""The production path on Google Cloud Dataflow: `python -m pipelines.beam.dataflow` (docs/dataflow.md).

The same pipeline as `demographics run` and `watch`; only sources and sinks change (contract section 1). Input
files come from GCS notifications on Pub/Sub (streaming) or a GCS glob (batch); they are read and normalized by
`ReadFhirFiles` and staged by `WriteStaged`, as locally; then each window's staged files land through the
warehouse sink interface as one run: BigQuery plus Parquet on GCS in production, or the DuckDB file of
`demographics run` on a local runner (how the graph is tested offline).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import apache_beam as beam
from apache_beam.options.pipeline_options import GoogleCloudOptions, PipelineOptions, StandardOptions, TestOptions
from apache_beam.transforms import trigger, window
from apache_beam.utils.timestamp import Duration

from pipelines.beam.gcs_inputs import InputFilesFromGlob, InputFilesFromNotifications
from pipelines.beam.landing import LandingSettings, LandWindows
from pipelines.beam.options import check_beam_args
from pipelines.beam.read import ReadFhirFiles, ReadSettings
from pipelines.beam.staging import WriteStaged, staged_outputs
from pipelines.errors import EXIT_FAILED, EXIT_OK, UsageError
from pipelines.jobs.landing import default_parquet_dir, new_run_id
from pipelines.validation.config import ValidationConfig
from pipelines.warehouse.sink import DuckDBWarehouse, Sink

log = logging.getLogger(__name__)

PROG = "python -m pipelines.beam.dataflow"
DEFAULT_RUNNER = "DataflowRunner"
# Runners on this machine, in this process: the only ones that can write a local DuckDB file.
LOCAL_RUNNERS = ("fnapirunner", "bundlebaseddirectrunner", "directrunner", "switchingdirectrunner")
STAGING_FOLDER = "demographics-staging"
# Staged files of a window that reach the committer after the watermark passed its end still land (as a later
# run) within this time; Pub/Sub's watermark makes that rare.
ALLOWED_LATENESS = Duration(seconds=24 * 3600)


@dataclass(frozen=True)
class DataflowJob:
    """One job, as its flags describe it: where files come from, how they are read, where they land."""

    job_id: str
    source: str
    subscription: str | None  # streaming input
    pattern: str | None  # batch input
    window_seconds: int
    read: ReadSettings
    landing: LandingSettings

    @property
    def streaming(self) -> bool:
        return self.subscription is not None

    @property
    def on_dataflow(self) -> bool:
        return self.landing.runner.lower().removesuffix("runner") == "dataflow"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        allow_abbrev=False,
        description="Land FHIR files from GCS with the demographics pipeline on Dataflow: streaming from GCS "
        "OBJECT_FINALIZE notifications (--subscription) or a batch over a glob (--input), into BigQuery "
        "plus Parquet on GCS (--bigquery_dataset, --parquet_dir), or into a DuckDB file on a local "
        "runner (--warehouse).",
        epilog="Every other --option goes to Apache Beam: --runner (default DataflowRunner), --project, --region, "
        "--temp_location (required: staging files go under it), --job_name, --setup_file ./setup.py, ...",
    )
    given = parser.add_mutually_exclusive_group(required=True)
    given.add_argument(
        "--subscription",
        metavar="projects/P/subscriptions/S",
        help="streaming: Pub/Sub subscription receiving the bucket's OBJECT_FINALIZE notifications",
    )
    given.add_argument("--input", metavar="GLOB", help="batch: the files to land, e.g. 'gs://bucket/feed/**'")
    parser.add_argument("--source", required=True, metavar="NAME", help="feed name written in every row")
    sink = parser.add_mutually_exclusive_group(required=True)
    sink.add_argument("--bigquery_dataset", metavar="PROJECT:DATASET", help="land into this BigQuery dataset")
    sink.add_argument(
        "--warehouse", metavar="FILE", help="land into this DuckDB file instead (local runners only: trials and tests)"
    )
    parser.add_argument(
        "--parquet_dir",
        metavar="PATH",
        help="the Parquet copy (gs:// with BigQuery; default with --warehouse: beside the file)",
    )
    parser.add_argument(
        "--window_seconds",
        type=int,
        default=300,
        metavar="N",
        help="streaming: files are landed per window of this many seconds (default 300)",
    )
    parser.add_argument(
        "--strict_fhir",
        action="store_true",
        help="also validate every Patient against the full FHIR R4B model (slower), as locally",
    )
    parser.add_argument(
        "--completeness_goal",
        type=float,
        default=0.80,
        metavar="SHARE",
        help="share of patients with a reported race/ethnicity a landing must reach (default 0.80)",
    )
    parser.add_argument(
        "--no_validation",
        dest="validate",
        action="store_false",
        help="do not run the expectation suites on what each window landed",
    )
    parser.add_argument(
        "--dry_run", action="store_true", help="build the job and print what it would run; submit nothing"
    )
    return parser


def _runner(options: PipelineOptions) -> str:
    runner = options.view_as(StandardOptions).runner or DEFAULT_RUNNER
    options.view_as(StandardOptions).runner = runner
    return runner if isinstance(runner, str) else type(runner).__name__


def _sink(args: argparse.Namespace, runner: str) -> Sink:
    if args.warehouse:
        if runner.lower() not in LOCAL_RUNNERS:
            raise UsageError("--warehouse (a DuckDB file) needs a local --runner; on Dataflow use --bigquery_dataset")
        return DuckDBWarehouse(args.warehouse, args.parquet_dir or default_parquet_dir(args.warehouse))
    if not (args.parquet_dir or "").startswith("gs://"):
        raise UsageError("--bigquery_dataset needs --parquet_dir gs://BUCKET/PATH for the Parquet copy")
    from pipelines.beam.bigquery import BigQueryWarehouse

    return BigQueryWarehouse.of(args.bigquery_dataset, args.parquet_dir)


def plan_job(args: argparse.Namespace, options: PipelineOptions) -> DataflowJob:
    """Checks the flags together (one-line errors) and settles every setting the workers get."""
    if "/" in args.source or not args.source.strip():
        raise UsageError("--source NAME: a feed name, without '/'")
    if args.window_seconds <= 0:
        raise UsageError("--window_seconds must be greater than 0")
    standard = options.view_as(StandardOptions)
    if args.subscription:
        standard.streaming = True  # Pub/Sub is a streaming source
    elif standard.streaming:
        raise UsageError("--input is a batch input: drop --streaming (or give --subscription)")
    temp = options.view_as(GoogleCloudOptions).temp_location
    if not temp:
        raise UsageError("--temp_location is required: staging files go under it")
    try:
        validation = ValidationConfig(args.completeness_goal) if args.validate else None
    except ValueError as err:
        raise UsageError(f"--completeness_goal: {err}") from None
    runner = _runner(options)
    sink = _sink(args, runner)
    started_at = dt.datetime.now(dt.UTC)
    job_id = options.view_as(GoogleCloudOptions).job_name or new_run_id(started_at)
    staging_dir = f"{temp.rstrip('/')}/{STAGING_FOLDER}/{job_id}"
    streaming = args.subscription is not None
    # Streaming: a file's rows are ingested when it is read (a job has no single start); the landing stamps its run.
    read = ReadSettings(job_id, None if streaming else started_at, args.strict_fhir)
    landing = LandingSettings(
        sink,
        staging_dir,
        "stream" if streaming else "batch",
        (args.source,),
        (args.subscription or args.input,),
        runner,
        validation=validation,
    )
    return DataflowJob(job_id, args.source, args.subscription, args.input, args.window_seconds, read, landing)


def landing_windows(seconds: int) -> beam.WindowInto:
    """Fixed windows that land when the watermark passes their end; late files land as a later pane."""
    return beam.WindowInto(
        window.FixedWindows(seconds),
        trigger=trigger.AfterWatermark(late=trigger.AfterCount(1)),
        accumulation_mode=trigger.AccumulationMode.DISCARDING,
        allowed_lateness=ALLOWED_LATENESS,
    )


def build_graph(pipeline: beam.Pipeline, job: DataflowJob, messages=None):
    """Input files -> ReadFhirFiles -> WriteStaged -> LandWindows; returns the landings' summaries. `messages`
    stands in for Pub/Sub (a TestStream of PubsubMessages in tests)."""
    if job.streaming:
        if messages is None:
            messages = pipeline | "ReadNotifications" >> beam.io.ReadFromPubSub(
                subscription=job.subscription, with_attributes=True
            )
        files = (
            messages
            | "InputFiles" >> InputFilesFromNotifications(job.source)
            | "Windows" >> landing_windows(job.window_seconds)
        )
    else:
        files = pipeline | "InputFiles" >> InputFilesFromGlob(job.pattern, job.source)
    outputs = files | "ReadFhirFiles" >> ReadFhirFiles(job.read)
    staged = staged_outputs(outputs) | "WriteStaged" >> WriteStaged(job.landing.staging_dir, progress=False)
    return staged | "LandWindows" >> LandWindows(job.landing)


def describe(pipeline: beam.Pipeline, job: DataflowJob) -> list[str]:
    """What a dry run prints: the job's settings and its steps."""
    landing = job.landing
    given = (
        f"stream: notifications from {job.subscription}, landed every {job.window_seconds} s"
        if job.streaming
        else f"batch: {job.pattern}"
    )
    steps = [part.full_label for part in pipeline.transforms_stack[0].parts]
    rows = [
        ("job", job.job_id),
        ("runner", landing.runner),
        ("input", given),
        ("source", job.source),
        ("sink", repr(landing.sink)),
        ("staging", landing.staging_dir),
        (
            "validation",
            "off" if landing.validation is None else f"on (completeness goal {landing.validation.completeness_goal:g})",
        ),
        ("steps", " -> ".join(steps)),
    ]
    return [f"{name.ljust(10)}  {value}" for name, value in rows]


def _parse(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    args, beam_args = build_parser().parse_known_args(list(argv))
    check_beam_args("", beam_args)
    return args, beam_args


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("apache_beam").setLevel(logging.WARNING)  # Beam's INFO lines say nothing to this job's user
    try:
        args, beam_args = _parse(sys.argv[1:] if argv is None else argv)
        options = PipelineOptions(beam_args)
        job = plan_job(args, options)
        if args.dry_run and job.on_dataflow:
            # Beam's own dry run: DataflowRunner translates the job and stops before sending it (and skips the
            # checks that need GCS); it must be set before the Pipeline exists, which checks the options.
            options.view_as(TestOptions).dry_run = True
        pipeline = beam.Pipeline(options=options)
        build_graph(pipeline, job)
        if args.dry_run:
            return _dry_run(pipeline, job)
        result = pipeline.run()
        if job.streaming and job.on_dataflow:
            print(f"submitted streaming job {job.job_id}: {result.state}")
            return EXIT_OK
        state = result.wait_until_finish()
        print(f"job {job.job_id} ended: {state}")
        return EXIT_OK if str(state).endswith("DONE") else EXIT_FAILED
    except UsageError as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return err.exit_code
    except Exception as err:  # a failure of the job itself: one line, the details in the log at DEBUG
        log.debug("failure", exc_info=True)
        first = str(err).splitlines()[0] if str(err) else ""
        print(f"{PROG}: failed: {type(err).__name__}: {first}", file=sys.stderr)
        return EXIT_FAILED


def _dry_run(pipeline: beam.Pipeline, job: DataflowJob) -> int:
    """Prints the plan; on DataflowRunner also lets Beam translate the job (its own dry run), never submitting."""
    if job.on_dataflow:
        pipeline.run()
        print("dry run: translated for Dataflow, not sent")
    else:
        print("dry run: built, not run")
    print("\n".join(describe(pipeline, job)))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
