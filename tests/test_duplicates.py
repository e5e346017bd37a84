"""Tests of genrm_rank.duplicates: identical candidates are judged once and share one result."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from genrm_rank import SimulatedJudge, group_rewards, rank, select_best
from genrm_rank.duplicates import distinct
from genrm_rank.judges.base import PairRequest
from genrm_rank.sdg import process_file, rank_rows
from genrm_rank.sdg.output import JsonlSink
from genrm_rank.spec import RankSpec
from genrm_rank.verdict import FailureKind, Verdict

TEXTS = ["four", "five", "four", "three", "five"]


def test_distinct_groups_in_input_order() -> None:
    groups = distinct(TEXTS)
    assert groups.of == (0, 1, 0, 2, 1)
    assert groups.members == ((0, 2), (1, 4), (3,))
    assert groups.groups == ((0, 2), (1, 4)) and groups.first == (0, 1, 3)


@pytest.mark.parametrize("strategy", ["round_robin", "knockout", "circular", "swiss"])
def test_copies_share_rank_and_scores_and_are_judged_once(strategy: str) -> None:
    judge = SimulatedJudge(seed=3)
    ranking = rank(TEXTS, "What is 2+2?", judge=judge, strategy=strategy, seed=1)
    assert ranking.candidates == tuple(TEXTS)
    assert len(ranking.scores) == 5 and [s.index for s in ranking.scores] == list(range(5))
    for a, b in ((0, 2), (1, 4)):
        sa, sb = ranking.scores[a], ranking.scores[b]
        assert (sa.strength, sa.mean_score, sa.lower) == (sb.strength, sb.mean_score, sb.lower)
        assert sb.p_best == 0.0  # the first copy carries the text's P(best)
        assert abs(ranking.order.index(a) - ranking.order.index(b)) == 1  # adjacent places
    # P(best) of all candidates sums to 1 (each copy used to carry it: 1 + p(four) + p(five)).
    assert sum(s.p_best for s in ranking.scores) == pytest.approx(1.0)
    assert ranking.best in (0, 1, 3) and ranking.p_best == ranking.scores[ranking.best].p_best
    assert sorted(ranking.order) == list(range(5))
    # Only the three distinct texts were compared: the same calls as ranking them alone.
    alone = rank(["four", "five", "three"], "What is 2+2?", judge=judge, strategy=strategy, seed=1)
    assert ranking.calls == alone.calls
    assert all(j.first in (0, 1, 3) and j.second in (0, 1, 3) for j in ranking.judgements)
    assert any("duplicate candidates" in n for n in ranking.notes)


def test_identical_rollouts_get_the_same_reward() -> None:
    rollouts = ["a", "b", "a", "c", "b", "d"]
    rewards = group_rewards(rollouts, "q?", judge=SimulatedJudge(seed=0)).rewards
    assert rewards[0] == rewards[2] and rewards[1] == rewards[4]
    assert np.isfinite(rewards).all()


@pytest.mark.parametrize(
    ("candidates", "best"),
    [
        (["worse", "better", "better"], 1),  # the copies win: the first copy is the pick
        (["better", "worse", "better"], 0),
        (["worse", "worse", "better"], 2),  # a lone winner after two copies keeps its index
    ],
)
def test_best_of_copies_is_the_first_copy(candidates: list[str], best: int) -> None:
    # A judge that all but never errs: "better" is far above "worse".
    judge = SimulatedJudge(qualities={"better": 20.0, "worse": 0.0}, noise_scale=0.1)
    for seed in range(3):
        assert select_best(candidates, "q?", judge=judge, seed=seed).best == best


def test_all_copies_of_one_text_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"Argument 'candidates' must hold at least 2 distinct"):
        rank(["same", "same"], "q?", judge=SimulatedJudge())


async def test_sdg_rows_keep_every_candidate_and_report_duplicates(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text(
        json.dumps({"id": 1, "prompt": "q?", "candidates": ["a", "b", "a"]})
        + "\n"
        + json.dumps({"id": 2, "prompt": "q?", "candidates": ["a", "a"]})
        + "\n"
    )
    sinks = {"out": JsonlSink(tmp_path / "out.jsonl"), "errors": JsonlSink(tmp_path / "e.jsonl")}
    await process_file(
        source, judge=SimulatedJudge(), spec=RankSpec(), formatter=rank_rows(), sinks=sinks
    )
    (out,) = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert out["duplicate_candidates"] == [[0, 2]]
    assert len(out["candidates"]) == 3
    (error,) = [json.loads(x) for x in (tmp_path / "e.jsonl").read_text().splitlines()]
    assert error["kind"] == "too_few_candidates" and "distinct" in error["reason"]


class _UnreadableJudge:
    async def judge(self, request: PairRequest) -> Verdict:
        return Verdict.failed(FailureKind.UNREADABLE, raw="Both are fine.")


def test_copies_without_a_usable_verdict_keep_nan_p_best() -> None:
    ranking = rank(["x", "y", "x"], "q?", judge=_UnreadableJudge(), seed=0)
    assert all(np.isnan(s.p_best) for s in ranking.scores)  # no chance invented for a copy
