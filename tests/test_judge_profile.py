"""Tests for the judge profile value: validation, storage, and its use by the adaptive strategy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from genrm_rank.judge_profile import DEFAULT_PROFILE, PROFILE_FORMAT, JudgeProfile
from genrm_rank.strategies import Adaptive


def test_a_saved_profile_loads_equal(tmp_path: Path) -> None:
    profile = JudgeProfile(
        position_bias=0.8,
        position_bias_stderr=0.05,
        dispersion=0.3,
        dispersion_df=400.0,
        strength_sd=1.7,
        strength_df=210.0,
        repeat_correlation=0.9,
        repeat_pairs=12.0,
        verdicts=800,
        prompts=30,
    )
    path = tmp_path / "judge.json"
    profile.save(path)
    assert json.loads(path.read_text())["format"] == PROFILE_FORMAT
    assert JudgeProfile.load(path) == profile


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"dispersion": 0.0}, "'dispersion' must be > 0"),
        ({"repeat_correlation": 1.5}, "'repeat_correlation' must be finite and in"),
        ({"position_bias": float("nan")}, "'position_bias' must be finite"),
        ({"verdicts": -1}, "'verdicts' must be an int >= 0"),
    ],
)
def test_bad_fields_are_named(change: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        JudgeProfile(**change)  # type: ignore[arg-type]


def test_a_file_that_is_not_a_profile_is_named(tmp_path: Path) -> None:
    path = tmp_path / "other.json"
    path.write_text(json.dumps({"format": "something else"}))
    with pytest.raises(ValueError, match=r"other\.json is not a judge profile"):
        JudgeProfile.load(path)
    path.write_text(json.dumps({**DEFAULT_PROFILE.to_dict(), "extra": 1}))
    with pytest.raises(ValueError, match=r"Unknown judge-profile fields: \['extra'\]"):
        JudgeProfile.load(path)


def test_adaptive_takes_the_profile_in_place_of_pooled_statistics() -> None:
    profile = JudgeProfile(
        position_bias=0.6,
        position_bias_stderr=0.1,
        dispersion=0.4,
        strength_sd=1.5,
        repeat_correlation=0.7,
    )
    scheduler = Adaptive(4, seed=0, profile=profile)
    assert scheduler.judge_dispersion() == 0.4
    assert scheduler.strength_sd() == 1.5
    assert scheduler.judge_repeat_correlation() == 0.7
    assert scheduler.bias_known
    assert scheduler.posterior()["position_bias"] == pytest.approx(0.6)
    assert Adaptive(4, seed=0, profile=profile, dispersion=0.9).judge_dispersion() == 0.9
