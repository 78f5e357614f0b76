"""What a member-level quality-measure result is (contract 5.2), and the check every input row goes through,
whatever file it came from (CSV, Parquet, FHIR MeasureReport): a result, or a stable reason code.

Pure: no I/O. Reasons and their meaning are listed in docs/report.md ("Rejected results").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

REQUIRED_COLUMNS = ("patient_id", "measure", "denominator", "numerator")
OPTIONAL_COLUMNS = ("source", "exclusion")
TRUE_WORDS = frozenset({"true", "1", "yes"})
FALSE_WORDS = frozenset({"false", "0", "no"})

REJECT_REASONS: dict[str, str] = {
    "measure_result_missing_patient_id": "patient_id is empty (or not text)",
    "measure_result_missing_measure": "measure is empty (or not text)",
    "measure_result_invalid_boolean": "denominator, numerator or exclusion is not true/false, 1/0 or yes/no",
    "measure_result_numerator_outside_denominator": "numerator true with denominator false",
    "measure_result_wrong_field_count": "a CSV line with more or fewer fields than the header",
    "measure_report_invalid_json": "an NDJSON line that is not valid JSON",
    "measure_report_not_fhir_resource": "JSON that is not a FHIR resource (not an object, or no resourceType)",
    "measure_report_invalid_container": "a Bundle or Parameters whose entries or parameters are malformed, or "
    "nested too deep",
    "measure_report_not_individual": "a MeasureReport whose type is not individual (a summary has no member)",
    "measure_report_not_complete": "a MeasureReport whose status is not complete (pending or error)",
    "measure_report_missing_measure": "a MeasureReport without a measure canonical",
    "measure_report_missing_subject": "a MeasureReport without subject.reference",
    "measure_report_subject_not_patient": "a MeasureReport whose subject is not a Patient",
    "measure_report_invalid_population": "a group without a denominator or numerator population, or a count "
    "other than 0 or 1",
    "measure_report_group_unnamed": "a MeasureReport with several groups, one without id or code",
}


@dataclass(frozen=True, slots=True)
class MeasureResult:
    """One row of member-level results: a member (patient) in a measure's denominator or not, and so on."""

    patient_id: str
    measure: str
    denominator: bool
    numerator: bool
    exclusion: bool = False
    source: str | None = None


@dataclass(frozen=True, slots=True)
class Invalid:
    """Why a row is not a result: a code of REJECT_REASONS and a message that names columns, never values."""

    reason: str
    message: str


def as_boolean(value: Any) -> bool | None:
    """true/false, 1/0, yes/no (any case, surrounding blanks ignored), or a real boolean; None for anything else."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in TRUE_WORDS or word in FALSE_WORDS:
            return word in TRUE_WORDS
    return None


def _text(value: Any) -> str | None:
    """Identifiers as text: a string (trimmed, None when blank), or a whole number (member ids stored as integers)."""
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def check_result(values: Mapping[str, Any]) -> MeasureResult | Invalid:
    """A row (column name -> value) as a result, or why it is not one. `exclusion` and `source` may be absent or
    blank (not excluded; no source given)."""
    patient_id = _text(values.get("patient_id"))
    if patient_id is None:
        return Invalid("measure_result_missing_patient_id", "patient_id is empty")
    measure = _text(values.get("measure"))
    if measure is None:
        return Invalid("measure_result_missing_measure", "measure is empty")
    flags = {}
    for column in ("denominator", "numerator", "exclusion"):
        value = values.get(column)
        flags[column] = False if column == "exclusion" and _blank(value) else as_boolean(value)
        if flags[column] is None:
            return Invalid("measure_result_invalid_boolean", f"{column} is not true/false, 1/0 or yes/no")
    if flags["numerator"] and not flags["denominator"]:
        return Invalid("measure_result_numerator_outside_denominator", "numerator is true, denominator false")
    return MeasureResult(
        patient_id, measure, flags["denominator"], flags["numerator"], flags["exclusion"], _text(values.get("source"))
    )
