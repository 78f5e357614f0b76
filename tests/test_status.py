"""`demographics status` on a real warehouse: runs, files, waiting files, lag, rejects, completeness."""

import json

import pytest

from tests.conftest import query


@pytest.mark.slow
def test_status_shows_runs_files_waiting_rejects_and_completeness(tmp_path, run_cli):
    feed = tmp_path / "feed"
    feed.mkdir()
    (feed / "p.ndjson").write_text(json.dumps({"resourceType": "Patient", "id": "a"}) + "\n" + "{broken\n")
    warehouse = tmp_path / "w.duckdb"
    assert run_cli("run", "--input", feed, "--warehouse", warehouse)[0] == 0
    (feed / "later.json").write_text("{}")  # arrived after the run: waiting
    (feed / "later.json.part").write_text("{}")  # still being written: not a file yet
    code, out, _ = run_cli("status", "--warehouse", warehouse, "--input", feed)
    assert code == 0
    run_id = query(warehouse, "SELECT run_id FROM runs")[0][0]
    assert run_id in out
    sections = out.split("\n\n")
    assert any(s.startswith("files:") and "feed" in s and "lag_p95_s" in s for s in sections)
    waiting = next(s for s in sections if s.startswith("files waiting:"))
    assert waiting.splitlines()[-1].split()[-1] == "1"
    assert "invalid_json" in next(s for s in sections if s.startswith("rejects by reason:"))
    completeness = next(s for s in sections if s.startswith("completeness now:"))
    assert completeness.splitlines()[-1].split()[:3] == ["feed", "1", "0.0"]
    assert "completeness over time:" in out


def test_status_of_a_missing_warehouse_is_a_one_line_error(tmp_path, run_cli):
    code, _, err = run_cli("status", "--warehouse", tmp_path / "none.duckdb")
    assert code == 2 and "does not exist" in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_status_counts_unmapped_text_declined_and_unknown_apart(tmp_path, run_cli):
    from pipelines.samples import (
        declined_extensions,
        text_only_extensions,
        unknown_extensions,
        us_core_race_extensions,
    )

    feed = tmp_path / "plan"
    feed.mkdir()
    white = us_core_race_extensions(["2106-3"], [], ["2186-5"], "White", "Not Hispanic or Latino")
    answers = [white, white, text_only_extensions("Moroccan"), declined_extensions(), unknown_extensions()]
    (feed / "p.ndjson").write_text(
        "".join(
            json.dumps({"resourceType": "Patient", "id": f"p{i}", "extension": extensions}) + "\n"
            for i, extensions in enumerate(answers)
        )
    )
    warehouse = tmp_path / "w.duckdb"
    assert run_cli("run", "--input", feed, "--warehouse", warehouse)[0] == 0
    assert query(
        warehouse,
        "SELECT count(*) FILTER (unmapped_text_only AND race_ethnicity_status = 'reported') FROM patient_demographics",
    ) == [(1,)]
    code, out, _ = run_cli("status", "--warehouse", warehouse)
    assert code == 0
    now = next(s for s in out.split("\n\n") if s.startswith("completeness now:")).splitlines()
    assert now[1].split() == ["source", "patients", "reported_pct", "unmapped_text", "declined", "unknown"]
    assert now[2].split() == ["plan", "5", "40.0", "1", "1", "1"]  # the write-in is reported, not counted
    over_time = next(s for s in out.split("\n\n") if s.startswith("completeness over time:")).splitlines()
    assert over_time[2].split()[-2:] == ["40.0", "False"]  # the validated share agrees
