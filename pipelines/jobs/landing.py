"""The one landing sequence that `run` and `watch` call: stage (Beam reads and normalizes files into staging
files), then in one step of the warehouse sink: match Observations, commit, export, validate; and the run's record
(`runs`) around it. The Dataflow job runs the same read and staging transforms and lands each window with
`land_staged` and `recorded_run` (pipelines/beam/landing.py).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.beam.read import REJECTED, InputFile, ReadSettings
from pipelines.errors import error_line
from pipelines.fhir.plan import SPLIT_BYTES
from pipelines.fhir.reader import ReadLimits
from pipelines.fhir.records import Rejection
from pipelines.jobs.inputs import total_bytes
from pipelines.normalize import Policy, load_policy
from pipelines.rows import RowContext, rejected_table
from pipelines.staging import StagedBatch, progress_of, staging_root
from pipelines.validation.config import ValidationConfig
from pipelines.warehouse.connection import LOCK_WAIT_SECONDS
from pipelines.warehouse.runs import RunCounts
from pipelines.warehouse.sink import DuckDBWarehouse, Landed, Sink

log = logging.getLogger(__name__)

DEFAULT_RUNNER = "FnApiRunner"  # named explicitly: the DirectRunner default tries to download Prism first
PROGRESS_SECONDS = 5.0
AUTO_PARALLEL_BYTES = 2 * SPLIT_BYTES  # input that makes at least two byte ranges


@dataclass(frozen=True)
class LandingOptions:
    """How files are landed; shared by `run` and `watch`."""

    warehouse: str
    parquet_dir: str
    beam_args: tuple[str, ...] = ()
    strict_fhir: bool = False
    validation: ValidationConfig | None = field(default_factory=ValidationConfig)  # None: do not validate
    policy: Policy | None = None  # None: the policy file shipped in the package
    limits: ReadLimits = field(default_factory=ReadLimits)
    lock_wait: float = LOCK_WAIT_SECONDS  # how long to wait for a warehouse another process holds

    def sink(self) -> DuckDBWarehouse:
        return DuckDBWarehouse(self.warehouse, self.parquet_dir, self.lock_wait)


def default_parquet_dir(warehouse: str) -> str:
    """`./warehouse.duckdb` -> `./warehouse_parquet/`."""
    path = Path(warehouse)
    return str(path.with_name(path.stem + "_parquet"))


def new_run_id(started_at: dt.datetime) -> str:
    return started_at.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]


def ensure_runner(beam_args: list[str]) -> str:
    """The runner's name; names the offline default explicitly when none is given."""
    for i, arg in enumerate(beam_args):
        if arg.startswith("--runner="):
            return arg.split("=", 1)[1]
        if arg == "--runner" and i + 1 < len(beam_args):
            return beam_args[i + 1]
    beam_args.append(f"--runner={DEFAULT_RUNNER}")
    return DEFAULT_RUNNER


@dataclass
class Run:
    """A run in progress: its id, start and counts so far."""

    run_id: str
    mode: str
    started_at: dt.datetime
    counts: RunCounts = field(default_factory=RunCounts)
    validation_rows: list[dict[str, Any]] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    ended_at: dt.datetime | None = None
    status: str | None = None  # set by the caller to end otherwise than succeeded/unreconciled (watch: stopped)


@contextmanager
def recorded_run(sink: Sink, mode: str, sources: Sequence[str], inputs: Sequence[str], runner: str) -> Iterator[Run]:
    """Records the run in `runs`: running, then succeeded / unreconciled / stopped, failed or interrupted."""
    started_at = dt.datetime.now(dt.UTC)
    run = Run(new_run_id(started_at), mode, started_at)
    sink.start_run(run.run_id, mode, sources, inputs, runner, started_at)
    try:
        yield run
    except BaseException as err:
        status = "interrupted" if isinstance(err, KeyboardInterrupt) else "failed"
        message = error_line(err)
        try:
            sink.finish_run(run.run_id, status, run.counts, dt.datetime.now(dt.UTC), message)
        except Exception:  # the original error is on its way; the next start repairs the row
            log.debug("could not record the end of run %s", run.run_id, exc_info=True)
        raise
    status = run.status or ("succeeded" if run.counts.reconciles else "unreconciled")
    run.ended_at = dt.datetime.now(dt.UTC)
    sink.finish_run(run.run_id, status, run.counts, run.ended_at, "; ".join(run.messages) or None)


class ProgressLine:
    """Logs how far the read stage is, from the progress files the workers write (every runner mode)."""

    def __init__(self, staging_dir: str, total_bytes: int, interval: float = PROGRESS_SECONDS):
        self.staging_dir, self.total, self.interval = staging_dir, total_bytes, interval
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="progress", daemon=True)
        self.started = time.monotonic()

    def __enter__(self) -> ProgressLine:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        self.thread.join()

    def summary(self, counts: RunCounts, raw_bytes: int) -> None:
        """The read stage's last line, from the exact counts of the batch."""
        elapsed = max(time.monotonic() - self.started, 1e-6)
        log.info(
            "read %s MB: %s records in %.1f s (%s records/s, %.1f MB/s)",
            f"{raw_bytes / 1e6:,.1f}",
            f"{counts.records_in:,}",
            elapsed,
            f"{counts.records_in / elapsed:,.0f}",
            raw_bytes / 1e6 / elapsed,
        )

    def line(self) -> str | None:
        records, done = progress_of(self.staging_dir)
        elapsed = time.monotonic() - self.started
        if not done or elapsed <= 0:
            return None
        rate = done / elapsed
        text = f"read {done / 1e6:,.1f} of {self.total / 1e6:,.1f} MB"
        if self.total:
            text += f" ({min(100.0, 100 * done / self.total):.0f}%)"
        text += f", {records:,} records, {records / elapsed:,.0f} records/s"
        if self.total > done and rate > 0:
            text += f", about {(self.total - done) / rate:,.0f} s left"
        return text

    def _loop(self) -> None:
        while not self.stop.wait(self.interval):
            text = self.line()
            if text:
                log.info("%s", text)


@contextmanager
def _workers_quiet() -> Iterator[None]:
    """Worker processes (multi_processing) write their own tracebacks and logs to stderr: unless the log level is
    DEBUG, they go to a discarded file, while this process's log lines still reach the terminal."""
    root = logging.getLogger()
    if root.getEffectiveLevel() <= logging.DEBUG:
        yield
        return
    import sys
    import tempfile

    sys.stderr.flush()
    saved = os.dup(2)
    terminal = os.fdopen(os.dup(saved), "w", buffering=1)
    handlers = [h for h in root.handlers if isinstance(h, logging.StreamHandler) and h.stream is sys.stderr]
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        for handler in handlers:
            handler.setStream(terminal)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            for handler in handlers:
                handler.setStream(sys.stderr)
            terminal.close()


def _descendants(pid: int) -> list[int]:
    """Process ids of every process started by `pid`, from /proc (Beam's worker processes and their shells)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as fh:
                    parent = int(fh.read().rsplit(b")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(parent, []).append(int(entry))
    found, stack = [], list(children.get(pid, []))
    while stack:
        child = stack.pop()
        found.append(child)
        stack.extend(children.get(child, []))
    return found


@contextmanager
def _interruptible(enabled: bool) -> Iterator[None]:
    """Ctrl-C or SIGTERM during the Beam phase ends it at once: worker processes (multi_processing) are killed, and
    the run is recorded as interrupted instead of Beam waiting for workers that will never answer."""
    import signal

    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return
    interrupted = threading.Event()

    def stop(_signum: int, _frame: Any) -> None:
        interrupted.set()
        for pid in _descendants(os.getpid()):
            with suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    except Exception:
        if interrupted.is_set():
            raise KeyboardInterrupt from None
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def parallel_by_default(beam_args: Sequence[str], total_bytes: int) -> list[str]:
    """Beam options with worker processes on every core when the input is large enough to be shared (two byte
    ranges or more) and the user chose no running mode: one process reads at most one core's worth."""
    args = list(beam_args)
    chosen = any(a.startswith(("--direct_running_mode", "--direct_num_workers")) for a in args)
    cores = os.cpu_count() or 1
    runner = ensure_runner(args)
    if not chosen and runner == DEFAULT_RUNNER and cores > 1 and total_bytes >= AUTO_PARALLEL_BYTES:
        args += ["--direct_running_mode=multi_processing", f"--direct_num_workers={cores}"]
        log.info(
            "%s MB of input: reading with %d worker processes (--direct_num_workers=1 for one)",
            f"{total_bytes / 1e6:,.0f}",
            cores,
        )
    return args


def _reads_in_worker_processes(beam_args: Sequence[str]) -> bool:
    """Whether the read stage runs in worker processes. Their memory adds to the main process's at the peak, so
    Great Expectations (~130 MB) is then imported after the read, not during it (issue 10's 1 GiB goal)."""
    from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions

    return PipelineOptions(list(beam_args)).view_as(DirectOptions).direct_running_mode == "multi_processing"


def _run_beam(
    files: Sequence[InputFile],
    staging_dir: str,
    settings: ReadSettings,
    beam_args: Sequence[str],
    interruptible: bool = True,
) -> None:
    """Runs the read stage with `beam_args` as chosen by `parallel_by_default`."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipelines.beam.read import ReadFhirFiles
    from pipelines.beam.staging import WriteStaged, staged_outputs

    pipeline = beam.Pipeline(options=PipelineOptions(beam_args))
    outputs = pipeline | "ListInputFiles" >> beam.Create(list(files)) | "ReadFhirFiles" >> ReadFhirFiles(settings)
    staged_outputs(outputs) | "WriteStaged" >> WriteStaged(staging_dir)
    with _interruptible(interruptible), _workers_quiet():
        state = pipeline.run().wait_until_finish()
    if str(state) not in ("DONE", "PipelineState.DONE"):
        raise RuntimeError(f"the Beam pipeline ended in state {state}")


def _stage_listing_rejects(
    rejects: Sequence[tuple[str, str, Rejection]],
    staging_dir: str,
    run_id: str,
    ingested_at: dt.datetime,
    counts: RunCounts,
) -> None:
    """Dead letters found while listing the inputs (a folder that cannot be listed, a link leaving the inputs)."""
    if not rejects:
        return
    tables = [rejected_table([r], RowContext(source, path, ingested_at, run_id)) for source, path, r in rejects]
    folder = os.path.join(staging_dir, REJECTED)
    os.makedirs(folder, exist_ok=True)
    pq.write_table(pa.concat_tables(tables), os.path.join(folder, "listing.parquet"))
    for _, _, r in rejects:
        counts.add_task_stats({"records_in": 1, "rejected": 1, "rejected_by_reason": {r.reason: 1}})


def land_files(
    files: Sequence[InputFile],
    run: Run,
    opts: LandingOptions,
    ingested_at: dt.datetime,
    duplicates_land_nothing: bool = False,
    listing_rejects: Sequence[tuple[str, str, Rejection]] = (),
    interruptible: bool = True,
) -> Landed:
    """Reads, normalizes and lands one batch of files; adds its counts to the run only once it has landed."""
    staging_dir = str(staging_root(opts.warehouse) / run.run_id / ingested_at.strftime("%H%M%S%f"))
    total = total_bytes(files)
    beam_args = parallel_by_default(opts.beam_args, total) if files else []
    if opts.validation is not None and files and not _reads_in_worker_processes(beam_args):
        from pipelines.validation import prepare_validator

        prepare_validator(opts.validation)  # the Great Expectations import overlaps an in-process read stage
    try:
        if files:
            settings = ReadSettings(run.run_id, ingested_at, opts.strict_fhir, opts.policy, opts.limits)
            with ProgressLine(staging_dir, total) as progress:
                _run_beam(files, staging_dir, settings, beam_args, interruptible)
        batch = StagedBatch.collect(staging_dir)
        if files:
            progress.summary(batch.counts, sum(f.size_bytes or 0 for f in batch.files))
        _stage_listing_rejects(listing_rejects, staging_dir, run.run_id, ingested_at, batch.counts)
        if listing_rejects:
            batch = _with_listing_rejects(batch, staging_dir)
        return land_staged(opts.sink(), batch, run, opts.policy, duplicates_land_nothing, opts.validation)
    finally:
        shutil.rmtree(staging_dir, ignore_errors=True)
        _remove_empty_parents(Path(staging_dir), staging_root(opts.warehouse))


def land_staged(
    sink: Sink,
    batch: StagedBatch,
    run: Run,
    policy: Policy | None,
    duplicates_land_nothing: bool,
    validation: ValidationConfig | None,
) -> Landed:
    """The landing half of the sequence (match, commit, export, validate), after staging; adds the batch's counts
    to the run only once it has landed."""
    landed = sink.land(
        batch, run.run_id, dt.datetime.now(dt.UTC), policy or load_policy(), duplicates_land_nothing, validation
    )
    run.counts.merge(landed.counts)
    run.validation_rows += landed.validation_rows
    if landed.export_error:
        run.messages.append(f"Parquet copy lags (rewritten at the next landing): {landed.export_error}")
    return landed


def _with_listing_rejects(batch: StagedBatch, staging_dir: str) -> StagedBatch:
    batch.rejected = sorted({*batch.rejected, os.path.join(staging_dir, REJECTED, "listing.parquet")})
    return batch


def _remove_empty_parents(folder: Path, root: Path) -> None:
    for parent in (folder.parent, root):
        with suppress(OSError):
            parent.rmdir()
