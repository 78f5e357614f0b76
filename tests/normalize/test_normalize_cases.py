"""Table-driven classification cases: each id names the rule (contract 4.x / docs/classification.md) and the encoding."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from pipelines.normalize import load_policy, normalize_patient

CDC = "urn:oid:2.16.840.1.113883.6.238"
NULLFLAVOR = "http://terminology.hl7.org/CodeSystem/v3-NullFlavor"
DAR = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
LOINC = "http://loinc.org"
RACE_URL = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race"
ETH_URL = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity"
BB_URL = "https://bluebutton.cms.gov/resources/variables/race"
IBM_URL = "http://ibm.com/fhir/cdm/StructureDefinition/local-race-cd"
RS_URL = "https://reportstream.cdc.gov/fhir/StructureDefinition/ethnic-group"


def coding(code: Any, system: str | None = CDC) -> dict[str, Any]:
    out: dict[str, Any] = {"code": code}
    if system is not None:
        out["system"] = system
    return out


def _as_coding(value: Any, system: str | None) -> Any:
    return coding(value, system) if isinstance(value, str) else value


def complex_ext(url: str, cats=(), detailed=(), text=None, system: str | None = CDC) -> dict[str, Any]:
    subs = [{"url": "ombCategory", "valueCoding": _as_coding(c, system)} for c in cats]
    subs += [{"url": "detailed", "valueCoding": _as_coding(c, system)} for c in detailed]
    if text is not None:
        subs.append({"url": "text", "valueString": text})
    return {"url": url, "extension": subs}


def race(*cats, detailed=(), text=None, system: str | None = CDC) -> dict[str, Any]:
    return complex_ext(RACE_URL, cats, detailed, text, system)


def eth(*cats, detailed=(), text=None, system: str | None = CDC) -> dict[str, Any]:
    return complex_ext(ETH_URL, cats, detailed, text, system)


def value_ext(url: str, *codings: dict[str, Any], text: str | None = None) -> dict[str, Any]:
    cc: dict[str, Any] = {"coding": list(codings)}
    if text is not None:
        cc["text"] = text
    return {"url": url, "valueCodeableConcept": cc}


def patient(*extensions: dict[str, Any], **fields: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"resourceType": "Patient", "id": "p1"}
    if extensions:
        out["extension"] = list(extensions)
    out.update(fields)
    return out


def obs(question: str, *answers: dict[str, Any], text: str | None = None, **fields: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": question}]},
    }
    if answers or text is not None:
        cc: dict[str, Any] = {"coding": list(answers)}
        if text is not None:
            cc["text"] = text
        out["valueCodeableConcept"] = cc
    out.update(fields)
    return out


ASKU = coding("ASKU", NULLFLAVOR)
UNK = coding("UNK", NULLFLAVOR)
DECLINED = coding("asked-declined", DAR)


@dataclasses.dataclass
class Case:
    id: str
    patient: dict[str, Any]
    expect: dict[str, Any]
    observations: tuple[dict[str, Any], ...] = ()
    policy: dict[str, Any] = dataclasses.field(default_factory=dict)
    warnings: tuple[str, ...] = ()  # must be present
    absent_warnings: tuple[str, ...] = ()  # must not be present


def cat(category: str, categories: list[str] | None = None, **more: Any) -> dict[str, Any]:
    """Expected omb2024 fields (categories default to [category] for one of the seven)."""
    if categories is None:
        categories = [category] if category in ("AIAN", "ASIAN", "BLACK", "HISPANIC", "MENA", "NHPI", "WHITE") else []
    return {"omb2024_category": category, "omb2024_categories": categories, **more}


CASES = [
    # ---- 4.2.1 roll-up through the CDCREC hierarchy
    Case("rollup--us-core-detailed-irish", patient(race(detailed=["2113-9"])), cat("WHITE", hedis_race="White")),
    Case(
        "rollup--us-core-level4-chiricahua",
        patient(race(detailed=["1011-6"])),
        cat("AIAN", hedis_race="AmericanIndianOrAlaskaNative"),
    ),
    Case("rollup--us-core-alaskan-village-under-catawba", patient(race(detailed=["1741-8"])), cat("AIAN")),
    Case("rollup--us-core-detailed-chinese", patient(race(detailed=["2034-7"])), cat("ASIAN", hedis_race="Asian")),
    Case(
        "rollup--us-core-detailed-nigerian",
        patient(race(detailed=["2065-1"])),
        cat("BLACK", hedis_race="BlackOrAfricanAmerican"),
    ),
    Case(
        "rollup--us-core-detailed-samoan",
        patient(race(detailed=["2080-0"])),
        cat("NHPI", hedis_race="NativeHawaiianOrOtherPacificIslander"),
    ),
    Case(
        "rollup--us-core-ethnicity-detailed-mexican",
        patient(eth(detailed=["2148-5"])),
        cat("HISPANIC", hedis_race="Unknown", hedis_ethnicity="HispanicOrLatino"),
    ),
    Case("rollup--us-core-dominican-race-is-black", patient(race(detailed=["2069-3"])), cat("BLACK")),
    Case("rollup--us-core-dominican-ethnicity-is-hispanic", patient(eth(detailed=["2184-0"])), cat("HISPANIC")),
    Case("rollup--us-core-mexican-american-indian-race", patient(race(detailed=["1072-8"])), cat("AIAN")),
    Case(
        "rollup--us-core-codes-listed",
        patient(race("2106-3", detailed=["2113-9"]), eth("2135-2", detailed=["2148-5"])),
        {"race_detailed_codes": ["2106-3", "2113-9"], "ethnicity_detailed_codes": ["2135-2", "2148-5"]},
    ),
    # ---- 4.2.2 MENA
    Case("mena--us-core-2118-8", patient(race(detailed=["2118-8"])), cat("MENA", hedis_race="White")),
    Case(
        "mena--us-core-white-plus-lebanese-is-mena-alone",
        patient(race("2106-3", detailed=["2123-8"], text="Lebanese")),
        cat("MENA", hedis_race="White"),
    ),
    Case(
        "mena--us-core-irish-plus-lebanese-keeps-both",
        patient(race("2106-3", detailed=["2113-9", "2123-8"])),
        cat("MULTIRACIAL_MULTIETHNIC", ["MENA", "WHITE"], hedis_race="White"),
    ),
    Case("mena--us-core-arab", patient(race(detailed=["2129-5"])), cat("MENA")),
    Case("mena--us-core-white-plus-arab", patient(race("2106-3", detailed=["2129-5"])), cat("MENA")),
    Case(
        "mena--policy-arab-not-mena",
        patient(race("2106-3", detailed=["2129-5"])),
        cat("WHITE"),
        policy={"arab_as_mena": False},
    ),
    Case("mena--us-core-afghanistani", patient(race(detailed=["2126-1"])), cat("MENA")),
    Case(
        "mena--policy-afghanistani-asian",
        patient(race(detailed=["2126-1"])),
        cat("ASIAN"),
        policy={"afghanistani_category": "ASIAN"},
    ),
    Case(
        "mena--policy-white-plus-afghanistani-asian-is-asian-alone",
        patient(race("2106-3", detailed=["2126-1"])),
        cat("ASIAN"),
        policy={"afghanistani_category": "ASIAN"},
    ),
    Case("mena--us-core-armenian-stays-white", patient(race(detailed=["2109-7"])), cat("WHITE")),
    Case(
        "mena--policy-armenian-mena",
        patient(race(detailed=["2109-7"])),
        cat("MENA"),
        policy={"armenian_category": "MENA"},
    ),
    Case(
        "mena--policy-white-only-mena-detail-keeps-white",
        patient(race("2106-3", detailed=["2123-8"])),
        cat("MULTIRACIAL_MULTIETHNIC", ["MENA", "WHITE"]),
        policy={"white_with_only_mena_detail_is_mena": False},
    ),
    Case("mena--us-core-white-alone", patient(race("2106-3")), cat("WHITE")),
    Case(
        "mena--us-core-white-european-lebanese",
        patient(race("2106-3", detailed=["2108-9", "2123-8"])),
        cat("MULTIRACIAL_MULTIETHNIC", ["MENA", "WHITE"]),
    ),
    Case("mena--us-core-israeili", patient(race(detailed=["2127-9"])), cat("MENA")),
    Case(
        "mena--text-only-middle-eastern",
        patient(race(text="Middle Eastern")),
        cat("MENA", race_source_format="text-only"),
    ),
    Case(
        "mena--white-lebanese-and-black-keeps-no-white",
        patient(race("2106-3", "2054-5", detailed=["2123-8"])),
        cat("MULTIRACIAL_MULTIETHNIC", ["BLACK", "MENA"], hedis_race="TwoOrMoreRaces"),
    ),
    # ---- 4.2.3 Hispanic
    Case(
        "hispanic--us-core-ethnicity-category",
        patient(eth("2135-2")),
        cat("HISPANIC", hedis_ethnicity="HispanicOrLatino"),
    ),
    Case(
        "hispanic--us-core-in-race-slot",
        patient(race("2135-2")),
        cat(
            "HISPANIC",
            hedis_race="Unknown",
            hedis_ethnicity="HispanicOrLatino",
            ethnicity_detailed_codes=["2135-2"],
            race_detailed_codes=[],
        ),
        warnings=("hispanic_in_race_slot",),
    ),
    Case(
        "hispanic--us-core-race-slot-vs-not-hispanic",
        patient(race("2135-2"), eth("2186-5")),
        cat("HISPANIC", hedis_ethnicity="HispanicOrLatino"),
        warnings=("hispanic_in_race_slot", "hispanic_conflict"),
    ),
    Case(
        "hispanic--us-core-white-not-hispanic",
        patient(race("2106-3"), eth("2186-5")),
        cat("WHITE", hedis_ethnicity="NotHispanicOrLatino"),
    ),
    Case(
        "hispanic--us-core-white-plus-hispanic-is-multi",
        patient(race("2106-3"), eth("2135-2")),
        cat("MULTIRACIAL_MULTIETHNIC", ["HISPANIC", "WHITE"], hedis_race="White", hedis_ethnicity="HispanicOrLatino"),
    ),
    Case(
        "hispanic--us-core-not-hispanic-alone-adds-nothing",
        patient(eth("2186-5")),
        cat("UNKNOWN", hedis_ethnicity="NotHispanicOrLatino", race_ethnicity_status="unknown"),
    ),
    Case(
        "hispanic--us-core-not-hispanic-in-race-slot",
        patient(race("2186-5")),
        cat("UNKNOWN", hedis_ethnicity="NotHispanicOrLatino"),
        warnings=("not_hispanic_in_race_slot",),
    ),
    Case(
        "hispanic--us-core-race-code-in-ethnicity-slot",
        patient(eth("2106-3")),
        cat("WHITE", hedis_race="White"),
        warnings=("race_code_in_ethnicity_slot",),
    ),
    # ---- 4.2.3 codes decide; text read only for a question with no coding
    Case(
        "codes-decide--us-core-text-contradicts-code",
        patient(race("2054-5", text="White")),
        cat("BLACK", race_text="White"),
        warnings=("text_conflicts_with_codes",),
    ),
    Case(
        "codes-decide--us-core-null-flavor-is-a-coding",
        patient(race(UNK, text="White")),
        cat("UNKNOWN"),
        absent_warnings=("text_conflicts_with_codes",),
    ),
    Case(
        "codes-decide--us-core-not-hispanic-does-not-silence-text",
        patient(eth("2186-5", text="Hispanic")),
        cat("HISPANIC", hedis_ethnicity="HispanicOrLatino"),
        warnings=("hispanic_conflict",),
    ),
    Case(
        "codes-decide--unknown-system-coding-lets-text-decide",
        patient(race(coding("W", "http://example.org/race"), text="White")),
        cat("WHITE"),
        warnings=("unknown_code_system",),
    ),
    Case(
        "codes-decide--matching-text-no-warning",
        patient(race("2106-3", detailed=["2123-8"], text="White, Lebanese")),
        cat("MENA"),
        absent_warnings=("text_conflicts_with_codes",),
    ),
    Case(
        "text--race-text-only-black",
        patient(race(text="Black or African American")),
        cat("BLACK", race_source_format="text-only", race_detailed_codes=["2054-5"]),
    ),
    Case(
        "text--ethnicity-text-only-ombs-wording",
        patient(eth(text="Hispanic, Latino/a, or Spanish origin")),
        cat("HISPANIC"),
    ),
    Case("text--race-text-two-parts", patient(race(text="White, Irish")), cat("WHITE")),
    Case(
        "text--race-text-white-and-black",
        patient(race(text="White and Black")),
        cat("MULTIRACIAL_MULTIETHNIC", ["BLACK", "WHITE"], hedis_race="TwoOrMoreRaces"),
    ),
    Case(
        "text--hispanic-in-race-text",
        patient(race(text="Hispanic")),
        cat("HISPANIC", hedis_race="Unknown"),
        warnings=("hispanic_in_race_slot",),
    ),
    Case("text--caucasian", patient(race(text="Caucasian")), cat("WHITE", race_text="Caucasian")),
    Case(
        "text--non-hispanic-white",
        patient(race(text="Non-Hispanic White")),
        cat("WHITE", hedis_ethnicity="NotHispanicOrLatino"),
    ),
    Case(
        "text--policy-never-read-text",
        patient(race(text="White")),
        cat("UNKNOWN", race_text="White"),
        policy={"read_text_when_uncoded": False},
        warnings=("text_ignored_by_policy",),
    ),
    Case(
        "text--codeable-concept-text-of-legacy-value",
        patient(value_ext(RACE_URL, text="Asian")),
        cat("ASIAN", race_source_format="text-only"),
    ),
    # ---- 4.2.4 Other and unmappable
    Case(
        "other--us-core-2131-1",
        patient(race("2131-1")),
        cat("SOME_OTHER", hedis_race="SomeOtherRace", race_ethnicity_status="reported"),
    ),
    Case("other--text-other", patient(race(text="Other")), cat("SOME_OTHER", hedis_race="SomeOtherRace")),
    Case(
        "other--text-some-other-race",
        patient(race(text="Some other race")),
        cat("SOME_OTHER", hedis_race="SomeOtherRace"),
    ),
    Case(
        "other--text-unmapped",
        patient(race(text="Martian")),
        cat(
            "SOME_OTHER",
            hedis_race="Unknown",
            race_text="Martian",
            race_ethnicity_status="reported",
            unmapped_text_only=True,
        ),
        warnings=("race_text_unmapped",),
    ),
    Case(
        "other--text-unmapped-ethnicity",
        patient(eth(text="Martian")),
        cat("SOME_OTHER", unmapped_text_only=True),
        warnings=("ethnicity_text_unmapped",),
    ),
    Case(
        "other--text-ambiguous-is-unmapped-text-only",
        patient(race(text="Indian")),
        cat("SOME_OTHER", unmapped_text_only=True),
        warnings=("text_ambiguous",),
    ),
    Case(
        "other--text-unmapped-with-not-hispanic-code",
        patient(race(text="Martian"), eth("2186-5")),
        cat("SOME_OTHER", unmapped_text_only=True, hedis_ethnicity="NotHispanicOrLatino"),
    ),
    Case(
        "other--text-unmapped-plus-category-is-complete",
        patient(race(text="Martian"), eth("2135-2")),
        cat("HISPANIC", unmapped_text_only=False),
    ),
    Case(
        "other--2131-1-plus-unmapped-text-counts",
        patient(race("2131-1"), eth(text="Martian")),
        cat("SOME_OTHER", unmapped_text_only=False),
    ),
    Case(
        "other--multiracial-text-is-not-unmapped",
        patient(race(text="Multiracial")),
        cat("SOME_OTHER", unmapped_text_only=False),
    ),
    Case(
        "other--policy-unmapped-text-some-other",
        patient(race(text="Martian")),
        cat("SOME_OTHER", hedis_race="SomeOtherRace"),
        policy={"unmapped_race_text": "SomeOtherRace"},
    ),
    Case(
        "other--us-core-other-plus-white", patient(race("2106-3", "2131-1")), cat("WHITE", hedis_race="TwoOrMoreRaces")
    ),
    Case(
        "other--policy-other-plus-one-is-that-one",
        patient(race("2106-3", "2131-1")),
        cat("WHITE", hedis_race="White"),
        policy={"other_plus_one_is_two_or_more": False},
    ),
    Case(
        "other--us-core-other-plus-hispanic",
        patient(race("2131-1"), eth("2135-2")),
        cat("HISPANIC", hedis_race="SomeOtherRace"),
    ),
    Case(
        "other--us-core-oth-null-flavor",
        patient(race(coding("OTH", NULLFLAVOR))),
        cat("SOME_OTHER", hedis_race="SomeOtherRace"),
        warnings=("null_flavor_oth_as_other_race",),
    ),
    Case(
        "other--text-dominican-ambiguous",
        patient(race(text="Dominican")),
        cat("SOME_OTHER"),
        warnings=("text_ambiguous",),
    ),
    Case(
        "other--text-multiracial",
        patient(race(text="Multiracial")),
        cat("SOME_OTHER", hedis_race="TwoOrMoreRaces"),
        warnings=("text_multiple_unspecified",),
    ),
    Case(
        "other--policy-multiracial-text-some-other",
        patient(race(text="Multiracial")),
        cat("SOME_OTHER", hedis_race="SomeOtherRace"),
        policy={"multiple_unspecified_race": "SomeOtherRace"},
    ),
    Case(
        "other--ethnicity-text-unmapped",
        patient(eth(text="Klingon")),
        cat("SOME_OTHER", hedis_ethnicity="Unknown", hedis_race="Unknown"),
        warnings=("ethnicity_text_unmapped",),
    ),
    # ---- 4.2.5 declined vs unknown
    Case(
        "declined--us-core-race-asku",
        patient(race(ASKU, text="Asked but no answer")),
        cat("DECLINED", race_ethnicity_status="declined", hedis_race="AskedButNoAnswer", hedis_ethnicity="Unknown"),
    ),
    Case(
        "declined--us-core-ethnicity-asked-declined",
        patient(eth(DECLINED)),
        cat("DECLINED", hedis_ethnicity="AskedButNoAnswer", hedis_race="Unknown"),
    ),
    Case(
        "unknown--dar-asked-unknown",
        patient(race(coding("asked-unknown", DAR))),
        cat("UNKNOWN", race_ethnicity_status="unknown", hedis_race="Unknown"),
    ),
    Case(
        "unknown--dar-asked-unknown-whatever-the-asku-switch",
        patient(eth(coding("asked-unknown", DAR))),
        cat("UNKNOWN", hedis_ethnicity="Unknown"),
        policy={"asked_unknown_is_declined": True},
    ),
    Case(
        "declined--policy-asku-is-unknown",
        patient(race(ASKU)),
        cat("UNKNOWN", hedis_race="Unknown"),
        policy={"asked_unknown_is_declined": False},
    ),
    Case(
        "unknown--us-core-unk-both",
        patient(race(UNK), eth(UNK)),
        cat("UNKNOWN", race_ethnicity_status="unknown", hedis_race="Unknown", hedis_ethnicity="Unknown"),
    ),
    Case("unknown--absent", patient(), cat("UNKNOWN", race_source_format="absent", hedis_race="Unknown")),
    Case("unknown--empty-text", patient(race(text="")), cat("UNKNOWN")),
    Case("unknown--dar-unknown", patient(race(coding("unknown", DAR))), cat("UNKNOWN")),
    Case("unknown--nullflavor-nask", patient(race(coding("NASK", NULLFLAVOR))), cat("UNKNOWN")),
    Case(
        "declined--text-patient-declined",
        patient(race(text="Patient declined")),
        cat("DECLINED", hedis_race="AskedButNoAnswer"),
    ),
    Case(
        "declined--text-refused-ethnicity-race-unk",
        patient(race(UNK), eth(text="Refused")),
        cat("DECLINED", hedis_ethnicity="AskedButNoAnswer"),
    ),
    Case(
        "declined--text-choose-not-to-answer",
        patient(race(text="I choose not to answer this question")),
        cat("DECLINED"),
    ),
    Case("declined--race-declined-ethnicity-unknown", patient(race(ASKU), eth(UNK)), cat("DECLINED")),
    Case(
        "complete--white-with-ethnicity-declined",
        patient(race("2106-3"), eth(DECLINED)),
        cat("WHITE", hedis_ethnicity="AskedButNoAnswer"),
    ),
    Case(
        "complete--hispanic-with-race-declined",
        patient(race(ASKU), eth("2135-2")),
        cat("HISPANIC", hedis_race="AskedButNoAnswer"),
    ),
    Case(
        "declined--us-core-23-null-flavor-with-category",
        patient(race(ASKU, "2106-3")),
        cat("WHITE", hedis_race="White"),
        warnings=("null_flavor_with_category",),
    ),
    Case("other--other-race-with-ethnicity-declined", patient(race("2131-1"), eth(DECLINED)), cat("SOME_OTHER")),
    # ---- 4.2.6 two or more
    Case(
        "multi--us-core-white-black",
        patient(race("2106-3", "2054-5")),
        cat("MULTIRACIAL_MULTIETHNIC", ["BLACK", "WHITE"], hedis_race="TwoOrMoreRaces"),
    ),
    Case(
        "multi--us-core-asian-nhpi-hispanic",
        patient(race("2028-9", "2076-8"), eth("2135-2")),
        cat("MULTIRACIAL_MULTIETHNIC", ["ASIAN", "HISPANIC", "NHPI"], hedis_race="TwoOrMoreRaces"),
    ),
    Case(
        "multi--us-core-two-asian-details-one-category",
        patient(race(detailed=["2034-7", "2039-6"])),
        cat("ASIAN", hedis_race="Asian"),
    ),
    # ---- 4.3 HEDIS
    Case("hedis--hispanic-only-race-unknown", patient(eth("2135-2")), cat("HISPANIC", hedis_race="Unknown")),
    Case(
        "hedis--policy-hispanic-only-some-other-race",
        patient(eth("2135-2")),
        cat("HISPANIC", hedis_race="SomeOtherRace"),
        policy={"hispanic_only_race": "SomeOtherRace"},
    ),
    Case(
        "hedis--hispanic-only-race-declined",
        patient(race(ASKU), eth("2135-2")),
        cat("HISPANIC", hedis_race="AskedButNoAnswer"),
        policy={"hispanic_only_race": "SomeOtherRace"},
    ),
    Case("hedis--mena-is-white", patient(race(detailed=["2121-2"])), cat("MENA", hedis_race="White")),
    Case(
        "hedis--ethnicity-declined-only",
        patient(eth(ASKU)),
        cat("DECLINED", hedis_ethnicity="AskedButNoAnswer", hedis_race="Unknown"),
    ),
    # ---- 4.1 code systems
    Case(
        "system--phraceandethnicitycdc",
        patient(race("2106-3", system="http://terminology.hl7.org/CodeSystem/PHRaceAndEthnicityCDC")),
        cat("WHITE"),
        absent_warnings=("system_uri_repaired",),
    ),
    Case(
        "system--v2-0005-uri",
        patient(race("2054-5", system="http://terminology.hl7.org/CodeSystem/v2-0005")),
        cat("BLACK"),
    ),
    Case("system--fhir-v3-race", patient(race("2028-9", system="http://hl7.org/fhir/v3/Race")), cat("ASIAN")),
    Case(
        "system--tho-v3-race",
        patient(race("2076-8", system="http://terminology.hl7.org/CodeSystem/v3-Race")),
        cat("NHPI"),
    ),
    Case(
        "system--tho-v3-ethnicity",
        patient(eth("2135-2", system="http://terminology.hl7.org/CodeSystem/v3-Ethnicity")),
        cat("HISPANIC"),
    ),
    Case(
        "system--missing-system-repaired",
        patient(race("2106-3", system=None)),
        cat("WHITE"),
        warnings=("system_missing_repaired",),
    ),
    Case(
        "system--policy-missing-system-ignored",
        patient(race("2106-3", system=None)),
        cat("UNKNOWN"),
        policy={"repair_missing_system": False},
        warnings=("system_missing_ignored",),
    ),
    Case(
        "system--cdcrec-code-under-loinc-is-not-race",
        patient(race("2106-3", system=LOINC)),
        cat("UNKNOWN", race_detailed_codes=[]),
        warnings=("cdcrec_code_under_loinc",),
    ),
    Case(
        "system--unknown-system-ignored",
        patient(race("2106-3", system="http://example.org/race")),
        cat("UNKNOWN"),
        warnings=("unknown_code_system",),
    ),
    Case(
        "system--bare-oid-repaired",
        patient(race("2106-3", system="2.16.840.1.113883.6.238")),
        cat("WHITE"),
        warnings=("system_uri_repaired",),
    ),
    Case(
        "system--valueset-url-as-system",
        patient(race("2106-3", system="http://hl7.org/fhir/us/core/ValueSet/omb-race-category")),
        cat("WHITE"),
        warnings=("system_uri_repaired",),
    ),
    Case(
        "system--https-and-case-repaired",
        patient(race("2106-3", system="HTTPS://terminology.hl7.org/CodeSystem/v3-Race/")),
        cat("WHITE"),
        warnings=("system_uri_repaired",),
    ),
    Case(
        "system--cdcrec-code-under-nullflavor-system",
        patient(race("2106-3", system=NULLFLAVOR)),
        cat("WHITE"),
        warnings=("code_system_mismatch",),
    ),
    Case(
        "code--missing-check-digit-dash",
        patient(race("21063")),
        cat("WHITE", race_detailed_codes=["2106-3"]),
        warnings=("code_format_repaired",),
    ),
    Case("code--surrounding-blanks", patient(race(" 2106-3 ")), cat("WHITE"), warnings=("code_format_repaired",)),
    Case("code--unknown-cdcrec-code", patient(race("9999-9")), cat("UNKNOWN"), warnings=("unknown_code",)),
    Case("code--abstract-root", patient(race("1000-9")), cat("UNKNOWN"), warnings=("abstract_root_code",)),
    Case(
        "code--detailed-code-in-category-slot",
        patient(race("2113-9")),
        cat("WHITE"),
        warnings=("detailed_code_in_category_slot",),
    ),
    Case(
        "nullflavor--lower-case-asku",
        patient(race(coding("asku", NULLFLAVOR))),
        cat("DECLINED"),
        warnings=("code_format_repaired",),
    ),
    Case(
        "nullflavor--asku-without-system",
        patient(race(coding("ASKU", None))),
        cat("DECLINED"),
        warnings=("system_missing_repaired",),
    ),
    # ---- 4.1 encodings
    Case(
        "encoding--us-core-legacy-value",
        patient(value_ext(RACE_URL, coding("2106-3"))),
        cat("WHITE", race_source_format="us-core-legacy-value"),
    ),
    Case(
        "encoding--pre-2017-url-value",
        patient(value_ext("http://hl7.org/fhir/StructureDefinition/us-core-race", coding("2054-5"))),
        cat("BLACK", race_source_format="us-core-legacy-value"),
    ),
    Case(
        "encoding--pre-2017-url-ethnicity-value",
        patient(value_ext("http://hl7.org/fhir/StructureDefinition/us-core-ethnicity", coding("2135-2"))),
        cat("HISPANIC"),
    ),
    Case(
        "encoding--dstu2-race",
        patient(value_ext("http://hl7.org/fhir/Profile/us-core#race", coding("2106-3", "http://hl7.org/fhir/v3/Race"))),
        cat("WHITE", race_source_format="us-core-dstu2"),
    ),
    Case(
        "encoding--dstu2-ethnicity",
        patient(
            value_ext(
                "http://hl7.org/fhir/Profile/us-core#ethnicity", coding("2135-2", "http://hl7.org/fhir/v3/Ethnicity")
            )
        ),
        cat("HISPANIC", race_source_format="us-core-dstu2"),
    ),
    Case(
        "encoding--argonaut-complex",
        patient(complex_ext("http://fhir.org/guides/argonaut/StructureDefinition/argo-race", ["2028-9"])),
        cat("ASIAN", race_source_format="argonaut"),
    ),
    Case(
        "encoding--legacy-value-code",
        patient({"url": RACE_URL, "valueCode": "2106-3"}),
        cat("WHITE"),
        warnings=("system_missing_repaired",),
    ),
    Case(
        "cms--bluebutton-1-white",
        patient({"url": BB_URL, "valueCoding": coding("1", BB_URL)}),
        cat("WHITE", race_source_format="cms-bluebutton", hedis_ethnicity="Unknown"),
    ),
    Case("cms--bluebutton-2-black", patient({"url": BB_URL, "valueCoding": coding("2", BB_URL)}), cat("BLACK")),
    Case(
        "cms--bluebutton-3-other",
        patient({"url": BB_URL, "valueCoding": coding("3", BB_URL)}),
        cat("SOME_OTHER", hedis_race="SomeOtherRace"),
    ),
    Case("cms--bluebutton-4-asian", patient({"url": BB_URL, "valueCoding": coding("4", BB_URL)}), cat("ASIAN")),
    Case(
        "cms--bluebutton-5-hispanic",
        patient({"url": BB_URL, "valueCoding": coding("5", BB_URL)}),
        cat("HISPANIC", hedis_race="Unknown", hedis_ethnicity="HispanicOrLatino"),
        absent_warnings=("hispanic_in_race_slot",),
    ),
    Case(
        "cms--bluebutton-6-north-american-native",
        patient({"url": BB_URL, "valueCoding": coding("6", BB_URL)}),
        cat("AIAN"),
    ),
    Case(
        "cms--bluebutton-0-unknown",
        patient({"url": BB_URL, "valueCoding": coding("0", BB_URL)}),
        cat("UNKNOWN", race_source_format="cms-bluebutton"),
    ),
    Case(
        "cms--bluebutton-integer-code",
        patient({"url": BB_URL, "valueCoding": {"system": BB_URL, "code": 1}}),
        cat("WHITE"),
        warnings=("code_not_string",),
    ),
    Case("cms--bluebutton-no-system", patient({"url": BB_URL, "valueCoding": {"code": "2"}}), cat("BLACK")),
    Case(
        "hl7v2--ibm-local-race-cdcrec",
        patient(value_ext(IBM_URL, coding("2106-3", "http://terminology.hl7.org/CodeSystem/v2-0005"))),
        cat("WHITE", race_source_format="hl7v2-converter"),
    ),
    Case(
        "hl7v2--ibm-local-race-hl70005-name",
        patient(value_ext(IBM_URL, coding("2028-9", "HL70005"))),
        cat("ASIAN"),
        warnings=("system_uri_repaired",),
    ),
    Case(
        "hl7v2--reportstream-ethnic-group-h",
        patient(value_ext(RS_URL, coding("H", "http://terminology.hl7.org/CodeSystem/v2-0189"))),
        cat("HISPANIC", hedis_ethnicity="HispanicOrLatino", race_source_format="hl7v2-converter"),
    ),
    Case(
        "hl7v2--reportstream-ethnic-group-n",
        patient(value_ext(RS_URL, coding("N", "http://terminology.hl7.org/CodeSystem/v2-0189"))),
        cat("UNKNOWN", hedis_ethnicity="NotHispanicOrLatino"),
    ),
    Case(
        "hl7v2--reportstream-ethnic-group-u",
        patient(value_ext(RS_URL, coding("U", "http://terminology.hl7.org/CodeSystem/v2-0189"))),
        cat("UNKNOWN", hedis_ethnicity="Unknown"),
    ),
    Case(
        "hl7v2--reportstream-cdcrec-under-0189",
        patient(value_ext(RS_URL, coding("2135-2", "http://terminology.hl7.org/CodeSystem/v2-0189"))),
        cat("HISPANIC"),
        warnings=("code_system_mismatch",),
    ),
    Case(
        "hl7v2--legacy-letter-b",
        patient(value_ext(IBM_URL, coding("B", "http://terminology.hl7.org/CodeSystem/v2-0005"))),
        cat("BLACK"),
        warnings=("v2_legacy_race_code",),
    ),
    Case(
        "hl7v2--legacy-letter-r-oriental",
        patient(value_ext(IBM_URL, coding("R", "http://terminology.hl7.org/CodeSystem/v2-0005"))),
        cat("ASIAN"),
        warnings=("v2_oriental_as_asian",),
    ),
    Case(
        "hl7v2--legacy-letter-h-is-hispanic",
        patient(value_ext(IBM_URL, coding("H", "http://terminology.hl7.org/CodeSystem/v2-0005"))),
        cat("HISPANIC", hedis_race="Unknown"),
    ),
    Case(
        "hl7v2--policy-legacy-letters-ignored",
        patient(value_ext(IBM_URL, coding("C", "http://terminology.hl7.org/CodeSystem/v2-0005"))),
        cat("UNKNOWN"),
        policy={"map_legacy_v2_letters": False},
        warnings=("v2_legacy_code_ignored",),
    ),
    Case(
        "encoding--two-sources-merged",
        patient(race("2106-3"), {"url": BB_URL, "valueCoding": coding("2", BB_URL)}),
        cat("MULTIRACIAL_MULTIETHNIC", ["BLACK", "WHITE"], race_source_format="cms-bluebutton+us-core"),
        warnings=("multiple_race_sources",),
    ),
    Case(
        "encoding--unrecognized-race-extension",
        patient({"url": "http://example.org/fhir/race", "valueString": "White"}),
        cat("UNKNOWN"),
        warnings=("unrecognized_race_extension",),
    ),
    Case(
        "encoding--empty-us-core-extension",
        patient({"url": RACE_URL, "extension": []}),
        cat("UNKNOWN", race_source_format="absent"),
        warnings=("empty_race_extension",),
    ),
    # ---- 4.3 Observations
    Case(
        "obs--72826-1-cdcrec-answer",
        patient(),
        cat("WHITE", race_source_format="observation"),
        observations=(obs("72826-1", coding("2106-3")),),
    ),
    Case("obs--69490-1-cdcrec-answer", patient(), cat("HISPANIC"), observations=(obs("69490-1", coding("2135-2")),)),
    Case(
        "obs--32624-9-v3-race-answer",
        patient(),
        cat("ASIAN"),
        observations=(obs("32624-9", coding("2028-9", "http://terminology.hl7.org/CodeSystem/v3-Race")),),
    ),
    Case(
        "obs--46463-6-la-hispanic",
        patient(),
        cat("HISPANIC", hedis_ethnicity="HispanicOrLatino"),
        observations=(obs("46463-6", coding("LA6214-6", LOINC)),),
    ),
    Case("obs--46463-6-la-white", patient(), cat("WHITE"), observations=(obs("46463-6", coding("LA4457-3", LOINC)),)),
    Case(
        "obs--46463-6-la-unknown", patient(), cat("UNKNOWN"), observations=(obs("46463-6", coding("LA4489-6", LOINC)),)
    ),
    Case("obs--56051-6-yes", patient(), cat("HISPANIC"), observations=(obs("56051-6", coding("LA33-6", LOINC)),)),
    Case(
        "obs--56051-6-no",
        patient(),
        cat("UNKNOWN", hedis_ethnicity="NotHispanicOrLatino"),
        observations=(obs("56051-6", coding("LA32-8", LOINC)),),
    ),
    Case(
        "obs--56051-6-choose-not-to-answer",
        patient(),
        cat("DECLINED", hedis_ethnicity="AskedButNoAnswer"),
        observations=(obs("56051-6", coding("LA30122-8", LOINC)),),
    ),
    Case(
        "obs--la-chinese-detail",
        patient(),
        cat("ASIAN", race_detailed_codes=["2034-7"]),
        observations=(obs("69855-5", coding("LA4168-6", LOINC)),),
    ),
    Case(
        "obs--conflicts-with-patient",
        patient(race("2106-3")),
        cat("WHITE", race_source_format="us-core"),
        observations=(obs("72826-1", coding("2054-5")),),
        warnings=("observation_conflict",),
    ),
    Case(
        "obs--detail-agrees-with-patient-category",
        patient(race("2106-3")),
        cat("WHITE"),
        observations=(obs("72826-1", coding("2113-9")),),
        absent_warnings=("observation_conflict",),
    ),
    Case(
        "obs--entered-in-error-ignored",
        patient(),
        cat("UNKNOWN"),
        observations=(obs("72826-1", coding("2106-3"), status="entered-in-error"),),
        warnings=("observation_status_ignored",),
    ),
    Case(
        "obs--fills-missing-ethnicity-only",
        patient(race("2106-3")),
        cat("MULTIRACIAL_MULTIETHNIC", ["HISPANIC", "WHITE"], race_source_format="observation+us-core"),
        observations=(obs("69490-1", coding("2135-2")),),
    ),
    Case(
        "obs--policy-not-used",
        patient(),
        cat("UNKNOWN"),
        observations=(obs("72826-1", coding("2106-3")),),
        policy={"use_when_patient_has_none": False},
        warnings=("observation_not_used",),
    ),
    Case(
        "obs--data-absent-reason-declined",
        patient(),
        cat("DECLINED"),
        observations=(
            {
                "resourceType": "Observation",
                "status": "final",
                "code": {"coding": [{"system": LOINC, "code": "72826-1"}]},
                "dataAbsentReason": {"coding": [DECLINED]},
            },
        ),
    ),
    Case(
        "obs--value-string",
        patient(),
        cat("ASIAN", race_text="Asian"),
        observations=(
            {
                "resourceType": "Observation",
                "status": "final",
                "code": {"coding": [{"system": LOINC, "code": "32624-9"}]},
                "valueString": "Asian",
            },
        ),
    ),
    Case(
        "obs--patient-unk-is-none",
        patient(race(UNK)),
        cat("WHITE"),
        observations=(obs("72826-1", coding("2106-3")),),
        absent_warnings=("observation_conflict", "null_flavor_with_category"),
    ),
    Case(
        "obs--patient-not-hispanic-only-is-none",
        patient(eth("2186-5")),
        cat("HISPANIC"),
        observations=(obs("69490-1", coding("2135-2")),),
        warnings=("hispanic_conflict",),
    ),
    Case(
        "obs--cdcrec-code-under-loinc-answer",
        patient(),
        cat("UNKNOWN"),
        observations=(obs("72826-1", coding("2106-3", LOINC)),),
        warnings=("cdcrec_code_under_loinc",),
    ),
    Case(
        "obs--components",
        patient(),
        cat("MULTIRACIAL_MULTIETHNIC", ["ASIAN", "WHITE"]),
        observations=(
            {
                "resourceType": "Observation",
                "status": "final",
                "code": {"coding": [{"system": LOINC, "code": "72826-1"}]},
                "component": [
                    {
                        "code": {"coding": [{"system": LOINC, "code": "72826-1"}]},
                        "valueCodeableConcept": {"coding": [coding("2106-3")]},
                    },
                    {"code": {"text": "detail"}, "valueCodeableConcept": {"coding": [coding("2034-7")]}},
                ],
            },
        ),
    ),
    Case(
        "obs--la-answer-without-system",
        patient(),
        cat("WHITE"),
        observations=(obs("46463-6", coding("LA4457-3", None)),),
        warnings=("system_missing_repaired",),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_classification_case(case: Case) -> None:
    defaults = load_policy()
    policy = dataclasses.replace(defaults, **case.policy) if case.policy else None
    result = normalize_patient(case.patient, case.observations, policy)
    for key, expected in case.expect.items():
        assert result[key] == expected, (
            f"{key}: {result[key]!r} != {expected!r} (warnings {result['mapping_warnings']})"
        )
    for code in case.warnings:
        assert code in result["mapping_warnings"], result["mapping_warnings"]
    for code in case.absent_warnings:
        assert code not in result["mapping_warnings"], result["mapping_warnings"]
    assert "normalization_error" not in result["mapping_warnings"]


def test_case_ids_are_unique_and_named_rule_then_encoding() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))
    assert all("--" in i for i in ids)
    assert len(ids) >= 80
