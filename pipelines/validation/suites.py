"""Loads the expectation suites kept as JSON files in `expectations/` (no Great Expectations import here)."""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

from pipelines.validation.config import ValidationConfig

SUITES_PACKAGE = "pipelines.expectations"
# A source checkout (PYTHONPATH=repo) has no `pipelines.expectations` package: setup.py maps the top-level
# `expectations/` folder onto it only when installed. Then the suites are read from the folder itself.
REPO_SUITES_DIR = Path(__file__).resolve().parent.parent.parent / "expectations"


@dataclass(frozen=True)
class ExpectationSpec:
    """One expectation of a suite, as written in the JSON file (with run-time overrides applied)."""

    suite: str
    type: str
    kwargs: Mapping[str, Any]
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return expectation_label(self.type, self.kwargs)

    @property
    def columns(self) -> tuple[str, ...]:
        return expectation_columns(self.kwargs)


@dataclass(frozen=True)
class SuiteSpec:
    name: str
    expectations: tuple[ExpectationSpec, ...]
    meta: Mapping[str, Any] = field(default_factory=dict)


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


def suite_texts(package: str = SUITES_PACKAGE, folder: Path = REPO_SUITES_DIR) -> dict[str, str]:
    """{file name: JSON text} of every suite, from the installed package `pipelines.expectations`; only when that
    package is absent (a source checkout), from the repository's `expectations/` folder."""
    texts: dict[str, str] = {}
    try:
        root = resources.files(package)
        texts = {p.name: p.read_text(encoding="utf-8") for p in root.iterdir()
                 if p.name.endswith(".json") and p.is_file()}
    except ModuleNotFoundError:
        pass
    if not texts and folder.is_dir():
        texts = {p.name: p.read_text(encoding="utf-8") for p in folder.glob("*.json")}
    if not texts:
        raise FileNotFoundError(f"no expectation suites found (package {package} or folder {folder})")
    return dict(sorted(texts.items()))


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
    return SuiteSpec(name=name, expectations=tuple(specs), meta=doc.get("meta", {}))


def load_suites(config: ValidationConfig = ValidationConfig()) -> list[SuiteSpec]:
    """Every suite, in file-name order, with the config overrides applied."""
    suites = [parse_suite(text, config) for text in suite_texts().values()]
    names = [s.name for s in suites]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate suite names in expectations/: {names}")
    return suites
