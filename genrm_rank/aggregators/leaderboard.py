"""Model-level leaderboards from labelled pairwise games (Arena-Hard / Chatbot Arena style).

Labels are mapped to integer indices at this edge; everything else is
:func:`~genrm_rank.aggregators.bradley_terry.bootstrap_bradley_terry` on Elo scale, as in the
Chatbot Arena leaderboard (Chiang et al., 2024) and Arena-Hard (Li et al., 2024). Given the
prompt of each game, the bootstrap resamples whole prompts (clusters), as Arena-Hard does:
games on one prompt are not independent, and resampling single games makes the intervals too
narrow. The table says which was resampled.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from .bradley_terry import (
    BradleyTerryFit,
    SeedLike,
    bootstrap_bradley_terry,
    bradley_terry,
    elo_scale,
)
from .comparisons import Comparisons
from .scores import win_rate

__all__ = ["LeaderboardRow", "LeaderboardTable", "fit_leaderboard"]


@dataclass(frozen=True)
class LeaderboardRow:
    """One system on a leaderboard.

    Attributes
    ----------
    rank : int
        1 for the best system.
    label : str
        The system's name.
    rating : float
        Elo-scaled Bradley-Terry strength (geometric mean of all systems at ``base``).
    lower, upper : float or None
        Percentile bootstrap interval of ``rating``; ``None`` without bootstrap.
    games : int
        Number of games the system played (either slot).
    win_rate : float
        Share of soft wins (ties count half).
    """

    rank: int
    label: str
    rating: float
    lower: float | None
    upper: float | None
    games: int
    win_rate: float


@dataclass(frozen=True, eq=False)
class LeaderboardTable:
    """A leaderboard, best system first.

    Attributes
    ----------
    rows : tuple of LeaderboardRow
        Sorted by decreasing rating.
    position_bias : float or None
        Fitted slot-1 advantage in log-odds, or ``None`` when it was not fitted.
    position_bias_interval : tuple of float or None
        Its percentile bootstrap interval.
    confidence : float
        Level of the intervals.
    fit : BradleyTerryFit
        The underlying fit, indexed by ``labels``.
    labels : tuple of str
        The label of each item index of ``fit`` (sorted).
    resampled : {"clusters", "games", "none"}
        What the bootstrap resampled: whole clusters (prompts), single games, or nothing.
    """

    rows: tuple[LeaderboardRow, ...]
    position_bias: float | None
    position_bias_interval: tuple[float, float] | None
    confidence: float
    fit: BradleyTerryFit
    labels: tuple[str, ...]
    resampled: str = "none"

    def to_markdown(self, *, decimals: int = 1) -> str:
        """Render the table as GitHub-flavoured Markdown.

        Parameters
        ----------
        decimals : int, optional
            Decimal places for ratings.

        Returns
        -------
        str
            A Markdown table, followed by a line on the position bias when it was fitted.
        """
        level = f"{round(self.confidence * 100)}% CI"
        lines = [
            f"| rank | model | rating | {level} | games | win rate |",
            "|---:|:---|---:|:---:|---:|---:|",
        ]
        for row in self.rows:
            interval = (
                "-"
                if row.lower is None or row.upper is None
                else f"{row.lower:.{decimals}f} to {row.upper:.{decimals}f}"
            )
            lines.append(
                f"| {row.rank} | {row.label} | {row.rating:.{decimals}f} | {interval} | "
                f"{row.games} | {row.win_rate:.3f} |"
            )
        if self.position_bias is not None:
            text = f"\nPosition bias (slot 1, log-odds): {self.position_bias:+.3f}"
            if self.position_bias_interval is not None:
                low, high = self.position_bias_interval
                text += f" ({level}: {low:+.3f} to {high:+.3f})"
            lines.append(text)
        if self.resampled == "clusters":
            lines.append("\nIntervals: percentile bootstrap over whole prompts (clusters).")
        elif self.resampled == "games":
            lines.append(
                "\nIntervals: percentile bootstrap over single games; games from one prompt "
                "are not independent, so these are too narrow when prompts repeat (pass clusters)."
            )
        return "\n".join(lines)

    def format(self) -> str:
        """Same as :meth:`to_markdown` with default options."""
        return self.to_markdown()


def fit_leaderboard(
    first_labels: Sequence[str],
    second_labels: Sequence[str],
    outcome: ArrayLike,
    *,
    weight: ArrayLike | None = None,
    position_bias: bool = True,
    n_bootstrap: int = 200,
    seed: SeedLike = None,
    alpha: float = 1e-6,
    confidence: float = 0.95,
    scale: float = 400.0,
    base: float = 1000.0,
    clusters: Sequence[Hashable] | None = None,
) -> LeaderboardTable:
    """Fit an Elo-scaled Bradley-Terry leaderboard with bootstrap intervals.

    Parameters
    ----------
    first_labels, second_labels : sequence of str
        The system shown in slot 1 and slot 2 of each game.
    outcome : array_like of float
        Strength in ``[0, 1]`` with which the slot-1 system wins (1 win, 0 loss, 0.5 tie).
    weight : array_like of float, optional
        Game weights; ones by default.
    position_bias : bool, optional
        Whether to fit a slot-1 advantage jointly (recommended for LLM judges, which favour
        one position; Zheng et al., 2023).
    n_bootstrap : int, optional
        Bootstrap resamples of the games; 0 skips the intervals.
    seed : int or numpy.random.Generator or None, optional
        Source of randomness for the bootstrap.
    alpha : float, optional
        L2 penalty, as for :func:`~genrm_rank.aggregators.bradley_terry.bradley_terry`.
    confidence : float, optional
        Interval level.
    scale, base : float, optional
        Elo scale (points per factor 10 in odds) and the rating of the geometric-mean system.
    clusters : sequence, optional
        The prompt (or other cluster) of each game. Given, the bootstrap resamples whole
        prompts, as Arena-Hard does, because verdicts on one prompt are not independent;
        otherwise it resamples single games and the table says so.

    Returns
    -------
    LeaderboardTable
        Rows sorted best first.

    Examples
    --------
    >>> table = fit_leaderboard(["a", "b", "a"], ["b", "a", "b"], [1.0, 0.0, 0.5],
    ...                         position_bias=False, n_bootstrap=0)
    >>> [row.label for row in table.rows]
    ['a', 'b']
    """
    firsts, seconds = list(first_labels), list(second_labels)
    if len(firsts) != len(seconds):
        raise ValueError(
            f"Argument 'second_labels' must have the same length as 'first_labels' "
            f"({len(firsts)}), not {len(seconds)}."
        )
    for name, given in (("first_labels", firsts), ("second_labels", seconds)):
        for label in given:
            if not isinstance(label, str):
                raise TypeError(
                    f"Argument {name!r} must hold str labels, not {type(label).__name__} "
                    f"({label!r})."
                )
    if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, (int, np.integer)):
        raise TypeError(f"Argument 'n_bootstrap' must be an int, not {type(n_bootstrap).__name__}.")
    if n_bootstrap < 0:
        raise ValueError(f"Argument 'n_bootstrap' must be >= 0, not {n_bootstrap}.")
    labels = tuple(sorted(set(firsts) | set(seconds)))
    if not labels:
        raise ValueError("Arguments 'first_labels' and 'second_labels' must not be empty.")
    index = {label: i for i, label in enumerate(labels)}
    comparisons = Comparisons.from_arrays(
        len(labels),
        np.array([index[label] for label in firsts], dtype=np.int64),
        np.array([index[label] for label in seconds], dtype=np.int64),
        outcome,
        weight=weight,
    )
    cluster_index = None
    if clusters is not None:
        cluster_labels: list[Hashable] = list(clusters)
        if len(cluster_labels) != len(firsts):
            raise ValueError(
                f"Argument 'clusters' must have the same length as 'first_labels' "
                f"({len(firsts)}), not {len(cluster_labels)}."
            )
        ids: dict[Hashable, int] = {}
        cluster_index = np.array(
            [ids.setdefault(c, len(ids)) for c in cluster_labels], dtype=np.int64
        )
    lower: list[float | None] = [None] * len(labels)
    upper: list[float | None] = [None] * len(labels)
    h_interval: tuple[float, float] | None = None
    if n_bootstrap > 0:
        boot = bootstrap_bradley_terry(
            comparisons,
            n_bootstrap=n_bootstrap,
            seed=seed,
            alpha=alpha,
            position_bias=position_bias,
            confidence=confidence,
            clusters=cluster_index,
        )
        fit = boot.fit
        tail = (1.0 - confidence) / 2.0
        low, high = np.quantile(
            elo_scale(boot.samples, scale=scale, base=base), [tail, 1.0 - tail], axis=0
        )
        lower, upper = [float(v) for v in low], [float(v) for v in high]
        h_interval = boot.position_bias_interval
    else:
        fit = bradley_terry(comparisons, alpha=alpha, position_bias=position_bias)
    ratings = elo_scale(fit.params, scale=scale, base=base)
    rates = win_rate(comparisons)
    games = np.bincount(comparisons.first, minlength=len(labels)) + np.bincount(
        comparisons.second, minlength=len(labels)
    )
    order = np.argsort(-ratings, kind="stable")
    rows = tuple(
        LeaderboardRow(
            rank=rank,
            label=labels[i],
            rating=float(ratings[i]),
            lower=lower[i],
            upper=upper[i],
            games=int(games[i]),
            win_rate=float(rates[i]),
        )
        for rank, i in enumerate(order.tolist(), start=1)
    )
    return LeaderboardTable(
        rows=rows,
        position_bias=fit.position_bias,
        position_bias_interval=h_interval,
        confidence=float(confidence),
        fit=fit,
        labels=labels,
        resampled="none" if n_bootstrap == 0 else "games" if clusters is None else "clusters",
    )
