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
from pipelines.watch import WatchState, classify_new_files, scan_drop_folder

pytestmark = pytest.mark.timeout(300)


def _drop(folder: Path, name: str, data: bytes) -> None:
    """What a QHIO feed does: write under a temp name, then rename."""
    tmp = folder / f".{name}.part"
    tmp.write_bytes(data)
    os.rename(tmp, folder / name)


def _ndjson(prefix: str, count: int, seed: int) -> bytes:
    rng = random.Random(seed)
    return b"".join(json.dumps(make_patient(rng, f"{prefix}-{i}", "2026-10-01T00:00:00Z")).encode() + b"\n"
                    for i in range(count))


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
    return subprocess.Popen([sys.executable, "-m", "pipelines.cli", "watch", "--input", str(drop), "--warehouse",
                             str(warehouse), "--poll-interval", "0.2", "--source", "qhio", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


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

    assert _read(warehouse, "SELECT count(*), count(DISTINCT patient_id) FROM patient_demographics")[0] == (30035, 30035)
    ledger = _read(warehouse, "SELECT regexp_extract(input_file, '[^/]+$'), status FROM ingested_files ORDER BY 1")
    assert ledger == [("a-again.ndjson", "duplicate"), ("a.ndjson", "landed"), ("b.ndjson", "landed"),
                      ("big.ndjson", "landed"), ("broken.json", "landed"), ("c.ndjson", "landed")]
    assert _read(warehouse, "SELECT reason FROM rejected_records") == [("invalid_json",)]
    runs = _read(warehouse, "SELECT mode, status, records_in, patients_landed + rejected + other_resources "
                            "FROM runs ORDER BY started_at")
    assert [r[:2] for r in runs] == [("watch", "running"), ("watch", "stopped")]  # the killed one never ended
    assert all(r[2] == r[3] for r in runs)
    assert runs[1][2] == 30005  # the restart read big.ndjson and c.ndjson, nothing landed before the kill
    lags = _read(warehouse, "SELECT count(*) FROM ingested_files WHERE lag_seconds >= 0")[0][0]
    assert lags == 6
    # the clean stop validated what the restarted watcher landed in its (last) window
    windows = _read(warehouse, "SELECT DISTINCT scope, source, run_id FROM validation_results")
    assert windows == [("window", "qhio", _read(warehouse, "SELECT max(run_id) FROM runs")[0][0])]


def test_a_changed_file_under_the_same_name_is_new_data(tmp_path):
    drop, warehouse = tmp_path / "drop", tmp_path / "w.duckdb"
    drop.mkdir()
    watcher = _start(drop, warehouse, "--no-validation")
    try:
        patient = {"resourceType": "Patient", "id": "x", "gender": "female", "meta": {"lastUpdated": "2026-01-01T00:00:00Z"}}
        _drop(drop, "feed.json", json.dumps(patient).encode())
        assert _wait_for(lambda: _read(warehouse, "SELECT administrative_gender FROM patient_demographics") == [("female",)])
        patient.update(gender="male", meta={"lastUpdated": "2026-02-01T00:00:00Z"})
        _drop(drop, "feed.json", json.dumps(patient).encode())
        assert _wait_for(lambda: _read(warehouse, "SELECT administrative_gender FROM patient_demographics") == [("male",)])
    finally:
        watcher.send_signal(signal.SIGINT)  # Ctrl-C: a clean stop
        out, err = watcher.communicate(timeout=60)
    assert watcher.returncode == 0, err[-2000:]
    assert "stopped (SIGINT)" in out
    assert _read(warehouse, "SELECT count(*) FROM ingested_files WHERE status = 'landed'")[0][0] == 2


def test_stop_after_ends_the_watch_and_bad_input_is_one_line(tmp_path):
    drop = tmp_path / "drop"
    drop.mkdir()
    result = subprocess.run([sys.executable, "-m", "pipelines.cli", "watch", "--input", str(drop), "--warehouse",
                             str(tmp_path / "w.duckdb"), "--stop-after", "1"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0 and "stopped (stop-after)" in result.stdout
    result = subprocess.run([sys.executable, "-m", "pipelines.cli", "watch", "--input", str(tmp_path / "nope")],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1


def test_classify_new_files_is_exactly_once_by_content(tmp_path):
    (tmp_path / "a.json").write_text("A")
    (tmp_path / "b.json").write_text("A")
    (tmp_path / ".hidden").write_text("A")
    (tmp_path / "c.json.tmp").write_text("A")
    state = WatchState()
    to_land, ledger = classify_new_files(scan_drop_folder(tmp_path), "s", state)
    assert [Path(p).name for p, _ in to_land] == ["a.json"]
    assert [(Path(e["input_file"]).name, e["status"]) for e in ledger] == [("a.json", "landed"), ("b.json", "duplicate")]
    assert classify_new_files(scan_drop_folder(tmp_path), "s", state) == ([], [])  # nothing new on the next poll
    # after a restart, files already in the ledger are neither landed nor recorded again
    restarted = WatchState(known={(e["input_file"], e["content_sha256"]) for e in ledger},
                           first_path_by_hash={ledger[0]["content_sha256"]: ledger[0]["input_file"]})
    assert classify_new_files(scan_drop_folder(tmp_path), "s", restarted) == ([], [])
    # a third copy delivered while the watcher was down is a duplicate delivery
    (tmp_path / "d.json").write_text("A")
    to_land, ledger3 = classify_new_files(scan_drop_folder(tmp_path), "s", restarted)
    assert to_land == [] and [(Path(e["input_file"]).name, e["status"]) for e in ledger3] == [("d.json", "duplicate")]
