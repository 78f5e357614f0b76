"""The `demographics` command: subcommands of contract section 1, one-line errors, numbered exit codes."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

from pipelines.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, EXIT_VALIDATION_FAILED, UsageError
from pipelines.report import command as report_command

DEFAULT_WAREHOUSE = "./warehouse.duckdb"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# Messages libraries log at import or start-up that say nothing to a user of this tool.
_NOISE = ("apitools not found", "bigquery client libraries are not available")


class _DropNoise(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not any(n in record.getMessage() for n in _NOISE)


def _configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S"))
    handler.addFilter(_DropNoise())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Beam's own lines (bundles, workers, and a worker's traceback when a run fails, which main() reports in one
    # line) and GX's drown what a user needs: they are shown with DEBUG only.
    for noisy in ("apache_beam", "great_expectations"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if level == "DEBUG" else logging.CRITICAL)


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad usage as one line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        command = self.prog.removeprefix("demographics").strip()
        raise UsageError(f"{command}: {message}" if command else message)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("demographics-pipeline")
    except PackageNotFoundError:  # a source checkout that is not installed
        return "(not installed)"


def _common(default: str) -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument(
        "--log-level",
        default=default,
        type=str.upper,
        choices=LOG_LEVELS,
        metavar="LEVEL",
        help="logging on stderr: DEBUG, INFO (default), WARNING, ERROR",
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    # Accepted before and after the subcommand; the subcommand's copy must not reset a value given before it.
    common = _common(argparse.SUPPRESS)
    parser = _Parser(
        prog="demographics",
        parents=[_common("INFO")],
        description="Normalize race, ethnicity and language from FHIR feeds (bundles, Bulk NDJSON, "
        "gzip) to OMB SPD-15 (2024) and HEDIS strata, and land them in DuckDB and Parquet.",
    )
    parser.add_argument("--version", action="version", version=f"demographics {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    run = sub.add_parser(
        "run",
        parents=[common],
        help="batch: read files, normalize, land in the warehouse",
        description="Batch: read every file under the given files/directories (recursive; hidden files and "
        "*.part/*.tmp are skipped), normalize every Patient, land patient_demographics, "
        "rejected_records and runs in the DuckDB warehouse plus Parquet partitioned by source. "
        "Bad records are rejected with a reason and the run exits 0. Any other --option is passed "
        "to Apache Beam (for example --runner, --direct_num_workers=N). The default runner is "
        "FnApiRunner, which runs offline; from 128 MiB of input it reads with one worker process "
        "per core unless you choose (--direct_num_workers=1 for one).",
        epilog="example: demographics run --input samples/ --warehouse warehouse.duckdb",
    )
    run.add_argument(
        "--input", nargs="+", action="extend", required=True, metavar="PATH", help="files or directories to read"
    )
    _warehouse_option(run, creates=True)
    run.add_argument("--source", metavar="NAME", help="feed name (default: the input directory's name)")
    run.add_argument(
        "--parquet-dir",
        metavar="DIR",
        help="where the Parquet copy goes (default: <warehouse name>_parquet/ beside the warehouse)",
    )
    _reading_options(run)
    run.add_argument(
        "--follow-symlinks",
        action="store_true",
        help="follow symbolic links that lead outside the given inputs (default: such a link is a dead "
        "letter, symlink_outside_input)",
    )
    _validation_options(run)
    _policy_option(run)
    run.add_argument(
        "--fail-on-validation",
        action="store_true",
        help="exit 1 when an expectation fails on this run's batch (the data still lands)",
    )
    run.add_argument(
        "--no-validation", dest="validate", action="store_false", help="do not run the expectation suites on the batch"
    )

    watch = sub.add_parser(
        "watch",
        parents=[common],
        help="streaming: land files as a feed drops them into a folder",
        description="Streaming: watches DIR and lands each file a QHIO feed drops there (written under a temp "
        "name, then renamed; names starting with '.' or ending in .part/.tmp are ignored), with the "
        "same pipeline as `run`. Each file is processed once, even across restarts: a ledger of "
        "content hashes lives in the warehouse (table ingested_files); an identical file delivered "
        "again is recorded as a duplicate and lands nothing. Runs until Ctrl-C or SIGTERM (a clean "
        "stop after the current landing) or --stop-after. The warehouse is opened only while "
        "landing, so other processes can query it read-only in between.",
        epilog="example: demographics watch --input /data/qhio-drop --warehouse warehouse.duckdb",
    )
    watch.add_argument("--input", required=True, metavar="DIR", help="the drop folder to watch")
    _warehouse_option(watch, creates=True)
    watch.add_argument("--source", metavar="NAME", help="feed name (default: the folder's name)")
    watch.add_argument("--parquet-dir", metavar="DIR", help="where the Parquet copy goes (as for run)")
    watch.add_argument(
        "--poll-interval",
        type=_positive,
        default=1.0,
        metavar="SECONDS",
        help="how often to look for new files (default 1)",
    )
    watch.add_argument("--stop-after", type=_positive, metavar="SECONDS", help="stop after this many seconds")
    watch.add_argument(
        "--window",
        type=_positive,
        default=60.0,
        metavar="SECONDS",
        help="validate what landed in each window of this length (default 60)",
    )
    _reading_options(watch)
    watch.add_argument(
        "--no-validation", dest="validate", action="store_false", help="do not run the expectation suites per window"
    )
    _validation_options(watch)
    _policy_option(watch)

    status = sub.add_parser(
        "status",
        parents=[common],
        help="is the feed healthy? runs, files, lag, rejects, completeness",
        description="Shows recent runs, files landed and waiting in the drop folder, the lag between a file's "
        "arrival and its landing, rejects by reason, and completeness per source now and over time. "
        "Opens the warehouse read-only, so it works while `watch` runs.",
    )
    _warehouse_option(status, creates=False)
    status.add_argument(
        "--input",
        nargs="+",
        action="extend",
        metavar="DIR",
        help="drop folders to count waiting files in (default: the latest watch's folder)",
    )
    status.add_argument("--recent", type=int, default=10, metavar="N", help="how many runs and points to show")

    validate = sub.add_parser(
        "validate",
        parents=[common],
        help="run the expectation suites on what has landed",
        description="Runs the Great Expectations suites of expectations/ on patient_demographics, per source and "
        "on the whole warehouse; prints a summary; stores the results in validation_results. Exit 0 "
        "when every expectation passes, 1 when one fails.",
    )
    _warehouse_option(validate, creates=False)
    validate.add_argument("--html", metavar="FILE", help="also write the summary as a self-contained HTML page")
    _validation_options(validate)

    report = sub.add_parser(
        "report",
        parents=[common],
        help="stratified tables, small-cell suppression and a page with charts",
        description="Writes the stratified tables (HEDIS race and ethnicity, the OMB 2024 tabulations, detailed "
        "groups, language, completeness) per source and overall as CSV and Parquet, with small counts "
        "suppressed, and a self-contained index.html with charts; refreshes warehouse views of the "
        "same names (nothing suppressed there).",
        epilog="example: demographics report --warehouse warehouse.duckdb --out report/ --by managing_organization",
    )
    _warehouse_option(report, creates=False)
    _validation_options(report)
    report_command.add_arguments(report)
    return parser


def _warehouse_option(parser: argparse.ArgumentParser, creates: bool) -> None:
    parser.add_argument(
        "--warehouse",
        default=DEFAULT_WAREHOUSE,
        metavar="FILE",
        help=f"DuckDB warehouse file (default {DEFAULT_WAREHOUSE})" + ("; created when missing" if creates else ""),
    )


def _reading_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--strict-fhir",
        action="store_true",
        help="also validate every Patient against the full FHIR R4B model (fhir.resources): slower; "
        "a Patient invalid only in elements the pipeline does not read still lands, with "
        "fhir_validation_failed and the element paths. By default only the elements the "
        "pipeline reads are checked",
    )
    parser.add_argument(
        "--max-document-mb",
        type=_positive,
        default=64,
        metavar="MB",
        help="largest single JSON document (one Bundle) or NDJSON line read; a larger one is a dead "
        "letter (default 64)",
    )
    parser.add_argument(
        "--max-records-per-document",
        type=int,
        default=1_000_000,
        metavar="N",
        help="most records read from one document; the rest of it is a dead letter (default 1000000)",
    )
    parser.add_argument(
        "--max-expanded-gb",
        type=_positive,
        default=64,
        metavar="GB",
        help="most bytes one file may expand to (gzip); the rest is a dead letter (default 64)",
    )


def _policy_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--policy",
        metavar="FILE",
        help="classification policy (TOML) replacing the shipped defaults; see "
        "docs/classification.md and pipelines/normalize/data/policy.toml",
    )


def _validation_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--completeness-goal",
        type=_share,
        default=0.80,
        metavar="SHARE",
        help="share of patients with a reported race/ethnicity each source must reach "
        "(default 0.80, the goal California purchasers set)",
    )


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
    return value


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _cmd_run(args: argparse.Namespace, beam_args: list[str]) -> int:
    from pipelines.jobs.run import run_batch, summary_lines
    from pipelines.validation import all_passed, summary_table

    opts = _landing_options(args, beam_args)
    run, sources = run_batch(args.input, opts, args.source, args.follow_symlinks)
    print("\n".join(summary_lines(run, opts, sources)))
    if run.validation_rows and not all_passed(run.validation_rows):
        print(summary_table(run.validation_rows))
        if args.fail_on_validation:
            return EXIT_VALIDATION_FAILED
    return EXIT_OK


def _landing_options(args: argparse.Namespace, beam_args: list[str]):
    from pipelines.beam.options import check_beam_args
    from pipelines.fhir.reader import ReadLimits
    from pipelines.jobs.landing import LandingOptions, default_parquet_dir
    from pipelines.normalize import PolicyError, load_policy
    from pipelines.validation import ValidationConfig
    from pipelines.warehouse.connection import check_warehouse_path

    check_beam_args(args.command, beam_args)
    check_warehouse_path(Path(args.warehouse))
    try:
        policy = load_policy(args.policy) if args.policy else None
    except PolicyError as err:
        raise UsageError(str(err)) from None
    parquet_dir = args.parquet_dir or default_parquet_dir(args.warehouse)
    _check_writable_dir(parquet_dir)
    limits = ReadLimits(
        max_document_bytes=int(args.max_document_mb * (1 << 20)),
        max_records_per_document=args.max_records_per_document,
        max_expanded_bytes=int(args.max_expanded_gb * (1 << 30)),
    )
    return LandingOptions(
        warehouse=args.warehouse,
        parquet_dir=parquet_dir,
        beam_args=tuple(beam_args),
        strict_fhir=args.strict_fhir,
        policy=policy,
        limits=limits,
        validation=ValidationConfig(completeness_goal=args.completeness_goal) if args.validate else None,
    )


def _check_writable_dir(folder: str) -> None:
    """Checked before anything lands (a run must not land rows, then fail on its Parquet copy); creates nothing."""
    existing = os.path.abspath(folder)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    try:  # a real attempt: permission bits say nothing for root or for special filesystems
        os.rmdir(tempfile.mkdtemp(dir=existing, prefix=".demographics-check-"))
    except OSError:
        raise UsageError(f"cannot write Parquet to {folder}: {existing} is not a writable directory") from None


def _cmd_watch(args: argparse.Namespace, beam_args: list[str]) -> int:
    from pipelines.jobs.watch import watch
    from pipelines.validation import all_passed, summary_table

    result = watch(
        args.input, _landing_options(args, beam_args), args.source, args.poll_interval, args.stop_after, args.window
    )
    c = result.run.counts
    print(
        f"watch {result.run.run_id} stopped ({result.reason}): {result.files_landed} files landed, "
        f"{result.duplicates} duplicate deliveries, {c.records_in} records in = {c.patients_landed} Patient "
        f"records + {c.rejected} rejected + {c.other_resources} other resources + {c.deletions} deletions"
    )
    if result.run.validation_rows and not all_passed(result.run.validation_rows):
        print(summary_table(result.run.validation_rows))
    return EXIT_OK


def _cmd_status(args: argparse.Namespace, _: list[str]) -> int:
    from pipelines import warehouse as wh
    from pipelines.jobs.status import collect_status, render_status

    with wh.connect(args.warehouse, read_only=True) as con:
        print(render_status(collect_status(con, args.input, args.recent)))
    return EXIT_OK


def _cmd_validate(args: argparse.Namespace, _: list[str]) -> int:
    import datetime as dt

    from pipelines import warehouse as wh
    from pipelines.jobs.landing import new_run_id
    from pipelines.validation import (
        NoPatientsError,
        ValidationConfig,
        exit_code,
        summary_table,
        validate_warehouse,
        write_html_summary,
    )

    try:
        with wh.connect(args.warehouse, create=False) as con:
            rows = validate_warehouse(
                con, new_run_id(dt.datetime.now(dt.UTC)), ValidationConfig(completeness_goal=args.completeness_goal)
            )
    except NoPatientsError as err:
        raise UsageError(str(err)) from None
    print(summary_table(rows))
    if args.html:
        write_html_summary(rows, args.html)
        print(f"wrote {args.html}")
    return exit_code(rows)


COMMANDS = {
    "run": _cmd_run,
    "watch": _cmd_watch,
    "validate": _cmd_validate,
    "status": _cmd_status,
    "report": lambda args, _: report_command.run(args),
}
ACCEPTS_BEAM_ARGS = {"run", "watch"}


def _one_line(err: BaseException) -> str:
    """The line of an error a user needs: for a worker's failure reported with its whole traceback, its last line."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    if lines and lines[0].startswith("Traceback"):
        last = [line for line in lines if not line.startswith(("File ", "Traceback", "^", "~"))][-1:]
        if last:
            return last[0]
    return f"{type(err).__name__}: {lines[0] if lines else ''}"


def _misspelled_option(parser: argparse.ArgumentParser, command: str, extra: Sequence[str]) -> None:
    """A flag close to one of our own (`--warehose`) is refused at once, before Beam is imported to check it."""
    import difflib

    ours = [
        o
        for action in parser._subparsers._group_actions[0].choices[command]._actions  # type: ignore[union-attr]
        for o in action.option_strings
    ]
    for flag in (e.split("=", 1)[0] for e in extra if e.startswith("--")):
        close = difflib.get_close_matches(flag, ours, n=1, cutoff=0.8)
        if close:
            raise UsageError(f"{command}: unrecognized arguments: {flag} (did you mean {close[0]}?)")


def _terminate(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM ends a command like Ctrl-C: recorded as interrupted, exit 130


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    previous_umask = os.umask(0o077)  # the warehouse, its Parquet copy and staging files: readable by their owner only
    previous_term = (
        signal.signal(signal.SIGTERM, _terminate) if threading.current_thread() is threading.main_thread() else None
    )
    try:
        parser = build_parser()
        if not argv or argv in (["--log-level"],):
            parser.print_help(sys.stderr)
            return EXIT_USAGE
        args, extra = parser.parse_known_args(argv)
        if extra and args.command not in ACCEPTS_BEAM_ARGS:
            raise UsageError(f"{args.command}: unrecognized arguments: {' '.join(extra)}")
        if extra:
            _misspelled_option(parser, args.command, extra)
        _configure_logging(args.log_level)
        return COMMANDS[args.command](args, extra)
    except SystemExit as done:  # --help and --version print and exit 0
        return int(done.code or 0)
    except UsageError as err:
        print(f"demographics: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("demographics: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as err:  # a failure of the run itself, not of a record: one line, details at DEBUG
        logging.getLogger(__name__).debug("failure", exc_info=True)
        print(f"demographics: failed: {_one_line(err)} (details with --log-level DEBUG)", file=sys.stderr)
        return EXIT_FAILED
    finally:
        os.umask(previous_umask)
        if previous_term is not None:
            signal.signal(signal.SIGTERM, previous_term)


if __name__ == "__main__":
    sys.exit(main())
