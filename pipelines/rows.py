"""Landed rows (patient_demographics, rejected_records, deleted_patients), built a chunk at a time as Arrow tables
from what the reader found. Pure: no Beam, no DuckDB.

Speed matters here (every Patient of a multi-GB export passes through): rows are built column by column, and the
race/ethnicity classification is computed once per distinct payload, since payloads repeat heavily across
patients (a real corpus of 1,394 patients had 54 distinct ones).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import pyarrow as pa

from pipelines.fhir.records import Deletion, FoundPatient, Rejection, parse_instant
from pipelines.fhir.strict import invalid_patient_elements
from pipelines.normalize import (
    OTHER_KEYS,
    RACE_KEYS,
    Policy,
    RaceEthnicity,
    load_policy,
    other_demographics,
    race_ethnicity,
    race_ethnicity_extensions,
)
from pipelines.normalize import warning_codes as W
from pipelines.tables import DELETED, PATIENTS, REJECTED, arrow_schema

# Staging-only columns, for "latest wins" within a batch: the file's place in the batch's ingestion order and the
# record's order within its file.
FILE_ORDER = "_file_order"
ORDINAL = "_ordinal"
RACE_COLUMNS = (*RACE_KEYS, "race_ethnicity_raw")
# Content columns outside the race/ethnicity block; lineage (ingested_at, first_arrived_at, input_file,
# input_position, run_id, record_hash) is not content: re-delivering the same content changes nothing.
OTHER_CONTENT_COLUMNS = (
    "source",
    "patient_id",
    "fhir_invalid_elements",
    *OTHER_KEYS,
    "last_updated",
    "mapping_warnings",
)
MEMO_SIZE = 1 << 16


def _block(values: Sequence[Any]) -> bytes:
    return orjson.dumps(values)


def record_hash_of(race_block: bytes, other_block: bytes) -> str:
    return hashlib.sha256(race_block + b"\x1e" + other_block).hexdigest()


def record_hash(row: Mapping[str, Any]) -> str:
    """SHA-256 of a row's content (every column but lineage), the same as the chunk builder computes."""
    return record_hash_of(_block([row[c] for c in RACE_COLUMNS]), _block([row[c] for c in OTHER_CONTENT_COLUMNS]))


def staging_schema() -> pa.Schema:
    """patient_demographics plus the staging-only ordering columns."""
    return (
        arrow_schema(PATIENTS)
        .append(pa.field(FILE_ORDER, pa.int64(), False))
        .append(pa.field(ORDINAL, pa.int64(), False))
    )


@dataclass(frozen=True)
class RowContext:
    """What every row read from one file shares."""

    source: str
    input_file: str  # as stored: the path's display form
    ingested_at: dt.datetime
    run_id: str
    file_order: int = 0
    strict_fhir: bool = False


@dataclass(frozen=True, slots=True)
class _RaceEntry:
    """One distinct race/ethnicity payload, classified: the columns, their warnings and their hash block."""

    values: tuple[Any, ...]  # RACE_COLUMNS in order
    warnings: tuple[str, ...]
    block: bytes


class RaceMemo:
    """Race/ethnicity classification memoized on the payload (the race/ethnicity part of `Patient.extension`)."""

    def __init__(self, policy: Policy | None = None, size: int = MEMO_SIZE):
        self.policy = policy or load_policy()
        self.size = size
        self._entries: dict[bytes, _RaceEntry] = {}

    def classify(self, patient: Mapping[str, Any], observations: Sequence[Any] = ()) -> _RaceEntry:
        payload = race_ethnicity_extensions(patient.get("extension"))
        key = orjson.dumps(payload) if payload not in (None, []) else b""
        if observations:  # rare: a Patient with matched Observations is classified on its own
            return self._entry(race_ethnicity(payload, observations, self.policy), key)
        entry = self._entries.get(key)
        if entry is None:
            if len(self._entries) >= self.size:
                self._entries.clear()
            entry = self._entries[key] = self._entry(race_ethnicity(payload, (), self.policy), key)
        return entry

    @staticmethod
    def _entry(race: RaceEthnicity, key: bytes) -> _RaceEntry:
        values = (*(race.fields[k] for k in RACE_KEYS), key.decode() if key else None)
        return _RaceEntry(values, race.warnings, _block(values))


class PatientRows:
    """The rows of one chunk, built a Patient at a time, column by column."""

    def __init__(self, ctx: RowContext, memo: RaceMemo):
        self.ctx, self.memo = ctx, memo
        self.race_index: dict[int, int] = {}
        self.race_entries: list[_RaceEntry] = []
        self.columns: dict[str, list[Any]] = {
            name: []
            for name in (
                "patient_id",
                "_race",
                "mapping_warnings",
                "fhir_invalid_elements",
                *OTHER_KEYS,
                "last_updated",
                "input_position",
                "record_hash",
                ORDINAL,
            )
        }
        self.categories: Counter = Counter()

    def __len__(self) -> int:
        return len(self.columns["patient_id"])

    def add(self, found: FoundPatient) -> None:
        race = self.memo.classify(found.resource, found.observations)
        index = self.race_index.get(id(race))
        if index is None:
            index = self.race_index[id(race)] = len(self.race_entries)
            self.race_entries.append(race)
        other, warnings = other_demographics(found.resource, self.memo.policy)
        meta = found.resource.get("meta")
        raw_last_updated = meta.get("lastUpdated") if isinstance(meta, dict) else None
        last_updated = parse_instant(raw_last_updated)
        if raw_last_updated is not None and last_updated is None:
            warnings.append(W.LAST_UPDATED_INVALID)
        if found.key_from_fullurl:
            warnings.append(W.PATIENT_KEY_FROM_FULLURL)
        invalid = tuple(invalid_patient_elements(found.resource)) if self.ctx.strict_fhir else ()
        if invalid:
            warnings.append(W.FHIR_VALIDATION_FAILED)
        # Shared tuples, not a new list per row: millions of small containers would keep Python's GC busy.
        merged = tuple(sorted({*race.warnings, *warnings})) if warnings else race.warnings
        other_values = [other[k] for k in OTHER_KEYS]
        other_block = _block([self.ctx.source, found.key, invalid, *other_values, last_updated, merged])
        c = self.columns
        c["patient_id"].append(found.key)
        c["_race"].append(index)
        c["mapping_warnings"].append(merged)
        c["fhir_invalid_elements"].append(invalid)
        for name, value in zip(OTHER_KEYS, other_values, strict=True):
            c[name].append(value)
        c["last_updated"].append(last_updated)
        c["input_position"].append(found.position)
        c["record_hash"].append(record_hash_of(race.block, other_block))
        c[ORDINAL].append(found.ordinal)
        self.categories[race.values[RACE_KEYS.index("omb2024_category")]] += 1

    def table(self) -> pa.Table:
        """The chunk as an Arrow table in the staging schema (table columns, then _file_order and _ordinal)."""
        schema = staging_schema()
        n = len(self)
        c = self.columns
        races = pa.array(c["_race"], pa.int32())
        arrays: dict[str, pa.Array] = {}
        for position, name in enumerate(RACE_COLUMNS):
            distinct = pa.array([entry.values[position] for entry in self.race_entries], schema.field(name).type)
            arrays[name] = distinct.take(races)
        constants = {
            "source": self.ctx.source,
            "input_file": self.ctx.input_file,
            "ingested_at": self.ctx.ingested_at,
            "first_arrived_at": self.ctx.ingested_at,
            "run_id": self.ctx.run_id,
            FILE_ORDER: self.ctx.file_order,
        }
        for name, value in constants.items():
            arrays[name] = (
                pa.array([value], schema.field(name).type).take(pa.array([0] * n, pa.int32()))
                if n
                else pa.array([], schema.field(name).type)
            )
        for name in schema.names:
            if name not in arrays:
                arrays[name] = pa.array(c[name], schema.field(name).type)
        return pa.Table.from_arrays([arrays[name] for name in schema.names], schema=schema)


def rejected_table(rejections: Iterable[Rejection], ctx: RowContext) -> pa.Table:
    """rejected_records rows: where, why (stable code + message) and the raw text."""
    rows = [
        {
            "source": ctx.source,
            "input_file": ctx.input_file,
            "position": r.position,
            "reason": r.reason,
            "message": r.message,
            "resource_type": r.resource_type,
            "raw_text": r.raw,
            "rejected_at": ctx.ingested_at,
            "run_id": ctx.run_id,
        }
        for r in rejections
    ]
    return pa.Table.from_pylist(rows, schema=arrow_schema(REJECTED))


def deleted_table(deletions: Iterable[Deletion], ctx: RowContext) -> pa.Table:
    """deleted_patients rows; a deletion without a time in the file is at the ingestion time (contract 2)."""
    rows = [
        {
            "source": ctx.source,
            "patient_id": d.key,
            "deleted_at": d.deleted_at or ctx.ingested_at,
            "input_file": ctx.input_file,
            "input_position": d.position,
            "ingested_at": ctx.ingested_at,
            "run_id": ctx.run_id,
        }
        for d in deletions
    ]
    return pa.Table.from_pylist(rows, schema=arrow_schema(DELETED))
