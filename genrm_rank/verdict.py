"""The :class:`Verdict` value: what one GenRM comparison said, or why it said nothing usable.

A GenRM judges two responses shown in slots 1 and 2 and answers with an individual helpfulness
score for each (1-5, higher is better) and a ranking of the pair (1-6):

====  ==================================
 1    response 1 is much better
 2    response 1 is better
 3    response 1 is slightly better
 4    response 2 is slightly better
 5    response 2 is better
 6    response 2 is much better
====  ==================================

Swapping the slots mirrors the ranking (``r -> 7 - r``, written once: :meth:`Verdict.swapped`
and :meth:`RubricScore.swapped` share it) and trades the scores. A failed verdict has
``ok == False``, a :class:`FailureKind` and the raw text; asking it for a number raises
:class:`~genrm_rank.errors.VerdictError`.

References
----------
Wang et al., "HelpSteer3-Preference: Open Human-Annotated Preference Data across Diverse Tasks
and Languages", 2025 (arXiv:2505.11475), for the 1-5 / 1-6 scales of NVIDIA's GenRMs.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from genrm_rank import validate as check
from genrm_rank.errors import ArgumentError, VerdictError

__all__ = [
    "RANKING_MAX",
    "RANKING_MIN",
    "SCORE_MAX",
    "SCORE_MIN",
    "FailureKind",
    "PreferenceMapping",
    "RubricScore",
    "Usage",
    "Verdict",
    "linear_preference",
    "table_preference",
    "verdict_from_dict",
    "verdict_to_dict",
]

SCORE_MIN, SCORE_MAX = 1.0, 5.0
RANKING_MIN, RANKING_MAX = 1.0, 6.0

_SURROGATE = re.compile("[\ud800-\udfff]")


def _utf8_text(text: str | None) -> str | None:
    """``text`` with each lone surrogate (a JSON ``"\\ud800"`` escape) made U+FFFD, so that
    every writer (output files, the cache) can encode it.

    >>> _utf8_text("a\\ud800b") == "a\\ufffdb", _utf8_text("ok")
    (True, 'ok')
    """
    return text if text is None or text.isascii() else _SURROGATE.sub("\ufffd", text)


def _within(name: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise ArgumentError(name, f"must be in [{low:g}, {high:g}], not {value}.")


class FailureKind(str, enum.Enum):
    """Why a verdict carries no usable value (``str``-valued: ``failure == "truncated"`` works)."""

    UNREADABLE = "unreadable"
    """The answer holds no verdict that can be read (no JSON/boxed values, missing keys)."""
    AMBIGUOUS = "ambiguous"
    """The answer holds several verdicts that disagree; none is chosen."""
    TRUNCATED = "truncated"
    """Generation stopped at ``max_tokens`` (``finish_reason == "length"``) or content was null."""
    OUT_OF_RANGE = "out_of_range"
    """A score outside 1..5 or a ranking outside 1..6."""
    EMPTY = "empty"
    """The server returned an empty answer."""
    REJECTED = "rejected"
    """The server refused the request with a non-retryable error (e.g. 400: prompt too long)."""
    UNAVAILABLE = "unavailable"
    """No server answered within the retry limit (connection errors, timeouts, 5xx, 429)."""

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Usage:
    """Token usage the server reported for one call: whole numbers of tokens, never negative."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    def __post_init__(self) -> None:
        for name in ("prompt_tokens", "completion_tokens"):
            object.__setattr__(self, name, check.count(name, getattr(self, name), 0))

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
        )


def _mirrored(ranking: float | None) -> float | None:
    """A ranking seen from the other slot: the one place of the ``7 - r`` arithmetic."""
    return None if ranking is None else RANKING_MIN + RANKING_MAX - ranking


@dataclass(frozen=True)
class RubricScore:
    """One per-rubric triplet of a rubric-style answer (Nemotron-3-Ultra GenRM); values the
    model left out or wrote unreadably are ``None``."""

    rubric_id: int | str | None
    score_1: float | None
    score_2: float | None
    ranking: float | None

    def __post_init__(self) -> None:
        if isinstance(self.rubric_id, str):
            object.__setattr__(self, "rubric_id", _utf8_text(self.rubric_id))

    def swapped(self) -> RubricScore:
        """The same triplet seen with the two responses' slots exchanged."""
        return RubricScore(self.rubric_id, self.score_2, self.score_1, _mirrored(self.ranking))


PreferenceMapping = Callable[[float], float]
"""Maps a ranking in [1, 6] to the strength in [0, 1] with which slot 1 beats slot 2."""


def linear_preference(ranking: float) -> float:
    """Default mapping: ``(6 - ranking) / 5`` (1 -> 1.0, 3 -> 0.6, 4 -> 0.4, 6 -> 0.0).

    >>> linear_preference(1), linear_preference(3.5), linear_preference(6)
    (1.0, 0.5, 0.0)
    """
    return (RANKING_MAX - ranking) / (RANKING_MAX - RANKING_MIN)


def table_preference(table: dict[int, float]) -> PreferenceMapping:
    """A mapping from a table of the six integer rankings, interpolated linearly between them.

    The table must give all of 1..6, values in [0, 1], and be antisymmetric
    (``table[r] + table[7 - r] == 1``) so that swapping the slots mirrors the preference.

    >>> hard = table_preference({1: 1, 2: 1, 3: 1, 4: 0, 5: 0, 6: 0})
    >>> hard(2), hard(5)
    (1.0, 0.0)
    """
    keys = sorted(table)
    if keys != [1, 2, 3, 4, 5, 6]:
        raise ArgumentError("table", f"must have the keys 1..6, not {keys}.")
    values = [float(table[r]) for r in keys]
    for r, value in enumerate(values, 1):
        if not 0.0 <= value <= 1.0:
            raise ArgumentError("table", f"must map into [0, 1], not {r} -> {value}.")
        if not math.isclose(value + values[6 - r], 1.0):
            raise ArgumentError(
                "table",
                f"must satisfy table[r] + table[7 - r] == 1, not table[{r}] = {value}, "
                f"table[{7 - r}] = {table[7 - r]}.",
            )

    def mapping(ranking: float) -> float:
        _within("ranking", ranking, RANKING_MIN, RANKING_MAX)
        low = min(math.floor(ranking), 5)
        frac = ranking - low
        return values[low - 1] * (1.0 - frac) + values[low] * frac

    return mapping


@dataclass(frozen=True)
class Verdict:
    """What one pairwise judgement said, or why it said nothing usable.

    Attributes
    ----------
    score_1, score_2 : float or None
        Helpfulness scores (1..5) of slots 1 and 2; ``None`` when the judge gave none (a
        three-class replay record) or the verdict failed.
    ranking : float or None
        The pair ranking (see the module's table); ``None`` iff failed.
    rubrics : tuple of RubricScore
        Per-rubric triplets of a rubric-style answer, in the order given.
    raw, reasoning : str or None
        The answer text (content) as received, and the judge's reasoning.
    failure : FailureKind or None
        ``None`` for a usable verdict.
    error : str or None
        Detail of the failure (parser message, server error body).
    finish_reason : str or None
        The server's ``finish_reason``.
    usage : Usage or None
        Tokens the server reported, summed over every attempt that produced this verdict.
    attempts : int
        Generations paid for: 1 for an answer (or a failure after which the server may have
        generated, such as a timeout), 0 for a request no server started on.
    cached : bool
        Served from a verdict cache (``attempts`` and ``usage`` are the first cost). Not part of
        equality.
    """

    score_1: float | None = None
    score_2: float | None = None
    ranking: float | None = None
    rubrics: tuple[RubricScore, ...] = ()
    raw: str | None = None
    reasoning: str | None = None
    failure: FailureKind | None = None
    error: str | None = None
    finish_reason: str | None = None
    usage: Usage | None = None
    attempts: int = 1
    cached: bool = field(default=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("raw", "reasoning", "error", "finish_reason"):
            if isinstance(value := getattr(self, name), str):
                object.__setattr__(self, name, _utf8_text(value))
        if self.failure is None:
            if self.ranking is None:
                raise ValueError("A verdict with no failure must have a ranking, not None.")
            _within("ranking", self.ranking, RANKING_MIN, RANKING_MAX)
            for name, score in (("score_1", self.score_1), ("score_2", self.score_2)):
                if score is not None:
                    _within(name, score, SCORE_MIN, SCORE_MAX)
        else:
            if not isinstance(self.failure, FailureKind):
                object.__setattr__(self, "failure", FailureKind(self.failure))
            if self.ranking is not None or self.score_1 is not None or self.score_2 is not None:
                raise ValueError(
                    f"A failed verdict ({self.failure}) must carry no ranking or scores, not "
                    f"ranking={self.ranking}, score_1={self.score_1}, score_2={self.score_2}."
                )

    @classmethod
    def failed(
        cls,
        failure: FailureKind | str,
        *,
        raw: str | None = None,
        reasoning: str | None = None,
        error: str | None = None,
        finish_reason: str | None = None,
        usage: Usage | None = None,
        attempts: int = 1,
    ) -> Verdict:
        """A failed verdict of the given kind, keeping the raw text."""
        return cls(
            raw=raw,
            reasoning=reasoning,
            failure=FailureKind(failure),
            error=error,
            finish_reason=finish_reason,
            usage=usage,
            attempts=attempts,
        )

    @property
    def ok(self) -> bool:
        """Whether the verdict holds a usable ranking."""
        return self.failure is None

    def _require_ranking(self) -> float:
        if self.ranking is None:
            raise VerdictError(
                f"This verdict failed ({self.failure}: {self.error or 'no detail'}); "
                "it has no ranking or preference."
            )
        return self.ranking

    @property
    def preference(self) -> float:
        """Strength in [0, 1] with which slot 1 beats slot 2, by :func:`linear_preference`."""
        return linear_preference(self._require_ranking())

    def preference_with(self, mapping: PreferenceMapping) -> float:
        """Like :attr:`preference`, with another mapping of the ranking."""
        return float(mapping(self._require_ranking()))

    @property
    def winner_slot(self) -> int | None:
        """1 or 2 for the slot the ranking favours, ``None`` for an exact 3.5 (a replayed tie)."""
        ranking = self._require_ranking()
        return 1 if ranking < 3.5 else 2 if ranking > 3.5 else None

    def swapped(self) -> Verdict:
        """The same verdict seen with the slots exchanged: ``ranking -> 7 - ranking``; the scores
        and each rubric triplet trade places."""
        return replace(
            self,
            score_1=self.score_2,
            score_2=self.score_1,
            ranking=_mirrored(self.ranking),
            rubrics=tuple(r.swapped() for r in self.rubrics),
        )

    @property
    def total_tokens(self) -> int:
        """Total tokens spent on this verdict (0 when the server reported none)."""
        return 0 if self.usage is None else self.usage.total_tokens


_STORED: dict[type, tuple[str, ...]] = {
    cls: tuple(f.name for f in dataclasses.fields(cls) if f.compare)
    for cls in (Verdict, RubricScore, Usage)
}
"""The fields that JSON stores of each value (a verdict's ``cached`` flag is not stored)."""


def _stored(value: Any, cls: type) -> dict[str, Any]:
    return {name: getattr(value, name) for name in _STORED[cls]}


def verdict_to_dict(verdict: Verdict) -> dict[str, Any]:
    """Every field of a verdict as a JSON-ready dict; :func:`verdict_from_dict` inverts it.

    >>> verdict_to_dict(Verdict(score_1=4, score_2=2, ranking=2))["ranking"]
    2
    """
    data = _stored(check.instance("verdict", verdict, Verdict), Verdict)
    data["rubrics"] = [_stored(r, RubricScore) for r in verdict.rubrics]
    data["usage"] = None if verdict.usage is None else _stored(verdict.usage, Usage)
    data["failure"] = None if verdict.failure is None else verdict.failure.value
    return data


def _known(data: object, cls: type, name: str) -> dict[str, Any]:
    """``data`` as a dict, checked to hold only stored fields of ``cls``."""
    values = dict(check.mapping(name, data))
    unknown = sorted(values.keys() - _STORED[cls])
    if unknown:
        raise ValueError(f"Argument '{name}' has unknown keys {unknown}.")
    return values


def verdict_from_dict(data: Mapping[str, Any]) -> Verdict:
    """The verdict a :func:`verdict_to_dict` dict describes; missing keys take the defaults,
    unknown keys raise ``ValueError``."""
    values = _known(data, Verdict, "data")
    values["rubrics"] = tuple(
        RubricScore(
            *map(_known(item, RubricScore, f"data['rubrics'][{i}]").get, _STORED[RubricScore])
        )
        for i, item in enumerate(values.get("rubrics") or ())
    )
    if values.get("usage") is not None:
        usage = _known(values["usage"], Usage, "data['usage']")
        values["usage"] = Usage(**{k: int(v) for k, v in usage.items()})
    values["attempts"] = check.integer("data['attempts']", values.get("attempts", 1))
    return Verdict(**values)
