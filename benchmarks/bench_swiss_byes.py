"""Swiss byes: how often the round-1 bye holder wins among equal candidates, by bye score.

With an odd N one candidate sits out each round. Among candidates of equal quality each should
win 1/N of the runs, whoever sat out; the bye's score decides whether the bye holder does. A
judge with no preference (a ranking drawn uniformly from [1, 6], continuous, so totals never
tie), ``swap="both"``, preference points, the seeding fixed (so the same candidate, the last
seed, sits out round 1 in every run)::

    .venv/bin/python benchmarks/bench_swiss_byes.py --runs 20000

Bye scores compared: a full win (1.0, chess's rule), an average match (0.5, the library's
:data:`~genrm_rank.strategies.swiss.BYE_POINTS`), and the candidate's own mean points a match
(its match points extrapolated to every round it had, applied at the end). Each row gives the
share of runs the round-1 bye holder won, with a 95% interval (Wilson), and the share won by a
candidate that never sat out.
"""

from __future__ import annotations

import argparse
import math

import numpy as np

import genrm_rank.strategies.swiss as swiss_module
from genrm_rank.strategies.base import PairCall
from genrm_rank.strategies.swiss import Swiss
from genrm_rank.verdict import Verdict


class _OwnMeanSwiss(Swiss):
    """A bye scores the candidate's own mean points a match (byes score 0 while it runs)."""

    def result(self):  # type: ignore[no-untyped-def]
        for c in range(self.n_items):
            played = len(self._opponents[c])
            if self._byes[c] and played:
                self._points[c] += self._byes[c] * self._points[c] / played
        return super().result()


def _drive(tournament: Swiss, rng: np.random.Generator) -> int | None:
    while not tournament.done:
        calls: list[PairCall] = tournament.next_pairs()
        for call in calls:
            tournament.record(call, Verdict(ranking=float(rng.uniform(1.0, 6.0))))
    return tournament.result().best


def bye_holder_wins(n: int, rule: str, runs: int, seed: int) -> tuple[int, int]:
    """Runs (of ``runs``) won by the round-1 bye holder, and by a candidate that never sat
    out, under bye rule ``rule``."""
    rng = np.random.default_rng(seed)
    saved = swiss_module.BYE_POINTS
    swiss_module.BYE_POINTS = {"full win": 1.0, "average match": 0.5, "own mean": 0.0}[rule]
    try:
        first = never = 0
        for _ in range(runs):
            kind = _OwnMeanSwiss if rule == "own mean" else Swiss
            tournament = kind(n, swap="both", seeding=range(n))
            best = _drive(tournament, rng)
            first += best == n - 1  # the last seed sits out round 1
            never += best is not None and tournament._byes[best] == 0
        return first, never
    finally:
        swiss_module.BYE_POINTS = saved


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20000, help="tournaments a row")
    parser.add_argument("--seed", type=int, default=20261130)
    args = parser.parse_args()
    print(
        "| N | bye scores | round-1 bye holder wins | 95% interval | fair share 1/N "
        "| won by a candidate that never sat out |"
    )
    print("|---|---|---|---|---|---|")
    for n, rule in [
        (5, "full win"),
        (5, "average match"),
        (5, "own mean"),
        (7, "average match"),
        (9, "average match"),
    ]:
        k, never = bye_holder_wins(n, rule, args.runs, args.seed)
        low, high = wilson(k, args.runs)
        print(
            f"| {n} | {rule} | {k / args.runs:.3f} ({k:,} of {args.runs:,}) "
            f"| {low:.3f}-{high:.3f} | {1 / n:.3f} | {never / args.runs:.3f} |"
        )


if __name__ == "__main__":
    main()
