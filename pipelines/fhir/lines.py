"""The bytes of one input file, read once in bounded memory: gzip or not, whole or a line-aligned byte range.

A range [start, end) of a plain file owns every line whose first byte lies in it, so that ranges read by
different workers land each line exactly once. Every line is known by the offset of its first byte in the
(decompressed) content, which does not depend on how the file was split. The raw bytes of the range are hashed
as they are read (the ledger's content hash), and the whole range is hashed even when reading stops early.
"""

from __future__ import annotations

import hashlib
import io
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

GZIP_MAGIC = b"\x1f\x8b"
BLOCK_BYTES = 1 << 20


class InputLimitExceeded(Exception):
    """The file expands beyond ReadLimits.max_expanded_bytes: the rest of it is not read."""


class GzipDamaged(Exception):
    """Corrupt, truncated or trailing non-gzip data: what was decompressed before it is kept."""


@dataclass(slots=True)
class Line:
    """One line: its offset, its bytes (None when longer than the limit: then `head` keeps its first bytes).

    `truncated` marks the partial last line before damaged data (a truncated gzip): it is not a complete record.
    """

    offset: int
    data: bytes | None
    length: int
    head: bytes = b""
    truncated: bool = False


class RawRange:
    """Reads a stream from `start` (to EOF, and past `end`: the last line of a range may run beyond it), hashing
    exactly the raw bytes of [start, end), each once."""

    def __init__(self, raw: IO[bytes], start: int = 0, end: int | None = None):
        self.raw, self.start, self.end = raw, start, end
        self.digest = hashlib.sha256()
        self.position = start  # the raw offset of the next byte `read` returns
        self.hashed_to = start
        self._pushed = b""
        if start:
            raw.seek(start)

    def read(self, size: int = BLOCK_BYTES) -> bytes:
        data, self._pushed = self._pushed[:size], self._pushed[size:]
        self.position += len(data)
        if len(data) < size:  # a peek does not shorten the block: what a limit stops at does not depend on it
            more = self.raw.read(size - len(data))
            self._hash(more)
            self.position += len(more)
            data += more
        return data

    def push_back(self, data: bytes) -> None:
        """Returns bytes just read to the stream (a peek)."""
        self._pushed = data + self._pushed
        self.position -= len(data)

    def seek_back_one(self) -> None:
        """Starts reading one byte before `start` (outside the hashed range), to find where its first line begins."""
        self.raw.seek(self.start - 1)
        self.position = self.start - 1

    def _hash(self, data: bytes) -> None:
        begin = max(self.position, self.hashed_to)
        stop = self.position + len(data) if self.end is None else min(self.position + len(data), self.end)
        if stop > begin:
            part = (
                data[begin - self.position : stop - self.position]
                if (begin, stop) != (self.position, self.position + len(data))
                else data
            )
            self.digest.update(part)
            self.hashed_to = stop

    def hexdigest(self) -> str:
        return self.digest.hexdigest()

    def drain(self) -> None:
        """Hashes the rest of the range without keeping it (reading stopped early: binary, too large, ...)."""
        self._pushed = b""
        self.position = self.hashed_to
        self.raw.seek(self.hashed_to)
        while self.end is None or self.position < self.end:
            want = BLOCK_BYTES if self.end is None else min(BLOCK_BYTES, self.end - self.position)
            if not self.read(want):
                break

    @property
    def bytes_hashed(self) -> int:
        return self.hashed_to - self.start


def gunzip_blocks(source: RawRange, max_expanded: int) -> Iterator[bytes]:
    """Decompressed blocks of a (multi-member) gzip stream; raises GzipDamaged after yielding what was good."""
    decoder: zlib._Decompress | None = zlib.decompressobj(wbits=31)
    fed = False  # the current member has received input
    expanded = 0
    pending = b""
    while True:
        block, pending = pending or source.read(), b""
        if not block:
            if decoder is not None and fed:
                raise GzipDamaged("the gzip stream is truncated")
            return
        if decoder is None:  # between members: zero padding, the next member, or garbage
            block = block.lstrip(b"\x00")
            if not block:
                continue
            if len(block) < len(GZIP_MAGIC):
                block += source.read(len(GZIP_MAGIC))
            if not block.startswith(GZIP_MAGIC):
                raise GzipDamaged("trailing data after the gzip stream")
            decoder, fed = zlib.decompressobj(wbits=31), False
        while True:  # until this block is used up and no output is pending
            try:
                out = decoder.decompress(block, BLOCK_BYTES)
            except zlib.error as err:
                raise GzipDamaged(f"corrupt gzip data: {err}") from None
            fed = True
            expanded += len(out)
            if expanded > max_expanded:
                raise InputLimitExceeded(f"the file expands beyond {max_expanded} bytes")
            if out:
                yield out
            if decoder.eof:
                pending, decoder = decoder.unused_data, None
                break
            block = decoder.unconsumed_tail
            if not block and not out:
                break


def plain_blocks(source: RawRange, max_expanded: int) -> Iterator[bytes]:
    total = 0
    while block := source.read():
        total += len(block)
        if total > max_expanded:
            raise InputLimitExceeded(f"the file is larger than {max_expanded} bytes")
        yield block


class _Blocks(io.RawIOBase):
    """A raw stream over blocks of bytes; damage (a truncated gzip, the size limit) ends it like its end, and is kept
    to be raised once every line read before it was handed out."""

    def __init__(self, blocks: Iterator[bytes]):
        self.blocks, self.view, self.error = blocks, memoryview(b""), None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        while not self.view:
            if self.error is not None:
                return 0
            try:
                block = next(self.blocks, None)
            except (GzipDamaged, InputLimitExceeded) as err:
                self.error = err
                return 0
            if block is None:
                return 0
            self.view = memoryview(block)
        size = min(len(buffer), len(self.view))
        buffer[:size] = self.view[:size]
        self.view = self.view[size:]
        return size


def split_lines(blocks: Iterator[bytes], first_offset: int, max_line: int, head_bytes: int) -> Iterator[Line]:
    """Lines of a stream of blocks (their bytes without the `\n`; `length` counts it); a line longer than
    `max_line` is skipped without being held in memory (only its first `head_bytes` are kept, for the dead letter).
    When the blocks end in damage, the partial line read so far is yielded as `truncated`, then the error raised."""
    source = _Blocks(blocks)
    readline = io.BufferedReader(source, BLOCK_BYTES).readline
    offset = first_offset
    while line := readline(max_line + 1):
        length = len(line)
        if line[-1] == 10:  # a whole line
            yield (
                Line(offset, line[:-1], length) if length <= max_line else Line(offset, None, length, line[:head_bytes])
            )
        elif length <= max_line:  # the last line, with no newline: the end of the stream, or damage
            yield Line(offset, line, length, truncated=source.error is not None)
        else:  # longer than the limit: read to its end without keeping it
            head = line[:head_bytes]
            while line and line[-1] != 10:
                line = readline(BLOCK_BYTES)
                length += len(line)
            yield Line(offset, None, length, head, truncated=not line and source.error is not None)
        offset += length
    if source.error is not None:
        raise source.error
