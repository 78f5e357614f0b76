"""Avro record schemas, installed as pipelines.schemas."""
