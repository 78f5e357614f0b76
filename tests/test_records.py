"""The Avro schema is the one definition of a landed row; the other schemas are derived from it."""
import datetime as dt

import duckdb
import pyarrow as pa

from pipelines import tables as records
from pipelines.staging import content_hash
from pipelines.fhir.reader import FoundPatient
from pipelines.landing import parse_instant, patient_row
from pipelines.warehouse import ensure_tables


def test_derived_schemas_have_the_avro_fields_in_order():
    for table in (records.PATIENTS, records.REJECTED):
        names = records.field_names(table)
        assert records.arrow_schema(table).names == list(names)
        assert tuple(c[0] for c in records.duckdb_columns(table)) == names
        assert tuple(c["name"] for c in records.bigquery_schema(table)) == names


def test_derived_types():
    arrow = records.arrow_schema(records.PATIENTS)
    assert arrow.field("omb2024_categories").type == pa.list_(pa.string())
    assert arrow.field("last_updated").type == pa.timestamp("us", tz="UTC")
    assert arrow.field("birth_date").type == pa.date32()
    assert not arrow.field("patient_id").nullable and arrow.field("race_text").nullable
    bq = {c["name"]: c for c in records.bigquery_schema(records.PATIENTS)}
    assert bq["mapping_warnings"] == {"name": "mapping_warnings", "type": "STRING", "mode": "REPEATED"}
    assert bq["ingested_at"]["type"] == "TIMESTAMP" and bq["ingested_at"]["mode"] == "REQUIRED"


def test_duckdb_tables_follow_the_avro_schema(tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    ensure_tables(con)
    cols = dict(con.execute("SELECT column_name, data_type FROM information_schema.columns "
                            "WHERE table_name = 'patient_demographics'").fetchall())
    assert cols["omb2024_categories"] == "VARCHAR[]"
    assert cols["last_updated"] == "TIMESTAMP WITH TIME ZONE"
    assert cols["birth_date"] == "DATE"
    assert list(cols) == list(records.field_names(records.PATIENTS))


def _row(**patient):
    found = FoundPatient("line 1", "p1", False, {"resourceType": "Patient", "id": "p1", **patient})
    return patient_row(found, source="s", input_file="/f.json", run_id="r",
                       ingested_at=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc))


def test_a_landed_row_conforms_to_the_avro_schema():
    row = _row(meta={"lastUpdated": "2026-01-01T10:00:00.123456789+02:00"}, birthDate="1990-02-03")
    assert records.validate_row(row, records.PATIENTS)
    assert row["last_updated"] == dt.datetime(2026, 1, 1, 8, 0, 0, 123456, tzinfo=dt.timezone.utc)


def test_content_hash_ignores_lineage_but_not_content():
    a = _row(gender="female")
    b = dict(a, input_file="/other.json", run_id="r2", ingested_at=dt.datetime(2027, 1, 1, tzinfo=dt.timezone.utc))
    assert content_hash(a) == content_hash(b)
    assert content_hash(a) != content_hash(_row(gender="male"))


def test_parse_instant_cases():
    assert parse_instant("2026-03-01T00:00:00Z") == dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc)
    assert parse_instant("2026-03-01T00:00:00-08:00") == dt.datetime(2026, 3, 1, 8, tzinfo=dt.timezone.utc)
    for bad in ("2026-03-01", "last Tuesday", "2026-13-01T00:00:00Z", "2026-03-01T00:00:00", 20260301, None, []):
        assert parse_instant(bad) is None
