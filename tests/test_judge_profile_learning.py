"""Tests for learning a judge profile from verdicts (``learn_judge_profile``)."""

from __future__ import annotations

import asyncio
import math

import numpy as np
import pytest
from scipy.optimize import minimize

from genrm_rank import SimulatedJudge
from genrm_rank.aggregators import Comparisons
from genrm_rank.api import arank_many
from genrm_rank.judge_profile import (
    MIN_DISPERSION,
    MIN_STRENGTH_SD,
    JudgeProfile,
    _buckets,
    _Judge,
    _strength_modes,
    as_profile,
    learn_judge_profile,
)
from genrm_rank.results import Ranking
from genrm_rank.runner import PromptInput

HARD = {1: 1.0, 2: 1.0, 3: 1.0, 4: 0.0, 5: 0.0, 6: 0.0}
"""Rankings to hard outcomes: the simulated judge's verdicts are then Bernoulli Bradley-Terry
outcomes with its slot-1 bias, so the fitted bias has a known true value."""


def bernoulli_prompts(
    rng: np.random.Generator, prompts: int, n: int, bias: float, sd: float, visits: int
) -> list[Comparisons]:
    """Round-robin prompts, every ordered pair ``visits`` times, hard Bradley-Terry outcomes."""
    out = []
    for _ in range(prompts):
        theta = rng.normal(0.0, sd, n)
        first, second = np.array([(i, j) for i in range(n) for j in range(n) if i != j]).T
        first, second = np.repeat(first, visits), np.repeat(second, visits)
        p = 1.0 / (1.0 + np.exp(-(theta[first] - theta[second] + bias)))
        out.append(Comparisons.from_arrays(n, first, second, (rng.random(p.size) < p) * 1.0))
    return out


def ranked(strategy: str, swap: str, *, bias: float, prompts: int, n: int) -> list[Ranking]:
    judge = SimulatedJudge(position_bias=bias, seed=3)
    items = [
        PromptInput(f"q{p}", [f"answer {p}-{i}" for i in range(n)], prompt_id=str(p))
        for p in range(prompts)
    ]

    async def main() -> list[Ranking]:
        results = arank_many(
            items, judge=judge, strategy=strategy, swap=swap, preference=HARD
        )  # fmt: skip
        return [r.ranking async for r in results if r.ranking is not None]

    return asyncio.run(main())


def test_the_laplace_marginal_is_that_of_a_direct_computation() -> None:
    # Each prompt's strength mode at a fixed bias and spread, by a general-purpose optimiser,
    # and the Laplace log marginal from its numerical Hessian: the bucketed Newton must agree.
    rng = np.random.default_rng(0)
    prompts = bernoulli_prompts(rng, 3, 4, 0.7, 1.0, 2)
    gamma, variance = 0.4, 1.7
    judge = _Judge(phi=0.8, strength_var=variance, rho=0.0, bias_mean=0.0, bias_sd=1.0)
    [bucket] = _buckets(prompts)
    total, inverses = _strength_modes(bucket, gamma, judge, variance)
    expected = 0.0
    for k, c in enumerate(prompts):

        def minus_log_post(theta: np.ndarray, c: Comparisons = c) -> float:
            d = theta[c.first] - theta[c.second] + gamma
            fit = c.outcome * d - np.logaddexp(0.0, d)
            return float(-np.sum(fit) / 0.8 + 0.5 * np.sum(theta**2) / variance)

        mode = minimize(minus_log_post, np.zeros(4), method="BFGS", options={"gtol": 1e-10}).x
        assert bucket.theta[k] == pytest.approx(mode, abs=1e-5)
        h = 1e-4
        hess = np.array([[(minus_log_post(mode + h * (np.eye(4)[i] + np.eye(4)[j]))
                           - minus_log_post(mode + h * (np.eye(4)[i] - np.eye(4)[j]))
                           - minus_log_post(mode - h * (np.eye(4)[i] - np.eye(4)[j]))
                           + minus_log_post(mode - h * (np.eye(4)[i] + np.eye(4)[j]))) / (4 * h * h)
                          for j in range(4)] for i in range(4)])  # fmt: skip
        assert inverses[k] == pytest.approx(np.linalg.inv(hess), rel=1e-4, abs=1e-6)
        expected += -minus_log_post(mode) - 0.5 * np.linalg.slogdet(hess)[1]
        expected -= 0.5 * 4 * math.log(variance)
    assert total == pytest.approx(expected, abs=1e-5)


def test_the_fitted_bias_recovers_a_known_slot_1_advantage_where_the_win_share_does_not() -> None:
    # 12 hard verdicts a prompt: the strength gaps pull the win share far towards 0; the
    # bias fitted with the strengths integrated out (Laplace) is right within its error.
    rng = np.random.default_rng(1)
    prompts = bernoulli_prompts(rng, 300, 4, 1.14, 1.5, 1)
    profile = learn_judge_profile(prompts)
    assert abs(profile.position_bias - 1.14) < 3 * profile.position_bias_stderr
    assert profile.position_bias_stderr < 0.06
    assert profile.strength_sd == pytest.approx(1.5, rel=0.15)
    wins = sum(float(c.outcome.sum()) for c in prompts)
    share = wins / sum(len(c) for c in prompts)
    assert math.log(share / (1 - share)) < 0.8


def test_the_bias_is_fitted_from_the_verdicts_an_adaptive_run_chose() -> None:
    # Adaptive picks close pairs and reverses only some: the fit must not care.
    rankings = ranked("adaptive", "auto", bias=1.14, prompts=120, n=8)
    profile = learn_judge_profile(rankings, preference_mapping=lambda r: HARD[round(r)])
    assert abs(profile.position_bias - 1.14) < 3 * profile.position_bias_stderr
    assert profile.prompts == 120
    assert profile.verdicts == sum(
        1 for r in rankings for j in r.judgements if j.verdict.ranking is not None
    )


def test_the_strength_spread_subtracts_the_estimation_noise() -> None:
    rng = np.random.default_rng(2)
    profile = learn_judge_profile(bernoulli_prompts(rng, 200, 6, 0.0, 1.5, 1), prior=None)
    # Raw per-prompt estimates from 30 verdicts spread wider than 1.5; the estimate is of the
    # strengths' own spread.
    assert profile.strength_sd == pytest.approx(1.5, rel=0.1)
    assert profile.strength_df == 200 * 5


def test_bernoulli_verdicts_have_dispersion_one_and_graded_ones_less() -> None:
    rng = np.random.default_rng(3)
    hard = learn_judge_profile(bernoulli_prompts(rng, 100, 3, 0.5, 1.0, 10), prior=None)
    assert hard.dispersion == pytest.approx(1.0, abs=0.05)
    # Outcomes 1/4 or 3/4 around an even pair: each differs from p = 1/2 by 1/4, so
    # phi = (1/16) / (1/4) = 1/4, times verdicts over residual degrees of freedom.
    graded = [
        Comparisons.from_arrays(2, [0, 1] * 50, [1, 0] * 50, [0.25, 0.25, 0.75, 0.75] * 25)
        for _ in range(40)
    ]
    profile = learn_judge_profile(graded, prior=None)
    assert profile.position_bias == pytest.approx(0.0, abs=1e-9)
    assert profile.dispersion == pytest.approx(0.25 * 4000 / profile.dispersion_df, rel=1e-6)
    assert 3997 < profile.dispersion_df < 4000


def test_a_judge_that_copies_itself_has_repeat_correlation_one() -> None:
    rng = np.random.default_rng(4)
    once = bernoulli_prompts(rng, 100, 4, 0.3, 1.0, 1)
    copies = [
        Comparisons.from_arrays(c.n_items, np.repeat(c.first, 3), np.repeat(c.second, 3),
                                np.repeat(c.outcome, 3))
        for c in once
    ]  # fmt: skip
    copied = learn_judge_profile(copies, prior=None)
    assert copied.repeat_correlation == 1.0
    assert copied.repeat_pairs == 100 * 12 * 2
    # Three copies weigh as one verdict: the fit is the fit of the verdicts once.
    single = learn_judge_profile(once, prior=None)
    assert copied.position_bias == pytest.approx(single.position_bias, abs=1e-4)
    assert copied.position_bias_stderr == pytest.approx(single.position_bias_stderr, rel=1e-3)
    independent = learn_judge_profile(bernoulli_prompts(rng, 100, 4, 0.3, 1.0, 3), prior=None)
    assert independent.repeat_correlation < 0.1


def test_the_prior_counts_as_its_degrees_of_freedom() -> None:
    rng = np.random.default_rng(5)
    prompts = bernoulli_prompts(rng, 3, 3, 0.0, 1.0, 1)
    raw = learn_judge_profile(prompts, prior=None)
    pooled = learn_judge_profile(prompts)
    assert 10.0 < pooled.dispersion_df < raw.verdicts + 10.0
    assert pooled.strength_df == raw.strength_df + 10.0
    assert pooled.repeat_correlation == 0.0 and pooled.repeat_pairs == 0.0
    # Few verdicts: the pooled estimate sits between the data and the prior's 2.
    assert min(raw.strength_sd, 2.0) < pooled.strength_sd < max(raw.strength_sd, 2.0)


def test_order_of_prompts_does_not_matter_beyond_rounding() -> None:
    rng = np.random.default_rng(6)
    prompts = bernoulli_prompts(rng, 30, 4, 0.6, 1.0, 1)
    a, b = learn_judge_profile(prompts), learn_judge_profile(prompts[::-1])
    for name in ("position_bias", "dispersion", "strength_sd"):
        assert getattr(a, name) == pytest.approx(getattr(b, name), rel=1e-8)


def test_nothing_to_learn_from_is_an_error_naming_the_argument() -> None:
    with pytest.raises(ValueError, match="'prompts' holds no usable verdict"):
        learn_judge_profile([Comparisons.from_arrays(3, [], [], [])])
    with pytest.raises(TypeError, match="must hold Comparisons, Rankings or PromptRuns"):
        learn_judge_profile([3])
    ties = [Comparisons.from_arrays(3, [0, 1, 2] * 6, [1, 2, 0] * 6, [0.5] * 18)] * 5
    floor = learn_judge_profile(ties)
    assert floor.dispersion >= MIN_DISPERSION
    # A judge that cannot tell candidates apart: the spread at its floor, the bias still known.
    flat = learn_judge_profile(ties, prior=None)
    assert flat.strength_sd == pytest.approx(MIN_STRENGTH_SD)
    assert flat.position_bias == pytest.approx(0.0, abs=1e-6)
    assert 0.0 < flat.position_bias_stderr < 1.0


def test_as_profile_loads_a_path(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "p.json"
    profile = JudgeProfile(position_bias=0.3)
    profile.save(path)
    assert as_profile(path) == profile
    assert as_profile(str(path)) == profile
    with pytest.raises(TypeError, match="'judge_profile' must be a JudgeProfile"):
        as_profile(3)  # type: ignore[arg-type]
