"""Divides input files into read tasks: a large plain NDJSON file becomes line-aligned byte ranges that workers
read in parallel; gzip (a stream that cannot be entered in the middle) and single JSON documents are one task."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO

import orjson

from pipelines.fhir.lines import GZIP_MAGIC, RawRange, plain_blocks, split_lines
from pipelines.fhir.reader import UTF8_BOM, ReadLimits

# Ranges have a fixed size, so that a file's content hash (combined from its ranges' hashes) does not depend on
# the number of workers.
SPLIT_BYTES = 64 << 20


@dataclass(frozen=True)
class ReadTask:
    """One unit of reading: a whole file (`end` None) or the byte range [start, end) of a plain NDJSON file."""

    path: str
    part: int = 0
    parts: int = 1
    start: int = 0
    end: int | None = None


def starts_with_json_line(raw: IO[bytes], limits: ReadLimits) -> bool:
    """True when the first line with content is a JSON value on its own: the file is NDJSON."""
    lines = split_lines(plain_blocks(RawRange(raw), limits.max_expanded_bytes), 0, limits.max_document_bytes, 0)
    for line in lines:
        data = line.data
        if data is None:
            return False
        data = data.removeprefix(UTF8_BOM) if line.offset == 0 else data
        if data.strip():
            try:
                orjson.loads(data)
                return True
            except orjson.JSONDecodeError:
                return False
    return False


def plan_reads(
    raw: IO[bytes], path: str, size: int, limits: ReadLimits = ReadLimits(), split_bytes: int = SPLIT_BYTES
) -> list[ReadTask]:
    """The read tasks of one file (`raw` is positioned at 0 and may be consumed)."""
    if size <= split_bytes or raw.read(2) == GZIP_MAGIC:
        return [ReadTask(path)]
    raw.seek(0)
    if not starts_with_json_line(raw, limits):
        return [ReadTask(path)]
    bounds = list(range(0, size, split_bytes)) + [size]
    parts = len(bounds) - 1
    return [ReadTask(path, i, parts, bounds[i], bounds[i + 1]) for i in range(parts)]


def combined_sha256(part_digests: Sequence[str]) -> str:
    """A file's content hash from its ranges' SHA-256s in order: the plain SHA-256 for a file read whole."""
    if len(part_digests) == 1:
        return part_digests[0]
    return hashlib.sha256(b"".join(bytes.fromhex(d) for d in part_digests)).hexdigest()
