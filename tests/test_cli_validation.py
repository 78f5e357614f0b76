"""Validation as users see it: `run` validates its batch, `validate` checks the warehouse, exit codes, HTML."""

import json

import pytest

from tests.conftest import query


@pytest.mark.slow
def test_run_validates_its_batch_and_gating_is_opt_in(sample_feed, tmp_path, run_cli):
    warehouse = tmp_path / "w.duckdb"
    code, out, _ = run_cli("run", "--input", sample_feed, "--warehouse", warehouse, "--completeness-goal", "0.99")
    assert code == 0  # a failed expectation is reported, it does not fail the run by default
    assert "expectations FAILED" in out and "completeness" in out
    stored = query(warehouse, "SELECT DISTINCT scope, source FROM validation_results")
    assert stored == [("source", "samples")]
    landed = query(warehouse, "SELECT count(*) FROM patient_demographics")[0][0]
    assert landed == 276  # never blocks landing

    code, _, _ = run_cli(
        "run", "--input", sample_feed, "--warehouse", warehouse, "--completeness-goal", "0.99", "--fail-on-validation"
    )
    assert code == 1
    code, _, _ = run_cli("run", "--input", sample_feed, "--warehouse", warehouse, "--fail-on-validation")
    assert code == 0


@pytest.mark.slow
def test_validate_exit_codes_summary_and_offline_html(sample_feed, tmp_path, run_cli):
    warehouse = tmp_path / "w.duckdb"
    assert run_cli("run", "--input", sample_feed, "--warehouse", warehouse, "--no-validation")[0] == 0
    assert query(warehouse, "SELECT count(*) FROM validation_results") == [(0,)]  # exists, empty (contract 3)
    html = tmp_path / "validation.html"
    code, out, _ = run_cli("validate", "--warehouse", warehouse, "--html", html)
    assert code == 0 and "samples" in out
    page = html.read_text()
    assert "<html" in page.lower() and "http" not in page and "<script" not in page
    code, out, _ = run_cli("validate", "--warehouse", warehouse, "--completeness-goal", "0.95")
    assert code == 1 and "FAIL" in out
    scopes = query(
        warehouse, "SELECT scope, count(DISTINCT validation_id) FROM validation_results GROUP BY 1 ORDER BY 1"
    )
    assert scopes == [("source", 2), ("warehouse", 2)]


def test_validate_on_a_missing_or_empty_warehouse_is_one_line(tmp_path, run_cli):
    code, _, err = run_cli("validate", "--warehouse", tmp_path / "none.duckdb")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "none.duckdb").exists()


def test_validate_on_a_warehouse_with_no_patients_is_not_a_pass(tmp_path, run_cli):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "bad.json").write_text("{not json")
    warehouse = tmp_path / "w.duckdb"
    assert run_cli("run", "--input", empty, "--warehouse", warehouse)[0] == 0
    code, _, err = run_cli("validate", "--warehouse", warehouse)
    assert code == 2 and "nothing to validate" in err


@pytest.mark.slow
def test_summaries_never_quote_patient_values(tmp_path, run_cli):
    feed = tmp_path / "feed"
    feed.mkdir()
    (feed / "p.ndjson").write_text(
        "".join(
            json.dumps({"resourceType": "Patient", "id": f"secret-{i}", "birthDate": "2099-01-01"}) + "\n"
            for i in range(5)
        )
    )
    code, out, err = run_cli("run", "--input", feed, "--warehouse", tmp_path / "w.duckdb")
    assert code == 0 and "birth_date" in out  # the plausibility failure is reported ...
    assert "2099" not in out + err and "secret" not in out + err  # ... without the values or the ids
