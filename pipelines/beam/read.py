"""Reading and normalizing: input files -> read tasks (whole files, or byte ranges of a large NDJSON file) -> chunks of
landed rows, on every runner. Thin glue around the pure reader (`pipelines.fhir`) and row builder (`pipelines.rows`).

Elements are chunks of rows, never single records: the local runners pay per element per stage, and a shuffle of
records costs 4x (../shared/notes/toolchain.md section 7). Only file names and byte ranges are shuffled, so that
`--direct_num_workers=2` (or Dataflow's workers) share even a single large file.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import time
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from pipelines.fhir import reasons as R
from pipelines.fhir.plan import SPLIT_BYTES, ReadTask, plan_reads
from pipelines.fhir.reader import FileReader, ReadLimits
from pipelines.fhir.records import Deletion, FeedObservation, FoundPatient, OtherResource, Rejection
from pipelines.rows import PatientRows, RaceMemo, RowContext, deleted_table, rejected_table

log = logging.getLogger(__name__)

METRICS_NAMESPACE = "demographics"
REJECTED, DELETED, OBSERVATIONS, STATS, PROGRESS = "rejected", "deleted", "observations", "stats", "progress"
PATIENTS = "patients"
PROGRESS_SECONDS = 1.0


@dataclass(frozen=True)
class InputFile:
    """One input file of a batch: what to open, which feed it belongs to, its place in the ingestion order."""

    path: str  # what to open: a local path or a gs:// URL
    source: str
    order: int = 0
    display: str = ""  # as stored in input_file columns (valid UTF-8 whatever the file name's bytes)
    generation: str | None = None  # the GCS object generation, on Dataflow
    arrived_at: dt.datetime | None = None  # when it arrived (watch: the rename into the folder; Dataflow: the event)

    @property
    def name(self) -> str:
        return self.display or self.path


@dataclass(frozen=True)
class ReadSettings:
    """What every worker needs to know about the batch (picklable)."""

    run_id: str
    ingested_at: dt.datetime | None  # None: when each file is read (a streaming job has no single start)
    strict_fhir: bool = False
    policy: Any = None  # pipelines.normalize.Policy (frozen); None: the shipped policy file
    limits: ReadLimits = field(default_factory=ReadLimits)
    chunk_rows: int = 20_000
    split_bytes: int | None = None  # None: pipelines.fhir.plan.SPLIT_BYTES


def path_token(path: str) -> str:
    """A path as text that Beam's coders accept: a file name that is not valid UTF-8 is listed with surrogate
    escapes, which UTF-8 encoders refuse. `path_of_token` gives the path back exactly."""
    return urllib.parse.quote(path, safe="/:", errors="surrogateescape")


def path_of_token(token: str) -> str:
    return urllib.parse.unquote(token, errors="surrogateescape")


def task_key(file: InputFile, task: ReadTask) -> str:
    """A name unique per file and range, so that parallel workers never write the same staging file."""
    return hashlib.sha256(f"{file.path}\0{task.part}".encode("utf-8", "surrogateescape")).hexdigest()[:24]


def _open(path: str):
    # Content decides about gzip, not the extension: ask Beam for the bytes as they are.
    return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)


class PlanReadsFn(beam.DoFn):
    """InputFile -> (InputFile, ReadTask) per range: a large plain NDJSON file is split, anything else is whole."""

    def __init__(self, settings: ReadSettings):
        self.settings = settings

    def process(self, file: InputFile) -> Iterator[tuple[InputFile, ReadTask]]:
        split_bytes = self.settings.split_bytes or SPLIT_BYTES
        try:
            size = FileSystems.get_filesystem(file.path).metadata(file.path).size_in_bytes
            if size <= split_bytes:  # most files: one task, without opening the file here
                tasks = [ReadTask(file.path)]
            else:
                with _open(file.path) as raw:
                    tasks = plan_reads(raw, file.path, size, self.settings.limits, split_bytes)
        except Exception:  # noqa: BLE001 - unreadable here: the reading task records the dead letter
            tasks = [ReadTask(file.path)]
        for task in tasks:
            yield file, task


class _TaskOutput:
    """The chunks one read task has built so far; full chunks are emitted as they fill."""

    def __init__(self, file: InputFile, task: ReadTask, ctx: RowContext, memo: RaceMemo, chunk_rows: int):
        self.file, self.task, self.ctx, self.memo, self.chunk_rows = file, task, ctx, memo, chunk_rows
        self.key = task_key(file, task)
        self.patients = PatientRows(ctx, memo)
        self.rejected: list[Rejection] = []
        self.deletions: list[Deletion] = []
        self.observations: list[dict[str, Any]] = []
        self.counts: Counter = Counter()
        self.rejected_by_reason: Counter = Counter()
        self.other_by_type: Counter = Counter()
        self.categories: Counter = Counter()

    def add(self, record: Any) -> None:
        if isinstance(record, FoundPatient):
            self.patients.add(record)
            self.counts["patients_landed"] += 1
        elif isinstance(record, OtherResource):
            self.other_by_type[record.resource_type] += 1
            self.counts["other_resources"] += 1
        elif isinstance(record, Rejection):
            self.rejected.append(record)
            self.rejected_by_reason[record.reason] += 1
            self.counts["rejected"] += 1
        elif isinstance(record, Deletion):
            self.deletions.append(record)
            self.counts["deletions"] += 1
        elif isinstance(record, FeedObservation):
            self.observations.append(
                {
                    "source": self.ctx.source,
                    "patient_key": record.patient_key,
                    "resource": record.resource,
                    "input_file": self.ctx.input_file,
                }
            )

    def full(self) -> bool:
        return max(len(self.patients), len(self.rejected), len(self.deletions)) >= self.chunk_rows

    def flush(self) -> Iterator[Any]:
        if len(self.patients):
            self.categories.update(self.patients.categories)
            yield self.patients.table()
            self.patients = PatientRows(self.ctx, self.memo)
        if self.rejected:
            yield beam.pvalue.TaggedOutput(REJECTED, rejected_table(self.rejected, self.ctx))
            self.rejected = []
        if self.deletions:
            yield beam.pvalue.TaggedOutput(DELETED, deleted_table(self.deletions, self.ctx))
            self.deletions = []
        if self.observations:
            yield beam.pvalue.TaggedOutput(OBSERVATIONS, self.observations)
            self.observations = []

    def stats(self, reader: FileReader | None) -> dict[str, Any]:
        return {
            "input_file": self.file.name,
            "path": path_token(self.file.path),
            "source": self.file.source,
            "order": self.file.order,
            "generation": self.file.generation,
            "arrived_at": self.file.arrived_at.isoformat() if self.file.arrived_at else None,
            "part": self.task.part,
            "parts": self.task.parts,
            "range_sha256": reader.content_sha256 if reader else None,
            "raw_bytes": reader.raw_bytes if reader else None,
            "records_in": sum(self.counts.values()),
            **{k: self.counts[k] for k in ("patients_landed", "rejected", "other_resources", "deletions")},
            "rejected_by_reason": dict(self.rejected_by_reason),
            "other_by_type": dict(self.other_by_type),
            "patients_by_category": dict(self.categories),
        }


class ReadTaskFn(beam.DoFn):
    """Reads one task and emits chunks: patient rows (main output), dead letters, deletions, feed Observations,
    progress, and the task's counts and content hash (`stats`, one per task)."""

    def __init__(self, settings: ReadSettings):
        self.settings = settings
        self.records = Metrics.counter(METRICS_NAMESPACE, "records_in")
        self.patients = Metrics.counter(METRICS_NAMESPACE, "patients_landed")
        self.bytes = Metrics.counter(METRICS_NAMESPACE, "bytes_read")

    def setup(self):
        from pipelines.normalize import is_demographic_observation, load_policy

        self.memo = RaceMemo(self.settings.policy or load_policy())
        self.is_demographic_observation = is_demographic_observation
        # Progress of this worker, all its tasks together, sent at most once per PROGRESS_SECONDS.
        self.progress_key = uuid.uuid4().hex
        self.done_records = self.done_bytes = 0
        self.progress_sent = 0.0

    def _progress(self, records: int, raw_bytes: int, force: bool = False) -> Iterator[Any]:
        now = time.monotonic()
        if force or now - self.progress_sent >= PROGRESS_SECONDS:
            self.progress_sent = now
            yield beam.pvalue.TaggedOutput(
                PROGRESS,
                {
                    "task": self.progress_key,
                    "records": self.done_records + records,
                    "raw_bytes": self.done_bytes + raw_bytes,
                },
            )

    def process(self, element: tuple[InputFile, ReadTask]) -> Iterator[Any]:
        file, task = element
        s = self.settings
        ctx = RowContext(
            file.source, file.name, s.ingested_at or dt.datetime.now(dt.UTC), s.run_id, file.order, s.strict_fhir
        )
        out = _TaskOutput(file, task, ctx, self.memo, s.chunk_rows)
        reader = None
        try:
            raw = _open(file.path)
        except Exception as err:  # noqa: BLE001 - vanished, unreadable, a directory: a dead letter, not a crash
            out.add(Rejection("file", R.UNREADABLE_FILE, f"{type(err).__name__}: {_first_line(err)}", ""))
        else:
            with raw:
                reader = FileReader(raw, file.name, s.limits, self.is_demographic_observation, task.start, task.end)
                for record in reader.records():
                    out.add(record)
                    if out.full():
                        yield from out.flush()
                        yield from self._progress(sum(out.counts.values()), reader.raw_position)
        yield from out.flush()
        stats = out.stats(reader)
        self.done_records += stats["records_in"]
        self.done_bytes += stats["raw_bytes"] or 0
        yield from self._progress(0, 0)
        self.records.inc(stats["records_in"])
        self.patients.inc(stats["patients_landed"])
        self.bytes.inc(stats["raw_bytes"] or 0)
        for reason, n in out.rejected_by_reason.items():
            Metrics.counter(METRICS_NAMESPACE, f"rejected_{reason}").inc(n)
        for category, n in out.categories.items():
            Metrics.counter(METRICS_NAMESPACE, f"landed_{category}").inc(n)
        yield beam.pvalue.TaggedOutput(STATS, stats)


def _first_line(err: Exception) -> str:
    text = getattr(err, "strerror", None) or str(err)
    return text.splitlines()[0] if text else type(err).__name__


class ReadFhirFiles(beam.PTransform):
    """InputFiles -> tagged chunks: `patients` (main), `rejected`, `deleted`, `observations`, `stats`, `progress`."""

    def __init__(self, settings: ReadSettings):
        super().__init__()
        self.settings = settings

    def expand(self, files):
        return (
            files
            | "PlanReads" >> beam.ParDo(PlanReadsFn(self.settings))
            # Spread (file, range) pairs over workers; records themselves are never shuffled.
            | "SpreadTasks" >> beam.Reshuffle()
            | "ReadAndNormalize"
            >> beam.ParDo(ReadTaskFn(self.settings)).with_outputs(
                REJECTED, DELETED, OBSERVATIONS, STATS, PROGRESS, main=PATIENTS
            )
        )
