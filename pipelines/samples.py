"""Generates the synthetic sample feed in `samples/` (fixed seed, so the committed files can be re-made byte for byte).

    python -m pipelines.samples --out samples/            # the bundled sample feed
    python -m pipelines.samples --out /tmp/big --scale 50  # a bigger feed for benchmarks

Every patient is fictional. The feed mixes the shapes of contract section 2 (transaction, collection, searchset,
message and document Bundles, nested Bundles, a single resource, Bulk NDJSON, gzip) and the race/ethnicity
encodings of section 4.1, with a few malformed files and records that must end up in rejected_records.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

SEED = 20261123
CDCREC = "urn:oid:2.16.840.1.113883.6.238"
US_CORE_RACE = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race"
US_CORE_ETHNICITY = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity"
NULL_FLAVOR = "http://terminology.hl7.org/CodeSystem/v3-NullFlavor"
LOINC = "http://loinc.org"
RACE_QUESTION = ("72826-1", "Race OMB.1997")  # LOINC question code, display
ETHNICITY_QUESTION = ("69490-1", "Ethnicity OMB.1997")

GIVEN = [
    "Ana",
    "Bao",
    "Chidi",
    "Dana",
    "Elif",
    "Farah",
    "Gabriel",
    "Hana",
    "Ikaika",
    "Jon",
    "Kiona",
    "Layla",
    "Mateo",
    "Nour",
    "Omar",
    "Priya",
    "Quinn",
    "Rosa",
    "Sione",
    "Tomas",
    "Uma",
    "Viet",
    "Wren",
    "Yusuf",
]
FAMILY = [
    "Alvarez",
    "Begay",
    "Chen",
    "Diallo",
    "Evans",
    "Farouk",
    "Garcia",
    "Haddad",
    "Ito",
    "Jones",
    "Kahale",
    "Lopez",
    "Mensah",
    "Nguyen",
    "Okafor",
    "Patel",
    "Reyes",
    "Saleh",
    "Tui",
    "Walker",
]
ZIPS = ["90012", "94110", "95814", "92101", "93721", "95112", "91101", "92805"]
LANGUAGES = ["en", "en-US", "es", "es-MX", "zh", "vi", "ko", "tl", "ar", "fa"]

# (race ombCategory codes, race detailed codes, ethnicity codes, race text, ethnicity text): common profiles.
US_CORE_PROFILES: list[tuple[list[str], list[str], list[str], str, str]] = [
    (["2106-3"], [], ["2186-5"], "White", "Not Hispanic or Latino"),
    (["2106-3"], ["2123-8"], ["2186-5"], "Lebanese", "Not Hispanic or Latino"),
    (["2106-3"], ["2113-9", "2121-2"], ["2186-5"], "Irish and Iranian", "Not Hispanic or Latino"),
    (["2054-5"], [], ["2186-5"], "Black or African American", "Not Hispanic or Latino"),
    (["2028-9"], ["2034-7"], ["2186-5"], "Chinese", "Not Hispanic or Latino"),
    (["2028-9"], ["2047-9"], ["2186-5"], "Vietnamese", "Not Hispanic or Latino"),
    (["2106-3"], [], ["2135-2", "2148-5"], "White", "Mexican"),
    (["2131-1"], [], ["2135-2"], "Other", "Hispanic or Latino"),
    (["1002-5"], ["1382-1"], ["2186-5"], "Navajo", "Not Hispanic or Latino"),
    (["2076-8"], ["2080-0"], ["2186-5"], "Samoan", "Not Hispanic or Latino"),
    (["2054-5", "2106-3"], [], ["2186-5"], "Black and White", "Not Hispanic or Latino"),
    (["2028-9", "2106-3"], ["2039-6"], ["2135-2"], "Japanese, White", "Hispanic"),
]


def _coding(code: str, system: str = CDCREC) -> dict[str, str]:
    return {"system": system, "code": code}


def us_core_race_extensions(
    omb: list[str], detailed: list[str], ethnicity: list[str], race_text: str, ethnicity_text: str, system: str = CDCREC
) -> list[dict[str, Any]]:
    race = [{"url": "ombCategory", "valueCoding": _coding(c, system)} for c in omb]
    race += [{"url": "detailed", "valueCoding": _coding(c, system)} for c in detailed]
    race.append({"url": "text", "valueString": race_text})
    eth = [
        {"url": "ombCategory" if i == 0 else "detailed", "valueCoding": _coding(c, system)}
        for i, c in enumerate(ethnicity)
    ]
    eth.append({"url": "text", "valueString": ethnicity_text})
    return [{"url": US_CORE_RACE, "extension": race}, {"url": US_CORE_ETHNICITY, "extension": eth}]


def declined_extensions() -> list[dict[str, Any]]:
    return [
        {
            "url": US_CORE_RACE,
            "extension": [
                {"url": "ombCategory", "valueCoding": _coding("ASKU", NULL_FLAVOR)},
                {"url": "text", "valueString": "Declined to answer"},
            ],
        },
        {
            "url": US_CORE_ETHNICITY,
            "extension": [
                {"url": "ombCategory", "valueCoding": _coding("ASKU", NULL_FLAVOR)},
                {"url": "text", "valueString": "Declined to answer"},
            ],
        },
    ]


def unknown_extensions() -> list[dict[str, Any]]:
    return [
        {
            "url": US_CORE_RACE,
            "extension": [
                {"url": "ombCategory", "valueCoding": _coding("UNK", NULL_FLAVOR)},
                {"url": "text", "valueString": "Unknown"},
            ],
        }
    ]


def legacy_value_extensions(code: str = "2054-5", text: str = "Black") -> list[dict[str, Any]]:
    """The pre-2017 US Core form: the extension carries a valueCodeableConcept."""
    return [
        {
            "url": US_CORE_RACE,
            "valueCodeableConcept": {"coding": [_coding(code, "http://hl7.org/fhir/v3/Race")], "text": text},
        }
    ]


def bluebutton_extensions(code: str = "4", display: str = "Asian") -> list[dict[str, Any]]:
    return [
        {
            "url": "https://bluebutton.cms.gov/resources/variables/race",
            "valueCoding": {
                "system": "https://bluebutton.cms.gov/resources/variables/race",
                "code": code,
                "display": display,
            },
        }
    ]


def text_only_extensions(text: str = "Middle Eastern") -> list[dict[str, Any]]:
    return [{"url": US_CORE_RACE, "extension": [{"url": "text", "valueString": text}]}]


def race_extensions(rng: random.Random) -> list[dict[str, Any]]:
    """A race/ethnicity encoding drawn with rough real-world frequencies."""
    roll = rng.random()
    if roll < 0.70:
        return us_core_race_extensions(*rng.choice(US_CORE_PROFILES))
    if roll < 0.77:
        return declined_extensions()
    if roll < 0.82:
        return unknown_extensions()
    if roll < 0.86:
        return legacy_value_extensions()
    if roll < 0.89:
        return bluebutton_extensions()
    if roll < 0.92:
        return text_only_extensions()
    return []  # absent


def make_patient(rng: random.Random, patient_id: str | None, last_updated: str) -> dict[str, Any]:
    zip_code = rng.choice(ZIPS)
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "meta": {"lastUpdated": last_updated},
        "extension": race_extensions(rng),
        "identifier": [{"system": "urn:example:mrn", "value": f"MRN{rng.randrange(10**6, 10**7)}"}],
        "name": [{"family": rng.choice(FAMILY), "given": [rng.choice(GIVEN)]}],
        "gender": rng.choice(["female", "male", "female", "male", "other", "unknown"]),
        "birthDate": f"{rng.randrange(1935, 2024)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}",
        "address": [
            {
                "use": "home",
                "line": [f"{rng.randrange(1, 9999)} Example St"],
                "city": "Sampleton",
                "state": "CA",
                "postalCode": zip_code,
            }
        ],
        "communication": [
            {"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": rng.choice(LANGUAGES)}]}, "preferred": True}
        ],
    }
    if patient_id is not None:
        patient["id"] = patient_id
    if not patient["extension"]:
        del patient["extension"]
    return patient


def make_encounter(rng: random.Random, patient_ref: str, n: int) -> dict[str, Any]:
    return {
        "resourceType": "Encounter",
        "id": f"enc-{n}",
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": {"reference": patient_ref},
    }


def race_observation(
    patient_ref: str, n: int, answer: str, question: tuple[str, str] = RACE_QUESTION
) -> dict[str, Any]:
    """Race (or, with ETHNICITY_QUESTION, ethnicity) carried as an Observation with a CDCREC answer."""
    loinc_code, display = question
    return {
        "resourceType": "Observation",
        "id": f"race-obs-{n}",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": loinc_code, "display": display}]},
        "subject": {"reference": patient_ref},
        "valueCodeableConcept": {"coding": [_coding(answer)]},
    }


class FeedWriter:
    """Draws patients with sequential ids so that files are reproducible and ids overlap on purpose."""

    def __init__(self, seed: int, scale: int):
        self.rng = random.Random(seed)
        self.scale = scale
        self.next_id = 0
        self.obs = 0

    def patient(self, last_updated: str = "2026-10-01T08:00:00Z", patient_id: str | None = "auto") -> dict[str, Any]:
        if patient_id == "auto":
            self.next_id += 1
            patient_id = f"pat-{self.next_id:06d}"
        return make_patient(self.rng, patient_id, last_updated)

    def entries(self, count: int, with_clinical: bool) -> list[dict[str, Any]]:
        out = []
        for _ in range(count):
            patient = self.patient()
            full_url = f"urn:uuid:{self.rng.getrandbits(128):032x}"
            out.append(
                {
                    "fullUrl": full_url,
                    "resource": patient,
                    "request": {"method": "PUT", "url": f"Patient/{patient['id']}"},
                }
            )
            if with_clinical:
                self.obs += 1
                out.append(
                    {
                        "fullUrl": f"urn:uuid:{self.rng.getrandbits(128):032x}",
                        "resource": make_encounter(self.rng, full_url, self.obs),
                    }
                )
                if "extension" not in patient and self.rng.random() < 0.6:
                    out.append({"resource": race_observation(f"Patient/{patient['id']}", self.obs, "2106-3")})
        return out


def _bundle(bundle_type: str, entries: list[dict[str, Any]], bundle_id: str) -> dict[str, Any]:
    return {"resourceType": "Bundle", "id": bundle_id, "type": bundle_type, "entry": entries}


def _dump(value: Any, pretty: bool = False) -> bytes:
    return (json.dumps(value, indent=2 if pretty else None, separators=None if pretty else (",", ":")) + "\n").encode()


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def generate(out_dir: str | Path, seed: int = SEED, scale: int = 1) -> list[Path]:
    """Writes the sample feed; returns the files written. `scale` multiplies the patient counts."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    w = FeedWriter(seed, scale)
    files: dict[str, Callable[[], bytes]] = {}

    transaction = _bundle("transaction", w.entries(60 * scale, with_clinical=True), "tx-1")
    transaction["entry"].insert(
        3, {"fullUrl": "urn:uuid:no-resource", "request": {"method": "DELETE", "url": "Patient/gone"}}
    )
    files["transaction-bundle.json"] = lambda: _dump(transaction, pretty=True)

    collection = _bundle("collection", w.entries(40 * scale, with_clinical=False), "col-1")
    files["collection-bundle.json.gz"] = lambda: _gzip(_dump(collection))

    bulk_lines = [_dump(w.patient()) for _ in range(120 * scale)]
    bulk_lines.insert(10, b'{"resourceType":"Patient","id":"pat-trunc","gender":"fem\n')  # truncated line
    bulk_lines.insert(20, _dump({"hello": "this is not FHIR"}))  # non-FHIR JSON
    bulk_lines.insert(30, _dump({"resourceType": "Patient", "gender": "female"}))  # no id, no fullUrl
    odd = w.patient()
    odd["meta"]["lastUpdated"] = "last Tuesday"  # malformed instant
    odd["favoriteColor"] = "teal"  # unknown element
    bulk_lines.insert(40, _dump(odd))
    files["Patient.ndjson"] = lambda: b"".join(bulk_lines)

    searchsets = [_dump(_bundle("searchset", w.entries(8, with_clinical=False), f"ss-{i}")) for i in range(5 * scale)]
    files["searchset-bundles.ndjson.gz"] = lambda: _gzip(b"".join(searchsets))

    inner = _bundle(
        "document",
        [
            {
                "fullUrl": "urn:uuid:composition-1",
                "resource": {
                    "resourceType": "Composition",
                    "status": "final",
                    "type": {"text": "summary"},
                    "title": "Summary",
                    "date": "2026-10-01",
                    "author": [{"display": "Clinic"}],
                },
            }
        ]
        + w.entries(10, with_clinical=False),
        "doc-1",
    )
    message = _bundle(
        "message",
        [
            {
                "fullUrl": "urn:uuid:header-1",
                "resource": {
                    "resourceType": "MessageHeader",
                    "eventCoding": {"code": "admin-notify"},
                    "source": {"endpoint": "urn:example:qhio"},
                },
            },
            {"fullUrl": "urn:uuid:doc-1", "resource": inner},
        ],
        "msg-1",
    )
    files["message-with-document.json"] = lambda: _dump(message, pretty=True)

    # Newer versions of patients already delivered above: latest meta.lastUpdated wins.
    updates = []
    for n in (1, 2, 3, 61, 101):
        newer = make_patient(w.rng, f"pat-{n:06d}", "2026-11-01T09:30:00Z")
        newer["extension"] = us_core_race_extensions(["2106-3"], ["2123-8"], ["2135-2"], "Lebanese", "Hispanic")
        updates.append({"resource": newer})
    older = make_patient(w.rng, "pat-000004", "2020-01-01T00:00:00Z")  # an older version must not win
    updates.append({"resource": older})
    updates.append({"fullUrl": "urn:uuid:6f1c2a44-keyed-by-fullurl", "resource": w.patient(patient_id=None)})
    history = _bundle("history", updates, "hist-1")
    files["history-updates.json"] = lambda: _dump(history, pretty=True)

    files["single-patient.json"] = lambda: _dump(w.patient(), pretty=True)
    files["truncated-bundle.json"] = lambda: _dump(_bundle("batch", w.entries(3, False), "b-1"), pretty=True)[:400]
    files["empty.json"] = lambda: b""
    files["not-fhir.json"] = lambda: _dump({"report": "quarterly", "rows": [1, 2, 3]})
    files["scanner-output.bin"] = lambda: bytes(range(256)) * 4

    # FHIR operations wrap resources in Parameters ($member-match, group submissions): parameters and parts at depth.
    def member_match() -> bytes:
        member = {
            "name": "member",
            "part": [
                {"name": "MemberPatient", "resource": w.patient()},
                {"name": "CoverageToMatch", "resource": {"resourceType": "Coverage", "status": "active"}},
            ],
        }
        group = {
            "name": "group",
            "part": [
                {"name": "members", "resource": _bundle("collection", w.entries(3, with_clinical=False), "grp-1")}
            ],
        }
        return _dump(
            {
                "resourceType": "Parameters",
                "parameter": [{"name": "MemberPatient", "resource": w.patient()}, member, group],
            },
            pretty=True,
        )

    files["member-match-parameters.json"] = member_match
    # A Bulk export's `deleted` output: transaction Bundles of DELETE entries (no time: deleted at ingestion).
    files["deleted.ndjson"] = lambda: (
        _dump(
            _bundle(
                "transaction",
                [{"request": {"method": "DELETE", "url": f"Patient/pat-{n:06d}"}} for n in (5, 62)],
                "del-1",
            )
        )
        + b"\n"
    )

    written = []
    for name, make in files.items():
        path = out / name
        path.write_bytes(make())
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder to write the feed into")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--scale", type=int, default=1, help="multiply patient counts (benchmarks)")
    args = parser.parse_args(argv)
    files = generate(args.out, args.seed, args.scale)
    print(f"wrote {len(files)} files to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
