"""`demographics report`: its options, and the run that writes files, pages and warehouse views."""

from __future__ import annotations

import argparse
import csv
import logging
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.errors import EXIT_OK, UsageError

if TYPE_CHECKING:
    from pipelines.report.build import Measures, ReportOptions

log = logging.getLogger(__name__)
# Provider fields of patient_demographics a report can be split by (one folder and page per provider).
BY_FIELDS = ("managing_organization", "general_practitioner")
DEFAULT_MIN_CELL = 11  # CMS cell size suppression policy and CalHHS DDG: counts from 1 to 10 are not published


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The report's own options (the CLI adds --warehouse, --completeness-goal and --log-level)."""
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for the files and index.html")
    parser.add_argument(
        "--source", nargs="+", action="extend", default=[], metavar="NAME", help="report these sources only"
    )
    parser.add_argument(
        "--min-cell",
        type=_min_cell,
        default=DEFAULT_MIN_CELL,
        metavar="N",
        help=f"smallest count published (default {DEFAULT_MIN_CELL}: counts from 1 to 10 are hidden, "
        "and more cells so that none can be worked out); 0 publishes everything, for "
        "internal use",
    )
    parser.add_argument(
        "--by",
        choices=BY_FIELDS,
        metavar="FIELD",
        help="also one folder and page per provider organization: " + " or ".join(BY_FIELDS),
    )
    parser.add_argument(
        "--measures",
        nargs="+",
        action="extend",
        default=[],
        metavar="FILE",
        help="member-level quality-measure results (CSV or Parquet with patient_id, measure, "
        "denominator, numerator[, source, exclusion]; or FHIR MeasureReports of type "
        "individual): adds measures.csv/.parquet and a section of index.html, stratified by "
        "HEDIS race, HEDIS ethnicity and OMB 2024 category",
    )
    parser.add_argument(
        "--reference-group",
        action="append",
        type=_reference_group,
        default=[],
        metavar="STRATIFIER=STRATUM",
        help="the group each stratum is compared with, per stratifier (default: the measure's "
        "overall rate, Total); repeat for each, e.g. --reference-group hedis_race=White "
        "--reference-group hedis_ethnicity=NotHispanicOrLatino",
    )


def _min_cell(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value != 0 and value < 3:
        # With 2 the marker "<2" itself says the count is 1; 1 would hide nothing.
        raise argparse.ArgumentTypeError(f"must be 0 (no suppression) or at least 3, got {value}")
    return value


def _reference_group(text: str) -> tuple[str, str]:
    from pipelines.report.measures import STRATIFIERS, TOTAL

    stratifier, _, stratum = text.partition("=")
    if stratifier not in STRATIFIERS:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give STRATIFIER=STRATUM, STRATIFIER one of {', '.join(STRATIFIERS)}"
        )
    if stratum not in (TOTAL, *STRATIFIERS[stratifier]):
        raise argparse.ArgumentTypeError(
            f"{text!r}: {stratifier} has the strata {', '.join(STRATIFIERS[stratifier])} (and {TOTAL})"
        )
    return stratifier, stratum


def _reference(groups: list[tuple[str, str]], measures: list[str]) -> dict[str, str]:
    if groups and not measures:
        raise UsageError("report: --reference-group needs --measures")
    named = [stratifier for stratifier, _ in groups]
    twice = sorted({s for s in named if named.count(s) > 1})
    if twice:
        raise UsageError(f"report: --reference-group names {', '.join(twice)} more than once")
    return dict(groups)


def run(args: argparse.Namespace) -> int:
    from pipelines.report.build import ReportOptions, create_views, make_report, read_figures
    from pipelines.report.measure_inputs import read_measure_inputs
    from pipelines.tables import PATIENTS
    from pipelines.warehouse import connect, table_exists

    options = ReportOptions(
        out=Path(args.out),
        sources=tuple(args.source),
        min_cell=args.min_cell,
        by=args.by,
        goal=args.completeness_goal,
        reference=_reference(args.reference_group, args.measures),
    )
    _check_out(options.out)
    measures = read_measure_inputs(args.measures) if args.measures else None
    with connect(args.warehouse, create=False) as con:
        if not table_exists(con, PATIENTS):
            raise UsageError(f"{args.warehouse} has no {PATIENTS} table: nothing has landed yet")
        views = create_views(con)
        figures = read_figures(con, options, measures)
    report = make_report(figures, options)
    for line in write_report(report):
        print(line)
    print(f"views in {args.warehouse}: {', '.join(views)} (every source, nothing suppressed)")
    return EXIT_OK


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"cannot write to --out {out}: {err.strerror}") from None


def write_report(report) -> list[str]:
    """Files and page of the plan, then of each provider group; the lines that say where they went."""
    from pipelines.report.build import PROVIDERS_FILE, folder_names, write_files
    from pipelines.report.page import report_page
    from pipelines.report.tables import ALL, NO_GROUP

    options = report.options
    counts = report.counts()
    lines = [
        f"suppression: {counts.get('primary', 0)} counts from 1 to {options.min_cell - 1} hidden, "
        f"{counts.get('complementary', 0)} more to protect them"
        if options.min_cell > 1
        else "suppression: off (--min-cell 0): do not publish these files"
    ]
    if report.suppression.unprotected:
        lines.append(
            f"warning: {len(report.suppression.unprotected)} hidden counts remain derivable from "
            "published zeros (every count related to them is hidden); see docs/report.md"
        )
    folders = folder_names(report.groups(), options.by) if options.by else {}
    files = write_files(report, ALL, options.out, options.by)
    page = options.out / "index.html"
    page.write_text(report_page(report, ALL, folders, options.by), encoding="utf-8")
    lines.append(f"wrote {len(files) // 2} tables (CSV and Parquet) to {options.out}/")
    for grp, folder in folders.items():
        write_files(report, grp, options.out / folder, options.by)
        (options.out / folder / "index.html").write_text(report_page(report, grp, by=options.by), encoding="utf-8")
    if folders:
        with (options.out / PROVIDERS_FILE).open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["folder", options.by])
            writer.writerows((folder, "" if grp == NO_GROUP else grp) for grp, folder in folders.items())
        lines.append(
            f"wrote {len(folders)} provider folders (files and index.html each) under {options.out}/, "
            f"listed in {options.out / PROVIDERS_FILE}"
        )
    if report.measures:
        lines += write_measures(report.measures, options)
    lines.append(f"wrote {page}")
    return lines


def write_measures(measures: Measures, options: ReportOptions) -> list[str]:
    """measures and measures_unmatched (CSV and Parquet), measures_rejected.csv; the lines that say what became
    of the results read."""
    from pipelines.report.build import MEASURE_REJECTS
    from pipelines.report.publish import MEASURE_COLUMNS, UNMATCHED_COLUMNS, arrow_table, write_rejects, write_table
    from pipelines.report.rates import MIN_DENOMINATOR

    figures, counts = measures.figures, measures.figures.counts
    write_table(arrow_table(measures.rows, empty=MEASURE_COLUMNS), options.out, "measures")
    write_table(arrow_table(measures.unmatched, empty=UNMATCHED_COLUMNS), options.out, "measures_unmatched")
    write_rejects(figures.rejects, options.out / MEASURE_REJECTS)
    files = len(figures.files)
    lines = [
        f"measures: {counts['results']} results read from {files} file{'s' if files != 1 else ''}: "
        f"{counts['counted']} counted in a denominator ({counts['unmatched']} unmatched, counted in Unknown), "
        f"{counts['excluded']} excluded, {counts['not_in_denominator']} not in a denominator"
        + (f", {counts['left_out']} of sources left out by --source" if counts["left_out"] else "")
    ]
    rejected = Counter(r.reason for r in figures.rejects)
    lines.append(
        f"measures: {sum(rejected.values())} rows rejected ("
        + ", ".join(f"{reason} {n}" for reason, n in sorted(rejected.items()))
        + f"): see {options.out / MEASURE_REJECTS}"
        if rejected
        else "measures: no row rejected"
    )
    if figures.other_resources:
        lines.append(
            f"measures: {sum(figures.other_resources.values())} resources other than MeasureReport ignored ("
            + ", ".join(f"{t} {n}" for t, n in sorted(figures.other_resources.items()))
            + ")"
        )
    hidden = measures.reasons
    if options.min_cell > 1:
        lines.append(
            f"measures suppression: {hidden['primary']} denominators and numerators from 1 to "
            f"{options.min_cell - 1} hidden, {hidden['complementary']} more to protect them and the "
            f"members not in a numerator; rates with a denominator under {MIN_DENOMINATOR} are NA"
        )
    if measures.unprotected:
        lines.append(
            f"warning: {measures.unprotected} hidden measure counts remain derivable from "
            "published zeros; see docs/report.md"
        )
    lines.append(f"wrote measures and measures_unmatched (CSV and Parquet) and {MEASURE_REJECTS} to {options.out}/")
    return lines
