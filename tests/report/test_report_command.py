"""`demographics report` end to end: tables and their sums, views, suppression in the files, --source, --by."""

from __future__ import annotations

import csv
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from attacker import leaks
from report_rows import many

from pipelines.report.tables import HEDIS_RACE_STRATA, report_tables

TABLES = [t.name for t in report_tables()]
EXCLUSIVE = [t.name for t in report_tables() if not t.overlapping]
SECRET = "PATIENT-SECRET"  # every patient id starts with it: it must never be published


def feeds():
    """Two sources; the providers org/1 and org/2, and patients without one."""
    a = {"source": "feed_a"}
    b = {"source": "feed_b"}
    return (
        many(30, f"{SECRET}-a-white", managing_organization="Organization/1", **a)
        + many(
            20,
            f"{SECRET}-a-asian",
            categories=["ASIAN"],
            hedis_race="Asian",
            race_detailed_codes=["2028-9", "2034-7"],
            managing_organization="Organization/2",
            **a,
        )
        + many(
            12,
            f"{SECRET}-a-hisp",
            categories=["HISPANIC", "WHITE"],
            hedis_ethnicity="HispanicOrLatino",
            ethnicity_detailed_codes=["2135-2", "2148-5"],
            preferred_language="es",
            managing_organization="Organization/1",
            **a,
        )
        + many(
            5,
            f"{SECRET}-a-black",
            categories=["BLACK"],
            hedis_race="BlackOrAfricanAmerican",
            managing_organization="Organization/2",
            **a,
        )
        + many(
            15,
            f"{SECRET}-a-declined",
            categories=[],
            status="declined",
            hedis_race="AskedButNoAnswer",
            hedis_ethnicity="AskedButNoAnswer",
            **a,
        )
        + many(
            12,
            f"{SECRET}-a-unknown",
            categories=[],
            status="unknown",
            hedis_race="Unknown",
            hedis_ethnicity="Unknown",
            preferred_language=None,
            managing_organization="Organization/1",
            **a,
        )
        + many(25, f"{SECRET}-b-white", managing_organization="Organization/2", **b)
        + many(14, f"{SECRET}-b-asianwhite", categories=["ASIAN", "WHITE"], hedis_race="TwoOrMoreRaces", **b)
        + many(
            11,
            f"{SECRET}-b-writein",
            categories=[],
            unmapped_text_only=True,
            hedis_race="Unknown",
            hedis_ethnicity="Unknown",
            race_text="Klingon",
            managing_organization="Organization/1",
            **b,
        )
        + many(
            3,
            f"{SECRET}-b-mena",
            categories=["MENA"],
            race_detailed_codes=["2106-3", "2121-2"],
            managing_organization="Organization/1",
            **b,
        )
    )


def read(folder: Path, name: str) -> list[dict]:
    """A published table from its Parquet file, checked against its CSV twin."""
    rows = pq.read_table(folder / f"{name}.parquet").to_pylist()
    with (folder / f"{name}.csv").open(encoding="utf-8") as handle:
        assert len(list(csv.DictReader(handle))) == len(rows)
    return rows


def by_source(rows, source):
    return {r["stratum"]: r for r in rows if r["source"] == source}


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """report(*options): the output folder of `demographics report` with these options, made once per module."""
    from report_rows import build_warehouse

    from pipelines.cli import main

    folder = tmp_path_factory.mktemp("report")
    path = build_warehouse(folder / "warehouse.duckdb", feeds())
    made: dict[tuple[str, ...], Path] = {}

    def make(*options: str) -> Path:
        if options not in made:
            out = folder / f"out{len(made)}"
            assert (
                main(["report", "--warehouse", str(path), "--out", str(out), "--log-level", "WARNING", *options]) == 0
            )
            made[options] = out
        return made[options]

    make.warehouse = path
    return make


@pytest.mark.slow
def test_report_says_where_it_wrote(warehouse, run_cli, tmp_path):
    out = tmp_path / "out"
    code, stdout, _ = run_cli("report", "--warehouse", warehouse(feeds()), "--out", out)
    assert code == 0
    assert f"wrote {out / 'index.html'}" in stdout and f"to {out}/" in stdout
    assert "suppression: 4 counts from 1 to 10 hidden" in stdout


@pytest.mark.slow
def test_exclusive_tables_add_up_to_the_total_and_all_adds_up_the_sources(report):
    out = report("--min-cell", "0")
    totals = {"feed_a": 94, "feed_b": 53, "(all)": 147}
    for name in EXCLUSIVE:
        rows = read(out, name)
        for source, total in totals.items():
            mine = [r for r in rows if r["source"] == source]
            assert sum(r["patients"] for r in mine) == total, name
            assert {r["denominator"] for r in mine} == {total}
        for stratum in {r["stratum"] for r in rows}:
            cells = by_source(rows, "feed_a")[stratum], by_source(rows, "feed_b")[stratum]
            assert by_source(rows, "(all)")[stratum]["patients"] == sum(c["patients"] for c in cells)


@pytest.mark.parametrize(
    "name, source, expected",
    [
        (
            "hedis_race",
            "feed_a",
            {
                "White": 42,
                "Asian": 20,
                "BlackOrAfricanAmerican": 5,
                "AskedButNoAnswer": 15,
                "Unknown": 12,
                "NativeHawaiianOrOtherPacificIslander": 0,
                "SomeOtherRace": 0,
            },
        ),
        (
            "hedis_ethnicity",
            "(all)",
            {"HispanicOrLatino": 12, "AskedButNoAnswer": 15, "Unknown": 23, "NotHispanicOrLatino": 97},
        ),
        (
            "omb2024_single_category",
            "feed_b",
            {"WHITE": 25, "MULTIRACIAL_MULTIETHNIC": 14, "SOME_OTHER": 11, "MENA": 3, "ASIAN": 0, "DECLINED": 0},
        ),
        (
            "omb2024_alone_and_combinations",
            "(all)",
            {"WHITE": 55, "HISPANIC+WHITE": 12, "ASIAN+WHITE": 14, "SOME_OTHER": 11, "UNKNOWN": 12, "NHPI": 0},
        ),
        ("omb2024_alone_or_in_combination", "(all)", {"WHITE": 81, "ASIAN": 34, "HISPANIC": 12, "MENA": 3, "AIAN": 0}),
        ("completeness", "feed_b", {"reported": 42, "unmapped_text_only": 11, "declined": 0, "unknown": 0}),
        ("completeness", "(all)", {"reported": 109, "unmapped_text_only": 11, "declined": 15, "unknown": 12}),
        ("language", "feed_a", {"en": 70, "es": 12, None: 12}),
        ("detailed_groups", "(all)", {"2034-7": 20, "2148-5": 12, "2121-2": 3}),
    ],
)
def test_table_figures(report, name, source, expected):
    rows = by_source(read(report("--min-cell", "0"), name), source)
    assert {k: rows[k]["patients"] for k in expected} == expected


def test_every_hedis_stratum_is_listed_and_overlapping_tables_cover_the_reported(report):
    out = report("--min-cell", "0")
    assert [r["stratum"] for r in read(out, "hedis_race") if r["source"] == "feed_b"] == list(HEDIS_RACE_STRATA)
    reported = sum(r["patients"] for r in read(out, "omb2024_alone_or_in_combination") if r["source"] == "(all)")
    assert reported >= 147 - 15 - 12 - 11
    detailed = by_source(read(out, "detailed_groups"), "(all)")
    assert (detailed["2034-7"]["display"], detailed["2034-7"]["category"]) == ("Chinese", "ASIAN")
    assert detailed["2121-2"]["category"] == "MENA" and "2028-9" not in detailed  # categories are not detail
    completeness = by_source(read(out, "completeness"), "feed_b")
    assert completeness["reported"]["goal"] == 0.8 and completeness["reported"]["meets_goal"] is False


def test_views_give_the_figures_of_the_files(report):
    out = report("--min-cell", "0")
    with duckdb.connect(str(report.warehouse), read_only=True) as con:
        for name in TABLES:
            view = {(s, k): n for s, k, n in con.execute(f"SELECT source, stratum, patients FROM {name}").fetchall()}
            assert view == {(r["source"], r["stratum"]): r["patients"] for r in read(out, name)}, name


@pytest.mark.slow
def test_published_files_hold_no_small_count_and_no_share_of_a_hidden_one(report):
    out = report()
    hidden = 0
    for name in TABLES + ["completeness_trend"]:
        for r in read(out, name):
            assert r["patients"] is None or not 0 < r["patients"] < 11, name
            assert r["suppressed"] == (r["patients"] is None) and (r["suppression_reason"] != "") == r["suppressed"]
            if r["suppressed"]:
                hidden += 1
                assert r["share"] is None
    assert hidden and read(out, "hedis_race")[2]["suppression_reason"] == "primary"  # 5 Black patients of feed_a


def test_source_restricts_the_report(report):
    out = report("--source", "feed_a", "--min-cell", "0")
    rows = read(out, "hedis_race")
    assert {r["source"] for r in rows} == {"feed_a", "(all)"}
    assert by_source(rows, "feed_a") == {k: {**v, "source": "feed_a"} for k, v in by_source(rows, "(all)").items()}


PROVIDERS = {"Organization/1": 30 + 12 + 12 + 11 + 3, "Organization/2": 20 + 5 + 25, None: 15 + 14}


@pytest.mark.slow
def test_provider_folders_hold_their_own_patients_only(report):
    out = report("--by", "managing_organization", "--min-cell", "0")
    with (out / "providers.csv").open(encoding="utf-8") as handle:
        folders = {r["managing_organization"] or None: r["folder"] for r in csv.DictReader(handle)}
    assert folders == {
        "Organization/1": "organization-1",
        "Organization/2": "organization-2",
        None: "no-managing-organization",
    }
    for reference, patients in PROVIDERS.items():
        folder = out / folders[reference]
        for name in EXCLUSIVE:
            rows = read(folder, name)
            assert {r["managing_organization"] for r in rows} == {reference or "(none)"}
            assert sum(r["patients"] for r in rows if r["source"] == "(all)") == patients
        others = [ref for ref in PROVIDERS if ref and ref != reference]
        page = (folder / "index.html").read_text(encoding="utf-8")
        assert "Plan-wide" in page and not any(ref in page for ref in others)
    plan = read(out, "hedis_race")
    assert {r["managing_organization"] for r in plan} == {"(all)"}


@pytest.mark.slow
def test_no_patient_identifier_is_ever_written(report):
    out = report("--by", "general_practitioner")
    for path in out.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


@pytest.mark.slow
def test_provider_tables_are_suppressed_with_the_plan_wide_ones(report):
    """An outsider holding every provider's files and the plan's cannot recover a hidden HEDIS race count."""

    def hedis_race(out):
        return [r for folder in [out, *(p for p in out.iterdir() if p.is_dir())] for r in read(folder, "hedis_race")]

    rows = hedis_race(report("--by", "managing_organization"))
    truth = {
        (r["managing_organization"], r["source"], r["stratum"]): r
        for r in hedis_race(report("--by", "managing_organization", "--min-cell", "0"))
    }
    cells = sorted({(g, s, k) for g, s, k in truth if g != "(all)" and s != "(all)"}, key=str)
    figures, reasons = {}, {}
    for r in rows:
        key = (r["managing_organization"], r["source"], r["stratum"])
        members = frozenset(
            i for i, (g, s, k) in enumerate(cells) if key[0] in ("(all)", g) and key[1] in ("(all)", s) and key[2] == k
        )
        figures[key] = (members, truth[key]["patients"])
        if r["suppressed"]:
            reasons[key] = r["suppression_reason"]
    assert reasons and leaks(len(cells), figures, reasons, 11) == []


@pytest.mark.parametrize(
    "options, message",
    [
        (["--min-cell", "2"], "at least 3"),
        (["--by", "postal_code"], "invalid choice"),
        (["--source", "nowhere"], "no patients for source nowhere"),
    ],
)
def test_bad_usage_is_one_line_and_exit_2(warehouse, run_cli, tmp_path, options, message):
    code, _, err = run_cli("report", "--warehouse", warehouse(feeds()), "--out", tmp_path / "out", *options)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_a_missing_or_empty_warehouse_is_bad_usage(run_cli, tmp_path, warehouse):
    code, _, err = run_cli("report", "--warehouse", tmp_path / "none.duckdb", "--out", tmp_path / "out")
    assert code == 2 and "does not exist" in err and "Traceback" not in err
    duckdb.connect(str(tmp_path / "blank.duckdb")).close()
    code, _, err = run_cli("report", "--warehouse", tmp_path / "blank.duckdb", "--out", tmp_path / "out")
    assert code == 2 and "nothing has landed yet" in err
    code, _, err = run_cli("report", "--warehouse", warehouse([]), "--out", tmp_path / "out")
    assert code == 2 and "no patients" in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_help_and_log_level(run_cli, capsys, warehouse, tmp_path):
    code, out, _ = run_cli("report", "--help")
    assert code == 0 and "--min-cell" in out
    code, _, _ = run_cli("report", "--warehouse", warehouse(feeds()), "--out", tmp_path, "--log-level", "DEBUG")
    assert code == 0 and (tmp_path / "index.html").is_file()
