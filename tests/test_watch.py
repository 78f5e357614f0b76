"""`demographics watch` as a user runs it: a subprocess, files renamed into a drop folder, kills and restarts."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from pipelines.samples import make_patient

pytestmark = pytest.mark.timeout(300)


def _drop(folder: Path, name: str, data: bytes) -> None:
    """What a QHIO feed does: write under a temp name, then rename."""
    tmp = folder / f".{name}.part"
    tmp.write_bytes(data)
    os.rename(tmp, folder / name)


def _ndjson(prefix: str, count: int, seed: int) -> bytes:
    rng = random.Random(seed)
    return b"".join(
        json.dumps(make_patient(rng, f"{prefix}-{i}", "2026-10-01T00:00:00Z")).encode() + b"\n" for i in range(count)
    )


def _read(warehouse: Path, sql: str):
    """A read-only query, as an analyst would run while the watcher is up (fails if the watcher held the lock)."""
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _wait_for(predicate, timeout=60.0, interval=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except duckdb.Error:  # the watcher is committing right now, or the file does not exist yet
            pass
        time.sleep(interval)
    return False


def _landed(warehouse: Path, name: str) -> bool:
    return bool(_read(warehouse, f"SELECT count(*) FROM ingested_files WHERE input_file LIKE '%/{name}'")[0][0])


def _start(drop: Path, warehouse: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipelines.cli",
            "watch",
            "--input",
            str(drop),
            "--warehouse",
            str(warehouse),
            "--poll-interval",
            "0.2",
            "--source",
            "qhio",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_watch_lands_live_survives_sigkill_and_never_duplicates(tmp_path):
    drop, warehouse = tmp_path / "drop", tmp_path / "w.duckdb"
    drop.mkdir()
    watcher = _start(drop, warehouse)
    try:
        assert _wait_for(lambda: _read(warehouse, "SELECT count(*) FROM runs")[0][0] == 1)
        _drop(drop, "a.ndjson", _ndjson("a", 20, 1))
        assert _wait_for(lambda: _landed(warehouse, "a.ndjson")), "a.ndjson did not land while watching"
        _drop(drop, "broken.json", b'{"resourceType": "Bundle", "entry": [')
        _drop(drop, "b.ndjson", _ndjson("b", 10, 2))
        (drop / "ignored.json.part").write_bytes(b"half written")
        assert _wait_for(lambda: _landed(warehouse, "b.ndjson") and _landed(warehouse, "broken.json"))
        _drop(drop, "a-again.ndjson", _ndjson("a", 20, 1))  # the same content under another name
        assert _wait_for(lambda: _landed(warehouse, "a-again.ndjson"))
        assert _read(warehouse, "SELECT count(*) FROM patient_demographics")[0][0] == 30
        # a big file, and the watcher killed while it is reading it
        _drop(drop, "big.ndjson", _ndjson("big", 30000, 3))
        time.sleep(1.0)
    finally:
        watcher.send_signal(signal.SIGKILL)
        watcher.wait(30)
    assert not _landed(warehouse, "big.ndjson"), "big.ndjson landed before the kill: the test proves nothing"
    assert _read(warehouse, "SELECT count(*) FROM patient_demographics")[0][0] == 30

    restarted = _start(drop, warehouse)
    try:
        assert _wait_for(lambda: _landed(warehouse, "big.ndjson"), timeout=180)
        _drop(drop, "c.ndjson", _ndjson("c", 5, 4))
        assert _wait_for(lambda: _landed(warehouse, "c.ndjson"))
    finally:
        restarted.send_signal(signal.SIGTERM)
        out, err = restarted.communicate(timeout=120)
    assert restarted.returncode == 0, err[-2000:]
    assert "stopped (SIGTERM)" in out

    assert _read(warehouse, "SELECT count(*), count(DISTINCT patient_id) FROM patient_demographics")[0] == (
        30035,
        30035,
    )
    ledger = _read(warehouse, "SELECT regexp_extract(input_file, '[^/]+$'), status FROM ingested_files ORDER BY 1")
    assert ledger == [
        ("a-again.ndjson", "duplicate"),
        ("a.ndjson", "landed"),
        ("b.ndjson", "landed"),
        ("big.ndjson", "landed"),
        ("broken.json", "landed"),
        ("c.ndjson", "landed"),
    ]
    assert _read(warehouse, "SELECT reason FROM rejected_records") == [("invalid_json",)]
    runs = _read(
        warehouse,
        "SELECT mode, status, records_in, patients_landed + rejected + other_resources FROM runs ORDER BY started_at",
    )
    # the killed one never ended: the restart marked it interrupted
    assert [r[:2] for r in runs] == [("watch", "interrupted"), ("watch", "stopped")]
    assert all(r[2] == r[3] for r in runs)
    assert runs[1][2] == 30005  # the restart read big.ndjson and c.ndjson, nothing landed before the kill
    lags = _read(warehouse, "SELECT count(*) FROM ingested_files WHERE lag_seconds >= 0")[0][0]
    assert lags == 6
    # the clean stop validated what the restarted watcher landed in its (last) window
    windows = _read(warehouse, "SELECT DISTINCT scope, source, run_id FROM validation_results")
    assert windows == [("window", "qhio", _read(warehouse, "SELECT max(run_id) FROM runs")[0][0])]


@pytest.mark.slow
def test_a_changed_file_under_the_same_name_is_new_data(tmp_path):
    drop, warehouse = tmp_path / "drop", tmp_path / "w.duckdb"
    drop.mkdir()
    watcher = _start(drop, warehouse, "--no-validation")
    try:
        patient = {
            "resourceType": "Patient",
            "id": "x",
            "gender": "female",
            "meta": {"lastUpdated": "2026-01-01T00:00:00Z"},
        }
        _drop(drop, "feed.json", json.dumps(patient).encode())
        assert _wait_for(
            lambda: _read(warehouse, "SELECT administrative_gender FROM patient_demographics") == [("female",)]
        )
        patient.update(gender="male", meta={"lastUpdated": "2026-02-01T00:00:00Z"})
        _drop(drop, "feed.json", json.dumps(patient).encode())
        assert _wait_for(
            lambda: _read(warehouse, "SELECT administrative_gender FROM patient_demographics") == [("male",)]
        )
    finally:
        watcher.send_signal(signal.SIGINT)  # Ctrl-C: a clean stop
        out, err = watcher.communicate(timeout=60)
    assert watcher.returncode == 0, err[-2000:]
    assert "stopped (SIGINT)" in out
    assert _read(warehouse, "SELECT count(*) FROM ingested_files WHERE status = 'landed'")[0][0] == 2


@pytest.mark.slow
def test_stop_after_ends_the_watch_and_bad_input_is_one_line(tmp_path):
    drop = tmp_path / "qhio-west"
    drop.mkdir()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipelines.cli",
            "watch",
            "--input",
            str(drop),
            "--warehouse",
            str(tmp_path / "w.duckdb"),
            "--stop-after",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0 and "stopped (stop-after)" in result.stdout
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "watch", "--input", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1


def _watch_once(drop: Path, warehouse: Path, **kwargs):
    """One in-process watch that polls until it has nothing new, then stops."""
    from pipelines.jobs.landing import LandingOptions
    from pipelines.jobs.watch import watch

    opts = LandingOptions(str(warehouse), str(warehouse.with_name("pq")), validation=None)
    return watch(str(drop), opts, kwargs.pop("source", "qhio"), poll_interval=0.05, stop_after=0.5, **kwargs)


@pytest.mark.slow
def test_each_content_lands_once_across_names_polls_and_restarts(tmp_path):
    drop, warehouse = tmp_path / "drop", tmp_path / "w.duckdb"
    drop.mkdir()
    content = _ndjson("p", 3, 9)
    (drop / "a.ndjson").write_bytes(content)
    (drop / "b.ndjson").write_bytes(content)  # the same content under another name
    (drop / ".hidden.ndjson").write_bytes(content)
    (drop / "c.ndjson.tmp").write_bytes(content)
    first = _watch_once(drop, warehouse)
    assert (first.files_landed, first.duplicates) == (1, 1)
    restarted = _watch_once(drop, warehouse)  # files in the ledger are recognized without landing them again
    assert (restarted.files_landed, restarted.duplicates, restarted.run.counts.records_in) == (0, 0, 0)
    (drop / "d.ndjson").write_bytes(content)  # a third copy delivered while no watcher ran
    later = _watch_once(drop, warehouse)
    assert (later.files_landed, later.duplicates) == (0, 1)
    ledger = _read(
        warehouse,
        "SELECT regexp_extract(input_file, '[^/]+$'), status, duplicate_of IS NOT NULL FROM ingested_files ORDER BY 1",
    )
    assert ledger == [("a.ndjson", "landed", False), ("b.ndjson", "duplicate", True), ("d.ndjson", "duplicate", True)]
    assert _read(warehouse, "SELECT count(*) FROM patient_demographics") == [(3,)]


@pytest.mark.slow
def test_a_file_that_vanished_before_it_was_read_is_not_landed_and_lands_when_it_comes_back(tmp_path):
    """Issue 12.3: the ledger records what was actually read; nothing read is never a duplicate of anything."""
    import datetime as dt

    from pipelines.beam.read import InputFile
    from pipelines.jobs.landing import LandingOptions, Run, land_files

    drop, warehouse = tmp_path / "drop", tmp_path / "w.duckdb"
    drop.mkdir()
    opts = LandingOptions(str(warehouse), str(tmp_path / "pq"), validation=None)
    now = dt.datetime.now(dt.UTC)
    vanished = InputFile(str(drop / "a.ndjson"), "qhio", 0, str(drop / "a.ndjson"))  # listed, gone when read
    landed = land_files([vanished], Run("r1", "watch", now), opts, now, duplicates_land_nothing=True)
    assert [(f.status, f.content_sha256) for f in landed.files] == [("unreadable", None)]
    assert _read(warehouse, "SELECT reason, position FROM rejected_records") == [("unreadable_file", "file")]
    (drop / "a.ndjson").write_bytes(_ndjson("g", 2, 5))  # delivered again under the same name
    result = _watch_once(drop, warehouse)
    assert result.files_landed == 1 and result.duplicates == 0
    assert _read(warehouse, "SELECT count(*) FROM patient_demographics") == [(2,)]
    assert _read(warehouse, "SELECT status FROM ingested_files ORDER BY landed_at") == [("unreadable",), ("landed",)]


@pytest.mark.slow
def test_a_dangling_link_in_the_drop_folder_is_one_dead_letter_not_one_per_poll(tmp_path):
    drop, warehouse = tmp_path / "drop", tmp_path / "w.duckdb"
    drop.mkdir()
    os.symlink(drop / "nowhere.ndjson", drop / "link.ndjson")
    _watch_once(drop, warehouse)
    _watch_once(drop, warehouse)
    assert _read(warehouse, "SELECT reason FROM rejected_records") == [("unreadable_file",)]


def test_a_generic_folder_name_needs_a_source(tmp_path):
    from pipelines.errors import UsageError

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    with pytest.raises(UsageError, match="--source"):
        _watch_once(inbox, tmp_path / "w.duckdb", source=None)
    named = tmp_path / "qhio-east"
    named.mkdir()
    assert _watch_once(named, tmp_path / "w.duckdb", source=None).run.run_id


@pytest.mark.slow
def test_a_second_watch_on_the_same_folder_or_warehouse_is_refused(tmp_path):
    drop, warehouse = tmp_path / "drop", tmp_path / "w.duckdb"
    drop.mkdir()
    watcher = _start(drop, warehouse)
    try:
        assert _wait_for(lambda: _read(warehouse, "SELECT count(*) FROM runs")[0][0] == 1)
        for folder, target in ((drop, tmp_path / "other.duckdb"), (tmp_path, warehouse)):
            result = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pipelines.cli",
                    "watch",
                    "--input",
                    str(folder),
                    "--warehouse",
                    str(target),
                    "--source",
                    "x",
                    "--stop-after",
                    "1",
                ],
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert result.returncode == 2, result.stderr
            assert "another `demographics watch` is already watching" in result.stderr
            assert len(result.stderr.strip().splitlines()) == 1
    finally:
        watcher.send_signal(signal.SIGTERM)
        watcher.communicate(timeout=60)
    assert _read(warehouse, "SELECT count(*) FROM ingested_files") == [(0,)]
