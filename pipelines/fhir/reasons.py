"""Stable reject reason codes for `rejected_records.reason`; the table is documented in docs/rejects.md (a test
keeps the two in step)."""

UNREADABLE_FILE = "unreadable_file"
UNREADABLE_DIRECTORY = "unreadable_directory"
SYMLINK_OUTSIDE_INPUT = "symlink_outside_input"
EMPTY_FILE = "empty_file"
INVALID_GZIP = "invalid_gzip"
EXPANDED_SIZE_LIMIT = "expanded_size_limit"
BINARY_CONTENT = "binary_content"
DOCUMENT_TOO_LARGE = "document_too_large"
RECORD_TOO_LARGE = "record_too_large"
INVALID_JSON = "invalid_json"
NOT_FHIR_RESOURCE = "not_fhir_resource"
INVALID_BUNDLE = "invalid_bundle"
BUNDLE_ENTRY_INVALID = "bundle_entry_invalid"
BUNDLE_ENTRY_WITHOUT_RESOURCE = "bundle_entry_without_resource"
INVALID_PARAMETERS = "invalid_parameters"
PARAMETER_INVALID = "parameter_invalid"
DELETION_NOT_IDENTIFIED = "deletion_not_identified"
PATIENT_WITHOUT_ID = "patient_without_id"
NESTING_TOO_DEEP = "nesting_too_deep"
TOO_MANY_RECORDS = "too_many_records"

REJECT_REASONS: dict[str, str] = {
    UNREADABLE_FILE: "the file could not be opened or read (vanished, permissions, a dangling link)",
    UNREADABLE_DIRECTORY: "a folder under the inputs that cannot be listed",
    SYMLINK_OUTSIDE_INPUT: "a symbolic link to a place outside the given inputs (not followed unless asked)",
    EMPTY_FILE: "the file holds no bytes (or only whitespace)",
    INVALID_GZIP: "gzip data that is corrupt, truncated, or followed by other data",
    EXPANDED_SIZE_LIMIT: "the file expands beyond the limit (--max-expanded-gb): the rest is not read",
    BINARY_CONTENT: "binary data, not JSON text",
    DOCUMENT_TOO_LARGE: "a single JSON document larger than the limit (--max-document-mb)",
    RECORD_TOO_LARGE: "an NDJSON line larger than the limit (--max-document-mb)",
    INVALID_JSON: "text that is not valid JSON (including a truncated document or NDJSON line)",
    NOT_FHIR_RESOURCE: "valid JSON that is not a FHIR resource (not an object, or no resourceType)",
    INVALID_BUNDLE: "a Bundle whose entry element is not a list",
    BUNDLE_ENTRY_INVALID: "a Bundle entry that is not a JSON object",
    BUNDLE_ENTRY_WITHOUT_RESOURCE: "a Bundle entry with no resource that is not a DELETE",
    INVALID_PARAMETERS: "a Parameters resource whose parameter element is not a list",
    PARAMETER_INVALID: "a parameter (or part) that is not a JSON object, or whose part is not a list",
    DELETION_NOT_IDENTIFIED: "a DELETE whose request.url names no single resource (a conditional delete)",
    PATIENT_WITHOUT_ID: "a Patient with neither id nor the entry's fullUrl: it cannot be identified",
    NESTING_TOO_DEEP: "containers (Bundle, Parameters) nested deeper than the reader follows, or JSON nested more "
    "than 254 levels deep",
    TOO_MANY_RECORDS: "a document holding more records than the limit (--max-records-per-document)",
}
