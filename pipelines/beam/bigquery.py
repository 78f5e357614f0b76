"""The production sink of the Dataflow job: BigQuery tables plus the Parquet copy on GCS, behind the same sink
interface as the DuckDB file (pipelines/warehouse/sink.py).

A landing (one window of the job; one committer at a time) goes like this:
1. slice: the rows the batch can touch are read from BigQuery into a DuckDB in memory that has every table of the
   warehouse: the stored versions, deletions and kept Observations of the batch's patients, the ledger rows of its
   contents and objects, the dead letters of its files, and the Parquet partitions' state (`slice_queries`).
2. commit: `commit_batch` lands the batch in that slice, so the rules are the local warehouse's own (latest
   lastUpdated, then first arrival, then position; tombstones; the ledger; Observations matched across files),
   not a second copy of them in BigQuery's SQL.
3. push: what the commit changed is written as Parquet under the window's staging folder, loaded into tables of
   this landing (load jobs, schemas from schemas/), and applied in one BigQuery transaction (`push_statements`).
4. export and validate as locally: the Parquet copy (a partition rewritten whole is first read whole from
   BigQuery), the GX suites on the batch's landed rows; their state and results are pushed the same way.
Every statement is plain SQL that DuckDB runs too (tests/test_bigquery.py runs them there); only the client calls
below are BigQuery's own, and they have not run here (docs/dataflow.md).
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from pipelines.beam.read import DELETED as DELETED_KIND
from pipelines.beam.read import PATIENTS as PATIENTS_KIND
from pipelines.errors import UsageError, error_line
from pipelines.normalize import Policy
from pipelines.staging import StagedBatch
from pipelines.tables import (
    ALL_TABLES,
    DELETED,
    LEDGER,
    OBSERVATIONS,
    PARQUET_PARTITIONS,
    PATIENTS,
    REJECTED,
    RUNS,
    VALIDATION,
    arrow_schema,
    bigquery_schema,
    field_names,
)
from pipelines.warehouse.commit import commit_batch, stage_view
from pipelines.warehouse.connection import ensure_tables
from pipelines.warehouse.export import NEW_ROWS, export, plan_export
from pipelines.warehouse.runs import RunCounts, end_values, start_values
from pipelines.warehouse.sink import Landed

log = logging.getLogger(__name__)

# Day partitions (None: not partitioned) and clustering per table. Partitioned by when a row was written, never by
# a time read from a file: old lastUpdated or deletion times would make thousands of partitions.
TABLE_LAYOUT: dict[str, tuple[str | None, tuple[str, ...]]] = {
    PATIENTS: (None, ("source", "patient_id")),
    REJECTED: ("rejected_at", ("source", "reason")),
    DELETED: ("ingested_at", ("source", "patient_id")),
    RUNS: ("started_at", ()),
    LEDGER: ("landed_at", ("source", "input_file")),
    OBSERVATIONS: (None, ("source", "patient_key")),
    VALIDATION: ("validated_at", ("source", "suite")),
    PARQUET_PARTITIONS: (None, ()),
}
# A landing's own tables, besides copies of the warehouse's: the batch's patient keys and files (to read the
# slice), and the keys whose stored row the commit replaced or removed (to apply it).
KEYS, FILES, REPLACED = "keys", "files", "replaced_keys"
LANDING_COLUMNS = {
    KEYS: ("source", "patient_id"),
    FILES: ("source", "input_file", "content_sha256", "object_generation"),
    REPLACED: ("source", "patient_id"),
}
# What the commit changed, read from the slice (DuckDB); `$run_id` is the landing's run.
DELTAS = {
    REPLACED: "SELECT source, patient_id FROM _changes UNION SELECT source, patient_id FROM _removed",
    PATIENTS: f"SELECT * FROM {NEW_ROWS[PATIENTS]}",
    DELETED: f"SELECT * FROM {NEW_ROWS[DELETED]}",
    REJECTED: f"SELECT * FROM {NEW_ROWS[REJECTED]}",
    OBSERVATIONS: f"SELECT * FROM {OBSERVATIONS} WHERE run_id = $run_id",
    LEDGER: f"SELECT * FROM {LEDGER} WHERE run_id = $run_id",
    PARQUET_PARTITIONS: f"SELECT * FROM {PARQUET_PARTITIONS}",
}
AFTER_EXPORT = {
    PARQUET_PARTITIONS: f"SELECT * FROM {PARQUET_PARTITIONS}",
    VALIDATION: f"SELECT * FROM {VALIDATION} WHERE run_id = $run_id",
}
Parameter = tuple[str, str, Any]  # (name, BigQuery type such as STRING or ARRAY<STRING>, value)


def _columns(table: str, prefix: str = "") -> str:
    return ", ".join(f"{prefix}{name}" for name in LANDING_COLUMNS.get(table) or field_names(table))


def table_resource(project: str, dataset: str, table: str) -> dict[str, Any]:
    """A warehouse table as a BigQuery table resource: schema from schemas/, day partitions, clustering."""
    partition, clustering = TABLE_LAYOUT[table]
    resource: dict[str, Any] = {
        "tableReference": {"projectId": project, "datasetId": dataset, "tableId": table},
        "schema": {"fields": bigquery_schema(table)},
    }
    if partition:
        resource["timePartitioning"] = {"type": "DAY", "field": partition}
    if clustering:
        resource["clustering"] = {"fields": list(clustering)}
    return resource


def _landing_fields(name: str) -> list[dict[str, str]]:
    if name in LANDING_COLUMNS:
        return [{"name": column, "type": "STRING", "mode": "NULLABLE"} for column in LANDING_COLUMNS[name]]
    return bigquery_schema(name)


def load_configuration(project: str, dataset: str, table_id: str, name: str, uris: Sequence[str]) -> dict[str, Any]:
    """A load job (REST configuration) of Parquet files into a landing table, replacing what it held."""
    return {
        "load": {
            "sourceUris": list(uris),
            "sourceFormat": "PARQUET",
            "destinationTable": {"projectId": project, "datasetId": dataset, "tableId": table_id},
            "schema": {"fields": _landing_fields(name)},
            "createDisposition": "CREATE_IF_NEEDED",
            "writeDisposition": "WRITE_TRUNCATE",
            "parquetOptions": {"enableListInference": True},
        }
    }


def slice_queries(landing: Callable[[str], str]) -> dict[str, str]:
    """Per table, the rows a batch can touch (its keys and files loaded as `landing(KEYS)`, `landing(FILES)`);
    everything commit_batch, its Observations, its export and its validation read."""
    keys, files = landing(KEYS), landing(FILES)

    def of_keys(column: str) -> str:
        return f"EXISTS (SELECT 1 FROM {keys} AS k WHERE k.source = t.source AND k.patient_id = t.{column})"

    where = {
        PATIENTS: of_keys("patient_id"),
        DELETED: of_keys("patient_id"),
        OBSERVATIONS: of_keys("patient_key"),
        LEDGER: f"EXISTS (SELECT 1 FROM {files} AS f WHERE f.content_sha256 = t.content_sha256 "
        "OR f.object_generation = t.object_generation)",
        REJECTED: f"EXISTS (SELECT 1 FROM {files} AS f WHERE f.source = t.source AND f.input_file = t.input_file)",
        PARQUET_PARTITIONS: "TRUE",
    }
    return {
        table: f"SELECT {_columns(table, 't.')} FROM {table} AS t WHERE {condition}"
        for table, condition in where.items()
    }


def push_statements(landing: Callable[[str], str], loaded: Iterable[str]) -> list[str]:
    """The statements that apply a landing's loaded tables to the warehouse (run as one transaction)."""
    loaded = set(loaded)
    statements = []
    if REPLACED in loaded:
        statements.append(
            f"DELETE FROM {PATIENTS} AS t WHERE EXISTS (SELECT 1 FROM {landing(REPLACED)} AS k "
            "WHERE k.source = t.source AND k.patient_id = t.patient_id)"
        )
    if PARQUET_PARTITIONS in loaded:
        statements.append(
            f"DELETE FROM {PARQUET_PARTITIONS} AS t WHERE EXISTS (SELECT 1 FROM "
            f"{landing(PARQUET_PARTITIONS)} AS k "
            "WHERE k.table_name = t.table_name AND k.source = t.source)"
        )
    for table in (PATIENTS, DELETED, REJECTED, OBSERVATIONS, LEDGER, PARQUET_PARTITIONS, VALIDATION):
        if table in loaded:
            statements.append(f"INSERT INTO {table} ({_columns(table)}) SELECT {_columns(table)} FROM {landing(table)}")
    return statements


def typed_parameters(table: str, values: Mapping[str, Any]) -> list[Parameter]:
    """Named query parameters typed from the table's schema (BigQuery needs a type even for NULL)."""
    types = {f["name"]: f"ARRAY<{f['type']}>" if f["mode"] == "REPEATED" else f["type"] for f in bigquery_schema(table)}
    return [(name, types[name], value) for name, value in values.items()]


def query_parameter(name: str, kind: str, value: Any):
    """A google-cloud-bigquery query parameter from (name, type, value)."""
    from google.cloud import bigquery

    if kind.startswith("ARRAY<"):
        return bigquery.ArrayQueryParameter(name, kind[len("ARRAY<") : -1], value)
    return bigquery.ScalarQueryParameter(name, kind, value)


class BigQueryJobs:
    """The calls a landing makes: create tables, load Parquet, query (default dataset: the warehouse's), and run
    statements as one transaction. The client is made on the worker that lands."""

    def __init__(self, project: str, dataset: str):
        self.project, self.dataset = project, dataset

    @functools.cached_property
    def client(self):
        from google.cloud import bigquery

        return bigquery.Client(project=self.project)

    def create_table(self, resource: dict[str, Any]) -> None:
        from google.cloud import bigquery

        self.client.create_table(bigquery.Table.from_api_repr(resource), exists_ok=True)

    def load(self, configuration: dict[str, Any]) -> None:
        from google.cloud import bigquery

        load = configuration["load"]
        destination = bigquery.TableReference.from_api_repr(load["destinationTable"])
        self.client.load_table_from_uri(
            load["sourceUris"], destination, job_config=bigquery.LoadJobConfig.from_api_repr(configuration)
        ).result()

    def query(self, sql: str, parameters: Sequence[Parameter] = ()) -> pa.Table:
        from google.cloud import bigquery

        config = bigquery.QueryJobConfig(
            default_dataset=f"{self.project}.{self.dataset}", query_parameters=[query_parameter(*p) for p in parameters]
        )
        return self.client.query(sql, job_config=config).result().to_arrow()

    def script(self, statements: Sequence[str]) -> None:
        self.query("BEGIN TRANSACTION;\n" + ";\n".join(statements) + ";\nCOMMIT TRANSACTION;")


class BigQueryWarehouse:
    """The warehouse in a BigQuery dataset and its Parquet copy on GCS (`jobs`: what runs the SQL and loads)."""

    def __init__(self, project: str, dataset: str, parquet_dir: str, jobs: Any = None):
        self.project, self.dataset, self.parquet_dir = project, dataset, parquet_dir
        self.jobs = jobs or BigQueryJobs(project, dataset)

    @classmethod
    def of(cls, dataset: str, parquet_dir: str) -> BigQueryWarehouse:
        """From `--bigquery_dataset PROJECT:DATASET` (or PROJECT.DATASET)."""
        project, _, name = dataset.replace(":", ".").partition(".")
        if not (project and re.fullmatch(r"\w+", name)):
            raise UsageError(f"--bigquery_dataset {dataset}: expected PROJECT:DATASET")
        return cls(project, name, parquet_dir)

    def __repr__(self) -> str:
        return f"BigQuery {self.project}:{self.dataset}, Parquet {self.parquet_dir}"

    def start_run(
        self,
        run_id: str,
        mode: str,
        sources: Sequence[str],
        inputs: Sequence[str],
        runner: str,
        started_at: dt.datetime,
    ) -> None:
        """Creates every table that is missing and records the run as running."""
        for table in ALL_TABLES:
            self.jobs.create_table(table_resource(self.project, self.dataset, table))
        values = start_values(run_id, mode, sources, inputs, runner, started_at)
        self.jobs.query(
            f"INSERT INTO {RUNS} ({', '.join(values)}) VALUES ({', '.join('@' + n for n in values)})",
            typed_parameters(RUNS, values),
        )

    def finish_run(
        self, run_id: str, status: str, counts: RunCounts, ended_at: dt.datetime | None, message: str | None = None
    ) -> None:
        values = end_values(status, counts, ended_at, message)
        self.jobs.query(
            f"UPDATE {RUNS} SET {', '.join(f'{n} = @{n}' for n in values)} WHERE run_id = @run_id",
            typed_parameters(RUNS, {**values, "run_id": run_id}),
        )

    def land(
        self,
        batch: StagedBatch,
        run_id: str,
        landed_at: dt.datetime,
        policy: Policy,
        duplicates_land_nothing: bool = False,
        validation: Any = None,
    ) -> Landed:
        """Slice, commit, push, export, validate (the module's docstring); one committer at a time."""
        landing = _Landing(self, run_id, FileSystems.join(batch.staging_dir, f"landing-{run_id}"))
        with batch.local() as batch, duckdb.connect() as con:
            ensure_tables(con)
            try:
                landing.push(con, _batch_keys_and_files(con, batch))
                for table, sql in slice_queries(landing.table).items():
                    _insert(con, table, self.jobs.query(sql))
                result = commit_batch(con, batch, run_id, landed_at, policy, duplicates_land_nothing)
                landing.push(con, DELTAS)
                batch.counts.merge(result.counts)
                landed = Landed(batch.counts, batch.files)
                landed.export_error = self._export(con, landing, result, landed_at)
                if validation is not None:
                    from pipelines.validation import validate_landed_batch

                    landed.validation_rows = validate_landed_batch(con, run_id, validation)
                landing.push(con, AFTER_EXPORT)
                return landed
            finally:
                landing.drop()

    def _export(
        self, con: duckdb.DuckDBPyConnection, landing: _Landing, result: Any, landed_at: dt.datetime
    ) -> str | None:
        """The Parquet copy, as locally; a partition rewritten whole is first read whole from BigQuery (the slice
        holds only the batch's rows). Returns the error that left the copy lagging, if any."""
        try:
            plan = plan_export(
                con, self.parquet_dir, result.changed_sources, result.removed_sources, result.stale_partitions
            )
            for (table, source), rewrite in plan.items():
                if rewrite:
                    con.execute(f"DELETE FROM {table} WHERE source = ?", [source])
                    _insert(
                        con,
                        table,
                        self.jobs.query(
                            f"SELECT {_columns(table)} FROM {table} WHERE source = @source",
                            [("source", "STRING", source)],
                        ),
                    )
            export(con, self.parquet_dir, plan, landed_at)
        except Exception as err:  # noqa: BLE001 - the rows are committed; the partition stays dirty for next time
            log.warning(
                "the Parquet copy could not be written (%s); it is rewritten at the next landing", type(err).__name__
            )
            return error_line(err)
        return None


class _Landing:
    """One landing's own tables in the dataset (`_landing_<run>_<name>`) and their Parquet files."""

    def __init__(self, warehouse: BigQueryWarehouse, run_id: str, folder: str):
        self.warehouse, self.run_id, self.folder = warehouse, run_id, folder
        self.tag = re.sub(r"\W", "_", run_id)
        self.loaded: set[str] = set()

    def table(self, name: str) -> str:
        return f"_landing_{self.tag}_{name}"

    def push(self, con: duckdb.DuckDBPyConnection, queries: Mapping[str, str]) -> None:
        """Loads each non-empty query result into its landing table, then applies those that change the warehouse
        in one transaction."""
        w = self.warehouse
        names = []
        for name, sql in queries.items():
            rows = con.execute(sql, {"run_id": self.run_id} if "$run_id" in sql else {}).fetch_arrow_table()
            if not rows.num_rows:
                continue
            if name not in LANDING_COLUMNS:
                rows = rows.select(list(field_names(name))).cast(arrow_schema(name))
            uri = FileSystems.join(self.folder, f"{name}.parquet")
            with FileSystems.create(uri) as fh:
                pq.write_table(rows, fh)
            w.jobs.load(load_configuration(w.project, w.dataset, self.table(name), name, [uri]))
            self.loaded.add(name)
            names.append(name)
        statements = push_statements(self.table, names)
        if statements:
            w.jobs.script(statements)

    def drop(self) -> None:
        if self.loaded:
            self.warehouse.jobs.query(";\n".join(f"DROP TABLE IF EXISTS {self.table(n)}" for n in sorted(self.loaded)))


def _batch_keys_and_files(con: duckdb.DuckDBPyConnection, batch: StagedBatch) -> dict[str, str]:
    """Registers the batch's patient keys (staged versions, deletions, Observations) and files on the slice's
    connection; returns the queries that read them."""
    stage_view(con, batch, PATIENTS_KIND, "_batch_patients")
    stage_view(con, batch, DELETED_KIND, "_batch_deleted")
    con.register(
        "_batch_observation_keys",
        pa.table(
            {
                "source": pa.array([o["source"] for o in batch.observations], pa.string()),
                "patient_id": pa.array([o["patient_key"] for o in batch.observations], pa.string()),
            }
        ),
    )
    con.register(
        "_batch_files",
        pa.table(
            {
                "source": pa.array([f.source for f in batch.files], pa.string()),
                "input_file": pa.array([f.input_file for f in batch.files], pa.string()),
                "content_sha256": pa.array([f.content_sha256 for f in batch.files], pa.string()),
                "object_generation": pa.array([f.generation for f in batch.files], pa.string()),
            }
        ),
    )
    return {
        KEYS: "SELECT source, patient_id FROM _batch_patients UNION SELECT source, patient_id FROM _batch_deleted "
        "UNION SELECT source, patient_id FROM _batch_observation_keys",
        FILES: "SELECT * FROM _batch_files",
    }


def _insert(con: duckdb.DuckDBPyConnection, table: str, rows: pa.Table) -> None:
    con.register("_pulled", rows)
    con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _pulled")
    con.unregister("_pulled")
