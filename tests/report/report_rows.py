"""Warehouses for the report tests, built through the warehouse module (its DDL, the Avro schema's columns).

The one place that makes patient_demographics rows for these tests (conftest.py turns it into a fixture)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa

from pipelines.normalize.classify import MULTI
from pipelines.tables import DELETED, PATIENTS, arrow_schema
from pipelines.warehouse import connect, ensure_tables

UTC = dt.UTC
WHEN = dt.datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def person(
    patient_id: str,
    source: str = "feed_a",
    categories: Iterable[str] = ("WHITE",),
    status: str = "reported",
    hedis_race: str = "White",
    hedis_ethnicity: str = "NotHispanicOrLatino",
    **values: Any,
) -> dict[str, Any]:
    """One patient_demographics row: every column of the Avro schema, neutral unless given."""
    cats = sorted(categories)
    category = (
        cats[0]
        if len(cats) == 1
        else MULTI
        if cats
        else {"declined": "DECLINED", "unknown": "UNKNOWN"}.get(status, "SOME_OTHER")
    )
    row: dict[str, Any] = {f.name: [] if pa.types.is_list(f.type) else None for f in arrow_schema(PATIENTS)}
    row.update(
        source=source,
        patient_id=patient_id,
        race_ethnicity_status=status,
        unmapped_text_only=False,
        omb2024_categories=cats,
        omb2024_category=category,
        hedis_race=hedis_race,
        hedis_ethnicity=hedis_ethnicity,
        race_source_format="us-core",
        preferred_language="en",
        last_updated=WHEN,
        ingested_at=WHEN,
        first_arrived_at=WHEN,
        input_file=f"/data/{source}.ndjson",
        input_position="byte 0",
        run_id="test-run",
        record_hash=patient_id,
    )
    row.update(values)
    return row


def many(count: int, prefix: str, **values: Any) -> list[dict[str, Any]]:
    """`count` patients alike (ids prefix-0, prefix-1, ...)."""
    return [person(f"{prefix}-{i}", **values) for i in range(count)]


def deletion(patient_id: str, source: str = "feed_a") -> dict[str, Any]:
    """One deleted_patients row: the patient left patient_demographics."""
    return {
        "source": source,
        "patient_id": patient_id,
        "deleted_at": WHEN,
        "input_file": f"/data/{source}.ndjson",
        "input_position": "line 1",
        "ingested_at": WHEN,
        "run_id": "test-run",
    }


def build_warehouse(path: Path, rows: list[dict[str, Any]], deleted: Iterable[dict[str, Any]] = ()) -> Path:
    """A warehouse holding exactly `rows` in patient_demographics and `deleted` in deleted_patients (every other
    table empty)."""
    with connect(path) as con:
        ensure_tables(con)
        for table, content in ((PATIENTS, rows), (DELETED, list(deleted))):
            con.register("_rows", pa.Table.from_pylist(content, schema=arrow_schema(table)))
            con.execute(f"INSERT INTO {table} SELECT * FROM _rows")
            con.unregister("_rows")
    return path
