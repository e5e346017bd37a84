"""Tests of genrm_rank.judges.routing: pure choice rules, then the pool's limits and health."""

from __future__ import annotations

import asyncio
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import genrm_rank.judges.routing as routing
from genrm_rank.judges.routing import (
    EndpointPool,
    NoHealthyEndpointError,
    choose_endpoint,
    rendezvous_rank,
)
from genrm_rank.judges.settings import Health, Limits, Routing

NAMES = [f"http://127.0.0.1:{8000 + i}/v1" for i in range(4)]
ONE_EACH = Limits(max_in_flight_per_endpoint=1)


def test_all_is_complete_and_sorted() -> None:
    public = {
        n
        for n, v in vars(routing).items()
        if not n.startswith("_") and getattr(v, "__module__", None) == routing.__name__
    }
    assert routing.__all__ == sorted(
        routing.__all__, key=lambda n: (not n.isupper(), not n[0].isupper(), n)
    )
    assert public <= set(routing.__all__)


@pytest.mark.parametrize(
    ("loads", "healthy", "expected"),
    [
        ([3, 1, 2], [True, True, True], 1),
        ([3, 1, 2], [True, False, True], 2),
        ([0, 0, 5], [False, True, True], 1),
    ],
)
def test_least_loaded_without_key(loads: list[int], healthy: list[bool], expected: int) -> None:
    choice = choose_endpoint(loads, healthy)
    assert choice is not None and choice.index == expected and choice.preferred is None


def test_no_healthy_endpoint_raises() -> None:
    with pytest.raises(NoHealthyEndpointError):
        choose_endpoint([0, 0], [False, False])


def test_all_full_returns_none() -> None:
    assert choose_endpoint([2, 2], [True, True], limits=[2, 2]) is None


def test_affinity_prefers_the_same_endpoint_for_a_key() -> None:
    loads = [0, 0, 0, 0]
    firsts = {
        choose_endpoint(loads, [True] * 4, names=NAMES, key="prompt-7").index for _ in range(5)
    }  # type: ignore[union-attr]
    assert len(firsts) == 1


def test_affinity_spreads_keys_over_endpoints() -> None:
    homes = [rendezvous_rank(f"prompt-{i}", NAMES)[0] for i in range(400)]
    counts = [homes.count(i) for i in range(4)]
    assert min(counts) > 60  # roughly 100 each


@pytest.mark.parametrize(
    ("preferred_load", "least", "spills"),
    [(10, 0, False), (11, 0, True), (30, 10, False), (31, 10, True)],
)
def test_spill_rule_is_2x_least_plus_10(preferred_load: int, least: int, spills: bool) -> None:
    home = rendezvous_rank("k", NAMES[:2])[0]
    loads = [least, least]
    loads[home] = preferred_load
    choice = choose_endpoint(loads, [True, True], names=NAMES[:2], key="k")
    assert choice is not None
    assert choice.spilled is spills
    assert choice.index == (1 - home if spills else home)
    assert choice.affine is (not spills)


def test_spill_parameters_are_honoured() -> None:
    home = rendezvous_rank("k", NAMES[:2])[0]
    loads = [1, 1]
    loads[home] = 2
    strict = choose_endpoint(
        loads, [True, True], names=NAMES[:2], key="k", spill_factor=1.0, spill_offset=0.0
    )
    assert strict is not None and strict.spilled


def test_full_preferred_endpoint_spills() -> None:
    home = rendezvous_rank("k", NAMES[:2])[0]
    loads = [0, 0]
    loads[home] = 2
    choice = choose_endpoint(loads, [True, True], names=NAMES[:2], key="k", limits=[2, 2])
    assert choice is not None and choice.index == 1 - home and choice.preferred == home


def test_exclude_is_ignored_when_nothing_else_is_healthy() -> None:
    choice = choose_endpoint([0, 0], [True, False], exclude={0})
    assert choice is not None and choice.index == 0
    choice = choose_endpoint([0, 5], [True, True], exclude={0})
    assert choice is not None and choice.index == 1


def test_removing_an_endpoint_moves_only_its_keys() -> None:
    keys = [f"p{i}" for i in range(200)]
    before = {k: NAMES[rendezvous_rank(k, NAMES)[0]] for k in keys}
    after = {k: NAMES[1:][rendezvous_rank(k, NAMES[1:])[0]] for k in keys}
    moved = [k for k in keys if before[k] != after[k]]
    assert moved and all(before[k] == NAMES[0] for k in moved)


_endpoint = st.tuples(st.integers(0, 20), st.booleans(), st.integers(1, 20))


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=150)
@given(
    endpoints=st.lists(_endpoint, min_size=1, max_size=6),
    key=st.one_of(st.none(), st.text(max_size=5)),
)
def test_choice_is_always_a_healthy_non_full_endpoint(
    endpoints: list[tuple[int, bool, int]], key: str | None
) -> None:
    n = len(endpoints)
    loads = [e[0] for e in endpoints]
    healthy = [e[1] for e in endpoints]
    limits = [e[2] for e in endpoints]
    if not any(healthy):
        with pytest.raises(NoHealthyEndpointError):
            choose_endpoint(loads, healthy)
        return
    names = [f"e{i}" for i in range(n)]
    choice = choose_endpoint(loads, healthy, names=names, key=key, limits=limits)
    usable = [i for i in range(n) if healthy[i] and loads[i] < limits[i]]
    if not usable:
        assert choice is None
    else:
        assert choice is not None and choice.index in usable


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"urls": []}, "'urls'"),
        ({"urls": ["a", "a"]}, "'urls'"),
    ],
)
def test_pool_validation_names_the_argument(kwargs: dict[str, object], fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        EndpointPool(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("group", "value"),
    [("limits", Routing()), ("routing", {"policy": "random"}), ("health", 3)],
)
def test_pool_takes_each_settings_group_whole(group: str, value: object) -> None:
    with pytest.raises(TypeError, match=f"Argument '{group}' must be a "):
        EndpointPool(["a"], **{group: value})  # type: ignore[arg-type]


def test_pool_can_be_built_outside_an_event_loop() -> None:
    pool = EndpointPool(NAMES, limits=Limits(requests_per_second=5))
    assert pool.loads == [0, 0, 0, 0]


async def test_pool_enforces_the_in_flight_limit_in_fifo_order() -> None:
    pool = EndpointPool(NAMES[:2], limits=ONE_EACH, routing=Routing("least_loaded"))
    a = await pool.acquire(None)
    b = await pool.acquire(None)
    assert {a, b} == {0, 1}
    order: list[str] = []

    async def waiter(name: str) -> int:
        index = await pool.acquire(None)
        order.append(name)
        return index

    first = asyncio.ensure_future(waiter("first"))
    await asyncio.sleep(0)
    second = asyncio.ensure_future(waiter("second"))
    await asyncio.sleep(0)
    assert order == []
    pool.release(a)
    assert await first == a
    pool.release(b)
    assert await second == b
    assert order == ["first", "second"]


async def test_cancelled_waiter_passes_its_wakeup_on() -> None:
    pool = EndpointPool(NAMES[:1], limits=ONE_EACH)
    held = await pool.acquire(None)
    doomed = asyncio.ensure_future(pool.acquire(None))
    survivor = asyncio.ensure_future(pool.acquire(None))
    await asyncio.sleep(0)
    doomed.cancel()
    pool.release(held)
    assert await survivor == 0
    assert pool.loads == [1]


async def test_failures_take_an_endpoint_out_and_waiters_learn_it() -> None:
    pool = EndpointPool(NAMES[:1], limits=ONE_EACH, health=Health(failure_threshold=2))
    index = await pool.acquire(None)
    waiting = asyncio.ensure_future(pool.acquire(None))
    await asyncio.sleep(0)
    assert pool.record_failure(index, "HTTP 503") is False
    assert pool.record_failure(index, "HTTP 503") is True
    with pytest.raises(NoHealthyEndpointError):
        await waiting
    assert pool.stats()[NAMES[0]].healthy is False
    pool.mark_healthy(index)
    assert pool.healthy == [True]


async def test_429_does_not_count_toward_health() -> None:
    pool = EndpointPool(NAMES[:1], health=Health(failure_threshold=1))
    assert pool.record_failure(0, "HTTP 429", counts_toward_health=False) is False
    assert pool.healthy == [True]
    assert pool.stats()[NAMES[0]].failures == 1


async def test_affinity_and_spill_counters() -> None:
    pool = EndpointPool(
        NAMES[:2],
        limits=Limits(max_in_flight_per_endpoint=100),
        routing=Routing(spill_factor=1.0, spill_offset=1.0),
    )
    indices = [await pool.acquire("same-prompt") for _ in range(4)]
    home = indices[0]
    # loads: home gets 1, 2 (<= 1*0+1? no: spill once load > least + 1)
    stats = pool.stats()
    assert stats[NAMES[home]].affinity_hits >= 2
    assert stats[NAMES[1 - home]].spills >= 1


async def test_rate_limit_is_respected() -> None:
    pool = EndpointPool(
        NAMES[:1], limits=Limits(max_in_flight_per_endpoint=1000, requests_per_second=40)
    )
    start = time.perf_counter()
    for _ in range(60):
        await pool.acquire(None)
    elapsed = time.perf_counter() - start
    # A burst of one second's worth (40), then 20 more at 40/s: >= ~0.5 s.
    assert elapsed >= 0.4


async def test_unusable_wakeup_is_passed_to_the_next_waiter() -> None:
    pool = EndpointPool(NAMES[:2], limits=ONE_EACH, routing=Routing("least_loaded"))
    first, second = await pool.acquire(None), await pool.acquire(None)
    assert {first, second} == {0, 1}
    picky = asyncio.ensure_future(pool.acquire(None, exclude={0}))
    await asyncio.sleep(0)
    anyone = asyncio.ensure_future(pool.acquire(None))
    await asyncio.sleep(0)
    pool.release(0)
    assert await asyncio.wait_for(anyone, 1) == 0
    assert not picky.done()
    pool.release(1)
    assert await asyncio.wait_for(picky, 1) == 1


async def test_random_policy_is_seeded_and_keeps_to_usable_endpoints() -> None:
    def picks(seed: int) -> list[int]:
        pool = EndpointPool(NAMES, routing=Routing("random"), seed=seed)
        pool.record_failure(3, "HTTP 503", counts_toward_health=True)
        chosen = []
        for _ in range(40):
            choice = pool.choose("k", exclude={0})
            assert choice is not None
            chosen.append(choice.index)
        return chosen

    assert picks(1) == picks(1) != picks(2)
    pool = EndpointPool(NAMES, routing=Routing("random"), health=Health(failure_threshold=1))
    pool.record_failure(3, "HTTP 503")
    assert {pool.choose(None, exclude={0}).index for _ in range(60)} == {1, 2}  # type: ignore[union-attr]
    full = EndpointPool(NAMES[:1], limits=ONE_EACH, routing=Routing("random"))
    await full.acquire(None)
    assert full.choose(None) is None
