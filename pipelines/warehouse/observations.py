"""Race/ethnicity Observations matched to their Patients across the files, polls and runs of a feed.

A Bulk export writes Patients and Observations to different files, and a drop folder may deliver them in different
polls or runs. Every demographic Observation is kept in `demographic_observations`; inside the commit, the rows of
Patients that kept Observations point at are classified again from their staged or stored race/ethnicity payload
(`race_ethnicity_raw`) and those Observations: no source file is read again.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import duckdb
import pyarrow as pa

from pipelines.normalize import RACE_KEYS, Policy, race_ethnicity
from pipelines.rows import FILE_ORDER, ORDINAL, record_hash, staging_schema
from pipelines.tables import OBSERVATIONS, PATIENTS, field_names

NEW_OBSERVATIONS = "_new_observations"


def keep_observations(con: duckdb.DuckDBPyConnection, observations: list[dict[str, Any]], run_id: str) -> None:
    """Stores the batch's demographic Observations once each (a re-run of the same input adds nothing); the ones
    new to the warehouse stay in the temp table `_new_observations` for this commit."""
    table = pa.table(
        {
            "source": [o["source"] for o in observations],
            "patient_key": [o["patient_key"] for o in observations],
            "resource": [json.dumps(o["resource"], sort_keys=True) for o in observations],
            "input_file": [o["input_file"] for o in observations],
        },
        schema=pa.schema([(n, pa.string()) for n in ("source", "patient_key", "resource", "input_file")]),
    )
    con.register("_staged_observations", table)
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE {NEW_OBSERVATIONS} AS
        SELECT DISTINCT ON (source, patient_key, resource) * FROM _staged_observations s
        WHERE NOT EXISTS (SELECT 1 FROM {OBSERVATIONS} k WHERE k.source = s.source
                          AND k.patient_key = s.patient_key AND k.resource = s.resource)""")
    con.unregister("_staged_observations")
    con.execute(
        f"""INSERT INTO {OBSERVATIONS} (source, patient_key, resource, input_file, run_id, received_at)
                    SELECT source, patient_key, resource, input_file, ?, current_timestamp FROM {NEW_OBSERVATIONS}""",
        [run_id],
    )


def _observations_of(con: duckdb.DuckDBPyConnection, keys_sql: str) -> dict[tuple[str, str], list[dict]]:
    found: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for source, key, resource in con.execute(f"""
            SELECT k.source, k.patient_key, k.resource FROM {OBSERVATIONS} k
            SEMI JOIN ({keys_sql}) w ON w.source = k.source AND w.patient_id = k.patient_key
            ORDER BY k.source, k.patient_key, k.received_at, k.resource""").fetchall():
        found[(source, key)].append(json.loads(resource))
    return found


def rebuild_with_observations(con: duckdb.DuckDBPyConnection, staged: str, policy: Policy) -> pa.Table:
    """Rows classified again with their kept Observations: the staged rows (view `staged`) whose Patient has kept
    Observations, and the stored rows that this batch's new Observations point at. Staging schema."""
    if not con.execute(f"SELECT count(*) FROM (SELECT 1 FROM {OBSERVATIONS} LIMIT 1)").fetchone()[0]:
        return staging_schema().empty_table()  # no feed has kept any: nothing to match (the common case)
    batch_keys = (
        f"SELECT DISTINCT s.source, s.patient_id FROM {staged} s SEMI JOIN {OBSERVATIONS} k "
        "ON k.source = s.source AND k.patient_key = s.patient_id"
    )
    stored_keys = (
        f"SELECT DISTINCT n.source, n.patient_key AS patient_id FROM {NEW_OBSERVATIONS} n "
        f"ANTI JOIN {staged} s ON s.source = n.source AND s.patient_id = n.patient_key"
    )
    observations = _observations_of(con, f"{batch_keys} UNION {stored_keys}")
    if not observations:
        return staging_schema().empty_table()
    columns = ", ".join(f'"{c}"' for c in field_names(PATIENTS))
    rows = (
        con.execute(f"""
        SELECT {columns}, {FILE_ORDER}, {ORDINAL} FROM {staged} SEMI JOIN ({batch_keys}) k USING (source, patient_id)
        UNION ALL
        SELECT {columns}, -1, 0 FROM {PATIENTS} SEMI JOIN ({stored_keys}) k USING (source, patient_id)
        """)
        .fetch_arrow_table()
        .to_pylist()
    )
    for row in rows:
        reclassify(row, observations[(row["source"], row["patient_id"])], policy)
    return pa.Table.from_pylist(rows, schema=staging_schema())


def reclassify(row: dict[str, Any], observations: list[dict], policy: Policy) -> None:
    """Replaces a row's race/ethnicity columns by those read from its payload plus the Observations."""
    payload = json.loads(row["race_ethnicity_raw"]) if row["race_ethnicity_raw"] else None
    before = race_ethnicity(payload, (), policy)
    after = race_ethnicity(payload, observations, policy)
    row.update({key: after.fields[key] for key in RACE_KEYS})
    other_warnings = set(row["mapping_warnings"]) - set(before.warnings)
    row["mapping_warnings"] = sorted(other_warnings | set(after.warnings))
    row["record_hash"] = record_hash(row)
