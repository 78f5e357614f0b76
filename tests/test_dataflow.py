"""The Dataflow job without a cloud: its graph run on the local runners against an emulated GCS (a real GCS API
server, `gcp-storage-emulator`), with a TestStream of OBJECT_FINALIZE notifications standing in for Pub/Sub, must
land exactly the rows `demographics run` lands for the same files; plus its command line and its graph built with
Dataflow's options."""

import dataclasses
import datetime as dt
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import apache_beam as beam
import duckdb
import pytest
from apache_beam.io.gcp.pubsub import PubsubMessage
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_stream import TestStream
from apache_beam.transforms.window import TimestampedValue

from pipelines.beam import dataflow
from pipelines.beam.bigquery import BigQueryWarehouse
from pipelines.beam.gcs_inputs import input_file_from_notification
from pipelines.warehouse.export import partition_dir_name, read_latest_sql

TestStream.__test__ = False
REPO = Path(__file__).resolve().parent.parent
SOURCE = "qhio-ñ 100%"  # non-ASCII, a space and `%`: the partition folder name must be the same on both paths
CDCREC = "urn:oid:2.16.840.1.113883.6.238"
# Lineage that belongs to one run and not to the data: which run (and when) landed a row, when its file first
# arrived (the local run has no arrival: it is its landing; a notification carries the object's event time), when
# it was read (the dead letters' rejected_at, and the time of a deletion whose file gives none: contract 2).
RUN_LINEAGE = ("run_id", "ingested_at", "first_arrived_at", "rejected_at")


@pytest.fixture(scope="session")
def gcs():
    """An in-process GCS emulator; Beam's GCS client reaches it anonymously (no credential lookup, which stalls
    for half a minute without a cloud). Yields a storage client on it."""
    from gcp_storage_emulator.server import create_server

    logging.getLogger("gcp_storage_emulator").setLevel(logging.ERROR)
    server = create_server("127.0.0.1", 0, in_memory=True)
    server._api.daemon = True  # its thread must not keep a failed session alive
    server.start()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{server._api._httpd.server_address[1]}")
        patch.setenv("NO_GCE_CHECK", "true")
        patch.setenv("GCE_METADATA_HOST", "127.0.0.1:9")
        from apache_beam.internal.gcp import auth

        patch.setattr(auth._Credentials, "_credentials_init", True)
        patch.setattr(auth._Credentials, "_credentials", None)
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        yield storage.Client(project="test-project", credentials=AnonymousCredentials())
    server.stop()


def _race_observation(obs_id: str, subject: str, code: str) -> dict:
    return {
        "resourceType": "Observation",
        "id": obs_id,
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "72826-1"}]},
        "subject": {"reference": subject},
        "valueCodeableConcept": {"coding": [{"system": CDCREC, "code": code}]},
    }


@pytest.fixture(scope="module")
def feed(sample_feed, tmp_path_factory) -> Path:
    """The sample feed plus race Observations in a file of their own: one for a Patient of Patient.ndjson, one
    for a Patient that comes in the last file (on Dataflow: a later window)."""
    folder = tmp_path_factory.mktemp("parity") / "feed"
    shutil.copytree(sample_feed, folder)
    first_patient = json.loads((folder / "Patient.ndjson").read_text().splitlines()[0])["id"]
    (folder / "0-observations.ndjson").write_text(
        "".join(
            json.dumps(o) + "\n"
            for o in (
                _race_observation("obs-1", f"Patient/{first_patient}", "2028-9"),
                _race_observation("obs-2", "Patient/comes-later", "2076-8"),
            )
        )
    )
    (folder / "zz-comes-later.json").write_text(
        json.dumps({"resourceType": "Patient", "id": "comes-later", "meta": {"lastUpdated": "2026-11-01T00:00:00Z"}})
    )
    return folder


@pytest.fixture(scope="module")
def local_run(feed, tmp_path_factory):
    """`demographics run` on the feed: the reference every Dataflow variant is compared with."""
    from pipelines.cli import main

    warehouse = tmp_path_factory.mktemp("local") / "warehouse.duckdb"
    assert main(["run", "--input", str(feed), "--warehouse", str(warehouse), "--source", SOURCE]) == 0
    return warehouse, warehouse.with_name("warehouse_parquet"), str(feed) + "/"


def _bucket(gcs):
    return gcs.create_bucket(f"b-{uuid.uuid4().hex[:12]}")


def _upload(bucket, feed: Path) -> list:
    """The feed's files under gs://BUCKET/feed/, in name order (so their generations grow in that order)."""
    blobs = []
    for path in sorted(feed.iterdir()):
        blob = bucket.blob(f"feed/{path.name}")
        blob.upload_from_filename(str(path))
        blobs.append(blob)
    return blobs


def finalize(blob, event_time: str = "2026-11-23T10:00:00Z") -> PubsubMessage:
    """The notification GCS publishes for a new object (payload format JSON_API_V1)."""
    attributes = {
        "eventType": "OBJECT_FINALIZE",
        "bucketId": blob.bucket.name,
        "objectId": blob.name,
        "objectGeneration": str(blob.generation),
        "eventTime": event_time,
        "payloadFormat": "JSON_API_V1",
        "notificationConfig": "projects/_/buckets/b/notificationConfigs/1",
    }
    data = json.dumps({"bucket": blob.bucket.name, "name": blob.name, "generation": str(blob.generation)})
    return PubsubMessage(data.encode(), attributes)


def _job_args(bucket, warehouse: Path, *extra: str) -> list[str]:
    return [
        "--source",
        SOURCE,
        "--warehouse",
        str(warehouse),
        "--parquet_dir",
        f"gs://{bucket.name}/parquet",
        "--temp_location",
        f"gs://{bucket.name}/tmp",
        *extra,
    ]


def run_stream(bucket, warehouse: Path, windows: list[list[PubsubMessage]], sink=None) -> None:
    """The streaming graph on BundleBasedDirectRunner, a TestStream of notifications in 60-second windows standing
    in for Pub/Sub; landing into the DuckDB file `warehouse`, or into `sink`."""
    args, beam_args = dataflow._parse(
        _job_args(
            bucket,
            warehouse,
            "--runner",
            "BundleBasedDirectRunner",
            "--subscription",
            "projects/p/subscriptions/s",
            "--window_seconds",
            "60",
        )
    )
    options = PipelineOptions(beam_args)
    job = dataflow.plan_job(args, options)
    if sink is not None:
        job = dataclasses.replace(job, landing=dataclasses.replace(job.landing, sink=sink))
    events = TestStream().advance_watermark_to(0)
    for i, messages in enumerate(windows):
        events = events.add_elements([TimestampedValue(m, 60 * i + 1) for m in messages]).advance_watermark_to(
            60 * (i + 1)
        )
    pipeline = beam.Pipeline(options=options)
    dataflow.build_graph(pipeline, job, pipeline | events.advance_watermark_to_infinity())
    pipeline.run().wait_until_finish()


@pytest.fixture(scope="module")
def streamed(gcs, feed, tmp_path_factory):
    """The feed delivered as notifications in two windows (the Observations in the first, the Patient they point
    at in the second), one notification delivered twice, landed into a DuckDB file with its Parquet on GCS."""
    bucket = _bucket(gcs)
    blobs = _upload(bucket, feed)
    half = len(blobs) // 2
    warehouse = tmp_path_factory.mktemp("stream") / "warehouse.duckdb"
    run_stream(
        bucket,
        warehouse,
        [[finalize(b) for b in blobs[:half]], [finalize(b) for b in blobs[half:]] + [finalize(blobs[0])]],
    )
    return warehouse, bucket


def _rows(warehouse: Path, table: str, folder: str, order: str) -> list[tuple]:
    """A table's rows with the run's lineage left out and input_file made relative to the feed's folder."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        columns = [
            c
            for (c,) in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = ? ORDER BY ordinal_position",
                [table],
            ).fetchall()
        ]
        kept = [
            f"replace(input_file, '{folder}', '') AS input_file" if c == "input_file" else f'"{c}"'
            for c in columns
            if c not in RUN_LINEAGE and not (table == "deleted_patients" and c == "deleted_at")
        ]
        return con.execute(f"SELECT {', '.join(kept)} FROM {table} ORDER BY {order}").fetchall()
    finally:
        con.close()


def _ledger(warehouse: Path, folder: str) -> list[tuple]:
    """What the ledger says of each file landed: its content, size and counts."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(f"""SELECT replace(input_file, '{folder}', ''), content_sha256, size_bytes, records_in,
                                      patients_landed, rejected, other_resources, deletions
                               FROM ingested_files WHERE status = 'landed' ORDER BY 1""").fetchall()
    finally:
        con.close()


def _parquet_rows(parquet_dir: Path, folder: str) -> list[tuple]:
    """The Parquet copy of patient_demographics read back with its reading rule (the latest file per key), the
    run's lineage left out as in `_rows`."""
    from pipelines.tables import PATIENTS, field_names

    kept = [
        f"replace(input_file, '{folder}', '')" if c == "input_file" else f'"{c}"'
        for c in field_names(PATIENTS)
        if c not in RUN_LINEAGE
    ]
    return (
        duckdb.connect()
        .execute(f"SELECT {', '.join(kept)} FROM ({read_latest_sql(str(parquet_dir))}) ORDER BY source, patient_id")
        .fetchall()
    )


def _download(gcs, bucket, prefix: str, target: Path) -> Path:
    for listed in gcs.list_blobs(bucket.name, prefix=prefix + "/"):
        path = target / listed.name[len(prefix) + 1 :]
        path.parent.mkdir(parents=True, exist_ok=True)
        # by name: the emulator's listed download links lose the `%` escapes of a name
        bucket.blob(listed.name).download_to_filename(str(path))
    return target


def test_one_partition_naming_rule_percent_encodes_the_source():
    assert partition_dir_name(SOURCE) == "source=qhio-%C3%B1%20100%25"


def _partition_folders(parquet_dir: Path) -> set[str]:
    return {f"{table.name}/{partition.name}" for table in parquet_dir.iterdir() for partition in table.iterdir()}


def assert_same_landing(local_run, warehouse: Path, gcs, bucket, tmp_path: Path) -> None:
    """Row by row, the tables and the Parquet copy of the Dataflow landing equal those of `demographics run`."""
    local, local_parquet, local_folder = local_run
    gcs_folder = f"gs://{bucket.name}/feed/"
    for table, order in (
        ("patient_demographics", "source, patient_id"),
        ("rejected_records", "input_file, position, reason"),
        ("deleted_patients", "source, patient_id, input_file"),
    ):
        expected = _rows(local, table, local_folder, order)
        assert expected, table
        assert _rows(warehouse, table, gcs_folder, order) == expected, table
    assert _ledger(warehouse, gcs_folder) == _ledger(local, local_folder)
    copy = _download(gcs, bucket, "parquet", tmp_path / "parquet")
    assert (
        _partition_folders(copy)
        == _partition_folders(local_parquet)
        == {
            f"{table}/{partition_dir_name(SOURCE)}"
            for table in ("patient_demographics", "rejected_records", "deleted_patients")
        }
    )
    assert _parquet_rows(copy, gcs_folder) == _parquet_rows(local_parquet, local_folder)


@pytest.mark.slow
def test_streaming_job_lands_exactly_the_rows_of_demographics_run(local_run, streamed, gcs, tmp_path):
    warehouse, bucket = streamed
    assert_same_landing(local_run, warehouse, gcs, bucket, tmp_path)
    runs = (
        duckdb.connect(str(warehouse), read_only=True)
        .execute("SELECT mode, status, runner, sum(records_in) OVER (), sum(files_read) OVER () FROM runs")
        .fetchall()
    )
    assert len(runs) == 2  # one landing per window, each recorded as a run
    local_counts = (
        duckdb.connect(str(local_run[0]), read_only=True).execute("SELECT records_in, files_read FROM runs").fetchone()
    )
    assert {r[:3] for r in runs} == {("stream", "succeeded", "BundleBasedDirectRunner")}
    assert runs[0][3:] == local_counts  # the redelivery in the second window was dropped before it was read
    validated = (
        duckdb.connect(str(warehouse), read_only=True)
        .execute("SELECT count(DISTINCT run_id), bool_and(scope = 'source') FROM validation_results")
        .fetchone()
    )
    assert validated == (2, True)  # the GX suites on what each window landed


@pytest.mark.slow
def test_observations_of_an_earlier_window_reach_the_patient_of_a_later_one(streamed):
    warehouse, _ = streamed
    con = duckdb.connect(str(warehouse), read_only=True)
    assert con.execute(
        "SELECT omb2024_category, race_source_format FROM patient_demographics WHERE patient_id = 'comes-later'"
    ).fetchall() == [("NHPI", "observation")]
    landed_in = con.execute(
        "SELECT r.run_id = o.run_id FROM patient_demographics p, demographic_observations o, runs r "
        "WHERE p.patient_id = 'comes-later' AND o.patient_key = p.patient_id "
        "AND r.run_id = p.run_id"
    ).fetchall()
    assert landed_in == [(False,)]  # the Observation was kept by an earlier landing than the Patient's


@pytest.mark.slow
def test_batch_job_over_a_glob_lands_exactly_the_rows_of_demographics_run(local_run, gcs, feed, tmp_path):
    bucket = _bucket(gcs)
    _upload(bucket, feed)
    warehouse = tmp_path / "warehouse.duckdb"
    code = dataflow.main(
        _job_args(bucket, warehouse, "--runner", "FnApiRunner", "--input", f"gs://{bucket.name}/feed/**")
    )
    assert code == 0
    assert_same_landing(local_run, warehouse, gcs, bucket, tmp_path)
    con = duckdb.connect(str(warehouse), read_only=True)
    assert con.execute("SELECT mode, status FROM runs").fetchall() == [("batch", "succeeded")]
    assert con.execute("SELECT count(*) FROM ingested_files WHERE object_generation IS NULL").fetchone() == (0,)


@pytest.mark.slow
def test_a_notification_delivered_again_lands_nothing_and_an_overwrite_is_new_data(streamed, gcs, tmp_path):
    """Exactly once per object generation: a restarted job (its redelivery filter is gone) gets every notification
    again; the ledger knows each (object, generation) and lands none of them. A new generation of one object
    (overwritten with other content) lands."""
    warehouse, bucket = streamed
    copy = tmp_path / "warehouse.duckdb"
    shutil.copy(warehouse, copy)

    def table(sql):
        return duckdb.connect(str(copy), read_only=True).execute(sql).fetchall()

    before = table("SELECT * FROM patient_demographics ORDER BY source, patient_id")
    blobs = sorted(gcs.list_blobs(bucket.name, prefix="feed/"), key=lambda b: b.name)
    blob = bucket.blob("feed/single-patient.json")
    patient = json.loads(blob.download_as_bytes())
    run_stream(bucket, copy, [[finalize(b) for b in blobs]])
    assert table("SELECT * FROM patient_demographics ORDER BY source, patient_id") == before
    again = table(
        "SELECT status, count(*), count(DISTINCT object_generation), bool_and(duplicate_of = input_file) "
        "FROM ingested_files WHERE run_id = (SELECT max(run_id) FROM runs) GROUP BY status"
    )
    assert again == [("duplicate", len(blobs), len(blobs), True)]

    patient["meta"]["lastUpdated"] = "2026-11-28T00:00:00Z"
    patient["gender"] = "unknown"
    blob.upload_from_string(json.dumps(patient))
    run_stream(bucket, copy, [[finalize(blob)]])
    assert table(
        f"SELECT administrative_gender, last_updated FROM patient_demographics WHERE patient_id = '{patient['id']}'"
    ) == [("unknown", dt.datetime(2026, 11, 28, tzinfo=dt.UTC))]
    assert table(
        "SELECT count(DISTINCT object_generation) FROM ingested_files "
        "WHERE input_file LIKE '%/single-patient.json' AND status = 'landed'"
    ) == [(2,)]


class BigQueryOnDuckDB:
    """Runs what the BigQuery sink sends (its SQL, its loads of Parquet) on a DuckDB file standing in for the
    dataset: BigQuery cannot run here, and every statement the sink writes is plain SQL both engines run."""

    def __init__(self, path: str):
        self.path = path

    def _run(self, work):
        con = duckdb.connect(self.path)
        try:
            return work(con)
        finally:
            con.close()

    def create_table(self, resource: dict) -> None:
        from pipelines.tables import duckdb_ddl

        self._run(lambda con: con.execute(duckdb_ddl(resource["tableReference"]["tableId"])))

    def load(self, configuration: dict) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq
        from apache_beam.io.filesystems import FileSystems

        load = configuration["load"]
        assert (load["sourceFormat"], load["writeDisposition"]) == ("PARQUET", "WRITE_TRUNCATE")
        loaded = pa.concat_tables([pq.read_table(FileSystems.open(uri)) for uri in load["sourceUris"]])
        table = load["destinationTable"]["tableId"]
        self._run(
            lambda con: con.register("_loaded", loaded).execute(
                f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM _loaded"
            )
        )

    def query(self, sql: str, parameters=()):
        import pyarrow as pa

        def work(con):
            result = con.execute(re.sub(r"@(\w+)", r"$\1", sql), {name: value for name, _, value in parameters})
            return result.fetch_arrow_table() if result.description else pa.table({})

        return self._run(work)

    def script(self, statements) -> None:
        def work(con):
            con.execute("BEGIN TRANSACTION")
            for statement in statements:
                con.execute(statement)
            con.execute("COMMIT TRANSACTION")

        self._run(work)


@pytest.mark.slow
def test_the_bigquery_sink_lands_the_same_rows_when_its_sql_runs_on_duckdb(local_run, gcs, feed, tmp_path):
    """The production sink's slice, commit, push, export and validation over two windows, its statements run on
    DuckDB instead of BigQuery; only the BigQuery client calls are left out."""
    bucket = _bucket(gcs)
    blobs = _upload(bucket, feed)
    half = len(blobs) // 2
    dataset = tmp_path / "dataset.duckdb"
    sink = BigQueryWarehouse(
        "test-project", "demographics", f"gs://{bucket.name}/parquet", BigQueryOnDuckDB(str(dataset))
    )
    run_stream(
        bucket,
        tmp_path / "unused.duckdb",
        [[finalize(b) for b in blobs[:half]], [finalize(b) for b in blobs[half:]]],
        sink,
    )
    assert_same_landing(local_run, dataset, gcs, bucket, tmp_path)
    con = duckdb.connect(str(dataset), read_only=True)
    assert con.execute("SELECT mode, status FROM runs").fetchall() == [("stream", "succeeded")] * 2
    assert con.execute("SELECT count(*) FROM validation_results").fetchone()[0] > 0
    assert con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name LIKE '_landing%'"
    ).fetchone() == (0,)


def test_the_ledger_lands_an_object_generation_once_and_a_new_generation_again():
    from pipelines.staging import InputFileResult
    from pipelines.warehouse.commit import decide_files
    from pipelines.warehouse.connection import ensure_tables

    landed_at = dt.datetime(2026, 11, 23, tzinfo=dt.UTC)
    con = duckdb.connect()
    ensure_tables(con)
    con.execute(
        "INSERT INTO ingested_files (source, input_file, content_sha256, object_generation, status, "
        "landed_at, run_id) VALUES ('q', 'gs://b/f.json', 'aaa', '7', 'landed', ?, 'r0')",
        [landed_at],
    )

    def delivery(generation: str, content: str) -> InputFileResult:
        return InputFileResult("q", "gs://b/f.json", "gs://b/f.json", 0, generation, content, 3, {})

    again, overwrite = delivery("7", "aaa"), delivery("8", "bbb")
    decide_files(con, [again, overwrite], landed_at, duplicates_land_nothing=False)  # even in a batch job
    assert (again.status, again.duplicate_of) == ("duplicate", "gs://b/f.json")
    assert overwrite.status == "landed"


NOTIFICATION = {
    "eventType": "OBJECT_FINALIZE",
    "bucketId": "drops",
    "objectId": "qhio/2026/bundle-1.json",
    "objectGeneration": "1700000000000001",
    "eventTime": "2026-11-23T10:00:00.123456Z",
}


@pytest.mark.parametrize(
    "attributes, data, expected",
    [
        (NOTIFICATION, None, ("gs://drops/qhio/2026/bundle-1.json", "1700000000000001")),
        ({**NOTIFICATION, "eventType": "OBJECT_DELETE"}, None, None),
        ({**NOTIFICATION, "eventType": "OBJECT_METADATA_UPDATE"}, None, None),
        ({k: v for k, v in NOTIFICATION.items() if k != "eventType"}, None, None),
        ({**NOTIFICATION, "objectId": "qhio/.bundle-1.json"}, None, None),  # hidden
        ({**NOTIFICATION, "objectId": "qhio/bundle-1.json.part"}, None, None),  # still being written
        ({**NOTIFICATION, "objectId": "qhio/bundle-1.json.tmp"}, None, None),
        ({**NOTIFICATION, "objectId": "qhio/.staging/bundle-1.json"}, None, None),  # hidden folder
        ({**NOTIFICATION, "objectId": "qhio/2026/"}, None, None),  # folder placeholder
        # republished by hand: only the JSON_API_V1 payload names the object
        (
            {"eventType": "OBJECT_FINALIZE"},
            b'{"bucket": "drops", "name": "q/x.ndjson", "generation": "7"}',
            ("gs://drops/q/x.ndjson", "7"),
        ),
        ({"eventType": "OBJECT_FINALIZE"}, b"not json", None),
        ({"eventType": "OBJECT_FINALIZE"}, b'{"bucket": 3, "name": "x.json"}', None),
    ],
)
def test_a_notification_names_its_object_and_generation(attributes, data, expected):
    file = input_file_from_notification(attributes, data, "qhio")
    assert (None if file is None else (file.path, file.generation)) == expected


def test_a_notification_keeps_its_arrival_and_orders_by_generation():
    file = input_file_from_notification(NOTIFICATION, None, "qhio")
    assert file.arrived_at == dt.datetime(2026, 11, 23, 10, 0, 0, 123456, tzinfo=dt.UTC)
    assert (file.order, file.source, file.name) == (1700000000000001, "qhio", "gs://drops/qhio/2026/bundle-1.json")


DATAFLOW = [
    "--runner",
    "DataflowRunner",
    "--project",
    "demo-project",
    "--region",
    "us-central1",
    "--temp_location",
    "gs://demo-bucket/tmp",
]
BIGQUERY = ["--bigquery_dataset", "demo-project:demographics", "--parquet_dir", "gs://demo-bucket/parquet"]
STREAMING = [*DATAFLOW, "--subscription", "projects/demo-project/subscriptions/drops", "--source", "qhio-a", *BIGQUERY]
BATCH = [*DATAFLOW, "--input", "gs://demo-bucket/feed/**", "--source", "qhio-a", *BIGQUERY]


def _module(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    """`python -m pipelines.beam.dataflow ARGS` as a user types it (from another folder)."""
    return subprocess.run(
        [sys.executable, "-m", "pipelines.beam.dataflow", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=300,
    )


@pytest.mark.slow
def test_help_lists_the_job_options(tmp_path):
    result = _module(tmp_path, "--help")
    assert result.returncode == 0, result.stderr
    for flag in (
        "--subscription",
        "--input",
        "--source",
        "--bigquery_dataset",
        "--warehouse",
        "--parquet_dir",
        "--window_seconds",
        "--strict_fhir",
        "--completeness_goal",
        "--no_validation",
        "--dry_run",
        "--temp_location",
    ):
        assert flag in result.stdout, flag


@pytest.mark.slow
def test_a_dry_run_translates_the_job_for_dataflow_and_sends_nothing(tmp_path):
    result = _module(tmp_path, *STREAMING, "--setup_file", str(REPO / "setup.py"), "--dry_run")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "dry run: translated for Dataflow, not sent" in result.stdout
    assert "ReadNotifications -> InputFiles -> Windows -> ReadFhirFiles -> WriteStaged -> LandWindows" in result.stdout
    assert "BigQuery demo-project:demographics, Parquet gs://demo-bucket/parquet" in result.stdout
    assert "submitted" not in (result.stdout + result.stderr).lower()


def test_a_dry_run_on_a_local_runner_builds_and_runs_nothing(tmp_path, capsys):
    warehouse = tmp_path / "w.duckdb"
    code = dataflow.main(
        [
            "--runner",
            "FnApiRunner",
            "--input",
            str(tmp_path / "*.json"),
            "--source",
            "a",
            "--warehouse",
            str(warehouse),
            "--temp_location",
            str(tmp_path / "tmp"),
            "--dry_run",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and "dry run: built, not run" in out and "submitted" not in out
    assert not warehouse.exists() and not (tmp_path / "tmp").exists()


@pytest.mark.slow
def test_the_module_imports_neither_the_cli_nor_the_run_and_watch_jobs(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, pipelines.beam.dataflow; print(sorted(m for m in "
            "('pipelines.cli', 'pipelines.jobs.run', 'pipelines.jobs.watch') if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=120,
    )
    assert result.stdout.strip() == "[]", result.stderr


def _without(args: list[str], flag: str) -> list[str]:
    i = args.index(flag)
    return args[:i] + args[i + 2 :]


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "the following arguments are required: --source"),
        (["--source", "a", *BIGQUERY], "one of the arguments --subscription --input is required"),
        ([*BATCH, "--subscription", "projects/p/subscriptions/s"], "not allowed with argument"),
        ([*BATCH, "--sourc", "x"], "unrecognized arguments: --sourc x"),
        ([*BATCH, "--dry_run", "True"], "unrecognized arguments: True"),  # Beam's own flag takes a value; ours does not
        ([*BATCH, "--runner", "NoSuchRunner"], "--runner NoSuchRunner"),
        (_without(BATCH, "--temp_location"), "--temp_location is required"),
        ([*BATCH, "--streaming"], "--input is a batch input"),
        (
            [*_without(STREAMING, "--bigquery_dataset"), "--warehouse", "w.duckdb"],
            "--warehouse (a DuckDB file) needs a local --runner",
        ),
        (
            [*_without(BATCH, "--parquet_dir"), "--parquet_dir", "/tmp/p"],
            "--bigquery_dataset needs --parquet_dir gs://",
        ),
        ([*_without(BATCH, "--bigquery_dataset"), "--bigquery_dataset", "demographics"], "expected PROJECT:DATASET"),
        ([*BATCH, "--window_seconds", "0"], "--window_seconds must be greater than 0"),
        ([*BATCH, "--window_seconds", "often"], "invalid int value"),
        ([*BATCH, "--completeness_goal", "2"], "--completeness_goal"),
        ([*_without(BATCH, "--source"), "--source", "a/b"], "--source NAME"),
    ],
)
def test_bad_flags_are_one_line_errors(args, message, capsys):
    assert dataflow.main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{dataflow.PROG}: error: ") and message in err and err.count("\n") == 1, err


def _visit(pipeline: beam.Pipeline) -> list:
    found = []

    class Collect(beam.pipeline.PipelineVisitor):
        def enter_composite_transform(self, node):
            self.visit_transform(node)

        def visit_transform(self, node):
            if node.transform is not None:
                found.append(node)

    pipeline.visit(Collect())
    return found


@pytest.mark.parametrize(
    "args, steps",
    [
        (
            STREAMING,
            {
                "ReadNotifications",
                "InputFiles/ParseNotifications",
                "InputFiles/DropRedeliveries",
                "Windows",
                "ReadFhirFiles/ReadAndNormalize",
                "WriteStaged/Write_patients",
                "LandWindows/GatherWindow",
                "LandWindows/Land",
            },
        ),
        (
            BATCH,
            {"InputFiles/ListInputFiles", "ReadFhirFiles/SpreadTasks", "WriteStaged/StagedFiles", "LandWindows/Land"},
        ),
    ],
    ids=["streaming", "batch"],
)
def test_the_graph_builds_with_dataflow_options_and_every_step_pickles(args, steps):
    """What reaches a Dataflow worker must survive cloudpickle; stable labels let `--update` replace a job."""
    from apache_beam.internal import pickler

    parsed, beam_args = dataflow._parse(args)
    options = PipelineOptions(beam_args)
    pipeline = beam.Pipeline(options=PipelineOptions([]))
    dataflow.build_graph(pipeline, dataflow.plan_job(parsed, options))
    nodes = _visit(pipeline)
    for node in nodes:
        pickler.loads(pickler.dumps(node.transform))
        if isinstance(node.transform, beam.ParDo):
            pickler.loads(pickler.dumps(node.transform.fn))
    assert steps <= {node.full_label for node in nodes}
    beam.Pipeline.from_runner_api(pipeline.to_runner_api(), pipeline.runner, pipeline._options)


def test_setup_file_ships_the_package_schemas_and_reference_data_to_workers(tmp_path):
    """What `--setup_file ./setup.py` gives Dataflow workers: a wheel-installable sdist with every package."""
    import tarfile

    from apache_beam.runners.portability.stager import Stager

    sdist = Stager._build_setup_package(str(REPO / "setup.py"), str(tmp_path))
    with tarfile.open(sdist) as tar:
        names = tar.getnames()
    for wanted in (
        "schemas/patient_demographics.avsc",
        "expectations/completeness.json",
        "pipelines/beam/__init__.py",
        "pipelines/beam/bigquery.py",
        "pipelines/normalize/data/",
        "setup.py",
    ):
        assert any(wanted in name for name in names), wanted
