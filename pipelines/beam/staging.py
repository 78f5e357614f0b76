"""The terminal write of the read stage: chunks become staging files that the single committer lands.

Layout, the same on a local disk and on GCS: `<staging>/<kind>/<unique>.parquet` for rows (patients, rejected,
deleted), `<staging>/<kind>/<unique>.jsonl` for feed Observations and per-task stats, and
`<staging>/progress/<task>.json` (the latest progress of each read task, for the progress line). Small chunks of
one bundle are written together, so that thousands of small input files do not make thousands of staging files.
"""
from __future__ import annotations

import json
import os
import uuid
from typing import Any

import apache_beam as beam
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from pipelines.beam.read import DELETED, OBSERVATIONS, PATIENTS, PROGRESS, REJECTED, STATS

FLUSH_ROWS = 20_000  # one full chunk is written at once: memory stays one chunk per worker
COMBINE_TABLES = 256  # many small tables (one per small input file) are merged as they come: bounded memory
TABLE_KINDS = (PATIENTS, REJECTED, DELETED)
RECORD_KINDS = (OBSERVATIONS, STATS)


def _path(staging_dir: str, kind: str, name: str) -> str:
    return FileSystems.join(staging_dir, kind, name)


class WriteStagedTablesFn(beam.DoFn):
    """Arrow tables of one kind -> Parquet files (several small tables of a bundle in one file)."""

    def __init__(self, staging_dir: str, kind: str):
        self.staging_dir, self.kind = staging_dir, kind

    def start_bundle(self):
        self.buffer: list[pa.Table] = []
        self.rows = 0

    def process(self, table: pa.Table) -> None:
        self.buffer.append(table)
        self.rows += table.num_rows
        if self.rows >= FLUSH_ROWS:
            self._flush()
        elif len(self.buffer) >= COMBINE_TABLES:
            self.buffer = [pa.concat_tables(self.buffer).combine_chunks()]

    def finish_bundle(self) -> None:
        self._flush()

    def _flush(self) -> None:
        if not self.buffer:
            return
        path = _path(self.staging_dir, self.kind, f"{uuid.uuid4().hex}.parquet")
        table = pa.concat_tables(self.buffer).combine_chunks()
        self.buffer, self.rows = [], 0
        with FileSystems.create(path) as fh:
            pq.write_table(table, fh, compression="zstd")


class WriteStagedRecordsFn(beam.DoFn):
    """JSON records (stats dicts, lists of feed Observations) -> JSON-lines files."""

    def __init__(self, staging_dir: str, kind: str):
        self.staging_dir, self.kind = staging_dir, kind

    def start_bundle(self):
        self.lines: list[bytes] = []

    def process(self, element: Any) -> None:
        for record in element if isinstance(element, list) else [element]:
            # stdlib json: a path that is not valid UTF-8 survives as \\udcXX escapes (orjson refuses it)
            self.lines.append(json.dumps(record, default=str).encode() + b"\n")

    def finish_bundle(self):
        if self.lines:
            path = _path(self.staging_dir, self.kind, f"{uuid.uuid4().hex}.jsonl")
            with FileSystems.create(path) as fh:
                fh.write(b"".join(self.lines))
            self.lines = []


class WriteProgressFn(beam.DoFn):
    """The latest progress of each read task, replaced atomically (local staging only: read by the progress line)."""

    def __init__(self, staging_dir: str):
        self.folder = os.path.join(staging_dir, PROGRESS)

    def setup(self):
        os.makedirs(self.folder, exist_ok=True)

    def process(self, progress: dict[str, Any]) -> None:
        target = os.path.join(self.folder, f"{progress['task']}.json")
        tmp = f"{target}.{uuid.uuid4().hex}.tmp"
        with open(tmp, "wb") as fh:
            fh.write(orjson.dumps(progress))
        os.replace(tmp, target)


def staged_outputs(outputs) -> dict[str, Any]:
    """The tagged outputs of ReadFhirFiles as a dict, the input of WriteStaged."""
    return {kind: outputs[kind] for kind in (*TABLE_KINDS, *RECORD_KINDS, PROGRESS)}


class WriteStaged(beam.PTransform):
    """Writes every tagged output of ReadFhirFiles (`staged_outputs`) under `staging_dir` (local or gs://)."""

    def __init__(self, staging_dir: str, progress: bool = True):
        super().__init__()
        self.staging_dir, self.progress = staging_dir, progress

    def expand(self, outputs):
        for kind in TABLE_KINDS:
            outputs[kind] | f"Write_{kind}" >> beam.ParDo(WriteStagedTablesFn(self.staging_dir, kind))
        for kind in RECORD_KINDS:
            outputs[kind] | f"Write_{kind}" >> beam.ParDo(WriteStagedRecordsFn(self.staging_dir, kind))
        if self.progress:
            outputs[PROGRESS] | "WriteProgress" >> beam.ParDo(WriteProgressFn(self.staging_dir))
        return beam.pvalue.PDone(outputs[PATIENTS].pipeline)
