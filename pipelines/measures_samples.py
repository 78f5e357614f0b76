"""Synthetic member-level quality-measure results for the patients of a warehouse (fixed seed), so that
`demographics report --measures` works right after the Quick start:

    python -m pipelines.measures_samples --warehouse warehouse.duckdb --out measures/
    demographics report --warehouse warehouse.duckdb --out report/ --measures measures/results.csv

writes `results.csv` and `measure-reports.ndjson` in --out: the same results, once as CSV (with `source`) and once
as FHIR MeasureReports of type `individual` (which name no source: the sample feed has one). They are made on
demand, not kept in `samples/`: `demographics run --input samples/` reads every file there as FHIR.

Four measures named like HEDIS measures, with eligibility from age and sex at the end of the measurement year, and a
built-in disparity: CBP is met far less often by members in the HEDIS race stratum Asian (37% against 72%; an
arbitrary stratum, chosen because the sample feed has enough of them for the rate to be published). The CBP
denominator is every adult, broader than the real measure's, so that the sample's few hundred patients give strata
of 30 and more. A few results name members who are not in the warehouse (unmatched), a few are exclusions. Nothing
here is real.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from pipelines.errors import UsageError

SEED = 20261129
MEASUREMENT_YEAR_END = dt.date(2026, 12, 31)
CANONICAL = "https://example.org/fhir/Measure/{}"  # synthetic measures, not NCQA's
POPULATION = "http://terminology.hl7.org/CodeSystem/measure-population"
EXCLUDED = 0.03  # share of denominators excluded (hospice and the like)
UNMATCHED = 5  # results of members the warehouse does not have
COLUMNS = ("patient_id", "measure", "denominator", "numerator", "exclusion", "source")


@dataclass(frozen=True)
class SampleMeasure:
    """A synthetic measure: who is eligible, how often the eligible are in the denominator, and the rate met,
    lower by `gap` for members whose `stratifier` is `stratum` (the built-in disparity)."""

    name: str
    eligible: Callable[[int, str], bool]  # (age, administrative_gender) -> eligible
    rate: float
    in_denominator: float = 0.9
    stratifier: str = ""
    stratum: str = ""
    gap: float = 0.0

    def met_rate(self, patient: dict[str, Any]) -> float:
        return self.rate - (self.gap if self.stratifier and patient[self.stratifier] == self.stratum else 0.0)


MEASURES = (
    SampleMeasure(
        "CBP", lambda age, _: age >= 18, 0.72, in_denominator=1.0, stratifier="hedis_race", stratum="Asian", gap=0.35
    ),
    SampleMeasure("COL", lambda age, _: 45 <= age <= 75, 0.65),
    SampleMeasure("BCS", lambda age, gender: 40 <= age <= 74 and gender == "female", 0.72),
    SampleMeasure("WCV", lambda age, _: 3 <= age <= 21, 0.55),
)


def age_at_year_end(birth_date: dt.date) -> int:
    end = MEASUREMENT_YEAR_END
    return end.year - birth_date.year - ((end.month, end.day) < (birth_date.month, birth_date.day))


def results_for(patients: list[dict[str, Any]], seed: int = SEED) -> list[dict[str, Any]]:
    """One result per eligible patient and measure (patients in the order given), then a few unmatched ones."""
    rng = random.Random(seed)
    out = []
    for measure in MEASURES:
        for p in patients:
            if p["birth_date"] is None or not measure.eligible(
                age_at_year_end(p["birth_date"]), p["administrative_gender"] or ""
            ):
                continue
            denominator = rng.random() < measure.in_denominator
            numerator = denominator and rng.random() < measure.met_rate(p)
            out.append(
                {
                    "patient_id": p["patient_id"],
                    "measure": measure.name,
                    "denominator": denominator,
                    "numerator": numerator,
                    "exclusion": denominator and rng.random() < EXCLUDED,
                    "source": p["source"],
                }
            )
    for i in range(UNMATCHED):
        out.append(
            {
                "patient_id": f"member-not-in-warehouse-{i + 1}",
                "measure": MEASURES[i % len(MEASURES)].name,
                "denominator": True,
                "numerator": rng.random() < 0.5,
                "exclusion": False,
                "source": patients[0]["source"] if patients else None,
            }
        )
    return out


def measure_report(result: dict[str, Any]) -> dict[str, Any]:
    """A result as a FHIR MeasureReport of type individual (what a HEDIS engine's FHIR export gives)."""
    counts = (
        ("denominator", result["denominator"]),
        ("numerator", result["numerator"]),
        ("denominator-exclusion", result["exclusion"]),
    )
    return {
        "resourceType": "MeasureReport",
        "status": "complete",
        "type": "individual",
        "measure": CANONICAL.format(result["measure"]),
        "subject": {"reference": f"Patient/{result['patient_id']}"},
        "period": {"start": f"{MEASUREMENT_YEAR_END.year}-01-01", "end": MEASUREMENT_YEAR_END.isoformat()},
        "group": [
            {
                "population": [
                    {"code": {"coding": [{"system": POPULATION, "code": code}]}, "count": int(flag)}
                    for code, flag in counts
                ]
            }
        ],
    }


def read_patients(warehouse: str) -> list[dict[str, Any]]:
    from pipelines.report.tables import records
    from pipelines.tables import PATIENTS
    from pipelines.warehouse import connect, table_exists

    with connect(warehouse, read_only=True) as con:
        if not table_exists(con, PATIENTS):
            raise UsageError(f"{warehouse} has no {PATIENTS} table: run `demographics run --input samples/` first")
        return records(
            con,
            f"SELECT source, patient_id, birth_date, administrative_gender, hedis_race, "
            f"hedis_ethnicity FROM {PATIENTS} ORDER BY source, patient_id",
        )


def write(results: list[dict[str, Any]], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    as_csv, as_fhir = out / "results.csv", out / "measure-reports.ndjson"
    with as_csv.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows({k: str(v).lower() if isinstance(v, bool) else v for k, v in r.items()} for r in results)
    as_fhir.write_bytes(b"".join(orjson.dumps(measure_report(r)) + b"\n" for r in results))
    return [as_csv, as_fhir]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.measures_samples", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--warehouse",
        default="warehouse.duckdb",
        metavar="FILE",
        help="the warehouse whose patients get results (default warehouse.duckdb)",
    )
    parser.add_argument("--out", default="measures", metavar="DIR", help="where to write (default measures/)")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    try:
        results = results_for(read_patients(args.warehouse), args.seed)
    except UsageError as err:
        print(f"measures_samples: error: {err}", file=sys.stderr)
        return err.exit_code
    for path in write(results, Path(args.out)):
        print(f"wrote {path}")
    print(f"{len(results)} results of {len(MEASURES)} measures ({', '.join(m.name for m in MEASURES)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
