"""Model-level leaderboards from labelled pairwise games (Arena-Hard / Chatbot Arena style).

Labels become integer indices here; the fit is
:func:`~genrm_rank.aggregators.bradley_terry.bootstrap_bradley_terry` on the Elo scale (Chiang
et al., 2024; Li et al., 2024). Given each game's prompt, the bootstrap resamples whole prompts,
as Arena-Hard does: games on one prompt are not independent.

Models the data cannot rate are set apart (:attr:`LeaderboardTable.set_apart`) and kept out of
the centring of the ratings, so that a strength running off to infinity cannot move the others'
intervals. A model outside the largest strongly connected group of the graph of wins has no
finite maximum-likelihood strength (Zermelo, 1929; Ford, 1957) and is left out of the fit; one
whose resamples too often lack a win or a loss (:func:`_separation_risk`) has an interval that
reaches infinity, and keeps a provisional rating.
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
Mask = NDArray[np.bool_]


@dataclass(frozen=True)
class LeaderboardRow:
    """One rated system on a leaderboard.

    Attributes
    ----------
    rank, label : int, str
        1 for the best system; the system's name.
    rating, lower, upper : float
        Elo-scaled Bradley-Terry strength (the rated systems' geometric mean is at ``base``),
        and its bootstrap interval (``None`` without bootstrap).
    games, win_rate : int, float
        Games played in either slot, and the share of soft wins (ties count half).
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
    label, games, win_rate
        As in :class:`LeaderboardRow`.
    rating, lower, upper : float or None
        Provisional rating and interval, centred on the rated systems; ``None`` for a system
        without a finite strength (left out of the fit), and the interval without bootstrap.
    prompts : int or None
        Prompts it played on; ``None`` for games given without prompts.
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


_RESAMPLED = {
    "clusters": "\nIntervals: bootstrap over whole prompts (clusters).",
    "games": "\nIntervals: bootstrap over single games; games from one prompt are not "
    "independent, so these are too narrow when prompts repeat (pass clusters).",
}


@dataclass(frozen=True, eq=False)
class LeaderboardTable:
    """A leaderboard, best system first.

    Attributes
    ----------
    rows : tuple of LeaderboardRow
        The rated systems, by decreasing rating.
    position_bias, position_bias_interval : float, tuple of float, or None
        Fitted slot-1 advantage in log-odds (``None`` when not fitted), and its interval.
    confidence : float
        Level of the intervals.
    fit, labels : BradleyTerryFit, tuple of str
        The underlying fit, over the rated systems and the set-apart ones with a provisional
        rating (its ``params`` centred over all of them), and the label of each of its items.
    resampled : {"clusters", "games", "none"}
        What the bootstrap resampled: whole prompts, single games, or nothing.
    set_apart : tuple of SetApartRow
        Systems whose strength the data do not identify, with the reason (see the module).
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
        """The table, position bias, systems set apart, resampling and notes as GitHub-flavoured
        Markdown, with ``decimals`` places for ratings."""
        level = f"{round(self.confidence * 100)}% CI"

        def interval(row: LeaderboardRow | SetApartRow) -> str:
            if row.lower is None or row.upper is None:
                return "-"
            return f"{row.lower:.{decimals}f} to {row.upper:.{decimals}f}"

        lines = [
            f"| rank | model | rating | {level} | games | win rate |",
            "|---:|:---|---:|:---:|---:|---:|",
        ]
        lines.extend(
            f"| {row.rank} | {row.label} | {row.rating:.{decimals}f} | {interval(row)} | "
            f"{row.games} | {row.win_rate:.3f} |"
            for row in self.rows
        )
        if self.position_bias is not None:
            text = f"\nPosition bias (slot 1, log-odds): {self.position_bias:+.3f}"
            if self.position_bias_interval is not None:
                low, high = self.position_bias_interval
                text += f" ({level}: {low:+.3f} to {high:+.3f})"
            lines.append(text)
        if self.set_apart:
            lines += [
                "\nSet apart, not ranked: the data do not identify these models' strengths, so "
                "they are left out of the ratings' centring (a provisional rating where one is "
                "finite):\n",
                f"| model | provisional rating | {level} | games | prompts | win rate | why |",
                "|:---|---:|:---:|---:|---:|---:|:---|",
            ]
        for apart in self.set_apart:
            rating = "-" if apart.rating is None else f"{apart.rating:.{decimals}f}"
            prompts = "-" if apart.prompts is None else str(apart.prompts)
            lines.append(
                f"| {apart.label} | {rating} | {interval(apart)} | {apart.games} | {prompts} | "
                f"{apart.win_rate:.3f} | {apart.reason} |"
            )
        if self.resampled in _RESAMPLED:
            lines.append(_RESAMPLED[self.resampled])
        lines.extend(f"\nNote: {note}" for note in self.notes)
        return "\n".join(lines)

    def format(self) -> str:
        """Same as :meth:`to_markdown` with default options."""
        return self.to_markdown()


def _won(c: Comparisons, members: Mask) -> tuple[Index, Index, Index]:
    """The games among members as ``(winner, loser, game)`` rows: each side that took a (soft)
    share of a game has a win."""
    both = members[c.first] & members[c.second] & (c.weight > 0)
    first_won = np.flatnonzero(both & (c.outcome > 0))
    second_won = np.flatnonzero(both & (c.outcome < 1))
    return (
        np.concatenate([c.first[first_won], c.second[second_won]]),
        np.concatenate([c.second[first_won], c.first[second_won]]),
        np.concatenate([first_won, second_won]),
    )


def _largest_win_component(c: Comparisons, members: Mask) -> Mask:
    """The largest strongly connected group of members in the graph of wins (by members, then
    by games among them; the first in index order on a tie); none without members."""
    winner, loser, _ = _won(c, members)
    edges = np.zeros((c.n_items, c.n_items), dtype=bool)
    edges[winner, loser] = True
    labels = np.where(members, component_labels(edges, "strong")[1], -1)
    games = _games(c)

    def size(label: int) -> tuple[int, float]:
        group = labels == label
        return int(group.sum()), float(games[group].sum())

    best = max(np.unique(labels[members]).tolist(), key=size, default=None)
    result: Mask = labels == best if best is not None else np.zeros(c.n_items, dtype=bool)
    return result


def _games(c: Comparisons) -> Index:
    """Games each item played, in either slot."""
    return np.bincount(np.concatenate([c.first, c.second]), minlength=c.n_items)


def _separation_risk(c: Comparisons, unit: Index, members: Mask) -> tuple[Array, Array, Array, int]:
    """Chance that a bootstrap resample leaves each member without a win or without a loss, the
    units each member has a win in and a loss in, and the number of units.

    A resample draws ``K`` of the ``K`` units (prompts, or games) of the games among members
    with replacement; an item with wins in ``W`` units and losses in ``L`` misses all its wins
    with chance ``(1 - W/K)^K``, all its losses with ``(1 - L/K)^K``, and both with
    ``(1 - |W or L|/K)^K``: at most about ``e^-W + e^-L``. In such a resample its
    maximum-likelihood strength is infinite. Non-members get 0.
    """
    n = c.n_items
    winner, loser, game = _won(c, members)
    units, dense = np.unique(unit[game], return_inverse=True)
    k = int(units.shape[0])
    if k == 0:
        zero = np.zeros(n)
        return np.where(members, 1.0, 0.0), zero, zero, 0
    dense = dense.reshape(-1)
    wins, losses = _units_of(winner, dense, n), _units_of(loser, dense, n)
    either = _units_of(np.concatenate([winner, loser]), np.tile(dense, 2), n)
    risk = (1.0 - wins / k) ** k + (1.0 - losses / k) ** k - (1.0 - either / k) ** k
    return np.where(members, risk, 0.0), wins, losses, k


def _units_of(item: Index, unit: Index, n: int) -> Array:
    """How many distinct units each of ``n`` items appears with (``item[i]`` with ``unit[i]``)."""
    k = int(unit.max()) + 1
    keys = np.unique(item * k + unit)
    return weighted_bincount(keys // k, np.ones(keys.shape[0]), n)


def _outside_reason(c: Comparisons, item: int, group: Mask) -> str:
    """Why ``item``, outside the strongly connected ``group``, has no finite strength."""
    played = ((c.first == item) & group[c.second]) | ((c.second == item) & group[c.first])
    games = int(np.count_nonzero(played))
    won = (c.weight * np.where(c.first == item, c.outcome, 1.0 - c.outcome))[played]
    if games == 0:
        return "no game against the rated models, so no strength relative to theirs"
    if float((c.weight[played] - won).sum()) == 0:
        return f"won all {games} of its games against the rated models: no finite strength"
    if float(won.sum()) == 0:
        return f"lost all {games} of its games against the rated models: no finite strength"
    return "its wins and losses against the rated models leave its strength unbounded"


_Selection = tuple[Mask, Mask, dict[int, str], tuple[str, ...]]


def _select(c: Comparisons, unit: Index, tail: float, unit_name: str) -> _Selection:
    """The models in the fit (the rated ones and those with a provisional rating), the rated
    ones, why the others are set apart, and notes."""
    everyone = np.ones(c.n_items, dtype=bool)
    fitted = _largest_win_component(c, everyone)
    if int(fitted.sum()) < 2:
        note = (
            "no two models have a finite maximum-likelihood strength relative to each other "
            "(each group of models won or lost every game against the others), so the ratings "
            "rest on the penalty alpha alone"
        )
        return everyone, everyone, {}, (note,)
    reasons = {i: _outside_reason(c, i, fitted) for i in np.flatnonzero(~fitted).tolist()}
    rated = fitted
    while True:
        risk, win_units, loss_units, k = _separation_risk(c, unit, rated)
        sparse = rated & (risk > tail)
        for i in np.flatnonzero(sparse).tolist():
            reasons.setdefault(
                i,
                f"too few {unit_name}: wins on {int(win_units[i])} and losses on "
                f"{int(loss_units[i])} of {k}, so {risk[i]:.1%} of "
                f"resamples leave it without a win or without a loss (more than the "
                f"{tail:.1%} tail; its interval would reach infinity)",
            )
        keep = _largest_win_component(c, rated & ~sparse)
        for i in np.flatnonzero(rated & ~sparse & ~keep).tolist():
            reasons.setdefault(
                i,
                _outside_reason(c, i, keep)
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
        return fitted, fitted, reasons, (note,)
    return fitted, rated, reasons, ()


def _label_codes(firsts: list[str], seconds: list[str]) -> tuple[tuple[str, ...], Index, Index]:
    """The sorted labels, and each game's two label indices; bad labels raise."""
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
    labels = tuple(sorted(set(firsts) | set(seconds)))
    if not labels:
        raise ValueError("Arguments 'first_labels' and 'second_labels' must not be empty.")
    index = {label: i for i, label in enumerate(labels)}
    codes = np.array([index[label] for label in firsts + seconds], dtype=np.int64)
    return labels, codes[: len(firsts)], codes[len(firsts) :]


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
    """Fit an Elo-scaled Bradley-Terry leaderboard with bootstrap intervals, setting apart the
    models whose strength the data do not identify (see the module).

    Parameters
    ----------
    first_labels, second_labels : sequence of str
        The system shown in slot 1 and slot 2 of each game.
    outcome : array_like of float
        Strength in ``[0, 1]`` with which the slot-1 system wins (1 win, 0 loss, 0.5 tie).
    weight : array_like of float, optional
        Game weights; ones by default.
    fit_position_bias : bool, optional
        Whether to fit a slot-1 advantage jointly (LLM judges favour a position; Zheng et al.,
        2023).
    bootstrap_rounds, seed : int, and int or numpy.random.Generator or None, optional
        Bootstrap resamples (0 skips the intervals), and their source of randomness.
    alpha : float, optional
        L2 penalty, as for :func:`~genrm_rank.aggregators.bradley_terry.bradley_terry`.
    confidence : float, optional
        Interval level; its tail share is also the largest tolerated chance that a resample
        leaves a rated model without a win or without a loss.
    scale, base : float, optional
        Elo points per factor 10 in odds, and the rated systems' geometric-mean rating.
    clusters : sequence, optional
        Each game's prompt (or other cluster): given, the bootstrap resamples whole prompts, as
        Arena-Hard does; otherwise single games, and the table says so.

    Returns
    -------
    LeaderboardTable

    Examples
    --------
    >>> table = fit_leaderboard(["a", "b", "a"], ["b", "a", "b"], [1.0, 0.0, 0.5],
    ...                         fit_position_bias=False, bootstrap_rounds=0)
    >>> [row.label for row in table.rows]
    ['a', 'b']
    """
    rounds = check.integer("bootstrap_rounds", bootstrap_rounds, 0)
    all_labels, first, second = _label_codes(list(first_labels), list(second_labels))
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"Argument 'confidence' must be in (0, 1), not {confidence!r}.")
    if not (np.isfinite(scale) and np.isfinite(base)):
        raise ValueError(f"Arguments 'scale' and 'base' must be finite, not {scale!r}, {base!r}.")
    n = len(all_labels)
    comparisons = Comparisons.from_arrays(n, first, second, outcome, weight=weight)
    unit = np.arange(len(comparisons), dtype=np.int64)
    if clusters is not None:
        cluster_labels: list[Hashable] = list(clusters)
        if len(cluster_labels) != len(first):
            raise ValueError(
                f"Argument 'clusters' must have the same length as 'first_labels' "
                f"({len(first)}), not {len(cluster_labels)}."
            )
        ids: dict[Hashable, int] = {}
        unit = np.array([ids.setdefault(c, len(ids)) for c in cluster_labels], dtype=np.int64)
    in_fit, rated, reasons, notes = _select(
        comparisons, unit, (1.0 - confidence) / 2.0, "games" if clusters is None else "prompts"
    )

    # The fit covers the fitted models only: its item i is all_labels[fitted_index[i]].
    fitted_index = np.flatnonzero(in_fit)
    new_index = np.full(n, -1, dtype=np.int64)
    new_index[fitted_index] = np.arange(fitted_index.shape[0])
    keep = in_fit[first] & in_fit[second]
    fitted = Comparisons.from_arrays(
        fitted_index.shape[0],
        new_index[first[keep]],
        new_index[second[keep]],
        comparisons.outcome[keep],
        weight=comparisons.weight[keep],
    )
    rated = rated[fitted_index]
    bias_interval = samples = None
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
        fit, samples, bias_interval = boot.fit, boot.samples, boot.position_bias_interval
    else:
        fit = bradley_terry(fitted, alpha=alpha, fit_position_bias=fit_position_bias)
    # Centre the estimate, and every resample, on the rated models only.
    estimate = fit.params - fit.params[rated].mean()
    points = scale * _LOG10_E
    ratings = base + points * estimate
    bounds: dict[int, tuple[float | None, float | None]] = {}
    if samples is not None:
        centred = samples - samples[:, rated].mean(axis=1, keepdims=True)
        low, high = bootstrap_interval(centred, estimate, confidence)
        bounds = {
            i: (float(base + points * low[i]), float(base + points * high[i]))
            for i in range(len(low))
        }
    rates, games = win_rate(comparisons), _games(comparisons)
    prompts = None
    if clusters is not None:
        prompts = _units_of(np.concatenate([first, second]), np.tile(unit, 2), n)

    order = [int(i) for i in np.argsort(-ratings, kind="stable") if rated[i]]
    rows = tuple(
        LeaderboardRow(
            rank,
            all_labels[fitted_index[i]],
            float(ratings[i]),
            *bounds.get(i, (None, None)),
            games=int(games[fitted_index[i]]),
            win_rate=float(rates[fitted_index[i]]),
        )
        for rank, i in enumerate(order, start=1)
    )
    set_apart = tuple(
        SetApartRow(
            all_labels[j],
            None if new_index[j] < 0 else float(ratings[new_index[j]]),
            *bounds.get(int(new_index[j]), (None, None)),
            games=int(games[j]),
            prompts=None if prompts is None else int(prompts[j]),
            win_rate=float(rates[j]),
            reason=reasons[j],
        )
        for j in sorted(reasons, key=lambda j: all_labels[j])
    )
    if dropped := int(np.count_nonzero(~keep)):
        notes += (
            f"{dropped} games involving models without a finite strength were left out of the fit",
        )
    return LeaderboardTable(
        rows=rows,
        position_bias=fit.position_bias,
        position_bias_interval=bias_interval,
        confidence=float(confidence),
        fit=fit,
        labels=tuple(all_labels[j] for j in fitted_index.tolist()),
        resampled="none" if rounds == 0 else "games" if clusters is None else "clusters",
        set_apart=set_apart,
        notes=notes,
    )
