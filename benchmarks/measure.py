"""Runs one command as its own process group and measures it: wall time, CPU time, peak RSS of the process tree.

Memory is read from /proc (Linux only; psutil is not one of the project's dependencies): every 100 ms the
resident set of the process and of all its descendants (Beam's multi_processing workers are separate
processes) is summed. Shared pages count once per process, so the tree sum is an upper bound. CPU time is the
process's and its reaped descendants' user + system time, from wait4: on a shared machine it varies less than
wall time.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SAMPLE_SECONDS = 0.1
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
TAIL_LINES = 15


@dataclass
class Measured:
    """What one process did: `stopped` says why the harness ended it (timeout, memory), None when it exited."""

    argv: list[str]
    returncode: int
    wall_seconds: float
    cpu_seconds: float
    peak_tree_bytes: int
    peak_main_bytes: int
    stdout: str
    stderr_tail: str
    stopped: str | None = None

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.stopped is None

    @property
    def failure(self) -> str:
        """One line for the results table, then the stderr tail for the report."""
        return self.stopped or f"exit {self.returncode}"


def process_table() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, resident bytes) for every process, from /proc/<pid>/stat."""
    table = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as stat:
                text = stat.read()
        except OSError:  # ended between the listing and the read
            continue
        fields = text[text.rindex(b")") + 2 :].split()  # the command name may hold spaces and parentheses
        table[int(entry.name)] = (int(fields[1]), int(fields[21]) * PAGE_BYTES)
    return table


def tree_rss(root: int, table: dict[int, tuple[int, int]]) -> tuple[int, int]:
    """(resident bytes of `root` and all its descendants, resident bytes of `root` alone)."""
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in table.items():
        children.setdefault(parent, []).append(pid)
    total, pending = 0, [root]
    while pending:
        pid = pending.pop()
        total += table.get(pid, (0, 0))[1]
        pending.extend(children.get(pid, ()))
    return total, table.get(root, (0, 0))[1]


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def _tail(path: Path) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-TAIL_LINES:])


def run_measured(
    argv: list[str], log_dir: Path, timeout: float, max_rss_bytes: int, env: dict[str, str] | None = None
) -> Measured:
    """Runs `argv` to its end, or kills its whole process group past `timeout` seconds or `max_rss_bytes` of tree
    RSS (a runaway variant must not take the shared machine down). stdout and stderr go to files in `log_dir`
    (pipes could fill up and stall the process)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    out_path, err_path = log_dir / "stdout.txt", log_dir / "stderr.txt"
    peak_tree = peak_main = 0
    stopped = None
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, env=env, start_new_session=True)
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            tree, main = tree_rss(proc.pid, process_table())
            peak_tree, peak_main = max(peak_tree, tree), max(peak_main, main)
            elapsed = time.perf_counter() - start
            if stopped is None and elapsed > timeout:
                stopped = f"timeout: still running after {timeout:.0f} s"
            elif stopped is None and tree > max_rss_bytes:
                stopped = f"killed: process tree RSS over {max_rss_bytes / (1 << 30):.1f} GiB"
            if stopped:
                _kill_group(proc.pid)
            time.sleep(SAMPLE_SECONDS)
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    _kill_group(proc.pid)  # workers left behind by a process that died
    return Measured(
        argv,
        proc.returncode,
        wall,
        usage.ru_utime + usage.ru_stime,
        peak_tree,
        peak_main,
        out_path.read_text(errors="replace"),
        _tail(err_path),
        stopped,
    )
