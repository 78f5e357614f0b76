"""Offline summaries: the terminal table and the self-contained HTML page."""
import re

from conftest import frame, patients

from pipelines.validation import summary_table, write_html_summary


def results(validator):
    bad = patients(10, source="feed_<b>", reported_share=0.5)
    bad[2]["omb2024_category"] = "GARBAGE"
    return (validator.validate(frame(patients(10, source="feed_a")), scope="source", source="feed_a", run_id="r1")
            + validator.validate(frame(bad), scope="source", source="feed_<b>", run_id="r1"))


def test_summary_table_lists_batches_and_failed_expectations(validator):
    text = summary_table(results(validator))
    lines = text.splitlines()
    assert lines[0].startswith("Validation of run r1: 2 batch(es)") and "failed" in lines[0]
    feed_a = next(line for line in lines if line.startswith("source  feed_a "))
    assert "reported 100.0% (goal 80%)" in feed_a and feed_a.rstrip().endswith("PASS")
    feed_b = next(line for line in lines if line.startswith("source  feed_<b>") and "goal" in line)
    assert "reported 50.0% (goal 80%)" in feed_b and feed_b.rstrip().endswith("FAIL")
    failed = text.split("Failed expectations:")[1]
    assert "expect_column_values_to_be_in_set(omb2024_category)" in failed
    assert "expect_column_values_to_be_in_set(omb2024_category_consistent)" in failed
    assert "e.g. GARBAGE" in failed  # codes are quoted as examples ...
    assert "p2" not in failed  # ... patient identifiers and values never are
    assert "expect_column_values_to_be_in_set(race_ethnicity_status)" in failed
    assert "feed_a" not in failed


def test_summary_of_nothing():
    assert "nothing" in summary_table([])


def test_window_batches_show_their_window(validator):
    rows = validator.validate(frame(patients(4)), scope="window", source="feed_a", run_id="w",
                              window_start="2026-11-23T10:00:00Z", window_end="2026-11-23T10:01:00Z")
    assert "2026-11-23 10:00:00Z .. 2026-11-23 10:01:00Z" in summary_table(rows)


def test_html_summary_is_self_contained_and_escaped(validator, tmp_path):
    path = tmp_path / "out" / "validation.html"
    write_html_summary(results(validator), path)
    page = path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page
    assert not re.search(r"https?://|//cdn|<script|<link|src=|@import|url\(", page)
    assert "feed_&lt;b&gt;" in page and "feed_<b>" not in page
    assert "reported 50.0% (goal 80%)" in page and "FAIL" in page
    assert "expect_column_values_to_be_in_set(omb2024_category)" in page
