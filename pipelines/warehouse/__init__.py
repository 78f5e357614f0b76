"""The DuckDB warehouse: the one writer of the DuckDB file and of the Parquet copy beside it."""

from pipelines.warehouse.connection import LOCK_WAIT_SECONDS, connect, ensure_tables, table_exists

__all__ = ["LOCK_WAIT_SECONDS", "connect", "ensure_tables", "table_exists"]
