"""Top-1 accuracy and calls spent of every strategy x swap mode.

Two judges:

- ``simulated``: a SimulatedJudge with Bradley-Terry noise calibrated so that it orders a random
  pair of candidates correctly 87% of the time (Qwen3-Nemotron-235B GenRM scores 87.3 on
  RM-Bench), and a first-slot advantage of 0.68 log-odds (GPT-4's on the Vicuna record);
  candidate qualities are standard normal draws; accuracy is against the true best.
- ``replay``: GPT-4's real verdicts on the Vicuna benchmark (every ordered pair of 8 systems on
  80 questions); for N < 8 each question gets a seeded random subset of systems; accuracy is
  against the pick of the full both-orders round-robin on the same candidates (Bradley-Terry with
  the position term over all N(N-1) verdicts). N > 8 does not exist in the record.

Usage::

    python benchmarks/bench_strategies.py                 # the table in benchmarks/README.md
    python benchmarks/bench_strategies.py --prompts 100   # quicker
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

import numpy as np

from genrm_rank import PromptInput, arank_many
from genrm_rank.judges.replay import ReplayJudge
from genrm_rank.judges.simulated import SimulatedJudge

VICUNA_RECORD = (
    Path(__file__).resolve().parents[1]
    / "tests"
    / "data"
    / "qlora"
    / "vicuna_gpt4_pairwise.jsonl.gz"
)
STRATEGIES = ["knockout", "swiss", "circular", "round_robin"]
SWAPS = ["both", "random", "none"]
NOISE_SCALE = 0.35  # E[sigmoid(|q1 - q2| / 0.35)] = 0.87 for q ~ N(0, 1)
POSITION_LOG_ODDS = 0.68


async def _run(
    prompts: list[PromptInput], judge: object, strategy: str, swap: str, seed: int
) -> tuple[list[int | None], list[int]]:
    best: dict[object, int | None] = {}
    calls: dict[object, int] = {}
    async for result in arank_many(
        prompts, judge=judge, strategy=strategy, swap=swap, seed=seed, concurrency=512
    ):
        if result.ranking is None:
            raise RuntimeError(f"prompt {result.prompt.key}: {result.error}")
        best[result.prompt.key] = result.ranking.best
        calls[result.prompt.key] = result.ranking.calls
    keys = [p.key for p in prompts]
    return [best[k] for k in keys], [calls[k] for k in keys]


def simulated(n: int, n_prompts: int, seed: int) -> list[tuple[str, str, float, float]]:
    rng = np.random.default_rng(seed)
    qualities: dict[str, float] = {}
    prompts, truth = [], []
    for p in range(n_prompts):
        texts = [f"prompt {p} candidate {i}" for i in range(n)]
        values = rng.standard_normal(n)
        qualities.update(zip(texts, values.tolist(), strict=True))
        prompts.append(PromptInput(f"prompt {p}", texts, key=p))
        truth.append(int(np.argmax(values)))
    rows = []
    for strategy in STRATEGIES:
        for swap in SWAPS:
            judge = SimulatedJudge(
                qualities=qualities,
                noise_scale=NOISE_SCALE,
                position_bias=POSITION_LOG_ODDS * NOISE_SCALE,
                seed=seed,
            )
            best, calls = asyncio.run(_run(prompts, judge, strategy, swap, seed))
            accuracy = float(np.mean([b == t for b, t in zip(best, truth, strict=True)]))
            rows.append((strategy, swap, accuracy, float(np.mean(calls))))
    return rows


def replay(n: int, seed: int) -> list[tuple[str, str, float, float]]:
    judge = ReplayJudge.from_jsonl(VICUNA_RECORD)
    rng = np.random.default_rng(seed)
    prompts = []
    for qid in judge.prompt_ids():
        systems = judge.candidates(qid)
        chosen = (
            sorted(rng.choice(systems, size=n, replace=False).tolist())
            if n < len(systems)
            else systems
        )
        prompts.append(
            PromptInput(f"question {qid}", chosen, prompt_id=qid, candidate_ids=chosen, key=qid)
        )
    reference, _ = asyncio.run(_run(prompts, judge, "round_robin", "both", seed))
    rows = []
    for strategy in STRATEGIES:
        for swap in SWAPS:
            best, calls = asyncio.run(_run(prompts, judge, strategy, swap, seed))
            accuracy = float(np.mean([b == r for b, r in zip(best, reference, strict=True)]))
            rows.append((strategy, swap, accuracy, float(np.mean(calls))))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=400, help="simulated prompts per N")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sizes", type=int, nargs="+", default=[4, 8, 16, 32])
    args = parser.parse_args()
    start = time.perf_counter()
    print("| judge | N | strategy | swap | top-1 accuracy | mean calls |")
    print("|---|---|---|---|---|---|")
    for n in args.sizes:
        for strategy, swap, accuracy, calls in simulated(n, args.prompts, args.seed):
            print(f"| simulated | {n} | {strategy} | {swap} | {accuracy:.3f} | {calls:.1f} |")
    for n in [n for n in args.sizes if n <= 8]:
        for strategy, swap, accuracy, calls in replay(n, args.seed):
            label = "replay (Vicuna, GPT-4)"
            print(f"| {label} | {n} | {strategy} | {swap} | {accuracy:.3f} | {calls:.1f} |")
    print(f"\n{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
