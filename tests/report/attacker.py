"""An outsider who tries to recover hidden counts from published tables (independent of pipelines.report: its own
integer programs over the tables as the tests describe them)."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp

ALL = "*"
UNPUBLISHED = "unpublished"  # the reason a test gives a figure that no file shows
CAP = 10_000  # larger than any count in the tests: a bound at CAP means "unbounded"


def margins(dims: Sequence[Sequence[str]]) -> tuple[list[tuple[str, ...]], dict[tuple[str, ...], frozenset[int]]]:
    """Base cells of a table with these dimensions, and every published figure: each cell, and every sum with one or
    more dimensions set to ALL (rows, columns, `(all)` rows, provider and plan-wide totals)."""
    cells = list(itertools.product(*dims))
    published = {}
    for pattern in itertools.product(*[list(d) + [ALL] for d in dims]):
        published[pattern] = frozenset(
            i for i, c in enumerate(cells) if all(p in (ALL, v) for p, v in zip(pattern, c, strict=True))
        )
    return cells, published


def integer_range(
    n: int, known: Iterable[tuple[frozenset[int], float, float]], target: frozenset[int]
) -> tuple[int, int]:
    """Smallest and largest sum of `target` over non-negative integer tables whose sums over each member set lie
    within the known bounds."""
    known = list(known)
    matrix = np.zeros((len(known), n))
    for row, (members, _, _) in enumerate(known):
        matrix[row, list(members)] = 1
    constraint = LinearConstraint(matrix, [lo for _, lo, _ in known], [hi for _, _, hi in known])
    objective = np.zeros(n)
    objective[list(target)] = 1
    found = []
    for sign in (1, -1):
        result = milp(sign * objective, integrality=np.ones(n), bounds=Bounds(0, CAP), constraints=[constraint])
        assert result.status == 0, result.message  # the true table is always feasible
        found.append(round(sign * result.fun))
    return found[0], found[1]


def knowledge(
    figures: Mapping[object, tuple[frozenset[int], int]], reasons: Mapping[object, str], min_cell: int, markers: bool
) -> list[tuple[frozenset[int], float, float]]:
    """What the published tables say: each published value exactly; a hidden one is at least 1 (zeros are always
    published) and, reading the suppression_reason column, 1..min_cell-1 (primary) or min_cell or more; an
    unpublished one (a count no file shows, such as a denominator minus its numerator) nothing."""
    known = []
    for key, (members, value) in figures.items():
        reason = reasons.get(key, "")
        if reason == UNPUBLISHED:
            continue
        if not reason:
            known.append((members, value, value))
        elif not markers:
            known.append((members, 1, CAP))
        elif reason == "primary":
            known.append((members, 1, min_cell - 1))
        else:
            known.append((members, min_cell, CAP))
    return known


def leaks(
    n: int, figures: Mapping[object, tuple[frozenset[int], int]], reasons: Mapping[object, str], min_cell: int
) -> list[tuple[object, str]]:
    """Every hidden figure the outsider recovers exactly, or shows to be from 1 to min_cell - 1 without reading
    the markers; every unpublished one from 1 to min_cell - 1 recovered or shown small; and every published count
    from 1 to min_cell - 1."""
    found = [
        (key, "published small") for key, (_, value) in figures.items() if not reasons.get(key) and 0 < value < min_cell
    ]
    with_markers = knowledge(figures, reasons, min_cell, markers=True)
    without = knowledge(figures, reasons, min_cell, markers=False)
    for key, reason in reasons.items():
        members, value = figures[key]
        if reason == UNPUBLISHED and not 0 < value < min_cell:
            continue  # an unpublished count of 0 or min_cell or more may be worked out
        low, high = integer_range(n, with_markers, members)
        if low == high:
            found.append((key, f"pinned at {low}"))
        elif reason in ("primary", UNPUBLISHED) and integer_range(n, without, members)[1] < min_cell:
            found.append((key, "shown small"))
    return found
