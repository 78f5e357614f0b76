"""The Dataflow job's landing step: once a window's files are staged, they land through the warehouse sink as one
run, with the same `land_staged` and `recorded_run` as `demographics run` and `watch` (pipelines/jobs/landing.py).

All staged files go to one key, so one landing runs at a time (one committer, as locally: DuckDB has a single
writer, and BigQuery scripts on the same tables would conflict). A window lands when the watermark passes its end;
files of a late pane land as another run.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics

from pipelines.beam.read import METRICS_NAMESPACE
from pipelines.beam.staging import window_folder
from pipelines.jobs.landing import land_staged, recorded_run
from pipelines.normalize import Policy
from pipelines.staging import StagedBatch
from pipelines.validation.config import ValidationConfig
from pipelines.warehouse.sink import Sink

log = logging.getLogger(__name__)

COMMITTER_KEY = "committer"


@dataclass(frozen=True)
class LandingSettings:
    """How the job lands its windows (picklable: it travels to the worker that lands)."""

    sink: Sink
    staging_dir: str
    mode: str  # `batch` (a glob, as `demographics run`) or `stream` (notifications, as `watch`)
    sources: tuple[str, ...]
    inputs: tuple[str, ...]  # the glob or the subscription, as recorded in `runs`
    runner: str
    policy: Policy | None = None
    validation: ValidationConfig | None = field(default_factory=ValidationConfig)

    @property
    def duplicates_land_nothing(self) -> bool:
        """As in `watch`: a file delivered again with content already landed is a duplicate; a batch re-lands."""
        return self.mode == "stream"


class LandWindowFn(beam.DoFn):
    """(committer, staged files of one window and pane) -> the landing's summary (counts, never patient data)."""

    def __init__(self, settings: LandingSettings):
        self.settings = settings
        self.landings = Metrics.counter(METRICS_NAMESPACE, "landings")
        self.files = {
            status: Metrics.counter(METRICS_NAMESPACE, f"files_{status}")
            for status in ("landed", "duplicate", "unreadable")
        }

    def process(
        self, element: tuple[str, Iterable[tuple[str, str]]], window=beam.DoFn.WindowParam
    ) -> Iterator[dict[str, Any]]:
        s = self.settings
        batch = StagedBatch.of(window_folder(s.staging_dir, window), element[1])
        with recorded_run(s.sink, s.mode, s.sources, s.inputs, s.runner) as run:
            landed = land_staged(s.sink, batch, run, s.policy, s.duplicates_land_nothing, s.validation)
        statuses = Counter(f.status for f in landed.files)
        self.landings.inc()
        for status, n in statuses.items():
            self.files[status].inc(n)
        summary = {
            "run_id": run.run_id,
            "staging": batch.staging_dir,
            "files": dict(statuses),
            "records_in": run.counts.records_in,
            "patients_landed": run.counts.patients_landed,
            "expectations_failed": sum(not r["success"] for r in run.validation_rows),
        }
        log.info("landed %s", summary)  # counts and names only, never patient data
        yield summary


class LandWindows(beam.PTransform):
    """`(kind, path)` of staged files -> one landing per window and pane, by the single committer."""

    def __init__(self, settings: LandingSettings):
        super().__init__()
        self.settings = settings

    def expand(self, staged):
        return (
            staged
            | "ToCommitter" >> beam.WithKeys(COMMITTER_KEY)
            | "GatherWindow" >> beam.GroupByKey()
            | "Land" >> beam.ParDo(LandWindowFn(self.settings))
        )
