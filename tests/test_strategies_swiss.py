"""Tests for genrm_rank.strategies.swiss."""

from __future__ import annotations

import itertools
import math
from collections import Counter

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategy_driver import drive, failing, graded, noisy, position_biased, transitive

from genrm_rank.strategies import PairCall, Swiss, make_strategy
from genrm_rank.strategies.swiss import default_rounds
from genrm_rank.verdict import Verdict

SWAPS = st.sampled_from(["both", "random", "none"])
CALLS_PER_MATCH = {"both": 2, "random": 1, "none": 1}


@pytest.mark.parametrize(
    ("n", "rounds"),
    [(2, 1), (3, 3), (4, 3), (5, 4), (6, 4), (8, 4), (9, 5), (16, 5), (17, 6), (64, 7)],
)
def test_default_rounds_is_log2_plus_one_capped_by_a_round_robin(n: int, rounds: int) -> None:
    assert default_rounds(n) == rounds
    assert default_rounds(n) == min(math.ceil(math.log2(n)) + 1, n - 1 + n % 2)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(2, 40),
    rounds=st.one_of(st.none(), st.integers(1, 8)),
    swap=SWAPS,
    samples=st.integers(1, 3),
    seed=st.integers(0, 10_000),
)
def test_call_count(n: int, rounds: int | None, swap: str, samples: int, seed: int) -> None:
    sw = Swiss(n, rounds=rounds, swap=swap, samples=samples, seed=seed)  # type: ignore[arg-type]
    calls = drive(sw, noisy(seed))
    n_rounds = default_rounds(n) if rounds is None else rounds
    assert len(sw.matches) == n_rounds * (n // 2)
    assert calls == n_rounds * (n // 2) * CALLS_PER_MATCH[swap] * samples
    outcome = sw.result()
    assert outcome.order is not None and sorted(outcome.order) == list(range(n))


@settings(max_examples=60, deadline=None)
@given(n=st.integers(2, 14), extra=st.integers(0, 3), seed=st.integers(0, 10_000))
def test_rematch_only_when_no_pairing_avoids_it(n: int, extra: int, seed: int) -> None:
    sw = Swiss(n, rounds=default_rounds(n) + extra, swap="none", seed=seed)
    drive(sw, noisy(seed))
    met: set[frozenset[int]] = set()
    for r in range(1, sw.n_rounds + 1):
        pairs = [frozenset((m.a, m.b)) for m in sw.matches if m.round == r]
        players = set().union(*pairs)
        assert len(players) == 2 * (n // 2)  # everyone plays once, but for one bye
        if any(p in met for p in pairs):
            fresh = nx.Graph()
            fresh.add_nodes_from(players)
            fresh.add_edges_from(
                p for p in itertools.combinations(players, 2) if frozenset(p) not in met
            )
            assert len(nx.max_weight_matching(fresh, maxcardinality=True)) < len(players) // 2
            assert any(f"round {r}: rematch" in note for note in sw.result().notes)
        met.update(pairs)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(3, 25).filter(lambda n: n % 2 == 1), seed=st.integers(0, 10_000))
def test_byes_go_to_distinct_candidates_and_score_an_average_match(n: int, seed: int) -> None:
    sw = Swiss(n, swap="both", seed=seed)
    drive(sw, noisy(seed, fail_rate=0.0))
    byes = [
        (set(range(n)) - {c for m in sw.matches if m.round == r for c in (m.a, m.b)}).pop()
        for r in range(1, sw.n_rounds + 1)
    ]
    assert len(set(byes)) == len(byes)  # rounds <= n, so nobody needs a second bye
    # Preference points: each match hands out exactly 1, each bye 0.5 (an average match).
    assert math.fsum(sw.points) == pytest.approx(len(sw.matches) + 0.5 * len(byes))


def test_bye_goes_to_the_lowest_in_the_standings() -> None:
    sw = Swiss(3, swap="none", seeding=[0, 1, 2])
    (call,) = sw.next_pairs()  # seed 3 (candidate 2) sits out round 1
    assert (call.first, call.second) == (0, 1)
    assert sw.points == (0.0, 0.0, 0.5)
    sw.record(call, Verdict(ranking=1))  # 0 beats 1 fully
    (call,) = sw.next_pairs()  # standings 0, 2, 1; of 0 and 1 (no bye yet), 1 is lowest
    assert {call.first, call.second} == {0, 2}


def test_equal_candidates_win_equally_often_whoever_sits_out() -> None:
    # A judge with no preference: a uniform ranking in [1, 6] (continuous, so that no two totals
    # tie and the seed tie-break never decides). Seeding is fixed, so candidate 4 (seed 5) sits
    # out round 1 every run and the later byes go by the standings; each candidate should still
    # win 1/N of the runs. A full-win bye gave candidate 4 about 0.35 and the others 0.16.
    # (Under "wins" scoring totals tie often and the seed breaks the ties by design.)
    n, runs = 5, 2000
    rng = np.random.default_rng(20261130)
    wins = Counter[int]()
    for _ in range(runs):
        sw = Swiss(n, swap="both", seeding=range(n))
        drive(sw, lambda call: Verdict(ranking=float(rng.uniform(1.0, 6.0))))
        best = sw.result().best
        assert best is not None
        wins[best] += 1
    se = math.sqrt((1 / n) * (1 - 1 / n) / runs)
    for c in range(n):
        assert abs(wins[c] / runs - 1 / n) <= 2 * se, (c, wins[c] / runs)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(2, 32), seed=st.integers(0, 10_000), swap=SWAPS)
def test_transitive_judge_puts_the_best_first(n: int, seed: int, swap: str) -> None:
    quality = np.random.default_rng(seed).permutation(n).tolist()
    sw = Swiss(n, swap=swap, seed=seed)  # type: ignore[arg-type]
    drive(sw, transitive(quality))
    outcome = sw.result()
    assert outcome.best == int(np.argmax(quality))
    assert outcome.order is not None and outcome.order[0] == outcome.best


@settings(max_examples=30, deadline=None)
@given(data=st.data(), n=st.integers(2, 16), swap=SWAPS, seed=st.integers(0, 1000))
def test_relabelling_candidates_relabels_the_outcome(
    data: st.DataObject, n: int, swap: str, seed: int
) -> None:
    seeding = data.draw(st.permutations(range(n)))
    relabel = data.draw(st.permutations(range(n)))
    quality = data.draw(st.lists(st.integers(1, 5), min_size=n, max_size=n))
    quality_relabelled = [0] * n
    for old, new in enumerate(relabel):
        quality_relabelled[new] = quality[old]
    sw = Swiss(n, swap=swap, seed=seed, seeding=seeding)  # type: ignore[arg-type]
    drive(sw, graded(quality))
    sw2 = Swiss(
        n,
        swap=swap,  # type: ignore[arg-type]
        seed=seed,
        seeding=[relabel[s] for s in seeding],
    )
    drive(sw2, graded(quality_relabelled))
    order, order2 = sw.result().order, sw2.result().order
    assert order is not None and order2 is not None
    assert list(order2) == [relabel[c] for c in order]


def test_order_is_points_then_buchholz_then_seed() -> None:
    # 4 candidates, 3 rounds: a full round-robin, every match a tie (pure position bias with
    # swap="both"), so all points are equal and so are all Buchholz sums: seed decides.
    sw = Swiss(4, swap="both", seeding=[2, 0, 3, 1])
    drive(sw, position_biased(1))
    assert sw.points == (1.5, 1.5, 1.5, 1.5)
    assert sw.result().order == (2, 0, 3, 1)


def test_buchholz_breaks_a_tie_in_points() -> None:
    # 6 candidates, 4 rounds, "wins" scoring: several candidates end on equal points, and
    # Buchholz (the points of the opponents each met) orders them before the seed does.
    sw = Swiss(6, swap="none", seeding=[0, 1, 2, 3, 4, 5], scoring="wins")
    drive(sw, transitive([6, 5, 4, 3, 2, 1]))
    outcome = sw.result()
    buchholz = sw.buchholz()
    assert outcome.order is not None
    keys = [(-sw.points[c], -buchholz[c], c) for c in outcome.order]
    assert keys == sorted(keys)
    assert outcome.best == 0 and sw.points[0] == 4.0


@pytest.mark.parametrize(
    ("ranking", "points"),
    [(1, (1.0, 0.0)), (3, (1.0, 0.0)), (3.5, (0.5, 0.5)), (6, (0.0, 1.0))],
)
def test_wins_scoring(ranking: float, points: tuple[float, float]) -> None:
    sw = Swiss(2, swap="none", seeding=[0, 1], scoring="wins")
    drive(sw, position_biased(ranking))
    assert sw.points == points


def test_preference_scoring_hands_out_the_preference() -> None:
    sw = Swiss(2, swap="none", seeding=[0, 1])
    drive(sw, position_biased(3))
    assert sw.points == pytest.approx((0.6, 0.4))


def test_failed_match_scores_nothing_and_is_noted() -> None:
    sw = Swiss(4, swap="both", seeding=[0, 1, 2, 3])

    def judge(call: PairCall) -> Verdict:
        if {call.first, call.second} == {0, 1}:
            return failing(call)
        return Verdict(ranking=1)

    drive(sw, judge)
    # Every other match is a tie (pure position bias, both orders): 0.5 each, 2 each for 0 and 1.
    assert sw.points[0] + sw.points[1] == pytest.approx(2.0)
    outcome = sw.result()
    assert "match 0 (round 1: 0 vs 1): no readable verdict; no points" in outcome.notes


def test_rounds_wait_for_the_previous_round() -> None:
    sw = Swiss(8, swap="both", seed=0)
    first = sw.next_pairs()
    assert len(first) == 8
    for call in first[:-1]:
        sw.record(call, Verdict(ranking=2))
        assert sw.next_pairs() == []
    sw.record(first[-1], Verdict(ranking=2))
    assert {sw.matches[c.match_id].round for c in sw.next_pairs()} == {2}


def test_stop_mid_run_is_done_once_outstanding_calls_return() -> None:
    sw = Swiss(8, swap="both", seed=0)
    calls = sw.next_pairs()
    sw.stop()
    for call in calls[:-1]:
        sw.record(call, Verdict(ranking=2))
        assert not sw.done
    sw.record(calls[-1], Verdict(ranking=2))
    assert sw.done and sw.next_pairs() == []
    assert len(sw.matches) == 4
    outcome = sw.result()
    assert outcome.best is None and outcome.order is None
    assert outcome.notes[-1] == "swiss stopped after 1 of 4 rounds: no order of its own"


@pytest.mark.parametrize(
    ("kwargs", "error", "argument"),
    [
        ({"n_items": 1}, ValueError, "n_items"),
        ({"n_items": 4, "rounds": 0}, ValueError, "rounds"),
        ({"n_items": 4, "rounds": 2.0}, TypeError, "rounds"),
        ({"n_items": 4, "scoring": "elo"}, ValueError, "scoring"),
        ({"n_items": 4, "swap": "yes"}, ValueError, "swap"),
        ({"n_items": 4, "samples": -1}, ValueError, "samples"),
        ({"n_items": 3, "seeding": [0, 0, 1]}, ValueError, "seeding"),
    ],
)
def test_invalid_arguments_name_the_argument(
    kwargs: dict[str, object], error: type[Exception], argument: str
) -> None:
    with pytest.raises(error, match=f"'{argument}'"):
        Swiss(**kwargs)  # type: ignore[arg-type]


def test_registered_as_swiss() -> None:
    sw = make_strategy("swiss", 5, swap="none", seed=1)
    assert isinstance(sw, Swiss)
    assert drive(sw, transitive(range(5))) == 4 * 2
    assert Counter(m.round for m in sw.matches) == {1: 2, 2: 2, 3: 2, 4: 2}
