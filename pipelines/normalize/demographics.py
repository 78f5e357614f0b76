"""The other strata fields: language, gender, birth date, home postal code and state, provider references."""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping
from typing import Any

from . import warning_codes as W
from .policy import Policy
from .tables import Tables, normalize_phrase, system_key

GENDERS = frozenset({"male", "female", "other", "unknown"})
# v2/v3 administrative sex letters are unambiguous; anything else is not guessed.
_GENDER_LETTERS = {"m": "male", "f": "female", "o": "other", "u": "unknown", "un": "unknown"}
_DATE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")
_DATETIME_PREFIX = re.compile(r"^(\d{4}-\d{2}-\d{2})[T ]\d{2}:\d{2}")
_SUBTAG = re.compile(r"^[a-z]{2,3}$")
_ZIP = re.compile(r"^(\d{5})(?:[- ]?\d{4})?$")
_LANGUAGE_SYSTEMS = frozenset(
    {
        "urn:ietf:bcp:47",
        "urn:ietf:rfc:5646",  # BCP 47
        "urn:iso:std:iso:639-1",
        "urn:iso:std:iso:639-2",
        "urn:iso:std:iso:639-3",
    }
)


def administrative_gender(value: Any, warn: list[str]) -> str | None:
    """Patient.gender when it is one of the four FHIR codes; case/blank or M/F letters repaired with a warning."""
    if value is None:
        return None
    if isinstance(value, str):
        if value in GENDERS:
            return value
        key = value.strip().casefold()
        repaired = key if key in GENDERS else _GENDER_LETTERS.get(key)
        if repaired is not None:
            warn.append(W.GENDER_REPAIRED)
            return repaired
    warn.append(W.GENDER_INVALID)
    return None


def birth_date(value: Any, warn: list[str]) -> tuple[datetime.date | None, int | None]:
    """(full date or None, year or None). FHIR allows YYYY and YYYY-MM: those give the year only."""
    if value is None:
        return None, None
    if not isinstance(value, str):
        warn.append(W.BIRTH_DATE_INVALID)
        return None, None
    text = value.strip()
    match = _DATE.match(text)
    if match is None:
        prefix = _DATETIME_PREFIX.match(text)
        if prefix is None:
            warn.append(W.BIRTH_DATE_INVALID)
            return None, None
        warn.append(W.BIRTH_DATE_REPAIRED)
        text = prefix.group(1)
        match = _DATE.match(text)
        assert match is not None
    elif text != value:
        warn.append(W.BIRTH_DATE_REPAIRED)
    year_s, month_s, day_s = match.groups()
    year = int(year_s)
    if year < 1 or (month_s is not None and not 1 <= int(month_s) <= 12):
        warn.append(W.BIRTH_DATE_INVALID)
        return None, None
    if day_s is None:
        return None, year
    try:
        return datetime.date(year, int(month_s), int(day_s)), year
    except ValueError:
        warn.append(W.BIRTH_DATE_INVALID)
        return None, None


def _language_from_code(code: Any, t: Tables) -> tuple[str | None, bool]:
    """(primary subtag, repaired?) from a BCP-47 tag or an ISO 639 code; None when it is not a language tag."""
    if not isinstance(code, str):
        return None, False
    tag = code.strip().replace("_", "-")
    primary = tag.split("-", 1)[0].casefold()
    repaired = tag != code or (primary != tag.split("-", 1)[0])
    alias = t.language_codes.get(primary)
    if alias is not None:
        return alias, True
    if _SUBTAG.match(primary) and primary not in ("und", "mul", "zxx", "mis"):
        return primary, repaired
    return None, False


def _language_of(comm: Any, t: Tables, policy: Policy, warn: list[str]) -> str | None:
    """Language of one Patient.communication entry: coding (BCP-47 or plain code) first, then text by policy."""
    if not isinstance(comm, dict):
        return None
    lang = comm.get("language")
    if not isinstance(lang, dict):
        return None
    codings = lang.get("coding")
    if isinstance(codings, list):
        for coding in codings:
            if not isinstance(coding, dict):
                continue
            system = coding.get("system")
            if system is not None and not (isinstance(system, str) and system_key(system) in _LANGUAGE_SYSTEMS):
                continue
            subtag, repaired = _language_from_code(coding.get("code"), t)
            if subtag is not None:
                if repaired:
                    warn.append(W.LANGUAGE_REPAIRED)
                return subtag
    text = lang.get("text")
    if policy.language_from_text and isinstance(text, str):
        subtag = t.language_names.get(normalize_phrase(text))
        if subtag is not None:
            warn.append(W.LANGUAGE_FROM_TEXT)
            return subtag
    return None


def preferred_language(communication: Any, t: Tables, policy: Policy, warn: list[str]) -> str | None:
    """BCP-47 primary subtag of the preferred communication (preferred=true first, then document order)."""
    if communication is None:
        return None
    if not isinstance(communication, list):
        warn.append(W.LANGUAGE_UNREADABLE)
        return None
    ordered = [c for c in communication if isinstance(c, dict) and c.get("preferred") is True]
    ordered += [c for c in communication if not (isinstance(c, dict) and c.get("preferred") is True)]
    for comm in ordered:
        subtag = _language_of(comm, t, policy, warn)
        if subtag is not None:
            if comm is not ordered[0]:
                warn.append(W.LANGUAGE_UNREADABLE)
            return subtag
    if ordered:
        warn.append(W.LANGUAGE_UNREADABLE)
    return None


def _period_ended(address: Mapping[str, Any]) -> bool:
    period = address.get("period")
    return isinstance(period, dict) and period.get("end") is not None


def current_address(addresses: Any, warn: list[str]) -> Mapping[str, Any] | None:
    """use=home without period.end; else the first address without period.end that is not use=old; else the first."""
    if addresses is None:
        return None
    if not isinstance(addresses, list):
        warn.append(W.ADDRESS_MALFORMED)
        return None
    usable = [a for a in addresses if isinstance(a, dict)]
    if len(usable) != len(addresses):
        warn.append(W.ADDRESS_MALFORMED)
    for address in usable:
        if address.get("use") == "home" and not _period_ended(address):
            return address
    for address in usable:
        if address.get("use") != "old" and not _period_ended(address):
            return address
    return usable[0] if usable else None


def postal_code(address: Mapping[str, Any] | None, policy: Policy, warn: list[str]) -> str | None:
    """The postal code as sent (trimmed); a US ZIP+4 is cut to ZIP5 by policy."""
    if address is None:
        return None
    value = address.get("postalCode")
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        warn.append(W.POSTAL_CODE_REPAIRED)
        value = str(value)
    if not isinstance(value, str):
        warn.append(W.ADDRESS_MALFORMED)
        return None
    text = value.strip()
    if not text:
        return None
    match = _ZIP.match(text)
    if match is not None and policy.postal_code_zip5 and match.group(1) != text:
        return match.group(1)
    if text != value:
        warn.append(W.POSTAL_CODE_REPAIRED)
    return text


def state(address: Mapping[str, Any] | None, t: Tables, warn: list[str]) -> str | None:
    """USPS two-letter code when the state is recognizable (code in any case, or full name); else as sent."""
    if address is None:
        return None
    value = address.get("state")
    if value is None:
        return None
    if not isinstance(value, str):
        warn.append(W.ADDRESS_MALFORMED)
        return None
    text = value.strip()
    if not text:
        return None
    if text in t.state_codes:
        return text
    upper = text.upper().replace(".", "")
    if upper in t.state_codes:
        warn.append(W.STATE_REPAIRED)
        return upper
    by_name = t.state_names.get(normalize_phrase(text))
    if by_name is not None:
        warn.append(W.STATE_REPAIRED)
        return by_name
    warn.append(W.STATE_UNRECOGNIZED)
    return text


def _reference_text(value: Any) -> str | None:
    reference = value.get("reference") if type(value) is dict else None
    if type(reference) is not str:
        return None
    return reference.strip() or None


def managing_organization(value: Any, warn: list[str]) -> str | None:
    """`Patient.managingOrganization.reference` as given (a provider stratum of the report)."""
    if value is None:
        return None
    reference = _reference_text(value)
    if reference is None and not isinstance(value, dict):
        warn.append(W.PROVIDER_REFERENCE_MALFORMED)
    return reference


def general_practitioner(value: Any, warn: list[str]) -> str | None:
    """The first `Patient.generalPractitioner[].reference` as given."""
    if value is None:
        return None
    if not isinstance(value, list):
        warn.append(W.PROVIDER_REFERENCE_MALFORMED)
        return None
    for item in value:
        reference = _reference_text(item)
        if reference is not None:
            return reference
        if not isinstance(item, dict):
            warn.append(W.PROVIDER_REFERENCE_MALFORMED)
    return None
