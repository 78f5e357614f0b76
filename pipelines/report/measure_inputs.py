"""Reading `report --measures FILE ...`: CSV, Parquet or FHIR MeasureReports, told apart by content, into one
Arrow table of results plus the rejects (file, position, reason) and the other resources found.

An unreadable file, a file that is none of the three, or a missing column is a UsageError (one line, exit 2); a
bad row is a reject and the rest of the file is read. Columns are matched by name, in any case and order; other
columns are ignored (a HEDIS engine's export has many).
"""

from __future__ import annotations

import csv
import gzip
import io
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.errors import UsageError
from pipelines.report.measure_reports import NotJson, OtherResource, read_measure_reports
from pipelines.report.measure_results import OPTIONAL_COLUMNS, REQUIRED_COLUMNS, Invalid, MeasureResult, check_result

RESULT_SCHEMA = pa.schema(
    [
        ("source", pa.string()),
        ("patient_id", pa.string()),
        ("measure", pa.string()),
        ("denominator", pa.bool_()),
        ("numerator", pa.bool_()),
        ("exclusion", pa.bool_()),
    ]
)
PARQUET_MAGIC = b"PAR1"
GZIP_MAGIC = b"\x1f\x8b"
PROBE_BYTES = 8192
BATCH_ROWS = 65_536


@dataclass(frozen=True, slots=True)
class Reject:
    """A row that is not a result: where it is (file and line, row or FHIR position) and why; never its values."""

    file: str
    position: str
    reason: str
    message: str


@dataclass
class MeasureInput:
    """Everything read from the --measures files."""

    files: list[str] = field(default_factory=list)
    batches: list[pa.RecordBatch] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    other_resources: Counter = field(default_factory=Counter)
    measures: dict[str, None] = field(default_factory=dict)  # in the order the results first name them
    _pending: list[MeasureResult] = field(default_factory=list)

    def add(self, file: str, position: str, found: MeasureResult | Invalid | OtherResource) -> None:
        if isinstance(found, MeasureResult):
            self.measures.setdefault(found.measure)
            self._pending.append(found)
            if len(self._pending) >= BATCH_ROWS:
                self._flush()
        elif isinstance(found, Invalid):
            self.rejects.append(Reject(file, position, found.reason, found.message))
        else:
            self.other_resources[found.resource_type] += 1

    def _flush(self) -> None:
        if self._pending:
            columns = {name: [getattr(r, name) for r in self._pending] for name in RESULT_SCHEMA.names}
            self.batches.append(pa.RecordBatch.from_pydict(columns, schema=RESULT_SCHEMA))
            self._pending.clear()

    def table(self) -> pa.Table:
        self._flush()
        return pa.Table.from_batches(self.batches, schema=RESULT_SCHEMA)

    @property
    def results(self) -> int:
        return sum(b.num_rows for b in self.batches) + len(self._pending)


def read_measure_inputs(paths: Iterable[str | Path]) -> MeasureInput:
    """Every file, each as CSV, Parquet or FHIR by its content."""
    out = MeasureInput()
    for path in map(str, paths):
        out.files.append(path)
        reader = {"parquet": _read_parquet, "fhir": _read_fhir, "csv": _read_csv}[_kind(path)]
        try:
            for position, found in reader(path):
                out.add(path, position, found)
        except OSError as err:
            raise UsageError(f"--measures {path}: cannot read it: {err.strerror or err}") from None
    return out


def _open(path: str) -> IO[bytes]:
    try:
        return open(path, "rb")
    except OSError as err:
        raise UsageError(f"--measures {path}: cannot read it: {err.strerror or err}") from None


def _kind(path: str) -> str:
    """parquet (its magic number), fhir (JSON: the first character is `{`, gzip or not) or csv; binary data is
    none of them."""
    with _open(path) as raw:
        head = raw.read(PROBE_BYTES)
    if head.startswith(PARQUET_MAGIC):
        return "parquet"
    if head.startswith(GZIP_MAGIC):
        try:
            with gzip.open(path, "rb") as unpacked:
                head = unpacked.read(PROBE_BYTES)
        except (OSError, EOFError, zlib.error) as err:
            raise UsageError(f"--measures {path}: damaged gzip data: {err}") from None
    if b"\x00" in head:
        raise UsageError(f"--measures {path}: binary data, not CSV, Parquet or FHIR JSON")
    return "fhir" if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{") else "csv"


def _columns(names: list[str], path: str) -> dict[str, int]:
    """Where each known column is (by name, any case); a missing required column or a known column given twice
    is bad usage."""
    wanted = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
    found: dict[str, int] = {}
    for index, name in enumerate(names):
        key = name.strip().lower()
        if key in wanted:
            if key in found:
                raise UsageError(f"--measures {path}: column {key} is given twice")
            found[key] = index
    missing = [c for c in REQUIRED_COLUMNS if c not in found]
    if missing:
        hint = "; is it comma-separated?" if len(names) == 1 else ""
        raise UsageError(
            f"--measures {path}: missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
            f"(needs {', '.join(REQUIRED_COLUMNS)}; optional {', '.join(OPTIONAL_COLUMNS)}{hint})"
        )
    return found


def _read_csv(path: str) -> Iterator[tuple[str, MeasureResult | Invalid]]:
    """Comma-separated, UTF-8 (a BOM is fine), gzip or not; positions are the line a row starts on."""
    with _open(path) as raw:
        stream: IO[bytes] = gzip.GzipFile(fileobj=raw) if raw.peek(2)[:2] == GZIP_MAGIC else raw
        reader = csv.reader(io.TextIOWrapper(stream, encoding="utf-8-sig", newline=""))
        line = 1
        try:
            header = next(reader, None)
            if header is None:
                raise UsageError(f"--measures {path}: the file is empty (a CSV file needs a header line)")
            columns = _columns(header, path)
            while True:
                line = reader.line_num + 1
                fields = next(reader, None)
                if fields is None:
                    return
                if not fields:
                    continue  # a blank line holds no row
                if len(fields) != len(header):
                    yield (
                        f"line {line}",
                        Invalid(
                            "measure_result_wrong_field_count",
                            f"{len(fields)} fields where the header has {len(header)}",
                        ),
                    )
                    continue
                yield f"line {line}", check_result({name: fields[i] for name, i in columns.items()})
        except UnicodeDecodeError:  # decoded by blocks: the line is not known
            raise UsageError(f"--measures {path}: not UTF-8 text") from None
        except csv.Error as err:
            raise UsageError(f"--measures {path}: not readable as CSV at line {line}: {err}") from None
        except (EOFError, zlib.error, gzip.BadGzipFile) as err:
            raise UsageError(f"--measures {path}: damaged gzip data: {err}") from None


def _read_parquet(path: str) -> Iterator[tuple[str, MeasureResult | Invalid]]:
    """Columns of any type; each value goes through the same check as a CSV field. Positions: `row N` (from 1)."""
    try:
        parquet = pq.ParquetFile(path)
        names = parquet.schema_arrow.names
        columns = _columns(names, path)
        row = 0
        for batch in parquet.iter_batches(batch_size=BATCH_ROWS, columns=[names[i] for i in columns.values()]):
            for values in batch.to_pylist():
                row += 1
                yield f"row {row}", check_result(_renamed(values, names, columns))
    except (pa.ArrowException, OSError) as err:
        raise UsageError(f"--measures {path}: not readable as Parquet: {str(err).splitlines()[0]}") from None


def _renamed(values: Mapping[str, Any], names: list[str], columns: Mapping[str, int]) -> dict[str, Any]:
    return {key: values[names[index]] for key, index in columns.items()}


def _read_fhir(path: str) -> Iterator[tuple[str, MeasureResult | Invalid | OtherResource]]:
    with _open(path) as raw:
        try:
            yield from read_measure_reports(raw, path)
        except NotJson as err:
            raise UsageError(f"--measures {path}: {err} (FHIR JSON was expected: it starts with {{)") from None
