"""The Beam stages on their own: staging files named per input and chunk, and monitoring counters."""
import datetime as dt
import json
from pathlib import Path

import apache_beam as beam
from apache_beam.internal import pickler
from apache_beam.metrics.metric import MetricsFilter

from pipelines.beam.batch import (BatchSettings, ReadAndNormalizeFileFn, WriteStagingFileFn, build_batch_pipeline,
                                  file_key)


def _counters(result) -> dict[str, int]:
    return {c.key.metric.name: c.committed for c in result.metrics().query(MetricsFilter())["counters"]}


def test_batch_stages_write_staging_files_and_count_everything(sample_feed, tmp_path):
    files = sorted((str(p), "samples") for p in Path(sample_feed).iterdir())
    settings = BatchSettings(run_id="r1", ingested_at=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
                             staging_dir=str(tmp_path / "staging"), chunk_size=50)
    pipeline = beam.Pipeline(runner="FnApiRunner")
    build_batch_pipeline(pipeline, files, settings)
    result = pipeline.run()
    result.wait_until_finish()

    stats = [json.loads(p.read_text()) for p in (tmp_path / "staging" / "stats").iterdir()]
    assert len(stats) == len(files)
    counters = _counters(result)
    assert counters["files_read"] == len(files)
    assert counters["records_in"] == sum(s["records_in"] for s in stats)
    assert counters["patients_landed"] == sum(s["patients_landed"] for s in stats) == 279
    assert counters["rejected_invalid_json"] == 2 and counters["rejected_empty_file"] == 1
    landed_by_category = {k.removeprefix("landed_"): v for k, v in counters.items() if k.startswith("landed_")}
    assert sum(landed_by_category.values()) == 279
    assert "MULTIRACIAL_MULTIETHNIC" in landed_by_category
    # chunks of 50: Patient.ndjson's 121 patients are three files, named by input and chunk
    key = file_key(str(Path(sample_feed) / "Patient.ndjson"))
    assert sorted(p.name for p in (tmp_path / "staging" / "patients").glob(f"{key}-*")) == [
        f"{key}-00000.parquet", f"{key}-00001.parquet", f"{key}-00002.parquet"]


def test_stages_pickle_for_distributed_runners(tmp_path):
    settings = BatchSettings(run_id="r", ingested_at=dt.datetime.now(dt.timezone.utc), staging_dir=str(tmp_path))
    for fn in (ReadAndNormalizeFileFn(settings), WriteStagingFileFn(str(tmp_path))):
        clone = pickler.loads(pickler.dumps(fn))
        assert type(clone) is type(fn)
