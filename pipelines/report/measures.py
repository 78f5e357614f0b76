"""Quality measures stratified by race and ethnicity (contract 5.2): member-level results joined to
patient_demographics, and their denominators and numerators per source, measure, stratifier and stratum, as SQL.

One definition of the join (`RESOLVED`, a temporary view over the registered results) feeds the published rows,
the unmatched results and the base cells of the suppression model (measure_model.py), so that they agree.

Matching: a result with a `source` meets the patient of that source with its `patient_id`; a result without one
meets the patient with that id when exactly one source has it. A result that meets no patient (never landed,
deleted, another source), or several (no source given, the id in two sources), is *unmatched*: it counts in the
Unknown strata (contract 5.2) and is reported by reason. It counts under the source it names; without one, under
the reported source when there is one, else only in `(all)` (as source `(none)` of the unmatched results), like
a result that names a source the warehouse does not have. A result of a warehouse source that the report leaves
out (`--source`) is left out with it.

There is no warehouse view of the measures: results are an input file of one report, not a warehouse table, and
rates and intervals are computed (and suppressed) in Python.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pipelines.normalize.classify import UNKNOWN
from pipelines.report.tables import (
    ALL,
    HEDIS_ETHNICITY_STRATA,
    HEDIS_RACE_STRATA,
    SINGLE_CATEGORIES,
    quoted,
    records,
    values_relation,
)
from pipelines.tables import PATIENTS

if TYPE_CHECKING:
    import duckdb

    from pipelines.report.measure_inputs import MeasureInput, Reject

STRATIFIERS: Mapping[str, tuple[str, ...]] = {
    "hedis_race": HEDIS_RACE_STRATA,
    "hedis_ethnicity": HEDIS_ETHNICITY_STRATA,
    "omb2024_category": SINGLE_CATEGORIES,
}
UNMATCHED_STRATUM: Mapping[str, str] = {
    "hedis_race": "Unknown",
    "hedis_ethnicity": "Unknown",
    "omb2024_category": UNKNOWN,
}
TOTAL = "Total"  # every stratum of a stratifier: the measure's denominator (HEDIS: "each, plus Total")
NO_SOURCE = "(none)"  # the source of an unmatched result that named none
NOT_FOUND = "patient_not_found"
AMBIGUOUS = "patient_id_ambiguous"
RESULTS = "measure_results_input"  # the registered Arrow table of results
RESOLVED = "measure_results_resolved"  # the temporary view: each result with its source, strata and scope


@dataclasses.dataclass(frozen=True)
class MeasureFigures:
    """What the results and the warehouse say, nothing suppressed yet."""

    rows: Sequence[Mapping[str, Any]]  # source, measure, stratifier, stratum, denominator, numerator
    unmatched: Sequence[Mapping[str, Any]]  # source, measure, reason, denominator, numerator
    cells: Sequence[Mapping[str, Any]]  # base cells: source, measure, the three strata, unmatched, numerator, results
    counts: Mapping[str, int]  # what became of the results read (`COUNTS`)
    sources: tuple[str, ...]  # the reported sources
    files: tuple[str, ...] = ()  # the --measures files
    rejects: Sequence[Reject] = ()
    other_resources: Mapping[str, int] = dataclasses.field(default_factory=Counter)


def _strata(column: str) -> str:
    return f"coalesce(m.{column}, '{UNMATCHED_STRATUM[column]}')"


def resolved_query(sources: Sequence[str]) -> str:
    """Each result with the source it counts under, its three strata, why it is unmatched (NULL: matched) and its
    scope (`report`, or `left_out` for a warehouse source the report leaves out)."""
    chosen = ", ".join(quoted(s) for s in sources)
    unnamed = quoted(sources[0] if len(sources) == 1 else NO_SOURCE)  # an unmatched result without source
    strata = ", ".join(
        f"CASE WHEN m.found = 1 THEN {_strata(c)} ELSE '{UNMATCHED_STRATUM[c]}' END AS {c}" for c in STRATIFIERS
    )
    picked = ", ".join(f"any_value(p.{c}) AS {c}" for c in STRATIFIERS)
    return f"""
WITH results AS (SELECT row_number() OVER () AS rid, * FROM {RESULTS}),
warehouse AS (SELECT DISTINCT source FROM {PATIENTS}),
matches AS (
    SELECT r.rid, count(*) AS found, any_value(p.source) AS source, {picked}
    FROM results r JOIN {PATIENTS} p ON p.patient_id = r.patient_id AND (r.source IS NULL OR p.source = r.source)
    GROUP BY r.rid),
attributed AS (
    SELECT CASE WHEN r.source IS NULL THEN coalesce(CASE WHEN m.found = 1 THEN m.source END, {unnamed})
                WHEN r.source IN (SELECT source FROM warehouse) THEN r.source ELSE '{NO_SOURCE}' END AS source,
           r.measure, r.denominator, r.numerator, r.exclusion,
           CASE WHEN m.found = 1 THEN NULL WHEN m.found > 1 THEN '{AMBIGUOUS}' ELSE '{NOT_FOUND}' END AS unmatched,
           {strata}
    FROM results r LEFT JOIN matches m USING (rid))
SELECT *, CASE WHEN source IN ({chosen}) OR source = '{NO_SOURCE}' THEN 'report' ELSE 'left_out' END AS scope
FROM attributed
"""


COUNTED = f"(SELECT * FROM {RESOLVED} WHERE scope = 'report' AND denominator AND NOT exclusion)"
COUNTS = {  # what became of the results read: each a condition on RESOLVED
    "results": "true",
    "left_out": "scope = 'left_out'",
    "not_in_denominator": "scope = 'report' AND NOT denominator",
    "excluded": "scope = 'report' AND denominator AND exclusion",
    "counted": "scope = 'report' AND denominator AND NOT exclusion",
    "unmatched": "scope = 'report' AND denominator AND NOT exclusion AND unmatched IS NOT NULL",
}


def strata_query(sources: Sequence[str], measures: Sequence[str]) -> str:
    """Denominator and numerator per source (and `(all)`), measure (in the order the results first name them),
    stratifier and stratum: every listed stratum and `Total` for every measure (zeros included), then strata found
    that the contract does not list."""
    levels = values_relation([(s, f"{i:04d}") for i, s in enumerate([*sources, ALL])], ("source", "ord"))
    named = values_relation([(m, f"{i:06d}") for i, m in enumerate(measures)], ("measure", "ord"))
    listed = values_relation(
        [
            (t, s, f"{i}{j:03d}")
            for i, (t, strata) in enumerate(STRATIFIERS.items())
            for j, s in enumerate((TOTAL,) + strata)
        ],
        ("stratifier", "stratum", "ord"),
    )
    long = " UNION ALL ".join(
        f"SELECT source, measure, numerator, '{t}' AS stratifier, {t} AS stratum FROM {COUNTED} "
        f"UNION ALL SELECT source, measure, numerator, '{t}', '{TOTAL}' FROM {COUNTED}"
        for t in STRATIFIERS
    )
    return f"""
WITH long AS ({long}),
listed AS {listed},
strata AS (SELECT * FROM listed UNION ALL
           SELECT DISTINCT stratifier, stratum, '9999' FROM long
           WHERE NOT EXISTS (SELECT 1 FROM listed l WHERE l.stratifier = long.stratifier AND l.stratum = long.stratum)),
levels AS {levels},
measures AS (SELECT DISTINCT measure, ord FROM {RESOLVED} JOIN {named} USING (measure) WHERE scope = 'report'),
counts AS (
    SELECT CASE WHEN grouping(source) = 1 THEN '{ALL}' ELSE source END AS source, measure, stratifier, stratum,
           count(*) AS denominator, count(*) FILTER (WHERE numerator) AS numerator
    FROM long GROUP BY GROUPING SETS ((source, measure, stratifier, stratum), (measure, stratifier, stratum)))
SELECT l.source, m.measure, s.stratifier, s.stratum,
       coalesce(c.denominator, 0) AS denominator, coalesce(c.numerator, 0) AS numerator
FROM levels l CROSS JOIN measures m CROSS JOIN strata s
LEFT JOIN counts c ON c.source = l.source AND c.measure = m.measure AND c.stratifier = s.stratifier
     AND c.stratum = s.stratum
ORDER BY l.ord, m.ord, s.ord, s.stratum
"""


UNMATCHED_QUERY = f"""
SELECT CASE WHEN grouping(source) = 1 THEN '{ALL}' ELSE source END AS source, measure, unmatched AS reason,
       count(*) AS denominator, count(*) FILTER (WHERE numerator) AS numerator
FROM {COUNTED} WHERE unmatched IS NOT NULL
GROUP BY GROUPING SETS ((source, measure, unmatched), (measure, unmatched))
ORDER BY source = '{ALL}', source, measure, reason
"""
CELLS_QUERY = f"""
SELECT source, measure, {", ".join(STRATIFIERS)}, unmatched, numerator, count(*) AS results
FROM {COUNTED} GROUP BY ALL ORDER BY ALL
"""


def read_measure_figures(
    con: duckdb.DuckDBPyConnection, inputs: MeasureInput, sources: Sequence[str]
) -> MeasureFigures:
    """The results joined to the warehouse (a temporary view on this connection; the file is not changed)."""
    con.register(RESULTS, inputs.table())
    try:
        con.execute(f"CREATE OR REPLACE TEMP VIEW {RESOLVED} AS {resolved_query(sources)}")
        counted = ", ".join(f"count(*) FILTER (WHERE {condition}) AS {name}" for name, condition in COUNTS.items())
        counts = records(con, f"SELECT {counted} FROM {RESOLVED}")[0]
        figures = MeasureFigures(
            records(con, strata_query(sources, list(inputs.measures))),
            records(con, UNMATCHED_QUERY),
            records(con, CELLS_QUERY),
            counts,
            tuple(sources),
            tuple(inputs.files),
            tuple(inputs.rejects),
            Counter(inputs.other_resources),
        )
        con.execute(f"DROP VIEW {RESOLVED}")
    finally:
        con.unregister(RESULTS)
    return figures
