"""Tests for the adaptive strategy: top-two Thompson sampling with a learnt position bias."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategy_driver import JudgeFn, drive, drive_interleaved, noisy, position_biased, transitive

from genrm_rank import PromptInput, arank_many, select_best
from genrm_rank.judges.simulated import SimulatedJudge
from genrm_rank.orchestrator import JudgeStatistics
from genrm_rank.strategies import Adaptive, make_strategy
from genrm_rank.strategies.adaptive import POOL_PRIOR_DF, PRIOR_SD, default_budget, max_calls
from genrm_rank.strategies.base import PairCall
from genrm_rank.verdict import Verdict

SWAPS = st.sampled_from(["auto", "both", "random", "none"])


def _known_bias(first: int = 650, second: int = 350) -> JudgeStatistics:
    stats = JudgeStatistics()
    stats.first_slot_wins, stats.second_slot_wins = first, second
    return stats


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(2, 9),
    budget=st.one_of(st.none(), st.integers(0, 300)),
    swap=SWAPS,
    seed=st.integers(0, 2**16),
)
def test_never_exceeds_the_budget_or_the_cap(
    n: int, budget: int | None, swap: str, seed: int
) -> None:
    scheduler = Adaptive(n, swap=swap, seed=seed, budget=budget, delta=0.001)
    calls = drive(scheduler, noisy(seed, fail_rate=0.2))
    assert calls <= max_calls(n)
    assert calls <= (default_budget(n) if budget is None else budget)
    assert len(scheduler.judgements()) == calls


@settings(max_examples=40, deadline=None)
@given(
    values=st.lists(st.integers(-1000, 1000), min_size=2, max_size=10, unique=True),
    seed=st.integers(0, 2**16),
    swap=SWAPS,
)
def test_finds_the_best_of_a_transitive_noiseless_judge(
    values: list[int], seed: int, swap: str
) -> None:
    n = len(values)
    scheduler = Adaptive(n, swap=swap, seed=seed, budget=max_calls(n), delta=0.01)
    drive(scheduler, transitive(values))
    outcome = scheduler.result()
    assert outcome.best == int(np.argmax(values))
    assert outcome.order is not None and sorted(outcome.order) == list(range(n))


@settings(max_examples=30, deadline=None)
@given(n=st.integers(2, 8), seed=st.integers(0, 2**16), batch=st.integers(1, 6))
def test_never_proposes_a_pair_after_done_and_keeps_batches(n: int, seed: int, batch: int) -> None:
    scheduler = Adaptive(n, seed=seed, batch=batch)
    judge = noisy(seed, fail_rate=0.1)
    while not scheduler.done:
        calls = scheduler.next_pairs()
        assert 1 <= len(calls) <= batch
        for call in calls:
            scheduler.record(call, judge(call))
    assert scheduler.next_pairs() == []
    assert scheduler.next_pairs(10) == []


def test_a_batch_holds_distinct_pairs_where_it_can() -> None:
    scheduler = Adaptive(8, seed=0, batch=4)
    calls = scheduler.next_pairs()
    assert len({frozenset((c.first, c.second)) for c in calls}) == 4


@pytest.mark.parametrize("seed", range(4))
def test_stops_early_once_the_best_is_certain(seed: int) -> None:
    # Once the run has pooled that its judge never errs (a small dispersion), a prompt whose
    # best wins every verdict stops before the cap. (With nothing pooled, 12 verdicts of
    # a judge that may copy itself leave P(best) near 0.9-0.95: not certain.)
    stats = _known_bias(500, 500)
    orders = np.random.default_rng(seed).permuted(np.tile(np.arange(6), (10, 1)), axis=1)
    _run_prompts(stats, lambda p: transitive(orders[p].tolist()), 10, budget=30)
    quality = [0.0, 1.0, 2.0, 30.0]
    scheduler = Adaptive(4, seed=seed, delta=0.05, budget=max_calls(4))
    scheduler.bind_judge_statistics(stats)
    assert scheduler.judge_dispersion() < 0.5
    calls = drive(scheduler, transitive(quality))
    assert calls < max_calls(4)
    assert scheduler.p_best()[3] >= 0.95
    assert scheduler.result().best == 3


@pytest.mark.parametrize("seed", range(4))
def test_stops_while_the_rest_of_its_batch_is_in_flight(seed: int) -> None:
    # The orchestrator asks for more after each verdict, with the batch's other calls still
    # out. A confident scheduler must then ask for nothing new (it once refilled its batch
    # whenever a call was pending, so it never stopped before its budget).
    stats = _known_bias(500, 500)
    orders = np.random.default_rng(seed).permuted(np.tile(np.arange(6), (10, 1)), axis=1)
    _run_prompts(stats, lambda p: transitive(orders[p].tolist()), 10, budget=30)
    scheduler = Adaptive(8, seed=seed, delta=0.3, batch=4, budget=max_calls(8))
    scheduler.bind_judge_statistics(stats)
    calls = drive_interleaved(scheduler, transitive([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 30.0]))
    assert calls < 40
    assert scheduler.p_best()[7] >= 0.7
    assert scheduler.result().best == 7


def test_select_best_stops_at_its_confidence_target() -> None:
    # Through the runner and orchestrator (batches in flight), not only the test driver.
    candidates = [f"answer {i}" for i in range(8)]
    judge = SimulatedJudge(
        qualities={c: float(i) for i, c in enumerate(candidates)}, noise_scale=0.35, seed=0
    )
    loose = select_best(
        candidates, "q?", judge=judge, strategy="adaptive", swap="auto", seed=1,
        strategy_options={"delta": 0.3},
    )  # fmt: skip
    assert loose.best == 7
    assert loose.calls < default_budget(8)


def test_the_first_limit_is_the_prompt_budget() -> None:
    scheduler = Adaptive(6, seed=0, batch=10)
    assert len(scheduler.next_pairs(3)) == 3
    assert scheduler.budget == 3
    larger = Adaptive(6, seed=0)
    larger.next_pairs(50)
    assert larger.budget == 50  # the orchestrator's budget replaces the 4N default
    own = Adaptive(6, seed=0, budget=10)
    own.next_pairs(50)
    assert own.budget == 10


def test_unknown_bias_swaps_every_pair_known_bias_only_close_ones() -> None:
    unknown = Adaptive(6, seed=0, batch=1)
    call = unknown.next_pairs()[0]
    unknown.record(call, Verdict(ranking=1))
    (reverse,) = unknown.next_pairs()
    assert (reverse.first, reverse.second) == (call.second, call.first)

    known = Adaptive(6, seed=0, batch=1)
    known.bind_judge_statistics(_known_bias())
    assert known.bias_known
    call = known.next_pairs()[0]
    known.record(call, Verdict(ranking=1))  # decisive: no reverse asked at once
    assert known._followups == []
    call = known.next_pairs()[0]
    known.record(call, Verdict(ranking=3))  # close: the reverse is asked for
    assert known._followups == [(call.second, call.first)]


def test_the_pooled_bias_is_used_from_the_first_verdict() -> None:
    scheduler = Adaptive(4, seed=0, swap="random")
    scheduler.bind_judge_statistics(_known_bias(6500, 3500))
    assert scheduler.posterior()["position_bias"] == pytest.approx(np.log(65 / 35), abs=0.01)
    call = scheduler.next_pairs()[0]
    scheduler.record(call, Verdict(ranking=1))  # a slot-1 win: weak evidence under the bias
    strength = scheduler.posterior()["strength"]
    slot_one = strength[call.first] - strength[call.second]
    plain = Adaptive(4, seed=0, swap="random")
    plain.bind_judge_statistics(_known_bias(5000, 5000))
    plain._issue(call.first, call.second)
    plain.record(call, Verdict(ranking=1))
    unbiased = plain.posterior()["strength"]
    assert 0 < slot_one < unbiased[call.first] - unbiased[call.second]


def test_pure_position_bias_never_settles_by_input_order() -> None:
    # Every verdict says slot 1, each order as often: the two are exactly tied, so no early
    # stop; the budget runs out and a seeded coin picks, with a note.
    picks = set()
    for seed in range(8):
        scheduler = Adaptive(2, seed=seed, swap="both", budget=4)
        assert drive(scheduler, position_biased(1.0)) == 4
        outcome = scheduler.result()
        assert any("seeded coin" in note for note in outcome.notes)
        picks.add(outcome.best)
    assert len(picks) > 1


def test_failed_verdicts_add_nothing_and_leave_no_pick() -> None:
    scheduler = Adaptive(4, seed=0, budget=6)
    drive(scheduler, lambda call: Verdict.failed("unreadable", raw="?"))
    outcome = scheduler.result()
    assert outcome.best is None
    assert any("no usable verdict" in note for note in outcome.notes)


@pytest.mark.parametrize(
    ("options", "error", "name"),
    [
        ({"samples": 2}, ValueError, "samples"),
        ({"delta": 0.0}, ValueError, "delta"),
        ({"delta": "0.1"}, TypeError, "delta"),
        ({"budget": -1}, ValueError, "budget"),
        ({"batch": 0}, ValueError, "batch"),
        ({"swap": "sideways"}, ValueError, "swap"),
        ({"bias_tolerance": 0.0}, ValueError, "bias_tolerance"),
        ({"p_best_draws": 0}, ValueError, "p_best_draws"),
        ({"prior_sd": 0.0}, ValueError, "prior_sd"),
        ({"dispersion": float("inf")}, ValueError, "dispersion"),
        ({"dispersion": "1"}, TypeError, "dispersion"),
        ({"repeat_correlation": 1.5}, ValueError, "repeat_correlation"),
    ],
)
def test_bad_options_name_the_argument(
    options: dict[str, object], error: type[Exception], name: str
) -> None:
    with pytest.raises(error, match=f"'{name}'"):
        Adaptive(4, **options)  # type: ignore[arg-type]


def test_bad_statistics_and_unknown_calls_are_refused() -> None:
    scheduler = Adaptive(3, seed=0)
    with pytest.raises(TypeError, match="'stats'"):
        scheduler.bind_judge_statistics(object())  # type: ignore[arg-type]
    call = scheduler.next_pairs()[0]
    scheduler.record(call, Verdict(ranking=2))
    with pytest.raises(ValueError, match="'call'"):
        scheduler.record(call, Verdict(ranking=2))


def test_registered_and_run_through_the_orchestrator_within_budget() -> None:
    assert isinstance(make_strategy("adaptive", 3, seed=0), Adaptive)
    rng = np.random.default_rng(0)
    prompts, qualities = [], {}
    for p in range(12):
        texts = [f"p{p} c{i}" for i in range(6)]
        qualities.update(zip(texts, rng.standard_normal(6).tolist(), strict=True))
        prompts.append(PromptInput(f"prompt {p}", texts, prompt_id=str(p), key=p))
    judge = SimulatedJudge(qualities=qualities, noise_scale=0.35, position_bias=0.24, seed=0)

    async def collect() -> list[int]:
        out = []
        async for result in arank_many(
            prompts, judge=judge, strategy="adaptive", swap="auto", budget=15, seed=0
        ):
            assert result.ranking is not None and result.ranking.best is not None
            out.append(result.ranking.calls)
        return out

    calls = asyncio.run(collect())
    assert len(calls) == 12 and max(calls) <= 15


def _run_prompts(
    stats: JudgeStatistics, judge_for: Callable[[int], JudgeFn], prompts: int, **options: Any
) -> list[Adaptive]:
    """Prompts one after another, sharing ``stats`` as the orchestrator shares it."""
    done = []
    for p in range(prompts):
        scheduler = Adaptive(6, seed=p, **options)
        scheduler.bind_judge_statistics(stats)
        judge = judge_for(p)

        def counted(call: PairCall, judge: JudgeFn = judge) -> Verdict:
            verdict = judge(call)
            stats.add(verdict)
            return verdict

        drive(scheduler, counted)
        scheduler.result()
        done.append(scheduler)
    return done


def _two_level_judge(seed: int, win: int, loss: int) -> JudgeFn:
    """Slot 1 gets ranking ``win`` with the Bradley-Terry probability, else ``loss``."""
    rng = np.random.default_rng(seed)
    quality = rng.normal(0.0, 1.0, 6)

    def judge(call: PairCall) -> Verdict:
        p = 1.0 / (1.0 + np.exp(quality[call.second] - quality[call.first]))
        return Verdict(ranking=win if rng.random() < p else loss)

    return judge


def _bernoulli_judge(seed: int) -> JudgeFn:
    """Slot 1 wins outright (ranking 1) with the Bradley-Terry probability, else ranking 6."""
    return _two_level_judge(seed, 1, 6)


def _timid_judge(seed: int) -> JudgeFn:
    """Never more than a slight preference: ranking 3 or 4 (outcomes 0.6 and 0.4)."""
    return _two_level_judge(seed, 3, 4)


def test_the_dispersion_is_the_judges_pooled_over_finished_prompts() -> None:
    # Wedderburn's moment estimate: about 1 for outright wins drawn from the model, far below
    # 1 for a judge whose verdicts never stray far from 0.5 (variance 0.01 against ~0.25).
    bernoulli = JudgeStatistics()
    _run_prompts(bernoulli, _bernoulli_judge, 30, budget=24)
    first = Adaptive(6, seed=0)
    first.bind_judge_statistics(bernoulli)
    assert 0.6 < first.judge_dispersion() < 1.5
    timid = JudgeStatistics()
    runs = _run_prompts(timid, _timid_judge, 30, budget=24)
    late = Adaptive(6, seed=0)
    late.bind_judge_statistics(timid)
    assert late.judge_dispersion() < 0.2
    # Nothing pooled yet: Bernoulli variance and the default prior spread.
    assert Adaptive(6, seed=0).judge_dispersion() == 1.0
    assert Adaptive(6, seed=0).strength_sd() == PRIOR_SD
    # A verdict of that judge is worth 1 / phi Bernoulli outcomes: the same verdicts give a
    # tighter posterior than with nothing pooled, and a shifted mode too.
    assert len(runs) == 30
    alone = Adaptive(6, seed=0, swap="none", prior_sd=PRIOR_SD)
    late = Adaptive(6, seed=0, swap="none", prior_sd=PRIOR_SD)
    late.bind_judge_statistics(timid)
    for scheduler in (alone, late):
        for first, second in ((0, 1), (1, 2), (0, 2)):
            call = scheduler._issue(first, second)
            scheduler.record(call, Verdict(ranking=3))
    assert (late.posterior()["stderr"][:3] < alone.posterior()["stderr"][:3]).all()
    assert (late.posterior()["stderr"][3:] == alone.posterior()["stderr"][3:]).all()  # unseen
    assert late.posterior()["strength"][0] > alone.posterior()["strength"][0] > 0


def test_a_prompt_pools_its_fit_once() -> None:
    stats = JudgeStatistics()
    scheduler = Adaptive(4, seed=0, budget=8)
    scheduler.bind_judge_statistics(stats)
    drive(scheduler, transitive([0.0, 1.0, 2.0, 3.0]))
    scheduler.result()
    pooled = (stats.residual_squares, stats.bernoulli_variance, stats.strength_squares)
    assert stats.strength_df == 3.0 and pooled[1] > 0 and pooled[2] > 0
    scheduler.result()
    assert (stats.residual_squares, stats.bernoulli_variance, stats.strength_squares) == pooled
    assert stats.strength_df == 3.0


def test_the_prior_spread_follows_the_pooled_strengths() -> None:
    stats = JudgeStatistics()
    stats.add_fit(0.0, 0.0, 9.0 * 7 * 100, 7.0 * 100)  # strengths of sd 3 on 100 prompts
    scheduler = Adaptive(8, seed=0)
    scheduler.bind_judge_statistics(stats)
    expected = np.sqrt((POOL_PRIOR_DF * PRIOR_SD**2 + 6300.0) / (POOL_PRIOR_DF + 700.0))
    assert scheduler.strength_sd() == pytest.approx(expected)
    fixed = Adaptive(8, seed=0, prior_sd=2.0, dispersion=1.0)
    fixed.bind_judge_statistics(stats)
    assert (fixed.strength_sd(), fixed.judge_dispersion()) == (2.0, 1.0)
    with pytest.raises(ValueError, match="add_fit"):
        stats.add_fit(-1.0, 0.0, 0.0, 0.0)


@pytest.mark.slow
@settings(max_examples=10, deadline=None)
@given(qualities=st.lists(st.permutations(range(6)), min_size=4, max_size=8))
def test_pooling_over_a_noiseless_judge_never_stops_on_a_wrong_pick(
    qualities: list[list[int]],
) -> None:
    # A noiseless judge pools a small dispersion and a wide prior: the posterior grows sharp,
    # but never so sharp that a candidate nobody has beaten is left out (the clean regime).
    stats = JudgeStatistics()
    runs = _run_prompts(
        stats, lambda p: transitive(qualities[p]), len(qualities), budget=max_calls(6)
    )
    for p, scheduler in enumerate(runs):
        assert scheduler.result().best == int(np.argmax(qualities[p]))
    assert np.isfinite(runs[-1].posterior()["strength"]).all()


def _copying_judge(seed: int) -> JudgeFn:
    """A noisy judge at temperature 0: an ordered pair's first verdict, again and again."""
    draw = _bernoulli_judge(seed)
    said: dict[tuple[int, int], Verdict] = {}

    def judge(call: PairCall) -> Verdict:
        return said.setdefault((call.first, call.second), draw(call))

    return judge


@pytest.mark.slow
def test_a_judge_that_repeats_itself_is_asked_for_new_pairs() -> None:
    # Repeats that copy the first verdict pool a correlation near 1, and the strategy then asks
    # for pairs it has not judged rather than for copies; repeats of a judge that samples anew
    # pool a correlation near 0, and repeats stay worth a verdict each.
    copying = JudgeStatistics()
    runs = _run_prompts(copying, _copying_judge, 40, budget=40)
    assert copying.repeat_variance > 0 and copying.repeat_squares == 0.0
    assert runs[-1].judge_repeat_correlation() > 0.9
    late = runs[-10:]
    repeats = sum(
        len(s.judgements()) - len({(j.first, j.second) for j in s.judgements()}) for s in late
    )
    early = runs[:10]
    early_repeats = sum(
        len(s.judgements()) - len({(j.first, j.second) for j in s.judgements()}) for s in early
    )
    assert repeats < early_repeats
    fresh = JudgeStatistics()
    runs = _run_prompts(fresh, _bernoulli_judge, 40, budget=40)
    assert runs[-1].judge_repeat_correlation() < 0.3
    # Copies count once: k verdicts of one ordered pair, at r = 1, weigh as one.
    copy_stats = JudgeStatistics()
    copy_stats.add_repeat(0.0, 1e6)
    twice = Adaptive(4, seed=0, swap="none", prior_sd=PRIOR_SD, dispersion=1.0)
    twice.bind_judge_statistics(copy_stats)
    once = Adaptive(4, seed=0, swap="none", prior_sd=PRIOR_SD, dispersion=1.0)
    for target, times in ((twice, 3), (once, 1)):
        for _ in range(times):
            target.record(target._issue(0, 1), Verdict(ranking=1))
    assert twice.judge_repeat_correlation() == pytest.approx(1.0, abs=1e-5)
    assert twice.posterior()["strength"] == pytest.approx(once.posterior()["strength"], abs=1e-4)
