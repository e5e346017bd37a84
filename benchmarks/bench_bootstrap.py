"""Bootstrap at leaderboard scale: 1,000 items, 1,000,000 comparisons, 100 rounds, one core.

Hard Bradley-Terry outcomes with a first-slot advantage, as in the issue. Reports the time of the
full fit and of the 100-round bootstrap (OMP/BLAS threads pinned to 1 by the caller), the largest
difference between the full fit and ``choix.opt_pairwise`` (same alpha), and, on a smaller
problem, the agreement of the fast bootstrap with a plain row bootstrap (draw m rows, refit from
scratch).

Usage::

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/bench_bootstrap.py
"""

from __future__ import annotations

import argparse
import time

import choix
import numpy as np

from genrm_rank.aggregators import Comparisons, bootstrap_bradley_terry, bradley_terry


def _data(n: int, m: int, seed: int, h: float) -> Comparisons:
    rng = np.random.default_rng(seed)
    first = rng.integers(0, n, m)
    second = (first + rng.integers(1, n, m)) % n
    q = rng.normal(size=n)
    win = rng.random(m) < 1 / (1 + np.exp(-(q[first] - q[second] + h)))
    return Comparisons.from_arrays(n, first, second, win.astype(float))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--comparisons", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--choix", action="store_true", help="also compare with choix")
    args = parser.parse_args()
    c = _data(args.items, args.comparisons, 0, 0.0)
    start = time.perf_counter()
    fit = bradley_terry(c, alpha=1e-6)
    print(f"full fit: {time.perf_counter() - start:.2f} s, {fit.n_iter} Newton iterations")
    start = time.perf_counter()
    boot = bootstrap_bradley_terry(c, bootstrap_rounds=args.rounds, seed=0, alpha=1e-6)
    took = time.perf_counter() - start
    print(f"bootstrap, {args.rounds} rounds (full fit included): {took:.2f} s")
    print(f"  not converged: {boot.n_not_converged}")
    if args.choix:
        winners = np.where(c.outcome > 0.5, c.first, c.second)
        losers = np.where(c.outcome > 0.5, c.second, c.first)
        start = time.perf_counter()
        ref = choix.opt_pairwise(args.items, list(zip(winners, losers, strict=True)), alpha=1e-6)
        diff = np.max(np.abs((ref - ref.mean()) - fit.params))
        print(f"choix.opt_pairwise: {time.perf_counter() - start:.1f} s, max |diff| {diff:.2e}")
    small = _data(20, 4000, 1, 0.0)
    fast = bootstrap_bradley_terry(small, bootstrap_rounds=1000, seed=1, alpha=1e-6)
    rng = np.random.default_rng(2)
    plain = np.array(
        [
            bradley_terry(small.subset(rng.integers(0, len(small), len(small))), alpha=1e-6).params
            for _ in range(1000)
        ]
    )
    ratio = fast.samples.std(axis=0) / plain.std(axis=0)
    print(
        "fast / plain row bootstrap SD over 20 items (4,000 rows, 1,000 rounds each): "
        f"median {np.median(ratio):.3f}, range {ratio.min():.3f} to {ratio.max():.3f}"
    )


if __name__ == "__main__":
    main()
