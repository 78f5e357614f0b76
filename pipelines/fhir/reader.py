"""Detects a file's shape by content (one JSON document, or NDJSON; gzip or not) and streams its records.

Memory does not depend on the file's size: NDJSON is read line by line, and a single JSON document, which must be
parsed whole, is bounded by `ReadLimits.max_document_bytes`. A truncated or corrupt part becomes a dead letter at
its position; everything before it is kept. Positions: `byte N` is the offset of an NDJSON line in the
(decompressed) content, `entry[i]` / `parameter[i].part[j]` the path inside a document, `file` the whole file.
"""

from __future__ import annotations

import contextlib
import io
import itertools
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import orjson

from pipelines.fhir import reasons as R
from pipelines.fhir.lines import (
    GZIP_MAGIC,
    GzipDamaged,
    InputLimitExceeded,
    Line,
    RawRange,
    gunzip_blocks,
    plain_blocks,
    split_lines,
)
from pipelines.fhir.records import Deletion, FeedObservation, FoundPatient, OtherResource, Rejection, raw_text
from pipelines.fhir.walker import ENTRY_BITS, DocumentWalker

UTF8_BOM = b"\xef\xbb\xbf"
NDJSON_SUFFIXES = (".ndjson", ".jsonl", ".ndjson.gz", ".jsonl.gz")
BINARY_PROBE_BYTES = 8192
MAX_JSON_DEPTH = 254  # the deepest JSON orjson writes


@dataclass(frozen=True)
class ReadLimits:
    """Bounds on what one file may cost; a record or file beyond them is rejected with a reason."""

    max_document_bytes: int = 64 << 20  # a single JSON document, or one NDJSON line
    max_records_per_document: int = 1_000_000
    max_expanded_bytes: int = 64 << 30  # what one file may expand to (gzip)


def _never(_: dict) -> bool:
    return False


class FileReader:
    """Reads one file, or the byte range [start, end) of a plain NDJSON file, and yields its records.

    After `records()` is exhausted, `content_sha256` and `raw_bytes` describe exactly the bytes of the range that
    were read (the ledger's hash), and `lines`/`raw_position` tell how far it got (progress).
    """

    def __init__(
        self,
        raw: IO[bytes],
        name: str,
        limits: ReadLimits = ReadLimits(),
        is_demographic_observation: Callable[[dict], bool] = _never,
        start: int = 0,
        end: int | None = None,
        keep: Callable[[dict], bool] | None = None,
    ):
        self.name, self.limits, self.start, self.end = name, limits, start, end
        self.source = RawRange(raw, start, end)
        self.content_position = start  # offset in the (decompressed) content after the last line read
        self.walker = DocumentWalker(is_demographic_observation, limits.max_records_per_document, keep)

    @property
    def raw_position(self) -> int:
        return self.source.position - self.start

    @property
    def content_sha256(self) -> str:
        return self.source.hexdigest()

    @property
    def raw_bytes(self) -> int:
        return self.source.bytes_hashed

    def records(self) -> Iterator[Any]:
        """Patients, Rejections, Deletions, OtherResources (records); FeedObservations and KeptResources (not
        records)."""
        try:
            if self.start > 0:
                yield from self._ndjson(self._lines(continuation=True), [])
            else:
                yield from self._whole()
        except (GzipDamaged, InputLimitExceeded) as err:
            yield from self._damaged(err)
        except OSError as err:
            yield Rejection(
                f"byte {self.raw_position}", R.UNREADABLE_FILE, f"{type(err).__name__}: {err.strerror or err}", ""
            )
        finally:
            with contextlib.suppress(OSError):
                self.source.drain()

    # ------------------------------------------------------------------ shape

    def _blocks(self) -> Iterator[bytes]:
        first = self.source.read(2)
        if first == GZIP_MAGIC:
            self.source.push_back(first)
            return gunzip_blocks(self.source, self.limits.max_expanded_bytes)
        self.source.push_back(first)
        return plain_blocks(self.source, self.limits.max_expanded_bytes)

    def _lines(self, continuation: bool = False) -> Iterator[Line]:
        if continuation:  # a later range: the line that straddles `start` belongs to the range before
            self.source.seek_back_one()
            lines = split_lines(
                plain_blocks(self.source, self.limits.max_expanded_bytes),
                self.start - 1,
                self.limits.max_document_bytes,
                1 << 16,
            )
            next(lines, None)
            return lines
        return split_lines(self._blocks(), 0, self.limits.max_document_bytes, 1 << 16)

    def _whole(self) -> Iterator[Any]:
        lines = self._lines()
        head: list[Line] = []  # the first two lines with content: they decide the shape
        try:
            for line in lines:
                if line.offset == 0 and line.data is not None and line.data.startswith(UTF8_BOM):
                    line.data = line.data[len(UTF8_BOM) :]
                if line.data is None or line.data.strip():
                    head.append(line)
                    if len(head) == 2 or not _shape_needs_second_line(head[0]):
                        break
        except (GzipDamaged, InputLimitExceeded) as err:
            if head and head[0].data is not None:
                yield Rejection("file", R.INVALID_JSON, "a document cut short by damaged data", raw_text(head[0].data))
            yield from self._damaged(err)
            return
        if not head:
            yield Rejection("file", R.EMPTY_FILE, "the file is empty", "")
            return
        first = head[0]
        probe = first.data if first.data is not None else first.head
        if b"\x00" in probe[:BINARY_PROBE_BYTES]:
            yield Rejection("file", R.BINARY_CONTENT, "the file is binary, not JSON text", raw_text(probe))
        elif not _shape_needs_second_line(first):
            yield from self._ndjson(lines, head)
        elif self.name.lower().endswith(NDJSON_SUFFIXES) or (len(head) == 2 and _is_object_line(head[1])):
            yield from self._ndjson(lines, head)  # NDJSON whose first line is broken
        else:
            yield from self._document(head, lines)

    # ------------------------------------------------------------------ NDJSON

    def _ndjson(self, lines: Iterator[Line], head: list[Line]) -> Iterator[Any]:
        try:
            for line in itertools.chain(head, lines):  # the head too: blank lines may put it past the range
                if self.end is not None and line.offset >= self.end:
                    return
                yield from self._ndjson_line(line)
        except (GzipDamaged, InputLimitExceeded) as err:
            yield from self._damaged(err)

    def _ndjson_line(self, line: Line) -> Iterator[Any]:
        position = f"byte {line.offset}"
        self.content_position = line.offset + line.length
        if line.data is None:
            yield Rejection(
                position,
                R.RECORD_TOO_LARGE,
                f"a line of {line.length} bytes, more than the limit of {self.limits.max_document_bytes}",
                raw_text(line.head),
            )
            return
        if line.truncated:
            yield Rejection(
                position, R.INVALID_JSON, "a truncated line at the end of damaged data", raw_text(line.data)
            )
            return
        if not line.data.strip():
            return
        value = parse_json(line.data, position, "invalid JSON line")
        if isinstance(value, Rejection):
            yield value
            return
        yield from self.walker.walk(value, position, line.offset << ENTRY_BITS)

    def _damaged(self, err: Exception) -> Iterator[Any]:
        position = f"byte {self.content_position}"
        if isinstance(err, InputLimitExceeded):
            yield Rejection(position, R.EXPANDED_SIZE_LIMIT, f"{err}: the rest of it was not read", "")
        else:
            yield Rejection(position, R.INVALID_GZIP, str(err), "")

    # ------------------------------------------------------------------ one document

    def _document(self, head: list[Line], lines: Iterator[Line]) -> Iterator[Any]:
        limit = self.limits.max_document_bytes
        parts: list[bytes] = []
        size = 0
        try:
            for line in itertools.chain(head, lines):
                size += line.length
                if line.data is None or size > limit:
                    yield Rejection(
                        "file",
                        R.DOCUMENT_TOO_LARGE,
                        f"a JSON document of more than {limit} bytes (the limit; see --max-document-mb)",
                        raw_text(head[0].data or head[0].head),
                    )
                    return
                parts.append(line.data)
        except (GzipDamaged, InputLimitExceeded) as err:
            yield Rejection("file", R.INVALID_JSON, "a document cut short by damaged data", raw_text(b"\n".join(parts)))
            yield from self._damaged(err)
            return
        text = b"\n".join(parts)
        del parts
        value = parse_json(text, "file", "invalid JSON")
        del text
        if isinstance(value, Rejection):
            yield value
            return
        yield from self.walker.walk(value, "", 0)


def parse_json(data: bytes, position: str, what: str) -> Any:
    """The JSON value of a line or document, or the dead letter in its place. JSON nested more deeply than orjson
    writes back (it reads 1,024 levels but writes 254) is one: stages after the reader write records again (a dead
    letter's raw text, the race/ethnicity payload, feed Observations) and must never meet one they cannot write."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as err:
        return Rejection(position, R.INVALID_JSON, f"{what}: {err}", raw_text(data))
    # Only a text with that many brackets can be that deep: the common record skips the check.
    if data.count(b"[") + data.count(b"{") > MAX_JSON_DEPTH and not _writable(value):
        return Rejection(
            position, R.NESTING_TOO_DEEP, f"JSON nested more than {MAX_JSON_DEPTH} levels deep", raw_text(data)
        )
    return value


def _writable(value: Any) -> bool:
    try:
        orjson.dumps(value)
        return True
    except orjson.JSONEncodeError:  # parsed JSON fails only on depth: keys are strings, integers fit 64 bits
        return False


def _shape_needs_second_line(first: Line) -> bool:
    """True unless the first line is a JSON value on its own (then the file is NDJSON)."""
    return first.data is None or not _parses(first.data)


def _parses(data: bytes) -> bool:
    try:
        orjson.loads(data)
        return True
    except orjson.JSONDecodeError:
        return False


def _is_object_line(line: Line) -> bool:
    if line.data is None:
        return False
    try:
        return isinstance(orjson.loads(line.data), dict)
    except orjson.JSONDecodeError:
        return False


@dataclass
class FileContents:
    """Everything read from one file, collected (for small files and tests; the pipeline streams instead)."""

    patients: list[FoundPatient] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    deletions: list[Deletion] = field(default_factory=list)
    other_resources: Counter = field(default_factory=Counter)
    unmatched_observations: list[FeedObservation] = field(default_factory=list)
    content_sha256: str = ""
    raw_bytes: int = 0

    @property
    def records_in(self) -> int:
        return len(self.patients) + len(self.rejections) + len(self.deletions) + sum(self.other_resources.values())


def collect(reader: FileReader) -> FileContents:
    out = FileContents()
    for record in reader.records():
        if isinstance(record, FoundPatient):
            out.patients.append(record)
        elif isinstance(record, Rejection):
            out.rejections.append(record)
        elif isinstance(record, Deletion):
            out.deletions.append(record)
        elif isinstance(record, OtherResource):
            out.other_resources[record.resource_type] += 1
        elif isinstance(record, FeedObservation):
            out.unmatched_observations.append(record)
    out.content_sha256, out.raw_bytes = reader.content_sha256, reader.raw_bytes
    return out


def read_fhir_bytes(
    data: bytes,
    name: str = "",
    limits: ReadLimits = ReadLimits(),
    is_demographic_observation: Callable[[dict], bool] = _never,
) -> FileContents:
    return collect(FileReader(io.BytesIO(data), name, limits, is_demographic_observation))


def read_fhir_file(
    path: str, limits: ReadLimits = ReadLimits(), is_demographic_observation: Callable[[dict], bool] = _never
) -> FileContents:
    """Reads a whole local file (tests and small files)."""
    try:
        with open(path, "rb") as raw:
            return collect(FileReader(raw, path, limits, is_demographic_observation))
    except OSError as err:  # opening it: FileReader turns errors while reading into dead letters
        out = FileContents()
        out.rejections.append(Rejection("file", R.UNREADABLE_FILE, f"{type(err).__name__}: {err.strerror or err}", ""))
        return out
