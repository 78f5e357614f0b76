"""`demographics run`: list the inputs, run the Beam batch pipeline, commit its staging files, summarize."""
from __future__ import annotations

import datetime as dt
import glob
import json
import logging
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from pipelines.errors import UsageError
from pipelines.warehouse import RunCounts

log = logging.getLogger(__name__)

DEFAULT_RUNNER = "FnApiRunner"  # named explicitly: the DirectRunner default tries to download Prism first
IGNORED_SUFFIXES = (".part", ".tmp")


def is_ignored_name(name: str) -> bool:
    """Hidden files and files still being written (`.part`, `.tmp`) are not inputs."""
    return name.startswith(".") or name.endswith(IGNORED_SUFFIXES)


def list_input_files(paths: Sequence[str], source: str | None) -> list[tuple[str, str]]:
    """Every file under the given files/directories (recursive), sorted, each with its source name.

    The default source is the input directory's name (for a file: the name of the directory holding it).
    """
    found: dict[str, str] = {}
    for given in paths:
        path = Path(given)
        if not path.exists():
            raise UsageError(f"input {given} does not exist")
        if path.is_dir():
            default_source = path.resolve().name
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in files:
                    if not is_ignored_name(name):
                        found.setdefault(str(Path(root, name).resolve()), source or default_source)
        elif not os.access(path, os.R_OK):
            raise UsageError(f"input {given} is not readable")
        else:
            found.setdefault(str(path.resolve()), source or path.resolve().parent.name)
    return sorted(found.items())


@dataclass
class RunResult:
    run_id: str
    warehouse: str
    parquet_dir: str
    counts: RunCounts
    sources: list[str] = field(default_factory=list)
    started_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None


def default_parquet_dir(warehouse: str) -> str:
    """`./warehouse.duckdb` -> `./warehouse_parquet/`."""
    path = Path(warehouse)
    return str(path.with_name(path.stem + "_parquet"))


def run_batch(inputs: Sequence[str], warehouse: str, source: str | None = None, beam_args: Sequence[str] = (),
              parquet_dir: str | None = None, strict_fhir: bool = True) -> RunResult:
    """Runs the whole batch job; bad records become dead letters, only bad usage raises UsageError."""
    from pipelines import warehouse as wh

    files = list_input_files(inputs, source)
    sources = sorted({s for _, s in files} or ({source} if source else set()))
    started_at = dt.datetime.now(dt.timezone.utc)
    run_id = started_at.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
    beam_args = list(beam_args)
    runner = _runner_name(beam_args)
    con = wh.connect(warehouse)
    try:
        wh.start_run(con, run_id, "batch", sources, [str(Path(p).resolve()) for p in inputs], runner, started_at)
    finally:
        con.close()  # never hold the single-writer lock while Beam runs
    if not files:
        log.warning("no input files found under %s", ", ".join(inputs))

    staging_dir = str(Path(warehouse).resolve().parent / f".{Path(warehouse).name}.staging" / run_id)
    counts = RunCounts()
    result = RunResult(run_id, str(warehouse), parquet_dir or default_parquet_dir(warehouse), counts, sources,
                       started_at)
    status, message = "failed", None
    try:
        if files:
            log.info("reading %d files with %s", len(files), runner)
            _run_beam(files, started_at, run_id, staging_dir, beam_args, strict_fhir)
        patient_files, rejected_files = _collect_staging(staging_dir, counts)
        con = wh.connect(warehouse)
        try:
            wh.commit_staged(con, patient_files, rejected_files, counts)
            if sources:
                wh.export_parquet(con, result.parquet_dir, sources)
            status = "succeeded" if counts.reconciles else "unreconciled"
            result.ended_at = dt.datetime.now(dt.timezone.utc)
            wh.finish_run(con, run_id, status, counts, result.ended_at)
        finally:
            con.close()
    except BaseException as err:
        message = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        _record_failure(warehouse, run_id, counts, message)
        raise
    finally:
        shutil.rmtree(staging_dir, ignore_errors=True)
        _remove_if_empty(Path(staging_dir).parent)
    return result


def _record_failure(warehouse: str, run_id: str, counts: RunCounts, message: str) -> None:
    from pipelines import warehouse as wh

    try:
        con = wh.connect(warehouse)
        try:
            wh.finish_run(con, run_id, "failed", counts, dt.datetime.now(dt.timezone.utc), message)
        finally:
            con.close()
    except Exception:  # the original error is what the user must see
        log.debug("could not record the failed run", exc_info=True)


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass


def _runner_name(beam_args: list[str]) -> str:
    for i, arg in enumerate(beam_args):
        if arg.startswith("--runner="):
            return arg.split("=", 1)[1]
        if arg == "--runner" and i + 1 < len(beam_args):
            return beam_args[i + 1]
    beam_args.append(f"--runner={DEFAULT_RUNNER}")
    return DEFAULT_RUNNER


def _run_beam(files: list[tuple[str, str]], started_at: dt.datetime, run_id: str, staging_dir: str,
              beam_args: list[str], strict_fhir: bool) -> None:
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipelines.beam.batch import BatchSettings, build_batch_pipeline

    settings = BatchSettings(run_id=run_id, ingested_at=started_at, staging_dir=staging_dir, strict_fhir=strict_fhir)
    pipeline = beam.Pipeline(options=PipelineOptions(beam_args))
    build_batch_pipeline(pipeline, files, settings)
    state = pipeline.run().wait_until_finish()
    if str(state) not in ("DONE", "PipelineState.DONE"):
        raise RuntimeError(f"the Beam pipeline ended in state {state}")


def _collect_staging(staging_dir: str, counts: RunCounts) -> tuple[list[str], list[str]]:
    """Adds every file's stats to the run counts; returns the staged patient and rejected Parquet files."""
    for stats_file in sorted(glob.glob(os.path.join(staging_dir, "stats", "*.json"))):
        with open(stats_file, encoding="utf-8") as fh:
            counts.add_file_stats(json.load(fh))
    patient_files = sorted(glob.glob(os.path.join(staging_dir, "patients", "*.parquet")))
    rejected_files = sorted(glob.glob(os.path.join(staging_dir, "rejected", "*.parquet")))
    return patient_files, rejected_files


def summary_lines(result: RunResult) -> list[str]:
    """The end-of-run summary table (counts and codes only, never patient data)."""
    c = result.counts
    rows = [
        ("run", result.run_id),
        ("warehouse", result.warehouse),
        ("parquet", result.parquet_dir),
        ("sources", ", ".join(result.sources) or "-"),
        ("files read", c.files_read),
        ("records in", c.records_in),
        ("  patients landed", c.patients_landed),
        ("  rejected", c.rejected),
        ("  other resources", c.other_resources),
        ("reconciles", "yes" if c.reconciles else "NO"),
        ("patients inserted", c.patients_inserted),
        ("patients updated", c.patients_updated),
        ("patients unchanged", c.patients_unchanged),
    ]
    rows += [(f"  rejected: {reason}", n) for reason, n in sorted(c.rejected_by_reason.items())]
    if result.started_at and result.ended_at:
        rows.append(("seconds", f"{(result.ended_at - result.started_at).total_seconds():.1f}"))
    width = max(len(k) for k, _ in rows)
    return [f"{k.ljust(width)}  {v}" for k, v in rows]
