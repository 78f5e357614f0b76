"""Offline-readable validation summaries: a plain-text terminal table and a self-contained HTML page.

GX Data Docs load their CSS and JavaScript from CDNs and do not render offline; these use no external asset.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pipelines.validation.store import COMPLETENESS_LABELS

SCOPE_ORDER = {"source": 0, "window": 1, "warehouse": 2}
MAX_CELL = 70
# Columns whose unexpected values are codes, not patient data: only these are quoted as examples in summaries
# (the warehouse's validation_results keeps every detail; terminals and shared HTML pages get counts and codes).
CODE_COLUMNS = frozenset(
    {
        "race_ethnicity_status",
        "omb2024_category",
        "hedis_race",
        "hedis_ethnicity",
        "administrative_gender",
        "race_source_format",
        "preferred_language",
    }
)


def _details(row: dict[str, Any]) -> dict[str, Any]:
    try:
        return json.loads(row.get("details") or "{}")
    except (TypeError, ValueError):
        return {}


def _observed(row: dict[str, Any]) -> Any:
    try:
        return json.loads(row["observed_value"]) if row.get("observed_value") is not None else None
    except (TypeError, ValueError):
        return row.get("observed_value")


def _is_completeness(row: dict[str, Any]) -> bool:
    return row.get("suite") == "completeness" and row.get("expectation") in COMPLETENESS_LABELS


def completeness_text(row: dict[str, Any]) -> str:
    details = _details(row)
    goal = details.get("kwargs", {}).get("mostly")
    goal_text = f"goal {goal:.0%}" if isinstance(goal, (int, float)) else "no goal"
    observed = _observed(row)
    if not isinstance(observed, (int, float)):
        return f"no patients ({goal_text})"
    return f"reported {100 - observed:.1f}% ({goal_text})"


def describe(row: dict[str, Any]) -> str:
    """What was observed, in a few words."""
    details = _details(row)
    if details.get("exception"):
        return f"error: {details['exception']}"
    if _is_completeness(row):
        return completeness_text(row)
    if row.get("unexpected_count") is not None:
        unexpected, total = row["unexpected_count"], row.get("element_count")
        text = f"{unexpected} of {total} unexpected"
        if unexpected and total:
            text += f" ({100 * unexpected / total:.1f}%)"
        sample = details.get("partial_unexpected_list")
        column = str(row.get("expectation", "")).partition("(")[2].rstrip(")")
        if sample and unexpected and column in CODE_COLUMNS:
            text += ", e.g. " + ", ".join(
                json.dumps(v, default=str) if not isinstance(v, str) else v for v in sample[:3]
            )
        return text
    observed = _observed(row)
    if observed is None:
        return "passed" if row.get("success") else "failed"
    if isinstance(observed, dict):  # e.g. {"missing": [], "unexpected": ["x"]}: "missing: none; unexpected: x"
        return "; ".join(f"{key}: {_listed(value)}" for key, value in observed.items())
    return json.dumps(observed, default=str)


def _listed(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "none"
    return str(value)


def _when(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    return str(value)


def _window(row: dict[str, Any]) -> str:
    if row.get("window_start") is None and row.get("window_end") is None:
        return ""
    return f"{_when(row.get('window_start'))} .. {_when(row.get('window_end'))}"


def _batch_key(row: dict[str, Any]) -> tuple:
    return (
        SCOPE_ORDER.get(row.get("scope"), 9),
        row.get("scope"),
        row.get("source") or "",
        _when(row.get("window_start")),
        row.get("validation_id") or "",
        row.get("run_id") or "",
    )


def group_batches(rows: Iterable[dict[str, Any]]) -> OrderedDict[tuple, list[dict[str, Any]]]:
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(_batch_key(row), []).append(row)
    return OrderedDict(sorted(groups.items(), key=lambda kv: kv[0]))


def _batch_line(batch: list[dict[str, Any]]) -> dict[str, str]:
    first = batch[0]
    passed = sum(bool(r["success"]) for r in batch)
    completeness = next((r for r in batch if _is_completeness(r)), None)
    return {
        "scope": first.get("scope") or "",
        "source": first.get("source") or "(all)",
        "window": _window(first),
        "patients": str(max((r.get("element_count") or 0) for r in batch)),
        "completeness": completeness_text(completeness) if completeness else "",
        "passed": f"{passed}/{len(batch)}",
        "result": "PASS" if passed == len(batch) else "FAIL",
    }


def _cell(value: Any) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 3] + "..."


def _text_table(headers: Sequence[str], lines: Sequence[Sequence[Any]]) -> str:
    cells = [[_cell(v) for v in line] for line in lines]
    widths = [max([len(h)] + [len(line[i]) for line in cells]) for i, h in enumerate(headers)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [fmt.format(*headers).rstrip(), fmt.format(*("-" * w for w in widths)).rstrip()]
    out += [fmt.format(*line).rstrip() for line in cells]
    return "\n".join(out)


def headline(rows: Sequence[dict[str, Any]]) -> str:
    failed = sum(not r["success"] for r in rows)
    runs = sorted({r.get("run_id") for r in rows if r.get("run_id")})
    batches = len(group_batches(rows))
    verdict = "all passed" if not failed else f"{failed} failed"
    return (
        f"Validation{' of run ' + ', '.join(runs) if runs else ''}: {batches} batch(es), "
        f"{len(rows)} expectation results, {verdict}"
    )


def summary_table(rows: list[dict[str, Any]]) -> str:
    """Plain-text summary: one line per validated batch, then every failed expectation."""
    if not rows:
        return "Validation: nothing was validated"
    batches = group_batches(rows)
    has_windows = any(_window(b[0]) for b in batches.values())
    headers = (
        ["SCOPE", "SOURCE"] + (["WINDOW"] if has_windows else []) + ["PATIENTS", "COMPLETENESS", "PASSED", "RESULT"]
    )
    lines = []
    for batch in batches.values():
        b = _batch_line(batch)
        lines.append(
            [b["scope"], b["source"]]
            + ([b["window"]] if has_windows else [])
            + [b["patients"], b["completeness"], b["passed"], b["result"]]
        )
    parts = [headline(rows), "", _text_table(headers, lines)]
    failed = [r for batch in batches.values() for r in batch if not r["success"]]
    if failed:
        headers = ["SCOPE", "SOURCE"] + (["WINDOW"] if has_windows else []) + ["SUITE", "EXPECTATION", "OBSERVED"]
        lines = [
            [r.get("scope"), r.get("source") or "(all)"]
            + ([_window(r)] if has_windows else [])
            + [r.get("suite"), r.get("expectation"), describe(r)]
            for r in failed
        ]
        parts += ["", "Failed expectations:", _text_table(headers, lines)]
    return "\n".join(parts) + "\n"


def key_facts(row: dict[str, Any]) -> str:
    """What an expectation asked for, in a few words: the goal, the allowed values, the range, missing values
    (never the unexpected values themselves: those may be patient data)."""
    details = _details(row)
    kwargs = details.get("kwargs", {})
    facts = []
    if isinstance(kwargs.get("mostly"), (int, float)):
        facts.append(f"at least {kwargs['mostly']:.0%} of rows")
    allowed = kwargs.get("value_set")
    if details.get("derived_column"):
        facts.append(f"rule {details['derived_column']} holds")
    elif isinstance(allowed, list):
        shown = ", ".join(json.dumps(v) if not isinstance(v, str) else v for v in allowed[:6])
        facts.append(f"allowed: {shown}" + (f" and {len(allowed) - 6} more" if len(allowed) > 6 else ""))
    if kwargs.get("min_value") is not None or kwargs.get("max_value") is not None:
        facts.append(f"range {kwargs.get('min_value', '')}..{kwargs.get('max_value', '')}")
    if details.get("missing_count"):
        facts.append(f"{details['missing_count']} missing")
    return "; ".join(facts)


def render_html(rows: list[dict[str, Any]], title: str = "Demographics validation") -> str:
    """The summary as one self-contained HTML document (inline CSS, no scripts, no external links)."""
    from pipelines.report.page import render

    batches = [
        (_batch_line(batch), [dict(r, observed=describe(r), facts=key_facts(r)) for r in batch])
        for batch in group_batches(rows).values()
    ]
    return render(
        "validation.html.j2",
        title=title,
        headline=headline(rows) if rows else "Nothing was validated.",
        batches=batches,
        generated=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ"),
    )


def write_html_summary(rows: list[dict[str, Any]], path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(rows), encoding="utf-8")
