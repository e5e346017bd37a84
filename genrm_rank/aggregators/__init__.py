"""Pure aggregators: from integer-indexed pairwise comparisons to scores, fits and rankings.

Every function here takes a :class:`Comparisons` value (or, for :func:`fit_leaderboard`,
labelled games) and does no I/O. Modules:

- ``comparisons``: the :class:`Comparisons` container.
- ``bradley_terry``: Bradley-Terry MLE with soft outcomes, position bias, Laplace covariance,
  bootstrap, and Elo scaling.
- ``scores``: win rate, Copeland, mean individual score, NeMo-Gym's ``simple_tiebreaker``.
- ``identification``: existence and identifiability of the Bradley-Terry MLE.
- ``graph``: connectivity and intransitive-cycle diagnostics, over numpy adjacency matrices.
- ``leaderboard``: Elo leaderboards over string labels.
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
