"""Race carried as Observations in another file of the same feed (a Bulk export) reaches its Patient."""

import json

import pytest

from tests.conftest import query

CDCREC = "urn:oid:2.16.840.1.113883.6.238"


def _race_obs(obs_id, subject, code):
    return {
        "resourceType": "Observation",
        "id": obs_id,
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "72826-1"}]},
        "subject": {"reference": subject},
        "valueCodeableConcept": {"coding": [{"system": CDCREC, "code": code}]},
    }


@pytest.mark.slow
def test_bulk_export_observations_fill_patients_without_race(tmp_path, run_cli):
    feed = tmp_path / "bulk"
    feed.mkdir()
    white_ext = [
        {
            "url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race",
            "extension": [
                {"url": "ombCategory", "valueCoding": {"system": CDCREC, "code": "2106-3"}},
                {"url": "text", "valueString": "White"},
            ],
        }
    ]
    patients = [
        {"resourceType": "Patient", "id": "no-race"},
        {"resourceType": "Patient", "id": "has-race", "extension": white_ext},
        {"resourceType": "Patient", "id": "untouched"},
    ]
    (feed / "Patient.ndjson").write_text("".join(json.dumps(p) + "\n" for p in patients))
    (feed / "Observation.ndjson").write_text(
        "".join(
            json.dumps(o) + "\n"
            for o in [
                _race_obs("o1", "Patient/no-race", "2028-9"),
                _race_obs("o2", "Patient/has-race", "2054-5"),  # disagrees with the Patient's own answer
                _race_obs("o3", "Patient/not-in-feed", "2106-3"),  # nobody to match: counted, not used
            ]
        )
    )
    warehouse = tmp_path / "w.duckdb"
    assert run_cli("run", "--input", feed, "--warehouse", warehouse)[0] == 0
    rows = {
        r[0]: r[1:]
        for r in query(
            warehouse,
            "SELECT patient_id, omb2024_category, race_source_format, mapping_warnings FROM patient_demographics",
        )
    }
    assert rows["no-race"][:2] == ("ASIAN", "observation")
    assert rows["has-race"][0] == "WHITE" and "observation_conflict" in rows["has-race"][2]
    assert rows["untouched"][:2] == ("UNKNOWN", "absent")
    assert query(warehouse, "SELECT records_in, patients_landed, other_resources FROM runs") == [(6, 3, 3)]


@pytest.mark.slow
def test_observations_and_patients_delivered_in_different_runs_still_meet(tmp_path, run_cli):
    feed = tmp_path / "drop"
    feed.mkdir()
    warehouse = tmp_path / "w.duckdb"

    def deliver(name, *resources):
        (feed / name).write_text("".join(json.dumps(r) + "\n" for r in resources))
        assert run_cli("run", "--input", feed / name, "--warehouse", warehouse)[0] == 0

    def category(patient_id):
        return query(
            warehouse,
            "SELECT omb2024_category, race_source_format FROM patient_demographics WHERE patient_id = ?",
            [patient_id],
        )

    # the Patient first, its Observation in a later delivery: the landed row is rebuilt from its file
    deliver("1-patients.ndjson", {"resourceType": "Patient", "id": "early"})
    assert category("early") == [("UNKNOWN", "absent")]
    deliver(
        "2-observations.ndjson", _race_obs("o1", "Patient/early", "2054-5"), _race_obs("o2", "Patient/late", "2076-8")
    )
    assert category("early") == [("BLACK", "observation")]
    # the Observation first: it is kept, and the Patient delivered later finds it
    deliver("3-patients.ndjson", {"resourceType": "Patient", "id": "late"})
    assert category("late") == [("NHPI", "observation")]
    kept = query(warehouse, "SELECT patient_key FROM demographic_observations ORDER BY 1")
    assert kept == [("early",), ("late",)]
    # re-running a delivery changes nothing
    before = query(warehouse, "SELECT * FROM patient_demographics ORDER BY patient_id")
    deliver(
        "2-observations.ndjson", _race_obs("o1", "Patient/early", "2054-5"), _race_obs("o2", "Patient/late", "2076-8")
    )
    assert query(warehouse, "SELECT * FROM patient_demographics ORDER BY patient_id") == before
    assert query(warehouse, "SELECT count(*) FROM demographic_observations") == [(2,)]
