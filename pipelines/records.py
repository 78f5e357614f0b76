"""The landed record: the Avro schema in `schemas/` and the Arrow, DuckDB and BigQuery schemas derived from it."""
from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

import fastavro
import pyarrow as pa

PATIENT_TABLE = "patient_demographics"
REJECTED_TABLE = "rejected_records"
# Staging-only columns for "latest ingestion wins" within one batch: the file's place in the batch's ingestion
# order (path order in `run`, arrival order in `watch`) and the record's order within its file.
FILE_ORDER_COLUMN = "_file_order"
ORDINAL_COLUMN = "_ordinal"
STAGING_ONLY_COLUMNS = (FILE_ORDER_COLUMN, ORDINAL_COLUMN)
# Lineage fields are excluded from the content hash, so that re-delivering the same content changes nothing.
LINEAGE_FIELDS = frozenset({"ingested_at", "input_file", "input_position", "run_id", "record_hash"})


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
def avro_schema(table: str = PATIENT_TABLE) -> dict[str, Any]:
    """The parsed fastavro schema of a row of `table` (`schemas/<table>.avsc`)."""
    return fastavro.parse_schema(json.loads(_schema_text(f"{table}.avsc")))


def field_names(table: str = PATIENT_TABLE) -> list[str]:
    return [f["name"] for f in avro_schema(table)["fields"]]


def _base_type(avro_type: Any) -> tuple[Any, bool]:
    """Strips a ["null", T] union: returns (T, nullable)."""
    if isinstance(avro_type, list):
        non_null = [t for t in avro_type if t != "null"]
        if len(non_null) != 1:
            raise ValueError(f"unsupported Avro union {avro_type!r}")
        return non_null[0], "null" in avro_type
    return avro_type, False


_ARROW_PRIMITIVES = {"string": pa.string(), "int": pa.int32(), "long": pa.int64(), "boolean": pa.bool_(),
                     "double": pa.float64(), "float": pa.float32()}
_ARROW_LOGICAL = {"date": pa.date32(), "timestamp-micros": pa.timestamp("us", tz="UTC")}
_DUCKDB_PRIMITIVES = {"string": "VARCHAR", "int": "INTEGER", "long": "BIGINT", "boolean": "BOOLEAN",
                      "double": "DOUBLE", "float": "FLOAT"}
_DUCKDB_LOGICAL = {"date": "DATE", "timestamp-micros": "TIMESTAMPTZ"}
_BIGQUERY_PRIMITIVES = {"string": "STRING", "int": "INT64", "long": "INT64", "boolean": "BOOL",
                        "double": "FLOAT64", "float": "FLOAT64"}
_BIGQUERY_LOGICAL = {"date": "DATE", "timestamp-micros": "TIMESTAMP"}


def _map_type(avro_type: Any, primitives: Mapping[str, Any], logical: Mapping[str, Any], array) -> Any:
    if isinstance(avro_type, dict):
        if avro_type.get("logicalType") in logical:
            return logical[avro_type["logicalType"]]
        if avro_type.get("type") == "array":
            return array(_map_type(avro_type["items"], primitives, logical, array))
        return _map_type(avro_type["type"], primitives, logical, array)
    return primitives[avro_type]


def arrow_schema(table: str = PATIENT_TABLE) -> pa.Schema:
    """Arrow schema (for Parquet staging and export) derived from the Avro schema."""
    fields = []
    for f in avro_schema(table)["fields"]:
        base, nullable = _base_type(f["type"])
        fields.append(pa.field(f["name"], _map_type(base, _ARROW_PRIMITIVES, _ARROW_LOGICAL, pa.list_), nullable))
    return pa.schema(fields)


def duckdb_columns(table: str = PATIENT_TABLE) -> list[tuple[str, str, bool]]:
    """(name, DuckDB type, nullable) per field, derived from the Avro schema."""
    out = []
    for f in avro_schema(table)["fields"]:
        base, nullable = _base_type(f["type"])
        out.append((f["name"], _map_type(base, _DUCKDB_PRIMITIVES, _DUCKDB_LOGICAL, lambda t: f"{t}[]"), nullable))
    return out


def bigquery_schema(table: str = PATIENT_TABLE) -> list[dict[str, str]]:
    """BigQuery table schema (JSON form) derived from the Avro schema, for the Dataflow sink."""
    out = []
    for f in avro_schema(table)["fields"]:
        base, nullable = _base_type(f["type"])
        if isinstance(base, dict) and base.get("type") == "array":
            item = _map_type(base["items"], _BIGQUERY_PRIMITIVES, _BIGQUERY_LOGICAL, None)
            out.append({"name": f["name"], "type": item, "mode": "REPEATED"})
        else:
            out.append({"name": f["name"], "type": _map_type(base, _BIGQUERY_PRIMITIVES, _BIGQUERY_LOGICAL, None),
                        "mode": "NULLABLE" if nullable else "REQUIRED"})
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


def content_hash(row: Mapping[str, Any]) -> str:
    """SHA-256 over the non-lineage fields of a row, in schema order."""
    content = [[name, _jsonable(row.get(name))] for name in field_names(PATIENT_TABLE) if name not in LINEAGE_FIELDS]
    return hashlib.sha256(json.dumps(content, separators=(",", ":"), sort_keys=False).encode()).hexdigest()


def validate_row(row: Mapping[str, Any], table: str = PATIENT_TABLE) -> bool:
    """True when a row conforms to the table's Avro schema."""
    return fastavro.validation.validate(dict(row), avro_schema(table), raise_errors=False)


def staging_schema(kind: str) -> pa.Schema:
    """Arrow schema of a staging file: patient rows carry the staging-only ordering columns."""
    if kind == "patients":
        return (arrow_schema(PATIENT_TABLE).append(pa.field(FILE_ORDER_COLUMN, pa.int64(), False))
                .append(pa.field(ORDINAL_COLUMN, pa.int64(), False)))
    return arrow_schema(REJECTED_TABLE)
