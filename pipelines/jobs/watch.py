"""`demographics watch`: land files as a QHIO feed drops them into a folder, each exactly once, live.

Each poll lands the files that appeared since the last one with the same landing sequence as `run`, and their
ledger rows (`ingested_files`) in the same transaction, so that a watcher killed in the middle of a file lands
nothing of it and lands it after a restart. A file is known by the content actually read: an identical file
delivered again is recorded as a duplicate and lands nothing; a changed file under the same name is new data; a
file that vanished before it could be read is recorded as unreadable and lands when it comes back.

Why a poll loop rather than a Beam streaming source: on the local runners `fileio.MatchContinuously` misses
files and `PeriodicImpulse` busy-waits a core and holds windowed output until it stops
(../shared/notes/toolchain.md section 2). On Dataflow the same read transforms run behind Pub/Sub notifications.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from pipelines.beam.read import InputFile
from pipelines.errors import UsageError, WarehouseBusy
from pipelines.jobs.inputs import ListedInputs, list_inputs
from pipelines.jobs.landing import LandingOptions, Run, ensure_runner, land_files, recorded_run
from pipelines.tables import LEDGER

log = logging.getLogger(__name__)

# Folder names that say nothing about the feed: two exchanges dropping into folders of the same generic name must
# not merge into one source (contract section 1).
GENERIC_FOLDER_NAMES = frozenset(
    {
        "in",
        "input",
        "inputs",
        "inbox",
        "incoming",
        "drop",
        "drops",
        "dropbox",
        "data",
        "tmp",
        "temp",
        "feed",
        "feeds",
        "upload",
        "uploads",
        "files",
        "export",
        "exports",
        "import",
        "imports",
        "landing",
        "new",
        "out",
        "output",
        "staging",
        "spool",
        "queue",
        "sftp",
        "ftp",
        "share",
        "shared",
        "download",
        "downloads",
        "raw",
        "source",
    }
)


@dataclass
class WatchState:
    """What this watcher knows: files already decided, by (size, mtime) signature."""

    landed: dict[str, tuple[int, int]] = field(default_factory=dict)  # path -> signature, landed or duplicate
    known_before: set[tuple] = field(default_factory=set)  # (input_file, size, arrival) in the ledger at start
    reported: set[tuple[str, str]] = field(default_factory=set)  # listing dead letters already recorded: (path, reason)
    files_landed: int = 0
    duplicates: int = 0


def default_source(folder: Path) -> str:
    """The folder's name, refused when it is generic."""
    name = folder.resolve().name
    if name.casefold() in GENERIC_FOLDER_NAMES:
        raise UsageError(
            f"the folder name {name!r} says nothing about the feed: give --source NAME (two feeds "
            "dropping into folders of the same generic name must not merge into one source)"
        )
    return name


def _signature(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


def _arrival(path: str) -> dt.datetime | None:
    """A file's arrival: its inode change time (the rename into the drop folder)."""
    try:
        return dt.datetime.fromtimestamp(os.stat(path).st_ctime, dt.UTC)
    except OSError:
        return None


def load_state(opts: LandingOptions, source: str) -> WatchState:
    """Files already landed before a restart, recognized by path, size and arrival (no need to read them again)."""
    with opts.sink().connect() as con:
        return WatchState(
            known_before=set(
                con.execute(
                    f"SELECT input_file, size_bytes, arrived_at FROM {LEDGER} "
                    "WHERE source = ? AND status <> 'unreadable'",
                    [source],
                ).fetchall()
            )
        )


def _already_landed(state: WatchState, file: InputFile) -> bool:
    signature = _signature(file.path)
    return signature is not None and (file.display, signature[0], _arrival(file.path)) in state.known_before


def new_files(listed: ListedInputs, state: WatchState) -> list[InputFile]:
    """Files not decided yet, in arrival order (so that the later delivery of a Patient wins a tie)."""
    fresh = [
        f for f in listed.files if state.landed.get(f.path) != _signature(f.path) and not _already_landed(state, f)
    ]
    fresh.sort(key=lambda f: (_arrival(f.path) or dt.datetime.max.replace(tzinfo=dt.UTC), f.path))
    return [replace(f, order=i, arrived_at=_arrival(f.path)) for i, f in enumerate(fresh)]


@contextmanager
def exclusive(folder: Path, warehouse: str) -> Iterator[None]:
    """Refuses a second watch on the same folder or warehouse (advisory locks released when the process ends)."""
    lock_file = f"{warehouse}.watch.lock"
    with ExitStack() as stack:
        for target, what in ((str(folder), f"folder {folder}"), (lock_file, f"warehouse {warehouse}")):
            fd = (
                os.open(target, os.O_RDONLY)
                if target == str(folder)
                else os.open(target, os.O_RDWR | os.O_CREAT, 0o600)
            )
            stack.callback(os.close, fd)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise UsageError(f"another `demographics watch` is already watching the {what}") from None
        yield


class StopSignal:
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


@dataclass
class WatchResult:
    run: Run
    files_landed: int
    duplicates: int
    reason: str


def watch(
    input_dir: str,
    opts: LandingOptions,
    source: str | None = None,
    poll_interval: float = 1.0,
    stop_after: float | None = None,
    window_seconds: float = 60.0,
) -> WatchResult:
    """Polls `input_dir` and lands new files until stopped (signal) or `stop_after` seconds have passed."""
    folder = Path(input_dir)
    if not folder.is_dir():
        raise UsageError(f"input {input_dir} is not a directory")
    source = source or default_source(folder)
    beam_args = list(opts.beam_args)
    runner = ensure_runner(beam_args)
    landing_opts = replace(opts, beam_args=tuple(beam_args), validation=None)  # validated per window instead
    deadline = time.monotonic() + stop_after if stop_after is not None else None
    with (
        exclusive(folder, opts.warehouse),
        StopSignal() as stop,
        recorded_run(opts.sink(), "watch", [source], [str(folder.resolve())], runner) as run,
    ):
        state = load_state(opts, source)
        window_start = run.started_at
        log.info("watching %s (source %s) every %.1f s", folder, source, poll_interval)
        while True:
            try:
                _poll_once(folder, source, state, run, landing_opts)
            except Exception:
                if not stop.event.is_set():
                    raise
                # Ctrl-C in a terminal also reaches Beam's worker processes: that landing failed as a whole (one
                # transaction) and its files land at the next start.
                log.warning("stopped during a landing: its files land at the next start")
            now = dt.datetime.now(dt.UTC)
            if opts.validation and (now - window_start).total_seconds() >= window_seconds:
                window_start = _validate_window(opts, run, source, window_start, now)
            if stop.event.is_set() or (deadline is not None and time.monotonic() >= deadline):
                break
            wait = poll_interval if deadline is None else min(poll_interval, max(0.0, deadline - time.monotonic()))
            stop.event.wait(wait)
        if opts.validation:
            _validate_window(opts, run, source, window_start, dt.datetime.now(dt.UTC))
        reason = stop.reason or "stop-after"
        run.status = "stopped"
        run.messages.append(f"stopped by {reason}")
    log.info(
        "stopped (%s): %d files landed, %d duplicate deliveries, %d Patient records",
        reason,
        state.files_landed,
        state.duplicates,
        run.counts.patients_landed,
    )
    return WatchResult(run, state.files_landed, state.duplicates, reason)


def _poll_once(folder: Path, source: str, state: WatchState, run: Run, opts: LandingOptions) -> None:
    listed = list_inputs([str(folder)], source)
    files = new_files(listed, state)
    rejects = [r for r in listed.rejections if (r[1], r[2].reason) not in state.reported]
    if not files and not rejects:
        return
    signatures = {f.path: _signature(f.path) for f in files}
    ingested_at = dt.datetime.now(dt.UTC)
    try:
        landed = land_files(
            files, run, opts, ingested_at, duplicates_land_nothing=True, listing_rejects=rejects, interruptible=False
        )
    except WarehouseBusy as err:
        # A reader holds the warehouse: nothing of these files landed (one transaction); retry at the next poll.
        log.warning("could not land %d files, retrying at the next poll: %s", len(files), err)
        return
    state.reported |= {(r[1], r[2].reason) for r in rejects}
    by_path = {f.path: f for f in landed.files}
    for path, signature in signatures.items():
        entry = by_path.get(path)
        if entry is None or entry.status == "unreadable" or signature is None:
            continue  # vanished or unreadable: it lands when it comes back
        state.landed[path] = signature
        if entry.status == "duplicate":
            state.duplicates += 1
            log.info(
                "duplicate delivery %s: same content as %s, nothing landed",
                os.path.basename(entry.input_file),
                os.path.basename(entry.duplicate_of or ""),
            )
        else:
            state.files_landed += 1
    opts.sink().finish_run(run.run_id, "running", run.counts, None)
    log.info(
        "landed %d files; totals: %d files, %d Patient records, %d rejected",
        len(files),
        state.files_landed,
        run.counts.patients_landed,
        run.counts.rejected,
    )


def _validate_window(opts: LandingOptions, run: Run, source: str, start: dt.datetime, end: dt.datetime) -> dt.datetime:
    """Runs the suites on the patients this watcher landed in [start, end), stores the results; returns `end` (the
    next window's start), or `start` when the warehouse is busy (the window is validated at the next try)."""
    from pipelines.validation import validate_window

    try:
        with opts.sink().connect() as con:
            run.validation_rows += validate_window(con, run.run_id, source, start, end, opts.validation)
    except WarehouseBusy as err:
        log.warning("could not validate the window, retrying later: %s", err)
        return start
    return end
