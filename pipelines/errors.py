"""Errors that end a command: bad usage or unreadable input/config, each with a numbered exit code.

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
