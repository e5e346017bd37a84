"""Tests of genrm_rank.verdict: the Verdict value, swapping and preference mappings."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from genrm_rank.errors import GenRMRankError, VerdictError
from genrm_rank.verdict import (
    FailureKind,
    RubricScore,
    Usage,
    Verdict,
    linear_preference,
    table_preference,
)

# -- swapping -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("ranking", "mirrored"), [(1, 6), (2, 5), (3, 4), (4, 3), (5, 2), (6, 1)])
def test_swapped_mirrors_ranking_and_trades_scores(ranking: int, mirrored: int) -> None:
    v = Verdict(score_1=5, score_2=2, ranking=ranking, raw="x")
    s = v.swapped()
    assert s.ranking == mirrored
    assert (s.score_1, s.score_2) == (2, 5)
    assert s.raw == "x"


def test_swapped_swaps_rubrics() -> None:
    v = Verdict(
        score_1=4,
        score_2=2,
        ranking=2,
        rubrics=(RubricScore(1, 5, 2, 1), RubricScore("style", None, 3, None)),
    )
    assert v.swapped().rubrics == (RubricScore(1, 2, 5, 6), RubricScore("style", 3, None, None))


def test_swapped_failed_verdict_stays_failed() -> None:
    v = Verdict.failed("unreadable", raw="??", error="no JSON")
    assert v.swapped() == v
    assert not v.swapped().ok


def test_winner_slot() -> None:
    assert Verdict(ranking=3).winner_slot == 1
    assert Verdict(ranking=4).winner_slot == 2
    assert Verdict(ranking=3.5).winner_slot is None


# -- preference ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ranking", "preference"),
    [(1, 1.0), (2, 0.8), (3, 0.6), (3.5, 0.5), (4, 0.4), (5, 0.2), (6, 0.0)],
)
def test_linear_preference(ranking: float, preference: float) -> None:
    assert Verdict(ranking=ranking).preference == pytest.approx(preference)
    assert linear_preference(ranking) == pytest.approx(preference)


def test_preference_with_custom_mapping() -> None:
    v = Verdict(ranking=2)
    assert v.preference_with(lambda r: 1.0 if r < 3.5 else 0.0) == 1.0
    hard = table_preference({1: 1, 2: 1, 3: 1, 4: 0, 5: 0, 6: 0})
    assert v.preference_with(hard) == 1.0
    assert Verdict(ranking=5).preference_with(hard) == 0.0
    assert Verdict(ranking=3.5).preference_with(hard) == 0.5


def test_table_preference_interpolates() -> None:
    soft = table_preference({1: 0.9, 2: 0.8, 3: 0.55, 4: 0.45, 5: 0.2, 6: 0.1})
    assert soft(3.5) == pytest.approx(0.5)
    assert soft(1.5) == pytest.approx(0.85)
    assert soft(6) == pytest.approx(0.1)
    with pytest.raises(ValueError, match=r"Argument 'ranking' must be in \[1, 6\], not 7"):
        soft(7)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            {1: 1, 2: 1, 3: 1, 4: 0, 5: 0},
            r"Argument 'table' must have the keys 1..6, not \[1, 2, 3, 4, 5\]",
        ),
        ({0: 1, 1: 1, 2: 1, 3: 1, 4: 0, 5: 0}, r"keys 1..6, not \[0, 1"),
        ({1: 1.5, 2: 1, 3: 1, 4: 0, 5: 0, 6: -0.5}, r"must map into \[0, 1\], not 1 -> 1.5"),
        ({1: 1, 2: 1, 3: 0.7, 4: 0.2, 5: 0, 6: 0}, r"table\[r\] \+ table\[7 - r\] == 1"),
        ({1: 1, 2: 1, 3: float("nan"), 4: 0, 5: 0, 6: 0}, r"must map into \[0, 1\], not 3 -> nan"),
    ],
)
def test_table_preference_validation(table: dict[int, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        table_preference(table)


@pytest.mark.parametrize("kind", list(FailureKind))
def test_failed_verdict_raises_on_numbers(kind: FailureKind) -> None:
    v = Verdict.failed(kind, raw="raw text", error="detail")
    assert not v.ok
    assert v.failure == kind.value  # str-valued enum
    assert str(v.failure) == kind.value
    assert v.raw == "raw text"
    with pytest.raises(VerdictError, match="detail"):
        _ = v.preference
    with pytest.raises(VerdictError):
        v.preference_with(linear_preference)
    with pytest.raises(VerdictError):
        _ = v.winner_slot
    assert issubclass(VerdictError, GenRMRankError)


def test_failed_from_string_kind() -> None:
    assert Verdict.failed("truncated").failure is FailureKind.TRUNCATED
    with pytest.raises(ValueError):
        Verdict.failed("no-such-kind")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "must have a ranking, not None"),
        ({"ranking": 0}, r"Argument 'ranking' must be in \[1, 6\], not 0"),
        ({"ranking": 7}, r"Argument 'ranking' must be in \[1, 6\], not 7"),
        ({"ranking": math.nan}, r"Argument 'ranking' must be in \[1, 6\], not nan"),
        ({"ranking": 2, "score_1": 6}, r"Argument 'score_1' must be in \[1, 5\], not 6"),
        ({"ranking": 2, "score_2": 0.5}, r"Argument 'score_2' must be in \[1, 5\], not 0.5"),
        ({"ranking": 2, "failure": "unreadable"}, r"failed verdict \(unreadable\) must carry no"),
        ({"score_1": 3, "failure": "empty"}, r"failed verdict \(empty\) must carry no"),
    ],
)
def test_verdict_validation(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Verdict(**kwargs)  # type: ignore[arg-type]


def test_verdict_without_scores_is_ok() -> None:
    """Three-class replay verdicts carry a ranking only."""
    v = Verdict(ranking=3.5)
    assert v.ok and v.score_1 is None and v.preference == 0.5


def test_usage() -> None:
    total = Usage(10, 5) + Usage(1, 2)
    assert total == Usage(11, 7)
    assert total.total_tokens == 18
    assert Verdict(ranking=1, usage=total).total_tokens == 18
    assert Verdict(ranking=1).total_tokens == 0


# -- properties ---------------------------------------------------------------------------------

# Rankings a verdict really takes: the six integers, 3.5 (replayed tie), position-debiased
# averages 0.5 * (r_ab + 7 - r_ba), and decimals a model may write ("2.5"). Multiples of 1/1024
# are exact in binary, so 7 - (7 - r) == r holds exactly for them.
_grid_ranking = st.integers(1024, 6 * 1024).map(lambda k: k / 1024)
_grid_score = st.one_of(st.none(), st.integers(1024, 5 * 1024).map(lambda k: k / 1024))
_rubric = st.builds(
    RubricScore,
    st.one_of(st.none(), st.integers(1, 9), st.text(max_size=5)),
    _grid_score,
    _grid_score,
    st.one_of(st.none(), _grid_ranking),
)
_ok_verdicts = st.builds(
    Verdict,
    score_1=_grid_score,
    score_2=_grid_score,
    ranking=_grid_ranking,
    rubrics=st.lists(_rubric, max_size=3).map(tuple),
    raw=st.one_of(st.none(), st.text(max_size=20)),
    reasoning=st.one_of(st.none(), st.text(max_size=20)),
    usage=st.one_of(st.none(), st.builds(Usage, st.integers(0, 99), st.integers(0, 99))),
    attempts=st.integers(1, 4),
)
_failed_verdicts = st.builds(
    Verdict.failed,
    st.sampled_from(list(FailureKind)),
    raw=st.one_of(st.none(), st.text(max_size=20)),
    error=st.one_of(st.none(), st.text(max_size=20)),
)


@given(st.one_of(_ok_verdicts, _failed_verdicts))
def test_swap_is_an_involution(v: Verdict) -> None:
    assert v.swapped().swapped() == v


@given(_ok_verdicts)
def test_swap_mirrors_preference(v: Verdict) -> None:
    s = v.swapped()
    assert s.preference == pytest.approx(1.0 - v.preference, abs=1e-12)
    assert s.ranking == 7 - v.ranking  # type: ignore[operator]
    assert (s.score_1, s.score_2) == (v.score_2, v.score_1)
    if v.winner_slot is not None:
        assert s.winner_slot == 3 - v.winner_slot


@given(st.floats(1.0, 6.0))
def test_swap_of_any_float_ranking_is_an_involution_to_rounding(r: float) -> None:
    """For arbitrary floats 7 - r can round (e.g. r = 1 + 2**-52), so only closeness holds."""
    v = Verdict(ranking=r)
    assert v.swapped().swapped().ranking == pytest.approx(r, rel=0, abs=1e-15)
    assert v.swapped().preference == pytest.approx(1.0 - v.preference, abs=1e-12)


@given(
    st.lists(st.floats(0.0, 1.0), min_size=3, max_size=3),
    st.floats(1.0, 6.0),
)
def test_table_preference_mirrors(head: list[float], r: float) -> None:
    table = {1: head[0], 2: head[1], 3: head[2], 4: 1 - head[2], 5: 1 - head[1], 6: 1 - head[0]}
    mapping = table_preference(table)
    assert 0.0 <= mapping(r) <= 1.0
    assert mapping(7 - r) == pytest.approx(1.0 - mapping(r), abs=1e-9)


def test_linear_preference_is_a_table_preference() -> None:
    table = table_preference({r: (6 - r) / 5 for r in range(1, 7)})
    for r in (1, 1.25, 2.5, 3.5, 4.75, 6):
        assert table(r) == pytest.approx(linear_preference(r))


@pytest.mark.parametrize("value", [-1, 1.5, True, "3", None])
def test_usage_refuses_impossible_token_counts(value: object) -> None:
    with pytest.raises(ValueError, match="'prompt_tokens' must be an int >= 0"):
        Usage(value, 1)  # type: ignore[arg-type]


def test_usage_takes_numpy_integers_as_ints() -> None:
    import numpy as np

    usage = Usage(np.int64(3), 4)  # type: ignore[arg-type]
    assert usage == Usage(3, 4) and type(usage.prompt_tokens) is int
