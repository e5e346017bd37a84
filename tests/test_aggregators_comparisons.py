"""Tests for genrm_rank.aggregators.comparisons."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genrm_rank.aggregators import Comparisons


def _example() -> Comparisons:
    return Comparisons.from_arrays(
        3,
        first=[0, 1, 2],
        second=[1, 2, 0],
        outcome=[1.0, 0.25, 0.5],
        weight=[1.0, 2.0, 0.5],
        score_first=[4.0, np.nan, 3.0],
        score_second=[2.0, 5.0, 3.0],
        ranking=[2.0, 5.0, np.nan],
    )


def test_from_arrays_defaults_to_unit_weights_and_coerces_dtypes() -> None:
    c = Comparisons.from_arrays(2, [0, 1], [1, 0], [1, 0])
    assert c.weight.tolist() == [1.0, 1.0]
    assert c.first.dtype == np.int64
    assert c.outcome.dtype == np.float64
    assert c.score_first is None and c.ranking is None
    assert len(c) == 2


def test_arrays_are_read_only_copies() -> None:
    first = np.array([0, 1])
    c = Comparisons.from_arrays(2, first, [1, 0], [1.0, 0.0])
    first[0] = 1
    assert c.first.tolist() == [0, 1]
    with pytest.raises(ValueError, match="read-only"):
        c.outcome[0] = 0.5


def test_empty_comparisons_are_allowed() -> None:
    c = Comparisons.from_arrays(3, [], [], [])
    assert len(c) == 0
    assert c.pair_totals()[0].shape == (3, 3)


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        ({"n_items": 0}, ValueError, r"'n_items' must be at least 1, not 0"),
        ({"n_items": 2.0}, TypeError, r"'n_items' must be an int, not float"),
        ({"n_items": True}, TypeError, r"'n_items' must be an int, not bool"),
        ({"first": [0, 3]}, ValueError, r"'first' must hold indices in \[0, n_items=3\).*3"),
        ({"second": [-1, 0]}, ValueError, r"'second' must hold indices .* -1"),
        ({"first": [0.0, 1.0]}, TypeError, r"'first' must hold integer item indices"),
        ({"first": [[0, 1]]}, ValueError, r"'first' must be one-dimensional"),
        ({"second": [1]}, ValueError, r"'second' must have the same length as 'first' \(2\)"),
        (
            {"outcome": [1.5, 0.0]},
            ValueError,
            r"'outcome' must hold finite values in \[0, 1\].*1.5",
        ),
        ({"outcome": [np.nan, 0.0]}, ValueError, r"'outcome' must hold finite values.*nan"),
        ({"outcome": ["a", "b"]}, TypeError, r"'outcome' must hold real numbers"),
        ({"weight": [1.0, -1.0]}, ValueError, r"'weight' must hold finite values >= 0.*-1.0"),
        ({"weight": [1.0]}, ValueError, r"'weight' must have the same length"),
        ({"second": [0, 2]}, ValueError, r"comparison 0 compares item 0 with itself"),
        (
            {"score_first": [1.0, np.inf]},
            ValueError,
            r"'score_first' must hold finite values or NaN",
        ),
        (
            {"ranking": [0.0, 3.0]},
            ValueError,
            r"'ranking' must hold values in \[1, 6\] or NaN, not 0.0",
        ),
        ({"score_second": [1.0]}, ValueError, r"'score_second' must have the same length"),
    ],
)
def test_validation_names_the_argument_and_value(
    kwargs: dict[str, Any], error: type[Exception], pattern: str
) -> None:
    arguments: dict[str, Any] = {
        "n_items": 3,
        "first": [0, 1],
        "second": [1, 2],
        "outcome": [1.0, 0.0],
    }
    arguments.update(kwargs)
    with pytest.raises(error, match=pattern):
        Comparisons.from_arrays(**arguments)


def test_from_pairs_matches_choix_format() -> None:
    c = Comparisons.from_pairs(3, [(2, 0), (1, 2)])
    assert c.first.tolist() == [2, 1]
    assert c.second.tolist() == [0, 2]
    assert c.outcome.tolist() == [1.0, 1.0]
    assert len(Comparisons.from_pairs(3, [])) == 0


@pytest.mark.parametrize(
    ("selector", "expected_first"),
    [
        ([True, False, True], [0, 2]),
        ([2, 2, 0], [2, 2, 0]),
        ([], []),
    ],
)
def test_subset(selector: list[Any], expected_first: list[int]) -> None:
    c = _example()
    sub = c.subset(selector)
    assert sub.first.tolist() == expected_first
    assert sub.score_first is not None
    assert len(sub.score_first) == len(expected_first)


def test_subset_rejects_bad_selectors() -> None:
    with pytest.raises(ValueError, match=r"'selector' as a mask must have shape \(3,\)"):
        _example().subset([True, False])
    with pytest.raises(TypeError, match=r"'selector' must be a boolean mask or integer"):
        _example().subset([0.5])


def test_relabel_renames_items() -> None:
    c = _example().relabel([2, 0, 1])
    assert c.first.tolist() == [2, 0, 1]
    assert c.second.tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match=r"'permutation' must be a permutation of range\(3\)"):
        _example().relabel([0, 0, 1])
    with pytest.raises(ValueError, match=r"'permutation'"):
        _example().relabel([0.0, 1.0, 2.0])


def test_swapped_mirrors_slots_outcomes_scores_and_ranking() -> None:
    c = _example()
    s = c.swapped()
    assert s.first.tolist() == c.second.tolist()
    assert s.outcome.tolist() == [0.0, 0.75, 0.5]
    assert s.score_first is not None and s.ranking is not None
    np.testing.assert_array_equal(s.score_first, c.score_second)
    np.testing.assert_array_equal(s.ranking, [5.0, 2.0, np.nan])
    np.testing.assert_array_equal(s.swapped().outcome, c.outcome)


def test_pair_totals() -> None:
    total_weight, total_wins = _example().pair_totals()
    assert total_weight[1, 2] == 2.0
    assert total_wins[1, 2] == 0.5
    assert total_wins[2, 0] == 0.25
    assert total_weight.sum() == 3.5


@settings(max_examples=30, deadline=None)
@given(
    st.integers(2, 6).flatmap(
        lambda n: st.tuples(
            st.just(n),
            st.lists(
                st.tuples(st.integers(0, n - 1), st.integers(1, n - 1), st.floats(0, 1)),
                max_size=12,
            ),
            st.permutations(range(n)),
        )
    )
)
def test_relabel_then_inverse_is_identity(
    case: tuple[int, list[tuple[int, int, float]], list[int]],
) -> None:
    n, rows, perm = case
    first = [i for i, _, _ in rows]
    second = [(i + shift) % n for i, shift, _ in rows]
    c = Comparisons.from_arrays(n, first, second, [o for _, _, o in rows])
    inverse = np.argsort(perm)
    back = c.relabel(perm).relabel(inverse)
    np.testing.assert_array_equal(back.first, c.first)
    np.testing.assert_array_equal(back.second, c.second)
