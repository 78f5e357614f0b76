"""The DuckDB warehouse: table DDL (derived from the Avro schemas), the single committer, and the Parquet export.

Beam workers only write staging Parquet files; this module is the one writer of the DuckDB file (DuckDB
allows a single writer process), and it holds the file open only while it commits.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import duckdb

from pipelines.errors import UsageError
from pipelines.tables import PATIENTS as PATIENT_TABLE, REJECTED as REJECTED_TABLE, field_names
from pipelines.warehouse.connection import connect, ensure_tables  # noqa: F401

log = logging.getLogger(__name__)

RUNS_COLUMNS: list[tuple[str, str]] = [
    ("run_id", "VARCHAR NOT NULL"),
    ("mode", "VARCHAR NOT NULL"),
    ("status", "VARCHAR NOT NULL"),
    ("sources", "VARCHAR[]"),
    ("inputs", "VARCHAR[]"),
    ("runner", "VARCHAR"),
    ("started_at", "TIMESTAMPTZ NOT NULL"),
    ("ended_at", "TIMESTAMPTZ"),
    ("files_read", "BIGINT"),
    ("records_in", "BIGINT"),
    ("patients_landed", "BIGINT"),
    ("rejected", "BIGINT"),
    ("other_resources", "BIGINT"),
    ("patients_inserted", "BIGINT"),
    ("patients_updated", "BIGINT"),
    ("patients_unchanged", "BIGINT"),
    ("rejected_by_reason", "VARCHAR"),
    ("other_resources_by_type", "VARCHAR"),
    ("patients_by_category", "VARCHAR"),
    ("message", "VARCHAR"),
]


# The ledger of input files: what was landed (or recognized as a duplicate delivery) from which file, and when.
LEDGER_COLUMNS: list[tuple[str, str]] = [
    ("source", "VARCHAR NOT NULL"),
    ("input_file", "VARCHAR NOT NULL"),
    ("content_sha256", "VARCHAR"),  # NULL when the file could not be read (its dead letter says why)
    ("size_bytes", "BIGINT"),
    ("status", "VARCHAR NOT NULL"),  # landed | duplicate | unreadable
    ("duplicate_of", "VARCHAR"),
    ("arrived_at", "TIMESTAMPTZ"),
    ("landed_at", "TIMESTAMPTZ NOT NULL"),
    ("lag_seconds", "DOUBLE"),
    ("run_id", "VARCHAR NOT NULL"),
    ("records_in", "BIGINT"),
    ("patients_landed", "BIGINT"),
    ("rejected", "BIGINT"),
    ("other_resources", "BIGINT"),
]
LEDGER_TABLE = "ingested_files"
# Race/ethnicity Observations that pointed at no Patient of their own batch, kept per feed for later deliveries.
OBSERVATIONS_TABLE = "demographic_observations"
OBSERVATIONS_COLUMNS: list[tuple[str, str]] = [
    ("source", "VARCHAR NOT NULL"),
    ("patient_key", "VARCHAR NOT NULL"),
    ("resource", "VARCHAR NOT NULL"),  # the Observation, canonical JSON
    ("input_file", "VARCHAR NOT NULL"),
    ("run_id", "VARCHAR NOT NULL"),
    ("received_at", "TIMESTAMPTZ NOT NULL DEFAULT current_timestamp"),
]





@dataclass
class RunCounts:
    """The reconciliation of one run: records_in = patients_landed + rejected + other_resources."""

    files_read: int = 0
    records_in: int = 0
    patients_landed: int = 0
    rejected: int = 0
    other_resources: int = 0
    patients_inserted: int = 0
    patients_updated: int = 0
    patients_unchanged: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    other_resources_by_type: dict[str, int] = field(default_factory=dict)
    patients_by_category: dict[str, int] = field(default_factory=dict)  # omb2024_category of each Patient read

    def add_file_stats(self, stats: dict[str, Any]) -> None:
        self.files_read += 1
        for name in ("records_in", "patients_landed", "rejected", "other_resources"):
            setattr(self, name, getattr(self, name) + int(stats[name]))
        for attr, key in (("rejected_by_reason", "rejected_by_reason"), ("other_resources_by_type", "other_by_type"),
                          ("patients_by_category", "patients_by_category")):
            target = getattr(self, attr)
            for k, v in stats.get(key, {}).items():
                target[k] = target.get(k, 0) + int(v)

    def merge(self, other: "RunCounts") -> None:
        """Adds another batch's counts (watch lands many batches in one run)."""
        for name, value in vars(other).items():
            if isinstance(value, dict):
                target = getattr(self, name)
                for k, v in value.items():
                    target[k] = target.get(k, 0) + v
            else:
                setattr(self, name, getattr(self, name) + value)

    @property
    def reconciles(self) -> bool:
        return self.records_in == self.patients_landed + self.rejected + self.other_resources


def start_run(con: duckdb.DuckDBPyConnection, run_id: str, mode: str, sources: Sequence[str], inputs: Sequence[str],
              runner: str, started_at: dt.datetime) -> None:
    ensure_tables(con)
    con.execute("INSERT INTO runs (run_id, mode, status, sources, inputs, runner, started_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [run_id, mode, "running", list(sources), list(inputs), runner, started_at])


def finish_run(con: duckdb.DuckDBPyConnection, run_id: str, status: str, counts: RunCounts,
               ended_at: dt.datetime, message: str | None = None) -> None:
    con.execute(
        """UPDATE runs SET status = ?, ended_at = ?, files_read = ?, records_in = ?, patients_landed = ?, rejected = ?,
               other_resources = ?, patients_inserted = ?, patients_updated = ?, patients_unchanged = ?,
               rejected_by_reason = ?, other_resources_by_type = ?, patients_by_category = ?, message = ?
           WHERE run_id = ?""",
        [status, ended_at, counts.files_read, counts.records_in, counts.patients_landed, counts.rejected,
         counts.other_resources, counts.patients_inserted, counts.patients_updated, counts.patients_unchanged,
         json.dumps(counts.rejected_by_reason, sort_keys=True), json.dumps(counts.other_resources_by_type, sort_keys=True),
         json.dumps(counts.patients_by_category, sort_keys=True), message, run_id])


def _quoted_columns(table: str, prefix: str = "") -> str:
    return ", ".join(f'{prefix}"{name}"' for name in field_names(table))


def sql_string_list(files: Iterable[str]) -> str:
    """A DuckDB list literal of strings (file names for read_parquet)."""
    return "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in files) + "]"


def latest_staged_sql(patient_files: Sequence[str]) -> str:
    """The staged rows, latest version per (source, patient_id) within the batch."""
    return f"""
        SELECT {_quoted_columns(PATIENT_TABLE)} FROM (
            SELECT *, row_number() OVER (
                PARTITION BY source, patient_id
                ORDER BY last_updated DESC NULLS LAST, _file_order DESC, _ordinal DESC) AS _rank
            FROM read_parquet({sql_string_list(patient_files)}))
        WHERE _rank = 1"""


def commit_staged(con: duckdb.DuckDBPyConnection, patient_files: Sequence[str], rejected_files: Sequence[str],
                  counts: RunCounts, ledger_rows: Sequence[dict[str, Any]] = ()) -> None:
    """Lands one run's staged Parquet in one transaction.

    Latest version wins per (source, patient_id): greatest `last_updated`, then the latest ingestion (a later run,
    or within a run the later file and position). A row whose content hash equals the stored one changes nothing,
    so re-running the same input leaves the warehouse as it was.
    """
    ensure_tables(con)
    cols = _quoted_columns(PATIENT_TABLE)
    con.execute("BEGIN TRANSACTION")
    try:
        if patient_files:
            con.execute(f"CREATE OR REPLACE TEMP TABLE batch_latest AS {latest_staged_sql(patient_files)}")
            con.execute(f"""
                CREATE OR REPLACE TEMP TABLE changes AS
                SELECT b.*, t.patient_id IS NULL AS _is_new
                FROM batch_latest b LEFT JOIN {PATIENT_TABLE} t USING (source, patient_id)
                WHERE t.patient_id IS NULL
                   OR coalesce(b.last_updated, '-infinity'::TIMESTAMPTZ) > coalesce(t.last_updated, '-infinity'::TIMESTAMPTZ)
                   OR (b.last_updated IS NOT DISTINCT FROM t.last_updated AND b.record_hash <> t.record_hash)""")
            batch_size, = con.execute("SELECT count(*) FROM batch_latest").fetchone()
            changed, inserted = con.execute("SELECT count(*), count(*) FILTER (_is_new) FROM changes").fetchone()
            con.execute(f"""DELETE FROM {PATIENT_TABLE} t USING changes c
                            WHERE t.source = c.source AND t.patient_id = c.patient_id""")
            con.execute(f"INSERT INTO {PATIENT_TABLE} ({cols}) SELECT {cols} FROM changes")
            con.execute("DROP TABLE changes")
            con.execute("DROP TABLE batch_latest")
            counts.patients_inserted += inserted
            counts.patients_updated += changed - inserted
            counts.patients_unchanged += batch_size - changed
        if rejected_files:
            rcols = _quoted_columns(REJECTED_TABLE)
            # A dead letter already stored for the same place and content is not stored twice.
            con.execute(f"""
                INSERT INTO {REJECTED_TABLE} ({rcols})
                SELECT {rcols} FROM read_parquet({sql_string_list(rejected_files)}) s
                WHERE NOT EXISTS (
                    SELECT 1 FROM {REJECTED_TABLE} r
                    WHERE r.source = s.source AND r.input_file = s.input_file AND r.position = s.position
                      AND r.reason = s.reason AND md5(r.raw_text) = md5(s.raw_text))""")
        if ledger_rows:
            names = [n for n, _ in LEDGER_COLUMNS]
            con.executemany(f"INSERT INTO {LEDGER_TABLE} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
                            [[row.get(n) for n in names] for row in ledger_rows])
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise


_UNSAFE_PATH_CHARS = re.compile(r"[^A-Za-z0-9._-]")


def partition_dir_name(source: str) -> str:
    """Hive-style partition folder for a source, with unsafe characters percent-escaped."""
    return "source=" + _UNSAFE_PATH_CHARS.sub(lambda m: "%{:02X}".format(ord(m.group(0))), source)


def export_parquet(con: duckdb.DuckDBPyConnection, parquet_dir: str | os.PathLike, sources: Iterable[str]) -> list[str]:
    """Rewrites the Parquet copy of each table for the given sources (partitioned by source); returns the files."""
    written = []
    for table in (PATIENT_TABLE, REJECTED_TABLE):
        for source in sorted(set(sources)):
            folder = Path(parquet_dir) / table / partition_dir_name(source)
            folder.mkdir(parents=True, exist_ok=True)
            target = folder / "part-0.parquet"
            tmp = folder / ".part-0.parquet.tmp"
            order = "patient_id" if table == PATIENT_TABLE else "input_file, position"
            con.execute(f"COPY (SELECT * FROM {table} WHERE source = ? ORDER BY {order}) "
                        f"TO '{str(tmp).replace(chr(39), chr(39) * 2)}' (FORMAT parquet, COMPRESSION zstd)", [source])
            os.replace(tmp, target)
            written.append(str(target))
    return written
