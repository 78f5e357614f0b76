"""`demographics status` on a real warehouse: runs, files, waiting files, lag, rejects, completeness."""
import json

from tests.conftest import query


def test_status_shows_runs_files_waiting_rejects_and_completeness(tmp_path, run_cli):
    feed = tmp_path / "feed"
    feed.mkdir()
    (feed / "p.ndjson").write_text(
        json.dumps({"resourceType": "Patient", "id": "a"}) + "\n" + "{broken\n")
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
