"""The FHIR reader: every input shape of contract section 2 and every reject reason, as a table of cases."""
import gzip
import json

import pytest

from pipelines.fhir import REJECT_REASONS, read_fhir_bytes

PATIENT = {"resourceType": "Patient", "id": "p1"}


def _j(value) -> bytes:
    return json.dumps(value).encode()


def _bundle(kind: str, *entries) -> dict:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def _entry(resource, full_url=None) -> dict:
    return {"resource": resource, **({"fullUrl": full_url} if full_url else {})}


def _p(pid):
    return {"resourceType": "Patient", "id": pid}


NESTED = _bundle("message", _entry({"resourceType": "MessageHeader"}),
                 _entry(_bundle("document", _entry({"resourceType": "Composition"}), _entry(_p("n1")))))

# name, file name, bytes, expected patient keys, expected reject reasons, expected other-resource count
CASES = [
    ("single Patient resource", "p.json", _j(PATIENT), ["p1"], [], 0),
    ("single non-Patient resource", "o.json", _j({"resourceType": "Observation"}), [], [], 1),
    ("pretty-printed single Patient", "p.json", json.dumps(PATIENT, indent=2).encode(), ["p1"], [], 0),
    *[(f"{kind} Bundle", "b.json", _j(_bundle(kind, _entry(_p("a")), _entry({"resourceType": "Encounter"}))),
       ["a"], [], 1)
      for kind in ("transaction", "batch", "collection", "searchset", "message", "document", "history")],
    ("nested Bundle inside a message Bundle", "m.json", _j(NESTED), ["n1"], [], 2),
    ("empty Bundle", "b.json", _j({"resourceType": "Bundle", "type": "collection"}), [], [], 0),
    ("NDJSON of mixed resources", "x.ndjson", _j(_p("a")) + b"\n" + _j({"resourceType": "Encounter"}) + b"\n" + _j(_p("b")),
     ["a", "b"], [], 1),
    ("NDJSON with blank lines and CRLF", "x.ndjson", _j(_p("a")) + b"\r\n\r\n" + _j(_p("b")) + b"\r\n", ["a", "b"], [], 0),
    ("NDJSON of Bundles", "x.ndjson", _j(_bundle("searchset", _entry(_p("a")))) + b"\n" + _j(_bundle("searchset", _entry(_p("b")))),
     ["a", "b"], [], 0),
    ("NDJSON content under a .json name", "x.json", _j(_p("a")) + b"\n" + _j(_p("b")) + b"\n", ["a", "b"], [], 0),
    ("gzip Bundle detected by content", "b.json.gz", gzip.compress(_j(_bundle("collection", _entry(_p("g"))))), ["g"], [], 0),
    ("gzip NDJSON without .gz name", "x.ndjson", gzip.compress(_j(_p("a")) + b"\n" + _j(_p("b"))), ["a", "b"], [], 0),
    ("UTF-8 byte order mark", "p.json", b"\xef\xbb\xbf" + _j(PATIENT), ["p1"], [], 0),
    ("Patient keyed by fullUrl", "b.json", _j(_bundle("collection", _entry({"resourceType": "Patient"}, "urn:uuid:1")))
     , ["urn:uuid:1"], [], 0),
    # dead letters
    ("empty file", "e.json", b"", [], ["empty_file"], 0),
    ("whitespace-only file", "e.json", b"  \n\n ", [], ["empty_file"], 0),
    ("binary file", "b.bin", bytes(range(256)), [], ["binary_content"], 0),
    ("truncated JSON document", "t.json", json.dumps(_bundle("batch", _entry(_p("a"))), indent=2).encode()[:30], [],
     ["invalid_json"], 0),
    ("truncated gzip", "t.json.gz", gzip.compress(_j(_bundle("collection", _entry(_p("a")))) * 50)[:40], [],
     ["invalid_gzip"], 0),
    ("JSON that is not FHIR", "n.json", _j({"hello": "world"}), [], ["not_fhir_resource"], 0),
    ("JSON array", "n.json", _j([1, 2]), [], ["not_fhir_resource"], 0),
    ("JSON string", "n.json", _j("Patient"), [], ["not_fhir_resource"], 0),
    ("NDJSON with a broken line keeps the others", "x.ndjson",
     _j(_p("a")) + b"\n{\"resourceType\": \"Pat\n" + _j(_p("b")), ["a", "b"], ["invalid_json"], 0),
    ("NDJSON whose first line is broken", "x.ndjson", b"{oops\n" + _j(_p("a")) + b"\n" + _j(_p("b")), ["a", "b"],
     ["invalid_json"], 0),
    ("Bundle.entry not a list", "b.json", _j({"resourceType": "Bundle", "entry": {"resource": PATIENT}}), [],
     ["invalid_bundle"], 0),
    ("Bundle entry that is not an object", "b.json", _j(_bundle("batch", 42, _entry(_p("a")))), ["a"],
     ["bundle_entry_invalid"], 0),
    ("Bundle entry without resource", "b.json", _j(_bundle("transaction", {"request": {"method": "DELETE"}},
                                                           _entry(_p("a")))), ["a"], ["bundle_entry_without_resource"], 0),
    ("entry resource without resourceType", "b.json", _j(_bundle("collection", _entry({"id": "x"}))), [],
     ["not_fhir_resource"], 0),
    ("Patient with neither id nor fullUrl", "p.json", _j({"resourceType": "Patient", "gender": "male"}), [],
     ["patient_without_id"], 0),
    ("Patient with a blank id and no fullUrl", "p.json", _j({"resourceType": "Patient", "id": "  "}), [],
     ["patient_without_id"], 0),
    ("Patient with a numeric id and no fullUrl", "p.json", _j({"resourceType": "Patient", "id": 7}), [],
     ["patient_without_id"], 0),
]


@pytest.mark.parametrize("name, file_name, data, keys, reasons, other", CASES, ids=[c[0] for c in CASES])
def test_reader_shapes_and_rejects(name, file_name, data, keys, reasons, other):
    contents = read_fhir_bytes(data, file_name)
    assert [p.key for p in contents.patients] == keys
    assert [r.reason for r in contents.rejections] == reasons
    assert sum(contents.other_resources.values()) == other
    assert contents.records_in == len(keys) + len(reasons) + other


def test_every_reject_reason_is_documented_and_covered():
    covered = {r for case in CASES for r in case[4]}
    assert covered | {"unreadable_file", "nesting_too_deep"} == set(REJECT_REASONS)


def test_unreadable_file_is_a_dead_letter(tmp_path):
    from pipelines.fhir import read_fhir_file

    contents = read_fhir_file(str(tmp_path / "missing.json"))
    assert [r.reason for r in contents.rejections] == ["unreadable_file"]


def test_bundles_nested_too_deep_are_rejected_not_crashing():
    value = _p("deep")
    for _ in range(40):
        value = _bundle("collection", _entry(value))
    contents = read_fhir_bytes(_j(value), "deep.json")
    assert [r.reason for r in contents.rejections] == ["nesting_too_deep"]


def test_positions_name_line_and_entry():
    data = _j(_p("a")) + b"\n" + _j(_bundle("collection", _entry(_p("b")), {"fullUrl": "x"}))
    contents = read_fhir_bytes(data, "x.ndjson")
    assert [p.position for p in contents.patients] == ["line 1", "line 2 entry[0]"]
    assert contents.rejections[0].position == "line 2 entry[1]"


def test_raw_text_of_a_dead_letter_is_capped_at_64_kib():
    data = b'{"resourceType": "Bundle", "entry": [' + b"1," * 100_000
    contents = read_fhir_bytes(data, "big.json")
    assert contents.rejections[0].reason == "invalid_json"
    assert len(contents.rejections[0].raw) == 64 * 1024


def test_observations_in_the_same_bundle_are_matched_to_their_patient():
    obs_by_ref = {"resourceType": "Observation", "subject": {"reference": "Patient/a"}}
    obs_by_url = {"resourceType": "Observation", "subject": {"reference": "urn:uuid:b"}}
    obs_abs = {"resourceType": "Observation", "subject": {"reference": "https://x.org/fhir/Patient/a/_history/2"}}
    obs_other = {"resourceType": "Observation", "subject": {"reference": "Patient/zzz"}}
    bundle = _bundle("collection", _entry(_p("a")), _entry({"resourceType": "Patient"}, "urn:uuid:b"),
                     _entry(obs_by_ref), _entry(obs_by_url), _entry(obs_abs), _entry(obs_other))
    contents = read_fhir_bytes(_j(bundle), "b.json", is_demographic_observation=lambda r: True)
    a, b = contents.patients
    assert a.observations == [obs_by_ref, obs_abs]
    assert b.observations == [obs_by_url]
    assert contents.other_resources["Observation"] == 4


def test_docs_list_exactly_the_reject_reasons():
    from pathlib import Path
    import re

    doc = (Path(__file__).resolve().parent.parent / "docs" / "rejects.md").read_text()
    assert set(re.findall(r"^\| `([a-z_]+)` \|", doc, re.M)) == set(REJECT_REASONS)


def test_a_truncated_gzip_ndjson_keeps_what_came_before_and_names_the_line():
    lines = b"".join(_j(_p(f"p{i}")) + b"\n" for i in range(5000))
    data = gzip.compress(lines)[:-40]
    contents = read_fhir_bytes(data, "x.ndjson.gz")
    assert contents.rejections[-1].reason == "invalid_gzip"
    kept = len(contents.patients)
    assert kept > 4000
    assert contents.rejections[-1].position == f"after line {kept + sum(r.reason == 'invalid_json' for r in contents.rejections)}"
