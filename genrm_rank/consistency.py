"""Position-swap consistency: does the judge pick the same candidate when the slots are swapped?

References
----------
Zheng et al., "Judging LLM-as-a-Judge with MT-Bench and Chatbot Arena", 2023 (arXiv:2306.05685),
for position bias and swap consistency. Zeng et al., "Evaluating Large Language Models at
Evaluating Instruction Following", ICLR 2024 (arXiv:2310.07641), whose per-run statistics the
same counts reproduce (``tests/llmbar.py``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from genrm_rank.strategies.base import Judgement
from genrm_rank.verdict import PreferenceMapping, linear_preference

__all__ = ["ConsistencyReport", "consistency_report"]


@dataclass(frozen=True)
class ConsistencyReport:
    """Swap consistency and position bias of a set of judgements.

    A *unit* is one unordered pair and one sample index: the call ``(a, b)`` of sample ``s``
    with the call ``(b, a)`` of sample ``s``. A usable verdict's *winner* is its
    :attr:`~genrm_rank.verdict.Verdict.winner_slot`'s candidate, or nobody (a tie).

    Attributes
    ----------
    judgements, failed : int
        Judgements read, and those whose verdict failed.
    pairs_both_orders, agree : int
        Units with a usable verdict in both orders, and of those, units whose two orders name
        the same winner (two ties agree).
    agreement_rate : float or None
        ``agree / pairs_both_orders``; ``None`` without such units.
    pairs_one_failed, pairs_both_failed : int
        Units judged in both orders where one verdict, or both, failed.
    unpaired : int
        Judgements with no judgement of the opposite order and same sample.
    first_slot_wins, second_slot_wins, ties : int
        Over every usable verdict, paired or not.
    first_slot_win_share : float or None
        ``first_slot_wins / (first_slot_wins + second_slot_wins)``; 0.5 means no lean.
    first_slot_log_odds : float or None
        ``log(first_slot_wins / second_slot_wins)``; ``None`` unless both are positive.
    position_bias : float or None
        Mean over the units of ``pairs_both_orders`` of ``(p_ab + p_ba - 1) / 2``, ``p_xy`` the
        preference of the call ``(x, y)``: the part of a preference owed to the slot, from -0.5
        to 0.5, exactly what ``swap="both"`` removes.
    gold_pairs : int
        Units judged in both orders whose pair has a gold winner.
    correct_first_order, correct_swapped_order, correct_both : int or None
        Of the ``gold_pairs``: the verdict with the lower-indexed candidate in slot 1 names the
        gold winner; the swapped order's does; both do (a failure or a tie is not correct).
        ``None`` without ``gold``.
    """

    judgements: int
    failed: int
    pairs_both_orders: int
    agree: int
    agreement_rate: float | None
    pairs_one_failed: int
    pairs_both_failed: int
    unpaired: int
    first_slot_wins: int
    second_slot_wins: int
    ties: int
    first_slot_win_share: float | None
    first_slot_log_odds: float | None
    position_bias: float | None
    gold_pairs: int = 0
    correct_first_order: int | None = None
    correct_swapped_order: int | None = None
    correct_both: int | None = None


_UNIT_COUNTS = ("pairs_both_orders", "agree", "pairs_one_failed", "pairs_both_failed", "unpaired")
_GOLD_COUNTS = ("gold_pairs", "correct_first_order", "correct_swapped_order", "correct_both")


def _winner(judgement: Judgement) -> int | None:
    """The candidate a usable verdict favours, ``None`` for a tie."""
    slot = judgement.verdict.winner_slot
    return None if slot is None else (judgement.first, judgement.second)[slot - 1]


def _check_gold(gold: Mapping[tuple[int, int], int]) -> dict[frozenset[int], int]:
    if not isinstance(gold, Mapping):
        raise TypeError(
            f"Argument 'gold' must be a mapping of pairs to winners, not {type(gold).__name__}."
        )
    for pair, winner in gold.items():
        if len(frozenset(pair)) != 2 or winner not in frozenset(pair):
            raise ValueError(
                f"Argument 'gold' must map a pair of two candidates to one of them, "
                f"not {pair!r} -> {winner!r}."
            )
    return {frozenset(pair): winner for pair, winner in gold.items()}


def consistency_report(
    judgements: Sequence[Judgement],
    *,
    gold: Mapping[tuple[int, int], int] | None = None,
    preference_mapping: PreferenceMapping = linear_preference,
) -> ConsistencyReport:
    """Position-swap consistency of ``judgements`` (see :class:`ConsistencyReport`).

    Parameters
    ----------
    judgements : sequence of Judgement
        Finished calls, e.g. ``scheduler.judgements()``. Each ``(first, second, sample)`` may
        occur once.
    gold : mapping of (int, int) to int, optional
        The truly better candidate of a pair (key in either order), for the accuracy counts.
    preference_mapping : callable, optional
        Ranking (1..6) to preference (0..1), for ``position_bias``.

    Examples
    --------
    >>> from genrm_rank.verdict import Verdict
    >>> r = consistency_report([Judgement(0, 1, Verdict(ranking=1)),
    ...                         Judgement(1, 0, Verdict(ranking=1))])
    >>> r.pairs_both_orders, r.agree, r.first_slot_wins, r.position_bias
    (1, 0, 2, 0.5)
    """
    gold_of = None if gold is None else _check_gold(gold)
    by_call: dict[tuple[int, int, int], Judgement] = {}
    for j in judgements:
        if not isinstance(j, Judgement):
            raise TypeError(
                f"Argument 'judgements' must hold Judgement values, not {type(j).__name__}."
            )
        key = (j.first, j.second, j.sample)
        if key in by_call:
            raise ValueError(
                f"Argument 'judgements' holds the call {j.first} vs {j.second}, sample "
                f"{j.sample}, more than once; give each sample its own index."
            )
        by_call[key] = j

    usable = [j for j in by_call.values() if j.verdict.ok]
    first_wins = sum(j.verdict.winner_slot == 1 for j in usable)
    second_wins = sum(j.verdict.winner_slot == 2 for j in usable)
    units = dict.fromkeys(_UNIT_COUNTS, 0)
    right = dict.fromkeys(_GOLD_COUNTS, 0)
    biases: list[float] = []
    for (first, second, sample), j in by_call.items():
        opposite = by_call.get((second, first, sample))
        if opposite is None:
            units["unpaired"] += 1
            continue
        if first > second:
            continue  # each unit once, from its first order (lower index in slot 1)
        ok = j.verdict.ok + opposite.verdict.ok
        units[("pairs_both_failed", "pairs_one_failed", "pairs_both_orders")[ok]] += 1
        if ok == 2:
            units["agree"] += _winner(j) == _winner(opposite)
            p_ab, p_ba = (c.verdict.preference_with(preference_mapping) for c in (j, opposite))
            biases.append(0.5 * (p_ab + p_ba - 1.0))
        target = None if gold_of is None else gold_of.get(frozenset((first, second)))
        if target is not None:
            right_first = j.verdict.ok and _winner(j) == target
            right_swapped = opposite.verdict.ok and _winner(opposite) == target
            right["gold_pairs"] += 1
            right["correct_first_order"] += right_first
            right["correct_swapped_order"] += right_swapped
            right["correct_both"] += right_first and right_swapped

    both, decided = units["pairs_both_orders"], first_wins + second_wins
    return ConsistencyReport(
        judgements=len(by_call),
        failed=len(by_call) - len(usable),
        agreement_rate=units["agree"] / both if both else None,
        first_slot_wins=first_wins,
        second_slot_wins=second_wins,
        ties=len(usable) - decided,
        first_slot_win_share=first_wins / decided if decided else None,
        first_slot_log_odds=(
            math.log(first_wins / second_wins) if first_wins and second_wins else None
        ),
        position_bias=math.fsum(biases) / len(biases) if biases else None,
        **units,
        **({} if gold_of is None else right),
    )
