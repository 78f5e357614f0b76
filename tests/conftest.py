"""Shared fixtures: the generated sample feed and a helper that runs the real CLI in-process."""

import logging
import os
from pathlib import Path

import duckdb
import pytest

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def sample_feed(tmp_path_factory) -> Path:
    """The sample feed, generated with the fixed seed into a folder named `samples` (the default source)."""
    from pipelines.samples import generate

    folder = tmp_path_factory.mktemp("feed") / "samples"
    generate(folder)
    return folder


@pytest.fixture
def run_cli(capsys):
    """Runs `demographics ARGS...` in-process; returns (exit code, stdout, stderr)."""
    from pipelines.cli import main

    def run(*args: str) -> tuple[int, str, str]:
        root = logging.getLogger()
        handlers, level = root.handlers[:], root.level
        try:
            code = main([str(a) for a in args])
        finally:  # main() logs to the captured stderr, which is closed after the test
            root.handlers[:], root.level = handlers, level
        out, err = capsys.readouterr()
        return code, out, err

    return run


def query(warehouse: Path, sql: str, params=None) -> list[tuple]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()
