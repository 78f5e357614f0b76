"""Inputs that must not hang or fail a run: FIFOs, dangling symlinks, symlink loops, a busy warehouse."""

import datetime as dt
import json
import os
import subprocess
import sys
import time

import duckdb
import pytest

from pipelines.errors import UsageError, WarehouseBusy
from pipelines.jobs.inputs import list_inputs
from pipelines.jobs.landing import LandingOptions, Run, land_files
from pipelines.jobs.watch import WatchState, new_files
from pipelines.warehouse import ensure_tables
from tests.conftest import query

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def odd_folder(tmp_path):
    folder = tmp_path / "feed"
    folder.mkdir()
    (folder / "ok.json").write_text(json.dumps({"resourceType": "Patient", "id": "ok"}))
    os.mkfifo(folder / "pipe.json")  # opening it would block forever
    os.symlink(folder / "gone.json", folder / "dangling.json")
    os.symlink("loop.json", folder / "loop.json")  # a symlink loop
    return folder


@pytest.mark.slow
def test_fifos_are_skipped_and_broken_links_are_dead_letters(odd_folder, tmp_path, run_cli):
    warehouse = tmp_path / "w.duckdb"
    code, _, err = run_cli("run", "--input", odd_folder, "--warehouse", warehouse)
    assert code == 0, err
    assert "not regular files" in err
    assert query(warehouse, "SELECT patient_id FROM patient_demographics") == [("ok",)]
    rejects = query(warehouse, "SELECT regexp_extract(input_file, '[^/]+$'), reason FROM rejected_records ORDER BY 1")
    assert rejects == [("dangling.json", "unreadable_file"), ("loop.json", "unreadable_file")]
    assert query(warehouse, "SELECT records_in, rejected, status FROM runs") == [(3, 2, "succeeded")]
    ledger = query(warehouse, "SELECT regexp_extract(input_file, '[^/]+$'), status FROM ingested_files ORDER BY 1")
    assert ledger == [("ok.json", "landed")]


def test_watch_never_lists_a_fifo(odd_folder):
    listed = list_inputs([str(odd_folder)], "s")
    assert [os.path.basename(f.path) for f in new_files(listed, WatchState())] == ["ok.json"]
    assert listed.skipped == 1


def test_a_named_fifo_is_bad_usage(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(UsageError, match="not a regular file"):
        list_inputs([str(tmp_path / "pipe")], None)


def test_files_of_one_watch_poll_land_in_arrival_order(tmp_path):
    for name, gender in (("z-first.json", "female"), ("a-second.json", "male")):
        (tmp_path / name).write_text(json.dumps({"resourceType": "Patient", "id": "x", "gender": gender}))
        time.sleep(0.05)
    files = new_files(list_inputs([str(tmp_path)], "s"), WatchState())
    assert [os.path.basename(f.path) for f in files] == ["z-first.json", "a-second.json"]
    warehouse = tmp_path / "w.duckdb"
    now = dt.datetime.now(dt.UTC)
    land_files(
        files, Run("run-1", "watch", now), LandingOptions(str(warehouse), str(tmp_path / "pq"), validation=None), now
    )
    assert query(warehouse, "SELECT administrative_gender FROM patient_demographics") == [("male",)]


def _hold_read_only(warehouse) -> subprocess.Popen:
    """An analyst in another process holding the warehouse open read-only (blocks every writer)."""
    code = (
        f"import duckdb, time; c = duckdb.connect({str(warehouse)!r}, read_only=True); print('open', flush=True); "
        "time.sleep(60)"
    )
    reader = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert reader.stdout.readline().strip() == "open"
    return reader


@pytest.mark.slow
def test_a_batch_that_cannot_commit_adds_nothing_to_the_run_counts(tmp_path):
    (tmp_path / "p.json").write_text(json.dumps({"resourceType": "Patient", "id": "p"}))
    warehouse = tmp_path / "w.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        ensure_tables(con)
    opts = LandingOptions(str(warehouse), str(tmp_path / "pq"), validation=None, lock_wait=0.5)
    files = list_inputs([str(tmp_path / "p.json")], "s").files
    run = Run("r", "watch", dt.datetime.now(dt.UTC))
    reader = _hold_read_only(warehouse)
    try:
        with pytest.raises(WarehouseBusy, match="busy"):
            land_files(files, run, opts, dt.datetime.now(dt.UTC))
    finally:
        reader.kill()
        reader.wait()
    assert run.counts.records_in == 0 and run.counts.files_read == 0
    land_files(files, run, opts, dt.datetime.now(dt.UTC))
    assert (run.counts.records_in, run.counts.patients_landed, run.counts.files_read) == (1, 1, 1)


@pytest.mark.slow
def test_a_reader_during_the_window_validation_of_watch_postpones_the_window(tmp_path):
    """Issue 12.10: the busy warehouse is retried at the next window, watch goes on (it used to exit 2)."""
    from dataclasses import replace

    from pipelines.jobs.watch import _validate_window
    from pipelines.validation import ValidationConfig

    (tmp_path / "p.json").write_text(json.dumps({"resourceType": "Patient", "id": "p"}))
    warehouse = tmp_path / "w.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        ensure_tables(con)
    opts = LandingOptions(str(warehouse), str(tmp_path / "pq"), validation=ValidationConfig(), lock_wait=0.5)
    start = dt.datetime.now(dt.UTC)
    run = Run("w", "watch", start)
    land_files(list_inputs([str(tmp_path / "p.json")], "s").files, run, replace(opts, validation=None), start)
    end = start + dt.timedelta(minutes=1)
    reader = _hold_read_only(warehouse)
    try:
        assert _validate_window(opts, run, "s", start, end) == start  # not validated: this window again later
    finally:
        reader.kill()
        reader.wait()
    assert run.validation_rows == []
    assert _validate_window(opts, run, "s", start, end) == end
    assert {(r["scope"], r["element_count"]) for r in run.validation_rows} == {("window", 1)}
    assert query(warehouse, "SELECT DISTINCT scope, window_start FROM validation_results") == [("window", start)]
