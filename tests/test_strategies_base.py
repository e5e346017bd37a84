"""Tests for genrm_rank.strategies.base: match bookkeeping and the soft combination."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from genrm_rank.strategies import STRATEGIES, Judgement, RoundRobin, Scheduler, make_strategy
from genrm_rank.strategies.base import combine_preferences
from genrm_rank.verdict import Verdict, table_preference

RANKINGS = st.one_of(st.integers(1, 6), st.floats(1, 6))


@given(ranking=RANKINGS, samples=st.integers(1, 16))
def test_pure_position_bias_combines_to_exactly_one_half(ranking: float, samples: int) -> None:
    verdict = Verdict(ranking=ranking)
    judgements = [Judgement(0, 1, verdict, sample=s) for s in range(samples)]
    judgements += [Judgement(1, 0, verdict, sample=s) for s in range(samples)]
    assert combine_preferences(0, judgements) == 0.5
    assert combine_preferences(1, judgements) == 0.5


@given(ab=st.lists(RANKINGS, min_size=1, max_size=5), ba=st.lists(RANKINGS, min_size=1, max_size=5))
def test_combination_is_swap_symmetric(ab: list[float], ba: list[float]) -> None:
    judgements = [Judgement(0, 1, Verdict(ranking=r)) for r in ab]
    judgements += [Judgement(1, 0, Verdict(ranking=r)) for r in ba]
    p0, p1 = combine_preferences(0, judgements), combine_preferences(1, judgements)
    assert p0 is not None and p1 is not None
    assert p0 + p1 == pytest.approx(1.0)
    expected = 0.5 * (
        sum((6 - r) / 5 for r in ab) / len(ab) + 1 - sum((6 - r) / 5 for r in ba) / len(ba)
    )
    assert p0 == pytest.approx(expected)


@pytest.mark.parametrize(
    ("rankings", "expected"),
    [
        ([("ab", 1)], 1.0),
        ([("ba", 1)], 0.0),
        ([("ab", 2), ("ba", 5)], 0.8),
        ([("ab", 1), ("ab", 3), ("ba", 6)], 0.9),
        ([], None),
    ],
)
def test_combination_cases(rankings: list[tuple[str, float]], expected: float | None) -> None:
    judgements = [
        Judgement(*((0, 1) if order == "ab" else (1, 0)), Verdict(ranking=r))
        for order, r in rankings
    ]
    judgements.append(Judgement(0, 1, Verdict.failed("unreadable", raw="?")))
    assert combine_preferences(0, judgements) == (
        None if expected is None else pytest.approx(expected)
    )


def test_combination_uses_the_mapping() -> None:
    hard = table_preference({1: 1, 2: 1, 3: 1, 4: 0, 5: 0, 6: 0})
    judgements = [Judgement(0, 1, Verdict(ranking=3)), Judgement(1, 0, Verdict(ranking=3))]
    assert combine_preferences(0, judgements, hard) == 0.5
    assert combine_preferences(0, judgements[:1], hard) == 1.0


def test_a_call_not_yet_issued_cannot_be_recorded() -> None:
    rr = RoundRobin(3, swap="none")
    queued = rr.matches[0].calls[0]
    with pytest.raises(ValueError, match="'call'"):
        rr.record(queued, Verdict(ranking=1))


def test_a_call_cannot_be_recorded_twice() -> None:
    rr = RoundRobin(2, swap="both")
    first, second = rr.next_pairs()
    rr.record(first, Verdict(ranking=1))
    with pytest.raises(ValueError, match="'call'"):
        rr.record(first, Verdict(ranking=1))
    assert not rr.matches[0].complete
    rr.record(second, Verdict(ranking=1))
    assert rr.done and rr.matches[0].preference == 0.5


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_every_registered_strategy_is_a_scheduler(name: str) -> None:
    assert isinstance(make_strategy(name, 4, seed=0), Scheduler)


def test_registry_names() -> None:
    assert set(STRATEGIES) >= {"circular", "knockout", "round_robin", "swiss"}
    with pytest.raises(ValueError, match="'strategy'"):
        make_strategy("ladder", 4)
