"""Inputs that must not hang or fail a run: FIFOs, dangling symlinks, symlink loops, a busy warehouse."""
import json
import os
import time

import duckdb
import pytest

from pipelines.errors import UsageError
from pipelines.run import LandingOptions, land_files, list_input_files
from pipelines.warehouse import ensure_tables
from pipelines.warehouse.legacy import RunCounts
from pipelines.watch import WatchState, classify_new_files, scan_drop_folder
from tests.conftest import query

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def odd_folder(tmp_path):
    folder = tmp_path / "feed"
    folder.mkdir()
    (folder / "ok.json").write_text(json.dumps({"resourceType": "Patient", "id": "ok"}))
    os.mkfifo(folder / "pipe.json")                      # opening it would block forever
    os.symlink(folder / "gone.json", folder / "dangling.json")
    os.symlink("loop.json", folder / "loop.json")        # a symlink loop
    return folder


def test_fifos_are_skipped_and_broken_links_are_dead_letters(odd_folder, tmp_path, run_cli):
    warehouse = tmp_path / "w.duckdb"
    code, _, err = run_cli("run", "--input", odd_folder, "--warehouse", warehouse)
    assert code == 0, err
    assert "not regular files" in err
    assert query(warehouse, "SELECT patient_id FROM patient_demographics") == [("ok",)]
    rejects = query(warehouse, "SELECT regexp_extract(input_file, '[^/]+$'), reason FROM rejected_records ORDER BY 1")
    assert rejects == [("dangling.json", "unreadable_file"), ("loop.json", "unreadable_file")]
    ledger = query(warehouse, "SELECT regexp_extract(input_file, '[^/]+$'), status FROM ingested_files ORDER BY 1")
    assert ledger == [("dangling.json", "unreadable"), ("loop.json", "unreadable"), ("ok.json", "landed")]


def test_watch_never_opens_a_fifo_and_records_a_vanished_file(odd_folder):
    state = WatchState()
    to_land, ledger = classify_new_files(scan_drop_folder(odd_folder), "s", state)
    names = sorted(os.path.basename(p) for p, _ in to_land)
    assert names == ["dangling.json", "loop.json", "ok.json"]
    assert {os.path.basename(e["input_file"]): e["status"] for e in ledger} == {
        "dangling.json": "unreadable", "loop.json": "unreadable", "ok.json": "landed"}
    # an empty file later is not a "duplicate" of a file that could not be read
    (odd_folder / "empty.json").write_text("")
    to_land, ledger = classify_new_files(scan_drop_folder(odd_folder), "s", state)
    assert [(os.path.basename(e["input_file"]), e["status"]) for e in ledger] == [("empty.json", "landed")]


def test_a_named_fifo_is_bad_usage(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(UsageError, match="not a regular file"):
        list_input_files([str(tmp_path / "pipe")], None)


def test_files_of_one_watch_poll_land_in_arrival_order(tmp_path):
    for name, gender in (("z-first.json", "female"), ("a-second.json", "male")):
        (tmp_path / name).write_text(json.dumps({"resourceType": "Patient", "id": "x", "gender": gender}))
        time.sleep(0.05)
    to_land, _ = classify_new_files(scan_drop_folder(tmp_path), "s", WatchState())
    assert [os.path.basename(p) for p, _ in to_land] == ["z-first.json", "a-second.json"]
    warehouse = tmp_path / "w.duckdb"
    land_files(to_land, "run-1", __import__("datetime").datetime.now(__import__("datetime").timezone.utc),
               LandingOptions(str(warehouse), str(tmp_path / "pq"), validation=None), RunCounts())
    assert query(warehouse, "SELECT administrative_gender FROM patient_demographics") == [("male",)]


def test_a_batch_that_cannot_commit_adds_nothing_to_the_run_counts(tmp_path):
    import datetime as dt

    (tmp_path / "p.json").write_text(json.dumps({"resourceType": "Patient", "id": "p"}))
    warehouse = tmp_path / "w.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        ensure_tables(con)
    opts = LandingOptions(str(warehouse), str(tmp_path / "pq"), validation=None)
    files, counts = [(str(tmp_path / "p.json"), "s")], RunCounts()
    reader = duckdb.connect(str(warehouse), read_only=True)  # an analyst holding the file open
    try:
        with pytest.raises(UsageError, match="cannot open warehouse"):
            land_files(files, "r", dt.datetime.now(dt.timezone.utc), opts, counts)
    finally:
        reader.close()
    assert counts.records_in == 0 and counts.files_read == 0
    land_files(files, "r", dt.datetime.now(dt.timezone.utc), opts, counts)
    assert (counts.records_in, counts.patients_landed, counts.files_read) == (1, 1, 1)
