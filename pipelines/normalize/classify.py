"""OMB SPD-15 (2024) and HEDIS RES classification of the evidence (contract 4.2 and 4.3), driven by the Policy."""

from __future__ import annotations

from .codings import NOT_HISPANIC, OTHER_RACE
from .evidence import Question
from .policy import Policy
from .tables import Tables

WHITE_CODE = "2106-3"
ARAB, AFGHANISTANI, ARMENIAN = "2129-5", "2126-1", "2109-7"
OMB2024_CATEGORIES = ("AIAN", "ASIAN", "BLACK", "HISPANIC", "MENA", "NHPI", "WHITE")
MULTI, SOME_OTHER, DECLINED, UNKNOWN = "MULTIRACIAL_MULTIETHNIC", "SOME_OTHER", "DECLINED", "UNKNOWN"
_HEDIS_OTHER = "SomeOtherRace"


def race_category_2024(code: str, t: Tables, policy: Policy) -> str | None:
    """SPD-15 2024 category of one race code: MENA for the 2118-8 subtree and (by policy) Arab, else the 1997 one."""
    if code == AFGHANISTANI:
        return policy.afghanistani_category
    if code == ARMENIAN:
        return policy.armenian_category
    if code in t.mena_subtree or (code == ARAB and policy.arab_as_mena):
        return "MENA"
    return t.omb2024_of_category.get(t.omb1997.get(code, ""))


def omb2024_categories(race_codes: set[str], eth_codes: set[str], t: Tables, policy: Policy) -> list[str]:
    """Sorted 2024 categories.

    Rule R2a: a WHITE supported only by the 2106-3 category code, next to White-tree detail that 2024 moves out of
    White (MENA detail; Afghanistani or Armenian when the policy moves them), becomes that detail's category alone.
    """
    cats: set[str] = set()
    white_support: set[str] = set()
    moved_out_of_white = False
    for code in race_codes:
        cat = race_category_2024(code, t, policy)
        if cat == "WHITE":
            white_support.add(code)
        elif cat is not None:
            cats.add(cat)
            moved_out_of_white |= t.omb1997.get(code) == WHITE_CODE
    if white_support:
        only_the_category_code = white_support == {WHITE_CODE}
        if not (policy.white_with_only_mena_detail_is_mena and only_the_category_code and moved_out_of_white):
            cats.add("WHITE")
    if any(code in t.hispanic for code in eth_codes):
        cats.add("HISPANIC")
    return sorted(cats)


def omb2024_category(categories: list[str], race: Question, eth: Question, race_codes: set[str]) -> str:
    """One category, MULTIRACIAL_MULTIETHNIC, SOME_OTHER (reported, none of the seven), DECLINED or UNKNOWN."""
    if len(categories) == 1:
        return categories[0]
    if categories:
        return MULTI
    if OTHER_RACE in race_codes or race.unmapped or eth.unmapped or race.multiple or eth.multiple:
        return SOME_OTHER
    if race.declined or eth.declined:
        return DECLINED
    return UNKNOWN


def unmapped_text_only(category: str, race: Question, eth: Question) -> bool:
    """True when the only race/ethnicity evidence is text that maps to no category (contract 4.2 rule 4): a
    write-in, reported as SOME_OTHER but not counted toward completeness."""
    return (
        category == SOME_OTHER
        and (race.unmapped or eth.unmapped)
        and OTHER_RACE not in race.codes
        and not (race.multiple or eth.multiple)
    )


def status_of(category: str) -> str:
    """race_ethnicity_status as the contract defines it from omb2024_category."""
    if category == DECLINED:
        return "declined"
    if category == UNKNOWN:
        return "unknown"
    return "reported"


def hedis_race(race_codes: set[str], race: Question, hispanic: bool, t: Tables, policy: Policy) -> str:
    """HEDIS race from race codes only, 1997 roll-up (MENA is White), Other counting as one category."""
    found = {t.hedis_of_category.get(t.omb1997.get(code) or code, _HEDIS_OTHER) for code in race_codes}
    if race.unmapped and policy.unmapped_race_text == _HEDIS_OTHER:
        found.add(_HEDIS_OTHER)
    if race.multiple:
        if policy.multiple_unspecified_race == "TwoOrMoreRaces":
            return "TwoOrMoreRaces"
        if policy.multiple_unspecified_race == _HEDIS_OTHER:
            found.add(_HEDIS_OTHER)
    if len(found) > 1 and not policy.other_plus_one_is_two_or_more:
        found.discard(_HEDIS_OTHER)
    if len(found) > 1:
        return "TwoOrMoreRaces"
    if found:
        return found.pop()
    if race.declined:
        return "AskedButNoAnswer"
    if hispanic:
        return policy.hispanic_only_race
    return "Unknown"


def hedis_ethnicity(eth_codes: set[str], eth: Question, t: Tables) -> str:
    """Any Hispanic code, else 2186-5, else declined, else Unknown (contract 4.3)."""
    if any(code in t.hispanic for code in eth_codes):
        return "HispanicOrLatino"
    if NOT_HISPANIC in eth_codes:
        return "NotHispanicOrLatino"
    if eth.declined:
        return "AskedButNoAnswer"
    return "Unknown"
