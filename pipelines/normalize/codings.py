"""Turn one coding (system, code) into a CDCREC code or a null meaning, repairing only what is unambiguous."""

from __future__ import annotations

from typing import Any

from . import warning_codes as W
from .policy import Policy
from .tables import SystemInfo, Tables, system_key

# Outcomes of resolve_coding: ("code", CDCREC code) | ("declined", "") | ("unknown", "") | None (ignored).
Outcome = tuple[str, str] | None
OTHER_RACE = "2131-1"
NOT_HISPANIC = "2186-5"


def clean_code(raw: Any, warn: list[str]) -> str | None:
    """A usable code string: numbers are stringified, blanks trimmed (both with a warning), anything else None."""
    if isinstance(raw, str):
        code = raw.strip()
        if code != raw and code:
            warn.append(W.CODE_FORMAT_REPAIRED)
        return code or None
    if isinstance(raw, int) and not isinstance(raw, bool):
        warn.append(W.CODE_NOT_STRING)
        return str(raw)
    return None


def lookup_system(raw: Any, t: Tables, warn: list[str]) -> SystemInfo | str | None:
    """SystemInfo for a known URI, None when absent, the string 'unknown' for an unrecognized one."""
    if raw is None:
        return None
    if not isinstance(raw, str):
        warn.append(W.MALFORMED_CODING)
        return None
    if not raw.strip():
        return None
    info = t.systems_exact.get(raw)
    if info is None:
        info = t.systems_loose.get(system_key(raw))
        if info is None:
            return "unknown"
        warn.append(W.SYSTEM_URI_REPAIRED)
    if info.warning:
        warn.append(info.warning)
    return info


def cdcrec_code(code: str, t: Tables, warn: list[str]) -> str | None:
    """The CDCREC code itself, or the 5-digit form with its check-digit dash restored; None if not CDCREC."""
    if code in t.domain:
        return code
    if len(code) == 5 and code.isdigit():
        dashed = f"{code[:4]}-{code[4]}"
        if dashed in t.domain:
            warn.append(W.CODE_FORMAT_REPAIRED)
            return dashed
    return None


def target_outcome(target: str, policy: Policy) -> Outcome:
    """Map a crosswalk target (CDCREC code, declined, unknown, asked_unknown, other) to an outcome."""
    if target == "declined":
        return ("declined", "")
    if target == "unknown":
        return ("unknown", "")
    if target == "asked_unknown":
        return ("declined", "") if policy.asked_unknown_is_declined else ("unknown", "")
    if target == "other":
        return ("code", OTHER_RACE)
    return ("code", target)


def _cdcrec_outcome(code: str, t: Tables, warn: list[str]) -> Outcome | bool:
    """Outcome for a code under a CDCREC system; False when the code is not CDCREC at all."""
    found = cdcrec_code(code, t, warn)
    if found is None:
        return False
    if found in t.abstract:
        warn.append(W.ABSTRACT_ROOT_CODE)
        return None
    return ("code", found)


def _null_outcome(kind: str, code: str, t: Tables, policy: Policy, warn: list[str]) -> Outcome | bool:
    meaning = t.null_flavors.get((kind, code))
    if meaning is None:
        loose = t.null_flavors_loose.get((kind, code.casefold()))
        if loose is None:
            return False
        warn.append(W.CODE_FORMAT_REPAIRED)
        meaning = loose[1]
    if meaning == "other":
        warn.append(W.NULL_FLAVOR_OTH_AS_OTHER_RACE)
    return target_outcome(meaning, policy)


def _loinc_outcome(code: str, question_loinc: str | None, t: Tables, policy: Policy) -> Outcome | bool:
    rows = t.loinc_answers.get(code)
    if not rows:
        return False
    for question, target in rows:
        if not question or question == question_loinc:
            return target_outcome(target, policy)
    return False


def _by_kind(kind: str, code: str, ctx: str | None, t: Tables, policy: Policy, warn: list[str]) -> Outcome | bool:
    """Resolve a code under a system of a known kind; False when the code does not belong to that system."""
    if kind == "cdcrec":
        return _cdcrec_outcome(code, t, warn)
    if kind == "v2-0005":
        found = _cdcrec_outcome(code, t, warn)
        if found is not False:
            return found
        row = t.v2.get(("0005", code.upper()))
        if row is None:
            return False
        if not policy.map_legacy_v2_letters:
            warn.append(W.V2_LEGACY_CODE_IGNORED)
            return None
        warn.append(row[1])
        return target_outcome(row[0], policy)
    if kind == "v2-0189":
        row = t.v2.get(("0189", code.upper()))
        if row is None:
            return False
        if row[1]:
            warn.append(row[1])
        return target_outcome(row[0], policy)
    if kind in ("nullflavor", "dar"):
        return _null_outcome(kind, code, t, policy, warn)
    if kind == "loinc":
        return _loinc_outcome(code, ctx, t, policy)
    if kind == "cms-race":
        target = t.cms_race.get(code)
        return False if target is None else target_outcome(target, policy)
    return False


def resolve_coding(
    coding: Any, default_kind: str | None, question_loinc: str | None, t: Tables, policy: Policy, warn: list[str]
) -> Outcome:
    """Resolve one Coding dict. default_kind is the code system a converter extension implies when system is absent."""
    if not isinstance(coding, dict):
        warn.append(W.MALFORMED_CODING)
        return None
    code = clean_code(coding.get("code"), warn)
    if code is None:
        warn.append(W.MALFORMED_CODING)
        return None
    info = lookup_system(coding.get("system"), t, warn)
    if isinstance(info, SystemInfo):
        found = _by_kind(info.kind, code, question_loinc, t, policy, warn)
        if found is not False:
            return found
        if info.kind == "loinc":
            # A CDCREC-looking code under LOINC is a LOINC concept (2106-3 is a urine hCG test), never a race.
            warn.append(W.CDCREC_CODE_UNDER_LOINC if code in t.domain else W.UNKNOWN_CODE)
            return None
        if info.kind != "snomed":
            # The system does not fit the code: repair only when the code is unambiguously CDCREC or a null flavor.
            for kind in ("cdcrec", "nullflavor", "dar"):
                other = _by_kind(kind, code, None, t, policy, [])
                if other:
                    warn.append(W.CODE_SYSTEM_MISMATCH)
                    return other
        warn.append(W.UNKNOWN_CODE)
        return None
    if info == "unknown":
        warn.append(W.UNKNOWN_CODE_SYSTEM)
        return None
    return _resolve_without_system(code, default_kind, question_loinc, t, policy, warn)


def _resolve_without_system(
    code: str, default_kind: str | None, question_loinc: str | None, t: Tables, policy: Policy, warn: list[str]
) -> Outcome:
    """A coding with no system: the container's implied system first, then an unambiguous CDCREC/null/LA code."""
    if default_kind is not None:
        found = _by_kind(default_kind, code, question_loinc, t, policy, warn)
        if found is not False:
            return found
    if not policy.repair_missing_system:
        warn.append(W.SYSTEM_MISSING_IGNORED)
        return None
    if code in t.domain or (len(code) == 5 and code.isdigit()):
        found = _cdcrec_outcome(code, t, warn)
        if found is not False:
            warn.append(W.SYSTEM_MISSING_REPAIRED)
            return found
    null = t.null_flavor_by_code.get(code.casefold())
    if null is not None:
        warn.append(W.SYSTEM_MISSING_REPAIRED)
        return _null_outcome(null[0], code, t, policy, warn) or None
    if code.startswith("LA"):
        found = _loinc_outcome(code, question_loinc, t, policy)
        if found:
            warn.append(W.SYSTEM_MISSING_REPAIRED)
            return found
    warn.append(W.SYSTEM_MISSING_IGNORED)
    return None
