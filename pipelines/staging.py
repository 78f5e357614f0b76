"""Interim: staging-only columns and the content hash (to be folded into the landing rows module)."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any, Mapping

import pyarrow as pa

from pipelines.tables import PATIENTS, REJECTED, arrow_schema, field_names

FILE_ORDER_COLUMN = "_file_order"
ORDINAL_COLUMN = "_ordinal"
STAGING_ONLY_COLUMNS = (FILE_ORDER_COLUMN, ORDINAL_COLUMN)
LINEAGE_FIELDS = frozenset({"ingested_at", "first_arrived_at", "input_file", "input_position", "run_id", "record_hash"})


def _jsonable(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


def content_hash(row: Mapping[str, Any]) -> str:
    content = [[name, _jsonable(row.get(name))] for name in field_names(PATIENTS) if name not in LINEAGE_FIELDS]
    return hashlib.sha256(json.dumps(content, separators=(",", ":"), sort_keys=False).encode()).hexdigest()


def staging_schema(kind: str) -> pa.Schema:
    if kind == "patients":
        return (arrow_schema(PATIENTS).append(pa.field(FILE_ORDER_COLUMN, pa.int64(), False))
                .append(pa.field(ORDINAL_COLUMN, pa.int64(), False)))
    return arrow_schema(REJECTED)
