"""Round-robin: every pair of candidates meets.

N(N-1)/2 matches (``(i, j)``, ``i < j``), N(N-1) calls with ``swap="both"``: the full
comparison set, which every aggregator supports and the cheaper strategies are measured against.

References
----------
Zheng et al., "Judging LLM-as-a-Judge with MT-Bench and Chatbot Arena", 2023 (arXiv:2306.05685).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from genrm_rank.strategies.base import Match, MatchScheduler, StrategyOutcome

__all__ = ["RoundRobin"]


@dataclass(eq=False, repr=False, kw_only=True)
class RoundRobin(MatchScheduler):
    """Every unordered pair meets once (``samples`` times per order); no order of its own.

    Takes :class:`~genrm_rank.strategies.base.MatchScheduler`'s keywords.
    """

    def __post_init__(self) -> None:
        super().__post_init__()
        for a, b in itertools.combinations(range(self.n_items), 2):
            self._add_match(a, b)

    def _on_match_done(self, match: Match) -> None:
        """Nothing to react to: every match was scheduled up front."""

    def result(self) -> StrategyOutcome:
        """No order of its own: the aggregator ranks from the full comparison set."""
        return StrategyOutcome()
