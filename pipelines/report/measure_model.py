"""The published measure figures as linear systems (`suppression.Problem`), one per measure, for the report's
suppression.

Pure: takes the rows the SQL of measures.py returned. As in the report's model (model.py), each stratifier is a
family of its own base cells, the results counted in a denominator per source (as counted), stratum, unmatched
reason and numerator (met or not), and the families are linked by their totals (identities: the same results per
source, met or not), not cell by cell; `Total` and the unmatched rows are sums of the first family's cells. Every
published row has two figures over them, its denominator and its numerator, and a third that no file shows: the
denominator minus the numerator, the members who did not meet the measure. That one is *unpublished*
(`suppression.Figure.published`): a rate of 37 in 40 must not show that 3 members were not screened, as a
numerator of 3 in 40 must not be derivable (CMS: no count of 1 to 10 "derived from other reported cells",
percentages included). A numerator is at most its denominator because both are sums over the same cells.
Measures share no results, so each is a system of its own (the same answer as one system, far faster).

Relations (rows and columns, for the CalHHS rule and the search for complementary cells): the strata of each
stratifier add up to `Total`, the sources add up to `(all)` (with the unmatched results of sources that are not
reported), denominator = numerator + not met, and the unmatched results of the sources add up to `(all)`.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any

from pipelines.report.measures import STRATIFIERS, TOTAL, UNMATCHED_STRATUM
from pipelines.report.model import AGGREGATE_COST, sum_relation
from pipelines.report.suppression import Figure, Problem, Suppression, suppress
from pipelines.report.tables import ALL

DENOMINATOR, NUMERATOR, NOT_MET = "denominator", "numerator", "not_met"
KINDS = (DENOMINATOR, NUMERATOR, NOT_MET)
UNMATCHED = "(unmatched)"  # the stratifier of an unmatched row's key: (source, measure, UNMATCHED, reason)
FIRST = next(iter(STRATIFIERS))  # the family whose cells Total and the unmatched rows are sums of
Row = Mapping[str, Any]
Key = tuple[Hashable, ...]


def row_key(row: Row) -> Key:
    return row["source"], row["measure"], row["stratifier"], row["stratum"]


def unmatched_key(row: Row) -> Key:
    return row["source"], row["measure"], UNMATCHED, row["reason"]


@dataclasses.dataclass(frozen=True)
class MeasureModel:
    """The system, and where each published figure sits in it: (kind, *key) -> figure (None: a zero)."""

    problem: Problem
    figure_of: Mapping[Key, int | None]

    def suppress(self, min_cell: int) -> Suppression:
        return suppress(self.problem, min_cell)

    def row_keys(self) -> set[Key]:
        """The keys of the rows (and unmatched rows) of this system."""
        return {key[1:] for key in self.figure_of}


def _cell_keys(cell: Row, stratifier: str) -> Iterable[Key]:
    """The keys of the rows a base cell of one stratifier's family counts in: its stratum, of its source and of
    (all); for the first family also every Total and its unmatched row."""
    for level in {cell["source"], ALL}:
        yield level, cell["measure"], stratifier, cell[stratifier]
        if stratifier == FIRST:
            yield from ((level, cell["measure"], s, TOTAL) for s in STRATIFIERS)
            if cell["unmatched"]:
                yield level, cell["measure"], UNMATCHED, cell["unmatched"]


class _Figures:
    """Figures by their base cells: a figure shown by several rows (Total of each stratifier, `(all)` of one
    source) is one figure, published when any row shows it."""

    def __init__(self, cells: Sequence[Row]) -> None:
        family = [(stratifier, cell) for stratifier in STRATIFIERS for cell in cells]  # base cell i: family[i]
        self.values = [int(c["results"]) for _, c in family]
        self.met = frozenset(i for i, (_, c) in enumerate(family) if c["numerator"])
        self.members: dict[Key, set[int]] = defaultdict(set)
        totals: dict[tuple[str, Hashable, bool], set[int]] = defaultdict(set)
        for i, (stratifier, cell) in enumerate(family):
            totals[stratifier, cell["source"], bool(cell["numerator"])].add(i)
            for key in _cell_keys(cell, stratifier):
                self.members[key].add(i)
        self.identities = tuple(
            (frozenset(totals[FIRST, *rest]), frozenset(members))
            for (stratifier, *rest), members in totals.items()
            if stratifier != FIRST
        )
        self.index: dict[frozenset[int], int] = {}
        self.figures: list[Figure] = []
        self.figure_of: dict[Key, int | None] = {}

    def add_row(self, key: Key, row: Row) -> None:
        """The denominator, numerator and (unpublished) not-met figures of one published row."""
        denominator = frozenset(self.members.get(key, ()))
        numerator = denominator & self.met
        for kind, members, expected in (
            (DENOMINATOR, denominator, row["denominator"]),
            (NUMERATOR, numerator, row["numerator"]),
            (NOT_MET, denominator - numerator, row["denominator"] - row["numerator"]),
        ):
            if sum(self.values[i] for i in members) != expected:
                raise RuntimeError(f"measure figure {kind} disagrees with its base cells")  # a bug, not bad data
            self.figure_of[(kind, *key)] = self._figure(members, kind != NOT_MET, _weight(key))

    def _figure(self, members: frozenset[int], published: bool, weight: int) -> int | None:
        if not members:
            return None
        found = self.index.get(members)
        if found is None:
            found = self.index[members] = len(self.figures)
            value = sum(self.values[i] for i in members)
            self.figures.append(Figure(members, value, value * weight, published))
        elif published and not self.figures[found].published:
            self.figures[found] = dataclasses.replace(self.figures[found], published=True)
        return found


def _weight(key: Key) -> int:
    """As in the report: a Total and an `(all)` row are costlier to hide than the strata of one source."""
    source, _, _, stratum = key
    return AGGREGATE_COST ** ((stratum == TOTAL) + (source == ALL))


def build_measure_models(
    rows: Sequence[Row], unmatched: Sequence[Row], cells: Sequence[Row], sources: Sequence[str]
) -> list[MeasureModel]:
    """A system per measure of its rows of `rows` (measures.strata_query) and `unmatched`
    (measures.UNMATCHED_QUERY) over its `cells` (measures.CELLS_QUERY); `sources` are the reported ones."""
    return [
        build_measure_model(
            [r for r in rows if r["measure"] == m],
            [r for r in unmatched if r["measure"] == m],
            [c for c in cells if c["measure"] == m],
            sources,
        )
        for m in dict.fromkeys(r["measure"] for r in rows)
    ]


def build_measure_model(
    rows: Sequence[Row], unmatched: Sequence[Row], cells: Sequence[Row], sources: Sequence[str]
) -> MeasureModel:
    """The system of the rows of one measure (or several) over their cells."""
    f = _Figures(cells)
    for r in rows:
        f.add_row(row_key(r), r)
    for r in unmatched:
        f.add_row(unmatched_key(r), r)
    relations = set(_relations(rows, unmatched, sources, f))
    for relation in relations:
        _check_sum(relation, f.figures)
    return MeasureModel(Problem(len(f.values), tuple(f.figures), tuple(sorted(relations)), f.identities), f.figure_of)


def _relations(
    rows: Sequence[Row], unmatched: Sequence[Row], sources: Sequence[str], f: _Figures
) -> Iterable[tuple[int, tuple[int, ...]]]:
    fig = f.figure_of
    strata: dict[tuple[Hashable, ...], list[Hashable]] = defaultdict(list)  # (source, measure, stratifier) -> strata
    for r in rows:
        if r["stratum"] != TOTAL:
            strata[r["source"], r["measure"], r["stratifier"]].append(r["stratum"])
    outside = defaultdict(list)  # measure -> keys of unmatched rows of sources not reported (only in (all))
    for r in unmatched:
        if r["source"] not in sources and r["source"] != ALL:
            outside[r["measure"]].append(unmatched_key(r))
    found = []
    for kind in KINDS:
        for (source, measure, stratifier), listed in strata.items():
            found.append(
                sum_relation(
                    fig[kind, source, measure, stratifier, TOTAL],
                    (fig[kind, source, measure, stratifier, k] for k in listed),
                )
            )
            if source == ALL:
                for stratum in [*listed, TOTAL]:
                    parts = [fig[kind, s, measure, stratifier, stratum] for s in sources]
                    if stratum in (UNMATCHED_STRATUM[stratifier], TOTAL):
                        parts += [fig[(kind, *key)] for key in outside[measure]]
                    found.append(sum_relation(fig[kind, ALL, measure, stratifier, stratum], parts))
        for r in unmatched:
            if r["source"] == ALL:
                found.append(
                    sum_relation(
                        fig[(kind, *unmatched_key(r))],
                        (
                            fig[(kind, *unmatched_key(o))]
                            for o in unmatched
                            if o["source"] != ALL and (o["measure"], o["reason"]) == (r["measure"], r["reason"])
                        ),
                    )
                )
    for key in [row_key(r) for r in rows] + [unmatched_key(r) for r in unmatched]:
        found.append(sum_relation(fig[(DENOMINATOR, *key)], (fig[(NUMERATOR, *key)], fig[(NOT_MET, *key)])))
    return (r for r in found if r is not None)


def _check_sum(relation: tuple[int, tuple[int, ...]], figures: Sequence[Figure]) -> None:
    whole, parts = relation
    if sum(figures[p].value for p in parts) != figures[whole].value:
        raise RuntimeError("a measure relation is not a sum")  # a bug, not bad data
