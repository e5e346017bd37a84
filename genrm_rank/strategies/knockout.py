"""Knockout: single elimination, exactly N-1 matches.

A standard seeded bracket of ``P = 2**ceil(log2 N)`` slots (seed 1 meets seed ``P``; seeds 1
and 2 can meet only in the final); the ``P - N`` top seeds get a bye. Each round is scheduled at
once when the previous one is in: ``ceil(log2 N)`` rounds, ``(N - 1) * samples`` calls (twice
that with ``swap="both"``). One wrong verdict eliminates a candidate for good; ``swap="both"``
and ``samples > 1`` make each match more reliable at a proportional cost.

References
----------
Zheng et al., "Judging LLM-as-a-Judge with MT-Bench and Chatbot Arena", 2023 (arXiv:2306.05685),
for position swapping. Liu et al., "Aligning with Human Judgement: The Role of Pairwise
Preference in Large Language Model Evaluators", 2024 (arXiv:2403.16950), and Qin et al., "Large
Language Models are Effective Text Rankers with Pairwise Ranking Prompting", 2023
(arXiv:2306.17563), for tournament-style selection with pairwise LLM judges.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from statistics import fmean

from genrm_rank import validate as check
from genrm_rank.strategies.base import (
    TIE_TOLERANCE,
    Judgement,
    Match,
    SeededScheduler,
    StrategyOutcome,
)

__all__ = ["Knockout", "bracket_order", "mean_scores"]


def bracket_order(size: int) -> list[int]:
    """Seed numbers (0-based) in bracket order for a bracket of ``size`` slots (a power of two).

    Adjacent slots meet in the first round; seed 0 meets seed ``size - 1``, and seeds 0 and 1
    sit in opposite halves.

    >>> bracket_order(8)
    [0, 7, 3, 4, 1, 6, 2, 5]
    """
    size = check.integer("size", size)
    if size < 1 or size & (size - 1):
        raise ValueError(f"Argument 'size' must be a power of two, not {size}.")
    order = [0]
    while len(order) < size:
        width = 2 * len(order)
        order = [s for seed in order for s in (seed, width - 1 - seed)]
    return order


@dataclass(eq=False, repr=False, kw_only=True)
class Knockout(SeededScheduler):
    """Single-elimination bracket: exactly ``N - 1`` matches; the champion is the best.

    Keywords as :class:`~genrm_rank.strategies.base.MatchScheduler`, and:

    Parameters
    ----------
    swap : {"both", "random", "none", "auto"}
        ``"none"``: the upper bracket slot (the better seed in round 1) in slot 1. ``"auto"``
        judges the final in both orders.
    seeding : sequence of int, optional
        Candidate indices in seed order (:class:`~genrm_rank.strategies.base.SeededScheduler`).

    Notes
    -----
    **Who wins a match**: the combined preference (``a`` advances above 0.5, ``b`` below);
    at exactly 0.5 or with no usable verdict, the higher mean individual score
    (:func:`mean_scores`); else a coin from ``seed``, drawn once the round is complete, in match
    order. The notes list every match decided by score or coin, or that lost verdicts to
    failures.

    **Order**: the champion, then by round of elimination (later first), by the margin of the
    lost match (smaller loss first), then by seed.

    **Stopped early** (:meth:`stop`): ``best`` and ``order`` are ``None`` unless the final
    still finishes with the calls already out; a note says where the bracket stopped.
    """

    def __post_init__(self) -> None:
        super().__post_init__()
        seeds = list(self._seed_rank)
        size = 1 << (self.n_items - 1).bit_length()
        self.n_rounds: int = size.bit_length() - 1
        self._entrants: list[int | None] = [
            seeds[s] if s < self.n_items else None for s in bracket_order(size)
        ]
        self._slots: list[tuple[tuple[int, ...], Match | None]] = []  # (entrants, match)
        self._eliminated_in: dict[int, int] = {}
        self._loss_preference: dict[int, float] = {}
        self.champion: int | None = None
        self._start_round()

    # -- bracket ----------------------------------------------------------------------------
    def _start_round(self) -> None:
        self.round += 1
        self._slots = []
        for i in range(0, len(self._entrants), 2):
            pair = tuple(c for c in self._entrants[i : i + 2] if c is not None)
            match = self._add_match(*pair, round=self.round) if len(pair) == 2 else None
            self._slots.append((pair, match))
        if all(match is None for _, match in self._slots):
            self._finish_round()

    def _decides_result(self, match: Match) -> bool:
        """The final decides the champion: ``swap="auto"`` judges it in both orders."""
        return match.round == self.n_rounds

    def _on_match_done(self, match: Match) -> None:
        """Once every match of the round is in, decide them and schedule the next round."""
        if match.round == self.round and all(m is None or m.complete for _, m in self._slots):
            self._finish_round()

    def _finish_round(self) -> None:
        winners: list[int | None] = []
        for entrants, match in self._slots:
            if match is None:
                winners.append(entrants[0] if entrants else None)
                continue
            winner, loser, loser_preference = self._decide(match)
            winners.append(winner)
            self._eliminated_in[loser] = self.round
            self._loss_preference[loser] = loser_preference
        self._entrants = winners
        if len(winners) == 1:
            self.champion = winners[0]
        elif not self.stopped:
            self._start_round()

    def _decide(self, match: Match) -> tuple[int, int, float]:
        """Winner, loser and the loser's preference over the winner (0.5 when undecided)."""
        a, b, p = match.a, match.b, match.preference
        label = f"match {match.match_id} (round {match.round}: {a} vs {b})"
        failed = [j.verdict for j in match.judgements if not j.verdict.ok]
        kinds = ", ".join(sorted({str(v.failure) for v in failed}))
        if p is not None and abs(p - 0.5) > TIE_TOLERANCE:
            if failed:
                self._notes.append(
                    f"{label}: {len(failed)} of {len(match.judgements)} verdicts failed "
                    f"({kinds}); decided on the rest"
                )
            winner, loser = (a, b) if p > 0.5 else (b, a)
            return winner, loser, min(p, 1.0 - p)
        if p is None:
            reason = f"no readable verdict ({len(failed)} failed: {kinds})"
        else:
            reason = "preference exactly 0.5"
        score_a, score_b = mean_scores(a, b, match.judgements)
        if score_a is not None and score_b is not None and score_a != score_b:
            winner, loser = (a, b) if score_a > score_b else (b, a)
            high, low = max(score_a, score_b), min(score_a, score_b)
            how = f"by mean individual score {high:.3g} vs {low:.3g}"
        else:
            winner, loser = (a, b) if self.rng.random() < 0.5 else (b, a)
            scores = "no individual scores" if score_a is None else "equal mean scores"
            how = f"by coin ({scores})"
        self._notes.append(f"{label}: {reason}; advanced {winner} {how}")
        return winner, loser, 0.5

    # -- outcome ----------------------------------------------------------------------------
    def result(self) -> StrategyOutcome:
        """Champion and full order, or ``None`` for both if the bracket did not finish."""
        if self.champion is None:
            alive = sorted(c for c in self._entrants if c is not None)
            return self._unfinished(
                "knockout",
                f"in round {self.round} of {self.n_rounds}: no champion; "
                f"still in contention: {alive}",
            )
        others = sorted(
            self._eliminated_in,
            key=lambda c: (-self._eliminated_in[c], -self._loss_preference[c], self._seed_rank[c]),
        )
        return StrategyOutcome(
            best=self.champion, order=(self.champion, *others), notes=tuple(self._notes)
        )


def mean_scores(
    a: int, b: int, judgements: Sequence[Judgement]
) -> tuple[float | None, float | None]:
    """Mean individual score of ``a`` and of ``b`` over the usable verdicts carrying both scores
    (each score credited to the candidate in its slot); ``(None, None)`` when none does."""
    mine: list[float] = []
    theirs: list[float] = []
    for j in judgements:
        v = j.verdict
        if not v.ok or v.score_1 is None or v.score_2 is None:
            continue
        if j.first == a and j.second == b:
            mine.append(v.score_1)
            theirs.append(v.score_2)
        elif j.first == b and j.second == a:
            mine.append(v.score_2)
            theirs.append(v.score_1)
    return (fmean(mine), fmean(theirs)) if mine else (None, None)
