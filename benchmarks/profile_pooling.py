"""Judge profiles: single-prompt calls with a saved profile against one pooled run (issue 19).

A run without a given profile ranks its first ``warmup`` prompts (input order) on the default
profile, learns a profile from their verdicts, freezes it and ranks the rest with it
(:mod:`genrm_rank.runner`). A single ``select_best`` call has no run to learn from: it uses the
default profile unless one is passed. This script measures, per prompt, calls and top-1
accuracy (mean and normal-approximation 95% interval over every (prompt, seed) run) of:

- ``single, default``: ``select_best(..., strategy="adaptive")``, one call a prompt, nothing
  pooled (the review's before-figure);
- ``pooled run``: every prompt through one :func:`~genrm_rank.arank_many`-style run (warm-up,
  then the frozen profile), split into the warm-up's prompts and the rest;
- ``single, saved profile``: ``select_best(..., judge_profile=saved)``, one call a prompt, with
  the profile the pooled run learnt from all its prompts (``Runner.learnt_profile``, what
  ``--save-judge-profile`` writes). The same rows as a pooled run given that profile
  (``tests/test_api_profile.py`` checks it row by row).

The judge is the quality benchmark's ``biased`` simulated GenRM (``benchmarks/quality.py``):
standard normal candidate qualities, logistic noise of scale 0.35 (87% of random pairs ordered
right) and a slot-1 advantage of 0.68 log-odds; each prompt's truth is its best quality.

``--learner`` instead checks :func:`~genrm_rank.judge_profile.learn_judge_profile` against
known values: prompts of standard-normal-times-``sd`` strengths, every ordered pair judged once
with a hard (0/1) Bradley-Terry outcome and a slot-1 bias of 1.14 (so the dispersion is 1):
the learnt bias, strength spread and dispersion against the truth and against the logit of the
slot-1 win share, over seeds.

Usage::

    python benchmarks/profile_pooling.py --prompts 400 --seeds 2 --n 8
    python benchmarks/profile_pooling.py --learner --prompts 300 --seeds 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from genrm_rank import SimulatedJudge, select_best
from genrm_rank.aggregators import Comparisons
from genrm_rank.judge_profile import JudgeProfile, learn_judge_profile
from genrm_rank.runner import WARMUP_PROMPTS, PromptInput, Runner
from genrm_rank.spec import RankSpec

NOISE_SCALE = 0.35
POSITION_LOG_ODDS = 0.68


def interval(values: Sequence[float]) -> tuple[float, float]:
    """Mean and half-width of its normal-approximation 95% interval."""
    x = np.asarray(values, dtype=float)
    return float(x.mean()), float(1.96 * x.std(ddof=1) / math.sqrt(len(x)))


def task(seed: int, prompts: int, n: int) -> tuple[list[PromptInput], dict[str, float]]:
    rng = np.random.default_rng([seed, n, 19])
    quality: dict[str, float] = {}
    items = []
    for p in range(prompts):
        texts = [f"seed {seed} prompt {p} candidate {i}" for i in range(n)]
        quality.update(zip(texts, rng.standard_normal(n).tolist(), strict=True))
        items.append(PromptInput(f"question {p}", texts, prompt_id=f"s{seed}p{p}", key=p))
    return items, quality


def judge(quality: dict[str, float], seed: int) -> SimulatedJudge:
    return SimulatedJudge(
        qualities=quality,
        noise_scale=NOISE_SCALE,
        position_bias=POSITION_LOG_ODDS * NOISE_SCALE,
        seed=seed,
    )


def outcome(
    prompt: PromptInput, best: int | None, calls: int, quality: dict[str, float]
) -> dict[str, Any]:
    scores = [quality[t] for t in prompt.candidates]
    right = best is not None and scores[best] >= max(scores) - 1e-12
    return {"prompt": prompt.key, "calls": calls, "right": float(right)}


async def pooled(
    items: list[PromptInput], quality: dict[str, float], spec: RankSpec, seed: int
) -> tuple[list[dict[str, Any]], JudgeProfile, JudgeProfile | None]:
    runner = Runner(judge(quality, seed), spec, learn_profile=True)
    rows = [
        outcome(r.prompt, None if r.ranking is None else r.ranking.best,
                0 if r.ranking is None else r.ranking.calls, quality)
        async for r in runner.run(items)
    ]  # fmt: skip
    return rows, runner.learnt_profile(), runner.profile


def single(
    items: list[PromptInput], quality: dict[str, float], spec: RankSpec, seed: int,
    profile: JudgeProfile | None,
) -> list[dict[str, Any]]:  # fmt: skip
    rows = []
    for prompt in items:
        ranking = select_best(
            prompt.candidates, prompt.conversation, judge=judge(quality, seed), spec=spec,
            prompt_id=prompt.prompt_id, judge_profile=profile,
        )  # fmt: skip
        rows.append(outcome(prompt, ranking.best, ranking.calls, quality))
    return rows


def summary(label: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    calls, calls_ci = interval([r["calls"] for r in rows])
    top1, top1_ci = interval([r["right"] for r in rows])
    return {
        "condition": label, "runs": len(rows), "calls": round(calls, 2),
        "calls_ci": round(calls_ci, 2), "top1": round(top1, 3), "top1_ci": round(top1_ci, 3),
    }  # fmt: skip


def learner(prompts: int, seeds: int) -> None:
    """The learnt profile against known values (see the module)."""
    bias = 1.14
    for n, sd in ((4, 1.5), (8, 1.5), (4, 0.7)):
        learnt, share, spread, phi = [], [], [], []
        for seed in range(seeds):
            rng = np.random.default_rng([seed, n, 8])
            items = []
            first, second = np.array([(i, j) for i in range(n) for j in range(n) if i != j]).T
            for _ in range(prompts):
                theta = rng.normal(0.0, sd, n)
                p = 1.0 / (1.0 + np.exp(-(theta[first] - theta[second] + bias)))
                outcome = (rng.random(p.size) < p) * 1.0
                items.append(Comparisons.from_arrays(n, first, second, outcome))
            profile = learn_judge_profile(items)
            wins = sum(float(c.outcome.sum()) for c in items) / sum(len(c) for c in items)
            learnt.append(profile.position_bias)
            share.append(math.log(wins / (1.0 - wins)))
            spread.append(profile.strength_sd)
            phi.append(profile.dispersion)
        print(
            f"N={n}, sd={sd}, {n * (n - 1)} verdicts a prompt, {prompts} prompts x {seeds} seeds: "
            f"bias {bias}: learnt {interval(learnt)[0]:.3f} ± {interval(learnt)[1]:.3f}, "
            f"win-share logit {interval(share)[0]:.3f} ± {interval(share)[1]:.3f}; "
            f"strength sd {interval(spread)[0]:.3f} ± {interval(spread)[1]:.3f}; "
            f"dispersion (truth 1) {interval(phi)[0]:.3f} ± {interval(phi)[1]:.3f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=400)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--delta", type=float, default=None, help="adaptive's delta (default)")
    parser.add_argument("--out", type=Path, default=None, help="write the table as JSON")
    parser.add_argument("--learner", action="store_true", help="check the learner instead")
    args = parser.parse_args()
    if args.learner:
        learner(args.prompts, args.seeds)
        return
    options = {} if args.delta is None else {"delta": args.delta}
    spec = RankSpec(strategy="adaptive", swap="auto", strategy_options=options)
    results: dict[str, list[dict[str, Any]]] = {}
    profiles = []
    started = time.monotonic()
    for seed in range(args.seeds):
        items, quality = task(seed, args.prompts, args.n)
        run_spec = spec.replace(seed=seed)
        rows, learnt, frozen = asyncio.run(pooled(items, quality, run_spec, seed))
        profiles.append({"seed": seed, "learnt": learnt.to_dict(),
                         "frozen": None if frozen is None else frozen.to_dict()})  # fmt: skip
        results.setdefault("pooled run, all prompts", []).extend(rows)
        results.setdefault(f"pooled run, warm-up (first {WARMUP_PROMPTS})", []).extend(
            r for r in rows if r["prompt"] < WARMUP_PROMPTS
        )
        results.setdefault("pooled run, after the warm-up", []).extend(
            r for r in rows if r["prompt"] >= WARMUP_PROMPTS
        )
        results.setdefault("single calls, default profile", []).extend(
            single(items, quality, run_spec, seed, None)
        )
        results.setdefault("single calls, saved profile", []).extend(
            single(items, quality, run_spec, seed, learnt)
        )
    table = [summary(label, rows) for label, rows in results.items()]
    for row in table:
        print(
            f"{row['condition']:<40} runs {row['runs']:>5}  calls {row['calls']:6.2f} "
            f"± {row['calls_ci']:.2f}  top-1 {row['top1']:.3f} ± {row['top1_ci']:.3f}"
        )
    for p in profiles:
        learnt = p["learnt"]
        print(f"seed {p['seed']}: learnt bias {learnt['position_bias']:.3f} ± "
              f"{learnt['position_bias_stderr']:.3f}, dispersion {learnt['dispersion']:.3f}, "
              f"strength sd {learnt['strength_sd']:.3f}, repeat r "
              f"{learnt['repeat_correlation']:.3f}")  # fmt: skip
    print(f"({time.monotonic() - started:.0f} s)")
    if args.out is not None:
        args.out.write_text(json.dumps({"table": table, "profiles": profiles}, indent=2) + "\n")


if __name__ == "__main__":
    main()
