"""Closed-form per-item scores: win rate, Copeland, mean individual score, NeMo-Gym's tiebreaker.

Each function maps a :class:`~genrm_rank.aggregators.comparisons.Comparisons` value to one float
per item and is equivariant under relabelling: ``f(c.relabel(p))[p] == f(c)``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from genrm_rank import validate as check

from .comparisons import Comparisons, weighted_bincount
from .graph import majority_digraph

__all__ = ["copeland", "mean_score", "simple_tiebreaker", "win_rate"]


def _per_item(
    comparisons: Comparisons, first: NDArray[np.float64], second: NDArray[np.float64]
) -> NDArray[np.float64]:
    n = comparisons.n_items
    return weighted_bincount(comparisons.first, first, n) + weighted_bincount(
        comparisons.second, second, n
    )


def _ratio(numerator: NDArray[np.float64], denominator: NDArray[np.float64]) -> NDArray[np.float64]:
    out = np.full(numerator.shape, np.nan)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def win_rate(comparisons: Comparisons) -> NDArray[np.float64]:
    """Weighted share of soft wins per item.

    Item ``i`` collects ``weight * outcome`` from comparisons where it is in slot 1 and
    ``weight * (1 - outcome)`` where it is in slot 2, divided by the total weight of its
    comparisons; a tie is half a win, as in the win-rate tables of Zheng et al. (2023, MT-Bench)
    and PRD (Li et al., 2023).

    Parameters
    ----------
    comparisons : Comparisons
        The comparisons.

    Returns
    -------
    numpy.ndarray, shape (n_items,)
        Win rates in ``[0, 1]``; NaN for an item without (positively weighted) comparisons.

    Examples
    --------
    >>> c = Comparisons.from_arrays(3, [0, 1], [1, 2], [1.0, 0.5])
    >>> win_rate(c).tolist()
    [1.0, 0.25, 0.5]
    """
    c = check.instance("comparisons", comparisons, Comparisons)
    wins = _per_item(c, c.weight * c.outcome, c.weight * (1.0 - c.outcome))
    games = _per_item(c, c.weight, c.weight)
    return _ratio(wins, games)


def copeland(comparisons: Comparisons) -> NDArray[np.float64]:
    """Copeland score: opponents beaten minus opponents lost to, on pair aggregates.

    For each unordered pair ``{i, j}`` the aggregate is the weighted mean outcome for ``i``
    over all comparisons of the pair in either slot order; ``i`` beats ``j`` when it exceeds
    0.5, loses when it is below 0.5, and a tie (within 1e-9) or an uncompared pair counts 0
    (Copeland, 1951): out-degree minus in-degree in :func:`~.graph.majority_digraph`.

    Parameters
    ----------
    comparisons : Comparisons
        The comparisons.

    Returns
    -------
    numpy.ndarray of float64, shape (n_items,)
        Integer-valued scores in ``[-(n_items - 1), n_items - 1]``.

    Examples
    --------
    >>> c = Comparisons.from_arrays(3, [0, 1, 2], [1, 2, 0], [1.0, 1.0, 0.0])
    >>> copeland(c).tolist()
    [2.0, 0.0, -2.0]
    """
    beats = majority_digraph(comparisons) > 0
    score: NDArray[np.float64] = (beats.sum(axis=1) - beats.sum(axis=0)).astype(np.float64)
    return score


def _require(comparisons: Comparisons, name: str) -> NDArray[np.float64]:
    value: NDArray[np.float64] | None = getattr(comparisons, name)
    if value is None:
        raise ValueError(
            f"Argument 'comparisons' must carry {name!r} for this aggregator, but it is None."
        )
    return value


def mean_score(comparisons: Comparisons) -> NDArray[np.float64]:
    """Weighted mean of the individual (1-5) helpfulness scores each item received.

    Uses ``score_first`` for the slot-1 item and ``score_second`` for the slot-2 item of every
    comparison, skipping NaN (missing) scores. This is the pointwise half of a Nemotron GenRM
    verdict, ignoring the relative ranking.

    Parameters
    ----------
    comparisons : Comparisons
        Comparisons with ``score_first`` and ``score_second``.

    Returns
    -------
    numpy.ndarray, shape (n_items,)
        Mean scores; NaN for an item with no (positively weighted) score.

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


def simple_tiebreaker(comparisons: Comparisons, *, default: float = np.nan) -> NDArray[np.float64]:
    """GRPO group reward of NeMo-Gym's ``genrm_compare`` ``simple_tiebreaker`` aggregator.

    Each comparison gives the slot-1 item its ``score_first`` and the slot-2 item its
    ``score_second``. When the two scores are equal the 1-6 ranking breaks the tie: with
    ``adjustment = 3.5 - ranking`` the slot-1 item gets ``score + adjustment`` and the slot-2
    item ``score - adjustment``. Ranking 1 ("response 1 much better") thus adds 2.5 to the
    first and subtracts 2.5 from the second; ranking 6 does the opposite. An item's reward is
    the (weighted) mean over its comparisons; with unit weights this is NeMo-Gym's
    ``aggregate_scores`` before its optional length and style adjustments (NVIDIA NeMo-Gym,
    ``resources_servers/genrm_compare/utils.py``; Nemotron GenRM, Wang et al., 2025).

    Parameters
    ----------
    comparisons : Comparisons
        Comparisons with ``score_first``, ``score_second`` and ``ranking``.
    default : float, optional
        Reward of an item with no usable comparison (NeMo-Gym's ``default_score``).

    Returns
    -------
    numpy.ndarray, shape (n_items,)
        Per-item rewards.

    Raises
    ------
    ValueError
        If scores or ranking are absent, a comparison misses exactly the scores it needs, or a
        tie between scores has no ranking to break it. Comparisons missing both scores are
        skipped (they were not parsed at all).

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
