"""Calibration of the strength intervals and of P(best), per covariance method.

For each regime and strategy, many prompts of N candidates are ranked through the public
``arank_many`` (default spec and judge profile: the profile's prior and pooled dispersion, the
position term, 95% intervals); the verdicts of each prompt are then refitted exactly as
``build_ranking`` fits them, once per covariance method (``quasi``, the default; ``sandwich``,
which takes no prior and keeps ``alpha``; ``model``), and two things are measured:

- **coverage** of the nominal 95% intervals: of each centred strength (the interval a
  ``Ranking`` prints, ``strength +- 1.96 stderr``) and of each pairwise difference, against the
  truth. The truth is what the judge would say with every pair judged: on the Vicuna record the
  full both-orders round-robin fit of the same question; on a simulated prompt (``--truth
  full``, the default) the same estimator (prior, position term) fitted to the judge's
  *expected* outcome on every ordered pair, computed in closed form from the judge's model.
  ``--truth design`` measures instead against the pseudo-true value of the estimator on the
  prompt's own design (White, 1982): the fit to the expected outcome of the judged pairs only.
  The two differ where a design leaves strengths to the prior (a knockout's first-round losers
  have one match): the design's own pseudo-truth carries the same shrinkage as the estimate,
  so it asks how much the estimate varies, not how far it is from the judge's strength.
  Intervals are the mean over prompts +- 1.96 SE of the per-prompt coverage.
- **reliability** of P(best) (4,000 posterior draws): candidates are binned by predicted
  P(best) in deciles; each bin's observed frequency of being the true best (simulated: the
  highest quality; Vicuna: the reference round-robin's pick) with a Wilson 95% interval.

Regimes (simulated, Bradley-Terry noise, qualities ~ N(0, 1)):

- ``clean``: ``SimulatedJudge`` with noise_scale 0.2 (orders ~92% of random pairs right);
- ``noisy``: noise_scale 0.35, the published GenRM accuracy (~87%, see bench_strategies.py);
- ``position``: noisy plus a slot-1 bias winning 65% of close calls (bias 0.619 * 0.35);
- ``ties``: noisy, but a judge that calls a tie (ranking 3.5) when its latent margin is within
  0.5 of zero (a custom judge: the GenRM protocol has no tie value);
- ``intransitive``: noisy, plus a cycle 0 > 1 > 2 > 0 of +1.5 log-odds on candidates 0-2
  (a custom judge; Bradley-Terry cannot represent it, so the truth is a pseudo-truth).

Usage::

    python benchmarks/calibration.py            # the figures in benchmarks/README.md
    python benchmarks/calibration.py --quick    # a smoke run (a minute)
    python benchmarks/calibration.py --truth design   # against each design's pseudo-truth
    python benchmarks/calibration.py --knockout-diagnosis noisy   # why knockouts over-cover it

References
----------
White, "Maximum likelihood estimation of misspecified models", Econometrica 50 (1982).
Wilson, "Probable inference, the law of succession, and statistical inference", JASA 22 (1927).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import importlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from scipy.special import expit

from genrm_rank import PromptInput, RankSpec, arank_many
from genrm_rank.aggregators import BradleyTerryPrior, Comparisons
from genrm_rank.aggregators.bradley_terry import CovarianceMethod, bradley_terry
from genrm_rank.aggregators.identification import identify
from genrm_rank.judge_profile import DEFAULT_PROFILE, JudgeProfile, learn_judge_profile
from genrm_rank.judges.base import PairRequest
from genrm_rank.judges.replay import ReplayJudge
from genrm_rank.judges.simulated import SimulatedJudge
from genrm_rank.results import Ranking, judgements_to_comparisons
from genrm_rank.verdict import Verdict

ROOT = Path(__file__).resolve().parents[1]
VICUNA_RECORD = ROOT / "tests" / "data" / "qlora" / "vicuna_gpt4_pairwise.jsonl.gz"
PLOT = ROOT / "benchmarks" / "results" / "calibration_reliability.png"
METHODS: tuple[CovarianceMethod, ...] = ("quasi", "sandwich", "model")
STRATEGIES = ("round_robin", "knockout")
STRATEGIES_RUN: list[str] = list(STRATEGIES)
NOISE_SCALE = 0.35
POSITION_LOG_ODDS = 0.619  # sigmoid(0.619) = 0.65: slot 1 wins 65% of close calls
Z95 = 1.959963984540054
BANDS = (-2.5, -1.0, 0.0, 1.0, 2.5)  # SimulatedJudge's ranking bands (thresholds 1.0, 2.5)
TIE_HALF_WIDTH = 0.5
CYCLE_LOG_ODDS = 1.5


@dataclass(frozen=True)
class Regime:
    """A simulated judge: noise scale, slot-1 bias (log-odds), tie zone, cycle strength."""

    name: str
    noise_scale: float
    bias: float = 0.0
    tie: float = 0.0
    cycle: float = 0.0

    def margin(self, q: NDArray[np.float64]) -> NDArray[np.float64]:
        """Latent margin of each ordered pair (slot 1 = row), cycle included."""
        m = (q[:, None] - q[None, :]) / self.noise_scale + self.bias
        if self.cycle:
            for a, b in ((0, 1), (1, 2), (2, 0)):
                m[a, b] += self.cycle
                m[b, a] -= self.cycle
        return m

    def expected_outcome(self, q: NDArray[np.float64]) -> NDArray[np.float64]:
        """E[preference of slot 1] for every ordered pair, in closed form (logistic noise).

        The preference is 0.2 per band edge the latent ``margin + eps`` clears (rankings 6..1
        give 0, 0.2, ..., 1); in the tie zone ``|x| < tie`` it is 0.5.
        """
        m = self.margin(q)
        out = sum(0.2 * expit(m - t) for t in BANDS)
        if self.tie:
            in_zone = expit(m + self.tie) - expit(m - self.tie)
            # Inside the zone the bands would have paid 0.4 (x < 0) or 0.6 (x > 0); pay 0.5.
            below = expit(m + self.tie) - expit(m)
            above = expit(m) - expit(m - self.tie)
            out = out - 0.4 * below - 0.6 * above + 0.5 * in_zone
        result: NDArray[np.float64] = np.asarray(out, dtype=float)
        return result


REGIMES = (
    Regime("clean", 0.2),
    Regime("noisy", NOISE_SCALE),
    Regime("position", NOISE_SCALE, bias=POSITION_LOG_ODDS),
    Regime("ties", NOISE_SCALE, tie=TIE_HALF_WIDTH),
    Regime("intransitive", NOISE_SCALE, cycle=CYCLE_LOG_ODDS),
)


class BandJudge:
    """A custom simulated GenRM for the ties and cycle regimes (verdicts, no text).

    Draws ``x = margin + logistic noise`` and answers the SimulatedJudge's ranking band, or a
    tie (ranking 3.5) when ``|x| < tie``. Seeded per ordered pair and repeat.
    """

    def __init__(
        self, regime: Regime, index: dict[str, tuple[int, NDArray[np.float64]]], seed: int
    ):
        self.regime = regime
        self.index = index
        self.seed = seed
        self._repeats: dict[tuple[str, str], int] = {}

    async def judge(self, request: PairRequest) -> Verdict:
        first, second = request.response_1, request.response_2
        (i, q), (j, _) = self.index[first], self.index[second]
        key = (first, second)
        repeat = self._repeats.get(key, 0)
        self._repeats[key] = repeat + 1
        digest = hashlib.blake2b(f"{self.seed}\x00{first}\x00{second}\x00{repeat}".encode())
        rng = np.random.default_rng(int.from_bytes(digest.digest()[:8], "little"))
        u = float(rng.uniform(1e-12, 1 - 1e-12))
        x = float(self.regime.margin(q)[i, j]) + math.log(u / (1 - u))
        if abs(x) < self.regime.tie:
            return Verdict(ranking=3.5)
        cleared = sum(x > t for t in BANDS)
        return Verdict(ranking=6 - cleared)


# ---------------------------------------------------------------------------- measurement


@dataclass
class Tally:
    """Coverage per prompt and (P(best), is best) pairs, for one regime x strategy x method."""

    centred: list[float] = field(default_factory=list)
    pairwise: list[float] = field(default_factory=list)
    p_best: list[float] = field(default_factory=list)
    is_best: list[bool] = field(default_factory=list)
    no_mle: int = 0
    """Prompts with no finite unpenalised MLE (separation: e.g. a candidate that wins every
    verdict); alpha > 0 bounds the fit and P(best) is still reported."""
    unidentified: int = 0
    """Prompts with a strength the data do not identify (a disconnected graph): P(best) NaN."""
    prompts: int = 0


PROFILE: JudgeProfile = DEFAULT_PROFILE
"""The judge profile of the refits (``--learn-profile``: learnt per regime and strategy)."""
LEARN = 0


def _fit(comparisons: Comparisons, method: CovarianceMethod, spec: RankSpec, seed: int):  # type: ignore[no-untyped-def]
    """Refit as build_ranking does: the default judge profile's prior and pooled dispersion
    (issue 19) for ``quasi`` and ``model``; ``sandwich`` takes no prior, so it keeps the
    ``alpha`` penalty and drops an unidentified position term, as build_ranking once did."""
    if method != "sandwich":
        prior = BradleyTerryPrior.from_profile(PROFILE)
        fit = bradley_terry(
            comparisons, fit_position_bias=spec.fit_position_bias, covariance=method, prior=prior
        )
        return fit, spec.fit_position_bias
    use_h = spec.fit_position_bias and bool(
        identify(*comparisons.pair_totals(), fit_position_bias=True).position_bias_identified
    )
    fit = bradley_terry(comparisons, alpha=spec.alpha, fit_position_bias=use_h, covariance=method)
    return fit, use_h


def _measure(
    tallies: dict[CovarianceMethod, Tally],
    ranking: Ranking,
    truth_of: Callable[[Comparisons, bool], NDArray[np.float64]],
    best: int,
    spec: RankSpec,
    seed: int,
) -> None:
    n = len(ranking.candidates)
    comparisons = judgements_to_comparisons(n, list(ranking.judgements))
    iu = np.triu_indices(n, 1)
    for method in tallies:
        fit, use_h = _fit(comparisons, method, spec, seed)
        tally = tallies[method]
        tally.prompts += 1
        if method == "quasi" and PROFILE is DEFAULT_PROFILE:  # what the Ranking printed
            printed = np.array([s.strength for s in ranking.scores])
            if not np.allclose(printed, fit.params, atol=1e-9):
                raise RuntimeError("refit does not reproduce the Ranking's strengths")
        tally.no_mle += not fit.identification.mle_exists
        tally.unidentified += not bool(fit.identification.identified.all())
        truth = truth_of(comparisons, use_h)
        # Only what the data identify: an unidentified strength has an infinite standard error,
        # whose interval "covers" trivially; such prompts are counted apart.
        se = fit.standard_errors
        seen = np.isfinite(se)
        if seen.any():
            hits = np.abs(fit.params - truth)[seen] <= Z95 * se[seen]
            tally.centred.append(float(np.mean(hits)))
        cov = fit.covariance
        var = np.diag(cov)[:, None] + np.diag(cov)[None, :] - 2.0 * cov
        diff = fit.params[:, None] - fit.params[None, :]
        true_diff = truth[:, None] - truth[None, :]
        finite = np.isfinite(var)[iu]
        if finite.any():
            sd = np.sqrt(np.where(np.isfinite(var), var, 0.0))[iu]
            hits = (np.abs(diff - true_diff)[iu] <= Z95 * sd)[finite]
            tally.pairwise.append(float(np.mean(hits)))
        p = fit.p_best(n_samples=4000, seed=seed)
        if np.all(np.isfinite(p)):
            tally.p_best.extend(p.tolist())
            tally.is_best.extend(i == best for i in range(n))


def _truth_fit(spec: RankSpec, expected: NDArray[np.float64], truth: str):  # type: ignore[no-untyped-def]
    n = expected.shape[0]
    if truth == "full":  # every ordered pair once, as the full both-orders round-robin
        rows, cols = np.nonzero(~np.eye(n, dtype=bool))
        everything = Comparisons.from_arrays(
            n, first=rows.astype(np.int64), second=cols.astype(np.int64),
            outcome=expected[rows, cols],
        )  # fmt: skip
        full: NDArray[np.float64] = bradley_terry(
            everything, alpha=spec.alpha, fit_position_bias=spec.fit_position_bias
        ).params
        return lambda comparisons, use_h: full

    def truth_of(comparisons: Comparisons, use_h: bool) -> NDArray[np.float64]:
        weight, _ = comparisons.pair_totals()
        rows, cols = np.nonzero(weight)
        expected_rows = Comparisons.from_arrays(
            n,
            first=rows.astype(np.int64),
            second=cols.astype(np.int64),
            outcome=expected[rows, cols],
            weight=weight[rows, cols],
        )
        fit = bradley_terry(expected_rows, alpha=spec.alpha, fit_position_bias=use_h)
        params: NDArray[np.float64] = fit.params
        return params

    return truth_of


async def _rank(prompts: list[PromptInput], judge: object, spec: RankSpec) -> dict[object, Ranking]:
    out: dict[object, Ranking] = {}
    async for result in arank_many(prompts, judge=judge, spec=spec, concurrency=512):  # type: ignore[arg-type]
        if result.ranking is None:
            raise RuntimeError(f"prompt {result.prompt.key}: {result.error}")
        out[result.prompt.key] = result.ranking
    return out


def simulate(
    regime: Regime,
    n: int,
    n_prompts: int,
    seed: int,
    truth: str = "full",
    methods: tuple[CovarianceMethod, ...] = METHODS,
) -> dict[str, dict[CovarianceMethod, Tally]]:
    """Rank ``n_prompts`` simulated prompts with each strategy; tally each covariance method."""
    rng = np.random.default_rng([seed, REGIMES.index(regime)])
    quality = rng.standard_normal((n_prompts, n))
    texts = [[f"seed {seed} prompt {p} candidate {i}" for i in range(n)] for p in range(n_prompts)]
    prompts = [
        PromptInput(f"seed {seed} prompt {p}", texts[p], prompt_id=f"{seed}-{p}", key=p)
        for p in range(n_prompts)
    ]
    index = {t: (i, quality[p]) for p in range(n_prompts) for i, t in enumerate(texts[p])}
    out: dict[str, dict[CovarianceMethod, Tally]] = {}
    for strategy in STRATEGIES_RUN:
        spec = RankSpec(strategy=strategy, swap="both", seed=seed)  # type: ignore[arg-type]
        judge: object
        if regime.tie or regime.cycle:
            judge = BandJudge(regime, index, seed)
        else:
            judge = SimulatedJudge(
                qualities={t: float(q[i]) for t, (i, q) in index.items()},
                noise_scale=regime.noise_scale,
                position_bias=regime.bias * regime.noise_scale,
                seed=seed,
            )
        rankings = asyncio.run(_rank(prompts, judge, spec))
        tallies = {m: Tally() for m in methods}
        first = 0
        if LEARN:  # learn on the first LEARN prompts, measure on the rest
            global PROFILE
            PROFILE = learn_judge_profile(
                [judgements_to_comparisons(n, list(rankings[p].judgements)) for p in range(LEARN)]
            )
            first = LEARN
            print(f"learnt profile ({regime.name}, {strategy}, seed {seed}): {PROFILE}")
        for p in range(first, n_prompts):
            truth_of = _truth_fit(spec, regime.expected_outcome(quality[p]), truth)
            best = int(np.argmax(quality[p]))
            _measure(tallies, rankings[p], truth_of, best, spec, seed * 100_003 + p)
        out[strategy] = tallies
    return out


def vicuna(
    seed: int, methods: tuple[CovarianceMethod, ...] = METHODS
) -> dict[str, dict[CovarianceMethod, Tally]]:
    """Knockout and one-order round-robin on GPT-4's record, against the full round-robin."""
    judge = ReplayJudge.from_jsonl(VICUNA_RECORD)
    prompts = []
    for qid in judge.prompt_ids():
        systems = judge.candidates(qid)
        prompts.append(
            PromptInput(f"question {qid}", systems, prompt_id=qid, candidate_ids=systems, key=qid)
        )
    reference = asyncio.run(_rank(prompts, judge, RankSpec(strategy="round_robin", swap="both")))
    out: dict[str, dict[CovarianceMethod, Tally]] = {}
    for strategy, swap in (("knockout", "both"), ("round_robin", "random")):
        spec = RankSpec(strategy=strategy, swap=swap, seed=seed)  # type: ignore[arg-type]
        rankings = asyncio.run(_rank(prompts, judge, spec))
        tallies = {m: Tally() for m in methods}
        for prompt in prompts:
            ref = reference[prompt.key]
            truth = np.array([s.strength for s in ref.scores])
            best = ref.best
            if best is None:
                continue
            _measure(tallies, rankings[prompt.key], lambda c, h, t=truth: t, best, spec, seed)
        out[f"{strategy} ({swap})"] = tallies
    return out


# ---------------------------------------------------------------------------- reporting


def wilson(k: int, n: int) -> tuple[float, float]:
    """Wilson score 95% interval for ``k`` successes in ``n`` trials."""
    if n == 0:
        return (math.nan, math.nan)
    p = k / n
    centre = (p + Z95**2 / (2 * n)) / (1 + Z95**2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / (1 + Z95**2 / n)
    return (centre - half, centre + half)


def mean_ci(values: list[float]) -> str:
    a = np.asarray(values)
    half = Z95 * a.std(ddof=1) / math.sqrt(len(a)) if len(a) > 1 else math.nan
    return f"{100 * a.mean():.1f} +- {100 * half:.1f}"


def reliability(tally: Tally) -> list[tuple[float, float, float, float, int]]:
    """Per decile of predicted P(best): mean predicted, observed, Wilson low/high, count."""
    p = np.asarray(tally.p_best)
    hit = np.asarray(tally.is_best)
    bins = np.minimum((p * 10).astype(int), 9)
    rows = []
    for b in range(10):
        sel = bins == b
        k, m = int(hit[sel].sum()), int(sel.sum())
        if m == 0:
            continue
        low, high = wilson(k, m)
        rows.append((float(p[sel].mean()), k / m, low, high, m))
    return rows


def worst_gap(tally: Tally, min_count: int = 30) -> str:
    """Largest |observed - predicted| over deciles with at least ``min_count`` candidates."""
    gaps = [(abs(o - p), p, o, lo, hi) for p, o, lo, hi, m in reliability(tally) if m >= min_count]
    if not gaps:
        return "-"
    gap, p, o, lo, hi = max(gaps)
    return f"{gap:.3f} (pred {p:.2f}, obs {o:.2f} [{lo:.2f}, {hi:.2f}])"


def deciles_off(tally: Tally, tolerance: float = 0.05, min_count: int = 30) -> str:
    """Deciles whose observed frequency is shown to be more than ``tolerance`` off.

    A decile counts when its Wilson 95% interval lies wholly outside ``predicted +-
    tolerance``; a point gap above the tolerance inside a wide interval is noise, not evidence.
    """
    rows = [r for r in reliability(tally) if r[4] >= min_count]
    off = sum(hi < p - tolerance or lo > p + tolerance for p, _, lo, hi, _ in rows)
    return f"{off}/{len(rows)}"


def top_bin(tally: Tally, low: float = 0.99) -> str:
    """Candidates with predicted P(best) >= ``low``: mean predicted, observed [Wilson 95%]."""
    p = np.asarray(tally.p_best)
    hit = np.asarray(tally.is_best)
    sel = p >= low
    m = int(sel.sum())
    if m == 0:
        return "-"
    k = int(hit[sel].sum())
    lo, hi = wilson(k, m)
    return f"{p[sel].mean():.3f} / {k / m:.3f} [{lo:.3f}, {hi:.3f}] ({m})"


def decile_table(label: str, tally: Tally) -> None:
    """One line: each decile's predicted / observed [Wilson 95%] (count)."""
    cells = [
        f"{p:.2f}/{o:.2f} [{lo:.2f}, {hi:.2f}] ({m})" for p, o, lo, hi, m in reliability(tally)
    ]
    print(f"| {label} | " + " | ".join(cells) + " |")


def report(label: str, results: dict[str, dict[CovarianceMethod, Tally]]) -> None:
    for strategy, tallies in results.items():
        for method, t in tallies.items():
            print(
                f"| {label} | {strategy} | {method} | {mean_ci(t.centred)} | "
                f"{mean_ci(t.pairwise)} | {worst_gap(t)} | {deciles_off(t)} | "
                f"{t.no_mle}/{t.prompts} | {t.unidentified}/{t.prompts} | {top_bin(t)} |"
            )


def plot(panels: list[tuple[str, dict[CovarianceMethod, Tally]]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = (len(panels) + 1) // 2
    fig, axes = plt.subplots(2, columns, figsize=(3.6 * columns, 7.4), squeeze=False)
    for ax in axes.flat[len(panels) :]:
        ax.set_visible(False)
    for ax, (title, tallies) in zip(axes.flat, panels, strict=False):
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
        for k, method in enumerate(tallies):
            rows = reliability(tallies[method])
            x = np.array([r[0] for r in rows]) + (k - 1) * 0.006
            y = np.array([r[1] for r in rows])
            err = np.clip([[r[1] - r[2] for r in rows], [r[3] - r[1] for r in rows]], 0.0, None)
            ax.errorbar(x, y, yerr=err, marker="o", ms=3, capsize=2, lw=1, label=method)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("predicted P(best)")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
    for row in axes:
        row[0].set_ylabel("observed frequency of being best")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    PLOT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(PLOT, dpi=120)


def merge(
    into: dict[str, dict[CovarianceMethod, Tally]], more: dict[str, dict[CovarianceMethod, Tally]]
) -> None:
    for strategy, tallies in more.items():
        if strategy not in into:
            into[strategy] = tallies
            continue
        for method, t in tallies.items():
            d = into[strategy][method]
            d.centred += t.centred
            d.pairwise += t.pairwise
            d.p_best += t.p_best
            d.is_best += t.is_best
            d.no_mle += t.no_mle
            d.unidentified += t.unidentified
            d.prompts += t.prompts


# ---------------------------------------------------------------------------- knockout diagnosis


def knockout_diagnosis(regime: Regime, n: int, n_prompts: int, seed: int) -> None:
    """Why knockout intervals over-cover: coverage by verdicts per candidate, three ways.

    (1) as benchmarked (the bracket's own verdicts); (2) the realised bracket kept as a fixed
    design and every verdict redrawn from the judge's model (no outcome-dependent design);
    (3) the ``quasi`` covariance with the information evaluated at the pseudo-truth instead
    of the fit (an oracle; fitted dispersion kept). Simulated regimes without ties or cycle.
    """
    from scipy.special import logit

    bt = importlib.import_module("genrm_rank.aggregators.bradley_terry")
    rng = np.random.default_rng([seed, 99])
    quality = rng.standard_normal((n_prompts, n))
    texts = [[f"s{seed} p{p} c{i}" for i in range(n)] for p in range(n_prompts)]
    prompts = [
        PromptInput(f"s{seed} p{p}", texts[p], prompt_id=f"{p}", key=p) for p in range(n_prompts)
    ]
    qualities = {t: float(quality[p][i]) for p in range(n_prompts) for i, t in enumerate(texts[p])}
    spec = RankSpec(strategy="knockout", swap="both", seed=seed)
    judge = SimulatedJudge(
        qualities=qualities,
        noise_scale=regime.noise_scale,
        position_bias=regime.bias * regime.noise_scale,
        seed=seed,
    )
    rankings = asyncio.run(_rank(prompts, judge, spec))
    redraw = np.random.default_rng([seed, 7])
    rows: dict[str, list[tuple[int, float, float, float]]] = {
        "as benchmarked": [], "fixed design, verdicts redrawn": [], "oracle information": []
    }  # fmt: skip
    for p in range(n_prompts):
        adaptive = judgements_to_comparisons(n, list(rankings[p].judgements))
        margin = regime.margin(quality[p])[adaptive.first, adaptive.second]
        x = margin + logit(redraw.uniform(1e-12, 1 - 1e-12, size=margin.shape))
        fixed = Comparisons.from_arrays(
            n,
            first=adaptive.first,
            second=adaptive.second,
            outcome=0.2 * sum((x > t).astype(float) for t in BANDS),
            weight=adaptive.weight,
        )
        for label, comparisons in (
            ("as benchmarked", adaptive),
            ("fixed design, verdicts redrawn", fixed),
        ):
            fit, use_h = _fit(comparisons, "quasi", spec, 0)
            weight, _ = comparisons.pair_totals()
            r, c = np.nonzero(weight)
            expected = Comparisons.from_arrays(
                n, first=r.astype(np.int64), second=c.astype(np.int64),
                outcome=regime.expected_outcome(quality[p])[r, c], weight=weight[r, c],
            )  # fmt: skip
            truth = bradley_terry(expected, alpha=spec.alpha, fit_position_bias=use_h)
            count = np.bincount(
                np.concatenate([comparisons.first, comparisons.second]), minlength=n
            )
            error = fit.params - truth.params
            for i in range(n):
                rows[label].append((int(count[i]), error[i], fit.standard_errors[i], 0.0))
            if label == "as benchmarked":
                x_true = truth.params if not use_h else np.append(truth.params, truth.position_bias)
                sums = bt._pair_sums(comparisons, comparisons.weight)
                info = bt._Pairs.of(*sums, x_true.shape[0]).information(x_true)
                precision = info / fit.dispersion + 2 * spec.alpha * np.eye(x_true.shape[0])
                se = np.sqrt(np.diag(bt._centred_inverse(precision, n))[:n])
                for i in range(n):
                    rows["oracle information"].append((int(count[i]), error[i], se[i], 0.0))
    print(f"knockout, {regime.name}, N = {n}, {n_prompts} prompts, seed {seed}:")
    print(
        "| evaluation | verdicts per candidate | candidates | coverage % | mean z^2 | mean SE "
        "| RMSE |"
    )
    print("|---|---|---|---|---|---|---|")
    for label, values in rows.items():
        a = np.array(values)
        for k in np.unique(a[:, 0]):
            b = a[a[:, 0] == k]
            z = b[:, 1] / b[:, 2]
            print(
                f"| {label} | {int(k)} | {len(b)} | {100 * np.mean(np.abs(z) <= Z95):.1f} | "
                f"{np.mean(z**2):.3f} | {np.mean(b[:, 2]):.3f} | "
                f"{np.sqrt(np.mean(b[:, 1] ** 2)):.3f} |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=400, help="simulated prompts per seed")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--n", type=int, default=8, help="candidates per prompt")
    parser.add_argument("--quick", action="store_true", help="60 prompts, one seed")
    parser.add_argument(
        "--truth",
        choices=("full", "design"),
        default="full",
        help="simulated truth: the judge's strengths on every pair (full) or the pseudo-truth "
        "of each prompt's own design (design)",
    )
    parser.add_argument(
        "--methods", nargs="+", choices=METHODS, default=list(METHODS), help="covariances"
    )
    parser.add_argument("--regimes", nargs="+", choices=[r.name for r in REGIMES], default=None)
    parser.add_argument("--no-vicuna", action="store_true", help="skip the Vicuna replay")
    parser.add_argument(
        "--learn-profile",
        type=int,
        default=0,
        metavar="K",
        help="refit under a profile learnt from the first K prompts of each regime and "
        "strategy, and measure the rest (simulated regimes only)",
    )
    parser.add_argument(
        "--strategies", nargs="+", default=list(STRATEGIES), help="strategies (both orders)"
    )
    parser.add_argument(
        "--knockout-diagnosis",
        metavar="REGIME",
        choices=[r.name for r in REGIMES if not (r.tie or r.cycle)],
        help="only the diagnosis of knockout over-coverage of the design's pseudo-truth "
        "(300 prompts, seed 0)",
    )
    args = parser.parse_args()
    global LEARN
    LEARN = args.learn_profile
    STRATEGIES_RUN[:] = args.strategies
    if args.knockout_diagnosis:
        regime = next(r for r in REGIMES if r.name == args.knockout_diagnosis)
        knockout_diagnosis(regime, args.n, 300, args.seeds[0])
        return
    if args.quick:
        args.prompts, args.seeds = 60, [0]
    methods = tuple(args.methods)
    regimes = [r for r in REGIMES if args.regimes is None or r.name in args.regimes]
    start = time.perf_counter()
    print(f"truth: {args.truth}; {args.prompts} prompts x seeds {args.seeds}; N = {args.n}\n")
    print(
        "| regime | strategy | covariance | centred coverage % | pairwise coverage % | "
        "worst P(best) decile gap | deciles shown > 0.05 off | prompts without a finite MLE | "
        "prompts with a strength not identified | P(best) >= 0.99: predicted / observed |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    panels = []
    for regime in regimes:
        results: dict[str, dict[CovarianceMethod, Tally]] = {}
        for seed in args.seeds:
            merge(results, simulate(regime, args.n, args.prompts, seed, args.truth, methods))
        report(regime.name, results)
        for strategy, tallies in results.items():
            panels.append((f"{regime.name}, {strategy.replace('_', '-')}", tallies))
    if not args.no_vicuna:
        vic: dict[str, dict[CovarianceMethod, Tally]] = {}
        for seed in args.seeds:
            merge(vic, vicuna(seed, methods))
        report("Vicuna (GPT-4)", vic)
        panels += [(f"Vicuna, {name}", tallies) for name, tallies in vic.items()]
    print(f"\nP(best) by decile, {methods[0]}: predicted / observed [Wilson 95%] (candidates)\n")
    for title, tallies in panels:
        decile_table(title, tallies[methods[0]])
    plot(panels)
    print(f"\nplot: {PLOT.relative_to(ROOT)}; {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
