"""Pure normalization of a FHIR Patient's race, ethnicity, language, sex, birth date and home address (no Beam here).

Public API (called once per Patient by the reader):
    normalize_patient(patient, observations=(), policy=None) -> dict
    is_demographic_observation(resource) -> bool
    load_policy(path=None) -> Policy
Rules: contract section 4 and docs/classification.md; warning codes: docs/warnings.md.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from . import warning_codes
from .classify import (
    hedis_ethnicity,
    hedis_race,
    omb2024_categories,
    omb2024_category,
    status_of,
    unmapped_text_only,
)
from .demographics import (
    administrative_gender,
    birth_date,
    current_address,
    general_practitioner,
    managing_organization,
    postal_code,
    preferred_language,
    state,
)
from .evidence import (
    Question,
    observation_question,
    question_signature,
    race_ethnicity_extensions,
    read_extensions,
    read_observations,
)
from .policy import Policy, PolicyError, load_policy
from .tables import Tables, tables
from .warning_codes import ALL_CODES as WARNING_CODES

__all__ = [
    "NORMALIZATION_ERROR",
    "OUTPUT_KEYS",
    "WARNING_CODES",
    "Policy",
    "PolicyError",
    "RaceEthnicity",
    "is_demographic_observation",
    "load_policy",
    "normalize_patient",
    "other_demographics",
    "race_ethnicity",
    "race_ethnicity_extensions",
    "warning_codes",
]

_log = logging.getLogger(__name__)

OUTPUT_KEYS = (
    "race_ethnicity_status",
    "unmapped_text_only",
    "omb2024_categories",
    "omb2024_category",
    "hedis_race",
    "hedis_ethnicity",
    "race_detailed_codes",
    "ethnicity_detailed_codes",
    "race_text",
    "ethnicity_text",
    "race_source_format",
    "mapping_warnings",
    "preferred_language",
    "birth_date",
    "birth_year",
    "administrative_gender",
    "postal_code",
    "state",
    "managing_organization",
    "general_practitioner",
)
NORMALIZATION_ERROR = "normalization_error"


@functools.lru_cache(maxsize=1)
def _default_policy() -> Policy:
    return load_policy()


def is_demographic_observation(resource: Mapping[str, Any]) -> bool:
    """True for an Observation whose code is one of the race/ethnicity LOINC questions (data/loinc_questions.csv)."""
    try:
        return observation_question(resource, tables()) is not None
    except Exception:  # noqa: BLE001 - a predicate on arbitrary JSON must not raise either
        return False


def normalize_patient(
    patient: Mapping[str, Any], observations: Sequence[Mapping[str, Any]] = (), policy: Policy | None = None
) -> dict[str, Any]:
    """Normalize one Patient (plus its matched race/ethnicity Observations) into the warehouse columns.

    Never raises on JSON-shaped input: anything odd is repaired or ignored and named in mapping_warnings.
    """
    try:
        return _normalize(patient, observations, policy or _default_policy())
    except Exception as exc:  # noqa: BLE001 - last resort; the record must still land (contract 4.1 "never crash")
        # Never log patient data: the exception type only.
        _log.error("normalize_patient failed unexpectedly (%s); row landed as unknown", type(exc).__name__)
        return _empty_result([NORMALIZATION_ERROR])


def _normalize(patient: Mapping[str, Any], observations: Sequence[Any], policy: Policy) -> dict[str, Any]:
    race = _race_ethnicity(patient.get("extension"), observations, policy)
    other, warnings = _other_demographics(patient, policy)
    merged = {**race.fields, **other, "mapping_warnings": sorted({*race.warnings, *warnings})}
    return {key: merged[key] for key in OUTPUT_KEYS}


def _empty_result(warnings: list[str]) -> dict[str, Any]:
    return {
        "race_ethnicity_status": "unknown",
        "unmapped_text_only": False,
        "omb2024_categories": [],
        "omb2024_category": "UNKNOWN",
        "hedis_race": "Unknown",
        "hedis_ethnicity": "Unknown",
        "race_detailed_codes": [],
        "ethnicity_detailed_codes": [],
        "race_text": None,
        "ethnicity_text": None,
        "race_source_format": "absent",
        "mapping_warnings": sorted(set(warnings)),
        "preferred_language": None,
        "birth_date": None,
        "birth_year": None,
        "administrative_gender": None,
        "postal_code": None,
        "state": None,
        "managing_organization": None,
        "general_practitioner": None,
    }


def _combine_observations(
    race: Question, eth: Question, observations: Sequence[Any], t: Tables, policy: Policy, warn: list[str]
) -> None:
    """Observations fill a question the Patient leaves empty; where both speak and disagree, a conflict is recorded."""
    obs_race, obs_eth = read_observations(observations, t, policy, warn).finish()
    for mine, theirs in ((race, obs_race), (eth, obs_eth)):
        if not (theirs.informative() or theirs.codes or theirs.texts or theirs.unknown):
            continue
        if not mine.informative():
            if policy.use_when_patient_has_none:
                mine.merge(theirs)
            else:
                warn.append(warning_codes.OBSERVATION_NOT_USED)
        elif theirs.informative() and question_signature(mine, t) != question_signature(theirs, t):
            warn.append(warning_codes.OBSERVATION_CONFLICT)


def _patient_warnings(race: Question, eth: Question, warn: list[str]) -> None:
    """Contradictions inside the Patient itself (checked before Observations fill empty questions)."""
    for q in (race, eth):
        if (q.declined or q.unknown) and q.codes:
            warn.append(warning_codes.NULL_FLAVOR_WITH_CATEGORY)
        if q.declined and q.unknown:
            warn.append(warning_codes.DECLINED_AND_UNKNOWN)
    if len((race.formats | eth.formats) - {"observation"}) > 1:
        warn.append(warning_codes.MULTIPLE_RACE_SOURCES)


def source_format(race: Question, eth: Question) -> str:
    """Which encodings were read: '+'-joined names, 'text-only' when no coding was usable, 'absent' when nothing."""
    formats = race.formats | eth.formats
    if not formats:
        return "absent"
    if not (race.coded or eth.coded):
        return "text-only"
    return "+".join(sorted(formats))


@dataclasses.dataclass(frozen=True, slots=True)
class RaceEthnicity:
    """The race/ethnicity columns of one Patient, and the warnings of reading them."""

    fields: Mapping[str, Any]
    warnings: tuple[str, ...]


def race_ethnicity(extensions: Any, observations: Sequence[Any] = (), policy: Policy | None = None) -> RaceEthnicity:
    """Race/ethnicity from `Patient.extension` (the whole list, or only its race/ethnicity part: the result is the
    same) and the Patient's matched Observations. Never raises."""
    policy = policy or _default_policy()
    try:
        return _race_ethnicity(extensions, observations, policy)
    except Exception as exc:  # noqa: BLE001 - last resort; the record must still land (contract 4.1 "never crash")
        _log.error("race/ethnicity normalization failed unexpectedly (%s); landed as unknown", type(exc).__name__)
        empty = _empty_result([NORMALIZATION_ERROR])
        return RaceEthnicity({k: empty[k] for k in RACE_KEYS}, (NORMALIZATION_ERROR,))


def other_demographics(patient: Mapping[str, Any], policy: Policy | None = None) -> tuple[dict[str, Any], list[str]]:
    """Language, birth date, gender, home address and provider references, with their warnings. Never raises."""
    policy = policy or _default_policy()
    try:
        return _other_demographics(patient, policy)
    except Exception as exc:  # noqa: BLE001 - last resort, as above
        _log.error("demographics normalization failed unexpectedly (%s); landed without them", type(exc).__name__)
        empty = _empty_result([])
        return {k: empty[k] for k in OTHER_KEYS}, [NORMALIZATION_ERROR]


def _race_ethnicity(extensions: Any, observations: Sequence[Any], policy: Policy) -> RaceEthnicity:
    t = tables()
    warn: list[str] = []
    race, eth = read_extensions(extensions, t, policy, warn).finish()
    _patient_warnings(race, eth, warn)
    if observations:
        _combine_observations(race, eth, observations, t, policy, warn)
    if "2186-5" in eth.codes and any(c in t.hispanic for c in eth.codes):
        warn.append(warning_codes.HISPANIC_CONFLICT)
    categories = omb2024_categories(race.codes, eth.codes, t, policy)
    category = omb2024_category(categories, race, eth, race.codes)
    hispanic = any(c in t.hispanic for c in eth.codes)
    return RaceEthnicity(
        {
            "race_ethnicity_status": status_of(category),
            "unmapped_text_only": unmapped_text_only(category, race, eth),
            "omb2024_categories": categories,
            "omb2024_category": category,
            "hedis_race": hedis_race(race.codes, race, hispanic, t, policy),
            "hedis_ethnicity": hedis_ethnicity(eth.codes, eth, t),
            "race_detailed_codes": sorted(race.codes),
            "ethnicity_detailed_codes": sorted(eth.codes),
            "race_text": "; ".join(race.texts) or None,
            "ethnicity_text": "; ".join(eth.texts) or None,
            "race_source_format": source_format(race, eth),
        },
        tuple(sorted(set(warn))),
    )


def _other_demographics(patient: Mapping[str, Any], policy: Policy) -> tuple[dict[str, Any], list[str]]:
    memo = _memos(policy)
    warn: list[str] = []
    birth = patient.get("birthDate")
    born, year = _cached(memo.birth, (birth.__class__, birth), _birth_date, birth, warn)
    address = current_address(patient.get("address"), warn)
    fields = (address.get("postalCode"), address.get("state")) if isinstance(address, dict) else None
    key = None if fields is None else (fields[0].__class__, fields[0], fields[1].__class__, fields[1])
    zip_code, state_code = _cached(memo.address, key, _postal_and_state, fields, warn, policy)
    communication = patient.get("communication")
    return {
        "preferred_language": _cached(memo.language, _json_key(communication), _language, communication, warn, policy),
        "birth_date": born,
        "birth_year": year,
        "administrative_gender": administrative_gender(patient.get("gender"), warn),
        "postal_code": zip_code,
        "state": state_code,
        "managing_organization": managing_organization(patient.get("managingOrganization"), warn),
        "general_practitioner": general_practitioner(patient.get("generalPractitioner"), warn),
    }, warn


# Values that repeat across patients (birth dates, postal codes, languages) are normalized once each, per policy:
# the functions below are pure and return (result, warnings), kept by a hashable key of the value (with its type:
# 1, 1.0 and True are equal keys in Python but not the same JSON).
_MEMO_SIZE = 1 << 16


@dataclasses.dataclass
class _Memos:
    birth: dict[Any, Any] = dataclasses.field(default_factory=dict)
    address: dict[Any, Any] = dataclasses.field(default_factory=dict)
    language: dict[Any, Any] = dataclasses.field(default_factory=dict)


_MEMOS: dict[int, tuple[Policy, _Memos]] = {}


def _memos(policy: Policy) -> _Memos:
    """The memos of one policy object (by identity: a Policy hashes all its fields)."""
    found = _MEMOS.get(id(policy))
    if found is None or found[0] is not policy:
        found = _MEMOS[id(policy)] = (policy, _Memos())
    return found[1]


def _cached(memo: dict[Any, Any], key: Any, fn: Any, value: Any, warn: list[str], *args: Any) -> Any:
    try:
        result, warnings = memo[key]
    except KeyError:
        if len(memo) >= _MEMO_SIZE:
            memo.clear()
        result, warnings = memo[key] = fn(value, *args)
    except TypeError:  # not hashable (a list where a string goes): not memoized, same result
        result, warnings = fn(value, *args)
    if warnings:
        warn.extend(warnings)
    return result


def _json_key(value: Any) -> Any:
    """A hashable key for a JSON value (`object()`, never equal to another, when it cannot be serialized)."""
    try:
        return None if value is None else orjson.dumps(value)
    except TypeError:
        return object()


def _birth_date(value: Any) -> tuple[tuple[Any, Any], tuple[str, ...]]:
    warn: list[str] = []
    return birth_date(value, warn), tuple(warn)


def _postal_and_state(fields: tuple[Any, Any] | None, policy: Policy) -> tuple[tuple[Any, Any], tuple[str, ...]]:
    if fields is None:
        return (None, None), ()
    warn: list[str] = []
    address = {"postalCode": fields[0], "state": fields[1]}
    return (postal_code(address, policy, warn), state(address, tables(), warn)), tuple(warn)


def _language(communication: Any, policy: Policy) -> tuple[Any, tuple[str, ...]]:
    warn: list[str] = []
    return preferred_language(communication, tables(), policy, warn), tuple(warn)


RACE_KEYS = OUTPUT_KEYS[: OUTPUT_KEYS.index("mapping_warnings")]
OTHER_KEYS = OUTPUT_KEYS[OUTPUT_KEYS.index("mapping_warnings") + 1 :]
