"""Every failure of a record is a reject, never a crash: the fuzz properties on fixed examples (the same ones every
run; tests/fuzz/test_fuzz_run.py explores new ones for a bounded time)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.properties import PROPERTIES, Property

ALWAYS = settings(
    max_examples=100,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.mark.parametrize("prop", PROPERTIES, ids=lambda p: p.__name__)
@pytest.mark.slow
def test_property_on_fixed_examples(prop: Property) -> None:
    ALWAYS(given(st.data())(prop))()
