"""File names that are not valid UTF-8 (a sender's Latin-1 name, random bytes): listed, read, landed and named
in valid UTF-8, by `run` and by `watch` across a restart."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.beam.read import path_of_token, path_token
from pipelines.jobs.inputs import display_path, list_inputs
from tests.conftest import query

# Names a POSIX file system accepts: any bytes but "/" and NUL.
file_names = (
    st.binary(min_size=1, max_size=24)
    .map(lambda b: b.replace(b"/", b"_").replace(b"\0", b"_"))
    .filter(lambda b: b not in (b".", b".."))
)
NAMES = [b"\xff\xfe.json", b"caf\xe9.ndjson", b"bad\xc3(.json", b"\xed\xa0\x80surrogate.json", b"ok.json"]


@settings(max_examples=300, derandomize=True, database=None)
@given(file_names)
def test_any_file_name_is_stored_as_valid_utf8_and_travels_exactly(name: bytes) -> None:
    path = os.fsdecode(b"/feed/" + name)
    shown = display_path(path)
    shown.encode("utf-8")  # never raises: DuckDB, Arrow and Beam's coders take it
    if name.decode("utf-8", "replace").encode("utf-8") == name:
        assert shown == path  # a valid name is stored as it is
    token = path_token(path)
    token.encode("utf-8")
    assert path_of_token(token) == path


def _feed(folder: Path) -> Path:
    patient = json.dumps({"resourceType": "Patient", "id": "p"}).encode()
    os.makedirs(os.fsencode(folder / "sub") + b"\xe9", exist_ok=True)
    for i, name in enumerate(NAMES):
        (Path(os.fsdecode(os.fsencode(folder) + b"/" + name))).write_bytes(patient.replace(b'"p"', b'"p%d"' % i))
    Path(os.fsdecode(os.fsencode(folder / "sub") + b"\xe9/x\x80.ndjson")).write_bytes(patient + b"\n{broken\n")
    return folder


def test_the_listing_names_every_file_in_valid_utf8(tmp_path: Path) -> None:
    listed = list_inputs([str(_feed(tmp_path / "hie"))], None)
    assert len(listed.files) == len(NAMES) + 1 and not listed.rejections
    for file in listed.files:
        file.display.encode("utf-8")
        assert os.path.exists(file.path)


@pytest.mark.slow
def test_a_run_lands_files_whose_names_are_not_utf8(tmp_path: Path, run_cli) -> None:
    warehouse = tmp_path / "w.duckdb"
    code, _, err = run_cli("run", "--input", _feed(tmp_path / "hie"), "--warehouse", warehouse)
    assert code == 0, err
    landed = query(warehouse, "SELECT patient_id, input_file FROM patient_demographics ORDER BY 1")
    assert [p for p, _ in landed] == ["p", "p0", "p1", "p2", "p3", "p4"]
    assert ("p0", display_path(os.fsdecode(os.fsencode(tmp_path / "hie") + b"/\xff\xfe.json"))) in landed
    assert query(warehouse, "SELECT reason, input_file LIKE '%sub\\xe9/x\\x80.ndjson' FROM rejected_records") == [
        ("invalid_json", True)
    ]
    assert query(warehouse, "SELECT records_in, status FROM runs") == [(7, "succeeded")]


@pytest.mark.slow
def test_watch_lands_them_once_and_a_restart_does_not_fail_on_them(tmp_path: Path, run_cli) -> None:
    warehouse, drop = tmp_path / "w.duckdb", _feed(tmp_path / "drop")
    for _ in range(2):
        code, out, err = run_cli(
            "watch",
            "--input",
            drop,
            "--source",
            "hie",
            "--warehouse",
            warehouse,
            "--poll-interval",
            "0.2",
            "--stop-after",
            "1",
        )
        assert code == 0 and "stopped (stop-after)" in out, err
    assert query(warehouse, "SELECT count(*), count(DISTINCT input_file) FROM ingested_files") == [(6, 6)]
    assert query(warehouse, "SELECT mode, status, records_in FROM runs ORDER BY started_at") == [
        ("watch", "stopped", 7),
        ("watch", "stopped", 0),
    ]
