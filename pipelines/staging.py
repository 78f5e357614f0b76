"""What the read stage wrote for one batch (staged rows, feed Observations, per-task stats), gathered for the
committer; the same on a local disk and on GCS. Staged files are listed, never globbed: a path may hold `[` or `*`.
"""
from __future__ import annotations

import datetime as dt
import json
import os
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable

import pyarrow as pa
from apache_beam.io.filesystems import FileSystems

from pipelines.beam.read import DELETED, OBSERVATIONS, PATIENTS, PROGRESS, REJECTED, STATS
from pipelines.fhir.plan import combined_sha256
from pipelines.rows import staging_schema
from pipelines.tables import DELETED as DELETED_TABLE, REJECTED as REJECTED_TABLE, arrow_schema
from pipelines.warehouse.runs import COUNT_FIELDS, RunCounts


def list_folder(folder: str) -> list[str]:
    """The files directly in a folder (local or a FileSystems URL), sorted; none when it does not exist."""
    if "://" not in folder:
        try:
            return sorted(os.path.join(folder, e.name) for e in os.scandir(folder) if e.is_file())
        except FileNotFoundError:
            return []
    prefix = folder.rstrip("/") + "/"
    pattern = "".join(f"[{c}]" if c in "*?[]" else c for c in prefix) + "*"
    return sorted(m.path for m in FileSystems.match([pattern])[0].metadata_list)


def _read_jsonl(paths: Iterable[str]) -> list[dict[str, Any]]:
    records = []
    for path in paths:
        with FileSystems.open(path) as fh:
            records += [json.loads(line) for line in fh.read().splitlines() if line.strip()]
    return records


@dataclass
class InputFileResult:
    """One input file of the batch, from its read tasks' stats: what the ledger records."""

    source: str
    input_file: str
    path: str
    order: int
    generation: str | None
    content_sha256: str | None  # None: the file could not be read
    size_bytes: int | None
    counts: dict[str, int]
    arrived_at: dt.datetime | None = None
    status: str = "landed"  # landed | duplicate | unreadable (decided by the committer)
    duplicate_of: str | None = None
    first_arrived_at: dt.datetime | None = None


@dataclass
class StagedBatch:
    """The staged output of one batch."""

    staging_dir: str
    patients: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    observations: list[dict[str, Any]] = field(default_factory=list)
    files: list[InputFileResult] = field(default_factory=list)
    counts: RunCounts = field(default_factory=RunCounts)

    @classmethod
    def collect(cls, staging_dir: str) -> "StagedBatch":
        join = FileSystems.join
        batch = cls(staging_dir, list_folder(join(staging_dir, PATIENTS)), list_folder(join(staging_dir, REJECTED)),
                    list_folder(join(staging_dir, DELETED)),
                    _read_jsonl(list_folder(join(staging_dir, OBSERVATIONS))))
        tasks = _read_jsonl(list_folder(join(staging_dir, STATS)))
        by_file: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for stats in tasks:
            by_file[stats["path"]].append(stats)
            batch.counts.add_task_stats(stats)
        batch.counts.files_read = len(by_file)
        for path, parts in by_file.items():
            parts.sort(key=lambda s: s["part"])
            first = parts[0]
            readable = all(p["range_sha256"] for p in parts) and len(parts) == first["parts"]
            batch.files.append(InputFileResult(
                first["source"], first["input_file"], path, first["order"], first["generation"],
                combined_sha256([p["range_sha256"] for p in parts]) if readable else None,
                sum(p["raw_bytes"] or 0 for p in parts) if readable else None,
                {name: sum(p[name] for p in parts) for name in COUNT_FIELDS},
                status="landed" if readable else "unreadable"))
        batch.files.sort(key=lambda f: f.order)
        return batch

    def files_of(self, kind: str) -> list[str]:
        return {PATIENTS: self.patients, REJECTED: self.rejected, DELETED: self.deleted}[kind]

    @staticmethod
    def schema_of(kind: str) -> pa.Schema:
        return {PATIENTS: staging_schema(), REJECTED: arrow_schema(REJECTED_TABLE),
                DELETED: arrow_schema(DELETED_TABLE)}[kind]

    def localized(self, local_dir: str) -> "StagedBatch":
        """The same batch with its staged row files copied to a local folder (staging on GCS: DuckDB and Arrow
        scan local files)."""
        copies: dict[str, list[str]] = {}
        for kind, files in ((PATIENTS, self.patients), (REJECTED, self.rejected), (DELETED, self.deleted)):
            os.makedirs(os.path.join(local_dir, kind), exist_ok=True)
            copies[kind] = []
            for i, remote in enumerate(files):
                local = os.path.join(local_dir, kind, f"{i:06d}.parquet")
                with FileSystems.open(remote) as src, open(local, "wb") as dst:
                    while block := src.read(1 << 20):
                        dst.write(block)
                copies[kind].append(local)
        return StagedBatch(local_dir, copies[PATIENTS], copies[REJECTED], copies[DELETED], self.observations,
                           self.files, self.counts)


def progress_of(staging_dir: str) -> tuple[int, int]:
    """(records, raw bytes) read so far by the batch's read tasks (local staging)."""
    records = raw = 0
    try:
        paths = list_folder(os.path.join(staging_dir, PROGRESS))
    except OSError:  # not there yet, or the staging folder cannot be made: the run reports that itself
        return 0, 0
    for path in paths:
        if not path.endswith(".json"):
            continue
        try:
            with open(path, "rb") as fh:
                progress = json.loads(fh.read())
        except (OSError, ValueError):
            continue
        records += progress["records"]
        raw += progress["raw_bytes"]
    return records, raw
