"""What the reader finds in a file: every record is exactly one of a Patient, a deletion, a dead letter or another
resource, so that `records_in = patients + rejected + other_resources + deletions` holds by construction."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

RAW_TEXT_LIMIT = 64 * 1024
# FHIR `instant`: YYYY-MM-DDThh:mm:ss(.fraction)(Z|+hh:mm), the timezone is required.
_INSTANT = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$")


@dataclass(slots=True)
class FoundPatient:
    """A Patient resource, its key, and the demographic Observations of the same document that point at it."""

    position: str
    key: str
    key_from_fullurl: bool
    resource: dict[str, Any]
    full_url: str | None = None
    observations: list[dict[str, Any]] = field(default_factory=list)
    ordinal: int = 0  # the record's order in its file (offset-based: the same whichever range read it)


@dataclass(frozen=True, slots=True)
class Rejection:
    """A dead letter: where it was, a stable reason code, a message, and the raw text (first 64 KiB)."""

    position: str
    reason: str
    message: str
    raw: str
    resource_type: str | None = None


@dataclass(frozen=True, slots=True)
class Deletion:
    """A DELETE of `Patient/<key>`; `deleted_at` None means "at ingestion" (no time in the file)."""

    position: str
    key: str
    deleted_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class OtherResource:
    """A resource other than Patient (or a DELETE of one): counted by type, not landed."""

    resource_type: str


@dataclass(frozen=True, slots=True)
class FeedObservation:
    """Not a record: a race/ethnicity Observation (already counted as an OtherResource) whose Patient is not in
    its own document, kept to be matched within the feed (a Bulk export's Observation.ndjson)."""

    patient_key: str
    resource: dict[str, Any]


@dataclass(frozen=True, slots=True)
class KeptResource:
    """Not a record: a resource of a kind the caller asked to keep (MeasureReports for `report --measures`), with
    its position; it is counted as an OtherResource too."""

    position: str
    resource: dict[str, Any]


def raw_text(data: bytes | str) -> str:
    """The first 64 KiB of a record as text, for the dead letter."""
    if isinstance(data, str):
        return data[:RAW_TEXT_LIMIT]
    return data[:RAW_TEXT_LIMIT].decode("utf-8", errors="replace")


def parse_instant(value: Any) -> dt.datetime | None:
    """A FHIR instant (`meta.lastUpdated`, `response.lastModified`) as an aware UTC datetime; None when absent,
    malformed or out of the representable range (year 1 to 9999)."""
    if not isinstance(value, str):
        return None
    match = _INSTANT.match(value)
    if match is None:
        return None
    main, fraction, zone = match.groups()
    text = f"{main}.{(fraction or '0')[:6]}{'+00:00' if zone == 'Z' else zone}"
    try:
        return dt.datetime.fromisoformat(text).astimezone(dt.UTC)
    except (ValueError, OverflowError):
        return None


def patient_key_of_reference(reference: str) -> str:
    """The key a reference points at: `Patient/123` and `https://x/fhir/Patient/123` -> `123`; others as they are
    (a `urn:uuid:` reference names a Patient keyed by its fullUrl)."""
    if "/_history/" in reference:
        reference = reference.split("/_history/")[0]
    head, sep, tail = reference.rpartition("Patient/")
    if sep and tail and "/" not in tail and (not head or head.endswith("/")):
        return tail
    return reference
