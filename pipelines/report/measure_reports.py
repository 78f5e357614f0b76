"""FHIR MeasureReports of type `individual` as member-level results (contract 5.2).

The shapes of contract section 2: one JSON document (a MeasureReport, a Bundle of any type, nested Bundles,
resources carried in `Parameters.parameter[].resource` and `part[]` as `$care-gaps` returns them) or NDJSON (one
resource or Bundle per line), gzip or not, detected by content: read by the pipeline's own reader, which keeps
MeasureReports for us, with the same positions as everywhere (`byte 312`, `entry[2]`, `byte 0 entry[0]`). Every
resource found is one of: results (one per group), a reject (`measure_results.Invalid`), or another resource,
counted by type.

A MeasureReport gives, per group: patient = `subject.reference` (`Patient/<id>`, absolute or not, a `urn:uuid:`
fullUrl as it is), measure = `measure_name(MeasureReport.measure)`, and the populations `denominator`,
`numerator`, `denominator-exclusion` (count 0 or 1; an absent exclusion is 0).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from pipelines.fhir import reasons as R
from pipelines.fhir.reader import FileReader
from pipelines.fhir.records import Deletion, FoundPatient, KeptResource, Rejection, patient_key_of_reference
from pipelines.fhir.records import OtherResource as OtherRecord
from pipelines.report.measure_results import Invalid, MeasureResult, check_result

MEASURE_POPULATION = "http://terminology.hl7.org/CodeSystem/measure-population"
POPULATIONS = {"denominator": "denominator", "numerator": "numerator", "denominator-exclusion": "exclusion"}


@dataclass(frozen=True, slots=True)
class OtherResource:
    """A resource that is not a MeasureReport (a Patient or Composition beside it): counted, not used."""

    resource_type: str


Found = MeasureResult | Invalid | OtherResource


class NotJson(Exception):
    """The file is neither one JSON document nor NDJSON: an unreadable file, not a bad row."""


def measure_name(canonical: str) -> str:
    """A measure's name from its canonical URL: the last path segment, with the version when one is given
    (`https://www.ncqa.org/fhir/Measure/CBP|2025` -> `CBP|2025`), so that results given as CSV with the HEDIS
    abbreviation meet the same measure; a canonical without a path (`urn:uuid:...`) as it is."""
    url, bar, version = canonical.partition("|")
    return url.rstrip("/").rsplit("/", 1)[-1] + bar + version


def _subject_key(report: dict[str, Any]) -> str | Invalid:
    subject = report.get("subject")
    reference = subject.get("reference") if isinstance(subject, dict) else None
    if not isinstance(reference, str) or not reference.strip():
        return Invalid("measure_report_missing_subject", "MeasureReport.subject.reference is empty")
    reference = reference.strip().split("/_history/")[0]
    key = patient_key_of_reference(reference)
    if key == reference and not reference.startswith("urn:"):
        return Invalid("measure_report_subject_not_patient", "MeasureReport.subject is not a Patient")
    return key


def _group_name(group: dict[str, Any]) -> str | None:
    if isinstance(group.get("id"), str) and group["id"].strip():
        return group["id"].strip()
    codings = (group.get("code") or {}).get("coding") if isinstance(group.get("code"), dict) else None
    codes = [c.get("code") for c in codings or [] if isinstance(c, dict) and isinstance(c.get("code"), str)]
    return codes[0] if codes else None


def _population_counts(group: dict[str, Any]) -> dict[str, int] | Invalid:
    """denominator, numerator and exclusion of one group, each 0 or 1."""
    counts: dict[str, int] = {"exclusion": 0}
    for population in group.get("population") or []:
        codings = ((population.get("code") or {}).get("coding") or []) if isinstance(population, dict) else []
        for coding in codings:
            if (
                isinstance(coding, dict)
                and coding.get("system", MEASURE_POPULATION) == MEASURE_POPULATION
                and coding.get("code") in POPULATIONS
            ):
                count = population.get("count")
                if isinstance(count, bool) or count not in (0, 1):
                    return Invalid("measure_report_invalid_population", "a population count is not 0 or 1")
                counts[POPULATIONS[coding["code"]]] = count
    missing = [p for p in ("denominator", "numerator") if p not in counts]
    if missing:
        return Invalid("measure_report_invalid_population", f"no {' or '.join(missing)} population")
    return counts


def results_of_report(report: dict[str, Any]) -> list[MeasureResult] | Invalid:
    """The results of one MeasureReport, one per group, or why it gives none."""
    if report.get("type") != "individual":
        return Invalid("measure_report_not_individual", "MeasureReport.type is not individual")
    if report.get("status") != "complete":
        return Invalid("measure_report_not_complete", "MeasureReport.status is not complete")
    canonical = report.get("measure")
    if not isinstance(canonical, str) or not canonical.strip():
        return Invalid("measure_report_missing_measure", "MeasureReport.measure is empty")
    key = _subject_key(report)
    if isinstance(key, Invalid):
        return key
    groups = [g for g in report.get("group") or [] if isinstance(g, dict)]
    if not groups:
        return Invalid("measure_report_invalid_population", "MeasureReport has no group")
    results = []
    for group in groups:
        name = measure_name(canonical.strip())
        if len(groups) > 1:
            suffix = _group_name(group)
            if suffix is None:
                return Invalid("measure_report_group_unnamed", "a group of several has neither id nor code")
            name = f"{name}#{suffix}"
        counts = _population_counts(group)
        if isinstance(counts, Invalid):
            return counts
        result = check_result(
            {
                "patient_id": key,
                "measure": name,
                "denominator": counts["denominator"],
                "numerator": counts["numerator"],
                "exclusion": counts["exclusion"],
            }
        )
        if isinstance(result, Invalid):
            return result
        results.append(result)
    return results


def _is_measure_report(resource: dict[str, Any]) -> bool:
    return resource.get("resourceType") == "MeasureReport"


# The reader's dead letters, as rejects of measure results; the others make the file unreadable (one line, exit 2).
_REJECTS = {
    R.INVALID_JSON: "measure_report_invalid_json",
    R.RECORD_TOO_LARGE: "measure_report_invalid_json",
    R.NOT_FHIR_RESOURCE: "measure_report_not_fhir_resource",
    R.PATIENT_WITHOUT_ID: "measure_report_not_fhir_resource",
    **dict.fromkeys(
        (
            R.INVALID_BUNDLE,
            R.BUNDLE_ENTRY_INVALID,
            R.BUNDLE_ENTRY_WITHOUT_RESOURCE,
            R.INVALID_PARAMETERS,
            R.PARAMETER_INVALID,
            R.NESTING_TOO_DEEP,
            R.TOO_MANY_RECORDS,
            R.DELETION_NOT_IDENTIFIED,
        ),
        "measure_report_invalid_container",
    ),
}


def read_measure_reports(stream: IO[bytes], name: str = "") -> Iterator[tuple[str, Found]]:
    """Every result, reject and other resource of a file, read by the pipeline's own reader (every shape of
    contract section 2, gzip detected by content). Raises NotJson when the file as a whole cannot be read."""
    for record in FileReader(stream, name, keep=_is_measure_report).records():
        if isinstance(record, KeptResource):
            found = results_of_report(record.resource)
            for result in found if isinstance(found, list) else [found]:
                yield record.position, result
        elif isinstance(record, Rejection):
            reason = _REJECTS.get(record.reason)
            if record.position == "file" or reason is None:
                raise NotJson(f"neither a JSON document nor NDJSON ({record.reason})")
            yield record.position, Invalid(reason, record.message)
        elif isinstance(record, OtherRecord) and record.resource_type != "MeasureReport":
            yield "", OtherResource(record.resource_type)
        elif isinstance(record, (FoundPatient, Deletion)):
            yield "", OtherResource("Patient")
