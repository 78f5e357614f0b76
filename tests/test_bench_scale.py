"""benchmarks/bench_scale.py works end to end on a tiny export, and a failing variant does not stop the others.

Nothing here asserts on a timing: the figures are for benchmarks/RESULTS.md, on a machine that is quiet enough.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from benchmarks import bench_scale
from benchmarks.measure import run_measured, tree_rss

PATIENTS = 300


def table_row(section: str, variant: str) -> list[str]:
    """The cells of the results table's row for `variant`."""
    line = next(line for line in section.splitlines() if re.match(rf"\| [\d,]+ \| {re.escape(variant)} \|", line))
    return [cell.strip() for cell in line.strip("|").split("|")]


def run_harness(tmp_path: Path, *variants: str) -> str:
    results = tmp_path / "RESULTS.md"
    bench_scale.main(
        [
            "--patients",
            str(PATIENTS),
            "--repeat",
            "1",
            "--workdir",
            str(tmp_path / "work"),
            "--results",
            str(results),
            "--label",
            "test",
            "--variants",
            *variants,
        ]
    )
    return results.read_text()


@pytest.mark.slow
def test_every_kind_of_variant_measures_the_same_export(tmp_path):
    section = run_harness(tmp_path, "orjson", "duckdb-sql", "run", "watch")

    assert "## Scale benchmark" in section and ": test (commit " in section
    orjson, duckdb_sql, run, watch = (table_row(section, name) for name in ("orjson", "duckdb-sql", "run", "watch"))
    for row in (orjson, duckdb_sql, run):
        assert row[0] == f"{PATIENTS}" and row[2] == "1"
        assert re.fullmatch(r"[\d,]+", row[5]), row  # patients/s
        assert row[8].endswith("GiB"), row  # peak RSS of the tree
    assert orjson[7] == "1.00"
    assert "ombCategory codings" in duckdb_sql[10]
    assert "failed" not in run[10]
    assert watch[10].startswith("5/5 files landed"), watch
    assert "| default `run` >= 0.5x the one-core orjson parse, same file |" in section
    assert not (tmp_path / "work" / f"export-{PATIENTS}").exists()  # removed without --keep


def test_a_variant_that_cannot_run_is_reported_and_the_others_go_on(tmp_path):
    section = run_harness(tmp_path, "orjson", "watch")

    assert "**failed**: skipped: needs the `run` variant's warehouse" in table_row(section, "watch")[10]
    assert re.fullmatch(r"[\d,]+", table_row(section, "orjson")[5])


@pytest.mark.slow
def test_a_process_past_its_timeout_is_killed_with_its_children(tmp_path):
    child_then_sleep = "import subprocess, time; subprocess.Popen(['sleep', '60']); time.sleep(60)"
    measured = run_measured([sys.executable, "-c", child_then_sleep], tmp_path, timeout=1, max_rss_bytes=1 << 40)

    assert not measured.ok and measured.failure.startswith("timeout")
    assert measured.wall_seconds < 30


def test_a_failing_process_gives_its_exit_code_and_stderr_tail(tmp_path):
    failing = "import sys; print('line 1', file=sys.stderr); print('the cause', file=sys.stderr); sys.exit(3)"
    measured = run_measured([sys.executable, "-c", failing], tmp_path, timeout=60, max_rss_bytes=1 << 40)

    assert measured.failure == "exit 3"
    assert measured.stderr_tail.splitlines()[-1] == "the cause"


def test_the_tree_sums_a_process_and_all_its_descendants_only():
    table = {10: (1, 100), 11: (10, 20), 12: (11, 3), 13: (1, 5000)}  # pid -> (parent, rss)

    assert tree_rss(10, table) == (123, 100)
    assert tree_rss(99, table) == (0, 0)
