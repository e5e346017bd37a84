"""The public functions: select_best, rank, group_rewards, leaderboard, arank_many."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference_data import VICUNA_GPT4_PAIRWISE, read_jsonl

from genrm_rank.api import (
    arank,
    arank_many,
    aselect_best,
    group_rewards,
    leaderboard,
    rank,
    select_best,
)
from genrm_rank.judges.base import PairRequest
from genrm_rank.judges.replay import ReplayJudge
from genrm_rank.judges.simulated import SimulatedJudge
from genrm_rank.results import Ranking
from genrm_rank.runner import PromptInput
from genrm_rank.spec import RankSpec
from genrm_rank.verdict import FailureKind, Verdict


class TransitiveJudge:
    """Noiseless: the candidate with the larger number in its text wins, strongly."""

    def __init__(self) -> None:
        self.calls = 0

    async def judge(self, request: PairRequest) -> Verdict:
        self.calls += 1
        a, b = int(request.response_1), int(request.response_2)
        return Verdict(
            score_1=5 if a > b else 1, score_2=1 if a > b else 5, ranking=1 if a > b else 6
        )


class SlotOneJudge:
    """Pure position bias: slot 1 always wins, whatever the candidates."""

    async def judge(self, request: PairRequest) -> Verdict:
        return Verdict(score_1=4, score_2=3, ranking=2)


class DeadVerdictJudge:
    async def judge(self, request: PairRequest) -> Verdict:
        return Verdict.failed(FailureKind.UNREADABLE, raw="Both are fine.")


@settings(max_examples=25, deadline=None)
@given(
    values=st.lists(st.integers(0, 1000), min_size=2, max_size=12, unique=True),
    seed=st.integers(0, 99),
)
def test_knockout_finds_the_best_of_a_transitive_judge(values: list[int], seed: int) -> None:
    judge = TransitiveJudge()
    choice = select_best([str(v) for v in values], "Largest?", judge=judge, seed=seed)
    assert isinstance(choice, Ranking) and choice.status == "complete"
    assert choice.best_text == str(max(values))
    assert choice.calls == judge.calls == 2 * (len(values) - 1)


@settings(max_examples=20, deadline=None)
@given(values=st.lists(st.integers(0, 1000), min_size=2, max_size=8, unique=True))
def test_round_robin_recovers_a_transitive_order(values: list[int]) -> None:
    result = rank([str(v) for v in values], "Order?", judge=TransitiveJudge(), seed=0)
    assert [values[i] for i in result.order] == sorted(values, reverse=True)
    assert result.calls == len(values) * (len(values) - 1)
    assert result.consistency.agreement_rate == 1.0


def test_relabelling_candidates_permutes_the_result() -> None:
    texts = [f"answer {i}" for i in range(6)]
    judge = SimulatedJudge(seed=3)
    first = rank(texts, "Q", judge=judge, seed=0, swap="both")
    perm = [3, 0, 5, 1, 4, 2]
    second = rank([texts[p] for p in perm], "Q", judge=SimulatedJudge(seed=3), seed=0, swap="both")
    # Same strengths for the same texts (ties may list tied candidates in either order).
    along_first = [first.scores[i].strength for i in first.order]
    along_second = [second.scores[i].strength for i in second.order]
    assert along_first == pytest.approx(along_second, abs=1e-9)
    for new, old in enumerate(perm):
        assert second.scores[new].strength == pytest.approx(first.scores[old].strength, abs=1e-9)


def test_swap_both_cancels_pure_position_bias() -> None:
    result = rank(["x", "y", "z", "w"], "Q", judge=SlotOneJudge(), seed=0)
    strengths = [s.strength for s in result.scores]
    assert np.allclose(strengths, 0.0, atol=1e-9)
    assert result.consistency.first_slot_win_share == 1.0
    assert result.position_bias is not None and result.position_bias > 0


def test_one_random_order_is_debiased_by_the_fitted_position_term() -> None:
    """swap='random' pays half the calls; the joint position term absorbs the slot effect."""
    qualities = {f"c{i}": float(i) for i in range(6)}
    judge = SimulatedJudge(qualities=qualities, position_bias=1.2, seed=2, noise_scale=0.5)
    result = rank(list(qualities), "Q", judge=judge, seed=4, swap="random", samples=3)
    assert result.calls == 15 * 3
    assert result.position_bias is not None and result.position_bias > 0.5
    assert result.order[0] == 5


def test_failed_verdicts_are_reported_not_scored() -> None:
    result = rank(["a", "b", "c"], "Q", judge=DeadVerdictJudge(), seed=0, retries=1)
    assert result.best is None and result.order == ()
    assert result.failed_calls == 6 and result.calls == 12
    assert any("no usable verdict" in note for note in result.notes)
    assert all(np.isnan(s.p_best) for s in result.scores)


def test_knockout_with_failed_verdicts_says_how_it_decided() -> None:
    choice = select_best(["a", "b", "c", "d"], "Q", judge=DeadVerdictJudge(), seed=0)
    assert choice.best is None
    assert choice.failed_calls == 6


def test_budget_binds_and_is_reported() -> None:
    result = rank([str(i) for i in range(6)], "Q", judge=TransitiveJudge(), budget=10, seed=0)
    assert result.calls == 10
    assert result.status == "budget_bound" and not result.decided
    assert any("budget" in note for note in result.notes)
    assert any("provisional" in note for note in result.notes)


def test_spec_or_fields_never_both() -> None:
    judge = TransitiveJudge()
    with pytest.raises(TypeError, match="either 'spec' or its fields"):
        select_best(["1", "2"], "Q", judge=judge, spec=RankSpec(), seed=3)
    with pytest.raises(TypeError, match="not RankSpec fields"):
        select_best(["1", "2"], "Q", judge=judge, n_bootstrap=3)  # type: ignore[call-arg]


def test_a_spec_gives_the_same_result_as_its_fields() -> None:
    texts = [f"answer {i}" for i in range(6)]
    by_fields = select_best(texts, "Q", judge=SimulatedJudge(seed=1), seed=5, budget=8)
    spec = RankSpec(strategy="knockout", seed=5, budget=8)
    by_spec = select_best(texts, "Q", judge=SimulatedJudge(seed=1), spec=spec)
    assert by_fields.to_dict(include_judgements=True) == by_spec.to_dict(include_judgements=True)


def test_seed_accepts_a_generator() -> None:
    texts = [f"answer {i}" for i in range(6)]
    one = rank(texts, "Q", judge=SimulatedJudge(seed=1), seed=np.random.default_rng(9))
    two = rank(texts, "Q", judge=SimulatedJudge(seed=1), seed=np.random.default_rng(9))
    assert one.to_dict(include_judgements=True) == two.to_dict(include_judgements=True)


async def test_every_prompt_gets_its_own_randomness_independent_of_arrival_order() -> None:
    texts = [f"answer {i}" for i in range(8)]
    prompts = [PromptInput("Q", texts, prompt_id=f"p{i}", key=i) for i in range(6)]

    async def brackets(order: list[PromptInput]) -> dict[int, list[tuple[int, int]]]:
        out = {}
        async for result in arank_many(
            order, judge=SimulatedJudge(seed=0), strategy="knockout", swap="none", seed=11
        ):
            assert result.ranking is not None
            first_round = sorted(result.ranking.judgements, key=lambda j: j.match_id)[:4]
            out[result.prompt.key] = [(j.first, j.second) for j in first_round]
        return out

    forward = await brackets(prompts)
    backward = await brackets(prompts[::-1])
    assert forward == backward  # the same prompt, the same bracket, whatever the order
    assert len({tuple(b) for b in forward.values()}) == len(prompts)  # each its own bracket


def test_group_rewards_honour_the_position_term_setting() -> None:
    qualities = {f"c{i}": float(i) for i in range(4)}
    judge = SimulatedJudge(qualities=qualities, position_bias=1.0, seed=0)
    texts = list(qualities)
    with_term = group_rewards(texts, "Q", judge=judge, reward="bradley_terry")
    judge = SimulatedJudge(qualities=qualities, position_bias=1.0, seed=0)
    without = group_rewards(
        texts, "Q", judge=judge, reward="bradley_terry", fit_position_bias=False
    )
    assert with_term.ranking.position_bias is not None
    assert without.ranking.position_bias is None
    assert not np.allclose(with_term.rewards, without.rewards)


def test_group_rewards_follow_nvidia_circular_scheme() -> None:
    judge = TransitiveJudge()
    rewards = group_rewards([str(v) for v in [3, 1, 2, 0]], "Q", judge=judge)
    assert judge.calls == 4
    # circular pairs (0,1),(1,2),(2,3),(3,0): '3' and '2' win both their games (5 each),
    # '1' and '0' lose both (1 each).
    assert rewards.rewards.tolist() == [5.0, 1.0, 5.0, 1.0]


def test_group_rewards_nan_for_candidates_without_verdicts() -> None:
    rewards = group_rewards(["a", "b", "c"], "Q", judge=DeadVerdictJudge(), reward="win_rate")
    assert np.isnan(rewards.rewards).all()


def test_replayed_vicuna_round_robin_puts_gpt4_first(vicuna_record: Path) -> None:
    judge = ReplayJudge.from_jsonl(vicuna_record)
    rankings: list[Ranking] = []
    for qid in ["1", "2", "3", "4", "5"]:
        systems = judge.candidates(qid)
        rankings.append(
            rank(
                systems,
                f"question {qid}",
                judge=judge,
                candidate_ids=systems,
                prompt_id=qid,
                seed=0,
            )
        )
    assert all(r.calls == 56 for r in rankings)
    table = leaderboard(rankings, bootstrap_rounds=20, seed=0)
    # gpt-4 lost on only 2 of the 5 prompts: 7.8% of prompt resamples hold no loss of it, so its
    # interval reaches infinity; it is set apart, with the best provisional rating.
    (apart,) = table.set_apart
    assert apart.label == "gpt-4" and apart.reason.startswith("too few prompts")
    assert apart.rating is not None and apart.rating > table.rows[0].rating


def test_leaderboard_over_the_whole_vicuna_record_matches_the_published_order(
    expected: dict[str, Any],
) -> None:
    games = []
    for row in read_jsonl(VICUNA_GPT4_PAIRWISE):
        outcome = {"A": 1.0, "B": 0.0, "tie": 0.5}.get(row["winner"])
        if outcome is not None:
            games.append((row["model_a"], row["model_b"], outcome))
    order = expected["qlora_vicuna_gpt4_pairwise"]["bt_order_derived"]["order"]
    table = leaderboard(games, bootstrap_rounds=0)
    assert table.rows[0].label == order[0] and table.rows[-1].label == order[-1]
    assert table.position_bias is not None and table.position_bias > 0.3


async def test_async_twins_and_many_prompts_share_one_judge() -> None:
    judge = SimulatedJudge(seed=0)
    single = await arank(["a", "b", "c"], "Q", judge=judge, seed=0)
    best = await aselect_best(["a", "b", "c"], "Q", judge=judge, seed=0)
    assert single.calls == 6 and best.calls == 4
    prompts = [PromptInput(f"Q{i}", [f"x{i}", f"y{i}", f"z{i}"], key=i) for i in range(30)]
    seen = [
        (result.prompt.key, result.ranking.calls if result.ranking else None)
        async for result in arank_many(prompts, judge=judge, strategy="knockout", seed=0)
    ]
    assert sorted(k for k, _ in seen) == list(range(30))
    assert all(calls == 4 for _, calls in seen)


async def test_sync_wrapper_refuses_a_running_loop() -> None:
    with pytest.raises(RuntimeError, match="aselect_best"):
        select_best(["a", "b"], "Q", judge=SimulatedJudge())
    await asyncio.sleep(0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"candidates": ["only one"]}, "at least 2"),
        ({"candidates": "not a list"}, "candidates"),
        ({"candidates": ["a", 3]}, r"candidates\[1\]"),
        ({"strategy": "bracket"}, "strategy"),
        ({"swap": "sometimes"}, "swap"),
        ({"conversation": [{"role": "assistant", "content": "hi"}]}, "conversation"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {
        "candidates": ["a", "b"],
        "conversation": "Q",
        "judge": SimulatedJudge(),
    }
    args.update(kwargs)
    with pytest.raises((ValueError, TypeError), match=message):
        rank(**args)  # type: ignore[arg-type]


def test_result_serialises_to_json() -> None:
    result = rank(
        ["a", "b", "c"], "Q", judge=SimulatedJudge(seed=1), seed=0, candidate_ids=["s1", "s2", "s3"]
    )
    blob = json.dumps(result.to_dict(include_judgements=True))
    data = json.loads(blob)
    assert data["calls"] == 6 and len(data["scores"]) == 3 and data["best_id"] in {"s1", "s2", "s3"}


def test_one_http_judge_serves_many_sync_calls() -> None:
    """Each sync call runs its own event loop; the judge reopens its pool on each."""
    from genrm_rank.judges.openai_http import OpenAIJudge
    from genrm_rank.server import SimServerConfig, ThreadedSimServers

    config = SimServerConfig()
    with ThreadedSimServers([config, config]) as servers:
        judge = OpenAIJudge(servers.urls, model=config.model)
        results = [select_best(["a", "b", "c"], "Q", judge=judge, seed=0) for _ in range(3)]
    assert [r.calls for r in results] == [4, 4, 4]
    assert not judge.is_closed


class _MissingJudge:
    async def judge(self, request: PairRequest) -> Verdict:
        from genrm_rank.errors import ReplayMissError

        raise ReplayMissError("no record for that pair")


def test_a_judge_error_before_any_usable_verdict_is_raised() -> None:
    from genrm_rank.errors import ReplayMissError

    with pytest.raises(ReplayMissError, match="no record"):
        rank(["a", "b", "c"], "Q", judge=_MissingJudge(), strategy="knockout", seed=0)
