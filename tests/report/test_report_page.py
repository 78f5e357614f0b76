"""The report page: self-contained, charts inline, hidden counts marked; and opened in a real headless Chromium."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
from test_measures_command import write_csv
from test_report_command import feeds

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    """A validated warehouse (so completeness has a trend), its report with provider pages, and the validation
    page; written once for the module."""
    from report_rows import build_warehouse

    from pipelines.cli import main

    folder = tmp_path_factory.mktemp("page")
    warehouse = build_warehouse(folder / "warehouse.duckdb", feeds())
    assert main(
        ["validate", "--warehouse", str(warehouse), "--html", str(folder / "validation.html"), "--log-level", "WARNING"]
    ) in (0, 1)
    results = write_csv(folder / "results.csv", measure_results(feeds()))
    assert (
        main(
            [
                "report",
                "--warehouse",
                str(warehouse),
                "--out",
                str(folder / "out"),
                "--by",
                "managing_organization",
                "--measures",
                str(results),
                "--log-level",
                "WARNING",
            ]
        )
        == 0
    )
    return folder / "out"


def measure_results(patients):
    """CBP for every patient (met by one in two, by one in three of those with a provider Organization/2), one
    result of a member who is not in the warehouse; SMALL for the 25 White patients of feed_b, 12 met (a rate
    that is NA: under 30, though no count is small)."""
    found = [
        {
            "patient_id": p["patient_id"],
            "source": p["source"],
            "measure": "CBP",
            "denominator": True,
            "numerator": i % (3 if p["managing_organization"] == "Organization/2" else 2) == 0,
        }
        for i, p in enumerate(patients)
    ]
    white_b = [p for p in patients if p["patient_id"].startswith("PATIENT-SECRET-b-white")]
    found += [
        {
            "patient_id": p["patient_id"],
            "source": "feed_b",
            "measure": "SMALL",
            "denominator": True,
            "numerator": i < 12,
        }
        for i, p in enumerate(white_b)
    ]
    return found + [
        {
            "patient_id": "not-in-warehouse",
            "source": "feed_a",
            "measure": "CBP",
            "denominator": True,
            "numerator": False,
        }
    ]


@pytest.mark.slow
def test_page_is_self_contained_with_inline_charts_and_marked_suppression(pages):
    page = (pages / "index.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"https?:|//cdn|<script|<link|src=|@import|url\(", page)
    assert page.count("<svg") >= 9 and "mark-rect" in page and "mark-line" in page  # with the trend
    assert 'class="num primary"' in page and "&lt;11" in page and "complementary suppression" in page
    for section in (
        "completeness",
        "hedis_race",
        "hedis_ethnicity",
        "omb2024_single_category",
        "omb2024_alone_and_combinations",
        "omb2024_alone_or_in_combination",
        "detailed_groups",
        "language",
    ):
        assert f'id="{section}"' in page
    assert 'href="organization-1/index.html"' in page
    assert 'id="measures"' in page and 'id="measure-cbp"' in page and "Unmatched results" in page
    assert "PATIENT-SECRET" not in page and "not-in-warehouse" not in page


def test_measures_chart_draws_rates_intervals_markers_and_the_reference(pages):
    page = (pages / "index.html").read_text(encoding="utf-8")
    cbp = page[page.index('id="measure-cbp"') : page.index('id="measure-small"')]
    chart = cbp[cbp.index("<svg") : cbp.index("</svg>")]
    for stratifier in ("HEDIS race", "HEDIS ethnicity", "OMB 2024 category"):
        assert stratifier in chart
    assert chart.count("mark-rule") >= 3 and "mark-symbol" in chart and "stroke-dasharray" in chart
    assert ">&lt;11</text>" in chart and ">hidden</text>" in chart  # suppressed rates are marked, not drawn
    small = page[page.index('id="measure-small"') :]
    assert ">NA</text>" in small[: small.index("</svg>")]  # and so is a rate with a denominator under 30
    provider = (pages / "organization-2" / "index.html").read_text(encoding="utf-8")
    assert 'id="measures"' not in provider  # the plan's page only


def test_provider_page_shows_the_plan_beside_the_provider(pages):
    page = (pages / "organization-2" / "index.html").read_text(encoding="utf-8")
    assert "Organization/2" in page and "This provider" in page and "Plan-wide" in page
    assert "Organization/1" not in page and not re.search(r"https?:|<script", page)


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("Debian's Chromium is not installed (apt-get install -y chromium; .ci/run does it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        yield launched
        launched.close()


def open_page(browser, path: Path, requests: list[str]):
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.on("request", lambda request: requests.append(request.url))
    page.goto(path.resolve().as_uri(), wait_until="load")
    return page


@pytest.mark.slow
def test_page_in_chromium_draws_charts_fits_a_laptop_and_asks_for_nothing(browser, pages, tmp_path):
    from PIL import Image

    requests: list[str] = []
    page = open_page(browser, pages / "index.html", requests)
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    charts = page.locator("figure.chart svg")
    assert charts.count() >= 10
    assert (
        page.locator("#measures figure.chart svg .mark-rule line, #measures figure.chart svg .mark-rule path").count()
        >= 3
    )  # intervals, drawn
    assert page.locator("#measures figure.chart svg .mark-symbol path").count() >= 2  # rates, drawn
    assert page.locator("figure.chart svg .mark-rect path").count() >= 20  # bars, drawn
    assert page.locator("td.primary").count() > 0
    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    page.close()
    assert requests and all(url.startswith("file://") for url in requests), requests
    image = Image.open(shot).convert("L")
    assert image.width == 1280 and image.height > 3000
    low, high = image.getextrema()
    assert high - low > 200 and len(image.getcolors(1 << 16) or []) > 50  # drawn, not blank


def test_trend_of_completeness_is_published(pages):
    rows = list(csv.DictReader((pages / "completeness_trend.csv").open(encoding="utf-8")))
    assert {r["source"] for r in rows} == {"feed_a", "feed_b", "(all)"} and all(r["share"] for r in rows)


@pytest.mark.slow
def test_validate_says_where_it_wrote_the_page(run_cli, warehouse, tmp_path):
    html = tmp_path / "validation.html"
    code, out, _ = run_cli("validate", "--warehouse", warehouse(feeds()), "--html", html)
    assert code in (0, 1) and f"wrote {html}" in out
    page = html.read_text(encoding="utf-8")
    assert "kwargs" not in page and "{&#34;" not in page  # no raw GX JSON: key facts instead
    assert "at least 80% of rows" in page and "allowed: reported" in page
    assert "Klingon" not in page and "PATIENT-SECRET" not in page


@pytest.mark.slow
def test_validation_page_fits_a_laptop(browser, pages):
    requests: list[str] = []
    page = open_page(browser, pages.parent / "validation.html", requests)
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    page.close()
    assert all(url.startswith("file://") for url in requests)


@pytest.mark.slow
def test_the_trend_and_the_completeness_table_agree_on_write_ins(run_cli, warehouse, tmp_path):
    """feed_b's 11 unmapped-text patients are reported but count in neither the table's share nor the trend."""
    path = warehouse(feeds())
    assert run_cli("validate", "--warehouse", path)[0] == 1  # feed_a and feed_b are under the 80% goal
    assert run_cli("report", "--warehouse", path, "--out", tmp_path / "out", "--min-cell", "0")[0] == 0
    table = {(r["source"], r["stratum"]): r for r in csv.DictReader((tmp_path / "out" / "completeness.csv").open())}
    trend = {r["source"]: r for r in csv.DictReader((tmp_path / "out" / "completeness_trend.csv").open())}
    for source in ("feed_a", "feed_b", "(all)"):
        assert float(trend[source]["share"]) == pytest.approx(float(table[source, "reported"]["share"]), abs=1e-4)
    assert table["feed_b", "unmapped_text_only"]["patients"] == "11"
    assert float(trend["feed_b"]["share"]) == pytest.approx(42 / 53, abs=1e-6)
