"""`demographics status`: is the feed healthy? Recent runs, files waiting and landed, lag, rejects, completeness.

Reads the warehouse read-only (it works while `watch` runs) and prints counts and codes only.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb

from pipelines.report.tables import table
from pipelines.tables import LEDGER as LEDGER_TABLE
from pipelines.validation.store import COMPLETENESS_LABELS
from pipelines.warehouse import table_exists as _table_exists


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()) -> tuple[list[str], list[tuple]]:
    cursor = con.execute(sql, list(params))
    return [d[0] for d in cursor.description], cursor.fetchall()


def waiting_files(con: duckdb.DuckDBPyConnection, drop_dirs: Sequence[str]) -> list[str]:
    """Files in the drop folders that the ledger does not know yet (same rules as `watch` for what is a file)."""
    from pipelines.jobs.inputs import list_inputs

    known = {row[0] for row in con.execute(f"SELECT DISTINCT input_file FROM {LEDGER_TABLE}").fetchall()}
    waiting = []
    for folder in drop_dirs:
        if Path(folder).is_dir():
            waiting += [f.display for f in list_inputs([folder], "-").files if f.display not in known]
    return sorted(waiting)


def collect_status(
    con: duckdb.DuckDBPyConnection, drop_dirs: Sequence[str] | None = None, recent: int = 10
) -> dict[str, tuple[list[str], list[tuple]]]:
    """The sections of the status page, each as (column names, rows)."""
    sections: dict[str, tuple[list[str], list[tuple]]] = {}
    if not _table_exists(con, "runs"):
        return sections
    sections["recent runs"] = _rows(
        con,
        """
        SELECT run_id, mode, status, strftime(started_at, '%Y-%m-%d %H:%M:%S') AS started,
               round(epoch(ended_at) - epoch(started_at), 1) AS seconds, files_read AS files, records_in,
               patients_landed AS patients, rejected, other_resources AS other
        FROM runs ORDER BY started_at DESC LIMIT ?""",
        [recent],
    )
    sections["files"] = _rows(
        con,
        f"""
        SELECT source, count(*) FILTER (status = 'landed') AS landed, count(*) FILTER (status = 'duplicate')
               AS duplicates, strftime(max(landed_at), '%Y-%m-%d %H:%M:%S') AS last_landed,
               round(quantile_cont(lag_seconds, 0.5), 2) AS lag_p50_s,
               round(quantile_cont(lag_seconds, 0.95), 2) AS lag_p95_s, round(max(lag_seconds), 2) AS lag_max_s
        FROM {LEDGER_TABLE} GROUP BY source ORDER BY source""",
    )
    if drop_dirs is None:  # the folders the latest watch runs watch
        drop_dirs = [
            row[0]
            for row in con.execute(
                "SELECT DISTINCT unnest(inputs) FROM (SELECT inputs FROM runs WHERE mode = 'watch' "
                "ORDER BY started_at DESC LIMIT 1)"
            ).fetchall()
        ]
    waiting = waiting_files(con, drop_dirs)
    waiting_by_dir = [(d, sum(1 for w in waiting if w.startswith(str(Path(d).resolve())))) for d in drop_dirs]
    sections["files waiting"] = (["folder", "waiting"], waiting_by_dir)
    sections["rejects by reason"] = _rows(
        con,
        """
        SELECT source, reason, count(*) AS records FROM rejected_records GROUP BY ALL ORDER BY source, records DESC""",
    )
    # The strata of the report's completeness table (contract 4.2 rule 4): unmapped text alone is reported but
    # does not count, so reported_pct leaves it out and it has its own column, as declined and unknown do.
    sections["completeness now"] = _rows(
        con,
        f"""
        SELECT source, count(*) AS patients,
               round(100.0 * count(*) FILTER (stratum = 'reported') / count(*), 1) AS reported_pct,
               count(*) FILTER (stratum = 'unmapped_text_only') AS unmapped_text,
               count(*) FILTER (stratum = 'declined') AS declined,
               count(*) FILTER (stratum = 'unknown') AS unknown
        FROM (SELECT source, {table("completeness").stratum} AS stratum FROM patient_demographics)
        GROUP BY source ORDER BY source""",
    )
    if _table_exists(con, "validation_results"):
        labels = ", ".join("?" for _ in COMPLETENESS_LABELS)
        sections["completeness over time"] = _rows(
            con,
            f"""
            SELECT source, strftime(validated_at, '%Y-%m-%d %H:%M') AS validated, scope, element_count AS patients,
                   round(100 - CAST(observed_value AS DOUBLE), 1) AS reported_pct, success AS met_goal
            FROM validation_results
            WHERE suite = 'completeness' AND expectation IN ({labels}) AND source IS NOT NULL
            QUALIFY row_number() OVER (PARTITION BY source ORDER BY validated_at DESC) <= ?
            ORDER BY source, validated_at""",
            [*COMPLETENESS_LABELS, recent],
        )
    return sections


def render_status(sections: dict[str, tuple[list[str], list[tuple]]], now: dt.datetime | None = None) -> str:
    """Plain-text tables, one per section."""
    if not sections:
        return "nothing has run against this warehouse yet"
    lines = [f"status at {(now or dt.datetime.now(dt.UTC)).strftime('%Y-%m-%d %H:%M:%S')} UTC"]
    for title, (columns, rows) in sections.items():
        lines += ["", f"{title}:"]
        if not rows:
            lines.append("  (none)")
            continue
        cells = [[("" if v is None else str(v)) for v in row] for row in rows]
        widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
        lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
        lines += ["  " + "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(lines)
