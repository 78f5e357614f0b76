"""The validation_results table: DDL, batch insert, whole-warehouse validation and trend queries."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from pipelines.tables import PATIENTS as PATIENTS_TABLE
from pipelines.tables import VALIDATION as RESULTS_TABLE
from pipelines.tables import arrow_schema, duckdb_ddl, field_names
from pipelines.validation.config import ValidationConfig

if TYPE_CHECKING:
    import duckdb
    import pandas as pd

    from pipelines.validation.batches import Batches
    from pipelines.validation.validator import Validator

# The completeness expectation's label, then the one it had before unmapped text stopped counting (issue 9):
# stored results of both trend together.
COMPLETENESS_LABELS = (
    "expect_column_values_to_be_in_set(counts_toward_completeness)",
    "expect_column_values_to_be_in_set(race_ethnicity_status)",
)


class NoPatientsError(LookupError):
    """The warehouse has no patient_demographics table: nothing has landed yet."""


def ensure_validation_results_table(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(duckdb_ddl(RESULTS_TABLE))


def results_arrow(rows: Iterable[dict[str, Any]]) -> pa.Table:
    """One row per expectation per validated batch (`schemas/validation_results.avsc`): all rows of one batch's
    validation share its validation_id; `expectation` is stable across runs so that results can be trended."""
    return pa.Table.from_pylist(
        [{name: row.get(name) for name in field_names(RESULTS_TABLE)} for row in rows],
        schema=arrow_schema(RESULTS_TABLE),
    )


def store_results(con: duckdb.DuckDBPyConnection, rows: list[dict[str, Any]]) -> None:
    """Appends validation_results rows in one Arrow batch insert (creates the table if needed)."""
    ensure_validation_results_table(con)
    if not rows:
        return
    view = f"_validation_results_{uuid.uuid4().hex}"
    names = ", ".join(field_names(RESULTS_TABLE))
    con.register(view, results_arrow(rows))
    try:
        con.execute(f"INSERT INTO {RESULTS_TABLE} ({names}) SELECT {names} FROM {view}")
    finally:
        con.unregister(view)


_validators: dict[ValidationConfig, Future[Validator]] = {}
_builder = threading.Lock()


def prepare_validator(config: ValidationConfig = ValidationConfig()) -> None:
    """Starts building the Validator in a background thread (importing Great Expectations takes ~2.5 s): a run
    calls this before reading its files, so that the import overlaps the read stage."""
    from pipelines.validation.validator import Validator

    with _builder:
        if config not in _validators:
            _validators[config] = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gx").submit(Validator, config)


def shared_validator(config: ValidationConfig = ValidationConfig()) -> Validator:
    """One Validator per process and config, built once (in the background if `prepare_validator` was called)."""
    prepare_validator(config)
    return _validators[config].result()


def has_patients_table(con: duckdb.DuckDBPyConnection) -> bool:
    found = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [PATIENTS_TABLE]
    ).fetchone()
    return bool(found and found[0])


def _per_source(
    validator: Validator, con: duckdb.DuckDBPyConnection, batches: Batches, run_id: str
) -> list[dict[str, Any]]:
    return [
        row
        for source, table in batches.by_source.items()
        for row in validator.validate(con, table, scope="source", source=source, run_id=run_id)
    ]


def validate_warehouse(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    config: ValidationConfig = ValidationConfig(),
    validator: Validator | None = None,
) -> list[dict[str, Any]]:
    """Validates what has landed: each source (scope 'source') and the whole table (scope 'warehouse').

    Stores the rows in validation_results and returns them. Raises NoPatientsError on a warehouse without a
    patient_demographics table, or without patients ("31 of 31 passed" on no data would tell a gating CI job
    that all is well).
    """
    if not has_patients_table(con):
        raise NoPatientsError(f"the warehouse has no {PATIENTS_TABLE} table: nothing has landed yet")
    validator = validator or shared_validator(config)
    with validator.batches(con, f"SELECT * FROM {PATIENTS_TABLE}") as batches:
        if batches.whole is None:
            raise NoPatientsError(f"the warehouse has no patients in {PATIENTS_TABLE}: nothing to validate")
        rows = _per_source(validator, con, batches, run_id)
        if len(batches.by_source) == 1:  # the whole warehouse is that source's table: the same results
            whole = uuid.uuid4().hex
            rows += [dict(row, validation_id=whole, scope="warehouse", source=None) for row in rows]
        else:
            rows += validator.validate(con, batches.whole, scope="warehouse", source=None, run_id=run_id)
    store_results(con, rows)
    return rows


def all_passed(rows: Iterable[dict[str, Any]]) -> bool:
    return all(row["success"] for row in rows)


def exit_code(rows: Iterable[dict[str, Any]]) -> int:
    """`demographics validate` (and `run --fail-on-validation`): 0 when every expectation passed, else 1."""
    return 0 if all_passed(rows) else 1


def completeness_trend(con: duckdb.DuckDBPyConnection, scope: str = "source") -> pd.DataFrame:
    """The share of patients counted toward completeness, per source and run, oldest first, from the stored
    completeness results (under the current label and the one before issue 9): columns run_id, validated_at,
    source, window_start, patients, reported_share, goal, success."""
    labels = ", ".join("?" for _ in COMPLETENESS_LABELS)
    return con.execute(
        f"""
        SELECT run_id, validated_at, source, window_start, element_count AS patients,
               round(1 - CAST(observed_value AS DOUBLE) / 100, 6) AS reported_share,
               CAST(json_extract(details, '$.kwargs.mostly') AS DOUBLE) AS goal, success
        FROM {RESULTS_TABLE}
        WHERE suite = 'completeness' AND scope = ? AND expectation IN ({labels})
        ORDER BY source, validated_at, run_id, window_start
    """,
        [scope, *COMPLETENESS_LABELS],
    ).fetchdf()


def validate_landed_batch(
    con: duckdb.DuckDBPyConnection, run_id: str, config: ValidationConfig = ValidationConfig()
) -> list[dict[str, Any]]:
    """Validates, per source, the landed rows of the Patients a batch read (temp table `_batch_keys` of the
    commit, on `con`) and stores the results."""
    validator = shared_validator(config)
    with validator.batches(
        con, f"SELECT p.* FROM {PATIENTS_TABLE} p SEMI JOIN _batch_keys b USING (source, patient_id)"
    ) as batches:
        rows = _per_source(validator, con, batches, run_id)
    store_results(con, rows)
    return rows


def validate_window(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    source: str,
    start: dt.datetime,
    end: dt.datetime,
    config: ValidationConfig = ValidationConfig(),
) -> list[dict[str, Any]]:
    """Validates the patients a watch run landed in [start, end) and stores the results (none landed: none)."""
    validator = shared_validator(config)
    with validator.batches(
        con,
        f"SELECT * FROM {PATIENTS_TABLE} WHERE run_id = ? AND ingested_at >= ? AND ingested_at < ?",
        [run_id, start, end],
    ) as batches:
        if batches.whole is None:
            return []
        rows = validator.validate(
            con, batches.whole, scope="window", source=source, run_id=run_id, window_start=start, window_end=end
        )
    store_results(con, rows)
    return rows
