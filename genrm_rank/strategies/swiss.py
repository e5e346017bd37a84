"""Swiss system: about ``ceil(log2 N) + 1`` rounds, each pairing candidates with similar records.

Far fewer matches than a round-robin, yet no candidate is out after one bad verdict and all play
as many matches, so the standings order the whole field. A round is paired once the last is in:
by standings (points, then seed), top-down, each with the nearest candidate not met yet,
backtracking; a rematch only when no pairing avoids one (noted).

References
----------
FIDE Handbook, C.04 "Swiss Rules" (the system, byes, and the Buchholz tie-break).
Zheng et al., "Judging LLM-as-a-Judge with MT-Bench and Chatbot Arena", 2023 (arXiv:2306.05685).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import InitVar, dataclass
from typing import Literal

from genrm_rank import validate as check
from genrm_rank.strategies.base import TIE_TOLERANCE, Match, SeededScheduler, StrategyOutcome

__all__ = ["SCORINGS", "Swiss", "default_rounds"]

Scoring = Literal["preference", "wins"]
SCORINGS: tuple[str, ...] = ("preference", "wins")
BYE_POINTS = 0.5
"""Points for a bye: what an average match scores (each match hands out one point in all)."""
PAIRING_STEP_LIMIT = 100_000
"""Backtracking steps allowed per round before settling for a pairing with rematches."""


def default_rounds(n_items: int) -> int:
    """``ceil(log2 N) + 1``, capped at the rounds of a full round-robin (N-1, or N for odd N).

    >>> [default_rounds(n) for n in (2, 3, 4, 8, 9, 16)]
    [1, 3, 3, 4, 5, 5]
    """
    full = n_items - 1 if n_items % 2 == 0 else n_items
    return min((n_items - 1).bit_length() + 1, full)


@dataclass(eq=False, repr=False, kw_only=True)
class Swiss(SeededScheduler):
    """Swiss-system rounds; orders candidates by points, then Buchholz, then seed.

    Keywords as :class:`~genrm_rank.strategies.base.MatchScheduler`, and:

    Parameters
    ----------
    rounds : int, optional
        Number of rounds; default :func:`default_rounds`. More bring rematches.
    swap : {"both", "random", "none"}
        With ``"none"`` the higher-standing candidate sits in slot 1.
    seeding : sequence of int, optional
        Candidate indices in seed order, seed 1 first: breaks ties in standings and pairs the
        first round (1 vs 2, 3 vs 4, ...). ``None`` draws one from ``seed``.
    scoring : {"preference", "wins"}
        Points per match: each side's combined preference (``p`` and ``1 - p``), or 1 to the
        winner and 0.5 each for an exact tie.

    Notes
    -----
    With odd N a bye goes to the lowest in the standings among those with the fewest byes; it
    scores :data:`BYE_POINTS` (what an average match scores; chess's full point favours the
    bye holders, ``benchmarks/README.md``, "Swiss byes") and is no opponent for Buchholz. A
    match with no usable verdict scores no points but counts as played (noted). Order: points,
    then Buchholz (the points of every opponent met), then seed; ``None`` if :meth:`stop` left a
    round unfinished.
    """

    rounds: InitVar[int | None] = None
    scoring: Scoring = "preference"

    def __post_init__(self, rounds: int | None) -> None:
        super().__post_init__()
        self.scoring = check.one_of("scoring", self.scoring, SCORINGS)
        self.n_rounds: int = (
            default_rounds(self.n_items) if rounds is None else check.integer("rounds", rounds, 1)
        )
        self.rounds_completed: int = 0
        self._points = [0.0] * self.n_items
        self._opponents: list[list[int]] = [[] for _ in range(self.n_items)]
        self._byes: Counter[int] = Counter()
        self._met: Counter[frozenset[int]] = Counter()
        self._round_matches: list[Match] = []
        self._start_round()

    # -- standings --------------------------------------------------------------------------
    @property
    def points(self) -> tuple[float, ...]:
        """Points of each candidate so far (index = candidate)."""
        return tuple(self._points)

    def buchholz(self) -> tuple[float, ...]:
        """Sum of the current points of every opponent each candidate has met."""
        return tuple(math.fsum(self._points[o] for o in opps) for opps in self._opponents)

    def _standings(self) -> list[int]:
        return sorted(range(self.n_items), key=lambda c: (-self._points[c], self._seed_rank[c]))

    # -- rounds -----------------------------------------------------------------------------
    def _start_round(self) -> None:
        self.round += 1
        order = self._standings()
        if len(order) % 2:
            fewest = min(self._byes[c] for c in order)
            bye = next(c for c in reversed(order) if self._byes[c] == fewest)
            order.remove(bye)
            self._byes[bye] += 1
            self._points[bye] += BYE_POINTS
        pairs = _pair_avoiding_rematches(order, self._met, PAIRING_STEP_LIMIT)
        if pairs is None:
            pairs = _pair_greedily(order, self._met)
        self._round_matches = []
        for a, b in pairs:
            key = frozenset((a, b))
            if self._met[key]:
                self._notes.append(f"round {self.round}: rematch {a} vs {b} (no pairing avoids it)")
            self._met[key] += 1
            self._opponents[a].append(b)
            self._opponents[b].append(a)
            self._round_matches.append(self._add_match(a, b, round=self.round))

    def _on_match_done(self, match: Match) -> None:
        """Score the match; once the round is in, pair the next one."""
        p = match.preference
        if p is None:
            self._notes.append(
                f"match {match.match_id} (round {match.round}: {match.a} vs {match.b}): "
                "no readable verdict; no points"
            )
        else:
            if self.scoring == "wins":  # 1 to the winner, 0.5 each for a tie
                p = 0.5 if abs(p - 0.5) <= TIE_TOLERANCE else float(p > 0.5)
            self._points[match.a] += p
            self._points[match.b] += 1.0 - p
        if match.round == self.round and all(m.complete for m in self._round_matches):
            self.rounds_completed = self.round
            if self.round < self.n_rounds and not self.stopped:
                self._start_round()

    # -- outcome ----------------------------------------------------------------------------
    def result(self) -> StrategyOutcome:
        """Final standings, or ``None`` for both if the rounds did not all finish."""
        if self.rounds_completed < self.n_rounds:
            where = f"after {self.rounds_completed} of {self.n_rounds} rounds: no order of its own"
            return self._unfinished("swiss", where)
        buchholz = self.buchholz()
        order = sorted(
            range(self.n_items), key=lambda c: (-self._points[c], -buchholz[c], self._seed_rank[c])
        )
        return StrategyOutcome(best=order[0], order=tuple(order), notes=tuple(self._notes))


def _pair_avoiding_rematches(
    order: Sequence[int], met: Counter[frozenset[int]], step_limit: int
) -> list[tuple[int, int]] | None:
    """Pair ``order`` (even length) top-down, each with the nearest not met yet, backtracking;
    ``None`` if no pairing without a rematch is found within ``step_limit`` steps."""
    m = len(order)
    used = [False] * m
    stack: list[tuple[int, int]] = []
    resume: tuple[int, int] | None = None
    for _ in range(step_limit):
        if resume is None:
            i = next((k for k in range(m) if not used[k]), -1)
            if i < 0:
                return [(order[x], order[y]) for x, y in stack]
            start = i + 1
        else:
            (i, start), resume = resume, None
        for j in range(start, m):
            if not used[j] and not met[frozenset((order[i], order[j]))]:
                used[i] = used[j] = True
                stack.append((i, j))
                break
        else:
            if not stack:
                return None
            x, y = stack.pop()
            used[x] = used[y] = False
            resume = (x, y + 1)
    return None


def _pair_greedily(order: Sequence[int], met: Counter[frozenset[int]]) -> list[tuple[int, int]]:
    """Top-down pairing with the nearest candidate met least often (rematches allowed)."""
    rest = list(order)
    pairs: list[tuple[int, int]] = []
    while rest:
        first = rest.pop(0)
        other = min(rest, key=lambda c: met[frozenset((first, c))])
        rest.remove(other)
        pairs.append((first, other))
    return pairs
