"""The published form of the tables: hidden counts and the shares that would reveal them are emptied, and each
row says whether and why (`suppressed`, `suppression_reason`); then CSV and Parquet files. The same for the
quality measures, whose rows also carry a rate, its interval, and its difference and ratio to the reference.

Pure but for writing the files (pyarrow).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from pipelines.report import rates
from pipelines.report.measure_model import DENOMINATOR, NUMERATOR, MeasureModel, unmatched_key
from pipelines.report.measure_model import row_key as measure_key
from pipelines.report.measures import TOTAL
from pipelines.report.model import Model, row_key, total_key
from pipelines.report.suppression import COMPLEMENTARY, PRIMARY, Figure, Problem, Suppression, suppress
from pipelines.report.tables import REPORTED, Table

# Column types of every published file; a table has the ones it fills, in this order.
COLUMN_TYPES: Mapping[str, pa.DataType] = {
    "source": pa.string(),
    "measure": pa.string(),
    "stratifier": pa.string(),
    "stratum": pa.string(),
    "reason": pa.string(),
    "display": pa.string(),
    "domain": pa.string(),
    "category": pa.string(),
    "validated_at": pa.timestamp("us", tz="UTC"),
    "run_id": pa.string(),
    "patients": pa.int64(),
    "denominator": pa.int64(),
    "numerator": pa.int64(),
    "share": pa.float64(),
    "rate": pa.float64(),
    "rate_ci_low": pa.float64(),
    "rate_ci_high": pa.float64(),
    "difference_from_reference": pa.float64(),
    "ratio_to_reference": pa.float64(),
    "goal": pa.float64(),
    "meets_goal": pa.bool_(),
    "suppressed": pa.bool_(),
    "suppression_reason": pa.string(),
}
TREND = "completeness_trend"


def published_row(row: Mapping[str, Any], reason: str, total_hidden: bool) -> dict[str, Any]:
    """A row as published: a hidden count has no value, and no share; a hidden total hides every share."""
    hidden_share = bool(reason) or total_hidden
    return {
        **row,
        "patients": None if reason else row["patients"],
        "denominator": None if total_hidden else row["denominator"],
        "share": None if hidden_share else row["share"],
        "suppressed": bool(reason),
        "suppression_reason": reason,
    }


def publish_table(
    t: Table, rows: Sequence[Mapping[str, Any]], model: Model, suppression: Suppression, goal: float
) -> list[dict[str, Any]]:
    """Every row of one table as published; completeness also says whether the reported share meets the goal."""
    out = []
    for r in rows:
        row = published_row(
            r,
            suppression.reason(model.figure_of[row_key(t.name, r)]),
            bool(suppression.reason(model.figure_of[total_key(r)])),
        )
        if t.name == "completeness":
            row["goal"] = goal
            row["meets_goal"] = None if row["share"] is None or r["stratum"] != REPORTED else r["share"] >= goal
        out.append(row)
    return out


def publish_trend(points: Iterable[Mapping[str, Any]], min_cell: int) -> list[dict[str, Any]]:
    """Completeness over time (validation_results): each point is a total split into reported and not reported,
    suppressed on its own (two points are different batches, not a sum of one another)."""
    out = []
    for p in points:
        total = int(p["patients"])
        reported = round(float(p["reported_share"]) * total)
        problem = Problem(
            2,
            (
                Figure(frozenset({0, 1}), total),
                Figure(frozenset({0}), reported),
                Figure(frozenset({1}), total - reported),
            ),
            ((0, (1, 2)),),
        )
        reasons = suppress(problem, min_cell).reasons
        share = None if reasons else float(p["reported_share"])
        out.append(
            {
                "source": p["source"],
                "validated_at": p["validated_at"],
                "run_id": p["run_id"],
                "patients": None if 0 in reasons else total,
                "share": share,
                "goal": p["goal"],
                "meets_goal": None if share is None else bool(p["success"]),
                "suppressed": bool(reasons),
                "suppression_reason": next((reasons[i] for i in sorted(reasons)), ""),
            }
        )
    return out


MEASURE_COLUMNS = (
    "source",
    "measure",
    "stratifier",
    "stratum",
    "denominator",
    "numerator",
    "rate",
    "rate_ci_low",
    "rate_ci_high",
    "difference_from_reference",
    "ratio_to_reference",
    "suppressed",
    "suppression_reason",
)  # contract 5.2
UNMATCHED_COLUMNS = ("source", "measure", "reason", "denominator", "numerator", "suppressed", "suppression_reason")


def measure_reasons(model: MeasureModel, suppression: Suppression, key: tuple[Any, ...]) -> tuple[str, str]:
    """Why the denominator and the numerator of a measure row are hidden ("" when published)."""
    return tuple(suppression.reason(model.figure_of[(kind, *key)]) for kind in (DENOMINATOR, NUMERATOR))


def row_reason(reasons: tuple[str, str]) -> str:
    """One reason per row: primary when a hidden value is a small count, else complementary (or "")."""
    return PRIMARY if PRIMARY in reasons else COMPLEMENTARY if any(reasons) else ""


def shown_rate(row: Mapping[str, Any], reasons: tuple[str, str]) -> float | None:
    """The exact rate when it is published: neither count hidden, and a denominator of 30 or more (else NA)."""
    if any(reasons) or not rates.reportable(row["denominator"]):
        return None
    return row["numerator"] / row["denominator"]


def publish_measures(
    rows: Sequence[Mapping[str, Any]], reasons: Mapping[tuple[Any, ...], tuple[str, str]], reference: Mapping[str, str]
) -> list[dict[str, Any]]:
    """Every measure row as published (contract 5.2 columns); `reasons`: row key -> `measure_reasons`. The
    reference of a row is the row of the same source, measure and stratifier whose stratum `reference` names for
    the stratifier (default Total); when its rate is hidden or NA, no difference or ratio is published."""
    shown = {measure_key(r): shown_rate(r, reasons[measure_key(r)]) for r in rows}
    out = []
    for r in rows:
        key = measure_key(r)
        value = shown[key]
        base = shown.get((r["source"], r["measure"], r["stratifier"], reference.get(r["stratifier"], TOTAL)))
        low, high = rates.wilson_interval(r["numerator"], r["denominator"]) if value is not None else (None, None)
        compared = value is not None and base is not None
        hidden_d, hidden_n = reasons[key]
        out.append(
            {
                "source": r["source"],
                "measure": r["measure"],
                "stratifier": r["stratifier"],
                "stratum": r["stratum"],
                "denominator": None if hidden_d else r["denominator"],
                "numerator": None if hidden_n else r["numerator"],
                "rate": None if value is None else rates.rate(r["numerator"], r["denominator"]),
                "rate_ci_low": low,
                "rate_ci_high": high,
                "difference_from_reference": rates.difference(value, base) if compared else None,
                "ratio_to_reference": rates.ratio(value, base) if compared else None,
                "suppressed": bool(hidden_d or hidden_n),
                "suppression_reason": row_reason(reasons[key]),
            }
        )
    return out


def publish_unmatched(
    rows: Sequence[Mapping[str, Any]], reasons: Mapping[tuple[Any, ...], tuple[str, str]]
) -> list[dict[str, Any]]:
    """Unmatched results per source, measure and reason as published (counted in the Unknown strata too)."""
    out = []
    for r in rows:
        hidden_d, hidden_n = reasons[unmatched_key(r)]
        out.append(
            {
                "source": r["source"],
                "measure": r["measure"],
                "reason": r["reason"],
                "denominator": None if hidden_d else r["denominator"],
                "numerator": None if hidden_n else r["numerator"],
                "suppressed": bool(hidden_d or hidden_n),
                "suppression_reason": row_reason((hidden_d, hidden_n)),
            }
        )
    return out


def arrow_table(
    rows: Sequence[Mapping[str, Any]],
    leading: Sequence[str] = (),
    empty: Sequence[str] = ("source", "stratum", "patients", "share", "suppressed", "suppression_reason"),
) -> pa.Table:
    """The rows with the columns they have, typed (`leading`: the `--by` column, first; `empty`: the columns of
    a table without rows)."""
    present = set().union(*(r.keys() for r in rows)) if rows else set(empty)
    names = list(leading) + [c for c in COLUMN_TYPES if c in present]
    schema = pa.schema([(n, COLUMN_TYPES.get(n, pa.string())) for n in names])
    return pa.Table.from_pylist([{n: r.get(n) for n in names} for r in rows], schema=schema)


def write_table(table: pa.Table, folder: Path, name: str) -> list[Path]:
    """`name`.csv and `name`.parquet in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    csv_path, parquet_path = folder / f"{name}.csv", folder / f"{name}.parquet"
    pa_csv.write_csv(table, csv_path)
    pq.write_table(table, parquet_path)
    return [csv_path, parquet_path]


def write_rejects(rejects: Sequence[Any], path: Path) -> None:
    """Rejected measure results (measure_inputs.Reject: file, position, reason, message) as CSV."""
    fields = ("file", "position", "reason", "message")
    rows = [{f: getattr(r, f) for f in fields} for r in rejects]
    pa_csv.write_csv(pa.Table.from_pylist(rows, schema=pa.schema([(f, pa.string()) for f in fields])), path)


def rows_of_group(rows: Iterable[Mapping[str, Any]], grp: str, by_field: str | None) -> list[dict[str, Any]]:
    """One provider group's rows (ALL: the plan-wide ones), with the `--by` column named after the field."""
    out = []
    for r in rows:
        if r["grp"] == grp:
            row = {k: v for k, v in r.items() if k != "grp"}
            out.append({by_field: grp, **row} if by_field else row)
    return out
