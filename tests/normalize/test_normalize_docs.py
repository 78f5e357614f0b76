"""Every Input/Output example in docs/classification.md is run: the page cannot drift from the code."""

from __future__ import annotations

import dataclasses
import datetime
import json
import pathlib
import re

import pytest

from pipelines.normalize import load_policy, normalize_patient

DOC = pathlib.Path(__file__).resolve().parents[2] / "docs" / "classification.md"
_EXAMPLE = re.compile(r"\*\*Input\*\*[^\n]*\n```json\n(.*?)\n```\n\*\*Output\*\*\n```json\n(.*?)\n```", re.S)


def _examples() -> list[tuple[str, str, str]]:
    text = DOC.read_text(encoding="utf-8")
    found = []
    for match in _EXAMPLE.finditer(text):
        heading = re.findall(r"^#{2,3} (.+)$", text[: match.start()], re.M)[-1]
        found.append((heading, match.group(1), match.group(2)))
    return found


EXAMPLES = _examples()


def test_doc_has_an_example_for_every_rule() -> None:
    assert len(EXAMPLES) >= 25
    headings = {h.split(".")[0] for h, _, _ in EXAMPLES}
    for rule in (
        "R1",
        "R2",
        "R3",
        "R4",
        "R5",
        "R6",
        "H1",
        "H2",
        "H3",
        "H4",
        "T1",
        "T2",
        "E1",
        "E2",
        "E3",
        "E4",
        "O1",
        "L1",
        "L2",
        "L3",
    ):
        assert rule in headings, rule


@pytest.mark.parametrize(
    ("heading", "given", "expected"),
    EXAMPLES,
    ids=[f"{i:02d}-{h.split('.')[0]}" for i, (h, _, _) in enumerate(EXAMPLES)],
)
def test_doc_example(heading: str, given: str, expected: str) -> None:
    doc_input = json.loads(given)
    if "patient" in doc_input:
        patient, observations = doc_input["patient"], doc_input.get("observations", [])
        policy = dataclasses.replace(load_policy(), **doc_input.get("policy", {}))
    else:
        patient, observations, policy = doc_input, [], None
    result = normalize_patient(patient, observations, policy)
    for key, value in json.loads(expected).items():
        actual = result[key]
        if isinstance(actual, datetime.date):
            actual = actual.isoformat()
        assert actual == value, f"{heading}: {key} = {actual!r}, the doc says {value!r}"
