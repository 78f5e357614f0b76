"""The two yardsticks `demographics run` is measured against, each run by bench_scale.py as its own process.

    python benchmarks/baselines.py orjson Patient.ndjson
    python benchmarks/baselines.py duckdb-sql Patient.ndjson --database scratch.duckdb

`orjson`: every line parsed with orjson on one core, nothing else: the limit of any Python reader of NDJSON.
`duckdb-sql`: the query a user would write instead of the pipeline, landing each Patient's ombCategory codings
(race and ethnicity, US Core URLs only) in a DuckDB table, with DuckDB's default threads (one per core).
Each prints one JSON object on stdout: what it counted.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import orjson

US_CORE_RACE = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race"
US_CORE_ETHNICITY = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity"

OMB_CATEGORY_SQL = f"""
CREATE TABLE omb_categories AS
WITH extensions AS (
    SELECT id, unnest(CAST(extension AS JSON[])) AS ext
    FROM read_ndjson($path, columns = {{id: 'VARCHAR', extension: 'JSON'}})
), parts AS (
    SELECT id, ext ->> 'url' AS question, unnest(CAST(ext -> 'extension' AS JSON[])) AS part
    FROM extensions
    WHERE ext ->> 'url' IN ('{US_CORE_RACE}', '{US_CORE_ETHNICITY}')
)
SELECT id, question, part -> 'valueCoding' ->> 'system' AS system, part -> 'valueCoding' ->> 'code' AS code
FROM parts
WHERE part ->> 'url' = 'ombCategory'
"""


def parse_with_orjson(path: Path) -> dict[str, int]:
    """Parses every non-blank line; the parsed object is dropped at once, as a streaming reader would."""
    records = 0
    with open(path, "rb", buffering=1 << 20) as lines:
        for line in lines:
            if line.strip():
                orjson.loads(line)
                records += 1
    return {"records": records}


def extract_with_duckdb(path: Path, database: Path) -> dict[str, int]:
    import duckdb

    with duckdb.connect(str(database)) as con:
        con.execute(OMB_CATEGORY_SQL, {"path": str(path)})
        codings, patients = con.execute("SELECT count(*), count(DISTINCT id) FROM omb_categories").fetchone()
    return {"omb_codings": codings, "patients_with_omb": patients}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("baseline", choices=("orjson", "duckdb-sql"))
    parser.add_argument("ndjson", type=Path)
    parser.add_argument("--database", type=Path, help="DuckDB file for duckdb-sql (created)")
    args = parser.parse_args(argv)
    if args.baseline == "orjson":
        counted = parse_with_orjson(args.ndjson)
    elif args.database is None:
        parser.error("duckdb-sql needs --database")
    else:
        counted = extract_with_duckdb(args.ndjson, args.database)
    print(json.dumps(counted))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
