"""End-to-end tests against a real vLLM OpenAI server (CPU build, tiny random-weight model).

Deselected by default; run with::

    scripts/setup_vllm_cpu.sh                       # once: .venv-vllm (about 5 min, 3.5 GB)
    .venv/bin/pytest -m vllm tests/test_vllm_real.py --durations=0

Three servers start once for the module, in parallel (about 1 minute on 2 cores):

* ``a``: plain server (the recipe's flags), used by most tests;
* ``b``: a second replica of ``a``, SIGKILLed by the fail-over test;
* ``c``: with ``--reasoning-parser deepseek_r1``, for the ``reasoning`` field.

The model writes gibberish; verdicts are well-formed only because vLLM's structured outputs
force the JSON schema :data:`SCHEMA`. What the tests rely on is that the requests, responses
and errors are vLLM's own. The first tests talk to the server with plain aiohttp and pin down
the raw protocol; the rest go through :class:`genrm_rank.judges.openai_http.OpenAIJudge`.

Environment: ``GENRM_VLLM_VENV`` (the vLLM virtualenv, default ``<repo>/.venv-vllm``),
``GENRM_VLLM_LOG_DIR`` (keep server logs and ``report.json`` there; default a pytest tmp dir).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from vllm_support.server import (
    VLLMServer,
    VLLMStartError,
    VLLMUnavailable,
    build_model,
    vllm_python,
)
from vllm_support.verdict_schema import MODEL, SCHEMA

from genrm_rank.judges.base import PairRequest
from genrm_rank.judges.settings import Limits, Retries
from genrm_rank.messages import build_messages

pytestmark = [pytest.mark.vllm, pytest.mark.timeout(420)]

MAX_MODEL_LEN = 2048
STRUCTURED: dict[str, Any] = {"structured_outputs": {"json": SCHEMA}}
SAMPLING: dict[str, Any] = {"temperature": 1.0, "top_p": 0.95}
LONG_TEXT = "word " * 3000  # > 2048 tokens with the tiny tokenizer
STARTUP_TIMEOUT_S = 300.0


# -- servers -------------------------------------------------------------------------------------


@dataclass
class Cluster:
    a: VLLMServer
    b: VLLMServer
    c: VLLMServer
    model_dir: Path
    log_dir: Path
    think_end_id: int
    eos_id: int
    timings: dict[str, float] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)  # facts observed, for report.json

    @property
    def servers(self) -> dict[str, VLLMServer]:
        return {"a": self.a, "b": self.b, "c": self.c}


class _MemorySampler(threading.Thread):
    """Samples the servers' memory once a second; keeps the peaks."""

    def __init__(self, servers: dict[str, VLLMServer]) -> None:
        super().__init__(daemon=True)
        self.servers = servers
        self.peak_rss = dict.fromkeys(servers, 0)
        self.peak_pss_total = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.wait(1.0):
            self.sample()

    def sample(self) -> None:
        pss_total = 0
        for name, server in self.servers.items():
            rss, pss = server.memory()
            self.peak_rss[name] = max(self.peak_rss[name], rss)
            pss_total += pss
        self.peak_pss_total = max(self.peak_pss_total, pss_total)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(5)


def _token_ids(model_dir: Path) -> tuple[int, int]:
    tokenizer = json.loads((model_dir / "tokenizer.json").read_text())
    think_end = next(t["id"] for t in tokenizer["added_tokens"] if t["content"] == "</think>")
    eos = json.loads((model_dir / "config.json").read_text())["eos_token_id"]
    return int(think_end), int(eos)


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Cluster]:
    missing = None
    try:
        vllm_python()
    except VLLMUnavailable as exc:
        missing = str(exc)
    if missing is not None:  # fail, not skip: `-m vllm` asked for these tests
        pytest.fail(missing, pytrace=False)
    env_dir = os.environ.get("GENRM_VLLM_LOG_DIR")
    log_dir = Path(env_dir) if env_dir else tmp_path_factory.mktemp("vllm")
    log_dir.mkdir(parents=True, exist_ok=True)

    t0 = time.monotonic()
    model_dir = build_model(log_dir / "tiny-model")
    timings = {"build_model_s": time.monotonic() - t0}
    think_end_id, eos_id = _token_ids(model_dir)

    def server(name: str, **kwargs: Any) -> VLLMServer:
        return VLLMServer(
            model_dir,
            log_path=log_dir / f"server-{name}.log",
            served_model_name=MODEL,
            max_model_len=MAX_MODEL_LEN,
            **kwargs,
        )

    c = Cluster(
        a=server("a"),
        b=server("b"),
        c=server("c", reasoning_parser="deepseek_r1"),
        model_dir=model_dir,
        log_dir=log_dir,
        think_end_id=think_end_id,
        eos_id=eos_id,
        timings=timings,
    )
    sampler = _MemorySampler(c.servers)
    t0 = time.monotonic()
    try:
        for s in c.servers.values():
            s.start()
        sampler.start()
        for name, s in c.servers.items():
            failure = None
            try:
                s.wait_ready(STARTUP_TIMEOUT_S)
            except VLLMStartError as exc:
                failure = f"server {name!r}: {exc}"
            if failure is not None:
                pytest.fail(failure, pytrace=False)
            timings[f"server_{name}_ready_s"] = s.ready_after_s or 0.0
        timings["all_servers_ready_s"] = time.monotonic() - t0
        yield c
    finally:
        sampler.sample()
        sampler.stop()
        for s in c.servers.values():
            s.stop()
        report = {
            "timings_s": {k: round(v, 1) for k, v in timings.items()},
            "peak_rss_mib": {k: v // 2**20 for k, v in sampler.peak_rss.items()},
            "peak_pss_total_mib": sampler.peak_pss_total // 2**20,
            "notes": c.notes,
            "logs": str(log_dir),
        }
        (log_dir / "report.json").write_text(json.dumps(report, indent=1) + "\n")
        _show(request.config, f"vLLM servers: {json.dumps(report)}")


# -- helpers -------------------------------------------------------------------------------------


def _show(config: pytest.Config, line: str) -> None:
    """Print ``line`` on the terminal even from a fixture's teardown (output is captured there)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None:
        return
    with capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext():
        reporter.write_line("")
        reporter.write_line(line)


async def post(
    url: str, body: dict[str, Any], path: str = "/chat/completions"
) -> tuple[int, dict[str, Any]]:
    """POST ``body`` as JSON; return the status and the decoded JSON body."""
    async with aiohttp.ClientSession() as session:
        async with session.post(
            url + path, json=body, timeout=aiohttp.ClientTimeout(total=60)
        ) as r:
            return r.status, await r.json(content_type=None)


def chat_body(messages: list[dict[str, str]], max_tokens: int, **extra: Any) -> dict[str, Any]:
    return {"model": MODEL, "messages": messages, **SAMPLING, "max_tokens": max_tokens, **extra}


def genrm_messages(i: int = 0) -> list[dict[str, str]]:
    """A GenRM request as genrm_rank builds it: history, principle, response_1, response_2."""
    return build_messages(
        f"What is {i} + {i}?", f"It is {2 * i}.", f"Maybe {2 * i + 1}.", principle="Be correct."
    )


def pair(i: int, conversation: str | None = None) -> PairRequest:
    return PairRequest(
        conversation or f"Question {i}: what is {i} times three?",
        f"The answer is {3 * i}.",
        f"I think it is {3 * i + 1}.",
        principle="Prefer the correct answer.",
        prompt_id=f"p{i}",
    )


def assert_verdict_json(text: str) -> dict[str, int]:
    obj = json.loads(text)
    assert set(obj) == {"score_1", "score_2", "ranking"}
    assert all(isinstance(v, int) for v in obj.values())
    assert 1 <= obj["score_1"] <= 5 and 1 <= obj["score_2"] <= 5 and 1 <= obj["ranking"] <= 6
    return obj


def make_judge(endpoints: list[str], **overrides: Any) -> Any:
    from genrm_rank.judges.openai_http import OpenAIJudge

    options: dict[str, Any] = {
        "model": MODEL,
        "temperature": 1.0,
        "top_p": 0.95,
        "max_tokens": 64,
        "extra_body": STRUCTURED,
        "timeout": 60.0,
        "limits": Limits(max_in_flight_per_endpoint=8),
        "retries": Retries(max_resends=3),
        # The tiny random model does not think: servers a and b have no reasoning parser, so
        # their content is the answer itself (server c's tests turn thinking back on).
        "thinking": False,
        "seed": 0,
    }
    options.update(overrides)
    return OpenAIJudge(endpoints=endpoints, **options)


# -- the raw protocol (plain aiohttp) -------------------------------------------------------------


@pytest.mark.parametrize(
    "constraint",
    [
        STRUCTURED,
        {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "verdict", "schema": SCHEMA},
            }
        },
    ],
    ids=["structured_outputs", "response_format"],
)
async def test_raw_schema_constrained_verdict(cluster: Cluster, constraint: dict[str, Any]) -> None:
    status, body = await post(cluster.a.base_url, chat_body(genrm_messages(1), 64, **constraint))
    assert status == 200, body
    assert body["object"] == "chat.completion" and body["model"] == MODEL
    (choice,) = body["choices"]
    assert choice["finish_reason"] == "stop"
    message = choice["message"]
    assert message["role"] == "assistant"
    assert message["reasoning"] is None  # no reasoning parser on this server
    assert "reasoning_content" not in message
    assert_verdict_json(message["content"])  # compact JSON: disable_any_whitespace
    usage = body["usage"]
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


async def test_raw_guided_json_is_silently_ignored(cluster: Cluster) -> None:
    status, body = await post(
        cluster.a.base_url, chat_body(genrm_messages(2), 16, guided_json=SCHEMA)
    )
    assert status == 200, body  # accepted, but no constraint applied: gibberish up to max_tokens
    assert body["choices"][0]["finish_reason"] == "length"
    with pytest.raises((ValueError, AssertionError)):
        assert_verdict_json(body["choices"][0]["message"]["content"])


async def test_raw_prompt_longer_than_max_model_len_is_400(cluster: Cluster) -> None:
    status, body = await post(
        cluster.a.base_url, chat_body([{"role": "user", "content": LONG_TEXT}], 16)
    )
    assert status == 400
    error = body["error"]
    assert error["type"] == "BadRequestError" and error["code"] == 400
    assert error["param"] == "input_tokens"
    assert f"maximum context length is {MAX_MODEL_LEN} tokens" in error["message"]


async def test_raw_max_tokens_over_max_model_len_is_400(cluster: Cluster) -> None:
    status, body = await post(cluster.a.base_url, chat_body(genrm_messages(3), MAX_MODEL_LEN + 1))
    assert status == 400
    assert body["error"]["param"] == "max_tokens"
    assert f"cannot be greater than max_model_len={MAX_MODEL_LEN}" in body["error"]["message"]


async def test_raw_unknown_model_is_404(cluster: Cluster) -> None:
    status, body = await post(
        cluster.a.base_url, {**chat_body(genrm_messages(4), 8), "model": "nope"}
    )
    assert status == 404
    assert body["error"]["type"] == "NotFoundError" and body["error"]["param"] == "model"


async def test_raw_small_max_tokens_finishes_with_length(cluster: Cluster) -> None:
    status, body = await post(cluster.a.base_url, chat_body(genrm_messages(5), 5))
    assert status == 200, body
    (choice,) = body["choices"]
    assert choice["finish_reason"] == "length"
    assert isinstance(choice["message"]["content"], str)
    assert body["usage"]["completion_tokens"] == 5


async def test_raw_custom_roles_reach_the_chat_template(cluster: Cluster) -> None:
    messages = build_messages("Hi?", "Hello.", "", principle="Be brief.")
    root = cluster.a.root_url
    status, tokens = await post(
        root,
        {"model": MODEL, "messages": messages, "add_generation_prompt": True},
        path="/tokenize",
    )
    assert status == 200, tokens
    status, text = await post(
        root, {"model": MODEL, "tokens": tokens["tokens"]}, path="/detokenize"
    )
    assert status == 200, text
    assert text["prompt"] == (
        "<s><|user|>Hi?\n<|principle|>Be brief.\n<|response_1|>Hello.\n<|response_2|>None\n"
        "<|assistant|>"
    )


async def test_raw_reasoning_parser_fields(cluster: Cluster) -> None:
    # No </think> before max_tokens: everything is reasoning, content is null. (EOS is barred:
    # the random model may otherwise stop inside its reasoning, finish_reason "stop".)
    no_eos = {str(cluster.eos_id): -100}
    status, body = await post(
        cluster.c.base_url, chat_body(genrm_messages(6), 12, **STRUCTURED, logit_bias=no_eos)
    )
    assert status == 200, body
    (choice,) = body["choices"]
    assert choice["finish_reason"] == "length"
    assert choice["message"]["content"] is None
    assert isinstance(choice["message"]["reasoning"], str) and choice["message"]["reasoning"]
    assert "reasoning_content" not in choice["message"]

    # Nudge the model to close its reasoning: the schema then applies after </think>.
    bias = {str(cluster.think_end_id): 3, str(cluster.eos_id): -100}
    status, body = await post(
        cluster.c.base_url, chat_body(genrm_messages(6), 256, **STRUCTURED, logit_bias=bias, seed=1)
    )
    assert status == 200, body
    (choice,) = body["choices"]
    assert choice["finish_reason"] == "stop"
    assert isinstance(choice["message"]["reasoning"], str)
    assert_verdict_json(choice["message"]["content"])


# -- through the project's HTTP judge -------------------------------------------------------------


async def test_judge_reads_real_verdicts(cluster: Cluster) -> None:
    requests = [pair(i) for i in range(6)]
    async with make_judge([cluster.a.base_url]) as judge:
        verdicts = await judge.judge_batch(requests)
        stats = judge.stats[cluster.a.base_url]
    for v in verdicts:
        assert v.ok, (v.failure, v.error, v.raw)
        assert v.finish_reason == "stop" and v.attempts == 1
        obj = assert_verdict_json(v.raw)
        assert (v.score_1, v.score_2, v.ranking) == (obj["score_1"], obj["score_2"], obj["ranking"])
        assert v.usage is not None and v.usage.prompt_tokens > 0 and v.usage.completion_tokens > 0
        assert v.reasoning is None
    assert stats.requests == 6 and stats.failures == 0


async def test_judge_rejects_over_long_prompt_and_answers_the_rest(cluster: Cluster) -> None:
    requests = [pair(0), pair(1, conversation=LONG_TEXT), pair(2), pair(3)]
    async with make_judge([cluster.a.base_url]) as judge:
        verdicts = await judge.judge_batch(requests)
        stats = judge.stats[cluster.a.base_url]
    rejected = verdicts[1]
    assert not rejected.ok and rejected.failure == "rejected"
    assert "HTTP 400" in (rejected.error or "")
    assert f"maximum context length is {MAX_MODEL_LEN} tokens" in (rejected.error or "")
    assert [v.ok for v in verdicts] == [True, False, True, True]
    assert stats.requests == 4 and stats.failures == 0  # a 400 is not retried
    assert stats.healthy


async def test_judge_finish_reason_length_is_truncated(cluster: Cluster) -> None:
    # No schema and 5 tokens: the answer is cut. One generation a call: asking again is the
    # orchestrator's (paid, counted) re-ask, not the judge's.
    async with make_judge([cluster.a.base_url], max_tokens=5, extra_body=None) as judge:
        v = await judge.judge(pair(7))
    assert not v.ok and v.failure == "truncated", (v.failure, v.error, v.raw)
    assert v.finish_reason == "length"
    assert isinstance(v.raw, str)
    assert v.attempts == 1
    assert v.usage is not None and v.usage.completion_tokens == 5


async def test_judge_null_content_in_reasoning_is_truncated(cluster: Cluster) -> None:
    extra = {**STRUCTURED, "logit_bias": {str(cluster.eos_id): -100}}  # no stop inside reasoning
    async with make_judge(
        [cluster.c.base_url], max_tokens=12, extra_body=extra, thinking=True
    ) as judge:
        v = await judge.judge(pair(8))
    assert not v.ok and v.failure == "truncated", (v.failure, v.error, v.raw)
    assert v.raw is None and v.finish_reason == "length"
    assert isinstance(v.reasoning, str) and v.reasoning


async def test_judge_reads_the_reasoning_field(cluster: Cluster) -> None:
    # Seeded requests are deterministic: the judge's verdict must hold exactly what the server
    # sent back for the same request body.
    bias = {str(cluster.think_end_id): 3, str(cluster.eos_id): -100}
    extra = {**STRUCTURED, "logit_bias": bias, "seed": 1}
    requests = [pair(i) for i in range(3)]
    async with make_judge(
        [cluster.c.base_url], max_tokens=256, extra_body=extra, thinking=True
    ) as judge:
        verdicts = [await judge.judge(r) for r in requests]
    reasonings = []
    for r, v in zip(requests, verdicts, strict=True):
        status, body = await post(cluster.c.base_url, chat_body(r.messages(), 256, **extra))
        assert status == 200, body
        message = body["choices"][0]["message"]
        assert v.ok, (v.failure, v.error, v.raw)
        assert v.raw == message["content"]
        assert v.reasoning == message["reasoning"]
        reasonings.append(v.reasoning)
    assert any(reasonings), reasonings  # the nudge leaves some reasoning text before </think>


async def test_select_best_end_to_end(cluster: Cluster) -> None:
    from genrm_rank import api

    candidates = ["Paris.", "Lyon.", "The capital of France is Paris.", "I don't know."]
    async with make_judge([cluster.a.base_url]) as judge:
        selection = await api.aselect_best(
            candidates, "What is the capital of France?", judge=judge, seed=0
        )
    assert selection.best is not None and 0 <= selection.best < len(candidates)
    assert selection.calls == 2 * (len(candidates) - 1)  # knockout, both orders
    assert selection.failed_calls == 0
    assert selection.usage.prompt_tokens > 0


async def test_judge_fails_over_when_an_endpoint_is_killed(cluster: Cluster) -> None:
    """Two replicas; one is SIGKILLed while requests are in flight on it; all still answered.

    The calls the kill cut off may have generated: the judge hands them back as paid
    ``unavailable`` verdicts and the orchestrator (the one retry layer) asks them again, on the
    survivor, counting every re-ask."""
    from genrm_rank.orchestrator import Orchestrator, PromptJob
    from genrm_rank.strategies import RoundRobin

    a, b = cluster.a.base_url, cluster.b.base_url
    # Warm both up first (a server's first schema-constrained request compiles the grammar,
    # ~1 s), or a warm a answers nearly everything before b answers anything.
    for url in (a, b):
        status, body = await post(url, chat_body(genrm_messages(9), 64, **STRUCTURED))
        assert status == 200, body
    requests = [pair(i) for i in range(48)]
    jobs = [
        PromptJob(r.conversation, [r.response_1, r.response_2], RoundRobin(2, swap="none"), key=i)
        for i, r in enumerate(requests)
    ]
    async with make_judge([a, b], limits=Limits(max_in_flight_per_endpoint=4)) as judge:
        orchestrator = Orchestrator(judge, max_in_flight=48, retries=3)

        async def run_all() -> list[Any]:
            return [run async for run in orchestrator.run(jobs)]

        task = asyncio.ensure_future(run_all())
        # Kill b once it has answered a few requests and has more in flight.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not task.done():
            s = judge.stats[b]
            if s.requests - s.in_flight >= 3 and s.in_flight >= 1:
                break
            await asyncio.sleep(0.002)
        in_flight_on_b = judge.stats[b].in_flight
        served_by_b = judge.stats[b].requests
        cluster.b.kill()  # SIGKILL to the whole process group (API server and engine core)
        runs = await task
        stats = judge.stats
    verdicts = [run.judgements[0].verdict for run in runs]
    cluster.notes["failover"] = {
        "at_kill": {"b_requests": served_by_b, "b_in_flight": in_flight_on_b},
        "after": {name: {"requests": stats[url].requests, "failures": stats[url].failures,
                         "retries": stats[url].retries, "healthy": stats[url].healthy,
                         "last_error": stats[url].last_error}
                  for name, url in (("a", a), ("b", b))},
    }  # fmt: skip
    assert cluster.b.proc is not None and cluster.b.proc.wait(10) is not None
    assert served_by_b - in_flight_on_b >= 3 and in_flight_on_b >= 1, (served_by_b, in_flight_on_b)
    failed = [(i, v.failure, v.error) for i, v in enumerate(verdicts) if not v.ok]
    assert len(runs) == 48 and not failed
    assert stats[b].failures >= 1  # the kill was felt ...
    reasked = sum(run.reasked for run in runs)
    assert reasked >= 1  # ... the cut-off calls were asked again ...
    # ... each paid for when it may have generated (a cut-off call), free when it did not.
    assert 48 + 1 <= sum(run.calls for run in runs) <= 48 + reasked
    assert stats[a].failures == 0
