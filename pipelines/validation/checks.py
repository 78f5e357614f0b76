"""Derived boolean columns for rules Great Expectations cannot express, and run-time suite parameters.

Each check is a pure function of one row's values; `add_derived_columns` applies the ones a suite names to a
shallow copy of the batch, and the suites expect them to be True (see the "derived_columns" meta of
`expectations/consistency.json`, `validity.json` and `plausibility.json`).
"""
from __future__ import annotations

import datetime as dt
import re
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

OMB_CATEGORIES = frozenset({"AIAN", "ASIAN", "BLACK", "HISPANIC", "MENA", "NHPI", "WHITE"})
NO_CATEGORY_VALUES = frozenset({"SOME_OTHER", "DECLINED", "UNKNOWN"})
CDCREC_CODE = re.compile(r"^\d{4}-\d$")

# HEDIS single-race strata -> the admissible sets of non-Hispanic OMB 2024 categories (MENA rolls up to
# White in HEDIS: contract 4.3; a White answer supported only by MENA detail is MENA alone: 4.2.2).
HEDIS_RACE_OMB_SETS: Mapping[str, tuple[frozenset[str], ...]] = {
    "AmericanIndianOrAlaskaNative": (frozenset({"AIAN"}),),
    "Asian": (frozenset({"ASIAN"}),),
    "BlackOrAfricanAmerican": (frozenset({"BLACK"}),),
    "NativeHawaiianOrOtherPacificIslander": (frozenset({"NHPI"}),),
    "White": (frozenset({"WHITE"}), frozenset({"MENA"}), frozenset({"MENA", "WHITE"})),
    "SomeOtherRace": (frozenset(),),
    "AskedButNoAnswer": (frozenset(),),
}


_NEVER_MISSING = (str, bytes, list, tuple, dict, np.ndarray)


def is_missing(value: Any) -> bool:
    """None, NaN, NA or NaT (a list or array value is never missing)."""
    if value is None:
        return True
    if isinstance(value, _NEVER_MISSING):
        return False
    try:
        result = pd.isna(value)
    except (TypeError, ValueError):
        return False
    return bool(result) if isinstance(result, (bool, np.bool_)) else False


def as_list(value: Any) -> Sequence[Any] | None:
    """A list column's value as a sequence (DuckDB gives numpy arrays, Arrow/Beam give lists); None if missing
    or not a list."""
    if type(value) is tuple or type(value) is list:
        return value
    if is_missing(value) or isinstance(value, (str, bytes, Mapping)):
        return None
    try:
        return tuple(value)
    except TypeError:
        return None


def column_values(series: pd.Series) -> list[Any]:
    """A column as Python values, missing values as None and list values as tuples, normalized once per batch
    so that the row checks stay cheap."""
    values = series.tolist()
    mask = series.isna().to_numpy()
    if mask.any():
        values = [None if missing else v for v, missing in zip(values, mask.tolist())]
    if series.dtype == object:
        values = [tuple(v) if type(v) is np.ndarray else v for v in values]
    return values


# --- validity -------------------------------------------------------------------------------------------------

def omb2024_categories_valid(categories: Any) -> bool:
    cats = as_list(categories)
    if cats is None:
        return False
    return all(isinstance(c, str) and c in OMB_CATEGORIES for c in cats) and list(cats) == sorted(set(cats))


def detailed_codes_well_formed(race_codes: Any, ethnicity_codes: Any) -> bool:
    for codes in (as_list(race_codes), as_list(ethnicity_codes)):
        if codes is None or not all(isinstance(c, str) and CDCREC_CODE.match(c) for c in codes):
            return False
    return True


# --- consistency ----------------------------------------------------------------------------------------------

def omb2024_category_consistent(category: Any, categories: Any) -> bool:
    cats = as_list(categories)
    if cats is None or is_missing(category):
        return False
    distinct = set(cats)
    if len(distinct) == 1:
        return category == next(iter(distinct))
    if len(distinct) >= 2:
        return category == "MULTIRACIAL_MULTIETHNIC"
    return category in NO_CATEGORY_VALUES


def race_ethnicity_status_consistent(status: Any, category: Any) -> bool:
    if is_missing(status) or is_missing(category):
        return False
    expected = {"DECLINED": "declined", "UNKNOWN": "unknown"}.get(category, "reported")
    return status == expected


def hedis_race_consistent(hedis_race: Any, categories: Any, category: Any) -> bool:
    cats = as_list(categories)
    if cats is None or is_missing(hedis_race):
        return False
    races = frozenset(cats) - {"HISPANIC"}
    if hedis_race == "TwoOrMoreRaces":
        return len(races) >= 1  # two distinct HEDIS races, Other counting as one: at least one is a category
    if hedis_race == "AskedButNoAnswer" and category == "UNKNOWN":
        return False  # a declined question makes a category-less answer DECLINED, never UNKNOWN (4.2.5)
    admissible = HEDIS_RACE_OMB_SETS.get(hedis_race)
    if admissible is None:  # Unknown (categories may come from text) or a value outside the set (validity)
        return True
    return races in admissible


def hedis_ethnicity_consistent(hedis_ethnicity: Any, categories: Any, category: Any, race_codes: Any,
                               ethnicity_codes: Any, hispanic_codes: frozenset[str]) -> bool:
    cats = as_list(categories)
    if cats is None or is_missing(hedis_ethnicity):
        return False
    hispanic_category = "HISPANIC" in cats
    if hedis_ethnicity == "HispanicOrLatino" and not hispanic_category:
        return False
    if hedis_ethnicity == "AskedButNoAnswer" and category == "UNKNOWN":
        return False
    ethnicity = set(as_list(ethnicity_codes) or ())
    race = set(as_list(race_codes) or ())
    if (ethnicity | race) & hispanic_codes and not hispanic_category:
        return False  # Hispanic in either slot is HISPANIC (4.2.3)
    if ethnicity & hispanic_codes and hedis_ethnicity != "HispanicOrLatino":
        return False  # any Hispanic ethnicity code is HispanicOrLatino (4.3)
    return True


# --- plausibility ---------------------------------------------------------------------------------------------

def birth_year_consistent(birth_year: Any, birth_date: Any) -> bool:
    if is_missing(birth_year) or is_missing(birth_date):
        return True
    return int(birth_year) == birth_date.year


# --- registry -------------------------------------------------------------------------------------------------

DerivedFn = Callable[..., bool]


class DerivedColumn:
    """A derived boolean column: the function, the input columns it reads, and extra keyword arguments taken
    from the suite's meta."""

    def __init__(self, fn: DerivedFn, inputs: Sequence[str], meta_kwargs: Mapping[str, str] | None = None):
        self.fn, self.inputs, self.meta_kwargs = fn, tuple(inputs), dict(meta_kwargs or {})


DERIVED_COLUMNS: Mapping[str, DerivedColumn] = {
    "omb2024_categories_valid": DerivedColumn(omb2024_categories_valid, ["omb2024_categories"]),
    "detailed_codes_well_formed": DerivedColumn(detailed_codes_well_formed,
                                                ["race_detailed_codes", "ethnicity_detailed_codes"]),
    "omb2024_category_consistent": DerivedColumn(omb2024_category_consistent,
                                                 ["omb2024_category", "omb2024_categories"]),
    "race_ethnicity_status_consistent": DerivedColumn(race_ethnicity_status_consistent,
                                                      ["race_ethnicity_status", "omb2024_category"]),
    "hedis_race_consistent": DerivedColumn(hedis_race_consistent,
                                           ["hedis_race", "omb2024_categories", "omb2024_category"]),
    "hedis_ethnicity_consistent": DerivedColumn(
        hedis_ethnicity_consistent,
        ["hedis_ethnicity", "omb2024_categories", "omb2024_category", "race_detailed_codes",
         "ethnicity_detailed_codes"],
        {"hispanic_codes": "hispanic_codes"}),
    "birth_year_consistent": DerivedColumn(birth_year_consistent, ["birth_year", "birth_date"]),
}


def _meta_value(value: Any) -> Any:
    return frozenset(value) if isinstance(value, list) else value


def derived_values(name: str, frame: pd.DataFrame, suite_meta: Mapping[str, Any],
                   cache: dict[str, list[Any]] | None = None) -> list[bool] | None:
    """The values of one derived column for a batch; None when an input column is absent (then the expectation
    on it fails with GX's 'column does not exist', and the lineage suite says which column is missing)."""
    derived = DERIVED_COLUMNS[name]
    if any(col not in frame.columns for col in derived.inputs):
        return None
    extra = {arg: _meta_value(suite_meta[key]) for arg, key in derived.meta_kwargs.items()}
    fn = derived.fn
    if cache is None:
        cache = {}
    for col in derived.inputs:
        if col not in cache:
            cache[col] = column_values(frame[col])
    columns: Iterable[Iterable[Any]] = [cache[col] for col in derived.inputs]
    return [bool(fn(*values, **extra)) for values in zip(*columns)]


def add_derived_columns(frame: pd.DataFrame, wanted: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """A shallow copy of the batch with the derived columns added. `wanted` maps column name -> suite meta."""
    cache: dict[str, list[Any]] = {}
    derived = {}
    for name, suite_meta in wanted.items():
        values = derived_values(name, frame, suite_meta, cache)
        if values is not None:
            derived[name] = np.array(values, dtype=bool)
    return frame.assign(**derived) if derived else frame.copy(deep=False)


def hashable_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The batch with list columns turned into text, for GX.

    GX fingerprints every batch with pandas' row hashing, which fails on list values and then falls back to
    pickling the whole frame: that was 1.3 s of a 2.8 s validation of 10k rows. The suites read list columns
    only through the derived columns, which are computed before this.
    """
    listy = [name for name in frame.columns if frame[name].dtype == object
             and any(isinstance(v, (list, tuple, np.ndarray)) for v in frame[name].head(50))]
    if not listy:
        return frame
    return frame.assign(**{name: frame[name].map(
        lambda v: "|".join(map(str, v)) if isinstance(v, (list, tuple, np.ndarray)) else v) for name in listy})


# --- run-time parameters --------------------------------------------------------------------------------------

BIRTH_DATE_TOLERANCE = dt.timedelta(days=1)     # a birth "today" in a time zone ahead of UTC
LAST_UPDATED_TOLERANCE = dt.timedelta(minutes=5)  # clock skew between the feed's server and ours


def _in_column_type(value: dt.datetime | dt.date, series: pd.Series | None) -> Any:
    """Expresses a bound in the column's own type so that GX's comparison works: pandas Timestamp (naive or
    tz-aware like the column) for datetime64 columns, plain date/datetime for object columns."""
    if series is not None and pd.api.types.is_datetime64_any_dtype(series.dtype):
        ts = pd.Timestamp(value)
        tz = getattr(series.dtype, "tz", None)
        if tz is None:
            return ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo else ts
        return ts.tz_localize("UTC").tz_convert(tz) if ts.tzinfo is None else ts.tz_convert(tz)
    return value


def suite_parameters(frame: pd.DataFrame, now: dt.datetime | None = None) -> dict[str, Any]:
    """Values for the `{"$PARAMETER": ...}` bounds of the plausibility suite, computed at each validation."""
    now = now or dt.datetime.now(dt.timezone.utc)
    max_birth_date = (now + BIRTH_DATE_TOLERANCE).date()
    return {
        "max_birth_date": _in_column_type(max_birth_date, frame.get("birth_date")),
        "max_birth_year": max_birth_date.year,
        "max_last_updated": _in_column_type(now + LAST_UPDATED_TOLERANCE, frame.get("last_updated")),
    }
