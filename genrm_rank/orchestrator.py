"""The orchestrator: many prompts' schedulers through one judge, in one window of requests.

A knockout on one prompt is sequential, so :class:`Orchestrator` keeps one window of
``max_in_flight`` requests filled from every active prompt, admitting the next prompt (read
lazily) when none has calls ready. It is the one retry layer (a failed verdict is asked again,
then handed on as failed, never as a made-up value), holds per-prompt budgets and run-wide caps
as ceilings on paid generations, counts :class:`JudgeStatistics` (read by no scheduler: a
prompt assumes a fixed :mod:`~genrm_rank.judge_profile`), and on cancellation awaits every
request it started.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from genrm_rank import validate as check
from genrm_rank.errors import (
    EndpointsUnavailableError,
    JudgeConfigurationError,
    JudgeError,
    SystematicFailureError,
)
from genrm_rank.failure_watch import FailureWatch
from genrm_rank.judges.base import BatchJudge, Judge, PairRequest
from genrm_rank.messages import Conversation
from genrm_rank.strategies.base import Judgement, PairCall, Scheduler, StrategyOutcome
from genrm_rank.verdict import FailureKind, Usage, Verdict

__all__ = [
    "RETRYABLE_FAILURES",
    "JudgeStatistics",
    "Orchestrator",
    "PromptJob",
    "PromptRun",
    "aiterate",
]

T = TypeVar("T")

COMPLETIONS_A_STEP = 8
"""Finished calls taken back in one event-loop step; the rest wait for the next, so that one
step never runs for long (issue 22: ``benchmarks/bench_client_cpu.py --loop-probe``)."""

ADMISSIONS_A_STEP = 8
"""Prompts admitted in one loop step: a strategy's first proposals cost up to a millisecond a
prompt (adaptive), and a window of 256 admitted at once held the loop for 80 ms."""

RETRYABLE_FAILURES = frozenset(FailureKind) - {FailureKind.REJECTED}
"""Failures worth asking again: the model said something unusable, or no answer came back
(a timeout, a 5xx, a dropped connection). ``rejected`` (the server refused the request) is not."""


@dataclass
class PromptJob:
    """One prompt's tournament: what to compare, and the scheduler (built for
    ``len(candidates)`` items) that decides how. ``budget``: most calls it may pay for; ``key``:
    the caller's handle, returned on the run. The rest as :class:`~genrm_rank.runner.PromptInput`.
    """

    conversation: Conversation
    candidates: Sequence[str]
    scheduler: Scheduler
    principle: str | None = None
    prompt_id: str = ""
    candidate_ids: Sequence[str] | None = None
    budget: int | None = None
    key: Any = None

    def __post_init__(self) -> None:
        if self.scheduler.n_items != len(self.candidates):
            raise ValueError(
                f"Argument 'scheduler' is built for {self.scheduler.n_items} items, "
                f"not the {len(self.candidates)} candidates given."
            )
        if self.candidate_ids is not None and len(self.candidate_ids) != len(self.candidates):
            raise ValueError(
                f"Argument 'candidate_ids' must have one id per candidate "
                f"({len(self.candidates)}), not {len(self.candidate_ids)}."
            )
        check.at_least("budget", self.budget, 0, optional=True)

    def request(self, call: PairCall, attempt: int = 0) -> PairRequest:
        """The judge request for one call of this job."""
        ids, first, second = self.candidate_ids, call.first, call.second
        return PairRequest(
            conversation=self.conversation,
            response_1=self.candidates[first],
            response_2=self.candidates[second],
            principle=self.principle,
            prompt_id=self.prompt_id,
            index_1=first,
            index_2=second,
            id_1=None if ids is None else ids[first],
            id_2=None if ids is None else ids[second],
            sample=call.sample,
            attempt=attempt,
        )


@dataclass
class PromptRun:
    """What running one :class:`PromptJob` produced.

    ``calls``: generations paid, re-asks included; ``cached``: verdicts served free from a
    cache; ``failed_calls``: verdicts still failed after every re-ask; ``reasked``: failed
    verdicts asked again; ``budget_bound``: the budget stopped the strategy; ``error``: a judge
    error that ended the prompt.
    """

    job: PromptJob
    judgements: list[Judgement] = field(default_factory=list)
    outcome: StrategyOutcome = field(default_factory=StrategyOutcome)
    calls: int = 0
    cached: int = 0
    failed_calls: int = 0
    reasked: int = 0
    usage: Usage = field(default_factory=Usage)
    budget_bound: bool = False
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        """Whether the prompt ran to a usable end (no error)."""
        return self.error is None


@dataclass
class JudgeStatistics:
    """Judge-level statistics pooled over a run: paid ``calls`` and ``usage`` (what the caps
    hold), cached ones apart, verdict outcomes and slot wins."""

    calls: int = 0
    cached_calls: int = 0
    cached_usage: Usage = field(default_factory=Usage)
    verdicts_ok: int = 0
    verdicts_failed: int = 0
    first_slot_wins: int = 0
    second_slot_wins: int = 0
    ties: int = 0
    usage: Usage = field(default_factory=Usage)
    failures: dict[str, int] = field(default_factory=dict)

    def add(self, verdict: Verdict) -> None:
        """Count one verdict as it comes back."""
        if verdict.cached:
            self.cached_calls += verdict.attempts
            if verdict.usage is not None:
                self.cached_usage += verdict.usage
        else:
            self.calls += verdict.attempts
            if verdict.usage is not None:
                self.usage += verdict.usage
        if verdict.ranking is None:
            self.verdicts_failed += 1
            kind = str(verdict.failure)
            self.failures[kind] = self.failures.get(kind, 0) + 1
        else:
            self.verdicts_ok += 1
            self.first_slot_wins += verdict.ranking < 3.5
            self.second_slot_wins += verdict.ranking > 3.5
            self.ties += verdict.ranking == 3.5

    @property
    def first_slot_win_share(self) -> float | None:
        """First-slot wins among decided verdicts (``None`` before any)."""
        decided = self.first_slot_wins + self.second_slot_wins
        return None if decided == 0 else self.first_slot_wins / decided


@dataclass
class _ActiveJob:
    job: PromptJob
    run: PromptRun
    seq: int = 0
    in_flight: int = 0
    queued: int = 0
    finished: bool = False


@dataclass
class _Pending:
    state: _ActiveJob
    call: PairCall
    attempt: int = 0
    reserved_tokens: int = 0


class _ReadyQueue:
    """Calls ready to send: oldest prompt first (streaming: a knockout's later rounds overtake
    newer prompts' first rounds, so prompts finish sooner), or in release order (eager)."""

    def __init__(self, by_prompt_age: bool = True) -> None:
        self.heap: list[tuple[int, int, _Pending]] = []
        self._counter = itertools.count()
        self._by_prompt_age = by_prompt_age

    def __len__(self) -> int:
        return len(self.heap)

    def push(self, item: _Pending) -> None:
        item.state.queued += 1
        age = item.state.seq if self._by_prompt_age else 0
        heapq.heappush(self.heap, (age, next(self._counter), item))

    def pop(self) -> _Pending:
        item = heapq.heappop(self.heap)[2]
        item.state.queued -= 1
        return item

    def peek(self) -> _Pending:
        return self.heap[0][2]


ProgressCallback = Callable[[JudgeStatistics, int], None]


class Orchestrator:
    """Runs many prompts' schedulers through one judge with one window of in-flight requests.

    Parameters
    ----------
    judge : Judge
    max_in_flight : int
        Requests outstanding at once, across all prompts.
    retries : int
        Re-asks of a failed verdict of a kind in :data:`RETRYABLE_FAILURES`, each a paid call.
    batch_size : int
        Requests per ``judge_batch`` call of a :class:`~genrm_rank.judges.base.BatchJudge`.
    max_calls, max_tokens : int, optional
        Run-wide ceilings on paid generations and tokens, every call in flight counted as paid
        (tokens: ``judge.call_token_bound(request)``, else the largest call seen; a paid call
        that reports no usage keeps that bound). Prompts they leave unfinished are not returned;
        :attr:`cap_reached` names the cap.
    on_progress : callable, optional
        Called as ``on_progress(stats, in_flight)`` after every verdict.
    admission : {"streaming", "eager"}
        ``"streaming"``: admit a prompt only when the window would run dry, oldest prompt's
        calls first (bounded memory). ``"eager"``: admit every prompt up front, so tournaments
        move round by round together (``benchmarks/README.md``, "Serving: 1,000 prompts").
    failure_watch : FailureWatch, optional
        Stops the run (:class:`~genrm_rank.errors.SystematicFailureError`) once its verdicts
        fail systematically, with a small window until a first verdict is usable.
    """

    def __init__(
        self,
        judge: Judge,
        *,
        max_in_flight: int = 64,
        retries: int = 2,
        batch_size: int = 1,
        max_calls: int | None = None,
        max_tokens: int | None = None,
        on_progress: ProgressCallback | None = None,
        admission: str = "streaming",
        failure_watch: FailureWatch | None = None,
    ) -> None:
        self.max_in_flight = check.at_least("max_in_flight", max_in_flight, 1)
        self.retries = check.at_least("retries", retries, 0)
        batch_size = check.at_least("batch_size", batch_size, 1)
        if admission not in ("streaming", "eager"):
            raise ValueError(
                f"Argument 'admission' must be 'streaming' or 'eager', not {admission!r}."
            )
        self.max_calls = check.at_least("max_calls", max_calls, 0, optional=True)
        self.max_tokens = check.at_least("max_tokens", max_tokens, 0, optional=True)
        self.judge = judge
        self.batch_size = batch_size if isinstance(judge, BatchJudge) else 1
        self.on_progress = on_progress
        self.admission = admission
        self.failure_watch = failure_watch
        self.stats = JudgeStatistics()
        self.cap_reached: str | None = None
        self.in_flight = 0
        self._reserved_tokens = 0
        self._unmetered_tokens = 0
        """Tokens of paid calls whose usage is unknown (none reported, a timeout): their bound."""
        self._largest_call_tokens = 0

    def _window(self) -> int:
        """Requests that may be in flight now (fewer until a first usable verdict, if watched)."""
        watch = self.failure_watch
        return self.max_in_flight if watch is None else watch.in_flight_limit(self.max_in_flight)

    def _cap_check(self) -> None:
        if self.cap_reached is not None:
            return
        if self.max_calls is not None and self.stats.calls >= self.max_calls:
            self.cap_reached = "max_calls"
        elif self.max_tokens is not None and self._spent_tokens() >= self.max_tokens:
            self.cap_reached = "max_tokens"

    def _spent_tokens(self) -> int:
        """Tokens the token cap holds as spent: the usage reported, and the bound of each paid
        call that reported none (it may have generated up to it)."""
        return self.stats.usage.total_tokens + self._unmetered_tokens

    def _token_bound(self, item: _Pending) -> int | None:
        """Most tokens one call may use: the judge's bound, else the largest call seen."""
        bound = getattr(self.judge, "call_token_bound", None)
        if bound is not None:
            value = bound(item.state.job.request(item.call, item.attempt))
            if value is not None:
                return int(value)
        return self._largest_call_tokens or None

    def _fits(self, item: _Pending, batch_size: int) -> str | None:
        """The cap that sending ``item`` (after ``batch_size`` others) would break, if any."""
        in_flight = self.in_flight + batch_size
        if self.max_calls is not None and self.stats.calls + in_flight >= self.max_calls:
            return "max_calls"
        if self.max_tokens is not None:
            bound = self._token_bound(item)
            if bound is None:
                # Nothing known of a call's size yet: one call at a time until one comes back.
                return "max_tokens" if in_flight else None
            spent = self._spent_tokens() + self._reserved_tokens
            if spent + bound > self.max_tokens:
                return "max_tokens"
            item.reserved_tokens = bound
        return None

    def _release(self, state: _ActiveJob, ready: _ReadyQueue) -> None:
        """Move a job's newly available calls into the ready queue, within its budget (counting
        what is paid, re-asks included, and what is still out)."""
        budget = state.job.budget
        left = None if budget is None else budget - self._committed(state)
        for call in state.job.scheduler.next_pairs(left):
            ready.push(_Pending(state, call))

    @staticmethod
    def _committed(state: _ActiveJob) -> int:
        """Calls a job has paid for, plus its requests still queued or in flight (as if paid)."""
        return state.run.calls + state.in_flight + state.queued

    def _settle(self, state: _ActiveJob, finished: deque[PromptRun]) -> None:
        """Add the job's run to ``finished`` once done; stop a strategy its budget holds back."""
        if state.finished or state.in_flight or state.queued:
            return
        scheduler, run, budget = state.job.scheduler, state.run, state.job.budget
        if not scheduler.done and budget is not None and self._committed(state) >= budget:
            scheduler.stop()  # it still wants calls the budget does not allow
            run.budget_bound = True
        if scheduler.done:
            state.finished = True
            run.judgements = scheduler.judgements()
            if run.error is None:
                run.outcome = scheduler.result()
            finished.append(run)

    async def _judge_items(self, items: list[_Pending]) -> list[Verdict | BaseException]:
        """Judge a batch; a job error is returned in place of its verdict (a batch that raises
        one is asked again request by request, so it lands on its own prompt only)."""
        requests = [p.state.job.request(p.call, p.attempt) for p in items]
        if len(requests) > 1 and isinstance(self.judge, BatchJudge):
            try:
                return list(await self.judge.judge_batch(requests))
            except Exception as error:
                if not _is_job_error(error):
                    raise
        results: list[Verdict | BaseException] = []
        for request in requests:
            try:
                results.append(await self.judge.judge(request))
            except Exception as error:
                if not _is_job_error(error):
                    raise
                results.append(error)
        return results

    async def run(
        self, jobs: Iterable[PromptJob] | AsyncIterable[PromptJob]
    ) -> AsyncIterator[PromptRun]:
        """Run every job; yield each :class:`PromptRun` in completion order (``run.job.key``)."""
        source = aiterate(jobs)
        exhausted = False
        eager = self.admission == "eager"
        ready = _ReadyQueue(by_prompt_age=not eager)
        admitted = itertools.count()
        tasks: dict[asyncio.Future[list[Verdict | BaseException]], list[_Pending]] = {}
        completed: asyncio.Queue[asyncio.Future[list[Verdict | BaseException]]] = asyncio.Queue()
        finished: deque[PromptRun] = deque()
        try:
            while True:
                self._cap_check()
                # Admit prompts while the window has room and nothing is ready to send.
                while (
                    not exhausted
                    and self.cap_reached is None
                    and (eager or len(ready) < self._window() - self.in_flight)
                ):
                    try:
                        job = await source.__anext__()
                    except StopAsyncIteration:
                        exhausted = True
                        break
                    state = _ActiveJob(job, PromptRun(job), seq=next(admitted))
                    self._release(state, ready)
                    self._settle(state, finished)
                    if state.seq % ADMISSIONS_A_STEP == ADMISSIONS_A_STEP - 1:
                        await asyncio.sleep(0)  # the loop serves the window in between
                # Fill the window, as far as the caps allow with every call in flight paid.
                blocked: str | None = None
                while (
                    ready
                    and self.in_flight < self._window()
                    and self.cap_reached is None
                    and blocked is None
                ):
                    items: list[_Pending] = []
                    while (
                        ready
                        and len(items) < self.batch_size
                        and self.in_flight + len(items) < self._window()
                    ):
                        item = ready.peek()
                        if item.state.run.error is not None:
                            # Its prompt already failed: close the call without paying for it.
                            ready.pop()
                            self._close_failed(item, item.state.run.error)
                            self._settle(item.state, finished)
                            continue
                        blocked = self._fits(item, len(items))
                        if blocked is not None:
                            break
                        ready.pop()
                        self._reserved_tokens += item.reserved_tokens
                        items.append(item)
                    if not items:
                        continue
                    for item in items:
                        item.state.in_flight += 1
                    self.in_flight += len(items)
                    future = asyncio.ensure_future(self._judge_items(items))
                    future.add_done_callback(completed.put_nowait)
                    tasks[future] = items
                if blocked is not None and not tasks:
                    # Nothing in flight and the next call does not fit: the cap is reached.
                    self.cap_reached = blocked
                    ready.heap.clear()
                while finished:
                    yield finished.popleft()
                if not tasks:
                    break
                # A queue fed by done-callbacks: O(1) a completion, where asyncio.wait is O(window).
                if not completed.empty():
                    await asyncio.sleep(0)  # completions left by a capped batch: loop first
                done = [await completed.get()]
                while not completed.empty() and len(done) < COMPLETIONS_A_STEP:
                    done.append(completed.get_nowait())
                for finished_call in done:
                    items = tasks.pop(finished_call)
                    self.in_flight -= len(items)
                    error = finished_call.exception()
                    if error is not None:
                        raise error
                    outcomes = finished_call.result()
                    for item, outcome in zip(items, outcomes, strict=True):
                        # One at a time, so that a budget check of one item of a batch still
                        # counts the items behind it as outstanding.
                        item.state.in_flight -= 1
                        if isinstance(outcome, BaseException):
                            self._close_failed(item, outcome)
                        else:
                            self._take(item, outcome, ready)
                    for item in items:
                        self._settle(item.state, finished)
                    if self.on_progress is not None:
                        self.on_progress(self.stats, self.in_flight)
                if self.cap_reached is not None:
                    ready.heap.clear()
        finally:
            if tasks:
                for pending in tasks:
                    pending.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                # Those requests are gone: give their slots back for a later run().
                for items in tasks.values():
                    self.in_flight -= len(items)
                    for item in items:
                        item.state.in_flight -= 1
                        self._reserved_tokens -= item.reserved_tokens

    def _close_failed(self, item: _Pending, error: BaseException) -> None:
        """End a call whose prompt hit a judge error: the prompt stops, the call is closed."""
        self._reserved_tokens -= item.reserved_tokens
        item.reserved_tokens = 0
        state = item.state
        if state.run.error is None:
            state.run.error = error
            state.job.scheduler.stop()
        state.job.scheduler.record(
            item.call, Verdict.failed(FailureKind.UNAVAILABLE, error=f"judge error: {error}")
        )

    def _take(self, item: _Pending, verdict: Verdict, ready: _ReadyQueue) -> None:
        """Account for one verdict; re-ask it, or hand it to the scheduler."""
        state = item.state
        run = state.run
        self._reserved_tokens -= item.reserved_tokens
        if verdict.usage is None and verdict.attempts and not verdict.cached:
            self._unmetered_tokens += item.reserved_tokens
        item.reserved_tokens = 0
        self.stats.add(verdict)
        if self.failure_watch is not None:
            self.failure_watch.add(verdict)  # raises once the failures are systematic
        if verdict.cached:
            run.cached += 1  # free: its reservation is given back, no budget is used
        else:
            run.calls += verdict.attempts
            if verdict.usage is not None:
                run.usage = run.usage + verdict.usage
                self._largest_call_tokens = max(
                    self._largest_call_tokens, verdict.usage.total_tokens
                )
        self._cap_check()
        if (
            verdict.failure in RETRYABLE_FAILURES
            and item.attempt < self.retries
            and self.cap_reached is None
            and (state.job.budget is None or self._committed(state) < state.job.budget)
        ):
            run.reasked += 1
            ready.push(_Pending(state, item.call, item.attempt + 1))
            return
        if not verdict.ok:
            run.failed_calls += 1
        state.job.scheduler.record(item.call, verdict)
        if self.cap_reached is None:
            self._release(state, ready)


def _is_job_error(error: BaseException) -> bool:
    """Errors that end one prompt but not the run (judge errors other than 'all endpoints down'
    and 'every endpoint refuses the run')."""
    return isinstance(error, JudgeError) and not isinstance(
        error, (EndpointsUnavailableError, JudgeConfigurationError, SystematicFailureError)
    )


async def aiterate(items: Iterable[T] | AsyncIterable[T]) -> AsyncIterator[T]:
    """Iterate a sync or an async iterable asynchronously (lazily: nothing is read ahead)."""
    if isinstance(items, AsyncIterable):
        async for item in items:
            yield item
    else:
        for item in items:
            yield item
