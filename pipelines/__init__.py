"""The demographics pipeline: FHIR race, ethnicity and language data to OMB 2024 and HEDIS strata."""
