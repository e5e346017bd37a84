"""Tests for genrm_rank.strategies.circular."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategy_driver import drive, failing, noisy, position_biased

from genrm_rank.strategies import Circular, PairCall, make_strategy
from genrm_rank.verdict import Verdict


@settings(max_examples=50, deadline=None)
@given(n=st.integers(2, 64), samples=st.integers(1, 3), seed=st.integers(0, 1000))
def test_default_is_n_calls_with_every_candidate_once_in_each_slot(
    n: int, samples: int, seed: int
) -> None:
    circ = Circular(n, samples=samples, seed=seed)
    calls = circ.next_pairs()
    assert len(calls) == n * samples
    assert {(c.first, c.second) for c in calls} == {(i, (i + 1) % n) for i in range(n)}
    assert Counter(c.first for c in calls) == {i: samples for i in range(n)}
    assert Counter(c.second for c in calls) == {i: samples for i in range(n)}
    assert len(set(calls)) == len(calls)


@pytest.mark.parametrize(
    ("n", "swap", "expected"),
    [
        (2, "none", [(0, 1), (1, 0)]),
        (2, "both", [(0, 1), (1, 0), (1, 0), (0, 1)]),
        (3, "none", [(0, 1), (1, 2), (2, 0)]),
        (3, "both", [(0, 1), (1, 0), (1, 2), (2, 1), (2, 0), (0, 2)]),
    ],
)
def test_pairs(n: int, swap: str, expected: list[tuple[int, int]]) -> None:
    circ = Circular(n, swap=swap)  # type: ignore[arg-type]
    assert [(c.first, c.second) for c in circ.next_pairs()] == expected


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(2, 40),
    swap=st.sampled_from(["both", "random", "none"]),
    samples=st.integers(1, 3),
    seed=st.integers(0, 1000),
)
def test_call_count(n: int, swap: str, samples: int, seed: int) -> None:
    circ = Circular(n, swap=swap, samples=samples, seed=seed)  # type: ignore[arg-type]
    calls = drive(circ, noisy(seed))
    assert calls == n * samples * (2 if swap == "both" else 1)
    assert len(circ.matches) == n
    assert circ.result().order is None and circ.result().best is None


def test_random_swap_is_reproducible_from_the_seed() -> None:
    orders = [
        [(c.first, c.second) for c in Circular(12, swap="random", seed=5).next_pairs()]
        for _ in range(2)
    ]
    assert orders[0] == orders[1]
    assert {frozenset(p) for p in orders[0]} == {frozenset((i, (i + 1) % 12)) for i in range(12)}


def test_both_orders_cancel_pure_position_bias() -> None:
    circ = Circular(5, swap="both", samples=3)
    drive(circ, position_biased(2))
    assert all(m.preference == 0.5 for m in circ.matches)


def test_unreadable_matches_are_noted_not_scored() -> None:
    circ = Circular(3)

    def judge(call: PairCall) -> Verdict:
        return failing(call) if call.first == 1 else Verdict(ranking=2)

    drive(circ, judge)
    assert [m.preference for m in circ.matches] == [0.8, None, 0.8]
    assert circ.result().notes == ("match 1 (1 vs 2): no readable verdict",)


def test_stop_before_issuing_is_done_at_once() -> None:
    circ = Circular(4)
    circ.stop()
    assert circ.done and circ.next_pairs() == []


def test_registered_as_circular() -> None:
    assert isinstance(make_strategy("Circular", 4), Circular)
