"""Tests for genrm_rank.strategies.baseline."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategy_driver import drive, failing, noisy

from genrm_rank import SimulatedJudge
from genrm_rank.api import arank_many
from genrm_rank.runner import PromptInput
from genrm_rank.spec import RankSpec
from genrm_rank.strategies import STRATEGIES, Baseline, make_strategy
from genrm_rank.verdict import Verdict


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(2, 40),
    swap=st.sampled_from(["both", "random", "none"]),
    samples=st.integers(1, 3),
    seed=st.integers(0, 1000),
)
def test_n_minus_one_matches_each_with_the_baseline(
    n: int, swap: str, samples: int, seed: int
) -> None:
    base = seed % n
    strategy = Baseline(n, baseline=base, swap=swap, samples=samples, seed=seed)  # type: ignore[arg-type]
    calls = drive(strategy, noisy(seed))
    assert calls == (n - 1) * samples * (2 if swap == "both" else 1)
    assert len(strategy.matches) == n - 1
    assert sorted(m.b for m in strategy.matches) == [i for i in range(n) if i != base]
    assert all(base in (j.first, j.second) for j in strategy.judgements())
    assert strategy.result().order is None and strategy.result().best is None


@pytest.mark.parametrize(
    ("swap", "expected"),
    [
        ("none", [(1, 0), (1, 2)]),
        ("both", [(1, 0), (0, 1), (1, 2), (2, 1)]),
    ],
)
def test_pairs_put_the_baseline_in_slot_1_first(swap: str, expected: list[tuple[int, int]]) -> None:
    strategy = Baseline(3, baseline=1, swap=swap)  # type: ignore[arg-type]
    assert [(c.first, c.second) for c in strategy.next_pairs()] == expected


def test_baseline_by_id_and_registered_by_name() -> None:
    assert STRATEGIES["baseline"] is Baseline
    strategy = make_strategy("baseline", 3, baseline="ref", candidate_ids=["x", "ref", "y"])
    assert isinstance(strategy, Baseline) and strategy.baseline == 1


@pytest.mark.parametrize(
    ("baseline", "ids", "error", "message"),
    [
        ("ref", None, ValueError, "carry no ids"),
        ("ref", ["a", "b", "c"], ValueError, "'ref', which is not among"),
        ("a", ["a", "a", "c"], ValueError, "is more than once"),
        (3, None, ValueError, "must be in 0..2, not 3"),
        (-1, None, ValueError, "must be in 0..2, not -1"),
        (1.0, None, TypeError, "index or id, not float"),
        (True, None, TypeError, "index or id, not bool"),
        (0, ["a", "b"], ValueError, "'candidate_ids' must hold 3 ids, not 2"),
    ],
)
def test_bad_baseline_is_refused_naming_the_argument(
    baseline: object, ids: list[str] | None, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        Baseline(3, baseline=baseline, candidate_ids=ids)  # type: ignore[arg-type]


def test_a_failed_verdict_leaves_a_note() -> None:
    strategy = Baseline(3, swap="none")
    for call in strategy.next_pairs():
        strategy.record(call, failing(call) if call.second == 2 else Verdict(ranking=2))
    assert strategy.done
    assert strategy.result().notes == ("match 1 (baseline 0 vs 2): no readable verdict",)


def test_the_runner_finds_the_baseline_by_id_in_each_prompt() -> None:
    """Candidates in a different order per prompt: the baseline is found by its id each time."""
    judge = SimulatedJudge(seed=3)
    spec = RankSpec(strategy="baseline", swap="random", strategy_options={"baseline": "ref"})
    prompts = [
        PromptInput(f"Q{k}?", [f"a{k}", f"r{k}", f"b{k}"], prompt_id=str(k), candidate_ids=ids)
        for k, ids in enumerate([["x", "ref", "y"], ["ref", "x", "y"], ["x", "y", "ref"]])
    ]

    async def go() -> list:
        return [r async for r in arank_many(prompts, judge=judge, spec=spec)]

    results = asyncio.run(go())
    assert len(results) == 3
    for result in results:
        ranking = result.ranking
        assert ranking is not None and ranking.calls == 2 and ranking.candidate_ids is not None
        base = ranking.candidate_ids.index("ref")
        assert all(base in (j.first, j.second) for j in ranking.judgements)


def test_the_runner_refuses_a_prompt_without_the_baseline_before_any_call() -> None:
    judge = SimulatedJudge(seed=3)
    spec = RankSpec(strategy="baseline", strategy_options={"baseline": "ref"})
    prompt = PromptInput("Q?", ["a", "b"], candidate_ids=["x", "y"])

    async def go() -> list:
        return [r async for r in arank_many([prompt], judge=judge, spec=spec)]

    with pytest.raises(ValueError, match="'ref', which is not among"):
        asyncio.run(go())
