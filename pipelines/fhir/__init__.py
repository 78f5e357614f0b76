"""Reading FHIR files (pure: no Beam): every input shape of the contract, into resources and dead letters."""

from pipelines.fhir.reader import (
    FileContents,
    FoundPatient,
    Rejection,
    read_fhir_bytes,
    read_fhir_file,
)
from pipelines.fhir.reasons import REJECT_REASONS

__all__ = ["REJECT_REASONS", "FileContents", "FoundPatient", "Rejection", "read_fhir_bytes", "read_fhir_file"]
