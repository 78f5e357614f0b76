"""The arithmetic of stratified quality measures: a rate, its 95% Wilson interval, its difference and ratio to a
reference rate, and the HEDIS small-denominator rule. Pure: no DuckDB, no I/O."""

from __future__ import annotations

import math

Z95 = 1.959963984540054  # the 0.975 quantile of the standard normal: a two-sided 95% interval
MIN_DENOMINATOR = 30  # HEDIS: a rate whose denominator is under 30 is not reported ("NA")
DECIMALS = 4  # rates and what derives from them, as published (the report's shares have 4 decimals too)


def reportable(denominator: int) -> bool:
    """The HEDIS small-denominator rule: a rate is reported only from a denominator of 30 up. It is a rule of
    reliability, not of disclosure: the denominator itself is published (unless small-cell suppression hides it)."""
    return denominator >= MIN_DENOMINATOR


def rate(numerator: int, denominator: int) -> float:
    """numerator / denominator, rounded as published."""
    return round(numerator / denominator, DECIMALS)


def wilson_interval(numerator: int, denominator: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion (Wilson 1927): unlike p +/- z*sqrt(p(1-p)/n), it stays within
    [0, 1] and does not shrink to a point at 0/n or n/n, which small strata often are.

    With p = x/n:  (p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n).
    """
    if denominator <= 0 or not 0 <= numerator <= denominator:
        raise ValueError(f"no proportion {numerator}/{denominator}")
    n, p, z2 = denominator, numerator / denominator, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return round(max(0.0, centre - half), DECIMALS), round(min(1.0, centre + half), DECIMALS)


def difference(value: float, reference: float) -> float:
    """Rate minus the reference rate (percentage points as a fraction: -0.1 is ten points below)."""
    return round(value - reference, DECIMALS)


def ratio(value: float, reference: float) -> float | None:
    """Rate over the reference rate; None when the reference is 0 (no ratio to nothing)."""
    return round(value / reference, DECIMALS) if reference else None
