"""Stable mapping_warnings codes. Each one is documented in docs/warnings.md (a test keeps the two in step)."""

from __future__ import annotations

# Structure: JSON that is not the FHIR shape expected at that place (ignored, never raised).
MALFORMED_EXTENSION = "malformed_extension"
MALFORMED_CODING = "malformed_coding"
MALFORMED_TEXT = "malformed_text"
CODE_NOT_STRING = "code_not_string"
CODE_FORMAT_REPAIRED = "code_format_repaired"
EMPTY_RACE_EXTENSION = "empty_race_extension"
UNRECOGNIZED_RACE_EXTENSION = "unrecognized_race_extension"
UNKNOWN_SUBEXTENSION = "unknown_subextension"

# Code systems and codes.
SYSTEM_MISSING_REPAIRED = "system_missing_repaired"
SYSTEM_MISSING_IGNORED = "system_missing_ignored"
SYSTEM_URI_REPAIRED = "system_uri_repaired"
UNKNOWN_CODE_SYSTEM = "unknown_code_system"
CODE_SYSTEM_MISMATCH = "code_system_mismatch"
CDCREC_CODE_UNDER_LOINC = "cdcrec_code_under_loinc"
UNKNOWN_CODE = "unknown_code"
ABSTRACT_ROOT_CODE = "abstract_root_code"
V2_LEGACY_RACE_CODE = "v2_legacy_race_code"
V2_ORIENTAL_AS_ASIAN = "v2_oriental_as_asian"
V2_LEGACY_CODE_IGNORED = "v2_legacy_code_ignored"
NULL_FLAVOR_OTH_AS_OTHER_RACE = "null_flavor_oth_as_other_race"

# Slots and contradictions.
HISPANIC_IN_RACE_SLOT = "hispanic_in_race_slot"
NOT_HISPANIC_IN_RACE_SLOT = "not_hispanic_in_race_slot"
RACE_CODE_IN_ETHNICITY_SLOT = "race_code_in_ethnicity_slot"
DETAILED_CODE_IN_CATEGORY_SLOT = "detailed_code_in_category_slot"
HISPANIC_CONFLICT = "hispanic_conflict"
NULL_FLAVOR_WITH_CATEGORY = "null_flavor_with_category"
DECLINED_AND_UNKNOWN = "declined_and_unknown"
MULTIPLE_RACE_SOURCES = "multiple_race_sources"

# Text.
TEXT_CONFLICTS_WITH_CODES = "text_conflicts_with_codes"
RACE_TEXT_UNMAPPED = "race_text_unmapped"
ETHNICITY_TEXT_UNMAPPED = "ethnicity_text_unmapped"
TEXT_AMBIGUOUS = "text_ambiguous"
TEXT_MULTIPLE_UNSPECIFIED = "text_multiple_unspecified"
TEXT_IGNORED_BY_POLICY = "text_ignored_by_policy"

# Observations.
OBSERVATION_CONFLICT = "observation_conflict"
OBSERVATION_NOT_USED = "observation_not_used"
OBSERVATION_STATUS_IGNORED = "observation_status_ignored"
OBSERVATION_UNREADABLE = "observation_unreadable"

# Other demographics.
GENDER_REPAIRED = "gender_repaired"
GENDER_INVALID = "gender_invalid"
BIRTH_DATE_REPAIRED = "birth_date_repaired"
BIRTH_DATE_INVALID = "birth_date_invalid"
LANGUAGE_UNREADABLE = "language_unreadable"
LANGUAGE_REPAIRED = "language_repaired"
LANGUAGE_FROM_TEXT = "language_from_text"
ADDRESS_MALFORMED = "address_malformed"
POSTAL_CODE_REPAIRED = "postal_code_repaired"
STATE_REPAIRED = "state_repaired"
STATE_UNRECOGNIZED = "state_unrecognized"
PROVIDER_REFERENCE_MALFORMED = "provider_reference_malformed"

# Emitted by the row builder (pipelines/rows.py), documented in the same table.
FHIR_VALIDATION_FAILED = "fhir_validation_failed"
PATIENT_KEY_FROM_FULLURL = "patient_key_from_fullurl"
LAST_UPDATED_INVALID = "last_updated_invalid"

ALL_CODES: frozenset[str] = frozenset(
    value for name, value in list(globals().items()) if name.isupper() and isinstance(value, str)
)
