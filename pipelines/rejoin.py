"""Race/ethnicity Observations from other files of the same batch, matched to their Patients (Bulk exports).

A Bulk FHIR export writes Patients and Observations to different files, so the reader cannot match them
within one document. The reader stages such Observations with the key they point at; this step, run by the
committer before landing, re-reads only the files holding those Patients and rebuilds their rows with the
Observations added. A batch without such Observations costs nothing here.
"""
from __future__ import annotations

import datetime as dt
import glob
import json
import logging
import os
from collections import defaultdict
from typing import Any, Sequence

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.beam.batch import STAGING_ONLY_COLUMNS
from pipelines.fhir.reader import FileContents, read_fhir_file
from pipelines.landing import patient_row
from pipelines.warehouse import sql_string_list

log = logging.getLogger(__name__)


def _staged_observations(staging_dir: str) -> dict[tuple[str, str], list[dict[str, Any]]]:
    by_patient: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for path in sorted(glob.glob(os.path.join(staging_dir, "observations", "*.ndjson"))):
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                row = json.loads(line)
                by_patient[(row["source"], row["patient_key"])].append(row["resource"])
    return by_patient


def rejoin_feed_observations(staging_dir: str, patient_files: Sequence[str], ingested_at: dt.datetime,
                             run_id: str, strict_fhir: bool, policy: Any = None) -> int:
    """Rewrites the staged rows of Patients that Observations in other files point at; returns how many."""
    observations = _staged_observations(staging_dir)
    if not observations or not patient_files:
        return 0
    from pipelines.normalize import is_demographic_observation, load_policy

    keys = pa.table({"source": [k[0] for k in observations], "patient_id": [k[1] for k in observations]})
    con = duckdb.connect()
    con.register("wanted", keys)
    hits = con.execute(f"""SELECT s.input_file, list(DISTINCT filename ORDER BY filename)
                           FROM read_parquet({sql_string_list(patient_files)}, filename = true) s
                           JOIN wanted USING (source, patient_id) GROUP BY s.input_file ORDER BY 1""").fetchall()
    policy, rebuilt = policy or load_policy(), 0
    for input_file, staged_files in hits:
        contents = read_fhir_file(input_file, is_demographic_observation)  # once per input file
        for staged_file in staged_files:
            rebuilt += _rebuild_staged_file(staged_file, input_file, contents, observations, ingested_at, run_id,
                                            strict_fhir, policy)
    log.info("matched race/ethnicity Observations from other files to %d patients", rebuilt)
    return rebuilt


def _rebuild_staged_file(staged_file: str, input_file: str, contents: FileContents,
                         observations: dict[tuple[str, str], list[dict[str, Any]]], ingested_at: dt.datetime,
                         run_id: str, strict_fhir: bool, policy: Any) -> int:
    """Rebuilds, in one staged Parquet file, the rows of Patients that feed Observations point at."""
    table = pq.read_table(staged_file)
    rows = table.to_pylist()
    rebuilt = 0
    for i, row in enumerate(rows):
        feed_obs = observations.get((row["source"], row["patient_id"]))
        found = contents.patients[row["_ordinal"]] if row["_ordinal"] < len(contents.patients) else None
        if not feed_obs or found is None or found.key != row["patient_id"]:
            continue
        found.observations.extend(feed_obs)
        rows[i] = dict(patient_row(found, source=row["source"], input_file=input_file, ingested_at=ingested_at,
                                   run_id=run_id, strict_fhir=strict_fhir, policy=policy),
                       **{name: row[name] for name in STAGING_ONLY_COLUMNS})
        rebuilt += 1
    if rebuilt:
        pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), staged_file, compression="zstd")
    return rebuilt
