"""The published tables of one report as one linear system (`suppression.Problem`), and suppression applied to it.

Pure: takes the rows the SQL of `tables.py` returned, never touches DuckDB. Base cells are the finest counts
(per provider group and source): for the tables of the `race_ethnicity` family, the combinations of their strata
(exact OMB 2024 combination x completeness stratum); for the other exclusive tables, their strata; for
`detailed_groups` (overlapping, no total), each code. Every published row is a figure over them; so is each
population's total (the denominator of the shares), which every exclusive table of that population adds up to.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any

from pipelines.report.suppression import Figure, Problem, Suppression, suppress
from pipelines.report.tables import ALL, PEOPLE, Table

TOTAL = "total"  # key of a population's total: (TOTAL, grp, source)
Row = Mapping[str, Any]


def row_key(table: str, row: Row) -> tuple[Hashable, ...]:
    return table, row["grp"], row["source"], row["stratum"]


def total_key(row: Row) -> tuple[Hashable, ...]:
    return TOTAL, row["grp"], row["source"]


@dataclasses.dataclass(frozen=True)
class Model:
    """The linear system and where each published row (and each total) sits in it (None: a zero)."""

    problem: Problem
    figure_of: Mapping[tuple[Hashable, ...], int | None]

    def suppress(self, min_cell: int) -> Suppression:
        return suppress(self.problem, min_cell)


def _is_finest(row: Row, by_group: bool) -> bool:
    return row["source"] != ALL and (row["grp"] != ALL or not by_group)


def _matches(level: tuple[str, str], cell: tuple[str, str]) -> bool:
    return all(want in (ALL, have) for want, have in zip(level, cell, strict=True))


def _strata_of(value: Any) -> tuple[Any, ...]:
    """A base cell's stratum in one table: one value, or each of a list (overlapping tables)."""
    return tuple(value) if isinstance(value, (list, tuple)) else (value,)


class _Builder:
    def __init__(self, by_group: bool) -> None:
        self.by_group = by_group
        self.values: list[int] = []
        # (table, stratum) -> [((grp, source), base index)], and (family, grp, source) -> base indices
        self.cells_of: dict[tuple[str, Any], list[tuple[tuple[str, str], int]]] = defaultdict(list)
        self.population: dict[tuple[str, str, str], set[int]] = defaultdict(set)
        self.figures: dict[frozenset[int], int] = {}
        self.figure_of: dict[tuple[Hashable, ...], int | None] = {}
        self.first_key: list[tuple[Hashable, ...]] = []  # per figure, the first row it stands for

    def add_base(self, family: str, grp: str, source: str, value: int, strata: Mapping[str, Any]) -> None:
        index = len(self.values)
        self.values.append(int(value))
        self.population[family, grp, source].add(index)
        for name, stratum in strata.items():
            for s in _strata_of(stratum):
                self.cells_of[name, s].append(((grp, source), index))

    def figure(self, key: tuple[Hashable, ...], members: Iterable[int], expected: int) -> None:
        members = frozenset(members)
        if sum(self.values[i] for i in members) != expected:
            raise RuntimeError(f"report figure {key[0]} disagrees with its base cells")  # a bug, not bad data
        if members and members not in self.figures:
            self.figures[members] = len(self.figures)
            self.first_key.append(key)
        self.figure_of[key] = self.figures[members] if members else None

    def members(self, table: str, stratum: Any, level: tuple[str, str]) -> set[int]:
        return {i for cell, i in self.cells_of.get((table, stratum), ()) if _matches(level, cell)}

    def total_members(self, family: str, level: tuple[str, str]) -> set[int]:
        return set().union(*(m for (f, g, s), m in self.population.items() if f == family and _matches(level, (g, s))))


def build_model(
    definitions: Sequence[Table], rows: Mapping[str, Sequence[Row]], bases: Mapping[str, Sequence[Row]], by_group: bool
) -> Model:
    """The system of every published row of `rows` (table name -> rows of `tables.table_query`), over the base
    cells of `bases` (family -> rows of `tables.family_query`; a family without one, such as detailed_groups,
    takes the finest rows of its table as base cells)."""
    b = _Builder(by_group)
    for family, base_rows in bases.items():
        names = [t.name for t in definitions if t.family == family]
        for r in base_rows:
            b.add_base(family, r["grp"], r["source"], r["patients"], {n: r[n] for n in names})
    for t in definitions:
        if t.family not in bases:
            for r in rows[t.name]:
                if _is_finest(r, by_group) and r["patients"]:
                    b.add_base(t.family, r["grp"], r["source"], r["patients"], {t.name: r["stratum"]})
    for t in definitions:
        for r in rows[t.name]:
            b.figure(row_key(t.name, r), b.members(t.name, r["stratum"], (r["grp"], r["source"])), r["patients"])
            b.figure(total_key(r), b.total_members(PEOPLE, (r["grp"], r["source"])), r["denominator"])
    values = [sum(b.values[i] for i in members) for members in b.figures]
    figures = [
        Figure(members, value, value * _weight(key, by_group))
        for members, value, key in zip(b.figures, values, b.first_key, strict=True)
    ]
    problem = Problem(
        len(b.values), tuple(figures), tuple(_relations(definitions, rows, b, figures)), tuple(_identities(b, bases))
    )
    return Model(problem, b.figure_of)


AGGREGATE_COST = 4  # hiding a sum costs this many times more per summed dimension (strata, sources, groups)


def _weight(key: tuple[Hashable, ...], by_group: bool) -> int:
    """Hide the finest cells first: every dimension a figure sums over (a total sums the strata, `(all)` the
    sources, the plan the groups) makes it costlier to hide."""
    name, grp, source, *_ = key
    return AGGREGATE_COST ** ((name == TOTAL) + (source == ALL) + (by_group and grp == ALL))


def _identities(b: _Builder, bases: Mapping[str, Sequence[Row]]) -> Iterable[tuple[frozenset[int], frozenset[int]]]:
    """The exclusive tables of every family count the same patients per (grp, source) as the population's."""
    for (family, grp, source), members in b.population.items():
        if family != PEOPLE and family in bases:
            yield frozenset(b.population[PEOPLE, grp, source]), frozenset(members)


def sum_relation(whole: int | None, parts: Iterable[int | None]) -> tuple[int, tuple[int, ...]] | None:
    """`whole` is the sum of `parts` (figure indices; None is a zero, and a part that is the whole adds nothing)."""
    found = tuple(sorted({p for p in parts if p is not None} - {whole}))
    return (whole, found) if whole is not None and found else None


def _relations(
    definitions: Sequence[Table], rows: Mapping[str, Sequence[Row]], b: _Builder, figures: Sequence[Figure]
) -> Iterable[tuple[int, tuple[int, ...]]]:
    """Rows and columns: each exclusive table adds up to its total; `(all)` adds up the sources (and with
    `--by` the groups); a figure of the population that is the sum of another table's figures."""
    found: set[tuple[int, tuple[int, ...]] | None] = set()
    series: dict[tuple[str, Any], dict[tuple[str, str], int | None]] = defaultdict(dict)  # one stratum's cells
    for t in definitions:
        for level, parts in _by_level(t, rows, b).items():
            series[TOTAL, None][level] = b.figure_of[(TOTAL, *level)]
            for stratum, figure in parts:
                series[t.name, stratum][level] = figure
            if not t.overlapping:
                found.add(sum_relation(b.figure_of[(TOTAL, *level)], (figure for _, figure in parts)))
    for cells in series.values():
        for (grp, source), whole in cells.items():
            if source == ALL:
                found.add(sum_relation(whole, (f for (g, s), f in cells.items() if g == grp and s != ALL)))
            if b.by_group and grp == ALL:
                found.add(sum_relation(whole, (f for (g, s), f in cells.items() if s == source and g != ALL)))
    found |= set(_coarsenings(definitions, rows, b, figures))
    return sorted(r for r in found if r is not None)


def _by_level(
    t: Table, rows: Mapping[str, Sequence[Row]], b: _Builder
) -> dict[tuple[str, str], list[tuple[Any, int | None]]]:
    """(grp, source) -> [(stratum, figure)] of one table."""
    found: dict[tuple[str, str], list[tuple[Any, int | None]]] = defaultdict(list)
    for r in rows[t.name]:
        found[r["grp"], r["source"]].append((r["stratum"], b.figure_of[row_key(t.name, r)]))
    return found


def _coarsenings(
    definitions: Sequence[Table], rows: Mapping[str, Sequence[Row]], b: _Builder, figures: Sequence[Figure]
) -> Iterable[tuple[int, tuple[int, ...]] | None]:
    """Within the population's family: a figure that is exactly the sum of figures of another exclusive table
    (MULTIRACIAL_MULTIETHNIC over the combinations, "alone or in combination" over them)."""
    people = [t for t in definitions if t.family == PEOPLE]
    levels = {t.name: _by_level(t, rows, b) for t in people}
    for t in people:
        for level, cells in levels[t.name].items():
            for _, whole in cells:
                if whole is None:
                    continue
                for other in (o for o in people if not o.overlapping and o is not t):
                    parts = [
                        f
                        for _, f in levels[other.name][level]
                        if f is not None and figures[f].members <= figures[whole].members
                    ]
                    if parts and frozenset().union(*(figures[p].members for p in parts)) == figures[whole].members:
                        yield sum_relation(whole, parts)
