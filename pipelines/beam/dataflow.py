"""The production path on Google Cloud Dataflow: the batch pipeline's transforms between GCS/Pub/Sub sources and
BigQuery + GCS Parquet sinks (docs/dataflow.md).

Only sources and sinks differ from the local run (contract section 1): files are read and normalized by the same
`ReadAndNormalizeFileFn`; there is no DuckDB and no committer. BigQuery receives every version of every Patient
(append only) and a view picks the latest; Parquet is written per window and partitioned by source.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import sys
import uuid
from typing import Any, Callable, Iterator, Mapping, Sequence

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io import fileio
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import GoogleCloudOptions, PipelineOptions, StandardOptions
from apache_beam.options.value_provider import StaticValueProvider
from apache_beam.transforms import window
from apache_beam.transforms.deduplicate import Deduplicate
from apache_beam.utils.timestamp import Duration

from pipelines.beam.batch import METRICS_NAMESPACE, BatchSettings, ReadFhirFiles, StagedChunk
from pipelines.errors import UsageError
from pipelines.staging import STAGING_ONLY_COLUMNS
from pipelines.tables import PATIENTS as PATIENT_TABLE, REJECTED as REJECTED_TABLE, arrow_schema, bigquery_schema
from pipelines.run import is_ignored_name, new_run_id

log = logging.getLogger(__name__)

OBJECT_FINALIZE = "OBJECT_FINALIZE"
VERSIONS_TABLE = "patient_demographics_versions"  # BigQuery: every version; the latest-version view reads it
# Pub/Sub and GCS deliver at least once; a notification seen again within this time is dropped.
REDELIVERY_WINDOW = Duration(seconds=6 * 3600)


def gcs_path_from_notification(attributes: Mapping[str, str], data: bytes | None = None) -> str | None:
    """The `gs://` path of a newly finalized input object, or None for any other notification.

    GCS notifications name the object in their attributes (`bucketId`, `objectId`); a message published by hand
    (a replay) may carry only the JSON_API_V1 payload (`bucket`, `name`), which is read as a fallback.
    """
    if attributes.get("eventType") != OBJECT_FINALIZE:
        return None
    bucket, name = attributes.get("bucketId"), attributes.get("objectId")
    if not (bucket and name):
        payload = _json_object(data)
        bucket, name = payload.get("bucket"), payload.get("name")
    if not (isinstance(bucket, str) and isinstance(name, str) and bucket and name) or is_ignored_object(name):
        return None
    return f"gs://{bucket}/{name}"


def _json_object(data: bytes | None) -> dict[str, Any]:
    try:
        value = json.loads(data or b"")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def is_ignored_object(name: str) -> bool:
    """Same rule as a local drop folder: hidden folders, hidden or temp names, folder placeholders are skipped."""
    parts = name.split("/")
    return parts[-1] == "" or is_ignored_name(parts[-1]) or any(p.startswith(".") for p in parts[:-1])


class ParseObjectFinalizeFn(beam.DoFn):
    """Pub/Sub message -> (gs:// path, object generation); the generation tells a redelivery from an overwrite."""

    def __init__(self):
        self.accepted = Metrics.counter(METRICS_NAMESPACE, "notifications_accepted")
        self.ignored = Metrics.counter(METRICS_NAMESPACE, "notifications_ignored")

    def process(self, message) -> Iterator[tuple[str, str]]:
        attributes = message.attributes or {}
        path = gcs_path_from_notification(attributes, message.data)
        if path is None:
            self.ignored.inc()
            return
        self.accepted.inc()
        yield path, attributes.get("objectGeneration") or str(_json_object(message.data).get("generation", ""))


class ReadGcsNotifications(beam.PTransform):
    """Pub/Sub object-finalize notifications -> gs:// paths of new input files, each once."""

    def __init__(self, subscription: str):
        super().__init__()
        self.subscription = subscription

    def expand(self, pipeline):
        return (pipeline
                | "ReadFromPubSub" >> beam.io.ReadFromPubSub(subscription=self.subscription, with_attributes=True)
                | "ParseObjectFinalize" >> beam.ParDo(ParseObjectFinalizeFn()).with_output_types(tuple[str, str])
                | "DropRedeliveries" >> Deduplicate(processing_time_duration=REDELIVERY_WINDOW)
                | "Path" >> beam.Map(lambda path_and_generation: path_and_generation[0]))


class MatchGcsFiles(beam.PTransform):
    """A glob (`gs://bucket/feed/**`) -> paths of the input files it matches, temp and hidden names skipped."""

    def __init__(self, pattern: str):
        super().__init__()
        self.pattern = pattern

    def expand(self, pipeline):
        return (pipeline
                | "MatchFiles" >> fileio.MatchFiles(self.pattern)
                | "Path" >> beam.Map(lambda metadata: metadata.path)
                | "SkipIgnoredNames" >> beam.Filter(lambda path: not is_ignored_object(_object_name(path))))


def _object_name(path: str) -> str:
    """`gs://bucket/a/b.json` -> `a/b.json`; a local path is kept (the batch variant also runs on local globs)."""
    return path.split("/", 3)[3] if path.startswith("gs://") and path.count("/") >= 3 else path


class SplitStagedChunksFn(beam.DoFn):
    """Staged chunks -> patient rows (main output) and dead letters (tagged REJECTED_TABLE), one row each.

    `stats` chunks are already counted by the reading DoFn's Beam counters; `observations` chunks (race
    Observations whose Patient is in another file) are not rejoined on Dataflow yet (docs/dataflow.md).
    """

    def process(self, chunk: StagedChunk) -> Iterator[Any]:
        if chunk.kind == "patients":
            for row in chunk.rows:
                yield {k: v for k, v in row.items() if k not in STAGING_ONLY_COLUMNS}
        elif chunk.kind == "rejected":
            for row in chunk.rows:
                yield beam.pvalue.TaggedOutput(REJECTED_TABLE, row)


class ParquetSink(fileio.FileSink):
    """One Parquet file per (window, source) from buffered rows: the streaming-safe replacement for
    WriteToParquet, which loses rows and leaves footer-less files with triggers (shared/notes/toolchain.md)."""

    def __init__(self, table: str):
        self.table = table
        self.rows: list[dict[str, Any]] = []
        self.fh = None

    def open(self, fh):
        self.fh, self.rows = fh, []

    def write(self, record):
        self.rows.append(record)

    def flush(self):
        pq.write_table(pa.Table.from_pylist(self.rows, schema=arrow_schema(self.table)), self.fh, compression="zstd")
        self.rows = []


def source_partition_naming(base_path: str) -> Callable[..., str]:
    """File naming `source=<name>/part-<window start>-<window end>-<shard>-of-<shards>.parquet` (Hive partition).

    It also creates the partition folder: fileio renames temp files into place without creating parent
    folders and swallows a failed rename at DEBUG level, losing the file on a local or HDFS path (GCS has no
    folders, there it is a no-op).
    """
    def name(window_, pane, shard_index, total_shards, compression, destination):
        folder = f"source={destination}"
        try:
            FileSystems.mkdirs(f"{base_path}/{folder}")
        except OSError:  # already there
            pass
        return folder + "/" + fileio.default_file_naming("part", ".parquet")(
            window_, pane, shard_index, total_shards, compression, destination)

    return name


class WriteParquetBySource(beam.PTransform):
    """Rows of `table` -> `<prefix>/<table>/source=<name>/...parquet`, one file per window and source."""

    def __init__(self, prefix: str, table: str):
        super().__init__()
        self.path = f"{prefix.rstrip('/')}/{table}"  # not FileSystems.join: gs:// needs GCS libs to build the graph
        self.table = table

    def expand(self, rows):
        table = self.table
        # Temp files under --temp_location, not beside the output (where fileio leaves a .temp folder behind).
        temp_root = rows.pipeline.options.view_as(GoogleCloudOptions).temp_location or self.path
        return rows | "WriteToFiles" >> fileio.WriteToFiles(
            path=self.path, destination=lambda row: row["source"], sink=lambda _destination: ParquetSink(table),
            file_naming=source_partition_naming(self.path), shards=1, max_writers_per_bundle=0,
            temp_directory=StaticValueProvider(str, f"{temp_root.rstrip('/')}/.temp-{table}-{uuid.uuid4().hex}"))


def write_to_bigquery(dataset: str, table: str, schema_table: str, partition_field: str,
                      clustering: Sequence[str], load_seconds: int | None) -> beam.PTransform:
    """Append-only load into `dataset.table` (created when needed, partitioned by day, clustered).

    Load jobs rather than streaming inserts: free, and in streaming they run every `load_seconds`.
    """
    return beam.io.WriteToBigQuery(
        table=f"{dataset}.{table}", schema={"fields": bigquery_schema(schema_table)},
        create_disposition=beam.io.BigQueryDisposition.CREATE_IF_NEEDED,
        write_disposition=beam.io.BigQueryDisposition.WRITE_APPEND,
        method=beam.io.WriteToBigQuery.Method.FILE_LOADS, triggering_frequency=load_seconds,
        additional_bq_parameters={"timePartitioning": {"type": "DAY", "field": partition_field},
                                  "clustering": {"fields": list(clustering)}})


class DataflowDemographicsOptions(PipelineOptions):
    """The pipeline's own flags; every other flag (--runner, --project, --region, ...) goes to Beam."""

    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument("--subscription", help="streaming input: Pub/Sub subscription receiving GCS "
                                                   "OBJECT_FINALIZE notifications (projects/P/subscriptions/S)")
        parser.add_argument("--input", help="batch input: a file glob such as gs://bucket/feed/**")
        parser.add_argument("--source", help="feed name written in every row (required)")
        parser.add_argument("--bigquery_dataset", help="PROJECT:DATASET (or DATASET) receiving "
                                                       f"{VERSIONS_TABLE} and {REJECTED_TABLE}")
        parser.add_argument("--parquet_prefix", help="where Parquet goes: <prefix>/<table>/source=<name>/")
        parser.add_argument("--window_seconds", type=int, default=300,
                            help="streaming: Parquet files and BigQuery loads per this many seconds")
        parser.add_argument("--no_strict_fhir", dest="strict_fhir", action="store_false", default=True,
                            help="skip strict FHIR R4B validation of Patients")


def check_options(opts: DataflowDemographicsOptions) -> None:
    """Fails fast, before anything is staged, on flags that cannot make a job."""
    if bool(opts.subscription) == bool(opts.input):
        raise UsageError("give exactly one of --subscription (streaming) or --input (batch)")
    if not opts.source or "/" in opts.source:
        raise UsageError("--source NAME is required (a feed name, without '/')")
    if not (opts.bigquery_dataset or opts.parquet_prefix):
        raise UsageError("give --bigquery_dataset and/or --parquet_prefix")
    if opts.window_seconds <= 0:
        raise UsageError("--window_seconds must be positive")


def build_dataflow_pipeline(pipeline: beam.Pipeline, options: PipelineOptions) -> None:
    """Wires the graph: input files -> the batch pipeline's read and normalize -> BigQuery and/or Parquet."""
    opts = options.view_as(DataflowDemographicsOptions)
    check_options(opts)
    streaming = options.view_as(StandardOptions).streaming
    if opts.subscription and not streaming:
        raise UsageError("--subscription needs --streaming")
    if opts.input and streaming:
        raise UsageError("--input is a batch input; drop --streaming")
    started_at = dt.datetime.now(dt.timezone.utc)
    # Streaming: ingestion time is when each file is read, so that "latest ingestion wins" follows arrival.
    settings = BatchSettings(run_id="dataflow-" + new_run_id(started_at), ingested_at=None if streaming else started_at,
                             staging_dir="", strict_fhir=opts.strict_fhir)
    source = opts.source
    if streaming:
        paths = pipeline | "ReadGcsNotifications" >> ReadGcsNotifications(opts.subscription)
    else:
        paths = pipeline | "MatchGcsFiles" >> MatchGcsFiles(opts.input)
    chunks = (paths | "WithSource" >> beam.Map(lambda path: (path, source))
              | "ReadFhirFiles" >> ReadFhirFiles(settings))
    rows = chunks | "SplitRows" >> beam.ParDo(SplitStagedChunksFn()).with_outputs(REJECTED_TABLE, main=PATIENT_TABLE)
    for table, partition_field, clustering in ((PATIENT_TABLE, "ingested_at", ("source", "patient_id")),
                                               (REJECTED_TABLE, "rejected_at", ("source", "reason"))):
        _write_table(rows[table], table, partition_field, clustering, opts, streaming)


def _write_table(rows, table: str, partition_field: str, clustering: Sequence[str],
                 opts: DataflowDemographicsOptions, streaming: bool) -> None:
    if opts.bigquery_dataset:
        bq_table = VERSIONS_TABLE if table == PATIENT_TABLE else table
        rows | f"WriteBigQuery_{bq_table}" >> write_to_bigquery(
            opts.bigquery_dataset, bq_table, table, partition_field, clustering,
            opts.window_seconds if streaming else None)
    if opts.parquet_prefix:
        if streaming:
            rows = rows | f"Window_{table}" >> beam.WindowInto(window.FixedWindows(opts.window_seconds))
        rows | f"WriteParquet_{table}" >> WriteParquetBySource(opts.parquet_prefix, table)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m pipelines.beam.dataflow [flags]`: builds the job and submits it (waits only in batch)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    options = PipelineOptions(list(argv) if argv is not None else sys.argv[1:])
    if options.view_as(DataflowDemographicsOptions).subscription:
        options.view_as(StandardOptions).streaming = True  # Pub/Sub is a streaming source
    try:
        pipeline = beam.Pipeline(options=options)
        build_dataflow_pipeline(pipeline, options)
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    result = pipeline.run()
    if not options.view_as(StandardOptions).streaming:
        result.wait_until_finish()
    log.info("submitted; state %s", result.state)
    return 0


if __name__ == "__main__":
    sys.exit(main())
