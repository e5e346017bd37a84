"""The public API's judge profile argument and explicit signatures (issue 19, review item 5)."""

from __future__ import annotations

import asyncio
import inspect
import json
from pathlib import Path
from typing import Any

import pytest

from genrm_rank import SimulatedJudge, arank_many, group_rewards, rank, select_best
from genrm_rank.cli.config import build_parser
from genrm_rank.cli.options import spec_from_args
from genrm_rank.judge_profile import JudgeProfile
from genrm_rank.runner import PromptInput, Runner
from genrm_rank.spec import RankSpec, SpecFields

PROFILE = JudgeProfile(position_bias=0.7, position_bias_stderr=0.05, dispersion=0.35,
                       strength_sd=1.2)  # fmt: skip


def items(count: int = 12) -> list[PromptInput]:
    return [
        PromptInput(f"question {p}", [f"answer {p}.{i}" * (1 + i % 3) for i in range(8)],
                    prompt_id=f"p{p}")
        for p in range(count)
    ]  # fmt: skip


@pytest.mark.parametrize(("function", "command"), [(select_best, "select"), (rank, "rank")])
def test_signatures_list_every_option_with_the_cli_default(function: Any, command: str) -> None:
    parameters = inspect.signature(function).parameters
    assert "options" not in parameters and "fields" not in parameters
    cli = spec_from_args(build_parser().parse_args([command, "in.jsonl", "-o", "o.jsonl"]))
    for name in SpecFields.__annotations__:
        assert parameters[name].kind is inspect.Parameter.KEYWORD_ONLY
        expected = getattr(cli, name)
        if name == "strategy_options":
            expected = dict(expected)
        assert parameters[name].default == expected, name
    assert parameters["judge_profile"].default is None
    assert parameters["concurrency"].default == 64
    for other in (arank_many, group_rewards):
        assert {"judge_profile", "strategy", "budget"} <= set(inspect.signature(other).parameters)


def test_single_prompt_calls_with_a_profile_give_the_rows_of_a_pooled_run(
    tmp_path: Path,
) -> None:
    def judge() -> SimulatedJudge:  # fresh: the simulated judge counts repeats of a request
        return SimulatedJudge(position_bias=0.8, noise_scale=0.6, seed=2)

    spec = RankSpec(strategy="adaptive", swap="auto", seed=4)

    async def pooled() -> dict[str, Any]:
        runner = Runner(judge(), spec, judge_profile=PROFILE)
        return {r.prompt.prompt_id: r.ranking async for r in runner.run(items())}

    rows = asyncio.run(pooled())
    PROFILE.save(tmp_path / "judge.json")
    for prompt in items():
        for profile in (PROFILE, tmp_path / "judge.json"):
            alone = select_best(
                prompt.candidates, prompt.conversation, judge=judge(), spec=spec,
                prompt_id=prompt.prompt_id, judge_profile=profile,
            )  # fmt: skip
            want = rows[prompt.prompt_id]
            assert want is not None
            assert json.dumps(alone.to_dict()) == json.dumps(want.to_dict())


def test_a_profile_changes_what_adaptive_does() -> None:
    prompt = items(1)[0]
    options: dict[str, Any] = {"strategy": "adaptive", "swap": "auto"}
    judge = SimulatedJudge(position_bias=0.8, noise_scale=0.6, seed=2)
    plain = select_best(prompt.candidates, prompt.conversation, judge=judge, **options)
    judge = SimulatedJudge(position_bias=0.8, noise_scale=0.6, seed=2)
    known = select_best(
        prompt.candidates, prompt.conversation, judge=judge, judge_profile=PROFILE, **options
    )
    assert [j.first for j in plain.judgements] != [j.first for j in known.judgements]


def test_a_bad_profile_argument_is_named() -> None:
    prompt = items(1)[0]
    with pytest.raises(TypeError, match="'judge_profile' must be a JudgeProfile"):
        rank(prompt.candidates, prompt.conversation, judge=SimulatedJudge(), judge_profile=3)
