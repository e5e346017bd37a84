"""Integer-indexed pairwise comparisons: the one input every aggregator takes.

Parallel numpy arrays, as choix's pairwise data (Maystre & Grossglauser, 2015), with what a
generative reward model reports: a graded outcome, each item's slot, and optionally the
individual 1-5 scores and the 1-6 ranking.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from genrm_rank import validate as check

__all__ = ["Comparisons", "weighted_bincount"]

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
    return np.bincount(index, weights=weights, minlength=size).astype(np.float64, copy=False)


def _as_array(name: str, values: ArrayLike, n_items: int | None = None) -> NDArray[Any]:
    """A read-only 1-D copy: item indices below ``n_items`` if given, else real numbers."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"Argument {name!r} must be one-dimensional, not of shape {array.shape}.")
    if n_items is None:
        if array.size and not (
            np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)
        ):
            raise TypeError(f"Argument {name!r} must hold real numbers, not dtype {array.dtype}.")
        return _frozen(array.astype(np.float64, copy=True))
    if array.size == 0:
        return _frozen(np.zeros(0, dtype=np.int64))
    if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.integer):
        raise TypeError(
            f"Argument {name!r} must hold integer item indices, not dtype {array.dtype}."
        )
    low, high = int(array.min()), int(array.max())
    if low < 0 or high >= n_items:
        raise ValueError(
            f"Argument {name!r} must hold indices in [0, n_items={n_items}), but contains "
            f"{low if low < 0 else high}."
        )
    return _frozen(array.astype(np.int64, copy=True))


@dataclass(frozen=True, eq=False)
class Comparisons:
    """``m`` pairwise comparisons among ``n_items`` integer-indexed items.

    Comparison ``k`` showed item ``first[k]`` in slot 1 and ``second[k]`` in slot 2, and the
    slot-1 item won with strength ``outcome[k]`` (1 win, 0 loss, 0.5 tie; graded values are soft
    labels). The arrays are copied and made read-only: a value never changes.

    Parameters
    ----------
    n_items : int
        Number of distinct items; indices run over ``0 .. n_items - 1``.
    first, second : numpy.ndarray of int64, shape (m,)
        Items shown in slot 1 and slot 2; ``first[k] != second[k]``.
    outcome : numpy.ndarray of float64, shape (m,)
        Strength in ``[0, 1]`` with which the slot-1 item wins.
    weight : numpy.ndarray of float64, shape (m,)
        Non-negative, finite weight of each comparison.
    score_first, score_second : numpy.ndarray of float64, shape (m,), optional
        The judge's individual helpfulness score (1-5) of each response; NaN where missing.
    ranking : numpy.ndarray of float64, shape (m,), optional
        The judge's 1-6 relative ranking (1: response 1 much better); NaN where missing.

    Raises
    ------
    ValueError
        If the arrays differ in length, an index is out of range, an item is compared with
        itself, or a value is outside its domain.
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
        first = _as_array("first", self.first, n_items)
        m = first.shape[0]
        arrays: dict[str, NDArray[Any]] = {
            "first": first,
            "second": _as_array("second", self.second, n_items),
        }
        for name in ("outcome", "weight", *_OPTIONAL_FIELDS):
            if getattr(self, name) is not None:
                arrays[name] = _as_array(name, getattr(self, name))
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
        """Build comparisons from array-likes (the fields of :class:`Comparisons`), with unit
        weights when ``weight`` is omitted."""
        first_array = np.asarray(first)
        if weight is None:
            weight = np.ones(first_array.shape[0] if first_array.ndim == 1 else 0)
        optional = {"score_first": score_first, "score_second": score_second, "ranking": ranking}
        return cls(
            n_items,
            first_array,
            np.asarray(second),
            np.asarray(outcome),
            np.asarray(weight),
            **{k: None if v is None else np.asarray(v) for k, v in optional.items()},
        )

    @classmethod
    def from_pairs(cls, n_items: int, pairs: Sequence[Sequence[int]]) -> Comparisons:
        """Hard-outcome comparisons from choix-style ``(winner, loser)`` pairs (Maystre &
        Grossglauser, 2015), the winner in slot 1.

        >>> Comparisons.from_pairs(2, [(0, 1), (1, 0)]).outcome.tolist()
        [1.0, 1.0]
        """
        array = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
        return cls.from_arrays(n_items, array[:, 0], array[:, 1], np.ones(array.shape[0]))

    def __len__(self) -> int:
        return int(self.first.shape[0])

    def subset(self, selector: ArrayLike) -> Comparisons:
        """The comparisons picked by a boolean mask of length ``m`` or by indices (repeats
        allowed), over the same ``n_items``."""
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
        names = ("first", "second", "outcome", "weight", *_OPTIONAL_FIELDS)
        picked: dict[str, Any] = {
            name: None if getattr(self, name) is None else getattr(self, name)[index]
            for name in names
        }
        return dataclasses.replace(self, **picked)

    def relabel(self, permutation: ArrayLike) -> Comparisons:
        """Item ``i`` renamed ``permutation[i]`` (a permutation of ``0 .. n_items - 1``): an
        aggregator's per-item results on it satisfy ``new[permutation[i]] == old[i]``."""
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
        """Every comparison with its slots swapped: outcome ``1 - outcome``, the individual
        scores traded, and the 1-6 ranking ``7 - ranking``."""
        return dataclasses.replace(
            self,
            first=self.second,
            second=self.first,
            outcome=1.0 - self.outcome,
            score_first=self.score_second,
            score_second=self.score_first,
            ranking=None if self.ranking is None else 7.0 - self.ranking,
        )

    def pair_totals(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Total weight, and total weighted outcome (soft wins of slot 1), per ordered pair.

        Returns
        -------
        total_weight, total_wins : numpy.ndarray, shape (n_items, n_items)
            ``[i, j]`` sums ``weight``, and ``weight * outcome``, over the comparisons with
            ``i`` in slot 1 and ``j`` in slot 2.
        """
        n = self.n_items
        flat = self.first * n + self.second
        return (
            weighted_bincount(flat, self.weight, n * n).reshape(n, n),
            weighted_bincount(flat, self.weight * self.outcome, n * n).reshape(n, n),
        )
