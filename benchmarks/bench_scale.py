"""Scale benchmark (issue 10): `demographics run` against the limits, on the same bytes, in one run.

    PYTHONPATH=. python benchmarks/bench_scale.py --patients 100000 1000000 \\
        [--repeat R] [--variants run run-2-workers ...] [--workdir DIR] [--keep] \\
        [--timeout 900] [--max-rss-gb 16] [--results benchmarks/RESULTS.md --label "before optimization"]

Per size it generates one export with benchmarks/generate_bulk.py (fixed seed), then measures every variant on
it (VARIANTS below), each as its own process with its own fresh warehouse: wall time (start-up included, as a
user sees it), CPU time, patients/s, MB/s, the ratio to the one-core orjson parse of the same Patient.ndjson (the
limit), peak RSS of the process tree and of the main process (benchmarks/measure.py). Repeats are interleaved
(variant after variant, then again) so that a busy spell of the shared machine hits every variant alike; the
median wall time is reported and the highest RSS. A variant that fails, runs past --timeout or past --max-rss-gb
is reported with its stderr tail and the others go on. Prints the table; --results appends a section to
RESULTS.md with the commit measured, the machine, the table and the issue's goals, met or not.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import importlib.metadata
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.generate_bulk import GZIP_LEVEL
from benchmarks.measure import Measured, run_measured

REPO = Path(__file__).resolve().parent.parent
BENCHMARKS = REPO / "benchmarks"
SOURCE = "bench"
MB, GIB = 1e6, 1 << 30
DISK_BYTES_PER_PATIENT = 12_000  # export ~6.3 KB, gzip copy ~0.4 KB, the largest warehouse + Parquet, with room
REPEAT_BELOW_500K, REPEAT_FROM_500K = 3, 1
WATCH_FILES, WATCH_PATIENTS = 5, 100
ONE_MILLION, ONE_HUNDRED_K = 1_000_000, 100_000


class Skipped(Exception):
    """A variant that cannot run here (what it needs is missing); reported as failed, the others go on."""


@dataclass
class Export:
    """One generated Bulk export; the gzip copy of Patient.ndjson is made on first use."""

    folder: Path
    patients: int

    @property
    def patient_file(self) -> Path:
        return self.folder / "Patient.ndjson"

    def whole(self) -> list[Path]:
        """Every NDJSON file of the export and the deleted/ folder (manifest.json is not FHIR)."""
        return sorted(self.folder.glob("*.ndjson")) + [self.folder / "deleted"]

    def gzip_copy(self) -> Path:
        target = self.folder.parent / f"{self.folder.name}-gzip" / "Patient.ndjson.gz"
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            part = target.with_suffix(".part")
            with open(self.patient_file, "rb") as plain, gzip.open(part, "wb", compresslevel=GZIP_LEVEL) as packed:
                shutil.copyfileobj(plain, packed, 1 << 20)
            part.rename(target)
        return target


@dataclass(frozen=True)
class Variant:
    """One way of processing the export: the command to time, the files it reads, what it counted."""

    name: str
    what: str
    inputs: Callable[[Export], list[Path]]
    command: Callable[[Export, Path], list[str]]  # (export, the variant's scratch folder) -> argv
    counted: Callable[[Export, Measured, Path], tuple[int, dict]]  # -> (patients, details for the notes)
    latency: bool = False  # a latency measurement: its wall time and throughput mean nothing


def _python(script: str, *args: object) -> list[str]:
    return [sys.executable, str(BENCHMARKS / script), *map(str, args)]


def _patient_file(export: Export) -> list[Path]:
    return [export.patient_file]


def _warehouse(scratch: Path) -> Path:
    return scratch / "warehouse.duckdb"


def _parsed_records(export: Export, measured: Measured, scratch: Path) -> tuple[int, dict]:
    return json.loads(measured.stdout)["records"], {}


def _extracted_codings(export: Export, measured: Measured, scratch: Path) -> tuple[int, dict]:
    return export.patients, json.loads(measured.stdout)


def _landed_patients(export: Export, measured: Measured, scratch: Path) -> tuple[int, dict]:
    import duckdb

    with duckdb.connect(str(_warehouse(scratch)), read_only=True) as con:
        (patients,) = con.execute("SELECT sum(patients_landed) FROM runs").fetchone()
    return patients or 0, {}


def _watch_latencies(export: Export, measured: Measured, scratch: Path) -> tuple[int, dict]:
    latencies = json.loads(measured.stdout)
    return latencies["landed"] * WATCH_PATIENTS, latencies


def pipeline_run(name: str, what: str, inputs: Callable[[Export], list[Path]], *options: str) -> Variant:
    """`demographics run` on `inputs` into the variant's fresh warehouse, with `options`."""

    def command(export: Export, scratch: Path) -> list[str]:
        return [
            sys.executable,
            "-m",
            "pipelines.cli",
            "run",
            "--input",
            *map(str, inputs(export)),
            "--warehouse",
            str(_warehouse(scratch)),
            "--source",
            SOURCE,
            *options,
        ]

    return Variant(name, what, inputs, command, _landed_patients)


def _watch_command(export: Export, scratch: Path) -> list[str]:
    base = _warehouse(scratch.parent / "run")
    if not base.exists():
        raise Skipped("needs the `run` variant's warehouse (select `run` too, before `watch`)")
    return _python(
        "bench_watch_latency.py",
        "--warehouse",
        base,
        "--source",
        SOURCE,
        "--files",
        WATCH_FILES,
        "--patients",
        WATCH_PATIENTS,
        "--interval",
        1,
        "--json",
    )


TWO_WORKERS = ("--direct_running_mode=multi_processing", "--direct_num_workers=2")
VARIANTS = [
    Variant(
        "orjson",
        "orjson.loads of every line of Patient.ndjson, one core (benchmarks/baselines.py): the limit",
        _patient_file,
        lambda export, scratch: _python("baselines.py", "orjson", export.patient_file),
        _parsed_records,
    ),
    Variant(
        "duckdb-sql",
        "hand-written DuckDB SQL: read_ndjson + JSON functions landing the US Core ombCategory "
        "codings in a table, DuckDB's default threads (benchmarks/baselines.py)",
        _patient_file,
        lambda export, scratch: _python(
            "baselines.py", "duckdb-sql", export.patient_file, "--database", _warehouse(scratch)
        ),
        _extracted_codings,
    ),
    pipeline_run(
        "run",
        "`demographics run` default: FnApiRunner, validation on; input of 128 MiB or more is read by "
        "one worker process per core (2 here)",
        _patient_file,
    ),
    pipeline_run(
        "run-1-worker",
        "`demographics run --direct_num_workers=1`: one in-process worker",
        _patient_file,
        "--direct_num_workers=1",
    ),
    pipeline_run(
        "run-no-validation", "`demographics run --no-validation`: validation's share", _patient_file, "--no-validation"
    ),
    pipeline_run(
        "run-strict",
        "`demographics run --strict-fhir`: full FHIR R4B model of every Patient",
        _patient_file,
        "--strict-fhir",
    ),
    pipeline_run(
        "run-2-workers",
        "`demographics run --direct_running_mode=multi_processing --direct_num_workers=2`",
        _patient_file,
        *TWO_WORKERS,
    ),
    pipeline_run(
        "run-gzip",
        f"`demographics run` on Patient.ndjson.gz (gzip level {GZIP_LEVEL} of the same file)",
        lambda export: [export.gzip_copy()],
    ),
    pipeline_run(
        "run-gzip-2-workers",
        "the gzip copy with 2 workers: a gzip stream cannot be split",
        lambda export: [export.gzip_copy()],
        *TWO_WORKERS,
    ),
    pipeline_run(
        "run-export", "`demographics run` on the whole export: Patient, Observation, Encounter, deleted/", Export.whole
    ),
    Variant(
        "watch",
        f"`demographics watch` on the `run` warehouse (N patients): {WATCH_FILES} files of "
        f"{WATCH_PATIENTS} new patients renamed in one by one (benchmarks/bench_watch_latency.py)",
        lambda export: [],
        _watch_command,
        _watch_latencies,
        latency=True,
    ),
]
VARIANT_NAMES = [v.name for v in VARIANTS]


@dataclass
class Summary:
    """A variant's repeats at one size, summarized."""

    size: int
    variant: Variant
    input_bytes: int = 0
    patients: int = 0
    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    peak_tree_bytes: int = 0
    peak_main_bytes: int = 0
    details: dict = field(default_factory=dict)
    failure: str | None = None
    stderr_tail: str = ""

    @property
    def wall(self) -> float:
        return statistics.median(self.walls)

    @property
    def patients_per_second(self) -> float | None:
        return self.patients / self.wall if self.walls and not self.failure else None

    def add(self, measured: Measured, patients: int, details: dict) -> None:
        self.walls.append(measured.wall_seconds)
        self.cpus.append(measured.cpu_seconds)
        self.peak_tree_bytes = max(self.peak_tree_bytes, measured.peak_tree_bytes)
        self.peak_main_bytes = max(self.peak_main_bytes, measured.peak_main_bytes)
        self.patients = patients
        for key, value in details.items():  # latency lists add up over repeats; counts are the same each time
            self.details[key] = self.details.get(key, []) + value if isinstance(value, list) else value

    def fail(self, failure: str, stderr_tail: str = "") -> None:
        self.failure, self.stderr_tail = failure, stderr_tail


def child_environment() -> dict[str, str]:
    """Children import `pipelines` from this tree, whatever the caller's directory."""
    paths = [str(REPO)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "GX_ANALYTICS_ENABLED": "false"}


def log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def prepare_export(size: int, workdir: Path) -> Export:
    """Generates the export, or reuses one a --keep run left in the same --workdir (the generator is
    deterministic: the same arguments give the same bytes)."""
    export = Export(workdir / f"export-{size}", size)
    manifest = export.folder / "manifest.json"
    if manifest.exists() and json.loads(manifest.read_text())["output"][0]["count"] == size:
        log(f"reusing {export.folder}")
        return export
    shutil.rmtree(export.folder, ignore_errors=True)
    started = time.perf_counter()
    subprocess.run(
        _python("generate_bulk.py", "--patients", size, "--out", export.folder),
        check=True,
        env=child_environment(),
        stdout=subprocess.DEVNULL,
    )
    log(f"generated {size:,} patients in {time.perf_counter() - started:.0f} s: {export.folder}")
    return export


def measure_once(variant: Variant, export: Export, scratch: Path, summary: Summary, args: argparse.Namespace) -> None:
    """Runs the variant once into a fresh scratch folder and adds what it did to `summary`."""
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    try:
        argv = variant.command(export, scratch)
        summary.input_bytes = sum(_size(path) for path in variant.inputs(export))
    except Skipped as why:
        summary.fail(f"skipped: {why}")
        return
    measured = run_measured(argv, scratch / "logs", args.timeout, int(args.max_rss_gb * GIB), child_environment())
    if not measured.ok:
        summary.walls.append(measured.wall_seconds)
        summary.fail(measured.failure, measured.stderr_tail)
        return
    try:
        summary.add(measured, *variant.counted(export, measured, scratch))
    except Exception as err:  # noqa: BLE001 - a result that cannot be read is this variant's failure, not the harness's
        summary.fail(f"result unreadable: {type(err).__name__}: {err}", measured.stderr_tail)


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def measure_size(size: int, variants: list[Variant], repeats: int, args: argparse.Namespace) -> list[Summary]:
    """Every variant `repeats` times on one export, interleaved; scratch folders removed as soon as unused."""
    summaries = [Summary(size, v) for v in variants]
    free = shutil.disk_usage(args.workdir).free
    if free < size * DISK_BYTES_PER_PATIENT:
        for summary in summaries:
            summary.fail(f"skipped: {free / GIB:.0f} GiB free, needs ~{size * DISK_BYTES_PER_PATIENT / GIB:.0f}")
        return summaries
    export = prepare_export(size, args.workdir)
    runs = args.workdir / f"runs-{size}"
    try:
        for repeat in range(repeats):
            for summary in summaries:
                if summary.failure:
                    continue  # a variant that failed or timed out once is not run again
                measure_once(summary.variant, export, runs / summary.variant.name, summary, args)
                log(f"{size:,} {summary.variant.name} ({repeat + 1}/{repeats}): {describe_progress(summary)}")
                if summary.variant.name != "run":  # `watch` lands into the last `run` warehouse
                    shutil.rmtree(runs / summary.variant.name, ignore_errors=True)
    finally:
        shutil.rmtree(runs, ignore_errors=True)
        if not args.keep:
            shutil.rmtree(export.folder, ignore_errors=True)
            shutil.rmtree(export.folder.parent / f"{export.folder.name}-gzip", ignore_errors=True)
    return summaries


def describe_progress(summary: Summary) -> str:
    if summary.failure:
        return f"FAILED {summary.failure}"
    return (
        f"{summary.walls[-1]:.1f} s, CPU {summary.cpus[-1]:.1f} s, "
        f"peak RSS {summary.peak_tree_bytes / GIB:.2f} GiB (tree)"
    )


# ---------------------------------------------------------------- the report


def _orjson_rate(summaries: list[Summary], size: int) -> float | None:
    return next((s.patients_per_second for s in summaries if s.size == size and s.variant.name == "orjson"), None)


def _gib(value: int) -> str:
    return f"{value / GIB:.2f} GiB" if value else "-"


def _notes(summary: Summary) -> str:
    if summary.failure:
        return f"**failed**: {summary.failure}"
    details = summary.details
    if summary.variant.latency:
        visible, ledger = sorted(details["visible_seconds"]), sorted(details["ledger_seconds"])
        return (
            f"{details['landed']}/{details['files']} files landed per repeat; rename to visible: p50 "
            f"{statistics.median(visible):.2f} s, p95 {percentile(visible, 0.95):.2f} s, max {visible[-1]:.2f} s; "
            f"ledger lag p50 {statistics.median(ledger):.2f} s"
        )
    if "omb_codings" in details:
        return f"{details['omb_codings']:,} ombCategory codings of {details['patients_with_omb']:,} patients"
    return ""


def percentile(ordered: list[float], share: float) -> float:
    return ordered[max(0, round(share * len(ordered)) - 1)]


def table_rows(summaries: list[Summary]) -> list[list[str]]:
    rows = []
    for s in summaries:
        rate, limit = s.patients_per_second, _orjson_rate(summaries, s.size)
        throughput = rate is not None and not s.variant.latency
        rows.append(
            [
                f"{s.size:,}",
                s.variant.name,
                str(len(s.walls)),
                f"{s.wall:.1f}" if s.walls and not s.variant.latency else "-",
                f"{statistics.median(s.cpus):.1f}" if s.cpus and not s.variant.latency else "-",
                f"{rate:,.0f}" if throughput else "-",
                f"{s.input_bytes / MB / s.wall:,.1f}" if throughput else "-",
                f"{rate / limit:.2f}" if throughput and limit else "-",
                _gib(s.peak_tree_bytes),
                _gib(s.peak_main_bytes),
                _notes(s),
            ]
        )
    return rows


HEADER = [
    "patients",
    "variant",
    "runs",
    "wall s (median)",
    "CPU s",
    "patients/s",
    "MB/s",
    "x orjson",
    "peak RSS tree",
    "peak RSS main",
    "notes",
]


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    numeric = {i for i, name in enumerate(header) if name not in ("variant", "notes", "goal", "measured", "verdict")}
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---:" if i in numeric else "---" for i in range(len(header))) + "|",
    ]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


# ---------------------------------------------------------------- the goals


def _find(summaries: list[Summary], size: int, name: str) -> Summary | None:
    found = next((s for s in summaries if s.size == size and s.variant.name == name), None)
    return found if found and not found.failure and found.walls else None


def _ratio_goal(summaries: list[Summary], name: str, base: str, least: float, sizes: list[int]) -> tuple[str, str]:
    """(measured, verdict) for `name` patients/s >= least x `base` patients/s at every size in `sizes`."""
    figures, verdicts = [], []
    for size in sizes:
        variant, reference = _find(summaries, size, name), _find(summaries, size, base)
        if variant and reference:
            ratio = variant.patients_per_second / reference.patients_per_second
            figures.append(f"{ratio:.2f}x at {size:,}")
            verdicts.append(ratio >= least)
    return "; ".join(figures) or "-", _verdict(verdicts)


def _verdict(checks: list[bool]) -> str:
    return "not measured" if not checks else "met" if all(checks) else "**not met**"


def _two_workers(summaries: list[Summary]) -> str:
    """`run-2-workers`, else the default `run` on a 2-core machine, which reads a 1M-patient file (over 128 MiB)
    with one worker process per core."""
    if _find(summaries, ONE_MILLION, "run-2-workers") or os.cpu_count() != 2:
        return "run-2-workers"
    return "run"


def goal_rows(summaries: list[Summary]) -> list[list[str]]:
    sizes = sorted({s.size for s in summaries})
    run_1m, run_100k = _find(summaries, ONE_MILLION, "run"), _find(summaries, ONE_HUNDRED_K, "run")
    growth = run_1m.peak_tree_bytes / run_100k.peak_tree_bytes if run_1m and run_100k else None
    watch = [(size, found) for size in sizes if (found := _find(summaries, size, "watch"))]
    watch_p95 = [(size, percentile(sorted(w.details["visible_seconds"]), 0.95)) for size, w in watch]
    return [
        [
            "default `run` >= 0.5x the one-core orjson parse, same file",
            *_ratio_goal(summaries, "run", "orjson", 0.5, sizes),
        ],
        [
            "peak RSS < 1 GiB, single 1M-patient file (tree)",
            _gib(run_1m.peak_tree_bytes) if run_1m else "-",
            _verdict([run_1m.peak_tree_bytes < GIB] if run_1m else []),
        ],
        [
            "peak RSS at 1M <= 1.2x at 100k (tree)",
            f"{growth:.2f}x" if growth else "-",
            _verdict([growth <= 1.2] if growth else []),
        ],
        [
            "2 workers (`run-2-workers`, else `run` on 2 cores) >= 1.5x one worker, single 1M-patient file",
            *_ratio_goal(summaries, _two_workers(summaries), "run-1-worker", 1.5, [ONE_MILLION]),
        ],
        [
            "`watch`: seconds-level latency for a small new file (p95 rename-to-visible < 5 s)",
            "; ".join(f"p95 {p95:.2f} s at {size:,}" for size, p95 in watch_p95) or "-",
            _verdict([p95 < 5 for _, p95 in watch_p95]),
        ],
    ]


# ---------------------------------------------------------------- the section of RESULTS.md


def machine_facts() -> dict[str, str]:
    with open("/proc/meminfo") as meminfo:
        total_kb = int(next(line for line in meminfo if line.startswith("MemTotal")).split()[1])
    versions = ", ".join(f"{name} {importlib.metadata.version(name)}" for name in ("apache-beam", "duckdb", "orjson"))
    return {
        "cores": f"{os.cpu_count()} cores (nproc {len(os.sched_getaffinity(0))})",
        "memory": f"{total_kb / (1 << 20):.1f} GiB",
        "python": sys.version.split()[0],
        "versions": versions,
    }


def measured_commit() -> str:
    git = ["git", "-C", str(REPO)]
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    dirty = subprocess.run(
        [*git, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, check=True
    ).stdout.strip()
    return head + (" with uncommitted changes" if dirty else "")


def results_section(summaries: list[Summary], context: dict[str, str]) -> str:
    legend = "\n".join(f"- `{v.name}`: {v.what}" for v in VARIANTS if any(s.variant is v for s in summaries))
    failures = "\n\n".join(
        f"`{s.variant.name}` at {s.size:,}: {s.failure}\n\n```\n{s.stderr_tail}\n```"
        for s in summaries
        if s.failure and s.stderr_tail
    )
    return f"""
## Scale benchmark, {context["date"]}{context["label"]} (commit {context["commit"][:10]})

`{context["command"]}`

- measured tree: commit `{context["commit"]}`
- machine: {context["cores"]}, {context["memory"]}, Python {context["python"]}, {context["versions"]};
  load average (1 min) {context["load_start"]} at the start, {context["load_end"]} at the end
- input: `benchmarks/generate_bulk.py --patients N` (fixed seed); every variant reads the same Patient.ndjson
  (`run-export` the whole export, `run-gzip*` a gzip copy of the same file); {context["inputs"]}
- wall time of the whole process, start-up included; CPU s = user + system of the process and its children;
  patients/s and MB/s from the median wall time; x orjson = patients/s over the orjson parse's; peak RSS = highest
  sum over the process tree (multi_processing workers are processes) and of the main process alone, sampled every
  100 ms from /proc, highest over the repeats

{markdown_table(HEADER, table_rows(summaries))}

{legend}

Goals of issue 10:

{markdown_table(["goal", "measured", "verdict"], goal_rows(summaries))}
""" + (f"\nFailures (stderr tails):\n\n{failures}\n" if failures else "")


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, nargs="+", default=[ONE_HUNDRED_K, ONE_MILLION], metavar="N")
    parser.add_argument(
        "--repeat",
        type=int,
        metavar="R",
        help=f"runs per variant (default {REPEAT_BELOW_500K} below 500,000 patients, {REPEAT_FROM_500K} from there on)",
    )
    parser.add_argument(
        "--variants",
        nargs="+",
        choices=VARIANT_NAMES,
        default=VARIANT_NAMES,
        metavar="NAME",
        help=f"a subset of: {' '.join(VARIANT_NAMES)} (default all; `watch` needs `run`)",
    )
    parser.add_argument("--workdir", type=Path, help="where exports and warehouses go (default: a new temp dir)")
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the generated exports (a later run with the same --workdir reuses them)",
    )
    parser.add_argument("--timeout", type=float, default=900, help="seconds one variant run may take (default 900)")
    parser.add_argument(
        "--max-rss-gb",
        type=float,
        default=16,
        help="kill a variant whose process tree RSS passes this (default 16, the machine has 24)",
    )
    parser.add_argument("--results", type=Path, help="append a section to this file (benchmarks/RESULTS.md)")
    parser.add_argument("--label", default="", help='words for the section title, e.g. "before optimization"')
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    own_workdir = args.workdir is None
    args.workdir = Path(tempfile.mkdtemp(prefix="bench-scale-")) if own_workdir else args.workdir
    args.workdir.mkdir(parents=True, exist_ok=True)
    variants = [v for v in VARIANTS if v.name in args.variants]
    context = {
        "date": dt.date.today().isoformat(),
        "label": f": {args.label}" if args.label else "",
        "commit": measured_commit(),
        "load_start": f"{os.getloadavg()[0]:.2f}",
        "command": "python benchmarks/bench_scale.py " + shlex.join(sys.argv[1:] if argv is None else argv),
        **machine_facts(),
    }
    summaries, inputs = [], []
    try:
        for size in args.patients:
            repeats = args.repeat or (REPEAT_BELOW_500K if size < 500_000 else REPEAT_FROM_500K)
            summaries += measure_size(size, variants, repeats, args)
            inputs.append(
                f"{size:,} patients: "
                + ", ".join(
                    f"{s.variant.name} {s.input_bytes / MB:,.1f} MB"
                    for s in summaries
                    if s.size == size and s.variant.name in ("orjson", "run-gzip", "run-export") and s.input_bytes
                )
            )
    finally:
        if own_workdir and not args.keep:
            shutil.rmtree(args.workdir, ignore_errors=True)
    context.update(load_end=f"{os.getloadavg()[0]:.2f}", inputs="; ".join(inputs))
    section = results_section(summaries, context)
    print(section)
    if args.results:
        with open(args.results, "a") as results:
            results.write(section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
