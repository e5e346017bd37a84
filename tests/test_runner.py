"""The runner: prompts in, one aggregated result a prompt out, without starving the loop."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import threading
import time
from typing import Any

import pytest

import genrm_rank.runner
from genrm_rank.judges.simulated import SimulatedJudge
from genrm_rank.runner import PromptInput, Runner
from genrm_rank.spec import RankSpec


async def test_prompts_are_aggregated_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    # A prompt's aggregation takes milliseconds of CPU; on the loop it held back every
    # response and request meanwhile. It runs on a worker thread: the loop keeps ticking while
    # a (here deliberately slow) aggregation runs, and the results are those of the same run.
    ticks, spans, threads = [0], [], set()
    original = genrm_rank.runner.build_ranking

    def slow(*args: Any, **kwargs: Any) -> Any:
        threads.add(threading.get_ident())
        started = ticks[0]
        time.sleep(0.02)
        spans.append(ticks[0] - started)
        return original(*args, **kwargs)

    async def ticker() -> None:
        while True:
            ticks[0] += 1
            await asyncio.sleep(0)

    def prompts() -> list[PromptInput]:
        return [PromptInput(f"q{i}", [f"a{i}", f"bb{i}", f"ccc{i}"]) for i in range(12)]

    spec = RankSpec(strategy="knockout")
    plain = [r async for r in Runner(SimulatedJudge(seed=0), spec).run(prompts())]
    monkeypatch.setattr(genrm_rank.runner, "build_ranking", slow)
    ticking = asyncio.ensure_future(ticker())
    try:
        results = [r async for r in Runner(SimulatedJudge(seed=0), spec).run(prompts())]
    finally:
        ticking.cancel()
    assert threading.get_ident() not in threads
    assert len(spans) == 12 and min(spans) > 0
    by_prompt = {r.prompt.conversation: r.ranking for r in plain}
    assert len(results) == 12
    for result in results:
        assert result.ranking == by_prompt[result.prompt.conversation]


async def test_a_run_left_early_stops_its_requests_and_its_worker() -> None:
    before = set(threading.enumerate())
    runner = Runner(SimulatedJudge(seed=0), RankSpec(strategy="round_robin"), concurrency=4)
    prompts = (PromptInput(f"q{i}", ["a", "bb", "ccc", "dddd"]) for i in range(10_000))
    async with contextlib.aclosing(runner.run(prompts)) as results:
        async for _ in results:
            break
    assert runner.orchestrator.in_flight == 0
    left = set(threading.enumerate()) - before
    assert not any(t.name.startswith("genrm-rank-aggregate") for t in left)


@pytest.mark.parametrize("threshold", [700, 0])
async def test_a_run_collects_garbage_less_often_and_restores_the_collector(
    threshold: int,
) -> None:
    # A run allocates hundreds of short-lived objects a comparison: for its life the heap
    # before it is frozen and the young generation is collected every GC_THRESHOLD net
    # allocations, not every 700. Both are restored after, also when two runs overlap; a
    # collector the caller turned off (threshold 0) stays off.
    saved = gc.get_threshold()
    gc.set_threshold(threshold, 10, 10)
    seen: list[tuple[int, int]] = []

    def progress(*_: Any) -> None:
        seen.append((gc.get_threshold()[0], gc.get_freeze_count()))

    def prompts() -> list[PromptInput]:
        return [PromptInput(f"q{i}", ["a", "bb", "ccc"]) for i in range(4)]

    async def one() -> None:
        runner = Runner(SimulatedJudge(seed=0), RankSpec(strategy="knockout"), on_progress=progress)
        assert len([r async for r in runner.run(prompts())]) == 4

    try:
        await asyncio.gather(one(), one())
        assert gc.get_threshold() == (threshold, 10, 10)
        assert gc.get_freeze_count() == 0
    finally:
        gc.set_threshold(*saved)
    expected = genrm_rank.runner.GC_THRESHOLD if threshold else 0
    assert seen and all(t == expected and frozen > 0 for t, frozen in seen)
