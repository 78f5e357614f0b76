"""The arithmetic of quality measures against hand calculations (pipelines/report/rates.py)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from pipelines.report import rates
from pipelines.report.rates import difference, rate, ratio, reportable, wilson_interval


# Wilson: with p = x/n and z = 1.959964 (z² = 3.841459),
#   centre = (p + z²/2n) / (1 + z²/n),  half = z/(1 + z²/n) · sqrt(p(1-p)/n + z²/4n²).
# 3/40:  p = .075, 1 + z²/n = 1.0960365, centre = (.075 + .0480182)/1.0960365 = .1122392,
#        half = 1.959964 · sqrt(.001734375 + .000600228)/1.0960365 = 1.959964 · .0483178/1.0960365 = .0864040
#        -> (.0258352, .1986432)
# 0/30:  p = 0, 1 + z²/n = 1.1280486, centre = half = (z²/60)/1.1280486 = .0567568  -> (0, .1135136)
# 30/30: the mirror of 0/30                                                          -> (.8864864, 1)
# 15/50: p = .3, 1 + z²/n = 1.0768292, centre = (.3 + .0384146)/1.0768292 = .3142693,
#        half = 1.959964 · sqrt(.0042 + .0003841)/1.0768292 = 1.959964 · .0677063/1.0768292 = .1232340
#        -> (.1910353, .4375033)
@pytest.mark.parametrize(
    "numerator, denominator, low, high",
    [
        (3, 40, 0.0258, 0.1986),
        (0, 30, 0.0, 0.1135),
        (30, 30, 0.8865, 1.0),
        (15, 50, 0.1910, 0.4375),
    ],
)
def test_wilson_interval_by_hand(numerator, denominator, low, high):
    assert wilson_interval(numerator, denominator) == (low, high)


def test_the_interval_holds_the_rate_and_narrows_with_the_denominator():
    for x, n in [(1, 3), (7, 31), (300, 1000)]:
        low, high = wilson_interval(x, n)
        assert low <= rate(x, n) <= high
    assert wilson_interval(150, 500)[1] - wilson_interval(150, 500)[0] < 0.4375 - 0.1910  # 15/50 at ten times n


@pytest.mark.parametrize("numerator, denominator", [(1, 0), (-1, 10), (11, 10)])
def test_no_interval_without_a_proportion(numerator, denominator):
    with pytest.raises(ValueError):
        wilson_interval(numerator, denominator)


@pytest.mark.parametrize(
    "value, reference, expected_difference, expected_ratio",
    [
        (15 / 50, 40 / 100, -0.1, 0.75),  # 30% against 40%: ten points below, three quarters
        (3 / 40, 0.075, 0.0, 1.0),  # the reference group itself
        (1 / 3, 1 / 6, 0.1667, 2.0),  # exact rates, rounded once: .33333 - .16667, .33333 / .16667
        (12 / 40, 0.0, 0.3, None),  # no ratio to a reference of 0
    ],
)
def test_difference_and_ratio_by_hand(value, reference, expected_difference, expected_ratio):
    assert difference(value, reference) == expected_difference
    assert ratio(value, reference) == expected_ratio


@pytest.mark.parametrize("denominator, expected", [(0, False), (29, False), (30, True), (1000, True)])
def test_small_denominator_rule(denominator, expected):
    assert reportable(denominator) is expected


def test_rate_is_rounded_to_four_decimals():
    assert rate(1, 3) == 0.3333 and rate(2, 3) == 0.6667 and rate(0, 30) == 0.0


def test_the_arithmetic_imports_no_database():
    tree = ast.parse(Path(rates.__file__).read_text(encoding="utf-8"))
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert imported <= {"__future__", "math"}
