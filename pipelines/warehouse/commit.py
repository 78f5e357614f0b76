"""The single committer: lands one staged batch in one DuckDB transaction.

Per (source, patient_id) the latest version wins (contract section 3): the greatest `meta.lastUpdated`; on a tie,
the content whose file arrived first later (`first_arrived_at`, from the ledger: re-running or re-delivering an
old file never makes its older content win); within one file, the later position. A version whose content equals
the stored one changes nothing. A deletion removes the patient, and no version whose lastUpdated is not later
than the deletion brings it back, whatever the order of arrival. The rows, the dead letters, the deletions, the
kept Observations and the ledger rows of the batch are committed together.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from pipelines.beam.read import DELETED as DELETED_KIND
from pipelines.beam.read import PATIENTS as PATIENTS_KIND
from pipelines.beam.read import REJECTED as REJECTED_KIND
from pipelines.normalize import Policy
from pipelines.rows import ORDINAL
from pipelines.staging import InputFileResult, StagedBatch
from pipelines.tables import DELETED, LEDGER, PATIENTS, REJECTED, arrow_schema, field_names
from pipelines.warehouse.connection import read_parquet_sql, sql_string
from pipelines.warehouse.export import mark_dirty
from pipelines.warehouse.observations import keep_observations, rebuild_with_observations
from pipelines.warehouse.runs import RunCounts

log = logging.getLogger(__name__)

LATEST_ORDER = "last_updated DESC NULLS LAST, first_arrived_at DESC, _file_order DESC, _ordinal DESC"


@dataclass
class CommitResult:
    """What one commit changed: counts, and the sources whose Parquet partitions it touched."""

    counts: RunCounts
    changed_sources: dict[str, set[str]]  # table -> sources with new rows
    removed_sources: set[str]  # sources where a deletion removed rows (their partition is rewritten)
    stale_partitions: set[tuple[str, str]]  # (table, source) whose Parquet copy lagged before this commit


def _columns(table: str, prefix: str = "") -> str:
    return ", ".join(f'{prefix}"{name}"' for name in field_names(table))


def decide_files(
    con: duckdb.DuckDBPyConnection, files: list[InputFileResult], landed_at: dt.datetime, duplicates_land_nothing: bool
) -> None:
    """Sets each file's ledger status and first arrival. A GCS object generation already in the ledger (a
    redelivered notification, a re-run backfill) is a duplicate: a generation's content never changes. A content
    already landed for the source (or landed earlier in this batch) keeps its first arrival; in `watch`
    (`duplicates_land_nothing`) it is a duplicate."""
    hashes = sorted({f.content_sha256 for f in files if f.content_sha256})
    generations = sorted({f.generation for f in files if f.generation})
    known: dict[tuple[str, str], tuple[dt.datetime, str]] = {}
    if hashes:
        for source, digest, first, path in con.execute(
            f"""
                SELECT source, content_sha256, min(coalesce(first_arrived_at, arrived_at, landed_at)),
                       arg_min(input_file, landed_at)
                FROM {LEDGER} WHERE status = 'landed' AND list_contains(?, content_sha256)
                GROUP BY ALL""",
            [hashes],
        ).fetchall():
            known[(source, digest)] = (first, path)
    objects: dict[tuple[str, str, str], dt.datetime] = {}
    if generations:
        for source, path, generation, first in con.execute(
            f"""
                SELECT source, input_file, object_generation, min(coalesce(first_arrived_at, arrived_at, landed_at))
                FROM {LEDGER} WHERE status IN ('landed', 'duplicate') AND list_contains(?, object_generation)
                GROUP BY ALL""",
            [generations],
        ).fetchall():
            objects[(source, path, generation)] = first
    for f in files:
        if f.content_sha256 is None:
            f.status = "unreadable"
            continue
        seen_object = objects.get((f.source, f.input_file, f.generation))
        if seen_object is not None:
            f.status, f.duplicate_of, f.first_arrived_at = "duplicate", f.input_file, seen_object
            continue
        seen = known.get((f.source, f.content_sha256))
        arrival = f.arrived_at or landed_at
        if seen is None:
            known[(f.source, f.content_sha256)] = (arrival, f.input_file)
            f.status, f.first_arrived_at = "landed", arrival
        elif duplicates_land_nothing:
            f.status, f.duplicate_of, f.first_arrived_at = "duplicate", seen[1], seen[0]
        else:
            f.status, f.first_arrived_at = "landed", seen[0]


def _files_table(files: list[InputFileResult]) -> pa.Table:
    return pa.table(
        {
            "input_file": [f.input_file for f in files],
            "status": [f.status for f in files],
            "first_arrived_at": [f.first_arrived_at for f in files],
        },
        schema=pa.schema(
            [("input_file", pa.string()), ("status", pa.string()), ("first_arrived_at", pa.timestamp("us", tz="UTC"))]
        ),
    )


def commit_batch(
    con: duckdb.DuckDBPyConnection,
    batch: StagedBatch,
    run_id: str,
    landed_at: dt.datetime,
    policy: Policy,
    duplicates_land_nothing: bool = False,
) -> CommitResult:
    """Lands the batch in one transaction; returns what changed. Temp tables stay on the connection for the export
    and the validation: `_changes`, `_new_rejected`, `_new_deleted` (the new rows) and `_batch_keys` (every
    (source, patient_id) the batch read)."""
    counts = RunCounts()
    log.debug("commit: begin")
    con.execute("BEGIN TRANSACTION")
    try:
        decide_files(con, batch.files, landed_at, duplicates_land_nothing)
        con.register("_files", _files_table(batch.files))
        for kind in (PATIENTS_KIND, REJECTED_KIND, DELETED_KIND):
            stage_view(con, batch, kind)
        # Rows of files that land (a duplicate delivery lands nothing), with the first arrival of their content and
        # the landing's run (a Dataflow window lands as its own run, after its files were read).
        con.execute(f"""CREATE OR REPLACE TEMP VIEW _staged AS
            SELECT p.* REPLACE (coalesce(f.first_arrived_at, p.first_arrived_at) AS first_arrived_at,
                                {sql_string(run_id)} AS run_id)
            FROM _staged_{PATIENTS_KIND} p JOIN _files f USING (input_file) WHERE f.status = 'landed'""")
        landing = {f.input_file for f in batch.files if f.status == "landed"}
        keep_observations(con, [o for o in batch.observations if o["input_file"] in landing], run_id)
        rebuilt = rebuild_with_observations(con, "_staged", policy)
        versions = "_staged"
        if rebuilt.num_rows:
            con.register("_rebuilt", rebuilt)
            versions = f"""(SELECT * FROM _staged s ANTI JOIN _rebuilt r USING (input_file, {ORDINAL})
                            UNION ALL BY NAME SELECT * FROM _rebuilt)"""
        _latest_per_key(con, versions)
        _land_deletions(con, run_id)
        _land_versions(con, counts)
        _land_rejects(con, run_id)
        _write_ledger(con, batch.files, landed_at, run_id)
        changed = {
            table: {row[0] for row in con.execute(f"SELECT DISTINCT source FROM {temp}").fetchall()}
            for table, temp in ((PATIENTS, "_changes"), (REJECTED, "_new_rejected"), (DELETED, "_new_deleted"))
        }
        removed = {row[0] for row in con.execute("SELECT DISTINCT source FROM _removed").fetchall()}
        changed[PATIENTS] |= removed
        stale = mark_dirty(con, changed, landed_at)
        con.execute("COMMIT")
        log.debug("commit: end")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        for name in ("_files", "_rebuilt", *(f"_empty_{k}" for k in (PATIENTS_KIND, REJECTED_KIND, DELETED_KIND))):
            with contextlib.suppress(duckdb.Error):
                con.unregister(name)
    return CommitResult(counts, changed, removed, stale)


def stage_view(con: duckdb.DuckDBPyConnection, batch: StagedBatch, kind: str, name: str | None = None) -> None:
    """A temp view (`_staged_<kind>` by default) of the staged rows of one kind, read by DuckDB itself (parallel,
    no glob)."""
    name = name or f"_staged_{kind}"
    files = batch.files_of(kind)
    if files:
        con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT * FROM {read_parquet_sql(files)}")
    else:
        con.register(f"_empty_{kind}", batch.schema_of(kind).empty_table())
        con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT * FROM _empty_{kind}")


def _latest_per_key(con: duckdb.DuckDBPyConnection, versions: str) -> None:
    """`_batch_latest` (a view): the batch's latest version per (source, patient_id). Keys that occur once (most of
    a Bulk export) are taken as they are; only repeated keys are ranked, and no row is copied until `_changes`."""
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _repeated_keys AS SELECT source, patient_id FROM {versions} "
        "GROUP BY ALL HAVING count(*) > 1"
    )
    if not con.execute("SELECT count(*) FROM _repeated_keys").fetchone()[0]:
        con.execute(f"CREATE OR REPLACE TEMP VIEW _batch_latest AS SELECT * FROM {versions}")
        return
    con.execute(f"""CREATE OR REPLACE TEMP VIEW _batch_latest AS
        SELECT * FROM {versions} v ANTI JOIN _repeated_keys USING (source, patient_id)
        UNION ALL BY NAME
        SELECT * EXCLUDE (_rank) FROM (
            SELECT *, row_number() OVER (PARTITION BY source, patient_id ORDER BY {LATEST_ORDER}) AS _rank
            FROM {versions} v SEMI JOIN _repeated_keys USING (source, patient_id)) WHERE _rank = 1""")


def _land_deletions(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    """New deletions land in deleted_patients (once each); `_tombstones` holds the latest deletion of every key
    the batch touches."""
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _new_deleted AS
        SELECT DISTINCT ON (source, patient_id, deleted_at) d.* REPLACE (? AS run_id) FROM _staged_{DELETED_KIND} d
        JOIN _files f USING (input_file)
        WHERE f.status = 'landed' AND NOT EXISTS (
            SELECT 1 FROM {DELETED} k WHERE k.source = d.source AND k.patient_id = d.patient_id
              AND k.deleted_at = d.deleted_at)
        ORDER BY source, patient_id, deleted_at, input_file, input_position""",
        [run_id],
    )
    con.execute(f"INSERT INTO {DELETED} ({_columns(DELETED)}) SELECT {_columns(DELETED)} FROM _new_deleted")
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _tombstones AS
        SELECT source, patient_id, max(deleted_at) AS deleted_at FROM {DELETED}
        SEMI JOIN (SELECT source, patient_id FROM _batch_latest UNION SELECT source, patient_id FROM _new_deleted) k
             USING (source, patient_id)
        GROUP BY ALL""")


def _land_versions(con: duckdb.DuckDBPyConnection, counts: RunCounts) -> None:
    """Replaces the rows the batch changes. Only keys are materialized (`_changes`, `_removed`); the rows are read
    from the staged files once, by the INSERT, and `_changed_rows` shows them in the table afterwards."""
    cols = _columns(PATIENTS)
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _changes AS
        SELECT b.source, b.patient_id, t.patient_id IS NULL AS _is_new
        FROM _batch_latest b
        LEFT JOIN _tombstones d USING (source, patient_id)
        LEFT JOIN {PATIENTS} t USING (source, patient_id)
        WHERE (d.deleted_at IS NULL OR b.last_updated > d.deleted_at)
          AND (t.patient_id IS NULL
               OR coalesce(b.last_updated, '-infinity'::TIMESTAMPTZ)
                  > coalesce(t.last_updated, '-infinity'::TIMESTAMPTZ)
               OR (b.last_updated IS NOT DISTINCT FROM t.last_updated AND b.record_hash <> t.record_hash
                   AND b.first_arrived_at >= t.first_arrived_at))""")
    con.execute(f"""CREATE OR REPLACE TEMP TABLE _removed AS
        SELECT t.source, t.patient_id FROM {PATIENTS} t JOIN _tombstones d USING (source, patient_id)
        WHERE coalesce(t.last_updated, '-infinity'::TIMESTAMPTZ) <= d.deleted_at
          AND NOT EXISTS (SELECT 1 FROM _changes c WHERE c.source = t.source AND c.patient_id = t.patient_id)""")
    con.execute("CREATE OR REPLACE TEMP TABLE _batch_keys AS SELECT source, patient_id FROM _batch_latest")
    (batch_size,) = con.execute("SELECT count(*) FROM _batch_keys").fetchone()
    changed, inserted = con.execute("SELECT count(*), count(*) FILTER (_is_new) FROM _changes").fetchone()
    (removed,) = con.execute("SELECT count(*) FROM _removed").fetchone()
    con.execute(f"""DELETE FROM {PATIENTS} t USING (SELECT source, patient_id FROM _changes WHERE NOT _is_new
                                                    UNION ALL SELECT source, patient_id FROM _removed) k
                    WHERE t.source = k.source AND t.patient_id = k.patient_id""")
    con.execute(f"""INSERT INTO {PATIENTS} ({cols})
                    SELECT {cols} FROM _batch_latest SEMI JOIN _changes USING (source, patient_id)""")
    con.execute(f"""CREATE OR REPLACE TEMP VIEW _changed_rows AS
                    SELECT * FROM {PATIENTS} SEMI JOIN _changes USING (source, patient_id)""")
    counts.patients_inserted += inserted
    counts.patients_updated += changed - inserted
    counts.patients_unchanged += batch_size - changed
    counts.patients_deleted += removed


def _land_rejects(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    """Dead letters of files that land; one already stored for the same place and content is not stored twice."""
    cols = _columns(REJECTED)
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _new_rejected AS
        SELECT DISTINCT ON (source, input_file, position, reason, md5(raw_text)) s.* REPLACE (? AS run_id)
        FROM _staged_{REJECTED_KIND} s
        WHERE NOT EXISTS (SELECT 1 FROM _files f WHERE f.input_file = s.input_file AND f.status = 'duplicate')
          AND NOT EXISTS (SELECT 1 FROM {REJECTED} r
                          WHERE r.source = s.source AND r.input_file = s.input_file AND r.position = s.position
                            AND r.reason = s.reason AND md5(r.raw_text) = md5(s.raw_text))
        ORDER BY source, input_file, position""",
        [run_id],
    )
    con.execute(f"INSERT INTO {REJECTED} ({cols}) SELECT {cols} FROM _new_rejected")


def _write_ledger(
    con: duckdb.DuckDBPyConnection, files: list[InputFileResult], landed_at: dt.datetime, run_id: str
) -> None:
    rows = [
        {
            "source": f.source,
            "input_file": f.input_file,
            "content_sha256": f.content_sha256,
            "size_bytes": f.size_bytes,
            "object_generation": f.generation,
            "status": f.status,
            "duplicate_of": f.duplicate_of,
            "arrived_at": f.arrived_at,
            "first_arrived_at": f.first_arrived_at,
            "landed_at": landed_at,
            "run_id": run_id,
            "lag_seconds": None if f.arrived_at is None else round((landed_at - f.arrived_at).total_seconds(), 3),
            **f.counts,
        }
        for f in files
    ]
    con.register("_ledger_rows", pa.Table.from_pylist(rows, schema=arrow_schema(LEDGER)))
    con.execute(f"INSERT INTO {LEDGER} ({_columns(LEDGER)}) SELECT {_columns(LEDGER)} FROM _ledger_rows")
    con.unregister("_ledger_rows")
