"""`demographics run`: list the inputs, run the Beam batch pipeline, commit its staging files, summarize."""
from __future__ import annotations

import datetime as dt
import glob
import hashlib
import json
import logging
import os
import shutil
import stat
import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator, Sequence

from pipelines.errors import UsageError
from pipelines.rejoin import RowContext, rejoin_feed_observations
from pipelines.validation.config import ValidationConfig
from pipelines.warehouse.legacy import RunCounts

log = logging.getLogger(__name__)

DEFAULT_RUNNER = "FnApiRunner"  # named explicitly: the DirectRunner default tries to download Prism first
IGNORED_SUFFIXES = (".part", ".tmp")


def is_ignored_name(name: str) -> bool:
    """Hidden files and files still being written (`.part`, `.tmp`) are not inputs."""
    return name.startswith(".") or name.endswith(IGNORED_SUFFIXES)


def walk_input_folder(folder: Path) -> Iterator[tuple[str, os.stat_result | None]]:
    """Every input file under a folder (recursive, sorted), with its stat (None when it cannot be read).

    Hidden and partial names are skipped, and so are FIFOs, sockets and devices: opening a FIFO would block
    forever. A dangling symlink or a symlink loop is kept, so that the reader records it as a dead letter.
    """
    skipped = 0
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if is_ignored_name(name):
                continue
            path = os.path.abspath(os.path.join(root, name))
            try:
                st = os.stat(path)
            except OSError:
                yield path, None
                continue
            if stat.S_ISREG(st.st_mode):
                yield path, st
            else:
                skipped += 1
    if skipped:
        log.warning("skipped %d entries under %s that are not regular files (FIFOs, sockets, devices)",
                    skipped, folder)


def list_input_files(paths: Sequence[str], source: str | None) -> list[tuple[str, str]]:
    """Every file under the given files/directories (recursive), sorted, each with its source name.

    The default source is the input directory's name (for a file: the name of the directory holding it).
    """
    found: dict[str, str] = {}
    for given in paths:
        path = Path(given)
        if not path.exists():
            raise UsageError(f"input {given} does not exist")
        absolute = Path(os.path.abspath(path))
        if path.is_dir():
            for file_path, _ in walk_input_folder(path):
                found.setdefault(file_path, source or absolute.name)
        elif not path.is_file():
            raise UsageError(f"input {given} is not a regular file or directory")
        elif not os.access(path, os.R_OK):
            raise UsageError(f"input {given} is not readable")
        else:
            found.setdefault(str(absolute), source or absolute.parent.name)
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
    validation_rows: list[dict] = field(default_factory=list)

    @property
    def validation_passed(self) -> bool:
        return all(row["success"] for row in self.validation_rows)


@dataclass(frozen=True)
class LandingOptions:
    """How files are landed; shared by `run` and `watch`."""

    warehouse: str
    parquet_dir: str
    beam_args: tuple[str, ...] = ()
    strict_fhir: bool = True
    validation: ValidationConfig | None = field(default_factory=ValidationConfig)  # None: do not validate
    policy: Any = None  # pipelines.normalize.Policy; None: the policy file shipped in the package


def default_parquet_dir(warehouse: str) -> str:
    """`./warehouse.duckdb` -> `./warehouse_parquet/`."""
    path = Path(warehouse)
    return str(path.with_name(path.stem + "_parquet"))


def new_run_id(started_at: dt.datetime) -> str:
    return started_at.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]


def land_files(files: Sequence[tuple[str, str]], run_id: str, ingested_at: dt.datetime, opts: LandingOptions,
               counts: RunCounts, ledger: Sequence[dict] | None = None) -> list[dict]:
    """Reads, normalizes and lands one batch of files; returns the batch's validation_results rows.

    Beam writes staging files; one transaction then lands the rows, the dead letters and the ledger entries of
    the batch (all or nothing, so a killed process never leaves half a file landed). The warehouse is held open
    only for that commit and for storing the validation results.
    """
    from pipelines.warehouse import legacy as wh

    staging_dir = str(Path(opts.warehouse).resolve().parent / f".{Path(opts.warehouse).name}.staging" / run_id
                      / ingested_at.strftime("%H%M%S%f"))
    batch_counts = RunCounts()  # added to the run's counts only once the batch has landed
    try:
        if files:
            _run_beam([(path, source, order) for order, (path, source) in enumerate(files)], ingested_at, run_id,
                      staging_dir, opts)
        patient_files, rejected_files, file_stats = _collect_staging(staging_dir, batch_counts)
        landed_at = dt.datetime.now(dt.timezone.utc)
        if ledger is None:  # batch: every file read is landed; its hash and size come from the reading worker
            ledger = [{"source": st["source"], "input_file": path, "content_sha256": st["content_sha256"],
                       "size_bytes": st["size_bytes"], "status": "landed" if st["content_sha256"] else "unreadable"}
                      for path, st in file_stats.items()]
        ledger_rows = [dict(row, landed_at=landed_at, run_id=run_id,
                            lag_seconds=_lag(row.get("arrived_at"), landed_at),
                            **{k: v for k, v in file_stats.get(row["input_file"], {}).items() if k in LEDGER_COUNTS})
                       for row in ledger]
        with wh.connect(opts.warehouse) as con:
            wh.ensure_tables(con)
            patient_files += rejoin_feed_observations(con, staging_dir, patient_files,
                                                      RowContext(ingested_at, run_id, opts.strict_fhir, opts.policy))
            wh.commit_staged(con, patient_files, rejected_files, batch_counts, ledger_rows)
            sources = sorted({s for _, s in files})
            if sources:
                wh.export_parquet(con, opts.parquet_dir, sources)
        counts.merge(batch_counts)
        if opts.validation is None or not patient_files:
            return []
        rows = _validate_batch(patient_files, run_id, opts.validation)
        store_validation(opts.warehouse, rows)
        return rows
    finally:
        shutil.rmtree(staging_dir, ignore_errors=True)
        for parent in (Path(staging_dir).parent, Path(staging_dir).parent.parent):
            _remove_if_empty(parent)


def store_validation(warehouse: str, rows: list[dict]) -> None:
    """Stores validation_results rows, holding the warehouse only for the insert."""
    from pipelines.warehouse import legacy as wh
    from pipelines.validation import store_results

    with wh.connect(warehouse) as con:
        store_results(con, rows)


LEDGER_COUNTS = ("records_in", "patients_landed", "rejected", "other_resources")


def _lag(arrived_at: dt.datetime | None, landed_at: dt.datetime) -> float | None:
    return None if arrived_at is None else round((landed_at - arrived_at).total_seconds(), 3)


def _validate_batch(patient_files: Sequence[str], run_id: str, config: ValidationConfig) -> list[dict]:
    """Runs the expectation suites on the batch, per source, without holding the warehouse."""
    import duckdb

    from pipelines.validation import shared_validator
    from pipelines.warehouse.legacy import latest_staged_sql

    frame = duckdb.connect().execute(latest_staged_sql(patient_files) + " ORDER BY source, patient_id").fetchdf()
    validator = shared_validator(config)
    rows: list[dict] = []
    for source, group in frame.groupby("source", sort=True):
        rows += validator.validate(group, scope="source", source=source, run_id=run_id)
    return rows


def run_batch(inputs: Sequence[str], opts: LandingOptions, source: str | None = None) -> RunResult:
    """`demographics run`: bad records become dead letters, only bad usage raises UsageError."""
    from pipelines.warehouse import legacy as wh

    files = list_input_files(inputs, source)
    sources = sorted({s for _, s in files} or ({source} if source else set()))
    started_at = dt.datetime.now(dt.timezone.utc)
    run_id = new_run_id(started_at)
    beam_args = list(opts.beam_args)
    runner = ensure_runner(beam_args)
    opts = replace(opts, beam_args=tuple(beam_args))
    with wh.connect(opts.warehouse) as con:  # closed before Beam runs: never hold the single-writer lock
        wh.start_run(con, run_id, "batch", sources, [str(Path(p).resolve()) for p in inputs], runner, started_at)
    if not files:
        log.warning("no input files found under %s", ", ".join(inputs))
    counts = RunCounts()
    result = RunResult(run_id, opts.warehouse, opts.parquet_dir, counts, sources, started_at)
    try:
        log.info("reading %d files with %s", len(files), runner)
        result.validation_rows = land_files(files, run_id, started_at, opts, counts)
        result.ended_at = dt.datetime.now(dt.timezone.utc)
        finish(opts.warehouse, run_id, "succeeded" if counts.reconciles else "unreconciled", counts, result.ended_at)
    except BaseException as err:
        finish(opts.warehouse, run_id, "failed", counts, dt.datetime.now(dt.timezone.utc),
               f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}", quiet=True)
        raise
    return result


def file_ledger_entry(path: str, source: str, status: str = "landed", duplicate_of: str | None = None) -> dict:
    """A ledger row for an input file: its content hash, size and arrival time (inode change time: the rename)."""
    digest = hashlib.sha256()
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(f"{path} is not a regular file")
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    except OSError:  # vanished or unreadable: the reader records a dead letter; the ledger names the file
        return {"source": source, "input_file": path, "content_sha256": None, "size_bytes": None,
                "status": "unreadable", "duplicate_of": None, "arrived_at": None}
    return {"source": source, "input_file": path, "content_sha256": digest.hexdigest(), "size_bytes": st.st_size,
            "status": status, "duplicate_of": duplicate_of,
            "arrived_at": dt.datetime.fromtimestamp(st.st_ctime, dt.timezone.utc)}


def finish(warehouse: str, run_id: str, status: str, counts: RunCounts, ended_at: dt.datetime,
           message: str | None = None, quiet: bool = False) -> None:
    """Records the end of a run; with `quiet`, a failure to do so is logged, not raised (an error is on its way)."""
    from pipelines.warehouse import legacy as wh

    try:
        with wh.connect(warehouse) as con:
            wh.finish_run(con, run_id, status, counts, ended_at, message)
    except Exception:
        if not quiet:
            raise
        log.debug("could not record the end of run %s", run_id, exc_info=True)


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:
        pass


def ensure_runner(beam_args: list[str]) -> str:
    """The runner's name; names the offline default explicitly when none is given."""
    for i, arg in enumerate(beam_args):
        if arg.startswith("--runner="):
            return arg.split("=", 1)[1]
        if arg == "--runner" and i + 1 < len(beam_args):
            return beam_args[i + 1]
    beam_args.append(f"--runner={DEFAULT_RUNNER}")
    return DEFAULT_RUNNER


def _run_beam(files: Sequence[tuple[str, str, int]], started_at: dt.datetime, run_id: str, staging_dir: str,
              opts: LandingOptions) -> None:
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipelines.beam.batch import BatchSettings, build_batch_pipeline

    settings = BatchSettings(run_id=run_id, ingested_at=started_at, staging_dir=staging_dir,
                             strict_fhir=opts.strict_fhir, policy=opts.policy)
    beam_args = list(opts.beam_args)
    ensure_runner(beam_args)
    pipeline = beam.Pipeline(options=PipelineOptions(beam_args))
    build_batch_pipeline(pipeline, files, settings)
    state = pipeline.run().wait_until_finish()
    if str(state) not in ("DONE", "PipelineState.DONE"):
        raise RuntimeError(f"the Beam pipeline ended in state {state}")


def _collect_staging(staging_dir: str, counts: RunCounts) -> tuple[list[str], list[str], dict[str, dict]]:
    """Adds every file's stats to the run counts; returns the staged Parquet files and the stats per input file."""
    per_file = {}
    for stats_file in sorted(glob.glob(os.path.join(staging_dir, "stats", "*.ndjson"))):
        with open(stats_file, encoding="utf-8") as fh:
            stats = json.loads(fh.readline())
        counts.add_file_stats(stats)
        per_file[stats["input_file"]] = stats
    patient_files = sorted(glob.glob(os.path.join(staging_dir, "patients", "*.parquet")))
    rejected_files = sorted(glob.glob(os.path.join(staging_dir, "rejected", "*.parquet")))
    return patient_files, rejected_files, per_file


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
    if result.validation_rows:
        failed = sum(not r["success"] for r in result.validation_rows)
        rows.append(("validation", "passed" if not failed else f"{failed} expectations FAILED"))
    if result.started_at and result.ended_at:
        rows.append(("seconds", f"{(result.ended_at - result.started_at).total_seconds():.1f}"))
    width = max(len(k) for k, _ in rows)
    return [f"{k.ljust(width)}  {v}" for k, v in rows]
