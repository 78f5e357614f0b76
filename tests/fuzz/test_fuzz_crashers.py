"""Every input that ever broke the pipeline, kept in tests/fuzz/crashers/ as `<what>--<file name as read>`, replayed
through every check of the fuzz harness."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fuzz.harness import CRASHERS as FOLDER
from tests.fuzz.harness import land, patient_rows
from tests.fuzz.properties import check_file

CRASHERS = sorted(FOLDER.glob("*--*"))


@pytest.mark.parametrize("path", CRASHERS, ids=[p.name for p in CRASHERS])
@pytest.mark.slow
def test_a_kept_crasher_is_read_without_failing(path: Path) -> None:
    check_file(path.read_bytes(), path.name.split("--", 1)[1])


@pytest.mark.parametrize("path", [p for p in CRASHERS if p.name.startswith("issue7-")], ids=lambda p: p.name)
def test_the_records_of_issue_7_land_with_a_warning_not_a_reject(path: Path) -> None:
    found = land(path.read_bytes(), path.name.split("--", 1)[1])
    assert found.patients and not found.rejections and found.records_in == len(found.patients)


def test_json_nested_too_deep_to_write_back_is_a_dead_letter() -> None:
    found = land((FOLDER / "deep-values--patients.ndjson").read_bytes(), "patients.ndjson")
    assert [r.reason for r in found.rejections] == [
        "nesting_too_deep",
        "nesting_too_deep",
        "invalid_json",
        "nesting_too_deep",
    ]


@pytest.mark.parametrize(
    "crasher, elements",
    [
        ("issue7-contained-unknown-and-r5--patients.ndjson", ["contained"]),
        ("issue7-photo-url-number--patient.json", ["photo"]),
    ],
)
def test_strict_validation_names_the_element_even_where_fhir_resources_raises(crasher: str, elements: list) -> None:
    found = land((FOLDER / crasher).read_bytes(), crasher.split("--", 1)[1])
    rows = patient_rows(found, crasher, strict=True)
    assert rows and all(row["fhir_invalid_elements"] == elements for row in rows)
