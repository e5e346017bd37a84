"""Tests for genrm_rank.strategies.knockout."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategy_driver import (
    drive,
    failing,
    graded,
    noisy,
    position_biased,
    transitive,
)

from genrm_rank.strategies import Knockout, PairCall, make_strategy
from genrm_rank.strategies.knockout import bracket_order, mean_scores
from genrm_rank.verdict import Verdict

SWAPS = st.sampled_from(["both", "random", "none"])
CALLS_PER_MATCH = {"both": 2, "random": 1, "none": 1}


@st.composite
def sizes_and_seedings(draw: st.DrawFn, max_n: int = 64) -> tuple[int, list[int]]:
    n = draw(st.integers(2, max_n))
    return n, draw(st.permutations(range(n)))


# -- bracket --------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 2, 4, 8, 16, 64])
def test_bracket_order_pairs_seed_k_with_its_mirror(size: int) -> None:
    order = bracket_order(size)
    assert sorted(order) == list(range(size))
    if size > 1:
        assert all(order[i] + order[i + 1] == size - 1 for i in range(0, size, 2))


@pytest.mark.parametrize("size", [0, 3, 6, 12])
def test_bracket_order_rejects_non_powers_of_two(size: int) -> None:
    with pytest.raises(ValueError, match="'size'"):
        bracket_order(size)


@pytest.mark.parametrize(
    ("n", "first_round"),
    [
        (2, [(0, 1)]),
        (3, [(1, 2)]),  # seed 1 has a bye
        (5, [(3, 4)]),  # seeds 1-3 have byes; 4 vs 5
        (6, [(3, 4), (2, 5)]),  # seeds 1-2 have byes
        (8, [(0, 7), (3, 4), (1, 6), (2, 5)]),
    ],
)
def test_first_round_gives_byes_to_top_seeds(n: int, first_round: list[tuple[int, int]]) -> None:
    ko = Knockout(n, swap="none", seeding=list(range(n)))
    calls = ko.next_pairs()
    assert [(c.first, c.second) for c in calls] == first_round
    assert {m.round for m in ko.matches} == {1}


# -- counts ---------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(2, 64),
    swap=SWAPS,
    samples=st.integers(1, 3),
    seed=st.integers(0, 2**32 - 1),
)
def test_exactly_n_minus_one_matches(n: int, swap: str, samples: int, seed: int) -> None:
    ko = Knockout(n, swap=swap, samples=samples, seed=seed)  # type: ignore[arg-type]
    calls = drive(ko, noisy(seed))
    assert len(ko.matches) == n - 1
    assert calls == (n - 1) * CALLS_PER_MATCH[swap] * samples
    assert len(ko.judgements()) == calls
    outcome = ko.result()
    assert outcome.order is not None and sorted(outcome.order) == list(range(n))
    assert outcome.best == outcome.order[0]
    assert ko.n_rounds == (n - 1).bit_length()
    appearances = Counter(c for m in ko.matches for c in (m.a, m.b))
    assert len(appearances) == n
    assert appearances[outcome.best] in (ko.n_rounds - 1, ko.n_rounds)  # maybe after a bye
    assert sum(m.round == ko.n_rounds for m in ko.matches) == 1  # one final


def test_calls_of_a_round_are_all_issued_together_and_only_after_the_previous_round() -> None:
    ko = Knockout(8, swap="both", seeding=list(range(8)))
    judge = transitive(list(range(8)))
    first = ko.next_pairs()
    assert len(first) == 8 and {c.match_id for c in first} == {0, 1, 2, 3}
    for call in first[:-1]:
        ko.record(call, judge(call))
        assert ko.next_pairs() == []  # round 2 waits for the whole of round 1
    ko.record(first[-1], judge(first[-1]))
    second = ko.next_pairs()
    assert len(second) == 4 and {ko.matches[c.match_id].round for c in second} == {2}


# -- winners --------------------------------------------------------------------------------


@settings(max_examples=80, deadline=None)
@given(case=sizes_and_seedings(), swap=SWAPS, quality_seed=st.integers(0, 1000))
def test_transitive_judge_crowns_the_best(
    case: tuple[int, list[int]], swap: str, quality_seed: int
) -> None:
    n, seeding = case
    quality = np.random.default_rng(quality_seed).permutation(n).tolist()
    ko = Knockout(n, swap=swap, seeding=seeding, seed=quality_seed)  # type: ignore[arg-type]
    drive(ko, transitive(quality))
    outcome = ko.result()
    assert outcome.best == int(np.argmax(quality))
    assert outcome.notes == ()


@settings(max_examples=40, deadline=None)
@given(
    case=sizes_and_seedings(max_n=24),
    qualities=st.data(),
    swap=SWAPS,
    seed=st.integers(0, 1000),
)
def test_relabelling_candidates_relabels_the_outcome(
    case: tuple[int, list[int]], qualities: st.DataObject, swap: str, seed: int
) -> None:
    n, seeding = case
    # Few quality levels, so some matches are ties settled by scores or coins.
    quality = qualities.draw(st.lists(st.integers(1, 4), min_size=n, max_size=n))
    relabel = qualities.draw(st.permutations(range(n)))
    quality_relabelled = [0] * n
    for old, new in enumerate(relabel):
        quality_relabelled[new] = quality[old]

    ko = Knockout(n, swap=swap, seed=seed, seeding=seeding)  # type: ignore[arg-type]
    drive(ko, graded(quality))
    ko2 = Knockout(
        n,
        swap=swap,  # type: ignore[arg-type]
        seed=seed,
        seeding=[relabel[s] for s in seeding],
    )
    drive(ko2, graded(quality_relabelled))
    order, order2 = ko.result().order, ko2.result().order
    assert order is not None and order2 is not None
    assert list(order2) == [relabel[c] for c in order]


@settings(max_examples=50, deadline=None)
@given(
    n=st.integers(2, 20),
    ranking=st.one_of(st.integers(1, 6), st.floats(1, 6)),
    samples=st.integers(1, 12),
    seed=st.integers(0, 1000),
)
def test_both_orders_cancel_pure_position_bias_exactly(
    n: int, ranking: float, samples: int, seed: int
) -> None:
    ko = Knockout(n, swap="both", samples=samples, seed=seed)
    drive(ko, position_biased(ranking, scores=(4, 2)))
    assert all(m.preference == 0.5 for m in ko.matches)
    outcome = ko.result()
    # Every match went down the tie-break chain; scores favour each slot equally, so coins.
    assert len(outcome.notes) == n - 1
    assert all("preference exactly 0.5" in note and "by coin" in note for note in outcome.notes)


def test_exact_tie_goes_to_the_higher_mean_score_crediting_each_score_to_its_slot() -> None:
    ko = Knockout(2, swap="both", seeding=[0, 1])
    verdicts = {
        (0, 1): Verdict(score_1=3, score_2=5, ranking=3),  # 0 slightly better in slot 1 ...
        (1, 0): Verdict(score_1=5, score_2=3, ranking=3),  # ... and 1 slightly better in slot 1
    }
    drive(ko, lambda c: verdicts[(c.first, c.second)])
    assert ko.matches[0].preference == pytest.approx(0.5, abs=1e-15)
    outcome = ko.result()
    assert outcome.best == 1  # candidate 1 scored 5 in both calls, candidate 0 scored 3
    assert outcome.notes == (
        "match 0 (round 1: 0 vs 1): preference exactly 0.5; advanced 1 by mean individual "
        "score 5 vs 3",
    )


def test_mean_scores_credit_score_1_to_the_first_slot() -> None:
    from genrm_rank.strategies import Judgement

    judgements = [
        Judgement(0, 1, Verdict(score_1=4, score_2=2, ranking=2)),
        Judgement(1, 0, Verdict(score_1=1, score_2=5, ranking=6)),
        Judgement(1, 0, Verdict.failed("unreadable", raw="?")),
        Judgement(0, 1, Verdict(ranking=2)),  # no scores: left out
    ]
    assert mean_scores(0, 1, judgements) == (4.5, 1.5)
    assert mean_scores(1, 0, judgements) == (1.5, 4.5)
    assert mean_scores(0, 1, judgements[2:]) == (None, None)


def test_unreadable_match_is_decided_by_coin_and_reported() -> None:
    ko = Knockout(2, swap="both", seeding=[0, 1], seed=3)
    drive(ko, failing)
    assert ko.matches[0].preference is None
    outcome = ko.result()
    assert outcome.best in (0, 1)
    (note,) = outcome.notes
    assert note == (
        f"match 0 (round 1: 0 vs 1): no readable verdict (2 failed: unreadable); "
        f"advanced {outcome.best} by coin (no individual scores)"
    )


@settings(max_examples=30, deadline=None)
@given(n=st.integers(2, 40), seed=st.integers(0, 1000), swap=SWAPS)
def test_failed_verdicts_never_become_numbers(n: int, seed: int, swap: str) -> None:
    ko = Knockout(n, swap=swap, seed=seed)  # type: ignore[arg-type]
    drive(ko, failing)
    assert all(m.preference is None for m in ko.matches)
    outcome = ko.result()
    assert outcome.order is not None and sorted(outcome.order) == list(range(n))
    assert len(outcome.notes) == n - 1
    assert all("no readable verdict" in note and "by coin" in note for note in outcome.notes)


def test_partly_failed_match_is_decided_on_the_rest_and_noted() -> None:
    ko = Knockout(2, swap="both", seeding=[0, 1])

    def judge(call: PairCall) -> Verdict:
        if call.first == 1:
            return Verdict.failed("truncated", raw="...")
        return Verdict(ranking=5)  # 1 better, seen with 0 in slot 1

    drive(ko, judge)
    outcome = ko.result()
    assert outcome.best == 1
    assert outcome.notes == (
        "match 0 (round 1: 0 vs 1): 1 of 2 verdicts failed (truncated); decided on the rest",
    )


@pytest.mark.parametrize("arrival_seed", [0, 1, 2, 3])
def test_coins_do_not_depend_on_arrival_order(arrival_seed: int) -> None:
    reference = Knockout(13, swap="both", seed=42)
    drive(reference, position_biased(2))
    ko = Knockout(13, swap="both", seed=42)
    drive(ko, position_biased(2), arrival=np.random.default_rng(arrival_seed))
    assert ko.result() == reference.result()


# -- order ----------------------------------------------------------------------------------


def test_order_is_by_round_eliminated_then_margin_then_seed() -> None:
    # Seeds 0..7: round 1 is 0-7, 3-4, 1-6, 2-5. Quality = -index, so lower index wins.
    quality = [8, 7, 6, 5, 4, 3, 2, 1]
    margin = {7: 1.0, 4: 3.0, 6: 2.0, 5: 2.0}  # ranking each first-round loser gets from slot 1

    def judge(call: PairCall) -> Verdict:
        if call.second in margin and quality[call.first] > quality[call.second]:
            return Verdict(ranking=margin[call.second])
        return transitive(quality)(call)

    ko = Knockout(8, swap="none", seeding=list(range(8)))
    drive(ko, judge)
    outcome = ko.result()
    # Final 0-1 (1 is runner-up); semi-finals lost by 3 and 2, both fully (seed 3 before 4);
    # round 1: 4 lost by ranking 3 (kept p 0.4), then 5 and 6 by ranking 2 (p 0.2 each, seed 6
    # before seed 7), then 7 by ranking 1 (p 0).
    assert outcome.best == 0
    assert outcome.order == (0, 1, 2, 3, 4, 5, 6, 7)


# -- stopping -------------------------------------------------------------------------------


def test_stop_mid_round_is_done_once_outstanding_calls_return() -> None:
    ko = Knockout(8, swap="both", seeding=list(range(8)))
    judge = transitive(list(range(8)))
    calls = ko.next_pairs()
    ko.stop()
    assert not ko.done
    for call in calls[:3]:
        ko.record(call, judge(call))
    assert not ko.done
    for call in calls[3:]:
        ko.record(call, judge(call))
    assert ko.done
    assert ko.next_pairs() == []
    assert len(ko.matches) == 4  # no second round after stop
    outcome = ko.result()
    assert outcome.best is None and outcome.order is None
    assert outcome.notes[-1].startswith("knockout stopped in round 1 of 3: no champion")


def test_stop_during_the_final_keeps_the_champion_once_its_calls_return() -> None:
    ko = Knockout(2, swap="none")
    (call,) = ko.next_pairs()
    ko.stop()
    ko.record(call, Verdict(ranking=6))
    assert ko.done
    assert ko.result().best == call.second


def test_stop_before_a_round_is_issued_leaves_it_undecided() -> None:
    ko = Knockout(4, swap="none", seeding=[0, 1, 2, 3])
    judge = transitive([4, 3, 2, 1])
    for call in ko.next_pairs():
        ko.record(call, judge(call))
    ko.stop()  # the final was queued but never issued
    assert ko.done and ko.next_pairs() == []
    outcome = ko.result()
    assert outcome.best is None
    assert "still in contention: [0, 1]" in outcome.notes[-1]


def test_recording_a_call_twice_is_refused() -> None:
    ko = Knockout(4, swap="both")
    call = ko.next_pairs()[0]
    ko.record(call, Verdict(ranking=1))
    with pytest.raises(ValueError, match="'call'"):
        ko.record(call, Verdict(ranking=1))


# -- arguments ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "argument"),
    [
        ({"n_items": 1}, ValueError, "n_items"),
        ({"n_items": 4.0}, TypeError, "n_items"),
        ({"n_items": True}, TypeError, "n_items"),
        ({"n_items": 4, "swap": "sometimes"}, ValueError, "swap"),
        ({"n_items": 4, "samples": 0}, ValueError, "samples"),
        ({"n_items": 4, "seeding": [0, 1, 2]}, ValueError, "seeding"),
        ({"n_items": 4, "seeding": [0, 1, 2, 2]}, ValueError, "seeding"),
        ({"n_items": 4, "seeding": [1, 2, 3, 4]}, ValueError, "seeding"),
        ({"n_items": 2, "seeding": "01"}, TypeError, "seeding"),
        ({"n_items": 2, "seeding": [0, 1.0]}, TypeError, "seeding"),
        ({"n_items": 2, "seeding": 7}, TypeError, "seeding"),
        ({"n_items": 2, "preference_mapping": 3}, TypeError, "preference_mapping"),
    ],
)
def test_invalid_arguments_name_the_argument(
    kwargs: dict[str, object], error: type[Exception], argument: str
) -> None:
    with pytest.raises(error, match=f"'{argument}'"):
        Knockout(**kwargs)  # type: ignore[arg-type]


def test_seeding_accepts_a_numpy_permutation_and_random_seeding_is_reproducible() -> None:
    assert Knockout(5, seeding=np.arange(5)[::-1]).seeding == (4, 3, 2, 1, 0)
    # The random seeding is the seed's generator's first permutation, the same in any process.
    assert Knockout(9, seed=7).seeding == tuple(np.random.default_rng(7).permutation(9))
    assert Knockout(9, seed=7).seeding != Knockout(9, seed=8).seeding
    assert sorted(Knockout(9, seed=7).seeding) == list(range(9))


def test_registered_as_knockout() -> None:
    ko = make_strategy("knockout", 6, swap="none", seed=0)
    assert isinstance(ko, Knockout)
    assert drive(ko, transitive(range(6))) == 5
