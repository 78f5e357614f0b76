"""Builders for patient_demographics rows and DuckDB warehouses used by the validation tests."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import pyarrow as pa
import pytest

from pipelines.tables import PATIENTS, arrow_schema, duckdb_columns
from pipelines.warehouse import ensure_tables

UTC = dt.UTC
INGESTED = dt.datetime(2026, 11, 1, 12, 0, tzinfo=UTC)

# (status, categories, category, hedis_race, hedis_ethnicity, race codes, ethnicity codes): consistent examples.
PROFILES = {
    "white": ("reported", ["WHITE"], "WHITE", "White", "NotHispanicOrLatino", ["2106-3"], ["2186-5"]),
    "asian": ("reported", ["ASIAN"], "ASIAN", "Asian", "NotHispanicOrLatino", ["2028-9", "2039-6"], ["2186-5"]),
    "hispanic_white": (
        "reported",
        ["HISPANIC", "WHITE"],
        "MULTIRACIAL_MULTIETHNIC",
        "White",
        "HispanicOrLatino",
        ["2106-3"],
        ["2135-2", "2148-5"],
    ),
    "mena": ("reported", ["MENA"], "MENA", "White", "NotHispanicOrLatino", ["2106-3", "2129-5"], ["2186-5"]),
    "two_races": (
        "reported",
        ["ASIAN", "BLACK"],
        "MULTIRACIAL_MULTIETHNIC",
        "TwoOrMoreRaces",
        "Unknown",
        ["2028-9", "2054-5"],
        [],
    ),
    "other": ("reported", [], "SOME_OTHER", "SomeOtherRace", "NotHispanicOrLatino", ["2131-1"], ["2186-5"]),
    "declined": ("declined", [], "DECLINED", "AskedButNoAnswer", "AskedButNoAnswer", [], []),
    "unknown": ("unknown", [], "UNKNOWN", "Unknown", "Unknown", [], []),
    "writein": ("reported", [], "SOME_OTHER", "Unknown", "Unknown", [], []),  # with unmapped_text_only=True
}


def patient(i: int = 0, profile: str = "white", source: str = "feed_a", **overrides: Any) -> dict[str, Any]:
    """One valid, consistent patient_demographics row (every column of the Avro schema)."""
    status, cats, cat, hrace, heth, rcodes, ecodes = PROFILES[profile]
    row = {
        "source": source,
        "patient_id": f"p{i}",
        "race_ethnicity_status": status,
        "omb2024_categories": list(cats),
        "omb2024_category": cat,
        "hedis_race": hrace,
        "hedis_ethnicity": heth,
        "race_detailed_codes": list(rcodes),
        "ethnicity_detailed_codes": list(ecodes),
        "race_text": None,
        "ethnicity_text": None,
        "race_source_format": "us-core",
        "mapping_warnings": [],
        "preferred_language": "en",
        "birth_date": dt.date(1980, 1, 1 + i % 28),
        "birth_year": 1980,
        "administrative_gender": "female",
        "postal_code": "94110",
        "state": "CA",
        "last_updated": dt.datetime(2026, 10, 1, tzinfo=UTC),
        "ingested_at": INGESTED,
        "input_file": f"/data/{source}/bundle.json",
        "input_position": f"entry[{i}]",
        "run_id": "landing-run",
        "record_hash": f"{i:064x}",
    }
    neutral = {"VARCHAR": "", "BOOLEAN": False, "TIMESTAMPTZ": INGESTED}
    for name, sql_type, nullable in duckdb_columns(PATIENTS):  # columns added to the schema since: neutral values
        if name not in row:
            row[name] = [] if sql_type.endswith("[]") else None if nullable else neutral.get(sql_type, 0)
    row.update(overrides)
    return row


def patients(n: int, source: str = "feed_a", reported_share: float = 1.0, start: int = 0) -> list[dict[str, Any]]:
    """n consistent rows of one source, the first `reported_share` of them reported, the rest unknown."""
    reported = round(n * reported_share)
    profiles = ["white", "asian", "hispanic_white", "mena", "two_races", "other"]
    return [
        patient(
            start + i,
            profiles[i % len(profiles)] if i < reported else ("declined" if i % 2 else "unknown"),
            source=source,
        )
        for i in range(n)
    ]


def land(con, rows: list[dict[str, Any]]) -> None:
    """Inserts rows into patient_demographics as the warehouse defines it (rows that may break its rules)."""
    ensure_tables(con)
    table = pa.Table.from_pylist(rows, schema=arrow_schema(PATIENTS))
    con.register("_landing", table)
    try:
        con.execute("INSERT INTO patient_demographics SELECT * FROM _landing")
    finally:
        con.unregister("_landing")


def validated(
    validator,
    rows: list[dict[str, Any]],
    scope: str = "source",
    source: str | None = "feed_a",
    run_id: str = "r1",
    drop: Iterable[str] = (),
    **window: Any,
) -> list[dict[str, Any]]:
    """`rows` (typed by the warehouse's schema, but free of its NOT NULL constraints, so that they can break the
    rules), without the `drop` columns, validated as one batch on a fresh DuckDB connection."""
    import duckdb

    excluded = f" EXCLUDE ({', '.join(drop)})" if drop else ""
    with duckdb.connect() as con:
        con.register("rows", pa.Table.from_pylist(rows, schema=arrow_schema(PATIENTS)))
        with validator.batches(con, f"SELECT *{excluded} FROM rows") as batches:
            return validator.validate(con, batches.whole, scope, source, run_id, **window)


@pytest.fixture(scope="session")
def validator():
    from pipelines.validation import Validator

    return Validator()


@pytest.fixture
def warehouse(tmp_path):
    import duckdb

    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    yield con
    con.close()
