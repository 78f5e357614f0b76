"""Watch latency: seconds from a file's rename into the drop folder to its landing (goal: p95 < 5 s, 1 s poll).

    python benchmarks/bench_watch_latency.py --files 30 --interval 1.5

Starts `demographics watch` as a user would, drops small NDJSON files one by one (written under a temp name,
then renamed), and reads each file's landing time from the ledger (`ingested_files.landed_at`). Results are
recorded in benchmarks/RESULTS.md. Not a test: these machines are shared and noisy.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=30)
    parser.add_argument("--patients", type=int, default=200, help="patients per file")
    parser.add_argument("--interval", type=float, default=1.5, help="seconds between drops")
    parser.add_argument("--poll-interval", type=float, default=1.0)
    args = parser.parse_args()
    import duckdb

    from pipelines.samples import make_patient

    rng = random.Random(1)
    with tempfile.TemporaryDirectory() as tmp:
        drop, warehouse = Path(tmp) / "drop", Path(tmp) / "w.duckdb"
        drop.mkdir()
        watcher = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "watch", "--input", str(drop),
                                    "--warehouse", str(warehouse), "--poll-interval", str(args.poll_interval),
                                    "--log-level", "WARNING"])
        dropped: dict[str, float] = {}
        try:
            time.sleep(3)  # start-up
            for i in range(args.files):
                data = "".join(json.dumps(make_patient(rng, f"f{i}-{j}", "2026-10-01T00:00:00Z")) + "\n"
                               for j in range(args.patients))
                tmp_path = drop / f".f{i}.part"
                tmp_path.write_text(data)
                os.rename(tmp_path, drop / f"f{i}.ndjson")
                dropped[str((drop / f"f{i}.ndjson").resolve())] = time.time()
                time.sleep(args.interval)
            time.sleep(10)
        finally:
            watcher.send_signal(signal.SIGTERM)
            watcher.wait(120)
        con = duckdb.connect(str(warehouse), read_only=True)
        landed = dict(con.execute("SELECT input_file, epoch(landed_at) FROM ingested_files").fetchall())
        con.close()
    lags = sorted(landed[path] - t for path, t in dropped.items() if path in landed)
    missing = len(dropped) - len(lags)
    p95 = lags[max(0, int(round(0.95 * len(lags))) - 1)] if lags else float("nan")
    print(f"files {len(dropped)}, landed {len(lags)}, missing {missing}; rename-to-landing seconds: "
          f"p50 {statistics.median(lags):.2f}, p95 {p95:.2f}, max {lags[-1]:.2f} "
          f"(poll {args.poll_interval} s, {args.patients} patients per file)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
