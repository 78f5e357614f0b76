"""Fixtures of the report tests."""

import pytest
from report_rows import build_warehouse


@pytest.fixture
def warehouse(tmp_path):
    """build_warehouse into this test's folder."""
    return lambda rows: build_warehouse(tmp_path / "warehouse.duckdb", rows)
