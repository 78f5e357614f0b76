"""Code systems and crosswalks, read once from the CSV files in data/ (never literals in code)."""

from __future__ import annotations

import csv
import dataclasses
import functools
import io
import re
from importlib import resources

_NON_ALNUM = re.compile(r"[^0-9a-z]+")


def normalize_phrase(text: str) -> str:
    """Lower case, non-alphanumerics to single spaces: the key used for text phrases and language names."""
    return _NON_ALNUM.sub(" ", text.casefold()).strip()


def system_key(uri: str) -> str:
    """A forgiving key for a system URI: case, surrounding blanks, trailing slash and http/https ignored."""
    key = uri.strip().rstrip("/").casefold()
    if key.startswith("https://"):
        key = "http://" + key[8:]
    return key


def read_rows(name: str) -> list[dict[str, str]]:
    """Rows of data/<name>, skipping '#' comment lines (each file names its source in them)."""
    text = resources.files(__package__).joinpath("data").joinpath(name).read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    return list(csv.DictReader(io.StringIO("\n".join(lines))))


@dataclasses.dataclass(frozen=True)
class SystemInfo:
    """One recognized code system URI: its kind and the warning its spelling earns (empty when canonical)."""

    kind: str
    warning: str


@dataclasses.dataclass(frozen=True)
class Tables:
    """All lookup tables, built once per process."""

    domain: dict[str, str]  # CDCREC code -> race | ethnicity
    omb1997: dict[str, str]  # CDCREC code -> level-1 category code ('' for 2131-1 and the roots)
    omb2024_of_category: dict[str, str]  # level-1 race category code -> SPD-15 2024 name (data/categories.csv)
    hedis_of_category: dict[str, str]  # level-1 race category code (and 2131-1) -> HEDIS race stratum
    level: dict[str, int]
    abstract: frozenset[str]
    mena_subtree: frozenset[str]  # 2118-8 and its descendants
    hispanic: frozenset[str]  # 2135-2 and its descendants
    systems_exact: dict[str, SystemInfo]
    systems_loose: dict[str, SystemInfo]
    null_flavors: dict[tuple[str, str], str]  # (kind, code) -> meaning
    null_flavors_loose: dict[tuple[str, str], tuple[str, str]]  # (kind, casefolded code) -> (code, meaning)
    null_flavor_by_code: dict[str, tuple[str, str]]  # casefolded code -> (kind, meaning), for a missing system
    v2: dict[tuple[str, str], tuple[str, str]]  # (table, code) -> (target, warning)
    cms_race: dict[str, str]
    loinc_questions: dict[str, str]
    loinc_answers: dict[str, tuple[tuple[str, str], ...]]  # LA code -> ((question or '', target), ...)
    text_phrases: dict[str, tuple[str, ...]]
    extensions: dict[str, tuple[str, str, str, str]]  # url -> (question, format_complex, format_value, implied_kind)
    extensions_loose: dict[str, tuple[str, str, str, str]]  # system_key(url) -> the same
    language_codes: dict[str, str]
    language_names: dict[str, str]
    state_codes: frozenset[str]
    state_names: dict[str, str]


def _subtree(root: str, parent: dict[str, str]) -> frozenset[str]:
    children: dict[str, list[str]] = {}
    for code, par in parent.items():
        children.setdefault(par, []).append(code)
    found, stack = set(), [root]
    while stack:
        code = stack.pop()
        found.add(code)
        stack.extend(children.get(code, ()))
    return frozenset(found)


@functools.lru_cache(maxsize=1)
def tables() -> Tables:
    """Load every data file once (module-level lazy cache: the first patient pays, the rest do not)."""
    cdcrec = read_rows("cdcrec.csv")
    parent = {r["code"]: r["parent_code"] for r in cdcrec}
    systems = read_rows("systems.csv")
    nulls = read_rows("null_flavors.csv")
    answers: dict[str, list[tuple[str, str]]] = {}
    for r in read_rows("loinc_answers.csv"):
        answers.setdefault(r["code"], []).append((r["question"], r["target"]))
    extensions = {
        r["url"]: (r["question"], r["format_complex"], r["format_value"], r["implied_kind"])
        for r in read_rows("extension_urls.csv")
    }
    langs = read_rows("language_aliases.csv")
    states = read_rows("us_states.csv")
    categories = read_rows("categories.csv")
    return Tables(
        domain={r["code"]: r["domain"] for r in cdcrec},
        omb1997={r["code"]: r["omb1997_category_code"] for r in cdcrec},
        omb2024_of_category={r["cdcrec_code"]: r["omb2024"] for r in categories if r["omb2024"]},
        hedis_of_category={r["cdcrec_code"]: r["hedis"] for r in categories},
        level={r["code"]: int(r["level"]) for r in cdcrec},
        abstract=frozenset(r["code"] for r in cdcrec if r["abstract"] == "true"),
        mena_subtree=_subtree("2118-8", parent),
        hispanic=_subtree("2135-2", parent),
        systems_exact={r["system"]: SystemInfo(r["kind"], r["warning"]) for r in systems},
        systems_loose={system_key(r["system"]): SystemInfo(r["kind"], r["warning"]) for r in systems},
        null_flavors={(r["kind"], r["code"]): r["meaning"] for r in nulls},
        null_flavors_loose={(r["kind"], r["code"].casefold()): (r["code"], r["meaning"]) for r in nulls},
        null_flavor_by_code={
            r["code"].casefold(): (r["kind"], r["meaning"]) for r in nulls if r["without_system"] == "yes"
        },
        v2={(r["table"], r["code"]): (r["target"], r["warning"]) for r in read_rows("v2_tables.csv")},
        cms_race={r["code"]: r["target"] for r in read_rows("cms_race.csv")},
        loinc_questions={r["code"]: r["question"] for r in read_rows("loinc_questions.csv")},
        loinc_answers={code: tuple(rows) for code, rows in answers.items()},
        text_phrases={normalize_phrase(r["phrase"]): tuple(r["target"].split()) for r in read_rows("text_phrases.csv")},
        extensions=extensions,
        extensions_loose={system_key(url): value for url, value in extensions.items()},
        language_codes={r["value"]: r["subtag"] for r in langs if r["kind"] == "code"},
        language_names={normalize_phrase(r["value"]): r["subtag"] for r in langs if r["kind"] == "name"},
        state_codes=frozenset(r["code"] for r in states),
        state_names={normalize_phrase(r["name"]): r["code"] for r in states},
    )
