"""Tests for genrm_rank.strategies.base: match bookkeeping and the soft combination."""

from __future__ import annotations

import dataclasses
import inspect

import pytest
from hypothesis import given
from hypothesis import strategies as st

from genrm_rank.strategies import STRATEGIES, Judgement, RoundRobin, Scheduler, make_strategy
from genrm_rank.strategies.base import MatchScheduler, combine_preferences
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


# -- swap="auto": the reverse order only where it pays ------------------------------------------


def _drive_with(scheduler: Scheduler, ranking_of: dict[tuple[int, int], float]) -> int:
    calls = 0
    while not scheduler.done:
        batch = scheduler.next_pairs()
        assert batch, "not done, yet nothing to ask"
        for call in batch:
            scheduler.record(call, Verdict(ranking=ranking_of[(call.first, call.second)]))
        calls += len(batch)
    return calls


def _rankings(n: int, decisive: float, close: float) -> dict[tuple[int, int], float]:
    """Lower index better: ``decisive`` for pairs two or more apart, ``close`` for neighbours."""
    out = {}
    for a in range(n):
        for b in range(n):
            if a != b:
                r = decisive if abs(a - b) > 1 else close
                out[(a, b)] = r if a < b else 7 - r
    return out


@pytest.mark.parametrize("n", [2, 3, 5, 8])
def test_auto_swap_round_robin_swaps_only_close_pairs(n: int) -> None:
    scheduler = make_strategy("round_robin", n, swap="auto", seed=0)
    calls = _drive_with(scheduler, _rankings(n, decisive=1, close=3))
    pairs = n * (n - 1) // 2
    assert calls == pairs + (n - 1)  # the n - 1 neighbouring pairs are close: both orders
    assert _drive_with(make_strategy("round_robin", n, swap="auto"), _rankings(n, 1, 2)) == pairs


@pytest.mark.parametrize("n", [2, 4, 7, 8])
def test_auto_swap_knockout_judges_the_final_in_both_orders(n: int) -> None:
    scheduler = make_strategy("knockout", n, swap="auto", seed=1)
    calls = _drive_with(scheduler, _rankings(n, decisive=1, close=2))
    final = [m for m in scheduler.matches if m.round == scheduler.n_rounds]
    assert calls == n - 1 + 1
    assert len(final) == 1 and len(final[0].calls) == 2 and final[0].reversed
    assert scheduler.result().best == 0


def test_auto_swap_asks_the_other_order_after_a_failed_verdict() -> None:
    scheduler = make_strategy("round_robin", 2, swap="auto", seed=0)
    (call,) = scheduler.next_pairs()
    scheduler.record(call, Verdict.failed("unreadable", raw="?"))
    (reverse,) = scheduler.next_pairs()
    assert (reverse.first, reverse.second) == (call.second, call.first)
    scheduler.record(reverse, Verdict(ranking=2))
    expected = 0.8 if reverse.first == scheduler.matches[0].a else 0.2
    assert scheduler.done and scheduler.matches[0].preference == pytest.approx(expected)


def test_auto_is_a_swap_mode_of_the_spec() -> None:
    from genrm_rank.spec import RankSpec

    assert RankSpec(strategy="swiss", swap="auto").swap == "auto"
    with pytest.raises(ValueError, match="'swap'"):
        RankSpec(swap="sometimes")


SWAP_DEFAULTS = {
    "baseline": "both",
    "circular": "none",
    "knockout": "both",
    "round_robin": "both",
    "swiss": "both",
}


@pytest.mark.parametrize(("name", "swap"), sorted(SWAP_DEFAULTS.items()))
def test_signatures_show_the_shared_keywords_and_each_default(name: str, swap: str) -> None:
    params = inspect.signature(STRATEGIES[name]).parameters
    assert next(iter(params)) == "n_items"
    assert params["n_items"].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    for keyword in ("swap", "samples", "seed", "preference_mapping"):
        assert params[keyword].kind is inspect.Parameter.KEYWORD_ONLY
    assert params["swap"].default == swap
    assert params["samples"].default == 1 and params["seed"].default is None
    assert make_strategy(name, 3).swap == swap  # type: ignore[attr-defined]


def test_a_strategy_declares_only_what_it_adds() -> None:
    """The shared keywords are declared once, on MatchScheduler; a strategy adds its own."""
    shared = [f.name for f in dataclasses.fields(MatchScheduler)]
    assert shared == ["n_items", "swap", "samples", "seed", "preference_mapping"]
    own = {
        name: [p for p in inspect.signature(cls).parameters if p not in shared]
        for name, cls in STRATEGIES.items()
        if name != "adaptive"
    }
    assert own == {
        "baseline": ["baseline", "candidate_ids"],
        "circular": [],
        "knockout": ["seeding"],
        "round_robin": [],
        "swiss": ["seeding", "rounds", "scoring"],
    }


def test_positional_options_are_refused() -> None:
    with pytest.raises(TypeError):
        RoundRobin(3, "none")  # type: ignore[misc]
