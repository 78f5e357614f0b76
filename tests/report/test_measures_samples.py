"""The synthetic measure results (pipelines/measures_samples.py): fixed seed, eligibility, the built-in disparity,
and the README's flow on the sample feed."""

from __future__ import annotations

import datetime as dt

import pyarrow.parquet as pq
import pytest

from pipelines import measures_samples
from pipelines.measures_samples import MEASURES, age_at_year_end, results_for


def fake_patients(count: int):
    races = ["White", "Asian", "BlackOrAfricanAmerican"]
    return [
        {
            "source": "s",
            "patient_id": f"p{i}",
            "birth_date": dt.date(1930 + i % 90, 1 + i % 12, 1),
            "administrative_gender": "female" if i % 2 else "male",
            "hedis_race": races[i % 3],
            "hedis_ethnicity": "NotHispanicOrLatino",
        }
        for i in range(count)
    ]


def test_same_seed_same_results_and_another_seed_others():
    patients = fake_patients(300)
    assert results_for(patients) == results_for(patients)
    assert results_for(patients, seed=1) != results_for(patients)


def test_eligibility_by_age_and_sex_at_the_end_of_the_year():
    assert age_at_year_end(dt.date(2008, 12, 31)) == 18 and age_at_year_end(dt.date(2009, 1, 1)) == 17
    patients = {p["patient_id"]: p for p in fake_patients(600)}
    for r in results_for(list(patients.values())):
        if r["patient_id"] in patients:
            p = patients[r["patient_id"]]
            measure = next(m for m in MEASURES if m.name == r["measure"])
            assert measure.eligible(age_at_year_end(p["birth_date"]), p["administrative_gender"])
    assert {r["measure"] for r in results_for(list(patients.values())) if r["patient_id"] in patients} == {
        "CBP",
        "COL",
        "BCS",
        "WCV",
    }
    assert all(
        patients[r["patient_id"]]["administrative_gender"] == "female"
        for r in results_for(list(patients.values()))
        if r["measure"] == "BCS" and r["patient_id"] in patients
    )


def test_the_disparity_is_built_in():
    results = results_for(fake_patients(3000))
    races = {p["patient_id"]: p["hedis_race"] for p in fake_patients(3000)}

    def rate(asian: bool) -> float:
        mine = [
            r
            for r in results
            if r["measure"] == "CBP"
            and r["denominator"]
            and r["patient_id"] in races
            and (races[r["patient_id"]] == "Asian") == asian
        ]
        return sum(r["numerator"] for r in mine) / len(mine)

    assert rate(asian=False) - rate(asian=True) > 0.25


@pytest.mark.slow
def test_the_readme_flow_on_the_sample_feed(sample_feed, tmp_path, run_cli):
    """run --input samples/, then the generator, then report --measures with its CSV or its MeasureReports."""
    warehouse = tmp_path / "warehouse.duckdb"
    assert run_cli("run", "--input", sample_feed, "--warehouse", warehouse, "--no-validation")[0] == 0
    for folder in ("measures", "again"):
        assert measures_samples.main(["--warehouse", str(warehouse), "--out", str(tmp_path / folder)]) == 0
    for name in ("results.csv", "measure-reports.ndjson"):
        assert (tmp_path / "measures" / name).read_bytes() == (tmp_path / "again" / name).read_bytes()
    outs = {}
    for name in ("results.csv", "measure-reports.ndjson"):
        outs[name] = tmp_path / f"report-{name}"
        code, stdout, _ = run_cli(
            "report", "--warehouse", warehouse, "--out", outs[name], "--measures", tmp_path / "measures" / name
        )
        assert code == 0 and "(5 unmatched, counted in Unknown)" in stdout and "no row rejected" in stdout
    rows = pq.read_table(outs["results.csv"] / "measures.parquet").to_pylist()
    assert rows == pq.read_table(outs["measure-reports.ndjson"] / "measures.parquet").to_pylist()
    cbp = {
        r["stratum"]: r for r in rows if (r["source"], r["measure"], r["stratifier"]) == ("(all)", "CBP", "hedis_race")
    }
    assert cbp["Asian"]["rate"] < cbp["Total"]["rate"] - 0.1 and cbp["Asian"]["difference_from_reference"] < -0.1
    assert "Quality measures" in (outs["results.csv"] / "index.html").read_text(encoding="utf-8")


def test_a_warehouse_without_patients_is_one_line(tmp_path, capsys):
    import duckdb

    duckdb.connect(str(tmp_path / "blank.duckdb")).close()
    assert measures_samples.main(["--warehouse", str(tmp_path / "blank.duckdb"), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "run `demographics run --input samples/` first" in err and len(err.strip().splitlines()) == 1
