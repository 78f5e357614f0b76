"""Generates a synthetic FHIR Bulk Data export (NDJSON per resource type) for throughput and memory benchmarks.

    python benchmarks/generate_bulk.py --patients 100000 --out /tmp/bulk [--seed N] [--gzip]
        [--observations-per-patient 2] [--encounters-per-patient 1]

Writes Patient.ndjson, Observation.ndjson, Encounter.ndjson, deleted/Patient.ndjson (transaction Bundles of
DELETE entries for ~0.1% of the patients) and manifest.json; `--gzip` writes `.ndjson.gz`. The same arguments
give byte-identical files; Patient.ndjson does not depend on the clinical densities. Every value is synthetic.

Race/ethnicity encodings (contract 4.1) are drawn from a fixed catalogue of 52 payloads, skewed as in real
feeds (the top 10 payloads cover ~79% of patients), so payloads repeat heavily across patients:

| family | share | payloads | what it looks like |
|---|---:|---:|---|
| `us-core` | 62% | 20 | current US Core race + ethnicity, ombCategory + detailed + text, CDCREC `urn:oid` |
| `absent` | 8% | 1 | no race/ethnicity extension at all |
| `asku` | 5% | 1 | ombCategory `v3-NullFlavor` ASKU (declined), both questions |
| `cdcrec-other-system` | 5% | 5 | US Core shape, CDCREC codes under PHRaceAndEthnicityCDC, v3-Race, ... |
| `unk` | 4% | 1 | race ombCategory `v3-NullFlavor` UNK |
| `us-core-legacy-value` | 4% | 3 | pre-2017 US Core URL carrying a valueCodeableConcept |
| `cms-bluebutton` | 3% | 5 | Blue Button beneficiary race variable (RTI codes 0-5) |
| `us-core-dstu2` | 2% | 3 | `http://hl7.org/fhir/Profile/us-core#race` / `#ethnicity` |
| `data-absent-reason` | 2% | 3 | ombCategory coded with `data-absent-reason` |
| `hl7v2-converter` | 2% | 3 | `local-race-cd` (v2-0005) + ReportStream `ethnic-group` (v2-0189) |
| `text-only` | 2% | 4 | US Core race extension with a text sub-extension only |
| `malformed` | 1% | 3 | a coding that is a string, a code that is a number, a system URI with a trailing slash |
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import functools
import gzip
import itertools
import json
import os
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from datetime import date, timedelta
from pathlib import Path
from random import Random
from typing import Any, Generic, NamedTuple, TypeVar

import orjson

from pipelines.samples import (
    ETHNICITY_QUESTION,
    FAMILY,
    GIVEN,
    LOINC,
    RACE_QUESTION,
    US_CORE_ETHNICITY,
    US_CORE_PROFILES,
    US_CORE_RACE,
    bluebutton_extensions,
    declined_extensions,
    legacy_value_extensions,
    race_observation,
    text_only_extensions,
    unknown_extensions,
    us_core_race_extensions,
)

SEED = 20261201
# Later than every lastUpdated, so that the deletions stick, and in the past: the pipeline's plausibility
# expectation refuses a lastUpdated in the future.
TRANSACTION_TIME = "2026-11-01T06:00:00Z"
EXPORT_YEAR = 2026
EXPORT_REQUEST = "https://bulk.example.org/fhir/$export?_type=Patient,Observation,Encounter"
DELETED_SHARE = 0.001
DELETES_PER_BUNDLE = 20
ORGANIZATIONS = 40
PRACTITIONERS = 2000
RESOURCE_TYPES = ("Patient", "Observation", "Encounter")
CHUNK_PATIENTS = 1000  # ~6.5 MB of NDJSON: big enough to amortize process hand-off, small enough for memory
# nginx's default gzip_comp_level: twice as fast to write as zlib's default 6 for files ~25% bigger
GZIP_LEVEL = 1

Resource = dict[str, Any]
Extensions = list[dict[str, Any]]
UsCoreProfile = tuple[list[str], list[str], list[str], str, str]  # the shape of samples.US_CORE_PROFILES
T = TypeVar("T")

# ---------------------------------------------------------------- race/ethnicity catalogue

PH_RACE_AND_ETHNICITY = "http://terminology.hl7.org/CodeSystem/PHRaceAndEthnicityCDC"
V3_RACE = "http://terminology.hl7.org/CodeSystem/v3-Race"
V3_ETHNICITY = "http://terminology.hl7.org/CodeSystem/v3-Ethnicity"
FHIR_V3_RACE = "http://hl7.org/fhir/v3/Race"
FHIR_V3_ETHNICITY = "http://hl7.org/fhir/v3/Ethnicity"
V2_RACE = "http://terminology.hl7.org/CodeSystem/v2-0005"
V2_ETHNIC_GROUP = "http://terminology.hl7.org/CodeSystem/v2-0189"
DATA_ABSENT_REASON = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
DSTU2_RACE = "http://hl7.org/fhir/Profile/us-core#race"
DSTU2_ETHNICITY = "http://hl7.org/fhir/Profile/us-core#ethnicity"
HL7V2_RACE = "http://ibm.com/fhir/cdm/StructureDefinition/local-race-cd"
HL7V2_ETHNIC_GROUP = "https://reportstream.cdc.gov/fhir/StructureDefinition/ethnic-group"

# samples.US_CORE_PROFILES by name, plus a few more common ones (same tuple shape).
(
    WHITE_NH,
    LEBANESE,
    IRISH_IRANIAN,
    BLACK_NH,
    CHINESE,
    VIETNAMESE,
    WHITE_MEXICAN,
    OTHER_HISPANIC,
    NAVAJO,
    SAMOAN,
    BLACK_WHITE,
    JAPANESE_WHITE_HISPANIC,
) = US_CORE_PROFILES
NOT_HISPANIC = "Not Hispanic or Latino"
WHITE_ENGLISH = (["2106-3"], ["2110-5"], ["2186-5"], "English", NOT_HISPANIC)
WHITE_ITALIAN = (["2106-3"], ["2114-7"], ["2186-5"], "Italian", NOT_HISPANIC)
AFRICAN_AMERICAN = (["2054-5"], ["2058-6"], ["2186-5"], "African American", NOT_HISPANIC)
HAITIAN = (["2054-5"], ["2071-9"], ["2186-5"], "Haitian", NOT_HISPANIC)
ASIAN_INDIAN = (["2028-9"], ["2029-7"], ["2186-5"], "Asian Indian", NOT_HISPANIC)
FILIPINO = (["2028-9"], ["2036-2"], ["2186-5"], "Filipino", NOT_HISPANIC)
KOREAN = (["2028-9"], ["2040-4"], ["2186-5"], "Korean", NOT_HISPANIC)
WHITE_PUERTO_RICAN = (["2106-3"], [], ["2135-2", "2180-8"], "White", "Puerto Rican")


class RaceProfile(NamedTuple):
    """One race/ethnicity payload of the catalogue, its encoding family and its weight in 1/10,000."""

    family: str
    weight: int
    extensions: Extensions


def value_extension(url: str, code: str, system: str, display: str) -> dict[str, Any]:
    """A race/ethnicity extension carrying one valueCodeableConcept (DSTU2, HL7 v2 converters)."""
    return {
        "url": url,
        "valueCodeableConcept": {"coding": [{"system": system, "code": code, "display": display}], "text": display},
    }


def split_system_extensions(profile: UsCoreProfile, race_system: str, ethnicity_system: str) -> Extensions:
    """US Core race and ethnicity whose CDCREC codes sit under two different system URIs."""
    race = us_core_race_extensions(*profile, system=race_system)[0]
    ethnicity = us_core_race_extensions(*profile, system=ethnicity_system)[1]
    return [race, ethnicity]


def data_absent_extensions(race_reason: str, ethnicity_reason: str | None) -> Extensions:
    """US Core race (and ethnicity) whose ombCategory is a data-absent-reason code."""

    def question(url: str, reason: str) -> dict[str, Any]:
        coding = {"system": DATA_ABSENT_REASON, "code": reason}
        return {"url": url, "extension": [{"url": "ombCategory", "valueCoding": coding}]}

    extensions = [question(US_CORE_RACE, race_reason)]
    if ethnicity_reason is not None:
        extensions.append(question(US_CORE_ETHNICITY, ethnicity_reason))
    return extensions


def coding_as_string_extensions() -> Extensions:
    """A feed that flattened the race ombCategory coding to its bare code string."""
    extensions = us_core_race_extensions(*WHITE_NH)
    extensions[0]["extension"][0]["valueCoding"] = "2106-3"
    return extensions


def numeric_code_extensions() -> Extensions:
    """A spreadsheet round trip: 2054-5 lost its dash and became the number 20545."""
    extensions = us_core_race_extensions(*BLACK_NH)
    extensions[0]["extension"][0]["valueCoding"]["code"] = 20545
    return extensions


def race_profiles() -> list[RaceProfile]:
    """The catalogue; weights sum to 10,000 and per family to the shares of the module docstring."""
    return [
        RaceProfile("us-core", 3300, us_core_race_extensions(*WHITE_NH)),
        RaceProfile("us-core", 1300, us_core_race_extensions(*BLACK_NH)),
        RaceProfile("us-core", 600, us_core_race_extensions(*WHITE_MEXICAN)),
        RaceProfile("us-core", 400, us_core_race_extensions(*OTHER_HISPANIC)),
        RaceProfile("us-core", 110, us_core_race_extensions(*CHINESE)),
        RaceProfile("us-core", 80, us_core_race_extensions(*WHITE_ENGLISH)),
        RaceProfile("us-core", 80, us_core_race_extensions(*AFRICAN_AMERICAN)),
        RaceProfile("us-core", 60, us_core_race_extensions(*ASIAN_INDIAN)),
        RaceProfile("us-core", 50, us_core_race_extensions(*BLACK_WHITE)),
        RaceProfile("us-core", 40, us_core_race_extensions(*FILIPINO)),
        RaceProfile("us-core", 30, us_core_race_extensions(*VIETNAMESE)),
        RaceProfile("us-core", 30, us_core_race_extensions(*WHITE_PUERTO_RICAN)),
        RaceProfile("us-core", 20, us_core_race_extensions(*KOREAN)),
        RaceProfile("us-core", 20, us_core_race_extensions(*LEBANESE)),
        RaceProfile("us-core", 20, us_core_race_extensions(*NAVAJO)),
        RaceProfile("us-core", 15, us_core_race_extensions(*WHITE_ITALIAN)),
        RaceProfile("us-core", 15, us_core_race_extensions(*HAITIAN)),
        RaceProfile("us-core", 10, us_core_race_extensions(*IRISH_IRANIAN)),
        RaceProfile("us-core", 10, us_core_race_extensions(*SAMOAN)),
        RaceProfile("us-core", 10, us_core_race_extensions(*JAPANESE_WHITE_HISPANIC)),
        RaceProfile("absent", 800, []),
        RaceProfile("asku", 500, declined_extensions()),
        RaceProfile("cdcrec-other-system", 200, us_core_race_extensions(*WHITE_NH, system=PH_RACE_AND_ETHNICITY)),
        RaceProfile("cdcrec-other-system", 100, split_system_extensions(BLACK_NH, V3_RACE, V3_ETHNICITY)),
        RaceProfile(
            "cdcrec-other-system", 100, split_system_extensions(WHITE_MEXICAN, FHIR_V3_RACE, FHIR_V3_ETHNICITY)
        ),
        RaceProfile("cdcrec-other-system", 50, us_core_race_extensions(*CHINESE, system=V2_RACE)),
        RaceProfile("cdcrec-other-system", 50, us_core_race_extensions(*OTHER_HISPANIC, system=V3_RACE)),
        RaceProfile("unk", 400, unknown_extensions()),
        RaceProfile("us-core-legacy-value", 200, legacy_value_extensions("2106-3", "White")),
        RaceProfile("us-core-legacy-value", 150, legacy_value_extensions()),
        RaceProfile("us-core-legacy-value", 50, legacy_value_extensions("2028-9", "Asian")),
        RaceProfile("cms-bluebutton", 180, bluebutton_extensions("1", "White")),
        RaceProfile("cms-bluebutton", 60, bluebutton_extensions("2", "Black")),
        RaceProfile("cms-bluebutton", 30, bluebutton_extensions("5", "Hispanic")),
        RaceProfile("cms-bluebutton", 20, bluebutton_extensions("0", "Unknown")),
        RaceProfile("cms-bluebutton", 10, bluebutton_extensions()),
        RaceProfile(
            "us-core-dstu2",
            120,
            [
                value_extension(DSTU2_RACE, "2106-3", FHIR_V3_RACE, "White"),
                value_extension(DSTU2_ETHNICITY, "2186-5", FHIR_V3_ETHNICITY, NOT_HISPANIC),
            ],
        ),
        RaceProfile(
            "us-core-dstu2", 50, [value_extension(DSTU2_RACE, "2054-5", FHIR_V3_RACE, "Black or African American")]
        ),
        RaceProfile(
            "us-core-dstu2",
            30,
            [
                value_extension(DSTU2_RACE, "2106-3", FHIR_V3_RACE, "White"),
                value_extension(DSTU2_ETHNICITY, "2135-2", FHIR_V3_ETHNICITY, "Hispanic or Latino"),
            ],
        ),
        RaceProfile("data-absent-reason", 80, data_absent_extensions("asked-declined", "asked-declined")),
        RaceProfile("data-absent-reason", 70, data_absent_extensions("unknown", "unknown")),
        RaceProfile("data-absent-reason", 50, data_absent_extensions("asked-unknown", None)),
        RaceProfile(
            "hl7v2-converter",
            120,
            [
                value_extension(HL7V2_RACE, "2106-3", V2_RACE, "White"),
                value_extension(HL7V2_ETHNIC_GROUP, "N", V2_ETHNIC_GROUP, NOT_HISPANIC),
            ],
        ),
        RaceProfile(
            "hl7v2-converter",
            40,
            [
                value_extension(HL7V2_RACE, "2054-5", V2_RACE, "Black or African American"),
                value_extension(HL7V2_ETHNIC_GROUP, "H", V2_ETHNIC_GROUP, "Hispanic or Latino"),
            ],
        ),
        # Retired table 0005 letter (C = Caucasian), still sent by old interfaces.
        RaceProfile(
            "hl7v2-converter",
            40,
            [
                value_extension(HL7V2_RACE, "C", V2_RACE, "Caucasian"),
                value_extension(HL7V2_ETHNIC_GROUP, "U", V2_ETHNIC_GROUP, "Unknown"),
            ],
        ),
        RaceProfile("text-only", 60, text_only_extensions()),
        RaceProfile("text-only", 60, text_only_extensions("Caucasian")),
        RaceProfile("text-only", 40, text_only_extensions("Hispanic")),
        RaceProfile("text-only", 40, text_only_extensions("Prefer not to say")),
        RaceProfile("malformed", 40, coding_as_string_extensions()),
        RaceProfile("malformed", 30, numeric_code_extensions()),
        RaceProfile("malformed", 30, us_core_race_extensions(*WHITE_NH, system=PH_RACE_AND_ETHNICITY + "/")),
    ]


# ---------------------------------------------------------------- other catalogues


def language(code: str, display: str) -> dict[str, Any]:
    """Patient.communication.language as Synthea writes it (BCP-47 coding and text)."""
    return {"coding": [{"system": "urn:ietf:bcp:47", "code": code, "display": display}], "text": display}


LANGUAGES: list[tuple[int, dict[str, Any]]] = [  # (weight in 1/10,000, language); the last two are text only
    (5680, language("en", "English")),
    (2500, language("en-US", "English (United States)")),
    (1100, language("es", "Spanish")),
    (150, language("zh", "Chinese")),
    (100, language("vi", "Vietnamese")),
    (60, language("ko", "Korean")),
    (80, language("tl", "Tagalog")),
    (50, language("ar", "Arabic")),
    (50, language("ru", "Russian")),
    (30, language("fa", "Persian")),
    (120, {"text": "English"}),
    (80, {"text": "Spanish"}),
]

# (city, state, state name, postal code, latitude, longitude): rough city centres, jittered per patient.
CITIES = [
    ("Los Angeles", "CA", "California", "90012", 34.05, -118.24),
    ("Fresno", "CA", "California", "93721", 36.74, -119.79),
    ("San Jose", "CA", "California", "95112", 37.34, -121.89),
    ("Sacramento", "CA", "California", "95814", 38.58, -121.49),
    ("San Diego", "CA", "California", "92101", 32.72, -117.16),
    ("Oakland", "CA", "California", "94612", 37.80, -122.27),
    ("Boston", "MA", "Massachusetts", "02118", 42.34, -71.07),
    ("Worcester", "MA", "Massachusetts", "01608", 42.26, -71.80),
    ("Houston", "TX", "Texas", "77002", 29.76, -95.37),
    ("El Paso", "TX", "Texas", "79901", 31.76, -106.49),
    ("Miami", "FL", "Florida", "33130", 25.77, -80.20),
    ("Orlando", "FL", "Florida", "32801", 28.54, -81.38),
    ("Chicago", "IL", "Illinois", "60607", 41.87, -87.65),
    ("Phoenix", "AZ", "Arizona", "85004", 33.45, -112.07),
    ("Gallup", "NM", "New Mexico", "87301", 35.53, -108.74),
    ("Seattle", "WA", "Washington", "98104", 47.60, -122.33),
    ("Honolulu", "HI", "Hawaii", "96813", 21.31, -157.86),
    ("Detroit", "MI", "Michigan", "48201", 42.35, -83.06),
    ("Atlanta", "GA", "Georgia", "30303", 33.75, -84.39),
    ("Queens", "NY", "New York", "11373", 40.74, -73.88),
]
STREETS = [
    "Maple",
    "Oak",
    "Cedar",
    "Mission",
    "Harbor",
    "Sunset",
    "Lincoln",
    "Jackson",
    "Willow",
    "Summit",
    "Park",
    "Lake",
    "Hill",
    "River",
    "Main",
    "Elm",
]
STREET_KINDS = ["St", "Ave", "Rd", "Blvd", "Way", "Ln", "Ct"]
# samples' names plus a few non-ASCII ones: real exports are UTF-8.
GIVEN_NAMES = GIVEN + ["José", "Zoë", "Thảo", "Søren"]
FAMILY_NAMES = FAMILY + ["Nuñez", "Nguyễn", "Müller"]


def marital_status(code: str, display: str) -> dict[str, Any]:
    return {
        "coding": [
            {"system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus", "code": code, "display": display}
        ],
        "text": display,
    }


MARITAL_STATUSES = [
    (45, marital_status("M", "Married")),
    (35, marital_status("S", "Never Married")),
    (12, marital_status("D", "Divorced")),
    (8, marital_status("W", "Widowed")),
]
ORGANIZATION_KINDS = ["Community Health Center", "Medical Group", "Family Clinic", "Hospital", "Health Partners"]


def identifier_type(code: str, display: str) -> dict[str, Any]:
    return {
        "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": code, "display": display}],
        "text": display,
    }


MRN_TYPE = identifier_type("MR", "Medical Record Number")
SSN_TYPE = identifier_type("SS", "Social Security Number")
DRIVERS_LICENSE_TYPE = identifier_type("DL", "Driver's license number")
PASSPORT_TYPE = identifier_type("PPN", "Passport Number")
PATIENT_META_PROFILE = ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"]
NARRATIVE = (
    '<div xmlns="http://www.w3.org/1999/xhtml">Generated by <a href="https://github.com/synthetichealth/'
    'synthea">Synthea</a>.Version identifier: v3.2.0-synthetic\n .   Person seed: {seed}  Population seed: '
    "{population}</div>"
)

UCUM = "http://unitsofmeasure.org"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"


def category(code: str, display: str) -> list[dict[str, Any]]:
    return [{"coding": [{"system": OBSERVATION_CATEGORY, "code": code, "display": display}]}]


VITAL_SIGNS_CATEGORY = category("vital-signs", "Vital signs")
LABORATORY_CATEGORY = category("laboratory", "Laboratory")
SOCIAL_HISTORY_CATEGORY = category("social-history", "Social History")


class Measurement(NamedTuple):
    """A quantitative Observation kind: LOINC code, UCUM unit, plausible range, US Core profile, category."""

    code: dict[str, Any]
    unit: str
    low: float
    high: float
    meta: dict[str, Any]
    category: list[dict[str, Any]]


def measurement(loinc: str, display: str, unit: str, low: float, high: float, lab: bool) -> Measurement:
    profile = "us-core-observation-lab" if lab else "us-core-vital-signs"
    return Measurement(
        {"coding": [{"system": LOINC, "code": loinc, "display": display}], "text": display},
        unit,
        low,
        high,
        {"profile": [f"http://hl7.org/fhir/us/core/StructureDefinition/{profile}"]},
        LABORATORY_CATEGORY if lab else VITAL_SIGNS_CATEGORY,
    )


MEASUREMENTS: list[tuple[int, Measurement]] = [  # (weight, kind); blood pressure and hCG are built apart
    (10, measurement("8302-2", "Body Height", "cm", 150, 195, lab=False)),
    (12, measurement("29463-7", "Body Weight", "kg", 45, 120, lab=False)),
    (10, measurement("39156-5", "Body mass index (BMI) [Ratio]", "kg/m2", 18, 38, lab=False)),
    (10, measurement("8867-4", "Heart rate", "/min", 55, 100, lab=False)),
    (8, measurement("9279-1", "Respiratory rate", "/min", 12, 20, lab=False)),
    (5, measurement("8310-5", "Body temperature", "Cel", 36.1, 37.8, lab=False)),
    (6, measurement("2339-0", "Glucose [Mass/volume] in Blood", "mg/dL", 65, 140, lab=True)),
    (4, measurement("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "%", 4.5, 9.0, lab=True)),
    (4, measurement("2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "mg/dL", 0.6, 1.4, lab=True)),
    (4, measurement("718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL", 11, 17, lab=True)),
    (4, measurement("2093-3", "Cholesterol [Mass/volume] in Serum or Plasma", "mg/dL", 140, 260, lab=True)),
]
BLOOD_PRESSURE = measurement("85354-9", "Blood pressure panel with all children optional", "mm[Hg]", 0, 0, lab=False)
SYSTOLIC = {"coding": [{"system": LOINC, "code": "8480-6", "display": "Systolic blood pressure"}]}
DIASTOLIC = {"coding": [{"system": LOINC, "code": "8462-4", "display": "Diastolic blood pressure"}]}
BLOOD_PRESSURE_WEIGHT = 14
# LOINC 2106-3 is a urine hCG test: the same string as CDCREC White, a trap for readers that ignore the system.
HCG_URINE = measurement("2106-3", "Choriogonadotropin (pregnancy test) [Presence] in Urine", "", 0, 0, lab=True)
HCG_NEGATIVE = {
    "coding": [{"system": "http://snomed.info/sct", "code": "260385009", "display": "Negative"}],
    "text": "Negative",
}
HCG_WEIGHT = 1


class EncounterKind(NamedTuple):
    encounter_class: dict[str, str]
    type: list[dict[str, Any]]


def encounter_kind(class_code: str, snomed: str, display: str) -> EncounterKind:
    return EncounterKind(
        {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": class_code},
        [{"coding": [{"system": "http://snomed.info/sct", "code": snomed, "display": display}], "text": display}],
    )


ENCOUNTER_KINDS = [  # (weight, kind): Synthea's most frequent encounter types
    (40, encounter_kind("AMB", "185349003", "Encounter for check up (procedure)")),
    (25, encounter_kind("AMB", "185347001", "Encounter for problem (procedure)")),
    (15, encounter_kind("AMB", "162673000", "General examination of patient (procedure)")),
    (10, encounter_kind("AMB", "410620009", "Well child visit (procedure)")),
    (7, encounter_kind("EMER", "50849002", "Emergency room admission (procedure)")),
    (3, encounter_kind("IMP", "32485007", "Hospital admission (procedure)")),
]
PRIMARY_PERFORMER = [
    {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                "code": "PPRF",
                "display": "primary performer",
            }
        ],
        "text": "primary performer",
    }
]
ENCOUNTER_META = {"profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-encounter"]}

RACE_ANSWERS = ["2106-3", "2106-3", "2054-5", "2028-9", "1002-5", "2076-8", "2131-1"]
ETHNICITY_ANSWERS = ["2186-5", "2186-5", "2186-5", "2135-2"]
# Race/ethnicity Observations for ~1% of patients, more often where the Patient itself says nothing.
RACE_OBSERVATION_SHARE_WITHOUT_EXTENSION = 0.06
RACE_OBSERVATION_SHARE_WITH_EXTENSION = 0.0055

FIRST_DAY = date(2015, 1, 1)
DAYS = [(FIRST_DAY + timedelta(days=n)).isoformat() for n in range((date(2026, 10, 31) - FIRST_DAY).days + 1)]
RECENT_DAYS = DAYS[-2 * 365 :]  # lastUpdated: the two years before the export, after every birth
UUID4_MASK = ~((0xF000 << 64) | (0xC000 << 48)) & ((1 << 128) - 1)
UUID4_BITS = (0x4000 << 64) | (0x8000 << 48)

# ---------------------------------------------------------------- drawing


class WeightedChoice(Generic[T]):
    """Draws items with fixed relative weights in O(log n) using one rng.random() call."""

    def __init__(self, weighted: Sequence[tuple[float, T]]) -> None:
        self.items = [item for _, item in weighted]
        self.cumulative = list(itertools.accumulate(weight for weight, _ in weighted))
        self.total = self.cumulative[-1]

    def draw(self, rng: Random) -> T:
        return self.items[bisect.bisect_right(self.cumulative, rng.random() * self.total)]


def zipf_weighted(items: Sequence[T], exponent: float) -> list[tuple[float, T]]:
    """Weights 1/rank^exponent: a few items take most draws, as with real clinics and physicians."""
    return [(1 / (rank + 1) ** exponent, item) for rank, item in enumerate(items)]


def below(rng: Random, n: int) -> int:
    """A uniform integer in [0, n): ~20x faster than rng.randrange, which dominated the profile."""
    return int(rng.random() * n)


def pick(rng: Random, items: Sequence[T]) -> T:
    """A uniform item (rng.choice without its rejection sampling)."""
    return items[int(rng.random() * len(items))]


def new_uuid(rng: Random) -> str:
    """A version-4 UUID from the seeded generator (uuid.uuid4() would not be reproducible)."""
    h = f"{rng.getrandbits(128) & UUID4_MASK | UUID4_BITS:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def synthetic_name(rng: Random, names: Sequence[str]) -> str:
    """A Synthea-style name: a real first or last name with digits appended, so it is obviously not a person."""
    return f"{pick(rng, names)}{100 + below(rng, 900)}"


def timestamp(day: str, rng: Random) -> str:
    """An instant on `day` during working hours."""
    second = below(rng, 12 * 3600)
    return f"{day}T{7 + second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}+00:00"


class Directory:
    """The export's organizations and practitioners; patients pick them with a skewed distribution."""

    def __init__(self, rng: Random) -> None:
        self.organizations = [self._organization(rng, n) for n in range(ORGANIZATIONS)]
        self.organization_index = WeightedChoice(zipf_weighted(range(ORGANIZATIONS), 1.1))
        staff: list[list[dict[str, str]]] = [[self._practitioner(rng)] for _ in range(ORGANIZATIONS)]
        for _ in range(PRACTITIONERS - ORGANIZATIONS):  # bigger organizations employ more practitioners
            staff[self.organization_index.draw(rng)].append(self._practitioner(rng))
        self.practitioners = [WeightedChoice(zipf_weighted(people, 0.8)) for people in staff]

    @staticmethod
    def _organization(rng: Random, n: int) -> dict[str, str]:
        city = CITIES[n % len(CITIES)][0]
        return {"reference": f"Organization/{new_uuid(rng)}", "display": f"{city} {pick(rng, ORGANIZATION_KINDS)} {n}"}

    @staticmethod
    def _practitioner(rng: Random) -> dict[str, str]:
        display = f"Dr. {synthetic_name(rng, GIVEN_NAMES)} {synthetic_name(rng, FAMILY_NAMES)}"
        return {"reference": f"Practitioner/{new_uuid(rng)}", "display": display}

    def draw(self, rng: Random) -> tuple[dict[str, str], dict[str, str]]:
        """(managing organization, general practitioner) references, the practitioner from that organization."""
        index = self.organization_index.draw(rng)
        return self.organizations[index], self.practitioners[index].draw(rng)


# ---------------------------------------------------------------- Patient


class PatientFactory:
    """Builds Synthea/US Core-shaped Patients; the race/ethnicity payloads are shared catalogue objects."""

    def __init__(self, rng: Random, directory: Directory, population_seed: int) -> None:
        self.rng, self.directory, self.population_seed = rng, directory, population_seed
        self.race_profiles = WeightedChoice([(p.weight, p) for p in race_profiles()])
        self.languages = WeightedChoice(LANGUAGES)
        self.marital = WeightedChoice(MARITAL_STATUSES)

    def make(self) -> tuple[Resource, str]:
        """A Patient and the encoding family of its race/ethnicity payload."""
        rng = self.rng
        race = self.race_profiles.draw(rng)
        patient_id = new_uuid(rng)
        female = rng.random() < 0.51
        year = 1929 + below(rng, 95)  # up to 2023
        given, family = synthetic_name(rng, GIVEN_NAMES), synthetic_name(rng, FAMILY_NAMES)
        organization, practitioner = self.directory.draw(rng)
        patient: Resource = {
            "resourceType": "Patient",
            "id": patient_id,
            "meta": {
                "versionId": "1",
                "lastUpdated": timestamp(pick(rng, RECENT_DAYS), rng),
                "profile": PATIENT_META_PROFILE,
            },
            "text": {
                "status": "generated",
                "div": NARRATIVE.format(seed=rng.getrandbits(40), population=self.population_seed),
            },
            "extension": race.extensions + self._synthea_extensions(female, year),
            "identifier": self._identifiers(patient_id, year),
            "name": [self._official_name(given, family, female, year)],
            "telecom": [
                {"system": "phone", "value": f"555-{100 + below(rng, 900)}-{below(rng, 10000):04d}", "use": "home"}
            ],
            "gender": "female" if female else "male",
            "birthDate": f"{year}-{1 + below(rng, 12):02d}-{1 + below(rng, 28):02d}",
        }
        if year < 1990 and rng.random() < 0.04:
            patient["deceasedDateTime"] = timestamp(pick(rng, DAYS), rng)
        patient["address"] = [self._address()]
        patient["maritalStatus"] = self.marital.draw(rng)
        if rng.random() < 0.02:
            patient["multipleBirthInteger"] = 2 + below(rng, 2)
        else:
            patient["multipleBirthBoolean"] = False
        patient["communication"] = [{"language": self.languages.draw(rng)}]
        patient["generalPractitioner"] = [practitioner]
        patient["managingOrganization"] = organization
        return patient, race.family

    def _synthea_extensions(self, female: bool, birth_year: int) -> Extensions:
        rng = self.rng
        city, _, state_name, *_ = pick(rng, CITIES)
        disability_adjusted = round(rng.random() * 4, 4) if rng.random() < 0.3 else 0.0
        return [
            {
                "url": "http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName",
                "valueString": f"{synthetic_name(rng, GIVEN_NAMES)} {synthetic_name(rng, FAMILY_NAMES)}",
            },
            {
                "url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex",
                "valueCode": "F" if female else "M",
            },
            {
                "url": "http://hl7.org/fhir/StructureDefinition/patient-birthPlace",
                "valueAddress": {"city": city, "state": state_name, "country": "US"},
            },
            {
                "url": "http://synthetichealth.github.io/synthea/disability-adjusted-life-years",
                "valueDecimal": disability_adjusted,
            },
            {
                "url": "http://synthetichealth.github.io/synthea/quality-adjusted-life-years",
                "valueDecimal": round(max(EXPORT_YEAR - birth_year - disability_adjusted - rng.random() * 3, 0.5), 4),
            },
        ]

    def _identifiers(self, patient_id: str, birth_year: int) -> list[dict[str, Any]]:
        rng = self.rng
        identifiers: list[dict[str, Any]] = [
            {"system": "https://github.com/synthetichealth/synthea", "value": patient_id},
            {"type": MRN_TYPE, "system": "http://hospital.example.org/mrn", "value": f"{below(rng, 10**8):08d}"},
            # 999-xx-xxxx is never issued as an SSN: the number is synthetic by construction.
            {
                "type": SSN_TYPE,
                "system": "http://hl7.org/fhir/sid/us-ssn",
                "value": f"999-{10 + below(rng, 90)}-{below(rng, 10000):04d}",
            },
        ]
        if EXPORT_YEAR - birth_year >= 16:
            identifiers.append(
                {
                    "type": DRIVERS_LICENSE_TYPE,
                    "system": "urn:oid:2.16.840.1.113883.4.3.25",
                    "value": f"S999{below(rng, 10**6):06d}",
                }
            )
            if rng.random() < 0.6:
                identifiers.append(
                    {
                        "type": PASSPORT_TYPE,
                        "system": "http://hl7.org/fhir/sid/passport-USA",
                        "value": f"X{below(rng, 10**8):08d}X",
                    }
                )
        return identifiers

    def _official_name(self, given: str, family: str, female: bool, birth_year: int) -> dict[str, Any]:
        if EXPORT_YEAR - birth_year < 18:
            prefix = "Miss" if female else "Master"
        else:
            prefix = pick(self.rng, ["Mrs.", "Ms."]) if female else "Mr."
        return {"use": "official", "family": family, "given": [given], "prefix": [prefix]}

    def _address(self) -> dict[str, Any]:
        rng = self.rng
        city, state, _, postal_code, latitude, longitude = pick(rng, CITIES)
        geolocation = {
            "url": "http://hl7.org/fhir/StructureDefinition/geolocation",
            "extension": [
                {"url": "latitude", "valueDecimal": round(latitude + rng.uniform(-0.08, 0.08), 6)},
                {"url": "longitude", "valueDecimal": round(longitude + rng.uniform(-0.08, 0.08), 6)},
            ],
        }
        line = f"{1 + below(rng, 9998)} {pick(rng, STREETS)} {pick(rng, STREET_KINDS)}"
        return {
            "extension": [geolocation],
            "line": [line],
            "city": city,
            "state": state,
            "postalCode": postal_code,
            "country": "US",
        }


# ---------------------------------------------------------------- Encounters and Observations


def draw_count(rng: Random, mean: float) -> int:
    """0..2*mean, uniform, with the given mean: a patient's encounters or observations."""
    return int(rng.random() * 2 * mean + 0.5)


def lifetime_days(patient: Resource) -> tuple[int, int]:
    """The range of DAYS indexes between the patient's birth and death (or the export): no care before birth."""
    first = bisect.bisect_left(DAYS, patient["birthDate"])
    end = bisect.bisect_right(DAYS, patient.get("deceasedDateTime", "9999"))  # ISO dates sort as strings
    return first, end


class ClinicalFactory:
    """Builds a patient's Encounters and Observations (vital signs, labs, and a few race/ethnicity answers)."""

    def __init__(self, rng: Random, observations_per_patient: float, encounters_per_patient: float) -> None:
        self.rng = rng
        self.observations_per_patient, self.encounters_per_patient = observations_per_patient, encounters_per_patient
        self.encounter_kinds = WeightedChoice(ENCOUNTER_KINDS)
        self.measurements = WeightedChoice(
            [*MEASUREMENTS, (BLOOD_PRESSURE_WEIGHT, BLOOD_PRESSURE), (HCG_WEIGHT, HCG_URINE)]
        )

    def resources(self, patient: Resource, race_family: str, patient_number: int) -> Iterator[Resource]:
        """A patient's Encounters, then Observations (each in one of those encounters, when there is one)."""
        rng = self.rng
        lifetime = lifetime_days(patient)
        encounters = [self.encounter(patient, lifetime) for _ in range(draw_count(rng, self.encounters_per_patient))]
        yield from encounters
        for _ in range(draw_count(rng, self.observations_per_patient)):
            yield self.observation(patient["id"], pick(rng, encounters) if encounters else None, lifetime)
        yield from self.race_ethnicity_observations(patient, race_family, patient_number)

    def day(self, lifetime: tuple[int, int]) -> str:
        first, end = lifetime
        return DAYS[first + below(self.rng, end - first)]

    def encounter(self, patient: Resource, lifetime: tuple[int, int]) -> Resource:
        rng = self.rng
        kind = self.encounter_kinds.draw(rng)
        day = self.day(lifetime)
        start_hour, start_minute = 7 + below(rng, 11), 15 * below(rng, 4)
        period = {
            "start": f"{day}T{start_hour:02d}:{start_minute:02d}:00+00:00",
            "end": f"{day}T{start_hour + 1:02d}:{start_minute:02d}:00+00:00",
        }
        encounter_id = new_uuid(rng)
        return {
            "resourceType": "Encounter",
            "id": encounter_id,
            "meta": ENCOUNTER_META,
            "identifier": [
                {"use": "official", "system": "https://github.com/synthetichealth/synthea", "value": encounter_id}
            ],
            "status": "finished",
            "class": kind.encounter_class,
            "type": kind.type,
            "subject": {"reference": f"Patient/{patient['id']}"},
            "participant": [
                {"type": PRIMARY_PERFORMER, "period": period, "individual": patient["generalPractitioner"][0]}
            ],
            "period": period,
            "serviceProvider": patient["managingOrganization"],
        }

    def observation(self, patient_id: str, encounter: Resource | None, lifetime: tuple[int, int]) -> Resource:
        rng = self.rng
        kind = self.measurements.draw(rng)
        when = encounter["period"]["start"] if encounter else timestamp(self.day(lifetime), rng)
        observation: Resource = {
            "resourceType": "Observation",
            "id": new_uuid(rng),
            "meta": kind.meta,
            "status": "final",
            "category": kind.category,
            "code": kind.code,
            "subject": {"reference": f"Patient/{patient_id}"},
        }
        if encounter:
            observation["encounter"] = {"reference": f"Encounter/{encounter['id']}"}
        observation["effectiveDateTime"] = when
        observation["issued"] = when
        if kind is BLOOD_PRESSURE:
            observation["component"] = [
                {"code": SYSTOLIC, "valueQuantity": self._quantity(100, 150, kind.unit)},
                {"code": DIASTOLIC, "valueQuantity": self._quantity(60, 95, kind.unit)},
            ]
        elif kind is HCG_URINE:
            observation["valueCodeableConcept"] = HCG_NEGATIVE
        else:
            observation["valueQuantity"] = self._quantity(kind.low, kind.high, kind.unit)
        return observation

    def _quantity(self, low: float, high: float, unit: str) -> dict[str, Any]:
        return {"value": round(self.rng.uniform(low, high), 1), "unit": unit, "system": UCUM, "code": unit}

    def race_ethnicity_observations(self, patient: Resource, race_family: str, patient_number: int) -> list[Resource]:
        """LOINC 72826-1 / 69490-1 answers for ~1% of patients (contract 4.3)."""
        rng = self.rng
        share = (
            RACE_OBSERVATION_SHARE_WITHOUT_EXTENSION
            if race_family == "absent"
            else RACE_OBSERVATION_SHARE_WITH_EXTENSION
        )
        if rng.random() >= share:
            return []
        reference = f"Patient/{patient['id']}"
        questions = [(RACE_QUESTION, RACE_ANSWERS)]
        if rng.random() < 0.7:
            questions.append((ETHNICITY_QUESTION, ETHNICITY_ANSWERS))
        observations = []
        for offset, (question, answers) in enumerate(questions):
            observation = race_observation(reference, 2 * patient_number + offset, pick(rng, answers), question)
            observation["category"] = SOCIAL_HISTORY_CATEGORY
            observation["effectiveDateTime"] = patient["meta"]["lastUpdated"]
            observations.append(observation)
        return observations


# ---------------------------------------------------------------- chunks: the unit of work of a worker process


class ChunkSpec(NamedTuple):
    """Patients first_patient onwards; each chunk has its own seeded generators, so the output does not depend on
    how many workers made it."""

    seed: int
    index: int
    first_patient: int
    patients: int
    compress: bool
    observations_per_patient: float
    encounters_per_patient: float


class Chunk(NamedTuple):
    data: dict[str, bytes]  # NDJSON per resource type; one gzip member each when compressing
    counts: dict[str, int]
    deleted_ids: list[str]


def ndjson_line(resource: Resource) -> bytes:
    return orjson.dumps(resource, option=orjson.OPT_APPEND_NEWLINE)


def encode(data: bytes, compress: bool) -> bytes:
    """Gzip members concatenate into one valid gzip file (RFC 1952), so chunks compress in parallel."""
    return gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0) if compress else data


@functools.lru_cache(maxsize=1)
def directory(seed: int) -> Directory:
    """Built once per process: every chunk draws from the same organizations and practitioners."""
    return Directory(Random(f"{seed}:directory"))


def deleted_positions(spec: ChunkSpec) -> set[int]:
    """~DELETED_SHARE of the chunk's patients, at least one, so that even a small export has a deleted output."""
    count = max(1, round(spec.patients * DELETED_SHARE))
    return set(Random(f"{spec.seed}:deleted:{spec.index}").sample(range(spec.patients), count))


def make_chunk(spec: ChunkSpec) -> Chunk:
    # Separate generators: Patients do not change when the clinical densities do.
    patients = PatientFactory(Random(f"{spec.seed}:patients:{spec.index}"), directory(spec.seed), spec.seed)
    clinical = ClinicalFactory(
        Random(f"{spec.seed}:clinical:{spec.index}"), spec.observations_per_patient, spec.encounters_per_patient
    )
    lines: dict[str, list[bytes]] = {kind: [] for kind in RESOURCE_TYPES}
    deleted = deleted_positions(spec)
    deleted_ids = []
    for position in range(spec.patients):
        patient, race_family = patients.make()
        lines["Patient"].append(ndjson_line(patient))
        if position in deleted:
            deleted_ids.append(patient["id"])
        for resource in clinical.resources(patient, race_family, spec.first_patient + position):
            lines[resource["resourceType"]].append(ndjson_line(resource))
    return Chunk(
        {kind: encode(b"".join(chunk), spec.compress) for kind, chunk in lines.items()},
        {kind: len(chunk) for kind, chunk in lines.items()},
        deleted_ids,
    )


def chunk_specs(
    patients: int, seed: int, compress: bool, observations_per_patient: float, encounters_per_patient: float
) -> Iterator[ChunkSpec]:
    for index, first in enumerate(range(0, patients, CHUNK_PATIENTS)):
        yield ChunkSpec(
            seed,
            index,
            first,
            min(CHUNK_PATIENTS, patients - first),
            compress,
            observations_per_patient,
            encounters_per_patient,
        )


def chunks_in_order(specs: Iterable[ChunkSpec], workers: int) -> Iterator[Chunk]:
    """make_chunk over specs, in order; at most two chunks per worker in flight, so memory stays bounded."""
    if workers <= 1:
        yield from map(make_chunk, specs)
        return
    with ProcessPoolExecutor(workers) as pool:
        pending: deque[Future[Chunk]] = deque()
        for spec in specs:
            pending.append(pool.submit(make_chunk, spec))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


# ---------------------------------------------------------------- export files


class OutputFile(NamedTuple):
    resource_type: str
    url: str  # relative to the manifest
    count: int
    size: int


class Export(NamedTuple):
    outputs: list[OutputFile]
    deleted: OutputFile
    deleted_patients: int


def deleted_bundles(patient_ids: Sequence[str], rng: Random) -> Iterator[Resource]:
    """The Bulk `deleted` output: transaction Bundles of DELETE entries, timestamped at the export."""
    for start in range(0, len(patient_ids), DELETES_PER_BUNDLE):
        yield {
            "resourceType": "Bundle",
            "id": new_uuid(rng),
            "meta": {"lastUpdated": TRANSACTION_TIME},
            "type": "transaction",
            "entry": [
                {"request": {"method": "DELETE", "url": f"Patient/{patient_id}"}}
                for patient_id in patient_ids[start : start + DELETES_PER_BUNDLE]
            ],
        }


def write_deleted(out: Path, path: Path, patient_ids: Sequence[str], seed: int, compress: bool) -> OutputFile:
    bundles = [ndjson_line(bundle) for bundle in deleted_bundles(patient_ids, Random(f"{seed}:deleted-bundles"))]
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(encode(b"".join(bundles), compress))
    return OutputFile("Bundle", path.relative_to(out).as_posix(), len(bundles), path.stat().st_size)


def manifest(outputs: list[OutputFile], deleted: OutputFile) -> dict[str, Any]:
    """A Bulk Data manifest (the status response body); urls are relative to the manifest's folder."""

    def item(output: OutputFile) -> dict[str, Any]:
        return {"type": output.resource_type, "url": output.url, "count": output.count}

    return {
        "transactionTime": TRANSACTION_TIME,
        "request": EXPORT_REQUEST,
        "requiresAccessToken": False,
        "output": [item(o) for o in outputs],
        "deleted": [item(deleted)],
        "error": [],
    }


def generate(
    out: Path,
    patients: int,
    seed: int = SEED,
    compress: bool = False,
    observations_per_patient: float = 2.0,
    encounters_per_patient: float = 1.0,
    workers: int = 1,
) -> Export:
    """Writes the export into `out`, chunk by chunk: memory does not grow with `patients` (deleted ids aside)."""
    out.mkdir(parents=True, exist_ok=True)
    suffix = ".ndjson.gz" if compress else ".ndjson"
    paths = {kind: out / f"{kind}{suffix}" for kind in RESOURCE_TYPES}
    counts = dict.fromkeys(RESOURCE_TYPES, 0)
    deleted_ids: list[str] = []
    specs = chunk_specs(patients, seed, compress, observations_per_patient, encounters_per_patient)
    with contextlib.ExitStack() as stack:
        files = {kind: stack.enter_context(open(path, "wb")) for kind, path in paths.items()}
        for chunk in chunks_in_order(specs, workers):
            for kind, data in chunk.data.items():
                files[kind].write(data)
                counts[kind] += chunk.counts[kind]
            deleted_ids.extend(chunk.deleted_ids)
    outputs = [OutputFile(kind, path.name, counts[kind], path.stat().st_size) for kind, path in paths.items()]
    deleted = write_deleted(out, out / "deleted" / f"Patient{suffix}", deleted_ids, seed, compress)
    (out / "manifest.json").write_text(json.dumps(manifest(outputs, deleted), indent=2) + "\n")
    return Export(outputs, deleted, len(deleted_ids))


# ---------------------------------------------------------------- command line


def at_least(minimum: int, kind: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse type: a finite number of `kind` not below `minimum`."""

    def parse(text: str) -> Any:
        value = kind(text)
        if not minimum <= value < float("inf"):
            raise argparse.ArgumentTypeError(f"must be a number >= {minimum}, got {text}")
        return value

    return parse


def summary_line(out: Path, export: Export, seconds: float, patients: int) -> str:
    counts = ", ".join(f"{o.count:,} {o.resource_type}" for o in export.outputs)
    megabytes = (sum(o.size for o in export.outputs) + export.deleted.size) / 1e6
    rate = patients / seconds if seconds > 0 else 0.0
    return (
        f"wrote {len(export.outputs) + 2} files to {out}: {counts}, {export.deleted_patients:,} deleted patients "
        f"in {export.deleted.count:,} Bundles; {megabytes:,.1f} MB in {seconds:.1f} s ({rate:,.0f} patients/s)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=at_least(0, int), required=True)
    parser.add_argument("--out", type=Path, required=True, help="folder to write the export into")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--gzip", action="store_true", help="write .ndjson.gz files")
    parser.add_argument("--observations-per-patient", type=at_least(0, float), default=2.0)
    parser.add_argument("--encounters-per-patient", type=at_least(0, float), default=1.0)
    parser.add_argument(
        "--workers",
        type=at_least(1, int),
        default=len(os.sched_getaffinity(0)),
        help="processes generating chunks (default: the CPUs available); output does not depend on it",
    )
    args = parser.parse_args(argv)
    start = time.perf_counter()
    export = generate(
        args.out,
        args.patients,
        args.seed,
        args.gzip,
        args.observations_per_patient,
        args.encounters_per_patient,
        args.workers,
    )
    print(summary_line(args.out, export, time.perf_counter() - start, args.patients))
    return 0


if __name__ == "__main__":
    sys.exit(main())
