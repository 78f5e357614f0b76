"""The interface the reader depends on, the policy file, the data files and the documentation tables."""

from __future__ import annotations

import dataclasses
import json
import logging
import pathlib
import pickle
import re
import subprocess
import sys

import pytest

import pipelines.normalize as normalize
from pipelines.normalize import (
    NORMALIZATION_ERROR,
    OUTPUT_KEYS,
    WARNING_CODES,
    Policy,
    PolicyError,
    is_demographic_observation,
    load_policy,
    normalize_patient,
)
from pipelines.normalize.tables import read_rows, tables

ROOT = pathlib.Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "pipelines" / "normalize"
TYPICAL = {
    "resourceType": "Patient",
    "id": "example",
    "extension": [
        {
            "url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race",
            "extension": [
                {
                    "url": "ombCategory",
                    "valueCoding": {"system": "urn:oid:2.16.840.1.113883.6.238", "code": "2106-3", "display": "White"},
                },
                {
                    "url": "detailed",
                    "valueCoding": {
                        "system": "urn:oid:2.16.840.1.113883.6.238",
                        "code": "2123-8",
                        "display": "Lebanese",
                    },
                },
                {"url": "text", "valueString": "Lebanese"},
            ],
        },
        {
            "url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity",
            "extension": [
                {
                    "url": "ombCategory",
                    "valueCoding": {
                        "system": "urn:oid:2.16.840.1.113883.6.238",
                        "code": "2135-2",
                        "display": "Hispanic or Latino",
                    },
                },
                {"url": "text", "valueString": "Hispanic or Latino"},
            ],
        },
    ],
    "gender": "female",
    "birthDate": "1987-02-20",
    "address": [{"use": "home", "line": ["1 Main St"], "city": "Oakland", "state": "CA", "postalCode": "94612"}],
    "communication": [{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "es-MX"}]}, "preferred": True}],
}


def test_no_apache_beam_anywhere_in_normalize() -> None:
    for path in PACKAGE.rglob("*.py"):
        assert "apache_beam" not in path.read_text(encoding="utf-8"), path
    code = (
        "import sys, pipelines.normalize as n; n.normalize_patient({'resourceType': 'Patient'}); "
        "bad = [m for m in sys.modules if m.startswith(('apache_beam', 'pydantic'))]; assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_output_keys_are_avro_fields() -> None:
    """Every key we return is a column of the record schema (the reader adds lineage and its own fields)."""
    schema = json.loads((ROOT / "schemas" / "patient_demographics.avsc").read_text(encoding="utf-8"))
    assert set(OUTPUT_KEYS) <= {f["name"] for f in schema["fields"]}
    assert tuple(normalize_patient(TYPICAL)) == OUTPUT_KEYS
    assert tuple(normalize_patient({"resourceType": "Patient"})) == OUTPUT_KEYS


def test_typical_patient_full_result() -> None:
    import datetime

    assert normalize_patient(TYPICAL) == {
        "race_ethnicity_status": "reported",
        "unmapped_text_only": False,
        "omb2024_categories": ["HISPANIC", "MENA"],
        "omb2024_category": "MULTIRACIAL_MULTIETHNIC",
        "hedis_race": "White",
        "hedis_ethnicity": "HispanicOrLatino",
        "race_detailed_codes": ["2106-3", "2123-8"],
        "ethnicity_detailed_codes": ["2135-2"],
        "race_text": "Lebanese",
        "ethnicity_text": "Hispanic or Latino",
        "race_source_format": "us-core",
        "mapping_warnings": [],
        "preferred_language": "es",
        "birth_date": datetime.date(1987, 2, 20),
        "birth_year": 1987,
        "administrative_gender": "female",
        "postal_code": "94612",
        "state": "CA",
        "managing_organization": None,
        "general_practitioner": None,
    }


@pytest.mark.parametrize(
    ("resource", "expected"),
    [
        (
            {"resourceType": "Observation", "code": {"coding": [{"system": "http://loinc.org", "code": "72826-1"}]}},
            True,
        ),
        (
            {"resourceType": "Observation", "code": {"coding": [{"system": "http://loinc.org", "code": "32624-9"}]}},
            True,
        ),
        (
            {"resourceType": "Observation", "code": {"coding": [{"system": "http://loinc.org", "code": "69490-1"}]}},
            True,
        ),
        (
            {"resourceType": "Observation", "code": {"coding": [{"system": "http://loinc.org", "code": "56051-6"}]}},
            True,
        ),
        (
            {"resourceType": "Observation", "code": {"coding": [{"system": "http://loinc.org", "code": "46463-6"}]}},
            True,
        ),
        ({"resourceType": "Observation", "code": {"coding": [{"code": "72826-1"}]}}, True),
        (
            {
                "resourceType": "Observation",
                "code": {"coding": [{"system": "http://snomed.info/sct", "code": "72826-1"}]},
            },
            False,
        ),
        (
            {"resourceType": "Observation", "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]}},
            False,
        ),
        ({"resourceType": "Condition", "code": {"coding": [{"system": "http://loinc.org", "code": "72826-1"}]}}, False),
        ({"resourceType": "Observation", "code": []}, False),
        ({"resourceType": "Observation"}, False),
        ([], False),
        (None, False),
    ],
)
def test_is_demographic_observation(resource, expected) -> None:
    assert is_demographic_observation(resource) is expected


def test_default_policy_matches_dataclass_defaults_and_is_picklable() -> None:
    policy = load_policy()
    assert policy == Policy()
    assert pickle.loads(pickle.dumps(policy)) == policy
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.arab_as_mena = False  # type: ignore[misc]


def test_policy_file_override(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(
        '[omb2024]\narab_as_mena = false\n[hedis]\nhispanic_only_race = "SomeOtherRace"\n', encoding="utf-8"
    )
    policy = load_policy(str(path))
    assert policy.arab_as_mena is False and policy.hispanic_only_race == "SomeOtherRace"
    assert policy.white_with_only_mena_detail_is_mena is True


@pytest.mark.parametrize(
    "text",
    [
        "[omb2024]\nno_such_switch = true\n",
        "[nowhere]\narab_as_mena = true\n",
        '[omb2024]\narab_as_mena = "yes"\n',
        '[hedis]\nhispanic_only_race = "White"\n',
        "[hedis]\narab_as_mena = true\n",
        "not toml [",
    ],
)
def test_bad_policy_file_fails_fast(tmp_path: pathlib.Path, text: str) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError):
        load_policy(str(path))


def test_missing_policy_file_fails_fast(tmp_path: pathlib.Path) -> None:
    with pytest.raises(PolicyError):
        load_policy(str(tmp_path / "absent.toml"))


def test_every_policy_switch_is_in_the_shipped_file_and_the_docs() -> None:
    shipped = (PACKAGE / "data" / "policy.toml").read_text(encoding="utf-8")
    docs = (ROOT / "docs" / "classification.md").read_text(encoding="utf-8")
    for field in dataclasses.fields(Policy):
        assert re.search(rf"^{field.name} = ", shipped, re.M), field.name
        assert f"`{field.name}`" in docs, field.name


def _documented_codes() -> list[str]:
    text = (ROOT / "docs" / "warnings.md").read_text(encoding="utf-8")
    return re.findall(r"^\| `([a-z0-9_]+)` \|", text, re.M)


def test_warning_codes_are_documented_in_one_table() -> None:
    documented = _documented_codes()
    assert len(documented) == len(set(documented)), "a code is listed twice"
    assert set(documented) == set(WARNING_CODES) | {NORMALIZATION_ERROR}
    assert {"fhir_validation_failed", "patient_key_from_fullurl"} <= set(documented)


def test_last_resort_guard_keeps_the_record_and_logs_no_patient_data(monkeypatch, caplog) -> None:
    def broken(*_args, **_kwargs):
        raise RuntimeError("SECRET-PATIENT-VALUE")

    monkeypatch.setattr(normalize, "_normalize", broken)
    with caplog.at_level(logging.ERROR):
        result = normalize_patient({"resourceType": "Patient", "name": [{"family": "SECRET-PATIENT-VALUE"}]})
    assert result["mapping_warnings"] == [NORMALIZATION_ERROR]
    assert result["omb2024_category"] == "UNKNOWN" and tuple(result) == OUTPUT_KEYS
    assert "SECRET" not in caplog.text


def test_crosswalk_targets_exist_in_cdcrec() -> None:
    t = tables()
    allowed = {"declined", "unknown", "other", "asked_unknown", "multiple", "ambiguous"}
    targets = [r["target"] for r in read_rows("v2_tables.csv")]
    targets += [r["target"] for r in read_rows("cms_race.csv")]
    targets += [r["target"] for r in read_rows("loinc_answers.csv")]
    targets += [x for r in read_rows("text_phrases.csv") for x in r["target"].split()]
    for target in targets:
        assert target in allowed or (target in t.domain and target not in t.abstract), target
    assert {r["meaning"] for r in read_rows("null_flavors.csv")} <= allowed
    assert {r["kind"] for r in read_rows("systems.csv")} <= {
        "cdcrec",
        "v2-0005",
        "v2-0189",
        "nullflavor",
        "dar",
        "loinc",
        "cms-race",
        "snomed",
    }
    assert {r["warning"] for r in read_rows("systems.csv")} <= {"", "system_uri_repaired"}


def test_cdcrec_copy_is_complete() -> None:
    t = tables()
    assert len(t.domain) == 966
    assert sum(1 for d in t.domain.values() if d == "race") == 922  # 921 concepts + the 1000-9 root
    assert t.mena_subtree == {
        "2118-8",
        "2119-6",
        "2120-4",
        "2121-2",
        "2122-0",
        "2123-8",
        "2124-6",
        "2125-3",
        "2126-1",
        "2127-9",
    }
    assert len(t.hispanic) == 42 and "2186-5" not in t.hispanic
    assert "2129-5" not in t.mena_subtree and "2109-7" not in t.mena_subtree


def test_every_data_file_names_its_source() -> None:
    for path in (PACKAGE / "data").glob("*.csv"):
        head = path.read_text(encoding="utf-8").splitlines()[:8]
        assert any(line.startswith("#") and "ource" in line for line in head), path.name


def test_every_switch_belongs_to_one_policy_section() -> None:
    from pipelines.normalize.policy import _SECTION_OF

    assert set(_SECTION_OF) == {f.name for f in dataclasses.fields(Policy)}


def test_memoized_fields_tell_json_types_apart() -> None:
    """1, 1.0 and True hash alike in Python; as postal codes they are not the same JSON."""
    results = [
        normalize_patient({"resourceType": "Patient", "address": [{"postalCode": value}]})
        for value in (94110, 94110.0, True, 94110)
    ]
    assert [r["postal_code"] for r in results] == ["94110", None, None, "94110"]
    assert (
        "postal_code_repaired" in results[0]["mapping_warnings"]
        and "address_malformed" in results[1]["mapping_warnings"]
    )
