"""Watch latency: seconds from a file's rename into the drop folder to its landing (goal: p95 < 5 s, 1 s poll).

    python benchmarks/bench_watch_latency.py --files 30 --patients 200
    python benchmarks/bench_watch_latency.py --warehouse big.duckdb --source bench --files 5 --patients 100 --json

Starts `demographics watch` as a user would, and once it is watching drops small NDJSON files of new patients one
at a time (written under a temp name, then renamed), each after the previous one landed and `--interval` seconds
passed. Two latencies per file: `visible`, from the rename to the watcher's "landed" log line (written after the
DuckDB commit and the Parquet copy: the rows can be queried), and `ledger`, the file's `ingested_files.lag_seconds`
(rename to the start of the commit). With `--warehouse` the watcher lands into an existing warehouse (bench_scale.py
gives it one holding a whole export) under `--source`; without, into a fresh one. Not a test: these machines are
shared and noisy; results are recorded in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

LANDED_LINE = re.compile(rb"landed (\d+) files; totals")
READY_LINE = b"watching "
START_TIMEOUT = 300.0  # the watcher's imports and start-up, on a loaded machine
LANDING_TIMEOUT = 300.0


@dataclass
class Latencies:
    files: int
    landed: int = 0
    visible_seconds: list[float] = field(default_factory=list)
    ledger_seconds: list[float] = field(default_factory=list)


class WatcherLog:
    """The watcher's stderr, read as it grows: when did it start watching, how many files has it landed."""

    def __init__(self, path: Path):
        self.path = path

    def _text(self) -> bytes:
        return self.path.read_bytes() if self.path.exists() else b""

    def ready(self) -> bool:
        return READY_LINE in self._text()

    def files_landed(self) -> int:
        return sum(int(count) for count in LANDED_LINE.findall(self._text()))


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} took more than {timeout:.0f} s")
        time.sleep(0.05)


def write_small_file(drop: Path, index: int, patients: int, rng: random.Random) -> Path:
    """Writes `patients` new Patients under a temp name and renames the file into the drop folder."""
    from pipelines.samples import make_patient

    data = "".join(
        json.dumps(make_patient(rng, f"watch-bench-{index}-{j}", "2026-10-01T00:00:00Z")) + "\n"
        for j in range(patients)
    )
    part = drop / f".watch-bench-{index}.part"
    part.write_text(data)
    final = drop / f"watch-bench-{index}.ndjson"
    os.rename(part, final)
    return final


def drop_and_time(drop: Path, log: WatcherLog, args: argparse.Namespace) -> tuple[list[float], list[str]]:
    """Drops the files one by one; returns each file's rename-to-visible seconds and the file names."""
    rng, visible, names = random.Random(1), [], []
    for index in range(args.files):
        landed_before = log.files_landed()
        path = write_small_file(drop, index, args.patients, rng)
        renamed = time.monotonic()
        wait_until(lambda before=landed_before: log.files_landed() > before, LANDING_TIMEOUT, f"landing {path.name}")
        visible.append(time.monotonic() - renamed)
        names.append(path.name)
        time.sleep(args.interval)
    return visible, names


def ledger_lags(warehouse: Path, names: list[str]) -> list[float]:
    import duckdb

    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute("SELECT input_file, lag_seconds FROM ingested_files").fetchall()
    by_name = {os.path.basename(path): lag for path, lag in rows}
    return [by_name[name] for name in names if by_name.get(name) is not None]


def measure(args: argparse.Namespace, workdir: Path) -> Latencies:
    drop, log = workdir / "drop", WatcherLog(workdir / "watch.stderr")
    drop.mkdir()
    warehouse = args.warehouse or workdir / "warehouse.duckdb"
    command = [
        sys.executable,
        "-m",
        "pipelines.cli",
        "watch",
        "--input",
        str(drop),
        "--warehouse",
        str(warehouse),
        "--source",
        args.source,
        "--poll-interval",
        str(args.poll_interval),
    ]
    with open(log.path, "wb") as stderr:
        watcher = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)
    latencies = Latencies(args.files)
    try:
        wait_until(log.ready, START_TIMEOUT, "the watcher's start")
        latencies.visible_seconds, names = drop_and_time(drop, log, args)
    finally:
        watcher.send_signal(signal.SIGTERM)
        watcher.wait(LANDING_TIMEOUT)
    latencies.landed = len(latencies.visible_seconds)
    latencies.ledger_seconds = ledger_lags(warehouse, names)
    return latencies


def describe(latencies: Latencies, args: argparse.Namespace) -> str:
    visible, ledger = sorted(latencies.visible_seconds), sorted(latencies.ledger_seconds)
    p95 = visible[max(0, round(0.95 * len(visible)) - 1)]
    return (
        f"files {latencies.files}, landed {latencies.landed}; rename-to-visible seconds: "
        f"p50 {statistics.median(visible):.2f}, p95 {p95:.2f}, max {visible[-1]:.2f}; ledger lag p50 "
        f"{statistics.median(ledger):.2f} (poll {args.poll_interval} s, {args.patients} patients per file)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=30)
    parser.add_argument("--patients", type=int, default=200, help="patients per file")
    parser.add_argument("--interval", type=float, default=1.5, help="seconds between a landing and the next drop")
    parser.add_argument("--poll-interval", type=float, default=1.0)
    parser.add_argument("--warehouse", type=Path, help="an existing warehouse to land into (default: a fresh one)")
    parser.add_argument("--source", default="bench-watch", help="the feed's name (default bench-watch)")
    parser.add_argument("--json", action="store_true", help="print the latencies as one JSON object")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-watch-") as tmp:
        latencies = measure(args, Path(tmp))
    print(json.dumps(asdict(latencies)) if args.json else describe(latencies, args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
