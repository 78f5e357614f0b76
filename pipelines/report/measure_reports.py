"""FHIR MeasureReports of type `individual` as member-level results (contract 5.2).

The shapes of contract section 2: one JSON document (a MeasureReport, a Bundle of any type, nested Bundles,
resources carried in `Parameters.parameter[].resource` and `part[]` as `$care-gaps` returns them) or NDJSON (one
resource or Bundle per line), gzip or not, detected by content. The pipeline's reader (`pipelines.fhir`) finds
Patients and counts every other resource without keeping it, so MeasureReports are walked here, with the same
positions (`line 3`, `entry[2]`, `line 4 entry[0]`). Every resource found is one of: results (one per group), a
reject (`measure_results.Invalid`), or another resource, counted by type.

A MeasureReport gives, per group: patient = `subject.reference` (`Patient/<id>`, absolute or not, a `urn:uuid:`
fullUrl as it is), measure = `measure_name(MeasureReport.measure)`, and the populations `denominator`,
`numerator`, `denominator-exclusion` (count 0 or 1; an absent exclusion is 0).
"""
from __future__ import annotations

import gzip
import itertools
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

import orjson

from pipelines.fhir.reader import patient_key_of_reference
from pipelines.report.measure_results import Invalid, MeasureResult, check_result

MEASURE_POPULATION = "http://terminology.hl7.org/CodeSystem/measure-population"
POPULATIONS = {"denominator": "denominator", "numerator": "numerator", "denominator-exclusion": "exclusion"}
MAX_DEPTH = 16  # containers nested deeper are rejected, not followed (hostile input)
UTF8_BOM = b"\xef\xbb\xbf"


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
            if isinstance(coding, dict) and coding.get("system", MEASURE_POPULATION) == MEASURE_POPULATION \
                    and coding.get("code") in POPULATIONS:
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
        result = check_result({"patient_id": key, "measure": name, "denominator": counts["denominator"],
                               "numerator": counts["numerator"], "exclusion": counts["exclusion"]})
        if isinstance(result, Invalid):
            return result
        results.append(result)
    return results


def _contained(resource: dict[str, Any]) -> list[tuple[str, Any]] | None:
    """(path, resource) of what a container carries: Bundle entries, Parameters parameters and their parts;
    None when the container is malformed."""
    if resource["resourceType"] == "Bundle":
        entries = resource.get("entry", [])
        if not isinstance(entries, list) or not all(isinstance(e, dict) and "resource" in e for e in entries):
            return None
        return [(f"entry[{i}]", e["resource"]) for i, e in enumerate(entries)]
    found: list[tuple[str, Any]] = []
    pending = [("", resource.get("parameter", []))]
    while pending:
        path, parameters = pending.pop()
        if not isinstance(parameters, list) or not all(isinstance(p, dict) for p in parameters):
            return None
        for i, parameter in enumerate(parameters):
            here = f"{path}{'.part' if path else 'parameter'}[{i}]"
            if "resource" in parameter:
                found.append((here, parameter["resource"]))
            if "part" in parameter:
                pending.append((here, parameter["part"]))
    return found


def walk(value: Any, position: str, depth: int = 0) -> Iterator[tuple[str, Found]]:
    """Every result, reject and other resource of one JSON document, with its position."""
    kind = value.get("resourceType") if isinstance(value, dict) else None
    if not isinstance(kind, str) or not kind:
        yield position, Invalid("measure_report_not_fhir_resource", "not a FHIR resource")
    elif kind in ("Bundle", "Parameters"):
        inside = _contained(value) if depth < MAX_DEPTH else None
        if inside is None:
            yield position, Invalid("measure_report_invalid_container", f"a malformed or too deeply nested {kind}")
            return
        for path, resource in inside:
            yield from walk(resource, f"{position} {path}".strip(), depth + 1)
    elif kind == "MeasureReport":
        found = results_of_report(value)
        for result in found if isinstance(found, list) else [found]:
            yield position, result
    else:
        yield position, OtherResource(kind)


def read_measure_reports(stream: IO[bytes]) -> Iterator[tuple[str, Found]]:
    """Everything found in a file's bytes (gzip detected by content). Raises NotJson when the file is neither
    one JSON document nor NDJSON with a valid line, and OSError (gzip damage included) as it comes."""
    try:
        yield from _read(gzip.GzipFile(fileobj=stream) if stream.peek(2)[:2] == b"\x1f\x8b" else stream)
    except (EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise OSError(f"damaged gzip data: {err}") from None


def _lines(stream: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    """(line number, line) of the lines with content."""
    for number, line in enumerate(stream, start=1):
        if line.strip():
            yield number, line.removeprefix(UTF8_BOM) if number == 1 else line


def _parses(line: bytes) -> bool:
    try:
        orjson.loads(line)
    except orjson.JSONDecodeError:
        return False
    return True


def _read(stream: IO[bytes]) -> Iterator[tuple[str, Found]]:
    """NDJSON when the first line is JSON on its own; else one document over several lines; else NDJSON whose
    first line is broken (when another line is JSON)."""
    lines = _lines(stream)
    first = next(lines, None)
    if first is None:
        raise NotJson("the file is empty")
    if _parses(first[1]):
        yield from _ndjson(itertools.chain([first], lines))
        return
    rest = list(lines)
    try:
        document = orjson.loads(b"".join([first[1]] + [line for _, line in rest]))
    except orjson.JSONDecodeError:
        if not any(_parses(line) for _, line in rest):
            raise NotJson("neither a JSON document nor NDJSON") from None
        yield from _ndjson(itertools.chain([first], rest))
        return
    yield from walk(document, "")


def _ndjson(lines: Iterator[tuple[int, bytes]]) -> Iterator[tuple[str, Found]]:
    for number, line in lines:
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError:
            yield f"line {number}", Invalid("measure_report_invalid_json", "the line is not valid JSON")
            continue
        yield from walk(value, f"line {number}")
