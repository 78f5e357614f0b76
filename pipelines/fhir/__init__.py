"""Reading FHIR files (pure: no Beam): every input shape of the contract, into resources and dead letters."""
from pipelines.fhir.reader import (
    FoundPatient,
    Rejection,
    FileContents,
    read_fhir_file,
    read_fhir_bytes,
)
from pipelines.fhir.reasons import REJECT_REASONS

__all__ = ["FoundPatient", "Rejection", "FileContents", "read_fhir_file", "read_fhir_bytes", "REJECT_REASONS"]
