"""``genrm-rank leaderboard``: the baseline mode, checks before any call, no files left behind."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from genrm_rank import SimulatedJudge
from genrm_rank.api import arank_many, leaderboard
from genrm_rank.runner import PromptInput
from genrm_rank.server.app import SimServerConfig, ThreadedSimServers
from genrm_rank.spec import RANK_DEFAULTS


def write_rows(path: Path, n: int, k: int, *, ids: bool = True, broken: int | None = None) -> None:
    with open(path, "w") as f:
        for i in range(n):
            if i == broken:
                f.write('{"id": "broken", "prompt": \n')
                continue
            texts = [f"Answer {j} to question {i}: " + "detail " * (j + i % 3) for j in range(k)]
            candidates = [{"id": f"sys-{j}", "text": t} for j, t in enumerate(texts)]
            f.write(
                json.dumps({"id": f"row-{i}", "prompt": f"Question {i}?", "candidates": candidates})
                if ids
                else json.dumps({"id": f"row-{i}", "prompt": f"Question {i}?", "candidates": texts})
            )
            f.write("\n")


def cli(*args: object, tmpdir: Path) -> subprocess.CompletedProcess[str]:
    """The CLI as a subprocess, its temporary folder set to ``tmpdir`` (to see what it leaves)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TMPDIR": str(tmpdir)}
    return subprocess.run(
        [sys.executable, "-m", "genrm_rank.cli", "leaderboard", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmpdir.parent,
    )


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadedSimServers]:
    with ThreadedSimServers([SimServerConfig(latency_mean=0.0, capacity=256)]) as servers:
        yield servers


@pytest.fixture
def work(tmp_path: Path) -> Path:
    (tmp_path / "tmp").mkdir()
    return tmp_path


@pytest.mark.parametrize(("swap", "per_row"), [("random", 4), ("both", 8)])
def test_baseline_mode_makes_n_minus_1_matches_and_leaves_no_files(
    work: Path, server: ThreadedSimServers, swap: str, per_row: int
) -> None:
    write_rows(work / "in.jsonl", 6, k=5)
    before = server.stats(0).requests
    r = cli(
        work / "in.jsonl", "--endpoint", server.urls[0], "--baseline", "sys-2", "--swap", swap,
        "-o", work / "lb.json", "--summary-json", work / "s.json", "--table-bootstrap-rounds",
        "20", "--quiet", tmpdir=work / "tmp",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    summary = json.loads((work / "s.json").read_text())
    assert summary["judge_calls"] == 6 * per_row  # N-1 = 4 matches a row, not N(N-1) = 20
    assert server.stats(0).requests - before == 6 * per_row
    table = json.loads((work / "lb.json").read_text())
    assert table["baseline"] == "sys-2" and table["games"] == 6 * per_row
    games = {row["label"]: row["games"] for row in table["rows"] + table["set_apart"]}
    assert games == {"sys-2": 6 * per_row, **{f"sys-{j}": 6 * per_row // 4 for j in (0, 1, 3, 4)}}
    assert sorted(p.name for p in work.iterdir()) == ["in.jsonl", "lb.json", "s.json", "tmp"]
    assert list((work / "tmp").iterdir()) == []  # no temporary folder left behind


def test_cli_and_python_give_the_same_table(work: Path) -> None:
    write_rows(work / "in.jsonl", 8, k=4)
    r = cli(
        work / "in.jsonl", "--judge", "simulated", "--baseline", "sys-0", "-o", work / "lb.json",
        "--table-bootstrap-rounds", "0", "--quiet", tmpdir=work / "tmp",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    from_cli = json.loads((work / "lb.json").read_text())

    rows = [json.loads(line) for line in (work / "in.jsonl").read_text().splitlines()]
    prompts = [
        PromptInput(
            row["prompt"],
            [c["text"] for c in row["candidates"]],
            prompt_id=row["id"],
            candidate_ids=[c["id"] for c in row["candidates"]],
        )
        for row in rows
    ]
    spec = RANK_DEFAULTS.replace(strategy="baseline", strategy_options={"baseline": "sys-0"})

    async def go() -> list:
        return [r.ranking async for r in arank_many(prompts, judge=SimulatedJudge(), spec=spec)]

    table = leaderboard(asyncio.run(go()), bootstrap_rounds=0)
    assert from_cli["games"] == 8 * 6
    assert {row.label: row.rating for row in table.rows} == pytest.approx(
        {row["label"]: row["rating"] for row in from_cli["rows"]}, abs=1e-6
    )
    assert table.position_bias == pytest.approx(from_cli["position_bias"], abs=1e-9)


@pytest.mark.parametrize(
    ("ids", "extra", "message"),
    [
        (False, [], "8 rows have candidates without ids (first on line 1)"),
        (True, ["--baseline", "gpt-4"], "8 rows have no candidate with id 'gpt-4' (first on line"),
        (True, ["--baseline", "sys-0", "--strategy", "knockout"], "not allowed with --strategy"),
    ],
)
def test_bad_rows_and_options_are_refused_before_any_call(
    work: Path, server: ThreadedSimServers, ids: bool, extra: list[str], message: str
) -> None:
    write_rows(work / "in.jsonl", 8, k=4, ids=ids)
    before = server.stats(0).requests
    r = cli(work / "in.jsonl", "--endpoint", server.urls[0], *extra, tmpdir=work / "tmp")
    assert r.returncode == 2 and message in r.stderr, r.stderr
    assert server.stats(0).requests == before  # the server saw nothing
    assert sorted(p.name for p in work.iterdir()) == ["in.jsonl", "tmp"]


@pytest.mark.parametrize("flag", ["--resume", "--overwrite"])
def test_resume_and_overwrite_are_not_offered(work: Path, flag: str) -> None:
    write_rows(work / "in.jsonl", 2, k=3)
    r = cli(work / "in.jsonl", "--judge", "simulated", flag, tmpdir=work / "tmp")
    assert r.returncode == 2 and f"unrecognized arguments: {flag}" in r.stderr


def test_failed_rows_go_beside_the_table(work: Path) -> None:
    write_rows(work / "in.jsonl", 5, k=3, broken=2)
    r = cli(
        work / "in.jsonl", "--judge", "simulated", "-o", work / "lb.json",
        "--table-bootstrap-rounds", "0", "-q", tmpdir=work / "tmp",
    )  # fmt: skip
    assert r.returncode == 1, r.stderr  # some rows failed; the table is still made
    errors = [
        json.loads(x) for x in (work / "lb.leaderboard-errors.jsonl").read_text().split("\n")[:-1]
    ]
    assert [(e["line"], e["kind"]) for e in errors] == [(3, "malformed_json")]
    assert json.loads((work / "lb.json").read_text())["games"] == 4 * 6
