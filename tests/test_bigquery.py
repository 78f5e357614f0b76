"""What the BigQuery sink sends, checked where BigQuery cannot run: table resources, load configurations, query
parameters (as google-cloud-bigquery reads them), and SQL built from the same schemas as the DuckDB warehouse.
Its statements run on DuckDB in tests/test_dataflow.py (the same rows as `demographics run`)."""

import datetime as dt
import re

import pytest
from google.cloud import bigquery

from pipelines.beam.bigquery import (
    DELTAS,
    FILES,
    KEYS,
    LANDING_COLUMNS,
    REPLACED,
    TABLE_LAYOUT,
    BigQueryWarehouse,
    load_configuration,
    push_statements,
    query_parameter,
    slice_queries,
    table_resource,
    typed_parameters,
)
from pipelines.errors import UsageError
from pipelines.tables import ALL_TABLES, PATIENTS, RUNS, bigquery_schema, field_names
from pipelines.warehouse.runs import RunCounts, end_values, start_values


def landing(name: str) -> str:
    return f"_landing_r1_{name}"


@pytest.mark.parametrize("table", ALL_TABLES)
def test_every_table_is_created_from_its_schema_with_its_partitions_and_clustering(table):
    resource = table_resource("demo-project", "demographics", table)
    parsed = bigquery.Table.from_api_repr(resource)
    assert (parsed.project, parsed.dataset_id, parsed.table_id) == ("demo-project", "demographics", table)
    assert [f.name for f in parsed.schema] == list(field_names(table))
    types = {f["name"]: (f["type"], f["mode"]) for f in bigquery_schema(table)}
    partition, clustering = TABLE_LAYOUT[table]
    if partition:
        assert parsed.time_partitioning.type_ == "DAY" and parsed.time_partitioning.field == partition
        assert types[partition][0] == "TIMESTAMP"  # a write time, never a time read from a file
    else:
        assert parsed.time_partitioning is None
    assert (parsed.clustering_fields or []) == list(clustering)
    assert all(types[c][1] != "REPEATED" for c in clustering)


def test_the_patients_schema_says_what_duckdb_says():
    fields = {f["name"]: (f["type"], f["mode"]) for f in bigquery_schema(PATIENTS)}
    assert fields["omb2024_categories"] == ("STRING", "REPEATED")
    assert fields["birth_date"] == ("DATE", "NULLABLE")
    assert fields["last_updated"] == ("TIMESTAMP", "NULLABLE")
    assert fields["patient_id"] == ("STRING", "REQUIRED")
    assert fields["unmapped_text_only"] == ("BOOL", "REQUIRED")


@pytest.mark.parametrize("name", [PATIENTS, REPLACED, KEYS])
def test_a_load_replaces_a_landing_table_from_parquet_with_the_schema(name):
    uris = ["gs://work/tmp/demographics-staging/job/w/landing-r1/x.parquet"]
    configuration = load_configuration("demo-project", "demographics", landing(name), name, uris)
    config = bigquery.LoadJobConfig.from_api_repr(configuration)
    assert config.source_format == "PARQUET"
    assert config.write_disposition == "WRITE_TRUNCATE" and config.create_disposition == "CREATE_IF_NEEDED"
    assert config.parquet_options.enable_list_inference is True  # Parquet lists become REPEATED columns
    expected = LANDING_COLUMNS.get(name) or field_names(name)
    assert [f.name for f in config.schema] == list(expected)
    load = configuration["load"]
    assert load["sourceUris"] == uris
    assert load["destinationTable"] == {
        "projectId": "demo-project",
        "datasetId": "demographics",
        "tableId": landing(name),
    }


def _selected(sql: str) -> list[str]:
    return [c.strip().removeprefix("t.") for c in re.match(r"SELECT (.*?) FROM", sql).group(1).split(",")]


def test_the_slice_reads_every_column_of_each_table_it_reads():
    queries = slice_queries(landing)
    for table, sql in queries.items():
        assert _selected(sql) == list(field_names(table)), table
        assert f"FROM {table} AS t WHERE" in sql
    assert landing(KEYS) in queries[PATIENTS] and landing(FILES) in queries["ingested_files"]


def test_the_push_replaces_keys_then_inserts_every_column_from_the_landing_tables():
    statements = push_statements(landing, [REPLACED, PATIENTS, "deleted_patients", "parquet_partitions"])
    assert statements[0].startswith(f"DELETE FROM {PATIENTS} AS t WHERE EXISTS (SELECT 1 FROM {landing(REPLACED)}")
    assert statements[1].startswith("DELETE FROM parquet_partitions AS t")
    inserts = [s for s in statements if s.startswith("INSERT")]
    assert [s.split()[2] for s in inserts] == [PATIENTS, "deleted_patients", "parquet_partitions"]
    for statement in inserts:
        table = statement.split()[2]
        columns = ", ".join(field_names(table))
        assert statement == f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {landing(table)}"
    assert push_statements(landing, [KEYS, FILES]) == []  # read tables change nothing
    assert set(DELTAS) - {REPLACED} <= set(ALL_TABLES)


def test_run_rows_are_typed_parameters_google_cloud_bigquery_accepts():
    started = dt.datetime(2026, 11, 23, tzinfo=dt.UTC)
    values = {
        **start_values("r1", "stream", ["qhio"], ["projects/p/subscriptions/s"], "DataflowRunner", started),
        **end_values("succeeded", RunCounts(records_in=3, patients_landed=3), None, None),
    }
    parameters = typed_parameters(RUNS, values)
    kinds = {name: kind for name, kind, _ in parameters}
    assert kinds["sources"] == "ARRAY<STRING>" and kinds["started_at"] == "TIMESTAMP"
    assert kinds["ended_at"] == "TIMESTAMP" and kinds["records_in"] == "INT64" and kinds["pid"] == "INT64"
    assert set(kinds) <= set(field_names(RUNS))
    api = {p["name"]: p for p in (query_parameter(*p).to_api_repr() for p in parameters)}
    assert api["sources"]["parameterType"] == {"type": "ARRAY", "arrayType": {"type": "STRING"}}
    assert api["ended_at"]["parameterType"]["type"] == "TIMESTAMP"  # NULL, yet typed


@pytest.mark.parametrize(
    "flag, expected",
    [
        ("demo-project:demographics", ("demo-project", "demographics")),
        ("demo-project.demographics", ("demo-project", "demographics")),
    ],
)
def test_the_dataset_flag_names_project_and_dataset(flag, expected):
    sink = BigQueryWarehouse.of(flag, "gs://b/parquet")
    assert (sink.project, sink.dataset) == expected


@pytest.mark.parametrize("flag", ["demographics", "p:", "p:a-b"])
def test_a_dataset_flag_without_project_or_with_a_bad_name_is_refused(flag):
    with pytest.raises(UsageError, match="expected PROJECT:DATASET"):
        BigQueryWarehouse.of(flag, "gs://b/parquet")
