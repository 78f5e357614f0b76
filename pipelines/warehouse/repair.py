"""Self-repair at the start of every run and watch: whatever moment a process was killed at, the warehouse is left
with one row per (source, patient_id), no run shown as running that no longer runs, and a Parquet copy that
catches up (partitions marked dirty are rewritten at the next export).

A landing is one transaction, but DuckDB has been seen to keep the inserted rows of a large transaction and not
its deletes after SIGKILL; the ledger row, committed in the same transaction, is then missing too, so `watch`
lands the file again and `run` lands what it is given: nothing is lost, and the duplicates are removed here.
"""

from __future__ import annotations

import datetime as dt
import logging

import duckdb

from pipelines.tables import PARQUET_PARTITIONS, PATIENTS
from pipelines.warehouse.runs import mark_dead_runs_interrupted

log = logging.getLogger(__name__)

KEEP_ORDER = "last_updated DESC NULLS LAST, first_arrived_at DESC, ingested_at DESC, record_hash"


def remove_duplicate_keys(con: duckdb.DuckDBPyConnection, now: dt.datetime) -> int:
    """Keeps the latest row per (source, patient_id); marks the sources' Parquet partitions for a rewrite."""
    total, distinct = con.execute(f"SELECT count(*), count(DISTINCT (source, patient_id)) FROM {PATIENTS}").fetchone()
    if total == distinct:
        return 0
    con.execute("BEGIN TRANSACTION")
    try:
        sources = [
            row[0]
            for row in con.execute(f"""SELECT DISTINCT source FROM {PATIENTS}
                   GROUP BY source, patient_id HAVING count(*) > 1""").fetchall()
        ]
        con.execute(f"""DELETE FROM {PATIENTS} WHERE rowid IN (
            SELECT rowid FROM (SELECT rowid, row_number() OVER (PARTITION BY source, patient_id ORDER BY {KEEP_ORDER})
                               AS rank FROM {PATIENTS}) WHERE rank > 1)""")
        for source in sources:
            con.execute(
                f"UPDATE {PARQUET_PARTITIONS} SET dirty = true, updated_at = ? WHERE table_name = ? AND source = ?",
                [now, PATIENTS, source],
            )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    log.warning("removed %d duplicate rows left by an interrupted landing", total - distinct)
    return total - distinct


def repair(con: duckdb.DuckDBPyConnection, now: dt.datetime) -> None:
    interrupted = mark_dead_runs_interrupted(con, now)
    if interrupted:
        log.warning("%d earlier runs ended without recording it (killed?): marked interrupted", interrupted)
    remove_duplicate_keys(con, now)
