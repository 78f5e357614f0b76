"""Charts of the report page as inline SVG: Altair (Vega-Lite) specs rendered by vl-convert, with no browser,
no script and no request (the page must read offline). Hidden counts are drawn as a marker, never as a bar."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import altair as alt
import vl_convert
from markupsafe import Markup

WIDTH = 460
PALETTE = ["#1f5f99", "#e07b39", "#3a9a5b", "#8e5ea2", "#c44e52", "#7f7f7f", "#b8a13a", "#2ba6b8"]
FONT = "Arial, Helvetica, 'Liberation Sans', sans-serif"  # metric-compatible everywhere: labels fit where measured
# Inline SVG in HTML needs no namespace declarations; dropping them keeps every address out of the page.
_NAMESPACES = (' xmlns="http://www.w3.org/2000/svg"', ' xmlns:xlink="http://www.w3.org/1999/xlink"')


def inline_svg(spec: Mapping[str, Any]) -> Markup:
    """A Vega-Lite spec as an <svg> element for an HTML page."""
    svg = vl_convert.vegalite_to_svg(dict(spec))
    for declaration in _NAMESPACES:
        svg = svg.replace(declaration, "", 1)
    return Markup(svg)


def _config(chart: alt.TopLevelMixin) -> alt.TopLevelMixin:
    return (
        chart.configure_view(stroke=None)
        .configure_axis(labelFont=FONT, titleFont=FONT, labelFontSize=11, titleFontSize=11, labelLimit=230)
        .configure_legend(labelFont=FONT, titleFont=FONT, orient="top", title=None)
        .configure_text(font=FONT)
    )


def share_bars(points: Sequence[Mapping[str, Any]], order: Sequence[str], goal: float | None = None) -> Markup:
    """Horizontal bars of `share` per `label`, one per `series` (a source, a provider, the plan); a hidden
    share shows its `marker` ("<11", "hidden") instead of a bar; `goal` is drawn as a dashed rule.

    points: {"label", "series", "share" (None when hidden), "marker"}.
    """
    series = list(dict.fromkeys(p["series"] for p in points))
    data = alt.Data(
        values=[{**p, "shown": p["share"] or 0, "text": p["marker"] or _percent(p["share"])} for p in points]
    )
    y = alt.Y("label:N", sort=list(order), title=None)
    color = alt.Color(
        "series:N",
        sort=series,
        scale=alt.Scale(domain=series, range=PALETTE[: len(series)]),
        legend=alt.Legend() if len(series) > 1 else None,
    )
    offset = alt.YOffset("series:N", sort=series)
    base = alt.Chart(data).encode(y=y, yOffset=offset)
    bars = base.mark_bar(height={"band": 0.85}).encode(
        x=alt.X(
            "shown:Q", title="share of patients", axis=alt.Axis(format="%", tickCount=5), scale=alt.Scale(domainMin=0)
        ),
        color=color,
    )
    labels = base.mark_text(align="left", dx=3, fontSize=10, color="#333").encode(x="shown:Q", text="text:N")
    layers = [bars, labels]
    if goal is not None:
        layers.append(
            alt.Chart(alt.Data(values=[{"goal": goal}]))
            .mark_rule(strokeDash=[5, 3], color="#c0392b", strokeWidth=2)
            .encode(x="goal:Q")
        )
    chart = alt.layer(*layers).properties(width=WIDTH, height=alt.Step(13 if len(series) > 1 else 18))
    return inline_svg(_config(chart).to_dict(validate=False))


def trend_lines(points: Sequence[Mapping[str, Any]], goal: float) -> Markup:
    """Share over time per `series`; hidden points are left out of the line.

    points: {"series", "when" (ISO timestamp), "share" (None when hidden)}.
    """
    series = list(dict.fromkeys(p["series"] for p in points))
    shown = [p for p in points if p["share"] is not None]
    lines = (
        alt.Chart(alt.Data(values=shown))
        .mark_line(point=True)
        .encode(
            x=alt.X("when:T", title=None, axis=alt.Axis(format="%Y-%m-%d", labelAngle=0)),
            y=alt.Y("share:Q", title="reported share", axis=alt.Axis(format="%"), scale=alt.Scale(domain=[0, 1])),
            color=alt.Color("series:N", sort=series, scale=alt.Scale(domain=series, range=PALETTE[: len(series)])),
        )
    )
    rule = alt.Chart(alt.Data(values=[{"goal": goal}])).mark_rule(strokeDash=[5, 3], color="#c0392b").encode(y="goal:Q")
    return inline_svg(_config(alt.layer(lines, rule).properties(width=WIDTH, height=180)).to_dict(validate=False))


def rate_panels(panels: Sequence[tuple[str, Sequence[Mapping[str, Any]], float | None]]) -> Markup:
    """One panel per stratifier, stacked: per stratum its rate as a dot on its 95% interval (a line), the rate
    written beside it; a rate not shown has its `marker` (`NA`, `<11`, `hidden`) written at 0 instead; the
    reference rate is a dashed rule, so that a gap is seen at a glance.

    panels: (title, points {"label", "rate", "low", "high" (None when not shown), "marker"}, reference rate).
    """
    x_scale = alt.Scale(domain=[0, 1])
    charts = []
    for title, points, reference in panels:
        data = alt.Data(
            values=[
                {**p, "at": p["high"] if p["rate"] is not None else 0, "text": p["marker"] or _percent(p["rate"])}
                for p in points
            ]
        )
        base = alt.Chart(data).encode(y=alt.Y("label:N", sort=[p["label"] for p in points], title=None))
        shown = base.transform_filter("datum.rate != null")
        layers = [
            shown.mark_rule(strokeWidth=2, color=PALETTE[0]).encode(
                x=alt.X(
                    "low:Q", scale=x_scale, title="rate, with its 95% interval", axis=alt.Axis(format="%", tickCount=5)
                ),
                x2="high:Q",
            ),
            shown.mark_point(filled=True, size=45, color=PALETTE[0], opacity=1).encode(x="rate:Q"),
            base.mark_text(align="left", dx=4, fontSize=10, color="#333").encode(x="at:Q", text="text:N"),
        ]
        if reference is not None:
            layers.append(
                alt.Chart(alt.Data(values=[{"reference": reference}]))
                .mark_rule(strokeDash=[5, 3], color="#c0392b", strokeWidth=2)
                .encode(x="reference:Q")
            )
        charts.append(alt.layer(*layers).properties(title=title, width=WIDTH, height=alt.Step(16)))
    return inline_svg(_config(alt.vconcat(*charts, spacing=18)).to_dict(validate=False))


def _percent(share: float | None) -> str:
    return "" if share is None else f"{share:.1%}"
