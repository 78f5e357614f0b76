"""validation_results in a real DuckDB file: DDL, batch insert, whole-warehouse validation, exit codes, trends."""

import datetime as dt
import json

import duckdb
import pytest
from conftest import land, patient, patients, validated

from pipelines.validation import (
    NoPatientsError,
    ValidationConfig,
    completeness_trend,
    ensure_validation_results_table,
    exit_code,
    store_results,
    validate_landed_batch,
    validate_warehouse,
    validate_window,
)

COMPLETENESS = "expect_column_values_to_be_in_set(counts_toward_completeness)"
OLD_COMPLETENESS = "expect_column_values_to_be_in_set(race_ethnicity_status)"  # before issue 9
EXPECTED_COLUMNS = [
    ("validation_id", "VARCHAR"),
    ("run_id", "VARCHAR"),
    ("validated_at", "TIMESTAMP WITH TIME ZONE"),
    ("suite", "VARCHAR"),
    ("expectation", "VARCHAR"),
    ("scope", "VARCHAR"),
    ("source", "VARCHAR"),
    ("window_start", "TIMESTAMP WITH TIME ZONE"),
    ("window_end", "TIMESTAMP WITH TIME ZONE"),
    ("success", "BOOLEAN"),
    ("observed_value", "VARCHAR"),
    ("element_count", "BIGINT"),
    ("unexpected_count", "BIGINT"),
    ("details", "VARCHAR"),
]


def stored(con, where="TRUE", params=()):
    return con.execute(
        f"SELECT * FROM validation_results WHERE {where} ORDER BY scope, source, suite, expectation", list(params)
    ).fetchdf()


def test_the_table_has_the_documented_columns_and_creation_is_idempotent(warehouse):
    ensure_validation_results_table(warehouse)
    ensure_validation_results_table(warehouse)
    cols = warehouse.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_name = 'validation_results' ORDER BY ordinal_position"
    ).fetchall()
    assert cols == EXPECTED_COLUMNS


def test_store_results_round_trips_rows_including_window_bounds(warehouse, validator):
    start = dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)
    rows = validated(
        validator,
        patients(8),
        scope="window",
        run_id="w1",
        window_start=start,
        window_end=start + dt.timedelta(minutes=1),
    )
    store_results(warehouse, rows)
    store_results(warehouse, [])  # nothing to add: no error
    back = stored(warehouse)
    assert len(back) == len(rows)
    assert set(back["scope"]) == {"window"} and set(back["run_id"]) == {"w1"}
    assert back["window_start"].dt.tz_convert("UTC").eq(start).all()
    assert back["success"].all() and back["element_count"].eq(8).all()


@pytest.mark.slow
def test_validate_warehouse_validates_each_source_and_the_whole(warehouse):
    land(warehouse, patients(20, source="feed_a") + patients(10, source="feed_b"))
    rows = validate_warehouse(warehouse, run_id="v1")
    assert exit_code(rows) == 0
    back = stored(warehouse)
    assert len(back) == len(rows)
    batches = {(scope, source) for scope, source in zip(back["scope"], back["source"].fillna("(all)"), strict=True)}
    assert batches == {("source", "feed_a"), ("source", "feed_b"), ("warehouse", "(all)")}
    counts = dict(back[back["expectation"] == COMPLETENESS][["scope", "element_count"]].itertuples(index=False))
    assert counts["warehouse"] == 30
    per_source = back[(back["scope"] == "source") & (back["expectation"] == COMPLETENESS)]
    assert dict(zip(per_source["source"], per_source["element_count"], strict=True)) == {"feed_a": 20, "feed_b": 10}


@pytest.mark.slow
def test_a_failed_completeness_is_stored_and_exits_1_but_the_data_stays(warehouse):
    land(warehouse, patients(20, source="feed_a") + patients(10, source="feed_b", reported_share=0.5))
    before = warehouse.execute("SELECT count(*) FROM patient_demographics").fetchone()[0]
    rows = validate_warehouse(warehouse, run_id="v1")
    assert exit_code(rows) == 1
    failed = stored(warehouse, "NOT success")
    assert list(zip(failed["scope"], failed["source"], failed["suite"], failed["expectation"], strict=True)) == [
        ("source", "feed_b", "completeness", COMPLETENESS)
    ]
    assert json.loads(failed["observed_value"].iloc[0]) == pytest.approx(50.0)
    assert failed["unexpected_count"].iloc[0] == 5
    # The whole warehouse (25 of 30 reported = 83%) passes; feed_a passes.
    assert stored(warehouse, "scope = 'warehouse' AND suite = 'completeness'")["success"].all()
    assert warehouse.execute("SELECT count(*) FROM patient_demographics").fetchone()[0] == before


@pytest.mark.slow
def test_a_goal_from_the_config_decides_the_exit_code(warehouse):
    land(warehouse, patients(10, source="feed_b", reported_share=0.5))
    assert exit_code(validate_warehouse(warehouse, run_id="v1", config=ValidationConfig(0.5))) == 0
    assert exit_code(validate_warehouse(warehouse, run_id="v2", config=ValidationConfig(0.6))) == 1


@pytest.mark.parametrize(
    "change, suite",
    [
        ({"hedis_race": "Caucasian"}, "validity"),
        ({"hedis_ethnicity": "HispanicOrLatino"}, "consistency"),
        ({"last_updated": dt.datetime(2199, 1, 1, tzinfo=dt.UTC)}, "plausibility"),
        ({"birth_date": dt.date(2199, 1, 1), "birth_year": 2199}, "plausibility"),
    ],
)
@pytest.mark.slow
def test_garbage_from_one_feed_is_reported_for_that_feed_and_the_warehouse(warehouse, change, suite):
    bad = patients(10, source="feed_b")
    bad[0].update(change)
    land(warehouse, patients(10, source="feed_a") + bad)
    rows = validate_warehouse(warehouse, run_id="v1")
    assert exit_code(rows) == 1
    failed = stored(warehouse, "NOT success")
    assert set(failed["suite"]) == {suite}
    assert set(zip(failed["scope"], failed["source"].fillna("-"), strict=True)) == {
        ("source", "feed_b"),
        ("warehouse", "-"),
    }


def test_duplicate_keys_in_the_warehouse_fail_uniqueness(warehouse):
    land(warehouse, patients(5, source="feed_a") + [patient(1, source="feed_a")])
    rows = validate_warehouse(warehouse, run_id="v1")
    failed = {(r["scope"], r["suite"]) for r in rows if not r["success"]}
    assert failed == {("source", "uniqueness"), ("warehouse", "uniqueness")}


def test_a_warehouse_without_patients_is_an_error(warehouse):
    with pytest.raises(NoPatientsError):
        validate_warehouse(warehouse, run_id="v1")


@pytest.mark.slow
def test_results_of_two_runs_trend_per_source(tmp_path, validator):
    path = str(tmp_path / "trend.duckdb")
    con = duckdb.connect(path)
    land(con, patients(10, source="feed_a", reported_share=0.9) + patients(10, source="feed_b", reported_share=0.9))
    validate_warehouse(con, run_id="run-1", validator=validator)
    # Between runs, feed_b starts sending unknowns: its completeness drops below the goal.
    con.execute(
        "UPDATE patient_demographics SET race_ethnicity_status = 'unknown', omb2024_categories = [], "
        "omb2024_category = 'UNKNOWN', hedis_race = 'Unknown', hedis_ethnicity = 'Unknown', "
        "race_detailed_codes = [], ethnicity_detailed_codes = [] "
        "WHERE source = 'feed_b' AND patient_id IN ('p0', 'p1', 'p2', 'p3')"
    )
    validate_warehouse(con, run_id="run-2", validator=validator)
    con.close()

    con = duckdb.connect(path, read_only=True)  # the results persist in the file
    trend = completeness_trend(con)
    series = {
        src: list(zip(g["run_id"], g["reported_share"], g["success"], strict=True))
        for src, g in trend.groupby("source")
    }
    assert series == {
        "feed_a": [("run-1", 0.9, True), ("run-2", 0.9, True)],
        "feed_b": [("run-1", 0.9, True), ("run-2", 0.5, False)],
    }
    assert set(trend["goal"]) == {0.8} and set(trend["patients"]) == {10}
    # The same trend straight from SQL, as a user would query it.
    drops = con.execute("""
        SELECT source, run_id, success FROM validation_results
        WHERE suite = 'completeness' AND scope = 'source' AND NOT success""").fetchall()
    assert drops == [("feed_b", "run-2", False)]
    con.close()


def test_results_stored_under_the_label_before_issue_9_still_trend(warehouse, validator):
    """Old results counted unmapped text as reported; they stay in the trend beside the new ones."""
    land(warehouse, patients(10, source="feed_a", reported_share=0.9))
    validate_warehouse(warehouse, run_id="run-new", validator=validator)
    warehouse.execute(
        """
        INSERT INTO validation_results SELECT * REPLACE (? AS expectation, 'run-old' AS run_id, '5.0' AS observed_value,
                                                         validated_at - INTERVAL 30 DAY AS validated_at)
        FROM validation_results WHERE expectation = ?""",
        [OLD_COMPLETENESS, COMPLETENESS],
    )
    trend = completeness_trend(warehouse)
    assert list(zip(trend["source"], trend["run_id"], trend["reported_share"], strict=True)) == [
        ("feed_a", "run-old", 0.95),
        ("feed_a", "run-new", 0.9),
    ]
    assert list(completeness_trend(warehouse, "warehouse")["run_id"]) == ["run-old", "run-new"]


def test_a_write_in_lowers_the_stored_completeness(warehouse):
    rows = patients(10, source="feed_a")
    rows[0].update(
        omb2024_categories=[],
        omb2024_category="SOME_OTHER",
        hedis_race="Unknown",
        hedis_ethnicity="Unknown",
        race_detailed_codes=[],
        ethnicity_detailed_codes=[],
        unmapped_text_only=True,
        race_text="Klingon",
        race_source_format="text-only",
    )
    land(warehouse, rows)
    validate_warehouse(warehouse, run_id="v1")
    assert set(completeness_trend(warehouse)["reported_share"]) == {0.9}


@pytest.mark.slow
def test_the_landed_batch_is_validated_per_source_on_the_landing_connection(warehouse):
    land(warehouse, patients(6, source="feed_a") + patients(4, source="feed_b") + patients(3, source="feed_c"))
    # the commit's temp table: the Patients this batch read (feed_c is an older landing)
    warehouse.execute(
        "CREATE TEMP TABLE _batch_keys AS SELECT source, patient_id FROM patient_demographics WHERE source <> 'feed_c'"
    )
    rows = validate_landed_batch(warehouse, run_id="land-1")
    counts = {(r["scope"], r["source"]): r["element_count"] for r in rows if r["suite"] == "completeness"}
    assert counts == {("source", "feed_a"): 6, ("source", "feed_b"): 4}
    assert len(stored(warehouse)) == len(rows) and exit_code(rows) == 0


def test_a_window_validates_what_this_run_landed_in_it(warehouse):
    start = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)
    inside = patients(4, source="qhio")
    before = [patient(10 + i, source="qhio", ingested_at=start - dt.timedelta(seconds=1)) for i in range(2)]
    other_run = [patient(20, source="qhio", run_id="other")]
    land(warehouse, inside + before + other_run)
    end = start + dt.timedelta(minutes=1)
    rows = validate_window(warehouse, "landing-run", "qhio", start, end)
    assert {(r["scope"], r["source"], r["element_count"]) for r in rows} == {("window", "qhio", 4)}
    assert validate_window(warehouse, "landing-run", "qhio", end, end + dt.timedelta(minutes=1)) == []
    assert len(stored(warehouse)) == len(rows)


@pytest.mark.slow
def test_validation_leaves_no_temp_table_and_no_transaction_on_the_connection(warehouse):
    land(warehouse, patients(5, source="feed_a") + patients(5, source="feed_b"))
    validate_warehouse(warehouse, run_id="v1")
    assert warehouse.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary").fetchone() == (0,)
    assert warehouse.execute("SELECT count(*) FROM duckdb_views() WHERE temporary AND NOT internal").fetchone() == (0,)
    warehouse.execute("BEGIN TRANSACTION")  # fails if validation left one open
    warehouse.execute("ROLLBACK")


def test_a_one_source_warehouse_is_validated_once_for_both_scopes(warehouse):
    bad = patients(10, source="only")
    bad[3]["hedis_race"] = "Caucasian"
    land(warehouse, bad)
    rows = validate_warehouse(warehouse, run_id="v1")
    by_scope = {scope: [r for r in rows if r["scope"] == scope] for scope in ("source", "warehouse")}
    assert [r["source"] for r in by_scope["source"]] == ["only"] * len(by_scope["source"])
    assert [r["source"] for r in by_scope["warehouse"]] == [None] * len(by_scope["source"])
    same = ("suite", "expectation", "success", "observed_value", "element_count", "unexpected_count", "details")
    assert [[r[k] for k in same] for r in by_scope["source"]] == [[r[k] for k in same] for r in by_scope["warehouse"]]
    assert len({r["validation_id"] for r in rows}) == 2
    assert {(r["scope"], r["expectation"]) for r in rows if not r["success"]} == {
        (scope, "expect_column_values_to_be_in_set(hedis_race)") for scope in ("source", "warehouse")
    }
