"""The terminal write of the read stage: chunks become staging files that the single committer lands.

Layout, the same on a local disk and on GCS: `<staging>/<kind>/<unique>.parquet` for rows (patients, rejected,
deleted), `<staging>/<kind>/<unique>.jsonl` for feed Observations and per-task stats, and
`<staging>/progress/<task>.json` (the latest progress of each read task, for the progress line). Small chunks of
one bundle are written together, so that thousands of small input files do not make thousands of staging files.

A streaming job stages each window in its own folder (`<staging>/<window start>-<window end>/<kind>/...`) and
lands it on its own: the writers emit `(kind, path)` of every file they wrote, in the window of its rows, so that
the landing step sees exactly the files of the bundles that succeeded (a retried bundle's orphans are never read).
"""

from __future__ import annotations

import json
import os
import uuid
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import apache_beam as beam
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems
from apache_beam.transforms.window import BoundedWindow, IntervalWindow
from apache_beam.utils.windowed_value import WindowedValue

from pipelines.beam.read import DELETED, OBSERVATIONS, PATIENTS, PROGRESS, REJECTED, STATS

FLUSH_ROWS = 20_000  # one full chunk is written at once: memory stays one chunk per worker
COMBINE_TABLES = 256  # many small tables (one per small input file) are merged as they come: bounded memory
TABLE_KINDS = (PATIENTS, REJECTED, DELETED)
RECORD_KINDS = (OBSERVATIONS, STATS)
STAGED_KINDS = (*TABLE_KINDS, *RECORD_KINDS)


def window_name(window: IntervalWindow) -> str:
    """`20261123T000000Z-20261123T000500Z`: a window's bounds in UTC, sortable."""
    start, end = (t.to_utc_datetime().strftime("%Y%m%dT%H%M%SZ") for t in (window.start, window.end))
    return f"{start}-{end}"


def window_folder(staging_dir: str, window: BoundedWindow) -> str:
    """Where one window's staging files go: the staging folder itself for the global window (a batch)."""
    if isinstance(window, IntervalWindow):
        return FileSystems.join(staging_dir, window_name(window))
    return staging_dir


def _path(folder: str, kind: str, name: str) -> str:
    return FileSystems.join(folder, kind, name)


def _in_window(value: Any, window: BoundedWindow) -> WindowedValue:
    """An output of finish_bundle, which has no current element: it names its window itself."""
    return WindowedValue(value, window.max_timestamp(), [window])


class WriteStagedTablesFn(beam.DoFn):
    """Arrow tables of one kind -> Parquet files (several small tables of a bundle and window in one file);
    emits `(kind, path)` of each file written."""

    def __init__(self, staging_dir: str, kind: str):
        self.staging_dir, self.kind = staging_dir, kind

    def start_bundle(self):
        self.buffers: dict[BoundedWindow, list[pa.Table]] = defaultdict(list)

    def process(self, table: pa.Table, window=beam.DoFn.WindowParam) -> Iterator[tuple[str, str]]:
        buffer = self.buffers[window]
        buffer.append(table)
        if sum(t.num_rows for t in buffer) >= FLUSH_ROWS:
            yield self._flush(window)
        elif len(buffer) >= COMBINE_TABLES:
            self.buffers[window] = [pa.concat_tables(buffer).combine_chunks()]

    def finish_bundle(self) -> Iterator[WindowedValue]:
        for window in list(self.buffers):
            yield _in_window(self._flush(window), window)

    def _flush(self, window: BoundedWindow) -> tuple[str, str]:
        path = _path(window_folder(self.staging_dir, window), self.kind, f"{uuid.uuid4().hex}.parquet")
        table = pa.concat_tables(self.buffers.pop(window)).combine_chunks()
        with FileSystems.create(path) as fh:
            pq.write_table(table, fh, compression="zstd")
        return self.kind, path


class WriteStagedRecordsFn(beam.DoFn):
    """JSON records (stats dicts, lists of feed Observations) -> JSON-lines files, one per bundle and window;
    emits `(kind, path)` of each file written."""

    def __init__(self, staging_dir: str, kind: str):
        self.staging_dir, self.kind = staging_dir, kind

    def start_bundle(self):
        self.lines: dict[BoundedWindow, list[bytes]] = defaultdict(list)

    def process(self, element: Any, window=beam.DoFn.WindowParam) -> None:
        for record in element if isinstance(element, list) else [element]:
            # stdlib json: a path that is not valid UTF-8 survives as \\udcXX escapes (orjson refuses it)
            self.lines[window].append(json.dumps(record, default=str).encode() + b"\n")

    def finish_bundle(self) -> Iterator[WindowedValue]:
        for window, lines in self.lines.items():
            path = _path(window_folder(self.staging_dir, window), self.kind, f"{uuid.uuid4().hex}.jsonl")
            with FileSystems.create(path) as fh:
                fh.write(b"".join(lines))
            yield _in_window((self.kind, path), window)
        self.lines.clear()


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
    return {kind: outputs[kind] for kind in (*STAGED_KINDS, PROGRESS)}


class WriteStaged(beam.PTransform):
    """Writes every tagged output of ReadFhirFiles (`staged_outputs`) under `staging_dir` (local or gs://);
    returns the `(kind, path)` of every staged file, in its window."""

    def __init__(self, staging_dir: str, progress: bool = True):
        super().__init__()
        self.staging_dir, self.progress = staging_dir, progress

    def expand(self, outputs):
        written = [
            outputs[kind] | f"Write_{kind}" >> beam.ParDo(WriteStagedTablesFn(self.staging_dir, kind))
            for kind in TABLE_KINDS
        ]
        written += [
            outputs[kind] | f"Write_{kind}" >> beam.ParDo(WriteStagedRecordsFn(self.staging_dir, kind))
            for kind in RECORD_KINDS
        ]
        if self.progress:
            outputs[PROGRESS] | "WriteProgress" >> beam.ParDo(WriteProgressFn(self.staging_dir))
        return tuple(written) | "StagedFiles" >> beam.Flatten()
