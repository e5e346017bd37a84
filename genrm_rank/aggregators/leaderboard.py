"""Model-level leaderboards from labelled pairwise games (Arena-Hard / Chatbot Arena style).

Labels are mapped to integer indices at this edge; everything else is
:func:`~genrm_rank.aggregators.bradley_terry.bootstrap_bradley_terry` on Elo scale, as in the
Chatbot Arena leaderboard (Chiang et al., 2024) and Arena-Hard (Li et al., 2024). Given the
prompt of each game, the bootstrap resamples whole prompts (clusters), as Arena-Hard does:
games on one prompt are not independent, and resampling single games makes the intervals too
narrow. The table says which was resampled.

**Models the data cannot rate are set apart.** Ratings are centred on the geometric mean of the
models, so one model whose resampled strength runs off to infinity moves every other model's
interval with it. Two kinds of model are therefore set apart (:attr:`LeaderboardTable.set_apart`)
and kept out of the centring, and the table says which and why:

- a model outside the largest group whose graph of wins is strongly connected has no finite
  maximum-likelihood strength (it won, or lost, every game against that group; Zermelo, 1929;
  Ford, 1957): it is left out of the fit and gets no rating;
- a model whose resamples would leave it without a win, or without a loss, more often than one
  tail of the interval (2.5% at 95%) has an interval that reaches infinity: with ``K`` resampled
  units (prompts, or games without prompts), ``W`` of them holding a win of the model and ``L``
  a loss, that chance is ``(1 - W/K)^K + (1 - L/K)^K - (1 - |W or L|/K)^K``, at most about
  ``e^-W + e^-L`` (below 2.5% once the model has wins on five prompts and losses on five). It
  stays in the fit with a provisional rating and interval, centred on the rated models.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from genrm_rank import validate as check

from .bradley_terry import (
    BradleyTerryFit,
    SeedLike,
    bootstrap_bradley_terry,
    bootstrap_interval,
    bradley_terry,
)
from .comparisons import Comparisons, weighted_bincount
from .graph import component_labels
from .scores import win_rate

__all__ = ["LeaderboardRow", "LeaderboardTable", "SetApartRow", "fit_leaderboard"]

_LOG10_E = float(np.log10(np.e))
Array = NDArray[np.float64]
Index = NDArray[np.int64]


@dataclass(frozen=True)
class LeaderboardRow:
    """One rated system on a leaderboard.

    Attributes
    ----------
    rank : int
        1 for the best system.
    label : str
        The system's name.
    rating : float
        Elo-scaled Bradley-Terry strength (geometric mean of the rated systems at ``base``).
    lower, upper : float or None
        Bootstrap interval of ``rating``; ``None`` without bootstrap.
    games : int
        Number of games the system played (either slot), against any system.
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


@dataclass(frozen=True)
class SetApartRow:
    """A system the data cannot rate, reported apart from the ranking.

    Attributes
    ----------
    label : str
        The system's name.
    rating : float or None
        Provisional Elo-scaled strength, centred on the rated systems as theirs are; ``None``
        when it has no finite maximum-likelihood value (then the system was left out of the fit).
    lower, upper : float or None
        Its bootstrap interval; ``None`` without a rating or without bootstrap.
    games : int
        Number of games the system played, against any system.
    prompts : int or None
        Number of prompts (clusters) it played on; ``None`` when games were given without
        prompts.
    win_rate : float
        Share of soft wins (ties count half).
    reason : str
        Why it is set apart.
    """

    label: str
    rating: float | None
    lower: float | None
    upper: float | None
    games: int
    prompts: int | None
    win_rate: float
    reason: str


@dataclass(frozen=True, eq=False)
class LeaderboardTable:
    """A leaderboard, best system first.

    Attributes
    ----------
    rows : tuple of LeaderboardRow
        The rated systems, sorted by decreasing rating.
    position_bias : float or None
        Fitted slot-1 advantage in log-odds, or ``None`` when it was not fitted.
    position_bias_interval : tuple of float or None
        Its bootstrap interval.
    confidence : float
        Level of the intervals.
    fit : BradleyTerryFit
        The underlying fit, indexed by ``labels``. It covers the rated systems and the set-apart
        ones with a provisional rating; its ``params`` are centred over all of them, the ratings
        over the rated ones.
    labels : tuple of str
        The label of each item index of ``fit`` (sorted).
    resampled : {"clusters", "games", "none"}
        What the bootstrap resampled: whole clusters (prompts), single games, or nothing.
    set_apart : tuple of SetApartRow
        Systems whose strength the data do not identify, with the reason; not ranked, and kept
        out of the centring of the ratings.
    notes : tuple of str
        Anything else the reader must know (e.g. that no two systems could be rated).
    """

    rows: tuple[LeaderboardRow, ...]
    position_bias: float | None
    position_bias_interval: tuple[float, float] | None
    confidence: float
    fit: BradleyTerryFit
    labels: tuple[str, ...]
    resampled: str = "none"
    set_apart: tuple[SetApartRow, ...] = ()
    notes: tuple[str, ...] = ()

    def to_markdown(self, *, decimals: int = 1) -> str:
        """Render the table as GitHub-flavoured Markdown.

        Parameters
        ----------
        decimals : int, optional
            Decimal places for ratings.

        Returns
        -------
        str
            A Markdown table of the rated systems, then a line on the position bias when it
            was fitted, a table of the systems set apart (with the reason) when there are any,
            and the notes.
        """
        level = f"{round(self.confidence * 100)}% CI"

        def interval(lower: float | None, upper: float | None) -> str:
            if lower is None or upper is None:
                return "-"
            return f"{lower:.{decimals}f} to {upper:.{decimals}f}"

        lines = [
            f"| rank | model | rating | {level} | games | win rate |",
            "|---:|:---|---:|:---:|---:|---:|",
        ]
        for row in self.rows:
            lines.append(
                f"| {row.rank} | {row.label} | {row.rating:.{decimals}f} | "
                f"{interval(row.lower, row.upper)} | {row.games} | {row.win_rate:.3f} |"
            )
        if self.position_bias is not None:
            text = f"\nPosition bias (slot 1, log-odds): {self.position_bias:+.3f}"
            if self.position_bias_interval is not None:
                low, high = self.position_bias_interval
                text += f" ({level}: {low:+.3f} to {high:+.3f})"
            lines.append(text)
        if self.set_apart:
            lines.append(
                "\nSet apart, not ranked: the data do not identify these models' strengths, so "
                "they are left out of the ratings' centring (a provisional rating where one is "
                "finite):\n"
            )
            lines.append(
                f"| model | provisional rating | {level} | games | prompts | win rate | why |"
            )
            lines.append("|:---|---:|:---:|---:|---:|---:|:---|")
            for apart in self.set_apart:
                rating = "-" if apart.rating is None else f"{apart.rating:.{decimals}f}"
                prompts = "-" if apart.prompts is None else str(apart.prompts)
                lines.append(
                    f"| {apart.label} | {rating} | {interval(apart.lower, apart.upper)} | "
                    f"{apart.games} | {prompts} | {apart.win_rate:.3f} | {apart.reason} |"
                )
        if self.resampled == "clusters":
            lines.append("\nIntervals: bootstrap over whole prompts (clusters).")
        elif self.resampled == "games":
            lines.append(
                "\nIntervals: bootstrap over single games; games from one prompt "
                "are not independent, so these are too narrow when prompts repeat (pass clusters)."
            )
        lines.extend(f"\nNote: {note}" for note in self.notes)
        return "\n".join(lines)

    def format(self) -> str:
        """Same as :meth:`to_markdown` with default options."""
        return self.to_markdown()


# ------------------------------------------------------------------ which models are rated


def _won(comparisons: Comparisons, members: NDArray[np.bool_]) -> tuple[Index, Index, Index]:
    """The games between members as ``(winner, loser, game)`` rows: a game gives each side
    that took a (soft) share of it a win."""
    c = comparisons
    both = members[c.first] & members[c.second] & (c.weight > 0)
    first_won = np.flatnonzero(both & (c.outcome > 0))
    second_won = np.flatnonzero(both & (c.outcome < 1))
    return (
        np.concatenate([c.first[first_won], c.second[second_won]]),
        np.concatenate([c.second[first_won], c.first[second_won]]),
        np.concatenate([first_won, second_won]),
    )


def _largest_win_component(
    comparisons: Comparisons, members: NDArray[np.bool_]
) -> NDArray[np.bool_]:
    """The members of the largest strongly connected group of the graph of wins.

    Largest by members, then by games among them; the first such group in index order on a tie.
    """
    n = comparisons.n_items
    winner, loser, _ = _won(comparisons, members)
    edges = np.zeros((n, n), dtype=bool)
    edges[winner, loser] = True
    _, labels = component_labels(edges, "strong")
    labels = np.where(members, labels, -1)
    games = _games(comparisons)
    best, best_key = -1, (0, 0.0)
    for label in np.unique(labels[labels >= 0]).tolist():
        group = labels == label
        key = (int(group.sum()), float(games[group].sum()))
        if key > best_key:
            best, best_key = label, key
    result: NDArray[np.bool_] = labels == best
    return result


def _games(comparisons: Comparisons) -> Index:
    """Games each item played, in either slot."""
    n = comparisons.n_items
    games: Index = np.bincount(comparisons.first, minlength=n) + np.bincount(
        comparisons.second, minlength=n
    )
    return games


@dataclass(frozen=True)
class _Risk:
    risk: Array
    win_units: Array
    loss_units: Array
    n_units: int


def _separation_risk(comparisons: Comparisons, unit: Index, members: NDArray[np.bool_]) -> _Risk:
    """Chance that a bootstrap resample leaves each member without a win or without a loss.

    A resample draws ``K`` of the ``K`` units (prompts, or games) of the games among
    ``members`` with replacement; an item with wins in ``W`` units and losses in ``L`` misses
    all its wins with chance ``(1 - W/K)^K``, all its losses with ``(1 - L/K)^K``, and both
    with ``(1 - |W or L|/K)^K``. In such a resample its maximum-likelihood strength is
    infinite. Non-members get 0.
    """
    n = comparisons.n_items
    winner, loser, game = _won(comparisons, members)
    units, dense = np.unique(unit[game], return_inverse=True)
    k = int(units.shape[0])
    if k == 0:
        zero = np.zeros(n)
        return _Risk(np.where(members, 1.0, 0.0), zero, zero, 0)
    dense = dense.reshape(-1)
    win_keys, loss_keys = np.unique(winner * k + dense), np.unique(loser * k + dense)

    def count(keys: Index) -> Array:
        return weighted_bincount(keys // k, np.ones(keys.shape[0]), n)

    wins, losses = count(win_keys), count(loss_keys)
    either = count(np.union1d(win_keys, loss_keys))
    risk = (1.0 - wins / k) ** k + (1.0 - losses / k) ** k - (1.0 - either / k) ** k
    return _Risk(np.where(members, risk, 0.0), wins, losses, k)


def _outside_reason(comparisons: Comparisons, item: int, group: NDArray[np.bool_]) -> str:
    """Why ``item``, outside the strongly connected ``group``, has no finite strength."""
    c = comparisons
    played = ((c.first == item) & group[c.second]) | ((c.second == item) & group[c.first])
    games = int(np.count_nonzero(played))
    won = (c.weight * np.where(c.first == item, c.outcome, 1.0 - c.outcome))[played]
    wins, losses = float(won.sum()), float((c.weight[played] - won).sum())
    if games == 0:
        return "no game against the rated models, so no strength relative to theirs"
    if losses == 0:
        return f"won all {games} of its games against the rated models: no finite strength"
    if wins == 0:
        return f"lost all {games} of its games against the rated models: no finite strength"
    return "its wins and losses against the rated models leave its strength unbounded"


@dataclass(frozen=True)
class _Selection:
    fitted: NDArray[np.bool_]
    """Models in the fit: the rated ones and those with a provisional rating."""
    rated: NDArray[np.bool_]
    reasons: dict[int, str]
    notes: tuple[str, ...]


def _select(
    comparisons: Comparisons, unit: NDArray[np.int64], tail: float, unit_name: str
) -> _Selection:
    """Which models are fitted, which are rated, and why the others are set apart."""
    n = comparisons.n_items
    fitted = _largest_win_component(comparisons, np.ones(n, dtype=bool))
    if int(fitted.sum()) < 2:
        note = (
            "no two models have a finite maximum-likelihood strength relative to each other "
            "(each group of models won or lost every game against the others), so the ratings "
            "rest on the penalty alpha alone"
        )
        everyone = np.ones(n, dtype=bool)
        return _Selection(everyone, everyone, {}, (note,))
    reasons = {i: _outside_reason(comparisons, i, fitted) for i in np.flatnonzero(~fitted).tolist()}
    rated = fitted
    while True:
        risk = _separation_risk(comparisons, unit, rated)
        sparse = rated & (risk.risk > tail)
        for i in np.flatnonzero(sparse).tolist():
            reasons.setdefault(
                i,
                f"too few {unit_name}: wins on {int(risk.win_units[i])} and losses on "
                f"{int(risk.loss_units[i])} of {risk.n_units}, so {risk.risk[i]:.1%} of "
                f"resamples leave it without a win or without a loss (more than the "
                f"{tail:.1%} tail; its interval would reach infinity)",
            )
        keep = _largest_win_component(comparisons, rated & ~sparse)
        for i in np.flatnonzero(rated & ~sparse & ~keep).tolist():
            reasons.setdefault(
                i,
                _outside_reason(comparisons, i, keep)
                + " (its provisional rating rests on games against models set apart)",
            )
        settled = np.array_equal(keep, rated) or int(keep.sum()) < 2
        rated = keep
        if settled:
            break
    if int(rated.sum()) < 2:
        note = (
            f"no two models have wins and losses on enough {unit_name} to bound their "
            "intervals, so all of them are rated, and some intervals may reach far"
        )
        reasons = {i: r for i, r in reasons.items() if not fitted[i]}
        return _Selection(fitted, fitted, reasons, (note,))
    return _Selection(fitted, rated, reasons, ())


# ------------------------------------------------------------------------------- the table


def fit_leaderboard(
    first_labels: Sequence[str],
    second_labels: Sequence[str],
    outcome: ArrayLike,
    *,
    weight: ArrayLike | None = None,
    fit_position_bias: bool = True,
    bootstrap_rounds: int = 200,
    seed: SeedLike = None,
    alpha: float = 1e-6,
    confidence: float = 0.95,
    scale: float = 400.0,
    base: float = 1000.0,
    clusters: Sequence[Hashable] | None = None,
) -> LeaderboardTable:
    """Fit an Elo-scaled Bradley-Terry leaderboard with bootstrap intervals.

    Models whose strength the data do not identify are set apart, with the reason, and kept
    out of the centring of the ratings, so that they cannot move the other models' ratings and
    intervals (see the module docstring): a model with no finite maximum-likelihood strength
    is left out of the fit; a model whose resamples would too often lack a win or a loss keeps a
    provisional rating beside the table.

    Parameters
    ----------
    first_labels, second_labels : sequence of str
        The system shown in slot 1 and slot 2 of each game.
    outcome : array_like of float
        Strength in ``[0, 1]`` with which the slot-1 system wins (1 win, 0 loss, 0.5 tie).
    weight : array_like of float, optional
        Game weights; ones by default.
    fit_position_bias : bool, optional
        Whether to fit a slot-1 advantage jointly (recommended for LLM judges, which favour
        one position; Zheng et al., 2023).
    bootstrap_rounds : int, optional
        Bootstrap resamples; 0 skips the intervals.
    seed : int or numpy.random.Generator or None, optional
        Source of randomness for the bootstrap.
    alpha : float, optional
        L2 penalty, as for :func:`~genrm_rank.aggregators.bradley_terry.bradley_terry`.
    confidence : float, optional
        Interval level; its tail share is also the largest tolerated chance that a resample
        leaves a rated model without a win or without a loss.
    scale, base : float, optional
        Elo scale (points per factor 10 in odds) and the rating of the geometric-mean rated
        system.
    clusters : sequence, optional
        The prompt (or other cluster) of each game. Given, the bootstrap resamples whole
        prompts, as Arena-Hard does, because verdicts on one prompt are not independent;
        otherwise it resamples single games and the table says so.

    Returns
    -------
    LeaderboardTable
        Rated rows sorted best first, and the systems set apart.

    Examples
    --------
    >>> table = fit_leaderboard(["a", "b", "a"], ["b", "a", "b"], [1.0, 0.0, 0.5],
    ...                         fit_position_bias=False, bootstrap_rounds=0)
    >>> [row.label for row in table.rows]
    ['a', 'b']
    """
    rounds = check.integer("bootstrap_rounds", bootstrap_rounds, 0)
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
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"Argument 'confidence' must be in (0, 1), not {confidence!r}.")
    if not (np.isfinite(scale) and np.isfinite(base)):
        raise ValueError(f"Arguments 'scale' and 'base' must be finite, not {scale!r}, {base!r}.")
    all_labels = tuple(sorted(set(firsts) | set(seconds)))
    if not all_labels:
        raise ValueError("Arguments 'first_labels' and 'second_labels' must not be empty.")
    index = {label: i for i, label in enumerate(all_labels)}
    comparisons = Comparisons.from_arrays(
        len(all_labels),
        np.array([index[label] for label in firsts], dtype=np.int64),
        np.array([index[label] for label in seconds], dtype=np.int64),
        outcome,
        weight=weight,
    )
    unit = np.arange(len(comparisons), dtype=np.int64)
    if clusters is not None:
        cluster_labels: list[Hashable] = list(clusters)
        if len(cluster_labels) != len(firsts):
            raise ValueError(
                f"Argument 'clusters' must have the same length as 'first_labels' "
                f"({len(firsts)}), not {len(cluster_labels)}."
            )
        ids: dict[Hashable, int] = {}
        unit = np.array([ids.setdefault(c, len(ids)) for c in cluster_labels], dtype=np.int64)
    tail = (1.0 - confidence) / 2.0
    selection = _select(comparisons, unit, tail, "games" if clusters is None else "prompts")

    # The fit covers the fitted models only; its item i is all_labels[fitted_index[i]].
    fitted_index = np.flatnonzero(selection.fitted)
    new_index = np.full(len(all_labels), -1, dtype=np.int64)
    new_index[fitted_index] = np.arange(fitted_index.shape[0])
    keep = selection.fitted[comparisons.first] & selection.fitted[comparisons.second]
    fitted = Comparisons.from_arrays(
        fitted_index.shape[0],
        new_index[comparisons.first[keep]],
        new_index[comparisons.second[keep]],
        comparisons.outcome[keep],
        weight=comparisons.weight[keep],
    )
    rated = selection.rated[fitted_index]
    points = scale * _LOG10_E
    lower = upper = None
    h_interval: tuple[float, float] | None = None
    if rounds > 0:
        boot = bootstrap_bradley_terry(
            fitted,
            bootstrap_rounds=rounds,
            seed=seed,
            alpha=alpha,
            fit_position_bias=fit_position_bias,
            confidence=confidence,
            clusters=None if clusters is None else unit[keep],
        )
        fit = boot.fit
        # Centre every resample, and the estimate, on the rated models only.
        samples = boot.samples - boot.samples[:, rated].mean(axis=1, keepdims=True)
        estimate = fit.params - fit.params[rated].mean()
        low, high = bootstrap_interval(samples, estimate, confidence)
        lower, upper = base + points * low, base + points * high
        h_interval = boot.position_bias_interval
    else:
        fit = bradley_terry(fitted, alpha=alpha, fit_position_bias=fit_position_bias)
        estimate = fit.params - fit.params[rated].mean()
    ratings = base + points * estimate
    rates = win_rate(comparisons)
    games = _games(comparisons)
    prompts = None
    if clusters is not None:
        k = int(unit.max()) + 1
        keys = np.unique(
            np.concatenate([comparisons.first, comparisons.second]) * k + np.tile(unit, 2)
        )
        prompts = np.bincount(keys // k, minlength=len(all_labels))

    def bound(values: NDArray[np.float64] | None, i: int) -> float | None:
        return None if values is None else float(values[i])

    rated_order = [int(i) for i in np.argsort(-ratings, kind="stable") if rated[i]]
    rows = tuple(
        LeaderboardRow(
            rank=rank,
            label=all_labels[fitted_index[i]],
            rating=float(ratings[i]),
            lower=bound(lower, i),
            upper=bound(upper, i),
            games=int(games[fitted_index[i]]),
            win_rate=float(rates[fitted_index[i]]),
        )
        for rank, i in enumerate(rated_order, start=1)
    )
    set_apart = []
    for j in sorted(selection.reasons, key=lambda j: all_labels[j]):
        i = int(new_index[j])
        set_apart.append(
            SetApartRow(
                label=all_labels[j],
                rating=None if i < 0 else float(ratings[i]),
                lower=None if i < 0 else bound(lower, i),
                upper=None if i < 0 else bound(upper, i),
                games=int(games[j]),
                prompts=None if prompts is None else int(prompts[j]),
                win_rate=float(rates[j]),
                reason=selection.reasons[j],
            )
        )
    notes = list(selection.notes)
    dropped = int(np.count_nonzero(~keep))
    if dropped:
        notes.append(
            f"{dropped} games involving models without a finite strength were left out of the fit"
        )
    return LeaderboardTable(
        rows=rows,
        position_bias=fit.position_bias,
        position_bias_interval=h_interval,
        confidence=float(confidence),
        fit=fit,
        labels=tuple(all_labels[j] for j in fitted_index.tolist()),
        resampled="none" if rounds == 0 else "games" if clusters is None else "clusters",
        set_apart=tuple(set_apart),
        notes=tuple(notes),
    )
