"""What the read stage wrote for one batch (staged rows, feed Observations, per-task stats), gathered for the
committer; the same on a local disk and on GCS. Staged files are listed, never globbed: a path may hold `[` or `*`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
from apache_beam.io.filesystems import FileSystems

from pipelines.beam.read import DELETED, OBSERVATIONS, PATIENTS, PROGRESS, REJECTED, STATS, path_of_token
from pipelines.beam.staging import STAGED_KINDS
from pipelines.fhir.plan import combined_sha256
from pipelines.rows import staging_schema
from pipelines.tables import DELETED as DELETED_TABLE
from pipelines.tables import REJECTED as REJECTED_TABLE
from pipelines.tables import arrow_schema
from pipelines.warehouse.runs import COUNT_FIELDS, RunCounts


def staging_root(warehouse: str) -> Path:
    """Staging files live beside the warehouse (same disk as the data), in a hidden folder."""
    path = Path(warehouse).resolve()
    return path.parent / f".{path.name}.staging"


def remove_stale_staging(warehouse: str, running: set[str]) -> None:
    """Staging folders of runs that no longer run (killed): their batch never landed, they are garbage."""
    root = staging_root(warehouse)
    if root.is_dir():
        for folder in root.iterdir():
            if folder.name not in running:
                shutil.rmtree(folder, ignore_errors=True)


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
    def collect(cls, staging_dir: str) -> StagedBatch:
        """Every file staged under `staging_dir` (a batch that was staged by one pipeline run)."""
        return cls.of(
            staging_dir,
            [(kind, path) for kind in STAGED_KINDS for path in list_folder(FileSystems.join(staging_dir, kind))],
        )

    @classmethod
    def of(cls, staging_dir: str, staged: Iterable[tuple[str, str]]) -> StagedBatch:
        """The batch made of these staged files, `(kind, path)` each (what a Dataflow window's writers emitted)."""
        paths: dict[str, list[str]] = {kind: [] for kind in STAGED_KINDS}
        for kind, path in staged:
            paths[kind].append(path)
        for found in paths.values():
            found.sort()
        batch = cls(staging_dir, paths[PATIENTS], paths[REJECTED], paths[DELETED], _read_jsonl(paths[OBSERVATIONS]))
        by_file: dict[tuple[str, str | None], list[dict[str, Any]]] = defaultdict(list)
        for stats in _read_jsonl(paths[STATS]):
            by_file[(path_of_token(stats["path"]), stats["generation"])].append(stats)
            batch.counts.add_task_stats(stats)
        batch.counts.files_read = len(by_file)
        for (path, generation), parts in by_file.items():
            parts.sort(key=lambda s: s["part"])
            first = parts[0]
            readable = all(p["range_sha256"] for p in parts) and len(parts) == first["parts"]
            batch.files.append(
                InputFileResult(
                    first["source"],
                    first["input_file"],
                    path,
                    first["order"],
                    generation,
                    combined_sha256([p["range_sha256"] for p in parts]) if readable else None,
                    sum(p["raw_bytes"] or 0 for p in parts) if readable else None,
                    {name: sum(p[name] for p in parts) for name in COUNT_FIELDS},
                    arrived_at=dt.datetime.fromisoformat(first["arrived_at"]) if first.get("arrived_at") else None,
                    status="landed" if readable else "unreadable",
                )
            )
        batch.files.sort(key=lambda f: f.order)
        return batch

    def files_of(self, kind: str) -> list[str]:
        return {PATIENTS: self.patients, REJECTED: self.rejected, DELETED: self.deleted}[kind]

    @staticmethod
    def schema_of(kind: str) -> pa.Schema:
        return {
            PATIENTS: staging_schema(),
            REJECTED: arrow_schema(REJECTED_TABLE),
            DELETED: arrow_schema(DELETED_TABLE),
        }[kind]

    def localized(self, local_dir: str) -> StagedBatch:
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
        return StagedBatch(
            local_dir, copies[PATIENTS], copies[REJECTED], copies[DELETED], self.observations, self.files, self.counts
        )

    @contextmanager
    def local(self) -> Iterator[StagedBatch]:
        """This batch with its staged rows on the local disk (a copy while it is used when they are remote)."""
        if not any("://" in path for path in (*self.patients, *self.rejected, *self.deleted)):
            yield self
            return
        with tempfile.TemporaryDirectory(prefix="demographics-staged-") as local_dir:
            yield self.localized(local_dir)


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
