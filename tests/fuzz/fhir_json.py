"""Hypothesis strategies for hostile FHIR: arbitrary JSON in every element of a Patient and of its containers, and
the bytes a feed may deliver them as (one document, NDJSON, gzip)."""

from __future__ import annotations

import gzip
import json
from typing import Any

from hypothesis import strategies as st

RACE = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race"
ETHNICITY = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity"
CDC = "urn:oid:2.16.840.1.113883.6.238"
LOINC = "http://loinc.org"

# Strings that sit on an edge somewhere in the pipeline: instants out of the datetime range, dates that do not
# exist, references of every form, resource types unknown or new in R5, codes the normalizer maps.
EDGE_STRINGS = [
    "",
    " ",
    "\x00",
    "\u2028",
    "\ufeff",
    "e\u0301",
    "\U0001f600",
    "x" * 300,
    "0000-01-01",
    "0000-01-01T00:00:00Z",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "99999-01-01T00:00:00Z",
    "2020-02-30",
    "2020-13-01T00:00:00Z",
    "2020-01-01T24:00:00Z",
    "2020-01-01T00:00:00",
    "2020-01-01T00:00:00.1234567890Z",
    "1980",
    "1980-01",
    "-0001-01-01",
    "2020-01-01T00:00:00+99:99",
    "Patient",
    "Bundle",
    "Parameters",
    "Observation",
    "Foo",
    "ActorDefinition",
    "Requirements",
    "Transport",
    "InventoryItem",
    "patient",
    "Patient/",
    "Patient/x",
    "Patient/x/_history/1",
    "urn:uuid:",
    "Patient?name=x",
    "http://x/fhir/Patient/p1",
    "#contained",
    "DELETE",
    "delete",
    "PUT",
    RACE,
    ETHNICITY,
    CDC,
    LOINC,
    "http://hl7.org/fhir/Profile/us-core#race",
    "https://bluebutton.cms.gov/resources/variables/race",
    "urn:ietf:bcp:47",
    "2106-3",
    "2054-5",
    "2135-2",
    "2186-5",
    "2118-8",
    "ASKU",
    "UNK",
    "72826-1",
    "69490-1",
    "46463-6",
    "ombCategory",
    "detailed",
    "text",
    "home",
    "old",
    "en-US",
    "zh_Hant",
    "94110-1234",
    "California",
]
EDGE_NUMBERS = [
    0,
    -1,
    1,
    2**31,
    2**53 + 1,
    2**63 - 1,
    -(2**63),
    2**64 - 1,
    2**64,
    10**30,
    -(10**30),
    1e308,
    -0.0,
    0.1,
    5e-324,
]
ELEMENT_NAMES = [
    "resourceType",
    "id",
    "meta",
    "lastUpdated",
    "extension",
    "url",
    "valueCoding",
    "valueCodeableConcept",
    "valueCode",
    "valueString",
    "valueBoolean",
    "coding",
    "system",
    "code",
    "text",
    "display",
    "reference",
    "contained",
    "entry",
    "resource",
    "request",
    "response",
    "method",
    "lastModified",
    "fullUrl",
    "parameter",
    "part",
    "birthDate",
    "address",
    "postalCode",
    "state",
    "period",
    "end",
    "use",
    "communication",
    "language",
    "preferred",
    "subject",
    "component",
    "status",
    "dataAbsentReason",
    "photo",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from(EDGE_NUMBERS),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(EDGE_STRINGS),
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(ELEMENT_NAMES) | st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
# The resources a `contained[]` or a container may hold: known, unknown, new in R5, or not resources at all.
resource_types = st.sampled_from(
    [
        "Patient",
        "Observation",
        "Organization",
        "Bundle",
        "Parameters",
        "Foo",
        "ActorDefinition",
        "Requirements",
        "Transport",
        "InventoryItem",
        "",
        "patient",
    ]
)
resource_type_values = resource_types | json_values


@st.composite
def resources(draw: Any) -> Any:
    """A resource of any type (or a JSON value that is not one) with arbitrary members."""
    members = draw(st.dictionaries(st.sampled_from(ELEMENT_NAMES) | st.text(max_size=6), json_values, max_size=4))
    if draw(st.integers(0, 9)) == 0:
        return draw(json_values)
    return {**members, "resourceType": draw(resource_type_values)}


def _coding(system: str, code: str) -> dict[str, Any]:
    return {"system": system, "code": code, "display": code}


def full_patient(pid: str) -> dict[str, Any]:
    """A Patient with every element the pipeline reads, and many it does not: the ground to fuzz on."""
    return {
        "resourceType": "Patient",
        "id": pid,
        "meta": {"lastUpdated": "2026-01-02T03:04:05.678+01:00", "versionId": "3", "profile": ["http://x/p"]},
        "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">x</div>'},
        "contained": [{"resourceType": "Organization", "id": "o1", "name": "Clinic"}],
        "extension": [
            {
                "url": RACE,
                "extension": [
                    {"url": "ombCategory", "valueCoding": _coding(CDC, "2106-3")},
                    {"url": "detailed", "valueCoding": _coding(CDC, "2108-9")},
                    {"url": "text", "valueString": "White"},
                ],
            },
            {
                "url": ETHNICITY,
                "extension": [
                    {"url": "ombCategory", "valueCoding": _coding(CDC, "2186-5")},
                    {"url": "text", "valueString": "Not Hispanic"},
                ],
            },
            {"url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex", "valueCode": "F"},
            {
                "url": "https://bluebutton.cms.gov/resources/variables/race",
                "valueCoding": _coding("https://bluebutton.cms.gov/resources/variables/race", "1"),
            },
        ],
        "modifierExtension": [{"url": "http://x/m", "valueBoolean": False}],
        "identifier": [{"system": "http://x/mrn", "value": "123", "period": {"start": "2020-01-01"}}],
        "active": True,
        "name": [{"family": "Doe", "given": ["Jane"]}],
        "telecom": [{"system": "phone", "value": "555"}],
        "gender": "female",
        "birthDate": "1980-02-29",
        "deceasedBoolean": False,
        "address": [
            {
                "use": "home",
                "line": ["1 Main"],
                "postalCode": "94110-1234",
                "state": "California",
                "period": {"start": "2020-01-01"},
            },
            {"use": "old", "postalCode": "10001", "state": "NY", "period": {"end": "2019-01-01"}},
        ],
        "maritalStatus": {"coding": [{"system": "http://x", "code": "M"}]},
        "multipleBirthInteger": 1,
        "photo": [{"url": "http://x/photo.png", "contentType": "image/png"}],
        "contact": [{"name": {"family": "Roe"}}],
        "communication": [
            {
                "language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "es-MX"}], "text": "Spanish"},
                "preferred": True,
            }
        ],
        "generalPractitioner": [{"reference": "Practitioner/1"}],
        "managingOrganization": {"reference": "Organization/1"},
        "link": [{"other": {"reference": "Patient/other"}, "type": "seealso"}],
    }


def demographic_observation(subject: str) -> dict[str, Any]:
    """A race Observation of the same Patient (matched to it when in the same document)."""
    return {
        "resourceType": "Observation",
        "id": "o",
        "status": "final",
        "code": {"coding": [_coding(LOINC, "72826-1")]},
        "subject": {"reference": subject},
        "valueCodeableConcept": {"coding": [_coding(CDC, "2054-5")], "text": "Black"},
        "component": [
            {
                "code": {"coding": [_coding(LOINC, "69490-1")]},
                "valueCodeableConcept": {"coding": [_coding(CDC, "2135-2")]},
            }
        ],
    }


def paths_of(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path to a value inside `node` (the root excluded), lists and objects alike."""
    found = [prefix] if prefix else []
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for step, value in items:
        found.extend(paths_of(value, prefix + (step,)))
    return found


def _parent(node: Any, path: tuple) -> Any:
    for step in path[:-1]:
        node = node[step]
    return node


@st.composite
def mutated(draw: Any, document: Any, keep: tuple[str, ...] = ()) -> Any:
    """The document with one to four values replaced by arbitrary JSON (or removed, or a member added) anywhere,
    at any depth; paths through a member named in `keep` are left alone."""
    for _ in range(draw(st.integers(1, 4))):
        paths = [p for p in paths_of(document) if not set(keep) & {s for s in p if isinstance(s, str)}]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = _parent(document, path)
        action = draw(st.sampled_from(["replace", "replace", "replace", "remove", "add"]))
        if action == "remove":
            del parent[path[-1]]
        elif action == "add" and isinstance(parent[path[-1]], dict):
            parent[path[-1]][draw(st.sampled_from(ELEMENT_NAMES))] = draw(json_values)
        elif action == "add" and isinstance(parent[path[-1]], list):
            parent[path[-1]].append(draw(json_values | resources()))
        else:
            parent[path[-1]] = draw(json_values | resources())
    return document


@st.composite
def hostile_patients(draw: Any, pid: str = "p") -> dict[str, Any]:
    """A full Patient with arbitrary JSON in its elements at any depth, and hostile `contained[]`; never its
    resourceType (the reader would count it as another resource, which other tests cover)."""
    patient = draw(mutated(full_patient(pid), keep=("resourceType",)))
    if draw(st.booleans()):
        patient["contained"] = draw(st.lists(resources(), max_size=3))
    if draw(st.integers(0, 4)) == 0:
        patient["id"] = draw(json_values)
    return patient


def bundle_entry(resource: Any, full_url: str | None = None) -> dict[str, Any]:
    return {"resource": resource, **({"fullUrl": full_url} if full_url else {})}


def deletion_entry(url: Any, last_modified: Any) -> dict[str, Any]:
    return {"request": {"method": "DELETE", "url": url}, "response": {"status": "204", "lastModified": last_modified}}


@st.composite
def containers(draw: Any, depth: int = 0) -> dict[str, Any]:
    """A Bundle or a Parameters holding Patients, demographic Observations, DELETE entries and nested containers."""

    def held() -> Any:
        choice = draw(st.integers(0, 6 if depth < 3 else 4))
        if choice <= 1:
            return full_patient(draw(st.sampled_from(["p1", "p2", " p3 "])))
        if choice == 2:
            return demographic_observation(draw(st.sampled_from(["Patient/p1", "Patient/p2", "urn:uuid:1"])))
        if choice <= 4:
            return draw(resources())
        return draw(containers(depth + 1))

    if draw(st.booleans()):
        entries = []
        for _ in range(draw(st.integers(0, 4))):
            if draw(st.integers(0, 4)) == 0:
                entries.append(
                    deletion_entry(
                        draw(st.sampled_from(EDGE_STRINGS) | json_values),
                        draw(st.sampled_from(EDGE_STRINGS) | json_values),
                    )
                )
            else:
                entries.append(bundle_entry(held(), draw(st.none() | st.sampled_from(["urn:uuid:1", "urn:uuid:2"]))))
        return {
            "resourceType": "Bundle",
            "type": draw(st.sampled_from(["collection", "transaction", "history"])),
            "timestamp": draw(st.sampled_from(EDGE_STRINGS)),
            "entry": entries,
        }

    def parameter(level: int) -> dict[str, Any]:
        item: dict[str, Any] = {"name": "p"}
        if draw(st.booleans()):
            item["resource"] = held()
        if level < 3 and draw(st.booleans()):
            item["part"] = [parameter(level + 1) for _ in range(draw(st.integers(0, 2)))]
        return item

    return {"resourceType": "Parameters", "parameter": [parameter(0) for _ in range(draw(st.integers(0, 3)))]}


# ------------------------------------------------------------------ bytes as a feed delivers them


def as_json(value: Any) -> bytes:
    """JSON text as a sender might write it (stdlib: big integers stay integers, NaN never occurs)."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8")


def as_ndjson(values: list[Any], newline: bytes = b"\n") -> bytes:
    return b"".join(as_json(v) + newline for v in values)


@st.composite
def encodings(draw: Any, values: list[Any]) -> tuple[str, bytes]:
    """(file name, bytes): the values as NDJSON, or one of them as a whole (pretty) document; maybe gzip."""
    if len(values) == 1 and draw(st.booleans()):
        name, data = "doc.json", json.dumps(values[0], indent=draw(st.sampled_from([None, 2]))).encode()
    else:
        name, data = "feed.ndjson", as_ndjson(values, draw(st.sampled_from([b"\n", b"\r\n"])))
    if draw(st.booleans()):
        name, data = name + ".gz", gzip.compress(data, mtime=0)
    return name, data


DEEP = "@@deep@@"


@st.composite
def deep_documents(draw: Any) -> tuple[str, bytes]:
    """(name, bytes): a Patient or a container with one value nested 200 to 1,100 levels deep somewhere (around the
    255 levels orjson writes back and the 1,024 it reads), as text: no encoder writes that deep."""
    document = full_patient("p") if draw(st.booleans()) else draw(containers())
    paths = [p for p in paths_of(document) if "resourceType" not in p]
    path = draw(st.sampled_from(paths))
    _parent(document, path)[path[-1]] = DEEP
    depth = draw(st.integers(200, 1100) | st.sampled_from([126, 127, 252, 253, 254, 255, 1022, 1023, 1024]))
    opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}"), ('[{"url":', "}]")]))
    nested = opener * depth + "1" + closer * depth
    text = nested if draw(st.integers(0, 5)) == 0 else json.dumps(document).replace(json.dumps(DEEP), nested, 1)
    return draw(st.sampled_from(["deep.json", "deep.ndjson"])), text.encode()
