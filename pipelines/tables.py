"""Every table of the warehouse, defined once as an Avro schema in `schemas/`; the Arrow (Parquet), DuckDB and
BigQuery schemas are derived from it here, so that the local and the Dataflow sinks write the same columns."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import fastavro
import pyarrow as pa

PATIENTS = "patient_demographics"
REJECTED = "rejected_records"
DELETED = "deleted_patients"
RUNS = "runs"
LEDGER = "ingested_files"
OBSERVATIONS = "demographic_observations"
VALIDATION = "validation_results"
PARQUET_PARTITIONS = "parquet_partitions"
ALL_TABLES = (PATIENTS, REJECTED, DELETED, RUNS, LEDGER, OBSERVATIONS, VALIDATION, PARQUET_PARTITIONS)


def _schema_text(name: str) -> str:
    """Reads a schema from the installed package, or from the repository's `schemas/` in a source checkout."""
    try:
        packaged = resources.files("pipelines.schemas").joinpath(name)
        if packaged.is_file():
            return packaged.read_text(encoding="utf-8")
    except ModuleNotFoundError:  # a source checkout on PYTHONPATH, not installed
        pass
    return (Path(__file__).resolve().parent.parent / "schemas" / name).read_text(encoding="utf-8")


@functools.cache
def avro_schema(table: str) -> dict[str, Any]:
    """The parsed fastavro schema of a row of `table` (`schemas/<table>.avsc`)."""
    return fastavro.parse_schema(json.loads(_schema_text(f"{table}.avsc")))


@functools.cache
def field_names(table: str) -> tuple[str, ...]:
    return tuple(f["name"] for f in avro_schema(table)["fields"])


def _base_type(avro_type: Any) -> tuple[Any, bool]:
    """Strips a ["null", T] union: returns (T, nullable)."""
    if isinstance(avro_type, list):
        non_null = [t for t in avro_type if t != "null"]
        if len(non_null) != 1:
            raise ValueError(f"unsupported Avro union {avro_type!r}")
        return non_null[0], "null" in avro_type
    return avro_type, False


_ARROW_PRIMITIVES = {
    "string": pa.string(),
    "int": pa.int32(),
    "long": pa.int64(),
    "boolean": pa.bool_(),
    "double": pa.float64(),
    "float": pa.float32(),
}
_ARROW_LOGICAL = {"date": pa.date32(), "timestamp-micros": pa.timestamp("us", tz="UTC")}
_DUCKDB_PRIMITIVES = {
    "string": "VARCHAR",
    "int": "INTEGER",
    "long": "BIGINT",
    "boolean": "BOOLEAN",
    "double": "DOUBLE",
    "float": "FLOAT",
}
_DUCKDB_LOGICAL = {"date": "DATE", "timestamp-micros": "TIMESTAMPTZ"}
_BIGQUERY_PRIMITIVES = {
    "string": "STRING",
    "int": "INT64",
    "long": "INT64",
    "boolean": "BOOL",
    "double": "FLOAT64",
    "float": "FLOAT64",
}
_BIGQUERY_LOGICAL = {"date": "DATE", "timestamp-micros": "TIMESTAMP"}


def _map_type(
    avro_type: Any, primitives: Mapping[str, Any], logical: Mapping[str, Any], array: Callable[[Any], Any] | None
) -> Any:
    if isinstance(avro_type, dict):
        if avro_type.get("logicalType") in logical:
            return logical[avro_type["logicalType"]]
        if avro_type.get("type") == "array" and array is not None:
            return array(_map_type(avro_type["items"], primitives, logical, array))
        return _map_type(avro_type["type"], primitives, logical, array)
    return primitives[avro_type]


@functools.cache
def arrow_schema(table: str) -> pa.Schema:
    """Arrow schema (Parquet staging and export) derived from the Avro schema."""
    fields = []
    for f in avro_schema(table)["fields"]:
        base, nullable = _base_type(f["type"])
        fields.append(pa.field(f["name"], _map_type(base, _ARROW_PRIMITIVES, _ARROW_LOGICAL, pa.list_), nullable))
    return pa.schema(fields)


def duckdb_columns(table: str) -> list[tuple[str, str, bool]]:
    """(name, DuckDB type, nullable) per field, derived from the Avro schema."""
    out = []
    for f in avro_schema(table)["fields"]:
        base, nullable = _base_type(f["type"])
        out.append((f["name"], _map_type(base, _DUCKDB_PRIMITIVES, _DUCKDB_LOGICAL, lambda t: f"{t}[]"), nullable))
    return out


def duckdb_ddl(table: str) -> str:
    """`CREATE TABLE IF NOT EXISTS` for one table."""
    cols = ", ".join(
        f'"{name}" {sql}{"" if nullable else " NOT NULL"}' for name, sql, nullable in duckdb_columns(table)
    )
    return f"CREATE TABLE IF NOT EXISTS {table} ({cols})"


def bigquery_schema(table: str) -> list[dict[str, str]]:
    """BigQuery table schema (JSON form) derived from the Avro schema, for the Dataflow sink."""
    out = []
    for f in avro_schema(table)["fields"]:
        base, nullable = _base_type(f["type"])
        if isinstance(base, dict) and base.get("type") == "array":
            item = _map_type(base["items"], _BIGQUERY_PRIMITIVES, _BIGQUERY_LOGICAL, None)
            out.append({"name": f["name"], "type": item, "mode": "REPEATED"})
        else:
            out.append(
                {
                    "name": f["name"],
                    "type": _map_type(base, _BIGQUERY_PRIMITIVES, _BIGQUERY_LOGICAL, None),
                    "mode": "NULLABLE" if nullable else "REQUIRED",
                }
            )
    return out


def validate_row(row: Mapping[str, Any], table: str) -> bool:
    """True when a row conforms to the table's Avro schema."""
    return fastavro.validation.validate(dict(row), avro_schema(table), raise_errors=False)
