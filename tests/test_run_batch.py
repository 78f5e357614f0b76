"""`demographics run` end to end on the sample feed: real Beam, real DuckDB file, real Parquet."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tests.conftest import query

COMPARED = (
    "source, patient_id, race_ethnicity_status, omb2024_categories, omb2024_category, hedis_race, "
    "hedis_ethnicity, race_detailed_codes, ethnicity_detailed_codes, race_text, ethnicity_text, "
    "race_source_format, mapping_warnings, preferred_language, birth_date, administrative_gender, "
    "postal_code, state, last_updated, input_file, input_position, record_hash"
)


@pytest.fixture(scope="module")
def landed(sample_feed, tmp_path_factory):
    """One run of the sample feed into a fresh warehouse."""
    from pipelines.cli import main

    warehouse = tmp_path_factory.mktemp("wh") / "warehouse.duckdb"
    assert main(["run", "--input", str(sample_feed), "--warehouse", str(warehouse)]) == 0
    return warehouse


@pytest.mark.slow
def test_counts_reconcile_in_the_runs_table(landed):
    ((records_in, patients, rejected, other, files, status),) = query(
        landed, "SELECT records_in, patients_landed, rejected, other_resources, files_read, status FROM runs"
    )
    assert status == "succeeded"
    assert files == 13
    (deletions,) = query(landed, "SELECT deletions FROM runs")[0]
    assert deletions == 3  # the transaction Bundle's DELETE of Patient/gone, and deleted.ndjson's two
    assert records_in == patients + rejected + other + deletions
    assert rejected == query(landed, "SELECT count(*) FROM rejected_records")[0][0]
    assert other == 67  # 60 Encounters, 4 race Observations, a MessageHeader, a Composition, a Coverage
    assert patients == 284  # 5 of them wrapped in Parameters
    by_category, by_reason = query(landed, "SELECT patients_by_category, rejected_by_reason FROM runs")[0]
    assert sum(json.loads(by_category).values()) == patients
    assert sum(json.loads(by_reason).values()) == rejected


def test_every_sample_reject_reason_lands_with_position_and_raw_text(landed):
    rows = query(
        landed,
        "SELECT reason, position, regexp_extract(input_file, '[^/]+$'), length(raw_text) "
        "FROM rejected_records ORDER BY ALL",
    )
    assert sorted((r[0], r[2]) for r in rows) == sorted(
        [
            ("binary_content", "scanner-output.bin"),
            ("empty_file", "empty.json"),
            ("invalid_json", "Patient.ndjson"),
            ("invalid_json", "truncated-bundle.json"),
            ("not_fhir_resource", "Patient.ndjson"),
            ("not_fhir_resource", "not-fhir.json"),
            ("patient_without_id", "Patient.ndjson"),
        ]
    )
    assert ("invalid_json", "byte 9212") in {(r[0], r[1]) for r in rows}  # line 11 of Patient.ndjson
    assert all(r[3] <= 64 * 1024 for r in rows)


def test_one_row_per_source_and_patient(landed):
    total, distinct = query(landed, "SELECT count(*), count(DISTINCT (source, patient_id)) FROM patient_demographics")[
        0
    ]
    assert total == distinct == 284 - 6 - 2  # six arrive twice (history-updates.json), two are deleted
    assert query(
        landed, "SELECT count(*) FROM patient_demographics WHERE patient_id IN ('pat-000005', 'pat-000062')"
    ) == [(0,)]
    wrapped = query(
        landed, "SELECT input_position FROM patient_demographics WHERE input_file LIKE '%member-match%' ORDER BY 1"
    )
    assert [w[0] for w in wrapped] == [
        "parameter[0]",
        "parameter[1].part[0]",
        "parameter[2].part[0] entry[0]",
        "parameter[2].part[0] entry[1]",
        "parameter[2].part[0] entry[2]",
    ]
    assert query(landed, "SELECT DISTINCT source FROM patient_demographics") == [("samples",)]


def test_latest_last_updated_wins(landed):
    rows = dict(
        query(
            landed,
            "SELECT patient_id, strftime(last_updated, '%Y-%m-%d') FROM patient_demographics "
            "WHERE patient_id IN ('pat-000001', 'pat-000061', 'pat-000004')",
        )
    )
    assert rows["pat-000001"] == "2026-11-01"  # the newer version from history-updates.json
    assert rows["pat-000061"] == "2026-11-01"
    assert rows["pat-000004"] == "2026-10-01"  # the 2020 version in history-updates.json is older: it loses


def test_us_core_race_lands_in_contract_columns(landed):
    # the history update gives pat-000001 ombCategory White + detailed Lebanese and Hispanic ethnicity
    row = query(
        landed,
        "SELECT omb2024_categories, omb2024_category, hedis_race, hedis_ethnicity, race_source_format,"
        " race_ethnicity_status FROM patient_demographics WHERE patient_id = 'pat-000001'",
    )[0]
    assert row == (["HISPANIC", "MENA"], "MULTIRACIAL_MULTIETHNIC", "White", "HispanicOrLatino", "us-core", "reported")


@pytest.mark.slow
def test_a_patient_invalid_only_in_unneeded_elements_lands_with_warnings(sample_feed, landed, tmp_path, run_cli):
    warehouse = tmp_path / "strict.duckdb"
    assert run_cli("run", "--input", sample_feed, "--warehouse", warehouse, "--strict-fhir")[0] == 0
    warnings, invalid, last_updated = query(
        warehouse,
        "SELECT mapping_warnings, fhir_invalid_elements, last_updated FROM patient_demographics "
        "WHERE list_contains(fhir_invalid_elements, 'favoriteColor')",
    )[0]
    assert {"fhir_validation_failed", "last_updated_invalid"} <= set(warnings)
    assert "meta.lastUpdated" in invalid
    assert last_updated is None
    # without --strict-fhir the elements the pipeline reads are still checked: the bad lastUpdated is a warning
    assert query(landed, "SELECT count(*) FROM patient_demographics WHERE len(fhir_invalid_elements) > 0") == [(0,)]
    assert query(
        landed,
        "SELECT count(*) FROM patient_demographics WHERE list_contains(mapping_warnings, 'last_updated_invalid')",
    ) == [(1,)]


def test_a_patient_without_id_is_keyed_by_full_url(landed):
    (warnings,) = query(
        landed,
        "SELECT mapping_warnings FROM patient_demographics WHERE patient_id = 'urn:uuid:6f1c2a44-keyed-by-fullurl'",
    )[0]
    assert "patient_key_from_fullurl" in warnings


def test_parquet_copy_is_partitioned_by_source_and_matches(landed):
    from pipelines.warehouse.export import read_latest_sql

    parquet = landed.with_name("warehouse_parquet")
    assert (parquet / "patient_demographics" / "source=samples" / "part-0000000001.parquet").is_file()
    con = duckdb.connect()
    in_parquet = con.execute(read_latest_sql(str(parquet)) + " ORDER BY ALL").fetchall()
    assert in_parquet == query(landed, "SELECT * FROM patient_demographics ORDER BY ALL")
    for table in ("rejected_records", "deleted_patients"):
        assert (parquet / table / "source=samples" / "part-0000000001.parquet").is_file()


@pytest.mark.slow
def test_rerunning_the_same_input_changes_nothing(sample_feed, tmp_path, run_cli):
    warehouse = tmp_path / "w.duckdb"
    assert run_cli("run", "--input", sample_feed, "--warehouse", warehouse)[0] == 0
    before = query(warehouse, f"SELECT {COMPARED}, ingested_at, run_id FROM patient_demographics ORDER BY ALL")
    rejects_before = query(warehouse, "SELECT * FROM rejected_records ORDER BY ALL")
    code, out, _ = run_cli("run", "--input", sample_feed, "--warehouse", warehouse)
    assert code == 0
    assert query(warehouse, f"SELECT {COMPARED}, ingested_at, run_id FROM patient_demographics ORDER BY ALL") == before
    assert query(warehouse, "SELECT * FROM rejected_records ORDER BY ALL") == rejects_before
    second = query(
        warehouse,
        "SELECT patients_inserted, patients_updated, patients_unchanged FROM runs ORDER BY started_at DESC LIMIT 1",
    )[0]
    assert second == (0, 0, len(before) + 2)  # the two deleted patients of the feed stay deleted: unchanged too
    assert f"0 inserted, 0 updated, {len(before) + 2} unchanged, 0 deleted" in out


@pytest.mark.slow
def test_a_newer_delivery_replaces_and_an_older_one_does_not(tmp_path, run_cli):
    feed = tmp_path / "feed"
    feed.mkdir()
    warehouse = tmp_path / "w.duckdb"

    def deliver(name, last_updated, gender):
        (feed / name).write_text(
            json.dumps({"resourceType": "Patient", "id": "x", "gender": gender, "meta": {"lastUpdated": last_updated}})
        )
        assert run_cli("run", "--input", feed / name, "--warehouse", warehouse, "--source", "s")[0] == 0
        (feed / name).unlink()
        return query(warehouse, "SELECT administrative_gender FROM patient_demographics")

    assert deliver("1.json", "2025-01-01T00:00:00Z", "female") == [("female",)]
    assert deliver("2.json", "2024-01-01T00:00:00Z", "male") == [("female",)]  # older: ignored
    assert deliver("3.json", "2025-06-01T00:00:00+02:00", "other") == [("other",)]  # newer: wins
    assert deliver("4.json", "2025-06-01T00:00:00+02:00", "unknown") == [("unknown",)]  # same time, later ingestion


@pytest.mark.slow
def test_multi_process_runner_gives_the_same_rows(sample_feed, landed, tmp_path, run_cli):
    warehouse = tmp_path / "mp.duckdb"
    code, _, err = run_cli(
        "run",
        "--input",
        sample_feed,
        "--warehouse",
        warehouse,
        "--direct_running_mode=multi_processing",
        "--direct_num_workers=2",
    )
    assert code == 0, err
    sql = f"SELECT {COMPARED} FROM patient_demographics ORDER BY source, patient_id"
    assert query(warehouse, sql) == query(landed, sql)
    rej = "SELECT source, input_file, position, reason, message, raw_text FROM rejected_records ORDER BY ALL"
    assert query(warehouse, rej) == query(landed, rej)


@pytest.mark.slow
def test_default_source_is_the_input_directory_name(sample_feed, tmp_path, run_cli):
    warehouse = tmp_path / "w.duckdb"
    assert run_cli("run", "--input", sample_feed / "single-patient.json", "--warehouse", warehouse)[0] == 0
    assert query(warehouse, "SELECT source FROM patient_demographics") == [("samples",)]
    assert (
        run_cli(
            "run", "--input", sample_feed / "single-patient.json", "--warehouse", warehouse, "--source", "qhio-east"
        )[0]
        == 0
    )
    assert query(warehouse, "SELECT source FROM patient_demographics ORDER BY 1") == [("qhio-east",), ("samples",)]


@pytest.mark.slow
def test_hidden_and_partial_files_are_not_inputs(tmp_path, run_cli):
    feed = tmp_path / "feed"
    feed.mkdir()
    for name in (".hidden.json", "incoming.json.part", "incoming.json.tmp"):
        (feed / name).write_text("not json at all")
    (feed / "sub").mkdir()
    (feed / "sub" / "p.json").write_text(json.dumps({"resourceType": "Patient", "id": "deep"}))
    warehouse = tmp_path / "w.duckdb"
    assert run_cli("run", "--input", feed, "--warehouse", warehouse)[0] == 0
    assert query(warehouse, "SELECT files_read, rejected FROM runs") == [(1, 0)]


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "--input", "/no/such/folder"], "input /no/such/folder does not exist"),
        (["run", "--input", ".", "--warehouse", "/no/such/dir/w.duckdb"], "directory /no/such/dir does not exist"),
        (["run"], "the following arguments are required: --input"),
        (["run", "--input", ".", "--warehose", "x"], "unrecognized arguments: --warehose"),
        (["run", "--input", ".", "--direct_num_workers=abc"], "invalid int value: 'abc'"),
        (["run", "--input", ".", "--runner=NoSuchRunner"], "Unexpected pipeline runner: NoSuchRunner"),
        (["run", "--input", ".", "--parquet-dir", "/proc/no/such"], "cannot write Parquet to /proc/no/such"),
        (["run", "--input", ".", "--completeness-goal", "1.5"], "must be between 0 and 1"),
        (["frobnicate"], "invalid choice"),
        (["run", "--input", ".", "--log-level", "LOUD"], "invalid choice"),
    ],
)
def test_bad_usage_is_one_line_and_exit_2(args, message, tmp_path, run_cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(*args)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], err
    assert "Traceback" not in err


@pytest.mark.slow
def test_the_console_script_is_installed_and_fails_in_one_line(tmp_path):
    """The one subprocess of this module: what a user types, through the installed `demographics` script."""
    script = Path(sys.executable).with_name("demographics")
    result = subprocess.run(
        [str(script), "run", "--input", str(tmp_path / "nope")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert (
        result.returncode == 2
        and result.stderr.strip() == f"demographics: error: input {tmp_path / 'nope'} does not exist"
    )


def test_a_bare_command_shows_the_usage_and_a_mistyped_flag_is_refused_before_beam_loads(run_cli):
    code, _, err = run_cli()
    assert code == 2 and "usage: demographics" in err and "COMMAND" in err
    code, out, _ = run_cli("--version")
    assert code == 0 and out.startswith("demographics ")
    code, _, err = run_cli("run", "--input", ".", "--warehose", "x")
    assert code == 2 and "did you mean --warehouse?" in err


def test_a_warehouse_path_that_is_a_directory_is_one_line_error(tmp_path, sample_feed, run_cli):
    code, _, err = run_cli("run", "--input", sample_feed / "single-patient.json", "--warehouse", tmp_path)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "cannot open warehouse" in err


def test_help_explains_and_exits_0(run_cli):
    code, out, _ = run_cli("run", "--help")
    assert code == 0
    assert "--warehouse" in out and "--source" in out and "--direct_num_workers" in out and "--strict-fhir" in out


@pytest.mark.parametrize("command", ["run", "watch", "validate", "status", "report"])
def test_every_subcommand_has_help_and_log_level(command, run_cli):
    code, out, _ = run_cli(command, "--help")
    assert code == 0 and "--log-level LEVEL" in out and "--warehouse" in out


@pytest.mark.slow
def test_progress_on_stderr_and_no_patient_data_in_logs(sample_feed, tmp_path, run_cli):
    code, out, err = run_cli("run", "--input", sample_feed, "--warehouse", tmp_path / "w.duckdb")
    assert code == 0, err
    assert re.search(r"INFO read [0-9.]+ MB: 361 records in [0-9.]+ s \([0-9,]+ records/s", err)
    assert "records in" in out and "reconciles" in out
    for private in ("MRN", "Example St", "pat-0000", "Lebanese"):
        assert private not in err


def test_the_progress_line_adds_up_every_read_task_and_says_how_long_is_left(tmp_path, monkeypatch):
    """The live line of a long read (every 5 s), from the progress files each read task writes (one per worker
    process in multi_processing): bytes of the total, records, rate and time left."""
    from pipelines.beam.staging import WriteProgressFn
    from pipelines.jobs import landing

    progress = landing.ProgressLine(str(tmp_path), total_bytes=400_000_000)
    assert progress.line() is None  # nothing read yet: no line
    writer = WriteProgressFn(str(tmp_path))
    writer.setup()
    writer.process({"task": "worker-1", "records": 30_000, "raw_bytes": 100_000_000})
    writer.process({"task": "worker-2", "records": 20_000, "raw_bytes": 60_000_000})
    writer.process({"task": "worker-1", "records": 40_000, "raw_bytes": 140_000_000})  # a later report replaces
    monkeypatch.setattr(landing.time, "monotonic", lambda: progress.started + 10.0)
    assert progress.line() == "read 200.0 of 400.0 MB (50%), 60,000 records, 6,000 records/s, about 10 s left"


@pytest.mark.slow
def test_non_editable_install_works_from_another_directory(tmp_path, sample_feed):
    """`pip install .` ships the schemas and reference data inside the package."""
    repo = Path(__file__).resolve().parent.parent
    target = tmp_path / "site"
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(repo)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert pip.returncode == 0, pip.stderr[-2000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target)}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import pipelines, sys; print(pipelines.__file__);"
            "from pipelines.cli import main; sys.exit(main(sys.argv[1:]))",
            "run",
            "--input",
            str(sample_feed),
            "--warehouse",
            "w.duckdb",
        ],
        capture_output=True,
        text=True,
        cwd=elsewhere,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith(str(target))
    assert query(elsewhere / "w.duckdb", "SELECT count(*) FROM patient_demographics")[0][0] == 276


@pytest.mark.slow
def test_a_policy_file_switches_a_rule_end_to_end(tmp_path, run_cli):
    cdcrec = "urn:oid:2.16.840.1.113883.6.238"
    patient = {
        "resourceType": "Patient",
        "id": "arab",
        "extension": [
            {
                "url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race",
                "extension": [
                    {"url": "ombCategory", "valueCoding": {"system": cdcrec, "code": "2106-3"}},
                    {"url": "detailed", "valueCoding": {"system": cdcrec, "code": "2129-5"}},
                    {"url": "text", "valueString": "Arab"},
                ],
            }
        ],
    }
    feed = tmp_path / "feed"
    feed.mkdir()
    (feed / "p.json").write_text(json.dumps(patient))
    policy = tmp_path / "policy.toml"
    policy.write_text("[omb2024]\narab_as_mena = false\n")
    default_wh, custom_wh = tmp_path / "default.duckdb", tmp_path / "custom.duckdb"
    assert run_cli("run", "--input", feed, "--warehouse", default_wh)[0] == 0
    assert run_cli("run", "--input", feed, "--warehouse", custom_wh, "--policy", policy)[0] == 0
    assert query(default_wh, "SELECT omb2024_category FROM patient_demographics") == [("MENA",)]
    assert query(custom_wh, "SELECT omb2024_category FROM patient_demographics") == [("WHITE",)]


def test_a_bad_policy_file_is_a_one_line_error(tmp_path, run_cli):
    policy = tmp_path / "policy.toml"
    policy.write_text("[omb2024]\narab_as_mena = 'maybe'\n")
    code, _, err = run_cli("run", "--input", tmp_path, "--warehouse", tmp_path / "w.duckdb", "--policy", policy)
    assert code == 2 and "arab_as_mena" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli("run", "--input", tmp_path, "--policy", tmp_path / "missing.toml")
    assert code == 2 and "cannot read policy file" in err


def test_every_sample_encoding_lands_with_its_source_format(landed):
    formats = {r[0] for r in query(landed, "SELECT DISTINCT race_source_format FROM patient_demographics")}
    assert {"us-core", "us-core-legacy-value", "cms-bluebutton", "text-only", "absent", "observation"} <= formats
    statuses = dict(query(landed, "SELECT race_ethnicity_status, count(*) FROM patient_demographics GROUP BY 1"))
    assert set(statuses) == {"reported", "declined", "unknown"}
    languages = {r[0] for r in query(landed, "SELECT DISTINCT preferred_language FROM patient_demographics")}
    assert {"en", "es", "zh", "vi", "ar"} <= languages and "en-US" not in languages
    assert (
        query(
            landed,
            "SELECT count(*) FROM patient_demographics WHERE state = 'CA' AND postal_code IS NOT NULL "
            "AND birth_date IS NOT NULL AND administrative_gender IS NOT NULL",
        )[0][0]
        > 250
    )


def test_a_failing_run_is_one_line_exit_3_and_recorded_as_failed(sample_feed, tmp_path, run_cli):
    warehouse = tmp_path / "w.duckdb"
    (tmp_path / ".w.duckdb.staging").write_text("a file where the staging folder goes: workers cannot write")
    code, _, err = run_cli("run", "--input", sample_feed / "single-patient.json", "--warehouse", warehouse)
    assert code == 3, err
    errors = [line for line in err.splitlines() if " INFO " not in line]
    assert len(errors) == 1 and errors[0].startswith("demographics: failed:") and "Traceback" not in err
    status, message = query(warehouse, "SELECT status, message FROM runs")[0]
    assert status == "failed" and message
    assert query(warehouse, "SELECT count(*) FROM patient_demographics")[0][0] == 0


def test_the_ledger_names_every_file_with_its_content_hash(sample_feed, landed):
    import hashlib

    ledger = {
        Path(r[0]).name: r[1:]
        for r in query(landed, "SELECT input_file, content_sha256, size_bytes, status, records_in FROM ingested_files")
    }
    assert set(ledger) == {p.name for p in sample_feed.iterdir()}
    for path in sample_feed.iterdir():  # hashed while read, including files the reader stops reading early
        data = path.read_bytes()
        assert ledger[path.name][:3] == (hashlib.sha256(data).hexdigest(), len(data), "landed")
    assert sum(r[3] for r in ledger.values()) == query(landed, "SELECT records_in FROM runs")[0][0]


@pytest.mark.parametrize("position", ["before", "after"])
@pytest.mark.slow
def test_log_level_works_before_and_after_the_subcommand(sample_feed, tmp_path, position, run_cli):
    args = ["run", "--input", sample_feed / "single-patient.json", "--warehouse", tmp_path / "w.duckdb"]
    args = ["--log-level", "WARNING", *args] if position == "before" else [*args, "--log-level", "WARNING"]
    code, _, err = run_cli(*args)
    assert code == 0 and " INFO " not in err


@pytest.mark.parametrize(
    ("given", "size", "in_workers"),
    [
        ([], "large", True),  # two byte ranges or more: one worker process per core
        ([], "small", False),
        (["--direct_num_workers=1"], "large", False),  # the user's choice wins
        (["--direct_running_mode", "multi_processing"], "small", True),
        (["--runner=DirectRunner"], "large", False),  # only the default runner is made parallel
    ],
)
def test_worker_processes_by_default_from_two_byte_ranges(monkeypatch, given, size, in_workers):
    """The read is parallel by default only when it can be shared; Great Expectations is then imported after it."""
    from pipelines.jobs.landing import AUTO_PARALLEL_BYTES, _reads_in_worker_processes, parallel_by_default

    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    args = parallel_by_default(given, AUTO_PARALLEL_BYTES if size == "large" else AUTO_PARALLEL_BYTES - 1)
    assert _reads_in_worker_processes(args) is in_workers
    assert ("--direct_num_workers=2" in args) is (size == "large" and not given)


@pytest.mark.parametrize(
    ("argv", "option", "expected"),
    [
        (["run", "--input", "a", "--input", "b", "c"], "input", ["a", "b", "c"]),
        (["status", "--input", "a", "--input", "b"], "input", ["a", "b"]),
        (["report", "--out", "o", "--source", "a", "--source", "b"], "source", ["a", "b"]),
        (["report", "--out", "o", "--measures", "m1.csv", "--measures", "m2.csv"], "measures", ["m1.csv", "m2.csv"]),
    ],
)
def test_a_repeated_list_option_adds_to_the_list(argv, option, expected):
    """`--input a --input b` reads both: a repeated option never silently drops what came first."""
    from pipelines.cli import build_parser

    args, _ = build_parser().parse_known_args(argv)
    assert [str(v) for v in getattr(args, option)] == expected
