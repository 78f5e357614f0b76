"""The sink interface of the landing sequence (pipelines/jobs/landing.py), and its local implementation: the
DuckDB file and the Parquet copy beside it. The Dataflow job lands through the same interface, into this sink on
a local runner or into BigQuery plus Parquet on GCS (pipelines/beam/bigquery.py).

Every sink does the same steps: commit a staged batch (with its Observations matched), export it, validate what
landed, and record the run.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pipelines.errors import error_line
from pipelines.normalize import Policy
from pipelines.staging import InputFileResult, StagedBatch, remove_stale_staging
from pipelines.warehouse.commit import commit_batch
from pipelines.warehouse.connection import LOCK_WAIT_SECONDS, connect, ensure_tables
from pipelines.warehouse.export import export, plan_export
from pipelines.warehouse.repair import repair
from pipelines.warehouse.runs import RunCounts, finish_run, start_run

log = logging.getLogger(__name__)


@dataclass
class Landed:
    """What landing one batch did."""

    counts: RunCounts
    files: list[InputFileResult] = field(default_factory=list)  # each input file's ledger status
    validation_rows: list[dict[str, Any]] = field(default_factory=list)
    export_error: str | None = None


class Sink(Protocol):
    """Where a landing sequence lands: `runs` rows around it, and one call that lands a staged batch."""

    def start_run(
        self,
        run_id: str,
        mode: str,
        sources: Sequence[str],
        inputs: Sequence[str],
        runner: str,
        started_at: dt.datetime,
    ) -> None: ...

    def finish_run(
        self, run_id: str, status: str, counts: RunCounts, ended_at: dt.datetime | None, message: str | None = None
    ) -> None: ...

    def land(
        self,
        batch: StagedBatch,
        run_id: str,
        landed_at: dt.datetime,
        policy: Policy,
        duplicates_land_nothing: bool = False,
        validation: Any = None,
    ) -> Landed: ...


class DuckDBWarehouse:
    """The DuckDB warehouse file (one writer, held only while it writes) and its Parquet copy."""

    def __init__(self, path: str, parquet_dir: str, lock_wait: float = LOCK_WAIT_SECONDS):
        self.path, self.parquet_dir, self.lock_wait = path, parquet_dir, lock_wait

    def __repr__(self) -> str:
        return f"DuckDB {self.path}, Parquet {self.parquet_dir}"

    def connect(self, read_only: bool = False):
        return connect(self.path, read_only=read_only, lock_wait=self.lock_wait)

    def start_run(
        self,
        run_id: str,
        mode: str,
        sources: Sequence[str],
        inputs: Sequence[str],
        runner: str,
        started_at: dt.datetime,
    ) -> None:
        """Creates every table, repairs what an interrupted landing left, and records the run as running."""
        with self.connect() as con:
            ensure_tables(con)
            repair(con, started_at)
            start_run(con, run_id, mode, sources, inputs, runner, started_at)
            running = {row[0] for row in con.execute("SELECT run_id FROM runs WHERE status = 'running'").fetchall()}
        remove_stale_staging(self.path, running)

    def finish_run(
        self, run_id: str, status: str, counts: RunCounts, ended_at: dt.datetime | None, message: str | None = None
    ) -> None:
        with self.connect() as con:
            finish_run(con, run_id, status, counts, ended_at, message)

    def land(
        self,
        batch: StagedBatch,
        run_id: str,
        landed_at: dt.datetime,
        policy: Policy,
        duplicates_land_nothing: bool = False,
        validation: Any = None,
    ) -> Landed:
        """Commits the batch in one transaction, then exports it to Parquet and validates what landed."""
        with batch.local() as batch, self.connect() as con:
            ensure_tables(con)
            result = commit_batch(con, batch, run_id, landed_at, policy, duplicates_land_nothing)
            counts = batch.counts
            counts.merge(result.counts)
            landed = Landed(counts, batch.files)
            started = time.perf_counter()
            try:
                plan = plan_export(
                    con, self.parquet_dir, result.changed_sources, result.removed_sources, result.stale_partitions
                )
                log.debug("planned the Parquet export in %.1f s", time.perf_counter() - started)
                export(con, self.parquet_dir, plan, landed_at)
                log.debug("exported to Parquet in %.1f s", time.perf_counter() - started)
            except Exception as err:  # noqa: BLE001 - the rows are committed; the copy is repaired next landing
                landed.export_error = error_line(err)
                log.warning(
                    "the Parquet copy could not be written (%s); it is rewritten at the next landing",
                    landed.export_error,
                )
            if validation is not None:
                from pipelines.validation import validate_landed_batch

                landed.validation_rows = validate_landed_batch(con, run_id, validation)
            return landed
