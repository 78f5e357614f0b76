"""Table-driven tests of the derived columns: each suite's SQL expression run in DuckDB on one typed row."""

import datetime as dt

import duckdb
import pytest

from pipelines.tables import PATIENTS, duckdb_columns
from pipelines.validation.suites import load_suites

DERIVED = {column.name: column for suite in load_suites() for column in suite.derived}
TYPES = {name: sql_type for name, sql_type, _ in duckdb_columns(PATIENTS)}


@pytest.fixture(scope="module")
def con():
    with duckdb.connect() as connection:
        yield connection


def derived(con, name: str, **values):
    """The derived column `name` of one row holding `values` (every other column NULL), typed as in the
    warehouse."""
    row = ", ".join(f"CAST(? AS {TYPES[column]}) AS {column}" for column in TYPES)
    return con.execute(
        f"SELECT {DERIVED[name].sql} FROM (SELECT {row}) AS batch", [values.get(column) for column in TYPES]
    ).fetchone()[0]


@pytest.mark.parametrize(
    "categories, ok",
    [
        ([], True),
        (["WHITE"], True),
        (["ASIAN", "BLACK", "HISPANIC"], True),
        (["AIAN", "NHPI"], True),
        (["MENA"], True),
        (["AIAN", "ASIAN", "BLACK", "HISPANIC", "MENA", "NHPI", "WHITE"], True),
        (["WHITE", "ASIAN"], False),  # not sorted
        (["ASIAN", "ASIAN"], False),  # duplicate
        (["White"], False),  # not a category code
        (["SOME_OTHER"], False),  # a summary value, not one of the seven
        (["ASIAN", None], False),  # a null item
        (["<ASIAN>"], False),
        (["ASIANWHITE"], False),
        (None, False),
    ],
)
def test_omb2024_categories_valid(con, categories, ok):
    assert derived(con, "omb2024_categories_valid", omb2024_categories=categories) is ok


@pytest.mark.parametrize(
    "race, ethnicity, ok",
    [
        (["2106-3"], ["2135-2", "2148-5"], True),
        ([], [], True),
        (["1002-5"], [], True),
        (["2106-3 "], [], False),
        (["White"], [], False),
        ([], ["2135"], False),
        ([], ["21352"], False),
        (["2106-3", None], [], False),
        (None, [], False),
        ([], None, False),
    ],
)
def test_detailed_codes_well_formed(con, race, ethnicity, ok):
    assert (
        derived(con, "detailed_codes_well_formed", race_detailed_codes=race, ethnicity_detailed_codes=ethnicity) is ok
    )


@pytest.mark.parametrize(
    "category, categories, ok",
    [
        ("WHITE", ["WHITE"], True),
        ("HISPANIC", ["HISPANIC"], True),
        ("MULTIRACIAL_MULTIETHNIC", ["HISPANIC", "WHITE"], True),
        ("SOME_OTHER", [], True),
        ("DECLINED", [], True),
        ("UNKNOWN", [], True),
        ("WHITE", ["WHITE", "WHITE"], True),  # one category, repeated (validity flags the repeat)
        ("ASIAN", ["WHITE"], False),
        ("WHITE", ["ASIAN", "WHITE"], False),
        ("MULTIRACIAL_MULTIETHNIC", ["ASIAN"], False),
        ("MULTIRACIAL_MULTIETHNIC", ["ASIAN", "ASIAN"], False),
        ("WHITE", [], False),
        ("DECLINED", ["ASIAN"], False),
        (None, [], False),
        ("WHITE", None, False),
    ],
)
def test_omb2024_category_consistent(con, category, categories, ok):
    assert derived(con, "omb2024_category_consistent", omb2024_category=category, omb2024_categories=categories) is ok


@pytest.mark.parametrize(
    "status, category, ok",
    [
        ("reported", "WHITE", True),
        ("reported", "SOME_OTHER", True),
        ("reported", "MULTIRACIAL_MULTIETHNIC", True),
        ("declined", "DECLINED", True),
        ("unknown", "UNKNOWN", True),
        ("reported", "DECLINED", False),
        ("declined", "UNKNOWN", False),
        ("unknown", "WHITE", False),
        (None, "WHITE", False),
        ("reported", None, False),
    ],
)
def test_race_ethnicity_status_consistent(con, status, category, ok):
    assert (
        derived(con, "race_ethnicity_status_consistent", race_ethnicity_status=status, omb2024_category=category) is ok
    )


@pytest.mark.parametrize(
    "hedis_race, categories, category, ok",
    [
        ("White", ["WHITE"], "WHITE", True),
        ("White", ["MENA"], "MENA", True),  # MENA rolls up to White in HEDIS
        ("White", ["MENA", "WHITE"], "MULTIRACIAL_MULTIETHNIC", True),
        ("White", ["HISPANIC", "WHITE"], "MULTIRACIAL_MULTIETHNIC", True),  # Hispanic is not a HEDIS race
        ("Asian", ["ASIAN"], "ASIAN", True),
        ("AmericanIndianOrAlaskaNative", ["AIAN"], "AIAN", True),
        ("BlackOrAfricanAmerican", ["BLACK"], "BLACK", True),
        ("NativeHawaiianOrOtherPacificIslander", ["NHPI"], "NHPI", True),
        ("TwoOrMoreRaces", ["ASIAN", "WHITE"], "MULTIRACIAL_MULTIETHNIC", True),
        ("TwoOrMoreRaces", ["ASIAN"], "ASIAN", True),  # Asian + Other Race
        ("SomeOtherRace", [], "SOME_OTHER", True),
        ("SomeOtherRace", ["HISPANIC"], "HISPANIC", True),  # Other Race + Hispanic in the race slot
        ("AskedButNoAnswer", [], "DECLINED", True),
        ("AskedButNoAnswer", ["HISPANIC"], "HISPANIC", True),
        ("Unknown", [], "UNKNOWN", True),
        ("Unknown", ["WHITE"], "WHITE", True),  # text-only answers: not checked
        ("Unknown", [], "SOME_OTHER", True),  # unmapped text: Unknown for HEDIS (4.3)
        ("Caucasian", ["WHITE"], "WHITE", True),  # outside the value set: validity's business
        ("White", ["ASIAN"], "ASIAN", False),
        ("White", ["ASIAN", "WHITE"], "MULTIRACIAL_MULTIETHNIC", False),
        ("White", [], "SOME_OTHER", False),
        ("Asian", [], "SOME_OTHER", False),
        ("Asian", ["HISPANIC"], "HISPANIC", False),
        ("NativeHawaiianOrOtherPacificIslander", ["AIAN"], "AIAN", False),
        ("TwoOrMoreRaces", [], "SOME_OTHER", False),
        ("TwoOrMoreRaces", ["HISPANIC"], "HISPANIC", False),
        ("SomeOtherRace", ["BLACK"], "BLACK", False),
        ("AskedButNoAnswer", ["WHITE"], "WHITE", False),
        ("AskedButNoAnswer", [], "UNKNOWN", False),  # a declined question is never UNKNOWN
        (None, ["WHITE"], "WHITE", False),
        ("White", None, "WHITE", False),
    ],
)
def test_hedis_race_consistent(con, hedis_race, categories, category, ok):
    assert (
        derived(
            con,
            "hedis_race_consistent",
            hedis_race=hedis_race,
            omb2024_categories=categories,
            omb2024_category=category,
        )
        is ok
    )


@pytest.mark.parametrize(
    "hedis_ethnicity, categories, category, race_codes, ethnicity_codes, ok",
    [
        ("HispanicOrLatino", ["HISPANIC"], "HISPANIC", [], ["2135-2"], True),
        ("HispanicOrLatino", ["HISPANIC", "WHITE"], "MULTIRACIAL_MULTIETHNIC", ["2106-3"], ["2148-5"], True),
        ("HispanicOrLatino", ["HISPANIC"], "HISPANIC", ["2135-2"], [], True),  # Hispanic in the race slot
        ("NotHispanicOrLatino", ["WHITE"], "WHITE", ["2106-3"], ["2186-5"], True),
        ("NotHispanicOrLatino", ["HISPANIC"], "HISPANIC", ["2148-5"], ["2186-5"], True),  # race-slot Hispanic + Not
        ("Unknown", ["HISPANIC"], "HISPANIC", [], [], True),  # Hispanic from text only: not checked
        ("AskedButNoAnswer", [], "DECLINED", [], [], True),
        ("Unknown", [], "UNKNOWN", [], [], True),
        ("Unknown", [], "UNKNOWN", None, None, True),  # no code lists at all: nothing Hispanic
        ("HispanicOrLatino", ["WHITE"], "WHITE", ["2106-3"], [], False),
        ("NotHispanicOrLatino", ["HISPANIC"], "HISPANIC", [], ["2135-2"], False),
        ("Unknown", ["WHITE"], "WHITE", ["2106-3"], ["2148-5"], False),  # Hispanic code but no HISPANIC category
        ("Unknown", ["WHITE"], "WHITE", ["2184-0"], [], False),  # the last code of the subtree, race slot
        ("AskedButNoAnswer", [], "UNKNOWN", [], [], False),
        ("HispanicOrLatino", None, "HISPANIC", [], ["2135-2"], False),
        (None, ["WHITE"], "WHITE", [], [], False),
    ],
)
def test_hedis_ethnicity_consistent(con, hedis_ethnicity, categories, category, race_codes, ethnicity_codes, ok):
    assert (
        derived(
            con,
            "hedis_ethnicity_consistent",
            hedis_ethnicity=hedis_ethnicity,
            omb2024_categories=categories,
            omb2024_category=category,
            race_detailed_codes=race_codes,
            ethnicity_detailed_codes=ethnicity_codes,
        )
        is ok
    )


@pytest.mark.parametrize(
    "birth_year, birth_date, ok",
    [
        (1980, dt.date(1980, 5, 1), True),
        (None, None, True),
        (1980, None, True),
        (None, dt.date(1980, 5, 1), True),
        (1981, dt.date(1980, 5, 1), False),
        (1980, dt.date(1981, 1, 1), False),
    ],
)
def test_birth_year_consistent(con, birth_year, birth_date, ok):
    assert derived(con, "birth_year_consistent", birth_year=birth_year, birth_date=birth_date) is ok


@pytest.mark.parametrize(
    "language, ok",
    [
        ("en", True),
        ("haw", True),
        ("zh", True),
        ("abcdefgh", True),
        (None, None),  # NULL: skipped, nullable
        ("EN", False),
        ("en-US", False),
        ("e", False),
        ("abcdefghi", False),
        ("English", False),
        ("", False),
        ("en\n", False),
    ],
)
def test_preferred_language_well_formed(con, language, ok):
    assert derived(con, "preferred_language_well_formed", preferred_language=language) is ok


@pytest.mark.parametrize(
    "status, unmapped_text_only, counts",
    [
        ("reported", False, True),
        ("reported", True, False),  # unmapped text alone: a write-in, not a complete answer (4.2 rule 4)
        ("reported", None, True),
        ("declined", False, False),
        ("unknown", False, False),
        ("declined", True, False),
        (None, False, False),
        ("maybe", False, False),
    ],
)
def test_counts_toward_completeness(con, status, unmapped_text_only, counts):
    assert (
        derived(con, "counts_toward_completeness", race_ethnicity_status=status, unmapped_text_only=unmapped_text_only)
        is counts
    )


def test_completeness_counts_exactly_the_reported_stratum_of_the_report(con):
    """The trend (this suite) and the report's completeness table classify every row alike."""
    from pipelines.report.tables import REPORTED, table

    stratum = table("completeness").stratum
    for status in ("reported", "declined", "unknown", "maybe", None):
        for unmapped in (True, False, None):
            row = {"race_ethnicity_status": status, "unmapped_text_only": unmapped}
            in_report = con.execute(
                f"SELECT {stratum} = '{REPORTED}' FROM (SELECT CAST(? AS VARCHAR) AS "
                "race_ethnicity_status, CAST(? AS BOOLEAN) AS unmapped_text_only)",
                [status, unmapped],
            ).fetchone()[0]
            assert derived(con, "counts_toward_completeness", **row) is bool(in_report), row


def test_only_the_language_pattern_is_null_on_a_row_of_nulls(con):
    """GX skips nulls: a rule that is NULL where it should be false would hide a broken row."""
    nulls = {name for name in DERIVED if derived(con, name) is None}
    assert nulls == {"preferred_language_well_formed"}


def test_hispanic_codes_of_the_suite_are_the_cdcrec_subtree():
    from pipelines.normalize.tables import tables

    meta = next(s.meta for s in load_suites() if s.name == "consistency")
    codes = meta["hispanic_codes"]
    assert len(codes) == len(set(codes)) == 42
    assert set(codes) == set(tables().hispanic)
