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

import numpy as np

from genrm_rank.aggregators import fit_leaderboard

MODELS = ["A", "B", "C", "D", "E"]
STRENGTH = dict(zip(MODELS, [0.3, 0.1, 0.0, -0.1, -0.3], strict=True))


def games() -> tuple[list[str], list[str], list[float], list[int]]:
    rng = np.random.default_rng(0)
    first, second, outcome, prompt = [], [], [], []
    for p in range(40):
        for i in range(5):
            for j in range(i + 1, 5):
                a, b = (MODELS[i], MODELS[j]) if rng.random() < 0.5 else (MODELS[j], MODELS[i])
                first.append(a)
                second.append(b)
                outcome.append(float(rng.random() < 1 / (1 + np.exp(STRENGTH[b] - STRENGTH[a]))))
                prompt.append(p)
    return first, second, outcome, prompt


def main() -> None:
    rounds = (
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
