"""Quality against calls: every strategy x swap mode, adaptive at several budgets.

What is measured, per prompt, and reported as a mean with a 95% interval over every
(prompt, seed) run (normal approximation, ``1.96 * sd / sqrt(runs)``):

- **top-1 accuracy**: the pick (``Ranking.best``, what a user gets) is the true best; where the
  truth has exactly tied best candidates, any of them counts;
- **regret**: the true quality of the best minus that of the pick (0 when right);
- **Kendall tau** between the ranking's full order and the true order;
- **calls**: judge calls paid.

Judges:

- ``sim``: candidates with standard normal qualities and a fast in-process judge with
  Bradley-Terry noise, in five regimes: ``clean`` (noiseless), ``noisy`` (noise scale 0.35: 87%
  of random pairs ordered right, the published GenRM accuracy), ``biased`` (noisy, plus a
  slot-1 advantage of 0.68 log-odds: slot 1 wins 66% of close calls, GPT-4's share on the
  Vicuna record), ``ties`` (biased; qualities rounded to 0.5, and a verdict is a tie (3.5)
  when the latent margin is within 0.35 noise units of zero), ``intransitive`` (biased, plus
  a random antisymmetric pair effect of sd 0.5 noise units; the truth is the candidate with the
  highest mean true win probability, and regret is measured on that score);
- ``vicuna``: GPT-4's recorded verdicts on the 80 Vicuna questions (8 systems, every ordered
  pair), replayed; the reference is the full both-orders round-robin's pick, and a pick counts
  as right if it is any of the reference's exactly tied top candidates (Bradley-Terry strengths
  equal to 1e-9). Each prompt's candidate order is shuffled with the prompt's seed;
- ``gsm8k``: 1,319 GSM8K problems with 4 real solutions each (correct or not); a judge with the
  published accuracy (87%: a correct solution beats a wrong one with probability 0.87, two
  solutions of equal correctness are a coin) picks one; selection accuracy is the share of
  picks that are correct, between the best single source (0.5625) and the oracle (0.6725).

Prompts run one after another through the library's schedulers (``make_strategy``), each with
the same judge profile (``--profile FILE``; the library's ``DEFAULT_PROFILE`` otherwise) and
nothing pooled between prompts, and each prompt's pick is the library's own
(:func:`~genrm_rank.results.build_ranking`, given the same profile).

``--pick-rules`` also scores three pick rules on every ranking (issue 19): the posterior mean's
leader (``mean``), the highest P(best) (``pbest``) and the strategy's own pick (``own``: a
bracket's champion, adaptive's leader; the mean's leader for strategies without one), each
with its interval, and the paired difference of each against ``own``.

Usage::

    python benchmarks/quality.py --quick                 # a few minutes: the headline rows
    nice python benchmarks/quality.py --out benchmarks/results   # the full grid (hours)
    python benchmarks/quality.py --plot-only --out benchmarks/results --name quality
"""

from __future__ import annotations

import argparse
import csv
import gzip
import itertools
import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import kendalltau

from genrm_rank.judge_profile import DEFAULT_PROFILE, JudgeProfile, learn_judge_profile
from genrm_rank.judges.replay import ReplayJudge
from genrm_rank.orchestrator import PromptJob, PromptRun
from genrm_rank.results import build_ranking
from genrm_rank.spec import DEFAULT_ALPHA, RankSpec
from genrm_rank.strategies import Scheduler, make_strategy
from genrm_rank.strategies.base import PairCall
from genrm_rank.verdict import Verdict

ROOT = Path(__file__).resolve().parents[1]
VICUNA_RECORD = ROOT / "tests" / "data" / "qlora" / "vicuna_gpt4_pairwise.jsonl.gz"
GSM8K_RECORD = ROOT / "tests" / "data" / "gsm8k" / "best_of_4_correctness.jsonl.gz"
NOISE_SCALE = 0.35  # E[sigmoid(|q1 - q2| / 0.35)] = 0.87 for q ~ N(0, 1)
POSITION_LOG_ODDS = 0.68
GSM8K_ACCURACY = 0.873  # Qwen3-Nemotron-235B-A22B-GenRM, RM-Bench
REGIMES = ("clean", "noisy", "biased", "ties", "intransitive")
FIXED: list[tuple[str, str, int | None]] = [
    (s, w, None)
    for s in ("knockout", "swiss", "round_robin", "circular")
    for w in ("both", "random", "none", "auto")
]
Config = tuple[str, str, int | None]  # strategy, swap, budget (adaptive only)
PROFILE: JudgeProfile = DEFAULT_PROFILE
"""The judge profile every scheduler and ranking of a run gets (``--profile``)."""
LEARN = 0
"""``--learn-profile K``: warm-up prompts each task's profile is learnt from (0: none)."""
LEARNT: dict[tuple[str, int, int], JudgeProfile] = {}
PICKS: dict[tuple[str, Config], dict[str, list[float]]] = {}
"""``--pick-rules``: right or not under each pick rule, by task and configuration."""
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "adaptive_p50": ("adaptive", {"delta": 0.5, "batch": 1}),
    **{f"adaptive_p50_b{k}": ("adaptive", {"delta": 0.5, "batch": k}) for k in (2, 4, 8)},
    **{f"adaptive_b{k}": ("adaptive", {"batch": k}) for k in (1, 2, 4, 8)},
    "adaptive_fixed": ("adaptive", {"prior_sd": 2.0, "dispersion": 1.0, "repeat_correlation": 0.0}),
    "adaptive_independent": ("adaptive", {"repeat_correlation": 0.0}),
    "adaptive_bernoulli": ("adaptive", {"dispersion": 1.0}),
    "adaptive_sd2": ("adaptive", {"prior_sd": 2.0}),
    "adaptive_p90": ("adaptive", {"delta": 0.1}),
    "adaptive_p80": ("adaptive", {"delta": 0.2}),
    "adaptive_p70": ("adaptive", {"delta": 0.3}),
    "adaptive_p70_b1": ("adaptive", {"delta": 0.3, "batch": 1}),
    "adaptive_spend": ("adaptive", {"delta": 1e-6}),
}
"""Named adaptive settings: ``adaptive_p50`` stops once the leader's P(best) reaches 0.5 and
keeps one call of a prompt in flight (so the stopping rule is checked after every verdict);
``adaptive_p50_bK`` is the same with ``K`` calls in flight, ``adaptive_bK`` the default
``delta`` with ``K`` in flight (``--parts batching``: what batching costs). ``adaptive_fixed``
overrides the profile with prior sd 2, Bernoulli variance and independent repeats;
``adaptive_independent`` overrides only the repeat correlation (0); ``adaptive_bernoulli`` and
``adaptive_sd2`` fix the dispersion (1) or the prior spread (2);
``adaptive_p90``, ``adaptive_p80`` and ``adaptive_p70`` stop at P(best) >= 0.9, 0.8 and 0.7
(``delta`` 0.1, 0.2, 0.3); ``adaptive_p70_b1`` with one call in flight; ``adaptive_spend``
never stops on P(best) (``delta`` 1e-6): with a budget, it spends it."""
JudgeFn = Callable[[int, PairCall], Verdict]


def _ranking(margin: float) -> float:
    """Ranking 1..6 from a latent margin in noise units (the simulated GenRM's thresholds)."""
    magnitude = 3 if abs(margin) >= 2.5 else 2 if abs(margin) >= 1.0 else 1
    return float(4 - magnitude if margin > 0 else 3 + magnitude)


@dataclass
class Task:
    """A set of prompts with their truth and a judge."""

    name: str
    n: int
    truth_score: list[np.ndarray]  # per prompt: the score whose max is the best
    judge: JudgeFn
    absolute: bool = False
    """Right means a score of 1 (a correct solution), not the top score of the prompt."""

    def right(self, prompt: int, pick: int) -> bool:
        score = self.truth_score[prompt]
        if self.absolute:
            return bool(score[pick] == 1.0)
        return bool(score[pick] >= score.max() - 1e-9)


def sim_task(regime: str, n: int, prompts: int, seed: int) -> Task:
    """Simulated prompts and their judge for one regime."""
    rng = np.random.default_rng([seed, n, REGIMES.index(regime)])
    quality = rng.standard_normal((prompts, n))
    if regime == "ties":
        quality = np.round(quality * 2.0) / 2.0
    extra = np.zeros((prompts, n, n))
    if regime == "intransitive":
        upper = np.triu(rng.normal(0.0, 0.5 * NOISE_SCALE, (prompts, n, n)), 1)
        extra = upper - upper.transpose(0, 2, 1)
    noise = 0.0 if regime == "clean" else NOISE_SCALE
    bias = POSITION_LOG_ODDS * NOISE_SCALE if regime in ("biased", "ties", "intransitive") else 0.0
    judge_rng = np.random.default_rng([seed, n, 99])

    def judge(prompt: int, call: PairCall) -> Verdict:
        q = quality[prompt]
        delta = q[call.first] - q[call.second] + extra[prompt, call.first, call.second]
        if noise == 0.0:
            return Verdict(ranking=_ranking(math.copysign(3.0, delta)) if delta else 3.5)
        u = float(judge_rng.uniform(1e-12, 1.0 - 1e-12))
        margin = (delta + bias) / noise + math.log(u / (1.0 - u))
        if regime == "ties" and abs(margin) < 1.0:
            return Verdict(ranking=3.5)
        return Verdict(ranking=_ranking(margin))

    if regime == "intransitive":
        scale = noise
        diff = quality[:, :, None] - quality[:, None, :] + extra
        win = 1.0 / (1.0 + np.exp(-diff / scale))
        truth = [(win[p].sum(axis=1) - 0.5) / (n - 1) for p in range(prompts)]
    else:
        truth = [quality[p] for p in range(prompts)]
    return Task(f"sim-{regime}", n, truth, judge)


def vicuna_task(n: int, seed: int) -> Task:
    """Replayed GPT-4 verdicts; truth is filled in from the reference round-robin."""
    replay = ReplayJudge.from_jsonl(VICUNA_RECORD)
    ids = replay.prompt_ids()
    systems: list[list[str]] = []
    for k, qid in enumerate(ids):
        names = replay.candidates(qid)
        rng = np.random.default_rng([seed, k])
        chosen = rng.choice(len(names), size=n, replace=False) if n < len(names) else None
        order = rng.permutation(n) if chosen is None else chosen
        systems.append([names[int(i)] for i in order])

    def judge(prompt: int, call: PairCall) -> Verdict:
        names = systems[prompt]
        return replay.lookup(ids[prompt], names[call.first], names[call.second], call.sample)

    return Task(f"vicuna-{n}", n, [np.zeros(n) for _ in ids], judge)


def gsm8k_task(seed: int) -> Task:
    """Four real solutions per GSM8K problem; a judge at the published accuracy."""
    with gzip.open(GSM8K_RECORD, "rt") as fh:
        rows = [json.loads(line)["correct"] for line in fh]
    sources = sorted(rows[0])
    correct = np.array([[float(r[s]) for s in sources] for r in rows])
    logit = math.log(GSM8K_ACCURACY / (1.0 - GSM8K_ACCURACY))
    judge_rng = np.random.default_rng([seed, 4, 77])

    def judge(prompt: int, call: PairCall) -> Verdict:
        gap = correct[prompt, call.first] - correct[prompt, call.second]
        u = float(judge_rng.uniform(1e-12, 1.0 - 1e-12))
        margin = gap * logit + math.log(u / (1.0 - u))
        return Verdict(ranking=_ranking(margin))

    return Task("gsm8k", 4, [correct[p] for p in range(len(rows))], judge, absolute=True)


def run_prompts(
    task: Task, config: Config, seed: int, prompts: Sequence[int]
) -> list[tuple[int, int, list[int], float]]:
    """Run each prompt's scheduler to its end; (pick, calls, order, P(best)) per prompt.

    P(best) is the scheduler's posterior probability that its pick is best when it stopped
    (adaptive only; NaN for the fixed strategies).
    """
    label, swap, budget = config
    strategy, options = VARIANTS.get(label, (label, {}))
    spec = RankSpec(strategy=strategy, swap=swap, seed=seed, budget=budget, p_best_draws=2000)
    out = []
    for p in prompts:
        rng = np.random.default_rng([seed, p, 1])
        if strategy == "adaptive":
            options = {"profile": PROFILE, **options}
        scheduler: Scheduler = make_strategy(strategy, task.n, swap=swap, seed=rng, **options)
        run = PromptRun(PromptJob(f"p{p}", [str(i) for i in range(task.n)], scheduler))
        run.job.budget = budget
        # As the orchestrator drives a scheduler: calls are in flight together and come back
        # one at a time (first in, first out here), and the scheduler is asked for more after
        # each verdict, with the rest still out (counted against the budget as paid).
        in_flight: list[PairCall] = []
        while True:
            left = None if budget is None else budget - run.calls - len(in_flight)
            in_flight += scheduler.next_pairs(left)
            if not in_flight:
                if not scheduler.done and budget is not None and run.calls >= budget:
                    scheduler.stop()
                    run.budget_bound = True
                if scheduler.done:
                    break
                raise RuntimeError(f"{config}: scheduler idle but not done")
            call = in_flight.pop(0)
            verdict = task.judge(p, call)
            run.calls += 1
            scheduler.record(call, verdict)
        run.judgements = scheduler.judgements()
        posterior = getattr(scheduler, "p_best", None)
        p_best = None if posterior is None or not run.judgements else posterior()
        run.outcome = scheduler.result()
        ranking = build_ranking(run, spec, seed=int(rng.integers(2**31)), profile=PROFILE)
        pick = -1 if ranking.best is None else ranking.best
        confidence = float("nan") if p_best is None or pick < 0 else float(p_best[pick])
        out.append((pick, run.calls, list(ranking.order), confidence))
        if pick >= 0:
            strength = np.array([c.strength for c in ranking.scores])
            chance = np.array([c.p_best for c in ranking.scores])
            own = pick if ranking.champion is None else ranking.champion
            RULES.append(
                {
                    "mean": int(np.argmax(strength)) if np.ptp(strength) > 1e-9 else own,
                    "pbest": int(np.argmax(chance)) if np.isfinite(chance).all() else own,
                    "own": own,
                }
            )
        else:
            RULES.append({})
    return out


RULES: list[dict[str, int]] = []
"""Each ranking's pick under each rule, in the order :func:`run_prompts` made them (on an
exactly tied top, ``mean`` keeps the pick, which the prompt's coin settled)."""


def learn_profile(task: Task, prompts: Sequence[int], seed: int) -> JudgeProfile:
    """A judge profile from a both-orders knockout of ``prompts`` (a calibration run).

    One Bradley-Terry fit over every verdict, each prompt's candidates their own items and one
    shared slot-1 term, learnt by the library's own learner
    (:func:`genrm_rank.judge_profile.learn_judge_profile`).
    """
    from genrm_rank.results import judgements_to_comparisons

    parts = []
    for p in prompts:
        rng = np.random.default_rng([seed, p, 2])
        scheduler = make_strategy("knockout", task.n, swap="both", seed=rng)
        while not scheduler.done:
            for call in scheduler.next_pairs():
                scheduler.record(call, task.judge(p, call))
        parts.append(judgements_to_comparisons(task.n, scheduler.judgements()))
    return learn_judge_profile(parts)


def interval(values: Sequence[float]) -> tuple[float, float]:
    """Mean and half-width of its normal-approximation 95% interval."""
    x = np.asarray(values, dtype=float)
    if len(x) < 2:
        return float(x.mean()), float("nan")
    return float(x.mean()), float(1.96 * x.std(ddof=1) / math.sqrt(len(x)))


CALIBRATION: dict[tuple[str, Config], list[tuple[float, float]]] = {}
"""``--calibration``: (P(best) at the stop, right or not) of every adaptive run, by task and
configuration."""
BINS = (0.0, 0.5, 0.8, 0.9, 0.95, 1.0 + 1e-9)


def measure(task: Task, config: Config, seeds: Sequence[int], prompts: int) -> dict[str, Any]:
    """Accuracy, regret, tau and calls of one configuration over seeds x prompts."""
    global PROFILE
    acc, regret, tau, calls = [], [], [], []
    for seed in seeds:
        if LEARN:
            key = (task.name, task.n, seed)
            if key not in LEARNT:
                warm = task
                if task.name.startswith("sim-"):
                    warm = sim_task(task.name[4:], task.n, LEARN, 10_000 + seed)
                LEARNT[key] = learn_profile(
                    warm, range(min(LEARN, len(warm.truth_score))), seed + 1
                )
            PROFILE = LEARNT[key]
        RULES.clear()
        runs = run_prompts(task, config, seed, range(prompts))
        for p, (pick, c, order, confidence) in enumerate(runs):
            score = task.truth_score[p]
            acc.append(float(task.right(p, pick)) if pick >= 0 else 0.0)
            rules = PICKS.setdefault((task.name, config), {"mean": [], "pbest": [], "own": []})
            for rule, chosen in RULES[p].items():
                rules[rule].append(float(task.right(p, chosen)))
            if not math.isnan(confidence):
                CALIBRATION.setdefault((task.name, config), []).append((confidence, acc[-1]))
            regret.append(float(score.max() - score[pick]) if pick >= 0 else float("nan"))
            if len(order) == task.n and np.ptp(score) > 0:
                tau.append(float(kendalltau(-np.argsort(order), score).statistic))
            calls.append(float(c))
    strategy, swap, budget = config
    row: dict[str, Any] = {"task": task.name, "n": task.n, "strategy": strategy, "swap": swap}
    row["budget"] = "" if budget is None else budget
    row["runs"] = len(acc)
    for name, values in (("top1", acc), ("regret", regret), ("tau", tau), ("calls", calls)):
        mean, half = interval([v for v in values if not math.isnan(v)] or [float("nan")])
        row[name], row[name + "_ci"] = round(mean, 4), round(half, 4)
    return row


def adaptive_configs(n: int, core: bool = False) -> list[Config]:
    """Adaptive at several budgets, its default, and ``adaptive_p50`` capped at ``4 N``."""
    if core:
        budgets = sorted({n, 2 * n, 4 * n})
    else:
        budgets = sorted({max(2, n // 2), n, 2 * n, 4 * n, min(8 * n, 2 * n * (n - 1))})
    configs: list[Config] = [("adaptive", "auto", b) for b in budgets]
    return [*configs, ("adaptive", "auto", None), ("adaptive_p50", "auto", 4 * n)]


CORE: list[Config] = [
    ("knockout", "both", None),
    ("knockout", "auto", None),
    ("swiss", "both", None),
    ("swiss", "auto", None),
    ("round_robin", "both", None),
    ("round_robin", "random", None),
    ("circular", "none", None),
]
"""``--grid core``: the fixed strategies a reader compares adaptive with."""


def vicuna(n: int, seeds: Sequence[int], configs: Sequence[Config]) -> list[dict[str, Any]]:
    rows = []
    for seed in seeds:
        task = vicuna_task(n, seed)
        prompts = len(task.truth_score)
        # The reference: the full both-orders round-robin's Bradley-Terry strengths; a pick is
        # right if its strength equals the top one (any of an exactly tied top).
        for p in range(prompts):
            task.truth_score[p] = _reference_score(task, seed, p)
        for config in configs:
            row = measure(task, config, [seed], prompts)
            rows.append(row)
    return _pool(rows)


def _reference_score(task: Task, seed: int, prompt: int) -> np.ndarray:
    from genrm_rank.aggregators import bradley_terry
    from genrm_rank.results import judgements_to_comparisons

    scheduler = make_strategy("round_robin", task.n, swap="both", seed=seed)
    while not scheduler.done:
        for call in scheduler.next_pairs():
            scheduler.record(call, task.judge(prompt, call))
    comparisons = judgements_to_comparisons(task.n, scheduler.judgements())
    fit = bradley_terry(comparisons, alpha=DEFAULT_ALPHA, fit_position_bias=True)
    params = np.round(np.asarray(fit.params), 9)
    return params


def _pool(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pool per-seed rows of the same configuration (intervals from the pooled runs)."""
    pooled: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in rows:
        pooled.setdefault((row["task"], row["strategy"], row["swap"], row["budget"]), []).append(
            row
        )
    out = []
    for group in pooled.values():
        runs = sum(r["runs"] for r in group)
        row = dict(group[0])
        row["runs"] = runs
        for name in ("top1", "regret", "tau", "calls"):
            mean = sum(r[name] * r["runs"] for r in group) / runs
            # Combine the per-seed half-widths as independent means' variances.
            var = sum((r[name + "_ci"] / 1.96) ** 2 * r["runs"] ** 2 for r in group) / runs**2
            row[name], row[name + "_ci"] = round(mean, 4), round(1.96 * math.sqrt(var), 4)
        out.append(row)
    return out


FIELDS = ["task", "n", "strategy", "swap", "budget", "runs"] + [
    f"{m}{s}" for m in ("top1", "regret", "tau", "calls") for s in ("", "_ci")
]


def write(rows: list[dict[str, Any]], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)


def print_pick_rules() -> None:
    """Accuracy of each pick rule with its interval, and each rule's paired difference from
    the strategy's own pick (mean and 95% interval of the per-prompt difference)."""
    print("\n| task | strategy | swap | budget | own | mean | pbest | mean - own | pbest - own |")
    print("|---|---|---|---|---|---|---|---|---|")
    for (name, (strategy, swap, budget)), rules in PICKS.items():
        cells = []
        for rule in ("own", "mean", "pbest"):
            mean, half = interval(rules[rule])
            cells.append(f"{mean:.3f} ± {half:.3f}")
        for rule in ("mean", "pbest"):
            diff = np.asarray(rules[rule]) - np.asarray(rules["own"])
            mean, half = interval(diff.tolist())
            cells.append(f"{mean:+.4f} ± {half:.4f}")
        label = "" if budget is None else budget
        print(f"| {name} | {strategy} | {swap} | {label} | " + " | ".join(cells) + " |")


def print_calibration() -> None:
    """Agreement by P(best) at the stop: a calibrated P(best) is right about that often."""
    print(
        "\n| task | strategy | budget | "
        + " | ".join(
            f"P(best) in [{lo:.2f}, {min(hi, 1.0):.2f}]" for lo, hi in itertools.pairwise(BINS)
        )
        + " |"
    )
    print("|---|---|---|" + "---|" * (len(BINS) - 1))
    for (task, (strategy, _, budget)), runs in CALIBRATION.items():
        x = np.asarray(runs)
        cells = []
        for lo, hi in itertools.pairwise(BINS):
            hit = x[(x[:, 0] >= lo) & (x[:, 0] < hi), 1]
            cells.append(f"{hit.mean():.3f} (n={hit.size})" if hit.size else "")
        print(
            f"| {task} | {strategy} | {'' if budget is None else budget} | "
            + " | ".join(cells)
            + " |"
        )


def print_rows(rows: list[dict[str, Any]]) -> None:
    for r in rows:
        print(
            f"| {r['task']} | {r['n']} | {r['strategy']} | {r['swap']} | {r['budget']} | "
            f"{r['top1']:.3f} ± {r['top1_ci']:.3f} | {r['regret']:.3f} ± {r['regret_ci']:.3f} | "
            f"{r['tau']:.3f} ± {r['tau_ci']:.3f} | {r['calls']:.1f} ± {r['calls_ci']:.1f} | "
            f"{r['runs']} |",
            flush=True,
        )


def plot(csv_path: Path, out: Path) -> list[Path]:
    """One PNG per task and N: top-1 accuracy against mean calls, with 95% intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with csv_path.open() as fh:
        rows = list(csv.DictReader(fh))
    written = []
    for task, n in sorted({(r["task"], int(r["n"])) for r in rows}):
        sub = [r for r in rows if r["task"] == task and int(r["n"]) == n]
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for label in sorted({(r["strategy"], r["swap"]) for r in sub}):
            pts = sorted(
                (float(r["calls"]), float(r["top1"]), float(r["top1_ci"]))
                for r in sub
                if (r["strategy"], r["swap"]) == label
            )
            xs, ys, es = zip(*pts, strict=True)
            style = "-o" if label[0] == "adaptive" else "s" if label[0] == "adaptive_p50" else "o"
            ax.errorbar(xs, ys, yerr=es, fmt=style, capsize=3, label=f"{label[0]} / {label[1]}")
        ax.set_xscale("log")
        ax.set_xlabel("mean judge calls per prompt (log scale)")
        ax.set_ylabel("top-1 accuracy (95% interval)")
        ax.set_title(f"{task}, N = {n}: accuracy against calls")
        ax.legend(fontsize=6, ncol=2)
        fig.tight_layout()
        path = out / f"quality_{task}_n{n}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


SUMMARY: list[tuple[str, str, str]] = [
    ("knockout", "both", ""),
    ("swiss", "both", ""),
    ("round_robin", "both", ""),
    ("adaptive", "auto", "2N"),
    ("adaptive", "auto", "4N"),
    ("adaptive_p50", "auto", "4N"),
]


def summary(paths: Sequence[Path]) -> None:
    """Print one line per (task, N) from result CSVs: top-1 (calls) of the SUMMARY columns."""
    rows = []
    for path in paths:
        with path.open() as fh:
            rows += list(csv.DictReader(fh))
    heads = [f"{s} {w} {b}".strip() for s, w, b in SUMMARY]
    print("| task | N | " + " | ".join(heads) + " |")
    print("|---|---|" + "---|" * len(heads))
    for task, n in sorted({(r["task"], int(r["n"])) for r in rows}, key=lambda k: (k[0], k[1])):
        cells = []
        for strategy, swap, budget in SUMMARY:
            want = "" if not budget else str(n * int(budget[0]))
            hit = [
                r
                for r in rows
                if (r["task"], int(r["n"]), r["strategy"], r["swap"], r["budget"])
                == (task, n, strategy, swap, want)
            ]
            if hit:
                r = hit[0]
                cells.append(
                    f"{float(r['top1']):.3f} ± {float(r['top1_ci']):.3f} ({float(r['calls']):.0f})"
                )
            else:
                cells.append("")
        print(f"| {task} | {n} | " + " | ".join(cells) + " |")


def _parse_config(text: str, n: int) -> Config:
    """``STRATEGY:SWAP[:BUDGET]``, the budget a number or ``kN`` (``4N`` is ``4 * n``)."""
    parts = text.split(":")
    if len(parts) not in (2, 3):
        raise ValueError(f"Argument '--only' must be STRATEGY:SWAP[:BUDGET], not {text!r}.")
    budget: int | None = None
    if len(parts) == 3:
        word = parts[2].upper()
        budget = int(word[:-1]) * n if word.endswith("N") else int(word)
    return parts[0], parts[1], budget


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="headline rows only, few prompts")
    parser.add_argument("--prompts", type=int, default=200, help="simulated prompts per seed")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--sizes", type=int, nargs="+", default=[4, 8, 16, 32, 64, 128, 256])
    parser.add_argument("--regimes", nargs="+", default=list(REGIMES))
    parser.add_argument(
        "--parts",
        nargs="+",
        choices=("sim", "vicuna", "gsm8k", "batching"),
        default=["sim", "vicuna", "gsm8k"],
        help="batching: adaptive at batch 1, 2, 4, 8 (Vicuna N=8; simulated biased N=16)",
    )
    parser.add_argument("--out", type=Path, default=None, help="folder for CSV and PNG files")
    parser.add_argument("--name", default="quality", help="CSV file name (without .csv)")
    parser.add_argument("--plot-only", action="store_true")
    parser.add_argument(
        "--calibration",
        action="store_true",
        help="also print agreement by adaptive's P(best) at the stop (is P(best) calibrated?)",
    )
    parser.add_argument(
        "--pick-rules",
        action="store_true",
        help="also print the accuracy of three pick rules on the same rankings (issue 19)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="judge profile (JSON, JudgeProfile.save) for every scheduler and ranking",
    )
    parser.add_argument(
        "--learn-profile",
        type=int,
        default=0,
        metavar="K",
        help="learn a profile per task from a both-orders knockout of K warm-up prompts "
        "(simulated: K fresh prompts of the regime; Vicuna: K questions, another order)",
    )
    parser.add_argument(
        "--grid",
        choices=("full", "core"),
        default="full",
        help="full: every strategy x swap mode; core: CORE and adaptive at N, 2N, 4N",
    )
    parser.add_argument(
        "--rr-both-max",
        type=int,
        default=16,
        help="largest N with the both-orders round-robin (4,032 calls a prompt at N=64)",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        default=None,
        metavar="STRATEGY:SWAP[:BUDGET]",
        help="sim and vicuna parts: run only these configurations (BUDGET as a number or kN)",
    )
    parser.add_argument(
        "--summary",
        type=Path,
        nargs="+",
        default=None,
        help="print the compact summary table of these result CSVs and exit",
    )
    args = parser.parse_args()
    if args.summary:
        summary(args.summary)
        return
    if args.plot_only:
        for path in plot(args.out / f"{args.name}.csv", args.out):
            print(path)
        return
    global PROFILE, LEARN
    if args.profile is not None:
        PROFILE = JudgeProfile.load(args.profile)
    LEARN = args.learn_profile
    start = time.perf_counter()
    seeds = list(range(args.seeds))
    rows: list[dict[str, Any]] = []
    print("| task | N | strategy | swap | budget | top-1 | regret | Kendall tau | calls | runs |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    if "vicuna" in args.parts:
        configs = FIXED + adaptive_configs(8) + [("adaptive", "auto", 14)]
        if args.quick:
            configs = [("knockout", "both", None), ("swiss", "both", None)]
            configs += [("round_robin", "random", None), ("adaptive", "auto", None)]
        if args.only:
            configs = [_parse_config(text, 8) for text in args.only]
        part = vicuna(8, seeds, configs)
        print_rows(part)
        rows += part
    if "batching" in args.parts:
        labels = ["adaptive_p50"] + [f"adaptive_p50_b{k}" for k in (2, 4, 8)]
        labels += [f"adaptive_b{k}" for k in (1, 2, 4, 8)]
        part = vicuna(8, seeds, [(label, "auto", 32) for label in labels])
        print_rows(part)
        rows += part
        for label in labels:
            sim = [
                measure(
                    sim_task("biased", 16, args.prompts, s), (label, "auto", 64), [s], args.prompts
                )
                for s in seeds
            ]
            print_rows(_pool(sim))
            rows += _pool(sim)
    if "gsm8k" in args.parts:
        task = gsm8k_task(0)
        configs = FIXED + adaptive_configs(4)
        if args.quick:
            configs = [("knockout", "both", None), ("adaptive", "auto", None)]
        elif args.grid == "core":
            configs = CORE + adaptive_configs(4, core=True)
        for config in configs:
            part = [measure(gsm8k_task(s), config, [s], len(task.truth_score)) for s in seeds]
            print_rows(_pool(part))
            rows += _pool(part)
    if "sim" in args.parts:
        for regime in args.regimes:
            for n in args.sizes:
                full = args.grid == "full"
                configs = (FIXED if full else CORE) + adaptive_configs(n, core=not full)
                if n > args.rr_both_max:  # a both-orders round-robin of 64: 4,032 calls a prompt
                    configs = [c for c in configs if c[0] != "round_robin" or c[1] != "both"]
                if args.quick:
                    configs = [("knockout", "both", None), ("swiss", "both", None)]
                    configs += [("adaptive", "auto", None)]
                if args.only:
                    configs = [_parse_config(text, n) for text in args.only]
                for config in configs:
                    part = [
                        measure(sim_task(regime, n, args.prompts, s), config, [s], args.prompts)
                        for s in seeds
                    ]
                    print_rows(_pool(part))
                    rows += _pool(part)
    if args.calibration:
        print_calibration()
    if args.pick_rules:
        print_pick_rules()
    for (name, n, seed), learnt in LEARNT.items():
        print(f"learnt profile {name} N={n} seed {seed}: {learnt}")
    if args.out is not None:
        write(rows, args.out / f"{args.name}.csv")
        for path in plot(args.out / f"{args.name}.csv", args.out):
            print(path)
    print(f"\n{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
