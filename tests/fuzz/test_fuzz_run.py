"""The time-bounded exploration: every fuzz property on new random examples for FUZZ_SECONDS (CI: 40), skipped when
it is unset. A failure prints its seed and keeps its input in tests/fuzz/crashers/, which every run replays."""

from __future__ import annotations

import hashlib
import os
import random
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from tests.fuzz import harness
from tests.fuzz.properties import PROPERTIES, Property

SECONDS = float(os.environ.get("FUZZ_SECONDS") or 0)
ROUND = settings(
    max_examples=20,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def keep_crasher(prop: Property) -> Path:
    """Writes the input of the last read as `<property>-<hash>--<file name>`: replayed by test_fuzz_crashers."""
    name, data = harness.last_input
    path = harness.CRASHERS / f"{prop.__name__}-{hashlib.sha256(data).hexdigest()[:12]}--{name}"
    path.write_bytes(data)
    return path


def explore(prop: Property, round_seed: int) -> None:
    try:
        seed(round_seed)(ROUND(given(st.data())(prop)))()
    except Exception as err:
        raise AssertionError(
            f"{prop.__name__} failed with seed {round_seed}; its input is kept in {keep_crasher(prop)}"
        ) from err


@pytest.mark.fuzz
@pytest.mark.skipif(SECONDS <= 0, reason="set FUZZ_SECONDS to explore (CI: 40)")
def test_explore_every_property_for_a_bounded_time() -> None:
    first = int(os.environ.get("FUZZ_SEED") or random.SystemRandom().randrange(2**32))
    print(f"fuzzing for {SECONDS:g} s from FUZZ_SEED={first}")
    rounds, seeds, deadline = 0, random.Random(first), time.monotonic() + SECONDS
    while time.monotonic() < deadline:
        prop = PROPERTIES[rounds % len(PROPERTIES)]
        explore(prop, seeds.randrange(2**32))
        rounds += 1
    print(f"{rounds} rounds of {ROUND.max_examples} examples, no failure")
