"""Tests of genrm_rank.judges.simulated: a seeded simulated GenRM writing real answer text.

Statistical checks compare empirical frequencies with the closed-form probabilities of the
Bradley-Terry / Thurstone models (within 4 binomial standard errors), so they test the sampling,
not a restatement of it.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import random

import numpy as np
import pytest

from genrm_rank.judges.base import BatchJudge, Judge, PairRequest, judge_many
from genrm_rank.judges.simulated import (
    RenderedAnswer,
    SimulatedJudge,
    SimulatedJudgeSettings,
    render_answer,
    text_quality,
)
from genrm_rank.verdict import Verdict

QUALITIES = {"alpha": 1.0, "beta": 0.0, "gamma": -0.5, "delta": 0.4}


def requests_for(texts: list[str], prompt: str = "Which is best?") -> list[PairRequest]:
    return [
        PairRequest(prompt, a, b, prompt_id=prompt, index_1=i, index_2=j)
        for i, a in enumerate(texts)
        for j, b in enumerate(texts)
        if i != j
    ]


def key(v: Verdict) -> tuple[object, ...]:
    return (v.score_1, v.score_2, v.ranking, v.failure, v.raw, v.reasoning)


def slot_1_wins(judge: SimulatedJudge, a: str, b: str, n: int) -> tuple[int, int]:
    """Wins of slot 1 and readable verdicts over n independent samples of (a, b)."""
    verdicts = asyncio.run(judge_many(judge, [PairRequest("Q", a, b, sample=s) for s in range(n)]))
    readable = [v for v in verdicts if v.ok]
    return sum(v.winner_slot == 1 for v in readable), len(readable)


def assert_binomial(successes: int, n: int, p: float, sds: float = 4.0) -> None:
    se = math.sqrt(p * (1 - p) / n)
    assert abs(successes / n - p) <= sds * se + 1e-9, (successes, n, p)


# -- determinism --------------------------------------------------------------------------------


async def test_same_seed_same_verdicts_regardless_of_order_and_concurrency() -> None:
    texts = list(QUALITIES)
    reqs = requests_for(texts) + [r.swapped() for r in requests_for(texts, "Another prompt")]
    sequential = SimulatedJudge(
        qualities=QUALITIES, seed=7, unreadable_rate=0.2, truncated_rate=0.1
    )
    expected = {r: key(await sequential.judge(r)) for r in reqs}

    shuffled = list(reqs)
    random.Random(3).shuffle(shuffled)
    concurrent = SimulatedJudge(
        qualities=QUALITIES, seed=7, unreadable_rate=0.2, truncated_rate=0.1
    )
    got = await asyncio.gather(*(concurrent.judge(r) for r in shuffled))
    assert {r: key(v) for r, v in zip(shuffled, got, strict=True)} == expected

    batch = SimulatedJudge(qualities=QUALITIES, seed=7, unreadable_rate=0.2, truncated_rate=0.1)
    got = await batch.judge_batch(list(reversed(reqs)))
    assert {r: key(v) for r, v in zip(reversed(reqs), got, strict=True)} == expected


async def test_different_seed_different_verdicts() -> None:
    reqs = [PairRequest("Q", "alpha", "beta", sample=s) for s in range(40)]
    a = [key(v) for v in await judge_many(SimulatedJudge(qualities=QUALITIES, seed=1), reqs)]
    b = [key(v) for v in await judge_many(SimulatedJudge(qualities=QUALITIES, seed=2), reqs)]
    assert a != b


async def test_asking_again_is_a_new_draw_but_reproducible() -> None:
    """A GenRM samples at temperature 1: the same request asked twice may get another verdict."""
    req = PairRequest("Q", "alpha", "beta")
    judge = SimulatedJudge(qualities={"alpha": 0.0, "beta": 0.0}, seed=0)
    first = [key(await judge.judge(req)) for _ in range(30)]
    assert len(set(first)) > 1
    again = SimulatedJudge(qualities={"alpha": 0.0, "beta": 0.0}, seed=0)
    assert [key(await again.judge(req)) for _ in range(30)] == first
    assert again.calls == 30


# -- the noise model ----------------------------------------------------------------------------


@pytest.mark.parametrize("noise", ["bradley_terry", "thurstone"])
@pytest.mark.parametrize(("a", "b"), [("alpha", "beta"), ("gamma", "delta"), ("beta", "beta")])
def test_empirical_win_rate_matches_win_probability(noise: str, a: str, b: str) -> None:
    judge = SimulatedJudge(qualities=QUALITIES, noise=noise, seed=11)  # type: ignore[arg-type]
    p = judge.win_probability(a, b)
    wins, n = slot_1_wins(judge, a, b, 2000)
    assert n == 2000
    assert_binomial(wins, n, p)


def test_win_probability_closed_forms() -> None:
    bt = SimulatedJudge(qualities=QUALITIES, noise_scale=2.0)
    assert bt.win_probability("alpha", "beta") == pytest.approx(1 / (1 + math.exp(-0.5)))
    assert bt.win_probability("beta", "alpha") == pytest.approx(1 / (1 + math.exp(0.5)))
    th = SimulatedJudge(qualities=QUALITIES, noise="thurstone")
    assert th.win_probability("alpha", "beta") == pytest.approx(0.8413447460685429)  # Phi(1)


@pytest.mark.parametrize("bias", [0.0, 0.5, 1.5])
def test_position_bias_is_measurable(bias: float) -> None:
    judge = SimulatedJudge(qualities={"x": 0.0, "y": 0.0}, position_bias=bias, seed=5)
    p = judge.win_probability("x", "y")
    assert p == pytest.approx(1 / (1 + math.exp(-bias)))
    wins, n = slot_1_wins(judge, "x", "y", 1500)
    assert_binomial(wins, n, p)


def test_first_slot_share_rises_with_position_bias() -> None:
    shares = []
    for bias in (-1.0, 0.0, 1.0, 2.0):
        judge = SimulatedJudge(qualities=QUALITIES, position_bias=bias, seed=9)
        wins = total = 0
        for a, b in [("alpha", "beta"), ("beta", "alpha"), ("gamma", "delta"), ("delta", "gamma")]:
            w, n = slot_1_wins(judge, a, b, 250)
            wins, total = wins + w, total + n
        shares.append(wins / total)
    assert shares == sorted(shares)
    assert shares[-1] - shares[0] > 0.3


def test_ranking_strength_follows_thresholds() -> None:
    """With equal qualities the margin is pure logistic noise: P(|eps| >= t) = 2 / (1 + e^t)."""
    judge = SimulatedJudge(qualities={"x": 0.0, "y": 0.0}, thresholds=(1.0, 2.5), seed=4)
    verdicts = asyncio.run(
        judge_many(judge, [PairRequest("Q", "x", "y", sample=s) for s in range(2000)])
    )
    much = sum(v.ranking in (1, 6) for v in verdicts)
    slight = sum(v.ranking in (3, 4) for v in verdicts)
    assert_binomial(much, 2000, 2 / (1 + math.exp(2.5)))
    assert_binomial(slight, 2000, 1 - 2 / (1 + math.exp(1.0)))
    for v in verdicts:  # scores agree with the ranking's direction
        assert v.score_1 is not None and v.score_2 is not None and v.ranking is not None
        assert (v.score_1 >= v.score_2) if v.ranking <= 3 else (v.score_1 <= v.score_2)


# -- failure rates ------------------------------------------------------------------------------


def make_failing_judge(style: str, answer_format: str) -> SimulatedJudge:
    return SimulatedJudge(
        qualities=QUALITIES,
        unreadable_rate=0.15,
        truncated_rate=0.1,
        reasoning_style=style,  # type: ignore[arg-type]
        answer_format=answer_format,  # type: ignore[arg-type]
        seed=2,
    )


@pytest.mark.parametrize("style", ["reasoning", "think", "bare"])
def test_unreadable_and_truncated_rates(style: str) -> None:
    n = 1000
    reqs = [PairRequest("Q", "alpha", "gamma", sample=s) for s in range(n)]
    verdicts = asyncio.run(judge_many(make_failing_judge(style, "json"), reqs))
    kinds = [v.failure for v in verdicts]
    assert_binomial(kinds.count("unreadable"), n, 0.15)  # type: ignore[arg-type]
    assert_binomial(kinds.count("truncated"), n, 0.1)  # type: ignore[arg-type]
    assert set(kinds) <= {None, "unreadable", "truncated"}


@pytest.mark.parametrize("style", ["reasoning", "reasoning_content", "think", "bare", "none"])
@pytest.mark.parametrize("answer_format", ["json", "rubric", "boxed"])
def test_every_format_and_style_reads_back(style: str, answer_format: str) -> None:
    """Readable answers give the drawn values; failed ones are typed and keep the raw text."""
    n = 120
    reqs = [PairRequest("Q", "alpha", "gamma", sample=s) for s in range(n)]
    answers = [make_failing_judge(style, answer_format).respond(r) for r in reqs]
    verdicts = asyncio.run(judge_many(make_failing_judge(style, answer_format), reqs))
    assert {v.failure for v in verdicts} == {None, "unreadable", "truncated"}
    for answer, v in zip(answers, verdicts, strict=True):
        assert v.raw == answer.content
        assert v.usage == answer.usage and v.usage.prompt_tokens > 0
        if v.ok:
            assert (v.score_1, v.score_2, v.ranking) == (
                answer.true_score_1,
                answer.true_score_2,
                answer.true_ranking,
            )
            assert len(v.rubrics) == (2 if answer_format == "rubric" else 0)
            assert v.reasoning is not None if style != "none" else v.reasoning is None
        elif v.failure == "unreadable":
            assert v.raw is not None and "cannot decide" in v.raw
            assert v.finish_reason == "stop"
        else:
            assert v.finish_reason == answer.finish_reason == "length"


def test_no_failures_by_default() -> None:
    judge = SimulatedJudge(seed=3)
    verdicts = asyncio.run(judge_many(judge, requests_for(["a", "b", "c", "d"])))
    assert all(v.ok for v in verdicts)


# -- qualities ----------------------------------------------------------------------------------


async def test_missing_quality_raises_key_error_naming_the_text() -> None:
    judge = SimulatedJudge(qualities=QUALITIES)
    with pytest.raises(KeyError, match="unknown candidate"):
        await judge.judge(PairRequest("Q", "alpha", "unknown candidate"))
    with pytest.raises(KeyError, match=r"'xxxxxxxxxx.*\.\.\."):
        judge.quality("x" * 100)


async def test_qualities_keyed_by_the_callers_texts() -> None:
    """Texts with reasoning, or empty, are looked up as given, not as shown to the judge."""
    raw_1, raw_2 = "<think>plan</think>Answer A", ""
    judge = SimulatedJudge(qualities={raw_1: 3.0, raw_2: -3.0}, seed=1)
    req = PairRequest("Q", raw_1, raw_2)
    assert req.messages()[-2:] == [
        {"role": "response_1", "content": "Answer A"},
        {"role": "response_2", "content": "None"},
    ]
    verdict = await judge.judge(req)
    assert verdict.ok
    assert judge.win_probability(raw_1, raw_2) == pytest.approx(1 / (1 + math.exp(-6.0)))


def test_respond_messages_looks_qualities_up_by_the_given_keys() -> None:
    """``keys`` name the texts whose qualities decide, whatever the messages show."""
    messages = PairRequest("Q", "shown one", "shown two").messages()
    judge = SimulatedJudge(qualities={"strong": 9.0, "weak": -9.0}, noise_scale=0.1, seed=2)
    assert judge.respond_messages(messages, keys=("weak", "strong")).true_ranking == 6
    assert judge.respond_messages(messages, keys=("strong", "weak")).true_ranking == 1
    with pytest.raises(KeyError, match="shown one"):
        judge.respond_messages(messages)  # by default, the texts as shown


def test_callable_and_hashed_qualities() -> None:
    judge = SimulatedJudge(qualities=len)
    assert judge.quality("abcd") == 4.0
    hashed = SimulatedJudge(seed=3)
    assert hashed.quality("some text") == text_quality("some text", seed=3)
    assert text_quality("some text", seed=3) != text_quality("some text", seed=4)


def test_hashed_quality_is_the_documented_draw_and_standard_normal() -> None:
    # The same in every process and Python version (never Python's salted hash()): one
    # standard normal draw from a generator seeded by the 8-byte BLAKE2b of "seed NUL text".
    digest = hashlib.blake2b(b"3\x00some text", digest_size=8).digest()
    expected = np.random.default_rng(int.from_bytes(digest, "little")).standard_normal()
    assert text_quality("some text", seed=3) == expected
    draws = np.array([text_quality(f"answer {i}", seed=1) for i in range(4000)])
    assert abs(draws.mean()) < 4 / math.sqrt(4000) and abs(draws.std() - 1.0) < 0.05


def test_is_a_batch_judge() -> None:
    judge = SimulatedJudge()
    assert isinstance(judge, Judge) and isinstance(judge, BatchJudge)


# -- render_answer ------------------------------------------------------------------------------


def test_render_answer_shapes() -> None:
    r = render_answer(4, 2, 2, reasoning_style="reasoning", reasoning="why")
    assert r.reasoning == "why" and r.content is not None and r.content.startswith("```json")
    r = render_answer(4, 2, 2, reasoning_style="think", reasoning="why")
    assert r.reasoning is None and r.content is not None and r.content.startswith("<think>")
    r = render_answer(4, 2, 2, answer_format="boxed", reasoning_style="none", reasoning="why")
    assert r.content is not None and "\\boxed{4, 2}" in r.content and "why" not in r.content


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"answer_format": "xml"}, r"Argument 'answer_format' must be one of .* not 'xml'"),
        (
            {"reasoning_style": "inline"},
            r"Argument 'reasoning_style' must be one of .* not 'inline'",
        ),
    ],
)
def test_render_answer_validation(kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        render_answer(4, 2, 2, **kwargs)  # type: ignore[arg-type]


# -- argument validation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"noise": "gumbel"}, ValueError, r"Argument 'noise' must be one of .* not 'gumbel'"),
        (
            {"answer_format": "yaml"},
            ValueError,
            r"Argument 'answer_format' must be one of .* not 'yaml'",
        ),
        (
            {"reasoning_style": "x"},
            ValueError,
            r"Argument 'reasoning_style' must be one of .* not 'x'",
        ),
        ({"noise_scale": 0}, ValueError, r"Argument 'noise_scale' must be > 0, not 0"),
        ({"noise_scale": -1.0}, ValueError, r"Argument 'noise_scale' must be > 0, not -1.0"),
        ({"noise_scale": math.nan}, ValueError, r"Argument 'noise_scale' must be > 0, not nan"),
        (
            {"position_bias": math.inf},
            ValueError,
            r"Argument 'position_bias' must be finite, not inf",
        ),
        (
            {"position_bias": math.nan},
            ValueError,
            r"Argument 'position_bias' must be finite, not nan",
        ),
        (
            {"unreadable_rate": 1.5},
            ValueError,
            r"Argument 'unreadable_rate' must be in \[0, 1\], not 1.5",
        ),
        (
            {"truncated_rate": -0.1},
            ValueError,
            r"Argument 'truncated_rate' must be in \[0, 1\], not -0.1",
        ),
        (
            {"unreadable_rate": 0.6, "truncated_rate": 0.6},
            ValueError,
            r"'unreadable_rate' \+ 'truncated_rate' must be <= 1, not 0.6 \+ 0.6",
        ),
        (
            {"thresholds": (2.0, 1.0)},
            ValueError,
            r"Argument 'thresholds' must satisfy 0 < low < high, not \(2.0, 1.0\)",
        ),
        ({"thresholds": (0.0, 1.0)}, ValueError, r"Argument 'thresholds' must satisfy"),
        ({"n_rubrics": -1}, ValueError, r"Argument 'n_rubrics' must be >= 0, not -1"),
        ({"n_rubrics": 2.5}, TypeError, r"Argument 'n_rubrics' must be an int, not float"),
    ],
)
def test_argument_validation(
    kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        SimulatedJudge(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("style", "expected"),
    [
        ("reasoning", RenderedAnswer(None, "Let me")),
        ("reasoning_content", RenderedAnswer(None, "Let me")),
        ("think", RenderedAnswer("<think>\nLet me", None)),
        ("bare", RenderedAnswer("Let me", None)),
        ("none", RenderedAnswer("Let me", None)),
    ],
)
def test_a_truncated_answer_is_cut_inside_its_reasoning_in_each_style(
    style: str, expected: RenderedAnswer
) -> None:
    """One truncation for the judge and serve-sim: the reasoning field, or an unclosed think."""
    settings = SimulatedJudgeSettings(reasoning_style=style)  # type: ignore[arg-type]
    assert settings.truncated("Let me") == expected
