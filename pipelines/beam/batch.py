"""The batch pipeline's Beam stages: thin glue around the pure reader and normalizer.

Stages fuse: one element is one input file, and what travels between stages are chunks of rows, never single
records (a shuffle of records costs 4x on the local runners, ../shared/notes/toolchain.md section 7). Workers
only write staging files named by input and chunk; the warehouse is loaded afterwards by one committer.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import logging
import os
from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterator

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from pipelines.fhir.reader import patient_key_of_reference, read_fhir_file
from pipelines.landing import patient_row, rejected_row
from pipelines.staging import FILE_ORDER_COLUMN, ORDINAL_COLUMN, staging_schema

log = logging.getLogger(__name__)

METRICS_NAMESPACE = "demographics"


@dataclass(frozen=True)
class BatchSettings:
    """What every worker needs to know about the run (picklable)."""

    run_id: str
    ingested_at: dt.datetime | None  # None: when each file is read (a streaming job has no single start)
    staging_dir: str
    strict_fhir: bool = True
    chunk_size: int = 10_000
    policy: Any = None  # pipelines.normalize.Policy (frozen, picklable); None: the shipped policy file


@dataclass(frozen=True)
class StagedChunk:
    """Rows of one kind from one input file, to be written as one staging file."""

    kind: str  # patients | rejected | observations | stats
    file_key: str
    index: int
    rows: list[dict[str, Any]]


def file_key(path: str) -> str:
    """A name unique per input file, so that parallel workers never write the same staging file."""
    return hashlib.sha256(path.encode()).hexdigest()[:20]


class _HashingReader(io.RawIOBase):
    """Passes a file's bytes through while hashing them, so the ledger's content hash costs no second read."""

    def __init__(self, raw):
        self.raw, self.digest, self.size = raw, hashlib.sha256(), 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.raw.read(len(buffer))
        buffer[:len(data)] = data
        self.digest.update(data)
        self.size += len(data)
        return len(data)

    def close(self) -> None:
        """Hashes what the reader left unread (it stops early on a binary or truncated file), then closes."""
        if not self.closed:
            for block in iter(lambda: self.raw.read(1 << 20), b""):
                self.digest.update(block)
                self.size += len(block)
            self.raw.close()
        super().close()


class ReadAndNormalizeFileFn(beam.DoFn):
    """Reads one file, normalizes its Patients, and emits chunks of patient rows, dead letters and file stats."""

    def __init__(self, settings: BatchSettings):
        self.settings = settings
        self.files = Metrics.counter(METRICS_NAMESPACE, "files_read")
        self.records = Metrics.counter(METRICS_NAMESPACE, "records_in")
        self.patients = Metrics.counter(METRICS_NAMESPACE, "patients_landed")
        self.other = Metrics.counter(METRICS_NAMESPACE, "other_resources")

    def setup(self):
        from pipelines.normalize import is_demographic_observation, load_policy

        self.policy = self.settings.policy or load_policy()
        self.is_demographic_observation = is_demographic_observation

    def process(self, element: tuple) -> Iterator[StagedChunk]:
        """`element` is (path, source) or (path, source, file order)."""
        path, source, *rest = element
        file_order = rest[0] if rest else 0
        s = self.settings
        ingested_at = s.ingested_at or dt.datetime.now(dt.timezone.utc)
        hashed: list[_HashingReader] = []

        def open_hashed(p: str) -> _HashingReader:
            # Content decides about gzip, not the extension: ask Beam for the bytes as they are.
            hashed.append(_HashingReader(FileSystems.open(p, compression_type=CompressionTypes.UNCOMPRESSED)))
            return hashed[0]

        contents = read_fhir_file(path, self.is_demographic_observation, opener=open_hashed)
        content_sha256, size_bytes = (hashed[0].digest.hexdigest(), hashed[0].size) if hashed else (None, None)
        key = file_key(path)
        patients = []
        for ordinal, found in enumerate(contents.patients):
            row = patient_row(found, source=source, input_file=path, ingested_at=ingested_at, run_id=s.run_id,
                              strict_fhir=s.strict_fhir, policy=self.policy)
            row[FILE_ORDER_COLUMN] = file_order
            row[ORDINAL_COLUMN] = ordinal
            patients.append(row)
        rejected = [rejected_row(r, source=source, input_file=path, rejected_at=ingested_at, run_id=s.run_id)
                    for r in contents.rejections]
        for start in range(0, len(patients), s.chunk_size):
            yield StagedChunk("patients", key, start // s.chunk_size, patients[start:start + s.chunk_size])
        if rejected:
            yield StagedChunk("rejected", key, 0, rejected)
        if contents.unmatched_observations:
            yield StagedChunk("observations", key, 0, [
                {"source": source, "patient_key": patient_key_of_reference(ref), "resource": resource,
                 "input_file": path}
                for ref, resource in contents.unmatched_observations])
        by_reason = Counter(r.reason for r in contents.rejections)
        by_category = Counter(row["omb2024_category"] for row in patients)
        for reason, n in by_reason.items():
            Metrics.counter(METRICS_NAMESPACE, f"rejected_{reason}").inc(n)
        for category, n in by_category.items():
            Metrics.counter(METRICS_NAMESPACE, f"landed_{category}").inc(n)
        stats = {"input_file": path, "source": source, "records_in": contents.records_in,
                 "patients_landed": len(contents.patients), "rejected": len(contents.rejections),
                 "other_resources": sum(contents.other_resources.values()), "rejected_by_reason": dict(by_reason),
                 "other_by_type": dict(contents.other_resources), "patients_by_category": dict(by_category),
                 "content_sha256": content_sha256, "size_bytes": size_bytes}
        self.files.inc()
        self.records.inc(stats["records_in"])
        self.patients.inc(stats["patients_landed"])
        self.other.inc(stats["other_resources"])
        log.info("read %s: %d records, %d patients, %d rejected, %d other resources", os.path.basename(path),
                 stats["records_in"], stats["patients_landed"], stats["rejected"], stats["other_resources"])
        yield StagedChunk("stats", key, 0, [stats])


class WriteStagingFileFn(beam.DoFn):
    """The terminal write: one Parquet (rows) or JSON (stats) staging file per chunk, named by input and chunk."""

    def __init__(self, staging_dir: str):
        self.staging_dir = staging_dir

    def process(self, chunk: StagedChunk) -> Iterator[str]:
        folder = FileSystems.join(self.staging_dir, chunk.kind)
        if chunk.kind in ("stats", "observations"):
            path = FileSystems.join(folder, f"{chunk.file_key}.ndjson")
            with FileSystems.create(path) as fh:
                fh.write(b"".join(json.dumps(row).encode() + b"\n" for row in chunk.rows))
        else:
            path = FileSystems.join(folder, f"{chunk.file_key}-{chunk.index:05d}.parquet")
            table = pa.Table.from_pylist(chunk.rows, schema=staging_schema(chunk.kind))
            with FileSystems.create(path) as fh:
                pq.write_table(table, fh, compression="zstd")
        yield path


class ReadFhirFiles(beam.PTransform):
    """(path, source) pairs -> staged chunks of patient rows, dead letters and per-file stats."""

    def __init__(self, settings: BatchSettings):
        super().__init__()
        self.settings = settings

    def expand(self, files):
        return (files
                # Spread file names (small) over workers; records themselves are never shuffled.
                | "SpreadFiles" >> beam.Reshuffle()
                | "ReadAndNormalize" >> beam.ParDo(ReadAndNormalizeFileFn(self.settings)))


class WriteStagingFiles(beam.PTransform):
    """Writes staged chunks as files for the single warehouse committer."""

    def __init__(self, staging_dir: str):
        super().__init__()
        self.staging_dir = staging_dir

    def expand(self, chunks):
        return chunks | "WriteStaging" >> beam.ParDo(WriteStagingFileFn(self.staging_dir))


def build_batch_pipeline(pipeline: beam.Pipeline, inputs: list[tuple], settings: BatchSettings):
    """Wires the batch graph: list of (path, source, file order) -> read and normalize -> staging files."""
    return (pipeline
            | "ListInputFiles" >> beam.Create(inputs)
            | "ReadFhirFiles" >> ReadFhirFiles(settings)
            | "WriteStagingFiles" >> WriteStagingFiles(settings.staging_dir))
