"""A tiny synchronous driver and hand-made judges for the strategy tests (no asyncio, no I/O)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from genrm_rank.strategies.base import PairCall, Scheduler
from genrm_rank.verdict import Verdict

JudgeFn = Callable[[PairCall], Verdict]


def drive(
    scheduler: Scheduler, judge: JudgeFn, *, arrival: np.random.Generator | None = None
) -> int:
    """Loop ``next_pairs``/``record`` until the scheduler is done; return the calls made.

    ``arrival`` shuffles each batch before recording it, to mimic verdicts arriving out of order.
    """
    calls = 0
    while not scheduler.done:
        batch = scheduler.next_pairs()
        if not batch:
            raise AssertionError("scheduler is not done but asks for nothing, with nothing out")
        if arrival is not None:
            batch = [batch[i] for i in arrival.permutation(len(batch))]
        for call in batch:
            scheduler.record(call, judge(call))
        calls += len(batch)
    return calls


def drive_interleaved(scheduler: Scheduler, judge: JudgeFn) -> int:
    """Drive as the orchestrator does: the scheduler is asked for more after every verdict,
    with the rest of its calls still in flight (they come back first in, first out)."""
    in_flight: list[PairCall] = []
    calls = 0
    while True:
        in_flight += scheduler.next_pairs()
        if not in_flight:
            if scheduler.done:
                return calls
            raise AssertionError("scheduler is not done but asks for nothing, with nothing out")
        call = in_flight.pop(0)
        scheduler.record(call, judge(call))
        calls += 1


def transitive(quality: Sequence[float], *, scores: bool = False) -> JudgeFn:
    """Noiseless judge: ranking 1 if slot 1's quality is higher, else 6 (``scores``: 5 vs 1)."""

    def judge(call: PairCall) -> Verdict:
        better = quality[call.first] > quality[call.second]
        if scores:
            return Verdict(
                score_1=5 if better else 1, score_2=1 if better else 5, ranking=1 if better else 6
            )
        return Verdict(ranking=1 if better else 6)

    return judge


def graded(quality: Sequence[float]) -> JudgeFn:
    """Judge whose ranking grows with the quality gap (3.5 and equal scores for equal quality)."""

    def judge(call: PairCall) -> Verdict:
        gap = quality[call.first] - quality[call.second]
        ranking = float(np.clip(3.5 - gap, 1.0, 6.0))
        s1 = float(np.clip(quality[call.first], 1, 5))
        s2 = float(np.clip(quality[call.second], 1, 5))
        return Verdict(score_1=s1, score_2=s2, ranking=ranking)

    return judge


def position_biased(ranking: float, *, scores: tuple[float, float] | None = None) -> JudgeFn:
    """Judge with pure position bias: the same verdict whatever the candidates."""

    def judge(call: PairCall) -> Verdict:
        if scores is None:
            return Verdict(ranking=ranking)
        return Verdict(score_1=scores[0], score_2=scores[1], ranking=ranking)

    return judge


def failing(call: PairCall) -> Verdict:
    """Judge whose every answer is unreadable."""
    return Verdict.failed("unreadable", raw=f"garbage for {call.first} vs {call.second}")


def noisy(seed: int, *, fail_rate: float = 0.1) -> JudgeFn:
    """Random rankings 1..6 (some 3.5), with some failed verdicts, from a seeded generator."""
    rng = np.random.default_rng(seed)

    def judge(call: PairCall) -> Verdict:
        u = rng.random()
        if u < fail_rate:
            return Verdict.failed("truncated", raw="...")
        if u < fail_rate + 0.05:
            return Verdict(ranking=3.5)
        return Verdict(
            score_1=float(rng.integers(1, 6)),
            score_2=float(rng.integers(1, 6)),
            ranking=float(rng.integers(1, 7)),
        )

    return judge
