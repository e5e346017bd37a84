"""CPU per proposal of adaptive selection at large N (issue 19, item 10).

One prompt of ``N`` candidates with standard normal qualities and a noisy simulated judge
(noise scale 0.35, the published GenRM accuracy), driven as the orchestrator drives it: after
every verdict the scheduler is asked for the next calls (``next_pairs``), with
``batch`` calls in flight. The time of every ``next_pairs`` and ``record`` call is taken with
``time.process_time`` (this process's CPU), on one BLAS thread (as the library runs them). A
*proposal* is one call handed out; the figure is the CPU of ``next_pairs`` + ``record`` over a
prompt divided by its calls, with the longest single step (the longest the event loop would be
blocked), median and 95% interval over prompts (percentile bootstrap, 1,000 resamples).

Usage::

    python benchmarks/bench_adaptive_cost.py --sizes 8 64 128 256 --prompts 5
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from genrm_rank.blas_threads import one_blas_thread
from genrm_rank.strategies import Adaptive
from genrm_rank.strategies.base import PairCall
from genrm_rank.verdict import Verdict

NOISE_SCALE = 0.35


def _ranking(margin: float) -> float:
    magnitude = 3 if abs(margin) >= 2.5 else 2 if abs(margin) >= 1.0 else 1
    return float(4 - magnitude if margin > 0 else 3 + magnitude)


def one_prompt(n: int, seed: int) -> tuple[float, float, int]:
    """CPU seconds per call, the longest step (s) and the calls of one prompt."""
    rng = np.random.default_rng([seed, n])
    quality = rng.standard_normal(n)
    scheduler = Adaptive(n, seed=seed)
    total, longest, calls = 0.0, 0.0, 0
    in_flight: list[PairCall] = []
    while True:
        start = time.process_time()
        in_flight += scheduler.next_pairs()
        step = time.process_time() - start
        total, longest = total + step, max(longest, step)
        if not in_flight:
            break
        call = in_flight.pop(0)
        u = float(rng.uniform(1e-12, 1.0 - 1e-12))
        margin = (quality[call.first] - quality[call.second]) / NOISE_SCALE + math.log(u / (1 - u))
        start = time.process_time()
        scheduler.record(call, Verdict(ranking=_ranking(margin)))
        step = time.process_time() - start
        total, longest = total + step, max(longest, step)
        calls += 1
    return total / max(calls, 1), longest, calls


def interval(values: list[float], seed: int = 0) -> tuple[float, float, float]:
    x = np.asarray(values)
    rng = np.random.default_rng(seed)
    medians = np.median(x[rng.integers(0, len(x), (1000, len(x)))], axis=1)
    low, high = np.quantile(medians, [0.025, 0.975])
    return float(np.median(x)), float(low), float(high)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 64, 128, 256])
    parser.add_argument("--prompts", type=int, default=5)
    args = parser.parse_args()
    print("| N | calls a prompt | CPU ms a proposal (median [95% CI]) | longest step ms |")
    print("|---|---|---|---|")
    with one_blas_thread():
        for n in args.sizes:
            rows = [one_prompt(n, seed) for seed in range(args.prompts)]
            per, low, high = interval([r[0] * 1e3 for r in rows])
            longest = interval([r[1] * 1e3 for r in rows])
            calls = float(np.median([r[2] for r in rows]))
            print(
                f"| {n} | {calls:.0f} | {per:.2f} [{low:.2f}, {high:.2f}] | "
                f"{longest[0]:.1f} [{longest[1]:.1f}, {longest[2]:.1f}] |"
            )


if __name__ == "__main__":
    main()
