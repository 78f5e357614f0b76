"""The classification policy: one frozen, picklable object read from one TOML file (data/policy.toml)."""

from __future__ import annotations

import dataclasses
import tomllib
from importlib import resources
from typing import Any

_HEDIS_RACES = ("Unknown", "SomeOtherRace", "TwoOrMoreRaces")
_CHOICES: dict[str, tuple[str, ...]] = {
    "afghanistani_category": ("MENA", "ASIAN", "WHITE"),
    "armenian_category": ("WHITE", "MENA"),
    "hispanic_only_race": ("Unknown", "SomeOtherRace"),
    "unmapped_race_text": ("Unknown", "SomeOtherRace"),
    "multiple_unspecified_race": _HEDIS_RACES,
}


class PolicyError(ValueError):
    """The policy file is unreadable or names an unknown switch or value (a configuration error, fail fast)."""


@dataclasses.dataclass(frozen=True)
class Policy:
    """Every classification switch, defaults as in contract section 4 (see data/policy.toml for the why)."""

    # [omb2024]
    arab_as_mena: bool = True
    afghanistani_category: str = "MENA"
    armenian_category: str = "WHITE"
    white_with_only_mena_detail_is_mena: bool = True
    read_text_when_uncoded: bool = True
    # [hedis]
    other_plus_one_is_two_or_more: bool = True
    hispanic_only_race: str = "Unknown"
    unmapped_race_text: str = "Unknown"
    multiple_unspecified_race: str = "TwoOrMoreRaces"
    # [null_flavors]
    asked_unknown_is_declined: bool = True
    # [observations]
    use_when_patient_has_none: bool = True
    # [codes]
    repair_missing_system: bool = True
    map_legacy_v2_letters: bool = True
    # [demographics]
    postal_code_zip5: bool = True
    language_from_text: bool = True


_SECTION_OF = {
    "arab_as_mena": "omb2024",
    "afghanistani_category": "omb2024",
    "armenian_category": "omb2024",
    "white_with_only_mena_detail_is_mena": "omb2024",
    "read_text_when_uncoded": "omb2024",
    "other_plus_one_is_two_or_more": "hedis",
    "hispanic_only_race": "hedis",
    "unmapped_race_text": "hedis",
    "multiple_unspecified_race": "hedis",
    "asked_unknown_is_declined": "null_flavors",
    "use_when_patient_has_none": "observations",
    "repair_missing_system": "codes",
    "map_legacy_v2_letters": "codes",
    "postal_code_zip5": "demographics",
    "language_from_text": "demographics",
}
_SECTIONS = frozenset(_SECTION_OF.values())
_FIELDS = {f.name: f for f in dataclasses.fields(Policy)}


def policy_from_mapping(doc: dict[str, Any]) -> Policy:
    """Build a Policy from a parsed TOML document; unknown sections, keys or values raise PolicyError."""
    values: dict[str, Any] = {}
    for section, body in doc.items():
        if section not in _SECTIONS or not isinstance(body, dict):
            raise PolicyError(f"unknown policy section [{section}]")
        for key, value in body.items():
            field = _FIELDS.get(key)
            if field is None or _SECTION_OF.get(key) != section:
                raise PolicyError(f"unknown policy switch {section}.{key}")
            expected = bool if field.type in (bool, "bool") else str
            if type(value) is not expected:
                raise PolicyError(f"policy switch {section}.{key} must be a {expected.__name__}")
            if key in _CHOICES and value not in _CHOICES[key]:
                raise PolicyError(f"policy switch {section}.{key} must be one of {', '.join(_CHOICES[key])}")
            values[key] = value
    return Policy(**values)


def load_policy(path: str | None = None) -> Policy:
    """Read the policy file; default: the one shipped in the package (data/policy.toml)."""
    try:
        if path is None:
            text = resources.files(__package__).joinpath("data").joinpath("policy.toml").read_text(encoding="utf-8")
        else:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
        doc = tomllib.loads(text)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PolicyError(f"cannot read policy file {path or 'data/policy.toml'}: {exc}") from exc
    return policy_from_mapping(doc)
