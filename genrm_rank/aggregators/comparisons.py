"""Integer-indexed pairwise comparisons: the one input every aggregator takes.

A :class:`Comparisons` value holds ``m`` comparisons among ``n_items`` items as parallel numpy
arrays, in the spirit of choix's pairwise data (Maystre & Grossglauser, 2015), extended with the
things a generative reward model (GenRM) reports: a graded outcome, the slot each item was shown
in, and optionally the individual 1-5 helpfulness scores and the 1-6 relative ranking.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from genrm_rank import validate as check

__all__ = [
    "Comparisons",
    "weighted_bincount",
]

_OPTIONAL_FIELDS = ("score_first", "score_second", "ranking")
_Test = Callable[[NDArray[np.float64]], NDArray[np.bool_]]
_MISSING_OK: tuple[_Test, str] = (np.isinf, "finite values or NaN (missing)")
_DOMAINS: dict[str, tuple[tuple[_Test, str], ...]] = {
    "outcome": ((lambda a: ~np.isfinite(a) | (a < 0.0) | (a > 1.0), "finite values in [0, 1]"),),
    "weight": ((lambda a: ~np.isfinite(a) | (a < 0.0), "finite values >= 0"),),
    "score_first": (_MISSING_OK,),
    "score_second": (_MISSING_OK,),
    "ranking": (_MISSING_OK, (lambda a: (a < 1.0) | (a > 6.0), "values in [1, 6] or NaN")),
}
"""What each value array must hold: a test of the bad values, and the words for the good."""


def _frozen(array: NDArray[Any]) -> NDArray[Any]:
    array.setflags(write=False)
    return array


def weighted_bincount(
    index: NDArray[np.int64], weights: NDArray[np.float64], size: int
) -> NDArray[np.float64]:
    """``numpy.bincount`` with weights, typed as float64 and of length ``size``."""
    counts: NDArray[np.float64] = np.bincount(index, weights=weights, minlength=size).astype(
        np.float64, copy=False
    )
    return counts


def _as_index_array(name: str, values: ArrayLike, n_items: int) -> NDArray[np.int64]:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"Argument {name!r} must be one-dimensional, not of shape {array.shape}.")
    if array.size == 0:
        return _frozen(np.zeros(0, dtype=np.int64))
    if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.integer):
        raise TypeError(
            f"Argument {name!r} must hold integer item indices, not dtype {array.dtype}."
        )
    low, high = int(array.min()), int(array.max())
    if low < 0 or high >= n_items:
        bad = low if low < 0 else high
        raise ValueError(
            f"Argument {name!r} must hold indices in [0, n_items={n_items}), but contains {bad}."
        )
    return _frozen(array.astype(np.int64, copy=True))


def _as_float_array(name: str, values: ArrayLike) -> NDArray[np.float64]:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"Argument {name!r} must be one-dimensional, not of shape {array.shape}.")
    if array.size and not (
        np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)
    ):
        raise TypeError(f"Argument {name!r} must hold real numbers, not dtype {array.dtype}.")
    return _frozen(array.astype(np.float64, copy=True))


@dataclass(frozen=True, eq=False)
class Comparisons:
    """``m`` pairwise comparisons among ``n_items`` integer-indexed items.

    Comparison ``k`` showed item ``first[k]`` in slot 1 and item ``second[k]`` in slot 2 and
    found that the slot-1 item wins with strength ``outcome[k]`` (1: first wins, 0: second
    wins, 0.5: tie; graded values in between are allowed and enter every likelihood as soft
    labels). The arrays are copied and made read-only on construction, so a value never changes.

    Parameters
    ----------
    n_items : int
        Number of distinct items; indices run over ``0 .. n_items - 1``.
    first, second : numpy.ndarray of int64, shape (m,)
        Items shown in slot 1 and slot 2. ``first[k] != second[k]``.
    outcome : numpy.ndarray of float64, shape (m,)
        Strength in ``[0, 1]`` with which the slot-1 item beats the slot-2 item.
    weight : numpy.ndarray of float64, shape (m,)
        Non-negative, finite weight of each comparison (ones by default in
        :meth:`from_arrays`).
    score_first, score_second : numpy.ndarray of float64, shape (m,), optional
        Individual helpfulness scores (1-5 for Nemotron GenRMs) the judge gave each response;
        NaN where missing.
    ranking : numpy.ndarray of float64, shape (m,), optional
        The judge's relative ranking on the 1-6 scale (1: response 1 much better, 6: response 2
        much better); NaN where missing.

    Raises
    ------
    ValueError
        If the arrays differ in length, an index is out of range, an item is compared with
        itself, or a value is outside its domain (the message names the argument and value).
    TypeError
        If an index array is not integer-typed, or a value array is not real-valued.

    Examples
    --------
    >>> c = Comparisons.from_arrays(3, first=[0, 1], second=[1, 2], outcome=[1.0, 0.5])
    >>> len(c), c.n_items
    (2, 3)
    """

    n_items: int
    first: NDArray[np.int64]
    second: NDArray[np.int64]
    outcome: NDArray[np.float64]
    weight: NDArray[np.float64]
    score_first: NDArray[np.float64] | None = None
    score_second: NDArray[np.float64] | None = None
    ranking: NDArray[np.float64] | None = None

    def __post_init__(self) -> None:
        n_items = check.integer("n_items", self.n_items, 1)
        object.__setattr__(self, "n_items", n_items)
        first = _as_index_array("first", self.first, n_items)
        m = first.shape[0]
        arrays: dict[str, NDArray[Any]] = {
            "first": first,
            "second": _as_index_array("second", self.second, n_items),
        }
        for name in ("outcome", "weight", *_OPTIONAL_FIELDS):
            if getattr(self, name) is not None:
                arrays[name] = _as_float_array(name, getattr(self, name))
        for name, array in arrays.items():
            if array.shape[0] != m:
                raise ValueError(
                    f"Argument {name!r} must have the same length as 'first' ({m}), "
                    f"not {array.shape[0]}."
                )
        same = np.flatnonzero(first == arrays["second"])
        if same.size:
            k = int(same[0])
            raise ValueError(
                f"Arguments 'first' and 'second' must differ, but comparison {k} compares "
                f"item {int(first[k])} with itself."
            )
        for name, array in arrays.items():
            for test, words in _DOMAINS.get(name, ()):
                bad = np.flatnonzero(test(array))
                if bad.size:
                    raise ValueError(
                        f"Argument {name!r} must hold {words}, not "
                        f"{float(array[bad[0]])!r} (comparison {int(bad[0])})."
                    )
            object.__setattr__(self, name, array)

    # ------------------------------------------------------------------ constructors

    @classmethod
    def from_arrays(
        cls,
        n_items: int,
        first: ArrayLike,
        second: ArrayLike,
        outcome: ArrayLike,
        *,
        weight: ArrayLike | None = None,
        score_first: ArrayLike | None = None,
        score_second: ArrayLike | None = None,
        ranking: ArrayLike | None = None,
    ) -> Comparisons:
        """Build comparisons from array-likes, with unit weights by default.

        Parameters
        ----------
        n_items : int
            Number of distinct items.
        first, second : array_like of int
            Items shown in slot 1 and slot 2.
        outcome : array_like of float
            Strength in ``[0, 1]`` with which the slot-1 item wins.
        weight : array_like of float, optional
            Non-negative weights; ones when omitted.
        score_first, score_second, ranking : array_like of float, optional
            Individual scores and the 1-6 ranking, NaN where missing.

        Returns
        -------
        Comparisons
            The validated, read-only comparisons.
        """
        first_array = np.asarray(first)
        weight_array = (
            np.ones(first_array.shape[0] if first_array.ndim == 1 else 0, dtype=np.float64)
            if weight is None
            else np.asarray(weight)
        )
        return cls(
            n_items=n_items,
            first=first_array,
            second=np.asarray(second),
            outcome=np.asarray(outcome),
            weight=weight_array,
            score_first=None if score_first is None else np.asarray(score_first),
            score_second=None if score_second is None else np.asarray(score_second),
            ranking=None if ranking is None else np.asarray(ranking),
        )

    @classmethod
    def from_pairs(cls, n_items: int, pairs: Sequence[Sequence[int]]) -> Comparisons:
        """Build hard-outcome comparisons from choix-style ``(winner, loser)`` pairs.

        The winner is put in slot 1 with outcome 1, as in choix's pairwise data format
        (Maystre & Grossglauser, 2015), which has no notion of slots.

        Parameters
        ----------
        n_items : int
            Number of distinct items.
        pairs : sequence of (int, int)
            ``(winner, loser)`` pairs.

        Returns
        -------
        Comparisons
            Comparisons with ``outcome == 1`` everywhere.

        Examples
        --------
        >>> Comparisons.from_pairs(2, [(0, 1), (1, 0)]).outcome.tolist()
        [1.0, 1.0]
        """
        array = (
            np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
            if len(pairs)
            else np.zeros((0, 2), dtype=np.int64)
        )
        return cls.from_arrays(n_items, array[:, 0], array[:, 1], np.ones(array.shape[0]))

    # ------------------------------------------------------------------ views and transforms

    def __len__(self) -> int:
        return int(self.first.shape[0])

    def subset(self, selector: ArrayLike) -> Comparisons:
        """Keep the comparisons picked by a boolean mask or an integer index array.

        Parameters
        ----------
        selector : array_like of bool or int
            Boolean mask of length ``m`` or indices into the comparisons (repeats allowed).

        Returns
        -------
        Comparisons
            The selected comparisons over the same ``n_items``.
        """
        index = np.asarray(selector)
        if index.dtype == np.bool_:
            if index.shape != (len(self),):
                raise ValueError(
                    f"Argument 'selector' as a mask must have shape ({len(self)},), "
                    f"not {index.shape}."
                )
            index = np.flatnonzero(index)
        elif index.size == 0:
            index = np.zeros(0, dtype=np.int64)
        elif not np.issubdtype(index.dtype, np.integer):
            raise TypeError(
                f"Argument 'selector' must be a boolean mask or integer indices, "
                f"not dtype {index.dtype}."
            )
        picked: dict[str, Any] = {
            k: None if v is None else v[index] for k, v in self._arrays().items()
        }
        return dataclasses.replace(self, **picked)

    def _arrays(self) -> dict[str, Any]:
        """Every per-comparison array by field name (``None`` for an absent optional one)."""
        names = ("first", "second", "outcome", "weight", *_OPTIONAL_FIELDS)
        return {name: getattr(self, name) for name in names}

    def relabel(self, permutation: ArrayLike) -> Comparisons:
        """Rename item ``i`` to ``permutation[i]``.

        Parameters
        ----------
        permutation : array_like of int, shape (n_items,)
            A permutation of ``0 .. n_items - 1``.

        Returns
        -------
        Comparisons
            The same comparisons with relabelled items; per-item results of any aggregator on
            it satisfy ``new[permutation[i]] == old[i]``.
        """
        perm = np.asarray(permutation)
        if (
            perm.dtype == np.bool_
            or not np.issubdtype(perm.dtype, np.integer)
            or perm.shape != (self.n_items,)
            or not np.array_equal(np.sort(perm), np.arange(self.n_items))
        ):
            raise ValueError(
                f"Argument 'permutation' must be a permutation of range({self.n_items}), "
                f"not {perm.tolist()!r}."
            )
        return dataclasses.replace(self, first=perm[self.first], second=perm[self.second])

    def swapped(self) -> Comparisons:
        """Swap the two slots of every comparison.

        ``first`` and ``second`` trade places, outcomes become ``1 - outcome``, the individual
        scores trade places and the 1-6 ranking becomes ``7 - ranking``.

        Returns
        -------
        Comparisons
            The mirrored comparisons.
        """
        return dataclasses.replace(
            self,
            first=self.second,
            second=self.first,
            outcome=1.0 - self.outcome,
            score_first=self.score_second,
            score_second=self.score_first,
            ranking=None if self.ranking is None else 7.0 - self.ranking,
        )

    @staticmethod
    def concat(parts: Sequence[Comparisons]) -> Comparisons:
        """Concatenate comparisons over the same items.

        An optional array missing from some parts is filled with NaN there; it stays ``None``
        only if every part lacks it.

        Parameters
        ----------
        parts : sequence of Comparisons
            At least one part; all with the same ``n_items``.

        Returns
        -------
        Comparisons
            All comparisons, in order.
        """
        if len(parts) == 0:
            raise ValueError("Argument 'parts' must hold at least one Comparisons, not 0.")
        n_items = parts[0].n_items
        for part in parts:
            if not isinstance(part, Comparisons):
                raise TypeError(
                    f"Argument 'parts' must hold Comparisons, not {type(part).__name__}."
                )
            if part.n_items != n_items:
                raise ValueError(
                    f"Argument 'parts' must share n_items={n_items}, but one has "
                    f"n_items={part.n_items}."
                )
        columns = [part._arrays() for part in parts]
        merged: dict[str, Any] = {}
        for name in columns[0]:
            arrays = [column[name] for column in columns]
            if any(a is not None for a in arrays):
                merged[name] = np.concatenate(
                    [
                        np.full(len(p), np.nan) if a is None else a
                        for p, a in zip(parts, arrays, strict=True)
                    ]
                )
        return Comparisons(n_items=n_items, **merged)

    # ------------------------------------------------------------------ sufficient statistics

    def pair_totals(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Total weight and total weighted outcome per ordered pair of slots.

        Returns
        -------
        total_weight : numpy.ndarray, shape (n_items, n_items)
            ``total_weight[i, j]`` sums ``weight`` over comparisons with ``i`` in slot 1 and
            ``j`` in slot 2.
        total_wins : numpy.ndarray, shape (n_items, n_items)
            The same sum of ``weight * outcome``: the soft wins of slot-1 ``i`` over ``j``.
        """
        n = self.n_items
        flat = self.first * n + self.second
        return (
            weighted_bincount(flat, self.weight, n * n).reshape(n, n),
            weighted_bincount(flat, self.weight * self.outcome, n * n).reshape(n, n),
        )
