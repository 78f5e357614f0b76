"""Stable reject reason codes for `rejected_records.reason`; the table is documented in docs/rejects.md."""

REJECT_REASONS: dict[str, str] = {
    "unreadable_file": "the file could not be opened or read",
    "empty_file": "the file holds no bytes (or only whitespace)",
    "invalid_gzip": "gzip data that is corrupt or truncated",
    "binary_content": "binary data, not JSON text",
    "invalid_json": "text that is not valid JSON (including a truncated document or NDJSON line)",
    "not_fhir_resource": "valid JSON that is not a FHIR resource (not an object, or no resourceType)",
    "invalid_bundle": "a Bundle whose entry element is not a list",
    "bundle_entry_invalid": "a Bundle entry that is not a JSON object",
    "bundle_entry_without_resource": "a Bundle entry with no resource",
    "patient_without_id": "a Patient with neither id nor the entry's fullUrl: it cannot be identified",
    "nesting_too_deep": "Bundles nested deeper than the reader follows",
}
