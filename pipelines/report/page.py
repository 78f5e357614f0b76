"""Self-contained HTML pages (Jinja2 templates in templates/, inline CSS and SVG, no script, no address):
the report's index.html, a provider's page, and the validation page of `demographics validate --html`."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import jinja2

from pipelines.report.suppression import PRIMARY
from pipelines.report.tables import ALL, NO_GROUP, REPORTED, report_tables

if TYPE_CHECKING:
    from pipelines.report.build import Report

CHART_STRATA = 15  # strata charted at most (the largest); the table lists them all
CHART_SERIES = 5  # columns charted at most (a provider's page charts the provider and the plan)

LABELS = {
    "AIAN": "American Indian or Alaska Native",
    "ASIAN": "Asian",
    "BLACK": "Black or African American",
    "HISPANIC": "Hispanic or Latino",
    "MENA": "Middle Eastern or North African",
    "NHPI": "Native Hawaiian or Pacific Islander",
    "WHITE": "White",
    "MULTIRACIAL_MULTIETHNIC": "Multiracial and/or Multiethnic",
    "SOME_OTHER": "Some other (no category)",
    "DECLINED": "Declined",
    "UNKNOWN": "Unknown",
    "AmericanIndianOrAlaskaNative": "American Indian or Alaska Native",
    "Asian": "Asian",
    "BlackOrAfricanAmerican": "Black or African American",
    "NativeHawaiianOrOtherPacificIslander": "Native Hawaiian or Other Pacific Islander",
    "White": "White",
    "SomeOtherRace": "Some Other Race",
    "TwoOrMoreRaces": "Two or More Races",
    "AskedButNoAnswer": "Asked but no answer",
    "Unknown": "Unknown",
    "HispanicOrLatino": "Hispanic or Latino",
    "NotHispanicOrLatino": "Not Hispanic or Latino",
    "reported": "Reported (counts toward the goal)",
    "unmapped_text_only": "Unmapped text only (write-in)",
    "declined": "Declined",
    "unknown": "Unknown",
}
TITLES = {  # table -> (heading, short name for the page's navigation)
    "completeness": ("Completeness of self-reported race and ethnicity", "Completeness"),
    "hedis_race": ("HEDIS race", "HEDIS race"),
    "hedis_ethnicity": ("HEDIS ethnicity", "HEDIS ethnicity"),
    "omb2024_single_category": (
        "OMB 2024: single category (Multiracial and/or Multiethnic combined)",
        "OMB 2024 single",
    ),
    "omb2024_alone_and_combinations": ("OMB 2024: alone, and each combination", "combinations"),
    "omb2024_alone_or_in_combination": ("OMB 2024: alone or in combination", "alone or in combination"),
    "detailed_groups": ("Detailed groups", "Detailed groups"),
    "language": ("Preferred language", "Language"),
}


@functools.cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("pipelines.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["label"] = label
    return env


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)


def label(value: Any) -> str:
    """How a stratum reads on the page: a name for codes, "A + B" for a combination, "(not recorded)"."""
    if value is None:
        return "(not recorded)"
    text = str(value)
    if "+" in text:
        return " + ".join(LABELS.get(part, part) for part in text.split("+"))
    return LABELS.get(text, text)


@dataclasses.dataclass(frozen=True)
class Column:
    heading: str
    grp: str
    source: str


@dataclasses.dataclass(frozen=True)
class Cell:
    count: str
    share: str
    hidden: str  # "", "primary" or "complementary"


@dataclasses.dataclass(frozen=True)
class Line:
    label: str
    detail: str
    cells: tuple[Cell, ...]


@dataclasses.dataclass(frozen=True)
class Section:
    name: str
    title: str
    short: str
    description: str
    lines: tuple[Line, ...]
    chart: Any = None


def count_cell(count: int | None, reason: str, min_cell: int, share: str = "") -> Cell:
    """A published count (with its share), or the marker of a hidden one: `<11` (primary) or `hidden`."""
    if reason:
        return Cell(f"<{min_cell}" if reason == PRIMARY else "hidden", "", reason)
    return Cell(f"{count:,}", share, "")


def cell(row: Mapping[str, Any] | None, min_cell: int) -> Cell:
    if row is None:
        return Cell("", "", "")
    share = "" if row["share"] is None else f"{row['share']:.1%}"
    return count_cell(row["patients"], row["suppression_reason"], min_cell, share)


def columns(report: Report, grp: str) -> list[Column]:
    """Plan page: all sources, then each; provider page: the provider (all sources, then each), then the plan."""
    many = len(report.sources) > 1
    if grp == ALL:
        return [Column("All sources", ALL, ALL)] + ([Column(s, ALL, s) for s in report.sources] if many else [])
    mine = [Column("This provider", grp, ALL)] + (
        [Column(f"Provider, {s}", grp, s) for s in report.sources] if many else []
    )
    return mine + [Column("Plan-wide", ALL, ALL)]


def _index(rows: Sequence[Mapping[str, Any]]) -> dict[tuple[Any, ...], Mapping[str, Any]]:
    return {(r["grp"], r["source"], r["stratum"]): r for r in rows}


def _detail(row: Mapping[str, Any]) -> str:
    return " · ".join(str(row[k]) for k in ("display", "category") if row.get(k))


def section(report: Report, name: str, cols: Sequence[Column]) -> Section:
    t = next(d for d in report_tables() if d.name == name)
    rows = report.tables[name]
    index = _index(rows)
    strata = list(
        dict.fromkeys(r["stratum"] for r in rows if (r["grp"], r["source"]) in {(c.grp, c.source) for c in cols})
    )
    first = cols[0]
    lines = tuple(
        Line(
            label(s),
            _detail(index.get((first.grp, first.source, s)) or {}),
            tuple(cell(index.get((c.grp, c.source, s)), report.options.min_cell) for c in cols),
        )
        for s in strata
    )
    return Section(name, *TITLES[name], t.description, lines, _chart(report, rows, strata, cols))


def _chart(report: Report, rows: Sequence[Mapping[str, Any]], strata: Sequence[Any], cols: Sequence[Column]) -> Any:
    from pipelines.report.charts import share_bars

    index = _index(rows)
    charted = [c for c in cols if c.source == ALL] if cols[0].grp != ALL else cols[:CHART_SERIES]
    first = charted[0]
    largest = sorted(strata, key=lambda s: -((index.get((first.grp, first.source, s)) or {}).get("patients") or 0))
    shown = [s for s in strata if s in set(largest[:CHART_STRATA])]
    points = [
        _point(index.get((c.grp, c.source, s)), label(s), c.heading, report.options.min_cell)
        for s in shown
        for c in charted
    ]
    return share_bars([p for p in points if p], [label(s) for s in shown]) if points else None


def _point(row: Mapping[str, Any] | None, text: str, series: str, min_cell: int) -> dict[str, Any] | None:
    if row is None:
        return None
    marker = cell(row, min_cell).count if row["suppression_reason"] else ("" if row["share"] is not None else "n/a")
    return {"label": text, "series": series, "share": row["share"], "marker": marker}


def completeness_chart(report: Report, cols: Sequence[Column]) -> Any:
    """Reported share per column (source, provider, plan) against the goal."""
    from pipelines.report.charts import share_bars

    index = _index(report.tables["completeness"])
    points = [
        p
        for p in (
            _point(index.get((c.grp, c.source, REPORTED)), c.heading, "reported", report.options.min_cell) for c in cols
        )
        if p
    ]
    return share_bars(points, [c.heading for c in cols], goal=report.options.goal)


def trend_chart(report: Report) -> Any:
    from pipelines.report.charts import trend_lines

    points = [
        {
            "series": "All sources" if p["source"] == ALL else p["source"],
            "when": p["validated_at"].isoformat(),
            "share": p["share"],
        }
        for p in report.trend
    ]
    return trend_lines(points, report.options.goal) if any(p["share"] is not None for p in points) else None


def headline(report: Report, grp: str) -> dict[str, Any]:
    """The figures at the top of a page: patients (None when hidden) and the reported share."""
    row = _index(report.tables["completeness"])[grp, ALL, REPORTED]
    return {
        "patients": row["denominator"],
        "reported": cell(row, report.options.min_cell),
        "meets_goal": row["meets_goal"],
    }


def report_page(
    report: Report, grp: str, provider_pages: Mapping[str, str] | None = None, by: str | None = None
) -> str:
    """index.html of the plan (grp ALL) or of one provider group."""
    from pipelines.report.measures_page import measures_section

    cols = columns(report, grp)
    names = ["completeness"] + [t.name for t in report_tables() if t.name != "completeness"]
    return render(
        "report.html.j2",
        report=report,
        options=report.options,
        columns=cols,
        measures=measures_section(report) if grp == ALL else None,
        sections=[section(report, n, cols) for n in names],
        completeness_chart=completeness_chart(report, cols),
        trend_chart=trend_chart(report) if grp == ALL else None,
        headline=headline(report, grp),
        provider=None if grp == ALL else grp,
        provider_label="Patients without a provider" if grp == NO_GROUP else grp,
        by=by,
        provider_pages=provider_pages or {},
        counts=report.counts(),
        generated=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )
