"""Great Expectations validation of landed patient_demographics batches, stored in validation_results.

Importing this package does not import great_expectations (2.3 s): only building a `Validator` does.
"""

from pipelines.validation.config import ValidationConfig
from pipelines.validation.report import render_html, summary_table, write_html_summary
from pipelines.validation.store import (
    NoPatientsError,
    all_passed,
    completeness_trend,
    ensure_validation_results_table,
    exit_code,
    prepare_validator,
    shared_validator,
    store_results,
    validate_landed_batch,
    validate_warehouse,
    validate_window,
)
from pipelines.validation.suites import load_suites
from pipelines.validation.validator import Validator

__all__ = [
    "NoPatientsError",
    "ValidationConfig",
    "Validator",
    "all_passed",
    "completeness_trend",
    "ensure_validation_results_table",
    "exit_code",
    "load_suites",
    "prepare_validator",
    "render_html",
    "shared_validator",
    "store_results",
    "summary_table",
    "validate_landed_batch",
    "validate_warehouse",
    "validate_window",
    "write_html_summary",
]
