"""Tests for genrm_rank.consistency, including LLMBar's published swap statistics."""

from __future__ import annotations

import math
import re
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from llmbar import LLMBAR_STATISTICS, llmbar_judgements, llmbar_statistics
from reference_data import LLMBAR_SWAP_RESULTS, read_jsonl
from strategy_driver import drive, position_biased

from genrm_rank.consistency import consistency_report
from genrm_rank.strategies import Judgement, RoundRobin
from genrm_rank.verdict import Verdict

PUBLISHED = re.compile(r"(\d+) / (\d+) = ([0-9.e+-]+)%")


def v(ranking: float, s1: float | None = None, s2: float | None = None) -> Verdict:
    return Verdict(score_1=s1, score_2=s2, ranking=ranking)


FAILED = Verdict.failed("unreadable", raw="no verdict here")


# -- hand-made cases ------------------------------------------------------------------------


def test_agreement_winners_and_bias() -> None:
    report = consistency_report(
        [
            Judgement(0, 1, v(2)),  # 0 wins in slot 1
            Judgement(1, 0, v(5)),  # 0 wins in slot 2: agree
            Judgement(0, 2, v(1)),  # 0 wins in slot 1
            Judgement(2, 0, v(1)),  # 2 wins in slot 1: disagree (slot 1 always wins)
            Judgement(1, 2, v(3.5)),  # tie
            Judgement(2, 1, v(3.5)),  # tie: two ties agree
        ]
    )
    assert report.pairs_both_orders == 3
    assert report.agree == 2
    assert report.agreement_rate == pytest.approx(2 / 3)
    assert (report.first_slot_wins, report.second_slot_wins, report.ties) == (3, 1, 2)
    assert report.first_slot_win_share == pytest.approx(0.75)
    assert report.first_slot_log_odds == pytest.approx(math.log(3))
    # (p_ab + p_ba - 1) / 2 per pair: (0.8 + 0.2 - 1)/2 = 0, (1 + 1 - 1)/2 = 0.5, 0.
    assert report.position_bias == pytest.approx(0.5 / 3)
    assert (report.failed, report.unpaired, report.judgements) == (0, 0, 6)
    assert report.correct_first_order is None and report.gold_pairs == 0


def test_tie_against_a_winner_disagrees() -> None:
    report = consistency_report([Judgement(0, 1, v(3.5)), Judgement(1, 0, v(6))])
    assert (report.pairs_both_orders, report.agree) == (1, 0)


def test_failed_verdicts_are_counted_apart_and_never_scored() -> None:
    report = consistency_report(
        [
            Judgement(0, 1, v(1)),
            Judgement(1, 0, FAILED),  # one failed
            Judgement(0, 2, FAILED),
            Judgement(2, 0, FAILED),  # both failed
            Judgement(1, 2, v(6)),  # no swapped call: unpaired
        ]
    )
    assert report.failed == 3
    assert report.pairs_both_orders == 0 and report.agreement_rate is None
    assert (report.pairs_one_failed, report.pairs_both_failed, report.unpaired) == (1, 1, 1)
    assert (report.first_slot_wins, report.second_slot_wins) == (1, 1)
    assert report.position_bias is None
    assert report.first_slot_log_odds == 0.0


def test_samples_pair_by_index() -> None:
    report = consistency_report(
        [
            Judgement(0, 1, v(1), sample=0),
            Judgement(0, 1, v(6), sample=1),
            Judgement(1, 0, v(6), sample=0),  # agrees with sample 0
            Judgement(1, 0, v(6), sample=1),  # disagrees with sample 1
        ]
    )
    assert (report.pairs_both_orders, report.agree) == (2, 1)


def test_a_call_given_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="'judgements'"):
        consistency_report([Judgement(0, 1, v(1)), Judgement(0, 1, v(2))])


def test_empty_report() -> None:
    report = consistency_report([])
    assert report.judgements == 0
    assert report.agreement_rate is None and report.first_slot_win_share is None
    assert report.first_slot_log_odds is None and report.position_bias is None


def test_gold_accuracy() -> None:
    judgements = [
        Judgement(0, 1, v(1)),  # first order says 0
        Judgement(1, 0, v(1)),  # swapped order says 1
        Judgement(2, 3, v(6)),  # first order says 3
        Judgement(3, 2, v(1)),  # swapped order says 3
        Judgement(4, 5, FAILED),
        Judgement(5, 4, v(6)),  # swapped order says 4
    ]
    report = consistency_report(judgements, gold={(0, 1): 1, (3, 2): 3, (4, 5): 4})
    assert report.gold_pairs == 3
    assert report.correct_first_order == 1  # pair 2-3
    assert report.correct_swapped_order == 3
    assert report.correct_both == 1


@pytest.mark.parametrize(
    ("gold", "error"),
    [({(0, 1): 2}, ValueError), ({(0, 0): 0}, ValueError), ([((0, 1), 0)], TypeError)],
)
def test_bad_gold_is_refused(gold: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match="'gold'"):
        consistency_report([], gold=gold)


def test_non_judgements_are_refused() -> None:
    with pytest.raises(TypeError, match="'judgements'"):
        consistency_report([(0, 1, v(1))])  # type: ignore[list-item]


# -- properties -----------------------------------------------------------------------------

VERDICTS = st.one_of(
    st.integers(1, 6).map(lambda r: v(r)),
    st.just(v(3.5)),
    st.just(FAILED),
)


@st.composite
def judgement_sets(draw: st.DrawFn) -> list[Judgement]:
    n = draw(st.integers(2, 6))
    calls = draw(
        st.sets(
            st.tuples(st.integers(0, n - 1), st.integers(0, n - 1), st.integers(0, 2)).filter(
                lambda c: c[0] != c[1]
            ),
            max_size=30,
        )
    )
    return [Judgement(a, b, draw(VERDICTS), sample=s) for a, b, s in sorted(calls)]


@given(judgements=judgement_sets())
def test_swapping_every_call_mirrors_the_slots_only(judgements: list[Judgement]) -> None:
    mirrored = [
        replace(j, first=j.second, second=j.first, verdict=j.verdict.swapped()) for j in judgements
    ]
    a, b = consistency_report(judgements), consistency_report(mirrored)
    assert (a.pairs_both_orders, a.agree, a.failed, a.ties, a.unpaired) == (
        b.pairs_both_orders,
        b.agree,
        b.failed,
        b.ties,
        b.unpaired,
    )
    assert (a.first_slot_wins, a.second_slot_wins) == (b.second_slot_wins, b.first_slot_wins)
    if a.position_bias is None:
        assert b.position_bias is None
    else:
        assert b.position_bias == pytest.approx(-a.position_bias)


@given(judgements=judgement_sets(), data=st.data())
def test_relabelling_leaves_the_report_unchanged(
    judgements: list[Judgement], data: st.DataObject
) -> None:
    relabel = data.draw(st.permutations(range(6)))
    renamed = [replace(j, first=relabel[j.first], second=relabel[j.second]) for j in judgements]
    a, b = consistency_report(judgements), consistency_report(renamed)
    assert a.agree == b.agree and a.pairs_both_orders == b.pairs_both_orders
    assert a.first_slot_wins == b.first_slot_wins and a.unpaired == b.unpaired
    assert a.position_bias == (None if b.position_bias is None else pytest.approx(b.position_bias))


# -- LLMBar ---------------------------------------------------------------------------------


def test_llmbar_items_become_two_judgements_each() -> None:
    judgements, gold = llmbar_judgements([["1", "2", "None"], ["2", "1", "1"]])
    assert [(j.first, j.second, j.verdict.ranking, j.match_id) for j in judgements] == [
        (0, 1, 6.0, 0),  # original order: output_2 (slot 2) won
        (1, 0, None, 0),  # swapped: unreadable
        (2, 3, 1.0, 1),  # original order: output_1 (slot 1) won
        (3, 2, 6.0, 1),  # swapped: output_1, now in slot 2, won
    ]
    assert judgements[1].verdict.failure == "unreadable" and judgements[1].verdict.raw == "None"
    assert gold == {(0, 1): 0, (2, 3): 3}


@pytest.mark.parametrize(
    "item",
    [["1", "tie", "1"], ["None", "1", "1"], ["3", "1", "1"], ["1", "1", "0"], ["1", "1"], "112"],
)
def test_llmbar_values_other_than_1_2_none_are_refused(item: Any) -> None:
    with pytest.raises(ValueError, match="'items'"):
        llmbar_judgements([item])


def test_llmbar_data_holds_only_the_values_handled() -> None:
    runs = read_jsonl(LLMBAR_SWAP_RESULTS)
    values = [tuple(item) for run in runs for item in run["items"]]
    assert len(runs) == 499
    assert {label for label, _, _ in values} == {"1", "2"}
    assert {w for _, a, b in values for w in (a, b)} == {"1", "2", "None"}
    # The oddity that matters: 121 items where both orders were unreadable, which LLMBar's
    # "equal" counts as agreeing ("None" == "None").
    assert sum(a == b == "None" for _, a, b in values) == 121


def _run_id(run: dict[str, Any]) -> str:
    return f"{run['dataset']}|{run['evaluator']}|{run['strategy']}"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One test per published LLMBar run, read when the tests are collected (not at import)."""
    if "llmbar_run" in metafunc.fixturenames:
        runs = read_jsonl(LLMBAR_SWAP_RESULTS)
        metafunc.parametrize("llmbar_run", runs, ids=[_run_id(run) for run in runs])


def test_llmbar_published_counts_are_reproduced(llmbar_run: dict[str, Any]) -> None:
    run = llmbar_run
    ours = llmbar_statistics(run["items"])
    for name in LLMBAR_STATISTICS:
        match = PUBLISHED.fullmatch(run["statistics"][name])
        assert match is not None, run["statistics"][name]
        numerator, denominator, percent = int(match[1]), int(match[2]), float(match[3])
        assert ours[name] == (numerator, denominator), name
        assert percent == pytest.approx(100 * numerator / denominator)


@pytest.mark.parametrize("ranking", [1, 2, 3])
def test_report_of_a_scheduler_run_with_pure_position_bias(ranking: int) -> None:
    rr = RoundRobin(5, swap="both", samples=2)
    drive(rr, position_biased(ranking))
    report = consistency_report(rr.judgements())
    assert report.pairs_both_orders == 10 * 2
    assert report.agree == 0 and report.first_slot_win_share == 1.0
    assert report.position_bias == pytest.approx((6 - ranking) / 5 - 0.5)
