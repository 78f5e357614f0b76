"""Validation speed and memory on a million patients: this checkout against another commit (e.g. the pandas path).

    PYTHONPATH=. python benchmarks/bench_validation.py --rows 1000000 --repeat 3 --baseline 8b2084a

Builds two warehouses from the sample feed landed once and its rows repeated (new patient ids) up to `--rows`:
one source of `--rows` patients, and four sources sharing them, each landed as a block as landings append. Then,
each in a fresh process (Great Expectations import and suite build excluded from the time, included in the memory):
- landing: `validate_landed_batch`, what a run that landed `--rows` patients of one source pays;
- validate: `validate_warehouse` on the four sources, what `demographics validate` pays (each source, then all).
`--baseline REF` runs the same in the code of that commit, extracted with `git archive` into a temporary folder.
Reports the median wall time, CPU time and peak RSS of `--repeat` runs, and ratios. Not a test: the machine is
shared and noisy; record the results in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCENARIOS = {
    "landing": ("one_source.duckdb", "validate_landed_batch"),
    "validate": ("four_sources.duckdb", "validate_warehouse"),
}


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: Python, pandas and DuckDB alike). Not ru_maxrss, which Linux
    carries over from the parent across fork and exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def measure(warehouse: str, function: str) -> dict[str, float]:
    """In this process: builds the Validator, then times one validation of the warehouse."""
    import time

    import duckdb

    from pipelines import validation

    validation.shared_validator(validation.ValidationConfig())
    built_rss = peak_rss_mb()
    with duckdb.connect(warehouse) as con:
        con.execute("SET enable_progress_bar = false")
        if function == "validate_landed_batch":  # what the commit leaves: every patient of the batch
            con.execute("CREATE TEMP TABLE _batch_latest AS SELECT source, patient_id FROM patient_demographics")
        wall, cpu = time.perf_counter(), time.process_time()
        rows = getattr(validation, function)(con, "bench")
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {
        "seconds": wall,
        "cpu_seconds": cpu,
        "peak_rss_mb": peak_rss_mb(),
        "rss_before_mb": built_rss,
        "results": len(rows),
        "failed": sum(not r["success"] for r in rows),
    }


def build(folder: Path, rows: int) -> None:
    """The two warehouses of SCENARIOS in `folder`: the sample feed landed, its rows repeated to `rows`."""
    import duckdb

    from pipelines.samples import generate

    generate(folder / "samples", scale=4)
    seed = folder / "seed.duckdb"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pipelines.cli",
            "run",
            "--input",
            str(folder / "samples"),
            "--warehouse",
            str(seed),
            "--parquet-dir",
            str(folder / "seed_parquet"),
            "--no-validation",
            "--log-level",
            "WARNING",
        ],
        check=True,
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    for name, sources in (("one_source.duckdb", 1), ("four_sources.duckdb", 4)):
        with duckdb.connect(str(folder / name)) as con:
            con.execute("SET enable_progress_bar = false")
            con.execute(f"ATTACH '{seed}' AS seed (READ_ONLY)")
            con.execute("CREATE TABLE patient_demographics AS FROM seed.patient_demographics LIMIT 0")
            (per_copy,) = con.execute("SELECT count(*) FROM seed.patient_demographics").fetchone()
            copies = -(-rows // per_copy)
            for s in range(sources):  # a block per source, as landings append them
                con.execute(f"""
                    INSERT INTO patient_demographics
                    SELECT p.* REPLACE ('feed_{s}' AS source, p.patient_id || '-' || i AS patient_id,
                                        md5(p.record_hash || i) AS record_hash)
                    FROM seed.patient_demographics p, range({s}, {copies}, {sources}) AS r(i)""")
            con.execute(f"DELETE FROM patient_demographics WHERE rowid >= {rows}")
            con.execute("DETACH seed")


def code_of(ref: str, folder: Path) -> Path:
    """The pipelines package and suites of commit `ref`, extracted (nothing in the repository changes)."""
    folder.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", ref, "pipelines", "expectations", "schemas", "setup.py"],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def run_child(code: Path, warehouse: Path, function: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--measure", str(warehouse), function],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(code), "GX_ANALYTICS_ENABLED": "false"},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--baseline", metavar="REF", help="also measure the code of this commit")
    parser.add_argument("--measure", nargs=2, metavar=("WAREHOUSE", "FUNCTION"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(*args.measure)))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        build(folder, args.rows)
        codes = {"this checkout": REPO}
        if args.baseline:
            codes[args.baseline] = code_of(args.baseline, folder / "baseline")
        head = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        print(
            f"{args.rows} rows; this checkout at {head}; {os.cpu_count()} cores, load average "
            f"{os.getloadavg()[0]:.1f} at the start"
        )
        print(
            f"{'scenario':9} {'code':14} {'median s':>9} {'cpu s':>7} {'peak RSS MB':>12} {'RSS before MB':>14} "
            f"{'ratio s':>8} {'ratio RSS':>9}"
        )
        for scenario, (warehouse, function) in SCENARIOS.items():
            first = None
            for name, code in codes.items():
                runs = [run_child(code, folder / warehouse, function) for _ in range(args.repeat)]
                median = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
                first = first or median
                print(
                    f"{scenario:9} {name[:14]:14} {median['seconds']:9.2f} {median['cpu_seconds']:7.2f} "
                    f"{median['peak_rss_mb']:12.0f} {median['rss_before_mb']:14.0f} "
                    f"{median['seconds'] / first['seconds']:8.2f} "
                    f"{median['peak_rss_mb'] / first['peak_rss_mb']:9.2f}",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
