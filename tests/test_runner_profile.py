"""The runner's judge profile: given, or frozen after a warm-up in input order, so that rows do
not depend on timing (concurrency, resume, shards)."""

from __future__ import annotations

import asyncio
import functools
import json
from typing import Any

import pytest

from genrm_rank.judge_profile import DEFAULT_PROFILE, JudgeProfile
from genrm_rank.judges.simulated import SimulatedJudge
from genrm_rank.runner import PromptInput, PromptResult, Runner
from genrm_rank.spec import RankSpec
from genrm_rank.strategies import Adaptive

SPEC = RankSpec(strategy="adaptive", swap="auto", seed=5)


def prompts(count: int = 60, n: int = 6) -> list[PromptInput]:
    return [
        PromptInput(f"question {p}", [f"answer {p}.{i}" * (1 + i % 3) for i in range(n)],
                    prompt_id=f"p{p}", key=p)
        for p in range(count)
    ]  # fmt: skip


def judge() -> SimulatedJudge:
    return SimulatedJudge(position_bias=0.8, noise_scale=0.6, seed=11)


def rows(results: list[PromptResult]) -> dict[Any, str]:
    """Each prompt's ranking as the JSON a row holds, by prompt key."""
    out = {}
    for result in results:
        assert result.ranking is not None
        out[result.prompt.key] = json.dumps(result.ranking.to_dict(include_judgements=True))
    return out


async def run(items: list[PromptInput], **options: Any) -> tuple[dict[Any, str], Runner]:
    runner = Runner(judge(), SPEC, **options)
    results = [r async for r in runner.run(items)]
    return rows(results), runner


async def test_concurrency_one_gives_the_rows_of_sixty_four() -> None:
    one, _ = await run(prompts(), concurrency=1)
    many, _ = await run(prompts(), concurrency=64)
    assert one == many


async def test_prompts_after_the_warm_up_use_the_profile_it_froze(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    frozen: list[JudgeProfile] = []
    made: list[JudgeProfile | None] = []
    original = Adaptive.__init__

    @functools.wraps(original)
    def spy(self: Adaptive, *args: Any, **kwargs: Any) -> None:
        made.append(kwargs.get("profile"))
        original(self, *args, **kwargs)

    monkeypatch.setattr(Adaptive, "__init__", spy)
    _, runner = await run(prompts(30), warmup=10, on_profile=frozen.append, learn_profile=True)
    assert len(frozen) == 1 and runner.profile is frozen[0]
    assert made[:10] == [DEFAULT_PROFILE] * 10 and made[10:] == [frozen[0]] * 20
    # The frozen profile is what the first ten prompts' verdicts say, in input order.
    alone = Runner(judge(), SPEC, learn_profile=True)
    _ = [r async for r in alone.run(prompts(10))]
    assert alone.learnt_profile() == frozen[0]
    assert frozen[0].prompts == 10 and frozen[0].position_bias > 0.3
    assert runner.learnt_profile().prompts == 30


async def test_a_run_resumed_with_its_frozen_profile_gives_the_rows_of_the_whole_run() -> None:
    whole, runner = await run(prompts(), warmup=20)
    assert runner.profile is not None
    # Prompts 40-59 alone, as after --resume (or in a shard), with the profile the run froze.
    rest, _ = await run(prompts()[40:], judge_profile=runner.profile)
    assert rest == {k: v for k, v in whole.items() if k >= 40}
    # The warm-up's prompts alone are the warm-up's rows too.
    head, _ = await run(prompts()[:20], warmup=20)
    assert head == {k: v for k, v in whole.items() if k < 20}


async def test_a_shard_with_the_same_profile_gives_the_same_rows() -> None:
    profile = JudgeProfile(position_bias=0.7, position_bias_stderr=0.05, dispersion=0.4)
    whole, _ = await run(prompts(), judge_profile=profile)
    shard, _ = await run(prompts()[1::3], judge_profile=profile, concurrency=3)
    assert shard == {k: v for k, v in whole.items() if k % 3 == 1}


async def test_a_given_profile_may_be_a_path(tmp_path: Any) -> None:
    profile = JudgeProfile(position_bias=0.7, position_bias_stderr=0.05)
    profile.save(tmp_path / "judge.json")
    runner = Runner(judge(), SPEC, judge_profile=tmp_path / "judge.json")
    assert runner.profile == profile and not runner.warming_up
    with pytest.raises(ValueError, match="'warmup' must be an int >= 1"):
        Runner(judge(), SPEC, warmup=0)
    with pytest.raises(ValueError, match="learn_profile=True"):
        runner.learnt_profile()


async def test_a_cap_in_the_warm_up_freezes_nothing() -> None:
    runner = Runner(judge(), SPEC, warmup=10, max_calls=30)
    results = [r async for r in runner.run(prompts(30))]
    assert runner.cap_reached == "max_calls" and runner.profile is None
    assert all(r.prompt.key < 10 for r in results)


async def test_a_long_run_learns_from_every_kth_prompt_whatever_finished_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("genrm_rank.runner.LEARN_PROMPTS", 4)
    learnt = []
    for concurrency in (1, 64):
        _, runner = await run(prompts(30), learn_profile=True, concurrency=concurrency)
        learnt.append(runner.learnt_profile())
        assert sorted(runner._kept or {}) == [0, 8, 16, 24]
    assert learnt[0] == learnt[1] and learnt[0].prompts == 4


def test_ray_batches_given_a_profile_rank_as_one_run_given_it() -> None:
    # The Ray door's actor, driven without Ray: each batch is a run of its own, so only a given
    # profile makes rows independent of the batching.
    import pandas as pd

    from genrm_rank.integrations.ray import _RankActor

    profile = JudgeProfile(position_bias=0.7, position_bias_stderr=0.05, dispersion=0.4)
    items = prompts(12)
    actor = _RankActor(
        SPEC, judge, {"prompt": "prompt", "candidates": "candidates", "id": "id",
                      "principle": None},
        {"concurrency": 8, "judge_profile": profile}, None, None, "genrm_",
    )  # fmt: skip
    frame = pd.DataFrame(
        {
            "prompt": [p.conversation for p in items],
            "candidates": [list(p.candidates) for p in items],
            "id": [p.prompt_id for p in items],
        }
    )
    ranked = pd.concat([actor(frame.iloc[:5].reset_index()), actor(frame.iloc[5:].reset_index())])

    keyed = [
        PromptInput(p.conversation, p.candidates, prompt_id=p.prompt_id, key=p.prompt_id)
        for p in items
    ]
    expected, _ = asyncio.run(run(keyed, judge_profile=profile))
    for row_id, ranking in zip(ranked["id"], ranked["genrm_ranking"], strict=True):
        assert json.loads(ranking) == {
            k: v for k, v in json.loads(expected[row_id]).items() if k != "judgements"
        }


async def test_the_warm_up_is_learnt_off_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    # Learning the profile takes a fraction of a second at N = 8 and seconds at N = 64: on a
    # worker thread, not in one loop step.
    import threading

    import genrm_rank.runner

    learnt_on: list[int] = []
    original = genrm_rank.runner.learn_judge_profile

    def noting(*args: Any, **kwargs: Any) -> JudgeProfile:
        learnt_on.append(threading.get_ident())
        return original(*args, **kwargs)

    monkeypatch.setattr(genrm_rank.runner, "learn_judge_profile", noting)
    runner = Runner(judge(), RankSpec(strategy="adaptive", swap="auto"), warmup=4)
    results = [r async for r in runner.run(prompts(8))]
    assert len(results) == 8 and runner.profile is not None
    assert learnt_on and threading.get_ident() not in learnt_on
