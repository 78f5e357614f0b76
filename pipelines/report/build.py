"""One report: read the figures from the warehouse (and refresh its views), suppress, write files and pages."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb

from pipelines.errors import UsageError
from pipelines.report.measure_inputs import MeasureInput
from pipelines.report.measure_model import build_measure_models
from pipelines.report.measures import MeasureFigures, read_measure_figures
from pipelines.report.model import build_model
from pipelines.report.publish import (
    TREND,
    arrow_table,
    measure_reasons,
    publish_measures,
    publish_table,
    publish_trend,
    publish_unmatched,
    rows_of_group,
    write_table,
)
from pipelines.report.suppression import Suppression
from pipelines.report.tables import ALL, NO_GROUP, family_query, quoted, records, report_tables, table_query, view_query
from pipelines.tables import PATIENTS, VALIDATION
from pipelines.warehouse import table_exists

PROVIDERS_FILE = "providers.csv"
MEASURE_REJECTS = "measures_rejected.csv"  # for the plan: positions and reasons, never a value


@dataclasses.dataclass(frozen=True)
class ReportOptions:
    out: Path
    sources: tuple[str, ...] = ()  # empty: every source
    min_cell: int = 11
    by: str | None = None
    goal: float = 0.80
    reference: Mapping[str, str] = dataclasses.field(default_factory=dict)  # measures: stratifier -> stratum


@dataclasses.dataclass(frozen=True)
class Figures:
    """What the warehouse says, nothing suppressed yet."""

    rows: Mapping[str, Sequence[Mapping[str, Any]]]  # table name -> rows of tables.table_query
    bases: Mapping[str, Sequence[Mapping[str, Any]]]  # family -> rows of tables.family_query
    trend: Sequence[Mapping[str, Any]]  # completeness over time (validation_results)
    sources: tuple[str, ...]
    measures: MeasureFigures | None = None  # with --measures


@dataclasses.dataclass(frozen=True)
class Measures:
    """The published quality measures (plan-wide: every source and `(all)`) and how they were hidden."""

    rows: Sequence[Mapping[str, Any]]  # the `measures` file
    unmatched: Sequence[Mapping[str, Any]]  # the `measures_unmatched` file
    hidden: Mapping[tuple[Any, ...], tuple[str, str]]  # row key (measure_model) -> why D, N are hidden
    figures: MeasureFigures
    reasons: Counter  # hidden figures by reason
    unprotected: int  # hidden figures that published zeros alone give away (suppression.Suppression)


@dataclasses.dataclass(frozen=True)
class Report:
    """The published tables (rows of every group, `grp` ALL for the plan-wide ones) and how they were hidden."""

    options: ReportOptions
    tables: Mapping[str, Sequence[Mapping[str, Any]]]
    trend: Sequence[Mapping[str, Any]]
    sources: tuple[str, ...]
    suppression: Suppression
    measures: Measures | None = None

    def groups(self) -> list[str]:
        """Provider groups (with --by), patients without a provider last."""
        found = {r["grp"] for rows in self.tables.values() for r in rows} - {ALL}
        return sorted(found, key=lambda g: (g == NO_GROUP, g))

    def counts(self) -> Counter:
        return Counter(self.suppression.reasons.values())


def create_views(con: duckdb.DuckDBPyConnection) -> list[str]:
    """A view per table over the whole warehouse (every source, nothing suppressed)."""
    for t in report_tables():
        con.execute(f"CREATE OR REPLACE VIEW {t.name} AS {view_query(t)}")
    return [t.name for t in report_tables()]


def _population(sources: Sequence[str], by: str | None) -> str:
    grp = f"coalesce(CAST({by} AS VARCHAR), '{NO_GROUP}')" if by else f"'{ALL}'"
    chosen = ", ".join(quoted(s) for s in sources)
    return f"SELECT *, {grp} AS grp FROM {PATIENTS} WHERE source IN ({chosen})"


def chosen_sources(con: duckdb.DuckDBPyConnection, wanted: Sequence[str]) -> tuple[str, ...]:
    """The sources to report (all when none is named); a named source without patients is bad usage."""
    found = [s for (s,) in con.execute(f"SELECT DISTINCT source FROM {PATIENTS} ORDER BY source").fetchall()]
    if not found:
        raise UsageError(f"the warehouse has no patients in {PATIENTS}: nothing to report")
    missing = [s for s in wanted if s not in found]
    if missing:
        raise UsageError(f"no patients for source {', '.join(missing)} (sources: {', '.join(found)})")
    return tuple(s for s in found if s in wanted) if wanted else tuple(found)


def read_figures(
    con: duckdb.DuckDBPyConnection, options: ReportOptions, measures: MeasureInput | None = None
) -> Figures:
    sources = chosen_sources(con, options.sources)
    population = _population(sources, options.by)
    definitions = report_tables()
    rows = {t.name: records(con, table_query(t, population, options.by is not None)) for t in definitions}
    families = sorted({t.family for t in definitions if not t.overlapping})
    bases = {f: records(con, family_query(f, population)) for f in families}
    return Figures(
        rows,
        bases,
        _trend(con, sources, whole=not options.sources),
        sources,
        read_measure_figures(con, measures, sources) if measures else None,
    )


def _trend(con: duckdb.DuckDBPyConnection, sources: Sequence[str], whole: bool) -> list[dict[str, Any]]:
    """Completeness per source over time, and of the whole warehouse when every source is reported."""
    from pipelines.validation.store import completeness_trend

    if not table_exists(con, VALIDATION):
        return []
    points = [p for p in completeness_trend(con, "source").to_dict("records") if p["source"] in sources]
    if whole:
        points += [{**p, "source": ALL} for p in completeness_trend(con, "warehouse").to_dict("records")]
    return points


def make_report(figures: Figures, options: ReportOptions) -> Report:
    definitions = report_tables()
    model = build_model(definitions, figures.rows, figures.bases, options.by is not None)
    suppression = model.suppress(options.min_cell)
    tables = {t.name: publish_table(t, figures.rows[t.name], model, suppression, options.goal) for t in definitions}
    return Report(
        options,
        tables,
        publish_trend(figures.trend, options.min_cell),
        figures.sources,
        suppression,
        make_measures(figures.measures, options) if figures.measures else None,
    )


def make_measures(figures: MeasureFigures, options: ReportOptions) -> Measures:
    """Each measure suppressed as a system of its own (docs/report.md says what links it to the tables)."""
    hidden: dict[tuple[Any, ...], tuple[str, str]] = {}
    reasons: Counter = Counter()
    unprotected = 0
    for model in build_measure_models(figures.rows, figures.unmatched, figures.cells, figures.sources):
        suppression = model.suppress(options.min_cell)
        reasons.update(suppression.reasons.values())
        unprotected += len(suppression.unprotected)
        hidden |= {key: measure_reasons(model, suppression, key) for key in model.row_keys()}
    return Measures(
        publish_measures(figures.rows, hidden, options.reference),
        publish_unmatched(figures.unmatched, hidden),
        hidden,
        figures,
        reasons,
        unprotected,
    )


def folder_names(groups: Sequence[str], by: str) -> dict[str, str]:
    """A folder per provider group, from its reference (lower case, letters and digits); a short hash tells
    apart references that would make the same name."""
    names: dict[str, str] = {}
    for grp in groups:
        base = (
            f"no-{by.replace('_', '-')}"
            if grp == NO_GROUP
            else (re.sub(r"[^a-z0-9]+", "-", grp.lower()).strip("-")[:60] or "provider")
        )
        name = base if base not in names.values() else f"{base}-{hashlib.sha256(grp.encode()).hexdigest()[:8]}"
        names[grp] = name
    return names


def write_files(report: Report, grp: str, folder: Path, by: str | None) -> list[Path]:
    """The tables of one group (ALL: plan-wide) as CSV and Parquet in `folder`."""
    written = []
    for name, rows in report.tables.items():
        written += write_table(arrow_table(rows_of_group(rows, grp, by), [by] if by else []), folder, name)
    if grp == ALL:
        written += write_table(arrow_table(report.trend), folder, TREND)
    return written
