"""Tests for genrm_rank.strategies.round_robin."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from strategy_driver import drive, noisy

from genrm_rank.strategies import RoundRobin, make_strategy


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(2, 24),
    swap=st.sampled_from(["both", "random", "none"]),
    samples=st.integers(1, 3),
    seed=st.integers(0, 1000),
)
def test_call_count(n: int, swap: str, samples: int, seed: int) -> None:
    rr = RoundRobin(n, swap=swap, samples=samples, seed=seed)  # type: ignore[arg-type]
    calls = drive(rr, noisy(seed))
    pairs = n * (n - 1) // 2
    assert len(rr.matches) == pairs
    assert calls == pairs * samples * (2 if swap == "both" else 1)
    assert {frozenset((m.a, m.b)) for m in rr.matches} == {
        frozenset((a, b)) for a in range(n) for b in range(a + 1, n)
    }


@settings(max_examples=20, deadline=None)
@given(n=st.integers(2, 12), data=st.data())
def test_relabelling_relabels_the_match_set(n: int, data: st.DataObject) -> None:
    relabel = data.draw(st.permutations(range(n)))
    pairs = {frozenset((m.a, m.b)) for m in RoundRobin(n).matches}
    assert {frozenset(relabel[c] for c in p) for p in pairs} == pairs


def test_registered_under_both_spellings() -> None:
    assert isinstance(make_strategy("round-robin", 3), RoundRobin)
    assert isinstance(make_strategy("round_robin", 3), RoundRobin)
