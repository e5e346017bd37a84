"""LLMBar's published per-run swap statistics, read through :func:`consistency_report`.

:func:`llmbar_judgements` turns each LLMBar item (gold label, winner in the original order,
winner in the swapped order) into two judgements and a gold winner, and
:func:`llmbar_statistics` reads LLMBar's four counts off the report; the tests check them
against LLMBar's ``statistics.json``.

References
----------
Zeng et al., "Evaluating Large Language Models at Evaluating Instruction Following", ICLR 2024
(arXiv:2310.07641).
"""

from __future__ import annotations

from collections.abc import Sequence

from genrm_rank.consistency import consistency_report
from genrm_rank.strategies.base import Judgement
from genrm_rank.verdict import FailureKind, Verdict

LLMBAR_STATISTICS: tuple[str, ...] = ("correct_False", "correct_True", "correct_both", "equal")
"""The counts LLMBar publishes per run, as named in its ``statistics.json``."""

_LLMBAR_OUTPUTS = {"1": 0, "2": 1}
_LLMBAR_UNREADABLE = "None"


def _llmbar_label(value: object, index: int) -> int:
    """Output index (0 or 1) of a gold label ``"1"``/``"2"``."""
    text = str(value)
    if text in _LLMBAR_OUTPUTS:
        return _LLMBAR_OUTPUTS[text]
    raise ValueError(
        f'Argument \'items\' must give the gold label as "1" or "2", not {value!r} (item {index}).'
    )


def _llmbar_winner(value: object, what: str, index: int) -> int | None:
    """Output index (0 or 1) of a winner; ``None`` for LLMBar's unreadable ``"None"``."""
    text = str(value)
    if text in _LLMBAR_OUTPUTS:
        return _LLMBAR_OUTPUTS[text]
    if value is None or text == _LLMBAR_UNREADABLE:
        return None
    raise ValueError(
        f'Argument \'items\' must give the {what} as "1", "2" or "None", '
        f"not {value!r} (item {index})."
    )


def llmbar_judgements(
    items: Sequence[Sequence[object]],
) -> tuple[list[Judgement], dict[tuple[int, int], int]]:
    """LLMBar items as judgements plus gold winners, for :func:`consistency_report`.

    Each item ``[label, winner_original, winner_swapped]`` (``"1"`` or ``"2"``, the winner of
    the swapped order already mapped back to the original index) becomes candidates
    ``2k`` (output_1) and ``2k + 1`` (output_2) of item ``k``, and two judgements: the original
    order, ``2k`` in slot 1, and the swapped order, ``2k + 1`` in slot 1. A winner becomes a
    hard verdict (ranking 1 for slot 1, 6 for slot 2, as a three-class replay); LLMBar's
    ``"None"`` (its judge's answer could not be read) becomes a failed, unreadable verdict. The
    original order is then the report's *first order*. Any other value raises ``ValueError``.

    >>> js, gold = llmbar_judgements([["2", "1", "2"]])
    >>> [(j.first, j.second, j.verdict.ranking) for j in js], gold
    ([(0, 1, 1.0), (1, 0, 1.0)], {(0, 1): 1})
    """
    judgements: list[Judgement] = []
    gold: dict[tuple[int, int], int] = {}
    for k, item in enumerate(items):
        if isinstance(item, (str, bytes)) or len(item) != 3:
            raise ValueError(
                f"Argument 'items' must hold [label, winner, winner_swapped] triples, "
                f"not {item!r} (item {k})."
            )
        label = _llmbar_label(item[0], k)
        original = _llmbar_winner(item[1], "winner in the original order", k)
        swapped = _llmbar_winner(item[2], "winner in the swapped order", k)
        out1, out2 = 2 * k, 2 * k + 1
        gold[(out1, out2)] = out1 + label
        # Original order: output_1 in slot 1. Swapped order: output_2 in slot 1.
        for first, second, winner, raw in (
            (out1, out2, original, item[1]),
            (out2, out1, swapped, item[2]),
        ):
            if winner is None:
                verdict = Verdict.failed(
                    FailureKind.UNREADABLE, raw=str(raw), error="LLMBar recorded no winner"
                )
            else:
                winner_slot = 1 if first == out1 + winner else 2
                verdict = Verdict(ranking=1.0 if winner_slot == 1 else 6.0, raw=str(raw))
            judgements.append(Judgement(first, second, verdict, match_id=k))
    return judgements, gold


def llmbar_statistics(items: Sequence[Sequence[object]]) -> dict[str, tuple[int, int]]:
    """LLMBar's published counts for one run, as ``{name: (numerator, denominator)}``.

    Computed through :func:`consistency_report` on :func:`llmbar_judgements`. LLMBar's rule
    (``correct_False``: original order right; ``correct_True``: swapped order right;
    ``correct_both``; ``equal``: the two winners are the same) divides by every item, and its
    ``equal`` compares the recorded strings, so an item whose two answers were both unreadable
    (``"None" == "None"``) counts as agreeing. The report keeps that case apart
    (``pairs_both_failed``, not ``agree``); it is added back here only to match the publication.

    >>> llmbar_statistics([["1", "1", "2"], ["2", "2", "2"], ["1", "None", "None"]])["equal"]
    (2, 3)
    """
    judgements, gold = llmbar_judgements(items)
    report = consistency_report(judgements, gold=gold)
    n = report.gold_pairs
    first, swapped, both = (
        report.correct_first_order,
        report.correct_swapped_order,
        report.correct_both,
    )
    if first is None or swapped is None or both is None:  # pragma: no cover - gold was given
        raise RuntimeError("consistency_report returned no accuracy counts despite a gold map.")
    return {
        "correct_False": (first, n),
        "correct_True": (swapped, n),
        "correct_both": (both, n),
        "equal": (report.agree + report.pairs_both_failed, n),
    }
