"""The prior path's shortcuts compute exactly what the library calls they replace did.

Adaptive selection's results must not move when its per-verdict work gets cheaper: each
shortcut is compared bit for bit with the scipy/numpy call it stands for.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.linalg import cholesky, solve_triangular
from scipy.linalg.lapack import dpotri
from scipy.special import expit

from genrm_rank.aggregators.bradley_terry import (
    BradleyTerryPosterior,
    BradleyTerryPrior,
    _Pairs,
    _spd_centred_inverse,
    bradley_terry_posterior,
)


def _reference_inverse(precision: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The centred inverse as scipy.linalg.cholesky, np.triu and np.mean computed it."""
    factor = cholesky(precision, lower=False, check_finite=False)
    upper, info = dpotri(factor, lower=0)
    assert info == 0
    inverse = np.triu(upper) + np.triu(upper, 1).T
    block = inverse[:n, :n]
    rows = block.mean(axis=1)
    block -= rows[:, None] + rows[None, :] - rows.mean()
    if inverse.shape[0] > n:
        inverse[:n, n:] -= inverse[:n, n:].mean(axis=0)
        inverse[n:, :n] = inverse[:n, n:].T
    return inverse, factor


@pytest.mark.parametrize(("n", "extra"), [(2, 1), (3, 0), (8, 1), (13, 1)])
def test_the_centred_inverse_is_the_scipy_one_bit_for_bit(n: int, extra: int) -> None:
    rng = np.random.default_rng(n)
    a = rng.standard_normal((n + extra, n + extra))
    precision = a @ a.T + 0.5 * np.eye(n + extra)
    inverse, factor = _spd_centred_inverse(precision, n)
    expected, expected_factor = _reference_inverse(precision, n)
    assert factor is not None
    assert np.array_equal(factor, expected_factor)
    assert np.array_equal(inverse, expected)


def test_a_matrix_that_is_not_positive_definite_falls_back() -> None:
    precision = np.diag([1.0, -1.0, 2.0])
    inverse, factor = _spd_centred_inverse(precision, 2)
    assert factor is None
    assert np.all(np.isfinite(inverse))


def _posterior() -> BradleyTerryPosterior:
    rng = np.random.default_rng(3)
    n = 8
    weight = rng.integers(0, 3, (n, n)).astype(float)
    np.fill_diagonal(weight, 0.0)
    wins = weight * rng.uniform(0.0, 1.0, (n, n))
    return bradley_terry_posterior(weight, wins, wins * wins / np.maximum(weight, 1.0),
                                   BradleyTerryPrior(dispersion_df=10.0))  # fmt: skip


def test_posterior_draws_are_scipys_triangular_solve_bit_for_bit() -> None:
    fit = _posterior()
    draws = fit.draws(64, np.random.default_rng(5))
    z = np.random.default_rng(5).standard_normal((fit.mode.shape[0], 64))
    steps = solve_triangular(fit._factor, z, lower=False, check_finite=False)
    n = fit.params.shape[0]
    assert np.array_equal(draws, (fit.mode[:n, None] + steps[:n]).T)


def test_pairs_recompute_margins_for_a_new_point() -> None:
    weight = np.array([[0.0, 2.0, 1.0], [1.0, 0.0, 0.0], [0.0, 3.0, 0.0]])
    pairs = _Pairs.of(weight, weight * 0.5, weight * 0.25, 4)
    x, y = np.array([0.5, -0.2, -0.3, 0.1]), np.array([1.0, 0.0, -1.0, -0.2])
    first = pairs.probabilities(x).copy()
    second = pairs.probabilities(y)
    rows, cols = np.nonzero(weight)
    assert np.array_equal(pairs.margins(y), y[rows] - y[cols] + y[3])
    assert np.array_equal(second, expit(y[rows] - y[cols] + y[3]))
    assert np.array_equal(pairs.probabilities(x), first)
    assert pairs.total == float(weight[rows, cols].sum())
