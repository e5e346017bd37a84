"""Verdicts out: read a GenRM answer into a :class:`~genrm_rank.verdict.Verdict`.

Three answer formats, as the models' cards describe them and NVIDIA's parser reads them
(NVIDIA-NeMo/Gym, ``resources_servers/genrm_compare/utils.py``; the rubric format is inferred
from NVIDIA's training code):

1. JSON with ``score_1``, ``score_2``, ``ranking`` (Qwen3-Nemotron-235B GenRM), fenced or bare;
2. rubric JSON with ``rubric_evaluations`` and ``overall`` (Nemotron-3-Ultra GenRM): ``overall``
   is the verdict and the per-rubric triplets are kept;
3. the boxed format of Llama-3.3-Nemotron-Super-49B GenRM (``\\boxed{x, y}`` individual
   scores, ``\\boxed{z}`` ranking).

Reasoning arrives in the ``reasoning``/``reasoning_content`` field, inline as
``<think>...</think>``, or before a bare ``</think>``; it ends at the last ``</think>`` outside a
JSON object, and only the answer after it is read, so a verdict quoted in the reasoning never
becomes the verdict. With ``thinking=True`` (every GenRM thinks), content with no reasoning field
and no ``</think>`` is reasoning that never ended, and an inline-reasoning generation cut at
``max_tokens`` is truncated whatever it holds (a quoted ``</think>`` cannot be told from the real
one). Null content whose reasoning field holds a verdict is a reasoning-parser misconfiguration
(``unreadable``, with a hint), never read as the verdict.

Every verdict object in the answer is read: several must agree, and a readable one next to an
unreadable one is ``ambiguous``. A ranking is one of the integers 1..6 (``3.5`` is
``out_of_range``), a score a number in 1..5; a rubric answer's ``overall`` must be an object
holding the three values. Per-rubric values out of the protocol are kept as ``None``. Nothing is
filled in (NeMo-Gym's parser substitutes 3.0 / 3.5 for missing values): an answer that cannot be
read gives a failed verdict carrying the raw text.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any

from genrm_rank import validate as check
from genrm_rank.errors import ArgumentError, Words
from genrm_rank.messages import THINK_END
from genrm_rank.verdict import (
    RANKING_MAX,
    RANKING_MIN,
    SCORE_MAX,
    SCORE_MIN,
    FailureKind,
    RubricScore,
    Usage,
    Verdict,
)

__all__ = ["NO_REASONING", "parse_verdict", "resolve_thinking", "split_reasoning"]

NO_REASONING = "no reasoning field and no </think>"
"""The words of a failure whose answer held no reasoning, which
:class:`~genrm_rank.failure_watch.FailureWatch` recognises (a gateway that strips it)."""

_THINK_OPEN = "<think>"
_BOXED = re.compile(r"\\boxed\{([^{}]*)\}")
_NUMBER = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$")
_VERDICT_KEYS = ("score_1", "score_2", "ranking")


class _ParseFailure(Exception):
    def __init__(self, kind: FailureKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def _json_spans(text: str) -> Iterator[tuple[Any, int, int]]:
    """Every top-level JSON object in ``text`` as ``(obj, start, end)``, fenced or not (an
    analysis string may itself quote a fence)."""
    decoder = json.JSONDecoder()
    pos = text.find("{")
    while pos != -1:
        try:
            obj, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError:
            pos = text.find("{", pos + 1)
            continue
        except RecursionError:  # nested past the stack: no verdict (scanning on is quadratic)
            return
        yield obj, pos, end
        pos = text.find("{", end)


def _strip_think_open(reasoning: str) -> str:
    return reasoning.strip().removeprefix(_THINK_OPEN).strip()


def resolve_thinking(thinking: bool | None, chat_template_kwargs: object) -> tuple[bool, bool]:
    """Whether a judge thinks, and whether that goes against its chat template's kwargs.

    ``thinking`` when given, else what the kwargs say (``enable_thinking`` or ``thinking``
    ``False`` turn it off). The second value is true when ``thinking`` was given against the
    kwargs: the same answers are then read another way, so a cache keys them apart.

    >>> resolve_thinking(None, {"enable_thinking": False}), resolve_thinking(False, None)
    ((False, False), (False, True))
    """
    kwargs = chat_template_kwargs if isinstance(chat_template_kwargs, Mapping) else {}
    off = kwargs.get("enable_thinking") is False or kwargs.get("thinking") is False
    resolved = (not off) if thinking is None else thinking
    return resolved, resolved == off


def split_reasoning(content: str) -> list[tuple[str | None, str]]:
    """Split a content string into ``[(reasoning, answer)]`` (one split, in a list).

    The reasoning ends at the last ``</think>`` outside a JSON object. Content that opens
    ``<think>`` and never closes it is all reasoning; content without the tag is all answer.

    >>> split_reasoning("<think>a</think>B")
    [('a', 'B')]
    >>> split_reasoning("B")
    [(None, 'B')]
    >>> split_reasoning('r</think>{"note": "</think>"}')
    [('r', '{"note": "</think>"}')]
    """
    positions = [m.start() for m in re.finditer(re.escape(THINK_END), content)]
    if positions:
        spans = [(start, end) for _, start, end in _json_spans(content)]
        free = [p for p in positions if not any(start < p < end for start, end in spans)]
        pos = free[-1] if free else positions[-1]
        return [(_strip_think_open(content[:pos]), content[pos + len(THINK_END) :])]
    if content.lstrip().startswith(_THINK_OPEN):
        return [(_strip_think_open(content), "")]
    return [(None, content)]


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool):
        raise _ParseFailure(FailureKind.UNREADABLE, f"{name} is a boolean ({value!r})")
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str) and _NUMBER.match(value.strip()):
        number = float(value.strip())
    else:
        raise _ParseFailure(FailureKind.UNREADABLE, f"{name} is not a number ({value!r})")
    if not math.isfinite(number):
        raise _ParseFailure(FailureKind.UNREADABLE, f"{name} is not finite ({value!r})")
    return number


def _checked(
    score_1_value: Any,
    score_2_value: Any,
    ranking_value: Any,
    rubrics: tuple[RubricScore, ...] = (),
) -> Verdict:
    """The verdict the three values (as written) give, else a :class:`_ParseFailure`."""
    score_1, score_2 = _number(score_1_value, "score_1"), _number(score_2_value, "score_2")
    ranking = _number(ranking_value, "ranking")
    ranking_text = ranking_value.strip() if isinstance(ranking_value, str) else ranking_value
    for name, score in (("score_1", score_1), ("score_2", score_2)):
        if not SCORE_MIN <= score <= SCORE_MAX:
            raise _ParseFailure(FailureKind.OUT_OF_RANGE, f"{name} = {score:g} is outside 1..5")
    if not RANKING_MIN <= ranking <= RANKING_MAX:
        raise _ParseFailure(FailureKind.OUT_OF_RANGE, f"ranking = {ranking_text!r} is outside 1..6")
    if not ranking.is_integer():
        raise _ParseFailure(
            FailureKind.OUT_OF_RANGE,
            f"ranking = {ranking_text!r} is not one of the integers 1..6",
        )
    return Verdict(score_1, score_2, ranking, rubrics)


def _optional_number(value: Any, low: float, high: float, *, integer: bool = False) -> float | None:
    try:
        number = _number(value, "value")
    except _ParseFailure:
        return None
    return number if low <= number <= high and (number.is_integer() or not integer) else None


def _rubrics(obj: Mapping[str, Any]) -> tuple[RubricScore, ...]:
    entries = obj.get("rubric_evaluations")
    if not isinstance(entries, list):
        return ()
    rubrics = []
    for entry in entries:
        if not isinstance(entry, Mapping):
            continue
        rubric_id = entry.get("rubric_id")
        if isinstance(rubric_id, bool) or not isinstance(rubric_id, (int, str)):
            rubric_id = None
        rubrics.append(
            RubricScore(
                rubric_id,
                _optional_number(entry.get("score_1"), SCORE_MIN, SCORE_MAX),
                _optional_number(entry.get("score_2"), SCORE_MIN, SCORE_MAX),
                _optional_number(entry.get("ranking"), RANKING_MIN, RANKING_MAX, integer=True),
            )
        )
    return tuple(rubrics)


def _verdict_from_object(obj: Any) -> Verdict | None:
    """The verdict in a parsed JSON value: ``None`` if it holds none, raises if a bad one."""
    if not isinstance(obj, Mapping):
        return None
    source: Mapping[str, Any] = obj
    if "overall" in obj:
        overall = obj["overall"]
        if not isinstance(overall, Mapping):
            raise _ParseFailure(
                FailureKind.UNREADABLE,
                f"'overall' must be an object with score_1, score_2 and ranking, not {overall!r}",
            )
        source = overall
    elif "rubric_evaluations" in obj:
        raise _ParseFailure(FailureKind.UNREADABLE, "rubric answer lacks an 'overall' object")
    elif "rubric_id" in obj or not any(key in obj for key in _VERDICT_KEYS):
        # A lone per-rubric entry (found when its enclosing answer is malformed) is no verdict.
        return None
    missing = [key for key in _VERDICT_KEYS if key not in source]
    if missing:
        raise _ParseFailure(FailureKind.UNREADABLE, f"verdict JSON lacks {', '.join(missing)}")
    return _checked(source["score_1"], source["score_2"], source["ranking"], _rubrics(obj))


def _boxed_verdict(text: str) -> Verdict:
    boxes = _BOXED.findall(text)
    if not boxes:
        raise _ParseFailure(FailureKind.UNREADABLE, "no verdict (JSON or boxed) in the answer")
    pairs = [b for b in boxes if "," in b]
    singles = [b for b in boxes if "," not in b]
    if len(pairs) != 1 or len(singles) != 1:
        raise _ParseFailure(
            FailureKind.AMBIGUOUS if len(pairs) > 1 or len(singles) > 1 else FailureKind.UNREADABLE,
            f"boxed answer needs one \\boxed{{x, y}} and one \\boxed{{z}}, found {boxes!r}",
        )
    parts = [p.strip() for p in pairs[0].split(",")]
    if len(parts) != 2:
        raise _ParseFailure(FailureKind.UNREADABLE, f"individual scores box holds {pairs[0]!r}")
    return _checked(parts[0], parts[1], singles[0].strip())


def _read_answer(answer: str) -> Verdict:
    if not answer.strip():
        raise _ParseFailure(FailureKind.EMPTY, "no answer after the reasoning")
    found: list[Verdict | None] = []
    failures: list[_ParseFailure] = []
    for obj, _, _ in _json_spans(answer):
        try:
            found.append(_verdict_from_object(obj))
        except _ParseFailure as failure:
            failures.append(failure)
    verdicts = [v for v in found if v is not None]
    if not verdicts:
        if failures:
            raise failures[0]
        return _boxed_verdict(answer)
    if failures:
        raise _ParseFailure(
            FailureKind.AMBIGUOUS,
            f"{len(verdicts)} readable verdict(s) next to {len(failures)} unreadable one(s) "
            f"({failures[0]})",
        )
    distinct = {(v.score_1, v.score_2, v.ranking) for v in verdicts}
    if len(distinct) > 1:
        raise _ParseFailure(
            FailureKind.AMBIGUOUS,
            f"{len(verdicts)} verdicts that disagree: {sorted(distinct)}",
        )
    return verdicts[0]


def _holds_verdict(text: str) -> bool:
    try:
        _read_answer(text)
    except _ParseFailure:
        return False
    return True


def parse_verdict(
    content: str | None,
    reasoning: str | None = None,
    finish_reason: str | None = None,
    *,
    usage: Usage | None = None,
    thinking: bool = True,
) -> Verdict:
    """Read one GenRM answer.

    Parameters
    ----------
    content : str or None
        ``message.content``; ``None`` (generation stopped inside the reasoning) is truncated.
    reasoning : str, optional
        ``message.reasoning`` or ``message.reasoning_content`` when the server split it out.
    finish_reason, usage : optional
        The choice's ``finish_reason`` (``"length"``: truncated) and the token usage.
    thinking : bool
        Whether the judge thinks before it answers (every GenRM does; see the module docstring).
        ``False`` reads the whole content as the answer.

    Returns
    -------
    Verdict
        ``ok`` with the scores and ranking, or failed with a :class:`FailureKind`, the raw text
        and a message.

    Examples
    --------
    >>> v = parse_verdict('```json\\n{"score_1": 4, "score_2": 2, "ranking": 2}\\n```', "why")
    >>> v.score_1, v.score_2, v.ranking, v.ok
    (4.0, 2.0, 2.0, True)
    >>> parse_verdict(None, reasoning="still thinking", finish_reason="length").failure
    <FailureKind.TRUNCATED: 'truncated'>
    """
    common: dict[str, Any] = {"raw": content, "finish_reason": finish_reason, "usage": usage}
    if content is None:
        if finish_reason != "length" and reasoning is not None and _holds_verdict(reasoning):
            return Verdict.failed(
                FailureKind.UNREADABLE,
                reasoning=reasoning,
                error="content is null and the verdict is in the reasoning field: the server's "
                "reasoning parser took the answer for reasoning (check vLLM's --reasoning-parser "
                "for this model: deepseek_r1 for the Qwen3 GenRMs, nemotron_v3 for Ultra)",
                **common,
            )
        return Verdict.failed(
            FailureKind.TRUNCATED,
            reasoning=reasoning,
            error="content is null: generation ended inside the reasoning"
            + (" (finish_reason 'length')" if finish_reason == "length" else ""),
            **common,
        )
    if not check.instance("content", content, str, "a string or None").strip():
        kind = FailureKind.TRUNCATED if finish_reason == "length" else FailureKind.EMPTY
        return Verdict.failed(kind, reasoning=reasoning, error="the answer is empty", **common)

    inline = thinking and reasoning is None
    if inline and finish_reason == "length":
        return Verdict.failed(
            FailureKind.TRUNCATED,
            error="generation hit max_tokens with the reasoning inline; no answer can be told "
            "apart from the reasoning",
            **common,
        )
    if inline and THINK_END not in content:
        opened = content.lstrip().startswith(_THINK_OPEN)
        return Verdict.failed(
            FailureKind.UNREADABLE,
            error="the reasoning was never closed (no </think>)"
            if opened
            else Words(
                "{no}: a GenRM always thinks, so this text is reasoning that never ended (a "
                "judge that does not think is read with {fix})",
                no=NO_REASONING,
                fix=ArgumentError.Setting("thinking", False),
            ),
            **common,
        )
    ((inline_reasoning, answer),) = split_reasoning(content)
    found_reasoning = reasoning if reasoning is not None else inline_reasoning
    try:
        verdict = _read_answer(answer)
    except _ParseFailure as failure:
        kind, message = failure.kind, str(failure)
        if finish_reason == "length":
            kind, message = FailureKind.TRUNCATED, f"generation hit max_tokens; {message}"
        elif kind is FailureKind.EMPTY and THINK_END not in content:
            kind, message = FailureKind.UNREADABLE, "the reasoning was never closed (no </think>)"
        return Verdict.failed(kind, reasoning=found_reasoning, error=message, **common)
    return replace(verdict, reasoning=found_reasoning, **common)
