"""Pure aggregators: from integer-indexed pairwise comparisons to scores, fits and rankings.

Every function takes a :class:`Comparisons` value (:func:`fit_leaderboard`: labelled games) and
does no I/O: ``bradley_terry`` (fits, bootstrap, Elo), ``scores`` (closed-form scores),
``identification`` (does the MLE exist), ``graph`` (connectivity, cycles), ``leaderboard``.
"""

from __future__ import annotations

from .bradley_terry import (
    BradleyTerryBootstrap,
    BradleyTerryFit,
    BradleyTerryPosterior,
    BradleyTerryPrior,
    bootstrap_bradley_terry,
    bradley_terry,
    bradley_terry_posterior,
    elo_scale,
    repeat_weights,
)
from .comparisons import Comparisons
from .graph import (
    comparison_graph,
    connected_components,
    intransitive_cycles,
    is_connected,
    majority_digraph,
)
from .identification import Identification, identify
from .leaderboard import LeaderboardRow, LeaderboardTable, SetApartRow, fit_leaderboard
from .scores import copeland, mean_score, simple_tiebreaker, win_rate

__all__ = [
    "BradleyTerryBootstrap",
    "BradleyTerryFit",
    "BradleyTerryPosterior",
    "BradleyTerryPrior",
    "Comparisons",
    "Identification",
    "LeaderboardRow",
    "LeaderboardTable",
    "SetApartRow",
    "bootstrap_bradley_terry",
    "bradley_terry",
    "bradley_terry_posterior",
    "comparison_graph",
    "connected_components",
    "copeland",
    "elo_scale",
    "fit_leaderboard",
    "identify",
    "intransitive_cycles",
    "is_connected",
    "majority_digraph",
    "mean_score",
    "repeat_weights",
    "simple_tiebreaker",
    "win_rate",
]
