"""Strict FHIR R4B validation of a Patient, reported as element paths (never values): a warning, not a reject."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any


@functools.cache
def _patient_model():
    # R4B, not the package's R5 default: exchange data is R4 (../shared/notes/toolchain.md section 5).
    from fhir.resources.R4B.patient import Patient

    return Patient


def invalid_patient_elements(resource: Mapping[str, Any]) -> list[str]:
    """Element paths (e.g. `meta.lastUpdated`, `telecom.value`) where the Patient fails strict R4B validation."""
    try:
        return _failed_paths(resource)
    except Exception:  # noqa: BLE001 - fhir.resources raises its own errors on some input (a contained resource of
        # an unknown or R5 type, a number in `photo.url`, a `resourceType` inside an element): each element alone
        # then says where
        paths = {
            path
            for name, value in resource.items()
            if name != "resourceType"
            for path in _element_failed_paths(name, value)
        }
        return sorted(paths) or ["(resource)"]


def _failed_paths(resource: Mapping[str, Any]) -> list[str]:
    from pydantic import ValidationError

    try:
        _patient_model().model_validate(dict(resource))
    except ValidationError as err:
        paths = set()
        for error in err.errors():
            parts = [str(p) for p in error.get("loc", ()) if not isinstance(p, int)]
            paths.add(".".join(parts) or "(resource)")
        return sorted(paths)
    return []


def _element_failed_paths(name: str, value: Any) -> list[str]:
    try:
        return _failed_paths({"resourceType": "Patient", name: value})
    except Exception:  # noqa: BLE001 - as above: the element is where it fails
        return [name]
