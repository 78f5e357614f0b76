"""The "Quality measures" section of index.html: per measure, a chart of the rate by stratum with its 95% interval
and a table per stratifier; the unmatched results; what became of the results read. The page shows the `(all)`
figures; every source's are in measures.csv."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pipelines.report.measure_model import unmatched_key
from pipelines.report.measures import STRATIFIERS, TOTAL
from pipelines.report.page import Cell, Column, Line, count_cell, label
from pipelines.report.rates import MIN_DENOMINATOR
from pipelines.report.suppression import COMPLEMENTARY
from pipelines.report.tables import ALL

if TYPE_CHECKING:
    from pipelines.report.build import Report

STRATIFIER_TITLES = {
    "hedis_race": "HEDIS race",
    "hedis_ethnicity": "HEDIS ethnicity",
    "omb2024_category": "OMB 2024 category",
}
COLUMNS = [Column(h, ALL, ALL) for h in ("Denominator", "Numerator", "Rate (95% interval)", "Difference", "Ratio")]
UNMATCHED_COLUMNS = [Column(h, ALL, ALL) for h in ("Denominator", "Numerator")]
REASONS = {
    "patient_not_found": "no patient with that id (in that source)",
    "patient_id_ambiguous": "no source given, and the id is in several sources",
}


def _rate_cell(row: Mapping[str, Any]) -> Cell:
    """The rate with its interval; `hidden` when a count under it is; NA under the small-denominator rule."""
    if row["suppressed"]:
        return Cell("hidden", "", COMPLEMENTARY)
    if row["rate"] is None:
        return Cell("NA", "", "")
    return Cell(f"{row['rate']:.1%}", f"{row['rate_ci_low']:.1%}\u2013{row['rate_ci_high']:.1%}", "")


def _comparison(row: Mapping[str, Any], reference: str) -> tuple[Cell, Cell]:
    if row["stratum"] == reference:
        return Cell("reference", "", ""), Cell("", "", "")
    difference, ratio = row["difference_from_reference"], row["ratio_to_reference"]
    return (
        Cell("" if difference is None else f"{difference * 100:+.1f} pts", "", ""),
        Cell("" if ratio is None else f"{ratio:.2f}", "", ""),
    )


def measure_line(row: Mapping[str, Any], hidden: tuple[str, str], reference: str, min_cell: int) -> Line:
    return Line(
        label(row["stratum"]),
        "",
        (
            count_cell(row["denominator"], hidden[0], min_cell),
            count_cell(row["numerator"], hidden[1], min_cell),
            _rate_cell(row),
            *_comparison(row, reference),
        ),
    )


def _point(row: Mapping[str, Any], min_cell: int) -> dict[str, Any]:
    """A rate for the chart; without one, the marker of the row (`<11`, `hidden`) or NA."""
    marker = (
        ""
        if row["rate"] is not None
        else (count_cell(None, row["suppression_reason"], min_cell).count if row["suppressed"] else "NA")
    )
    return {
        "label": label(row["stratum"]),
        "rate": row["rate"],
        "low": row["rate_ci_low"],
        "high": row["rate_ci_high"],
        "marker": marker,
    }


def anchor(measure: str) -> str:
    return "measure-" + (re.sub(r"[^a-z0-9]+", "-", measure.lower()).strip("-") or "unnamed")


def _block(report: Report, measure: str, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One measure: its chart and a table per stratifier."""
    from pipelines.report.charts import rate_panels

    measures, min_cell = report.measures, report.options.min_cell
    tables, panels = [], []
    for stratifier in STRATIFIERS:
        mine = [r for r in rows if r["stratifier"] == stratifier]
        reference = report.options.reference.get(stratifier, TOTAL)
        keys = [(r["source"], r["measure"], r["stratifier"], r["stratum"]) for r in mine]
        tables.append(
            {
                "title": STRATIFIER_TITLES[stratifier],
                "reference": label(reference),
                "lines": [
                    measure_line(r, measures.hidden[k], reference, min_cell) for r, k in zip(mine, keys, strict=True)
                ],
            }
        )
        reference_row = next((r for r in mine if r["stratum"] == reference), None)
        panels.append(
            (
                STRATIFIER_TITLES[stratifier],  # strata with nobody have nothing to draw (hidden is not 0)
                [_point(r, min_cell) for r in mine if r["denominator"] != 0],
                reference_row["rate"] if reference_row else None,
            )
        )
    return {"name": measure, "anchor": anchor(measure), "chart": rate_panels(panels), "tables": tables}


def measures_section(report: Report) -> dict[str, Any] | None:
    """What the template shows of the measures (None without --measures)."""
    if report.measures is None:
        return None
    figures = report.measures.figures
    plan = [r for r in report.measures.rows if r["source"] == ALL]
    names = list(dict.fromkeys(r["measure"] for r in plan))
    unmatched = [
        Line(
            f"{r['measure']}: {r['reason']}",
            REASONS.get(r["reason"], ""),
            tuple(
                count_cell(r[column], reason, report.options.min_cell)
                for column, reason in zip(
                    ("denominator", "numerator"), report.measures.hidden[unmatched_key(r)], strict=True
                )
            ),
        )
        for r in report.measures.unmatched
        if r["source"] == ALL
    ]
    return {
        "blocks": [_block(report, m, [r for r in plan if r["measure"] == m]) for m in names],
        "columns": COLUMNS,
        "unmatched": {"lines": unmatched},
        "unmatched_columns": UNMATCHED_COLUMNS,
        "counts": figures.counts,
        "files": len(figures.files),
        "rejected": len(figures.rejects),
        "rejected_by_reason": sorted(Counter(r.reason for r in figures.rejects).items()),
        "other_resources": sum(figures.other_resources.values()),
        "min_denominator": MIN_DENOMINATOR,
        "references": {STRATIFIER_TITLES[s]: label(r) for s, r in report.options.reference.items()},
    }
