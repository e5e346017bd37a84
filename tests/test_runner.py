"""The runner: prompts in, one aggregated result a prompt out, without starving the loop."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import genrm_rank.runner
from genrm_rank.judges.simulated import SimulatedJudge
from genrm_rank.runner import PromptInput, Runner
from genrm_rank.spec import RankSpec


async def test_prompts_finishing_together_are_aggregated_one_a_loop_step(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The simulated judge answers at once, so many prompts finish in the same loop step; a
    # ticker task must run between any two aggregations.
    ticks, seen = [0], []
    original = genrm_rank.runner.build_ranking

    def noting(*args: Any, **kwargs: Any) -> Any:
        seen.append(ticks[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(genrm_rank.runner, "build_ranking", noting)

    async def ticker() -> None:
        while True:
            ticks[0] += 1
            await asyncio.sleep(0)

    runner = Runner(SimulatedJudge(seed=0), RankSpec(strategy="knockout"), concurrency=256)
    prompts = [PromptInput(f"q{i}", [f"a{i}", f"bb{i}", f"ccc{i}"]) for i in range(40)]
    ticking = asyncio.ensure_future(ticker())
    try:
        results = [result async for result in runner.run(prompts)]
    finally:
        ticking.cancel()
    assert len(results) == 40 and all(r.ranking is not None for r in results)
    assert len(seen) == 40 and len(set(seen)) == 40
