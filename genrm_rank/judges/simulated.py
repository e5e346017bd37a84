"""A seeded, in-process simulated GenRM that writes real answer text.

:class:`SimulatedJudge` draws each pair's ranking from latent candidate qualities under a
Bradley-Terry or Thurstone model with a slot-1 bias, writes it as GenRM answer text (unreadable
or truncated at given rates) and reads it back with :func:`~genrm_rank.parsing.parse_verdict`.
``genrm-rank serve-sim`` writes its answers with the same machinery.

References
----------
Bradley & Terry, "Rank analysis of incomplete block designs", Biometrika 39 (1952).
Thurstone, "A law of comparative judgment", Psychological Review 34 (1927).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Literal, get_args

import numpy as np

from genrm_rank import validate as check
from genrm_rank.judges.base import PairRequest
from genrm_rank.parsing import parse_verdict
from genrm_rank.verdict import Usage, Verdict

__all__ = [
    "AnswerFormat",
    "NoiseModel",
    "ReasoningStyle",
    "RenderedAnswer",
    "SimulatedAnswer",
    "SimulatedJudge",
    "SimulatedJudgeSettings",
    "estimate_tokens",
    "render_answer",
    "text_quality",
]

AnswerFormat = Literal["json", "rubric", "boxed"]
ReasoningStyle = Literal["reasoning", "reasoning_content", "think", "bare", "none"]
NoiseModel = Literal["bradley_terry", "thurstone"]

_FORMATS = get_args(AnswerFormat)
_STYLES = get_args(ReasoningStyle)
_FIELD_STYLES = ("reasoning", "reasoning_content")
"""Styles that send the reasoning in a field of its own."""


def _clip(value: int, low: int, high: int) -> int:
    return min(max(int(value), low), high)


def estimate_tokens(text: str) -> int:
    """A rough token count (4 characters a token), for simulated usage figures."""
    return max(1, math.ceil(len(text) / 4))


def text_quality(text: str, *, seed: int = 0) -> float:
    """A deterministic latent quality for a text: a standard normal draw keyed by its hash."""
    digest = hashlib.blake2b(f"{seed}\x00{text}".encode(), digest_size=8).digest()
    rng = np.random.default_rng(int.from_bytes(digest, "little"))
    return float(rng.standard_normal())


@dataclass(frozen=True)
class RenderedAnswer:
    """Answer text as a server would send it."""

    content: str | None
    reasoning: str | None
    """What goes in the ``reasoning``/``reasoning_content`` field (``None`` for inline styles)."""


def render_answer(
    score_1: int,
    score_2: int,
    ranking: int,
    *,
    answer_format: AnswerFormat = "json",
    reasoning_style: ReasoningStyle = "reasoning",
    reasoning: str = "",
    rubric_triplets: Sequence[tuple[int, int, int]] = (),
) -> RenderedAnswer:
    """Write a verdict as GenRM answer text.

    Parameters
    ----------
    score_1, score_2, ranking : int
        The verdict (1..5, 1..5, 1..6).
    answer_format : {"json", "rubric", "boxed"}
        Qwen3-Nemotron-235B JSON in a fence, Nemotron-3-Ultra rubric JSON with ``overall``, or
        the boxed format of Llama-3.3-Nemotron-Super-49B.
    reasoning_style : {"reasoning", "reasoning_content", "think", "bare", "none"}
        Where ``reasoning`` goes: a field of its own (returned in ``reasoning``), inline as
        ``<think>...</think>``, before a bare ``</think>``, or nowhere.
    reasoning : str
    rubric_triplets : sequence of (score_1, score_2, ranking)
        Per-rubric values for the rubric format.
    """
    check.one_of("answer_format", answer_format, _FORMATS)
    if answer_format == "boxed":
        sections = {
            "Analysis on Response 1": "Adequate.",
            "Analysis on Response 2": "Adequate.",
            "Individual Scores": f"\\boxed{{{score_1}, {score_2}}}",
            "Ranking Score": f"\\boxed{{{ranking}}}",
        }
        answer = "\n".join(
            f"[The Begin of {k}]\n{v}\n[The End of {k}]" for k, v in sections.items()
        )
        return _place_reasoning(answer, reasoning, reasoning_style)
    verdict = {"score_1": score_1, "score_2": score_2, "ranking": ranking}
    if answer_format == "json":
        body: dict[str, Any] = {
            "response_1_analysis": "Response 1 addresses the request.",
            "response_2_analysis": "Response 2 addresses the request.",
            **verdict,
        }
    else:
        rubrics = [
            {
                "rubric_id": i + 1,
                "response_1_analysis": f"Against rubric {i + 1}, response 1 is adequate.",
                "response_2_analysis": f"Against rubric {i + 1}, response 2 is adequate.",
                "score_1": s1,
                "score_2": s2,
                "ranking": r,
            }
            for i, (s1, s2, r) in enumerate(rubric_triplets)
        ]
        body = {"rubric_evaluations": rubrics, "overall": verdict}
    answer = f"```json\n{json.dumps(body, indent=2)}\n```"
    return _place_reasoning(answer, reasoning, reasoning_style)


def _place_reasoning(answer: str, reasoning: str, style: ReasoningStyle) -> RenderedAnswer:
    check.one_of("reasoning_style", style, _STYLES)
    if style in _FIELD_STYLES:
        return RenderedAnswer(answer, reasoning)
    before = {"think": f"<think>\n{reasoning}\n</think>\n\n", "bare": f"{reasoning}\n</think>\n\n"}
    return RenderedAnswer(before.get(style, "") + answer, None)


@dataclass(frozen=True)
class SimulatedAnswer:
    """One simulated server answer, before parsing."""

    content: str | None
    reasoning: str | None
    finish_reason: str
    usage: Usage
    true_score_1: int
    true_score_2: int
    true_ranking: int


QualitySource = Mapping[str, float] | Callable[[str], float] | None


@dataclass(frozen=True, kw_only=True)
class SimulatedJudgeSettings:
    """How a simulated GenRM judges and writes its answers: the base of :class:`SimulatedJudge`
    and :class:`~genrm_rank.server.app.SimServerConfig`.

    Parameters
    ----------
    noise : {"bradley_terry", "thurstone"}
        Logistic noise (P(slot 1 wins) = sigmoid((q1 - q2 + bias) / noise_scale), Bradley-Terry)
        or standard normal noise (Thurstone case V).
    noise_scale : float
        Scale of the noise; larger is a noisier judge.
    position_bias : float
        Log-odds added in favour of slot 1.
    unreadable_rate, truncated_rate : float
        Probability that an answer has no readable verdict / stops at ``max_tokens``.
    answer_format : {"json", "rubric", "boxed"}
    reasoning_style : {"reasoning", "reasoning_content", "think", "bare", "none"}
    thresholds : (float, float)
        Cut points on the latent margin separating "slightly", "better" and "much better".
    n_rubrics : int
        Per-rubric triplets written in the rubric format.
    """

    noise: NoiseModel = "bradley_terry"
    noise_scale: float = 1.0
    position_bias: float = 0.0
    unreadable_rate: float = 0.0
    truncated_rate: float = 0.0
    answer_format: AnswerFormat = "json"
    reasoning_style: ReasoningStyle = "reasoning"
    thresholds: tuple[float, float] = (1.0, 2.5)
    n_rubrics: int = 2

    def __post_init__(self) -> None:
        check.one_of("noise", self.noise, get_args(NoiseModel))
        check.one_of("answer_format", self.answer_format, _FORMATS)
        check.one_of("reasoning_style", self.reasoning_style, _STYLES)
        check.positive("noise_scale", self.noise_scale)
        check.probability("unreadable_rate", self.unreadable_rate)
        check.probability("truncated_rate", self.truncated_rate)
        if self.unreadable_rate + self.truncated_rate > 1.0:
            raise ValueError(
                "Arguments 'unreadable_rate' + 'truncated_rate' must be <= 1, "
                f"not {self.unreadable_rate} + {self.truncated_rate}."
            )
        low, high = self.thresholds
        if not 0 < low < high:
            raise ValueError(
                f"Argument 'thresholds' must satisfy 0 < low < high, not {self.thresholds}."
            )
        if not math.isfinite(self.position_bias):
            raise ValueError(f"Argument 'position_bias' must be finite, not {self.position_bias}.")
        n_rubrics = check.integer("n_rubrics", self.n_rubrics, 0, spelled=">=")
        set_ = object.__setattr__
        for name in ("noise_scale", "position_bias", "unreadable_rate", "truncated_rate"):
            set_(self, name, float(getattr(self, name)))
        set_(self, "thresholds", (float(low), float(high)))
        set_(self, "n_rubrics", n_rubrics)

    def truncated(self, partial: str) -> RenderedAnswer:
        """An answer cut at ``max_tokens`` inside its reasoning ``partial``, in this style."""
        if self.reasoning_style in _FIELD_STYLES:
            return RenderedAnswer(None, partial)
        if self.reasoning_style == "think":
            return RenderedAnswer(f"<think>\n{partial}", None)
        return RenderedAnswer(partial, None)

    def settings(self) -> SimulatedJudgeSettings:
        """These settings alone, without what a subclass adds."""
        return SimulatedJudgeSettings(
            **{f.name: getattr(self, f.name) for f in fields(SimulatedJudgeSettings)}
        )


@dataclass(frozen=True, kw_only=True, eq=False)
class SimulatedJudge(SimulatedJudgeSettings):
    """A seeded simulated GenRM; takes :class:`SimulatedJudgeSettings`' keywords, and:

    Parameters
    ----------
    qualities : mapping of text to float, callable, or None
        Latent quality of each candidate text; ``None``: from its hash (:func:`text_quality`).
        A mapping must hold every text the judge is asked about.
    seed : int
        Every draw is keyed by ``(seed, request, sample, repeat count)``, so results do not
        depend on the order in which concurrent requests arrive.
    """

    qualities: QualitySource = None
    seed: int = 0
    _repeats: dict[bytes, int] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "seed", int(self.seed))

    @property
    def calls(self) -> int:
        """Requests answered so far (by :meth:`judge` or :meth:`respond`)."""
        return sum(self._repeats.values())

    def quality(self, text: str) -> float:
        """The latent quality of a candidate text."""
        if self.qualities is None:
            return text_quality(text, seed=self.seed)
        if callable(self.qualities):
            return float(self.qualities(text))
        try:
            return float(self.qualities[text])
        except KeyError:
            raise KeyError(
                f"SimulatedJudge has no quality for the candidate text {text[:60]!r}"
                f"{'...' if len(text) > 60 else ''}."
            ) from None

    def win_probability(self, text_1: str, text_2: str) -> float:
        """P(slot 1 is ranked above slot 2) under this judge, position bias included."""
        margin = (
            self.quality(text_1) - self.quality(text_2) + self.position_bias
        ) / self.noise_scale
        if self.noise == "bradley_terry":
            return 1.0 / (1.0 + math.exp(-margin))
        return 0.5 * (1.0 + math.erf(margin / math.sqrt(2.0)))

    def _rng(self, messages: list[dict[str, str]], sample: int) -> np.random.Generator:
        blob = json.dumps(messages, ensure_ascii=False).encode()
        key = hashlib.blake2b(blob + f"\x00{sample}".encode(), digest_size=16).digest()
        repeat = self._repeats.get(key, 0)
        self._repeats[key] = repeat + 1
        digest = hashlib.blake2b(
            key + f"\x00{self.seed}\x00{repeat}".encode(), digest_size=16
        ).digest()
        return np.random.default_rng(int.from_bytes(digest, "little"))

    def respond_messages(
        self,
        messages: list[dict[str, str]],
        *,
        sample: int = 0,
        keys: tuple[str, str] | None = None,
    ) -> SimulatedAnswer:
        """Answer a GenRM chat request given as messages (as ``serve-sim`` does).

        Qualities are looked up by ``keys``, by default the candidate texts as shown.
        """
        by_role = {m["role"]: m["content"] for m in messages}
        text_1, text_2 = by_role["response_1"], by_role["response_2"]
        rng = self._rng(messages, sample)
        q1, q2 = (self.quality(key) for key in keys or (text_1, text_2))
        if self.noise == "bradley_terry":
            u = float(rng.uniform(1e-12, 1.0 - 1e-12))
            eps = math.log(u / (1.0 - u))
        else:
            eps = float(rng.standard_normal())
        margin = (q1 - q2 + self.position_bias) / self.noise_scale + eps
        magnitude = 1 + sum(abs(margin) >= cut for cut in self.thresholds)  # 1, 2 or 3
        ranking = 4 - magnitude if margin > 0 else 3 + magnitude
        score_1, score_2 = (
            _clip(round(3.0 + q + 0.5 * float(rng.standard_normal())), 1, 5) for q in (q1, q2)
        )
        if (ranking <= 3 and score_1 < score_2) or (ranking >= 4 and score_1 > score_2):
            score_1, score_2 = score_2, score_1
        rubric_triplets = [
            (
                _clip(score_1 + int(rng.integers(-1, 2)), 1, 5),
                _clip(score_2 + int(rng.integers(-1, 2)), 1, 5),
                _clip(ranking + int(rng.integers(-1, 2)), 1, 6),
            )
            for _ in range(self.n_rubrics)
        ]
        reasoning = (
            "Let me compare the two responses.\n"
            f"Response 1 begins: {text_1[:80]!r}.\nResponse 2 begins: {text_2[:80]!r}.\n"
            f"On balance, response {1 if ranking <= 3 else 2} is "
            f"{['slightly better', 'better', 'much better'][magnitude - 1]}."
        )
        prompt_tokens = sum(estimate_tokens(m["content"]) + 4 for m in messages)
        draw = float(rng.uniform())
        if draw < self.truncated_rate:
            partial = reasoning[: len(reasoning) // 2]
            answer, finish, completion = self.truncated(partial), "length", estimate_tokens(partial)
        else:
            answer = render_answer(
                score_1,
                score_2,
                ranking,
                answer_format=self.answer_format,
                reasoning_style=self.reasoning_style,
                reasoning=reasoning,
                rubric_triplets=rubric_triplets,
            )
            if draw < self.truncated_rate + self.unreadable_rate:
                unreadable = "Both responses have merit; I cannot decide on a score."
                content = _place_reasoning(unreadable, reasoning, self.reasoning_style).content
                answer = RenderedAnswer(content, answer.reasoning)
            finish = "stop"
            completion = estimate_tokens((answer.content or "") + (answer.reasoning or ""))
        usage = Usage(prompt_tokens, completion)
        return SimulatedAnswer(
            answer.content, answer.reasoning, finish, usage, score_1, score_2, ranking
        )

    def respond(self, request: PairRequest) -> SimulatedAnswer:
        """Answer one request as a server would, before parsing.

        Qualities are looked up by the request's own candidate texts (as given, before the
        reasoning is stripped or an empty text is shown as ``None``), the keys a caller's
        ``qualities`` mapping and :meth:`win_probability` use.
        """
        keys = (request.response_1, request.response_2)
        return self.respond_messages(request.messages(), sample=request.sample, keys=keys)

    async def judge(self, request: PairRequest) -> Verdict:
        """Judge one ordered pair (answer text written, then parsed)."""
        answer = self.respond(request)
        return parse_verdict(
            answer.content,
            answer.reasoning,
            answer.finish_reason,
            usage=answer.usage,
            thinking=self.reasoning_style != "none",
        )

    async def judge_batch(self, requests: Sequence[PairRequest]) -> list[Verdict]:
        """Judge many requests in one go."""
        return [await self.judge(r) for r in requests]
