"""The whole pure path of a file's bytes, as a read task runs it (reader, normalizer, row builder, Arrow tables,
Observations classified again), with the invariants every input must keep: never an exception, every record
exactly one of Patient / reject / deletion / other, every reject a documented reason, every row valid against its
Avro schema, and no last-resort guard firing (a guard that fires is a bug with a name, not a repair)."""

from __future__ import annotations

import datetime as dt
import io
import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from pipelines.fhir import REJECT_REASONS
from pipelines.fhir.reader import FileReader, ReadLimits
from pipelines.fhir.records import Deletion, FeedObservation, FoundPatient, OtherResource, Rejection
from pipelines.normalize import (
    NORMALIZATION_ERROR,
    WARNING_CODES,
    is_demographic_observation,
    load_policy,
    normalize_patient,
)
from pipelines.rows import (
    FILE_ORDER,
    ORDINAL,
    PatientRows,
    RaceMemo,
    RowContext,
    deleted_table,
    rejected_table,
    staging_schema,
)
from pipelines.tables import DELETED, PATIENTS, REJECTED, arrow_schema, validate_row
from pipelines.warehouse.observations import reclassify

POLICY = load_policy()
SMALL = ReadLimits(max_document_bytes=512, max_records_per_document=8, max_expanded_bytes=16 << 10)
LIMITS = (ReadLimits(), SMALL)
CRASHERS = Path(__file__).parent / "crashers"  # every input that ever failed, named `<what>--<file name as read>`
INGESTED = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


@dataclass
class Read:
    """The records of one file (or byte range), in the order the reader yields them."""

    patients: list[FoundPatient] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    deletions: list[Deletion] = field(default_factory=list)
    other: list[OtherResource] = field(default_factory=list)
    observations: list[FeedObservation] = field(default_factory=list)
    records_in: int = 0
    raw_bytes: int = 0  # the bytes of the range hashed for the ledger

    def summary(self) -> tuple[list, list, list, Counter]:
        """What was read, comparable between two readings of the same content."""
        return (
            [(p.key, p.position, p.ordinal) for p in self.patients],
            [(r.position, r.reason, r.raw) for r in self.rejections],
            [(d.key, d.position, d.deleted_at) for d in self.deletions],
            Counter(o.resource_type for o in self.other),
        )


last_input: tuple[str, bytes] = ("", b"")  # the file last read: the crasher, when a property fails


def read(data: bytes, name: str, limits: ReadLimits = ReadLimits(), start: int = 0, end: int | None = None) -> Read:
    """Reads bytes with the pipeline's reader; checks that each record is exactly one kind and each reject is
    documented."""
    global last_input
    last_input = (name, data)
    out = Read()
    kinds = {
        FoundPatient: out.patients,
        Rejection: out.rejections,
        Deletion: out.deletions,
        OtherResource: out.other,
        FeedObservation: out.observations,
    }
    reader = FileReader(io.BytesIO(data), name, limits, is_demographic_observation, start, end)
    for record in reader.records():
        kinds[type(record)].append(record)
        out.records_in += not isinstance(record, FeedObservation)
    out.raw_bytes = reader.raw_bytes
    assert out.records_in == len(out.patients) + len(out.rejections) + len(out.deletions) + len(out.other)
    for rejection in out.rejections:
        assert rejection.reason in REJECT_REASONS, rejection.reason
    return out


def _context(name: str, strict: bool) -> RowContext:
    return RowContext("fuzz", name, INGESTED, "run-fuzz", 0, strict)


def _check_row(row: dict[str, Any]) -> None:
    row = {k: v for k, v in row.items() if k not in (FILE_ORDER, ORDINAL)}
    assert NORMALIZATION_ERROR not in row["mapping_warnings"], "a last-resort guard fired"
    assert set(row["mapping_warnings"]) <= WARNING_CODES, set(row["mapping_warnings"]) - WARNING_CODES
    assert validate_row(row, PATIENTS), row


def _check_table(table: pa.Table, schema: pa.Schema, avro_table: str) -> list[dict[str, Any]]:
    assert table.schema.equals(schema), table.schema
    rows = table.to_pylist()
    for row in rows if avro_table != PATIENTS else ():
        assert validate_row(row, avro_table), row
    return rows


def patient_rows(found: Read, name: str, strict: bool) -> list[dict[str, Any]]:
    """The patient_demographics rows of what was read, then classified again with the file's feed Observations
    (as the commit does when they match a Patient of another file)."""
    rows = PatientRows(_context(name, strict), RaceMemo(POLICY))
    for patient in found.patients:
        rows.add(patient)
    built = _check_table(rows.table(), staging_schema(), PATIENTS)
    feed: dict[str, list[dict]] = defaultdict(list)
    for observation in found.observations:  # stored as the warehouse stores them, and read back
        feed[observation.patient_key].append(json.loads(json.dumps(observation.resource, sort_keys=True)))
    for row in built:
        _check_row(row)
        if feed.get(row["patient_id"]):
            reclassify(row, feed[row["patient_id"]], POLICY)
            _check_row(row)
    return built


def land(data: bytes, name: str, limits: ReadLimits = ReadLimits()) -> Read:
    """Every table a read task builds from one file, with and without strict FHIR validation; returns what was
    read."""
    found = read(data, name, limits)
    for patient in found.patients:  # the public entry point, which the row builder calls in two halves
        normalized = normalize_patient(patient.resource, patient.observations, POLICY)
        assert NORMALIZATION_ERROR not in normalized["mapping_warnings"], "the last-resort guard fired"
    lenient, strict = patient_rows(found, name, False), patient_rows(found, name, True)
    assert [r["patient_id"] for r in lenient] == [r["patient_id"] for r in strict] == [p.key for p in found.patients]
    ctx = _context(name, False)
    _check_table(rejected_table(found.rejections, ctx), arrow_schema(REJECTED), REJECTED)
    _check_table(deleted_table(found.deletions, ctx), arrow_schema(DELETED), DELETED)
    return found
