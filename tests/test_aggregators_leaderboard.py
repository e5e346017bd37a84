"""Tests for genrm_rank.aggregators.leaderboard on the QLoRA Vicuna GPT-4 record."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from reference_data import VICUNA_GPT4_PAIRWISE, read_jsonl

from genrm_rank.aggregators import LeaderboardTable, fit_leaderboard


@pytest.fixture(scope="module")
def games() -> tuple[list[str], list[str], list[float]]:
    rows = [r for r in read_jsonl(VICUNA_GPT4_PAIRWISE) if r["winner"] != "error"]
    outcome = {"A": 1.0, "B": 0.0, "tie": 0.5}
    return (
        [r["model_a"] for r in rows],
        [r["model_b"] for r in rows],
        [outcome[r["winner"]] for r in rows],
    )


@pytest.fixture(scope="module")
def plain(games: tuple[list[str], list[str], list[float]]) -> LeaderboardTable:
    return fit_leaderboard(*games, position_bias=False, n_bootstrap=30, seed=0, alpha=0.0)


def test_leaderboard_reproduces_expected_elo(
    plain: LeaderboardTable, expected: dict[str, Any]
) -> None:
    derived = expected["qlora_vicuna_gpt4_pairwise"]["bt_order_derived"]
    assert [row.rank for row in plain.rows] == list(range(1, 9))
    for row in plain.rows:
        assert row.rating == pytest.approx(derived["elo_scaled"][row.label], abs=0.1)
    ratings = {row.label: row.rating for row in plain.rows}
    for a, b in zip(derived["order"], [row.label for row in plain.rows], strict=True):
        assert a == b or abs(ratings[a] - ratings[b]) < 10.0
    assert plain.position_bias is None and plain.position_bias_interval is None


def test_leaderboard_columns(plain: LeaderboardTable, expected: dict[str, Any]) -> None:
    games_valid = expected["qlora_vicuna_gpt4_pairwise"]["games_valid"]
    assert sum(row.games for row in plain.rows) == 2 * games_valid
    for row in plain.rows:
        assert row.lower is not None and row.upper is not None
        assert row.lower <= row.rating <= row.upper
        assert 0.0 <= row.win_rate <= 1.0
    best = plain.rows[0]
    assert best.label == "gpt-4" and best.win_rate > 0.8


def test_leaderboard_with_position_bias(games: tuple[list[str], list[str], list[float]]) -> None:
    table = fit_leaderboard(*games, position_bias=True, n_bootstrap=30, seed=1)
    assert table.position_bias is not None and table.position_bias > 0.5
    assert table.position_bias_interval is not None
    assert table.position_bias_interval[0] > 0.5
    assert table.rows[0].label == "gpt-4"
    text = table.to_markdown()
    assert text.startswith("| rank | model | rating | 95% CI | games | win rate |")
    assert "| 1 | gpt-4 |" in text
    assert "Position bias (slot 1, log-odds): +0.68" in text
    assert table.format() == text


def test_leaderboard_without_bootstrap() -> None:
    table = fit_leaderboard(["a", "b", "c"], ["b", "c", "a"], [1.0, 1.0, 0.25], n_bootstrap=0)
    assert all(row.lower is None and row.upper is None for row in table.rows)
    assert table.labels == ("a", "b", "c")
    assert "| - |" in table.to_markdown()


def test_leaderboard_seed_reproducible() -> None:
    args: Any = (["a", "b", "a", "b"], ["b", "a", "b", "a"], [1.0, 0.0, 1.0, 1.0])
    one = fit_leaderboard(*args, n_bootstrap=20, seed=4, alpha=0.1)
    two = fit_leaderboard(*args, n_bootstrap=20, seed=4, alpha=0.1)
    assert one.rows == two.rows


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "pattern"),
    [
        ((["a"], ["b", "a"], [1.0]), {}, ValueError, r"'second_labels' must have the same length"),
        ((["a", 1], ["b", "a"], [1.0, 0.0]), {}, TypeError, r"'first_labels' must hold str labels"),
        (([], [], []), {}, ValueError, r"must not be empty"),
        ((["a"], ["a"], [1.0]), {"n_bootstrap": 0}, ValueError, r"compares item 0 with itself"),
        ((["a"], ["b"], [1.0]), {"n_bootstrap": -1}, ValueError, r"'n_bootstrap' must be >= 0"),
        ((["a"], ["b"], [2.0]), {"n_bootstrap": 0}, ValueError, r"'outcome' must hold finite"),
    ],
)
def test_leaderboard_bad_arguments(
    args: tuple[Any, ...], kwargs: dict[str, Any], error: type[Exception], pattern: str
) -> None:
    with pytest.raises(error, match=pattern):
        fit_leaderboard(*args, **kwargs)


def test_prompt_clusters_widen_the_intervals_and_the_table_says_so() -> None:
    rng = np.random.default_rng(0)
    systems = ["a", "b", "c"]
    first, second, outcome, prompt = [], [], [], []
    for p in range(120):
        skill = rng.normal(0, 1.5, 3)  # a prompt favours some systems for all its games
        for _ in range(10):
            i, j = rng.choice(3, 2, replace=False)
            first.append(systems[i])
            second.append(systems[j])
            outcome.append(float(rng.random() < 1 / (1 + np.exp(skill[j] - skill[i]))))
            prompt.append(f"prompt {p}")
    games = fit_leaderboard(first, second, outcome, n_bootstrap=200, seed=1)
    prompts = fit_leaderboard(first, second, outcome, n_bootstrap=200, seed=1, clusters=prompt)
    assert games.resampled == "games" and prompts.resampled == "clusters"
    assert "over whole prompts" in prompts.to_markdown()
    assert "over single games" in games.to_markdown()

    def width(table: LeaderboardTable) -> float:
        return float(np.mean([r.upper - r.lower for r in table.rows]))  # type: ignore[operator]

    assert width(prompts) > 1.3 * width(games)
    with pytest.raises(ValueError, match="'clusters' must have the same length"):
        fit_leaderboard(first, second, outcome, n_bootstrap=2, clusters=prompt[:-1])
