"""Opening the DuckDB file, and the DDL of every table (derived from `schemas/`, so every table exists from the
first run on, even when empty)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import duckdb

from pipelines.errors import UsageError, WarehouseBusy
from pipelines.tables import ALL_TABLES, duckdb_ddl

LOCK_WAIT_SECONDS = 10.0
# A commit larger than this is made durable by a checkpoint (one atomic switch of the file header) instead of the
# write-ahead log: DuckDB 1.5.5 replays a WAL cut inside COMMIT wrongly when a large insert's rows were written
# ahead (it keeps them and rolls back the rest of the transaction). Measured: 0 anomalies in 100 SIGKILL trials
# with this setting, 20 in 61 without (SECURITY.md).
CHECKPOINT_THRESHOLD = "256KB"
# DuckDB takes up to 80% of the machine's memory by default; a landing stays bounded and spills to disk beyond this.
MEMORY_LIMIT = "384MB"


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Creates every table of the warehouse when missing (columns from the Avro schemas)."""
    for table in ALL_TABLES:
        con.execute(duckdb_ddl(table))


def sql_string(text: str) -> str:
    """A DuckDB SQL string literal (COPY ... TO writes to exactly this path: no globbing on output)."""
    return "'" + text.replace("'", "''") + "'"


def literal_path(path: str) -> str:
    """A file path to read, as a DuckDB SQL string literal that DuckDB will not glob (`[`, `*`, `?`)."""
    return sql_string("".join(f"[{c}]" if c in "[*?" else c for c in path))


def read_parquet_sql(files: list[str]) -> str:
    """`read_parquet([...])` of exactly these files."""
    return f"read_parquet([{', '.join(literal_path(f) for f in files)}])"


def table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    found = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]).fetchone()
    return bool(found and found[0])


def _is_lock_error(message: str) -> bool:
    return "lock" in message.lower()


def check_warehouse_path(path: Path, must_exist: bool = False) -> None:
    """One-line errors for a warehouse path that cannot work, before anything is read."""
    if must_exist and not path.exists():
        raise UsageError(f"warehouse {path} does not exist")
    if not path.parent.is_dir():
        raise UsageError(f"cannot write warehouse {path}: directory {path.parent} does not exist")
    if path.is_dir():
        raise UsageError(f"cannot open warehouse {path}: it is a directory")
    if "?" in str(path.resolve()):
        # DuckDB 1.5.5 builds the write-ahead log's name by inserting ".wal" before a "?" and then fails to commit.
        raise UsageError(f"cannot use warehouse {path}: DuckDB cannot keep a database under a path containing '?'")


def connect(
    warehouse: str | os.PathLike, read_only: bool = False, create: bool = True, lock_wait: float = LOCK_WAIT_SECONDS
) -> duckdb.DuckDBPyConnection:
    """Opens the warehouse; an unusable path is a UsageError (one line, no traceback).

    DuckDB has one writer and readers block it: a lock held by another process is waited for up to `lock_wait`,
    then WarehouseBusy is raised. Use it as a context manager so the file is released as soon as possible.
    """
    path = Path(warehouse)
    check_warehouse_path(path, must_exist=read_only or not create)
    deadline = time.monotonic() + lock_wait
    while True:
        try:
            con = duckdb.connect(str(path), read_only=read_only)
            con.execute("SET enable_progress_bar = false")  # DuckDB draws bars on stdout for queries over 2 s
            if not read_only:
                con.execute(f"SET checkpoint_threshold = '{CHECKPOINT_THRESHOLD}'")
                con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
            return con
        except (duckdb.Error, OSError) as err:
            first_line = str(err).splitlines()[0] if str(err) else type(err).__name__
            if not _is_lock_error(first_line):
                raise UsageError(f"cannot open warehouse {path}: {first_line}") from None
            if time.monotonic() >= deadline:
                raise WarehouseBusy(f"warehouse {path} is busy: another process holds it ({first_line})") from None
            time.sleep(0.1)
