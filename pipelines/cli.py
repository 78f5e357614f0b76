"""The `demographics` command: subcommands of contract section 1, one-line errors, numbered exit codes."""
from __future__ import annotations

import argparse
import logging
import sys
from typing import Sequence

from pipelines.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, UsageError

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
    # Beam's own INFO lines (bundles, workers) drown the progress a user needs; keep them for DEBUG.
    for noisy in ("apache_beam", "great_expectations"):
        logging.getLogger(noisy).setLevel(level if level == "DEBUG" else max(logging.WARNING, logging.getLevelName(level)))


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad usage as one line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        command = self.prog.removeprefix("demographics").strip()
        raise UsageError(f"{command}: {message}" if command else message)


def _common() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("--log-level", default="INFO", type=str.upper, choices=LOG_LEVELS, metavar="LEVEL",
                        help="logging on stderr: DEBUG, INFO (default), WARNING, ERROR")
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    parser = _Parser(prog="demographics", parents=[common],
                     description="Normalize race, ethnicity and language from FHIR feeds (bundles, Bulk NDJSON, "
                                 "gzip) to OMB SPD-15 (2024) and HEDIS strata, and land them in DuckDB and Parquet.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    run = sub.add_parser(
        "run", parents=[common], help="batch: read files, normalize, land in the warehouse",
        description="Batch: read every file under the given files/directories (recursive; hidden files and "
                    "*.part/*.tmp are skipped), normalize every Patient, land patient_demographics, "
                    "rejected_records and runs in the DuckDB warehouse plus Parquet partitioned by source. "
                    "Bad records are rejected with a reason and the run exits 0. Any other --option is passed "
                    "to Apache Beam (for example --runner, --direct_running_mode=multi_processing "
                    "--direct_num_workers=2; the default runner is FnApiRunner, which runs offline).",
        epilog="example: demographics run --input samples/ --warehouse warehouse.duckdb")
    run.add_argument("--input", nargs="+", required=True, metavar="PATH", help="files or directories to read")
    run.add_argument("--warehouse", default=DEFAULT_WAREHOUSE, metavar="FILE",
                     help=f"DuckDB warehouse file (default {DEFAULT_WAREHOUSE}; created when missing)")
    run.add_argument("--source", metavar="NAME", help="feed name (default: the input directory's name)")
    run.add_argument("--parquet-dir", metavar="DIR",
                     help="where the Parquet copy goes (default: <warehouse name>_parquet/ beside the warehouse)")
    run.add_argument("--no-strict-fhir", dest="strict_fhir", action="store_false",
                     help="skip strict FHIR R4B validation of Patients (faster; no fhir_validation_failed warnings)")
    return parser


def _beam_unknown(args: Sequence[str]) -> list[str]:
    """The arguments that neither this tool nor any Beam options class knows."""
    from apache_beam.options.pipeline_options import PipelineOptions, _BeamArgumentParser

    parser = _BeamArgumentParser(allow_abbrev=False)
    pending, seen = list(PipelineOptions.__subclasses__()), set()
    while pending:
        cls = pending.pop()
        if cls not in seen:
            seen.add(cls)
            cls._add_argparse_args(parser)
            pending.extend(cls.__subclasses__())
    return parser.parse_known_args(list(args))[1]


def _cmd_run(args: argparse.Namespace, beam_args: list[str]) -> int:
    from pipelines.run import run_batch, summary_lines

    unknown = _beam_unknown(beam_args)
    if unknown:
        raise UsageError(f"run: unrecognized arguments: {' '.join(unknown)}")
    result = run_batch(args.input, args.warehouse, args.source, beam_args, args.parquet_dir, args.strict_fhir)
    print("\n".join(summary_lines(result)))
    return EXIT_OK


COMMANDS = {"run": _cmd_run}
ACCEPTS_BEAM_ARGS = {"run"}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser()
        args, extra = parser.parse_known_args(argv)
        if extra and args.command not in ACCEPTS_BEAM_ARGS:
            raise UsageError(f"{args.command}: unrecognized arguments: {' '.join(extra)}")
        _configure_logging(args.log_level)
        return COMMANDS[args.command](args, extra)
    except UsageError as err:
        print(f"demographics: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("demographics: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
