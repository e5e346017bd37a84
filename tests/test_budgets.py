"""Budgets and caps are ceilings on paid generations, never targets (a Hypothesis property).

A judge that fails at random (unreadable answers, paid and unpaid transport failures, refusals,
cache hits) runs under random per-prompt budgets and run-wide caps on calls and tokens. Whatever
happens, no prompt pays one generation over its budget and the run pays none over its caps;
what every result reports is what the judge was paid; cached verdicts are free.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genrm_rank.judges.base import PairRequest
from genrm_rank.runner import PromptInput, Runner
from genrm_rank.spec import RankSpec
from genrm_rank.verdict import FailureKind, Usage, Verdict

TOKENS_MAX = 120  # the most one call can use: what the judge declares


class ChaoticJudge:
    """Answers, fails in every way a GenRM deployment can, or serves from a 'cache'."""

    def __init__(self, seed: int, failure_rate: float, cached_rate: float) -> None:
        self.rng = random.Random(seed)
        self.failure_rate = failure_rate
        self.cached_rate = cached_rate
        self.paid: Counter[str] = Counter()
        self.paid_tokens = 0

    def call_token_bound(self, request: PairRequest) -> int:
        return TOKENS_MAX

    async def judge(self, request: PairRequest) -> Verdict:
        for _ in range(self.rng.randrange(3)):  # vary the order calls come back in
            await asyncio.sleep(0)
        usage = Usage(self.rng.randrange(1, 60), self.rng.randrange(0, 61))
        draw = self.rng.random()
        if draw < self.cached_rate:
            return dataclasses.replace(
                Verdict(score_1=4, score_2=2, ranking=2, usage=usage), cached=True
            )
        if self.rng.random() < self.failure_rate:
            kind = self.rng.choice(["unreadable", "truncated", "paid", "unpaid", "rejected"])
            if kind in ("unpaid", "rejected"):
                failure = FailureKind.UNAVAILABLE if kind == "unpaid" else FailureKind.REJECTED
                return Verdict.failed(failure, error=kind, attempts=0)
            self.paid[request.prompt_id] += 1
            self.paid_tokens += usage.total_tokens
            failure = FailureKind.UNAVAILABLE if kind == "paid" else FailureKind(kind)
            return Verdict.failed(failure, raw="?", usage=usage, attempts=1)
        self.paid[request.prompt_id] += 1
        self.paid_tokens += usage.total_tokens
        ranking = self.rng.choice([1, 2, 3, 4, 5, 6])
        return Verdict(score_1=3, score_2=3, ranking=ranking, usage=usage)


@settings(max_examples=200, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n_prompts=st.integers(1, 6),
    n_candidates=st.integers(2, 7),
    strategy=st.sampled_from(["knockout", "round_robin", "swiss", "circular"]),
    swap=st.sampled_from(["both", "random", "none"]),
    budget=st.none() | st.integers(0, 30),
    retries=st.integers(0, 3),
    max_calls=st.none() | st.integers(0, 80),
    max_tokens=st.none() | st.integers(0, 4000),
    concurrency=st.integers(1, 16),
    failure_rate=st.sampled_from([0.0, 0.2, 0.6]),
    cached_rate=st.sampled_from([0.0, 0.3]),
)
def test_no_budget_or_cap_is_ever_overshot(
    seed: int,
    n_prompts: int,
    n_candidates: int,
    strategy: str,
    swap: str,
    budget: int | None,
    retries: int,
    max_calls: int | None,
    max_tokens: int | None,
    concurrency: int,
    failure_rate: float,
    cached_rate: float,
) -> None:
    judge = ChaoticJudge(seed, failure_rate, cached_rate)
    spec = RankSpec(strategy=strategy, swap=swap, budget=budget, retries=retries, seed=seed)
    runner = Runner(
        judge, spec, concurrency=concurrency, max_calls=max_calls, max_tokens=max_tokens
    )
    prompts = [
        PromptInput(f"prompt {p}", [f"c{i}" for i in range(n_candidates)], prompt_id=f"p{p}")
        for p in range(n_prompts)
    ]

    async def go() -> list[object]:
        return [result async for result in runner.run(prompts)]

    results = asyncio.run(go())
    if budget is not None:
        assert all(paid <= budget for paid in judge.paid.values()), judge.paid
    if max_calls is not None:
        assert sum(judge.paid.values()) <= max_calls
    if max_tokens is not None:
        assert judge.paid_tokens <= max_tokens
    # What is reported is what was paid.
    assert runner.stats.calls == sum(judge.paid.values())
    assert runner.stats.usage.total_tokens == judge.paid_tokens
    for result in results:
        ranking = result.ranking  # type: ignore[attr-defined]
        if ranking is not None:
            assert ranking.calls == judge.paid[result.prompt.prompt_id]  # type: ignore[attr-defined]
            if budget is not None and ranking.calls >= budget and not ranking.decided:
                assert ranking.status in ("budget_bound", "unreliable", "no_verdict", "judge_error")
    if runner.cap_reached is None:
        assert len(results) == n_prompts  # no cap bound: every prompt came back


def test_cached_verdicts_do_not_use_up_a_budget() -> None:
    # A budget of 1: each call holds one generation while it is out (it might not be cached),
    # and gives it back when it comes back cached. So 6 cached verdicts fit in a budget of 1.
    judge = ChaoticJudge(seed=0, failure_rate=0.0, cached_rate=1.0)
    spec = RankSpec(strategy="round_robin", budget=1)
    runner = Runner(judge, spec)
    prompt = PromptInput("Q", ["a", "b", "c"], prompt_id="p")

    async def go() -> list[object]:
        return [result async for result in runner.run([prompt])]

    (result,) = asyncio.run(go())
    ranking = result.ranking  # type: ignore[attr-defined]
    assert ranking.calls == 0 and ranking.cached == 6 and ranking.status == "complete"


@pytest.mark.parametrize("concurrency", [1, 8])
def test_a_token_cap_without_a_declared_bound_holds_for_equal_calls(concurrency: int) -> None:
    """No bound declared: the largest call seen is reserved, one call at a time until then."""

    class Plain:
        def __init__(self) -> None:
            self.tokens = 0

        async def judge(self, request: PairRequest) -> Verdict:
            self.tokens += 100
            return Verdict(score_1=4, score_2=2, ranking=2, usage=Usage(60, 40))

    judge = Plain()
    runner = Runner(judge, RankSpec(), concurrency=concurrency, max_tokens=1050)
    prompts = [PromptInput(f"q{i}", ["a", "b", "c"], prompt_id=str(i)) for i in range(5)]

    async def go() -> list[object]:
        return [result async for result in runner.run(prompts)]

    results = asyncio.run(go())
    assert judge.tokens == 1000 and runner.cap_reached == "max_tokens"
    assert len(results) == 1  # 6 calls for the first prompt, 4 of the second's 6 paid


@pytest.mark.parametrize("failure", [None, FailureKind.UNAVAILABLE])
def test_a_paid_call_without_reported_usage_counts_its_bound_toward_the_token_cap(
    failure: FailureKind | None,
) -> None:
    """A server (or gateway) that reports no usage, or a paid timeout: each call may have used
    its bound. Such calls once counted as nothing, and the cap never stopped the run."""

    class Unmetered:
        def __init__(self) -> None:
            self.calls = 0

        def call_token_bound(self, request: PairRequest) -> int:
            return TOKENS_MAX

        async def judge(self, request: PairRequest) -> Verdict:
            self.calls += 1
            if failure is not None:
                return Verdict.failed(failure, error="timed out", attempts=1)
            return Verdict(score_1=4, score_2=2, ranking=2)

    judge = Unmetered()
    runner = Runner(judge, RankSpec(retries=0), concurrency=8, max_tokens=1000)
    prompts = [PromptInput(f"q{i}", ["a", "b", "c"], prompt_id=str(i)) for i in range(20)]

    async def go() -> list[object]:
        return [result async for result in runner.run(prompts)]

    asyncio.run(go())
    assert judge.calls == 1000 // TOKENS_MAX and runner.cap_reached == "max_tokens"
