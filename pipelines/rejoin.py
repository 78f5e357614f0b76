"""Race/ethnicity Observations from other files of the same feed, matched to their Patients.

A Bulk FHIR export writes Patients and Observations to different files, and a drop folder may deliver them in
different polls or runs, so the reader cannot match them within one document. The reader stages such
Observations with the key they point at; this step, run by the committer before landing:
- keeps every such Observation in `demographic_observations` (per source), so that a Patient delivered later
  still finds it;
- rebuilds the staged rows of this batch's Patients that have Observations (staged or kept);
- rebuilds Patients already in the warehouse that this batch's Observations point at, by re-reading the file
  their row came from (lineage), so that an Observation arriving after its Patient is used too.
A batch with no such Observations, and no kept ones for its Patients, costs one small query here.
"""
from __future__ import annotations

import datetime as dt
import glob
import json
import logging
import os
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Sequence

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.fhir.reader import FileContents, read_fhir_file
from pipelines.landing import patient_row
from pipelines.staging import FILE_ORDER_COLUMN, ORDINAL_COLUMN, staging_schema
from pipelines.tables import PATIENTS as PATIENT_TABLE
from pipelines.warehouse.legacy import OBSERVATIONS_TABLE, sql_string_list

log = logging.getLogger(__name__)

ObservationMap = dict[tuple[str, str], list[dict[str, Any]]]


@dataclass(frozen=True)
class RowContext:
    """What a rebuilt row needs besides its Patient and Observations."""

    ingested_at: dt.datetime
    run_id: str
    strict_fhir: bool
    policy: Any


def _staged_observations(staging_dir: str) -> list[dict[str, Any]]:
    rows = []
    for path in sorted(glob.glob(os.path.join(staging_dir, "observations", "*.ndjson"))):
        with open(path, encoding="utf-8") as fh:
            rows += [json.loads(line) for line in fh]
    return rows


def _keep_observations(con: duckdb.DuckDBPyConnection, staged: list[dict[str, Any]], run_id: str) -> None:
    """Stores the batch's unmatched Observations once each (a re-run of the same input adds nothing)."""
    if not staged:
        return
    table = pa.table({"source": [o["source"] for o in staged], "patient_key": [o["patient_key"] for o in staged],
                      "resource": [json.dumps(o["resource"], sort_keys=True) for o in staged],
                      "input_file": [o["input_file"] for o in staged]})
    con.register("staged_observations", table)
    con.execute(f"""
        INSERT INTO {OBSERVATIONS_TABLE} (source, patient_key, resource, input_file, run_id, received_at)
        SELECT DISTINCT s.source, s.patient_key, s.resource, s.input_file, ?, current_timestamp FROM staged_observations s
        WHERE NOT EXISTS (SELECT 1 FROM {OBSERVATIONS_TABLE} k WHERE k.source = s.source
                          AND k.patient_key = s.patient_key AND k.resource = s.resource)""", [run_id])
    con.unregister("staged_observations")


def _kept_observations(con: duckdb.DuckDBPyConnection, keys: list[tuple[str, str]]) -> ObservationMap:
    """The kept Observations of the given (source, patient key) pairs, oldest first."""
    found: ObservationMap = defaultdict(list)
    if not keys:
        return found
    con.register("wanted_keys", pa.table({"source": [k[0] for k in keys], "patient_key": [k[1] for k in keys]}))
    for source, key, resource in con.execute(f"""
            SELECT k.source, k.patient_key, k.resource FROM {OBSERVATIONS_TABLE} k
            JOIN wanted_keys USING (source, patient_key) ORDER BY k.source, k.patient_key, k.received_at""").fetchall():
        found[(source, key)].append(json.loads(resource))
    con.unregister("wanted_keys")
    return found


def rejoin_feed_observations(con: duckdb.DuckDBPyConnection, staging_dir: str, patient_files: Sequence[str],
                             ctx: RowContext) -> list[str]:
    """Rebuilds rows for Observations in other files; returns extra staged patient files (warehouse Patients)."""
    staged = _staged_observations(staging_dir)
    _keep_observations(con, staged, ctx.run_id)
    # Only the batch's Patients that have kept Observations are fetched, not every key of the batch.
    batch_keys = con.execute(f"""
        SELECT DISTINCT s.source, s.patient_id FROM read_parquet({sql_string_list(patient_files)}) s
        JOIN {OBSERVATIONS_TABLE} k ON k.source = s.source AND k.patient_key = s.patient_id""").fetchall() \
        if patient_files else []
    observations = _kept_observations(con, [*batch_keys, *{(o["source"], o["patient_key"]) for o in staged}])
    if not observations:
        return []
    from pipelines.normalize import is_demographic_observation, load_policy

    ctx = RowContext(ctx.ingested_at, ctx.run_id, ctx.strict_fhir, ctx.policy or load_policy())
    rebuilt = _rebuild_batch_patients(con, patient_files, observations, ctx, is_demographic_observation)
    batch = set(batch_keys)
    later = {key: obs for key, obs in observations.items() if key not in batch}
    extra = _rebuild_warehouse_patients(con, later, staging_dir, ctx, is_demographic_observation)
    log.info("race/ethnicity Observations from other files used for %d patients of this batch and %d landed "
             "before", rebuilt, sum(pq.read_metadata(f).num_rows for f in extra))
    return extra


def _rebuild_batch_patients(con: duckdb.DuckDBPyConnection, patient_files: Sequence[str],
                            observations: ObservationMap, ctx: RowContext, is_demographic_observation) -> int:
    if not patient_files:
        return 0
    con.register("keys_with_observations", pa.table({"source": [k[0] for k in observations],
                                                     "patient_id": [k[1] for k in observations]}))
    hits = con.execute(f"""SELECT s.input_file, list(DISTINCT filename ORDER BY filename)
                           FROM read_parquet({sql_string_list(patient_files)}, filename = true) s
                           JOIN keys_with_observations USING (source, patient_id)
                           GROUP BY s.input_file ORDER BY 1""").fetchall()
    con.unregister("keys_with_observations")
    rebuilt = 0
    for input_file, staged_files in hits:
        contents = read_fhir_file(input_file, is_demographic_observation)  # once per input file
        for staged_file in staged_files:
            rebuilt += _rebuild_staged_file(staged_file, input_file, contents, observations, ctx)
    return rebuilt


def _rebuilt_row(row: dict[str, Any], input_file: str, contents: FileContents, observations: ObservationMap,
                 ctx: RowContext) -> dict[str, Any] | None:
    """The row of one Patient rebuilt with its feed Observations; None when the file no longer holds it."""
    feed_obs = observations.get((row["source"], row["patient_id"]))
    ordinal = row[ORDINAL_COLUMN]
    found = contents.patients[ordinal] if ordinal < len(contents.patients) else None
    if not feed_obs or found is None or found.key != row["patient_id"]:
        return None
    known = {json.dumps(o, sort_keys=True) for o in found.observations}
    found.observations.extend(o for o in feed_obs if json.dumps(o, sort_keys=True) not in known)
    return dict(patient_row(found, source=row["source"], input_file=input_file, ingested_at=ctx.ingested_at,
                            run_id=ctx.run_id, strict_fhir=ctx.strict_fhir, policy=ctx.policy),
                **{FILE_ORDER_COLUMN: row[FILE_ORDER_COLUMN], ORDINAL_COLUMN: ordinal})


def _rebuild_staged_file(staged_file: str, input_file: str, contents: FileContents, observations: ObservationMap,
                         ctx: RowContext) -> int:
    """Rebuilds, in one staged Parquet file, the rows of Patients that feed Observations point at."""
    table = pq.read_table(staged_file)
    rows = table.to_pylist()
    rebuilt = 0
    for i, row in enumerate(rows):
        new = _rebuilt_row(row, input_file, contents, observations, ctx)
        if new is not None:
            rows[i] = new
            rebuilt += 1
    if rebuilt:
        pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), staged_file, compression="zstd")
    return rebuilt


def _rebuild_warehouse_patients(con: duckdb.DuckDBPyConnection, observations: ObservationMap, staging_dir: str,
                                ctx: RowContext, is_demographic_observation) -> list[str]:
    """Patients landed earlier that new Observations point at: re-read from their input file, staged anew."""
    if not observations:
        return []
    con.register("keys_with_observations", pa.table({"source": [k[0] for k in observations],
                                                     "patient_id": [k[1] for k in observations]}))
    landed = con.execute(f"""SELECT source, patient_id, input_file, input_position FROM {PATIENT_TABLE}
                             JOIN keys_with_observations USING (source, patient_id) ORDER BY input_file""").fetchall()
    con.unregister("keys_with_observations")
    rows, contents_by_file = [], {}
    for source, patient_id, input_file, position in landed:
        if input_file not in contents_by_file:
            contents_by_file[input_file] = read_fhir_file(input_file, is_demographic_observation)
        contents = contents_by_file[input_file]
        ordinal = next((i for i, p in enumerate(contents.patients)
                        if p.key == patient_id and (p.position or "document") == position), None)
        if ordinal is None:  # the file changed or is gone: the Observation stays kept for a later delivery
            continue
        row = {"source": source, "patient_id": patient_id, FILE_ORDER_COLUMN: 1 << 40, ORDINAL_COLUMN: ordinal}
        new = _rebuilt_row(row, input_file, contents, observations, ctx)
        if new is not None:
            rows.append(new)
    if not rows:
        return []
    path = os.path.join(staging_dir, "patients", "warehouse-rejoined.parquet")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=staging_schema("patients")), path, compression="zstd")
    return [path]
