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


def _params(*parameters) -> dict:
    return {"resourceType": "Parameters", "parameter": list(parameters)}


def _param(resource, name="resource") -> dict:
    return {"name": name, "resource": resource}


NESTED = _bundle(
    "message",
    _entry({"resourceType": "MessageHeader"}),
    _entry(_bundle("document", _entry({"resourceType": "Composition"}), _entry(_p("n1")))),
)

# name, file name, bytes, expected patient keys, expected reject reasons, expected other-resource count
CASES = [
    ("single Patient resource", "p.json", _j(PATIENT), ["p1"], [], 0),
    ("single non-Patient resource", "o.json", _j({"resourceType": "Observation"}), [], [], 1),
    ("pretty-printed single Patient", "p.json", json.dumps(PATIENT, indent=2).encode(), ["p1"], [], 0),
    *[
        (
            f"{kind} Bundle",
            "b.json",
            _j(_bundle(kind, _entry(_p("a")), _entry({"resourceType": "Encounter"}))),
            ["a"],
            [],
            1,
        )
        for kind in ("transaction", "batch", "collection", "searchset", "message", "document", "history")
    ],
    ("nested Bundle inside a message Bundle", "m.json", _j(NESTED), ["n1"], [], 2),
    ("empty Bundle", "b.json", _j({"resourceType": "Bundle", "type": "collection"}), [], [], 0),
    (
        "NDJSON of mixed resources",
        "x.ndjson",
        _j(_p("a")) + b"\n" + _j({"resourceType": "Encounter"}) + b"\n" + _j(_p("b")),
        ["a", "b"],
        [],
        1,
    ),
    (
        "NDJSON with blank lines and CRLF",
        "x.ndjson",
        _j(_p("a")) + b"\r\n\r\n" + _j(_p("b")) + b"\r\n",
        ["a", "b"],
        [],
        0,
    ),
    (
        "NDJSON of Bundles",
        "x.ndjson",
        _j(_bundle("searchset", _entry(_p("a")))) + b"\n" + _j(_bundle("searchset", _entry(_p("b")))),
        ["a", "b"],
        [],
        0,
    ),
    ("NDJSON content under a .json name", "x.json", _j(_p("a")) + b"\n" + _j(_p("b")) + b"\n", ["a", "b"], [], 0),
    (
        "gzip Bundle detected by content",
        "b.json.gz",
        gzip.compress(_j(_bundle("collection", _entry(_p("g"))))),
        ["g"],
        [],
        0,
    ),
    ("gzip NDJSON without .gz name", "x.ndjson", gzip.compress(_j(_p("a")) + b"\n" + _j(_p("b"))), ["a", "b"], [], 0),
    ("UTF-8 byte order mark", "p.json", b"\xef\xbb\xbf" + _j(PATIENT), ["p1"], [], 0),
    (
        "Patient keyed by fullUrl",
        "b.json",
        _j(_bundle("collection", _entry({"resourceType": "Patient"}, "urn:uuid:1"))),
        ["urn:uuid:1"],
        [],
        0,
    ),
    # dead letters
    ("empty file", "e.json", b"", [], ["empty_file"], 0),
    ("whitespace-only file", "e.json", b"  \n\n ", [], ["empty_file"], 0),
    ("binary file", "b.bin", bytes(range(256)), [], ["binary_content"], 0),
    (
        "truncated JSON document",
        "t.json",
        json.dumps(_bundle("batch", _entry(_p("a"))), indent=2).encode()[:30],
        [],
        ["invalid_json"],
        0,
    ),
    (
        "truncated gzip",
        "t.json.gz",
        gzip.compress(_j(_bundle("collection", _entry(_p("a")))) * 50)[:40],
        [],
        ["invalid_gzip"],
        0,
    ),
    ("JSON that is not FHIR", "n.json", _j({"hello": "world"}), [], ["not_fhir_resource"], 0),
    ("JSON array", "n.json", _j([1, 2]), [], ["not_fhir_resource"], 0),
    ("JSON string", "n.json", _j("Patient"), [], ["not_fhir_resource"], 0),
    (
        "NDJSON with a broken line keeps the others",
        "x.ndjson",
        _j(_p("a")) + b'\n{"resourceType": "Pat\n' + _j(_p("b")),
        ["a", "b"],
        ["invalid_json"],
        0,
    ),
    (
        "NDJSON whose first line is broken",
        "x.ndjson",
        b"{oops\n" + _j(_p("a")) + b"\n" + _j(_p("b")),
        ["a", "b"],
        ["invalid_json"],
        0,
    ),
    (
        "Bundle.entry not a list",
        "b.json",
        _j({"resourceType": "Bundle", "entry": {"resource": PATIENT}}),
        [],
        ["invalid_bundle"],
        0,
    ),
    (
        "Bundle entry that is not an object",
        "b.json",
        _j(_bundle("batch", 42, _entry(_p("a")))),
        ["a"],
        ["bundle_entry_invalid"],
        0,
    ),
    (
        "Bundle entry without resource",
        "b.json",
        _j(_bundle("batch", {"request": {"method": "GET", "url": "Patient/x"}}, _entry(_p("a")))),
        ["a"],
        ["bundle_entry_without_resource"],
        0,
    ),
    (
        "conditional DELETE cannot be identified",
        "b.json",
        _j(_bundle("transaction", {"request": {"method": "DELETE", "url": "Patient?identifier=x"}})),
        [],
        ["deletion_not_identified"],
        0,
    ),
    (
        "DELETE of another resource type is another resource",
        "b.json",
        _j(_bundle("transaction", {"request": {"method": "DELETE", "url": "Observation/1"}})),
        [],
        [],
        1,
    ),
    # containers: Parameters (FHIR operations, group submissions, $member-match)
    ("Parameters with a Patient", "p.json", _j(_params(_param(_p("m1")))), ["m1"], [], 0),
    (
        "Parameters with a Bundle",
        "p.json",
        _j(_params(_param(_bundle("collection", _entry(_p("b1")), _entry({"resourceType": "Coverage"}))))),
        ["b1"],
        [],
        1,
    ),
    (
        "Parameters with parts at depth",
        "p.json",
        _j(_params({"name": "member", "part": [{"name": "x", "part": [_param(_p("deep1"))]}, _param(_p("deep2"))]})),
        ["deep1", "deep2"],
        [],
        0,
    ),
    (
        "Bundle holding Parameters holding a Bundle",
        "b.json",
        _j(_bundle("batch", _entry(_params(_param(_bundle("collection", _entry(_p("x1")))))))),
        ["x1"],
        [],
        0,
    ),
    (
        "NDJSON line of Parameters",
        "x.ndjson",
        _j(_params(_param(_p("n1")), _param(_p("n2")))) + b"\n",
        ["n1", "n2"],
        [],
        0,
    ),
    (
        "Parameters without resources is a resource",
        "p.json",
        _j(_params({"name": "count", "valueInteger": 3})),
        [],
        [],
        1,
    ),
    (
        "Parameters.parameter not a list",
        "p.json",
        _j({"resourceType": "Parameters", "parameter": {"x": 1}}),
        [],
        ["invalid_parameters"],
        0,
    ),
    ("parameter that is not an object", "p.json", _j(_params(7, _param(_p("ok")))), ["ok"], ["parameter_invalid"], 0),
    (
        "part that is not a list",
        "p.json",
        _j(_params({"name": "x", "part": {"resource": _p("lost")}})),
        [],
        ["parameter_invalid"],
        1,
    ),
    ("UTF-8 byte order mark then a blank line", "x.ndjson", b"\xef\xbb\xbf\n" + _j(_p("a")) + b"\n", ["a"], [], 0),
    (
        "entry resource without resourceType",
        "b.json",
        _j(_bundle("collection", _entry({"id": "x"}))),
        [],
        ["not_fhir_resource"],
        0,
    ),
    (
        "Patient with neither id nor fullUrl",
        "p.json",
        _j({"resourceType": "Patient", "gender": "male"}),
        [],
        ["patient_without_id"],
        0,
    ),
    (
        "Patient with a blank id and no fullUrl",
        "p.json",
        _j({"resourceType": "Patient", "id": "  "}),
        [],
        ["patient_without_id"],
        0,
    ),
    (
        "Patient with a numeric id and no fullUrl",
        "p.json",
        _j({"resourceType": "Patient", "id": 7}),
        [],
        ["patient_without_id"],
        0,
    ),
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
    elsewhere = {
        "unreadable_file",
        "nesting_too_deep",
        "unreadable_directory",
        "symlink_outside_input",
        "record_too_large",
        "document_too_large",
        "too_many_records",
        "expanded_size_limit",
    }
    assert covered | elsewhere == set(REJECT_REASONS)


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


def test_positions_name_the_line_by_byte_offset_and_the_container_path():
    first = _j(_p("a")) + b"\n"
    data = first + _j(_bundle("collection", _entry(_p("b")), {"fullUrl": "x"}))
    contents = read_fhir_bytes(data, "x.ndjson")
    assert [p.position for p in contents.patients] == ["byte 0", f"byte {len(first)} entry[0]"]
    assert contents.rejections[0].position == f"byte {len(first)} entry[1]"
    nested = read_fhir_bytes(_j(_params({"name": "m", "part": [_param(_bundle("batch", _entry(_p("z"))))]})), "p.json")
    assert [p.position for p in nested.patients] == ["byte 0 parameter[0].part[0] entry[0]"]
    pretty = read_fhir_bytes(json.dumps(_params(_param(_p("q")))).replace(", ", ",\n").encode(), "p.json")
    assert [p.position for p in pretty.patients] == ["parameter[0]"]


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
    bundle = _bundle(
        "collection",
        _entry(_p("a")),
        _entry({"resourceType": "Patient"}, "urn:uuid:b"),
        _entry(obs_by_ref),
        _entry(obs_by_url),
        _entry(obs_abs),
        _entry(obs_other),
    )
    contents = read_fhir_bytes(_j(bundle), "b.json", is_demographic_observation=lambda r: True)
    a, b = contents.patients
    assert a.observations == [obs_by_ref, obs_abs]
    assert b.observations == [obs_by_url]
    assert contents.other_resources["Observation"] == 4


def test_docs_list_exactly_the_reject_reasons():
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parent.parent / "docs" / "rejects.md").read_text()
    assert set(re.findall(r"^\| `([a-z_]+)` \|", doc, re.M)) == set(REJECT_REASONS)


def test_a_truncated_gzip_ndjson_keeps_every_complete_line_and_rejects_the_cut_one():
    import zlib

    lines = b"".join(_j(_p(f"p{i}")) + b"\n" for i in range(5000))
    data = gzip.compress(lines)[:-40]
    available = zlib.decompressobj(wbits=31).decompress(data)  # all that can be recovered from the damaged file
    contents = read_fhir_bytes(data, "x.ndjson.gz")
    assert len(contents.patients) == available.count(b"\n")  # every complete line landed: none held back
    cut = available[available.rfind(b"\n") + 1 :]
    assert [(r.reason, r.raw.encode()) for r in contents.rejections] == [("invalid_json", cut), ("invalid_gzip", b"")]
    assert contents.rejections[-1].position == f"byte {len(available)}"


@pytest.mark.parametrize("tail, reason", [(b"trailing garbage!", "invalid_gzip"), (b"\0" * 64, None)])
def test_data_after_a_gzip_stream_is_a_dead_letter_and_zero_padding_is_not(tail, reason):
    lines = b"".join(_j(_p(f"p{i}")) + b"\n" for i in range(3000))
    contents = read_fhir_bytes(gzip.compress(lines) + tail, "x.ndjson.gz")
    assert len(contents.patients) == 3000
    assert [r.reason for r in contents.rejections] == ([reason] if reason else [])


def test_a_multi_member_gzip_is_read_whole():
    one = gzip.compress(_j(_p("a")) + b"\n")
    two = gzip.compress(_j(_p("b")) + b"\n")
    assert [p.key for p in read_fhir_bytes(one + two, "x.ndjson.gz").patients] == ["a", "b"]


def test_limits_reject_oversized_lines_documents_and_records_with_their_reason():
    from pipelines.fhir.reader import ReadLimits

    limits = ReadLimits(max_document_bytes=200, max_records_per_document=3, max_expanded_bytes=10_000)
    big_line = _j({"resourceType": "Patient", "id": "x" * 500}) + b"\n"
    contents = read_fhir_bytes(big_line + _j(_p("ok")) + b"\n", "x.ndjson", limits)
    assert [r.reason for r in contents.rejections] == ["record_too_large"] and [p.key for p in contents.patients] == [
        "ok"
    ]
    doc = json.dumps(_bundle("collection", *[_entry(_p(f"p{i}")) for i in range(20)]), indent=1).encode()
    assert [r.reason for r in read_fhir_bytes(doc, "b.json", limits).rejections] == ["document_too_large"]
    many = _j(_bundle("collection", *[_entry(_p(f"p{i}")) for i in range(5)]))
    contents = read_fhir_bytes(many, "b.json", ReadLimits(max_records_per_document=3))
    assert len(contents.patients) == 3 and [r.reason for r in contents.rejections] == ["too_many_records"]
    bomb = gzip.compress(b"\0" * 50_000)
    assert [r.reason for r in read_fhir_bytes(bomb, "z.gz", limits).rejections] == ["expanded_size_limit"]


@pytest.mark.slow
def test_a_gzip_bomb_without_newlines_costs_no_memory():
    """5 GB of zeros would exhaust memory if held as one line: it is skipped as it streams."""
    import resource

    from pipelines.fhir.reader import ReadLimits

    bomb = gzip.compress(b"0" * (512 << 20), compresslevel=1)  # 512 MiB expanded, ~0.5 MiB compressed
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    contents = read_fhir_bytes(bomb, "z.ndjson.gz", ReadLimits(max_document_bytes=1 << 20))
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert [r.reason for r in contents.rejections] == ["record_too_large"]
    assert grown_mib < 100


def test_deletions_in_every_form_with_their_time():
    import datetime as dt

    bulk_deleted = _bundle("transaction", {"request": {"method": "DELETE", "url": "Patient/d1"}})
    history = {
        "resourceType": "Bundle",
        "type": "history",
        "timestamp": "2026-05-01T00:00:00Z",
        "entry": [
            _entry({"resourceType": "Patient", "id": "h1", "meta": {"lastUpdated": "2026-01-01T00:00:00Z"}}),
            {
                "request": {"method": "DELETE", "url": "https://ehr.example/fhir/Patient/h1/_history/3"},
                "response": {"status": "204", "lastModified": "2026-02-01T00:00:00Z"},
            },
            {"request": {"method": "delete", "url": "Patient/h2"}},
        ],
    }
    contents = read_fhir_bytes(_j(bulk_deleted) + b"\n" + _j(history) + b"\n", "deleted.ndjson")
    utc = dt.UTC
    assert [(d.key, d.deleted_at) for d in contents.deletions] == [
        ("d1", None),
        ("h1", dt.datetime(2026, 2, 1, tzinfo=utc)),
        ("h2", dt.datetime(2026, 5, 1, tzinfo=utc)),
    ]
    assert contents.records_in == 4 and [p.key for p in contents.patients] == ["h1"]


@pytest.mark.parametrize("newline", [b"\n", b"\r\n"])
@pytest.mark.parametrize("last_newline", [True, False])
@pytest.mark.slow
def test_split_ranges_read_exactly_the_rows_of_the_whole_file(newline, last_newline):
    """No line lost or doubled at a boundary, whatever the range size (1 byte to the whole file)."""
    import io
    import random

    from pipelines.fhir.plan import plan_reads
    from pipelines.fhir.reader import FileReader, collect

    rng = random.Random(7)
    lines = [_j({"resourceType": "Patient", "id": f"p{i}", "pad": "x" * rng.randint(0, 200)}) for i in range(120)]
    lines.insert(50, b"{broken")  # a dead letter keeps its position too
    data = newline.join(lines) + (newline if last_newline else b"")
    whole = collect(FileReader(io.BytesIO(data), "x.ndjson"))
    for split in (1, 2, 37, 1000, 4096, len(data)):
        tasks = plan_reads(io.BytesIO(data), "x.ndjson", len(data), split_bytes=split)
        assert len(tasks) == -(-len(data) // split)
        parts = [collect(FileReader(io.BytesIO(data), "x.ndjson", start=t.start, end=t.end)) for t in tasks]
        assert [(p.key, p.position, p.ordinal) for c in parts for p in c.patients] == [
            (p.key, p.position, p.ordinal) for p in whole.patients
        ]
        assert [(r.position, r.raw) for c in parts for r in c.rejections] == [
            (r.position, r.raw) for r in whole.rejections
        ]
        assert sum(c.raw_bytes for c in parts) == len(data)


def test_gzip_and_single_documents_are_not_split():
    import io

    from pipelines.fhir.plan import plan_reads

    ndjson = b"".join(_j(_p(f"p{i}")) + b"\n" for i in range(100))
    assert len(plan_reads(io.BytesIO(gzip.compress(ndjson)), "x.gz", 10**9, split_bytes=10)) == 1
    document = json.dumps(_bundle("collection", *[_entry(_p(f"p{i}")) for i in range(50)]), indent=2).encode()
    assert len(plan_reads(io.BytesIO(document), "b.json", len(document), split_bytes=10)) == 1


def test_the_reader_streams_records_before_reaching_the_end_of_the_file():
    import io

    from pipelines.fhir.reader import FileReader

    data = b"".join(_j(_p(f"p{i}")) + b"\n" for i in range(200_000))  # ~6 MB, more than one read block

    class Watched(io.BytesIO):
        furthest = 0

        def read(self, size=-1):
            chunk = super().read(size)
            Watched.furthest = max(Watched.furthest, self.tell())
            return chunk

    records = FileReader(Watched(data), "x.ndjson").records()
    next(records)
    assert Watched.furthest < len(data) / 2


def test_the_content_hash_is_of_the_bytes_read_even_when_reading_stops_early():
    import hashlib

    for data in (bytes(range(256)) * 100, b"", b'{"resourceType": "Patient", "id": "a"}'):
        contents = read_fhir_bytes(data, "f")
        assert contents.content_sha256 == hashlib.sha256(data).hexdigest() and contents.raw_bytes == len(data)


def test_reject_and_warning_codes_are_used_only_through_their_constants():
    """A code written as a literal elsewhere escapes its documentation (it happened once: last_updated_invalid)."""
    import dataclasses
    import re
    from pathlib import Path

    from pipelines.normalize import WARNING_CODES, Policy

    package = Path(__file__).resolve().parent.parent / "pipelines"
    homes = {"reasons.py", "warning_codes.py"}
    switches = {f.name for f in dataclasses.fields(Policy)}  # `language_from_text` is also a policy switch
    codes = (set(REJECT_REASONS) | set(WARNING_CODES)) - switches
    offenders = []
    for path in package.rglob("*.py"):
        if path.name in homes:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            offenders += [f"{path.name}:{number} {c}" for c in re.findall(r"[\"']([a-z_]+)[\"']", line) if c in codes]
    assert offenders == []
