"""The orchestrator: one window of requests across many prompts, re-asks, budgets, caps, cancel."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest
from one_prompt import run_one

from genrm_rank.errors import EndpointsUnavailableError, ReplayMissError, SystematicFailureError
from genrm_rank.failure_watch import FailureWatch
from genrm_rank.judges.base import PairRequest
from genrm_rank.judges.simulated import SimulatedJudge
from genrm_rank.orchestrator import ADMISSIONS_A_STEP, COMPLETIONS_A_STEP, Orchestrator, PromptJob
from genrm_rank.strategies.round_robin import RoundRobin
from genrm_rank.verdict import FailureKind, Usage, Verdict


class CountingJudge:
    """Answers slot 1 wins after yielding to the loop; records peak concurrency."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.in_flight = 0
        self.peak = 0
        self.requests: list[PairRequest] = []

    async def judge(self, request: PairRequest) -> Verdict:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        self.requests.append(request)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.in_flight -= 1
        better = request.index_1 < request.index_2
        return Verdict(score_1=4, score_2=2, ranking=2 if better else 5, usage=Usage(10, 5))


class SequentialScheduler(RoundRobin):
    """Round-robin that releases one match at a time (like a knockout's dependent rounds)."""

    def __init__(self, n_items: int) -> None:
        super().__init__(n_items, swap="none")
        self._held = self._queue
        self._queue = []

    def next_pairs(self, limit=None):  # type: ignore[no-untyped-def]
        if self._outstanding == 0 and self._held and not self.stopped:
            self._queue = [self._held.pop(0)]
        return super().next_pairs(limit)

    @property
    def done(self) -> bool:
        return self._outstanding == 0 and (self.stopped or not self._held)


def _job(n: int = 4, key: object = None, **kw: object) -> PromptJob:
    return PromptJob(
        f"prompt {key}",
        [f"c{i}" for i in range(n)],
        RoundRobin(n, swap="both"),
        key=key,
        **kw,  # type: ignore[arg-type]
    )


async def _collect(orchestrator: Orchestrator, jobs: Sequence[PromptJob]) -> list:  # type: ignore[type-arg]
    return [run async for run in orchestrator.run(jobs)]


async def test_every_prompt_comes_back_once_with_all_its_calls() -> None:
    judge = CountingJudge()
    jobs = [_job(4, key=i) for i in range(50)]
    runs = await _collect(Orchestrator(judge, max_in_flight=16), jobs)
    assert sorted(r.job.key for r in runs) == list(range(50))
    assert all(len(r.judgements) == 12 and r.calls == 12 for r in runs)
    assert len(judge.requests) == 50 * 12


async def test_sequential_prompts_still_fill_the_global_window() -> None:
    """Each prompt has one call at a time; many prompts together must keep the window full."""
    judge = CountingJudge(delay=0.001)
    jobs = [PromptJob(f"p{i}", ["a", "b", "c"], SequentialScheduler(3), key=i) for i in range(40)]
    runs = await _collect(Orchestrator(judge, max_in_flight=20), jobs)
    assert len(runs) == 40
    assert judge.peak == 20


async def test_window_is_never_exceeded() -> None:
    judge = CountingJudge(delay=0.0005)
    await _collect(Orchestrator(judge, max_in_flight=7), [_job(5, key=i) for i in range(10)])
    assert judge.peak <= 7


class FlakyJudge:
    """Unreadable on the first ask of every request, fine on the re-ask."""

    async def judge(self, request: PairRequest) -> Verdict:
        if request.attempt == 0:
            return Verdict.failed(FailureKind.UNREADABLE, raw="I cannot decide.")
        return Verdict(score_1=3, score_2=3, ranking=3)


class BrokenJudge:
    async def judge(self, request: PairRequest) -> Verdict:
        return Verdict.failed(FailureKind.TRUNCATED, raw=None, error="max_tokens")


async def test_failed_verdicts_are_reasked_then_used() -> None:
    run = await run_one(FlakyJudge(), _job(3), retries=1)
    assert run.calls == 12 and run.reasked == 6 and run.failed_calls == 0
    assert all(j.verdict.ok for j in run.judgements)


async def test_failed_verdicts_stay_failed_after_the_retry_limit() -> None:
    run = await run_one(BrokenJudge(), _job(3), retries=2)
    assert run.calls == 18 and run.failed_calls == 6
    assert all(j.verdict.failure == "truncated" for j in run.judgements)


async def test_budget_stops_the_strategy_and_says_so() -> None:
    run = await run_one(CountingJudge(), _job(4, budget=5))
    assert run.calls == 5 and run.budget_bound
    unlimited = await run_one(CountingJudge(), _job(4, budget=12))
    assert unlimited.calls == 12 and not unlimited.budget_bound


async def test_run_wide_call_cap_drops_unfinished_prompts() -> None:
    orchestrator = Orchestrator(CountingJudge(), max_in_flight=4, max_calls=30)
    runs = await _collect(orchestrator, [_job(4, key=i) for i in range(10)])
    assert orchestrator.cap_reached == "max_calls"
    assert all(len(r.judgements) == 12 for r in runs)  # only finished prompts come back
    assert orchestrator.stats.calls < 30 + 4


async def test_token_cap() -> None:
    orchestrator = Orchestrator(CountingJudge(), max_in_flight=1, max_tokens=15 * 12)
    runs = await _collect(orchestrator, [_job(4, key=i) for i in range(3)])
    assert orchestrator.cap_reached == "max_tokens" and len(runs) == 1


class MissingJudge:
    async def judge(self, request: PairRequest) -> Verdict:
        if request.prompt_id == "bad":
            raise ReplayMissError("no record")
        return Verdict(ranking=1)


async def test_a_judge_error_ends_only_its_prompt() -> None:
    jobs = [_job(3, key="good", prompt_id="good"), _job(3, key="bad", prompt_id="bad")]
    runs = {r.job.key: r for r in await _collect(Orchestrator(MissingJudge()), jobs)}
    assert runs["good"].ok and runs["good"].calls == 6
    assert isinstance(runs["bad"].error, ReplayMissError)


class DeadJudge:
    async def judge(self, request: PairRequest) -> Verdict:
        await asyncio.sleep(0)
        raise EndpointsUnavailableError("http://a: connection refused")


async def test_all_endpoints_down_stops_the_run() -> None:
    with pytest.raises(EndpointsUnavailableError, match="connection refused"):
        await _collect(Orchestrator(DeadJudge()), [_job(3)])


async def test_cancellation_leaves_no_orphan_tasks() -> None:
    judge = CountingJudge(delay=10.0)
    orchestrator = Orchestrator(judge, max_in_flight=8)
    consumer = asyncio.ensure_future(_collect(orchestrator, [_job(4, key=i) for i in range(5)]))
    while judge.in_flight < 8:
        await asyncio.sleep(0.001)
    consumer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await consumer
    await asyncio.sleep(0)
    assert judge.in_flight == 0
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert others == []


class BatchCountingJudge(CountingJudge):
    def __init__(self) -> None:
        super().__init__()
        self.batches: list[int] = []

    async def judge_batch(self, requests: Sequence[PairRequest]) -> list[Verdict]:
        self.batches.append(len(requests))
        return [await self.judge(r) for r in requests]


async def test_batch_judges_get_batches() -> None:
    judge = BatchCountingJudge()
    runs = await _collect(
        Orchestrator(judge, max_in_flight=64, batch_size=16), [_job(5, key=i) for i in range(4)]
    )
    assert sum(judge.batches) == 80 and max(judge.batches) == 16
    assert all(r.calls == 20 for r in runs)


async def test_judge_statistics_pool_position_bias_across_prompts() -> None:
    judge = SimulatedJudge(position_bias=3.0, seed=1, noise_scale=0.5, qualities=lambda t: 0.0)
    orchestrator = Orchestrator(judge, max_in_flight=32)
    await _collect(orchestrator, [_job(4, key=i) for i in range(20)])
    share = orchestrator.stats.first_slot_win_share
    assert share is not None and share > 0.9
    assert orchestrator.stats.calls == 20 * 12


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ValueError, match="max_in_flight"):
        Orchestrator(CountingJudge(), max_in_flight=0)
    with pytest.raises(ValueError, match="scheduler"):
        PromptJob("q", ["a", "b", "c"], RoundRobin(2))


class CachedAnswerJudge:
    """Every verdict comes from a cache: it cost calls once, not in this run."""

    async def judge(self, request: PairRequest) -> Verdict:
        return Verdict(ranking=2, attempts=1, usage=Usage(10, 5), cached=True)


async def test_cached_verdicts_do_not_count_against_run_caps() -> None:
    orchestrator = Orchestrator(CachedAnswerJudge(), max_calls=1, max_tokens=1)
    runs = await _collect(orchestrator, [_job(4, key=i) for i in range(3)])
    assert len(runs) == 3 and orchestrator.cap_reached is None
    assert orchestrator.stats.calls == 0 and orchestrator.stats.cached_calls == 36
    # Cached verdicts are free: reported apart, never counted as paid calls.
    assert all(r.calls == 0 and r.cached == 12 for r in runs)


async def test_a_cap_ends_the_run_before_its_prompt_finishes() -> None:
    orchestrator = Orchestrator(CountingJudge(), max_calls=3, max_in_flight=1)
    assert await _collect(orchestrator, [_job(4)]) == []
    assert orchestrator.cap_reached == "max_calls" and orchestrator.stats.calls == 3


class StatisticsAwareScheduler(RoundRobin):
    """Would record run-wide judge statistics, were it handed them (the former seam)."""

    bound: bool = False

    def bind_judge_statistics(self, stats: object) -> None:
        self.bound = True


async def test_schedulers_are_not_handed_live_statistics() -> None:
    # Live statistics depend on which prompts finished first; what a prompt assumes of the
    # judge comes from a fixed profile (genrm_rank.judge_profile), never from them.
    schedulers = [StatisticsAwareScheduler(3, swap="both") for _ in range(4)]
    jobs = [PromptJob(f"p{i}", ["a", "b", "c"], s, key=i) for i, s in enumerate(schedulers)]
    orchestrator = Orchestrator(CountingJudge(), max_in_flight=64)
    await _collect(orchestrator, jobs)
    assert not any(s.bound for s in schedulers)
    assert orchestrator.stats.calls == 24  # still counted, for progress and summaries


async def test_eager_admission_moves_all_tournaments_round_by_round() -> None:
    """Eager: every prompt admitted up front and calls sent in the order they became ready, so
    all first rounds go out before any final; streaming finishes the oldest prompts first."""
    from genrm_rank.strategies.knockout import Knockout

    first_60: dict[str, set[str]] = {}
    for admission in ("eager", "streaming"):
        judge = CountingJudge(delay=0.0005)
        jobs = [
            PromptJob(
                f"p{i}",
                [f"c{k}" for k in range(4)],
                Knockout(4, swap="none", seed=0),
                key=i,
                prompt_id=str(i),
            )
            for i in range(30)
        ]
        runs = await _collect(Orchestrator(judge, max_in_flight=8, admission=admission), jobs)
        assert sorted(r.job.key for r in runs) == list(range(30))
        first_60[admission] = {r.prompt_id for r in judge.requests[:60]}
    assert first_60["eager"] == {str(i) for i in range(30)}  # 2 first-round calls a prompt
    assert len(first_60["streaming"]) < 30  # some prompts' finals came before others' start


def test_admission_is_validated() -> None:
    with pytest.raises(ValueError, match="admission"):
        Orchestrator(CountingJudge(), admission="lazy")


async def test_reasks_count_against_the_budget() -> None:
    """Budget 2 on a 3-candidate knockout: a re-ask of round 1 leaves no call for the final."""
    from genrm_rank.strategies.knockout import Knockout

    job = PromptJob("q", ["a", "b", "c"], Knockout(3, swap="none", seed=0), budget=2)
    run = await run_one(FlakyJudge(), job, retries=1)
    assert run.calls == 2 and run.budget_bound


@pytest.mark.parametrize("batch_size", [1, 4])
async def test_reasks_in_flight_never_overshoot_the_budget(batch_size: int) -> None:
    judge = BatchCountingFlakyJudge()
    run = await run_one(judge, _job(4, budget=5), retries=3, batch_size=batch_size)
    assert run.calls <= 5 and judge.calls == run.calls and run.budget_bound


class BatchCountingFlakyJudge:
    def __init__(self) -> None:
        self.calls = 0

    async def judge(self, request: PairRequest) -> Verdict:
        self.calls += 1
        await asyncio.sleep(0)
        return await FlakyJudge().judge(request)

    async def judge_batch(self, requests: Sequence[PairRequest]) -> list[Verdict]:
        return [await self.judge(r) for r in requests]


async def test_a_cancelled_run_gives_its_window_back() -> None:
    judge = CountingJudge(delay=10.0)
    orchestrator = Orchestrator(judge, max_in_flight=4)
    consumer = asyncio.ensure_future(_collect(orchestrator, [_job(4, key=0)]))
    while judge.in_flight < 4:
        await asyncio.sleep(0.001)
    consumer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await consumer
    assert orchestrator.in_flight == 0
    judge.delay = 0.0
    runs = await _collect(orchestrator, [_job(3, key=1)])
    assert [r.job.key for r in runs] == [1]


class BatchMissingJudge(BatchCountingJudge):
    """A batch judge whose record lacks every pair of prompt 'bad'."""

    async def judge(self, request: PairRequest) -> Verdict:
        if request.prompt_id == "bad":
            raise ReplayMissError("no record")
        return await super().judge(request)

    async def judge_batch(self, requests: Sequence[PairRequest]) -> list[Verdict]:
        self.batches.append(len(requests))
        return [await self.judge(r) for r in requests]


async def test_a_judge_error_in_a_batch_lands_on_its_own_prompt_only() -> None:
    judge = BatchMissingJudge()
    jobs = [_job(3, key=k, prompt_id=k) for k in ("a", "bad", "b")]
    runs = {r.job.key: r for r in await _collect(Orchestrator(judge, batch_size=32), jobs)}
    assert isinstance(runs["bad"].error, ReplayMissError)
    assert runs["a"].ok and runs["b"].ok
    assert runs["a"].calls == runs["b"].calls == 6


async def test_calls_of_a_failed_prompt_are_not_sent() -> None:
    judge = MissingJudge()
    sent: list[str] = []
    original = judge.judge

    async def spy(request: PairRequest) -> Verdict:
        sent.append(request.prompt_id)
        return await original(request)

    judge.judge = spy  # type: ignore[method-assign]
    # One request at a time: after the first 'bad' error, its 5 other calls are dropped unsent.
    runs = await _collect(
        Orchestrator(judge, max_in_flight=1), [_job(3, key="bad", prompt_id="bad")]
    )
    assert sent == ["bad"]
    assert isinstance(runs[0].error, ReplayMissError) and runs[0].calls == 0


class FailingJudge(CountingJudge):
    """Every answer unreadable (a persistent fault); records peak concurrency."""

    async def judge(self, request: PairRequest) -> Verdict:
        await super().judge(request)
        return Verdict.failed(FailureKind.UNREADABLE, raw="?", error="no verdict")


async def test_a_watched_run_stops_after_a_few_calls_when_every_verdict_fails() -> None:
    judge = FailingJudge(delay=0.001)
    orch = Orchestrator(judge, max_in_flight=512, failure_watch=FailureWatch())
    with pytest.raises(SystematicFailureError, match=r"first 8 verdicts .* unreadable"):
        [run async for run in orch.run(_job(4, key=i) for i in range(100))]
    assert judge.peak <= 8  # the window opens only after a usable verdict
    assert len(judge.requests) <= 16  # 8 answered; the rest cancelled in flight
    assert judge.in_flight == 0


async def test_an_unwatched_run_pays_for_every_prompt() -> None:
    judge = FailingJudge()
    runs = [r async for r in Orchestrator(judge, retries=0).run(_job(3, key=i) for i in range(5))]
    assert len(runs) == 5 and len(judge.requests) == 5 * 6


async def test_the_window_opens_once_a_verdict_is_usable() -> None:
    judge = CountingJudge(delay=0.001)
    orch = Orchestrator(judge, max_in_flight=64, failure_watch=FailureWatch(probe_in_flight=2))
    runs = [r async for r in orch.run(_job(6, key=i) for i in range(40))]
    assert len(runs) == 40 and judge.peak == 64


class TickingRoundRobin(RoundRobin):
    """Round-robin that notes, at each verdict, how many loop steps a ticker task has made."""

    def __init__(self, n_items: int, ticks: list[int], seen: list[int]) -> None:
        super().__init__(n_items, swap="both")
        self.ticks, self.seen = ticks, seen

    def record(self, call, verdict):  # type: ignore[no-untyped-def]
        self.seen.append(self.ticks[0])
        super().record(call, verdict)


async def test_a_burst_of_completions_is_taken_back_a_few_a_loop_step() -> None:
    # 256 calls finish in one loop step; the orchestrator takes back at most
    # COMPLETIONS_A_STEP of them before the loop runs other tasks (here a ticker).
    ticks, seen = [0], []  # type: ignore[var-annotated]

    async def ticker() -> None:
        while True:
            ticks[0] += 1
            await asyncio.sleep(0)

    jobs = [
        PromptJob(f"p{i}", [f"c{j}" for j in range(4)], TickingRoundRobin(4, ticks, seen))
        for i in range(32)
    ]
    ticking = asyncio.ensure_future(ticker())
    try:
        runs = await _collect(Orchestrator(CountingJudge(), max_in_flight=256), jobs)
    finally:
        ticking.cancel()
    assert len(runs) == 32 and len(seen) == 32 * 12
    per_tick = [seen.count(t) for t in set(seen)]
    assert max(per_tick) <= COMPLETIONS_A_STEP


async def test_admitting_a_window_of_prompts_lets_the_loop_run_between_steps() -> None:
    # Each admission builds a scheduler and its first proposals; a window of them admitted in
    # one loop step held every response back meanwhile. A ticker runs between every
    # ADMISSIONS_A_STEP admissions.
    ticks, seen = [0], []

    class Noting(RoundRobin):
        def next_pairs(self, limit: int | None = None) -> Any:
            seen.append(ticks[0])
            return super().next_pairs(limit)

    async def ticker() -> None:
        while True:
            ticks[0] += 1
            await asyncio.sleep(0)

    jobs = [
        PromptJob(f"q{i}", ["a", "bb", "ccc"], scheduler=Noting(3, swap="none")) for i in range(64)
    ]
    ticking = asyncio.ensure_future(ticker())
    try:
        runs = [
            run async for run in Orchestrator(SimulatedJudge(seed=0), max_in_flight=1024).run(jobs)
        ]
    finally:
        ticking.cancel()
    assert len(runs) == 64
    first_calls = seen[:64]  # each job's first next_pairs is at its admission
    steps = [len([t for t in first_calls if t == tick]) for tick in sorted(set(first_calls))]
    assert max(steps) <= ADMISSIONS_A_STEP
