"""Detects a file's shape by content (JSON resource, Bundle, NDJSON, gzip) and finds every resource in it.

Every record found is exactly one of: a Patient (`FoundPatient`), a dead letter (`Rejection`) or another
resource (counted by type), so that `records_in = patients + rejected + other_resources` holds by
construction. Bundles are containers, not records: their entries are.
"""
from __future__ import annotations

import gzip
import io
import zlib
from collections import Counter
from dataclasses import dataclass, field
from typing import IO, Any, Callable

import orjson

RAW_TEXT_LIMIT = 64 * 1024
MAX_BUNDLE_DEPTH = 16
GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = b"\xef\xbb\xbf"
NDJSON_SUFFIXES = (".ndjson", ".jsonl", ".ndjson.gz", ".jsonl.gz")


@dataclass(frozen=True)
class Rejection:
    """A dead letter: where it was, a stable reason code, a message, and the raw text (first 64 KiB)."""

    position: str
    reason: str
    message: str
    raw: str
    resource_type: str | None = None


@dataclass
class FoundPatient:
    """A Patient resource, its key, and the demographic Observations of the same document that point at it."""

    position: str
    key: str
    key_from_fullurl: bool
    resource: dict[str, Any]
    full_url: str | None = None
    observations: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class FileContents:
    """Everything read from one file."""

    patients: list[FoundPatient] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    other_resources: Counter = field(default_factory=Counter)
    # Demographic Observations whose subject is not a Patient of their own document (Bulk exports put
    # Observations and Patients in different files): (subject reference, resource), matched later per feed.
    unmatched_observations: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    @property
    def records_in(self) -> int:
        return len(self.patients) + len(self.rejections) + sum(self.other_resources.values())


def _raw_text(data: bytes | str) -> str:
    if isinstance(data, str):
        return data[:RAW_TEXT_LIMIT]
    return data[:RAW_TEXT_LIMIT].decode("utf-8", errors="replace")


def _json_text(value: Any) -> str:
    return _raw_text(orjson.dumps(value))


def _non_empty_string(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def patient_key_of_reference(reference: str) -> str:
    """The key a reference points at: `Patient/123` and `https://x/fhir/Patient/123` -> `123`; others as they are
    (a `urn:uuid:` reference names a Patient keyed by its fullUrl)."""
    head, sep, tail = reference.rpartition("Patient/")
    if sep and tail and "/" not in tail and (not head or head.endswith("/")):
        return tail
    return reference


def _reference_targets(patient: FoundPatient) -> set[str]:
    """The reference strings that can point at this Patient from the same document."""
    targets = {f"Patient/{patient.key}"} if not patient.key_from_fullurl else set()
    if patient.full_url:
        targets.add(patient.full_url)
    return targets


def _subject_reference(resource: dict[str, Any]) -> str | None:
    subject = resource.get("subject")
    ref = _non_empty_string(subject.get("reference")) if isinstance(subject, dict) else None
    if ref is None:
        return None
    if "/_history/" in ref:
        ref = ref.split("/_history/")[0]
    return ref


def _matches(reference: str, targets: set[str]) -> bool:
    if reference in targets:
        return True
    # absolute references: https://server/fhir/Patient/123
    return any(reference.endswith("/" + t) for t in targets if t.startswith("Patient/"))


class _DocumentWalker:
    """Walks one JSON document (a resource, possibly a Bundle with nested Bundles)."""

    def __init__(self, out: FileContents, is_demographic_observation: Callable[[dict], bool]):
        self.out = out
        self.is_demographic_observation = is_demographic_observation

    def walk(self, value: Any, position: str) -> None:
        doc_patients: list[FoundPatient] = []
        doc_observations: list[dict[str, Any]] = []
        self._visit(value, position, None, 0, doc_patients, doc_observations)
        for obs in doc_observations:
            ref = _subject_reference(obs)
            if ref is None:
                continue
            matched = False
            for patient in doc_patients:
                if _matches(ref, _reference_targets(patient)):
                    patient.observations.append(obs)
                    matched = True
            if not matched:
                self.out.unmatched_observations.append((ref, obs))

    def _reject(self, position: str, reason: str, message: str, raw: Any, resource_type: str | None = None) -> None:
        self.out.rejections.append(Rejection(position, reason, message, _json_text(raw), resource_type))

    def _visit(self, value: Any, position: str, full_url: str | None, depth: int,
               patients: list[FoundPatient], observations: list[dict[str, Any]]) -> None:
        resource_type = value.get("resourceType") if isinstance(value, dict) else None
        if not isinstance(resource_type, str) or not resource_type:
            kind = "an object without resourceType" if isinstance(value, dict) else f"a JSON {type(value).__name__}"
            self._reject(position, "not_fhir_resource", f"expected a FHIR resource, found {kind}", value)
            return
        if resource_type == "Bundle":
            self._visit_bundle(value, position, depth, patients, observations)
        elif resource_type == "Patient":
            self._visit_patient(value, position, full_url, patients)
        else:
            self.out.other_resources[resource_type] += 1
            if resource_type == "Observation" and self.is_demographic_observation(value):
                observations.append(value)

    def _visit_bundle(self, bundle: dict[str, Any], position: str, depth: int,
                      patients: list[FoundPatient], observations: list[dict[str, Any]]) -> None:
        if depth >= MAX_BUNDLE_DEPTH:
            self._reject(position, "nesting_too_deep", f"Bundles nested more than {MAX_BUNDLE_DEPTH} deep", bundle,
                         "Bundle")
            return
        entries = bundle.get("entry")
        if entries is None:
            return  # an empty Bundle holds no records
        if not isinstance(entries, list):
            self._reject(position, "invalid_bundle", "Bundle.entry is not a list", bundle, "Bundle")
            return
        prefix = f"{position} " if position else ""
        for index, entry in enumerate(entries):
            entry_position = f"{prefix}entry[{index}]"
            if not isinstance(entry, dict):
                self._reject(entry_position, "bundle_entry_invalid", "the Bundle entry is not a JSON object", entry)
                continue
            resource = entry.get("resource")
            if resource is None:
                self._reject(entry_position, "bundle_entry_without_resource", "the Bundle entry has no resource", entry)
                continue
            self._visit(resource, entry_position, _non_empty_string(entry.get("fullUrl")), depth + 1,
                        patients, observations)

    def _visit_patient(self, resource: dict[str, Any], position: str, full_url: str | None,
                       patients: list[FoundPatient]) -> None:
        patient_id = resource.get("id")
        key = _non_empty_string(patient_id) if isinstance(patient_id, str) else None
        if key is not None:
            found = FoundPatient(position, key, False, resource, full_url)
        elif full_url is not None:
            found = FoundPatient(position, full_url, True, resource, full_url)
        else:
            self._reject(position, "patient_without_id", "the Patient has neither id nor a fullUrl", resource,
                         "Patient")
            return
        patients.append(found)
        self.out.patients.append(found)


def _open_stream(raw: IO[bytes]) -> IO[bytes]:
    """Wraps gzip data (detected by its magic bytes, not the name) in a decompressing reader."""
    if hasattr(raw, "peek"):
        buffered = raw
    elif isinstance(raw, io.RawIOBase):
        buffered = io.BufferedReader(raw)
    else:  # a file-like object without peek (some remote filesystems): read it whole
        buffered = io.BufferedReader(io.BytesIO(raw.read()))  # type: ignore[arg-type]
    if buffered.peek(2)[:2] == GZIP_MAGIC:
        return io.BufferedReader(gzip.GzipFile(fileobj=buffered))  # type: ignore[arg-type]
    return buffered


def _never(_: dict) -> bool:
    return False


def read_fhir_stream(raw: IO[bytes], name: str,
                     is_demographic_observation: Callable[[dict], bool] = _never) -> FileContents:
    """Reads one file's bytes: gzip or not, a single JSON document or NDJSON (one resource or Bundle per line).

    A truncated or corrupt part becomes a dead letter at its position; what came before it is kept.
    """
    out = FileContents()
    walker = _DocumentWalker(out, is_demographic_observation)
    stream = _open_stream(raw)
    pos = _Position()
    try:
        first = b""
        while not first.strip():
            line = stream.readline()
            if not line:
                break
            pos.line += 1
            first = line
        if not first.strip():
            out.rejections.append(Rejection("file", "empty_file", "the file is empty", ""))
            return out
        if pos.line == 1 and first.startswith(UTF8_BOM):
            first = first[len(UTF8_BOM):]
        if b"\x00" in first[:8192]:
            out.rejections.append(Rejection("file", "binary_content", "the file is binary, not JSON text",
                                            _raw_text(first)))
            return out
        try:
            first_value = orjson.loads(first)
            ndjson = True
        except orjson.JSONDecodeError:
            first_value, ndjson = None, False
        if not ndjson:
            rest = stream.read()
            whole = first + rest
            try:
                walker.walk(orjson.loads(whole), "")
                return out
            except orjson.JSONDecodeError as err:
                if not (name.lower().endswith(NDJSON_SUFFIXES) or _looks_like_ndjson(rest)):
                    out.rejections.append(Rejection("file", "invalid_json", f"invalid JSON: {err}", _raw_text(whole)))
                    return out
            # NDJSON whose first line is broken: reject that line, read the rest line by line.
            out.rejections.append(Rejection(f"line {pos.line}", "invalid_json", "invalid JSON line",
                                            _raw_text(first)))
            _read_lines(io.BytesIO(rest), pos, walker, out)
            return out
        walker.walk(first_value, f"line {pos.line}")
        _read_lines(stream, pos, walker, out)
    except (OSError, EOFError, zlib.error) as err:
        reason = "invalid_gzip" if isinstance(err, (EOFError, zlib.error, gzip.BadGzipFile)) else "unreadable_file"
        out.rejections.append(Rejection(f"after line {pos.line}", reason, f"{type(err).__name__}: {err}", ""))
    return out


@dataclass
class _Position:
    """The last line read, shared with the error handler so a stream error names where it happened."""

    line: int = 0


def _looks_like_ndjson(rest: bytes) -> bool:
    """True when the second non-blank line is a JSON object on its own (an NDJSON file with a bad first line)."""
    for line in rest.splitlines():
        if line.strip():
            try:
                return isinstance(orjson.loads(line), dict)
            except orjson.JSONDecodeError:
                return False
    return False


def _read_lines(stream: IO[bytes], pos: _Position, walker: _DocumentWalker, out: FileContents) -> None:
    for line in stream:
        pos.line += 1
        if not line.strip():
            continue
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError as err:
            out.rejections.append(Rejection(f"line {pos.line}", "invalid_json", f"invalid JSON line: {err}",
                                            _raw_text(line)))
            continue
        walker.walk(value, f"line {pos.line}")


def read_fhir_bytes(data: bytes, name: str = "",
                    is_demographic_observation: Callable[[dict], bool] = _never) -> FileContents:
    return read_fhir_stream(io.BytesIO(data), name, is_demographic_observation)


def read_fhir_file(path: str, is_demographic_observation: Callable[[dict], bool] = _never,
                   opener: Callable[[str], IO[bytes]] | None = None) -> FileContents:
    """Reads a file by path; `opener` lets Beam pass its FileSystems (GCS on Dataflow)."""
    try:
        raw = opener(path) if opener else open(path, "rb")
    except OSError as err:
        out = FileContents()
        out.rejections.append(Rejection("file", "unreadable_file", f"{type(err).__name__}: {err.strerror or err}", ""))
        return out
    with raw:
        return read_fhir_stream(raw, path, is_demographic_observation)

