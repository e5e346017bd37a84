"""Which bootstrap interval: coverage of five interval methods on the same resamples.

Simulated Bradley-Terry data with known strengths; for each data set one
:func:`~genrm_rank.aggregators.bootstrap_bradley_terry` run, and from its resamples five
intervals for every centred strength (Efron & Tibshirani, *An Introduction to the Bootstrap*,
1993, ch. 12-14; Davison & Hinkley, *Bootstrap Methods*, 1997, sec. 5.2-5.3):

- ``percentile``: the resamples' quantiles;
- ``basic``: the reverse percentile ``2 theta_hat - q``;
- ``bc``: bias-corrected percentile (BCa without the acceleration);
- ``normal``: ``theta_hat +- z * SD`` of the resamples;
- ``recentred``: the percentile interval of the resamples shifted so that their median is
  ``theta_hat`` (:func:`~genrm_rank.aggregators.bradley_terry.bootstrap_interval`, the
  library's interval).

Reported per regime: coverage of the true centred strength (mean over data sets, +- 1.96 SE
over data sets), how often the interval excludes its own point estimate, and the mean width.

Usage::

    python benchmarks/bootstrap_intervals.py --trials 300 --rounds 200
    python benchmarks/bootstrap_intervals.py --trials 1000 --rounds 200 --only "N=6, 6 random"
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
from numpy.typing import NDArray

from genrm_rank.aggregators import Comparisons, bootstrap_bradley_terry
from genrm_rank.aggregators.bradley_terry import bootstrap_interval

Array = NDArray[np.float64]


@dataclass(frozen=True)
class Regime:
    name: str
    n_items: int
    alpha: float
    position_bias: bool
    make: Callable[[np.random.Generator, Array], tuple[Comparisons, NDArray[np.int64] | None]]


def _graded(rng: np.random.Generator, p: Array) -> Array:
    """A GenRM-like graded outcome: six levels around the win probability."""
    noisy = np.clip(p + rng.normal(0.0, 0.2, p.shape), 0.0, 1.0)
    graded: Array = np.round(noisy * 5.0) / 5.0
    return graded


def _all_pairs(n: int, both_orders: bool) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    i, j = np.triu_indices(n, 1)
    if both_orders:
        return np.concatenate([i, j]), np.concatenate([j, i])
    return i.astype(np.int64), j.astype(np.int64)


def _prompt(n: int, both_orders: bool, graded: bool) -> Regime:
    def make(rng: np.random.Generator, theta: Array) -> tuple[Comparisons, None]:
        first, second = _all_pairs(n, both_orders)
        if not both_orders:
            swap = rng.random(first.shape[0]) < 0.5
            first, second = np.where(swap, second, first), np.where(swap, first, second)
        p = 1.0 / (1.0 + np.exp(-(theta[first] - theta[second])))
        outcome = _graded(rng, p) if graded else (rng.random(p.shape) < p).astype(np.float64)
        return Comparisons.from_arrays(n, first, second, outcome), None

    kind = "graded" if graded else "binary"
    orders = "both orders" if both_orders else "one order"
    return Regime(f"prompt N={n}, round robin {orders}, {kind}", n, 0.05, False, make)


def _leaderboard(n: int, prompts: int, games: int, h: float) -> Regime:
    def make(rng: np.random.Generator, theta: Array) -> tuple[Comparisons, NDArray[np.int64]]:
        m = prompts * games
        first = rng.integers(0, n, m)
        second = (first + rng.integers(1, n, m)) % n
        p = 1.0 / (1.0 + np.exp(-(theta[first] - theta[second] + h)))
        outcome = (rng.random(m) < p).astype(np.float64)
        clusters = np.repeat(np.arange(prompts), games)
        return Comparisons.from_arrays(n, first, second, outcome), clusters

    name = f"leaderboard {n} models, {prompts} prompts x {games} games, h={h}"
    return Regime(name, n, 1e-6, True, make)


def _sparse(n: int, m: int) -> Regime:
    def make(rng: np.random.Generator, theta: Array) -> tuple[Comparisons, None]:
        first = rng.integers(0, n, m)
        second = (first + rng.integers(1, n, m)) % n
        p = 1.0 / (1.0 + np.exp(-(theta[first] - theta[second] + 0.5)))
        outcome = np.clip(p + rng.normal(0.0, 0.3, m), 0.0, 1.0)
        return Comparisons.from_arrays(n, first, second, outcome), None

    name = f"prompt N={n}, {m} random pairs, continuous outcomes, h=0.5 fitted"
    return Regime(name, n, 0.05, True, make)


REGIMES = (
    _sparse(5, 10),
    _sparse(4, 12),
    _prompt(4, True, True),
    _prompt(4, False, False),
    _prompt(8, False, False),
    _prompt(8, True, True),
    _leaderboard(12, 40, 10, 0.3),
    _sparse(6, 6),
)


def intervals(samples: Array, estimate: Array, confidence: float) -> dict[str, tuple[Array, Array]]:
    """The five intervals of every item from one bootstrap's resamples."""
    tail = (1.0 - confidence) / 2.0
    z = NormalDist().inv_cdf(1.0 - tail)
    lo, hi = np.quantile(samples, [tail, 1.0 - tail], axis=0)
    sd = samples.std(axis=0, ddof=1)
    below = (samples < estimate).mean(axis=0) + 0.5 * (samples == estimate).mean(axis=0)
    z0 = np.array([NormalDist().inv_cdf(min(max(b, 1e-6), 1 - 1e-6)) for b in below])
    bc_lo = np.array(
        [np.quantile(samples[:, k], NormalDist().cdf(2 * z0[k] - z)) for k in range(len(z0))]
    )
    bc_hi = np.array(
        [np.quantile(samples[:, k], NormalDist().cdf(2 * z0[k] + z)) for k in range(len(z0))]
    )
    return {
        "percentile": (lo, hi),
        "basic": (2 * estimate - hi, 2 * estimate - lo),
        "bc": (bc_lo, bc_hi),
        "normal": (estimate - z * sd, estimate + z * sd),
        "recentred": bootstrap_interval(samples, estimate, confidence),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--confidence", type=float, default=0.95)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", default="", help="run the regimes whose name holds this text")
    args = parser.parse_args()
    print(
        f"{args.trials} data sets a regime, {args.rounds} resamples each; nominal "
        f"{args.confidence:.0%}; coverage +- 1.96 SE over data sets"
    )
    print("| regime | method | coverage % | excludes own estimate % | mean width |")
    print("|---|---|---:|---:|---:|")
    for r, regime in enumerate(REGIMES):
        if args.only not in regime.name:
            continue
        rng = np.random.default_rng([args.seed, r])
        cover: dict[str, list[float]] = {}
        exclude: dict[str, list[float]] = {}
        width: dict[str, list[float]] = {}
        for _ in range(args.trials):
            theta = rng.normal(0.0, 1.0, regime.n_items)
            theta -= theta.mean()
            comparisons, clusters = regime.make(rng, theta)
            boot = bootstrap_bradley_terry(
                comparisons, bootstrap_rounds=args.rounds, seed=rng, alpha=regime.alpha,
                fit_position_bias=regime.position_bias, clusters=clusters,
            )  # fmt: skip
            estimate = boot.fit.params
            for method, (lo, hi) in intervals(boot.samples, estimate, args.confidence).items():
                cover.setdefault(method, []).append(float(np.mean((lo <= theta) & (theta <= hi))))
                out = (estimate < lo - 1e-12) | (estimate > hi + 1e-12)
                exclude.setdefault(method, []).append(float(np.mean(out)))
                width.setdefault(method, []).append(float(np.mean(hi - lo)))
        for method in cover:
            c = np.array(cover[method])
            se = c.std(ddof=1) / np.sqrt(len(c))
            print(
                f"| {regime.name} | {method} | {100 * c.mean():.1f} +- {196 * se:.1f} | "
                f"{100 * np.mean(exclude[method]):.1f} | {np.mean(width[method]):.2f} |"
            )


if __name__ == "__main__":
    main()
