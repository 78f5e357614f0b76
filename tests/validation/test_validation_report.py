"""Offline summaries: the terminal table and the self-contained HTML page."""

import datetime as dt
import re

import pytest
from conftest import patients, validated

from pipelines.validation import summary_table, write_html_summary


def results(validator):
    bad = patients(10, source="feed_<b>", reported_share=0.5)
    bad[2]["omb2024_category"] = "GARBAGE"
    return validated(validator, patients(10, source="feed_a")) + validated(validator, bad, source="feed_<b>")


@pytest.mark.slow
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
    assert not re.search(r"\bp2\b", text)  # ... patient identifiers and values never are
    assert "expect_column_values_to_be_in_set(counts_toward_completeness)" in failed
    assert "feed_a" not in failed


def test_summary_of_nothing():
    assert "nothing" in summary_table([])


@pytest.mark.slow
def test_window_batches_show_their_window(validator):
    start = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)
    rows = validated(
        validator,
        patients(4),
        scope="window",
        run_id="w",
        window_start=start,
        window_end=start + dt.timedelta(minutes=1),
    )
    assert "2026-11-23 10:00:00Z .. 2026-11-23 10:01:00Z" in summary_table(rows)


@pytest.mark.slow
def test_html_summary_is_self_contained_and_escaped(validator, tmp_path):
    path = tmp_path / "out" / "validation.html"
    write_html_summary(results(validator), path)
    page = path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page
    assert not re.search(r"https?://|//cdn|<script|<link|src=|@import|url\(", page)
    assert "feed_&lt;b&gt;" in page and "feed_<b>" not in page
    assert "reported 50.0% (goal 80%)" in page and "FAIL" in page
    assert "at least 80% of rows; rule counts_toward_completeness holds" in page  # the rule, not "allowed: true"
    assert "expect_column_values_to_be_in_set(omb2024_category)" in page
    assert not re.search(r"\bp2\b", page) and "sample_patient_ids" not in page  # the warehouse keeps those
