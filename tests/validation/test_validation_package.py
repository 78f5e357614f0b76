"""The package's import cost and the suite files it loads."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.tables import PATIENTS, field_names
from pipelines.validation import ValidationConfig, load_suites
from pipelines.validation import suites as suites_module

REPO = Path(__file__).resolve().parents[2]


def test_importing_the_package_imports_neither_great_expectations_nor_sqlalchemy_nor_beam():
    code = (
        "import sys, pipelines.validation as v; v.ValidationConfig(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('great_expectations', 'sqlalchemy', 'duckdb_engine', 'apache_beam')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(REPO), "PATH": ""},
    )
    assert out.stdout.strip() == "[]"


def test_the_six_suites_load_from_the_repository_folder_in_a_checkout():
    suites = load_suites()
    assert [s.name for s in suites] == [
        "completeness",
        "consistency",
        "lineage",
        "plausibility",
        "uniqueness",
        "validity",
    ]
    for suite in suites:
        assert suite.meta.get("description")
        assert suite.expectations


def test_every_column_an_expectation_reads_is_a_warehouse_column_or_a_derived_column_of_its_suite():
    warehouse = set(field_names(PATIENTS))
    for suite in load_suites():
        derived = {column.name for column in suite.derived}
        used = {column for spec in suite.expectations for column in spec.columns}
        assert used - warehouse <= derived, suite.name
        assert derived <= used, f"{suite.name}: a derived column no expectation checks"
        assert not derived & warehouse
        for column in suite.derived:
            assert column.description and "$" not in column.sql  # lists of the meta are substituted


def test_labels_are_unique_and_a_re_expressed_expectation_keeps_its_label():
    labels = [(spec.suite, spec.label) for suite in load_suites() for spec in suite.expectations]
    assert len(labels) == len(set(labels))
    assert ("validity", "expect_column_values_to_match_regex(preferred_language)") in labels
    assert ("completeness", "expect_column_values_to_be_in_set(counts_toward_completeness)") in labels


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


def test_a_checkout_reads_its_folder_and_an_installed_package_its_resource(tmp_path, monkeypatch):
    package = tmp_path / "fake_expectations_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "only.json").write_text('{"name": "only", "expectations": []}')
    monkeypatch.syspath_prepend(str(tmp_path))
    folder = REPO / "expectations"
    # a checkout whose virtualenv maps `pipelines.expectations` elsewhere (another worktree's editable install)
    texts = suites_module.suite_texts(package="fake_expectations_pkg", folder=folder, checkout=True)
    assert "completeness.json" in texts and "only.json" not in texts
    texts = suites_module.suite_texts(package="fake_expectations_pkg", folder=folder, checkout=False)
    assert list(texts) == ["only.json"]
    texts = suites_module.suite_texts(package="fake_expectations_pkg", folder=tmp_path / "nowhere", checkout=True)
    assert list(texts) == ["only.json"]
    with pytest.raises(FileNotFoundError):
        suites_module.suite_texts(package="no_such_package_here", folder=tmp_path / "nowhere", checkout=True)


def test_this_checkout_validates_with_its_own_suites():
    assert suites_module.suite_texts() == {
        p.name: p.read_text(encoding="utf-8") for p in sorted((REPO / "expectations").glob("*.json"))
    }
