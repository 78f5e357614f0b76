"""The Dataflow job's input files: GCS objects named by OBJECT_FINALIZE notifications (streaming) or matched by a
glob (batch), as the same `InputFile`s that `demographics run` reads, with their object generation (the ledger's
key of exactly-once landing) and, for a notification, the time the object arrived.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Mapping
from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.transforms.deduplicate import DeduplicatePerKey
from apache_beam.utils.timestamp import Duration

from pipelines.beam.read import METRICS_NAMESPACE, InputFile
from pipelines.jobs.inputs import is_ignored_name

OBJECT_FINALIZE = "OBJECT_FINALIZE"
# Pub/Sub and GCS deliver at least once; a notification seen again within this time is dropped before reading.
# Later redeliveries are read and then recognized by the ledger (object generation): they land nothing.
REDELIVERY_WINDOW = Duration(seconds=6 * 3600)
GLOB_CHARS = "*?["


def is_ignored_object(name: str) -> bool:
    """The rule of a local drop folder: hidden or temp names, anything in a hidden folder, folder placeholders."""
    parts = name.split("/")
    return parts[-1] == "" or any(is_ignored_name(part) for part in parts)


def _json_object(data: bytes | None) -> dict[str, Any]:
    try:
        value = json.loads(data or b"")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _instant(text: Any) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(text).astimezone(dt.UTC) if isinstance(text, str) else None
    except ValueError:
        return None


def input_file_from_notification(attributes: Mapping[str, str], data: bytes | None, source: str) -> InputFile | None:
    """The input file a GCS notification announces, or None for any other event or an ignored name.

    GCS names the object in the attributes (`bucketId`, `objectId`, `objectGeneration`, `eventTime`); a message
    republished by hand may carry only the JSON_API_V1 payload (`bucket`, `name`, `generation`, `timeCreated`).
    The generation orders the files of a window (it grows with each new object version).
    """
    if attributes.get("eventType") != OBJECT_FINALIZE:
        return None
    payload = _json_object(data)
    bucket = attributes.get("bucketId") or payload.get("bucket")
    name = attributes.get("objectId") or payload.get("name")
    generation = attributes.get("objectGeneration") or payload.get("generation")
    if not (isinstance(bucket, str) and isinstance(name, str) and bucket and name) or is_ignored_object(name):
        return None
    generation = str(generation) if generation is not None else None
    path = f"gs://{bucket}/{name}"
    return InputFile(
        path,
        source,
        int(generation) if generation and generation.isdigit() else 0,
        path,
        generation,
        _instant(attributes.get("eventTime")) or _instant(payload.get("timeCreated")),
    )


class ParseNotificationsFn(beam.DoFn):
    """Pub/Sub message -> InputFile of a newly finalized object; any other notification is counted and dropped."""

    def __init__(self, source: str):
        self.source = source
        self.accepted = Metrics.counter(METRICS_NAMESPACE, "notifications_accepted")
        self.ignored = Metrics.counter(METRICS_NAMESPACE, "notifications_ignored")

    def process(self, message) -> Iterator[InputFile]:
        file = input_file_from_notification(message.attributes or {}, message.data, self.source)
        if file is None:
            self.ignored.inc()
            return
        self.accepted.inc()
        yield file


class InputFilesFromNotifications(beam.PTransform):
    """GCS notifications (PubsubMessage with attributes) -> InputFiles, a redelivery within REDELIVERY_WINDOW
    dropped (keyed by path and generation: an overwrite is a new object generation, read as new data)."""

    def __init__(self, source: str):
        super().__init__()
        self.source = source

    def expand(self, messages):
        return (
            messages
            | "ParseNotifications" >> beam.ParDo(ParseNotificationsFn(self.source))
            | "KeyByObject" >> beam.WithKeys(lambda f: f"{f.generation}:{f.path}")
            | "DropRedeliveries" >> DeduplicatePerKey(processing_time_duration=REDELIVERY_WINDOW)
            | "Files" >> beam.Values()
        )


def _literal_prefix(pattern: str) -> str:
    """`gs://b/feed/**` -> `gs://b/feed/`: what a glob starts with before its first wildcard."""
    return pattern[: min((pattern.find(c) for c in GLOB_CHARS if c in pattern), default=len(pattern))]


def object_generations(pattern: str) -> dict[str, str]:
    """`gs://` path -> object generation of every object under the glob's literal prefix (Beam's match has none)."""
    from apache_beam.io.gcp.gcsio import GcsIO, parse_gcs_path

    bucket, prefix = parse_gcs_path(_literal_prefix(pattern), object_optional=True)
    blobs = GcsIO().client.list_blobs(bucket, prefix=prefix)
    return {f"gs://{bucket}/{blob.name}": str(blob.generation) for blob in blobs}


class ListInputFilesFn(beam.DoFn):
    """A glob -> its files in path order (the order `demographics run` lands them in), hidden and temp names
    skipped, each with its object generation on GCS."""

    def __init__(self, source: str):
        self.source = source

    def process(self, pattern: str) -> Iterator[InputFile]:
        matched = FileSystems.match([pattern])[0].metadata_list
        paths = sorted(m.path for m in matched if not is_ignored_object(_object_name(m.path, pattern)))
        generations = object_generations(pattern) if pattern.startswith("gs://") else {}
        for order, path in enumerate(paths):
            yield InputFile(path, self.source, order, path, generations.get(path))


def _object_name(path: str, pattern: str) -> str:
    """The part of a matched path below the glob's literal folder (where the drop-folder rules apply)."""
    return path[len(_literal_prefix(pattern).rsplit("/", 1)[0]) + 1 :]


class InputFilesFromGlob(beam.PTransform):
    """A glob (`gs://bucket/feed/**`, or a local one on a local runner) -> its InputFiles, listed when the job runs."""

    def __init__(self, pattern: str, source: str):
        super().__init__()
        self.pattern, self.source = pattern, source

    def expand(self, pipeline):
        return (
            pipeline
            | "Glob" >> beam.Create([self.pattern])
            | "ListInputFiles" >> beam.ParDo(ListInputFilesFn(self.source))
        )
