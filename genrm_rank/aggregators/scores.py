"""Closed-form per-item scores: win rate, Copeland, mean individual score, NeMo-Gym's tiebreaker.

Each maps :class:`~genrm_rank.aggregators.comparisons.Comparisons` to one float per item (NaN
where an item has nothing to score), equivariantly: ``f(c.relabel(p))[p] == f(c)``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from genrm_rank import validate as check

from .comparisons import Comparisons, weighted_bincount
from .graph import majority_digraph

__all__ = ["copeland", "mean_score", "simple_tiebreaker", "win_rate"]

Array = NDArray[np.float64]


def _per_item(c: Comparisons, first: Array, second: Array) -> Array:
    """Per-item sums of ``first`` over slot-1 appearances and ``second`` over slot-2 ones."""
    return weighted_bincount(c.first, first, c.n_items) + weighted_bincount(
        c.second, second, c.n_items
    )


def _ratio(numerator: Array, denominator: Array) -> Array:
    out = np.full(numerator.shape, np.nan)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def win_rate(comparisons: Comparisons) -> Array:
    """Weighted share of soft wins per item, a tie half a win, as in the win-rate tables of
    MT-Bench (Zheng et al., 2023) and PRD (Li et al., 2023); NaN for an item without
    (positively weighted) comparisons.

    >>> c = Comparisons.from_arrays(3, [0, 1], [1, 2], [1.0, 0.5])
    >>> win_rate(c).tolist()
    [1.0, 0.25, 0.5]
    """
    c = check.instance("comparisons", comparisons, Comparisons)
    wins = _per_item(c, c.weight * c.outcome, c.weight * (1.0 - c.outcome))
    games = _per_item(c, c.weight, c.weight)
    return _ratio(wins, games)


def copeland(comparisons: Comparisons) -> Array:
    """Copeland score (Copeland, 1951): opponents beaten minus opponents lost to.

    ``i`` beats ``j`` when its weighted mean outcome over the pair's comparisons, in either slot
    order, exceeds 0.5 (a tie within 1e-9, or an uncompared pair, counts 0): out-degree minus
    in-degree in :func:`~.graph.majority_digraph`.

    >>> c = Comparisons.from_arrays(3, [0, 1, 2], [1, 2, 0], [1.0, 1.0, 0.0])
    >>> copeland(c).tolist()
    [2.0, 0.0, -2.0]
    """
    beats = majority_digraph(comparisons) > 0
    score: Array = (beats.sum(axis=1) - beats.sum(axis=0)).astype(np.float64)
    return score


def _require(comparisons: Comparisons, name: str) -> Array:
    value: Array | None = getattr(comparisons, name)
    if value is None:
        raise ValueError(
            f"Argument 'comparisons' must carry {name!r} for this aggregator, but it is None."
        )
    return value


def mean_score(comparisons: Comparisons) -> Array:
    """Weighted mean of the individual 1-5 scores each item received, missing ones skipped: the
    pointwise half of a Nemotron GenRM verdict. NaN for an item with no score.

    Raises
    ------
    ValueError
        If the comparisons carry no individual scores.
    """
    c = check.instance("comparisons", comparisons, Comparisons)
    s1, s2 = _require(c, "score_first"), _require(c, "score_second")
    has1, has2 = ~np.isnan(s1), ~np.isnan(s2)
    total = _per_item(c, np.where(has1, c.weight * s1, 0.0), np.where(has2, c.weight * s2, 0.0))
    count = _per_item(c, np.where(has1, c.weight, 0.0), np.where(has2, c.weight, 0.0))
    return _ratio(total, count)


def simple_tiebreaker(comparisons: Comparisons, *, default: float = np.nan) -> Array:
    """GRPO group reward of NeMo-Gym's ``genrm_compare`` ``simple_tiebreaker`` aggregator.

    Each comparison gives each item its individual score; equal scores are broken by the 1-6
    ranking, ``adjustment = 3.5 - ranking`` added to the slot-1 item's and taken from the
    slot-2 item's. An item's reward is the weighted mean over its comparisons: with unit
    weights, NeMo-Gym's ``aggregate_scores`` before its optional length and style adjustments
    (NVIDIA NeMo-Gym, ``resources_servers/genrm_compare/utils.py``; Nemotron GenRM, Wang et
    al., 2025). ``default`` (NeMo-Gym's ``default_score``) is the reward of an item with no
    usable comparison.

    Raises
    ------
    ValueError
        If scores or ranking are absent, a comparison has one score only, or tied scores have
        no ranking. Comparisons missing both scores are skipped (they were not parsed).

    Examples
    --------
    >>> c = Comparisons.from_arrays(2, [0], [1], [1.0], score_first=[4.0], score_second=[4.0],
    ...                             ranking=[1.0])
    >>> simple_tiebreaker(c).tolist()
    [6.5, 1.5]
    """
    c = check.instance("comparisons", comparisons, Comparisons)
    s1, s2, ranking = (
        _require(c, "score_first"),
        _require(c, "score_second"),
        _require(c, "ranking"),
    )
    miss1, miss2 = np.isnan(s1), np.isnan(s2)
    partial = np.flatnonzero(miss1 != miss2)
    if partial.size:
        k = int(partial[0])
        raise ValueError(
            f"Argument 'comparisons' has only one individual score at comparison {k} "
            f"(score_first={float(s1[k])!r}, score_second={float(s2[k])!r})."
        )
    used = ~miss1
    tie = used & (s1 == s2)
    unbroken = np.flatnonzero(tie & np.isnan(ranking))
    if unbroken.size:
        k = int(unbroken[0])
        raise ValueError(
            f"Argument 'comparisons' has tied scores ({float(s1[k])!r}) but ranking=nan at "
            f"comparison {k}; the tiebreaker needs a ranking."
        )
    adjustment = np.where(tie, 3.5 - np.where(tie, ranking, 3.5), 0.0)
    weight = np.where(used, c.weight, 0.0)
    total = _per_item(
        c,
        np.where(used, weight * (s1 + adjustment), 0.0),
        np.where(used, weight * (s2 - adjustment), 0.0),
    )
    count = _per_item(c, weight, weight)
    out = _ratio(total, count)
    out[~(count > 0)] = default
    return out
