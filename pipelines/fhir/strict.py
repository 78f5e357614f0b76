"""Strict FHIR R4B validation of a Patient, reported as element paths (never values): a warning, not a reject."""
from __future__ import annotations

import functools
from typing import Any, Mapping


@functools.cache
def _patient_model():
    # R4B, not the package's R5 default: exchange data is R4 (../shared/notes/toolchain.md section 5).
    from fhir.resources.R4B.patient import Patient

    return Patient


def invalid_patient_elements(resource: Mapping[str, Any]) -> list[str]:
    """Element paths (e.g. `meta.lastUpdated`, `telecom.value`) where the Patient fails strict R4B validation."""
    from pydantic import ValidationError

    try:
        _patient_model().model_validate(dict(resource))
    except ValidationError as err:
        paths = set()
        for error in err.errors():
            parts = [str(p) for p in error.get("loc", ()) if not isinstance(p, int)]
            paths.add(".".join(parts) or "(resource)")
        return sorted(paths)
    except Exception:  # noqa: BLE001 - unknown or R5 contained types, numbers where strings go: never a crash
        return ["(resource)"]
    return []
