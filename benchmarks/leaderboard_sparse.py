"""One sparse or separated model beside a well-measured leaderboard (issue 19, item 7).

Five models A-E play every pair once on each of 40 prompts (A: 160 games). Then a model Z is
added with 6 games on 3 prompts (against B and C), once with mixed results and once winning all
6. Prints each model's rating and 95% prompt-bootstrap interval (200 resamples, seed 0), and
the models set apart. Runs on the code before this change too (it passes the bootstrap's
rounds under whichever name ``fit_leaderboard`` takes).

Usage::

    python benchmarks/leaderboard_sparse.py
"""

from __future__ import annotations

import inspect
import itertools

import numpy as np

from genrm_rank.aggregators import fit_leaderboard

MODELS = ["A", "B", "C", "D", "E"]
STRENGTH = dict(zip(MODELS, [0.3, 0.1, 0.0, -0.1, -0.3], strict=True))


def games() -> tuple[list[str], list[str], list[float], list[int]]:
    """Every pair of A-E once a prompt, in a random slot order; Bradley-Terry outcomes."""
    rng = np.random.default_rng(0)
    pairs = np.array(list(itertools.combinations(range(5), 2)))
    both = np.tile(pairs, (40, 1))
    swap = rng.random(both.shape[0]) < 0.5
    both[swap] = both[swap][:, ::-1]
    theta = np.array([STRENGTH[m] for m in MODELS])
    p_win = 1.0 / (1.0 + np.exp(theta[both[:, 1]] - theta[both[:, 0]]))
    wins = (rng.random(both.shape[0]) < p_win).astype(float)
    return (
        [MODELS[i] for i in both[:, 0]],
        [MODELS[i] for i in both[:, 1]],
        wins.tolist(),
        np.repeat(np.arange(40), len(pairs)).tolist(),
    )


def main() -> None:
    rounds = (  # the name before issue 19, so that the script runs on that code too
        "bootstrap_rounds"
        if "bootstrap_rounds" in inspect.signature(fit_leaderboard).parameters
        else "n_bootstrap"
    )
    cases = {
        "alone": [],
        "Z mixed (4 wins, 2 losses)": [1.0, 0.0, 1.0, 1.0, 0.0, 1.0],
        "Z won all 6": [1.0] * 6,
    }
    for name, z in cases.items():
        first, second, outcome, prompt = games()
        for k, result in enumerate(z):
            first.append("Z")
            second.append("BC"[k % 2])
            outcome.append(result)
            prompt.append(k // 2)
        table = fit_leaderboard(first, second, outcome, clusters=prompt, seed=0, **{rounds: 200})
        print(f"## {name}")
        for row in table.rows:
            print(f"  {row.label}: {row.rating:7.1f}  ({row.lower:7.1f} to {row.upper:7.1f})")
        for apart in getattr(table, "set_apart", ()):
            print(f"  set apart {apart.label}: rating {apart.rating}; {apart.reason}")


if __name__ == "__main__":
    main()
