"""Which files a batch reads: every regular file under the given files and folders, listed (never globbed), in a
stable order. What cannot be listed or must not be followed becomes a dead letter, never a silent skip."""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.beam.read import InputFile
from pipelines.errors import UsageError
from pipelines.fhir import reasons as R
from pipelines.fhir.records import Rejection

log = logging.getLogger(__name__)

IGNORED_SUFFIXES = (".part", ".tmp")


def is_ignored_name(name: str) -> bool:
    """Hidden files and files still being written (`.part`, `.tmp`) are not inputs."""
    return name.startswith(".") or name.endswith(IGNORED_SUFFIXES)


def display_path(path: str) -> str:
    """A path as stored in the warehouse: valid UTF-8 whatever the bytes of its name (reversibly escaped)."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


@dataclass
class ListedInputs:
    """The files to read (with their source and order) and the dead letters of what could not be listed."""

    files: list[InputFile] = field(default_factory=list)
    rejections: list[tuple[str, str, Rejection]] = field(default_factory=list)  # (source, display path, rejection)
    skipped: int = 0  # FIFOs, sockets, devices: not files (opening a FIFO would block forever)


def _inside(path: str, roots: Sequence[str]) -> bool:
    real = os.path.realpath(path)
    return any(real == root or real.startswith(root.rstrip(os.sep) + os.sep) for root in roots)


def _walk(
    folder: str, source: str, roots: Sequence[str], follow_symlinks: bool, out: ListedInputs, visited: set[str]
) -> Iterator[tuple[str, os.stat_result]]:
    """Regular files under a folder (recursive, sorted by name), hidden and partial names skipped; a folder
    reached twice (a symbolic link loop) is read once."""
    real = os.path.realpath(folder)
    if real in visited:
        return
    visited.add(real)
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as err:
        out.rejections.append(
            (
                source,
                display_path(folder),
                Rejection(
                    "directory", R.UNREADABLE_DIRECTORY, f"the folder cannot be listed: {err.strerror or err}", ""
                ),
            )
        )
        return
    for entry in entries:
        if is_ignored_name(entry.name):
            continue
        path = os.path.abspath(entry.path)
        if entry.is_symlink() and not follow_symlinks and not _inside(path, roots):
            out.rejections.append(
                (
                    source,
                    display_path(path),
                    Rejection(
                        "file",
                        R.SYMLINK_OUTSIDE_INPUT,
                        "a symbolic link to a place outside the given inputs (not followed; see --follow-symlinks)",
                        "",
                    ),
                )
            )
            continue
        try:
            st = os.stat(path)
        except OSError as err:
            # a dangling link or a loop: the reader would fail the same way; say so here
            out.rejections.append(
                (
                    source,
                    display_path(path),
                    Rejection("file", R.UNREADABLE_FILE, f"{type(err).__name__}: {err.strerror or err}", ""),
                )
            )
            continue
        if stat.S_ISDIR(st.st_mode):
            yield from _walk(path, source, roots, follow_symlinks, out, visited)
        elif stat.S_ISREG(st.st_mode):
            yield path, st
        else:
            out.skipped += 1


def list_inputs(paths: Sequence[str], source: str | None, follow_symlinks: bool = False) -> ListedInputs:
    """Every input file under the given files/directories, ordered by path, with its source name (default: the
    input directory's name; for a file, the name of the folder holding it)."""
    out = ListedInputs()
    found: dict[str, tuple[str, os.stat_result]] = {}
    roots = [os.path.realpath(p) for p in paths]
    for given in paths:
        path = Path(given)
        if not os.path.lexists(given):
            raise UsageError(f"input {given} does not exist")
        absolute = os.path.abspath(given)
        if path.is_dir():
            name = source or Path(absolute).name
            for file_path, st in _walk(absolute, name, roots, follow_symlinks, out, set()):
                found.setdefault(file_path, (name, st))
        elif not path.is_file():
            raise UsageError(f"input {given} is not a regular file or directory")
        elif not os.access(given, os.R_OK):
            raise UsageError(f"input {given} is not readable")
        else:
            found.setdefault(absolute, (source or Path(absolute).parent.name, os.stat(absolute)))
    if out.skipped:
        log.warning("skipped %d entries that are not regular files (FIFOs, sockets, devices)", out.skipped)
    for order, (path, (name, _)) in enumerate(sorted(found.items())):
        out.files.append(InputFile(path, name, order, display_path(path)))
    return out


def total_bytes(files: Sequence[InputFile]) -> int:
    size = 0
    for f in files:
        with contextlib.suppress(OSError):
            size += os.stat(f.path).st_size
    return size
