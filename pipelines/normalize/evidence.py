"""Collect what a Patient (and its race/ethnicity Observations) says to each question: codes, nulls, text, formats."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

from . import warning_codes as W
from .codings import NOT_HISPANIC, OTHER_RACE, resolve_coding, target_outcome
from .policy import Policy
from .tables import Tables, system_key, tables
from .text_rules import map_text

RACE, ETHNICITY, COMBINED = "race", "ethnicity", "combined"
_IGNORED_STATUSES = frozenset({"entered-in-error", "cancelled"})


class Question:
    """What one question (race or ethnicity) said, as evidence for classification.

    Codes are filed by their CDCREC domain, not by the slot they arrived in, so a Hispanic code sent in the race
    extension is an ethnicity answer (contract 4.2 rule 3); decisive/coded stay with the question that carried them.
    """

    __slots__ = (
        "coded",
        "codes",
        "decisive",
        "declined",
        "formats",
        "multiple",
        "name",
        "texts",
        "unknown",
        "unmapped",
    )

    def __init__(self, name: str) -> None:
        self.name = name
        self.codes: set[str] = set()
        self.declined = False
        self.unknown = False
        self.unmapped = False  # reported, but nothing we can map (unmapped or ambiguous text)
        self.multiple = False  # "multiracial" without saying which
        self.decisive = False  # carries a usable coding other than 2186-5: codes decide, text is not read
        self.coded = False  # carries any usable coding (null flavors and 2186-5 included)
        self.texts: list[str] = []
        self.formats: set[str] = set()

    def informative(self) -> bool:
        """True when the question says something beyond "unknown" or "not Hispanic" (observations fill the rest)."""
        return self.declined or self.unmapped or self.multiple or any(c != NOT_HISPANIC for c in self.codes)

    def merge(self, other: Question) -> None:
        self.codes |= other.codes
        self.declined |= other.declined
        self.unknown |= other.unknown
        self.unmapped |= other.unmapped
        self.multiple |= other.multiple
        self.decisive |= other.decisive
        self.coded |= other.coded
        self.texts.extend(x for x in other.texts if x not in self.texts)
        self.formats |= other.formats


class Reader:
    """Routes resolved codings and texts of one source (the Patient, or its Observations) into two Questions."""

    def __init__(self, t: Tables, policy: Policy, warn: list[str]) -> None:
        self.t, self.policy, self.warn = t, policy, warn
        self.race, self.ethnicity = Question(RACE), Question(ETHNICITY)

    def add_coding(
        self, coding: Any, slot: str, role: str, fmt: str, default_kind: str | None = None, loinc: str | None = None
    ) -> None:
        outcome = resolve_coding(coding, default_kind, loinc, self.t, self.policy, self.warn)
        if outcome is not None:
            self.add_outcome(outcome, slot, role, fmt)

    def add_outcome(self, outcome: tuple[str, str], slot: str, role: str, fmt: str) -> None:
        kind, code = outcome
        if kind in ("declined", "unknown"):
            for q in self._questions(slot):
                setattr(q, kind, True)
                q.coded = q.decisive = True
                q.formats.add(fmt)
            return
        domain = self.t.domain[code]
        q = self.ethnicity if domain == ETHNICITY else self.race
        if slot == RACE and domain == ETHNICITY:
            self.warn.append(W.NOT_HISPANIC_IN_RACE_SLOT if code == NOT_HISPANIC else W.HISPANIC_IN_RACE_SLOT)
        elif slot == ETHNICITY and domain == RACE:
            self.warn.append(W.RACE_CODE_IN_ETHNICITY_SLOT)
        if role == "category" and self.t.level.get(code, 1) > 1:
            self.warn.append(W.DETAILED_CODE_IN_CATEGORY_SLOT)
        q.codes.add(code)
        q.formats.add(fmt)
        # The question that carried the coding is the one whose text it silences (contract 4.2 rule 3), even when
        # the code itself belongs to the other question. 2186-5 adds nothing, so it silences nothing either.
        # A combined question (Blue Button, LOINC 46463-6) silences the question of the code's domain only.
        carrier = q if slot == COMBINED else self._question(slot)
        carrier.coded = True
        carrier.formats.add(fmt)
        if code != NOT_HISPANIC:
            carrier.decisive = True

    def add_text(self, value: Any, slot: str, fmt: str) -> None:
        if not isinstance(value, str):
            if value is not None:
                self.warn.append(W.MALFORMED_TEXT)
            return
        if value.strip():
            q = self.race if slot in (RACE, COMBINED) else self.ethnicity
            if value not in q.texts:
                q.texts.append(value)
            q.formats.add(fmt)

    def add_codeable_concept(
        self, cc: Any, slot: str, role: str, fmt: str, default_kind: str | None, loinc: str | None
    ) -> None:
        if not isinstance(cc, dict):
            self.warn.append(W.MALFORMED_CODING)
            return
        codings = cc.get("coding")
        if isinstance(codings, list):
            for coding in codings:
                self.add_coding(coding, slot, role, fmt, default_kind, loinc)
        elif codings is not None:
            self.warn.append(W.MALFORMED_CODING)
        self.add_text(cc.get("text"), slot, fmt)

    def add_value(
        self,
        element: Mapping[str, Any],
        slot: str,
        role: str,
        fmt: str,
        default_kind: str | None,
        loinc: str | None = None,
    ) -> bool:
        """Read value[x] of an extension or Observation; False when it has none we understand."""
        found = False
        if "valueCoding" in element:
            self.add_coding(element["valueCoding"], slot, role, fmt, default_kind, loinc)
            found = True
        if "valueCodeableConcept" in element:
            self.add_codeable_concept(element["valueCodeableConcept"], slot, role, fmt, default_kind, loinc)
            found = True
        if "valueCode" in element:
            self.add_coding({"code": element["valueCode"]}, slot, role, fmt, default_kind, loinc)
            found = True
        if "valueString" in element:
            self.add_text(element["valueString"], slot, fmt)
            found = True
        return found

    def _question(self, slot: str) -> Question:
        return self.ethnicity if slot == ETHNICITY else self.race

    def _questions(self, slot: str) -> tuple[Question, ...]:
        return (self.race, self.ethnicity) if slot == COMBINED else (self._question(slot),)

    def finish(self) -> tuple[Question, Question]:
        """Apply the text rule to each question and return (race, ethnicity)."""
        for q in (self.race, self.ethnicity):
            if q.texts:
                apply_text(q, self, self.policy)
        return self.race, self.ethnicity


def _rollup_keys(codes: set[str], t: Tables) -> set[str]:
    return {t.omb1997.get(c) or c for c in codes}


def apply_text(q: Question, reader: Reader, policy: Policy) -> None:
    """Codes decide: text is read only for a question with no usable coding (2186-5 aside); else only compared."""
    t, warn = reader.t, reader.warn
    if q.decisive:
        text_codes = set()
        for text in q.texts:
            targets, _ = map_text(text, t)
            text_codes.update(x for x in targets if x in t.domain)
        own = {c for c in q.codes if c != NOT_HISPANIC}
        keys_text, keys_codes = _rollup_keys(text_codes, t), _rollup_keys(own, t)
        if keys_text and keys_codes and not (keys_text & keys_codes):
            warn.append(W.TEXT_CONFLICTS_WITH_CODES)
        return
    if not policy.read_text_when_uncoded:
        warn.append(W.TEXT_IGNORED_BY_POLICY)
        return
    for text in q.texts:
        targets, unmapped = map_text(text, t)
        if unmapped or not targets:
            q.unmapped = True
            warn.append(W.RACE_TEXT_UNMAPPED if q.name == RACE else W.ETHNICITY_TEXT_UNMAPPED)
        for target in targets:
            if target == "ambiguous":
                q.unmapped = True
                warn.append(W.TEXT_AMBIGUOUS)
            elif target == "multiple":
                q.multiple = True
                warn.append(W.TEXT_MULTIPLE_UNSPECIFIED)
            else:
                outcome = target_outcome(target, policy)
                if outcome is not None:
                    kind, code = outcome
                    if kind == "code":
                        _add_text_code(q, reader, code)
                    else:
                        setattr(q, kind, True)


def _add_text_code(q: Question, reader: Reader, code: str) -> None:
    """A code named by text lands in the question of its domain, with the same slot warnings as a coding."""
    domain = reader.t.domain[code]
    if q.name == RACE and domain == ETHNICITY:
        reader.warn.append(W.NOT_HISPANIC_IN_RACE_SLOT if code == NOT_HISPANIC else W.HISPANIC_IN_RACE_SLOT)
    elif q.name == ETHNICITY and domain == RACE:
        reader.warn.append(W.RACE_CODE_IN_ETHNICITY_SLOT)
    # Like a coding, the code lands in the question of its domain; it does not make that question decisive.
    (reader.ethnicity if domain == ETHNICITY else reader.race).codes.add(code)


# ---------------------------------------------------------------- Patient extensions


def _extension_entry(url: str, t: Tables, warn: list[str]) -> tuple[str, str, str, str] | None:
    """(question, complex format, value format, implied kind) for a known URL; a repaired spelling earns a warning."""
    entry = t.extensions.get(url)
    if entry is None:
        entry = t.extensions_loose.get(system_key(url))
        if entry is not None:
            warn.append(W.SYSTEM_URI_REPAIRED)
    return entry


def race_ethnicity_extensions(extensions: Any) -> Any:
    """The part of `Patient.extension` that race/ethnicity reading looks at (recognized URLs, URLs that mention race
    or ethnicity, malformed entries); other extensions (birthPlace, ...) never affect it. Not a list: as it is."""
    if not isinstance(extensions, list):
        return extensions
    return [
        ext
        for ext in extensions
        if not isinstance(ext, dict) or not isinstance(url := ext.get("url"), str) or _race_relevant_url(url)
    ]


@functools.lru_cache(maxsize=4096)
def _race_relevant_url(url: str) -> bool:
    t = tables()
    if url in t.extensions or system_key(url) in t.extensions_loose:
        return True
    lowered = url.casefold()
    return "race" in lowered or "ethnic" in lowered


def read_extensions(extensions: Any, t: Tables, policy: Policy, warn: list[str]) -> Reader:
    """Every recognized race/ethnicity extension in `Patient.extension`, whatever its US Core / DSTU2 / converter
    form."""
    reader = Reader(t, policy, warn)
    if extensions is None:
        return reader
    if not isinstance(extensions, list):
        warn.append(W.MALFORMED_EXTENSION)
        return reader
    for ext in extensions:
        if not isinstance(ext, dict) or not isinstance(ext.get("url"), str):
            warn.append(W.MALFORMED_EXTENSION)
            continue
        url = ext["url"]
        entry = _extension_entry(url, t, warn)
        if entry is None:
            lowered = url.casefold()
            if "race" in lowered or "ethnic" in lowered:
                warn.append(W.UNRECOGNIZED_RACE_EXTENSION)
            continue
        _read_extension(ext, entry, reader)
    return reader


def _read_extension(ext: Mapping[str, Any], entry: tuple[str, str, str, str], reader: Reader) -> None:
    slot, fmt_complex, fmt_value, implied_kind = entry
    default_kind = implied_kind or None
    subs = ext.get("extension")
    got_any = False
    if isinstance(subs, list) and subs:
        for sub in subs:
            got_any |= _read_sub_extension(sub, slot, fmt_complex, default_kind, reader)
    elif subs is not None and not isinstance(subs, list):
        reader.warn.append(W.MALFORMED_EXTENSION)
    if any(k.startswith("value") for k in ext):
        if not reader.add_value(ext, slot, "value", fmt_value, default_kind):
            reader.warn.append(W.MALFORMED_EXTENSION)
        got_any = True
    if not got_any:
        reader.warn.append(W.EMPTY_RACE_EXTENSION)


_SUB_ROLES = {"ombCategory": "category", "detailed": "detailed", "text": "text"}


def _read_sub_extension(sub: Any, slot: str, fmt: str, default_kind: str | None, reader: Reader) -> bool:
    if not isinstance(sub, dict) or not isinstance(sub.get("url"), str):
        reader.warn.append(W.MALFORMED_EXTENSION)
        return False
    url = sub["url"]
    role = _SUB_ROLES.get(url) or _SUB_ROLES.get(url.rsplit("#", 1)[-1].rsplit("/", 1)[-1])
    if role is None:
        reader.warn.append(W.UNKNOWN_SUBEXTENSION)
        role = "value"
    if not reader.add_value(sub, slot, role, fmt, default_kind):
        reader.warn.append(W.MALFORMED_EXTENSION)
        return False
    return True


# ---------------------------------------------------------------- Observations


def observation_question(resource: Any, t: Tables) -> tuple[str, str] | None:
    """(question kind, LOINC code) when the resource is an Observation asking a race/ethnicity question."""
    if not isinstance(resource, Mapping) or resource.get("resourceType") != "Observation":
        return None
    return _question_of_code(resource.get("code"), t)


def _question_of_code(cc: Any, t: Tables) -> tuple[str, str] | None:
    if not isinstance(cc, Mapping):
        return None
    codings = cc.get("coding")
    if not isinstance(codings, list):
        return None
    for coding in codings:
        if not isinstance(coding, Mapping):
            continue
        code, system = coding.get("code"), coding.get("system")
        if not isinstance(code, str) or code.strip() not in t.loinc_questions:
            continue
        if system is None or (
            isinstance(system, str)
            and t.systems_loose.get(system_key(system), None) is not None
            and t.systems_loose[system_key(system)].kind == "loinc"
        ):
            return t.loinc_questions[code.strip()], code.strip()
    return None


def read_observations(observations: Sequence[Any], t: Tables, policy: Policy, warn: list[str]) -> Reader:
    """Race/ethnicity answers carried by Observations (LOINC question, CDCREC or LOINC LA answer, or null)."""
    reader = Reader(t, policy, warn)
    if not isinstance(observations, Sequence) or isinstance(observations, (str, bytes)):
        return reader
    for obs in observations:
        question = observation_question(obs, t)
        if question is None:
            if obs is not None and not (isinstance(obs, Mapping) and obs.get("resourceType") == "Observation"):
                warn.append(W.OBSERVATION_UNREADABLE)
            continue
        status = obs.get("status")
        if isinstance(status, str) and status in _IGNORED_STATUSES:
            warn.append(W.OBSERVATION_STATUS_IGNORED)
            continue
        _read_observation_value(obs, question, reader)
        components = obs.get("component")
        if isinstance(components, list):
            for comp in components:
                if isinstance(comp, Mapping):
                    _read_observation_value(comp, _question_of_code(comp.get("code"), t) or question, reader)
    return reader


def _read_observation_value(element: Mapping[str, Any], question: tuple[str, str], reader: Reader) -> None:
    slot, loinc = question
    fmt = "observation"
    reader.add_value(element, slot, "answer", fmt, None, loinc)
    if isinstance(element.get("valueBoolean"), bool) and slot == ETHNICITY:
        code = "2135-2" if element["valueBoolean"] else NOT_HISPANIC
        reader.add_outcome(("code", code), slot, "answer", fmt)
    dar = element.get("dataAbsentReason")
    if dar is not None:
        reader.add_codeable_concept(dar, slot, "answer", fmt, "dar", loinc)


def question_signature(q: Question, t: Tables) -> frozenset[str]:
    """What a question says, rolled up to categories: used to compare the Patient with its Observations."""
    keys = _rollup_keys(q.codes, t)
    if not keys and q.declined:
        keys.add("declined")
    if q.unmapped or q.multiple:
        keys.add(OTHER_RACE)
    return frozenset(keys)
