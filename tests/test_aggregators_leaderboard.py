"""Tests for genrm_rank.aggregators.leaderboard on the QLoRA Vicuna GPT-4 record."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from reference_data import VICUNA_GPT4_PAIRWISE, read_jsonl

from genrm_rank import leaderboard
from genrm_rank.aggregators import Comparisons, LeaderboardTable, fit_leaderboard


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
    return fit_leaderboard(*games, fit_position_bias=False, bootstrap_rounds=30, seed=0, alpha=0.0)


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
    table = fit_leaderboard(*games, fit_position_bias=True, bootstrap_rounds=30, seed=1)
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
    table = fit_leaderboard(["a", "b", "c"], ["b", "c", "a"], [1.0, 1.0, 0.25], bootstrap_rounds=0)
    assert all(row.lower is None and row.upper is None for row in table.rows)
    assert table.labels == ("a", "b", "c")
    assert "| - |" in table.to_markdown()


def test_leaderboard_seed_reproducible() -> None:
    args: Any = (["a", "b", "a", "b"], ["b", "a", "b", "a"], [1.0, 0.0, 1.0, 1.0])
    one = fit_leaderboard(*args, bootstrap_rounds=20, seed=4, alpha=0.1)
    two = fit_leaderboard(*args, bootstrap_rounds=20, seed=4, alpha=0.1)
    assert one.rows == two.rows


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "pattern"),
    [
        ((["a"], ["b", "a"], [1.0]), {}, ValueError, r"'second_labels' must have the same length"),
        ((["a", 1], ["b", "a"], [1.0, 0.0]), {}, TypeError, r"'first_labels' must hold str labels"),
        (([], [], []), {}, ValueError, r"must not be empty"),
        ((["a"], ["a"], [1.0]), {"bootstrap_rounds": 0}, ValueError, r"compares item 0 with"),
        (
            (["a"], ["b"], [1.0]),
            {"bootstrap_rounds": -1},
            ValueError,
            r"'bootstrap_rounds' must be at least 0, not -1",
        ),
        ((["a"], ["b"], [2.0]), {"bootstrap_rounds": 0}, ValueError, r"'outcome' must hold finite"),
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
    games = fit_leaderboard(first, second, outcome, bootstrap_rounds=200, seed=1)
    prompts = fit_leaderboard(first, second, outcome, bootstrap_rounds=200, seed=1, clusters=prompt)
    assert games.resampled == "games" and prompts.resampled == "clusters"
    assert "over whole prompts" in prompts.to_markdown()
    assert "over single games" in games.to_markdown()

    def width(table: LeaderboardTable) -> float:
        return float(np.mean([r.upper - r.lower for r in table.rows]))  # type: ignore[operator]

    assert width(prompts) > 1.3 * width(games)
    with pytest.raises(ValueError, match="'clusters' must have the same length"):
        fit_leaderboard(first, second, outcome, bootstrap_rounds=2, clusters=prompt[:-1])


# ------------------------------------------------ models the data cannot rate (issue 19, 7)

Games = tuple[list[str], list[str], list[float], list[int]]


def _five_models() -> Games:
    """Five models, every pair once on each of 40 prompts: A plays 160 games."""
    rng = np.random.default_rng(0)
    models = ["A", "B", "C", "D", "E"]
    strength = dict(zip(models, [0.3, 0.1, 0.0, -0.1, -0.3], strict=True))
    first, second, outcome, prompt = [], [], [], []
    for p in range(40):
        for i in range(5):
            for j in range(i + 1, 5):
                a, b = (models[i], models[j]) if rng.random() < 0.5 else (models[j], models[i])
                first.append(a)
                second.append(b)
                win = rng.random() < 1 / (1 + np.exp(strength[b] - strength[a]))
                outcome.append(float(win))
                prompt.append(p)
    return first, second, outcome, prompt


def _with_z(games: Games, z_outcomes: list[float]) -> Games:
    """Model Z added with 6 games on 3 prompts (against B and C on prompts 0, 1, 2)."""
    first, second, outcome, prompt = (list(x) for x in games)
    for k, result in enumerate(z_outcomes):
        first.append("Z")
        second.append("BC"[k % 2])
        outcome.append(result)
        prompt.append(k // 2)
    return first, second, outcome, prompt  # type: ignore[return-value]


def _table(games: Games) -> LeaderboardTable:
    first, second, outcome, prompt = games
    return fit_leaderboard(first, second, outcome, clusters=prompt, bootstrap_rounds=200, seed=0)


def _row(table: LeaderboardTable, label: str) -> Any:
    return next(row for row in table.rows if row.label == label)


def test_a_sparse_model_no_longer_widens_the_other_intervals() -> None:
    alone = _table(_five_models())
    mixed = _table(_with_z(_five_models(), [1.0, 0.0, 1.0, 1.0, 0.0, 1.0]))
    # Before, Z's resamples without a win (or a loss) moved the centring: A's interval went
    # from about 1021-1117 to 1032-1422. Tolerance: 5 Elo points on each bound.
    for label in "ABCDE":
        a, b = _row(alone, label), _row(mixed, label)
        assert b.lower == pytest.approx(a.lower, abs=5.0)
        assert b.upper == pytest.approx(a.upper, abs=5.0)
        assert b.rating == pytest.approx(a.rating, abs=5.0)
    assert [row.label for row in mixed.rows] == [row.label for row in alone.rows]
    (z,) = mixed.set_apart
    assert (z.label, z.games, z.prompts) == ("Z", 6, 3)
    assert z.reason.startswith("too few prompts: wins on 3 and losses on 2 of 40")
    assert z.rating is not None and z.lower is not None and z.upper is not None
    assert z.lower <= z.rating <= z.upper
    text = mixed.to_markdown()
    assert "Set apart, not ranked" in text and "| Z | " in text and "too few prompts" in text
    assert "Set apart" not in alone.to_markdown() and alone.set_apart == ()


def test_a_model_that_won_every_game_is_flagged_and_left_out_of_the_fit() -> None:
    alone = _table(_five_models())
    table = _table(_with_z(_five_models(), [1.0] * 6))
    # Before, Z was rated 2800 and every other model dropped about 360 points, silently.
    (z,) = table.set_apart
    assert z.label == "Z" and z.rating is None and z.lower is None and z.upper is None
    assert z.reason == "won all 6 of its games against the rated models: no finite strength"
    assert z.win_rate == 1.0
    for label in "ABCDE":  # the same prompts are resampled with the same seed: the same table
        assert _row(table, label).rating == pytest.approx(_row(alone, label).rating, abs=1e-6)
        assert _row(table, label).lower == pytest.approx(_row(alone, label).lower, abs=1e-6)
    assert table.labels == ("A", "B", "C", "D", "E") and table.fit.n_items == 5
    assert table.fit.identification.mle_exists
    text = table.to_markdown()
    assert "| Z | - | - | 6 | 3 | 1.000 | won all 6 of its games" in text
    assert "Note: 6 games involving models without a finite strength were left out" in text


def test_a_model_that_lost_every_game_and_an_unconnected_pair_are_set_apart() -> None:
    first, second, outcome, prompt = _with_z(_five_models(), [0.0] * 6)
    first += ["X", "Y"] * 5
    second += ["Y", "X"] * 5
    outcome += [1.0, 0.0] * 5
    prompt += list(range(10))
    table = fit_leaderboard(first, second, outcome, clusters=prompt, bootstrap_rounds=0)
    reasons = {row.label: row.reason for row in table.set_apart}
    assert reasons == {
        "X": "no game against the rated models, so no strength relative to theirs",
        "Y": "no game against the rated models, so no strength relative to theirs",
        "Z": "lost all 6 of its games against the rated models: no finite strength",
    }
    assert [row.rank for row in table.rows] == [1, 2, 3, 4, 5]


def test_separation_risk_matches_resampled_prompts() -> None:
    from genrm_rank.aggregators.leaderboard import _separation_risk

    first, second, outcome, prompt = _with_z(_five_models(), [1.0, 0.0, 1.0, 1.0, 0.0, 1.0])
    labels = sorted(set(first) | set(second))
    index = {label: i for i, label in enumerate(labels)}
    c = Comparisons.from_arrays(
        len(labels), [index[x] for x in first], [index[x] for x in second], outcome
    )
    unit = np.array(prompt)
    risk, win_units, loss_units, n_units = _separation_risk(
        c, unit, np.ones(len(labels), dtype=bool)
    )
    z = index["Z"]
    # Z won on prompts 0, 1 and 2 and lost on prompts 0 and 2.
    assert (win_units[z], loss_units[z], n_units) == (3, 2, 40)
    rng = np.random.default_rng(0)
    wins_at, losses_at = {0, 1, 2}, {0, 2}
    draws = [set(rng.integers(0, 40, 40).tolist()) for _ in range(20_000)]
    empirical = np.mean([not (d & wins_at) or not (d & losses_at) for d in draws])
    assert risk[z] == pytest.approx(empirical, abs=0.01)
    assert risk[index["A"]] < 1e-6


def test_no_two_models_with_a_finite_strength_says_so() -> None:
    table = fit_leaderboard(["a", "a", "b"], ["b", "c", "c"], [1.0, 1.0, 1.0], bootstrap_rounds=0)
    assert [row.label for row in table.rows] == ["a", "b", "c"] and table.set_apart == ()
    assert "rest on the penalty alpha alone" in table.to_markdown()


def test_n_bootstrap_is_gone() -> None:
    args: Any = (["a", "b", "a", "b"], ["b", "a", "b", "a"], [1.0, 0.0, 1.0, 1.0])
    with pytest.raises(TypeError, match="n_bootstrap"):
        fit_leaderboard(*args, n_bootstrap=20, seed=4, alpha=0.1)


def test_a_model_separated_once_a_sparse_one_is_set_apart_keeps_a_provisional_rating() -> None:
    # Y beat A on 10 prompts and lost to Z on 6; Z lost on 2 prompts only, so it is set apart
    # as sparse, and then Y never lost to a rated model.
    first, second, outcome, prompt = _with_z(_five_models(), [1.0, 0.0, 1.0, 1.0, 0.0, 1.0])
    first += ["Y"] * 10 + ["Z"] * 6
    second += ["A"] * 10 + ["Y"] * 6
    outcome += [1.0] * 16
    prompt += [*range(20, 30), *range(10, 16)]
    table = fit_leaderboard(first, second, outcome, clusters=prompt, bootstrap_rounds=0)
    apart = {row.label: row for row in table.set_apart}
    assert set(apart) == {"Y", "Z"}
    assert apart["Y"].reason == (
        "won all 10 of its games against the rated models: no finite strength (its provisional "
        "rating rests on games against models set apart)"
    )
    assert apart["Y"].rating is not None and apart["Y"].rating > _row(table, "A").rating


def test_the_switch_is_fit_position_bias_not_position_bias() -> None:
    games = (["a", "b"], ["b", "a"], [1.0, 0.0])
    with pytest.raises(TypeError, match="position_bias"):
        fit_leaderboard(*games, position_bias=False, bootstrap_rounds=0)
    with pytest.raises(TypeError, match="position_bias"):
        leaderboard([("a", "b", 1.0)], position_bias=False)
    table = leaderboard([("a", "b", 1.0), ("b", "a", 0.0)], fit_position_bias=False)
    assert table.position_bias is None


def test_when_every_fitted_model_is_sparse_none_is_both_rated_and_set_apart() -> None:
    # a, b and c beat each other in a cycle, one prompt a game: each has a win on one prompt
    # of three and a loss on one, too few to bound an interval. Before, they were ranked and
    # set apart at once.
    table = fit_leaderboard(
        ["a", "b", "c", "d"],
        ["b", "c", "a", "a"],
        [1.0] * 4,
        clusters=[0, 1, 2, 3],
        bootstrap_rounds=0,
    )
    assert [row.label for row in table.rows] == ["a", "b", "c"]
    assert [row.label for row in table.set_apart] == ["d"]
    assert any("no two models have wins and losses on enough prompts" in n for n in table.notes)
