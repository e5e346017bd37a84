"""Tests of genrm_rank.judges.replay against the QLoRA record of GPT-4 on the Vicuna benchmark.

Reference figures: tests/data/expected_values.json ``qlora_vicuna_gpt4_pairwise`` (derived from
artidoro/qlora@7f4e95a6: GPT-4 agrees with itself on only 1,367 of 2,227 swapped pairs).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from genrm_rank.errors import GenRMRankError, JudgeError, ReplayMissError
from genrm_rank.judges.base import BatchJudge, PairRequest, judge_many
from genrm_rank.judges.replay import ReplayJudge, ReplayRecord
from genrm_rank.verdict import Verdict


@pytest.fixture(scope="module")
def record_path(vicuna_record: Path) -> Path:
    return vicuna_record


@pytest.fixture(scope="module")
def qlora_figures(expected: dict[str, Any]) -> dict[str, int]:
    return expected["qlora_vicuna_gpt4_pairwise"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def judged(record_path: Path) -> dict[tuple[str, str, str], Verdict]:
    """Every ordered pair of every question, judged through ``judge()``."""
    judge = ReplayJudge.from_jsonl(record_path)
    requests = [
        PairRequest(
            f"question {qid}", f"answer of {a}", f"answer of {b}", prompt_id=qid, id_1=a, id_2=b
        )
        for qid in judge.prompt_ids()
        for a in judge.candidates(qid)
        for b in judge.candidates(qid)
        if a != b
    ]

    async def run() -> list[Verdict]:
        return [await judge.judge(r) for r in requests]

    verdicts = asyncio.run(run())
    assert judge.calls == len(requests)
    return {
        (r.prompt_id, r.id_1 or "", r.id_2 or ""): v
        for r, v in zip(requests, verdicts, strict=True)
    }


def test_record_covers_a_full_round_robin(record_path: Path) -> None:
    judge = ReplayJudge.from_jsonl(record_path)
    assert len(judge.prompt_ids()) == 80
    assert all(len(judge.candidates(q)) == 8 for q in judge.prompt_ids())
    assert len(judge.records) == 4480


def test_outcome_counts_match_the_published_figures(
    judged: dict[tuple[str, str, str], Verdict], qlora_figures: dict[str, int]
) -> None:
    assert len(judged) == 80 * 8 * 7
    outcomes = Counter(
        "error" if not v.ok else {1: "first", 2: "second", None: "tie"}[v.winner_slot]
        for v in judged.values()
    )
    assert outcomes["first"] == qlora_figures["first_position_wins"] == 2512
    assert outcomes["second"] == qlora_figures["second_position_wins"] == 1355
    assert outcomes["tie"] == qlora_figures["ties"] == 600
    assert outcomes["error"] == qlora_figures["errors"] == 13
    assert outcomes["first"] + outcomes["second"] + outcomes["tie"] == qlora_figures["games_valid"]


def test_errors_are_unreadable_verdicts_with_raw_text(
    judged: dict[tuple[str, str, str], Verdict],
) -> None:
    errors = [v for v in judged.values() if not v.ok]
    assert len(errors) == 13
    for v in errors:
        assert v.failure == "unreadable"
        assert v.raw == "error"
        assert v.ranking is None


def test_swap_consistency_matches_the_published_figures(
    judged: dict[tuple[str, str, str], Verdict], qlora_figures: dict[str, int]
) -> None:
    """Rule: over unordered pairs {a, b} of a question whose two orders both gave a verdict (no
    error), the judge is consistent when both orders name the same winning system, or both are
    ties; otherwise (winner flips, or tie in one order only) it is inconsistent. Comparing a
    verdict with the swapped verdict of the other order (``Verdict.swapped``) expresses this
    directly: the same system wins iff the winner slots agree after swapping back.
    """
    consistent = inconsistent = 0
    for (qid, a, b), v_ab in judged.items():
        if a >= b:
            continue
        v_ba = judged[(qid, b, a)]
        if not (v_ab.ok and v_ba.ok):
            continue
        if v_ab.winner_slot == v_ba.swapped().winner_slot:
            consistent += 1
        else:
            inconsistent += 1
    assert consistent + inconsistent == 2227
    assert consistent == qlora_figures["swap_pairs_consistent"] == 1367
    assert inconsistent == qlora_figures["swap_pairs_inconsistent"] == 860


def test_three_class_mapping() -> None:
    assert ReplayRecord("q", "a", "b", "A").verdict().ranking == 1
    assert ReplayRecord("q", "a", "b", "A").verdict().preference == 1.0
    assert ReplayRecord("q", "a", "b", "B").verdict().ranking == 6
    assert ReplayRecord("q", "a", "b", "tie").verdict().preference == 0.5
    bad = ReplayRecord("q", "a", "b", "maybe").verdict()
    assert bad.failure == "unreadable" and bad.raw == "maybe"


async def test_unrecorded_pair_raises_replay_miss(record_path: Path) -> None:
    judge = ReplayJudge.from_jsonl(record_path)
    for request in [
        PairRequest("Q", "x", "y", prompt_id="1", id_1="gpt-4", id_2="nobody"),
        PairRequest("Q", "x", "y", prompt_id="999", id_1="gpt-4", id_2="bard"),
        PairRequest("Q", "x", "y", prompt_id="1", id_1="gpt-4", id_2="gpt-4"),
    ]:
        with pytest.raises(ReplayMissError, match=f"prompt {request.prompt_id!r}") as info:
            await judge.judge(request)
        assert isinstance(info.value, KeyError)
        assert isinstance(info.value, GenRMRankError) and isinstance(info.value, JudgeError)
        assert (
            request.id_2 is not None
            and request.id_2 in str(info.value)
            and not str(info.value).startswith('"')
        )
    assert judge.calls == 0


async def test_indices_stand_in_for_missing_ids_and_samples_cycle() -> None:
    judge = ReplayJudge(
        [
            ReplayRecord("p", "0", "1", "A"),
            ReplayRecord("p", "0", "1", "B"),
            ReplayRecord("p", "1", "0", "tie"),
        ]
    )
    req = PairRequest("Q", "x", "y", prompt_id="p", index_1=0, index_2=1)
    rankings = [
        (await judge.judge(PairRequest("Q", "x", "y", prompt_id="p", sample=s))).ranking
        for s in range(4)
    ]
    assert rankings == [1, 6, 1, 6]
    assert (await judge.judge(req.swapped())).ranking == 3.5
    assert judge.candidates("p") == ["0", "1"]
    assert isinstance(judge, BatchJudge)
    assert [v.ranking for v in await judge_many(judge, [req, req.swapped()])] == [1, 3.5]


@pytest.mark.parametrize(
    "line",
    ['{"qid": 1, "model_a": "a", "model_b": "b"}', "not json", '["qid", "model_a"]'],
)
def test_unreadable_record_line_names_file_and_line(tmp_path: Path, line: str) -> None:
    path = tmp_path / "record.jsonl"
    path.write_text('{"qid": 1, "model_a": "a", "model_b": "b", "winner": "A"}\n\n' + line + "\n")
    with pytest.raises(ValueError, match=r"record\.jsonl:3: cannot read a replay record"):
        ReplayJudge.from_jsonl(path)


def test_custom_field_names(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text('{"prompt": "p", "first": "x", "second": "y", "label": "B"}\n')
    judge = ReplayJudge.from_jsonl(
        path,
        prompt_field="prompt",
        first_field="first",
        second_field="second",
        winner_field="label",
    )
    assert judge.lookup("p", "x", "y").ranking == 6


@pytest.mark.parametrize("compression", ["plain", "gzip", "zstandard"])
def test_a_record_is_read_compressed_or_not_whatever_its_name(
    record_path: Path, tmp_path: Path, compression: str
) -> None:
    """Compression is told by content, as the SDG inputs tell it: the same record read plain,
    gzip- or zstandard-compressed, under a name that says nothing (``record.jsonl``)."""
    import gzip

    import zstandard

    from genrm_rank.textfiles import open_text

    with open_text(record_path) as handle:
        text = handle.read().encode("utf-8")
    packed = {
        "plain": lambda data: data,
        "gzip": gzip.compress,
        "zstandard": zstandard.ZstdCompressor().compress,
    }[compression](text)
    copy = tmp_path / "record.jsonl"
    copy.write_bytes(packed)
    assert ReplayJudge.from_jsonl(copy).records == ReplayJudge.from_jsonl(record_path).records
