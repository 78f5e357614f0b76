"""Batch throughput: `demographics run` on a generated feed, variants compared as ratios within one run.

    python benchmarks/bench_batch.py --scale 40 --repeat 3

Each variant runs as its own process (start-up included, as a user sees it) into a fresh warehouse; the
median wall time of `--repeat` runs is reported with patients/s and the ratio to the first variant.
Results are recorded in benchmarks/RESULTS.md. Not a test: these machines are shared and noisy.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VARIANTS = {
    "default (FnApiRunner, strict FHIR)": [],
    "--no-strict-fhir": ["--no-strict-fhir"],
    "multi_processing, 2 workers": ["--direct_running_mode=multi_processing", "--direct_num_workers=2"],
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=40, help="sample feed multiplier (1 = ~280 patients)")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    from pipelines.samples import generate

    with tempfile.TemporaryDirectory() as tmp:
        feed = Path(tmp) / "feed"
        generate(feed, scale=args.scale)
        results = {}
        for name, extra in VARIANTS.items():
            times = []
            for i in range(args.repeat):
                warehouse = Path(tmp) / f"w-{len(results)}-{i}.duckdb"
                start = time.perf_counter()
                subprocess.run([sys.executable, "-m", "pipelines.cli", "run", "--input", str(feed), "--warehouse",
                                str(warehouse), "--log-level", "WARNING", *extra], check=True, capture_output=True)
                times.append(time.perf_counter() - start)
            import duckdb

            con = duckdb.connect(str(warehouse), read_only=True)
            patients, = con.execute("SELECT patients_landed FROM runs").fetchone()
            con.close()
            results[name] = (statistics.median(times), patients)
        base = next(iter(results.values()))[0]
        print(f"{'variant':40} {'median s':>9} {'patients':>9} {'patients/s':>11} {'ratio':>6}")
        for name, (seconds, patients) in results.items():
            print(f"{name:40} {seconds:9.2f} {patients:9d} {patients / seconds:11.0f} {seconds / base:6.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
