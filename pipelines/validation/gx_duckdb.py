"""Great Expectations' SQL datasource on the pipeline's own DuckDB connection: the one workaround it needs.

GX 1.24.1 reads a query's rows after it has left `with engine.connect()`. Returning the connection to
SQLAlchemy's pool issues a ROLLBACK, and in duckdb_engine 0.17.0 a cursor is its connection, so the rollback
throws the pending result away: every metric comes back empty and 28 of 31 expectations "fail" with
`list index out of range` (or pass on nothing). DuckDB needs no SQLAlchemy transaction to read, so the dialect
below never sends BEGIN, COMMIT or ROLLBACK. It is duckdb_engine's dialect with those three methods made no-ops,
registered under its own name (`duckdb+gx://`) instead of patched into duckdb_engine: nothing else in the
process changes, and GX still sees the dialect `duckdb`. It also keeps GX away from the transactions of the
connection it borrows: validation only reads there (its temp tables are made outside GX).

tests/validation/test_validation_gx_duckdb.py checks both sides: an expectation that must fail on a tiny table
fails with the right count through this dialect, and is lost through duckdb_engine's own. When the second test
fails, a later duckdb_engine or GX has fixed the bug: delete this workaround.
"""

from __future__ import annotations

from typing import Any

import duckdb
import duckdb_engine
from sqlalchemy.dialects import registry

CONNECTION_STRING = "duckdb+gx:///:memory:"  # the database is whatever connection `creator` lends


class NoTransactionDialect(duckdb_engine.Dialect):
    """duckdb_engine without SQLAlchemy transactions (see the module docstring)."""

    supports_statement_cache = duckdb_engine.Dialect.supports_statement_cache  # SQLAlchemy asks every subclass

    def do_begin(self, dbapi_connection: Any) -> None:
        pass

    def do_commit(self, dbapi_connection: Any) -> None:
        pass

    def do_rollback(self, dbapi_connection: Any) -> None:
        pass


class BorrowedConnection(duckdb_engine.ConnectionWrapper):
    """The caller's connection lent to GX's pool: the caller owns it, so the pool must not close it."""

    def close(self) -> None:
        pass


registry.register("duckdb.gx", __name__, NoTransactionDialect.__name__)


def add_duckdb_datasource(context: Any, name: str, con: duckdb.DuckDBPyConnection) -> Any:
    """A GX SQL datasource whose every query runs on `con` (its temp tables included)."""
    return context.data_sources.add_sql(
        name=name, connection_string=CONNECTION_STRING, kwargs={"creator": lambda: BorrowedConnection(con)}
    )
