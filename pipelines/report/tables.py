"""The tables of `demographics report` (contract 5.1), each defined once as SQL over patient_demographics.

The same query makes the warehouse view of the table's name (every source, nothing suppressed) and the
figures of the published files (the chosen sources, per provider with `--by`, then suppressed), so an analyst
gets the published figures with SQL. A table is a stratum per patient (`stratum`, or a list of strata for the
overlapping tables), counted per source and `(all)`; `strata` are listed even when nobody is in them.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import TYPE_CHECKING, Any

from pipelines.normalize.classify import DECLINED, MULTI, OMB2024_CATEGORIES, SOME_OTHER, UNKNOWN, race_category_2024
from pipelines.normalize.policy import load_policy
from pipelines.normalize.tables import read_rows, tables
from pipelines.tables import PATIENTS

if TYPE_CHECKING:
    import duckdb

ALL = "(all)"  # the source (or provider) of the rows that add up every source (or provider)
NO_GROUP = "(none)"  # the provider group of patients without one
HEDIS_RACE_STRATA = (
    "AmericanIndianOrAlaskaNative",
    "Asian",
    "BlackOrAfricanAmerican",
    "NativeHawaiianOrOtherPacificIslander",
    "White",
    "SomeOtherRace",
    "TwoOrMoreRaces",
    "AskedButNoAnswer",
    "Unknown",
)  # contract 4.3, in the HEDIS RES order (omb2024.md 5.1)
HEDIS_ETHNICITY_STRATA = ("HispanicOrLatino", "NotHispanicOrLatino", "AskedButNoAnswer", "Unknown")
SINGLE_CATEGORIES = OMB2024_CATEGORIES + (MULTI, SOME_OTHER, DECLINED, UNKNOWN)
COMPLETENESS_STRATA = ("reported", "unmapped_text_only", "declined", "unknown")
REPORTED = "reported"  # the completeness stratum counted toward the goal (contract 4.2 rule 4)
# The population whose totals every exclusive table adds up to, and which the suppression links them through.
PEOPLE = "race_ethnicity"


@dataclasses.dataclass(frozen=True)
class Table:
    """One published table: a stratum per patient (SQL over a patient_demographics row).

    overlapping: `stratum` is a list (a patient counts in each), so the rows do not add up to the total.
    strata: listed for every source even when zero, in this order; strata found in the data follow.
    catalog: SQL relation (stratum, extra columns...) that restricts the strata found and describes them.
    family: tables that classify patients the same way are suppressed together over their common refinement.
    """

    name: str
    stratum: str
    family: str
    overlapping: bool = False
    strata: tuple[str, ...] = ()
    catalog: str | None = None
    description: str = ""


def records(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict[str, Any]]:
    """The rows of a query as dicts."""
    result = con.execute(sql)
    names = [d[0] for d in result.description]
    return [dict(zip(names, values, strict=True)) for values in result.fetchall()]


def quoted(value: str) -> str:
    """A string as an SQL literal."""
    return "'" + value.replace("'", "''") + "'"


def values_relation(rows: list[tuple[str, ...]], columns: tuple[str, ...]) -> str:
    """A VALUES relation with the given column names (strings quoted for SQL; no rows: an empty relation)."""
    if not rows:
        return "(SELECT " + ", ".join(f"NULL::VARCHAR AS {c}" for c in columns) + " WHERE false)"
    listed = ", ".join("(" + ", ".join(quoted(v) for v in row) + ")" for row in rows)
    return f"(SELECT * FROM (VALUES {listed}) AS v({', '.join(columns)}))"


@functools.cache
def detailed_codes() -> tuple[tuple[str, str, str, str], ...]:
    """(code, display, domain, SPD-15 2024 category under the shipped policy) of every detailed CDCREC code
    (level 2 or deeper: below the minimum categories)."""
    t, policy = tables(), load_policy()
    found = []
    for row in read_rows("cdcrec.csv"):
        if int(row["level"]) < 2:
            continue
        code = row["code"]
        category = (
            ("HISPANIC" if code in t.hispanic else "")
            if row["domain"] == "ethnicity"
            else (race_category_2024(code, t, policy) or "")
        )
        found.append((code, row["display"], row["domain"], category))
    return tuple(found)


_COMBINATION = (
    "CASE WHEN len(omb2024_categories) > 0 THEN array_to_string(omb2024_categories, '+') ELSE omb2024_category END"
)
_COMPLETENESS = (
    "CASE WHEN race_ethnicity_status = 'reported' AND unmapped_text_only THEN 'unmapped_text_only' "
    "ELSE race_ethnicity_status END"
)


@functools.cache
def report_tables() -> tuple[Table, ...]:
    """The tables of contract 5.1, in the order of the contract."""
    return (
        Table(
            "hedis_race",
            "hedis_race",
            "hedis_race",
            strata=HEDIS_RACE_STRATA,
            description="HEDIS race strata (1997 categories; exclusive, they add up to the total)",
        ),
        Table(
            "hedis_ethnicity",
            "hedis_ethnicity",
            "hedis_ethnicity",
            strata=HEDIS_ETHNICITY_STRATA,
            description="HEDIS ethnicity strata (exclusive)",
        ),
        Table(
            "omb2024_single_category",
            "omb2024_category",
            PEOPLE,
            strata=SINGLE_CATEGORIES,
            description="SPD-15 (2024): one category per patient, two or more as MULTIRACIAL_MULTIETHNIC",
        ),
        Table(
            "omb2024_alone_and_combinations",
            _COMBINATION,
            PEOPLE,
            strata=OMB2024_CATEGORIES,
            description="SPD-15 (2024): each category alone and each combination found (exclusive)",
        ),
        Table(
            "omb2024_alone_or_in_combination",
            "omb2024_categories",
            PEOPLE,
            overlapping=True,
            strata=OMB2024_CATEGORIES,
            description="SPD-15 (2024): everyone who reported the category, alone or with others "
            "(overlapping: adds up to more than the reported total)",
        ),
        Table(
            "detailed_groups",
            "list_distinct(list_concat(race_detailed_codes, ethnicity_detailed_codes))",
            "detailed_groups",
            overlapping=True,
            catalog=values_relation(list(detailed_codes()), ("stratum", "display", "domain", "category")),
            description="Detailed CDCREC groups found (disaggregation; overlapping)",
        ),
        Table(
            "language",
            "preferred_language",
            "language",
            description="Preferred language (BCP-47 primary subtag; empty: not recorded)",
        ),
        Table(
            "completeness",
            _COMPLETENESS,
            PEOPLE,
            strata=COMPLETENESS_STRATA,
            description="Reported race/ethnicity (unmapped text alone does not count), unmapped text, "
            "declined, unknown",
        ),
    )


def table(name: str) -> Table:
    return next(t for t in report_tables() if t.name == name)


def _label(column: str, grouped: bool) -> str:
    return f"CASE WHEN grouping({column}) = 1 THEN '{ALL}' ELSE {column} END" if grouped else column


def _grouping_sets(by_group: bool, *keys: str) -> str:
    """Per (grp, source), per grp over sources, and with `by_group` per source over groups and over both."""
    sets = [("grp", "source"), ("grp",)] + ([("source",), ()] if by_group else [])
    return ", ".join("(" + ", ".join(s + keys) + ")" for s in sets)


def table_query(t: Table, population: str, by_group: bool) -> str:
    """Counts per (grp, source, stratum), with `(all)` rows over sources (and over groups when `by_group`),
    every listed stratum for every population (zeros included), the denominator and the share.

    population: a relation of patient_demographics rows with a `grp` column (the provider, or one group).
    """
    grp = _label("grp", by_group)
    src = _label("source", True)
    stratum = f"unnest({t.stratum})" if t.overlapping else t.stratum
    listed = values_relation([(s, f"{i:03d}") for i, s in enumerate(t.strata)], ("stratum", "ord"))
    found = (
        "SELECT DISTINCT stratum, NULL::VARCHAR AS ord FROM classified c WHERE NOT EXISTS "
        "(SELECT 1 FROM listed WHERE listed.stratum IS NOT DISTINCT FROM c.stratum)"
    )
    if t.catalog:
        found += " AND stratum IN (SELECT stratum FROM catalog)"
    describe = "LEFT JOIN catalog USING (stratum)" if t.catalog else ""
    extra = ", catalog.* EXCLUDE (stratum)" if t.catalog else ""
    return f"""
WITH population AS ({population}),
listed AS {listed},
{"catalog AS " + t.catalog + "," if t.catalog else ""}
classified AS (SELECT grp, source, {stratum} AS stratum FROM population),
strata AS (SELECT * FROM listed UNION ALL ({found})),
denominators AS (
    SELECT {grp} AS grp, {src} AS source, count(*) AS denominator
    FROM population GROUP BY GROUPING SETS ({_grouping_sets(by_group)})),
counts AS (
    SELECT {grp} AS grp, {src} AS source, stratum, count(*) AS patients
    FROM classified GROUP BY GROUPING SETS ({_grouping_sets(by_group, "stratum")}))
SELECT d.grp, d.source, strata.stratum{extra},
       coalesce(c.patients, 0) AS patients, d.denominator,
       round(coalesce(c.patients, 0) / d.denominator, 4) AS share
FROM denominators d CROSS JOIN strata {describe}
LEFT JOIN counts c ON c.grp = d.grp AND c.source = d.source AND c.stratum IS NOT DISTINCT FROM strata.stratum
ORDER BY d.grp = '{ALL}', d.grp, d.source = '{ALL}', d.source, strata.ord NULLS LAST, strata.stratum NULLS LAST
"""


def whole_warehouse() -> str:
    """The population of the warehouse views: every patient, one group."""
    return f"SELECT *, '{ALL}' AS grp FROM {PATIENTS}"


def view_query(t: Table) -> str:
    return f"SELECT * EXCLUDE (grp) FROM ({table_query(t, whole_warehouse(), by_group=False)})"


def family_query(family: str, population: str) -> str:
    """The base cells of a family: patients per (grp, source) and combination of the family's strata (every
    exclusive table's stratum, and the list of an overlapping table's strata)."""
    members = [t for t in report_tables() if t.family == family]
    columns = ", ".join(f'{t.stratum} AS "{t.name}"' for t in members)
    return f"SELECT grp, source, {columns}, count(*) AS patients FROM ({population}) GROUP BY ALL"
