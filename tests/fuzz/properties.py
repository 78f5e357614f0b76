"""The properties of the fuzz harness, each drawing its whole input from one `st.data()`, so that the always-run
tests (fixed examples) and the time-bounded exploration (tests/fuzz/test_fuzz_run.py) check the same things."""

from __future__ import annotations

import gzip
import io
import tracemalloc
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

from pipelines.fhir.lines import BLOCK_BYTES, GZIP_MAGIC
from pipelines.fhir.plan import plan_reads
from pipelines.fhir.reader import ReadLimits
from tests.fuzz.fhir_json import as_json, containers, deep_documents, encodings, hostile_patients, mutated, resources
from tests.fuzz.harness import LIMITS, SMALL, land, read

# Ranges count the expanded-size limit per range, not per file: the small document and record limits only.
RANGE_LIMITS = (ReadLimits(), ReadLimits(max_document_bytes=512, max_records_per_document=8))
NAMES = ["x.json", "x.ndjson", "x.ndjson.gz", "x.jsonl", "x.bin", "x"]
INSERTS = [b"\n", b"\r\n", b"\x00", b"\xef\xbb\xbf", GZIP_MAGIC, b"\xff", b"{", b"}", b'"', b"\\", b" " * 9]
Property = Callable[[Any], None]


# ------------------------------------------------------------------ records: arbitrary JSON in every element


def _identified(patient: dict[str, Any]) -> str | None:
    pid = patient.get("id")
    return pid.strip() if isinstance(pid, str) and pid.strip() else None


def hostile_patients_are_one_record_each(data: Any) -> None:
    """A Patient with anything in its elements is exactly one record: it lands when it has an id, else it is a
    `patient_without_id` dead letter."""
    patients = data.draw(st.lists(hostile_patients(), min_size=1, max_size=3), "patients")
    name, raw = data.draw(encodings(patients), "file")
    found = land(raw, name)
    assert found.records_in == len(patients)
    assert [p.key for p in found.patients] == [k for k in map(_identified, patients) if k is not None]
    assert all(r.reason == "patient_without_id" for r in found.rejections)


def hostile_containers_are_records(data: Any) -> None:
    """Bundles (DELETE entries included) and Parameters at depth, with anything anywhere in them."""
    documents = data.draw(st.lists(containers(), min_size=1, max_size=2), "containers")
    documents = [data.draw(mutated(d), "mutated") if data.draw(st.booleans()) else d for d in documents]
    name, raw = data.draw(encodings(documents), "file")
    land(raw, name)


def any_json_value_is_a_record(data: Any) -> None:
    """Any JSON value (a resource of any type, or not a resource) is read or rejected; only a container may hold no
    record at all."""
    values = data.draw(st.lists(resources(), min_size=1, max_size=4), "values")
    name, raw = data.draw(encodings(values), "file")
    held = sum(isinstance(v, dict) and v.get("resourceType") in ("Bundle", "Parameters") for v in values)
    assert land(raw, name).records_in >= len(values) - held


def deep_json_is_read_or_rejected(data: Any) -> None:
    """JSON nested deeper than anything after the reader can write back is a dead letter, not a crash."""
    name, raw = data.draw(deep_documents(), "file")
    land(raw, name)


# ------------------------------------------------------------------ bytes: what a feed may deliver


@st.composite
def feed_bytes(draw: Any) -> tuple[str, bytes]:
    """(name, bytes): noise, FHIR, or a compression bomb; then cut, spliced or bit-flipped at random places."""
    kind = draw(st.sampled_from(["noise", "fhir", "fhir", "bomb"]))
    if kind == "noise":
        name, raw = draw(st.sampled_from(NAMES)), draw(st.binary(max_size=600))
    elif kind == "fhir":
        values = draw(st.lists(hostile_patients() | containers() | resources(), min_size=1, max_size=3))
        name, raw = draw(encodings(values))
    else:
        unit = draw(
            st.sampled_from(
                [b"x", b"[", b'{"a":', b"\n", b" ", as_json({"resourceType": "Patient", "id": "b"}) + b"\n"]
            )
        )
        name, raw = "bomb.ndjson.gz", gzip.compress(unit * draw(st.integers(1, 1 << 15)), 1)
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(raw)))
        damage = draw(st.sampled_from(["cut", "insert", "flip", "append"]))
        if damage == "cut":
            raw = raw[:at]
        elif damage == "insert":
            raw = raw[:at] + draw(st.sampled_from(INSERTS) | st.binary(min_size=1, max_size=8)) + raw[at:]
        elif damage == "flip" and at < len(raw):
            raw = raw[:at] + bytes([raw[at] ^ draw(st.integers(1, 255))]) + raw[at + 1 :]
        elif damage == "append":
            raw += draw(
                st.sampled_from([b"\0" * 16, gzip.compress(b'{"resourceType":"Patient","id":"t"}\n'), b"trailing"])
            )
    return name, raw


def check_gzip_reads_as_plain(raw: bytes, name: str, limits: ReadLimits) -> None:
    """The same content gzip-compressed gives the same records at the same positions."""
    if not raw.startswith(GZIP_MAGIC):
        assert read(gzip.compress(raw, mtime=0), name, limits).summary() == read(raw, name, limits).summary()


def check_ranges_read_as_whole(raw: bytes, name: str, limits: ReadLimits, split_bytes: int) -> None:
    """A plain file read as the byte ranges `plan_reads` gives, range after range, gives exactly the records of the
    file read whole, and every byte is hashed once."""
    tasks = plan_reads(io.BytesIO(raw), name, len(raw), limits, split_bytes=split_bytes)
    parts = [read(raw, name, limits, task.start, task.end) for task in tasks]
    summaries = [part.summary() for part in parts]
    joined = tuple(sum((s[kind] for s in summaries), start=type(summaries[0][kind])()) for kind in range(4))
    assert joined == read(raw, name, limits).summary()
    assert sum(part.raw_bytes for part in parts) == len(raw)


def check_file(raw: bytes, name: str) -> None:
    """Every check on one file (a kept crasher): landed under each limits, gzip, and read as ranges."""
    for limits in LIMITS:
        land(raw, name, limits)
        check_gzip_reads_as_plain(raw, name, limits)
    for split_bytes in (1, 7, 61, 4096):
        check_ranges_read_as_whole(raw, name, RANGE_LIMITS[0], split_bytes)


def any_bytes_are_read(data: Any) -> None:
    """Whatever the bytes, the reader and everything after it finish, under the default limits and small ones."""
    name, raw = data.draw(feed_bytes(), "file")
    land(raw, name, data.draw(st.sampled_from(LIMITS), "limits"))


def gzip_reads_as_plain(data: Any) -> None:
    name, raw = data.draw(feed_bytes(), "file")
    check_gzip_reads_as_plain(raw, name, data.draw(st.sampled_from(LIMITS), "limits"))


def ranges_read_as_whole(data: Any) -> None:
    name, raw = data.draw(feed_bytes(), "file")
    check_ranges_read_as_whole(
        raw,
        name,
        data.draw(st.sampled_from(RANGE_LIMITS), "limits"),
        data.draw(st.integers(1, max(1, len(raw))), "split_bytes"),
    )


def reading_memory_is_bounded(data: Any) -> None:
    """Under small limits, reading costs a few read blocks of memory, whatever the bytes expand to."""
    name, raw = data.draw(feed_bytes(), "file")
    tracemalloc.start()
    try:
        read(raw, name, SMALL)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * BLOCK_BYTES, peak


PROPERTIES: tuple[Property, ...] = (
    hostile_patients_are_one_record_each,
    hostile_containers_are_records,
    any_json_value_is_a_record,
    deep_json_is_read_or_rejected,
    any_bytes_are_read,
    gzip_reads_as_plain,
    ranges_read_as_whole,
    reading_memory_is_bounded,
)
