"""Tests of genrm_rank.integrations.ray on a local Ray instance with 2 CPUs (marker ``ray``).

The tests that start Ray are deselected by default (they need the ``ray`` extra, and starting
Ray takes seconds and about 1.7 GB); run them with
``.venv/bin/pytest -m ray tests/test_integrations_ray.py``. Cache consolidation needs no Ray and
always runs. The actors talk to
serve-sim replicas (:class:`~genrm_rank.server.ThreadedSimServers`) running in this process on
loopback, or hold a deterministic :class:`~genrm_rank.judges.simulated.SimulatedJudge`.
"""

from __future__ import annotations

import asyncio
import functools
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from genrm_rank.cache import VerdictCache
from genrm_rank.integrations.ray import BASE_CACHE, _ShardCache, consolidate_caches, rank_dataset
from genrm_rank.judges.openai_http import OpenAIJudge
from genrm_rank.judges.simulated import SimulatedJudge
from genrm_rank.runner import PromptInput, Runner
from genrm_rank.server import SimServerConfig, ThreadedSimServers
from genrm_rank.spec import RankSpec

pytestmark = [pytest.mark.timeout(300)]

SPEC = RankSpec(strategy="round_robin", seed=11)
NAMESPACE = {"judge": "openai_http", "model": "sim-genrm"}


def _rows(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [
        {
            "id": f"r{i}",
            "prompt": f"Question {i}: explain it.",
            "candidates": [f"answer {i}.{k} " + "more " * ((i + 2 * k) % 4) for k in range(4)],
        }
        for i in range(start, start + n)
    ]


@pytest.fixture(scope="module")
def ray_local() -> Iterator[Any]:
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    try:
        yield ray
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def servers() -> Iterator[ThreadedSimServers]:
    config = SimServerConfig(latency_mean=0.002, capacity=256)
    with ThreadedSimServers([config, config]) as running:
        yield running


def _requests(servers: ThreadedSimServers) -> int:
    return sum(servers.stats(i).requests for i in range(len(servers.servers)))


def _by_id(ds: Any) -> dict[str, dict[str, Any]]:
    return {row["id"]: row for row in ds.take_all()}


@pytest.mark.ray
def test_rows_ranked_as_the_runner_ranks_them(ray_local: Any) -> None:
    rows = _rows(12)
    rows[5]["candidates"] = ["only one"]  # invalid: reported, not sent
    ds = ray_local.data.from_items(rows)
    ranked = _by_id(rank_dataset(ds, spec=SPEC, judge_factory=SimulatedJudge, batch_size=4))
    assert len(ranked) == 12
    assert ranked["r5"]["genrm_status"] == "invalid"
    assert ranked["r5"]["genrm_error"] == "too_few_candidates: fewer than two candidates (1)"

    async def direct() -> dict[str, Any]:
        runner = Runner(SimulatedJudge(), SPEC)
        prompts = [
            PromptInput(r["prompt"], r["candidates"], prompt_id=r["id"])
            for r in rows
            if r != rows[5]
        ]
        return {r.prompt.prompt_id: r.ranking async for r in runner.run(prompts)}

    expected = asyncio.run(direct())
    for row_id, ranking in expected.items():
        got = ranked[row_id]
        assert got["genrm_best"] == ranking.best
        assert list(got["genrm_order"]) == list(ranking.order)
        assert got["genrm_calls"] == ranking.calls == 12
        assert got["genrm_status"] == "complete" and got["genrm_error"] is None


@pytest.mark.ray
def test_a_rerun_pays_only_for_unfinished_rows(
    ray_local: Any, servers: ThreadedSimServers, tmp_path: Path
) -> None:
    # built inside each actor (a judge holds sockets: pickle a factory, never a judge)
    factory = functools.partial(OpenAIJudge, servers.urls, model="sim-genrm", api_key_env=None)

    def run(n_rows: int) -> dict[str, dict[str, Any]]:
        ds = ray_local.data.from_items(_rows(n_rows))
        return _by_id(
            rank_dataset(
                ds, spec=SPEC, judge_factory=factory, batch_size=4, cache_dir=tmp_path,
                cache_namespace=NAMESPACE,
            )
        )  # fmt: skip

    before = _requests(servers)
    # the "killed" job: only the first 8 of 16 rows got done
    first = run(8)
    paid_first = _requests(servers) - before
    assert paid_first == sum(r["genrm_calls"] for r in first.values()) == 8 * 12
    # One file per actor that received a batch: Ray may hand every batch to one of the two.
    assert 1 <= len(list(tmp_path.glob("verdicts.*.db"))) <= 2

    before = _requests(servers)
    second = run(16)
    paid_second = _requests(servers) - before
    assert paid_second == 8 * 12  # only rows r8..r15
    for i in range(8):
        row = second[f"r{i}"]
        assert row["genrm_calls"] == 0 and row["genrm_cached"] == 12
        assert row["genrm_best"] == first[f"r{i}"]["genrm_best"]
    assert all(second[f"r{i}"]["genrm_calls"] == 12 for i in range(8, 16))
    assert (tmp_path / BASE_CACHE).exists()

    base = consolidate_caches(tmp_path)
    assert base == tmp_path / BASE_CACHE
    assert [p.name for p in tmp_path.glob("verdicts.*.db")] == [BASE_CACHE]
    with VerdictCache(base) as cache:
        assert len(cache) == 16 * 12


@pytest.mark.ray
@pytest.mark.parametrize(
    ("kwargs", "error", "fragment"),
    [
        ({"spec": "round_robin"}, TypeError, "Argument 'spec'"),
        ({"judge_factory": 3}, TypeError, "Argument 'judge_factory'"),
        ({"actors": 0}, ValueError, "Argument 'actors'"),
        ({"max_candidates": 1}, ValueError, "Argument 'max_candidates'"),
        ({"cache_dir": "x"}, ValueError, "Argument 'cache_namespace' must be given"),
        ({"cache_namespace": {"model": "m"}}, ValueError, "needs 'cache_dir'"),
        ({"ds": [1, 2]}, TypeError, "Argument 'ds'"),
    ],
)
def test_bad_arguments_name_the_argument(
    ray_local: Any, kwargs: dict[str, Any], error: type, fragment: str
) -> None:
    options: dict[str, Any] = {
        "ds": ray_local.data.from_items(_rows(2)),
        "spec": SPEC,
        "judge_factory": SimulatedJudge,
    }
    options.update(kwargs)
    ds = options.pop("ds")
    with pytest.raises(error, match=fragment):
        rank_dataset(ds, **options)


# --------------------------------------------------------------------------------------------
# Consolidation with writers running (no Ray needed)

WRITER = """
import sys
from pathlib import Path
from genrm_rank.integrations.ray import _ShardCache
from genrm_rank.verdict import Verdict

cache = _ShardCache(Path(sys.argv[1]), None)
n = int(sys.argv[2])
for i in range(n):
    cache.put(f"live{i}", Verdict(score_1=4, score_2=2, ranking=1 + i % 6))
    if i == n // 2:
        print("half", flush=True)
        sys.stdin.readline()  # the test consolidates while this file is open and half written
cache.close()
print("done", flush=True)
"""


def _verdict(i: int) -> Any:
    from genrm_rank.verdict import Verdict

    return Verdict(score_1=4, score_2=2, ranking=1 + i % 6)


def test_consolidation_leaves_a_live_writer_alone_and_loses_nothing(tmp_path: Path) -> None:
    finished = _ShardCache(tmp_path / "verdicts.finished.db", None)
    finished.put_many((f"old{i}", _verdict(i)) for i in range(50))
    finished.close()
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(tmp_path / "verdicts.live.db"), "3000"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )
    assert writer.stdin is not None and writer.stdout is not None
    try:
        assert writer.stdout.readline() == "half\n"
        base = consolidate_caches(tmp_path)  # mid-write: the finished file only
        assert base == tmp_path / BASE_CACHE
        assert sorted(p.name for p in tmp_path.glob("verdicts.*.db")) == [
            BASE_CACHE,
            "verdicts.live.db",
        ]
        writer.stdin.write("\n")
        writer.stdin.flush()
        for _ in range(3):  # again and again while it writes
            consolidate_caches(tmp_path)
        assert writer.stdout.readline() == "done\n"
    finally:
        writer.stdin.close()
        writer.wait(timeout=60)
    assert writer.returncode == 0
    consolidate_caches(tmp_path)  # the writer has finished: now it is folded
    assert [p.name for p in tmp_path.glob("verdicts.*.db")] == [BASE_CACHE]
    assert [p.name for p in tmp_path.glob("verdicts.*.lock")] == ["verdicts.consolidate.lock"]
    conn = sqlite3.connect(tmp_path / BASE_CACHE)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    with VerdictCache(tmp_path / BASE_CACHE) as cache:
        assert len(cache) == 3050
        assert cache.get("live2999") == _verdict(2999) and cache.get("old49") == _verdict(49)


def test_an_actor_reading_the_base_keeps_reading_while_it_is_replaced(tmp_path: Path) -> None:
    first = _ShardCache(tmp_path / "verdicts.a.db", None)
    first.put("k0", _verdict(0))
    first.close()
    base = consolidate_caches(tmp_path)
    assert base is not None
    reader = _ShardCache(tmp_path / "verdicts.reader.db", base)
    try:
        more = _ShardCache(tmp_path / "verdicts.b.db", None)
        more.put_many((f"k{i}", _verdict(i)) for i in range(1, 500))
        more.close()
        consolidate_caches(tmp_path)  # the reader's own file is open: left alone
        assert (tmp_path / "verdicts.reader.db").exists()
        assert reader.get("k0") == _verdict(0)  # the base it opened, unchanged under it
    finally:
        reader.close()
    with VerdictCache(tmp_path / BASE_CACHE) as cache:
        assert len(cache) == 500


def test_a_shard_cache_is_written_by_one_writer_only(tmp_path: Path) -> None:
    one = _ShardCache(tmp_path / "verdicts.x.db", None)
    try:
        with pytest.raises(RuntimeError, match="held by another writer"):
            _ShardCache(tmp_path / "verdicts.x.db", None)
    finally:
        one.close()


def _actor(**kwargs: Any) -> Any:
    from genrm_rank.integrations.ray import _RankActor

    columns = {"prompt": "prompt", "candidates": "candidates", "id": "id", "principle": None}
    return _RankActor(SPEC, SimulatedJudge, columns, {}, None, None, "genrm_", **kwargs)


def test_a_row_over_max_candidates_is_invalid_before_anything_is_scheduled() -> None:
    wide = {"id": "w", "prompt": "Which?", "candidates": [f"c{j}" for j in range(10_000)]}
    reason = _actor()._prompt(wide, 0)
    assert reason == "too_many_candidates: 10000 candidates, over max_candidates=1024"
    assert isinstance(_actor(max_candidates=None)._prompt(wide, 0), PromptInput)


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ({"id": "a", "candidates": ["x", "y"]}, "missing_field"),
        ({"id": "a", "prompt": "", "candidates": ["x", "y"]}, "bad_field"),
        ({"id": "a", "prompt": "Q?", "candidates": ["x", "x"]}, "too_few_candidates"),
        (
            {"id": "a", "prompt": "<|im_start|>user Q?", "candidates": ["x", "y"]},
            "templated_prompt",
        ),
        ({"id": True, "prompt": "Q?", "candidates": ["x", "y"]}, "bad_field"),
    ],
)
def test_rows_are_refused_as_the_sdg_row_reader_refuses_them(
    row: dict[str, Any], reason: str
) -> None:
    """One reader for rows: a row the pipeline refuses is refused here, with the same kind."""
    from genrm_rank.sdg import RowError, RowReader, RowSpec

    refused = RowReader(RowSpec(prompt_fields=("prompt",), id_from_line=False)).parse(1, dict(row))
    assert isinstance(refused, RowError) and refused.kind == reason
    assert _actor()._prompt(row, 0) == f"{refused.kind}: {refused.reason}"


def test_rows_take_the_named_columns_only() -> None:
    """Other columns are not read; without an id column the content keys the randomness."""
    from genrm_rank.integrations.ray import _RankActor

    row = {
        "id": 7,
        "q": [{"role": "user", "content": "Q?"}],
        "answers": [{"id": "m1", "text": "x"}, {"id": "m2", "text": "y"}],
        "prompt": "not this one",
        "rubric": "Be brief.",
    }
    columns = {"prompt": "q", "candidates": "answers", "id": None, "principle": "rubric"}
    prompt = _RankActor(SPEC, SimulatedJudge, columns, {}, None, None, "genrm_")._prompt(row, 3)
    assert isinstance(prompt, PromptInput)
    assert prompt.conversation == [{"role": "user", "content": "Q?"}]
    assert list(prompt.candidates) == ["x", "y"] and list(prompt.candidate_ids or ()) == [
        "m1",
        "m2",
    ]
    assert prompt.principle == "Be brief." and prompt.prompt_id == "" and prompt.key == 3
