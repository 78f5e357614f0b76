"""`demographics run`: list the inputs, land them in one batch, summarize."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from pipelines.jobs.inputs import list_inputs
from pipelines.jobs.landing import LandingOptions, Run, ensure_runner, land_files, recorded_run

log = logging.getLogger(__name__)


def run_batch(
    inputs: Sequence[str], opts: LandingOptions, source: str | None = None, follow_symlinks: bool = False
) -> tuple[Run, list[str]]:
    """Lands every file under `inputs`; returns the run and its sources. Bad records become dead letters; only bad
    usage raises UsageError."""
    listed = list_inputs(inputs, source, follow_symlinks)
    sources = sorted(
        {f.source for f in listed.files} | {s for s, _, _ in listed.rejections} or ({source} if source else set())
    )
    beam_args = list(opts.beam_args)
    runner = ensure_runner(beam_args)
    opts = replace(opts, beam_args=tuple(beam_args))
    if not listed.files:
        log.warning("no input files found under %s", ", ".join(inputs))
    with recorded_run(opts.sink(), "batch", sources, [str(Path(p).resolve()) for p in inputs], runner) as run:
        log.info("reading %d files with %s", len(listed.files), runner)
        land_files(listed.files, run, opts, run.started_at, listing_rejects=listed.rejections)
    return run, sources


def summary_lines(run: Run, opts: LandingOptions, sources: Sequence[str]) -> list[str]:
    """The end-of-run summary (counts and codes only, never patient data)."""
    c = run.counts
    rows: list[tuple[str, object]] = [
        ("run", run.run_id),
        ("warehouse", opts.warehouse),
        ("parquet", opts.parquet_dir),
        ("sources", ", ".join(sources) or "-"),
        ("files read", c.files_read),
        ("records in", c.records_in),
        ("  Patient records read", f"{c.patients_landed}  (every version in the files, also unchanged ones)"),
        ("  rejected", c.rejected),
        ("  other resources", c.other_resources),
        ("  deletions", c.deletions),
        ("reconciles", "yes" if c.reconciles else "NO"),
        (
            "distinct patients",
            f"{c.patients_inserted} inserted, {c.patients_updated} updated, "
            f"{c.patients_unchanged} unchanged, {c.patients_deleted} deleted",
        ),
    ]
    rows += [(f"  rejected: {reason}", n) for reason, n in sorted(c.rejected_by_reason.items())]
    if run.validation_rows:
        failed = sum(not r["success"] for r in run.validation_rows)
        rows.append(("validation", "passed" if not failed else f"{failed} expectations FAILED"))
    rows += [("note", message) for message in run.messages]
    if run.ended_at:
        rows.append(("seconds", f"{(run.ended_at - run.started_at).total_seconds():.1f}"))
    width = max(len(k) for k, _ in rows)
    return [f"{k.ljust(width)}  {v}" for k, v in rows]
