"""Small-cell suppression as a publishing step: primary, then complementary suppression checked by an attacker.

Pure: no DuckDB, no Beam. A set of published tables is a linear system. The unknowns are the *base cells*: the
finest exclusive counts (for example patients of one source with one exact combination of categories). Every
published count is a `Figure`, the sum of some base cells: a stratum of one source, its `(all)` row over the
sources, a provider's figure and the plan-wide one over the providers, an "alone or in combination" count
overlapping the exclusive ones, a source's total. `identities` say that two sums count the same patients (the
HEDIS race strata of a source and its OMB 2024 combinations add up to the same total).

Rules (docs/report.md names their sources):
- primary: a count from 1 to min_cell - 1 is hidden (CMS cell size suppression policy; CalHHS DDG 4.4.1);
- 0 is never hidden (both);
- complementary: more counts are hidden, smallest first, until every hidden figure is protected:
  * exact (CMS "derived from other reported cells"): an outsider who knows every published figure, that hidden
    figures are at least 1 (zeros are never hidden) and the markers (`primary` means 1..min_cell-1,
    `complementary` means min_cell or more) cannot pin the figure to one integer;
  * small (CMS): from the published figures alone (hidden figures >= 1), a hidden figure cannot be shown to lie
    between 1 and min_cell - 1;
  * CalHHS DDG 4.4.1: in every row or column (`relations`) with hidden figures, they are neither all <= 3 nor
    summing to less than min_cell (one more is hidden).
Each check is an integer feasibility problem (scipy's HiGHS MILP). Hiding one more figure only relaxes the
system, so a figure once protected stays protected: each is checked until it passes, never again after.

A figure may be *unpublished* (`Figure.published` False): a count that no file shows but that others imply, such
as the members of a measure's denominator who are not in its numerator (denominator minus numerator). The
outsider knows nothing of it beyond the system (at least 0); from 1 to min_cell - 1 it is protected like a
primary count; it is never chosen to be hidden (it is not shown anyway) and never reported as hidden.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import csr_array

PRIMARY = "primary"
COMPLEMENTARY = "complementary"
UNPUBLISHED = "unpublished"  # internal: an implied count no file shows (Figure.published False)
CALHHS_SMALL_VALUE = 3  # CalHHS DDG 4.4.1: "suppress one more cell if every suppressed value ... is <= 3"
CANDIDATES_TRIED = 6  # complementary candidates tried, smallest first, before falling back to the smallest


@dataclasses.dataclass(frozen=True)
class Figure:
    """A published count: the sum of the base cells `members` (their indices).

    cost: what hiding it loses, to choose complementary cells (default its value: hide small counts; a total or
    an `(all)` row costs more, for it is what readers look at first).
    published: False for a count no file shows but the published ones imply (module docstring).
    """

    members: frozenset[int]
    value: int
    cost: float | None = None
    published: bool = True

    def hiding_cost(self) -> float:
        return self.value if self.cost is None else self.cost


@dataclasses.dataclass(frozen=True)
class Problem:
    """The published figures of a set of tables as sums over base cells.

    relations: (whole, parts): figure `whole` is the sum of figures `parts` (a row or a column of a table).
    identities: pairs of base-cell sets known to sum to the same number.
    """

    base_count: int
    figures: tuple[Figure, ...]
    relations: tuple[tuple[int, tuple[int, ...]], ...] = ()
    identities: tuple[tuple[frozenset[int], frozenset[int]], ...] = ()


@dataclasses.dataclass(frozen=True)
class Suppression:
    """Which figures are hidden and why; `unprotected`: hidden figures that stay derivable although every
    nonzero figure related to them is hidden (only zeros, which are never hidden, give them away)."""

    reasons: Mapping[int, str]
    unprotected: tuple[int, ...] = ()

    def reason(self, figure: int | None) -> str:
        return "" if figure is None else self.reasons.get(figure, "")


def primary_suppressed(problem: Problem, min_cell: int) -> dict[int, str]:
    """Published counts from 1 to min_cell - 1."""
    return {i: PRIMARY for i, f in enumerate(problem.figures) if f.published and 0 < f.value < min_cell}


def suppress(problem: Problem, min_cell: int) -> Suppression:
    """Primary, then complementary suppression until every hidden figure is protected (module docstring).

    min_cell 0 (or 1) publishes everything.
    """
    if min_cell <= 1:
        return Suppression({})
    hidden = primary_suppressed(problem, min_cell)
    hidden.update({i: UNPUBLISHED for i, f in enumerate(problem.figures) if not f.published})
    system = _System(problem, min_cell)
    settled: set[int] = set()  # protected (for good: hiding more only relaxes the system) or unprotectable
    unprotected: list[int] = []
    while True:
        _apply_row_rules(problem, hidden, min_cell)
        exposed = _first_exposed(system, hidden, settled)
        if exposed is None:
            return Suppression({i: r for i, r in hidden.items() if r != UNPUBLISHED}, tuple(sorted(unprotected)))
        complement = _choose_complement(problem, system, hidden, exposed)
        if complement is None:
            unprotected.append(exposed)
            settled.add(exposed)
        else:
            hidden[complement] = COMPLEMENTARY


def _first_exposed(system: _System, hidden: Mapping[int, str], settled: set[int]) -> int | None:
    """The smallest hidden figure not yet known to be protected that is not; settles the ones that are."""
    for figure in sorted(hidden, key=lambda i: (system.problem.figures[i].value, i)):
        if figure in settled:
            continue
        if not system.protected(hidden, figure):
            return figure
        settled.add(figure)
    return None


def _row_needs_more(problem: Problem, hidden: Mapping[int, str], members: Sequence[int], min_cell: int) -> bool:
    """A row with a count to protect whose unknown counts (hidden, or unpublished and not 0) are one alone, all
    tiny, or add up to less than min_cell."""
    unknown = {i: problem.figures[i].value for i in set(members) if i in hidden and problem.figures[i].value > 0}
    if not any(hidden[i] != UNPUBLISHED or v < min_cell for i, v in unknown.items()):
        return False  # nothing to protect: no hidden count, only unpublished ones that may be worked out
    values = list(unknown.values())
    return len(values) == 1 or all(v <= CALHHS_SMALL_VALUE for v in values) or sum(values) < min_cell


def _published_nonzero(problem: Problem, hidden: Mapping[int, str], members: Iterable[int]) -> list[int]:
    """Candidates for complementary suppression among `members`: published, nonzero, cheapest first."""
    found = {i for i in members if i not in hidden and problem.figures[i].value > 0}
    return sorted(found, key=lambda i: (problem.figures[i].hiding_cost(), i))


def _apply_row_rules(problem: Problem, hidden: dict[int, str], min_cell: int) -> None:
    """Rows and columns first (cheap): a lone hidden figure, or hidden ones that are all tiny, get a partner."""
    changed = True
    while changed:
        changed = False
        for whole, parts in problem.relations:
            candidates = _published_nonzero(problem, hidden, (whole, *parts))
            if candidates and _row_needs_more(problem, hidden, (whole, *parts), min_cell):
                hidden[candidates[0]] = COMPLEMENTARY
                changed = True


def _neighbours(problem: Problem) -> dict[int, set[int]]:
    linked: dict[int, set[int]] = {}
    for whole, parts in problem.relations:
        members = {whole, *parts}
        for i in members:
            linked.setdefault(i, set()).update(members - {i})
    return linked


def _choose_complement(problem: Problem, system: _System, hidden: dict[int, str], exposed: int) -> int | None:
    """The nearest published nonzero figures (same row or column first, then further), cheapest first; the first
    whose hiding protects `exposed`, else the cheapest. None when nothing related is left to hide."""
    linked = system.neighbours
    seen, frontier = {exposed}, {exposed}
    while frontier:
        ring = set().union(*(linked.get(i, set()) for i in frontier)) - seen
        candidates = _published_nonzero(problem, hidden, ring)
        if candidates:
            for candidate in candidates[:CANDIDATES_TRIED]:
                if system.protected({**hidden, candidate: COMPLEMENTARY}, exposed):
                    return candidate
            return candidates[0]
        seen |= ring
        frontier = ring
    return None


class _System:
    """The published system as sparse matrices, and the integer feasibility questions asked of it."""

    def __init__(self, problem: Problem, min_cell: int) -> None:
        self.problem = problem
        self.min_cell = min_cell
        self.neighbours = _neighbours(problem)
        n = problem.base_count
        self.rows = _incidence([f.members for f in problem.figures], n)
        self.identity_rows = _incidence([a for a, _ in problem.identities], n) - _incidence(
            [b for _, b in problem.identities], n
        )

    def protected(self, hidden: Mapping[int, str], figure: int) -> bool:
        value = self.problem.figures[figure].value
        if hidden[figure] == UNPUBLISHED and not 0 < value < self.min_cell:
            return True  # an implied count of 0 or min_cell or more may be worked out
        with_markers = self._bounds(hidden, markers=True)
        if not (
            self._feasible(with_markers, figure, upper=value - 1)
            or self._feasible(with_markers, figure, lower=value + 1)
        ):
            return False  # pinned
        if hidden[figure] in (PRIMARY, UNPUBLISHED):  # could it be min_cell or more, as far as the figures say?
            return self._feasible(self._bounds(hidden, markers=False), figure, lower=self.min_cell)
        return True

    def _bounds(self, hidden: Mapping[int, str], markers: bool) -> tuple[np.ndarray, np.ndarray]:
        """Per figure: its value when published; when hidden, >= 1, and with the markers 1..min_cell-1
        (primary) or >= min_cell (complementary); unpublished, >= 0 (nothing says it is not 0)."""
        values = np.array([f.value for f in self.problem.figures], dtype=float)
        lower, upper = values.copy(), values.copy()
        for i, reason in hidden.items():
            if reason == UNPUBLISHED:
                lower[i], upper[i] = 0, np.inf
            elif not markers:
                lower[i], upper[i] = 1, np.inf
            elif reason == PRIMARY:
                lower[i], upper[i] = 1, self.min_cell - 1
            else:
                lower[i], upper[i] = self.min_cell, np.inf
        return lower, upper

    def _feasible(
        self, bounds: tuple[np.ndarray, np.ndarray], figure: int, lower: float = -np.inf, upper: float = np.inf
    ) -> bool:
        """Is there a non-negative integer table meeting every published figure, the hidden figures' bounds and
        `lower <= figure <= upper`?"""
        lo, hi = bounds
        lo, hi = lo.copy(), hi.copy()
        lo[figure], hi[figure] = max(lo[figure], lower), min(hi[figure], upper)
        if lo[figure] > hi[figure]:
            return False
        constraints = [LinearConstraint(self.rows, lo, hi)]
        if self.identity_rows.shape[0]:
            constraints.append(LinearConstraint(self.identity_rows, 0, 0))
        n = self.problem.base_count
        result = milp(
            np.zeros(n),
            integrality=np.ones(n),
            bounds=Bounds(0, np.inf),
            constraints=constraints,
            options={"presolve": True},
        )
        return result.status == 0


def _incidence(member_sets: Sequence[frozenset[int]], n: int) -> csr_array:
    """One 0/1 row per set of base cells (sparse: a report has thousands of figures)."""
    rows = [row for row, members in enumerate(member_sets) for _ in members]
    cols = [col for members in member_sets for col in members]
    return csr_array((np.ones(len(cols)), (rows, cols)), shape=(len(member_sets), n))
