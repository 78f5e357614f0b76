"""`demographics watch`: land files as a QHIO feed drops them into a folder, each exactly once, live.

Each poll runs the batch pipeline (the same Beam transforms) on the files that appeared since the last one
and commits their rows together with their ledger entries (`ingested_files`) in one transaction, so that a
watcher killed in the middle of a file lands nothing of it and lands it after a restart. Files are known by
content hash: an identical file delivered again is recorded as a duplicate and lands nothing; a changed file
under the same name is new data. The warehouse is opened only to commit, so analysts can read it in between.

Why a poll loop rather than a Beam streaming source: on the local runners `fileio.MatchContinuously` misses
files and `PeriodicImpulse` busy-waits a core and holds windowed output until it stops
(../shared/notes/toolchain.md section 2). On Dataflow the same read and normalize transforms run behind Pub/Sub
notifications instead (pipelines/beam/dataflow.py).
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from pipelines.errors import UsageError
from pipelines.run import (LandingOptions, ensure_runner, file_ledger_entry, finish, land_files, new_run_id,
                           store_validation, walk_input_folder)
from pipelines.warehouse.legacy import LEDGER_TABLE, RunCounts

log = logging.getLogger(__name__)


@dataclass
class WatchState:
    """What this watcher knows: files already decided, and the ledger's content hashes."""

    known: set[tuple[str, str]] = field(default_factory=set)  # (input_file, sha256) in the ledger, any session
    first_path_by_hash: dict[str, str] = field(default_factory=dict)
    seen: dict[str, tuple[int, int]] = field(default_factory=dict)  # path -> (size, mtime_ns) this session
    files_landed: int = 0
    duplicates: int = 0


@dataclass
class WatchResult:
    run_id: str
    counts: RunCounts
    files_landed: int
    duplicates: int
    validation_rows: list[dict]
    reason: str


def scan_drop_folder(folder: Path) -> list[tuple[str, tuple[int, int]]]:
    """Complete files in the drop folder (recursive), with a (size, mtime) signature; temp names are skipped."""
    return [(path, (st.st_size, st.st_mtime_ns) if st else (-1, -1)) for path, st in walk_input_folder(folder)]


def classify_new_files(candidates: list[tuple[str, tuple[int, int]]], source: str,
                       state: WatchState) -> tuple[list[tuple[str, str]], list[dict]]:
    """Splits files not yet decided into (files to land in arrival order, ledger entries incl. duplicates)."""
    to_land: list[tuple[str, str]] = []
    ledger: list[dict] = []
    for path, signature in candidates:
        if state.seen.get(path) == signature:
            continue
        redelivered = path in state.seen  # the same name again in this session
        state.seen[path] = signature
        entry = file_ledger_entry(path, source)
        digest = entry["content_sha256"]
        if (path, digest) in state.known and not redelivered:
            continue  # in the ledger before a restart: nothing to do, nothing to record
        if digest is None:  # vanished or unreadable: the reader records the dead letter
            to_land.append((path, source))
            ledger.append(entry)
            continue
        first = state.first_path_by_hash.get(digest)
        if first is not None:
            ledger.append(dict(entry, status="duplicate", duplicate_of=first))
            continue
        state.first_path_by_hash[digest] = path
        to_land.append((path, source))
        ledger.append(entry)
    # Ingestion order within one poll is arrival order, so that the later delivery of a Patient wins.
    arrival = {e["input_file"]: e["arrived_at"] or dt.datetime.max.replace(tzinfo=dt.timezone.utc) for e in ledger}
    to_land.sort(key=lambda item: (arrival[item[0]], item[0]))
    return to_land, ledger


def _load_state(warehouse: str, source: str) -> WatchState:
    from pipelines.warehouse import legacy as wh

    state = WatchState()
    with wh.connect(warehouse) as con:
        wh.ensure_tables(con)
        for path, digest, status in con.execute(
                f"SELECT input_file, content_sha256, status FROM {LEDGER_TABLE} WHERE source = ? ORDER BY landed_at",
                [source]).fetchall():
            state.known.add((path, digest))
            if status == "landed":
                state.first_path_by_hash.setdefault(digest, path)
    return state


class _StopSignal:
    """SIGTERM or a first Ctrl-C asks for a clean stop after the current landing; a second Ctrl-C interrupts."""

    def __init__(self):
        self.event = threading.Event()
        self.reason = ""
        self._previous = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, _frame):
        if self.event.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.reason = signal.Signals(signum).name
        self.event.set()

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def watch(input_dir: str, opts: LandingOptions, source: str | None = None, poll_interval: float = 1.0,
          stop_after: float | None = None, window_seconds: float = 60.0) -> WatchResult:
    """Polls `input_dir` and lands new files until stopped (signal) or `stop_after` seconds have passed."""
    from pipelines.warehouse import legacy as wh

    folder = Path(input_dir)
    if not folder.is_dir():
        raise UsageError(f"input {input_dir} is not a directory")
    source = source or folder.resolve().name
    beam_args = list(opts.beam_args)
    runner = ensure_runner(beam_args)
    landing_opts = replace(opts, beam_args=tuple(beam_args), validation=None)  # validated per window instead
    started_at = dt.datetime.now(dt.timezone.utc)
    run_id = new_run_id(started_at)
    with wh.connect(opts.warehouse) as con:
        wh.start_run(con, run_id, "watch", [source], [str(folder.resolve())], runner, started_at)
    state = _load_state(opts.warehouse, source)
    counts = RunCounts()
    validation_rows: list[dict] = []
    window_start = started_at
    deadline = time.monotonic() + stop_after if stop_after is not None else None
    log.info("watching %s (source %s) every %.1f s; %d files already in the ledger", folder, source, poll_interval,
             len(state.known))
    with _StopSignal() as stop:
        try:
            while True:
                _poll_once(folder, source, state, run_id, landing_opts, counts)
                now = dt.datetime.now(dt.timezone.utc)
                if opts.validation and (now - window_start).total_seconds() >= window_seconds:
                    validation_rows += _validate_window(opts, run_id, source, window_start, now)
                    window_start = now
                if stop.event.is_set() or (deadline is not None and time.monotonic() >= deadline):
                    break
                wait = poll_interval if deadline is None else min(poll_interval, max(0.0, deadline - time.monotonic()))
                stop.event.wait(wait)
        except BaseException as err:
            finish(opts.warehouse, run_id, "failed", counts, dt.datetime.now(dt.timezone.utc),
                   f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}", quiet=True)
            raise
    ended_at = dt.datetime.now(dt.timezone.utc)
    if opts.validation:
        validation_rows += _validate_window(opts, run_id, source, window_start, ended_at)
    reason = stop.reason or "stop-after"
    finish(opts.warehouse, run_id, "stopped", counts, ended_at, f"stopped by {reason}")
    log.info("stopped (%s): %d files landed, %d duplicate deliveries, %d patients", reason, state.files_landed,
             state.duplicates, counts.patients_landed)
    return WatchResult(run_id, counts, state.files_landed, state.duplicates, validation_rows, reason)


def _poll_once(folder: Path, source: str, state: WatchState, run_id: str, opts: LandingOptions,
               counts: RunCounts) -> None:
    to_land, ledger = classify_new_files(scan_drop_folder(folder), source, state)
    if not ledger:
        return
    ingested_at = dt.datetime.now(dt.timezone.utc)
    try:
        land_files(to_land, run_id, ingested_at, opts, counts, ledger)
    except UsageError as err:
        # The warehouse is busy (a reader holds it open) or unwritable: nothing of these files landed (one
        # transaction), so forget them and try again at the next poll.
        log.warning("could not land %d files, retrying at the next poll: %s", len(ledger), err)
        for entry in ledger:
            state.seen.pop(entry["input_file"], None)
            if entry["status"] == "landed":
                state.first_path_by_hash.pop(entry["content_sha256"], None)
        return
    for entry in ledger:
        name = os.path.basename(entry["input_file"])
        state.known.add((entry["input_file"], entry["content_sha256"]))
        if entry["status"] == "duplicate":
            state.duplicates += 1
            log.info("duplicate delivery %s: same content as %s, nothing landed", name,
                     os.path.basename(entry["duplicate_of"]))
        else:
            state.files_landed += 1
    finish(opts.warehouse, run_id, "running", counts, dt.datetime.now(dt.timezone.utc), quiet=True)
    log.info("landed %d files (%d duplicates); totals: %d files, %d patients, %d rejected",
             len(to_land), len(ledger) - len(to_land), state.files_landed, counts.patients_landed, counts.rejected)


def _validate_window(opts: LandingOptions, run_id: str, source: str, start: dt.datetime,
                     end: dt.datetime) -> list[dict]:
    """Runs the suites on the patients this watcher landed in [start, end) and stores the results."""
    from pipelines.warehouse import legacy as wh
    from pipelines.validation import shared_validator

    with wh.connect(opts.warehouse) as con:
        frame = con.execute("SELECT * FROM patient_demographics WHERE run_id = ? AND ingested_at >= ? "
                            "AND ingested_at < ? ORDER BY patient_id", [run_id, start, end]).fetchdf()
    if frame.empty:
        return []
    rows = shared_validator(opts.validation).validate(frame, scope="window", source=source, run_id=run_id,
                                                      window_start=start, window_end=end)
    store_validation(opts.warehouse, rows)
    return rows
