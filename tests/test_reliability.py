"""Issue 12, by class: what an attacker broke (paths, partitions, listing, links, exports, permissions, signals,
kills, summaries). Each test fails on the code before the fix."""

import json
import os
import random
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from pipelines.tables import ALL_TABLES
from tests.conftest import query

pytestmark = pytest.mark.timeout(600)


def _patients(n: int, prefix: str = "p", last_updated: str = "2026-01-01T00:00:00Z") -> bytes:
    return b"".join(
        json.dumps(
            {"resourceType": "Patient", "id": f"{prefix}{i}", "gender": "female", "meta": {"lastUpdated": last_updated}}
        ).encode()
        + b"\n"
        for i in range(n)
    )


@pytest.mark.slow
def test_a_warehouse_folder_with_glob_characters_lands_everything(tmp_path, run_cli):
    """12.1: paths are never globbed (staged files, Parquet, DuckDB's own read_parquet)."""
    folder = tmp_path / "w[1]*"
    folder.mkdir()
    feed = tmp_path / "feed"
    feed.mkdir()
    (feed / "p.ndjson").write_bytes(_patients(3))
    code, _out, err = run_cli("run", "--input", feed, "--warehouse", folder / "w.duckdb")
    assert code == 0, err
    assert query(folder / "w.duckdb", "SELECT count(*) FROM patient_demographics") == [(3,)]
    assert list((folder / "w_parquet" / "patient_demographics").iterdir())
    odd = tmp_path / "w?"
    odd.mkdir()
    code, _, err = run_cli("run", "--input", feed, "--warehouse", odd / "w.duckdb")
    assert code == 2 and "containing '?'" in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_source_names_never_share_a_parquet_folder(tmp_path, run_cli):
    """12.5: the partition name is an injective encoding of the source name."""
    from pipelines.warehouse.export import partition_dir_name

    names = ["é1", "\u0e91", "a/b", "a%2Fb", ".", "..", "%E91", "A", "a b"]
    assert len({partition_dir_name(n) for n in names}) == len(names)
    feed = tmp_path / "feed"
    feed.mkdir()
    (feed / "p.ndjson").write_bytes(_patients(2))
    warehouse = tmp_path / "w.duckdb"
    for source in ("é1", "\u0e91"):
        assert run_cli("run", "--input", feed, "--warehouse", warehouse, "--source", source)[0] == 0
    con = duckdb.connect()
    for source in ("é1", "\u0e91"):
        folder = tmp_path / "w_parquet" / "patient_demographics" / partition_dir_name(source)
        assert con.execute(f"SELECT DISTINCT source FROM read_parquet('{folder}/*.parquet')").fetchall() == [(source,)]


def test_a_folder_that_cannot_be_listed_is_a_dead_letter(tmp_path, run_cli, monkeypatch):
    """12.6: never skipped silently."""
    feed = tmp_path / "feed"
    (feed / "locked").mkdir(parents=True)
    (feed / "locked" / "p.ndjson").write_bytes(_patients(1))
    (feed / "ok.ndjson").write_bytes(_patients(2, "ok"))
    if os.geteuid() == 0:  # root lists any folder: let the OS refuse this one as it refuses a user
        real_scandir = os.scandir

        def scandir(path):
            if str(path).endswith("locked"):
                raise PermissionError(13, "Permission denied", str(path))
            return real_scandir(path)

        monkeypatch.setattr(os, "scandir", scandir)
    os.chmod(feed / "locked", 0)
    try:
        code, _, err = run_cli("run", "--input", feed, "--warehouse", tmp_path / "w.duckdb", "--no-validation")
    finally:
        os.chmod(feed / "locked", 0o755)
    assert code == 0, err
    rejects = query(
        tmp_path / "w.duckdb", "SELECT reason, position, regexp_extract(input_file, '[^/]+$') FROM rejected_records"
    )
    assert rejects == [("unreadable_directory", "directory", "locked")]
    assert query(tmp_path / "w.duckdb", "SELECT count(*), sum(rejected) FROM runs") == [(1, 1)]
    assert query(tmp_path / "w.duckdb", "SELECT count(*) FROM patient_demographics") == [(2,)]


@pytest.mark.slow
def test_a_symlink_leaving_the_inputs_is_not_followed_unless_asked(tmp_path, run_cli):
    """12.15: `/etc/passwd` linked from a drop folder is never copied into the warehouse."""
    feed = tmp_path / "feed"
    feed.mkdir()
    secret = tmp_path / "outside.ndjson"
    secret.write_bytes(b"root:x:0:0:root:/root:/bin/bash\n")
    os.symlink(secret, feed / "link.ndjson")
    os.symlink(feed / "inside-target.ndjson", feed / "inside-link.ndjson")
    (feed / "inside-target.ndjson").write_bytes(_patients(1))
    warehouse = tmp_path / "w.duckdb"
    assert run_cli("run", "--input", feed, "--warehouse", warehouse)[0] == 0
    assert query(warehouse, "SELECT reason, raw_text FROM rejected_records") == [("symlink_outside_input", "")]
    assert query(warehouse, "SELECT count(*) FROM patient_demographics") == [(1,)]  # the link inside is read
    followed = tmp_path / "f.duckdb"
    assert run_cli("run", "--input", feed, "--warehouse", followed, "--follow-symlinks")[0] == 0
    assert query(followed, "SELECT reason FROM rejected_records") == [("invalid_json",)]


@pytest.mark.slow
def test_a_failed_parquet_export_keeps_the_run_and_is_repaired_by_the_next_landing(tmp_path, run_cli):
    """12.11: the rows are committed, so the run counts them; the copy catches up at the next landing."""
    from pipelines.warehouse.export import read_latest_sql

    feed = tmp_path / "feed"
    feed.mkdir()
    (feed / "a.ndjson").write_bytes(_patients(3, "a"))
    warehouse, parquet = tmp_path / "w.duckdb", tmp_path / "pq"
    parquet.mkdir()
    (parquet / "patient_demographics").write_text("a file where the table's folder goes")
    code, out, err = run_cli("run", "--input", feed, "--warehouse", warehouse, "--parquet-dir", parquet)
    assert code == 0, err
    assert "Parquet copy lags" in out
    assert query(warehouse, "SELECT status, patients_inserted FROM runs") == [("succeeded", 3)]
    assert query(warehouse, "SELECT dirty FROM parquet_partitions WHERE table_name = 'patient_demographics'") == [
        (True,)
    ]
    (parquet / "patient_demographics").unlink()
    (feed / "b.ndjson").write_bytes(_patients(2, "b"))
    assert (
        run_cli(
            "run", "--input", feed / "b.ndjson", "--warehouse", warehouse, "--parquet-dir", parquet, "--source", "feed"
        )[0]
        == 0
    )
    copy = duckdb.connect().execute(read_latest_sql(str(parquet)) + " ORDER BY ALL").fetchall()
    assert copy == query(warehouse, "SELECT * FROM patient_demographics ORDER BY ALL")
    assert len(copy) == 5


@pytest.mark.slow
def test_the_warehouse_and_its_copies_are_readable_by_their_owner_only(sample_feed, tmp_path, run_cli):
    warehouse = tmp_path / "w.duckdb"
    assert run_cli("run", "--input", sample_feed, "--warehouse", warehouse)[0] == 0
    created = [warehouse, *(tmp_path / "w_parquet").rglob("*")]
    for path in created:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o077 == 0, f"{path} is {oct(mode)}"


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_the_beam_phase_with_worker_processes_ends_the_run_as_interrupted(tmp_path, sig):
    """12.16: with multi_processing, Ctrl-C used to be ignored and the run recorded as succeeded."""
    feed = tmp_path / "feed"
    feed.mkdir()
    (feed / "p.ndjson").write_bytes(_patients(60_000))
    warehouse = tmp_path / "w.duckdb"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipelines.cli",
            "run",
            "--input",
            str(feed),
            "--warehouse",
            str(warehouse),
            "--direct_running_mode=multi_processing",
            "--direct_num_workers=2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not list(Path(f"{tmp_path}/.w.duckdb.staging").glob("*/*/progress")) and time.monotonic() < deadline:
        time.sleep(0.2)
    proc.send_signal(sig)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == "demographics: interrupted"
    assert query(warehouse, "SELECT status FROM runs") == [("interrupted",)]
    assert not (tmp_path / ".w.duckdb.staging").exists()
    assert _tables(warehouse) == sorted(ALL_TABLES)  # every table exists after an interrupted first run


@pytest.mark.slow
def test_a_failure_with_worker_processes_is_one_line(sample_feed, tmp_path):
    """12.16: not a 100-line traceback and "RuntimeError: Traceback ..."."""
    (tmp_path / ".w.duckdb.staging").write_text("a file where the staging folder goes: workers cannot write")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipelines.cli",
            "run",
            "--input",
            str(sample_feed),
            "--warehouse",
            str(tmp_path / "w.duckdb"),
            "--direct_running_mode=multi_processing",
            "--direct_num_workers=2",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 3
    errors = [line for line in result.stderr.splitlines() if " INFO " not in line]
    assert len(errors) == 1 and errors[0].startswith("demographics: failed: ") and "Traceback" not in errors[0]
    assert "Not a directory" in errors[0]


def _run_killed(feed: Path, warehouse: Path, delay_after_marker: float, marker: str) -> None:
    """Starts `demographics run` and SIGKILLs it `delay_after_marker` seconds after a log line holding `marker`."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipelines.cli",
            "run",
            "--input",
            str(feed),
            "--warehouse",
            str(warehouse),
            "--source",
            "qhio",
            "--no-validation",
            "--log-level",
            "DEBUG",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for line in proc.stderr:
            if marker in line:
                time.sleep(delay_after_marker)
                break
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.slow
def test_sigkill_at_any_moment_of_landing_leaves_a_consistent_warehouse(tmp_path):
    """12.2 and 12.11: killed at many points, the commit included; the next run finds one row per key, no lost
    patient, a ledger that matches the rows, no run left running and no staging files left behind."""
    feed = tmp_path / "feed"
    feed.mkdir()
    warehouse = tmp_path / "w.duckdb"
    n = 40_000
    (feed / "p.ndjson").write_bytes(_patients(n, last_updated="2026-01-01T00:00:00Z"))
    from pipelines.cli import main

    assert (
        main(
            [
                "run",
                "--input",
                str(feed),
                "--warehouse",
                str(warehouse),
                "--source",
                "qhio",
                "--no-validation",
                "--log-level",
                "WARNING",
            ]
        )
        == 0
    )
    rng = random.Random(12)
    points = [
        ("reading", rng.uniform(0, 1.0)),
        ("commit: begin", 0.0),
        *[("commit: begin", rng.uniform(0, 2.0)) for _ in range(4)],
        ("commit: end", 0.0),
        ("commit: end", 0.05),
    ]
    for trial, (marker, delay) in enumerate(points):
        # every trial is an update of every row: a DELETE and an INSERT of n rows in one transaction
        version = f"2026-02-{trial + 1:02d}T00:00:00Z"
        (feed / "p.ndjson").write_bytes(_patients(n, last_updated=version))
        _run_killed(feed, warehouse, delay, marker)
        assert (
            main(
                [
                    "run",
                    "--input",
                    str(feed),
                    "--warehouse",
                    str(warehouse),
                    "--source",
                    "qhio",
                    "--no-validation",
                    "--log-level",
                    "WARNING",
                ]
            )
            == 0
        )
        total, distinct, newest = query(
            warehouse,
            "SELECT count(*), count(DISTINCT patient_id), "
            "count(*) FILTER (last_updated = ?::TIMESTAMPTZ) "
            "FROM patient_demographics",
            [version],
        )[0]
        assert (total, distinct, newest) == (n, n, n), (trial, marker, delay)
        assert query(warehouse, "SELECT count(*) FROM runs WHERE status = 'running'") == [(0,)]
        landed = query(warehouse, "SELECT count(DISTINCT content_sha256) FROM ingested_files WHERE status = 'landed'")
        assert landed[0][0] >= 1
        assert (
            not list((tmp_path / ".w.duckdb.staging").glob("*")) if (tmp_path / ".w.duckdb.staging").exists() else True
        )
    statuses = {row[0] for row in query(warehouse, "SELECT status FROM runs")}
    assert statuses <= {"succeeded", "interrupted"} and "interrupted" in statuses


@pytest.mark.slow
def test_no_patient_value_reaches_a_page_a_log_or_an_error_line(tmp_path, run_cli):
    """12.14: `validate --html` printed Great Expectations' unexpected values (birth dates, patient ids)."""
    feed = tmp_path / "feed"
    feed.mkdir()
    patients = [
        {
            "resourceType": "Patient",
            "id": f"SECRET-ID-{i}",
            "birthDate": "2099-05-17",
            "name": [{"family": "SECRETNAME"}],
            "address": [{"postalCode": "SECRETZIP", "line": ["1 Secret St"]}],
            "meta": {"lastUpdated": "2099-01-01T00:00:00Z"},
        }
        for i in range(3)
    ]
    (feed / "p.ndjson").write_text("".join(json.dumps(p) + "\n" for p in patients) + "{not json SECRETRAW\n")
    warehouse, page = tmp_path / "w.duckdb", tmp_path / "validation.html"
    code, out, err = run_cli("run", "--input", feed, "--warehouse", warehouse)
    assert code == 0, err
    code, vout, verr = run_cli("validate", "--warehouse", warehouse, "--html", page)
    assert code == 1  # future dates fail plausibility
    for text in (out, err, vout, verr, page.read_text()):
        for secret in ("SECRET", "2099-05-17", "2099-01-01", "1 Secret St"):
            assert secret not in text


@pytest.mark.slow
def test_memory_per_input_file_is_small(tmp_path):
    """12.8: each input file used to cost ~300 KB (30,000 small files: 8.9 GB)."""
    import resource

    def peak_kib(count: int) -> int:
        feed = tmp_path / f"feed{count}"
        feed.mkdir()
        for i in range(count):
            (feed / f"p{i}.json").write_text(json.dumps({"resourceType": "Patient", "id": f"p{i}"}))
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        script = (
            "import resource, sys; from pipelines.cli import main; code = main(sys.argv[1:]); "
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); sys.exit(code)"
        )
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                script,
                "run",
                "--input",
                str(feed),
                "--warehouse",
                str(tmp_path / f"w{count}.duckdb"),
                "--source",
                "s",
                "--no-validation",
                "--log-level",
                "WARNING",
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, result.stderr
        return int(result.stdout.strip().splitlines()[-1]) if before is not None else 0

    small, large = peak_kib(200), peak_kib(2200)
    assert (large - small) / 2000 < 30, f"{(large - small) / 2000:.1f} KiB per file"


def _tables(warehouse: Path) -> list[str]:
    return [t for (t,) in query(warehouse, "SELECT table_name FROM information_schema.tables ORDER BY 1")]


@pytest.mark.slow
def test_every_table_exists_after_a_first_run_with_no_patients(tmp_path, run_cli):
    """Contract section 3: the tables exist, empty, from the first run on, whatever the run found."""
    feed = tmp_path / "feed"
    feed.mkdir()
    (feed / "Observation.ndjson").write_text('{"resourceType": "Observation", "id": "o1", "status": "final"}\n')
    warehouse = tmp_path / "w.duckdb"
    assert run_cli("run", "--input", feed, "--warehouse", warehouse)[0] == 0
    assert _tables(warehouse) == sorted(ALL_TABLES)
    assert query(warehouse, "SELECT count(*) FROM patient_demographics") == [(0,)]
    assert query(warehouse, "SELECT records_in, other_resources FROM runs") == [(1, 1)]
