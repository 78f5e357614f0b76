"""The Parquet copy of patient_demographics, rejected_records and deleted_patients, partitioned by source:
append, then compact, so that a landing costs what it brought, not the size of its feed.

Layout: `<parquet_dir>/<table>/source=<percent-encoded name>/part-<sequence>.parquet`. Each landing appends one
file per touched partition with the rows it changed; a partition is rewritten as one file when its appended files
grow (more than MAX_DELTA_FILES, or more rows than COMPACT_RATIO of the rewritten ones), when a deletion removed
rows from it, or when an earlier export did not finish (the `dirty` mark, set in the landing's own transaction).
Reading rule for the copy of patient_demographics: per (source, patient_id), the row of the highest-numbered file.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import urllib.parse
import uuid

import duckdb
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from pipelines.staging import list_folder
from pipelines.tables import DELETED, PARQUET_PARTITIONS, PATIENTS, REJECTED, arrow_schema, field_names
from pipelines.warehouse.connection import sql_string

MAX_DELTA_FILES = 64
COMPACT_RATIO = 0.25
COMPACT_MIN_ROWS = 100_000
ROWS_PER_BATCH = 50_000
_PART = re.compile(r"^part-(\d{10})\.parquet$")
# Where each table's new rows of the last commit are (temp tables of commit_batch).
NEW_ROWS = {PATIENTS: "_changed_rows", REJECTED: "_new_rejected", DELETED: "_new_deleted"}
# The same, counted cheaply: the changed patients' keys.
NEW_COUNTS = {**NEW_ROWS, PATIENTS: "_changes"}


def partition_dir_name(source: str) -> str:
    """`source=<name>`, the name percent-encoded as UTF-8 bytes: injective (two sources never share a folder)
    and safe on every filesystem and object store."""
    return "source=" + urllib.parse.quote(source, safe="")


def partition_dir(parquet_dir: str, table: str, source: str) -> str:
    return FileSystems.join(parquet_dir, table, partition_dir_name(source))


def mark_dirty(
    con: duckdb.DuckDBPyConnection, sources_by_table: dict[str, set[str]], now: dt.datetime
) -> set[tuple[str, str]]:
    """Inside the landing's transaction: these partitions may lag until their export finishes. Returns the
    partitions that were already lagging (an earlier export did not finish): those are rewritten whole."""
    stale = set(con.execute(f"SELECT table_name, source FROM {PARQUET_PARTITIONS} WHERE dirty").fetchall())
    for table, sources in sources_by_table.items():
        for source in sources:
            con.execute(
                f"UPDATE {PARQUET_PARTITIONS} SET dirty = true, updated_at = ? WHERE table_name = ? AND source = ?",
                [now, table, source],
            )
            con.execute(
                f"""INSERT INTO {PARQUET_PARTITIONS} SELECT ?, ?, true, 0, 0, 0, ? WHERE NOT EXISTS (
                            SELECT 1 FROM {PARQUET_PARTITIONS} WHERE table_name = ? AND source = ?)""",
                [table, source, now, table, source],
            )
    return stale


def _next_sequence(folder: str) -> int:
    numbers = [int(m.group(1)) for path in list_folder(folder) if (m := _PART.match(os.path.basename(path)))]
    return max(numbers, default=0) + 1


def _write(con: duckdb.DuckDBPyConnection, query: str, params: list, table: str, target: str) -> int:
    """Writes a query's rows into one Parquet file (under a temporary name, then renamed): by DuckDB itself on a
    local disk (parallel), streamed through Arrow elsewhere (gs://)."""
    tmp = FileSystems.join(os.path.dirname(target), f".{os.path.basename(target)}.{uuid.uuid4().hex}.tmp")
    if "://" not in tmp:
        (rows,) = con.execute(
            f"COPY ({query}) TO {sql_string(tmp)} (FORMAT parquet, COMPRESSION zstd)", params
        ).fetchone()
        os.replace(tmp, target)
        return rows
    reader = con.execute(query, params).fetch_record_batch(ROWS_PER_BATCH)
    rows = 0
    with FileSystems.create(tmp) as fh, pq.ParquetWriter(fh, arrow_schema(table), compression="zstd") as writer:
        for batch in reader:
            writer.write_batch(batch.cast(arrow_schema(table)))
            rows += batch.num_rows
    FileSystems.rename([tmp], [target])
    return rows


def plan_export(
    con: duckdb.DuckDBPyConnection,
    parquet_dir: str,
    changed: dict[str, set[str]],
    removed: set[str],
    stale: set[tuple[str, str]],
) -> dict[tuple[str, str], bool]:
    """The partitions the export of the last commit touches: (table, source) -> True when it is rewritten whole
    from the warehouse, False when the commit's new rows are appended as one more file."""
    pending = {(t, s) for t, sources in changed.items() for s in sources}
    lagging = (
        stale
        | set(con.execute(f"SELECT table_name, source FROM {PARQUET_PARTITIONS} WHERE dirty").fetchall()) - pending
    )
    plan = {}
    for table, source in pending | lagging:
        delta_files, delta_rows, base_rows = _state(con, table, source)
        new_rows = _count(con, NEW_COUNTS[table], source) if source in changed.get(table, set()) else 0
        plan[(table, source)] = (
            (table, source) in lagging
            or (table == PATIENTS and source in removed)
            or delta_files + 1 > MAX_DELTA_FILES
            or delta_rows + new_rows > max(COMPACT_MIN_ROWS, COMPACT_RATIO * base_rows)
            or not _has_parts(partition_dir(parquet_dir, table, source))
        )
    return plan


def _state(con: duckdb.DuckDBPyConnection, table: str, source: str) -> tuple[int, int, int]:
    return con.execute(
        f"SELECT delta_files, delta_rows, base_rows FROM {PARQUET_PARTITIONS} WHERE table_name = ? AND source = ?",
        [table, source],
    ).fetchone() or (0, 0, 0)


def export(
    con: duckdb.DuckDBPyConnection, parquet_dir: str, plan: dict[tuple[str, str], bool], now: dt.datetime
) -> list[str]:
    """Exports the last commit's new rows (temp tables of commit_batch) as `plan_export` says: rewritten partitions
    from the warehouse table, the others by appending. Returns the files written."""
    written = []
    for (table, source), rewrite in sorted(plan.items()):
        state = _state(con, table, source)
        folder = partition_dir(parquet_dir, table, source)
        if not FileSystems.exists(folder):
            FileSystems.mkdirs(folder)
        target = FileSystems.join(folder, f"part-{_next_sequence(folder):010d}.parquet")
        cols = ", ".join(f'"{c}"' for c in field_names(table))
        if rewrite:
            old = [p for p in list_folder(folder) if _PART.match(os.path.basename(p))]
            rows = _write(con, f"SELECT {cols} FROM {table} WHERE source = ?", [source], table, target)
            if old:
                FileSystems.delete(old)
            state = (0, 0, rows)
        else:
            rows = _write(con, f"SELECT {cols} FROM {NEW_ROWS[table]} WHERE source = ?", [source], table, target)
            state = (state[0] + 1, state[1] + rows, state[2])
        con.execute(f"DELETE FROM {PARQUET_PARTITIONS} WHERE table_name = ? AND source = ?", [table, source])
        con.execute(f"INSERT INTO {PARQUET_PARTITIONS} VALUES (?, ?, false, ?, ?, ?, ?)", [table, source, *state, now])
        written.append(target)
    return written


def _count(con: duckdb.DuckDBPyConnection, temp: str, source: str) -> int:
    return con.execute(f"SELECT count(*) FROM {temp} WHERE source = ?", [source]).fetchone()[0]


def _has_parts(folder: str) -> bool:
    return any(_PART.match(os.path.basename(p)) for p in list_folder(folder))


def read_latest_sql(parquet_dir: str) -> str:
    """SQL (DuckDB) reading the Parquet copy of patient_demographics the way the reading rule says: per
    (source, patient_id) the row of the highest-numbered file. For tests and the README."""
    pattern = os.path.join(parquet_dir, PATIENTS, "*", "part-*.parquet").replace("'", "''")
    cols = ", ".join(f'"{c}"' for c in field_names(PATIENTS))
    return (
        f"SELECT {cols} FROM read_parquet('{pattern}', filename = true, hive_partitioning = false) "
        "QUALIFY row_number() OVER (PARTITION BY source, patient_id ORDER BY filename DESC) = 1"
    )
