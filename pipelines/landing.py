"""Builds landed rows (patient_demographics, rejected_records) from what the reader found: pure, no Beam."""
from __future__ import annotations

import datetime as dt
import re
from typing import Any, Mapping

from pipelines.fhir.reader import FoundPatient, Rejection
from pipelines.fhir.strict import invalid_patient_elements
from pipelines.normalize import normalize_patient, race_ethnicity_raw
from pipelines.staging import content_hash

# FHIR `instant`: YYYY-MM-DDThh:mm:ss(.fraction)(Z|+hh:mm), the timezone is required.
_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$")


def parse_instant(value: Any) -> dt.datetime | None:
    """Parses `meta.lastUpdated` to an aware UTC datetime; None when absent or malformed."""
    if not isinstance(value, str) or not _INSTANT.match(value):
        return None
    text = value.replace("Z", "+00:00")
    main, _, rest = text.partition(".")
    if rest:  # Python accepts at most 6 fractional digits
        digits = re.match(r"\d+", rest).group(0)
        text = f"{main}.{digits[:6]}{rest[len(digits):]}"
    try:
        return dt.datetime.fromisoformat(text).astimezone(dt.timezone.utc)
    except ValueError:
        return None


def patient_row(found: FoundPatient, *, source: str, input_file: str, ingested_at: dt.datetime, run_id: str,
                strict_fhir: bool = True, policy: Any = None) -> dict[str, Any]:
    """One patient_demographics row: normalized demographics plus key, version and lineage."""
    row: dict[str, Any] = {"source": source, "patient_id": found.key}
    row.update(normalize_patient(found.resource, found.observations, policy))
    warnings = set(row["mapping_warnings"])
    if found.key_from_fullurl:
        warnings.add("patient_key_from_fullurl")
    meta = found.resource.get("meta")
    raw_last_updated = meta.get("lastUpdated") if isinstance(meta, dict) else None
    row["last_updated"] = parse_instant(raw_last_updated)
    if raw_last_updated is not None and row["last_updated"] is None:
        warnings.add("last_updated_invalid")
    invalid = invalid_patient_elements(found.resource) if strict_fhir else []
    if invalid:
        warnings.add("fhir_validation_failed")
    row["fhir_invalid_elements"] = invalid
    row["mapping_warnings"] = sorted(warnings)
    row["race_ethnicity_raw"] = race_ethnicity_raw(found.resource)
    row.update(ingested_at=ingested_at, first_arrived_at=ingested_at, input_file=input_file,
               input_position=found.position or "document", run_id=run_id)
    row["record_hash"] = content_hash(row)
    return row


def rejected_row(rejection: Rejection, *, source: str, input_file: str, rejected_at: dt.datetime,
                 run_id: str) -> dict[str, Any]:
    """One rejected_records row: where, why (stable code + message) and the raw text."""
    return {
        "source": source,
        "input_file": input_file,
        "position": rejection.position or "document",
        "reason": rejection.reason,
        "message": rejection.message,
        "resource_type": rejection.resource_type,
        "raw_text": rejection.raw,
        "rejected_at": rejected_at,
        "run_id": run_id,
    }
