"""Tests for genrm_rank.aggregators.scores, including the published PRD win rates."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.typing import NDArray
from reference_data import PRD_RATINGS, read_jsonl

from genrm_rank.aggregators import Comparisons, copeland, mean_score, simple_tiebreaker, win_rate

# PRD file names -> the names used in the published tables
PRD_MODELS = {
    "answer_gpt4": "gpt-4",
    "answer_claude": "claude",
    "answer_vicuna-13b": "vicuna",
    "answer_gpt35": "gpt-3.5",
    "answer_bard": "bard",
}
PRD_NAMES = sorted(PRD_MODELS.values())
# PRD score: 1 = first answer better, 2 = second, 3 = tie, -1 = unreadable (counted as a tie)
PRD_OUTCOME = {1: 1.0, 2: 0.0, 3: 0.5, -1: 0.5}
LLM_REVIEWERS = ["bard", "claude", "gpt35", "gpt4", "vicuna-13b"]


@pytest.fixture(scope="module")
def prd_rows() -> list[dict[str, Any]]:
    rows = read_jsonl(PRD_RATINGS)
    # Only the five systems of the published table; this also drops gpt35's two extra
    # "answer-gpt35-vs-answer-gpt4" files (hyphenated names), which the notebook did not read.
    return [r for r in rows if r["model_a"] in PRD_MODELS and r["model_b"] in PRD_MODELS]


def _prd_comparisons(rows: list[dict[str, Any]]) -> Comparisons:
    index = {name: i for i, name in enumerate(PRD_NAMES)}
    return Comparisons.from_arrays(
        len(PRD_NAMES),
        [index[PRD_MODELS[r["model_a"]]] for r in rows],
        [index[PRD_MODELS[r["model_b"]]] for r in rows],
        [PRD_OUTCOME[r["score"]] for r in rows],
    )


def _human_majority(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    votes: dict[tuple[int, str, str], list[int]] = defaultdict(list)
    sign = {1: -1, 2: 1, 3: 0, -1: 0}
    for r in rows:
        if r["reviewer_dir"] == "human":
            votes[(r["question_id"], r["model_a"], r["model_b"])].append(sign[r["score"]])
    to_score = {-1: 1, 1: 2, 0: 3}
    return [
        {"model_a": a, "model_b": b, "score": to_score[int(np.sign(sum(v)))]}
        for (_, a, b), v in votes.items()
    ]


@pytest.mark.parametrize(
    ("table", "reviewers"),
    [
        ("gpt-4_reviewer", ["gpt4"]),
        ("gpt-3.5_reviewer", ["gpt35"]),
        ("all_5_llm_reviewers", LLM_REVIEWERS),
        ("human_majority", None),
    ],
)
def test_prd_published_win_rates(
    prd_rows: list[dict[str, Any]],
    table: str,
    reviewers: list[str] | None,
    expected: dict[str, Any],
) -> None:
    if reviewers is None:
        rows = _human_majority(prd_rows)
    else:
        rows = [r for r in prd_rows if r["reviewer_dir"] in reviewers]
    rates = win_rate(_prd_comparisons(rows))
    published = {
        k: v for k, v in expected["prd_vicuna80_winrates"][table].items() if not k.startswith("_")
    }
    assert set(published) == set(PRD_NAMES)
    for i, name in enumerate(PRD_NAMES):
        assert rates[i] == pytest.approx(published[name], abs=1e-9), name


# ---------------------------------------------------------------------------- case tables


@pytest.mark.parametrize(
    ("first", "second", "outcome", "weight", "expected"),
    [
        ([0, 1], [1, 2], [1.0, 0.5], None, [1.0, 0.25, 0.5]),
        ([0, 1], [1, 0], [0.8, 0.6], None, [0.6, 0.4, np.nan]),
        ([0, 0], [1, 1], [1.0, 0.0], [3.0, 1.0], [0.75, 0.25, np.nan]),
        ([0], [1], [1.0], [0.0], [np.nan, np.nan, np.nan]),
    ],
)
def test_win_rate_cases(
    first: list[int],
    second: list[int],
    outcome: list[float],
    weight: list[float] | None,
    expected: list[float],
) -> None:
    c = Comparisons.from_arrays(3, first, second, outcome, weight=weight)
    np.testing.assert_allclose(win_rate(c), expected)


@pytest.mark.parametrize(
    ("first", "second", "outcome", "expected"),
    [
        # 0 > 1 > 2 and 0 > 2
        ([0, 1, 0], [1, 2, 2], [1.0, 1.0, 1.0], [2, 0, -2]),
        # rock-paper-scissors: everyone 0
        ([0, 1, 2], [1, 2, 0], [1.0, 1.0, 1.0], [0, 0, 0]),
        # pair aggregated over both orders: 0 wins 1.0 and loses 0.4 -> mean 0.3 for 1 -> 0 wins
        ([0, 1], [1, 0], [1.0, 0.6], [1, -1, 0]),
        # exact tie after floating-point sums (0.7 + 0.3 twice) counts 0
        ([0, 1], [1, 0], [0.7, 0.7], [0, 0, 0]),
        ([0, 0], [1, 1], [0.1, 0.9], [0, 0, 0]),
        # uncompared pairs count 0
        ([2], [1], [0.0], [0, 1, -1]),
    ],
)
def test_copeland_cases(
    first: list[int], second: list[int], outcome: list[float], expected: list[int]
) -> None:
    c = Comparisons.from_arrays(3, first, second, outcome)
    np.testing.assert_array_equal(copeland(c), expected)


def test_mean_score_ignores_missing_scores() -> None:
    c = Comparisons.from_arrays(
        3,
        [0, 1, 0],
        [1, 0, 1],
        [1.0, 0.0, 0.5],
        score_first=[5.0, np.nan, 4.0],
        score_second=[2.0, 4.0, np.nan],
    )
    np.testing.assert_allclose(mean_score(c), [13 / 3, 2.0, np.nan])
    with pytest.raises(ValueError, match=r"'comparisons' must carry 'score_first'"):
        mean_score(Comparisons.from_arrays(2, [0], [1], [1.0]))


# ---------------------------------------------------------------------------- tiebreaker


def _nemo_reference(
    pairs: list[tuple[int, int]], results: list[tuple[float, float, float]], n: int
) -> list[float]:
    """A plain re-statement of NeMo-Gym's simple_tiebreaker loop, as an independent check."""
    total, count = [0.0] * n, [0] * n
    for (i, j), (s1, s2, ranking) in zip(pairs, results, strict=True):
        if s1 == s2:
            s1, s2 = s1 + (3.5 - ranking), s2 - (3.5 - ranking)
        total[i] += s1
        total[j] += s2
        count[i] += 1
        count[j] += 1
    return [t / k if k else float("nan") for t, k in zip(total, count, strict=True)]


@pytest.mark.parametrize(
    ("s1", "s2", "ranking", "first_reward", "second_reward"),
    [
        (4.0, 4.0, 1.0, 6.5, 1.5),  # response 1 much better: first gains
        (4.0, 4.0, 3.0, 4.5, 3.5),  # slightly better
        (4.0, 4.0, 4.0, 3.5, 4.5),  # response 2 slightly better: second gains
        (4.0, 4.0, 6.0, 1.5, 6.5),
        (5.0, 2.0, 6.0, 5.0, 2.0),  # scores differ: ranking ignored
        (3.0, 4.0, np.nan, 3.0, 4.0),  # ranking only needed on ties
    ],
)
def test_simple_tiebreaker_sign_convention(
    s1: float, s2: float, ranking: float, first_reward: float, second_reward: float
) -> None:
    c = Comparisons.from_arrays(
        2, [0], [1], [0.5], score_first=[s1], score_second=[s2], ranking=[ranking]
    )
    np.testing.assert_allclose(simple_tiebreaker(c), [first_reward, second_reward])


def test_simple_tiebreaker_matches_nemo_loop_on_circular_and_all_pairs() -> None:
    rng = np.random.default_rng(0)
    n = 5
    circular = [(i, (i + 1) % n) for i in range(n)]
    all_pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    for pairs in (circular, all_pairs):
        results = [
            (float(rng.integers(1, 6)), float(rng.integers(1, 6)), float(rng.integers(1, 7)))
            for _ in pairs
        ]
        c = Comparisons.from_arrays(
            n,
            [i for i, _ in pairs],
            [j for _, j in pairs],
            np.full(len(pairs), 0.5),
            score_first=[r[0] for r in results],
            score_second=[r[1] for r in results],
            ranking=[r[2] for r in results],
        )
        np.testing.assert_allclose(simple_tiebreaker(c), _nemo_reference(pairs, results, n))


def test_simple_tiebreaker_missing_values() -> None:
    c = Comparisons.from_arrays(
        3,
        [0, 1],
        [1, 0],
        [0.5, 0.5],
        score_first=[4.0, np.nan],
        score_second=[3.0, np.nan],
        ranking=[2.0, np.nan],
    )
    np.testing.assert_allclose(simple_tiebreaker(c, default=3.0), [4.0, 3.0, 3.0])
    half = Comparisons.from_arrays(
        2, [0], [1], [0.5], score_first=[4.0], score_second=[np.nan], ranking=[2.0]
    )
    with pytest.raises(ValueError, match=r"only one individual score at comparison 0"):
        simple_tiebreaker(half)
    unbroken = Comparisons.from_arrays(
        2, [0], [1], [0.5], score_first=[4.0], score_second=[4.0], ranking=[np.nan]
    )
    with pytest.raises(ValueError, match=r"tied scores \(4.0\) but ranking=nan at comparison 0"):
        simple_tiebreaker(unbroken)
    with pytest.raises(ValueError, match=r"must carry 'ranking'"):
        simple_tiebreaker(
            Comparisons.from_arrays(2, [0], [1], [0.5], score_first=[1.0], score_second=[2.0])
        )


def test_scores_reject_non_comparisons() -> None:
    with pytest.raises(TypeError, match=r"'comparisons' must be a Comparisons, not dict"):
        win_rate({})  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- properties


@st.composite
def genrm_comparisons(draw: st.DrawFn) -> Comparisons:
    n = draw(st.integers(2, 6))
    m = draw(st.integers(1, 20))

    def ints(lo: int, hi: int) -> st.SearchStrategy[list[int]]:
        return st.lists(st.integers(lo, hi), min_size=m, max_size=m)

    first = draw(ints(0, n - 1))
    second = [(f + s) % n for f, s in zip(first, draw(ints(1, n - 1)), strict=True)]
    outcome = draw(st.lists(st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0]), min_size=m, max_size=m))
    return Comparisons.from_arrays(
        n,
        first,
        second,
        outcome,
        score_first=[float(v) for v in draw(ints(1, 5))],
        score_second=[float(v) for v in draw(ints(1, 5))],
        ranking=[float(v) for v in draw(ints(1, 6))],
    )


AGGREGATORS = [win_rate, copeland, mean_score, simple_tiebreaker]


@settings(max_examples=40, deadline=None)
@given(genrm_comparisons(), st.data())
def test_relabelling_permutes_every_score(c: Comparisons, data: st.DataObject) -> None:
    perm = np.array(data.draw(st.permutations(range(c.n_items))))
    moved = c.relabel(perm)
    for aggregate in AGGREGATORS:
        before: NDArray[np.float64] = aggregate(c)
        after: NDArray[np.float64] = aggregate(moved)
        np.testing.assert_allclose(after[perm], before, err_msg=aggregate.__name__)


@settings(max_examples=40, deadline=None)
@given(genrm_comparisons())
def test_swapping_slots_changes_no_score(c: Comparisons) -> None:
    mirrored = c.swapped()
    for aggregate in AGGREGATORS:
        np.testing.assert_allclose(aggregate(mirrored), aggregate(c), err_msg=aggregate.__name__)


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 7).flatmap(lambda n: st.tuples(st.permutations(range(n)), st.data())))
def test_copeland_recovers_a_transitive_soft_judge(case: tuple[list[int], st.DataObject]) -> None:
    order, data = case
    n = len(order)
    rank = {item: r for r, item in enumerate(order)}
    first, second, outcome = [], [], []
    for i in range(n):
        for j in range(i + 1, n):
            a, b = (i, j) if data.draw(st.booleans()) else (j, i)
            strength = data.draw(st.floats(0.55, 1.0))
            first.append(a)
            second.append(b)
            outcome.append(strength if rank[a] < rank[b] else 1.0 - strength)
    scores = copeland(Comparisons.from_arrays(n, first, second, outcome))
    assert np.argsort(-scores, kind="stable").tolist() == order
    np.testing.assert_array_equal(np.sort(scores), np.arange(-(n - 1), n, 2))
