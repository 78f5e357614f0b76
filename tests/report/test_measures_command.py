"""`demographics report --measures`: rates, intervals, differences and ratios by hand; the join (unmatched results,
several sources, deleted patients, --source); the small-denominator rule; suppression of numerators and
denominators in the files; MeasureReports equal to the same results as CSV."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from attacker import leaks
from report_rows import build_warehouse, deletion, many, person
from test_measure_inputs import measure_report

from pipelines.report.measures import STRATIFIERS

SECRET = "PATIENT-SECRET"
WHITE = {"hedis_race": "White", "hedis_ethnicity": "NotHispanicOrLatino", "categories": ["WHITE"]}
BLACK = {"hedis_race": "BlackOrAfricanAmerican", "hedis_ethnicity": "NotHispanicOrLatino", "categories": ["BLACK"]}
ASIAN = {"hedis_race": "Asian", "hedis_ethnicity": "NotHispanicOrLatino", "categories": ["ASIAN"]}
# (source, id prefix, strata, patients): who is in the warehouse
GROUPS = [
    ("feed_a", "w", WHITE, 65),
    ("feed_a", "b", BLACK, 70),
    ("feed_a", "a", ASIAN, 12),
    ("feed_b", "v", WHITE, 30),
]


def patients():
    found = [p for source, prefix, strata, n in GROUPS for p in many(n, f"{SECRET}-{prefix}", source=source, **strata)]
    return found + [
        person(f"{SECRET}-shared", source="feed_a", **WHITE),
        person(f"{SECRET}-shared", source="feed_b", **BLACK),
    ]


def pid(prefix: str, i: int | str) -> str:
    return f"{SECRET}-{prefix}-{i}" if prefix != "shared" else f"{SECRET}-shared"


def result(prefix, i, measure="CBP", denominator=True, numerator=False, exclusion=False, source="feed_a"):
    return {
        "patient_id": pid(prefix, i),
        "measure": measure,
        "denominator": denominator,
        "numerator": numerator,
        "exclusion": exclusion,
        "source": source,
    }


def block(prefix, start, count, met, **values):
    """`count` results of patients prefix-start.., the first `met` of them in the numerator."""
    return [result(prefix, start + i, numerator=i < met, **values) for i in range(count)]


# CBP by hand, feed_a: White 15/50, Black 3/40, Asian 7/12 -> Total 25/102; 5 White excluded (and in the numerator:
# they leave both), 10 White not in the denominator. SMALL: the small-denominator rule, White 10/29, Black 10/30.
ARITHMETIC = (
    block("w", 0, 50, 15)
    + block("b", 0, 40, 3)
    + block("a", 0, 12, 7)
    + block("w", 50, 5, 5, exclusion=True)
    + block("w", 55, 10, 0, denominator=False)
    + block("w", 0, 29, 10, measure="SMALL")
    + block("b", 0, 30, 10, measure="SMALL")
)


def write_csv(
    path: Path,
    rows: Iterable[dict],
    columns=("patient_id", "measure", "denominator", "numerator", "exclusion", "source"),
) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(
            {k: ("" if v is None else str(v).lower() if isinstance(v, bool) else v) for k, v in r.items()} for r in rows
        )
    return path


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    """measured(results, *options): the output folder of `report --measures` over the module's warehouse, made
    once per results file and options."""
    from pipelines.cli import main

    folder = tmp_path_factory.mktemp("measures")
    warehouse = build_warehouse(folder / "warehouse.duckdb", patients(), [deletion(f"{SECRET}-gone")])

    made: dict[tuple[str, ...], Path] = {}

    def make(results: Path, *options: str) -> Path:
        if (str(results), *options) not in made:
            out = folder / f"out{len(made)}"
            assert (
                main(
                    [
                        "report",
                        "--warehouse",
                        str(warehouse),
                        "--out",
                        str(out),
                        "--log-level",
                        "WARNING",
                        "--measures",
                        str(results),
                        *options,
                    ]
                )
                == 0
            )
            made[(str(results), *options)] = out
        return made[(str(results), *options)]

    make.warehouse = warehouse
    make.folder = folder
    return make


def read(out: Path, name: str = "measures") -> list[dict]:
    rows = pq.read_table(out / f"{name}.parquet").to_pylist()
    with (out / f"{name}.csv").open(encoding="utf-8") as handle:
        assert len(list(csv.DictReader(handle))) == len(rows)
    return rows


def pick(rows, source="feed_a", measure="CBP", stratifier="hedis_race"):
    return {
        r["stratum"]: r for r in rows if (r["source"], r["measure"], r["stratifier"]) == (source, measure, stratifier)
    }


@pytest.fixture(scope="module")
def arith(measured) -> Path:
    return write_csv(measured.folder / "arith.csv", ARITHMETIC)


@pytest.fixture(scope="module")
def arithmetic(measured, arith):
    """The measures file of arith.csv, suppression off."""
    return read(measured(arith, "--min-cell", "0"))


CONTRACT_COLUMNS = [
    "source",
    "measure",
    "stratifier",
    "stratum",
    "denominator",
    "numerator",
    "rate",
    "rate_ci_low",
    "rate_ci_high",
    "difference_from_reference",
    "ratio_to_reference",
    "suppressed",
    "suppression_reason",
]


@pytest.mark.slow
def test_the_file_has_exactly_the_contract_columns(arithmetic):
    assert list(arithmetic[0]) == CONTRACT_COLUMNS


@pytest.mark.slow
def test_results_with_no_row_give_empty_files_with_their_columns(measured, tmp_path):
    out = measured(write_csv(tmp_path / "header-only.csv", []))
    assert pq.read_table(out / "measures.parquet").column_names == CONTRACT_COLUMNS
    assert read(out) == [] and read(out, "measures_unmatched") == []
    assert (out / "measures.csv").read_text(encoding="utf-8").startswith('"source","measure","stratifier"')
    assert "Every result counted in a denominator met its patient" in (out / "index.html").read_text(encoding="utf-8")


# Total 25/102 = .245098. White 15/50 = .3: Wilson (.1910, .4375) (tests/report/test_rates.py), difference
# .3 - .245098 = .054902, ratio .3 * 102/25 = 1.224. Black 3/40 = .075: (.0258, .1986), .075 - .245098 = -.170098,
# .075 * 102/25 = .306. Asian 7/12: NA (denominator under 30), so no interval, difference or ratio.
@pytest.mark.parametrize(
    "stratum, expected",
    [
        ("Total", (102, 25, 0.2451, 0.0, 1.0)),
        ("White", (50, 15, 0.3, (0.1910, 0.4375), 0.0549, 1.224)),
        ("BlackOrAfricanAmerican", (40, 3, 0.075, (0.0258, 0.1986), -0.1701, 0.306)),
        ("Asian", (12, 7, None, (None, None), None, None)),
        ("NativeHawaiianOrOtherPacificIslander", (0, 0, None, (None, None), None, None)),
    ],
)
def test_rates_intervals_differences_and_ratios_by_hand(arithmetic, stratum, expected):
    r = pick(arithmetic)[stratum]
    if stratum == "Total":
        assert (
            r["denominator"],
            r["numerator"],
            r["rate"],
            r["difference_from_reference"],
            r["ratio_to_reference"],
        ) == expected
    else:
        d, n, rate, ci, difference, ratio = expected
        assert (
            r["denominator"],
            r["numerator"],
            r["rate"],
            (r["rate_ci_low"], r["rate_ci_high"]),
            r["difference_from_reference"],
            r["ratio_to_reference"],
        ) == (d, n, rate, ci, difference, ratio)
    assert r["suppressed"] is False and r["suppression_reason"] == ""


def test_every_stratum_of_every_stratifier_for_every_source_zeros_included(arithmetic):
    for source in ("feed_a", "feed_b", "(all)"):
        for stratifier, strata in STRATIFIERS.items():
            rows = pick(arithmetic, source, "CBP", stratifier)
            assert list(rows) == ["Total", *strata]
            assert sum(r["denominator"] for k, r in rows.items() if k != "Total") == rows["Total"]["denominator"]
            assert sum(r["numerator"] for k, r in rows.items() if k != "Total") == rows["Total"]["numerator"]
    assert {r["denominator"] for r in pick(arithmetic, "feed_b").values()} == {0}
    assert pick(arithmetic, "(all)") == {k: {**v, "source": "(all)"} for k, v in pick(arithmetic).items()}
    assert pick(arithmetic, stratifier="omb2024_category")["ASIAN"]["numerator"] == 7


def test_the_small_denominator_rule_is_na_not_suppression(arithmetic):
    rows = pick(arithmetic, measure="SMALL")
    white, black = rows["White"], rows["BlackOrAfricanAmerican"]
    assert (white["denominator"], white["numerator"], white["rate"], white["suppressed"]) == (29, 10, None, False)
    assert (black["denominator"], black["rate"], black["rate_ci_low"] is not None) == (30, 0.3333, True)


@pytest.mark.slow
def test_reference_group_per_stratifier(measured, arith):
    out = measured(arith, "--min-cell", "0", "--reference-group", "hedis_race=White")
    race, ethnicity = pick(read(out)), pick(read(out), stratifier="hedis_ethnicity")
    # Black against White: .075 - .3 = -.225, .075/.3 = .25; the Total against White: .245098 - .3, .245098/.3
    assert (
        race["BlackOrAfricanAmerican"]["difference_from_reference"],
        race["BlackOrAfricanAmerican"]["ratio_to_reference"],
    ) == (-0.225, 0.25)
    assert (race["Total"]["difference_from_reference"], race["Total"]["ratio_to_reference"]) == (-0.0549, 0.817)
    assert race["White"]["ratio_to_reference"] == 1.0
    assert ethnicity["NotHispanicOrLatino"]["ratio_to_reference"] == 1.0  # other stratifiers: the Total


@pytest.fixture(scope="module")
def join(measured) -> Path:
    return write_csv(measured.folder / "join.csv", join_results())


def join_results():
    """Results that meet no patient, several, or one through their source or without one."""
    return [
        result("shared", "", source=None),  # no source, in feed_a and feed_b: ambiguous
        result("v", 0, numerator=True, source=None),  # no source, only in feed_b: matched there
        result("w", 0, source=None),  # no source, only in feed_a
        result("ghost", 1, numerator=True),  # never landed
        result("gone", "", source="feed_a"),  # deleted from feed_a
        result("w", 1, source="feed_b"),  # in feed_a, not in feed_b
        result("w", 2, numerator=True, source="feed_x"),  # a source the warehouse does not have
        result("w", 3, source="(all)"),  # not a source: the name of a row, taken as given
        result("v", 1, source="feed_b", exclusion=True),
    ]  # excluded: counts nowhere


@pytest.mark.slow
def test_unmatched_results_count_in_unknown_and_are_reported_by_reason(measured, join):
    rows = read(out := measured(join, "--min-cell", "0"))
    a, b, every = pick(rows), pick(rows, "feed_b"), pick(rows, "(all)")
    assert (a["Unknown"]["denominator"], a["Unknown"]["numerator"], a["White"]["denominator"]) == (2, 1, 1)
    assert (b["Unknown"]["denominator"], b["White"]["denominator"], b["White"]["numerator"]) == (1, 1, 1)
    # (all): feed_a + feed_b + the ambiguous result (no source) + those of feed_x and "(all)"
    assert (every["Unknown"]["denominator"], every["Unknown"]["numerator"], every["Total"]["denominator"]) == (6, 2, 8)
    assert pick(rows, stratifier="omb2024_category")["UNKNOWN"]["denominator"] == 2
    unmatched = {
        (r["source"], r["reason"]): (r["denominator"], r["numerator"]) for r in read(out, "measures_unmatched")
    }
    assert unmatched == {
        ("feed_a", "patient_not_found"): (2, 1),
        ("feed_b", "patient_not_found"): (1, 0),
        ("(none)", "patient_not_found"): (2, 1),
        ("(none)", "patient_id_ambiguous"): (1, 0),
        ("(all)", "patient_not_found"): (5, 2),
        ("(all)", "patient_id_ambiguous"): (1, 0),
    }


@pytest.mark.slow
def test_source_leaves_out_the_results_of_other_sources(measured, join, run_cli):
    out = measured.folder / "only-a"
    code, stdout, _ = run_cli(
        "report",
        "--warehouse",
        measured.warehouse,
        "--out",
        out,
        "--measures",
        join,
        "--source",
        "feed_a",
        "--min-cell",
        "0",
    )
    assert code == 0
    rows = read(out)
    assert {r["source"] for r in rows} == {"feed_a", "(all)"}
    # left out: v-0 (feed_b by its id) and w-1 of feed_b; the ambiguous one counts under feed_a, the only source
    # reported; feed_x's in (all)
    assert pick(rows)["Total"]["denominator"] == 4 and pick(rows, "(all)")["Total"]["denominator"] == 6
    assert "3 of sources left out by --source" in stdout and "0 excluded" in stdout  # v-1 is left out first


@pytest.mark.slow
def test_a_single_source_takes_the_unmatched_results_that_name_none(tmp_path, run_cli):
    warehouse = build_warehouse(tmp_path / "w.duckdb", many(40, "p"))
    results = write_csv(
        tmp_path / "r.csv",
        [{"patient_id": f"p-{i}", "measure": "COL", "denominator": 1, "numerator": i % 2} for i in range(42)],
        columns=("patient_id", "measure", "denominator", "numerator"),
    )
    code, _, _ = run_cli(
        "report", "--warehouse", warehouse, "--out", tmp_path / "out", "--measures", results, "--min-cell", "0"
    )
    assert code == 0
    assert {(r["source"], r["reason"], r["denominator"]) for r in read(tmp_path / "out", "measures_unmatched")} == {
        ("feed_a", "patient_not_found", 2),
        ("(all)", "patient_not_found", 2),
    }
    assert pick(read(tmp_path / "out"), measure="COL")["Total"]["denominator"] == 42


@pytest.mark.slow
def test_measure_reports_give_the_rows_of_the_same_results_as_csv(measured, arith):
    """The results of arith.csv as NDJSON MeasureReports and as one Bundle: identical files, suppression included
    (a MeasureReport names no source: every patient of these results is in one source only)."""
    reports = [
        measure_report(
            f"Patient/{r['patient_id']}",
            measure=f"https://www.ncqa.org/fhir/Measure/{r['measure']}",
            denominator=int(r["denominator"]),
            numerator=int(r["numerator"]),
            exclusion=int(r["exclusion"]),
        )
        for r in ARITHMETIC
    ]
    ndjson = measured.folder / "same.ndjson"
    ndjson.write_text("\n".join(json.dumps(r) for r in reports) + "\n", encoding="utf-8")
    bundle = measured.folder / "same-bundle.json"
    bundle.write_text(
        json.dumps(
            {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in reports]}, indent=1
        ),
        encoding="utf-8",
    )
    expected = read(measured(arith))
    assert any(r["suppressed"] for r in expected) and any(r["rate"] for r in expected)
    assert read(measured(ndjson)) == expected and read(measured(bundle)) == expected


def test_published_files_hide_small_numerators_denominators_and_complements(measured, arith):
    out = measured(arith)
    rows = read(out)
    for r in rows:
        for column in ("denominator", "numerator"):
            assert r[column] is None or not 0 < r[column] < 11, r
        if r["denominator"] is not None and r["numerator"] is not None:
            assert not 0 < r["denominator"] - r["numerator"] < 11, r  # nobody counts the members left out
        assert r["suppressed"] == (r["denominator"] is None or r["numerator"] is None)
        if r["suppressed"]:
            assert r["rate"] is r["rate_ci_low"] is r["difference_from_reference"] is r["ratio_to_reference"] is None
    black = pick(rows)["BlackOrAfricanAmerican"]
    assert (black["denominator"], black["numerator"], black["suppression_reason"]) == (40, None, "primary")


def test_no_hidden_count_of_the_published_measures_can_be_recovered(measured, arith):
    """The outsider reads measures.csv (denominators, numerators, markers) and knows the members not in a
    numerator only through them; nothing hidden and no small complement is pinned or shown small."""
    out = measured(arith)
    cells = [(source, prefix, met) for source, prefix, _, _ in GROUPS for met in (True, False)]
    truth = dict.fromkeys(cells, 0)
    strata = {prefix: s for _, prefix, s, _ in GROUPS}
    for r in ARITHMETIC:
        if r["measure"] == "CBP" and r["denominator"] and not r["exclusion"]:
            truth["feed_a", r["patient_id"].split("-")[-2], r["numerator"]] += 1
    figures, reasons = {}, {}
    for r in read(out):
        if r["measure"] != "CBP":
            continue

        def members(met, r=r):
            return frozenset(
                i
                for i, (s, prefix, m) in enumerate(cells)
                if r["source"] in ("(all)", s)
                and m in met
                and r["stratum"] in ("Total", _stratum(strata[prefix], r["stratifier"]))
            )

        for kind, met in (("denominator", (True, False)), ("numerator", (True,)), ("not_met", (False,))):
            key = (r["source"], r["stratifier"], r["stratum"], kind)
            figures[key] = (members(met), sum(truth[cells[i]] for i in members(met)))
            if kind == "not_met":
                reasons[key] = "unpublished"
            elif r[kind] is None:
                reasons[key] = r["suppression_reason"]
    assert [k for k, reason in reasons.items() if reason != "unpublished"]
    assert leaks(len(cells), figures, reasons, 11) == []


def _stratum(strata: dict, stratifier: str) -> str:
    return strata["categories"][0] if stratifier == "omb2024_category" else strata[stratifier]


@pytest.mark.slow
def test_no_patient_value_reaches_the_files_or_the_page(measured, join):
    out = measured(join)
    for path in out.iterdir():
        if path.suffix in (".csv", ".html"):
            assert SECRET not in path.read_text(encoding="utf-8"), path.name


@pytest.mark.parametrize(
    "options, message",
    [
        (["--reference-group", "hedis_race=Purple"], "hedis_race has the strata"),
        (["--reference-group", "race=White"], "STRATIFIER one of hedis_race"),
        (["--reference-group", "hedis_race=White", "--reference-group", "hedis_race=Asian"], "more than once"),
    ],
)
def test_bad_reference_group_is_one_line_and_exit_2(measured, arith, run_cli, options, message):
    code, _, err = run_cli(
        "report", "--warehouse", measured.warehouse, "--out", measured.folder / "bad", "--measures", arith, *options
    )
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_reference_group_needs_measures_and_a_missing_column_is_exit_2(measured, run_cli, tmp_path):
    code, _, err = run_cli(
        "report", "--warehouse", measured.warehouse, "--out", tmp_path, "--reference-group", "hedis_race=White"
    )
    assert code == 2 and "needs --measures" in err
    bad = write_csv(tmp_path / "bad.csv", [], columns=("patient_id", "measure", "denominator"))
    code, _, err = run_cli("report", "--warehouse", measured.warehouse, "--out", tmp_path, "--measures", bad)
    assert code == 2 and "missing column numerator" in err and "Traceback" not in err


@pytest.mark.slow
def test_rejects_are_written_counted_and_kept_off_the_page(measured, run_cli, tmp_path):
    path = tmp_path / "bad-rows.csv"
    path.write_text(
        "patient_id,measure,denominator,numerator\n"
        f"{SECRET}-w-0,CBP,true,false\n{SECRET}-w-1,CBP,maybe,false\n,CBP,1,0\n",
        encoding="utf-8",
    )
    code, stdout, _ = run_cli(
        "report", "--warehouse", measured.warehouse, "--out", tmp_path / "out", "--measures", path
    )
    assert (
        code == 0
        and "2 rows rejected (measure_result_invalid_boolean 1, measure_result_missing_patient_id 1)" in stdout
    )
    with (tmp_path / "out" / "measures_rejected.csv").open(encoding="utf-8") as handle:
        rejected = list(csv.DictReader(handle))
    assert [(r["file"], r["position"], r["reason"]) for r in rejected] == [
        (str(path), "line 3", "measure_result_invalid_boolean"),
        (str(path), "line 4", "measure_result_missing_patient_id"),
    ]
    page = (tmp_path / "out" / "index.html").read_text(encoding="utf-8")
    assert "2 rows rejected" in page and "line 3" not in page and "measures_rejected.csv" in page
