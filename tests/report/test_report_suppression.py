"""Small-cell suppression against an outsider: arbitrary count tables, suppressed, then attacked (attacker.py)."""

from __future__ import annotations

import itertools

import pytest
from attacker import ALL, leaks, margins
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st

from pipelines.report import suppression
from pipelines.report.suppression import COMPLEMENTARY, PRIMARY, Figure, Problem, primary_suppressed, suppress

MIN_CELL = 11
count = st.one_of(st.just(0), st.integers(1, 10), st.integers(11, 60))
PROPERTY = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def as_problem(cells, published, values):
    """The tables as the suppression module sees them: figures over base cells, and each ALL sum as a relation."""
    keys = list(published)
    index = {k: i for i, k in enumerate(keys)}
    figures = tuple(Figure(published[k], sum(values[i] for i in published[k])) for k in keys)
    relations = []
    for k in keys:
        for d, v in enumerate(k):
            if v == ALL:
                parts = [index[k[:d] + (p,) + k[d + 1 :]] for p in sorted({c[d] for c in cells})]
                relations.append((index[k], tuple(parts)))
    return Problem(len(cells), figures, tuple(relations)), keys


def attack(dims, values, suppress_with=suppress, min_cell=MIN_CELL):
    cells, published = margins(dims)
    problem, keys = as_problem(cells, published, values)
    result = suppress_with(problem, min_cell)
    reasons = {keys[i]: r for i, r in result.reasons.items()}
    figures = {k: (published[k], problem.figures[i].value) for i, k in enumerate(keys)}
    return leaks(len(cells), figures, reasons, min_cell), result, problem


@st.composite
def two_way(draw):
    """Sources x strata, every (all) row and total published (the shape of every exclusive table)."""
    sources, strata = draw(st.integers(1, 3)), draw(st.integers(2, 5))
    return [[f"s{i}" for i in range(sources)], [f"k{j}" for j in range(strata)]], draw(
        st.lists(count, min_size=sources * strata, max_size=sources * strata)
    )


@st.composite
def three_way(draw):
    """Providers x sources x strata with every margin (the `--by` report: provider tables add up to the plan)."""
    dims = [
        [f"g{i}" for i in range(draw(st.integers(2, 3)))],
        ["s0", "s1"][: draw(st.integers(1, 2))],
        [f"k{j}" for j in range(draw(st.integers(2, 3)))],
    ]
    size = len(dims[0]) * len(dims[1]) * len(dims[2])
    return dims, draw(st.lists(count, min_size=size, max_size=size))


@PROPERTY
@given(two_way())
@pytest.mark.slow
def test_no_hidden_count_of_a_two_way_table_can_be_recovered(table):
    dims, values = table
    found, result, _ = attack(dims, values)
    assert [leak for leak in found if leak[0] not in _unprotected_keys(dims, result)] == []


@PROPERTY
@given(three_way())
@pytest.mark.slow
def test_no_hidden_count_of_provider_and_plan_tables_can_be_recovered(table):
    dims, values = table
    found, result, _ = attack(dims, values)
    assert [leak for leak in found if leak[0] not in _unprotected_keys(dims, result)] == []


def _unprotected_keys(dims, result):
    """Hidden figures the suppression itself reports as beyond help (only published zeros give them away)."""
    keys = list(margins(dims)[1])
    return {keys[i] for i in result.unprotected}


CATEGORIES = ("A", "B", "C")
COMBINATIONS = [frozenset(c) for r in range(len(CATEGORIES) + 1) for c in itertools.combinations(CATEGORIES, r)]


@st.composite
def combinations(draw):
    """Per source, patients per exact combination of categories (the empty one: no category)."""
    sources = draw(st.integers(1, 2))
    return sources, draw(st.lists(count, min_size=sources * len(COMBINATIONS), max_size=sources * len(COMBINATIONS)))


def overlapping_tables(sources, values):
    """Published: each combination (exclusive), each category alone or in combination (overlapping), the
    multiple-category count, and the totals, per source and (all)."""
    cells = [(f"s{i}", c) for i in range(sources) for c in COMBINATIONS]
    published = {}
    for source in [f"s{i}" for i in range(sources)] + [ALL]:
        mine = [i for i, (s, _) in enumerate(cells) if source in (ALL, s)]
        published["total", source] = frozenset(mine)
        published["multiple", source] = frozenset(i for i in mine if len(cells[i][1]) > 1)
        for combo in COMBINATIONS:
            published["combination", source, "+".join(sorted(combo))] = frozenset(
                i for i in mine if cells[i][1] == combo
            )
        for category in CATEGORIES:
            published["alone or in combination", source, category] = frozenset(
                i for i in mine if category in cells[i][1]
            )
    return cells, published


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(combinations())
@pytest.mark.slow
def test_alone_or_in_combination_counts_do_not_give_away_the_exclusive_ones(table):
    sources, values = table
    cells, published = overlapping_tables(sources, values)
    keys = list(published)
    figures = tuple(Figure(published[k], sum(values[i] for i in published[k])) for k in keys)
    index = {k: i for i, k in enumerate(keys)}
    relations = [
        (
            index[k],
            tuple(
                index[p]
                for p in keys
                if p[0] == "combination" and p[1] == k[1] and published[p] <= published[k] and published[p]
            ),
        )
        for k in keys
        if k[0] in ("total", "multiple", "alone or in combination")
    ]
    problem = Problem(len(cells), figures, tuple((w, p) for w, p in relations if p))
    result = suppress(problem, MIN_CELL)
    reasons = {keys[i]: r for i, r in result.reasons.items()}
    found = leaks(len(cells), {k: (published[k], figures[i].value) for i, k in enumerate(keys)}, reasons, MIN_CELL)
    assert [leak for leak in found if index[leak[0]] not in result.unprotected] == []


def test_zero_is_never_hidden_and_min_cell_zero_publishes_everything():
    dims, values = [["s0", "s1"], ["k0", "k1", "k2"]], [0, 3, 40, 0, 25, 2]
    _, result, problem = attack(dims, values)
    assert all(problem.figures[i].value > 0 for i in result.reasons)
    assert suppress(problem, 0).reasons == {}


def primary_only(problem, min_cell):
    return suppression.Suppression(primary_suppressed(problem, min_cell))


def test_the_attacker_recovers_counts_from_primary_suppression_alone():
    """The property tests can fail: with primary suppression only, the outsider recovers hidden counts."""
    found, _, _ = attack([["s0", "s1"], ["k0", "k1", "k2"]], [5, 20, 30, 40, 12, 50], suppress_with=primary_only)
    assert (("s0", "k0"), "pinned at 5") in found


def test_hypothesis_finds_a_table_that_primary_suppression_alone_leaves_open():
    _dims, values = find(
        two_way(),
        lambda t: bool(attack(*t, suppress_with=primary_only)[0]),
        settings=settings(max_examples=200, deadline=None, database=None),
    )
    assert any(0 < v < MIN_CELL for v in values)


def test_the_calhhs_rule_hides_one_more_when_the_hidden_counts_are_tiny():
    """Two hidden cells of 1 and 2 in a row: each lies in 1..2 once the total is known (CalHHS DDG 4.4.1)."""
    dims, values = [["s0"], ["k0", "k1", "k2", "k3"]], [1, 2, 30, 45]
    _, result, problem = attack(dims, values)
    hidden_row = {
        problem.figures[i].members: problem.figures[i].value
        for i in result.reasons
        if len(problem.figures[i].members) == 1
    }
    assert sorted(hidden_row.values())[:2] == [1, 2] and len(hidden_row) >= 3
    assert COMPLEMENTARY in result.reasons.values() and PRIMARY in result.reasons.values()


@pytest.mark.parametrize("values", [[10, 10, 0, 30], [4, 7, 0, 25]])
def test_two_small_hidden_counts_against_a_known_total_get_a_third(values):
    """10 + 10 = 20 with both marked "<11" pins both at 10; 4 + 7 = 11 shows both small without the markers."""
    found, result, _ = attack([["s0"], ["k0", "k1", "k2", "k3"]], values)
    assert found == [] and len(result.reasons) >= 3
