"""Tests for genrm_rank.cache: verdict JSON, cache keys, the SQLite store and CachedJudge."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import json
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import genrm_rank.cache as cache_module
from genrm_rank.cache import (
    PROTOCOL_VERSION,
    SCHEMA_VERSION,
    VerdictCache,
    cache_key,
)
from genrm_rank.errors import JudgeConfigurationError, JudgeError
from genrm_rank.judges.base import BatchJudge, Judge, PairRequest, judge_many
from genrm_rank.judges.cached import CachedBatchJudge, CachedJudge
from genrm_rank.judges.simulated import SimulatedJudge
from genrm_rank.orchestrator import Orchestrator, PromptJob, PromptRun
from genrm_rank.strategies.round_robin import RoundRobin
from genrm_rank.verdict import (
    FailureKind,
    RubricScore,
    Usage,
    Verdict,
    verdict_from_dict,
    verdict_to_dict,
)

REPO = Path(__file__).resolve().parents[1]
NAMESPACE = {"model": "nvidia/Qwen3-Nemotron-235B-A22B-GenRM", "temperature": 0.6, "top_p": 0.95}
REQUEST = PairRequest("What is the capital of France?", "Paris.", "Lyon.", prompt_id="p0")
OK = Verdict(score_1=4, score_2=2, ranking=2, raw="{...}", usage=Usage(100, 900), attempts=1)


# ------------------------------------------------------------------------------------------
# Public surface


def test_all_is_complete_and_sorted() -> None:
    public = {
        name
        for name, value in vars(cache_module).items()
        if not name.startswith("_")
        and not inspect.ismodule(value)
        and (getattr(value, "__module__", None) == cache_module.__name__ or name.isupper())
    }
    assert public == set(cache_module.__all__)
    assert cache_module.__all__ == sorted(cache_module.__all__, key=lambda n: (not n.isupper(), n))


# ------------------------------------------------------------------------------------------
# Verdict <-> dict

any_text = st.none() | st.text(st.characters(blacklist_categories=()), max_size=30)
any_float = st.floats(allow_nan=False)
rubrics = st.lists(
    st.builds(
        RubricScore,
        st.none() | st.integers() | st.text(max_size=5),
        st.none() | any_float,
        st.none() | any_float,
        st.none() | any_float,
    ),
    max_size=3,
).map(tuple)
usages = st.none() | st.builds(Usage, st.integers(0, 10**9), st.integers(0, 10**9))
common = {
    "rubrics": rubrics,
    "raw": any_text,
    "reasoning": any_text,
    "error": any_text,
    "finish_reason": any_text,
    "usage": usages,
    "attempts": st.integers(0, 50),
}
ok_verdicts = st.builds(
    Verdict,
    score_1=st.none() | st.floats(1, 5) | st.integers(1, 5),
    score_2=st.none() | st.floats(1, 5) | st.integers(1, 5),
    ranking=st.floats(1, 6) | st.integers(1, 6),
    **common,
)
failed_verdicts = st.builds(Verdict, failure=st.sampled_from(FailureKind), **common)
verdicts = ok_verdicts | failed_verdicts


@given(verdicts)
def test_verdict_dict_round_trip_through_json(verdict: Verdict) -> None:
    data = verdict_to_dict(verdict)
    back = verdict_from_dict(json.loads(json.dumps(data)))
    assert back == verdict
    for field in dataclasses.fields(Verdict):  # ints stay ints, floats stay floats
        assert type(getattr(back, field.name)) is type(getattr(verdict, field.name))


@settings(max_examples=50)
@given(verdicts)
def test_verdict_round_trip_through_sqlite(verdict: Verdict) -> None:
    with VerdictCache(":memory:") as cache:
        cache.put("k", verdict)
        assert cache.get("k") == verdict


def test_verdict_to_dict_is_plain_json() -> None:
    data = verdict_to_dict(Verdict.failed("truncated", raw="abc", usage=Usage(1, 2), attempts=2))
    assert data["failure"] == "truncated"
    assert data["usage"] == {"prompt_tokens": 1, "completion_tokens": 2}
    assert json.loads(json.dumps(data)) == data


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"ranking": 2, "colour": "red"}, ValueError),
        ({"failure": "exploded"}, ValueError),
        ({"ranking": 9}, ValueError),
        ({"ranking": 2, "rubrics": [{"rubric_id": 1, "extra": 0}]}, ValueError),
        ({"ranking": 2, "usage": {"prompt_tokens": 1, "cached": 3}}, ValueError),
        ({"ranking": 2, "usage": [1, 2]}, TypeError),
        ({"ranking": 2, "attempts": "1"}, TypeError),
        ([("ranking", 2)], TypeError),
    ],
)
def test_verdict_from_dict_rejects_bad_data(data: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        verdict_from_dict(data)


def test_verdict_to_dict_rejects_non_verdict() -> None:
    with pytest.raises(TypeError, match="'verdict'"):
        verdict_to_dict({"ranking": 2})  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------
# Keys


def test_cache_key_is_sha256_hex_and_stable() -> None:
    key = cache_key(NAMESPACE, REQUEST)
    assert len(key) == 64 and int(key, 16) >= 0
    assert key == cache_key(dict(reversed(list(NAMESPACE.items()))), REQUEST)
    assert key == cache_key(NAMESPACE, dataclasses.replace(REQUEST))


@pytest.mark.parametrize(
    "change",
    [
        {"sample": 1},
        {"attempt": 1},
        {"principle": "Prefer brevity."},
        {"response_1": "Paris, France."},
        {"conversation": "What is the capital of Italy?"},
    ],
    ids=lambda change: next(iter(change)),
)
def test_cache_key_changes_with_what_is_judged(change: dict[str, Any]) -> None:
    assert cache_key(NAMESPACE, dataclasses.replace(REQUEST, **change)) != cache_key(
        NAMESPACE, REQUEST
    )


def test_cache_key_depends_on_slot_order() -> None:
    assert cache_key(NAMESPACE, REQUEST.swapped()) != cache_key(NAMESPACE, REQUEST)


@pytest.mark.parametrize(
    "namespace",
    [
        {**NAMESPACE, "model": "nvidia/Llama-3.3-Nemotron-70B-GenRM"},
        {**NAMESPACE, "temperature": 0.0},
        {**NAMESPACE, "extra_body": {"chat_template_kwargs": {"enable_thinking": False}}},
        {"model": NAMESPACE["model"]},
    ],
)
def test_cache_key_changes_with_namespace(namespace: dict[str, Any]) -> None:
    assert cache_key(namespace, REQUEST) != cache_key(NAMESPACE, REQUEST)


@pytest.mark.parametrize(
    "change",
    [
        {"prompt_id": "another prompt"},
        {"index_1": 5, "index_2": 7},
        {"id_1": "system-a", "id_2": "system-b"},
    ],
    ids=lambda change: next(iter(change)),
)
def test_cache_key_ignores_identities(change: dict[str, Any]) -> None:
    assert cache_key(NAMESPACE, dataclasses.replace(REQUEST, **change)) == cache_key(
        NAMESPACE, REQUEST
    )


def test_cache_key_changes_with_protocol_version(monkeypatch: pytest.MonkeyPatch) -> None:
    before = cache_key(NAMESPACE, REQUEST)
    monkeypatch.setattr(cache_module, "PROTOCOL_VERSION", PROTOCOL_VERSION + 1)
    assert cache_key(NAMESPACE, REQUEST) != before


@pytest.mark.parametrize(
    "namespace",
    [
        {"model": "m", "api_key": "sk-123"},
        {"model": "m", "OPENAI_API_KEY": "sk-123"},
        {"model": "m", "token": "abc"},
        {"model": "m", "extra_headers": {"Authorization": "Bearer abc"}},
        {"model": "m", "endpoints": [{"url": "http://a", "api-key": "x"}]},
    ],
)
def test_cache_key_refuses_credentials(namespace: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="credentials"):
        cache_key(namespace, REQUEST)


def test_cache_key_allows_token_limits() -> None:
    """Names holding "token" that are limits, not credentials, are part of the key."""
    short = cache_key({"model": "m", "max_tokens": 4096, "skip_special_tokens": True}, REQUEST)
    long = cache_key({"model": "m", "max_tokens": 8192, "skip_special_tokens": True}, REQUEST)
    plain = cache_key({"model": "m", "max_tokens": 4096, "skip_special_tokens": False}, REQUEST)
    assert len({short, long, plain}) == 3
    assert all(len(key) == 64 and int(key, 16) >= 0 for key in (short, long, plain))


@pytest.mark.parametrize(
    ("namespace", "error"),
    [
        ({"model": object()}, TypeError),
        ({"temperature": float("nan")}, ValueError),
        ({1: "model"}, TypeError),
        ([("model", "m")], TypeError),
    ],
)
def test_cache_key_rejects_bad_namespace(namespace: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match="'namespace'"):
        cache_key(namespace, REQUEST)


# ------------------------------------------------------------------------------------------
# VerdictCache


def test_get_put_counts_hits_and_misses(tmp_path: Path) -> None:
    with VerdictCache(tmp_path / "c.sqlite") as cache:
        assert cache.get("a") is None
        cache.put("a", OK)
        assert cache.get("a") == OK
        assert (cache.hits, cache.misses) == (1, 1)
        assert len(cache) == 1 and "a" in cache and "b" not in cache
        assert (cache.hits, cache.misses) == (1, 1)  # `in` is not counted


def test_put_keeps_the_first(tmp_path: Path) -> None:
    with VerdictCache(tmp_path / "c.sqlite") as cache:
        cache.put("a", OK)
        failed = Verdict.failed("unreadable", raw="??")
        assert cache.put("a", failed) == OK
        assert cache.get("a") == OK and len(cache) == 1


def test_put_many_and_reopen(tmp_path: Path) -> None:
    items = [(f"k{i}", dataclasses.replace(OK, attempts=i + 1)) for i in range(10)]
    with VerdictCache(tmp_path / "c.sqlite") as cache:
        assert cache.put_many(items) == 10
        assert cache.put_many([]) == 0
    with VerdictCache(tmp_path / "c.sqlite") as cache:
        assert len(cache) == 10
        assert [cache.get(k) for k, _ in items] == [v for _, v in items]


def test_file_layout(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    with VerdictCache(path) as cache:
        assert cache.journal_mode == "wal"
        cache.put("a", OK)
        conn = cache._connection()
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    meta = dict(conn.execute("SELECT key, value FROM meta"))
    assert meta == {
        "schema_version": str(SCHEMA_VERSION),
        "protocol_version": str(PROTOCOL_VERSION),  # recorded for merge_caches
    }
    key, blob, created = conn.execute("SELECT key, verdict, created FROM verdicts").fetchone()
    assert key == "a" and verdict_from_dict(json.loads(blob)) == OK and created > 1.6e9
    conn.close()


def test_schema_version_mismatch_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    VerdictCache(path).close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    with pytest.raises(ValueError, match="schema version 999"):
        VerdictCache(path)


def test_non_database_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not a database " * 100)
    with pytest.raises(ValueError, match="'path'"):
        VerdictCache(path)


def test_closed_cache_raises_and_close_is_idempotent(tmp_path: Path) -> None:
    cache = VerdictCache(tmp_path / "c.sqlite")
    cache.close()
    cache.close()
    assert cache.closed
    with pytest.raises(RuntimeError, match="closed"):
        cache.get("a")
    with pytest.raises(RuntimeError, match="closed"):
        cache.put("a", OK)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [({"path": 3}, TypeError), ({"path": ":memory:", "timeout": -1.0}, ValueError)],
)
def test_bad_arguments(kwargs: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        VerdictCache(**kwargs)


def test_bad_key_type() -> None:
    with VerdictCache(":memory:") as cache, pytest.raises(TypeError, match="'key'"):
        cache.put(3, OK)  # type: ignore[arg-type]


def test_two_caches_on_one_file(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    with VerdictCache(path) as one, VerdictCache(path) as two:
        one.put("a", OK)
        assert two.get("a") == OK
        two.put_many([("b", OK), ("c", OK)])
        one.put("d", OK)
        assert len(one) == len(two) == 4
        assert one.get("c") == OK
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()


WRITER = """
import sys
from genrm_rank.cache import VerdictCache
from genrm_rank.verdict import Usage, Verdict

path, prefix, mode, limit = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])

def verdict(i):
    return Verdict(score_1=4, score_2=2, ranking=1 + i % 6, raw="x" * 3000,
                   reasoning="y" * 5000, usage=Usage(i, 2 * i), attempts=1 + i % 3)

cache = VerdictCache(path)
i = 0
while limit < 0 or i < limit:
    if mode == "put":
        cache.put(f"{prefix}{i}", verdict(i))
        print(i, flush=True)
        i += 1
    else:
        cache.put_many([(f"{prefix}{j}", verdict(j)) for j in range(i, i + 7)])
        print(*range(i, i + 7), sep="\\n", flush=True)
        i += 7
cache.close()
"""


def _writer_verdict(i: int) -> Verdict:
    return Verdict(
        score_1=4,
        score_2=2,
        ranking=1 + i % 6,
        raw="x" * 3000,
        reasoning="y" * 5000,
        usage=Usage(i, 2 * i),
        attempts=1 + i % 3,
    )


def _spawn_writer(path: Path, prefix: str, mode: str, limit: int) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), prefix, mode, str(limit)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )


@pytest.mark.parametrize("mode", ["put", "put_many"])
def test_sigkill_mid_stream_loses_no_committed_verdict(tmp_path: Path, mode: str) -> None:
    path = tmp_path / "c.sqlite"
    writer = _spawn_writer(path, "k", mode, -1)
    assert writer.stdout is not None
    reported = []
    for line in writer.stdout:
        reported.append(int(line))
        if len(reported) >= 400:
            break
    writer.send_signal(signal.SIGKILL)
    rest, _ = writer.communicate(timeout=10)
    reported += [int(line) for line in rest.split()]  # printed before the kill: committed too
    assert writer.returncode == -signal.SIGKILL

    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    with VerdictCache(path) as cache:
        assert len(cache) >= len(reported)
        for i in reported:
            assert cache.get(f"k{i}") == _writer_verdict(i), i
        cache.put("after", OK)  # still writable
        assert cache.get("after") == OK


def test_two_writer_processes_share_a_file(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    VerdictCache(path).close()
    writers = [_spawn_writer(path, prefix, "put", 300) for prefix in ("a", "b")]
    for writer in writers:
        writer.communicate(timeout=60)
        assert writer.returncode == 0
    with VerdictCache(path) as cache:
        assert len(cache) == 600
        assert cache.get("a299") == cache.get("b299") == _writer_verdict(299)


# ------------------------------------------------------------------------------------------
# CachedJudge


class CountingJudge:
    """Passes requests to an inner judge and counts them."""

    def __init__(self, inner: Judge) -> None:
        self.inner = inner
        self.calls = 0

    async def judge(self, request: PairRequest) -> Verdict:
        self.calls += 1
        return await self.inner.judge(request)


class CountingBatchJudge(CountingJudge):
    def __init__(self, inner: BatchJudge) -> None:
        super().__init__(inner)
        self.batch_inner = inner
        self.batches: list[int] = []

    async def judge_batch(self, requests: Sequence[PairRequest]) -> list[Verdict]:
        self.batches.append(len(requests))
        self.calls += len(requests)
        return await self.batch_inner.judge_batch(requests)


class ScriptedJudge:
    """Answers with the given verdicts in turn (raising exceptions given), gated by an event."""

    def __init__(self, *answers: Verdict | BaseException) -> None:
        self.answers = list(answers)
        self.calls = 0
        self.gate: asyncio.Event | None = None

    async def judge(self, request: PairRequest) -> Verdict:
        self.calls += 1
        answer = self.answers.pop(0)
        if self.gate is not None:
            await self.gate.wait()
        if isinstance(answer, BaseException):
            raise answer
        return answer


def _cached(judge: Judge, cache: VerdictCache | None = None) -> CachedJudge:
    return CachedJudge(judge, cache or VerdictCache(":memory:"), namespace=NAMESPACE)


async def test_hit_returns_the_stored_verdict_and_counts_savings() -> None:
    inner = ScriptedJudge(OK)
    cached = _cached(inner)
    first = await cached.judge(REQUEST)
    second = await cached.judge(dataclasses.replace(REQUEST, prompt_id="elsewhere"))
    assert first == second == OK
    assert inner.calls == 1
    assert (cached.hits, cached.misses) == (1, 1)
    assert (cached.calls_saved, cached.tokens_saved) == (OK.attempts, OK.total_tokens)


async def test_different_sample_is_a_miss() -> None:
    inner = ScriptedJudge(OK, OK)
    cached = _cached(inner)
    await cached.judge(REQUEST)
    await cached.judge(dataclasses.replace(REQUEST, sample=1))
    assert inner.calls == 2 and cached.misses == 2


async def test_different_namespace_is_a_miss() -> None:
    inner = ScriptedJudge(OK, OK)
    cache = VerdictCache(":memory:")
    await CachedJudge(inner, cache, namespace=NAMESPACE).judge(REQUEST)
    await CachedJudge(inner, cache, namespace={**NAMESPACE, "temperature": 1.0}).judge(REQUEST)
    assert inner.calls == 2 and len(cache) == 2


async def test_unavailable_is_not_cached_but_other_failures_are() -> None:
    unavailable = Verdict.failed(FailureKind.UNAVAILABLE, error="connection refused", attempts=4)
    unreadable = Verdict.failed(FailureKind.UNREADABLE, raw="hmm", usage=Usage(10, 20))
    inner = ScriptedJudge(unavailable, OK, unreadable)
    cached = _cached(inner)
    assert await cached.judge(REQUEST) == unavailable
    assert len(cached.cache) == 0
    assert await cached.judge(REQUEST) == OK
    assert await cached.judge(REQUEST) == OK
    other = dataclasses.replace(REQUEST, attempt=1)
    assert await cached.judge(other) == unreadable
    assert await cached.judge(other) == unreadable
    assert inner.calls == 3 and len(cached.cache) == 2


async def test_concurrent_identical_requests_are_paid_once() -> None:
    inner = ScriptedJudge(OK)
    inner.gate = asyncio.Event()
    cached = _cached(inner)
    tasks = [asyncio.ensure_future(cached.judge(REQUEST)) for _ in range(3)]
    await asyncio.sleep(0)
    inner.gate.set()
    assert await asyncio.gather(*tasks) == [OK, OK, OK]
    assert inner.calls == 1
    assert (cached.hits, cached.misses) == (2, 1)


async def test_waiters_ask_again_when_the_shared_call_raises() -> None:
    inner = ScriptedJudge(JudgeError("replay miss"), OK)
    inner.gate = asyncio.Event()
    cached = _cached(inner)
    owner = asyncio.ensure_future(cached.judge(REQUEST))
    await asyncio.sleep(0)
    waiter = asyncio.ensure_future(cached.judge(REQUEST))
    await asyncio.sleep(0)
    inner.gate.set()
    with pytest.raises(JudgeError):
        await owner
    assert await waiter == OK
    assert inner.calls == 2 and cached.misses == 2


async def test_cancelled_waiter_does_not_cancel_the_shared_call() -> None:
    inner = ScriptedJudge(OK)
    inner.gate = asyncio.Event()
    cached = _cached(inner)
    owner = asyncio.ensure_future(cached.judge(REQUEST))
    await asyncio.sleep(0)
    waiter = asyncio.ensure_future(cached.judge(REQUEST))
    await asyncio.sleep(0)
    waiter.cancel()
    inner.gate.set()
    assert await owner == OK
    assert waiter.cancelled()
    assert cached.cache.get(cached.key(REQUEST)) == OK


async def test_cancelled_owner_stores_nothing() -> None:
    inner = ScriptedJudge(OK, OK)
    inner.gate = asyncio.Event()
    cached = _cached(inner)
    owner = asyncio.ensure_future(cached.judge(REQUEST))
    await asyncio.sleep(0)
    owner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await owner
    assert len(cached.cache) == 0 and not cached._in_flight
    inner.gate.set()
    assert await cached.judge(REQUEST) == OK


def test_batch_capability_follows_the_inner_judge() -> None:
    plain = _cached(CountingJudge(SimulatedJudge()))
    batch = _cached(CountingBatchJudge(SimulatedJudge()))
    assert isinstance(plain, Judge) and not isinstance(plain, BatchJudge)
    assert type(plain) is CachedJudge
    assert type(batch) is CachedBatchJudge
    assert isinstance(batch, BatchJudge)


async def test_judge_batch_sends_only_distinct_misses() -> None:
    simulated = SimulatedJudge(seed=3)
    inner = CountingBatchJudge(simulated)
    cached = _cached(inner)
    a, b, c = (dataclasses.replace(REQUEST, response_2=text) for text in ("A.", "B.", "C."))
    verdict_b = await cached.judge(b)
    verdicts = await cached.judge_batch([a, b, a, c])  # type: ignore[attr-defined]
    assert inner.batches == [2]  # a and c
    assert verdicts[1] == verdict_b and verdicts[0] == verdicts[2]
    assert (cached.hits, cached.misses) == (2, 3)
    again = await cached.judge_batch([c, a, b])  # type: ignore[attr-defined]
    assert again == [verdicts[3], verdicts[0], verdict_b]
    assert inner.batches == [2] and cached.misses == 3


async def test_judge_batch_with_everything_cached_makes_no_call() -> None:
    inner = CountingBatchJudge(SimulatedJudge())
    cached = _cached(inner)
    first = await judge_many(cached, [REQUEST, REQUEST.swapped()])
    assert await judge_many(cached, [REQUEST.swapped(), REQUEST]) == first[::-1]
    assert inner.batches == [2]


async def test_async_with_enters_and_exits_the_inner_judge() -> None:
    events: list[str] = []

    class ManagedJudge(ScriptedJudge):
        async def __aenter__(self) -> ManagedJudge:
            events.append("enter")
            return self

        async def __aexit__(self, *exc_info: object) -> None:
            events.append("exit")

    cache = VerdictCache(":memory:")
    async with CachedJudge(ManagedJudge(OK), cache, namespace=NAMESPACE) as cached:
        assert await cached.judge(REQUEST) == OK
        assert events == ["enter"]
    assert events == ["enter", "exit"]
    assert not cache.closed  # the caller owns the cache

    async with _cached(ScriptedJudge(OK)) as plain:  # a judge with no lifecycle: fine
        assert await plain.judge(REQUEST) == OK


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"judge": object()}, TypeError),
        ({"cache": ":memory:"}, TypeError),
        ({"namespace": {"api_key": "sk"}}, ValueError),
    ],
)
def test_cached_judge_bad_arguments(kwargs: dict[str, Any], error: type[Exception]) -> None:
    arguments: dict[str, Any] = {
        "judge": ScriptedJudge(),
        "cache": VerdictCache(":memory:"),
        "namespace": NAMESPACE,
        **kwargs,
    }
    with pytest.raises(error):
        CachedJudge(arguments.pop("judge"), arguments.pop("cache"), **arguments)


def test_namespace_is_copied() -> None:
    namespace: dict[str, Any] = {"model": "m", "extra_body": {"top_k": 20}}
    cached = CachedJudge(ScriptedJudge(), VerdictCache(":memory:"), namespace=namespace)
    key = cached.key(REQUEST)
    namespace["extra_body"]["top_k"] = 1
    assert (
        cached.key(REQUEST)
        == key
        == cache_key({"model": "m", "extra_body": {"top_k": 20}}, REQUEST)
    )
    assert cached.namespace == {"model": "m", "extra_body": {"top_k": 20}}


# ------------------------------------------------------------------------------------------
# Through the orchestrator


def _jobs() -> list[PromptJob]:
    return [
        PromptJob(
            f"Prompt {p}: explain item {p}.",
            [f"Answer {c} to prompt {p}." for c in range(4)],
            RoundRobin(4, swap="both", seed=p),
            prompt_id=f"p{p}",
            key=p,
        )
        for p in range(3)
    ]


def _rows(runs: list[PromptRun]) -> list[tuple[Any, ...]]:
    """What a result row is made of; judgements come back in completion order, so sorted."""
    return [
        (
            run.job.key,
            sorted(run.judgements, key=lambda j: (j.first, j.second, j.sample)),
            run.calls + run.cached,
            run.reasked,
            run.failed_calls,
        )
        for run in sorted(runs, key=lambda run: run.job.key)
    ]


async def _run(judge: Judge, batch_size: int) -> list[PromptRun]:
    orchestrator = Orchestrator(judge, max_in_flight=8, batch_size=batch_size, retries=1)
    return [run async for run in orchestrator.run(_jobs())]


@pytest.mark.parametrize("batch_size", [1, 4])
async def test_rerun_through_the_orchestrator_makes_no_inner_call(
    tmp_path: Path, batch_size: int
) -> None:
    path = tmp_path / "c.sqlite"
    inner = CountingBatchJudge(SimulatedJudge(unreadable_rate=0.25, truncated_rate=0.1, seed=7))
    with VerdictCache(path) as cache:
        first_judge = CachedJudge(inner, cache, namespace=NAMESPACE)
        first = await _run(first_judge, batch_size)
    paid = inner.calls
    assert paid == first_judge.misses > 36  # 3 prompts x 12 ordered calls, plus re-asks
    assert sum(run.reasked for run in first) > 0

    inner.calls = 0
    with VerdictCache(path) as cache:
        second_judge = CachedJudge(inner, cache, namespace=NAMESPACE)
        second = await _run(second_judge, batch_size)
    assert inner.calls == 0
    assert second_judge.hits == paid and second_judge.misses == 0
    assert second_judge.calls_saved == sum(run.calls for run in first)
    assert second_judge.tokens_saved == sum(run.usage.total_tokens for run in first)
    # Cached verdicts are free: the rerun pays nothing and counts every verdict as cached.
    assert all(run.calls == 0 and run.usage.total_tokens == 0 for run in second)
    assert sum(run.cached for run in second) == paid
    assert all(run.cached == 0 for run in first)
    assert _rows(second) == _rows(first)


class ScriptedBatchJudge(ScriptedJudge):
    async def judge_batch(self, requests: Sequence[PairRequest]) -> list[Verdict]:
        return [await self.judge(r) for r in requests]


async def test_judge_batch_does_not_cache_unavailable() -> None:
    unavailable = Verdict.failed(FailureKind.UNAVAILABLE, error="503")
    inner = ScriptedBatchJudge(unavailable, OK, OK)
    cached = _cached(inner)
    other = REQUEST.swapped()
    assert await cached.judge_batch([REQUEST, other]) == [unavailable, OK]  # type: ignore[attr-defined]
    assert await cached.judge_batch([REQUEST, other]) == [OK, OK]  # type: ignore[attr-defined]
    assert inner.calls == 3 and len(cached.cache) == 2


async def test_judge_batch_waits_for_a_call_in_flight() -> None:
    inner = ScriptedBatchJudge(OK)
    inner.gate = asyncio.Event()
    cached = _cached(inner)
    single = asyncio.ensure_future(cached.judge(REQUEST))
    await asyncio.sleep(0)
    batch = asyncio.ensure_future(cached.judge_batch([REQUEST]))  # type: ignore[attr-defined]
    await asyncio.sleep(0)
    inner.gate.set()
    assert await single == OK and await batch == [OK]
    assert inner.calls == 1 and cached.hits == 1


async def test_judge_batch_checks_the_inner_count() -> None:
    class ShortJudge(ScriptedBatchJudge):
        async def judge_batch(self, requests: Sequence[PairRequest]) -> list[Verdict]:
            return []

    cached = _cached(ShortJudge())
    with pytest.raises(RuntimeError, match="returned 0 verdicts for 1"):
        await cached.judge_batch([REQUEST])  # type: ignore[attr-defined]
    assert not cached._in_flight and len(cached.cache) == 0


# ------------------------------------------------------------------------------------------
# Network filesystems

MOUNTS = (
    "/dev/sda1 / ext4 rw,relatime 0 0\n"
    "tmpfs /tmp tmpfs rw 0 0\n"
    "server:/export/home /home nfs4 rw,vers=4.2 0 0\n"
    "/dev/sdb1 /home/local ext4 rw 0 0\n"
    "10.0.0.1@o2ib:/scratch /scratch lustre rw 0 0\n"
    "//nas/share /mnt/my\\040share cifs rw 0 0\n"
    "me@host:/data /mnt/sshfs fuse.sshfs rw 0 0\n"
    "garbage\n"
)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/home/me/cache.db", ("nfs4", "/home")),
        ("/home", ("nfs4", "/home")),
        ("/home/local/cache.db", None),  # the longest mount point wins: a local disk
        ("/homework/cache.db", None),  # a prefix of the name is not a folder above it
        ("/scratch/run1/cache.db", ("lustre", "/scratch")),
        ("/mnt/my share/cache.db", ("cifs", "/mnt/my share")),
        ("/mnt/sshfs/c.db", ("fuse.sshfs", "/mnt/sshfs")),
        ("/tmp/cache.db", None),
        ("/var/cache.db", None),
    ],
)
def test_network_filesystem_finds_the_longest_mount_point(
    tmp_path: Path, path: str, expected: tuple[str, str] | None
) -> None:
    mounts = tmp_path / "mounts"
    mounts.write_text(MOUNTS)
    assert cache_module.network_filesystem(path, mounts=mounts) == expected


def test_network_filesystem_without_a_mount_table_is_none(tmp_path: Path) -> None:
    assert cache_module.network_filesystem("/home/x.db", mounts=tmp_path / "absent") is None


def test_cache_on_a_network_filesystem_is_refused(tmp_path: Path) -> None:
    mounts = tmp_path / "mounts"
    mounts.write_text(f"server:/export {tmp_path / 'nfs'} nfs rw 0 0\n")
    (tmp_path / "nfs").mkdir()
    with pytest.raises(
        ValueError, match=r"Argument 'path' must be on a local filesystem.*nfs"
    ) as e:
        VerdictCache(tmp_path / "nfs" / "cache.db", mounts=mounts)
    assert "merge_caches" in str(e.value)
    assert not (tmp_path / "nfs" / "cache.db").exists()  # refused before SQLite touched it
    with VerdictCache(tmp_path / "local.db", mounts=mounts) as local:
        assert local.journal_mode == "wal"


def test_cli_cache_on_a_network_filesystem_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from genrm_rank.cli import EXIT_USAGE, main

    monkeypatch.setattr(
        cache_module, "network_filesystem", lambda path, mounts: ("lustre", "/scratch")
    )
    rows = tmp_path / "in.jsonl"
    rows.write_text(json.dumps({"prompt": "q", "candidates": ["a", "b"]}) + "\n")
    argv = ["select", str(rows), "-o", str(tmp_path / "out.jsonl"), "--judge", "simulated"]
    status = main([*argv, "--cache", str(tmp_path / "c.db"), "--quiet"])
    err = capsys.readouterr().err
    assert status == EXIT_USAGE
    assert "argument --cache" in err and "lustre" in err and "cache merge" in err
    assert not (tmp_path / "out.jsonl").exists()


def test_cli_no_thinking_is_not_served_verdicts_read_with_thinking(tmp_path: Path) -> None:
    # The server's answers carry no reasoning: read with thinking (the default) they are
    # unreadable, and cached so. A --no-thinking run reads the same answers whole; the cache
    # must not hand it the verdicts read the other way.
    from genrm_rank.cli import main
    from genrm_rank.server.app import SimServerConfig, ThreadedSimServers

    rows = tmp_path / "in.jsonl"
    row = {"prompt": "q?", "candidates": ["a", "bb", "ccc"]}
    rows.write_text("".join(json.dumps({**row, "id": f"q{i}"}) + "\n" for i in range(3)))
    config = SimServerConfig(latency="constant", latency_mean=0.0, reasoning_style="none")
    argv = ["select", str(rows), "--model", "sim-genrm", "--quiet", "--cache"]
    argv.append(str(tmp_path / "c.db"))
    with ThreadedSimServers([config]) as servers:
        url = ["--endpoint", servers.urls[0]]
        assert main([*argv, *url, "-o", str(tmp_path / "thinking.jsonl")]) == 4
        summary = tmp_path / "summary.json"
        fresh = ["-o", str(tmp_path / "out.jsonl"), "--summary-json", str(summary)]
        assert main([*argv, *url, "--no-thinking", *fresh]) == 0
    assert json.loads(summary.read_text())["verdicts_failed"] == 0


# ------------------------------------------------------------------------------------------
# Merging caches


def _verdict(ranking: int) -> Verdict:
    return Verdict(score_1=3, score_2=3, ranking=ranking, raw=f"r{ranking}", attempts=1)


def test_merge_caches_keeps_the_first_and_counts(tmp_path: Path) -> None:
    with VerdictCache(tmp_path / "a.db") as a:
        a.put_many([("k1", _verdict(1)), ("k2", _verdict(2))])
    with VerdictCache(tmp_path / "b.db") as b:
        b.put_many([("k2", _verdict(2)), ("k3", _verdict(3)), ("k1", _verdict(6))])
    report = cache_module.merge_caches(tmp_path / "out.db", [tmp_path / "a.db", tmp_path / "b.db"])
    assert (report.read, report.added, report.duplicates, report.conflicts, report.total) == (
        5,
        3,
        1,
        1,
        3,
    )
    with VerdictCache(tmp_path / "out.db") as out:
        assert out.get("k1") == _verdict(1)  # a.db came first
        assert out.get("k3") == _verdict(3)
    again = cache_module.merge_caches(tmp_path / "out.db", [tmp_path / "b.db"])
    assert (again.added, again.duplicates, again.conflicts, again.total) == (0, 2, 1, 3)


def test_merge_caches_output_comes_first(tmp_path: Path) -> None:
    with VerdictCache(tmp_path / "out.db") as out:
        out.put("k", _verdict(5))
    with VerdictCache(tmp_path / "in.db") as other:
        other.put("k", _verdict(1))
    report = cache_module.merge_caches(tmp_path / "out.db", [tmp_path / "in.db"])
    assert report.conflicts == 1 and report.added == 0
    with VerdictCache(tmp_path / "out.db") as out:
        assert out.get("k") == _verdict(5)


def test_merge_caches_many_inputs(tmp_path: Path) -> None:
    # More inputs than SQLite attaches at once (10).
    paths = []
    for i in range(12):
        paths.append(tmp_path / f"s{i}.db")
        with VerdictCache(paths[-1]) as shard:
            shard.put(f"k{i}", _verdict(1 + i % 6))
    report = cache_module.merge_caches(tmp_path / "out.db", paths)
    assert (report.read, report.added, report.total) == (12, 12, 12)


@pytest.mark.parametrize("meta", [("schema_version", "99"), ("protocol_version", "99")])
def test_merge_caches_refuses_other_versions(tmp_path: Path, meta: tuple[str, str]) -> None:
    VerdictCache(tmp_path / "old.db").close()
    with sqlite3.connect(tmp_path / "old.db") as conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = ?", (meta[1], meta[0]))
    with pytest.raises(ValueError, match=r"Argument 'inputs' holds .*version 99"):
        cache_module.merge_caches(tmp_path / "out.db", [tmp_path / "old.db"])
    assert not (tmp_path / "out.db").exists()  # checked before anything is written


def test_merge_caches_reads_a_cache_without_a_protocol_row(tmp_path: Path) -> None:
    with VerdictCache(tmp_path / "old.db") as old:
        old.put("k", _verdict(2))
    with sqlite3.connect(tmp_path / "old.db") as conn:  # as written before the row existed
        conn.execute("DELETE FROM meta WHERE key = 'protocol_version'")
    assert cache_module.merge_caches(tmp_path / "out.db", [tmp_path / "old.db"]).added == 1


@pytest.mark.parametrize(
    ("inputs", "error", "match"),
    [
        ([], ValueError, "at least one"),
        ("a.db", TypeError, "sequence of paths"),
        (["missing.db"], ValueError, "existing cache files"),
        (["text.db"], ValueError, "must name verdict caches"),
        (["out.db"], ValueError, "must not include the output"),
    ],
)
def test_merge_caches_bad_inputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, inputs: Any, error: type[Exception], match: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "text.db").write_text("not a database, just text " * 100)
    with pytest.raises(error, match=match):
        cache_module.merge_caches("out.db", inputs)


def test_cli_cache_merge(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from genrm_rank.cli import EXIT_OK, EXIT_USAGE, main

    for name, key in (("a.db", "k1"), ("b.db", "k2")):
        with VerdictCache(tmp_path / name) as shard:
            shard.put(key, _verdict(2))
    argv = [
        "cache",
        "merge",
        str(tmp_path / "m.db"),
        str(tmp_path / "a.db"),
        str(tmp_path / "b.db"),
    ]
    assert main(argv) == EXIT_OK
    assert (
        "2 added, 0 already there, 0 conflicting (first kept); 2 in all" in capsys.readouterr().out
    )
    assert main(["cache", "merge", str(tmp_path / "m.db"), str(tmp_path / "none.db")]) == EXIT_USAGE
    assert "argument IN.db must name existing cache files" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------
# Shared caches: the first verdict stored wins, and a late writer adopts it


def test_put_keeps_the_first_verdict_and_returns_it(tmp_path: Path) -> None:
    other = Verdict(score_1=1, score_2=5, ranking=6, raw="later", usage=Usage(1, 2))
    with VerdictCache(tmp_path / "c.sqlite") as one, VerdictCache(tmp_path / "c.sqlite") as two:
        assert one.put("a", OK) == OK
        assert two.put("a", other) == OK  # another process stored first: its verdict stays
        assert two.put_many([("a", other), ("b", other)]) == 2
        assert one.get("a") == OK and one.get("b") == other and len(one) == 2


class _RacingJudge:
    """Answers ``mine``; while it generates, another run stores ``theirs`` under the same key."""

    def __init__(self, mine: Verdict, theirs: Verdict, path: Path) -> None:
        self.mine, self.theirs, self.path = mine, theirs, path

    async def judge(self, request: PairRequest) -> Verdict:
        with VerdictCache(self.path) as rival:
            rival.put(cache_key(NAMESPACE, request), self.theirs)
        return self.mine

    async def judge_batch(self, requests: Sequence[PairRequest]) -> list[Verdict]:
        return [await self.judge(r) for r in requests]


THEIRS = Verdict(score_1=2, score_2=5, ranking=5, raw="theirs", usage=Usage(7, 70))


@pytest.mark.parametrize("batch", [False, True])
async def test_a_late_writer_adopts_the_verdict_stored_first(tmp_path: Path, batch: bool) -> None:
    path = tmp_path / "shared.sqlite"
    inner = _RacingJudge(OK, THEIRS, path)
    with VerdictCache(path) as cache:
        if batch:
            cached: CachedJudge = CachedBatchJudge(inner, cache, namespace=NAMESPACE)
            [got] = await cached.judge_batch([REQUEST])  # type: ignore[attr-defined]
        else:
            cached = CachedJudge(_RacingJudge(OK, THEIRS, path), cache, namespace=NAMESPACE)
            got = await cached.judge(REQUEST)
        # the answer the cache holds, at the cost this run paid
        assert (got.ranking, got.raw) == (THEIRS.ranking, THEIRS.raw)
        assert (got.usage, got.attempts) == (OK.usage, OK.attempts) and not got.cached
        assert cached.adopted == 1
        assert cache.get(cached.key(REQUEST)) == THEIRS
        rerun = await CachedJudge(ScriptedJudge(), cache, namespace=NAMESPACE).judge(REQUEST)
        assert (rerun.ranking, rerun.raw) == (got.ranking, got.raw)


# ------------------------------------------------------------------------------------------
# Lone surrogates never enter the cache


def test_a_lone_surrogate_is_stored_as_text(tmp_path: Path) -> None:
    verdict = Verdict(score_1=4, score_2=2, ranking=2, raw="a\ud800", reasoning="\udfffb")
    assert (verdict.raw, verdict.reasoning) == ("a\ufffd", "\ufffdb")
    with VerdictCache(tmp_path / "c.sqlite") as cache:
        cache.put("k", verdict)
        (blob,) = cache._connection().execute("SELECT verdict FROM verdicts").fetchone()
        blob.encode("utf-8")
        assert "\\ud800" not in blob and cache.get("k") == verdict


def test_a_poisoned_cache_row_is_served_as_text(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    VerdictCache(path).close()
    blob = json.dumps({**verdict_to_dict(OK), "reasoning": "x\ud800y"}, ensure_ascii=True)
    with sqlite3.connect(path) as conn:  # as an older genrm_rank stored a server's "\ud800"
        conn.execute("INSERT INTO verdicts VALUES ('k', ?, 0)", (blob,))
    with VerdictCache(path) as cache:
        served = cache.get("k")
        assert served is not None and served.reasoning == "x\ufffdy"
        json.dumps(verdict_to_dict(served), ensure_ascii=False).encode("utf-8")


def test_a_cached_impossible_usage_is_served_as_unknown(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    VerdictCache(path).close()
    bad = {"prompt_tokens": -5, "completion_tokens": 10}
    blob = json.dumps({**verdict_to_dict(OK), "usage": bad})
    with sqlite3.connect(path) as conn:  # as an older genrm_rank stored a server's figures
        conn.execute("INSERT INTO verdicts VALUES ('k', ?, 0)", (blob,))
    with VerdictCache(path) as cache:
        assert cache.get("k") == dataclasses.replace(OK, usage=None)


# ------------------------------------------------------------------------------------------
# Merging a corrupt cache: named, and no empty output left


def _corrupt_copy(tmp_path: Path, name: str) -> Path:
    """A cache of 2,000 verdicts with a few b-tree pages of its second half overwritten."""
    source = tmp_path / f"{name}.src.db"
    with VerdictCache(source) as cache:
        cache.put_many((f"k{i}", _verdict(1 + i % 6)) for i in range(2000))
    data = bytearray(source.read_bytes())
    for offset in range(len(data) // 2, len(data), 4096 * 7):
        data[offset : offset + 40] = bytes(range(40))
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_merging_a_corrupt_cache_names_it_and_leaves_no_output(tmp_path: Path) -> None:
    good = tmp_path / "good.db"
    with VerdictCache(good) as cache:
        cache.put("g", _verdict(2))
    bad = _corrupt_copy(tmp_path, "bad.db")
    out = tmp_path / "out.db"
    with pytest.raises(ValueError, match=r"holds a corrupt cache, '.*bad\.db'"):
        cache_module.merge_caches(out, [good, bad])
    assert not any(p.name.startswith("out.db") for p in tmp_path.iterdir())


def test_merging_a_corrupt_cache_leaves_the_output_as_it_was(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from genrm_rank.cli import EXIT_USAGE, main

    out = tmp_path / "out.db"
    with VerdictCache(out) as cache:
        cache.put("mine", _verdict(3))
    bad = _corrupt_copy(tmp_path, "bad.db")
    assert main(["cache", "merge", str(out), str(bad)]) == EXIT_USAGE
    assert f"argument IN.db holds a corrupt cache, {str(bad)!r}" in capsys.readouterr().err
    with VerdictCache(out) as cache:
        assert len(cache) == 1 and cache.get("mine") == _verdict(3)


def test_a_merge_failing_half_way_removes_the_output_it_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = tmp_path / "good.db"
    with VerdictCache(good) as cache:
        cache.put("g", _verdict(2))

    def unreadable(conn: sqlite3.Connection, path: str) -> tuple[int, int, int, int]:
        raise sqlite3.DatabaseError("database disk image is malformed")

    monkeypatch.setattr(cache_module, "_merge_one", unreadable)
    with pytest.raises(ValueError, match=r"cannot be read whole, '.*good\.db'"):
        cache_module.merge_caches(tmp_path / "out.db", [good])
    assert not (tmp_path / "out.db").exists()


def test_a_mount_table_with_a_malformed_escape_is_read_not_raised(tmp_path: Path) -> None:
    """Only octal escapes are unescaped: ``\\089`` is kept as written, not an error."""
    mounts = tmp_path / "mounts"
    mounts.write_text("srv:/x /mnt/a\\089 nfs rw 0 0\nsrv:/y /mnt/b\\011c nfs rw 0 0\n")
    assert cache_module.network_filesystem("/tmp/c.db", mounts=mounts) is None
    assert cache_module.network_filesystem("/mnt/b\tc/c.db", mounts=mounts) == ("nfs", "/mnt/b\tc")
    assert cache_module.network_filesystem("/mnt/a\\089/c.db", mounts=mounts) == (
        "nfs",
        "/mnt/a\\089",
    )


def test_a_token_cap_reserves_the_inner_judges_bound_through_the_cache() -> None:
    """The cache hid the inner judge's ``call_token_bound``: the cap reserved the largest call
    seen (a small first one), and a window of bigger calls overshot it."""

    class Growing:
        def __init__(self) -> None:
            self.tokens = 0

        def call_token_bound(self, request: PairRequest) -> int:
            return 100

        async def judge(self, request: PairRequest) -> Verdict:
            used = 10 if self.tokens == 0 else 100
            self.tokens += used
            await asyncio.sleep(0)
            return Verdict(score_1=4, score_2=2, ranking=2, usage=Usage(used, 0))

    inner = Growing()
    jobs = [PromptJob(f"p{i}", ["a", "b"], RoundRobin(2, swap="none")) for i in range(40)]

    async def go() -> Orchestrator:
        with VerdictCache(":memory:") as cache:
            judge = CachedJudge(inner, cache, namespace={})
            assert judge.call_token_bound(PairRequest("q", "a", "b")) == 100
            orchestrator = Orchestrator(judge, max_in_flight=16, max_tokens=1000)
            [run async for run in orchestrator.run(jobs)]
            return orchestrator

    orchestrator = asyncio.run(go())
    assert orchestrator.cap_reached == "max_tokens" and 0 < inner.tokens <= 1000


async def test_a_damaged_cache_met_mid_run_ends_it_with_a_clear_error(tmp_path: Path) -> None:
    # the file opens (its first pages are whole); a damaged page is met only by a later get
    requests = [dataclasses.replace(REQUEST, response_1=f"answer {i}") for i in range(2000)]
    path = tmp_path / "c.db"
    with VerdictCache(path) as cache:
        keys = [CachedJudge(ScriptedJudge(), cache, namespace=NAMESPACE).key(r) for r in requests]
        cache.put_many((key, _verdict(1 + i % 6)) for i, key in enumerate(keys))
    data = bytearray(path.read_bytes())
    for offset in range(len(data) // 2, len(data), 4096 * 7):
        data[offset : offset + 40] = bytes(range(40))
    path.write_bytes(data)
    inner = ScriptedJudge(*[OK] * len(requests))
    with VerdictCache(path) as cache:
        cached = CachedJudge(inner, cache, namespace=NAMESPACE)
        with pytest.raises(JudgeConfigurationError, match=r"verdict cache '.*c\.db' is damaged"):
            for request in requests:
                await cached.judge(request)


async def test_a_cache_locked_past_its_timeout_ends_the_run_with_a_clear_error(
    tmp_path: Path,
) -> None:
    path = tmp_path / "c.db"
    with VerdictCache(path, timeout=0.05) as cache:
        other = sqlite3.connect(path, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")  # a long write elsewhere (a merge into it, say)
            cached = CachedJudge(ScriptedJudge(OK), cache, namespace=NAMESPACE)
            with pytest.raises(JudgeConfigurationError, match=r"'.*c\.db' stayed locked"):
                await cached.judge(REQUEST)
        finally:
            other.close()
