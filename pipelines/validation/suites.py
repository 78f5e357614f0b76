"""Loads the expectation suites kept as JSON files in `expectations/` (no Great Expectations import here).

A suite may define derived columns in its meta (`derived_columns`: name -> {"description", "sql"}): rules GX
cannot express on a column of its own (a list column against other columns, a regex on DuckDB) are a boolean SQL
expression over a patient_demographics row, computed once per batch in DuckDB, and an expectation that the
column is true. The rules live as data, beside the expectations that use them.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from pipelines.validation.config import ValidationConfig

SUITES_PACKAGE = "pipelines.expectations"
# In a source checkout (setup.py beside `pipelines/`) the suites are the checkout's `expectations/` folder, whatever
# `pipelines.expectations` an editable install elsewhere maps (a git worktree sharing another checkout's
# virtualenv would otherwise validate with the other checkout's suites). An installed package reads its own copy:
# setup.py installs the top-level folder as the package `pipelines.expectations`.
CHECKOUT = Path(__file__).resolve().parent.parent.parent
REPO_SUITES_DIR = CHECKOUT / "expectations"


@dataclass(frozen=True)
class ExpectationSpec:
    """One expectation of a suite, as written in the JSON file (with run-time overrides applied)."""

    suite: str
    type: str
    kwargs: Mapping[str, Any]
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """The stable name stored in validation_results; meta `label` keeps an expectation's old name when it
        is re-expressed (a regex rewritten as a derived column) so that its results still trend."""
        return self.meta.get("label") or expectation_label(self.type, self.kwargs)

    @property
    def columns(self) -> tuple[str, ...]:
        return expectation_columns(self.kwargs)


@dataclass(frozen=True)
class DerivedColumn:
    """A boolean column computed in DuckDB from one patient_demographics row, for an expectation to check.

    NULL only where the expectation must not look (GX skips nulls): every rule says so in its SQL.
    """

    name: str
    sql: str
    description: str


@dataclass(frozen=True)
class SuiteSpec:
    name: str
    expectations: tuple[ExpectationSpec, ...]
    meta: Mapping[str, Any] = field(default_factory=dict)
    derived: tuple[DerivedColumn, ...] = ()


def expectation_columns(kwargs: Mapping[str, Any]) -> tuple[str, ...]:
    if "column" in kwargs:
        return (kwargs["column"],)
    if "column_list" in kwargs:
        return tuple(kwargs["column_list"])
    if "column_set" in kwargs:  # table-level: the columns it is about
        return tuple(kwargs["column_set"])
    if "column_A" in kwargs:
        return (kwargs["column_A"], kwargs["column_B"])
    return ()


def expectation_label(type_: str, kwargs: Mapping[str, Any]) -> str:
    """Stable name of an expectation for trending: `expect_column_values_to_be_in_set(omb2024_category)`."""
    return f"{type_}({','.join(expectation_columns(kwargs))})"


def suite_texts(
    package: str = SUITES_PACKAGE, folder: Path = REPO_SUITES_DIR, checkout: bool = (CHECKOUT / "setup.py").is_file()
) -> dict[str, str]:
    """{file name: JSON text} of every suite: in a source checkout from its `expectations/` folder, else from the
    installed package `pipelines.expectations`."""
    texts: dict[str, str] = {}
    if checkout and folder.is_dir():
        texts = {p.name: p.read_text(encoding="utf-8") for p in folder.glob("*.json")}
    if not texts:
        try:
            root = resources.files(package)
            texts = {
                p.name: p.read_text(encoding="utf-8")
                for p in root.iterdir()
                if p.name.endswith(".json") and p.is_file()
            }
        except ModuleNotFoundError:
            pass
    if not texts:
        raise FileNotFoundError(f"no expectation suites found (package {package} or folder {folder})")
    return dict(sorted(texts.items()))


def sql_list(values: Sequence[str]) -> str:
    """('a', 'b'): a list of the suite's meta as SQL text, for `IN`."""
    return "(" + ", ".join("'" + str(v).replace("'", "''") + "'" for v in values) + ")"


def derived_columns(meta: Mapping[str, Any]) -> tuple[DerivedColumn, ...]:
    """The suite's derived columns; `$name` in an expression stands for the list `name` of the suite's meta."""
    return tuple(
        DerivedColumn(
            name,
            re.sub(r"\$([a-z_]+)", lambda m: sql_list(meta[m.group(1)]), "\n".join(rule["sql"])),
            rule["description"],
        )
        for name, rule in meta.get("derived_columns", {}).items()
    )


def parse_suite(text: str, config: ValidationConfig = ValidationConfig()) -> SuiteSpec:
    """Parses one suite file (Great Expectations 1.x suite JSON) and applies the config overrides.

    An expectation whose meta has `"configurable": {"mostly": "completeness_goal"}` takes `mostly` from
    the config field of that name.
    """
    doc = json.loads(text)
    name = doc["name"]
    specs = []
    for raw in doc.get("expectations", []):
        kwargs = copy.deepcopy(raw.get("kwargs", {}))
        meta = copy.deepcopy(raw.get("meta", {}))
        for kwarg, config_field in meta.get("configurable", {}).items():
            kwargs[kwarg] = getattr(config, config_field)
        specs.append(ExpectationSpec(suite=name, type=raw["type"], kwargs=kwargs, meta=meta))
    meta = doc.get("meta", {})
    return SuiteSpec(name=name, expectations=tuple(specs), meta=meta, derived=derived_columns(meta))


def load_suites(config: ValidationConfig = ValidationConfig()) -> list[SuiteSpec]:
    """Every suite, in file-name order, with the config overrides applied."""
    suites = [parse_suite(text, config) for text in suite_texts().values()]
    names = [s.name for s in suites]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate suite names in expectations/: {names}")
    return suites
