"""Adaptive best-of-N: top-two Thompson sampling on a Bradley-Terry posterior.

A fixed tournament spends the same calls on every prompt, whether its best candidate is plain
after a few verdicts or hard to tell from the runner-up. This strategy spends them where they
decide the pick, and stops as soon as the pick is certain:

1. **Posterior.** Strengths ``theta`` and the judge's slot-1 advantage ``gamma`` (log-odds) get
   a Gaussian prior; every usable verdict is a soft Bradley-Terry outcome with mean
   ``p = sigmoid(theta_first - theta_second + gamma)`` and quasi-likelihood variance
   ``phi p (1 - p)`` (Wedderburn 1974); the posterior is its Laplace approximation (Newton's
   method to the mode, the inverse Hessian as covariance).
2. **Next pair: top-two Thompson sampling** (Russo 2016). Draw ``theta`` from the posterior;
   its arg-max is the *leader*. Draw again until another candidate tops the draw; that one is
   the *challenger*. The leader meets the challenger. Pairs between likely-best candidates are
   asked for most, pairs no draw cares about are never paid for. A judge that copies itself
   (temperature 0, a replayed record) gains nothing from a repeat of an ordered pair: the run
   pools how far repeats differ from the last verdict (:meth:`Adaptive.judge_repeat_correlation`),
   a pair's repeats weigh as ``k / (1 + (k - 1) r)`` verdicts, and a duel is kept with the
   probability that its call is new information, else drawn again.
3. **Stop** when the posterior mean's leader has ``P(best) >= 1 - delta`` (``delta``), when the
   budget is spent, or at ``2 N (N - 1)`` calls (each ordered pair twice), whichever is first.
4. **Position bias is the judge's, not the prompt's.** The prior on ``gamma`` is centred on the
   slot-1 win share pooled over every other prompt of the run (the orchestrator's
   :class:`~genrm_rank.orchestrator.JudgeStatistics`, handed over by
   :meth:`Adaptive.bind_judge_statistics`), with the precision of that many verdicts; so from a
   prompt's first verdict a slot-1 win counts for what it is worth. So are the judge's
   **dispersion** ``phi`` and the **prior spread** of strengths: each finished prompt pools its
   fit (:meth:`Adaptive.result`) into the same statistics, and later prompts use the run's
   moment estimate ``phi = sum (o - p)^2 / sum p (1 - p)`` (:meth:`Adaptive.judge_dispersion`)
   and its empirical-Bayes strength spread (:meth:`Adaptive.strength_sd`). A graded or tied
   verdict varies less than a Bernoulli outcome (``phi`` about 0.3 for the simulated GenRM,
   0.4 for GPT-4 on Vicuna), so with ``phi = 1`` the posterior was under-confident and its
   stopping rule paid for certainty it already had; with the pooled ``phi`` P(best) is about
   calibrated on the simulated judges (``benchmarks/README.md``).
5. **Swap only where it pays** (``swap="auto"``). A pair is first judged in one order (the
   order it was judged in less often; a seeded coin when equal). The reverse order is asked for
   at once only while the bias is not known to within ``bias_tolerance`` log-odds, or when the
   verdict is close (ranking 3, 3.5 or 4: slot-1 bias could have decided it). A pair that
   decides the result is one Thompson sampling keeps drawing, and its next visit takes the order
   judged less often, i.e. the reverse; asking for the reverse of decisive pairs at once as well
   lost accuracy at equal calls on the Vicuna record (``benchmarks/README.md``).
6. **Batches.** Up to ``batch`` calls of a prompt are in flight at once, all drawn from the same
   posterior (distinct pairs where possible), so that a serving window stays full; a larger batch
   spends a few calls more for the same accuracy (``benchmarks/README.md`` measures it).
7. **Ties and failures** never take a coin while evidence can decide: a tie verdict (3.5) is an
   outcome of 0.5, a failed verdict adds nothing and the pair stays eligible, and an exactly tied
   top keeps ``P(best)`` below the target, so more pairs are asked for. Only when the budget ends
   with the top exactly tied does a seeded coin pick among them, and :meth:`Adaptive.result` says
   so in its notes.

References
----------
Russo, "Simple Bayesian Algorithms for Best Arm Identification", COLT 2016 (arXiv:1602.08448):
top-two Thompson sampling. Wu & Liu, "Double Thompson Sampling for Dueling Bandits", NeurIPS
2016 (arXiv:1604.07101): the leader/challenger duel. Bradley & Terry, "Rank analysis of
incomplete block designs", Biometrika 39 (1952). Zheng et al., "Judging LLM-as-a-Judge with
MT-Bench and Chatbot Arena", 2023 (arXiv:2306.05685), for position bias and swapping.
Wedderburn, "Quasi-likelihood functions, generalized linear models, and the Gauss-Newton
method", Biometrika 61 (1974): the dispersion. Casella, "An introduction to empirical Bayes data
analysis", The American Statistician 39 (1985): the pooled prior spread.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from genrm_rank.blas_threads import one_blas_thread
from genrm_rank.judge_profile import JudgeProfile
from genrm_rank.strategies.base import Judgement, PairCall, StrategyOutcome, check_swap
from genrm_rank.verdict import PreferenceMapping, Verdict, linear_preference

__all__ = [
    "DEFAULT_DELTA",
    "Adaptive",
    "default_budget",
    "max_calls",
]

DEFAULT_DELTA = 0.05
"""Default confidence target: stop once the pick's P(best) reaches 0.95."""
PRIOR_SD = 2.0
"""Prior standard deviation of each strength (log-odds) until the run has pooled a spread."""
POOL_PRIOR_DF = 10.0
"""Degrees of freedom the defaults (``PRIOR_SD``, dispersion 1) count for in a pooled estimate."""
MIN_DISPERSION = 1e-2
"""Floor on the pooled dispersion (a judge that never errs would otherwise give 0)."""
GAMMA_PRIOR_SD = 1.0
"""Prior standard deviation of the slot-1 advantage when nothing is pooled yet."""
CLOSE_MARGIN = 0.1 + 1e-9
"""A verdict whose preference is within this of 0.5 is close (rankings 3, 3.5 and 4)."""
TIE_TOLERANCE = 1e-9
"""Posterior means within this distance are an exact tie."""
_MAX_RESAMPLES = 64


class _PooledStatistics(Protocol):
    """What is read from the orchestrator's pooled judge statistics."""

    first_slot_wins: int
    second_slot_wins: int
    residual_squares: float
    bernoulli_variance: float
    strength_squares: float
    strength_df: float
    repeat_squares: float
    repeat_variance: float

    def add_repeat(self, squares: float, variance: float) -> None: ...

    def add_fit(
        self, residuals: float, variance: float, squares: float, strength_df: float
    ) -> None: ...


def max_calls(n_items: int) -> int:
    """The hard cap, ``2 N (N - 1)``: each ordered pair judged twice.

    >>> max_calls(8)
    112
    """
    return 2 * n_items * (n_items - 1)


def default_budget(n_items: int) -> int:
    """Calls allowed when no budget is given: ``4 N``, at most :func:`max_calls`.

    >>> [default_budget(n) for n in (2, 3, 8, 64)]
    [4, 12, 32, 256]
    """
    return min(4 * n_items, max_calls(n_items))


def _positive_int(name: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"Argument '{name}' must be an int, not {type(value).__name__}.")
    if value < low:
        raise ValueError(f"Argument '{name}' must be at least {low}, not {value}.")
    return int(value)


def _optional_positive(name: str, value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"Argument '{name}' must be a number or None, not {type(value).__name__}.")
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"Argument '{name}' must be finite and > 0, not {value}.")
    return float(value)


def _covariance_root(cov: NDArray[np.float64]) -> NDArray[np.float64]:
    """``L`` with ``L L^T = cov``: Cholesky, or the eigendecomposition for a singular ``cov``."""
    try:
        root = np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        values, vectors = np.linalg.eigh(cov)
        root = vectors * np.sqrt(np.clip(values, 0.0, None))
    result: NDArray[np.float64] = np.asarray(root, dtype=np.float64)
    return result


class Adaptive:
    """Top-two Thompson sampling for the best candidate, with a learnt position bias.

    Parameters
    ----------
    n_items : int
        Number of candidates (>= 2).
    swap : {"auto", "both", "random", "none"}
        ``"auto"`` (default): the reverse order only where it pays (see the module). ``"both"``:
        every pair's first visit is judged in both orders. ``"random"``: one order per visit,
        judged less often first. ``"none"``: the leader always in slot 1, no reverse order.
    samples : int
        Must be 1: the strategy chooses its own repeats.
    seed : int or numpy.random.Generator, optional
        Source of every random choice (posterior draws, order coins, the tie coin).
    budget : int, optional
        Most calls this prompt may make. Without it, an orchestrator budget (the ``limit`` of
        the first :meth:`next_pairs`) is the budget, else :func:`default_budget` (``4 N``);
        with it, an orchestrator budget can only lower it. Never above :func:`max_calls`.
    delta : float
        Stop once the pick's P(best) is at least ``1 - delta``; in (0, 1). With the pooled
        dispersion P(best) is about calibrated on the simulated judges (of the runs stopped at
        P(best) >= 0.95, 0.98 are right), so ``delta`` is the error rate one accepts. On GPT-4's
        Vicuna verdicts (N = 8, 5 seeds x 80 prompts, driven as the orchestrator drives it) the
        default agrees with the full both-orders round-robin 0.993 ± 0.009 of the time at 26.9
        calls; ``delta=0.1`` 0.983 ± 0.013 at 22.7; ``delta=0.3`` (stop at P(best) 0.7)
        0.950 ± 0.021 at 15.2 (0.932 ± 0.025 at 13.2 with ``batch=1``); a budget of 14 calls
        0.905 ± 0.029, where a both-orders knockout gets 0.895 ± 0.030. On a noiseless judge
        ``delta=0.3`` stops after about 9 calls (N = 8) right 0.94 of the time, as its P(best)
        says (``benchmarks/README.md``).
    batch : int, optional
        Calls in flight at once for this prompt; default ``max(1, N // 4)``.
    bias_tolerance : float
        Standard error (log-odds) under which the pooled position bias counts as known.
    p_best_draws : int
        Posterior draws for P(best) at each stopping check.
    preference_mapping : callable, optional
        Ranking (1..6) to preference (0..1).
    prior_sd : float, optional
        Prior standard deviation of each strength; default: pooled over the run
        (:meth:`strength_sd`, ``PRIOR_SD`` = 2 before anything is pooled).
    dispersion : float, optional
        The judge's dispersion ``phi``; default: pooled over the run (:meth:`judge_dispersion`,
        1 before anything is pooled).
    repeat_correlation : float, optional
        How much a repeat of an ordered pair copies its last verdict, in [0, 1]; default: pooled
        over the run (:meth:`judge_repeat_correlation`, 0 before anything is pooled).
        ``prior_sd=2.0, dispersion=1.0, repeat_correlation=0.0`` is the strategy as it was
        before any of the three was pooled.
    profile : JudgeProfile, optional
        What the judge is like (:mod:`genrm_rank.judge_profile`): its slot-1 bias and standard
        error, dispersion, strength spread and repeat correlation. Given, it replaces the run's
        pooled statistics for each of them; ``prior_sd``, ``dispersion`` and
        ``repeat_correlation`` still override it.
    """

    def __init__(
        self,
        n_items: int,
        *,
        swap: str = "auto",
        samples: int = 1,
        seed: int | np.random.Generator | None = None,
        budget: int | None = None,
        delta: float = DEFAULT_DELTA,
        batch: int | None = None,
        bias_tolerance: float = 0.2,
        p_best_draws: int = 1000,
        preference_mapping: PreferenceMapping = linear_preference,
        prior_sd: float | None = None,
        dispersion: float | None = None,
        repeat_correlation: float | None = None,
        profile: JudgeProfile | None = None,
    ) -> None:
        self.n_items = _positive_int("n_items", n_items, 2)
        self.swap = check_swap(swap)
        if _positive_int("samples", samples, 1) != 1:
            raise ValueError(
                f"Argument 'samples' must be 1 for the adaptive strategy (it chooses its own "
                f"repeats), not {samples}."
            )
        self.rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        cap = max_calls(self.n_items)
        self.budget = (
            default_budget(self.n_items) if budget is None else _positive_int("budget", budget, 0)
        )
        self.budget = min(self.budget, cap)
        self._default_budget = budget is None
        if isinstance(delta, bool) or not isinstance(delta, (int, float)):
            raise TypeError(f"Argument 'delta' must be a number, not {type(delta).__name__}.")
        if not 0.0 < delta < 1.0:
            raise ValueError(f"Argument 'delta' must be in (0, 1), not {delta}.")
        self.delta = float(delta)
        if isinstance(bias_tolerance, bool) or not isinstance(bias_tolerance, (int, float)):
            raise TypeError(
                f"Argument 'bias_tolerance' must be a number, not {type(bias_tolerance).__name__}."
            )
        if not bias_tolerance > 0:
            raise ValueError(f"Argument 'bias_tolerance' must be > 0, not {bias_tolerance}.")
        self.bias_tolerance = float(bias_tolerance)
        self.batch = (
            max(1, self.n_items // 4) if batch is None else _positive_int("batch", batch, 1)
        )
        self.p_best_draws = _positive_int("p_best_draws", p_best_draws, 1)
        if not callable(preference_mapping):
            raise TypeError(
                "Argument 'preference_mapping' must be callable, "
                f"not {type(preference_mapping).__name__}."
            )
        self.preference_mapping = preference_mapping
        self.prior_sd = _optional_positive("prior_sd", prior_sd)
        self.dispersion = _optional_positive("dispersion", dispersion)
        if repeat_correlation is not None and (
            isinstance(repeat_correlation, bool)
            or not isinstance(repeat_correlation, (int, float))
            or not 0.0 <= repeat_correlation <= 1.0
        ):
            raise ValueError(
                "Argument 'repeat_correlation' must be None or in [0, 1], "
                f"not {repeat_correlation!r}."
            )
        self.repeat_correlation = None if repeat_correlation is None else float(repeat_correlation)
        if profile is not None and not isinstance(profile, JudgeProfile):
            raise TypeError(
                f"Argument 'profile' must be a JudgeProfile or None, not {type(profile).__name__}."
            )
        self.profile = profile
        self._pooled_fit = False
        self._stats: _PooledStatistics | None = None
        self._own_first = 0
        self._own_second = 0
        self._first: list[int] = []
        self._second: list[int] = []
        self._outcome: list[float] = []
        self._judgements: list[Judgement] = []
        self._pending: set[PairCall] = set()
        self._followups: list[tuple[int, int]] = []
        self._order_count: dict[tuple[int, int], int] = {}
        self._issued = 0
        self._stopped = False
        self._limit_seen = False
        self._notes: list[str] = []
        self._mode: NDArray[np.float64] = np.zeros(self.n_items + 1)
        self._cov: NDArray[np.float64] | None = None
        self._fitted_at: tuple[int, float, float, float, float, float] | None = None
        self._usable: dict[tuple[int, int], int] = {}
        self._last: dict[tuple[int, int], float] = {}
        self._p_best: NDArray[np.float64] | None = None
        self._root: NDArray[np.float64] | None = None
        """The strengths' covariance factor of the current fit (reset with it)."""

    # -- the judge's pooled statistics --------------------------------------------------------
    def bind_judge_statistics(self, stats: _PooledStatistics) -> None:
        """Use the run's pooled verdict counts (slot-1 and slot-2 wins) for the bias prior."""
        for name in ("first_slot_wins", "second_slot_wins"):
            if not isinstance(getattr(stats, name, None), int):
                raise TypeError(
                    f"Argument 'stats' must have an int attribute {name!r} "
                    f"(a JudgeStatistics), not {type(stats).__name__}."
                )
        for method in ("add_fit", "add_repeat"):
            if not callable(getattr(stats, method, None)):
                raise TypeError(
                    f"Argument 'stats' must have an {method!r} method (a JudgeStatistics), "
                    f"not {type(stats).__name__}."
                )
        self._stats = stats

    def _bias_prior(self) -> tuple[float, float]:
        """Mean and standard deviation of the prior on ``gamma``: the profile's, else pooled."""
        if self.profile is not None:
            return self.profile.position_bias, self.profile.position_bias_stderr
        if self._stats is None:
            return 0.0, GAMMA_PRIOR_SD
        first = max(self._stats.first_slot_wins - self._own_first, 0)
        second = max(self._stats.second_slot_wins - self._own_second, 0)
        share = (first + 1.0) / (first + second + 2.0)
        mean = math.log(share / (1.0 - share))
        sd = 1.0 / math.sqrt((first + second + 2.0) * share * (1.0 - share))
        return mean, min(sd, GAMMA_PRIOR_SD)

    def strength_sd(self) -> float:
        """Prior standard deviation of each strength: ``prior_sd``, else pooled over the run.

        The empirical-Bayes (type-II) estimate of a hierarchical normal prior by Laplace-EM: the
        posterior expectation of ``sum_i (theta_i - mean theta)^2`` over every finished prompt,
        per degree of freedom (``N - 1`` a prompt), with ``PRIOR_SD`` counted as
        ``POOL_PRIOR_DF`` degrees of freedom (Casella, "An introduction to empirical Bayes data
        analysis", Am. Stat. 39, 1985; Dempster, Laird & Rubin 1977).
        """
        if self.prior_sd is not None:
            return self.prior_sd
        if self.profile is not None:
            return self.profile.strength_sd
        squares, df = POOL_PRIOR_DF * PRIOR_SD**2, POOL_PRIOR_DF
        if self._stats is not None:
            squares += self._stats.strength_squares
            df += self._stats.strength_df
        return math.sqrt(squares / df)

    def judge_dispersion(self) -> float:
        """The judge's dispersion ``phi``: ``dispersion``, else pooled over the run.

        Quasi-likelihood (Wedderburn, "Quasi-likelihood functions, generalized linear models,
        and the Gauss-Newton method", Biometrika 61, 1974): a graded or tied outcome ``o`` has
        variance ``phi p (1 - p)``, not the Bernoulli ``p (1 - p)``, and each verdict carries
        ``1 / phi`` of a Bernoulli outcome's information. Moment estimate, pooled over every
        finished prompt of the run (a property of the judge, like its position bias):
        ``sum (o - p)^2 / sum p (1 - p)``, each prompt's denominator scaled by its residual
        degrees of freedom over its verdicts, with ``phi = 1`` counted as ``POOL_PRIOR_DF``
        verdicts at ``p = 1/2``; at least ``MIN_DISPERSION``. A ratio of sums, not Pearson's
        sum of ratios, which one surprising verdict at a fitted ``p`` near 0 or 1 would swamp.
        """
        if self.dispersion is not None:
            return self.dispersion
        if self.profile is not None:
            return self.profile.dispersion
        residuals = variance = POOL_PRIOR_DF * 0.25
        if self._stats is not None:
            residuals += self._stats.residual_squares
            variance += self._stats.bernoulli_variance
        return max(residuals / variance, MIN_DISPERSION)

    def judge_repeat_correlation(self) -> float:
        """How much a repeat of an ordered pair copies its last verdict, pooled over the run.

        ``repeat_correlation`` when given. The intra-class correlation of two verdicts of the
        same ordered pair, by moments:
        ``r = 1 - sum (o_2 - o_1)^2 / (phi sum 2 p (1 - p))`` (independent repeats differ by
        ``2 phi p (1 - p)`` on average, copies by 0), with independent repeats (``r = 0``)
        counted as ``POOL_PRIOR_DF`` repeats at ``p = 1/2``; clipped to [0, 1]. A judge sampled
        at temperature 0, or a replayed record, repeats itself (``r = 1``): its ``k`` verdicts of
        one ordered pair are worth ``k / (1 + (k - 1) r)`` (Kish's design effect, "Survey
        Sampling", 1965), one verdict, and a repeat is worth asking only as far as it is new.
        """
        if self.repeat_correlation is not None:
            return self.repeat_correlation
        if self.profile is not None:
            return self.profile.repeat_correlation
        phi = self.judge_dispersion()
        squares, variance = POOL_PRIOR_DF * 0.5 * phi, POOL_PRIOR_DF * 0.5
        if self._stats is not None:
            squares += self._stats.repeat_squares
            variance += self._stats.repeat_variance
        return min(max(1.0 - squares / (phi * variance), 0.0), 1.0)

    def _weights(self, rho: float) -> NDArray[np.float64]:
        """Each usable verdict's weight ``1 / (1 + (k - 1) rho)``, ``k`` its ordered pair's."""
        pairs = list(zip(self._first, self._second, strict=True))
        k = np.array([self._usable[pair] for pair in pairs], dtype=float)
        weights: NDArray[np.float64] = 1.0 / (1.0 + (k - 1.0) * rho)
        return weights

    def _worth(self, first: int, second: int) -> float:
        """Information a call of this ordered pair adds, in fresh verdicts (1 when unjudged)."""
        k = float(self._usable.get((first, second), 0))
        if not k:
            return 1.0
        rho = self.judge_repeat_correlation()
        return (k + 1.0) / (1.0 + k * rho) - k / (1.0 + (k - 1.0) * rho)

    def _pool_fit(self) -> None:
        """Hand this prompt's residuals and strength spread to the run, once."""
        if self._pooled_fit or self._stats is None or not self._outcome:
            return
        self._pooled_fit = True
        mode, cov = self._fit()
        n = self.n_items
        design = self._design()
        y = np.asarray(self._outcome, dtype=float)
        w = self._weights(self.judge_repeat_correlation())
        p = 1.0 / (1.0 + np.exp(-(design @ mode)))
        weight = w * p * (1.0 - p)
        residuals = float(np.sum(w * (y - p) ** 2))
        # Effective parameters: the trace of the hat matrix, cov @ (X' W X / phi).
        info = (design.T * weight) @ design / self.judge_dispersion()
        used = float(np.sum(w))
        edf = min(float(np.trace(cov @ info)), used)
        variance = float(np.sum(weight)) * (used - edf) / used
        centre = np.eye(n) - 1.0 / n
        theta = centre @ mode[:n]
        squares = float(theta @ theta + np.trace(centre @ cov[:n, :n] @ centre))
        self._stats.add_fit(residuals, variance, squares, float(n - 1))

    @property
    def bias_known(self) -> bool:
        """Whether the pooled slot-1 advantage is known to within ``bias_tolerance``."""
        return self._bias_prior()[1] <= self.bias_tolerance

    # -- posterior ---------------------------------------------------------------------------
    # The fits and draws work on a few candidates, where the BLAS pool would only spin: every
    # public entry point (next_pairs, record, done, result, p_best, posterior) runs on one BLAS
    # thread (genrm_rank.blas_threads), and these private steps run inside one of them.
    def _fit(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Laplace posterior mode and covariance over ``(theta, gamma)``."""
        n = self.n_items
        m = len(self._outcome)
        g_mean, g_sd = self._bias_prior()
        sd, phi, rho = self.strength_sd(), self.judge_dispersion(), self.judge_repeat_correlation()
        key = (m, g_mean, g_sd, sd, phi, rho)
        if self._cov is not None and self._fitted_at == key:
            return self._mode, self._cov
        precision = np.full(n + 1, 1.0 / sd**2)
        precision[n] = 1.0 / g_sd**2
        prior_mean = np.zeros(n + 1)
        prior_mean[n] = g_mean
        x = self._mode.copy()
        design = self._design()
        y = np.asarray(self._outcome, dtype=float)
        w = self._weights(rho) / phi

        def log_post(z: NDArray[np.float64]) -> float:
            eta = design @ z
            fit = y * np.logaddexp(0.0, -eta) + (1.0 - y) * np.logaddexp(0.0, eta)
            return float(-np.sum(w * fit) - 0.5 * np.sum(precision * (z - prior_mean) ** 2))

        # Newton's method with step halving (the log posterior is concave).
        current = log_post(x)
        for _ in range(100):
            p = 1.0 / (1.0 + np.exp(-(design @ x)))
            grad = design.T @ (w * (y - p)) - precision * (x - prior_mean)
            hess = (design.T * (w * p * (1.0 - p))) @ design + np.diag(precision)
            step = np.linalg.solve(hess, grad)
            for _ in range(30):
                value = log_post(x + step)
                if value >= current - 1e-12:
                    break
                step = step / 2.0
            x, current = x + step, value
            if float(np.max(np.abs(step))) < 1e-9:
                break
        p = 1.0 / (1.0 + np.exp(-(design @ x)))
        hess = (design.T * (w * p * (1.0 - p))) @ design + np.diag(precision)
        cov = np.linalg.inv(hess)
        self._mode, self._cov, self._fitted_at = x, cov, key
        self._p_best = self._root = None
        return x, cov

    def _design(self) -> NDArray[np.float64]:
        """One row a usable verdict: +1 for slot 1, -1 for slot 2, 1 for the bias."""
        n, m = self.n_items, len(self._outcome)
        design = np.zeros((m, n + 1))
        if m:
            design[np.arange(m), self._first] = 1.0
            design[np.arange(m), self._second] = -1.0
            design[:, n] = 1.0
        return design

    def _draws(self, size: int) -> NDArray[np.float64]:
        """Posterior draws of the strengths, one row per draw."""
        mode, cov = self._fit()
        n = self.n_items
        root = self._root
        if root is None:  # factorised once a fit, not once a draw
            root = self._root = _covariance_root(cov[:n, :n])
        draws: NDArray[np.float64] = mode[:n] + self.rng.standard_normal((size, n)) @ root.T
        return draws

    @one_blas_thread()
    def p_best(self) -> NDArray[np.float64]:
        """P(best) of each candidate under the current posterior (Monte Carlo)."""
        self._fit()
        if self._p_best is None:
            winners = np.argmax(self._draws(self.p_best_draws), axis=1)
            counts = np.bincount(winners, minlength=self.n_items)
            self._p_best = counts / float(self.p_best_draws)
        return self._p_best

    def _leaders(self) -> list[int]:
        """Candidates whose posterior mean is the highest (more than one on an exact tie)."""
        mode = self._fit()[0][: self.n_items]
        top = float(np.max(mode))
        return [i for i in range(self.n_items) if top - float(mode[i]) <= TIE_TOLERANCE]

    def _confident(self) -> bool:
        leaders = self._leaders()
        return len(leaders) == 1 and float(self.p_best()[leaders[0]]) >= 1.0 - self.delta

    # -- proposing ---------------------------------------------------------------------------
    def _duel(self) -> tuple[int, int]:
        """One leader-challenger pair by top-two Thompson sampling."""
        draw = self._draws(1)[0]
        leader = int(np.argmax(draw))
        # Russo's challenger: the leader of the first fresh draw that another candidate tops.
        tops = np.argmax(self._draws(_MAX_RESAMPLES), axis=1)
        others = tops[tops != leader]
        if others.size:
            return leader, int(others[0])
        # The posterior is sure of the leader: its nearest rival by posterior mean.
        mode = self._fit()[0][: self.n_items].copy()
        mode[leader] = -np.inf
        return leader, int(np.argmax(mode))

    def _propose(self, chosen: set[frozenset[int]]) -> tuple[int, int]:
        """A Thompson duel not in ``chosen``, kept with the probability that it is new.

        A duel is kept with probability :meth:`_worth` of its next call (1 for a pair not judged
        in that order; 0 for a repeat of a judge that copies itself) and drawn again otherwise.
        When no draw is kept, the most informative pair not chosen is asked for, the one of the
        highest posterior means among equals: the leader against a rival it has not met, rather
        than a pair whose verdicts are known already.
        """
        pair = self._duel()
        best: tuple[float, tuple[int, int]] | None = None
        for _ in range(_MAX_RESAMPLES):
            if frozenset(pair) not in chosen:
                worth = self._worth(*self._next_order(*pair))
                if worth >= 1.0 or self.rng.random() < worth:  # no coin for a fresh call
                    return pair
                if best is None or worth > best[0]:
                    best = (worth, pair)
            pair = self._duel()
        mode = self._fit()[0][: self.n_items]
        options = [
            (self._worth(*self._next_order(a, b)), float(mode[a] + mode[b]), (a, b))
            for a in range(self.n_items)
            for b in range(a + 1, self.n_items)
            if frozenset((a, b)) not in chosen
        ]
        if options:
            top = max(options)
            if best is None or top[0] > best[0] + 1e-12:
                return top[2]
        return pair if best is None else best[1]

    def _next_order(self, a: int, b: int) -> tuple[int, int]:
        """The order :meth:`_ordered` would take, without a coin (``(a, b)`` when equal)."""
        if self.swap == "none":
            return a, b
        ab, ba = self._order_count.get((a, b), 0), self._order_count.get((b, a), 0)
        return (b, a) if ba < ab else (a, b)

    def _ordered(self, a: int, b: int) -> tuple[int, int]:
        """The order judged less often so far; a coin when equal (``"none"``: as given)."""
        if self.swap == "none":
            return a, b
        ab, ba = self._order_count.get((a, b), 0), self._order_count.get((b, a), 0)
        if ab != ba:
            return (a, b) if ab < ba else (b, a)
        return (a, b) if self.rng.random() < 0.5 else (b, a)

    def _room(self) -> int:
        return min(self.budget - self._issued, self.batch - len(self._pending))

    @one_blas_thread()
    def next_pairs(self, limit: int | None = None) -> list[PairCall]:
        """Calls to issue now: pending reverse orders first, then Thompson duels.

        The first ``limit`` given (the orchestrator's per-prompt budget, before any call) sets
        :attr:`budget` (see the class parameters).
        """
        if limit is not None and not self._limit_seen and self._issued == 0:
            given = max(int(limit), 0)
            own = max_calls(self.n_items) if self._default_budget else self.budget
            self.budget = min(own, given)
        if limit is not None:
            self._limit_seen = True
        if self._stopped or self.done:
            return []
        room = self._room()
        if limit is not None:
            room = min(room, max(int(limit), 0))
        calls: list[PairCall] = []
        while self._followups and len(calls) < room:
            first, second = self._followups.pop(0)
            calls.append(self._issue(first, second))
        # Confident already: no new duel, even while earlier calls are still out (the
        # orchestrator asks again after each verdict, with the rest of the batch in flight).
        if not calls and self._confident():
            return []
        chosen: set[frozenset[int]] = {frozenset((c.first, c.second)) for c in self._pending}
        chosen.update(frozenset((c.first, c.second)) for c in calls)
        while len(calls) < room:
            pair = self._propose(chosen)
            chosen.add(frozenset(pair))
            first, second = self._ordered(*pair)
            calls.append(self._issue(first, second))
        return calls

    def _issue(self, first: int, second: int) -> PairCall:
        sample = self._order_count.get((first, second), 0)
        self._order_count[(first, second)] = sample + 1
        call = PairCall(first, second, -1, sample)
        self._pending.add(call)
        self._issued += 1
        return call

    # -- taking verdicts ---------------------------------------------------------------------
    @one_blas_thread()
    def record(self, call: PairCall, verdict: Verdict) -> None:
        """Take back a verdict; a usable one updates the posterior, a failed one adds nothing."""
        if call not in self._pending:
            raise ValueError(f"Argument 'call' is not an outstanding call: {call!r}.")
        if not isinstance(verdict, Verdict):
            raise TypeError(f"Argument 'verdict' must be a Verdict, not {type(verdict).__name__}.")
        self._pending.remove(call)
        self._judgements.append(Judgement(call.first, call.second, verdict, -1, call.sample))
        if verdict.ranking is None:
            return
        p = float(verdict.preference_with(self.preference_mapping))
        key = (call.first, call.second)
        if key in self._last and self._stats is not None:
            # A repeat: how far it is from this pair's last verdict, against independent draws.
            n = self.n_items
            eta = float(self._mode[call.first] - self._mode[call.second] + self._mode[n])
            fitted = 1.0 / (1.0 + math.exp(-eta))
            self._stats.add_repeat((p - self._last[key]) ** 2, 2.0 * fitted * (1.0 - fitted))
        self._last[key] = p
        self._usable[key] = self._usable.get(key, 0) + 1
        self._first.append(call.first)
        self._second.append(call.second)
        self._outcome.append(p)
        if verdict.ranking < 3.5:
            self._own_first += 1
        elif verdict.ranking > 3.5:
            self._own_second += 1
        if not self._stopped and self._wants_reverse(call, p):
            self._followups.append((call.second, call.first))

    def _wants_reverse(self, call: PairCall, preference: float) -> bool:
        """Whether to ask for the reverse order of a pair just judged for the first time."""
        if self.swap in ("random", "none"):
            return False
        if self._order_count.get((call.second, call.first), 0) > 0:
            return False  # the reverse order was judged already
        if self.swap == "both" or not self.bias_known:
            return True
        return abs(preference - 0.5) <= CLOSE_MARGIN

    # -- Scheduler protocol ------------------------------------------------------------------
    @property
    @one_blas_thread()
    def done(self) -> bool:
        """Nothing in flight, and stopped, out of budget, or confident of the best."""
        if self._pending:
            return False
        if self._stopped or self._issued >= self.budget:
            return True
        return not self._followups and self._confident()

    def stop(self) -> None:
        """Ask for no more calls; :meth:`result` uses what was judged."""
        self._stopped = True
        self._followups = []

    @property
    def calls_issued(self) -> int:
        """Calls handed out so far."""
        return self._issued

    def judgements(self) -> list[Judgement]:
        """Every finished call, in arrival order."""
        return list(self._judgements)

    @one_blas_thread()
    def result(self) -> StrategyOutcome:
        """The posterior's leader and order; a seeded coin only for an exact tie at the end.

        The first call also pools this prompt's fit into the run's judge statistics (the
        dispersion and prior spread of later prompts; see :meth:`judge_dispersion`).
        """
        outcome = self._result()
        self._pool_fit()
        return outcome

    def _result(self) -> StrategyOutcome:
        notes = list(self._notes)
        if not self._outcome:
            notes.append("adaptive: no usable verdict; no candidate is chosen")
            return StrategyOutcome(notes=tuple(notes))
        mode = self._fit()[0][: self.n_items]
        leaders = self._leaders()
        best = leaders[0]
        if len(leaders) > 1:
            best = int(self.rng.choice(leaders))
            notes.append(
                f"adaptive: candidates {leaders} are exactly tied at the top after "
                f"{self._issued} calls (no budget left to separate them); {best} picked by "
                "a seeded coin"
            )
        p_best = self.p_best()
        if float(p_best[best]) < 1.0 - self.delta:
            notes.append(
                f"adaptive: stopped at P(best) {float(p_best[best]):.3f} < {1.0 - self.delta:.3f} "
                f"after {self._issued} calls"
            )
        rest = sorted((i for i in range(self.n_items) if i != best), key=lambda i: -mode[i])
        return StrategyOutcome(best=best, order=(best, *rest), notes=tuple(notes))

    @one_blas_thread()
    def posterior(self) -> dict[str, Any]:
        """The current posterior: strengths, slot-1 advantage and P(best) (for diagnostics)."""
        mode, cov = self._fit()
        n = self.n_items
        return {
            "strength": mode[:n].copy(),
            "stderr": np.sqrt(np.diag(cov)[:n]),
            "position_bias": float(mode[n]),
            "p_best": self.p_best().copy(),
        }
