"""Runs the expectation suites with Great Expectations on rows of patient_demographics, where they are: in DuckDB.

GX's SQL datasource is lent the caller's connection (the warehouse connection of a landing or of `validate`),
so the rows never leave DuckDB: no pandas frame of them is built. `import great_expectations` costs ~2.3 s, so it
happens in `Validator.__init__` (once per process), never when this module is imported. The GX context does not
pickle: a `Validator` is built where it is used, from a `ValidationConfig` (which pickles).
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import logging
import math
import os
import time
import uuid
import warnings
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from pipelines.validation.batches import Batches, materialized
from pipelines.validation.config import ValidationConfig
from pipelines.validation.suites import DerivedColumn, ExpectationSpec, SuiteSpec, load_suites

if TYPE_CHECKING:
    import duckdb

log = logging.getLogger(__name__)

SCOPES = ("source", "warehouse", "window")
# BASIC: counts, percentages and a short list of unexpected values; no value counts and no index lists, which
# would cost time on every batch.
RESULT_FORMAT = {"result_format": "BASIC", "partial_unexpected_count": 10}
SAMPLE_IDS = 5
BIRTH_DATE_TOLERANCE = dt.timedelta(days=1)  # a birth "today" in a time zone ahead of UTC
LAST_UPDATED_TOLERANCE = dt.timedelta(minutes=5)  # clock skew between the feed's server and ours
_INDEX_KEY = "validation_index"


def _import_gx() -> Any:
    """Imports Great Expectations quietly: no analytics, no INFO chatter (a user can still set the
    `great_expectations` logger's level explicitly)."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    gx_logger = logging.getLogger("great_expectations")
    if gx_logger.level == logging.NOTSET:
        gx_logger.setLevel(logging.WARNING)
    with warnings.catch_warnings():  # GX imports the deprecated sre_constants / sre_parse modules
        warnings.simplefilter("ignore", DeprecationWarning)
        import great_expectations as gx
    # GX pins this module logger to INFO at import ("Created temporary directory ... for ephemeral docs site"
    # on every context): let it inherit from the `great_expectations` logger instead.
    logging.getLogger("great_expectations.data_context.types.base").setLevel(logging.NOTSET)
    return gx


def json_default(value: Any) -> Any:
    """json.dumps fallback for what GX's SQL results hold: decimals, dates, sets."""
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def _finite(value: Any) -> Any:
    """NaN and infinities become null: DuckDB's JSON functions reject the bare NaN that json.dumps writes."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def to_json(value: Any) -> str | None:
    if value is None:
        return None
    return json.dumps(_finite(value), default=json_default, sort_keys=True, allow_nan=False)


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    return value.astimezone(dt.UTC) if value is not None else None


def _exception_message(exception_info: Any) -> str | None:
    """GX puts either one {raised_exception, exception_message} dict or a dict of them per metric."""
    if not isinstance(exception_info, Mapping):
        return None
    if "raised_exception" in exception_info:
        return exception_info.get("exception_message") if exception_info.get("raised_exception") else None
    messages = sorted(
        {
            info.get("exception_message") or "error"
            for info in exception_info.values()
            if isinstance(info, Mapping) and info.get("raised_exception")
        }
    )
    return "; ".join(messages) or None


def suite_parameters(now: dt.datetime | None = None) -> dict[str, Any]:
    """Values for the `{"$PARAMETER": ...}` bounds of the plausibility suite, computed at each validation."""
    now = now or dt.datetime.now(dt.UTC)
    max_birth_date = (now + BIRTH_DATE_TOLERANCE).date()
    return {
        "max_birth_date": max_birth_date,
        "max_birth_year": max_birth_date.year,
        "max_last_updated": now + LAST_UPDATED_TOLERANCE,
    }


def sample_patient_ids(con: duckdb.DuckDBPyConnection, table: str, column: str) -> list[str]:
    """A few patients whose derived column is false: for the warehouse's validation_results only."""
    return [
        pid
        for (pid,) in con.execute(
            f'SELECT patient_id FROM {table} WHERE NOT "{column}" ORDER BY patient_id LIMIT {SAMPLE_IDS}'
        ).fetchall()
    ]


class Validator:
    """Builds the GX ephemeral context and the suites once; `validate` runs every suite on one table."""

    def __init__(self, config: ValidationConfig = ValidationConfig()):
        self.config = config
        self.suites: list[SuiteSpec] = load_suites(config)
        self.specs: list[ExpectationSpec] = [spec for suite in self.suites for spec in suite.expectations]
        self.derived: list[DerivedColumn] = [column for suite in self.suites for column in suite.derived]
        self._derived_names = {column.name for column in self.derived}
        # What a batch table holds: every column an expectation reads (the derived ones are computed).
        self.columns: list[str] = list(
            dict.fromkeys(column for spec in self.specs for column in spec.columns if column not in self._derived_names)
        )

        started = time.perf_counter()
        gx = _import_gx()
        from great_expectations.data_context.types.base import ProgressBarsConfig
        from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

        context = gx.get_context(mode="ephemeral")
        # Without this every validation prints tqdm "Calculating Metrics" bars to stderr (TQDM_DISABLE is ignored).
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        # All suites run as one GX suite (one metric graph per batch); every expectation carries its position so
        # that results map back to the suite file it came from.
        expectations = [
            ExpectationConfiguration(
                type=spec.type, kwargs=dict(spec.kwargs), meta={**spec.meta, _INDEX_KEY: index}
            ).to_domain_obj()
            for index, spec in enumerate(self.specs)
        ]
        self._suite = context.suites.add(gx.ExpectationSuite(name="demographics", expectations=expectations))
        self._context = context
        log.debug(
            "validator ready: %d suites, %d expectations, %.2f s",
            len(self.suites),
            len(self.specs),
            time.perf_counter() - started,
        )

    def batches(
        self, con: duckdb.DuckDBPyConnection, rows: str, params: Sequence[Any] = ()
    ) -> AbstractContextManager[Batches]:
        """The rows of a query, materialized per source with the derived columns (dropped on exit)."""
        return materialized(con, rows, params, self.columns, self.derived)

    def validate(
        self,
        con: duckdb.DuckDBPyConnection,
        table: str,
        scope: str,
        source: str | None,
        run_id: str,
        window_start: dt.datetime | None = None,
        window_end: dt.datetime | None = None,
    ) -> list[dict[str, Any]]:
        """Runs every suite on one table (or view) of `con`: a source, a window, or the whole warehouse.

        Returns one validation_results row per expectation; nothing is stored here (see `store_results`).
        """
        if scope not in SCOPES:
            raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")
        from pipelines.validation.gx_duckdb import add_duckdb_datasource

        started = time.perf_counter()
        validated_at = dt.datetime.now(dt.UTC)
        (patients,) = con.execute(f"SELECT count(*) FROM {table}").fetchone()
        name = f"batch_{uuid.uuid4().hex}"
        datasource = add_duckdb_datasource(self._context, name, con)
        try:
            batch = (
                datasource.add_table_asset(name=table, table_name=table)
                .add_batch_definition_whole_table("whole")
                .get_batch()
            )
            result = batch.validate(self._suite, expectation_parameters=suite_parameters(), result_format=RESULT_FORMAT)
        finally:  # a datasource per batch: its metric cache and its hold on `con` end here
            self._context.data_sources.delete(name)

        common = {
            "validation_id": uuid.uuid4().hex,
            "run_id": run_id,
            "validated_at": validated_at,
            "scope": scope,
            "source": source,
            "window_start": _utc(window_start),
            "window_end": _utc(window_end),
        }
        rows = []
        for item in sorted(result.results, key=lambda r: r.expectation_config.meta[_INDEX_KEY]):
            spec = self.specs[item.expectation_config.meta[_INDEX_KEY]]
            rows.append({**common, **self._row(spec, item, con, table, patients)})
        log.debug(
            "validated %s (%s %s): %d/%d passed in %.3f s",
            table,
            scope,
            source,
            sum(r["success"] for r in rows),
            len(rows),
            time.perf_counter() - started,
        )
        return rows

    def _row(
        self, spec: ExpectationSpec, item: Any, con: duckdb.DuckDBPyConnection, table: str, patients: int
    ) -> dict[str, Any]:
        res = dict(item.result or {})
        error = _exception_message(item.exception_info)
        mismatched = res.get("details", {}).get("mismatched") if isinstance(res.get("details"), Mapping) else None
        if spec.type == "expect_table_columns_to_match_set":
            # GX observes every column of the batch; what matters is which expected ones are missing.
            observed = {"missing": sorted((mismatched or {}).get("missing") or [])}
        elif "observed_value" in res:
            observed = res["observed_value"]
        elif "unexpected_percent" in res:
            observed = res["unexpected_percent"]
        else:
            observed = None
        kwargs = {
            k: v
            for k, v in item.expectation_config.kwargs.items()
            if k not in ("batch_id", "column", "column_list", "column_set")
        }
        details: dict[str, Any] = {"kwargs": kwargs}
        for key in ("unexpected_percent", "missing_count", "partial_unexpected_list"):
            if res.get(key) not in (None, []):
                details[key] = res[key]
        if error:
            details["exception"] = error
        column = spec.kwargs.get("column")
        if column in self._derived_names:
            details["derived_column"] = column  # its rule: the suite's meta `derived_columns`
            # Its unexpected values are all false: a few patients, for the warehouse table only, say more.
            details.pop("partial_unexpected_list", None)
            if not item.success and not error:
                details["sample_patient_ids"] = sample_patient_ids(con, table, column)
        return {
            "suite": spec.suite,
            "expectation": spec.label,
            "success": bool(item.success) and not error,
            "observed_value": to_json(observed),
            "element_count": int(res.get("element_count", patients)),
            "unexpected_count": int(res["unexpected_count"]) if res.get("unexpected_count") is not None else None,
            "details": to_json(details),
        }
