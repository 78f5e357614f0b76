"""Reading member-level results: every row checked, every bad row a reject with its reason and position, every
unreadable file one line of bad usage (pipelines/report/measure_results.py, measure_inputs.py, measure_reports.py)."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines.errors import UsageError
from pipelines.report.measure_inputs import read_measure_inputs
from pipelines.report.measure_reports import measure_name
from pipelines.report.measure_results import REJECT_REASONS, Invalid, MeasureResult, as_boolean, check_result

ROOT = Path(__file__).resolve().parents[2]
POPULATION = "http://terminology.hl7.org/CodeSystem/measure-population"


@pytest.mark.parametrize(
    "value, expected",
    [
        ("true", True),
        ("TRUE", True),
        (" Yes ", True),
        ("1", True),
        (1, True),
        (True, True),
        ("false", False),
        ("No", False),
        ("0", False),
        (0, False),
        (False, False),
        ("", None),
        ("y", None),
        ("2", None),
        (2, None),
        ("t", None),
        (None, None),
        (1.0, None),
        ("maybe", None),
    ],
)
def test_booleans(value, expected):
    assert as_boolean(value) is expected


ROW = {"patient_id": "p1", "measure": "CBP", "denominator": "true", "numerator": "false"}


@pytest.mark.parametrize(
    "change, expected",
    [
        ({}, MeasureResult("p1", "CBP", True, False)),
        ({"exclusion": "yes", "source": " feed_a "}, MeasureResult("p1", "CBP", True, False, True, "feed_a")),
        ({"exclusion": "", "source": ""}, MeasureResult("p1", "CBP", True, False, False, None)),
        ({"patient_id": 1234}, MeasureResult("1234", "CBP", True, False)),  # member ids stored as integers
        ({"denominator": "0"}, MeasureResult("p1", "CBP", False, False)),
        ({"patient_id": "  "}, "measure_result_missing_patient_id"),
        ({"patient_id": 12.5}, "measure_result_missing_patient_id"),
        ({"measure": None}, "measure_result_missing_measure"),
        ({"denominator": "maybe"}, "measure_result_invalid_boolean"),
        ({"numerator": ""}, "measure_result_invalid_boolean"),
        ({"exclusion": "2"}, "measure_result_invalid_boolean"),
        ({"denominator": "no", "numerator": "yes"}, "measure_result_numerator_outside_denominator"),
    ],
)
def test_check_result(change, expected):
    found = check_result({**ROW, **change})
    assert (found.reason if isinstance(found, Invalid) else found) == expected


def test_a_reject_message_names_the_column_never_the_value():
    found = check_result({**ROW, "denominator": "PATIENT-SECRET"})
    assert "denominator" in found.message and "SECRET" not in found.message


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_rows_rejects_and_line_numbers(tmp_path):
    path = write(
        tmp_path / "r.csv",
        "\ufeffPatient_ID,MEASURE,denominator,numerator,extra\n"
        "p1,CBP,true,false,x\n"
        "\n"
        'p2,"C\nBP",1,1,y\n'
        "p3,CBP,maybe,0,z\n"
        "p4,CBP,1,0\n"
        ",CBP,1,1,w\n",
    )
    found = read_measure_inputs([path])
    assert found.table().to_pylist() == [
        {
            "source": None,
            "patient_id": "p1",
            "measure": "CBP",
            "denominator": True,
            "numerator": False,
            "exclusion": False,
        },
        {
            "source": None,
            "patient_id": "p2",
            "measure": "C\nBP",
            "denominator": True,
            "numerator": True,
            "exclusion": False,
        },
    ]
    assert [(r.position, r.reason) for r in found.rejects] == [
        ("line 6", "measure_result_invalid_boolean"),
        ("line 7", "measure_result_wrong_field_count"),
        ("line 8", "measure_result_missing_patient_id"),
    ]
    assert {r.file for r in found.rejects} == {str(path)}


def test_gzip_csv_and_parquet_of_any_column_types(tmp_path):
    gz = tmp_path / "r.csv.gz"
    gz.write_bytes(gzip.compress(b"patient_id,measure,denominator,numerator,exclusion\np1,COL,yes,no,no\n"))
    parquet = tmp_path / "r.parquet"
    pq.write_table(
        pa.table(
            {
                "Measure": ["COL", "COL", "COL"],
                "patient_id": [7, 8, 9],
                "denominator": [True, True, None],
                "numerator": [1, 0, 0],
                "source": ["feed_a", None, "feed_a"],
            }
        ),
        parquet,
    )
    found = read_measure_inputs([gz, parquet])
    assert [(r["patient_id"], r["source"], r["numerator"]) for r in found.table().to_pylist()] == [
        ("p1", None, False),
        ("7", "feed_a", True),
        ("8", None, False),
    ]
    assert [(r.file, r.position, r.reason) for r in found.rejects] == [
        (str(parquet), "row 3", "measure_result_invalid_boolean")
    ]


@pytest.mark.parametrize(
    "content, message",
    [
        ("patient_id,measure,denominator\np1,CBP,1\n", "missing column numerator"),
        (
            "patient_id;measure;denominator;numerator\n",
            "numerator (needs patient_id, measure, denominator, numerator; "
            "optional source, exclusion; is it comma-separated?)",
        ),
        ("patient_id,measure,denominator,numerator,MEASURE\n", "column measure is given twice"),
        ("", "the file is empty"),
        (b"\x00\x01binary", "binary data"),
        (b"PAR1 not really parquet", "not readable as Parquet"),
        (b"\x1f\x8b\x08 cut", "damaged gzip data"),
        (b"patient_id,measure,denominator,numerator\n\xff\xfe,CBP,1,1\n", "not UTF-8 text"),
        ('{"resourceType": "Bundle", "entry": [', "neither a JSON document nor NDJSON"),
    ],
)
def test_an_unreadable_file_or_a_missing_column_is_one_line_of_bad_usage(tmp_path, content, message):
    path = tmp_path / "results"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(UsageError) as raised:
        read_measure_inputs([path])
    assert message in str(raised.value) and str(path) in str(raised.value) and "\n" not in str(raised.value)


def test_a_missing_file_is_bad_usage(tmp_path):
    with pytest.raises(UsageError, match="cannot read it: No such file"):
        read_measure_inputs([tmp_path / "nowhere.csv"])


def measure_report(
    patient: str = "Patient/p1",
    measure: str = "https://www.ncqa.org/fhir/Measure/CBP",
    denominator: int = 1,
    numerator: int = 0,
    exclusion: int | None = None,
    **changes,
):
    populations = [("denominator", denominator), ("numerator", numerator)]
    if exclusion is not None:
        populations.append(("denominator-exclusion", exclusion))
    report = {
        "resourceType": "MeasureReport",
        "status": "complete",
        "type": "individual",
        "measure": measure,
        "subject": {"reference": patient},
        "period": {"start": "2026-01-01", "end": "2026-12-31"},
        "group": [
            {
                "population": [
                    {"code": {"coding": [{"system": POPULATION, "code": code}]}, "count": count}
                    for code, count in populations
                ]
            }
        ],
    }
    report.update(changes)
    return report


@pytest.mark.parametrize(
    "report, expected",
    [
        (measure_report(), ("p1", "CBP", True, False, False)),
        (
            measure_report("https://qhio.example/fhir/Patient/p2/_history/3", numerator=1, exclusion=1),
            ("p2", "CBP", True, True, True),
        ),
        (
            measure_report("urn:uuid:5e1b", measure="http://example.org/Measure/COL|2025", denominator=0),
            ("urn:uuid:5e1b", "COL|2025", False, False, False),
        ),
        (measure_report(type="summary"), "measure_report_not_individual"),
        (measure_report(status="pending"), "measure_report_not_complete"),
        (measure_report(measure=""), "measure_report_missing_measure"),
        (measure_report(subject={"display": "someone"}), "measure_report_missing_subject"),
        (measure_report("Group/g1"), "measure_report_subject_not_patient"),
        (measure_report(numerator=2), "measure_report_invalid_population"),
        (measure_report(group=[{"population": []}]), "measure_report_invalid_population"),
        (measure_report(group=[]), "measure_report_invalid_population"),
        (measure_report(denominator=0, numerator=1), "measure_result_numerator_outside_denominator"),
    ],
)
def test_measure_reports(tmp_path, report, expected):
    found = read_measure_inputs([write(tmp_path / "r.json", json.dumps(report))])
    if isinstance(expected, str):
        assert [(r.position, r.reason) for r in found.rejects] == [("byte 0", expected)] and found.results == 0
    else:
        row = found.table().to_pylist()[0]
        assert tuple(row[c] for c in ("patient_id", "measure", "denominator", "numerator", "exclusion")) == expected


def test_a_report_of_several_groups_gives_a_result_per_group(tmp_path):
    one, two = measure_report()["group"][0], measure_report(numerator=1)["group"][0]
    found = read_measure_inputs(
        [
            write(
                tmp_path / "r.json",
                json.dumps(
                    measure_report(
                        measure="https://www.ncqa.org/fhir/Measure/W30",
                        group=[{**one, "id": "W30-1"}, {**two, "code": {"coding": [{"code": "W30-2"}]}}],
                    )
                ),
            )
        ]
    )
    assert [(r["measure"], r["numerator"]) for r in found.table().to_pylist()] == [
        ("W30#W30-1", False),
        ("W30#W30-2", True),
    ]
    unnamed = read_measure_inputs([write(tmp_path / "u.json", json.dumps(measure_report(group=[one, two])))])
    assert [r.reason for r in unnamed.rejects] == ["measure_report_group_unnamed"]


def test_bundles_parameters_ndjson_and_gzip_with_positions(tmp_path):
    """A $care-gaps style answer (Parameters carrying document Bundles), a nested Bundle, and NDJSON lines, one
    broken; other resources are counted."""
    care_gaps = {
        "resourceType": "Parameters",
        "parameter": [
            {
                "name": "return",
                "resource": {
                    "resourceType": "Bundle",
                    "type": "document",
                    "entry": [
                        {"resource": {"resourceType": "Composition"}},
                        {"resource": {"resourceType": "Patient", "id": "p1"}},
                        {"resource": measure_report("Patient/p1")},
                    ],
                },
            },
            {"name": "more", "part": [{"name": "x", "resource": measure_report("Patient/p2", numerator=1)}]},
        ],
    }
    nested = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {
                "resource": {
                    "resourceType": "Bundle",
                    "type": "searchset",
                    "entry": [{"resource": measure_report("Patient/p3")}],
                }
            }
        ],
    }
    lines = [
        json.dumps(care_gaps),
        "{not json",
        "",
        json.dumps(nested),
        json.dumps([1]),
        json.dumps({"resourceType": "Bundle", "entry": {"resource": {}}}),
    ]
    path = tmp_path / "reports.ndjson.gz"
    path.write_bytes(gzip.compress("\n".join(lines).encode()))
    found = read_measure_inputs([path])
    assert [r["patient_id"] for r in found.table().to_pylist()] == ["p1", "p2", "p3"]
    starts = [sum(len(line) + 1 for line in lines[:i]) for i in range(len(lines))]  # byte offset of each line
    assert [(r.position, r.reason) for r in found.rejects] == [
        (f"byte {starts[1]}", "measure_report_invalid_json"),
        (f"byte {starts[4]}", "measure_report_not_fhir_resource"),
        (f"byte {starts[5]}", "measure_report_invalid_container"),
    ]
    assert found.other_resources == {"Composition": 1, "Patient": 1}


def test_a_pretty_printed_bundle_and_an_ndjson_file_whose_first_line_is_broken(tmp_path):
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": measure_report(f"Patient/p{i}")} for i in range(3)],
    }
    pretty = read_measure_inputs([write(tmp_path / "b.json", json.dumps(bundle, indent=2))])
    assert pretty.results == 3 and not pretty.rejects
    broken = read_measure_inputs([write(tmp_path / "n.ndjson", "{cut\n" + json.dumps(measure_report()) + "\n")])
    assert broken.results == 1 and [(r.position, r.reason) for r in broken.rejects] == [
        ("byte 0", "measure_report_invalid_json")
    ]


def test_containers_nested_too_deep_are_rejected_not_followed(tmp_path):
    value = measure_report()
    for _ in range(40):
        value = {"resourceType": "Bundle", "entry": [{"resource": value}]}
    found = read_measure_inputs([write(tmp_path / "deep.json", json.dumps(value))])
    assert [r.reason for r in found.rejects] == ["measure_report_invalid_container"] and found.results == 0


@pytest.mark.parametrize(
    "canonical, name",
    [
        ("https://www.ncqa.org/fhir/Measure/CBP", "CBP"),
        ("http://x.org/fhir/Measure/COL-E|2025", "COL-E|2025"),
        ("http://x.org/fhir/Measure/BCS/", "BCS"),
        ("urn:uuid:0f3c", "urn:uuid:0f3c"),
    ],
)
def test_measure_name_from_the_canonical(canonical, name):
    assert measure_name(canonical) == name


def test_every_reason_used_is_listed_and_documented():
    code = "".join(p.read_text(encoding="utf-8") for p in (ROOT / "pipelines" / "report").glob("measure_*.py"))
    used = set(re.findall(r'"(measure_(?:result|report)_[a-z_]+)"', code)) - {
        "measure_results_input",
        "measure_results_resolved",
    }
    assert used == set(REJECT_REASONS)
    docs = (ROOT / "docs" / "report.md").read_text(encoding="utf-8")
    assert [r for r in REJECT_REASONS if f"`{r}`" not in docs] == []
