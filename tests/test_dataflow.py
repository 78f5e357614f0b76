"""The Dataflow path without a cloud: notification parsing, option checks, the graph built with Dataflow options,
every transform pickled, and the streaming Parquet sink and the batch variant run locally."""
import datetime as dt
import importlib.util
import tarfile
import tempfile
from pathlib import Path

import apache_beam as beam
import pyarrow.dataset as pads
import pytest
from apache_beam.internal import pickler
from apache_beam.io.gcp.pubsub import PubsubMessage
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing import test_stream
from apache_beam.transforms import window

from pipelines.beam.dataflow import (DataflowDemographicsOptions, ParseObjectFinalizeFn, WriteParquetBySource,
                                     build_dataflow_pipeline, check_options, gcs_path_from_notification)
from pipelines.errors import UsageError
from pipelines.tables import PATIENTS as PATIENT_TABLE, validate_row

REPO = Path(__file__).resolve().parent.parent
SUBSCRIPTION = "projects/demo-project/subscriptions/qhio-drops"
# Beam validates these before building: a project id of 6+ characters, a bucket name of 3+.
DATAFLOW_ARGS = ["--runner", "DataflowRunner", "--project", "demo-project", "--region", "us-central1",
                 "--temp_location", "gs://demo-bucket/tmp", "--setup_file", str(REPO / "setup.py"),
                 # skips Beam's soft-delete check of the bucket, which retries for minutes without credentials
                 "--dry_run", "True"]
STREAMING_ARGS = DATAFLOW_ARGS + ["--streaming", "--subscription", SUBSCRIPTION, "--source", "qhio-a",
                                  "--parquet_prefix", "gs://demo-bucket/warehouse"]
BATCH_ARGS = DATAFLOW_ARGS + ["--input", "gs://demo-bucket/feeds/qhio-a/**", "--source", "qhio-a",
                              "--parquet_prefix", "gs://demo-bucket/warehouse"]
BIGQUERY_ARGS = ["--bigquery_dataset", "demo-project:demographics"]

# WriteToBigQuery cannot even be constructed without apitools (Beam's gcp extra); submitting needs the Dataflow
# client. Only the tests that build those skip, with the reason.
needs_bigquery = pytest.mark.skipif(importlib.util.find_spec("apitools") is None,
                                    reason="WriteToBigQuery needs google-apitools (apache-beam[gcp])")
needs_dataflow_client = pytest.mark.skipif(
    importlib.util.find_spec("apitools") is None or importlib.util.find_spec("google.cloud.dataflow") is None,
    reason="DataflowRunner submission needs google-cloud-dataflow-client and google-apitools (apache-beam[gcp])")


@pytest.fixture(autouse=True)
def _temp_dirs_in_tmp_path(tmp_path, monkeypatch):
    """Beam makes a temp dir per Pipeline (and DataflowRunner a staging dir) and removes it only after a run."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))


FINALIZE = {"eventType": "OBJECT_FINALIZE", "bucketId": "drops", "objectId": "qhio-a/2026/bundle-1.json",
            "objectGeneration": "1700000000000001"}


@pytest.mark.parametrize("attributes, data, expected", [
    (FINALIZE, None, "gs://drops/qhio-a/2026/bundle-1.json"),
    ({**FINALIZE, "objectId": "Patient.ndjson.gz"}, b"", "gs://drops/Patient.ndjson.gz"),
    ({**FINALIZE, "eventType": "OBJECT_DELETE"}, None, None),
    ({**FINALIZE, "eventType": "OBJECT_METADATA_UPDATE"}, None, None),
    ({**FINALIZE, "eventType": "OBJECT_ARCHIVE"}, None, None),
    ({k: v for k, v in FINALIZE.items() if k != "eventType"}, None, None),
    ({**FINALIZE, "objectId": "qhio-a/.bundle-1.json"}, None, None),  # hidden
    ({**FINALIZE, "objectId": "qhio-a/bundle-1.json.part"}, None, None),  # still being written
    ({**FINALIZE, "objectId": "qhio-a/bundle-1.json.tmp"}, None, None),
    ({**FINALIZE, "objectId": "qhio-a/.staging/bundle-1.json"}, None, None),  # hidden folder
    ({**FINALIZE, "objectId": "qhio-a/2026/"}, None, None),  # folder placeholder
    ({**FINALIZE, "objectId": ""}, None, None),
    # a replay published by hand: only the JSON_API_V1 payload names the object
    ({"eventType": "OBJECT_FINALIZE"}, b'{"bucket": "drops", "name": "qhio-a/x.ndjson"}', "gs://drops/qhio-a/x.ndjson"),
    ({"eventType": "OBJECT_FINALIZE"}, b'{"bucket": "drops", "name": "qhio-a/x.tmp"}', None),
    ({"eventType": "OBJECT_FINALIZE"}, b"not json", None),
    ({"eventType": "OBJECT_FINALIZE"}, b'["drops", "x.json"]', None),
    ({"eventType": "OBJECT_FINALIZE"}, b'{"bucket": 3, "name": "x.json"}', None),
])
def test_gcs_path_from_notification(attributes, data, expected):
    assert gcs_path_from_notification(attributes, data) == expected


def test_parse_fn_keeps_the_generation_so_that_an_overwrite_is_not_a_redelivery():
    fn = ParseObjectFinalizeFn()
    assert list(fn.process(PubsubMessage(b"", FINALIZE))) == [("gs://drops/qhio-a/2026/bundle-1.json",
                                                                 "1700000000000001")]
    assert list(fn.process(PubsubMessage(b"", {**FINALIZE, "eventType": "OBJECT_DELETE"}))) == []


@pytest.mark.parametrize("args, message", [
    (["--source", "a", "--parquet_prefix", "gs://b/p"], "exactly one of --subscription"),
    (["--input", "gs://b/x/**", "--subscription", SUBSCRIPTION, "--source", "a", "--parquet_prefix", "gs://b/p"],
     "exactly one of --subscription"),
    (["--input", "gs://b/x/**", "--parquet_prefix", "gs://b/p"], "--source NAME is required"),
    (["--input", "gs://b/x/**", "--source", "a/b", "--parquet_prefix", "gs://b/p"], "--source NAME is required"),
    (["--input", "gs://b/x/**", "--source", "a"], "--bigquery_dataset and/or --parquet_prefix"),
    (["--input", "gs://b/x/**", "--source", "a", "--parquet_prefix", "gs://b/p", "--window_seconds", "0"],
     "--window_seconds"),
])
def test_bad_options_fail_before_anything_is_built(args, message):
    with pytest.raises(UsageError, match=message):
        check_options(PipelineOptions(args).view_as(DataflowDemographicsOptions))


def _build(args: list[str]) -> beam.Pipeline:
    options = PipelineOptions(args)
    pipeline = beam.Pipeline(options=options)
    build_dataflow_pipeline(pipeline, options)
    return pipeline


def _applied_transforms(pipeline: beam.Pipeline) -> list:
    found = []

    class Collect(beam.pipeline.PipelineVisitor):
        def enter_composite_transform(self, node):
            self.visit_transform(node)

        def visit_transform(self, node):
            if node.transform is not None:
                found.append(node)

    pipeline.visit(Collect())
    return found


def _assert_graph_pickles(pipeline: beam.Pipeline, must_contain: set[str]) -> None:
    """Every PTransform and DoFn survives cloudpickle, as it must to reach a worker; the labels are there."""
    nodes = _applied_transforms(pipeline)
    for node in nodes:
        pickler.loads(pickler.dumps(node.transform))
        if isinstance(node.transform, beam.ParDo):
            pickler.loads(pickler.dumps(node.transform.fn))
    labels = {node.full_label for node in nodes}
    assert must_contain <= labels, must_contain - labels
    beam.Pipeline.from_runner_api(pipeline.to_runner_api(), pipeline.runner, pipeline._options)


def test_streaming_graph_builds_with_dataflow_options_and_pickles():
    pipeline = _build(STREAMING_ARGS)
    _assert_graph_pickles(pipeline, {
        "ReadGcsNotifications/ReadFromPubSub", "ReadGcsNotifications/ParseObjectFinalize",
        "ReadGcsNotifications/DropRedeliveries", "ReadFhirFiles/ReadAndNormalize", "SplitRows",
        "Window_patient_demographics", "WriteParquet_patient_demographics/WriteToFiles",
        "WriteParquet_rejected_records/WriteToFiles"})


def test_batch_graph_builds_with_dataflow_options_and_pickles():
    pipeline = _build(BATCH_ARGS)
    _assert_graph_pickles(pipeline, {"MatchGcsFiles/MatchFiles", "ReadFhirFiles/SpreadFiles",
                                     "ReadFhirFiles/ReadAndNormalize", "SplitRows",
                                     "WriteParquet_patient_demographics/WriteToFiles"})


@needs_bigquery
@pytest.mark.parametrize("args", [STREAMING_ARGS, BATCH_ARGS], ids=["streaming", "batch"])
def test_graph_with_bigquery_builds_and_pickles(args):
    pipeline = _build(args + BIGQUERY_ARGS)
    _assert_graph_pickles(pipeline, {"WriteBigQuery_patient_demographics_versions",
                                     "WriteBigQuery_rejected_records"})


@needs_dataflow_client
def test_dataflow_runner_translates_and_stages_the_package_in_a_dry_run():
    """DataflowRunner does all but the submission: overrides, job proto, sdist of setup.py as workflow.tar.gz."""
    result = _build(STREAMING_ARGS + BIGQUERY_ARGS).run()
    assert str(result.state).endswith("DONE")
    staged = {dep.role_payload for env in result.job.proto_pipeline.components.environments.values()
              for dep in env.dependencies}
    assert any(b"workflow.tar.gz" in payload for payload in staged)


def test_setup_file_packages_schemas_and_reference_data_for_workers(tmp_path):
    """What `--setup_file ./setup.py` ships: the sdist Dataflow workers pip-install."""
    from apache_beam.runners.portability.stager import Stager

    sdist = Stager._build_setup_package(str(REPO / "setup.py"), str(tmp_path))
    with tarfile.open(sdist) as tar:
        names = tar.getnames()
    for wanted in ("schemas/patient_demographics.avsc", "schemas/rejected_records.avsc", "pipelines/beam/dataflow.py",
                   "pipelines/normalize/data/", "setup.py", "README.md"):
        assert any(wanted in name for name in names), wanted


def _patient(source: str, patient_id: str, ingested_at: dt.datetime) -> dict:
    row = {"source": source, "patient_id": patient_id, "race_ethnicity_status": "unknown", "omb2024_categories": [],
           "omb2024_category": "UNKNOWN", "hedis_race": "Unknown", "hedis_ethnicity": "Unknown",
           "race_detailed_codes": [], "ethnicity_detailed_codes": [], "race_text": None, "ethnicity_text": None,
           "race_source_format": "absent", "mapping_warnings": [], "fhir_invalid_elements": [],
           "preferred_language": None, "birth_date": dt.date(1980, 1, 2), "birth_year": 1980,
           "administrative_gender": None, "postal_code": None, "state": None, "last_updated": None,
           "ingested_at": ingested_at, "input_file": "gs://drops/x.ndjson", "input_position": "line 1",
           "run_id": "r", "record_hash": "h", "unmapped_text_only": False, "first_arrived_at": ingested_at}
    assert validate_row(row, PATIENT_TABLE)
    return row


def test_streaming_parquet_sink_writes_every_row_per_window_and_source(tmp_path):
    """TestStream over two windows and two sources: every row comes back, in source= partitions."""
    start = dt.datetime(2026, 11, 23, tzinfo=dt.timezone.utc)
    events = test_stream.TestStream()
    expected = []
    for second in (1, 2, 3, 11, 12):
        rows = [_patient(source, f"{source}-{second}", start) for source in ("qhio-a", "qhio-b")]
        expected += rows
        events = events.advance_watermark_to(start.timestamp() + second).add_elements(
            [window.TimestampedValue(r, start.timestamp() + second) for r in rows])
    events = events.advance_watermark_to_infinity()
    options = PipelineOptions(["--runner", "BundleBasedDirectRunner", "--streaming",
                               "--temp_location", str(tmp_path / "tmp")])
    with beam.Pipeline(options=options) as p:
        (p | events | beam.WindowInto(window.FixedWindows(10))
         | WriteParquetBySource(str(tmp_path / "out"), PATIENT_TABLE))
    folder = tmp_path / "out" / PATIENT_TABLE
    assert sorted(d.name for d in folder.iterdir()) == ["source=qhio-a", "source=qhio-b"]
    assert all(len(list(d.glob("*.parquet"))) == 2 for d in folder.iterdir())  # one file per window
    table = pads.dataset(str(folder), format="parquet", partitioning="hive").to_table()
    assert sorted(table.column("patient_id").to_pylist()) == sorted(r["patient_id"] for r in expected)
    assert table.column("ingested_at").type.tz == "UTC"


def test_batch_variant_runs_locally_on_the_sample_feed(sample_feed, tmp_path):
    """The Dataflow batch graph (Parquet sink only) on FnApiRunner: the same rows the local run reads."""
    pipeline = _build(["--runner", "FnApiRunner", "--input", f"{sample_feed}/**", "--source", "samples",
                       "--parquet_prefix", str(tmp_path / "out"), "--no_strict_fhir"])
    pipeline.run().wait_until_finish()
    patients = pads.dataset(str(tmp_path / "out" / PATIENT_TABLE), format="parquet", partitioning="hive").to_table()
    rejected = pads.dataset(str(tmp_path / "out" / "rejected_records"), format="parquet",
                            partitioning="hive").to_table()
    assert patients.num_rows == 279  # every version; the BigQuery view picks the latest
    assert "_ordinal" not in patients.column_names
    assert set(patients.column("source").to_pylist()) == {"samples"}
    assert sorted(rejected.column("reason").to_pylist()) == sorted([
        "binary_content", "bundle_entry_without_resource", "empty_file", "invalid_json", "invalid_json",
        "not_fhir_resource", "not_fhir_resource", "patient_without_id"])
