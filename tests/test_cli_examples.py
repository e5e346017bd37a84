"""The scripts in examples/ run as documented (each starts its own serve-sim)."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run(script: str, *args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLES / script), *map(str, args)],
        capture_output=True, text=True, timeout=120, cwd=EXAMPLES,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("script", "expected"),
    [("select_best.py", "best: #"), ("grpo_rewards.py", "8 judge calls for 8 rollouts")],
)
def test_one_prompt_examples(script: str, expected: str) -> None:
    r = run(script)
    assert r.returncode == 0, r.stderr
    assert expected in r.stdout


def test_dpo_pairs_writes_trl_rows(tmp_path: Path) -> None:
    out = tmp_path / "dpo.jsonl"
    r = run("dpo_pairs.py", "-o", out, "--limit", "3", "--min-margin", "0")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(rows) == 3 and all({"prompt", "chosen", "rejected"} <= set(x) for x in rows)


@pytest.mark.slow
def test_sdg_best_of_n_writes_sft_rows_and_resumes(tmp_path: Path) -> None:
    r = run("sdg_best_of_n.py", "--workdir", tmp_path)
    assert r.returncode == 0, r.stderr
    sft = [json.loads(x) for x in (tmp_path / "sft.jsonl").read_text().splitlines()]
    dropped = (tmp_path / "dropped.jsonl").read_text().splitlines()
    assert len(sft) + len(dropped) == 80
    assert all(x["messages"][-1]["role"] == "assistant" for x in sft)
    r = run("sdg_best_of_n.py", "--workdir", tmp_path)  # a rerun resumes: nothing to do
    assert r.returncode == 0, r.stderr
    assert "0 kept, 0 dropped, 0 failed, 80 rows skipped (resume); 0 judge calls paid" in r.stdout


# -- the README's Quick start ------------------------------------------------------------------

README = Path(__file__).resolve().parents[1] / "README.md"


def _quick_start() -> str:
    return README.read_text(encoding="utf-8").split("## Quick start", 1)[1].split("\n## ", 1)[0]


def test_ci_still_reads_the_demo_and_the_test_command() -> None:
    """.ci/run takes the Quick start's first ```bash block as the demo, the second as tests."""
    blocks = re.findall(r"```bash\n(.*?)\n```", _quick_start(), flags=re.S)
    assert "genrm-rank demo" in blocks[0] and "pytest" in blocks[1]


@pytest.mark.slow
def test_quick_start_reaches_your_own_data(tmp_path: Path) -> None:
    """The own-data example, run as written: the simulated judge, the plan, then an endpoint."""
    from genrm_rank.server.app import SimServerConfig, ThreadedSimServers

    section = _quick_start()
    (example,) = re.findall(r"```json\n(.*?)\n```", section, flags=re.S)
    (console,) = re.findall(r"```console\n(.*?)\n```", section, flags=re.S)
    (tmp_path / "my.jsonl").write_text(example + "\n", encoding="utf-8")
    commands = [line[2:] for line in console.splitlines() if line.startswith("$ genrm-rank ")]
    assert [c.split()[:5] for c in commands] == [["genrm-rank", "select", "my.jsonl", "-o",
                                                  "best.jsonl"]] * 3  # fmt: skip
    assert "--judge simulated" in commands[0] and "--endpoint" in commands[2]
    with ThreadedSimServers([SimServerConfig(latency_mean=0.0)]) as servers:
        for command in commands:
            argv = shlex.split(command)[1:]
            argv = [servers.urls[0] if a.startswith("http://") else a for a in argv]
            r = subprocess.run(
                [sys.executable, "-m", "genrm_rank.cli", *argv],
                capture_output=True, text=True, timeout=120, cwd=tmp_path,
            )  # fmt: skip
            assert r.returncode == 0, r.stderr
            assert "my.jsonl" in r.stdout + r.stderr
            best = [json.loads(x) for x in (tmp_path / "best.jsonl").read_text().splitlines()]
            assert len(best) == 1 and best[0]["selected"] in best[0]["candidates"]
        assert servers.stats(0).requests > 0  # the last command reached the endpoint


def test_the_demo_runs_select_without_reentering_main(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The demo shows a select command and runs it as that command, not through ``main`` again
    (which would read --config and the GENRM_* variables a second time)."""
    import genrm_rank.cli
    from genrm_rank.cli.commands import COMMAND_FUNCTIONS
    from genrm_rank.cli.config import parse_args

    def reentered(argv: object = None) -> int:
        raise AssertionError("the demo called main() again")

    monkeypatch.setattr(genrm_rank.cli, "main", reentered)
    monkeypatch.setenv("GENRM_SWAP", "none")  # the demo's own options only
    args = parse_args(["demo", "--keep", str(tmp_path), "--quiet"], environ={})
    assert COMMAND_FUNCTIONS["demo"](args) == 0
    assert "GPT-4's own verdicts rank first on 63 of 80" in capsys.readouterr().out
