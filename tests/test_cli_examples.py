"""The scripts in examples/ run as documented (each starts its own serve-sim)."""

from __future__ import annotations

import json
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
