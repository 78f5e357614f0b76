"""The `runs` table: one row per run, its counts (the reconciliation of contract section 2) and its end."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import duckdb

from pipelines.tables import RUNS

COUNT_FIELDS = ("records_in", "patients_landed", "rejected", "other_resources", "deletions")


@dataclass
class RunCounts:
    """records_in = patients_landed + rejected + other_resources + deletions, and what landing did with them."""

    files_read: int = 0
    records_in: int = 0
    patients_landed: int = 0  # Patient records read: every version, also those that changed nothing
    rejected: int = 0
    other_resources: int = 0
    deletions: int = 0
    patients_inserted: int = 0
    patients_updated: int = 0
    patients_unchanged: int = 0
    patients_deleted: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    other_resources_by_type: dict[str, int] = field(default_factory=dict)
    patients_by_category: dict[str, int] = field(default_factory=dict)  # omb2024_category of each Patient read

    def add_task_stats(self, stats: dict[str, Any]) -> None:
        """Adds one read task's counts (a file, or one range of a large file)."""
        for name in COUNT_FIELDS:
            setattr(self, name, getattr(self, name) + int(stats.get(name) or 0))
        for attr, key in (
            ("rejected_by_reason", "rejected_by_reason"),
            ("other_resources_by_type", "other_by_type"),
            ("patients_by_category", "patients_by_category"),
        ):
            _add(getattr(self, attr), stats.get(key) or {})

    def merge(self, other: RunCounts) -> None:
        """Adds another batch's counts (watch lands many batches in one run)."""
        for f in fields(self):
            value = getattr(other, f.name)
            if isinstance(value, dict):
                _add(getattr(self, f.name), value)
            else:
                setattr(self, f.name, getattr(self, f.name) + value)

    @property
    def reconciles(self) -> bool:
        return self.records_in == self.patients_landed + self.rejected + self.other_resources + self.deletions


def _add(target: dict[str, int], more: dict[str, Any]) -> None:
    for key, value in more.items():
        target[key] = target.get(key, 0) + int(value)


def start_values(
    run_id: str, mode: str, sources: Sequence[str], inputs: Sequence[str], runner: str, started_at: dt.datetime
) -> dict[str, Any]:
    """The columns of a run's row when it starts (every sink writes the same)."""
    return {
        "run_id": run_id,
        "mode": mode,
        "status": "running",
        "sources": list(sources),
        "inputs": list(inputs),
        "runner": runner,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started_at": started_at,
    }


def end_values(status: str, counts: RunCounts, ended_at: dt.datetime | None, message: str | None) -> dict[str, Any]:
    """The columns a run's end (or a watch's progress) sets: status, counts of section 2 and why it ended."""
    scalars = {f.name: getattr(counts, f.name) for f in fields(RunCounts) if not f.type.startswith("dict")}
    return {
        "status": status,
        "ended_at": ended_at,
        **scalars,
        "rejected_by_reason": json.dumps(counts.rejected_by_reason, sort_keys=True),
        "other_resources_by_type": json.dumps(counts.other_resources_by_type, sort_keys=True),
        "patients_by_category": json.dumps(counts.patients_by_category, sort_keys=True),
        "message": message,
    }


def start_run(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    mode: str,
    sources: Sequence[str],
    inputs: Sequence[str],
    runner: str,
    started_at: dt.datetime,
) -> None:
    values = start_values(run_id, mode, sources, inputs, runner, started_at)
    con.execute(
        f"INSERT INTO {RUNS} ({', '.join(values)}) VALUES ({', '.join('?' for _ in values)})", list(values.values())
    )


def finish_run(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    status: str,
    counts: RunCounts,
    ended_at: dt.datetime | None,
    message: str | None = None,
) -> None:
    """Records a run's counts and status (`running` between the landings of a watch)."""
    values = end_values(status, counts, ended_at, message)
    con.execute(
        f"UPDATE {RUNS} SET {', '.join(f'{name} = ?' for name in values)} WHERE run_id = ?", [*values.values(), run_id]
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def mark_dead_runs_interrupted(con: duckdb.DuckDBPyConnection, now: dt.datetime) -> int:
    """Runs left `running` by a process of this machine that no longer exists (SIGKILL, power loss) become
    `interrupted`; returns how many."""
    host = socket.gethostname()
    dead = [
        run_id
        for run_id, pid in con.execute(
            f"SELECT run_id, pid FROM {RUNS} WHERE status = 'running' AND host = ?", [host]
        ).fetchall()
        if pid is None or (pid != os.getpid() and not _alive(pid))
    ]
    for run_id in dead:
        con.execute(
            f"UPDATE {RUNS} SET status = 'interrupted', ended_at = ?, "
            "message = 'the process ended without recording its end (killed?)' WHERE run_id = ?",
            [now, run_id],
        )
    return len(dead)
