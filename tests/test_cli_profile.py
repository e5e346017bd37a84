"""The CLI's judge profile: --judge-profile, --save-judge-profile, and the frozen profile in the
run file, so that a resumed or sharded adaptive run writes the rows of an uninterrupted one."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest
from test_cli_run import GUARDED, run

from genrm_rank.judge_profile import JudgeProfile

ADAPTIVE = ["--judge", "simulated", "--strategy", "adaptive", "--swap", "auto", "--quiet"]


def write_rows(path: Path, n: int) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        for i in range(n):
            texts = [
                f"Answer {j} to question {i}. " + "more " * ((j * 7 + i) % 5) for j in range(6)
            ]
            handle.write(json.dumps({"id": f"r{i}", "prompt": f"Q{i}?", "candidates": texts}))
            handle.write("\n")


def test_killed_in_and_after_the_warm_up_then_resumed_equals_an_uninterrupted_run(
    tmp_path: Path,
) -> None:
    write_rows(tmp_path / "in.jsonl", 70)
    ref = tmp_path / "ref.jsonl"
    assert run("select", tmp_path / "in.jsonl", "-o", ref, *ADAPTIVE, "--concurrency", "64") == 0
    run_file = json.loads((tmp_path / "ref.run.json").read_text())
    frozen = JudgeProfile.from_dict(run_file["judge_profile_frozen"])
    assert frozen.prompts == 32
    out = tmp_path / "out.jsonl"
    resume = ["select", str(tmp_path / "in.jsonl"), "-o", str(out), "--resume", *ADAPTIVE]
    resume += ["--concurrency", "4"]
    # Killed after 5 rows (inside the warm-up: nothing frozen yet), then after 35 more (past
    # it), each time right after a row of output.
    for k, frozen_after in ((5, False), (35, True)):
        kill = [*GUARDED, str(tmp_path), "--after-rows", str(k)]
        r = subprocess.run([*kill, *resume], capture_output=True, text=True, timeout=300)
        assert r.returncode == -signal.SIGKILL, r.stderr
        record = json.loads((tmp_path / "out.run.json").read_text())
        assert ("judge_profile_frozen" in record) is frozen_after
    assert len(out.read_text().splitlines()) < 70
    assert run(*resume) == 0
    assert out.read_bytes() == ref.read_bytes()


def test_a_saved_profile_given_to_a_shard_writes_the_rows_of_the_whole_run(
    tmp_path: Path,
) -> None:
    write_rows(tmp_path / "in.jsonl", 40)
    saved = tmp_path / "judge.json"
    common = [*ADAPTIVE, "--concurrency", "16"]
    whole = tmp_path / "whole.jsonl"
    status = run(
        "select", tmp_path / "in.jsonl", "-o", whole, *common, "--save-judge-profile", saved
    )
    assert status == 0
    profile = JudgeProfile.load(saved)
    assert profile.prompts == 40 and profile.verdicts > 40
    given = tmp_path / "given.jsonl"
    assert run("select", tmp_path / "in.jsonl", "-o", given, *common, "--judge-profile", saved) == 0
    shard = tmp_path / "shard.jsonl"
    argv = ["select", tmp_path / "in.jsonl", "-o", shard, *common, "--judge-profile", saved]
    assert run(*argv, "--shard", "1/3") == 0
    lines = given.read_text().splitlines()
    assert shard.read_text().splitlines() == lines[1::3]
    record = json.loads((tmp_path / "given.run.json").read_text())
    assert JudgeProfile.from_dict(record["judge_profile"]) == profile
    assert "judge_profile_frozen" not in record


def test_profile_paths_are_checked_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_rows(tmp_path / "in.jsonl", 3)
    out = tmp_path / "o.jsonl"
    for flag, path, words in (
        ("--save-judge-profile", tmp_path / "in.jsonl", "is also the IN file"),
        ("--save-judge-profile", out, "is also the --output file"),
        ("--judge-profile", out, "is also the --judge-profile file, which this run reads"),
        ("--judge-profile", tmp_path / "in.jsonl", "is not a judge profile"),
        ("--judge-profile", tmp_path / "none.json", "cannot read"),
    ):
        if flag == "--judge-profile" and path == out:
            path.write_text(json.dumps(JudgeProfile().to_dict()))
        assert run("select", tmp_path / "in.jsonl", "-o", out, *ADAPTIVE, flag, path) == 2
        assert words in capsys.readouterr().err, (flag, path)
        out.unlink(missing_ok=True)


def test_resume_with_another_profile_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_rows(tmp_path / "in.jsonl", 4)
    JudgeProfile(position_bias=0.5).save(tmp_path / "a.json")
    JudgeProfile(position_bias=0.9).save(tmp_path / "b.json")
    argv = ["select", tmp_path / "in.jsonl", "-o", tmp_path / "o.jsonl", *ADAPTIVE]
    assert run(*argv, "--judge-profile", tmp_path / "a.json", "--max-calls", "10") == 3
    capsys.readouterr()
    assert run(*argv, "--judge-profile", tmp_path / "b.json", "--resume") == 2
    assert "judge_profile" in capsys.readouterr().err
    assert run(*argv, "--judge-profile", tmp_path / "a.json", "--resume") == 0


@pytest.mark.parametrize("flag", ["--judge-profile", "--save-judge-profile"])
def test_config_keys_and_variables_are_named_after_the_flags(tmp_path: Path, flag: str) -> None:
    from test_cli_config import parse

    key = flag.removeprefix("--")
    dest = key.replace("-", "_")
    argv = ["select", "in.jsonl", "-o", "o.jsonl"]
    env = {"GENRM_" + dest.upper(): "p.json"}
    assert getattr(parse(argv, env), dest) == Path("p.json")
    (tmp_path / "genrm.toml").write_text(f'[select]\n{key} = "q.json"\n')
    args = parse([*argv, "--config", str(tmp_path / "genrm.toml")], {})
    assert getattr(args, dest) == Path("q.json")
