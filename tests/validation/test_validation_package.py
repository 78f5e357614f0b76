"""The package's import cost and the suite files it loads."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.validation import ValidationConfig, load_suites
from pipelines.validation import suites as suites_module
from pipelines.validation.checks import DERIVED_COLUMNS

REPO = Path(__file__).resolve().parents[2]


def test_importing_the_package_imports_neither_great_expectations_nor_beam():
    code = ("import sys, pipelines.validation as v; v.ValidationConfig(); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('great_expectations', 'apache_beam')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(REPO), "PATH": ""})
    assert out.stdout.strip() == "[]"


def test_the_six_suites_load_from_the_repository_folder_in_a_checkout():
    suites = load_suites()
    assert [s.name for s in suites] == ["completeness", "consistency", "lineage", "plausibility", "uniqueness",
                                        "validity"]
    for suite in suites:
        assert suite.meta.get("description")
        assert suite.expectations


def test_every_derived_column_has_a_check_and_is_documented_in_its_suite():
    for suite in load_suites():
        for spec in suite.expectations:
            if spec.meta.get("derived"):
                column = spec.kwargs["column"]
                assert column in DERIVED_COLUMNS
                assert column in suite.meta["derived_columns"]


def test_every_expectation_type_exists_in_great_expectations():
    from great_expectations.expectations.registry import get_expectation_impl

    for suite in load_suites():
        for spec in suite.expectations:
            assert get_expectation_impl(spec.type) is not None


def test_the_config_overrides_mostly():
    (completeness,) = [s for s in load_suites(ValidationConfig(completeness_goal=0.65)) if s.name == "completeness"]
    assert completeness.expectations[0].kwargs["mostly"] == 0.65
    on_disk = json.loads((REPO / "expectations" / "completeness.json").read_text())
    assert on_disk["expectations"][0]["kwargs"]["mostly"] == 0.8


def test_the_installed_package_resource_wins_over_the_folder(tmp_path, monkeypatch):
    package = tmp_path / "fake_expectations_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "only.json").write_text('{"name": "only", "expectations": []}')
    monkeypatch.syspath_prepend(str(tmp_path))
    texts = suites_module.suite_texts(package="fake_expectations_pkg", folder=REPO / "expectations")
    assert list(texts) == ["only.json"]
    texts = suites_module.suite_texts(package="no_such_package_here", folder=REPO / "expectations")
    assert "completeness.json" in texts
    with pytest.raises(FileNotFoundError):
        suites_module.suite_texts(package="no_such_package_here", folder=tmp_path / "nowhere")
