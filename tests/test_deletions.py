"""Deletions (contract sections 2 and 3): every form exchanges send, in either order of arrival, across runs and
polls; a version not newer than a deletion never brings the patient back; the reconciliation holds."""

import json
from pathlib import Path

import pytest

from tests.conftest import query

T0, T1, T2, T3 = "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z"


def _patient(pid: str, last_updated: str, gender: str = "female") -> dict:
    return {"resourceType": "Patient", "id": pid, "gender": gender, "meta": {"lastUpdated": last_updated}}


def bulk_deleted(*ids: str) -> bytes:
    """A Bulk export's `deleted` output: NDJSON of transaction Bundles of DELETE entries, no times."""
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"request": {"method": "DELETE", "url": f"Patient/{pid}"}} for pid in ids],
    }
    return json.dumps(bundle).encode() + b"\n"


def transaction_delete(pid: str, timestamp: str) -> bytes:
    return json.dumps(
        {
            "resourceType": "Bundle",
            "type": "transaction",
            "timestamp": timestamp,
            "entry": [{"request": {"method": "DELETE", "url": f"Patient/{pid}"}}],
        }
    ).encode()


def history_ending_in_delete(pid: str) -> bytes:
    """A history Bundle: two versions, then the DELETE (with its time in response.lastModified)."""
    return json.dumps(
        {
            "resourceType": "Bundle",
            "type": "history",
            "entry": [
                {
                    "resource": _patient(pid, T0),
                    "request": {"method": "POST", "url": "Patient"},
                    "response": {"status": "201", "lastModified": T0},
                },
                {
                    "resource": _patient(pid, T1, "male"),
                    "request": {"method": "PUT", "url": f"Patient/{pid}"},
                    "response": {"status": "200", "lastModified": T1},
                },
                {
                    "request": {"method": "DELETE", "url": f"Patient/{pid}"},
                    "response": {"status": "204", "lastModified": T2},
                },
            ],
        }
    ).encode()


@pytest.fixture
def land(tmp_path, run_cli):
    """Writes files into a fresh folder and runs them, one run per call, into one warehouse."""
    warehouse = tmp_path / "w.duckdb"
    calls = {"n": 0}

    def run(files: dict[str, bytes]) -> Path:
        calls["n"] += 1
        folder = tmp_path / f"delivery{calls['n']}"
        folder.mkdir()
        for name, data in files.items():
            (folder / name).write_bytes(data)
        code, _, err = run_cli(
            "run", "--input", folder, "--warehouse", warehouse, "--source", "qhio", "--no-validation"
        )
        assert code == 0, err
        return warehouse

    return run


def _patients(warehouse: Path) -> list[tuple]:
    return query(warehouse, "SELECT patient_id, administrative_gender FROM patient_demographics ORDER BY 1")


def _ndjson(*patients: dict) -> bytes:
    return b"".join(json.dumps(p).encode() + b"\n" for p in patients)


@pytest.mark.parametrize(
    "form, data",
    [
        ("bulk deleted output", bulk_deleted("a")),
        ("transaction bundle", transaction_delete("a", T1)),
    ],
)
@pytest.mark.slow
def test_a_deletion_after_the_patient_removes_it_and_an_old_version_never_brings_it_back(land, form, data):
    warehouse = land({"Patient.ndjson": _ndjson(_patient("a", T0), _patient("b", T0))})
    assert [p[0] for p in _patients(warehouse)] == ["a", "b"]
    land({"deleted.ndjson": data})
    assert [p[0] for p in _patients(warehouse)] == ["b"]
    assert query(warehouse, "SELECT source, patient_id FROM deleted_patients") == [("qhio", "a")]
    land({"Patient.ndjson": _ndjson(_patient("a", T0))})  # the old file delivered again
    assert [p[0] for p in _patients(warehouse)] == ["b"]
    runs = query(
        warehouse,
        "SELECT records_in, patients_landed, rejected, other_resources, deletions, "
        "patients_deleted FROM runs ORDER BY started_at",
    )
    assert [r[4:] for r in runs] == [(0, 0), (1, 1), (0, 0)]
    assert all(r[0] == sum(r[1:5]) for r in runs)  # records_in = patients + rejected + other + deletions


@pytest.mark.slow
def test_a_deletion_before_the_patient_keeps_its_old_version_out(land):
    warehouse = land({"deleted.ndjson": transaction_delete("a", T1)})
    assert query(warehouse, "SELECT patient_id, deleted_at::VARCHAR FROM deleted_patients") == [
        ("a", "2026-02-01 00:00:00+00")
    ]
    land({"Patient.ndjson": _ndjson(_patient("a", T0))})  # older than the deletion: stays out
    assert _patients(warehouse) == []
    land({"Patient.ndjson": _ndjson(_patient("a", T1))})  # not later than the deletion: stays out
    assert _patients(warehouse) == []
    land({"Patient.ndjson": _ndjson(_patient("a", T3, "other"))})  # re-created after it: back
    assert _patients(warehouse) == [("a", "other")]


def test_a_history_bundle_whose_last_entry_is_a_delete_leaves_nothing(land):
    warehouse = land({"history.json": history_ending_in_delete("h")})
    assert _patients(warehouse) == []
    assert query(warehouse, "SELECT patient_id, deleted_at::VARCHAR FROM deleted_patients") == [
        ("h", "2026-03-01 00:00:00+00")
    ]
    assert query(warehouse, "SELECT patients_landed, deletions, patients_inserted FROM runs") == [(2, 1, 0)]


@pytest.mark.parametrize(
    "names", [("1-patients.ndjson", "2-deleted.ndjson"), ("2-patients.ndjson", "1-deleted.ndjson")]
)
def test_in_one_run_the_order_of_the_files_does_not_matter(land, names):
    """A Bulk deleted output has no time: the deletion is at ingestion, after every version in the export."""
    warehouse = land({names[0]: _ndjson(_patient("a", T0), _patient("b", T0)), names[1]: bulk_deleted("a")})
    assert [p[0] for p in _patients(warehouse)] == ["b"]


@pytest.mark.slow
def test_running_the_same_deletion_twice_records_it_once(land):
    warehouse = land({"d.json": transaction_delete("a", T1)})
    land({"d.json": transaction_delete("a", T1)})
    assert query(warehouse, "SELECT count(*) FROM deleted_patients") == [(1,)]


@pytest.mark.slow
def test_the_parquet_copy_follows_deletions(land):
    import duckdb

    from pipelines.warehouse.export import read_latest_sql

    warehouse = land({"Patient.ndjson": _ndjson(_patient("a", T0), _patient("b", T0))})
    land({"deleted.ndjson": transaction_delete("a", T1)})
    parquet = warehouse.with_name("w_parquet")
    rows = duckdb.connect().execute(f"SELECT patient_id FROM ({read_latest_sql(str(parquet))}) ORDER BY 1").fetchall()
    assert rows == [("b",)]
    deleted = (
        duckdb.connect()
        .execute(f"SELECT patient_id FROM read_parquet('{parquet}/deleted_patients/*/*.parquet')")
        .fetchall()
    )
    assert deleted == [("a",)]


@pytest.mark.slow
def test_watch_applies_deletions_as_they_arrive(tmp_path):
    from pipelines.jobs.landing import LandingOptions
    from pipelines.jobs.watch import watch

    drop, warehouse = tmp_path / "qhio-east", tmp_path / "w.duckdb"
    drop.mkdir()
    opts = LandingOptions(str(warehouse), str(tmp_path / "pq"), validation=None)
    (drop / "Patient.ndjson").write_bytes(_ndjson(_patient("a", T0), _patient("b", T0)))
    watch(str(drop), opts, poll_interval=0.05, stop_after=0.3)
    (drop / "deleted.ndjson").write_bytes(bulk_deleted("b"))
    watch(str(drop), opts, poll_interval=0.05, stop_after=0.3)
    assert [p[0] for p in _patients(warehouse)] == ["a"]
    assert query(warehouse, "SELECT sum(deletions), sum(patients_deleted) FROM runs") == [(1, 1)]


@pytest.mark.slow
def test_watch_keeps_a_deletion_that_arrived_first(tmp_path):
    """The deletion lands before any version of the patient: an older version, in a later poll, never brings it
    back; a newer one does."""
    from pipelines.jobs.landing import LandingOptions
    from pipelines.jobs.watch import watch

    drop, warehouse = tmp_path / "qhio-east", tmp_path / "w.duckdb"
    drop.mkdir()
    opts = LandingOptions(str(warehouse), str(tmp_path / "pq"), validation=None)
    (drop / "1-deleted.json").write_bytes(transaction_delete("a", T2))
    watch(str(drop), opts, poll_interval=0.05, stop_after=0.3)
    (drop / "2-old.ndjson").write_bytes(_ndjson(_patient("a", T1), _patient("b", T1)))
    watch(str(drop), opts, poll_interval=0.05, stop_after=0.3)
    assert [p[0] for p in _patients(warehouse)] == ["b"]
    (drop / "3-new.ndjson").write_bytes(_ndjson(_patient("a", T3, "male")))
    watch(str(drop), opts, poll_interval=0.05, stop_after=0.3)
    assert _patients(warehouse) == [("a", "male"), ("b", "female")]
    assert query(warehouse, "SELECT count(*) FROM deleted_patients") == [(1,)]


@pytest.mark.slow
def test_ties_on_last_updated_go_to_the_content_that_arrived_first_later(land):
    """Re-running an old file never makes its older content win (contract section 3)."""
    old = _ndjson(_patient("x", T1, "female"))
    new = _ndjson(_patient("x", T1, "male"))
    warehouse = land({"v1.ndjson": old})
    land({"v2.ndjson": new})
    assert _patients(warehouse) == [("x", "male")]  # new content, same lastUpdated: it arrived later
    land({"v1.ndjson": old})  # the old file again, later: its content first arrived before
    assert _patients(warehouse) == [("x", "male")]
    assert query(warehouse, "SELECT patients_unchanged FROM runs ORDER BY started_at DESC LIMIT 1") == [(1,)]
