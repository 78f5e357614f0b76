"""Table-driven cases for preferred_language, administrative_gender, birth date, postal code and state."""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

import pytest

from pipelines.normalize import load_policy, normalize_patient

BCP47 = "urn:ietf:bcp:47"


def comm(code: Any = None, system: Any = BCP47, preferred: Any = None, text: Any = None) -> dict[str, Any]:
    language: dict[str, Any] = {}
    if code is not None:
        coding = {"code": code}
        if system is not None:
            coding["system"] = system
        language["coding"] = [coding]
    if text is not None:
        language["text"] = text
    out: dict[str, Any] = {"language": language}
    if preferred is not None:
        out["preferred"] = preferred
    return out


@dataclasses.dataclass
class Case:
    id: str
    patient: dict[str, Any]
    expect: dict[str, Any]
    warnings: tuple[str, ...] = ()
    policy: dict[str, Any] = dataclasses.field(default_factory=dict)


def P(**fields: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", **fields}


CASES = [
    # preferred_language
    Case("language--bcp47-region-stripped", P(communication=[comm("en-US")]), {"preferred_language": "en"}),
    Case("language--bcp47-script-stripped", P(communication=[comm("zh-Hant")]), {"preferred_language": "zh"}),
    Case(
        "language--preferred-first",
        P(communication=[comm("en"), comm("es", preferred=True)]),
        {"preferred_language": "es"},
    ),
    Case("language--no-preferred-first-entry", P(communication=[comm("vi"), comm("ko")]), {"preferred_language": "vi"}),
    Case("language--plain-code-no-system", P(communication=[comm("tl", system=None)]), {"preferred_language": "tl"}),
    Case(
        "language--upper-case-repaired",
        P(communication=[comm("EN-us")]),
        {"preferred_language": "en"},
        ("language_repaired",),
    ),
    Case(
        "language--iso639-2-shortened",
        P(communication=[comm("spa", system="urn:iso:std:iso:639-2")]),
        {"preferred_language": "es"},
        ("language_repaired",),
    ),
    Case("language--three-letter-kept", P(communication=[comm("hmn")]), {"preferred_language": "hmn"}),
    Case(
        "language--underscore-repaired",
        P(communication=[comm("pt_BR")]),
        {"preferred_language": "pt"},
        ("language_repaired",),
    ),
    Case(
        "language--und-is-null", P(communication=[comm("und")]), {"preferred_language": None}, ("language_unreadable",)
    ),
    Case(
        "language--other-system-ignored",
        P(communication=[comm("E", system="http://example.org/lang")]),
        {"preferred_language": None},
    ),
    Case(
        "language--text-fallback",
        P(communication=[comm(text="Spanish")]),
        {"preferred_language": "es"},
        ("language_from_text",),
    ),
    Case(
        "language--text-not-a-language",
        P(communication=[comm(text="Needs interpreter")]),
        {"preferred_language": None},
        ("language_unreadable",),
    ),
    Case(
        "language--policy-no-text",
        P(communication=[comm(text="Spanish")]),
        {"preferred_language": None},
        policy={"language_from_text": False},
    ),
    Case(
        "language--unreadable-preferred-falls-back",
        P(communication=[comm("??", preferred=True), comm("ru")]),
        {"preferred_language": "ru"},
        ("language_unreadable",),
    ),
    Case("language--absent", P(), {"preferred_language": None}),
    Case(
        "language--not-a-list",
        P(communication={"language": "en"}),
        {"preferred_language": None},
        ("language_unreadable",),
    ),
    # administrative_gender
    Case("gender--female", P(gender="female"), {"administrative_gender": "female"}),
    Case("gender--unknown", P(gender="unknown"), {"administrative_gender": "unknown"}),
    Case("gender--case-repaired", P(gender="Male"), {"administrative_gender": "male"}, ("gender_repaired",)),
    Case("gender--letter-repaired", P(gender="F"), {"administrative_gender": "female"}, ("gender_repaired",)),
    Case("gender--invalid", P(gender="woman"), {"administrative_gender": None}, ("gender_invalid",)),
    Case("gender--not-a-string", P(gender=1), {"administrative_gender": None}, ("gender_invalid",)),
    Case("gender--absent", P(), {"administrative_gender": None}),
    # birth_date / birth_year
    Case("birthdate--full", P(birthDate="1980-02-29"), {"birth_date": datetime.date(1980, 2, 29), "birth_year": 1980}),
    Case("birthdate--year-only", P(birthDate="1980"), {"birth_date": None, "birth_year": 1980}),
    Case("birthdate--year-month", P(birthDate="1980-07"), {"birth_date": None, "birth_year": 1980}),
    Case(
        "birthdate--not-a-calendar-date",
        P(birthDate="1981-02-29"),
        {"birth_date": None, "birth_year": None},
        ("birth_date_invalid",),
    ),
    Case(
        "birthdate--bad-month",
        P(birthDate="1980-13"),
        {"birth_date": None, "birth_year": None},
        ("birth_date_invalid",),
    ),
    Case(
        "birthdate--datetime-repaired",
        P(birthDate="1980-01-02T00:00:00Z"),
        {"birth_date": datetime.date(1980, 1, 2)},
        ("birth_date_repaired",),
    ),
    Case(
        "birthdate--us-format-invalid",
        P(birthDate="01/02/1980"),
        {"birth_date": None, "birth_year": None},
        ("birth_date_invalid",),
    ),
    Case("birthdate--number-invalid", P(birthDate=1980), {"birth_year": None}, ("birth_date_invalid",)),
    # address
    Case(
        "address--home-without-end",
        P(
            address=[
                {"use": "work", "postalCode": "10001", "state": "NY"},
                {"use": "home", "postalCode": "94110", "state": "CA"},
            ]
        ),
        {"postal_code": "94110", "state": "CA"},
    ),
    Case(
        "address--ended-home-skipped",
        P(address=[{"use": "home", "postalCode": "90001", "period": {"end": "2020-01-01"}}, {"postalCode": "95814"}]),
        {"postal_code": "95814"},
    ),
    Case(
        "address--old-skipped",
        P(address=[{"use": "old", "postalCode": "90001"}, {"use": "temp", "postalCode": "95814"}]),
        {"postal_code": "95814"},
    ),
    Case(
        "address--all-ended-first",
        P(address=[{"use": "old", "postalCode": "90001", "state": "CA"}]),
        {"postal_code": "90001", "state": "CA"},
    ),
    Case("address--zip-plus-4", P(address=[{"postalCode": "94110-1234"}]), {"postal_code": "94110"}),
    Case(
        "address--policy-keep-zip-plus-4",
        P(address=[{"postalCode": "94110-1234"}]),
        {"postal_code": "94110-1234"},
        policy={"postal_code_zip5": False},
    ),
    Case(
        "address--non-us-postal-code-kept",
        P(address=[{"postalCode": "K1A 0B1", "state": "ON"}]),
        {"postal_code": "K1A 0B1", "state": "ON"},
        ("state_unrecognized",),
    ),
    Case(
        "address--postal-code-number",
        P(address=[{"postalCode": 94110}]),
        {"postal_code": "94110"},
        ("postal_code_repaired",),
    ),
    Case("address--state-name", P(address=[{"state": "California"}]), {"state": "CA"}, ("state_repaired",)),
    Case("address--state-lower-case", P(address=[{"state": "ca"}]), {"state": "CA"}, ("state_repaired",)),
    Case("address--state-with-dots", P(address=[{"state": "C.A."}]), {"state": "CA"}, ("state_repaired",)),
    Case(
        "address--not-a-list",
        P(address={"postalCode": "94110"}),
        {"postal_code": None, "state": None},
        ("address_malformed",),
    ),
    Case(
        "address--garbage-entry-skipped",
        P(address=["x", {"postalCode": "94110"}]),
        {"postal_code": "94110"},
        ("address_malformed",),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_demographics_case(case: Case) -> None:
    policy = dataclasses.replace(load_policy(), **case.policy) if case.policy else None
    result = normalize_patient(case.patient, (), policy)
    for key, expected in case.expect.items():
        assert result[key] == expected, f"{key}: {result[key]!r} (warnings {result['mapping_warnings']})"
    for code in case.warnings:
        assert code in result["mapping_warnings"], result["mapping_warnings"]
