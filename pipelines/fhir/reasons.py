"""Stable reject reason codes for `rejected_records.reason`; the table is documented in docs/rejects.md (a test
keeps the two in step)."""

REJECT_REASONS: dict[str, str] = {
    "unreadable_file": "the file could not be opened or read (vanished, permissions, a dangling link)",
    "unreadable_directory": "a folder under the inputs that cannot be listed",
    "symlink_outside_input": "a symbolic link to a place outside the given inputs (not followed unless asked)",
    "empty_file": "the file holds no bytes (or only whitespace)",
    "invalid_gzip": "gzip data that is corrupt, truncated, or followed by other data",
    "expanded_size_limit": "the file expands beyond the limit (--max-expanded-gb): the rest is not read",
    "binary_content": "binary data, not JSON text",
    "document_too_large": "a single JSON document larger than the limit (--max-document-mb)",
    "record_too_large": "an NDJSON line larger than the limit (--max-document-mb)",
    "invalid_json": "text that is not valid JSON (including a truncated document or NDJSON line)",
    "not_fhir_resource": "valid JSON that is not a FHIR resource (not an object, or no resourceType)",
    "invalid_bundle": "a Bundle whose entry element is not a list",
    "bundle_entry_invalid": "a Bundle entry that is not a JSON object",
    "bundle_entry_without_resource": "a Bundle entry with no resource that is not a DELETE",
    "invalid_parameters": "a Parameters resource whose parameter element is not a list",
    "parameter_invalid": "a parameter (or part) that is not a JSON object, or whose part is not a list",
    "deletion_not_identified": "a DELETE whose request.url names no single resource (a conditional delete)",
    "patient_without_id": "a Patient with neither id nor the entry's fullUrl: it cannot be identified",
    "nesting_too_deep": "containers (Bundle, Parameters) nested deeper than the reader follows",
    "too_many_records": "a document holding more records than the limit (--max-records-per-document)",
}
