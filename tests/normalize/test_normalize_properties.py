"""Property-based tests (hypothesis) of the invariants named in issue 4."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from pipelines.normalize import OUTPUT_KEYS, load_policy
from pipelines.normalize import _normalize as _strict_normalize  # no last-resort guard: a bug shows its traceback

_POLICY = load_policy()


def normalize_patient(patient: Any, observations: Any = ()) -> dict[str, Any]:
    return _strict_normalize(patient, observations, _POLICY)


CDC = "urn:oid:2.16.840.1.113883.6.238"
LOINC = "http://loinc.org"
RACE_URL = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race"
ETH_URL = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity"
EXT_URLS = [
    RACE_URL,
    ETH_URL,
    "http://hl7.org/fhir/StructureDefinition/us-core-race",
    "http://hl7.org/fhir/Profile/us-core#race",
    "http://hl7.org/fhir/Profile/us-core#ethnicity",
    "https://bluebutton.cms.gov/resources/variables/race",
    "http://ibm.com/fhir/cdm/StructureDefinition/local-race-cd",
    "https://reportstream.cdc.gov/fhir/StructureDefinition/ethnic-group",
    "http://fhir.org/guides/argonaut/StructureDefinition/argo-race",
    "http://example.org/some-race-thing",
]
SYSTEMS = [
    CDC,
    CDC,
    CDC,
    "http://terminology.hl7.org/CodeSystem/PHRaceAndEthnicityCDC",
    "http://terminology.hl7.org/CodeSystem/v2-0005",
    "http://hl7.org/fhir/v3/Race",
    "http://terminology.hl7.org/CodeSystem/v3-Ethnicity",
    "http://terminology.hl7.org/CodeSystem/v3-NullFlavor",
    "http://terminology.hl7.org/CodeSystem/data-absent-reason",
    "http://terminology.hl7.org/CodeSystem/v2-0189",
    "https://bluebutton.cms.gov/resources/variables/race",
    LOINC,
    "http://example.org/x",
    None,
]
CODES = [
    "2106-3",
    "2054-5",
    "2028-9",
    "1002-5",
    "2076-8",
    "2131-1",
    "2135-2",
    "2186-5",
    "2118-8",
    "2123-8",
    "2129-5",
    "2126-1",
    "2109-7",
    "2113-9",
    "2148-5",
    "2184-0",
    "2069-3",
    "1741-8",
    "1000-9",
    "2133-7",
    "21063",
    "9999-9",
    "ASKU",
    "UNK",
    "OTH",
    "asked-declined",
    "asked-unknown",
    "unknown",
    "LA6214-6",
    "LA4457-3",
    "LA33-6",
    "LA32-8",
    "0",
    "1",
    "3",
    "5",
    "H",
    "N",
    "U",
    "B",
    "C",
    "R",
]
TEXTS = [
    "White",
    "Black or African American",
    "Hispanic",
    "Other",
    "Declined",
    "Unknown",
    "Lebanese",
    "Multiracial",
    "Dominican",
    "Non-Hispanic White",
    "Not Hispanic or Latino",
    "",
    "Martian",
    "White, Irish",
]
LOINC_QUESTIONS = ["72826-1", "32624-9", "69490-1", "56051-6", "46463-6", "12345-6"]

HEDIS_RACES = {
    "AmericanIndianOrAlaskaNative",
    "Asian",
    "BlackOrAfricanAmerican",
    "NativeHawaiianOrOtherPacificIslander",
    "White",
    "SomeOtherRace",
    "TwoOrMoreRaces",
    "AskedButNoAnswer",
    "Unknown",
}
HEDIS_ETHNICITIES = {"HispanicOrLatino", "NotHispanicOrLatino", "AskedButNoAnswer", "Unknown"}
SEVEN = ["AIAN", "ASIAN", "BLACK", "HISPANIC", "MENA", "NHPI", "WHITE"]

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.text(max_size=6)
            | st.sampled_from(["url", "code", "system", "coding", "extension", "valueCoding", "text"]),
            inner,
            max_size=3,
        )
    ),
    max_leaves=8,
)


@st.composite
def codings(draw: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"code": draw(st.sampled_from(CODES))}
    system = draw(st.sampled_from(SYSTEMS))
    if system is not None:
        out["system"] = system
    return out


@st.composite
def extensions(draw: Any) -> dict[str, Any]:
    url = draw(st.sampled_from(EXT_URLS))
    if draw(st.booleans()):
        subs = [
            {"url": draw(st.sampled_from(["ombCategory", "detailed", "detailed", "other"])), "valueCoding": c}
            for c in draw(st.lists(codings(), max_size=4))
        ]
        if draw(st.booleans()):
            subs.append({"url": "text", "valueString": draw(st.sampled_from(TEXTS))})
        return {"url": url, "extension": subs}
    cc: dict[str, Any] = {"coding": draw(st.lists(codings(), max_size=3))}
    if draw(st.booleans()):
        cc["text"] = draw(st.sampled_from(TEXTS))
    return {"url": url, "valueCodeableConcept": cc}


@st.composite
def observations(draw: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "resourceType": "Observation",
        "status": draw(st.sampled_from(["final", "amended", "entered-in-error"])),
        "code": {"coding": [{"system": LOINC, "code": draw(st.sampled_from(LOINC_QUESTIONS))}]},
    }
    cc: dict[str, Any] = {"coding": draw(st.lists(codings(), max_size=2))}
    if draw(st.booleans()):
        cc["text"] = draw(st.sampled_from(TEXTS))
    out["valueCodeableConcept"] = cc
    return out


@st.composite
def patients(draw: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"resourceType": "Patient", "id": "p"}
    exts = draw(st.lists(extensions(), max_size=4))
    if exts:
        out["extension"] = exts
    if draw(st.booleans()):
        out["communication"] = [
            {
                "language": {
                    "coding": [
                        {
                            "system": "urn:ietf:bcp:47",
                            "code": draw(st.sampled_from(["en-US", "es", "zh-Hant", "xx-", ""])),
                        }
                    ]
                },
                "preferred": draw(st.booleans()),
            }
        ]
    if draw(st.booleans()):
        out["birthDate"] = draw(st.sampled_from(["1980-01-02", "1980", "1980-13", "nope", "2000-02-30"]))
    if draw(st.booleans()):
        out["gender"] = draw(st.sampled_from(["male", "F", "x"]))
    if draw(st.booleans()):
        out["address"] = [{"use": "home", "postalCode": "94110-1234", "state": "California"}]
    return out


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found.extend(_paths(value, prefix + (key,)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.extend(_paths(value, prefix + (index,)))
    return found


def _set(node: Any, path: tuple, value: Any) -> None:
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value


def _check_shape(result: dict[str, Any]) -> None:
    assert tuple(result) == OUTPUT_KEYS
    assert "normalization_error" not in result["mapping_warnings"]
    assert result["mapping_warnings"] == sorted(set(result["mapping_warnings"]))


def _check_category_agrees(result: dict[str, Any]) -> None:
    categories, category = result["omb2024_categories"], result["omb2024_category"]
    assert categories == sorted(set(categories)) and set(categories) <= set(SEVEN)
    if len(categories) == 1:
        assert category == categories[0]
    elif len(categories) > 1:
        assert category == "MULTIRACIAL_MULTIETHNIC"
    else:
        assert category in ("SOME_OTHER", "DECLINED", "UNKNOWN")
    expected_status = {"DECLINED": "declined", "UNKNOWN": "unknown"}.get(category, "reported")
    assert result["race_ethnicity_status"] == expected_status


SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(patients(), st.lists(observations(), max_size=3))
@pytest.mark.slow
def test_omb2024_category_always_agrees_with_categories(patient: dict[str, Any], obs: list[dict[str, Any]]) -> None:
    result = normalize_patient(patient, obs)
    _check_shape(result)
    _check_category_agrees(result)


@SETTINGS
@given(patients(), st.lists(observations(), max_size=3))
@pytest.mark.slow
def test_exactly_one_hedis_race_and_one_hedis_ethnicity(patient: dict[str, Any], obs: list[dict[str, Any]]) -> None:
    result = normalize_patient(patient, obs)
    assert isinstance(result["hedis_race"], str) and result["hedis_race"] in HEDIS_RACES
    assert isinstance(result["hedis_ethnicity"], str) and result["hedis_ethnicity"] in HEDIS_ETHNICITIES


NOT_HISPANIC = {"system": CDC, "code": "2186-5", "display": "Not Hispanic or Latino"}


@st.composite
def with_not_hispanic(
    draw: Any, patient: dict[str, Any], obs: list[dict[str, Any]]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The same input plus one 2186-5, placed where real feeds put it."""
    patient, obs = copy.deepcopy(patient), copy.deepcopy(obs)
    where = draw(st.sampled_from(["existing-ethnicity", "new-complex", "new-value", "race-slot", "observation"]))
    exts = patient.setdefault("extension", [])
    if where == "existing-ethnicity":
        targets = [e for e in exts if e.get("url") == ETH_URL and isinstance(e.get("extension"), list)]
        if targets:
            targets[0]["extension"].append(
                {"url": draw(st.sampled_from(["ombCategory", "detailed"])), "valueCoding": NOT_HISPANIC}
            )
            return patient, obs
        where = "new-complex"
    if where == "new-complex":
        exts.append({"url": ETH_URL, "extension": [{"url": "ombCategory", "valueCoding": NOT_HISPANIC}]})
    elif where == "new-value":
        exts.append(
            {"url": "http://hl7.org/fhir/Profile/us-core#ethnicity", "valueCodeableConcept": {"coding": [NOT_HISPANIC]}}
        )
    elif where == "race-slot":
        exts.append({"url": RACE_URL, "extension": [{"url": "ombCategory", "valueCoding": NOT_HISPANIC}]})
    else:
        obs.append(
            {
                "resourceType": "Observation",
                "status": "final",
                "code": {"coding": [{"system": LOINC, "code": "69490-1"}]},
                "valueCodeableConcept": {"coding": [NOT_HISPANIC]},
            }
        )
    return patient, obs


@SETTINGS
@given(st.data(), patients(), st.lists(observations(), max_size=3))
@pytest.mark.slow
def test_adding_not_hispanic_never_changes_the_2024_result(
    data: Any, patient: dict[str, Any], obs: list[dict[str, Any]]
) -> None:
    before = normalize_patient(patient, obs)
    patient2, obs2 = data.draw(with_not_hispanic(patient, obs))
    after = normalize_patient(patient2, obs2)
    for key in ("omb2024_categories", "omb2024_category", "race_ethnicity_status"):
        assert before[key] == after[key], key


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), patients(), st.lists(observations(), max_size=2))
@pytest.mark.slow
def test_any_json_value_anywhere_never_raises(data: Any, patient: dict[str, Any], obs: list[dict[str, Any]]) -> None:
    container = {"patient": patient, "obs": obs}
    paths = [p for p in _paths(container) if len(p) > 1 and p[:2] != ("patient", "resourceType")]
    assume(paths)
    for _ in range(data.draw(st.integers(min_value=1, max_value=3))):
        paths = [p for p in _paths(container) if len(p) > 1 and p[:2] != ("patient", "resourceType")]
        if not paths:
            break
        _set(container, data.draw(st.sampled_from(paths)), data.draw(json_values))
    result = normalize_patient(container["patient"], container["obs"])
    _check_shape(result)
    _check_category_agrees(result)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=12), json_values, max_size=6), json_values)
@pytest.mark.slow
def test_arbitrary_patient_members_never_raise(members: dict[str, Any], obs: Any) -> None:
    patient = {**members, "resourceType": "Patient"}
    for key in ("extension", "communication", "address", "birthDate", "gender"):
        if key not in patient:
            patient[key] = obs
    result = normalize_patient(patient, obs if isinstance(obs, list) else ())
    _check_shape(result)
