"""Paths that one function now serves: the bootstrap's cells with and without compacted keys,
and P(best) of a single item."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from genrm_rank.aggregators import (
    BradleyTerryPrior,
    Comparisons,
    bootstrap_bradley_terry,
    bradley_terry,
)

bt = importlib.import_module("genrm_rank.aggregators.bradley_terry")


def _comparisons() -> Comparisons:
    rng = np.random.default_rng(4)
    first = rng.integers(0, 5, 400)
    second = (first + rng.integers(1, 5, 400)) % 5
    outcome = rng.integers(0, 5, 400) / 4.0
    return Comparisons.from_arrays(5, first, second, outcome, weight=rng.integers(1, 4, 400))


def test_compacted_keys_give_the_same_cells(monkeypatch: pytest.MonkeyPatch) -> None:
    c = _comparisons()
    plain = bt._cells(c, None)
    monkeypatch.setattr(bt, "_KEY_LIMIT", 0)  # as if n_items^2 * levels overflowed int64
    compact = bt._cells(c, None)
    for name in ("pair", "unit", "weight", "wins", "first", "second", "unit_size"):
        np.testing.assert_array_equal(getattr(compact, name), getattr(plain, name))
    # Every row is in one cell, with its pair, weight and weighted outcome.
    assert compact.unit_size.sum() == len(c)
    pairs = compact.first[compact.pair] * 5 + compact.second[compact.pair]
    assert set(pairs.tolist()) == set((c.first * 5 + c.second).tolist())


def test_bootstrap_is_unchanged_by_compacted_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    c = _comparisons()
    plain = bootstrap_bradley_terry(c, bootstrap_rounds=20, seed=3, fit_position_bias=True)
    monkeypatch.setattr(bt, "_KEY_LIMIT", 0)
    compact = bootstrap_bradley_terry(c, bootstrap_rounds=20, seed=3, fit_position_bias=True)
    np.testing.assert_array_equal(compact.samples, plain.samples)


@pytest.mark.parametrize("prior", [None, BradleyTerryPrior()])
def test_one_item_with_a_position_term_is_surely_best(prior: BradleyTerryPrior | None) -> None:
    # The quadrature for two parameters must not take (theta, h) for two items.
    fit = bradley_terry(
        Comparisons.from_pairs(1, []), alpha=0.1, fit_position_bias=True, prior=prior
    )
    np.testing.assert_array_equal(fit.p_best(100, seed=0), [1.0])
