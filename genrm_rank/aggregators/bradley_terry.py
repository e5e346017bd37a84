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

by Newton's method with a backtracking line search. The penalty is ``choix.opt_pairwise``'s
(a Gaussian prior of variance ``1 / (2 alpha)``), so the two agree exactly on hard outcomes.
The likelihood and the minimiser (:class:`_Pairs`, :func:`_minimise`) are written once here:
the fit, the prior path, the bootstrap and :func:`~genrm_rank.judge_profile.learn_judge_profile`
all use them.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from functools import cache, cached_property
from typing import TYPE_CHECKING, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.linalg import LinAlgError, cholesky, lu_factor, lu_solve, solve_triangular
from scipy.linalg.lapack import dpotrf, dpotri, dtrtrs
from scipy.sparse import csr_matrix
from scipy.special import expit

from genrm_rank import validate as check
from genrm_rank.blas_threads import one_blas_thread
from genrm_rank.errors import ComparisonGraphError

from .comparisons import Comparisons, weighted_bincount
from .identification import Identification, identify

if TYPE_CHECKING:
    from genrm_rank.judge_profile import JudgeProfile

__all__ = [
    "BradleyTerryBootstrap",
    "BradleyTerryFit",
    "BradleyTerryPosterior",
    "BradleyTerryPrior",
    "CovarianceMethod",
    "bootstrap_bradley_terry",
    "bootstrap_interval",
    "bradley_terry",
    "bradley_terry_posterior",
    "elo_scale",
    "repeat_weights",
]

_LOG10_E = float(np.log10(np.e))

SeedLike = int | np.random.Generator | None
Array = NDArray[np.float64]
Index = NDArray[np.int64]

IMPORTANCE_MAX_PARAMS = 65
"""Largest fit (strengths plus ``h``) whose P(best) is importance-sampled; larger ones
(leaderboards) use the normal approximation, accurate there."""
# Importance sampling (_Posterior.p_best): the first n_samples draws must reach an effective
# sample size of max(MIN_ESS, n_samples / MIN_SHARE); draws go on until it reaches
# n_samples / ESS_SHARE (P(best) within ~0.025), at most MAX_ROUNDS rounds, in blocks that
# start at n_samples / BLOCKS and double.
IMPORTANCE_MIN_ESS = 100.0
IMPORTANCE_MIN_SHARE = 40.0
IMPORTANCE_ESS_SHARE = 10.0
IMPORTANCE_MAX_ROUNDS = 4
IMPORTANCE_BLOCKS = 8
SETTLED_Z = 3.0
"""The leader is settled when its P(best) tops every other's by this many standard errors."""
DISPERSION_TOL = 1e-2
"""The pooled dispersion has settled when a pass moves it by less than this, relatively."""
_PROPOSAL_DF = 5
_QUADRATURE_POINTS = 2049
_QUADRATURE_HALF_WIDTH = 40.0
_EPS = float(np.finfo(float).eps)

CovarianceMethod = Literal["quasi", "sandwich", "model"]
_COVARIANCES = ("quasi", "sandwich", "model")


# ------------------------------------------------------------- likelihood, Newton's method


def _softplus(d: Array) -> Array:
    """``log(1 + e^d)`` without overflow; a pair's log-likelihood is ``o w d - w softplus(d)``."""
    return np.maximum(d, 0.0) + np.log1p(np.exp(-np.abs(d)))


@dataclass(frozen=True)
class _Gaussian:
    """The penalty ``0.5 sum precision (x - mean)^2`` (``alpha ||x||^2``: precision ``2 alpha``)."""

    mean: Array
    precision: Array

    @classmethod
    def ridge(cls, alpha: float, size: int) -> _Gaussian:
        return cls(np.zeros(size), np.full(size, 2.0 * alpha))

    def __call__(self, x: Array) -> Array:
        return 0.5 * (((x - self.mean) ** 2) @ self.precision)


def _diagonal(matrix: Array) -> Array:
    """A writable view of the diagonal of a C-contiguous square matrix (or of each of a stack)."""
    size = matrix.shape[-1]
    return matrix.reshape((*matrix.shape[:-2], size * size))[..., :: size + 1]


def _gram(v: Array, size: int) -> Array:
    """``sum_ij v[i, j] a_ij a_ij^T`` for the design rows ``a_ij = e_i - e_j (+ e_h)``: the
    information for ``v = w p (1 - p)``, the sandwich's meat for summed squared scores."""
    n = v.shape[-1]
    if v.ndim == 2:
        rows, cols, between = v.sum(axis=1), v.sum(axis=0), -(v + v.T)
    else:  # a matmul sums a stack's short rows and columns much faster than sum(axis=...)
        ones = np.ones(n)
        rows, cols, between = v @ ones, ones @ v, -(v + np.swapaxes(v, -1, -2))
    out = between if size == n else np.zeros((*v.shape[:-2], size, size))
    if size > n:
        out[..., :n, :n] = between
    diagonal = _diagonal(out)
    diagonal[..., :n] += rows + cols
    if size > n:
        out[..., :n, n] = rows - cols
        out[..., n, :n] = rows - cols
        out[..., n, n] = v.sum(axis=(-2, -1))
    return out


def _with_centring(hess: Array, n_items: int) -> Array:
    """``hess + u u^T`` (``u = 1/sqrt(n)`` on the theta block): removes the null direction "shift
    every theta" at ``alpha = 0`` and changes nothing orthogonal to it, where the gradient is."""
    out: Array = hess.copy()
    out[..., :n_items, :n_items] += 1.0 / n_items
    return out


def _solve(matrix: Array, rhs: Array) -> Array:
    """``matrix^-1 rhs`` for one system or a stack; the least-squares solution if singular."""
    column = rhs if rhs.ndim == 1 else rhs[..., None]
    try:
        solution = np.asarray(np.linalg.solve(matrix, column), dtype=np.float64)
    except np.linalg.LinAlgError:
        solution = np.linalg.pinv(matrix) @ column
    return solution if rhs.ndim == 1 else solution[..., 0]


@dataclass(frozen=True)
class _Solution:
    x: Array
    n_iter: int
    converged: bool


_Function = Callable[[Array], Array]


def _minimise(
    objective: _Function,
    gradient: _Function,
    hessian: _Function,
    n: int,
    x0: Array,
    max_iter: int,
    tol: float,
) -> _Solution:
    """Newton's method with an Armijo line search, keeping ``theta`` centred; ``x0`` is one
    problem or a stack of independent ones (a row each, each with its own step length)."""
    x = x0.copy()
    x[..., :n] -= x[..., :n].sum(axis=-1, keepdims=True) / n  # centred, as the steps are
    f = objective(x)
    converged = False
    n_iter = 0
    for n_iter in range(1, max_iter + 1):  # noqa: B007 - n_iter is reported
        grad = gradient(x)
        step = -_solve(_with_centring(hessian(x), n), grad)
        step[..., :n] -= step[..., :n].sum(axis=-1, keepdims=True) / n
        slope = (grad * step).sum(axis=-1)
        slack = 8.0 * _EPS * (1.0 + np.abs(f))
        t: Array | float = 1.0
        for _ in range(60):
            candidate = x + (t * step.T).T
            f_new = objective(candidate)
            short = f_new > f + 1e-4 * t * slope + slack
            if not short.any():
                break
            t = t * (1.0 - 0.5 * short)
        x, f = candidate, f_new
        if float(np.max(np.abs(step), initial=0.0)) < tol:
            converged = True
            break
    return _Solution(x=x, n_iter=n_iter, converged=converged)


def _moments(index: Index, size: int, w: Array, o: Array) -> tuple[Array, Array, Array]:
    """Sums of ``w``, ``w o`` and ``w o^2`` per ``index`` (the pair totals of every fit)."""
    return (
        weighted_bincount(index, w, size),
        weighted_bincount(index, w * o, size),
        weighted_bincount(index, w * o * o, size),
    )


@dataclass(frozen=True)
class _Pairs:
    """The judged ordered pairs' totals, with the penalised negative log-likelihood, its gradient
    and Hessian in ``O(pairs)``; ``groups`` problems of ``n`` items may be stacked (pair ``k`` in
    problem ``group[k]``), ``offset`` is a fixed slot-1 term, and the margins at the last ``x``
    seen are memoised (``x`` must not change after).
    """

    first: Index
    second: Index
    weight: Array
    wins: Array
    wins_sq: Array
    n: int
    size: int
    group: Index | None = None
    groups: int = 1
    offset: float = 0.0
    _memo: list[Array | None] = field(
        default_factory=lambda: [None, None, None], compare=False, repr=False
    )

    @classmethod
    def of(cls, weight: Array, wins: Array, wins_sq: Array, size: int) -> _Pairs:
        """The pairs with weight of per-ordered-pair total matrices, for ``size`` parameters."""
        rows, cols = np.nonzero(weight)
        return cls(
            rows.astype(np.int64),
            cols.astype(np.int64),
            weight[rows, cols],
            wins[rows, cols],
            wins_sq[rows, cols],
            weight.shape[0],
            size,
        )

    @property
    def total(self) -> float:
        return float(self.weight.sum())

    @cached_property
    def _index(self) -> tuple[Index, Index, Index | int | None, Index]:
        """Each pair's items and ``h`` in the flat ``x``, and its cell of the ``n x n`` matrices."""
        h = self.n if self.size > self.n else None
        if self.group is None:
            return self.first, self.second, h, self.first * self.n + self.second
        base = self.group * self.size
        cell = (self.group * self.n + self.first) * self.n + self.second
        return base + self.first, base + self.second, None if h is None else base + h, cell

    def margins(self, x: Array) -> Array:
        """``theta_first - theta_second + h + offset`` of each pair at ``x``."""
        memo = self._memo
        if memo[0] is not x:
            first, second, h, _ = self._index
            flat = x.reshape(-1)
            m: Array = flat[first] - flat[second]
            if h is not None:
                m += flat[h]
            if self.offset:
                m += self.offset
            memo[:] = [x, m, None]
        margins = memo[1]
        assert margins is not None
        return margins

    def probabilities(self, x: Array) -> Array:
        """``sigmoid`` of :meth:`margins`."""
        m = self.margins(x)
        p = self._memo[2]
        if p is None:
            p = self._memo[2] = expit(m)
        return p

    def log_likelihood(self, x: Array) -> Array:
        """The soft-label log-likelihood of each problem (a 0-d array for one)."""
        m = self.margins(x)
        if self.group is None:
            return np.asarray(self.wins @ m - self.weight @ _softplus(m))
        terms = self.wins * m - self.weight * _softplus(m)
        return weighted_bincount(self.group, terms, self.groups)

    def objective(self, x: Array, prior: _Gaussian) -> Array:
        return prior(x) - self.log_likelihood(x)

    def gradient(self, x: Array, prior: _Gaussian) -> Array:
        first, second, h, _ = self._index
        r = self.weight * self.probabilities(x) - self.wins
        length = self.groups * self.size
        g = np.bincount(first, r, length) - np.bincount(second, r, length)
        if isinstance(h, int):
            g[h] += r.sum()
        elif h is not None:
            g += np.bincount(h, r, length)
        return prior.precision * (x - prior.mean) + g.reshape(x.shape)

    def information(self, x: Array) -> Array:
        """The Fisher information at ``x`` (at dispersion 1, without the prior)."""
        p = self.probabilities(x)
        v = weighted_bincount(self._index[3], self.weight * p * (1.0 - p), self.groups * self.n**2)
        return _gram(v.reshape((*x.shape[:-1], self.n, self.n)), self.size)

    def hessian(self, x: Array, prior: _Gaussian) -> Array:
        out = self.information(x)
        diagonal = _diagonal(out)
        diagonal += prior.precision
        return out

    def minimise(self, prior: _Gaussian, x0: Array, max_iter: int, tol: float) -> _Solution:
        return _minimise(
            lambda x: self.objective(x, prior),
            lambda x: self.gradient(x, prior),
            lambda x: self.hessian(x, prior),
            self.n,
            x0,
            max_iter,
            tol,
        )

    def own_dispersion(self, x: Array) -> tuple[float, float]:
        """The moment estimate of ``phi`` at ``x`` (see :func:`bradley_terry`) and its residual
        degrees of freedom ``df`` (``nan, 0`` without any)."""
        total = self.total
        own_df = total - (self.size - 1)
        p = self.probabilities(x)
        spread = float(np.sum(self.weight * p * (1.0 - p)))
        if own_df <= 0 or spread <= 0:
            return float("nan"), 0.0
        squared = p * p * self.weight - 2.0 * p * self.wins + self.wins_sq
        return float(np.sum(np.maximum(squared, 0.0))) / spread * total / own_df, own_df


def _pair_sums(comparisons: Comparisons, w: Array) -> tuple[Array, Array, Array]:
    """Per ordered pair, as ``n x n`` matrices: the sums of ``w``, ``w o`` and ``w o^2``."""
    n = comparisons.n_items
    flat = comparisons.first * n + comparisons.second
    weight, wins, wins_sq = _moments(flat, n * n, w, comparisons.outcome)
    return weight.reshape(n, n), wins.reshape(n, n), wins_sq.reshape(n, n)


# ------------------------------------------------------------------------- covariances


def _centred_inverse(matrix: Array, n_items: int) -> Array:
    """``P (matrix + u u^T)^-1 P``: the inverse on the sum-zero subspace of the ``theta`` block."""
    size = matrix.shape[0]
    centring = np.eye(size)
    centring[:n_items, :n_items] -= 1.0 / n_items
    regular = _with_centring(matrix, n_items)
    try:  # LU is much cheaper than the eigendecomposition behind pinv
        half = np.linalg.solve(regular, centring)
    except np.linalg.LinAlgError:
        half = np.linalg.pinv(regular, hermitian=True) @ centring
    cov: Array = centring @ half
    symmetric: Array = 0.5 * (cov + cov.T)
    return symmetric


def _spd_centred_inverse(precision: Array, n_items: int) -> tuple[Array, Array | None]:
    """:func:`_centred_inverse` by the Cholesky factor ``R`` (``precision = R^T R``), returned
    too; ``None`` when it fails. LAPACK called as scipy's ``cholesky`` does, without checks."""
    factor, info = dpotrf(precision, lower=0, clean=1, overwrite_a=0)
    if info != 0:
        return _centred_inverse(precision, n_items), None
    upper, info = dpotri(factor, lower=0)
    if info != 0:
        return _centred_inverse(precision, n_items), None
    below, on_or_below = _triangles(upper.shape[0])
    inverse = np.where(below, 0.0, upper) + np.where(on_or_below, 0.0, upper).T  # np.triu's
    # P inverse P: subtract the row and column means (as np.mean computes them) on theta.
    block = inverse[:n_items, :n_items]
    rows = block.sum(axis=1) / n_items
    block -= rows[:, None] + rows[None, :] - rows.sum() / n_items
    if inverse.shape[0] > n_items:
        inverse[:n_items, n_items:] -= inverse[:n_items, n_items:].sum(axis=0) / n_items
        inverse[n_items:, :n_items] = inverse[:n_items, n_items:].T
    return inverse, factor


@cache
def _triangles(size: int) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """The masks ``np.triu`` zeroes with, below the diagonal and on or below it."""
    return np.tri(size, k=-1, dtype=bool), np.tri(size, dtype=bool)


def _covariance(
    x: Array, pairs: _Pairs, comparisons: Comparisons, alpha: float, method: CovarianceMethod
) -> tuple[Array, float, Array]:
    """The centred covariance of ``x``, the dispersion (1.0 unless ``quasi``) and the precision
    ``information / phi`` plus the penalty; the methods are :func:`bradley_terry`'s."""
    n, size = pairs.n, pairs.size
    dispersion = 1.0
    if method == "quasi":
        own, df = pairs.own_dispersion(x)
        dispersion = max(own if df > 0 else 1.0, 1e-12)
    precision = pairs.information(x) / dispersion + 2.0 * alpha * np.eye(size)
    if method != "sandwich":
        return _centred_inverse(precision, n), dispersion, precision
    p = np.zeros((n, n))  # 0 where nothing was judged: the w^2 sums are 0 there too
    p[pairs.first, pairs.second] = pairs.probabilities(x)
    w = comparisons.weight
    weight2, wins2, wins2_sq = _pair_sums(comparisons, w * w)
    meat = _gram(np.maximum(p * p * weight2 - 2.0 * p * wins2 + wins2_sq, 0.0), size)
    df = pairs.total - (size - 1)
    if df > 0:
        meat *= pairs.total / df  # HC1 small-sample factor (MacKinnon & White, 1985)
    bread = _centred_inverse(precision, n)
    cov: Array = bread @ meat @ bread
    return 0.5 * (cov + cov.T), 1.0, precision


def _hide_unidentified(cov: Array, ident: Identification) -> Array:
    """NaN rows and columns with an infinite variance for what the data do not identify."""
    out: Array = cov.copy()
    hidden = ~ident.identified
    if cov.shape[0] > hidden.shape[0]:
        hidden = np.append(hidden, not ident.position_bias_identified)
    if hidden.any():
        out[hidden, :] = np.nan
        out[:, hidden] = np.nan
        out[hidden, hidden] = np.inf
    return out


# ---------------------------------------------------------------------------- results


@dataclass(frozen=True)
class _Posterior:
    """The (quasi-)posterior for P(best): its mode (``theta`` then ``h``), the normal
    approximation's precision (``information / phi`` plus the prior's), data and prior."""

    mode: Array
    precision: Array
    pairs: _Pairs
    dispersion: float
    prior: _Gaussian

    def _log_weights(
        self, n_items: int, root: Array, z: Array, scale: Array
    ) -> tuple[Array, Array]:
        """Student-t draws ``mode + root z / sqrt(scale)`` (one a column), and log weights."""
        size = self.mode.shape[0]
        x = self.mode[:, None] + root @ (z / np.sqrt(scale))
        log_proposal = (
            -0.5 * (_PROPOSAL_DF + size) * np.log1p(np.sum(z * z, axis=0) / scale / _PROPOSAL_DF)
        )
        pairs = self.pairs
        margin = x[pairs.first] - x[pairs.second]
        if size > n_items:
            margin += x[n_items]
        log_likelihood = pairs.wins @ margin - pairs.weight @ _softplus(margin)
        gap = x - self.prior.mean[:, None]
        log_prior = -0.5 * (self.prior.precision @ (gap * gap))
        return x, log_likelihood / self.dispersion + log_prior - log_proposal

    def p_best(
        self, n_items: int, n_samples: int, rng: np.random.Generator, among: Index
    ) -> Array | None:
        """Self-normalised importance sampling of P(best) (proposal: a Student t at the mode with
        the normal approximation's covariance), stopping once the leader is :func:`_settled`;
        ``None`` when the effective sample size shows the posterior too far from normal.
        """
        size = self.mode.shape[0]
        try:
            upper = cholesky(self.precision, lower=False)
        except LinAlgError:
            return None
        root = solve_triangular(upper, np.eye(size))  # precision = R^T R
        chunk = max(1, 2_000_000 // max(self.pairs.weight.shape[0] + size, 1))
        block = min(chunk, max(1, -(-n_samples // IMPORTANCE_BLOCKS)))
        least = max(IMPORTANCE_MIN_ESS, n_samples / IMPORTANCE_MIN_SHARE)
        target = max(least, n_samples / IMPORTANCE_ESS_SHARE)
        log_weights: list[Array] = []
        winners: list[NDArray[np.int64]] = []
        drawn = 0
        settled = False
        while not settled:
            # A round's random numbers are drawn at once, so an early stop changes no draw.
            count = min(chunk, n_samples - drawn % n_samples)
            z = rng.standard_normal((size, count))
            scale = rng.chisquare(_PROPOSAL_DF, count) / _PROPOSAL_DF
            done = 0
            while done < count and not settled:
                width = min(max(block, drawn), count - done)
                part = slice(done, done + width)
                x, log_weight = self._log_weights(n_items, root, z[:, part], scale[part])
                log_weights.append(log_weight)
                winners.append(among[np.argmax(x[among], axis=0)])
                done += width
                drawn += width
                all_weights = np.concatenate(log_weights)
                weights = np.exp(all_weights - all_weights.max())
                weights /= weights.sum()
                ess = 1.0 / float(np.sum(weights * weights))
                if drawn < n_samples and ess >= target:
                    settled = _settled(np.concatenate(winners), weights, n_items)
            if settled or drawn % n_samples:
                continue
            if drawn == n_samples and ess < least:
                return None
            if ess >= target or drawn >= IMPORTANCE_MAX_ROUNDS * n_samples:
                break
        result: Array = np.bincount(
            np.concatenate(winners), weights=weights, minlength=n_items
        ).astype(float)
        return result

    def p_first_best(self) -> float | None:
        """P(theta_0 > theta_1) of two items without a position term: the trapezoidal rule on
        each side of 0 of the posterior of ``d = theta_0 - theta_1``,
        ``exp(l(d) / phi - tau d^2 / 4)`` (``tau``: a strength's prior precision). ``None`` with a
        position term or a singular precision.
        """
        if self.mode.shape[0] != 2:
            return None
        try:
            variance = float(np.linalg.solve(self.precision, [1.0, -1.0]) @ [1.0, -1.0])
        except np.linalg.LinAlgError:
            return None
        if not (np.isfinite(variance) and variance > 0):
            return None
        centre = float(self.mode[0] - self.mode[1])
        curvature = float(self.prior.precision[0]) / 4.0
        half = _QUADRATURE_HALF_WIDTH * np.sqrt(variance)
        lo, hi = centre - half, centre + half
        sign = np.where(self.pairs.first == 0, 1.0, -1.0)[:, None]  # d for (0, 1), -d for (1, 0)
        sides = []
        for a, b in ((min(lo, 0.0), 0.0), (0.0, max(hi, 0.0))):
            d = np.linspace(a, b, _QUADRATURE_POINTS)
            m = sign * d
            log_likelihood = self.pairs.wins @ m - self.pairs.weight @ _softplus(m)
            sides.append((d, log_likelihood / self.dispersion - curvature * d * d))
        peak = max(float(np.max(ld)) for _, ld in sides)
        below, above = (_trapezoid(np.exp(ld - peak), d) for d, ld in sides)
        if not below + above > 0:
            return None
        return above / (below + above)


def _trapezoid(y: Array, x: Array) -> float:
    return float(np.sum((y[1:] + y[:-1]) * np.diff(x)) / 2.0)


def _settled(winners: NDArray[np.int64], weights: Array, n_items: int) -> bool:
    """Whether the weighted leader's P(best) tops every other's by ``SETTLED_Z`` errors.

    The delta-method variance ``sum w^2 (f - est)^2`` of a self-normalised estimate (Owen,
    *Monte Carlo theory, methods and examples*, 2013, sec. 9.2), for ``f`` the leader's
    indicator minus item ``k``'s, is ``(a_L + a_k) - 2 g (a_L - a_k) + g^2 sum w^2``, with
    ``g`` their gap and ``a_j`` the summed ``w^2`` of the draws ``j`` tops.

    >>> _settled(np.array([0, 0, 0, 1]), np.full(4, 0.25), 2)
    False
    """
    p = np.bincount(winners, weights=weights, minlength=n_items)
    squared = np.bincount(winners, weights=weights * weights, minlength=n_items)
    leader = int(np.argmax(p))
    gap = p[leader] - p
    variance = (squared[leader] + squared) - 2.0 * gap * (squared[leader] - squared)
    variance += gap * gap * float(squared.sum())
    gap[leader] = np.inf
    return bool(np.all(gap > SETTLED_Z * np.sqrt(np.maximum(variance, 0.0))))


@dataclass(frozen=True, eq=False)
class BradleyTerryFit:
    """A fitted Bradley-Terry model.

    Attributes
    ----------
    params : numpy.ndarray, shape (n_items,)
        Log-strengths ``theta``, centred (``sum(params) == 0``).
    position_bias : float or None
        The slot-1 advantage ``h`` in log-odds (positive: the judge favours the answer shown
        first), or ``None`` when not fitted.
    covariance : numpy.ndarray, shape (n_items, n_items)
        Covariance of ``params`` on the sum-zero subspace. Rows and columns of a parameter the
        data do not identify are NaN, with ``+inf`` on the diagonal.
    standard_errors : numpy.ndarray, shape (n_items,)
        ``sqrt(diag(covariance))``.
    position_bias_stderr : float or None
        Standard error of ``position_bias`` (``inf`` when ``h`` is not identified).
    log_likelihood : float
        The unpenalised log-likelihood at the fit.
    alpha : float
        The penalty strength used.
    converged : bool
        Whether Newton's method met ``tol`` within ``max_iter`` iterations.
    n_iter : int
        Newton iterations performed.
    identification : Identification
        Whether the unpenalised MLE exists and what the data identify (:func:`identify`).
    covariance_method : {"quasi", "sandwich", "model"}
        How ``covariance`` was estimated.
    dispersion : float
        The quasi-likelihood dispersion ``phi`` (1.0 for the other methods).
    prior : BradleyTerryPrior or None
        The prior the fit used in place of ``alpha``.
    """

    params: Array
    position_bias: float | None
    covariance: Array
    standard_errors: Array
    position_bias_stderr: float | None
    log_likelihood: float
    alpha: float
    converged: bool
    n_iter: int
    identification: Identification
    covariance_method: str = "quasi"
    dispersion: float = 1.0
    prior: BradleyTerryPrior | None = None
    _posterior: _Posterior | None = field(default=None, repr=False)

    @property
    def n_items(self) -> int:
        """Number of items."""
        return int(self.params.shape[0])

    @property
    def identified(self) -> bool:
        """Whether the MLE exists and the data identify every parameter."""
        return self.identification.ok

    def _index(self, name: str, value: int) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"Argument {name!r} must be an int, not {type(value).__name__}.")
        if not 0 <= value < self.n_items:
            raise ValueError(f"Argument {name!r} must be in [0, {self.n_items}), not {value}.")
        return int(value)

    def win_probability(
        self, i: int, j: int, *, position: Literal["neutral", "first", "second"] = "neutral"
    ) -> float:
        """Model probability that item ``i`` beats item ``j``.

        Parameters
        ----------
        i, j : int
            Item indices.
        position : {"neutral", "first", "second"}, optional
            Where ``i`` is shown: ``"first"`` adds ``h``, ``"second"`` subtracts it,
            ``"neutral"`` ignores it.

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

    def win_matrix(self) -> Array:
        """Position-neutral win probabilities, ``out[i, j] = sigmoid(theta_i - theta_j)``."""
        matrix: Array = expit(self.params[:, None] - self.params[None, :])
        return matrix

    def ranking(self) -> NDArray[np.int64]:
        """Item indices sorted from the largest to the smallest ``theta`` (stable)."""
        return np.argsort(-self.params, kind="stable").astype(np.int64)

    def p_best(
        self, n_samples: int = 10_000, seed: SeedLike = None, *, among: ArrayLike | None = None
    ) -> Array:
        """Probability that each item has the largest ``theta``, under the posterior.

        The posterior is the prior (the penalty or the fit's :class:`BradleyTerryPrior`) times
        the tempered likelihood ``exp(l(x) / phi)``. Where the data are thin it is skewed, so
        for ``"quasi"`` and ``"model"`` fits with ``alpha > 0`` or a prior, of at most
        ``IMPORTANCE_MAX_PARAMS`` parameters, draws are importance-weighted to it
        (self-normalised importance sampling; Geweke, *Econometrica* 57, 1989); otherwise, or
        on separated data, they come from ``N(params, covariance)``. Two items without a
        position term are integrated by quadrature. ``benchmarks/README.md`` has the figures.

        Parameters
        ----------
        n_samples : int, optional
            Number of posterior draws.
        seed : int or numpy.random.Generator or None, optional
            Source of randomness; ``None`` draws fresh OS entropy.
        among : array_like of int, optional
            The items that may be best (for example, all but candidates set aside); the others
            get 0. All items by default.

        Returns
        -------
        numpy.ndarray, shape (n_items,)
            Non-negative and summing to 1. Without a ``prior``, all NaN when some strength is
            not identified by the data (``alpha``'s nominal penalty would make up the number).
        """
        n_samples = check.integer("n_samples", n_samples, 1)
        n = self.n_items
        if self.prior is None and not bool(self.identification.identified.all()):
            return np.full(n, np.nan)
        return _p_best(self.params, self.covariance, self._posterior, n_samples, seed, among)

    def elo(self, *, scale: float = 400.0, base: float = 1000.0) -> Array:
        """``params`` on the Elo scale; see :func:`elo_scale`."""
        return elo_scale(self.params, scale=scale, base=base)


def _p_best(
    params: Array,
    covariance: Array,
    posterior: _Posterior | None,
    n_samples: int,
    seed: SeedLike,
    among: ArrayLike | None,
) -> Array:
    """P(best) by quadrature, importance sampling, or the normal approximation (see
    :meth:`BradleyTerryFit.p_best`); the one function every P(best) of this module uses."""
    n = int(params.shape[0])
    rng = np.random.default_rng(seed)
    pick = np.arange(n) if among is None else _among(among, n)
    if pick.size == 1:
        alone = np.zeros(n)
        alone[pick[0]] = 1.0
        return alone
    with _threads_for(n):
        if posterior is not None:
            first = posterior.p_first_best() if pick.size == 2 == n else None
            if first is not None:
                return np.array([first, 1.0 - first])
            exact = posterior.p_best(n, n_samples, rng, pick)
            if exact is not None:
                return exact
        # Adding 1/n to every entry makes the centred covariance positive definite and shifts
        # all items of a draw together, which changes no arg-max.
        shifted = covariance + 1.0 / n
        try:
            root = np.linalg.cholesky(shifted)
        except np.linalg.LinAlgError:
            values, vectors = np.linalg.eigh(shifted)
            root = vectors * np.sqrt(np.clip(values, 0.0, None))
        counts = np.zeros(n, dtype=np.int64)
        chunk = max(1, 2_000_000 // max(n, 1))
        for start in range(0, n_samples, chunk):
            draws = params + rng.standard_normal((min(chunk, n_samples - start), n)) @ root.T
            within = draws if pick.size == n else draws[:, pick]  # pick is sorted: all of them
            counts += np.bincount(pick[np.argmax(within, axis=1)], minlength=n)
    return counts / float(n_samples)


@dataclass(frozen=True, eq=False)
class BradleyTerryBootstrap:
    """Bootstrap intervals for a Bradley-Terry fit (Efron & Tibshirani, 1993).

    Attributes
    ----------
    fit : BradleyTerryFit
        The fit on the full data.
    samples : numpy.ndarray, shape (bootstrap_rounds, n_items)
        Centred ``params`` of each resample.
    lower, upper : numpy.ndarray, shape (n_items,)
        :func:`bootstrap_interval` of ``params`` at level ``confidence``.
    position_bias_samples : numpy.ndarray or None, shape (bootstrap_rounds,)
        Fitted ``h`` of each resample, or ``None``.
    position_bias_interval : tuple of float or None
        The same interval of ``h``.
    confidence : float
        The interval level.
    n_not_converged : int
        Resamples whose fit did not meet its tolerance (still included).
    resampled : {"rows", "clusters"}
        What was resampled: single comparisons, or whole clusters (e.g. prompts).
    """

    fit: BradleyTerryFit
    samples: Array
    lower: Array
    upper: Array
    position_bias_samples: Array | None
    position_bias_interval: tuple[float, float] | None
    confidence: float
    n_not_converged: int
    resampled: str = "rows"


# ---------------------------------------------------------------------------- functions


def _threads_for(n_params: int) -> AbstractContextManager[None]:
    """One BLAS thread for a prompt-sized problem; the environment's pool for a leaderboard."""
    return one_blas_thread() if n_params <= IMPORTANCE_MAX_PARAMS else nullcontext()


def _refuse(ident: Identification) -> None:
    raise ComparisonGraphError(
        "With alpha=0 the Bradley-Terry fit needs a finite, unique MLE, but "
        + ident.reason
        + ". Pass alpha > 0 (a prior), or collect the missing comparisons."
    )


def _check_options(alpha: float, max_iter: int, tol: float) -> None:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating, np.integer)):
        raise TypeError(f"Argument 'alpha' must be a real number, not {type(alpha).__name__}.")
    if not np.isfinite(alpha) or alpha < 0:
        raise ValueError(f"Argument 'alpha' must be finite and >= 0, not {alpha!r}.")
    check.integer("max_iter", max_iter, 1)
    if not np.isfinite(tol) or tol <= 0:
        raise ValueError(f"Argument 'tol' must be finite and > 0, not {tol!r}.")


@dataclass(frozen=True)
class BradleyTerryPrior:
    """What is known of the judge before a prompt's verdicts: a Gaussian prior and a dispersion.

    The one model behind adaptive selection's stopping rule and every
    :class:`~genrm_rank.results.Ranking`:

    - strengths independent ``N(0, strength_sd^2)`` (exchangeable candidates; the empirical-Bayes
      prior of Casella, *Am. Stat.* 39, 1985), so ``params`` stay centred;
    - the slot-1 term ``h ~ N(position_bias, position_bias_sd^2)``: the bias is the judge's;
    - the quasi-likelihood dispersion (Wedderburn, *Biometrika* 61, 1974) ``dispersion``, worth
      ``dispersion_df`` residual degrees of freedom, pooled with the prompt's own estimate:
      ``phi = (df_0 phi_0 + df phi_own) / (df_0 + df)`` (the scaled inverse-chi-squared update;
      Gelman et al., *Bayesian Data Analysis*, 3rd ed., sec. 3.3), so a prompt's few residual
      degrees of freedom cannot pull ``phi`` to 0; ``dispersion_df=inf`` fixes ``phi``.

    Parameters
    ----------
    strength_sd : float
        Prior standard deviation of each strength (log-odds), > 0.
    position_bias : float
        Prior mean of the slot-1 term (log-odds).
    position_bias_sd : float
        Its prior standard deviation, > 0.
    dispersion : float
        The judge's dispersion ``phi``, > 0.
    dispersion_df : float
        Degrees of freedom behind ``dispersion`` (> 0; ``inf``: known).
    """

    strength_sd: float = 2.0
    position_bias: float = 0.0
    position_bias_sd: float = 1.0
    dispersion: float = 1.0
    dispersion_df: float = np.inf

    def __post_init__(self) -> None:
        for name in ("strength_sd", "position_bias_sd", "dispersion", "dispersion_df"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)):
                raise TypeError(f"Argument {name!r} must be a number, not {type(value).__name__}.")
            if not (value > 0 and (np.isfinite(value) or name == "dispersion_df")):
                raise ValueError(f"Argument {name!r} must be finite and > 0, not {value!r}.")
        if not np.isfinite(self.position_bias):
            raise ValueError(
                f"Argument 'position_bias' must be finite, not {self.position_bias!r}."
            )

    @classmethod
    def from_profile(cls, profile: JudgeProfile) -> BradleyTerryPrior:
        """The prior a :class:`~genrm_rank.judge_profile.JudgeProfile` describes.

        >>> from genrm_rank.judge_profile import JudgeProfile
        >>> BradleyTerryPrior.from_profile(JudgeProfile(dispersion=0.3)).dispersion
        0.3
        """
        return cls(
            strength_sd=profile.strength_sd,
            position_bias=profile.position_bias,
            position_bias_sd=profile.position_bias_stderr,
            dispersion=profile.dispersion,
            dispersion_df=profile.dispersion_df,
        )

    def _gaussian(self, n_items: int, size: int) -> _Gaussian:
        mean, precision = np.zeros(size), np.full(size, self.strength_sd**-2.0)
        if size > n_items:
            mean[n_items], precision[n_items] = self.position_bias, self.position_bias_sd**-2.0
        return _Gaussian(mean, precision)

    def pooled_dispersion(self, own: float, own_df: float) -> float:
        """``(df_0 phi_0 + df phi_own) / (df_0 + df)``; ``phi_0`` alone when ``df_0`` is inf.

        >>> BradleyTerryPrior(dispersion=1.0, dispersion_df=10.0).pooled_dispersion(0.0, 10.0)
        0.5
        """
        if not np.isfinite(self.dispersion_df) or own_df <= 0 or not np.isfinite(own):
            return self.dispersion
        total = self.dispersion_df + own_df
        return (self.dispersion_df * self.dispersion + own_df * own) / total


def repeat_weights(first: ArrayLike, second: ArrayLike, correlation: float) -> Array:
    """Each verdict's weight ``1 / (1 + (k - 1) r)``, ``k`` the verdicts of its ordered pair.

    ``k`` verdicts with pairwise correlation ``r`` carry the information of
    ``k / (1 + (k - 1) r)`` independent ones (Kish's design effect, *Survey Sampling*, 1965).

    >>> repeat_weights([0, 0, 1], [1, 1, 0], 1.0).tolist()
    [0.5, 0.5, 1.0]
    """
    if not 0.0 <= correlation <= 1.0:
        raise ValueError(f"Argument 'correlation' must be in [0, 1], not {correlation!r}.")
    a = np.asarray(first, dtype=np.int64)
    b = np.asarray(second, dtype=np.int64)
    if a.size == 0:
        return np.zeros(0)
    size = int(max(a.max(), b.max())) + 1
    flat = a * size + b
    counts = np.bincount(flat, minlength=size * size)[flat].astype(np.float64)
    weights: Array = 1.0 / (1.0 + (counts - 1.0) * correlation)
    return weights


def _fit_with_prior(
    pairs: _Pairs,
    prior: BradleyTerryPrior,
    x0: Array,
    max_iter: int,
    tol: float,
    method: CovarianceMethod,
    phi0: float | None = None,
) -> tuple[_Solution, _Posterior, Array, Array | None]:
    """Mode, posterior, centred covariance and the precision's Cholesky factor under ``prior``.

    For ``"quasi"``, Newton's method runs at the prior's ``phi`` (a warm start ``phi0``: at its
    residuals' pooled ``phi``), then at each mode's pooled ``phi``, until a pass moves it by less
    than ``DISPERSION_TOL``: the fit does not depend on where it started.
    """
    if method == "sandwich":
        raise ValueError("A prior takes covariance 'quasi' or 'model', not 'sandwich'.")
    gaussian = prior._gaussian(pairs.n, pairs.size)
    phi = 1.0 if method == "model" else prior.dispersion
    x = x0
    if method == "quasi" and phi0 is not None:
        phi = max(prior.pooled_dispersion(*pairs.own_dispersion(x)), 1e-12)
    n_iter, converged = 0, False
    while n_iter < max_iter and not converged:
        scaled = _Gaussian(gaussian.mean, gaussian.precision * phi)
        step = pairs.minimise(scaled, x, max_iter - n_iter, tol)
        x, n_iter, converged = step.x, n_iter + step.n_iter, step.converged
        if method == "quasi":
            pooled = max(prior.pooled_dispersion(*pairs.own_dispersion(x)), 1e-12)
            converged = converged and abs(pooled - phi) <= DISPERSION_TOL * phi
            phi = pooled
    precision = pairs.information(x) / phi
    diagonal = _diagonal(precision)
    diagonal += gaussian.precision
    posterior = _Posterior(x.copy(), precision, pairs, phi, gaussian)
    cov, factor = _spd_centred_inverse(precision, pairs.n)
    return _Solution(x, n_iter, converged), posterior, cov, factor


@dataclass(frozen=True, eq=False)
class BradleyTerryPosterior:
    """A prompt's posterior under a :class:`BradleyTerryPrior` (:func:`bradley_terry_posterior`).

    What :func:`bradley_terry` with a ``prior`` computes, without the identification check.

    Attributes
    ----------
    params : numpy.ndarray, shape (n_items,)
        Posterior-mode strengths, centred.
    position_bias : float or None
        Posterior-mode slot-1 term, when fitted.
    covariance : numpy.ndarray, shape (n_items, n_items)
        Covariance of the centred strengths.
    dispersion : float
        The pooled dispersion ``phi``.
    mode : numpy.ndarray
        The solution as solved (``theta`` then ``h``), to warm-start the next fit.
    """

    params: Array
    position_bias: float | None
    covariance: Array
    dispersion: float
    mode: Array
    converged: bool
    n_iter: int
    _posterior: _Posterior = field(repr=False)
    _factor: Array | None = field(default=None, repr=False)

    def draws(self, size: int, rng: np.random.Generator) -> Array:
        """``size`` draws of the strengths from the normal approximation, one row a draw, by the
        precision's Cholesky factor; not centred (a common shift changes no comparison).
        """
        n = int(self.params.shape[0])
        z = rng.standard_normal((self.mode.shape[0], size))
        if self._factor is None:
            root = np.linalg.cholesky(self.covariance + 1.0 / n)
            shifted: Array = (self.params[:, None] + root @ z[:n]).T
            return shifted
        if self._factor.flags.f_contiguous:  # solve_triangular's trtrs call, unchecked
            steps, info = dtrtrs(self._factor, z, lower=0, trans=0, unitdiag=0)
            if info != 0:
                raise LinAlgError(f"singular matrix: resolution failed at diagonal {info - 1}")
        else:
            steps = solve_triangular(self._factor, z, lower=False, check_finite=False)
        out: Array = (self.mode[:n, None] + steps[:n]).T
        return out

    def p_best(
        self, n_samples: int = 10_000, seed: SeedLike = None, *, among: ArrayLike | None = None
    ) -> Array:
        """P(best) of each item, as :meth:`BradleyTerryFit.p_best` computes it."""
        posterior = self._posterior if self.mode.shape[0] <= IMPORTANCE_MAX_PARAMS else None
        return _p_best(self.params, self.covariance, posterior, int(n_samples), seed, among)


def _among(among: ArrayLike, n: int) -> Index:
    columns = np.unique(np.asarray(among, dtype=np.int64).reshape(-1))
    if columns.size == 0 or columns[0] < 0 or columns[-1] >= n:
        raise ValueError(f"Argument 'among' must name items in [0, {n}), not {columns.tolist()}.")
    return columns


def bradley_terry_posterior(
    total_weight: ArrayLike,
    total_wins: ArrayLike,
    total_wins_sq: ArrayLike,
    prior: BradleyTerryPrior,
    *,
    fit_position_bias: bool = True,
    initial: BradleyTerryPosterior | None = None,
    max_iter: int = 100,
    tol: float = 1e-9,
) -> BradleyTerryPosterior:
    """The quasi-likelihood posterior under ``prior`` from per-ordered-pair totals: the same as
    :func:`bradley_terry` with ``prior`` on comparisons with these totals, updated by adaptive
    selection after every verdict.

    Parameters
    ----------
    total_weight, total_wins, total_wins_sq : array_like, shape (n_items, n_items)
        Per ordered pair (slot-1 item, slot-2 item): the summed ``w``, ``w o`` and ``w o^2``.
    prior : BradleyTerryPrior
        The judge's prior and dispersion.
    fit_position_bias : bool, optional
        Whether the model has the slot-1 term.
    initial : BradleyTerryPosterior, optional
        A previous posterior of the same items to warm-start from.
    max_iter, tol
        As for :func:`bradley_terry`.

    Returns
    -------
    BradleyTerryPosterior
        Its mode, dispersion, covariance and P(best).
    """
    weight, wins, wins_sq = (
        np.asarray(t, dtype=np.float64) for t in (total_weight, total_wins, total_wins_sq)
    )
    n = weight.shape[0]
    size = n + (1 if fit_position_bias else 0)
    pairs = _Pairs.of(weight, wins, wins_sq, size)
    x0 = np.zeros(size) if initial is None else initial.mode.copy()
    if x0.shape != (size,):
        raise ValueError(f"Argument 'initial' must have {size} parameters, not {x0.shape[0]}.")
    phi0 = None if initial is None else initial.dispersion
    with _threads_for(size):
        solution, posterior, cov_full, factor = _fit_with_prior(
            pairs, prior, x0, max_iter, tol, "quasi", phi0
        )
    x = solution.x
    return BradleyTerryPosterior(
        params=x[:n] - x[:n].mean(),
        position_bias=float(x[n]) if fit_position_bias else None,
        covariance=cov_full[:n, :n],
        dispersion=posterior.dispersion,
        mode=x,
        converged=solution.converged,
        n_iter=solution.n_iter,
        _posterior=posterior,
        _factor=factor,
    )


def bradley_terry(
    comparisons: Comparisons,
    *,
    alpha: float = 1e-6,
    fit_position_bias: bool = False,
    initial_params: ArrayLike | None = None,
    max_iter: int = 100,
    tol: float = 1e-9,
    covariance: CovarianceMethod = "quasi",
    prior: BradleyTerryPrior | None = None,
) -> BradleyTerryFit:
    """Fit the Bradley-Terry model by penalised maximum likelihood.

    The model and penalty are this module's (Bradley & Terry, 1952; Zermelo, 1929; the slot-1
    term of Davidson & Beaver, 1977), fitted by Newton's method on per-ordered-pair totals.
    Whether the unpenalised MLE exists and what the data identify is decided exactly
    (:func:`~genrm_rank.aggregators.identification.identify`): an unidentified parameter gets
    an infinite standard error, and with ``alpha == 0`` a fit without a unique MLE raises.

    Graded outcomes vary less than Bernoulli ones, so the default covariance is the
    quasi-likelihood one (Wedderburn, 1974; McCullagh & Nelder, *Generalized Linear Models*,
    2nd ed., sec. 9.2): the information divided by the moment estimate
    ``phi = sum w (o - p)^2 / sum w p (1 - p)`` times ``sum(w) / (sum(w) - n_free)``, plus the
    prior (coverage in ``benchmarks/README.md``). ``"sandwich"`` gives the robust
    ``H^-1 J H^-1`` (Huber, 1967; White, 1982) with the HC1 factor, ``"model"`` the inverse
    Hessian.

    Parameters
    ----------
    comparisons : Comparisons
        The comparisons to fit (per-verdict weights, e.g. :func:`repeat_weights`, included).
    alpha : float, optional
        L2 penalty ``alpha * sum(params ** 2)`` as in ``choix.opt_pairwise``, also on ``h``.
    fit_position_bias : bool, optional
        Whether to fit the slot-1 advantage ``h``.
    initial_params : array_like, optional
        Starting ``theta`` (``h`` starts at 0); zeros by default.
    max_iter : int, optional
        Maximum Newton iterations.
    tol : float, optional
        Convergence when the largest coordinate of a full Newton step is below ``tol``.
    covariance : {"quasi", "sandwich", "model"}, optional
        How the covariance is estimated (see above).
    prior : BradleyTerryPrior, optional
        A judge's prior in place of ``alpha``: the fit is the mode of
        ``exp(l(x) / phi) * prior(x)`` with the pooled ``phi`` (``"sandwich"`` is refused), and
        covariance and P(best) are that posterior's even where the data identify nothing.

    Returns
    -------
    BradleyTerryFit
        Centred parameters, position bias, covariance, identification and diagnostics.

    Raises
    ------
    ComparisonGraphError
        If ``alpha == 0`` and the MLE does not exist or is not unique.

    Examples
    --------
    >>> c = Comparisons.from_pairs(2, [(0, 1), (0, 1), (0, 1), (1, 0)])
    >>> fit = bradley_terry(c, alpha=0.0)
    >>> round(float(fit.params[0] - fit.params[1]), 6)  # log(3 / 1)
    1.098612
    """
    comparisons = check.instance("comparisons", comparisons, Comparisons)
    _check_options(alpha, max_iter, tol)
    method: CovarianceMethod = check.one_of("covariance", covariance, _COVARIANCES)
    n = comparisons.n_items
    size = n + (1 if fit_position_bias else 0)
    x0 = np.zeros(size)
    if initial_params is not None:
        init = np.asarray(initial_params, dtype=np.float64)
        if init.shape != (n,) or not np.all(np.isfinite(init)):
            raise ValueError(
                f"Argument 'initial_params' must be {n} finite numbers, "
                f"not an array of shape {init.shape}."
            )
        x0[:n] = init
    if prior is not None and not isinstance(prior, BradleyTerryPrior):
        raise TypeError(
            f"Argument 'prior' must be a BradleyTerryPrior or None, not {type(prior).__name__}."
        )
    with _threads_for(size):
        weight, wins, wins_sq = _pair_sums(comparisons, comparisons.weight)
        pairs = _Pairs.of(weight, wins, wins_sq, size)
        ident = identify(weight, wins, fit_position_bias)
        if prior is not None:
            solution, posterior, cov_full, _ = _fit_with_prior(
                pairs, prior, x0, max_iter, tol, method
            )
            phi, fit_alpha = posterior.dispersion, 0.0
        else:
            if alpha == 0 and not ident.ok:
                _refuse(ident)
            ridge = _Gaussian.ridge(float(alpha), size)
            solution = pairs.minimise(ridge, x0, max_iter, tol)
            cov_full, phi, precision = _covariance(solution.x, pairs, comparisons, alpha, method)
            cov_full = _hide_unidentified(cov_full, ident)
            posterior = _Posterior(solution.x.copy(), precision, pairs, phi, ridge)
            if method == "sandwich" or alpha <= 0:
                posterior = None
            fit_alpha = float(alpha)
    x = solution.x
    params = x[:n] - x[:n].mean()
    cov = cov_full[:n, :n].copy()
    se = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    for array in (params, cov, se):
        array.setflags(write=False)
    return BradleyTerryFit(
        params=params,
        position_bias=float(x[n]) if fit_position_bias else None,
        covariance=cov,
        standard_errors=se,
        position_bias_stderr=float(np.sqrt(max(cov_full[n, n], 0.0))) if size > n else None,
        log_likelihood=float(pairs.log_likelihood(x)),
        alpha=fit_alpha,
        converged=solution.converged,
        n_iter=solution.n_iter,
        identification=ident,
        covariance_method=method,
        dispersion=phi,
        prior=prior,
        _posterior=posterior if size <= IMPORTANCE_MAX_PARAMS else None,
    )


@dataclass(frozen=True)
class _Cells:
    """Rows reduced to resampling units: cell ``c`` is ordered pair ``pair[c]``'s (an index into
    the observed pairs ``first``/``second``) share of unit ``unit[c]``; a resample adds
    ``count[unit[c]] * weight[c]`` (and ``* wins[c]``) to its pair."""

    pair: NDArray[np.int64]
    unit: NDArray[np.int64]
    weight: Array
    wins: Array
    first: NDArray[np.int64]
    second: NDArray[np.int64]
    unit_size: Array
    """Rows per unit, for the multinomial (ones for clusters, each drawn with equal chance)."""


_KEY_LIMIT = 2**62


def _cells(comparisons: Comparisons, clusters: NDArray[np.int64] | None) -> _Cells:
    n = comparisons.n_items
    flat = comparisons.first * n + comparisons.second
    w, o = comparisons.weight, comparisons.outcome
    if clusters is None:
        # Rows that share a pair, an outcome and a weight are exchangeable: one cell, counted,
        # found by one sort of an integer key (pair, outcome level, weight level).
        o_levels, o_index = np.unique(o, return_inverse=True)
        w_levels, w_index = np.unique(w, return_inverse=True)
        n_w = int(w_levels.size)
        level_of_row = o_index.reshape(-1) * n_w + w_index.reshape(-1)
        levels = np.arange(max(int(o_levels.size) * n_w, 1))
        pair_codes = None
        if n * n * levels.size >= _KEY_LIMIT:  # the key would overflow: number what occurs
            pair_codes, flat = np.unique(flat, return_inverse=True)
            levels, level_of_row = np.unique(level_of_row, return_inverse=True)
        cells, counts = np.unique(flat * levels.size + level_of_row, return_counts=True)
        pair_flat, level = np.divmod(cells, levels.size)
        level = levels[level]
        pairs, pair_of_cell = np.unique(pair_flat, return_inverse=True)
        if pair_codes is not None:
            pairs = pair_codes[pairs]
        return _Cells(
            pair=pair_of_cell.reshape(-1).astype(np.int64),
            unit=np.arange(cells.shape[0], dtype=np.int64),
            weight=w_levels[level % n_w].astype(np.float64),
            wins=(w_levels[level % n_w] * o_levels[level // n_w]).astype(np.float64),
            first=(pairs // n).astype(np.int64),
            second=(pairs % n).astype(np.int64),
            unit_size=counts.astype(np.float64),
        )
    # A cluster is resampled whole, so its rows on one pair add up to one cell.
    pairs, pair_of_row = np.unique(flat, return_inverse=True)
    key = clusters * pairs.shape[0] + pair_of_row.reshape(-1)
    cells, cell_of_row = np.unique(key, return_inverse=True)
    return _Cells(
        pair=(cells % pairs.shape[0]).astype(np.int64),
        unit=(cells // pairs.shape[0]).astype(np.int64),
        weight=weighted_bincount(cell_of_row, w, cells.shape[0]),
        wins=weighted_bincount(cell_of_row, w * o, cells.shape[0]),
        first=(pairs // n).astype(np.int64),
        second=(pairs % n).astype(np.int64),
        unit_size=np.ones(int(clusters.max()) + 1 if clusters.size else 0),
    )


class _Resampler:
    """Refits resampled pair totals from the full fit by chord-Newton steps (the full fit's
    Hessian, factorised once; sparse design products); :meth:`_Pairs.minimise` finishes if the
    steps stop shrinking."""

    def __init__(self, cells: _Cells, n: int, x_hat: Array, alpha: float, tol: float) -> None:
        self.cells, self.n, self.x_hat, self.alpha, self.tol = cells, n, x_hat, alpha, tol
        self.n_pairs = cells.first.shape[0]
        self.size = x_hat.shape[0]
        # The design (a row a pair: +1 first, -1 second, +1 h); pool sums units into pairs.
        cols = [cells.first, cells.second] + ([np.full(self.n_pairs, n)] if self.size > n else [])
        values = np.repeat([1.0, -1.0, 1.0][: len(cols)], self.n_pairs)
        rows = np.tile(np.arange(self.n_pairs), len(cols))
        self.design = csr_matrix(
            (values, (rows, np.concatenate(cols))), shape=(self.n_pairs, self.size)
        )
        self.design_t = self.design.T.tocsr()
        self.pool = csr_matrix(
            (
                np.concatenate([cells.weight, cells.wins]),
                (np.concatenate([cells.pair, cells.pair + self.n_pairs]), np.tile(cells.unit, 2)),
            ),
            shape=(2 * self.n_pairs, cells.unit_size.shape[0]),
        )
        full = weighted_bincount(
            cells.pair, cells.weight * cells.unit_size[cells.unit], self.n_pairs
        )
        fitted = self.pairs(full, full, x_hat.shape[0])
        self.p_hat = fitted.probabilities(x_hat)
        hess = _with_centring(fitted.hessian(x_hat, _Gaussian.ridge(alpha, self.size)), n)
        try:
            self.factor = lu_factor(hess)
        except (LinAlgError, ValueError):
            self.factor = lu_factor(hess + 1e-12 * np.eye(self.size))

    def pairs(self, weight: Array, wins: Array, size: int) -> _Pairs:
        return _Pairs(self.cells.first, self.cells.second, weight, wins, wins, self.n, size)

    def totals(self, counts: Array) -> tuple[Array, ...]:
        """Per-pair weight and wins of a resample with ``counts`` draws of each unit."""
        both: Array = self.pool @ counts
        return both[: self.n_pairs], both[self.n_pairs :]

    def dense(self, weight: Array, wins: Array) -> tuple[Array, Array]:
        total_weight, total_wins = np.zeros((self.n, self.n)), np.zeros((self.n, self.n))
        total_weight[self.cells.first, self.cells.second] = weight
        total_wins[self.cells.first, self.cells.second] = wins
        return total_weight, total_wins

    def refit(self, weight: Array, wins: Array, max_iter: int) -> tuple[Array, bool]:
        x = self.x_hat.copy()
        p = self.p_hat
        previous = np.inf
        for _ in range(max_iter):
            step = -lu_solve(
                self.factor, self.design_t @ (weight * p - wins) + 2.0 * self.alpha * x
            )
            step[: self.n] -= step[: self.n].mean()
            size = float(np.max(np.abs(step), initial=0.0))
            if not size < 0.5 * previous:
                break
            x = x + step
            if size < self.tol:
                return x, True
            previous = size
            p = expit(self.design @ x)
        ridge = _Gaussian.ridge(self.alpha, self.size)
        solution = self.pairs(weight, wins, self.size).minimise(ridge, x, max_iter, self.tol)
        return solution.x, solution.converged


def _unit_counts(unit_size: Array, rng: np.random.Generator) -> Callable[[], Array]:
    """A sampler of one resample's count of each unit, multinomial(total, unit_size / total):
    numpy's where many rows share few units, else the rows drawn uniformly and counted."""
    sizes = unit_size.astype(np.int64)
    total = int(sizes.sum())
    n_units = sizes.shape[0]
    if total > 16 * n_units:
        shares = unit_size / float(total)
        return lambda: rng.multinomial(total, shares).astype(np.float64)
    slot_unit = np.repeat(np.arange(n_units, dtype=np.int32), sizes)

    def by_rows() -> Array:
        drawn = slot_unit[rng.integers(0, total, total)]
        return np.bincount(drawn, minlength=n_units).astype(np.float64)

    return by_rows


def _check_clusters(clusters: ArrayLike | None, m: int) -> NDArray[np.int64] | None:
    if clusters is None:
        return None
    array = np.asarray(clusters)
    if array.shape != (m,):
        raise ValueError(
            f"Argument 'clusters' must have one label per comparison ({m}), "
            f"not shape {array.shape}."
        )
    _, labels = np.unique(array, return_inverse=True)
    return labels.reshape(-1).astype(np.int64)


def bootstrap_interval(
    samples: ArrayLike, estimate: ArrayLike, confidence: float
) -> tuple[Array, Array]:
    """Median-recentred percentile interval: always holds its own point estimate.

    ``estimate + quantile(samples - median(samples))`` at the two tails: the percentile method
    (Efron & Tibshirani, *An Introduction to the Bootstrap*, 1993, ch. 13) without the
    bootstrap's median bias (ch. 10). Chosen over the basic, BC and normal intervals by
    coverage (``benchmarks/bootstrap_intervals.py``; figures in ``benchmarks/README.md``).

    Parameters
    ----------
    samples : array_like, shape (n_rounds, n_items)
        The resampled estimates.
    estimate : array_like, shape (n_items,)
        The full-data estimate.
    confidence : float
        Interval level in ``(0, 1)``.

    Returns
    -------
    lower, upper : numpy.ndarray, shape (n_items,)
        The interval bounds; ``lower <= estimate <= upper`` always.

    Examples
    --------
    >>> lower, upper = bootstrap_interval([[0.0], [0.0], [0.0], [1.0], [2.0]], [-0.5], 0.5)
    >>> float(lower[0]), float(upper[0])
    (-0.5, 0.5)
    """
    draws = np.asarray(samples, dtype=np.float64)
    centre = np.asarray(estimate, dtype=np.float64)
    tail = (1.0 - confidence) / 2.0
    shifted = draws - np.median(draws, axis=0)
    low, high = np.quantile(shifted, [tail, 1.0 - tail], axis=0)
    # The median lies between the two quantiles, so low <= 0 <= high up to rounding.
    lower: Array = centre + np.minimum(low, 0.0)
    upper: Array = centre + np.maximum(high, 0.0)
    return lower, upper


def bootstrap_bradley_terry(
    comparisons: Comparisons,
    *,
    bootstrap_rounds: int = 1000,
    seed: SeedLike = None,
    alpha: float = 1e-6,
    fit_position_bias: bool = False,
    confidence: float = 0.95,
    max_iter: int = 100,
    tol: float = 1e-9,
    clusters: ArrayLike | None = None,
    resample_tol: float = 1e-4,
    covariance: CovarianceMethod = "quasi",
) -> BradleyTerryBootstrap:
    """Bootstrap intervals for :func:`bradley_terry`, at leaderboard scale.

    Resamples the comparisons with replacement (Efron & Tibshirani, *An Introduction to the
    Bootstrap*, 1993), refits each resample and reports :func:`bootstrap_interval`, as Chatbot
    Arena does (Chiang et al., 2024). With ``clusters`` (e.g. prompts) whole clusters are
    resampled (Davison & Hinkley, *Bootstrap Methods*, 1997, sec. 3.8), as Arena-Hard does. A
    resample is one multinomial draw over cells of exchangeable rows, refitted from the full fit.

    Parameters
    ----------
    comparisons : Comparisons
        The comparisons to fit.
    bootstrap_rounds : int, optional
        Number of resamples (at least 1).
    seed : int or numpy.random.Generator or None, optional
        Source of randomness; ``None`` draws fresh OS entropy.
    alpha, fit_position_bias, max_iter, tol, covariance
        As for :func:`bradley_terry` (``tol`` applies to the full fit).
    confidence : float, optional
        Interval level in ``(0, 1)``.
    clusters : array_like, optional
        One label per comparison (e.g. prompt ids); clusters are then resampled whole.
    resample_tol : float, optional
        Convergence of each resample's fit (largest step; ``benchmarks/README.md``).

    Returns
    -------
    BradleyTerryBootstrap
        The full-data fit, the resampled parameters and their intervals.

    Raises
    ------
    ComparisonGraphError
        If ``alpha == 0`` and the MLE does not exist for the data or for some resample.
    """
    comparisons = check.instance("comparisons", comparisons, Comparisons)
    _check_options(alpha, max_iter, tol)
    bootstrap_rounds = check.integer("bootstrap_rounds", bootstrap_rounds, 1)
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"Argument 'confidence' must be in (0, 1), not {confidence!r}.")
    if not (np.isfinite(resample_tol) and resample_tol > 0):
        raise ValueError(f"Argument 'resample_tol' must be finite and > 0, not {resample_tol!r}.")
    labels = _check_clusters(clusters, len(comparisons))
    rng = np.random.default_rng(seed)
    fit = bradley_terry(
        comparisons,
        alpha=alpha,
        fit_position_bias=fit_position_bias,
        max_iter=max_iter,
        tol=tol,
        covariance=covariance,
    )
    n = comparisons.n_items
    x_hat = np.append(fit.params, [] if fit.position_bias is None else [fit.position_bias])
    draws = np.empty((bootstrap_rounds, x_hat.shape[0]))  # centred theta, then h
    not_converged = 0
    if len(comparisons) == 0:
        draws[:] = x_hat
    else:
        cells = _cells(comparisons, labels)
        resampler = _Resampler(cells, n, x_hat, float(alpha), float(resample_tol))
        draw = _unit_counts(cells.unit_size, rng)
        for b in range(bootstrap_rounds):
            weight, wins = resampler.totals(draw())
            if alpha == 0:
                ident = identify(*resampler.dense(weight, wins), fit_position_bias)
                if not ident.ok:
                    _refuse(ident)
            x, converged = resampler.refit(weight, wins, max_iter)
            not_converged += not converged
            draws[b] = x
            draws[b, :n] = x[:n] - x[:n].mean()
    lower, upper = bootstrap_interval(draws, x_hat, confidence)  # column by column
    return BradleyTerryBootstrap(
        fit=fit,
        samples=np.ascontiguousarray(draws[:, :n]),
        lower=lower[:n],
        upper=upper[:n],
        position_bias_samples=draws[:, n].copy() if fit_position_bias else None,
        position_bias_interval=(float(lower[n]), float(upper[n])) if fit_position_bias else None,
        confidence=float(confidence),
        n_not_converged=not_converged,
        resampled="clusters" if labels is not None else "rows",
    )


def elo_scale(params: ArrayLike, *, scale: float = 400.0, base: float = 1000.0) -> Array:
    """Map natural-log Bradley-Terry strengths to Elo points.

    ``rating = base + scale * log10(e) * (theta - mean(theta))`` along the last axis: ``scale``
    points mean 10:1 odds (Elo, 1978), and the geometric-mean strength sits at ``base``.

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
    ratings: Array = base + scale * _LOG10_E * centred
    return ratings
