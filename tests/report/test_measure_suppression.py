"""Suppression of numerator/denominator pairs against the outsider (attacker.py): arbitrary tables of sources x
strata x (in the numerator, not in it); published are the denominators (the sums over both) and the numerators,
with every Total and (all); the members not in a numerator are unpublished (suppression.Figure.published)."""

from __future__ import annotations

import dataclasses

import pytest
from attacker import UNPUBLISHED, leaks, margins
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_report_suppression import MIN_CELL, as_problem, count

from pipelines.report.suppression import Problem, suppress

OUTCOMES = ["met", "not met"]
PAIRS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def pairs(draw):
    """Sources x strata x outcome, every count 0, 1..10 or 11..60 (so numerators and complements are often small)."""
    dims = [
        [f"s{i}" for i in range(draw(st.integers(1, 2)))],
        [f"k{j}" for j in range(draw(st.integers(2, 4)))],
        OUTCOMES,
    ]
    size = len(dims[0]) * len(dims[1]) * 2
    return dims, draw(st.lists(count, min_size=size, max_size=size))


def measure_problem(dims, values):
    """The tables as measure_model builds them: figures (s, k, met) are numerators, (s, k, ALL) denominators,
    (s, k, "not met") the unpublished complements."""
    cells, published = margins(dims)
    problem, keys = as_problem(cells, published, values)
    figures = tuple(
        dataclasses.replace(f, published=k[2] != "not met") for f, k in zip(problem.figures, keys, strict=True)
    )
    return Problem(problem.base_count, figures, problem.relations), keys, cells, published


def without_complements(problem, keys):
    """The same tables with the complements left out of the system (a suppression that ignores them)."""
    kept = [i for i, k in enumerate(keys) if k[2] != "not met"]
    new = {old: i for i, old in enumerate(kept)}
    relations = tuple(
        (new[w], tuple(new[p] for p in parts))
        for w, parts in problem.relations
        if w in new and all(p in new for p in parts)
    )
    return Problem(problem.base_count, tuple(problem.figures[i] for i in kept), relations), [keys[i] for i in kept]


def attack_pairs(dims, values, protect_complements=True):
    problem, keys, cells, published = measure_problem(dims, values)
    suppressed, suppressed_keys = (problem, keys) if protect_complements else without_complements(problem, keys)
    result = suppress(suppressed, MIN_CELL)
    reasons = {suppressed_keys[i]: r for i, r in result.reasons.items()}
    reasons.update({k: UNPUBLISHED for k in keys if k[2] == "not met"})  # no file shows them
    figures = {k: (published[k], problem.figures[i].value) for i, k in enumerate(keys)}
    unprotected = {suppressed_keys[i] for i in result.unprotected}
    return [leak for leak in leaks(len(cells), figures, reasons, MIN_CELL) if leak[0] not in unprotected], result


@PAIRS
@given(pairs())
@pytest.mark.slow
def test_no_hidden_numerator_denominator_or_small_complement_can_be_recovered(table):
    found, _result = attack_pairs(*table)
    assert found == []


def test_a_small_numerator_in_a_published_denominator_is_not_derivable():
    """3 in 40 (and 25 in 40 beside it): the numerator is hidden, and so is another in its row, or the Total's
    numerator would give it away."""
    dims = [["s0"], ["k0", "k1"], OUTCOMES]
    found, result = attack_pairs(dims, [3, 37, 25, 15])
    hidden = set(result.reasons.values())
    assert found == [] and "primary" in hidden and "complementary" in hidden


def test_the_members_not_in_the_numerator_are_protected_too():
    """37 in 40: publishing both shows that 3 were not in it; with the complement unprotected, the outsider gets it."""
    dims = [["s0"], ["k0", "k1"], OUTCOMES]
    values = [37, 3, 25, 15]
    assert (("s0", "k0", "not met"), "pinned at 3") in attack_pairs(dims, values, protect_complements=False)[0]
    found, result = attack_pairs(dims, values)
    assert found == [] and result.reasons


def test_large_complements_and_zeros_hide_nothing():
    dims = [["s0", "s1"], ["k0", "k1"], OUTCOMES]
    found, result = attack_pairs(dims, [30, 40, 0, 50, 45, 12, 20, 0])
    assert found == [] and result.reasons == {}


def test_markers_say_nothing_of_unpublished_counts():
    problem, keys, _, _ = measure_problem([["s0"], ["k0", "k1"], OUTCOMES], [37, 3, 25, 15])
    result = suppress(problem, MIN_CELL)
    assert result.reasons and all(keys[i][2] != "not met" for i in result.reasons)
