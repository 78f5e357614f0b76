"""Table-driven tests of the derived-column checks (pure functions, no Great Expectations)."""
import datetime as dt

import numpy as np
import pandas as pd
import pytest

from pipelines.validation import checks
from pipelines.validation.suites import load_suites

HISPANIC = frozenset({"2135-2", "2148-5"})


@pytest.mark.parametrize("categories, ok", [
    ([], True), (["WHITE"], True), (["ASIAN", "BLACK", "HISPANIC"], True), (np.array(["AIAN", "NHPI"]), True),
    (("MENA",), True),
    (["WHITE", "ASIAN"], False),      # not sorted
    (["ASIAN", "ASIAN"], False),      # duplicate
    (["White"], False),               # not a category code
    (["SOME_OTHER"], False),          # a summary value, not one of the seven
    (None, False), (pd.NA, False), ("WHITE", False),
])
def test_omb2024_categories_valid(categories, ok):
    assert checks.omb2024_categories_valid(categories) is ok


@pytest.mark.parametrize("race, ethnicity, ok", [
    (["2106-3"], ["2135-2", "2148-5"], True), ([], [], True), (np.array(["1002-5"]), np.array([]), True),
    (["2106-3 "], [], False), (["White"], [], False), ([], ["2135"], False), (None, [], False),
])
def test_detailed_codes_well_formed(race, ethnicity, ok):
    assert checks.detailed_codes_well_formed(race, ethnicity) is ok


@pytest.mark.parametrize("category, categories, ok", [
    ("WHITE", ["WHITE"], True), ("HISPANIC", ["HISPANIC"], True),
    ("MULTIRACIAL_MULTIETHNIC", ["HISPANIC", "WHITE"], True),
    ("SOME_OTHER", [], True), ("DECLINED", [], True), ("UNKNOWN", [], True),
    ("ASIAN", ["WHITE"], False), ("WHITE", ["ASIAN", "WHITE"], False), ("MULTIRACIAL_MULTIETHNIC", ["ASIAN"], False),
    ("WHITE", [], False), ("DECLINED", ["ASIAN"], False), (None, [], False), ("WHITE", None, False),
])
def test_omb2024_category_consistent(category, categories, ok):
    assert checks.omb2024_category_consistent(category, categories) is ok


@pytest.mark.parametrize("status, category, ok", [
    ("reported", "WHITE", True), ("reported", "SOME_OTHER", True), ("reported", "MULTIRACIAL_MULTIETHNIC", True),
    ("declined", "DECLINED", True), ("unknown", "UNKNOWN", True),
    ("reported", "DECLINED", False), ("declined", "UNKNOWN", False), ("unknown", "WHITE", False),
    (None, "WHITE", False), ("reported", None, False),
])
def test_race_ethnicity_status_consistent(status, category, ok):
    assert checks.race_ethnicity_status_consistent(status, category) is ok


@pytest.mark.parametrize("hedis_race, categories, category, ok", [
    ("White", ["WHITE"], "WHITE", True),
    ("White", ["MENA"], "MENA", True),                          # MENA rolls up to White in HEDIS
    ("White", ["MENA", "WHITE"], "MULTIRACIAL_MULTIETHNIC", True),
    ("White", ["HISPANIC", "WHITE"], "MULTIRACIAL_MULTIETHNIC", True),  # Hispanic is not a HEDIS race
    ("Asian", ["ASIAN"], "ASIAN", True),
    ("AmericanIndianOrAlaskaNative", ["AIAN"], "AIAN", True),
    ("BlackOrAfricanAmerican", ["BLACK"], "BLACK", True),
    ("NativeHawaiianOrOtherPacificIslander", ["NHPI"], "NHPI", True),
    ("TwoOrMoreRaces", ["ASIAN", "WHITE"], "MULTIRACIAL_MULTIETHNIC", True),
    ("TwoOrMoreRaces", ["ASIAN"], "ASIAN", True),               # Asian + Other Race
    ("SomeOtherRace", [], "SOME_OTHER", True),
    ("SomeOtherRace", ["HISPANIC"], "HISPANIC", True),          # Other Race + Hispanic in the race slot
    ("AskedButNoAnswer", [], "DECLINED", True),
    ("AskedButNoAnswer", ["HISPANIC"], "HISPANIC", True),
    ("Unknown", [], "UNKNOWN", True),
    ("Unknown", ["WHITE"], "WHITE", True),                      # text-only answers: not checked
    ("White", ["ASIAN"], "ASIAN", False),
    ("White", ["ASIAN", "WHITE"], "MULTIRACIAL_MULTIETHNIC", False),
    ("Asian", [], "SOME_OTHER", False),
    ("Asian", ["HISPANIC"], "HISPANIC", False),
    ("TwoOrMoreRaces", [], "SOME_OTHER", False),
    ("TwoOrMoreRaces", ["HISPANIC"], "HISPANIC", False),
    ("SomeOtherRace", ["BLACK"], "BLACK", False),
    ("AskedButNoAnswer", ["WHITE"], "WHITE", False),
    ("AskedButNoAnswer", [], "UNKNOWN", False),                 # a declined question is never UNKNOWN
    (None, ["WHITE"], "WHITE", False),
])
def test_hedis_race_consistent(hedis_race, categories, category, ok):
    assert checks.hedis_race_consistent(hedis_race, categories, category) is ok


@pytest.mark.parametrize("hedis_ethnicity, categories, category, race_codes, ethnicity_codes, ok", [
    ("HispanicOrLatino", ["HISPANIC"], "HISPANIC", [], ["2135-2"], True),
    ("HispanicOrLatino", ["HISPANIC", "WHITE"], "MULTIRACIAL_MULTIETHNIC", ["2106-3"], ["2148-5"], True),
    ("HispanicOrLatino", ["HISPANIC"], "HISPANIC", ["2135-2"], [], True),     # Hispanic in the race slot
    ("NotHispanicOrLatino", ["WHITE"], "WHITE", ["2106-3"], ["2186-5"], True),
    ("NotHispanicOrLatino", ["HISPANIC"], "HISPANIC", ["2148-5"], ["2186-5"], True),  # race-slot Hispanic + Not
    ("Unknown", ["HISPANIC"], "HISPANIC", [], [], True),        # Hispanic from text only: not checked
    ("AskedButNoAnswer", [], "DECLINED", [], [], True),
    ("Unknown", [], "UNKNOWN", [], [], True),
    ("HispanicOrLatino", ["WHITE"], "WHITE", ["2106-3"], [], False),
    ("NotHispanicOrLatino", ["HISPANIC"], "HISPANIC", [], ["2135-2"], False),
    ("Unknown", ["WHITE"], "WHITE", ["2106-3"], ["2148-5"], False),  # Hispanic code but no HISPANIC category
    ("AskedButNoAnswer", [], "UNKNOWN", [], [], False),
    ("HispanicOrLatino", None, "HISPANIC", [], ["2135-2"], False),
])
def test_hedis_ethnicity_consistent(hedis_ethnicity, categories, category, race_codes, ethnicity_codes, ok):
    assert checks.hedis_ethnicity_consistent(hedis_ethnicity, categories, category, race_codes, ethnicity_codes,
                                             HISPANIC) is ok


@pytest.mark.parametrize("birth_year, birth_date, ok", [
    (1980, dt.date(1980, 5, 1), True), (1980.0, pd.Timestamp("1980-05-01"), True), (None, None, True),
    (1980, None, True), (np.nan, dt.date(1980, 5, 1), True), (1981, dt.date(1980, 5, 1), False),
])
def test_birth_year_consistent(birth_year, birth_date, ok):
    assert checks.birth_year_consistent(birth_year, birth_date) is ok


def test_hispanic_codes_of_the_suite_are_the_cdcrec_subtree():
    meta = next(s.meta for s in load_suites() if s.name == "consistency")
    codes = meta["hispanic_codes"]
    assert "2135-2" in codes and "2148-5" in codes and "2186-5" not in codes
    assert len(codes) == len(set(codes)) == 42


def test_derived_columns_normalize_duckdb_arrays_and_nulls():
    frame = pd.DataFrame({
        "omb2024_categories": [np.array(["ASIAN", "WHITE"], dtype=object), np.array([], dtype=object), pd.NA],
        "omb2024_category": ["MULTIRACIAL_MULTIETHNIC", "UNKNOWN", "UNKNOWN"],
    })
    out = checks.add_derived_columns(frame, {"omb2024_category_consistent": {}, "omb2024_categories_valid": {}})
    assert out["omb2024_category_consistent"].tolist() == [True, True, False]
    assert out["omb2024_categories_valid"].tolist() == [True, True, False]
    assert list(frame.columns) == ["omb2024_categories", "omb2024_category"]  # the caller's frame is untouched


def test_a_derived_column_whose_input_is_missing_is_left_out():
    out = checks.add_derived_columns(pd.DataFrame({"omb2024_category": ["WHITE"]}),
                                     {"omb2024_category_consistent": {}})
    assert "omb2024_category_consistent" not in out.columns


def test_suite_parameters_follow_the_column_type():
    now = dt.datetime(2026, 11, 23, 23, 30, tzinfo=dt.timezone.utc)
    objects = pd.DataFrame({"birth_date": [dt.date(2000, 1, 1)],
                            "last_updated": [dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)]})
    params = checks.suite_parameters(objects, now)
    assert params["max_birth_date"] == dt.date(2026, 11, 24) and params["max_birth_year"] == 2026
    assert params["max_last_updated"] == now + dt.timedelta(minutes=5)
    duck = pd.DataFrame({"birth_date": pd.to_datetime(["2000-01-01"]).astype("datetime64[us]"),
                         "last_updated": pd.to_datetime(["2026-01-01T00:00:00Z"]).tz_convert("America/New_York")})
    params = checks.suite_parameters(duck, now)
    assert params["max_birth_date"] == pd.Timestamp("2026-11-24") and params["max_birth_date"].tzinfo is None
    assert params["max_last_updated"] == pd.Timestamp(now + dt.timedelta(minutes=5))
    assert str(params["max_last_updated"].tzinfo) == "America/New_York"
