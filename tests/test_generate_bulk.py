"""benchmarks/generate_bulk.py: a small export is reproducible, Bulk-shaped, Synthea-sized, with every encoding."""

from __future__ import annotations

import collections
import gzip
import json
import re
import statistics
from pathlib import Path
from typing import Any

import pytest

from benchmarks import generate_bulk

PATIENTS = 600
RACE_URLS = {
    "us-core": (
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race",
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity",
    ),
    "dstu2": ("http://hl7.org/fhir/Profile/us-core#race", "http://hl7.org/fhir/Profile/us-core#ethnicity"),
    "bluebutton": ("https://bluebutton.cms.gov/resources/variables/race",),
    "hl7v2": (
        "http://ibm.com/fhir/cdm/StructureDefinition/local-race-cd",
        "https://reportstream.cdc.gov/fhir/StructureDefinition/ethnic-group",
    ),
}
CDCREC = "urn:oid:2.16.840.1.113883.6.238"
NULL_FLAVOR = "http://terminology.hl7.org/CodeSystem/v3-NullFlavor"
DATA_ABSENT_REASON = "http://terminology.hl7.org/CodeSystem/data-absent-reason"


def read_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_bytes().splitlines()]


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def export(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bulk")
    generate_bulk.generate(out, PATIENTS)
    return out


@pytest.fixture(scope="module")
def patients(export) -> list[dict[str, Any]]:
    return read_lines(export / "Patient.ndjson")


def encoding_family(patient: dict[str, Any]) -> str:
    """The docstring table's family of a Patient's race/ethnicity payload, found by extension URL and system."""
    race = [e for e in patient["extension"] if any(e["url"] in urls for urls in RACE_URLS.values())]
    urls = {e["url"] for e in race}
    if not race:
        return "absent"
    for family, key in (("cms-bluebutton", "bluebutton"), ("hl7v2-converter", "hl7v2"), ("us-core-dstu2", "dstu2")):
        if urls & set(RACE_URLS[key]):
            return family
    if any("valueCodeableConcept" in e for e in race):
        return "us-core-legacy-value"
    codings = [sub["valueCoding"] for e in race for sub in e["extension"] if "valueCoding" in sub]
    if not codings:
        return "text-only"
    if any(not isinstance(c, dict) or not isinstance(c["code"], str) or c["system"].endswith("/") for c in codings):
        return "malformed"
    systems, codes = {c["system"] for c in codings}, {c["code"] for c in codings}
    if NULL_FLAVOR in systems:
        return "asku" if "ASKU" in codes else "unk"
    if DATA_ABSENT_REASON in systems:
        return "data-absent-reason"
    return "us-core" if systems == {CDCREC} else "cdcrec-other-system"


def documented_shares() -> dict[str, float]:
    """The proportions table of the module docstring: family -> share in percent."""
    rows = re.findall(r"^\| `([a-z0-9-]+)` \| ([\d.]+)% \|", generate_bulk.__doc__, re.MULTILINE)
    return {family: float(share) for family, share in rows}


def test_the_same_arguments_give_byte_identical_files(export, tmp_path):
    generate_bulk.generate(tmp_path, PATIENTS)
    assert tree(tmp_path) == tree(export)


def test_the_files_do_not_depend_on_the_number_of_workers(tmp_path, monkeypatch):
    monkeypatch.setattr(generate_bulk, "CHUNK_PATIENTS", 150)  # several chunks, so that two workers share them
    generate_bulk.generate(tmp_path / "one", PATIENTS, workers=1)
    generate_bulk.generate(tmp_path / "two", PATIENTS, workers=2)
    assert tree(tmp_path / "one") == tree(tmp_path / "two")


def test_gzip_output_decompresses_to_the_plain_output(export, tmp_path):
    generate_bulk.generate(tmp_path, PATIENTS, compress=True)
    for name in ("Patient", "Observation", "Encounter", "deleted/Patient"):
        plain = (export / f"{name}.ndjson").read_bytes()
        assert gzip.decompress((tmp_path / f"{name}.ndjson.gz").read_bytes()) == plain


def test_patients_do_not_depend_on_the_clinical_densities(export, tmp_path):
    generate_bulk.generate(tmp_path, PATIENTS, observations_per_patient=5, encounters_per_patient=0)
    assert (tmp_path / "Patient.ndjson").read_bytes() == (export / "Patient.ndjson").read_bytes()
    assert (tmp_path / "Encounter.ndjson").read_bytes() == b""
    assert not any("encounter" in o for o in read_lines(tmp_path / "Observation.ndjson"))


def test_every_patient_line_is_a_patient_with_a_unique_id(export, patients):
    assert len(patients) == PATIENTS
    assert all(p["resourceType"] == "Patient" for p in patients)
    assert len({p["id"] for p in patients}) == PATIENTS


def test_patients_weigh_two_to_four_kilobytes(export):
    sizes = [len(line) for line in (export / "Patient.ndjson").read_bytes().splitlines()]
    assert 2048 <= statistics.median(sizes) <= 4096
    assert min(sizes) >= 1536


def test_patients_have_the_synthea_and_us_core_elements(patients):
    for element in (
        "meta",
        "text",
        "identifier",
        "name",
        "telecom",
        "gender",
        "birthDate",
        "address",
        "maritalStatus",
        "communication",
        "generalPractitioner",
        "managingOrganization",
    ):
        assert all(element in p for p in patients), element
    assert sum("deceasedDateTime" in p for p in patients) > 0
    urls = collections.Counter(e["url"].rsplit("/", 1)[-1] for p in patients for e in p["extension"])
    for synthea in (
        "patient-mothersMaidenName",
        "us-core-birthsex",
        "patient-birthPlace",
        "disability-adjusted-life-years",
        "quality-adjusted-life-years",
    ):
        assert urls[synthea] == PATIENTS, synthea
    languages = {p["communication"][0]["language"].get("coding", [{}])[0].get("code") for p in patients}
    assert {"en", "en-US", "es", None} <= languages  # None: text only
    organizations = {p["managingOrganization"]["reference"] for p in patients}
    assert 10 <= len(organizations) <= generate_bulk.ORGANIZATIONS


def test_the_encoding_mix_holds_every_documented_family(patients):
    found = collections.Counter(encoding_family(p) for p in patients)
    assert set(found) == set(documented_shares())
    assert found.most_common(1)[0][0] == "us-core"


def test_the_catalogue_matches_the_documented_proportions_and_repeats_payloads():
    profiles = generate_bulk.race_profiles()
    per_family = collections.Counter()
    for profile in profiles:
        per_family[profile.family] += profile.weight
    assert sum(per_family.values()) == 10_000
    assert {family: weight / 100 for family, weight in per_family.items()} == documented_shares()
    top_ten = sum(sorted((p.weight for p in profiles), reverse=True)[:10])
    assert 0.75 <= top_ten / 10_000 <= 0.85
    assert len(profiles) <= 60  # a real 1,394-patient corpus had 54 distinct payloads


def test_the_deleted_output_is_transaction_bundles_of_patient_deletes(export, patients):
    bundles = read_lines(export / "deleted" / "Patient.ndjson")
    assert bundles and all(b["resourceType"] == "Bundle" and b["type"] == "transaction" for b in bundles)
    entries = [entry for b in bundles for entry in b["entry"]]
    ids = {p["id"] for p in patients}
    for entry in entries:
        assert entry.keys() == {"request"} and entry["request"]["method"] == "DELETE"
        kind, patient_id = entry["request"]["url"].split("/")
        assert kind == "Patient" and patient_id in ids


def test_clinical_resources_reference_existing_patients_and_encounters(export, patients):
    ids = {p["id"] for p in patients}
    encounters = read_lines(export / "Encounter.ndjson")
    observations = read_lines(export / "Observation.ndjson")
    assert all(
        e["resourceType"] == "Encounter" and e["subject"]["reference"][len("Patient/") :] in ids for e in encounters
    )
    encounter_ids = {e["id"] for e in encounters}
    for observation in observations:
        assert observation["resourceType"] == "Observation"
        assert observation["subject"]["reference"][len("Patient/") :] in ids
        if "encounter" in observation:
            assert observation["encounter"]["reference"][len("Encounter/") :] in encounter_ids
    assert 1.5 * PATIENTS <= len(observations) <= 2.5 * PATIENTS
    assert 0.8 * PATIENTS <= len(encounters) <= 1.2 * PATIENTS


def test_some_patients_get_race_and_ethnicity_observations(export, patients):
    observations = read_lines(export / "Observation.ndjson")
    questions = {o["code"]["coding"][0]["code"]: o for o in observations}
    assert {"72826-1", "69490-1"} <= questions.keys()
    answered = {o["subject"]["reference"] for o in observations if o["code"]["coding"][0]["code"] == "72826-1"}
    assert 0 < len(answered) <= 0.03 * PATIENTS


def test_the_manifest_lists_every_file_with_its_count(export):
    manifest = json.loads((export / "manifest.json").read_text())
    assert manifest["transactionTime"] and manifest["error"] == []
    for item in manifest["output"] + manifest["deleted"]:
        assert len((export / item["url"]).read_bytes().splitlines()) == item["count"]
    assert [item["type"] for item in manifest["output"]] == ["Patient", "Observation", "Encounter"]


def test_the_command_line_prints_a_one_line_summary(tmp_path, capsys):
    assert generate_bulk.main(["--patients", "50", "--out", str(tmp_path), "--gzip", "--workers", "1"]) == 0
    summary = capsys.readouterr().out
    assert summary.count("\n") == 1 and "50 Patient" in summary and "MB" in summary
    assert (tmp_path / "Patient.ndjson.gz").is_file() and (tmp_path / "manifest.json").is_file()
