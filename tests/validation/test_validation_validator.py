"""Every suite on batches built to pass and to fail each expectation: real Great Expectations on real DuckDB."""

import datetime as dt
import json
import pickle

import pytest
from conftest import patient, patients, validated

from pipelines.validation import ValidationConfig, Validator

UTC = dt.UTC
FUTURE = dt.datetime.now(UTC) + dt.timedelta(days=400)

COMPLETENESS = "expect_column_values_to_be_in_set(counts_toward_completeness)"
LINEAGE = (
    "expect_table_columns_to_match_set(source,patient_id,last_updated,ingested_at,input_file,"
    "input_position,run_id,record_hash)"
)


def failures(rows):
    return {(r["suite"], r["expectation"]) for r in rows if not r["success"]}


def by_label(rows, suite, expectation):
    (row,) = [r for r in rows if r["suite"] == suite and r["expectation"] == expectation]
    return row


@pytest.mark.slow
def test_a_clean_batch_passes_every_expectation_of_every_suite(validator):
    rows = validated(validator, patients(60))
    assert failures(rows) == set()
    assert {r["suite"] for r in rows} == {
        "completeness",
        "validity",
        "uniqueness",
        "consistency",
        "plausibility",
        "lineage",
    }
    assert len(rows) == len(validator.specs)
    assert len({(r["suite"], r["expectation"]) for r in rows}) == len(rows)  # labels are unique
    assert {r["validation_id"] for r in rows} == {rows[0]["validation_id"]}
    for r in rows:
        assert r["run_id"] == "r1" and r["scope"] == "source" and r["source"] == "feed_a"
        assert r["validated_at"].tzinfo is not None and r["window_start"] is None
        assert r["element_count"] == 60
        json.loads(r["details"])


# (what is broken, how, the failing expectations it must produce: exactly these)
BROKEN = [
    (
        "status outside its value set",
        {"race_ethnicity_status": "maybe"},
        {
            ("validity", "expect_column_values_to_be_in_set(race_ethnicity_status)"),
            ("consistency", "expect_column_values_to_be_in_set(race_ethnicity_status_consistent)"),
        },
    ),
    (
        "null status",
        {"race_ethnicity_status": None},
        {
            ("validity", "expect_column_values_to_not_be_null(race_ethnicity_status)"),
            ("consistency", "expect_column_values_to_be_in_set(race_ethnicity_status_consistent)"),
        },
    ),
    (
        "category outside its value set",
        {"omb2024_category": "White"},
        {
            ("validity", "expect_column_values_to_be_in_set(omb2024_category)"),
            ("consistency", "expect_column_values_to_be_in_set(omb2024_category_consistent)"),
        },
    ),
    (
        "categories not one of the seven",
        {"omb2024_categories": ["Caucasian"], "omb2024_category": "Caucasian", "hedis_race": "Unknown"},
        {
            ("validity", "expect_column_values_to_be_in_set(omb2024_categories_valid)"),
            ("validity", "expect_column_values_to_be_in_set(omb2024_category)"),
        },
    ),
    (
        "hedis race outside its value set",
        {"hedis_race": "Caucasian"},
        {("validity", "expect_column_values_to_be_in_set(hedis_race)")},
    ),
    (
        "hedis ethnicity outside its value set",
        {"hedis_ethnicity": "Latino"},
        {("validity", "expect_column_values_to_be_in_set(hedis_ethnicity)")},
    ),
    (
        "gender outside FHIR's value set",
        {"administrative_gender": "F"},
        {("validity", "expect_column_values_to_be_in_set(administrative_gender)")},
    ),
    (
        "language not a lower-case subtag",
        {"preferred_language": "English"},
        {("validity", "expect_column_values_to_match_regex(preferred_language)")},
    ),
    (
        "malformed CDCREC code",
        {"race_detailed_codes": ["2106"]},
        {("validity", "expect_column_values_to_be_in_set(detailed_codes_well_formed)")},
    ),
    (
        "null race_source_format",
        {"race_source_format": None},
        {("validity", "expect_column_values_to_not_be_null(race_source_format)")},
    ),
    (
        "category disagrees with categories",
        {"omb2024_category": "ASIAN"},
        {("consistency", "expect_column_values_to_be_in_set(omb2024_category_consistent)")},
    ),
    (
        "categories disagree with hedis race",
        {"omb2024_categories": ["ASIAN"], "omb2024_category": "ASIAN"},
        {("consistency", "expect_column_values_to_be_in_set(hedis_race_consistent)")},
    ),
    (
        "Hispanic code without HISPANIC",
        {"ethnicity_detailed_codes": ["2135-2"]},
        {("consistency", "expect_column_values_to_be_in_set(hedis_ethnicity_consistent)")},
    ),
    (
        "status disagrees with category",
        {"race_ethnicity_status": "declined"},
        {("consistency", "expect_column_values_to_be_in_set(race_ethnicity_status_consistent)")},
    ),
    (
        "hedis race disagrees with categories",
        {"hedis_race": "BlackOrAfricanAmerican"},
        {("consistency", "expect_column_values_to_be_in_set(hedis_race_consistent)")},
    ),
    (
        "hedis ethnicity disagrees with categories",
        {"hedis_ethnicity": "HispanicOrLatino"},
        {("consistency", "expect_column_values_to_be_in_set(hedis_ethnicity_consistent)")},
    ),
    (
        "birth date in the future",
        {"birth_date": FUTURE.date(), "birth_year": FUTURE.year},
        {
            ("plausibility", "expect_column_values_to_be_between(birth_date)"),
            ("plausibility", "expect_column_values_to_be_between(birth_year)"),
        },
    ),
    (
        "birth year disagrees with birth date",
        {"birth_year": 1979},
        {("plausibility", "expect_column_values_to_be_in_set(birth_year_consistent)")},
    ),
    (
        "last_updated in the future",
        {"last_updated": FUTURE},
        {("plausibility", "expect_column_values_to_be_between(last_updated)")},
    ),
    ("null source", {"source": None}, {("validity", "expect_column_values_to_not_be_null(source)")}),
    ("lineage value missing", {"input_file": None}, {("lineage", "expect_column_values_to_not_be_null(input_file)")}),
    ("run id missing", {"run_id": None}, {("lineage", "expect_column_values_to_not_be_null(run_id)")}),
]


@pytest.mark.parametrize("what, change, expected", BROKEN, ids=[b[0] for b in BROKEN])
@pytest.mark.slow
def test_a_broken_row_fails_exactly_its_expectations(validator, what, change, expected):
    rows = patients(20)
    assert rows[6]["omb2024_category"] == "WHITE"
    rows[6].update(change)
    result = validated(validator, rows)
    assert failures(result) == expected
    for suite, expectation in expected:
        row = by_label(result, suite, expectation)
        if row["unexpected_count"] is not None:
            assert row["unexpected_count"] == 1 and row["element_count"] == 20


def test_a_derived_failure_names_the_patients(validator):
    rows = patients(20)
    rows[3]["hedis_race"] = "Asian"  # a White patient
    result = validated(validator, rows)
    row = by_label(result, "consistency", "expect_column_values_to_be_in_set(hedis_race_consistent)")
    assert json.loads(row["details"])["sample_patient_ids"] == ["p3"]
    assert json.loads(row["observed_value"]) == pytest.approx(5.0)  # GX unexpected_percent


def test_duplicate_source_and_patient_id_fails_uniqueness(validator):
    rows = patients(10) + [patient(4, source="feed_a")] + [patient(4, source="feed_b")]
    result = validated(validator, rows, scope="warehouse", source=None)
    assert failures(result) == {("uniqueness", "expect_compound_columns_to_be_unique(source,patient_id)")}
    row = by_label(result, "uniqueness", "expect_compound_columns_to_be_unique(source,patient_id)")
    assert row["unexpected_count"] == 2  # GX counts both copies; feed_b's p4 is another key


def test_missing_lineage_column_fails_lineage(validator):
    result = validated(validator, patients(10), drop=["input_position"])
    assert failures(result) == {
        ("lineage", LINEAGE),
        ("lineage", "expect_column_values_to_not_be_null(input_position)"),
    }
    row = by_label(result, "lineage", LINEAGE)
    assert json.loads(row["observed_value"]) == {"missing": ["input_position"]}
    nulls = by_label(result, "lineage", "expect_column_values_to_not_be_null(input_position)")
    assert "does not exist" in json.loads(nulls["details"])["exception"]


@pytest.mark.slow
def test_a_rule_whose_input_column_is_missing_fails_with_its_error(validator):
    result = validated(validator, patients(10), drop=["unmapped_text_only"])
    assert failures(result) == {("completeness", COMPLETENESS)}
    row = by_label(result, "completeness", COMPLETENESS)
    assert "does not exist" in json.loads(row["details"])["exception"]


def test_a_write_in_is_reported_but_does_not_count_toward_completeness(validator):
    rows = patients(10)
    rows[:3] = [
        patient(
            i,
            "writein",
            unmapped_text_only=True,
            race_text="Klingon",
            race_source_format="text-only",
            mapping_warnings=["race_text_unmapped"],
        )
        for i in range(3)
    ]
    result = validated(validator, rows)
    row = by_label(result, "completeness", COMPLETENESS)
    assert (row["success"], row["unexpected_count"], row["element_count"]) == (False, 3, 10)
    assert json.loads(row["observed_value"]) == pytest.approx(30.0)
    assert failures(result) == {("completeness", COMPLETENESS)}  # reported, SOME_OTHER, HEDIS Unknown: valid


def test_a_patient_without_a_language_passes_the_language_pattern(validator):
    rows = patients(10)
    rows[4]["preferred_language"] = None
    result = validated(validator, rows)
    assert failures(result) == set()
    row = by_label(result, "validity", "expect_column_values_to_match_regex(preferred_language)")
    assert (row["unexpected_count"], json.loads(row["details"])["missing_count"]) == (0, 1)


@pytest.mark.parametrize("share, ok", [(0.80, True), (0.85, True), (0.75, False), (0.0, False)])
def test_completeness_default_goal_is_80_percent(validator, share, ok):
    result = validated(validator, patients(20, reported_share=share))
    row = by_label(result, "completeness", COMPLETENESS)
    assert row["success"] is ok
    assert json.loads(row["observed_value"]) == pytest.approx(100 * (1 - share))
    assert json.loads(row["details"])["kwargs"]["mostly"] == 0.8
    # Declined and unknown answers are valid and consistent: only completeness may fail.
    assert failures(result) <= {("completeness", COMPLETENESS)}


@pytest.mark.slow
def test_completeness_goal_is_configurable():
    lenient = Validator(ValidationConfig(completeness_goal=0.5))
    result = validated(lenient, patients(20, reported_share=0.6))
    row = by_label(result, "completeness", COMPLETENESS)
    assert row["success"] and json.loads(row["details"])["kwargs"]["mostly"] == 0.5
    strict = Validator(ValidationConfig(completeness_goal=1.0))
    result = validated(strict, patients(20, reported_share=0.95))
    assert not by_label(result, "completeness", COMPLETENESS)["success"]


@pytest.mark.parametrize("goal", [-0.1, 1.5, "0.8", True])
def test_a_bad_goal_is_refused(goal):
    with pytest.raises(ValueError):
        ValidationConfig(completeness_goal=goal)


def test_config_pickles_for_beam_workers():
    config = ValidationConfig(completeness_goal=0.9)
    assert pickle.loads(pickle.dumps(config)) == config


def test_window_scope_keeps_the_window_bounds(validator):
    start = dt.datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    end = dt.datetime(2026, 11, 23, 2, 5, tzinfo=dt.timezone(dt.timedelta(hours=-8)))
    rows = validated(validator, patients(5), scope="window", run_id="w1", window_start=start, window_end=end)
    assert {(r["window_start"], r["window_end"]) for r in rows} == {(start, start + dt.timedelta(minutes=5))}
    assert {r["window_end"].utcoffset() for r in rows} == {dt.timedelta(0)}


def test_an_unknown_scope_is_refused(validator):
    with pytest.raises(ValueError):
        validated(validator, patients(2), scope="batch")


def test_validation_is_quiet(validator, capfd):
    validated(validator, patients(50, reported_share=0.5))
    out, err = capfd.readouterr()
    assert out == "" and err == ""  # no tqdm progress bars, no GX or SQLAlchemy chatter


def test_great_expectations_does_not_log_below_warning(caplog):
    import logging

    caplog.set_level(logging.INFO)
    validated(Validator(ValidationConfig(completeness_goal=0.7)), patients(5))
    chatter = [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("great_expectations") and r.levelno < logging.WARNING
    ]
    assert chatter == []
