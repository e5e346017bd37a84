"""Tests of genrm_rank.judges.settings: each group checks itself once, naming the argument."""

from __future__ import annotations

import dataclasses
import random
from typing import Any

import pytest

import genrm_rank.judges.settings as settings
from genrm_rank.judges.settings import MAX_RESPONSE_BYTES, Health, Limits, Retries, Routing


def test_all_is_complete_and_sorted() -> None:
    public = {n for n in vars(settings) if not n.startswith("_") and n[0].isupper()}
    assert set(settings.__all__) == public - {"Literal"}
    assert settings.__all__ == sorted(settings.__all__, key=lambda n: (not n.isupper(), n))


@pytest.mark.parametrize(
    ("group", "kwargs", "fragment"),
    [
        (Limits, {"max_in_flight_per_endpoint": 0}, "'max_in_flight_per_endpoint' must be an int"),
        (Limits, {"requests_per_second": 0}, "'requests_per_second' must be > 0 or None"),
        (Limits, {"max_response_bytes": 0}, "'max_response_bytes' must be an int >= 1"),
        (Routing, {"policy": "nearest"}, "'policy' must be one of"),
        (Routing, {"spill_factor": 0.5}, "'spill_factor' must be >= 1"),
        (Routing, {"spill_offset": -1}, "'spill_offset' must be >= 0"),
        (Retries, {"max_resends": -1}, "'max_resends' must be an int >= 0"),
        (Retries, {"max_resends": 1.5}, "'max_resends' must be an int >= 0"),
        (Retries, {"backoff_base": -0.1}, "'backoff_base' must be >= 0"),
        (Retries, {"backoff_max": float("nan")}, "'backoff_max' must be >= 0"),
        (Health, {"failure_threshold": 0}, "'failure_threshold' must be >= 1"),
        (Health, {"health_check_interval": 0}, "'health_check_interval' must be > 0"),
        (Health, {"down_timeout": -1}, "'down_timeout' must be >= 0 or None"),
    ],
)
def test_each_group_names_the_argument(group: Any, kwargs: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        group(**kwargs)


@pytest.mark.parametrize("group", [Limits, Routing, Retries, Health])
def test_groups_are_frozen_values(group: Any) -> None:
    value = group()
    assert value == group() and hash(value) == hash(group())
    with pytest.raises(dataclasses.FrozenInstanceError):
        value.__setattr__(dataclasses.fields(group)[0].name, 1)


def test_defaults() -> None:
    assert Limits() == Limits(64, None, MAX_RESPONSE_BYTES)
    assert Routing() == Routing("affinity", 2.0, 10.0)
    assert Retries() == Retries(5, 0.5, 30.0)
    assert Health() == Health(3, 5.0, None)


def test_backoff_is_full_jitter_under_a_doubling_ceiling_and_honours_retry_after() -> None:
    retries = Retries(max_resends=6, backoff_base=1.0, backoff_max=8.0)
    rng = random.Random(0)
    for resend, ceiling in enumerate([1.0, 2.0, 4.0, 8.0, 8.0, 8.0]):
        delays = [retries.delay(resend, None, rng) for _ in range(200)]
        assert 0 <= min(delays) and max(delays) <= ceiling
        assert max(delays) > 0.8 * ceiling  # spread over the whole range, not a fixed wait
    assert retries.delay(0, 30.0, rng) == 30.0
    assert Retries(backoff_base=0.0).delay(3, None, rng) == 0.0


def test_down_timeout_defaults_to_the_retry_budget_and_two_probe_intervals() -> None:
    retries = Retries(max_resends=5, backoff_base=1.0, backoff_max=4.0)
    assert retries.budget == 1 + 2 + 4 + 4 + 4
    assert Health().down_after(retries) == 15.0
    assert Health(health_check_interval=10.0).down_after(retries) == 20.0
    assert Health(down_timeout=0).down_after(retries) == 0.0
    assert Health().down_after(Retries(max_resends=0)) == 10.0
