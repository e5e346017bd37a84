"""Bradley-Terry maximum-likelihood fits with soft outcomes and a slot-1 (position) bias.

The Bradley-Terry model (Zermelo, 1929; Bradley & Terry, 1952) gives each item a log-strength
``theta_i`` and says the item in slot 1 beats the item in slot 2 with probability
``sigmoid(theta_first - theta_second + h)``, where ``h`` is an optional home-advantage term
(Agresti, *Categorical Data Analysis*, 2nd ed., sec. 10.6; Davidson & Beaver, 1977) that here
measures a judge's preference for whichever response it is shown first.

The fit maximises the penalised soft-label log-likelihood

.. math::

    \\sum_k w_k \\left[o_k \\log\\sigma(d_k) + (1 - o_k)\\log\\sigma(-d_k)\\right]
    - \\alpha \\left(\\lVert\\theta\\rVert^2 + h^2\\right),
    \\qquad d_k = \\theta_{f_k} - \\theta_{s_k} + h,

by Newton's method with an analytic gradient and Hessian and a backtracking line search. The
penalty is the one ``choix.opt_pairwise`` uses (``alpha * sum(params ** 2)``, a Gaussian prior
with variance ``1 / (2 alpha)``), so the two agree exactly on hard outcomes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.sparse.csgraph import connected_components as _sparse_components
from scipy.special import expit

from genrm_rank.errors import ComparisonGraphError

from .comparisons import Comparisons, weighted_bincount

__all__ = [
    "BradleyTerryBootstrap",
    "BradleyTerryFit",
    "bootstrap_bradley_terry",
    "bradley_terry",
    "elo_scale",
]

_LOG10_E = float(np.log10(np.e))

SeedLike = int | np.random.Generator | None


# ---------------------------------------------------------------------------- objective


def _split(x: NDArray[np.float64], n_items: int) -> tuple[NDArray[np.float64], float]:
    return x[:n_items], (float(x[n_items]) if x.shape[0] > n_items else 0.0)


def _margins(x: NDArray[np.float64], n_items: int) -> NDArray[np.float64]:
    theta, h = _split(x, n_items)
    margins: NDArray[np.float64] = theta[:, None] - theta[None, :] + h
    return margins


def _log_likelihood(
    x: NDArray[np.float64],
    total_weight: NDArray[np.float64],
    total_wins: NDArray[np.float64],
) -> float:
    d = _margins(x, total_weight.shape[0])
    losses = total_weight - total_wins
    return -float(np.sum(total_wins * np.logaddexp(0.0, -d) + losses * np.logaddexp(0.0, d)))


def _objective(
    x: NDArray[np.float64],
    total_weight: NDArray[np.float64],
    total_wins: NDArray[np.float64],
    alpha: float,
) -> float:
    """Penalised negative log-likelihood; ``x`` is ``theta`` or ``[theta, h]``."""
    return -_log_likelihood(x, total_weight, total_wins) + alpha * float(np.dot(x, x))


def _gradient(
    x: NDArray[np.float64],
    total_weight: NDArray[np.float64],
    total_wins: NDArray[np.float64],
    alpha: float,
) -> NDArray[np.float64]:
    """Gradient of :func:`_objective`."""
    n = total_weight.shape[0]
    g: NDArray[np.float64] = total_weight * expit(_margins(x, n)) - total_wins
    grad = 2.0 * alpha * x
    grad[:n] += g.sum(axis=1) - g.sum(axis=0)
    if x.shape[0] > n:
        grad[n] += g.sum()
    return grad


def _hessian(
    x: NDArray[np.float64],
    total_weight: NDArray[np.float64],
    total_wins: NDArray[np.float64],
    alpha: float,
) -> NDArray[np.float64]:
    """Hessian of :func:`_objective` (it does not depend on ``total_wins``)."""
    del total_wins
    n = total_weight.shape[0]
    p: NDArray[np.float64] = expit(_margins(x, n))
    v: NDArray[np.float64] = total_weight * p * (1.0 - p)
    rows, cols = v.sum(axis=1), v.sum(axis=0)
    size = x.shape[0]
    hess = np.zeros((size, size))
    hess[:n, :n] = -(v + v.T)
    hess[np.arange(n), np.arange(n)] += rows + cols
    if size > n:
        hess[:n, n] = rows - cols
        hess[n, :n] = rows - cols
        hess[n, n] = v.sum()
    hess[np.arange(size), np.arange(size)] += 2.0 * alpha
    return hess


def _solve(matrix: NDArray[np.float64], rhs: NDArray[np.float64]) -> NDArray[np.float64]:
    try:
        solution = np.asarray(np.linalg.solve(matrix, rhs), dtype=np.float64)
    except np.linalg.LinAlgError:
        solution = np.asarray(np.linalg.lstsq(matrix, rhs, rcond=None)[0], dtype=np.float64)
    return solution


def _with_centring(hess: NDArray[np.float64], n_items: int) -> NDArray[np.float64]:
    # Adding u u^T (u = 1/sqrt(n) on the theta block) removes the null direction "shift every
    # theta" at alpha = 0 without changing anything orthogonal to it: the gradient is always
    # orthogonal to that direction, so Newton steps keep sum(theta) = 0.
    out: NDArray[np.float64] = hess.copy()
    out[:n_items, :n_items] += 1.0 / n_items
    return out


@dataclass(frozen=True)
class _Solution:
    x: NDArray[np.float64]
    hessian: NDArray[np.float64]
    n_iter: int
    converged: bool


def _newton(
    total_weight: NDArray[np.float64],
    total_wins: NDArray[np.float64],
    alpha: float,
    x0: NDArray[np.float64],
    max_iter: int,
    tol: float,
) -> _Solution:
    n = total_weight.shape[0]
    x = x0.copy()
    x[:n] -= x[:n].mean()
    f = _objective(x, total_weight, total_wins, alpha)
    converged = False
    n_iter = 0
    for n_iter in range(1, max_iter + 1):  # noqa: B007 - n_iter is reported
        grad = _gradient(x, total_weight, total_wins, alpha)
        hess = _hessian(x, total_weight, total_wins, alpha)
        step = -_solve(_with_centring(hess, n), grad)
        step[:n] -= step[:n].mean()
        slope = float(np.dot(grad, step))
        slack = 8.0 * np.finfo(float).eps * (1.0 + abs(f))
        t = 1.0
        for _ in range(60):
            candidate = x + t * step
            f_new = _objective(candidate, total_weight, total_wins, alpha)
            if f_new <= f + 1e-4 * t * slope + slack:
                break
            t *= 0.5
        x, f = candidate, f_new
        if float(np.max(np.abs(step), initial=0.0)) < tol:
            converged = True
            break
    hess = _hessian(x, total_weight, total_wins, alpha)
    return _Solution(x=x, hessian=hess, n_iter=n_iter, converged=converged)


def _strongly_connected(total_weight: NDArray[np.float64], total_wins: NDArray[np.float64]) -> bool:
    n = total_weight.shape[0]
    if n == 1:
        return True
    beats = total_wins + (total_weight - total_wins).T  # i beat j in either slot
    n_components, _ = _sparse_components(beats > 0.0, directed=True, connection="strong")
    return int(n_components) == 1


def _check_options(alpha: float, max_iter: int, tol: float) -> None:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating, np.integer)):
        raise TypeError(f"Argument 'alpha' must be a real number, not {type(alpha).__name__}.")
    if not np.isfinite(alpha) or alpha < 0:
        raise ValueError(f"Argument 'alpha' must be finite and >= 0, not {alpha!r}.")
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)):
        raise TypeError(f"Argument 'max_iter' must be an int, not {type(max_iter).__name__}.")
    if max_iter < 1:
        raise ValueError(f"Argument 'max_iter' must be at least 1, not {max_iter}.")
    if not np.isfinite(tol) or tol <= 0:
        raise ValueError(f"Argument 'tol' must be finite and > 0, not {tol!r}.")


def _check_comparisons(comparisons: object) -> Comparisons:
    if not isinstance(comparisons, Comparisons):
        raise TypeError(
            f"Argument 'comparisons' must be a Comparisons, not {type(comparisons).__name__}."
        )
    return comparisons


def _check_existence(
    total_weight: NDArray[np.float64],
    total_wins: NDArray[np.float64],
    position_bias: bool,
) -> None:
    if not _strongly_connected(total_weight, total_wins):
        raise ComparisonGraphError(
            "With alpha=0 the Bradley-Terry MLE exists only if every item both beats and is "
            "beaten along some chain of comparisons (Zermelo, 1929; Ford, 1957), but the graph "
            "of (soft) wins is not strongly connected. Pass alpha > 0."
        )
    if position_bias:
        slot1_wins = float(total_wins.sum())
        slot1_losses = float((total_weight - total_wins).sum())
        if slot1_wins <= 0.0 or slot1_losses <= 0.0:
            raise ComparisonGraphError(
                "With alpha=0 and position_bias=True the slot-1 item must both win and lose "
                f"somewhere, but it has {slot1_wins} soft wins and {slot1_losses} soft losses. "
                "Pass alpha > 0."
            )


def _initial_vector(
    initial_params: ArrayLike | None, n_items: int, position_bias: bool
) -> NDArray[np.float64]:
    x0 = np.zeros(n_items + (1 if position_bias else 0))
    if initial_params is not None:
        init = np.asarray(initial_params, dtype=np.float64)
        if init.shape != (n_items,) or not np.all(np.isfinite(init)):
            raise ValueError(
                f"Argument 'initial_params' must be {n_items} finite numbers, "
                f"not an array of shape {init.shape}."
            )
        x0[:n_items] = init
    return x0


def _centred_covariance(hess: NDArray[np.float64], n_items: int) -> NDArray[np.float64]:
    size = hess.shape[0]
    centring = np.eye(size)
    centring[:n_items, :n_items] -= 1.0 / n_items
    regular = _with_centring(hess, n_items)
    try:  # LU is much cheaper than the eigendecomposition behind pinv for small matrices
        half = np.linalg.solve(regular, centring)
    except np.linalg.LinAlgError:
        half = np.linalg.pinv(regular, hermitian=True) @ centring
    cov: NDArray[np.float64] = centring @ half
    symmetric: NDArray[np.float64] = 0.5 * (cov + cov.T)
    return symmetric


# ---------------------------------------------------------------------------- results


@dataclass(frozen=True, eq=False)
class BradleyTerryFit:
    """A fitted Bradley-Terry model.

    Attributes
    ----------
    params : numpy.ndarray, shape (n_items,)
        Log-strengths ``theta``, centred so that ``sum(params) == 0`` (the likelihood only sees
        differences; with ``alpha > 0`` the penalty centres them too).
    position_bias : float or None
        The fitted slot-1 advantage ``h`` in log-odds (positive: the judge favours the answer
        shown first), or ``None`` when it was not fitted.
    covariance : numpy.ndarray, shape (n_items, n_items)
        Laplace approximation to the covariance of the centred ``params``: the inverse of the
        penalised Fisher information ``H`` (the Hessian of the penalised negative
        log-likelihood, which for the logistic model equals the expected information plus
        ``2 * alpha * I``), taken on the sum-zero subspace, i.e. ``P (H + u u^T)^+ P`` with
        ``u = 1/sqrt(n)`` on the ``theta`` block and ``P`` the centring projection. Between
        disconnected components it is of order ``1 / alpha``: those differences are not
        identified by the data.
    standard_errors : numpy.ndarray, shape (n_items,)
        ``sqrt(diag(covariance))``.
    position_bias_stderr : float or None
        Standard error of ``position_bias`` from the same Laplace approximation.
    log_likelihood : float
        The unpenalised (soft-label, weighted) log-likelihood at the fit.
    alpha : float
        The penalty strength used.
    converged : bool
        Whether Newton's method met ``tol`` within ``max_iter`` iterations.
    n_iter : int
        Newton iterations performed.
    """

    params: NDArray[np.float64]
    position_bias: float | None
    covariance: NDArray[np.float64]
    standard_errors: NDArray[np.float64]
    position_bias_stderr: float | None
    log_likelihood: float
    alpha: float
    converged: bool
    n_iter: int

    @property
    def n_items(self) -> int:
        """Number of items."""
        return int(self.params.shape[0])

    def _index(self, name: str, value: int) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"Argument {name!r} must be an int, not {type(value).__name__}.")
        if not 0 <= value < self.n_items:
            raise ValueError(f"Argument {name!r} must be in [0, {self.n_items}), not {value}.")
        return int(value)

    def win_probability(
        self,
        i: int,
        j: int,
        *,
        position: Literal["neutral", "first", "second"] = "neutral",
    ) -> float:
        """Model probability that item ``i`` beats item ``j``.

        Parameters
        ----------
        i, j : int
            Item indices.
        position : {"neutral", "first", "second"}, optional
            Where ``i`` is shown. ``"neutral"`` ignores the position bias; ``"first"`` adds
            ``h`` (``i`` in slot 1), ``"second"`` subtracts it. Without a fitted bias all three
            agree.

        Returns
        -------
        float
            ``sigmoid(theta_i - theta_j [+/- h])``.
        """
        a, b = self._index("i", i), self._index("j", j)
        h = 0.0 if self.position_bias is None else self.position_bias
        shift = {"neutral": 0.0, "first": h, "second": -h}.get(position)
        if shift is None:
            raise ValueError(
                f"Argument 'position' must be 'neutral', 'first' or 'second', not {position!r}."
            )
        return float(expit(self.params[a] - self.params[b] + shift))

    def win_matrix(self) -> NDArray[np.float64]:
        """Position-neutral win probabilities, ``out[i, j] = sigmoid(theta_i - theta_j)``."""
        matrix: NDArray[np.float64] = expit(self.params[:, None] - self.params[None, :])
        return matrix

    def ranking(self) -> NDArray[np.int64]:
        """Item indices sorted from the largest to the smallest ``theta`` (stable)."""
        order: NDArray[np.int64] = np.argsort(-self.params, kind="stable").astype(np.int64)
        return order

    def p_best(self, n_samples: int = 10_000, seed: SeedLike = None) -> NDArray[np.float64]:
        """Probability that each item has the largest ``theta``.

        Draws ``n_samples`` vectors from the Laplace (Gaussian) posterior
        ``N(params, covariance)`` and counts how often each item is the arg-max, as in
        Thompson-sampling style best-arm identification.

        Parameters
        ----------
        n_samples : int, optional
            Number of posterior draws.
        seed : int or numpy.random.Generator or None, optional
            Source of randomness; ``None`` draws fresh OS entropy.

        Returns
        -------
        numpy.ndarray, shape (n_items,)
            Non-negative and summing to 1.
        """
        if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)):
            raise TypeError(f"Argument 'n_samples' must be an int, not {type(n_samples).__name__}.")
        if n_samples < 1:
            raise ValueError(f"Argument 'n_samples' must be at least 1, not {n_samples}.")
        rng = np.random.default_rng(seed)
        values, vectors = np.linalg.eigh(self.covariance)
        root = (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T  # symmetric sqrt
        draws = self.params + rng.standard_normal((int(n_samples), self.n_items)) @ root
        counts = np.bincount(np.argmax(draws, axis=1), minlength=self.n_items)
        result: NDArray[np.float64] = counts / float(n_samples)
        return result

    def elo(self, *, scale: float = 400.0, base: float = 1000.0) -> NDArray[np.float64]:
        """``params`` on the Elo scale; see :func:`elo_scale`."""
        return elo_scale(self.params, scale=scale, base=base)


@dataclass(frozen=True, eq=False)
class BradleyTerryBootstrap:
    """Percentile bootstrap intervals for a Bradley-Terry fit (Efron & Tibshirani, 1993).

    Attributes
    ----------
    fit : BradleyTerryFit
        The fit on the full data.
    samples : numpy.ndarray, shape (n_bootstrap, n_items)
        Centred ``params`` of each resample.
    lower, upper : numpy.ndarray, shape (n_items,)
        Percentile interval bounds of ``params`` at level ``confidence``.
    position_bias_samples : numpy.ndarray or None, shape (n_bootstrap,)
        Fitted ``h`` of each resample, or ``None``.
    position_bias_interval : tuple of float or None
        Percentile interval of ``h``.
    confidence : float
        The interval level.
    n_not_converged : int
        Resamples whose Newton iterations did not meet ``tol`` (they are still included).
    """

    fit: BradleyTerryFit
    samples: NDArray[np.float64]
    lower: NDArray[np.float64]
    upper: NDArray[np.float64]
    position_bias_samples: NDArray[np.float64] | None
    position_bias_interval: tuple[float, float] | None
    confidence: float
    n_not_converged: int


# ---------------------------------------------------------------------------- functions


def _fit_totals(
    total_weight: NDArray[np.float64],
    total_wins: NDArray[np.float64],
    *,
    alpha: float,
    position_bias: bool,
    x0: NDArray[np.float64],
    max_iter: int,
    tol: float,
) -> _Solution:
    if alpha == 0:
        _check_existence(total_weight, total_wins, position_bias)
    return _newton(total_weight, total_wins, float(alpha), x0, max_iter, tol)


def bradley_terry(
    comparisons: Comparisons,
    *,
    alpha: float = 1e-6,
    position_bias: bool = False,
    initial_params: ArrayLike | None = None,
    max_iter: int = 100,
    tol: float = 1e-9,
) -> BradleyTerryFit:
    """Fit the Bradley-Terry model by penalised maximum likelihood.

    Maximises the weighted soft-label log-likelihood of Bradley & Terry (1952) (first solved by
    Zermelo, 1929) minus ``alpha * (||theta||^2 + h^2)``, optionally with a jointly fitted
    slot-1 advantage ``h`` (the home-advantage model of Agresti, *Categorical Data Analysis*,
    sec. 10.6; Davidson & Beaver, 1977). Newton's method with an analytic Hessian and a
    backtracking line search; each iteration costs ``O(n_items^2 + n_items^3)`` after an
    ``O(m)`` reduction to per-ordered-pair totals.

    ``theta`` is identified by centring: the returned ``params`` sum to zero. With
    ``alpha > 0`` the maximiser is unique and finite for any data, including perfect
    separation and disconnected comparison graphs (items in different components are then
    pulled towards each other's mean by the prior only). With ``alpha == 0`` the MLE exists
    only if the graph of soft wins is strongly connected; otherwise
    :class:`~genrm_rank.errors.ComparisonGraphError` is raised.

    Parameters
    ----------
    comparisons : Comparisons
        The comparisons to fit.
    alpha : float, optional
        L2 penalty strength, the same convention as ``choix.opt_pairwise``
        (``alpha * sum(params ** 2)``); also applied to ``h``.
    position_bias : bool, optional
        Whether to fit the slot-1 advantage ``h``.
    initial_params : array_like, optional
        Starting ``theta`` (``h`` starts at 0); zeros by default.
    max_iter : int, optional
        Maximum Newton iterations.
    tol : float, optional
        Convergence when the largest coordinate of a full Newton step is below ``tol``.

    Returns
    -------
    BradleyTerryFit
        Centred parameters, position bias, Laplace covariance and diagnostics.

    Raises
    ------
    ComparisonGraphError
        If ``alpha == 0`` and the MLE does not exist.

    Examples
    --------
    >>> c = Comparisons.from_pairs(2, [(0, 1), (0, 1), (0, 1), (1, 0)])
    >>> fit = bradley_terry(c, alpha=0.0)
    >>> round(float(fit.params[0] - fit.params[1]), 6)  # log(3 / 1)
    1.098612
    """
    comparisons = _check_comparisons(comparisons)
    _check_options(alpha, max_iter, tol)
    n = comparisons.n_items
    x0 = _initial_vector(initial_params, n, position_bias)
    total_weight, total_wins = comparisons.pair_totals()
    solution = _fit_totals(
        total_weight,
        total_wins,
        alpha=alpha,
        position_bias=position_bias,
        x0=x0,
        max_iter=max_iter,
        tol=tol,
    )
    return _make_fit(solution, total_weight, total_wins, n, position_bias, alpha)


def _make_fit(
    solution: _Solution,
    total_weight: NDArray[np.float64],
    total_wins: NDArray[np.float64],
    n: int,
    position_bias: bool,
    alpha: float,
) -> BradleyTerryFit:
    cov_full = _centred_covariance(solution.hessian, n)
    cov = cov_full[:n, :n].copy()
    params = solution.x[:n].copy()
    params -= params.mean()
    h = float(solution.x[n]) if position_bias else None
    h_se = float(np.sqrt(max(cov_full[n, n], 0.0))) if position_bias else None
    for array in (params, cov):
        array.setflags(write=False)
    se = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    se.setflags(write=False)
    return BradleyTerryFit(
        params=params,
        position_bias=h,
        covariance=cov,
        standard_errors=se,
        position_bias_stderr=h_se,
        log_likelihood=_log_likelihood(solution.x, total_weight, total_wins),
        alpha=float(alpha),
        converged=solution.converged,
        n_iter=solution.n_iter,
    )


def bootstrap_bradley_terry(
    comparisons: Comparisons,
    *,
    n_bootstrap: int = 1000,
    seed: SeedLike = None,
    alpha: float = 1e-6,
    position_bias: bool = False,
    confidence: float = 0.95,
    max_iter: int = 100,
    tol: float = 1e-9,
) -> BradleyTerryBootstrap:
    """Percentile bootstrap for :func:`bradley_terry`.

    Resamples the ``m`` comparisons with replacement ``n_bootstrap`` times (Efron &
    Tibshirani, *An Introduction to the Bootstrap*, 1993), refits each resample (warm-started
    at the full-data fit) and reports percentile intervals, as the Chatbot Arena leaderboard
    does (Chiang et al., 2024).

    Parameters
    ----------
    comparisons : Comparisons
        The comparisons to fit.
    n_bootstrap : int, optional
        Number of resamples (at least 1).
    seed : int or numpy.random.Generator or None, optional
        Source of randomness; ``None`` draws fresh OS entropy.
    alpha, position_bias, max_iter, tol
        As for :func:`bradley_terry`.
    confidence : float, optional
        Interval level in ``(0, 1)``.

    Returns
    -------
    BradleyTerryBootstrap
        The full-data fit, the resampled parameters and their percentile intervals.

    Raises
    ------
    ComparisonGraphError
        If ``alpha == 0`` and the MLE does not exist for the data or for some resample.
    """
    comparisons = _check_comparisons(comparisons)
    _check_options(alpha, max_iter, tol)
    if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, (int, np.integer)):
        raise TypeError(f"Argument 'n_bootstrap' must be an int, not {type(n_bootstrap).__name__}.")
    if n_bootstrap < 1:
        raise ValueError(f"Argument 'n_bootstrap' must be at least 1, not {n_bootstrap}.")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"Argument 'confidence' must be in (0, 1), not {confidence!r}.")
    rng = np.random.default_rng(seed)
    fit = bradley_terry(
        comparisons, alpha=alpha, position_bias=position_bias, max_iter=max_iter, tol=tol
    )
    n, m = comparisons.n_items, len(comparisons)
    x_start = np.zeros(n + (1 if position_bias else 0))
    x_start[:n] = fit.params
    if fit.position_bias is not None:
        x_start[n] = fit.position_bias
    flat = comparisons.first * n + comparisons.second
    samples = np.empty((int(n_bootstrap), n))
    h_samples = np.empty(int(n_bootstrap)) if position_bias else None
    not_converged = 0
    for b in range(int(n_bootstrap)):
        counts = rng.multinomial(m, np.full(m, 1.0 / m)) if m else np.zeros(0)
        weight: NDArray[np.float64] = comparisons.weight * counts
        total_weight = weighted_bincount(flat, weight, n * n).reshape(n, n)
        total_wins = weighted_bincount(flat, weight * comparisons.outcome, n * n).reshape(n, n)
        solution = _fit_totals(
            total_weight,
            total_wins,
            alpha=alpha,
            position_bias=position_bias,
            x0=x_start,
            max_iter=max_iter,
            tol=tol,
        )
        not_converged += not solution.converged
        samples[b] = solution.x[:n] - solution.x[:n].mean()
        if h_samples is not None:
            h_samples[b] = solution.x[n]
    tail = (1.0 - confidence) / 2.0
    lower, upper = np.quantile(samples, [tail, 1.0 - tail], axis=0)
    h_interval = (
        None
        if h_samples is None
        else (float(np.quantile(h_samples, tail)), float(np.quantile(h_samples, 1.0 - tail)))
    )
    return BradleyTerryBootstrap(
        fit=fit,
        samples=samples,
        lower=lower,
        upper=upper,
        position_bias_samples=h_samples,
        position_bias_interval=h_interval,
        confidence=float(confidence),
        n_not_converged=not_converged,
    )


def elo_scale(
    params: ArrayLike, *, scale: float = 400.0, base: float = 1000.0
) -> NDArray[np.float64]:
    """Map natural-log Bradley-Terry strengths to Elo points.

    ``rating = base + scale * log10(e) * (theta - mean(theta))`` along the last axis, so a
    difference of ``scale`` points means 10:1 odds (Elo, 1978) and the geometric mean of the
    strengths ``exp(theta)`` sits at ``base``. A 2-D input (e.g. bootstrap samples) is scaled
    row by row.

    Parameters
    ----------
    params : array_like
        Log-strengths in natural-log odds units.
    scale : float, optional
        Elo points per factor 10 in odds.
    base : float, optional
        Rating of the geometric-mean item.

    Returns
    -------
    numpy.ndarray
        Ratings with the shape of ``params``.

    Examples
    --------
    >>> elo_scale([np.log(10.0), 0.0]).round(1).tolist()
    [1200.0, 800.0]
    """
    theta = np.asarray(params, dtype=np.float64)
    if theta.ndim == 0 or theta.shape[-1] == 0:
        raise ValueError(
            f"Argument 'params' must have at least one item along its last axis, "
            f"not shape {theta.shape}."
        )
    if not (np.isfinite(scale) and np.isfinite(base)):
        raise ValueError(f"Arguments 'scale' and 'base' must be finite, not {scale!r}, {base!r}.")
    centred = theta - theta.mean(axis=-1, keepdims=True)
    ratings: NDArray[np.float64] = base + scale * _LOG10_E * centred
    return ratings
