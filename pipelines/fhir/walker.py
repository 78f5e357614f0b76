"""Walks one parsed JSON document and finds every record in it, wherever exchanges put resources.

Containers are walked, never counted: Bundle entries (any Bundle type, nested Bundles), and
`Parameters.parameter[].resource` with its `part[]` at any depth (FHIR operations such as group submissions and
`$member-match` wrap Patients and Bundles this way). A Bundle entry whose `request.method` is DELETE is a
deletion. `contained[]` resources are not independently identifiable and are deliberately not landed.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

import orjson

from pipelines.fhir import reasons as R
from pipelines.fhir.records import (
    Deletion,
    FeedObservation,
    FoundPatient,
    KeptResource,
    OtherResource,
    Rejection,
    parse_instant,
    patient_key_of_reference,
    raw_text,
)

MAX_CONTAINER_DEPTH = 16
ENTRY_BITS = 24  # a record's ordinal is (offset of its line << ENTRY_BITS) + its index in the document
_RESOURCE_TYPE = re.compile(r"^[A-Z][A-Za-z]{1,63}$")

Events = list[Any]


class TooManyRecords(Exception):
    pass


def _json_text(value: Any) -> str:
    """A value's text for its dead letter (the reader never hands on JSON too deep to write: reader.parse_json)."""
    return raw_text(orjson.dumps(value))


def _non_empty_string(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _subject_reference(resource: dict[str, Any]) -> str | None:
    subject = resource.get("subject")
    ref = _non_empty_string(subject.get("reference")) if isinstance(subject, dict) else None
    if ref is not None and "/_history/" in ref:
        ref = ref.split("/_history/")[0]
    return ref


def _reference_targets(patient: FoundPatient) -> set[str]:
    """The reference strings that can point at this Patient from the same document."""
    targets = {f"Patient/{patient.key}"} if not patient.key_from_fullurl else set()
    if patient.full_url:
        targets.add(patient.full_url)
    return targets


def _matches(reference: str, targets: set[str]) -> bool:
    if reference in targets:
        return True
    return any(reference.endswith("/" + t) for t in targets if t.startswith("Patient/"))  # absolute references


def deletion_target(url: Any) -> tuple[str, str] | None:
    """(resource type, id) named by a DELETE's `request.url` (relative, absolute, with `_history`); None for a
    conditional delete (`Patient?identifier=...`) or anything that names no single resource."""
    if not isinstance(url, str) or "?" in url:
        return None
    path = url.strip().split("/_history/")[0].rstrip("/")
    parts = path.split("/")
    if len(parts) < 2 or not _RESOURCE_TYPE.match(parts[-2]) or not parts[-1]:
        return None
    return parts[-2], parts[-1]


class DocumentWalker:
    """Finds the records of one document; `walk` returns them in document order, Patients last (after their
    Observations of the same document were matched to them)."""

    def __init__(
        self,
        is_demographic_observation: Callable[[dict], bool],
        max_records: int,
        keep: Callable[[dict], bool] | None = None,
    ):
        self.is_demographic_observation = is_demographic_observation
        self.max_records = max_records
        self.keep = keep

    def walk(self, value: Any, position: str, base_ordinal: int = 0) -> Events:
        self.events: Events = []
        self.patients: list[FoundPatient] = []
        self.observations: list[dict[str, Any]] = []
        self.count = 0
        self.base_ordinal = base_ordinal
        try:
            self._visit(value, position, None, 0)
        except TooManyRecords:
            self.events.append(
                Rejection(
                    position or "document",
                    R.TOO_MANY_RECORDS,
                    f"the document holds more than {self.max_records} records: the rest of it was not read",
                    "",
                )
            )
        self._match_observations()
        self.events.extend(self.patients)
        return self.events

    def _match_observations(self) -> None:
        """Observations go to the Patients of the document they point at; every one is also kept for the feed, so
        that a Patient classified again later (a further Observation arrives) still has them all."""
        for obs in self.observations:
            ref = _subject_reference(obs)
            if ref is None:
                continue
            key = patient_key_of_reference(ref)
            for patient in self.patients:
                if _matches(ref, _reference_targets(patient)):
                    patient.observations.append(obs)
                    key = patient.key
            self.events.append(FeedObservation(key, obs))

    def _record(self) -> None:
        self.count += 1
        if self.count > self.max_records:
            raise TooManyRecords

    def _reject(self, position: str, reason: str, message: str, raw: Any, resource_type: str | None = None) -> None:
        self._record()
        self.events.append(Rejection(position or "document", reason, message, _json_text(raw), resource_type))

    def _other(self, resource_type: str) -> None:
        self._record()
        self.events.append(OtherResource(resource_type))

    def _visit(self, value: Any, position: str, full_url: str | None, depth: int) -> None:
        resource_type = value.get("resourceType") if isinstance(value, dict) else None
        if not isinstance(resource_type, str) or not resource_type:
            kind = "an object without resourceType" if isinstance(value, dict) else f"a JSON {type(value).__name__}"
            self._reject(position, R.NOT_FHIR_RESOURCE, f"expected a FHIR resource, found {kind}", value)
        elif resource_type == "Patient":
            self._visit_patient(value, position, full_url)
        elif resource_type in ("Bundle", "Parameters"):
            if depth >= MAX_CONTAINER_DEPTH:
                self._reject(
                    position,
                    R.NESTING_TOO_DEEP,
                    f"containers nested more than {MAX_CONTAINER_DEPTH} deep",
                    value,
                    resource_type,
                )
            elif resource_type == "Bundle":
                self._visit_bundle(value, position, depth)
            else:
                self._visit_parameters(value, position, depth)
        else:
            self._other(resource_type)
            if resource_type == "Observation" and self.is_demographic_observation(value):
                self.observations.append(value)
            if self.keep is not None and self.keep(value):
                self.events.append(KeptResource(position or "document", value))

    def _visit_bundle(self, bundle: dict[str, Any], position: str, depth: int) -> None:
        entries = bundle.get("entry")
        if entries is None:
            return  # an empty Bundle holds no records
        if not isinstance(entries, list):
            self._reject(position, R.INVALID_BUNDLE, "Bundle.entry is not a list", bundle, "Bundle")
            return
        prefix = f"{position} " if position else ""
        for index, entry in enumerate(entries):
            entry_position = f"{prefix}entry[{index}]"
            if not isinstance(entry, dict):
                self._reject(entry_position, R.BUNDLE_ENTRY_INVALID, "the Bundle entry is not a JSON object", entry)
                continue
            request = entry.get("request")
            method = request.get("method") if isinstance(request, dict) else None
            if isinstance(method, str) and method.upper() == "DELETE":
                self._visit_deletion(entry, request, bundle, entry_position)
                continue
            resource = entry.get("resource")
            if resource is None:
                self._reject(entry_position, R.BUNDLE_ENTRY_WITHOUT_RESOURCE, "the Bundle entry has no resource", entry)
                continue
            self._visit(resource, entry_position, _non_empty_string(entry.get("fullUrl")), depth + 1)

    def _visit_deletion(
        self, entry: dict[str, Any], request: dict[str, Any], bundle: dict[str, Any], position: str
    ) -> None:
        target = deletion_target(request.get("url"))
        if target is None:
            self._reject(
                position,
                R.DELETION_NOT_IDENTIFIED,
                "a DELETE whose request.url names no single resource (a conditional delete?)",
                entry,
            )
            return
        resource_type, key = target
        if resource_type != "Patient":
            self._other(f"{resource_type} (deleted)")
            return
        self._record()
        self.events.append(Deletion(position, key, deletion_time(entry, bundle)))

    def _visit_parameters(self, parameters: dict[str, Any], position: str, depth: int) -> None:
        items = parameters.get("parameter")
        if items is not None and not isinstance(items, list):
            self._reject(position, R.INVALID_PARAMETERS, "Parameters.parameter is not a list", parameters, "Parameters")
            return
        prefix = f"{position} " if position else ""
        if not self._visit_parameter_list(items or [], f"{prefix}parameter", depth):
            self._other("Parameters")  # a Parameters that carries no resource is a resource like any other

    def _visit_parameter_list(self, items: list[Any], path: str, depth: int) -> int:
        """Walks parameters (or parts); returns how many resources they hold."""
        held = 0
        for index, item in enumerate(items):
            position = f"{path}[{index}]"
            if not isinstance(item, dict):
                self._reject(position, R.PARAMETER_INVALID, "the parameter is not a JSON object", item)
                continue
            resource = item.get("resource")
            if resource is not None:
                held += 1
                self._visit(resource, position, None, depth + 1)
            parts = item.get("part")
            if parts is None:
                continue
            if not isinstance(parts, list):
                self._reject(position, R.PARAMETER_INVALID, "the parameter's part is not a list", item)
            elif depth + 1 >= MAX_CONTAINER_DEPTH:
                self._reject(
                    position,
                    R.NESTING_TOO_DEEP,
                    f"containers nested more than {MAX_CONTAINER_DEPTH} deep",
                    item,
                    "Parameters",
                )
            else:
                held += self._visit_parameter_list(parts, f"{position}.part", depth + 1)
        return held

    def _visit_patient(self, resource: dict[str, Any], position: str, full_url: str | None) -> None:
        patient_id = resource.get("id")
        key = _non_empty_string(patient_id) if isinstance(patient_id, str) else None
        if key is None and full_url is None:
            self._reject(
                position, R.PATIENT_WITHOUT_ID, "the Patient has neither id nor a fullUrl", resource, "Patient"
            )
            return
        self._record()
        ordinal = self.base_ordinal + len(self.patients) + 1
        self.patients.append(
            FoundPatient(position or "document", key or full_url, key is None, resource, full_url, ordinal=ordinal)
        )


def deletion_time(entry: dict[str, Any], bundle: dict[str, Any]) -> dt.datetime | None:
    """The entry's `response.lastModified`, else the Bundle's `timestamp` or `meta.lastUpdated` (contract 2)."""
    response = entry.get("response")
    meta = bundle.get("meta")
    for value in (
        response.get("lastModified") if isinstance(response, dict) else None,
        bundle.get("timestamp"),
        meta.get("lastUpdated") if isinstance(meta, dict) else None,
    ):
        found = parse_instant(value)
        if found is not None:
            return found
    return None
