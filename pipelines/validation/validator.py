"""Runs the expectation suites on one batch of patient_demographics rows with Great Expectations.

`import great_expectations` costs ~2.3 s, so it happens in `Validator.__init__` (once per process or per
`DoFn.setup`), never when this module is imported. The GX context does not pickle: a `Validator` must be
built where it is used, from a `ValidationConfig` (which pickles).
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
import time
import uuid
import warnings
from typing import Any, Mapping

import numpy as np
import pandas as pd

from pipelines.validation.checks import add_derived_columns, hashable_frame, suite_parameters
from pipelines.validation.config import ValidationConfig
from pipelines.validation.suites import ExpectationSpec, SuiteSpec, load_suites

log = logging.getLogger(__name__)

SCOPES = ("source", "warehouse", "window")
# BASIC: counts, percentages and a short list of unexpected values; no value counts and no index lists, which
# would cost time on every batch.
RESULT_FORMAT = {"result_format": "BASIC", "partial_unexpected_count": 10}
SAMPLE_IDS = 5
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
    """json.dumps fallback for what GX results hold: numpy scalars, dates, timestamps, sets."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (dt.date, dt.datetime, pd.Timestamp)):
        return value.isoformat()
    if isinstance(value, (set, frozenset, tuple, np.ndarray)):
        return list(value)
    return str(value)


def _clean(value: Any) -> Any:
    """NaN and infinities become null: DuckDB's JSON functions reject the bare NaN that json.dumps writes."""
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def to_json(value: Any) -> str | None:
    if value is None:
        return None
    try:
        return json.dumps(value, default=json_default, sort_keys=True, allow_nan=False)
    except ValueError:
        return json.dumps(_clean(json.loads(json.dumps(value, default=json_default))), sort_keys=True)


def _utc(value: Any) -> dt.datetime | None:
    """A window bound as an aware UTC datetime: accepts datetime, ISO text, pandas or Beam timestamps."""
    if value is None:
        return None
    try:
        if hasattr(value, "to_utc_datetime"):  # apache_beam.utils.timestamp.Timestamp, without importing Beam
            value = value.to_utc_datetime()
        ts = pd.Timestamp(value)
        ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
        return ts.to_pydatetime()
    except (OverflowError, ValueError, pd.errors.OutOfBoundsDatetime):
        return None  # e.g. the global window's bounds (Beam's MIN/MAX_TIMESTAMP)


def _exception_message(exception_info: Any) -> str | None:
    """GX puts either one {raised_exception, exception_message} dict or a dict of them per metric."""
    if not isinstance(exception_info, Mapping):
        return None
    if "raised_exception" in exception_info:
        return exception_info.get("exception_message") if exception_info.get("raised_exception") else None
    messages = sorted({info.get("exception_message") or "error" for info in exception_info.values()
                       if isinstance(info, Mapping) and info.get("raised_exception")})
    return "; ".join(messages) or None


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


class Validator:
    """Builds the GX ephemeral context and the suites once; `validate` runs every suite on one batch."""

    def __init__(self, config: ValidationConfig = ValidationConfig()):
        self.config = config
        self.suites: list[SuiteSpec] = load_suites(config)
        self.specs: list[ExpectationSpec] = [spec for suite in self.suites for spec in suite.expectations]
        # Derived boolean columns named by the suites (meta "derived": true) -> the meta of their suite.
        self._derived: dict[str, Mapping[str, Any]] = {
            spec.kwargs["column"]: suite.meta
            for suite in self.suites for spec in suite.expectations if spec.meta.get("derived")}

        started = time.perf_counter()
        gx = _import_gx()
        from great_expectations.data_context.types.base import ProgressBarsConfig
        from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

        context = gx.get_context(mode="ephemeral")
        # Without this every validation prints tqdm "Calculating Metrics" bars to stderr (TQDM_DISABLE is ignored).
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        self._batch_definition = (context.data_sources.add_pandas("demographics")
                                  .add_dataframe_asset(name="patient_demographics")
                                  .add_batch_definition_whole_dataframe("batch"))
        # All suites run as one GX suite (one metric graph, one pass over the batch); every expectation carries
        # its position so that results map back to the suite file it came from.
        expectations = [
            ExpectationConfiguration(type=spec.type, kwargs=dict(spec.kwargs),
                                     meta={**spec.meta, _INDEX_KEY: index}).to_domain_obj()
            for index, spec in enumerate(self.specs)]
        self._suite = context.suites.add(gx.ExpectationSuite(name="demographics", expectations=expectations))
        self._context = context
        log.debug("validator ready: %d suites, %d expectations, %.2f s", len(self.suites), len(self.specs),
                  time.perf_counter() - started)

    def validate(self, patients: pd.DataFrame, scope: str, source: str | None, run_id: str,
                 window_start: Any = None, window_end: Any = None) -> list[dict[str, Any]]:
        """Runs every suite on one batch (all rows of one source or window, or the whole warehouse).

        Returns one validation_results row per expectation; nothing is stored here (see `store_results`).
        """
        if scope not in SCOPES:
            raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")
        started = time.perf_counter()
        validated_at = dt.datetime.now(dt.timezone.utc)
        frame = add_derived_columns(patients, self._derived)
        batch = self._batch_definition.get_batch(batch_parameters={"dataframe": hashable_frame(frame)})
        result = batch.validate(self._suite, expectation_parameters=suite_parameters(frame),
                                result_format=RESULT_FORMAT)

        common = {
            "validation_id": uuid.uuid4().hex, "run_id": run_id, "validated_at": validated_at, "scope": scope,
            "source": source, "window_start": _utc(window_start), "window_end": _utc(window_end),
        }
        rows = []
        for item in sorted(result.results, key=lambda r: r.expectation_config.meta[_INDEX_KEY]):
            spec = self.specs[item.expectation_config.meta[_INDEX_KEY]]
            rows.append({**common, **self._row(spec, item, frame)})
        log.debug("validated %d rows (%s %s): %d/%d passed in %.3f s", len(frame), scope, source,
                  sum(r["success"] for r in rows), len(rows), time.perf_counter() - started)
        return rows

    def _row(self, spec: ExpectationSpec, item: Any, frame: pd.DataFrame) -> dict[str, Any]:
        res = dict(item.result or {})
        error = _exception_message(item.exception_info)
        mismatched = res.get("details", {}).get("mismatched") if isinstance(res.get("details"), Mapping) else None
        if spec.type == "expect_table_columns_to_match_set":
            # GX observes every column of the batch; what matters is which expected ones are missing.
            observed = {"missing": sorted((mismatched or {}).get("missing") or [])}
        elif "observed_value" in res:
            observed = res["observed_value"]
        elif "unexpected_percent" in res:
            observed = _finite(res["unexpected_percent"])
        else:
            observed = None
        kwargs = {k: v for k, v in item.expectation_config.kwargs.items()
                  if k not in ("batch_id", "column", "column_list", "column_set")}
        details: dict[str, Any] = {"kwargs": kwargs}
        for key in ("unexpected_percent", "missing_count", "partial_unexpected_list"):
            if res.get(key) not in (None, []):
                details[key] = _finite(res[key])
        if error:
            details["exception"] = error
        column = spec.kwargs.get("column")
        if spec.meta.get("derived") and not item.success and column in frame.columns:
            # The unexpected values of a derived column are all False: name some patients instead.
            details.pop("partial_unexpected_list", None)
            if "patient_id" in frame.columns:
                details["sample_patient_ids"] = frame.loc[~frame[column].astype(bool), "patient_id"].head(
                    SAMPLE_IDS).tolist()
        return {
            "suite": spec.suite,
            "expectation": spec.label,
            "success": bool(item.success) and not error,
            "observed_value": to_json(observed),
            "element_count": int(res.get("element_count", len(frame))),
            "unexpected_count": int(res["unexpected_count"]) if res.get("unexpected_count") is not None else None,
            "details": to_json(details),
        }
