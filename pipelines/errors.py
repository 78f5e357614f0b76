"""Errors that end a command, each with a numbered exit code; and the one exception for a busy warehouse.

Bad records are never errors: they are dead letters (`rejected_records`) and the run exits 0.
"""

EXIT_OK = 0
EXIT_VALIDATION_FAILED = 1
EXIT_USAGE = 2
EXIT_FAILED = 3  # an unexpected failure of the run itself (recorded in `runs` as failed)
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """Bad usage, a missing input, an unwritable warehouse: printed as one line, exit code 2."""

    exit_code = EXIT_USAGE


class WarehouseBusy(UsageError):
    """Another process holds the warehouse's single-writer lock (or a read lock that blocks writing) for longer
    than we wait. `watch` retries at its next poll; a command reports it as bad usage (exit 2)."""


def error_line(err: BaseException) -> str:
    """`Type: first line of the message`: how a failure is recorded (`runs.message`, an export error)."""
    text = str(err)
    return f"{type(err).__name__}: {text.splitlines()[0] if text else ''}"
