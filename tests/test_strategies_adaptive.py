"""Tests for the adaptive strategy: leader against challenger with a learnt position bias."""

from __future__ import annotations

import asyncio
import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategy_driver import JudgeFn, drive, drive_interleaved, noisy, position_biased, transitive

from genrm_rank import PromptInput, arank_many, select_best
from genrm_rank.judge_profile import DEFAULT_PROFILE, JudgeProfile
from genrm_rank.judges.simulated import SimulatedJudge
from genrm_rank.strategies import Adaptive, make_strategy
from genrm_rank.strategies.adaptive import SET_ASIDE_FAILURES, default_budget, max_calls
from genrm_rank.strategies.base import PairCall
from genrm_rank.verdict import Verdict

SWAPS = st.sampled_from(["auto", "both", "random", "none"])

SURE_JUDGE = JudgeProfile(
    dispersion=0.05,
    dispersion_df=10_000.0,
    position_bias_stderr=0.05,
    strength_sd=10.0,
    verdicts=10_000,
)
"""A judge known to be nearly noiseless and unbiased, whose candidates lie far apart (as a
profile learnt from a transitive judge says)."""


def _known_bias(bias: float = float(np.log(65 / 35))) -> JudgeProfile:
    return JudgeProfile(position_bias=bias, position_bias_stderr=0.05, verdicts=10_000)


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
    # With a profile that says the judge never errs (a small dispersion), a prompt whose best
    # wins every verdict stops before the cap. (With the default profile, 12 verdicts of a
    # judge that may copy itself leave P(best) near 0.9-0.95: not certain.)
    quality = [0.0, 1.0, 2.0, 30.0]
    sure = dataclasses.replace(SURE_JUDGE, strength_sd=2.0)
    scheduler = Adaptive(4, seed=seed, delta=0.05, budget=max_calls(4), profile=sure)
    assert scheduler.judge_dispersion() < 0.5
    calls = drive(scheduler, transitive(quality))
    assert calls < max_calls(4)
    assert scheduler.p_best()[3] >= 0.95
    outcome = scheduler.result()
    assert outcome.best == 3 and not outcome.budget_bound
    assert outcome.p_best is not None and outcome.p_best[3] >= 0.95


@pytest.mark.parametrize("seed", range(4))
def test_stops_while_the_rest_of_its_batch_is_in_flight(seed: int) -> None:
    # The orchestrator asks for more after each verdict, with the batch's other calls still
    # out. A confident scheduler must then ask for nothing new (it once refilled its batch
    # whenever a call was pending, so it never stopped before its budget).
    scheduler = Adaptive(8, seed=seed, delta=0.3, batch=4, budget=max_calls(8), profile=SURE_JUDGE)
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


def test_unknown_bias_swaps_every_pair_known_bias_none_at_once() -> None:
    unknown = Adaptive(6, seed=0, batch=1)
    call = unknown.next_pairs()[0]
    unknown.record(call, Verdict(ranking=1))
    (reverse,) = unknown.next_pairs()
    assert (reverse.first, reverse.second) == (call.second, call.first)

    assert not unknown.bias_known  # the default profile's bias has a standard error of 1
    known = Adaptive(6, seed=0, batch=1, profile=_known_bias())
    assert known.bias_known
    for ranking in (1, 3, 3.5):  # decisive or close: the posterior takes the bias out
        call = known.next_pairs()[0]
        known.record(call, Verdict(ranking=ranking))
        assert known._followups == []


def test_the_profiles_bias_is_used_from_the_first_verdict() -> None:
    scheduler = Adaptive(4, seed=0, swap="random", profile=_known_bias())
    assert scheduler.posterior()["position_bias"] == pytest.approx(np.log(65 / 35), abs=0.01)
    call = scheduler.next_pairs()[0]
    scheduler.record(call, Verdict(ranking=1))  # a slot-1 win: weak evidence under the bias
    strength = scheduler.posterior()["strength"]
    slot_one = strength[call.first] - strength[call.second]
    plain = Adaptive(4, seed=0, swap="random", profile=_known_bias(0.0))
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


def test_bad_profiles_and_unknown_calls_are_refused() -> None:
    with pytest.raises(TypeError, match="'profile'"):
        Adaptive(3, profile=object())  # type: ignore[arg-type]
    scheduler = Adaptive(3, seed=0)
    assert not hasattr(scheduler, "bind_judge_statistics")  # the run's statistics are not read
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


def _two_level_judge(seed: int, win: int, loss: int) -> JudgeFn:
    """Slot 1 gets ranking ``win`` with the Bradley-Terry probability, else ``loss``."""
    rng = np.random.default_rng(seed)
    quality = rng.normal(0.0, 1.0, 6)

    def judge(call: PairCall) -> Verdict:
        p = 1.0 / (1.0 + np.exp(quality[call.second] - quality[call.first]))
        return Verdict(ranking=win if rng.random() < p else loss)

    return judge


def test_the_profiles_dispersion_sets_what_a_verdict_is_worth() -> None:
    # A verdict of a judge of dispersion phi is worth 1 / phi Bernoulli outcomes: the same
    # verdicts give a tighter posterior under a timid judge's profile, and a shifted mode too.
    assert Adaptive(6, seed=0).judge_dispersion() == DEFAULT_PROFILE.dispersion
    assert Adaptive(6, seed=0).strength_sd() == DEFAULT_PROFILE.strength_sd
    timid = JudgeProfile(dispersion=0.1, dispersion_df=10_000.0, position_bias_stderr=0.05)
    alone = Adaptive(6, seed=0, swap="none", profile=_known_bias(0.0))
    late = Adaptive(6, seed=0, swap="none", profile=timid)
    for scheduler in (alone, late):
        for first, second in ((0, 1), (1, 2), (0, 2)):
            call = scheduler._issue(first, second)
            scheduler.record(call, Verdict(ranking=3))
    assert (late.posterior()["stderr"][:3] < alone.posterior()["stderr"][:3]).all()
    assert late.posterior()["strength"][0] > alone.posterior()["strength"][0] > 0


def test_a_judge_without_residuals_keeps_the_profiles_dispersion() -> None:
    # A transitive judge (every verdict is 1 or 6 as the order says) leaves residuals near 0 on
    # the prompt's few degrees of freedom; the dispersion pools them with the profile's 10
    # degrees of freedom instead of falling to 0, so intervals do not collapse (issue 19,
    # item 6). The old per-prompt estimate gave a dispersion near 0 here.
    scheduler = Adaptive(4, seed=0, budget=12, swap="both")
    drive(scheduler, transitive([0.0, 1.0, 2.0, 3.0]))
    posterior = scheduler.posterior()
    own_df = 12 - 4  # 12 verdicts, 3 strengths and the slot-1 term
    assert posterior["dispersion"] >= 0.9 * 10.0 / (10.0 + own_df)
    assert posterior["stderr"].min() > 0.3


def test_the_profiles_strength_spread_is_the_prior() -> None:
    wide = Adaptive(8, seed=0, profile=JudgeProfile(strength_sd=3.0))
    assert wide.strength_sd() == 3.0
    fixed = Adaptive(8, seed=0, prior_sd=2.0, dispersion=1.0, profile=JudgeProfile(strength_sd=3.0))
    assert (fixed.strength_sd(), fixed.judge_dispersion()) == (2.0, 1.0)
    # Nothing judged: each strength has the prior's spread (centred over 8 candidates).
    assert wide.posterior()["stderr"] == pytest.approx(np.full(8, 3.0 * np.sqrt(7 / 8)))


@pytest.mark.slow
@settings(max_examples=10, deadline=None)
@given(quality=st.permutations(range(6)), seed=st.integers(0, 2**16))
def test_a_noiseless_profile_never_stops_on_a_wrong_pick(quality: list[int], seed: int) -> None:
    # A profile of a noiseless judge (small dispersion): the posterior grows sharp, but never
    # so sharp that a candidate nobody has beaten is left out (the clean regime).
    scheduler = Adaptive(6, seed=seed, budget=max_calls(6), profile=SURE_JUDGE)
    drive(scheduler, transitive(quality))
    assert scheduler.result().best == int(np.argmax(quality))
    assert np.isfinite(scheduler.posterior()["strength"]).all()


def _copying_judge(seed: int) -> JudgeFn:
    """A noisy judge at temperature 0: an ordered pair's first verdict, again and again."""
    draw = _two_level_judge(seed, 1, 6)
    said: dict[tuple[int, int], Verdict] = {}

    def judge(call: PairCall) -> Verdict:
        return said.setdefault((call.first, call.second), draw(call))

    return judge


def _repeats(scheduler: Adaptive) -> int:
    judged = scheduler.judgements()
    return len(judged) - len({(j.first, j.second) for j in judged})


@pytest.mark.slow
def test_a_judge_that_repeats_itself_is_asked_for_new_pairs() -> None:
    # With a profile that says the judge copies itself, the strategy asks for pairs it has not
    # judged rather than for copies; with independent repeats, repeats stay worth a verdict.
    copying = JudgeProfile(repeat_correlation=1.0, repeat_pairs=1000.0)
    copies = fresh = 0
    for seed in range(10):
        told = Adaptive(6, seed=seed, budget=40, profile=copying)
        drive(told, _copying_judge(seed))
        copies += _repeats(told)
        plain = Adaptive(6, seed=seed, budget=40)
        drive(plain, _copying_judge(seed))
        fresh += _repeats(plain)
    assert copies < fresh
    # Copies count once: k verdicts of one ordered pair, at r = 1, weigh as one.
    twice = Adaptive(4, seed=0, swap="none", dispersion=1.0, profile=copying)
    once = Adaptive(4, seed=0, swap="none", dispersion=1.0, profile=copying)
    for target, times in ((twice, 3), (once, 1)):
        for _ in range(times):
            target.record(target._issue(0, 1), Verdict(ranking=1))
    assert twice.judge_repeat_correlation() == 1.0
    assert twice.posterior()["strength"] == pytest.approx(once.posterior()["strength"], abs=1e-6)


def test_a_given_budget_that_stops_it_short_is_budget_bound() -> None:
    # Issue 19, item 3: N=8 with a budget of 3 reported "complete" and decided.
    scheduler = Adaptive(8, seed=0, budget=3)
    drive(scheduler, transitive(list(range(8))))
    assert scheduler.result().budget_bound
    via_orchestrator = Adaptive(8, seed=0)  # the orchestrator's budget, as its first limit
    for call in via_orchestrator.next_pairs(3):
        via_orchestrator.record(call, transitive(list(range(8)))(call))
    drive(via_orchestrator, transitive(list(range(8))))
    assert via_orchestrator.budget == 3 and via_orchestrator.result().budget_bound
    # Its own rule stopped it: confident, or the default budget (4 N) spent.
    sure = Adaptive(
        4, seed=0, budget=max_calls(4), profile=dataclasses.replace(SURE_JUDGE, strength_sd=2.0)
    )
    drive(sure, transitive([0.0, 1.0, 2.0, 30.0]))
    assert not sure.result().budget_bound
    default = Adaptive(8, seed=0)
    drive(default, position_biased(1.0))
    assert default.calls_issued == default_budget(8) and not default.result().budget_bound
    ranking = select_best(
        [f"c{i}" for i in range(8)], "q?", judge=SimulatedJudge(noise_scale=0.3, seed=0),
        strategy="adaptive", budget=3, seed=0,
    )  # fmt: skip
    assert ranking.status == "budget_bound" and not ranking.decided


def test_a_candidate_the_judge_always_fails_on_is_set_aside() -> None:
    # Issue 19, item 9: 10 of 32 calls went to such a candidate, and adaptive never stopped.
    def judge(call: PairCall) -> Verdict:
        if 5 in (call.first, call.second):
            return Verdict.failed("unreadable", raw="?")
        return transitive([0.0, 1.0, 2.0, 3.0, 4.0, 0.0, 30.0, 5.0])(call)

    scheduler = Adaptive(8, seed=0, profile=SURE_JUDGE)
    drive(scheduler, judge)
    failed = sum(j.verdict.ranking is None for j in scheduler.judgements())
    assert scheduler.set_aside == (5,)
    assert failed <= SET_ASIDE_FAILURES + 2  # a batch in flight may add one or two
    outcome = scheduler.result()
    assert outcome.best == 6 and outcome.order is not None and outcome.order[-1] == 5
    assert outcome.p_best is not None and outcome.p_best[5] == 0.0
    assert any("candidate 5 set aside" in note for note in outcome.notes)


@pytest.mark.parametrize("n", [5, 8])
@pytest.mark.parametrize("profile", [None, "known"])
def test_every_candidate_is_judged_once_before_any_twice(n: int, profile: str | None) -> None:
    # A knockout's first round: disjoint pairs until each candidate was in one call (with an
    # unknown bias each pair takes both orders first), so the best is never left unseen while
    # others are judged again. Top-two Thompson sampling from the prior paired at random.
    for seed in range(6):
        scheduler = Adaptive(
            n, seed=seed, batch=1, profile=None if profile is None else _known_bias()
        )
        judge = noisy(seed)
        pairs: list[frozenset[int]] = []
        while len(pairs) < n // 2 + n % 2:
            (call,) = scheduler.next_pairs()
            scheduler.record(call, judge(call))
            pair = frozenset((call.first, call.second))
            if not pairs or pair != pairs[-1]:
                pairs.append(pair)
        first_round = [sorted(p) for p in pairs[: n // 2]]
        assert len(set().union(*pairs[: n // 2])) == 2 * (n // 2), first_round
        assert set().union(*pairs) == set(range(n))


def test_after_the_first_round_the_winners_meet() -> None:
    # Four candidates, a noiseless judge of known bias: two disjoint pairs, then the two
    # winners (the leader and the one rival that can still beat it), as a knockout's final.
    for seed in range(8):
        quality = np.random.default_rng(seed).permutation(4).tolist()
        scheduler = Adaptive(4, seed=seed, batch=1, profile=_known_bias(0.0))
        judge = transitive(quality)
        winners = set()
        for _ in range(2):
            (call,) = scheduler.next_pairs()
            scheduler.record(call, judge(call))
            winners.add(max(call.first, call.second, key=lambda i: quality[i]))
        (final,) = scheduler.next_pairs()
        assert {final.first, final.second} == winners
