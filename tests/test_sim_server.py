"""Tests of genrm_rank.server: the simulated vLLM GenRM server, over real HTTP on loopback."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

import genrm_rank.server as server_pkg
from genrm_rank.judges.base import PairRequest
from genrm_rank.parsing import parse_verdict
from genrm_rank.server import (
    SimServer,
    SimServerConfig,
    ThreadedSimServers,
    build_arg_parser,
    config_from_args,
)

MODEL = "sim-genrm"


def body(messages: list[dict[str, str]] | None = None, **extra: Any) -> dict[str, Any]:
    if messages is None:
        messages = PairRequest("What is 2+2?", "4", "5").messages()
    return {"model": MODEL, "messages": messages, "max_tokens": 1000, **extra}


@pytest.fixture
async def server() -> AsyncIterator[SimServer]:
    async with SimServer(SimServerConfig(latency_mean=0.0, max_model_len=2000)) as s:
        yield s


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def test_all_is_complete() -> None:
    assert (
        sorted(server_pkg.__all__, key=lambda n: (not n.isupper(), not n[0].isupper(), n))
        == server_pkg.__all__
    )


async def test_health_models_and_metrics(server: SimServer, http: aiohttp.ClientSession) -> None:
    async with http.get(server.root_url + "/health") as r:
        assert r.status == 200
    async with http.get(server.url + "/models") as r:
        models = await r.json()
    assert [m["id"] for m in models["data"]] == [MODEL]
    async with http.post(server.url + "/chat/completions", json=body()) as r:
        assert r.status == 200
    async with http.get(server.root_url + "/metrics") as r:
        text = await r.text()
    for name in (
        "vllm:num_requests_running",
        "vllm:num_requests_waiting",
        "vllm:prefix_cache_queries_total",
        "vllm:prefix_cache_hits_total",
        "genrm_sim:requests_total",
        "genrm_sim:faults_injected_total",
    ):
        assert name in text
    assert f'genrm_sim:requests_total{{model_name="{MODEL}"}} 1' in text
    server.dead = True
    async with http.get(server.root_url + "/health") as r:
        assert r.status == 503


async def test_completion_is_openai_shaped_and_parses(
    server: SimServer, http: aiohttp.ClientSession
) -> None:
    async with http.post(server.url + "/chat/completions", json=body()) as r:
        assert r.status == 200
        data = await r.json()
    assert data["object"] == "chat.completion" and data["model"] == MODEL
    assert data["id"].startswith("chatcmpl-") and isinstance(data["created"], int)
    choice = data["choices"][0]
    assert choice["message"]["role"] == "assistant" and choice["finish_reason"] == "stop"
    usage = data["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    verdict = parse_verdict(
        choice["message"]["content"], choice["message"]["reasoning"], choice["finish_reason"]
    )
    assert verdict.ok


@pytest.mark.parametrize(
    ("style", "field"),
    [
        ("reasoning", "reasoning"),
        ("reasoning_content", "reasoning_content"),
        ("think", None),
        ("bare", None),
    ],
)
async def test_reasoning_styles(style: str, field: str | None, http: aiohttp.ClientSession) -> None:
    async with SimServer(SimServerConfig(latency_mean=0.0, reasoning_style=style)) as s:  # type: ignore[arg-type]
        async with http.post(s.url + "/chat/completions", json=body()) as r:
            message = (await r.json())["choices"][0]["message"]
    if field is None:
        assert "reasoning" not in message and "reasoning_content" not in message
        assert "</think>" in message["content"]
    else:
        assert message[field] and "</think>" not in message["content"]


def _error_shape(data: dict[str, Any], status: int, err_type: str) -> str:
    assert set(data) == {"error"}
    error = data["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == status and error["type"] == err_type
    assert isinstance(error["message"], str) and error["message"]
    return str(error["message"])


@pytest.mark.parametrize(
    ("payload", "status", "err_type", "fragment"),
    [
        ({**body(), "model": "other"}, 404, "NotFoundError", "The model `other` does not exist."),
        ({"model": MODEL}, 400, "BadRequestError", "messages"),
        (body([{"role": "tool", "content": "x"}]), 400, "BadRequestError", "role 'tool'"),
        (
            body([{"role": "user", "content": "q"}, {"role": "response_1", "content": "a"}]),
            400,
            "BadRequestError",
            "response_2",
        ),
        (
            body(
                [
                    {"role": "user", "content": "q"},
                    {"role": "assistant", "content": "a"},
                    {"role": "response_1", "content": "a"},
                    {"role": "response_2", "content": "b"},
                ]
            ),
            400,
            "BadRequestError",
            "end with a 'user' turn",
        ),
        (body(max_tokens=0), 400, "BadRequestError", "max_tokens"),
        (body(max_tokens=5000), 400, "BadRequestError", "maximum context length is 2000"),
        (
            body(PairRequest("x" * 9000, "a", "b").messages()),
            400,
            "BadRequestError",
            "maximum context length is 2000",
        ),
    ],
)
async def test_validation_errors_look_like_vllm(
    server: SimServer,
    http: aiohttp.ClientSession,
    payload: dict[str, Any],
    status: int,
    err_type: str,
    fragment: str,
) -> None:
    async with http.post(server.url + "/chat/completions", json=payload) as r:
        assert r.status == status
        message = _error_shape(await r.json(), status, err_type)
    assert fragment in message
    assert server.stats().rejected == 1


async def test_invalid_json_is_a_400(server: SimServer, http: aiohttp.ClientSession) -> None:
    async with http.post(server.url + "/chat/completions", data=b"{nope") as r:
        assert r.status == 400
        _error_shape(await r.json(), 400, "BadRequestError")


async def test_capacity_queues_requests_fifo(http: aiohttp.ClientSession) -> None:
    config = SimServerConfig(capacity=4, latency="constant", latency_mean=0.05, prefix_cache_size=0)
    async with SimServer(config) as s:
        start = time.perf_counter()
        statuses = await asyncio.gather(
            *(http.post(s.url + "/chat/completions", json=body()) for _ in range(12))
        )
        elapsed = time.perf_counter() - start
        assert all(r.status == 200 for r in statuses)
        for r in statuses:
            r.release()
        stats = s.stats()
    assert stats.max_running == 4 and stats.completed == 12
    assert elapsed >= 3 * 0.05 * 0.9  # three waves of four


async def test_prefix_cache_hits_are_counted_and_faster(http: aiohttp.ClientSession) -> None:
    config = SimServerConfig(latency="constant", latency_mean=0.08, prefix_hit_latency_factor=0.25)
    async with SimServer(config) as s:
        times = []
        for pair in (("a", "b"), ("b", "a"), ("a", "c")):
            start = time.perf_counter()
            async with http.post(
                s.url + "/chat/completions", json=body(PairRequest("Same prompt", *pair).messages())
            ) as r:
                assert r.status == 200
            times.append(time.perf_counter() - start)
        stats = s.stats()
    assert (stats.prefix_cache_queries, stats.prefix_cache_hits) == (3, 2)
    assert stats.prefix_cache_hit_rate == pytest.approx(2 / 3)
    assert times[1] < times[0] and times[2] < times[0]


async def test_faults_in_sequence(http: aiohttp.ClientSession) -> None:
    config = SimServerConfig(
        latency_mean=0.0,
        fault_sequence=("500", "503", "429", "drop", "unreadable", "truncated", "ok"),
        retry_after=2,
    )
    async with SimServer(config) as s:
        url = s.url + "/chat/completions"
        async with http.post(url, json=body()) as r:
            assert r.status == 500
            _error_shape(await r.json(), 500, "InternalServerError")
        async with http.post(url, json=body()) as r:
            assert r.status == 503 and r.headers["Retry-After"] == "2"
        async with http.post(url, json=body()) as r:
            assert r.status == 429 and r.headers["Retry-After"] == "2"
        with pytest.raises(aiohttp.ClientError):
            async with http.post(url, json=body()) as r:
                await r.read()
        async with http.post(url, json=body()) as r:
            c = (await r.json())["choices"][0]
            assert not parse_verdict(
                c["message"]["content"], c["message"]["reasoning"], c["finish_reason"]
            ).ok
        async with http.post(url, json=body()) as r:
            c = (await r.json())["choices"][0]
            assert c["message"]["content"] is None and c["finish_reason"] == "length"
        async with http.post(url, json=body()) as r:
            assert r.status == 200
        assert s.stats().faults == {
            "500": 1,
            "503": 1,
            "429": 1,
            "hang": 0,
            "drop": 1,
            "unreadable": 1,
            "truncated": 1,
            "empty_choices": 0,
            "misparsed": 0,
            "html": 0,
        }


async def test_hang_outlasts_a_client_timeout(http: aiohttp.ClientSession) -> None:
    async with SimServer(SimServerConfig(latency_mean=0.0, fault_sequence=("hang",))) as s:
        with pytest.raises(asyncio.TimeoutError):
            async with http.post(
                s.url + "/chat/completions", json=body(), timeout=aiohttp.ClientTimeout(total=0.2)
            ) as r:
                await r.read()


async def test_fault_rates_are_seeded(http: aiohttp.ClientSession) -> None:
    async def statuses() -> list[int]:
        async with SimServer(SimServerConfig(latency_mean=0.0, fault_rate_503=0.5, seed=3)) as s:
            out = []
            for _ in range(20):
                async with http.post(s.url + "/chat/completions", json=body()) as r:
                    out.append(r.status)
            return out

    first, second = await statuses(), await statuses()
    assert first == second and 503 in first and 200 in first


async def test_api_key_required_when_configured(http: aiohttp.ClientSession) -> None:
    async with SimServer(SimServerConfig(latency_mean=0.0, api_key="k")) as s:
        async with http.post(s.url + "/chat/completions", json=body()) as r:
            assert r.status == 401
        async with http.post(
            s.url + "/chat/completions", json=body(), headers={"Authorization": "Bearer k"}
        ) as r:
            assert r.status == 200
    assert "'k'" not in repr(SimServerConfig(api_key="k"))


async def test_stopped_server_refuses_connections(http: aiohttp.ClientSession) -> None:
    s = await SimServer(SimServerConfig(latency_mean=0.0)).start()
    url = s.url
    await s.stop()
    with pytest.raises(aiohttp.ClientConnectionError):
        async with http.get(url + "/models") as r:
            await r.read()


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"capacity": 0}, "'capacity'"),
        ({"latency": "uniform"}, "'latency'"),
        ({"latency_mean": -1.0}, "'latency_mean'"),
        ({"fault_rate_503": 1.5}, "'fault_rate_503'"),
        ({"fault_rate_503": 0.6, "fault_rate_500": 0.6}, "sum to at most 1"),
        ({"fault_sequence": ("boom",)}, r"'fault_sequence\[0\]'"),
        ({"prefix_hit_latency_factor": 0.0}, "'prefix_hit_latency_factor'"),
        ({"answer_format": "xml"}, "'answer_format'"),
    ],
)
def test_config_validation_names_the_argument(kwargs: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        SimServerConfig(**kwargs)


def test_threaded_servers_for_sync_callers() -> None:
    import urllib.request

    with ThreadedSimServers([SimServerConfig(latency_mean=0.0)] * 2) as servers:
        assert len(set(servers.urls)) == 2
        request = urllib.request.Request(
            servers.urls[1] + "/chat/completions",
            data=json.dumps(body()).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
        assert servers.stats(1).completed == 1
        servers.stop_server(0)
        assert not servers.servers[0].started


def test_cli_arguments_build_a_config() -> None:
    args = build_arg_parser().parse_args(
        [
            "--port",
            "0",
            "--capacity",
            "8",
            "--latency-mean",
            "0.2",
            "--fault-rate-503",
            "0.1",
            "--fault-sequence",
            "503,ok",
            "--reasoning-style",
            "think",
        ]
    )
    config = config_from_args(args)
    assert (config.capacity, config.latency_mean, config.fault_rate_503) == (8, 0.2, 0.1)
    assert config.fault_sequence == ("503", "ok") and config.reasoning_style == "think"


def test_python_dash_m_serves_and_stops() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "genrm_rank.server",
            "--port",
            "0",
            "--replicas",
            "2",
            "--latency-mean",
            "0",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(2)]
        assert all(line.startswith("serve-sim: ready http://127.0.0.1:") for line in lines)
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0


def test_given_qualities_drive_the_simulated_verdicts() -> None:
    """Texts in ``qualities`` get those latent qualities; others fall back to the text hash."""
    from genrm_rank.judges.simulated import text_quality
    from genrm_rank.server.app import SimServerConfig, config_dict

    config = SimServerConfig(qualities={"strong": 5.0, "weak": -5.0}, noise_scale=0.1)
    judge = config.make_judge()
    assert judge.quality("strong") == 5.0 and judge.quality("weak") == -5.0
    assert judge.quality("other") == text_quality("other", seed=config.judge_seed)
    messages = [
        {"role": "user", "content": "Q?"},
        {"role": "response_1", "content": "weak"},
        {"role": "response_2", "content": "strong"},
    ]
    assert judge.respond_messages(messages).true_ranking == 6
    assert config_dict(config)["qualities"] == "<2 texts>"


@pytest.mark.parametrize(
    ("host", "key_env", "warned"),
    [
        ("0.0.0.0", None, True),
        ("::", None, True),
        ("10.1.2.3", None, True),
        ("gpu-node-1", None, True),
        ("0.0.0.0", "SIM_KEY", False),
        ("127.0.0.1", None, False),
        ("::1", None, False),
        ("localhost", None, False),
    ],
)
def test_serve_sim_beyond_loopback_without_a_key_warns(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    host: str,
    key_env: str | None,
    warned: bool,
) -> None:
    import genrm_rank.server.cli as sim_cli

    served: list[str] = []

    async def serve(config: Any, host: str, port: int, replicas: int) -> None:
        served.append(host)  # nothing is bound: the check runs before serving

    monkeypatch.setattr(sim_cli, "_serve", serve)
    monkeypatch.setenv("SIM_KEY", "k-123")
    argv = ["--host", host, "--port", "0", *(["--api-key-env", key_env] if key_env else [])]
    assert sim_cli.serve_sim_main(argv) == 0
    assert served == [host]
    err = capsys.readouterr().err
    assert ("warning: listening on" in err and "no API key" in err) is warned


def test_the_judge_settings_are_declared_once_and_all_reach_the_judge() -> None:
    """SimServerConfig takes every SimulatedJudgeSettings keyword (thresholds too) and passes it."""
    import dataclasses

    from genrm_rank.judges.simulated import SimulatedJudge, SimulatedJudgeSettings

    chosen = {
        "noise": "thurstone",
        "noise_scale": 0.5,
        "position_bias": 0.25,
        "unreadable_rate": 0.125,
        "truncated_rate": 0.0625,
        "answer_format": "rubric",
        "reasoning_style": "think",
        "thresholds": (0.5, 1.5),
        "n_rubrics": 3,
    }
    assert sorted(chosen) == sorted(f.name for f in dataclasses.fields(SimulatedJudgeSettings))
    config = SimServerConfig(judge_seed=7, **chosen)  # type: ignore[arg-type]
    judge = config.make_judge()
    assert isinstance(judge, SimulatedJudge) and judge.seed == 7
    assert {name: getattr(judge, name) for name in chosen} == chosen
    assert judge.settings() == config.settings() == SimulatedJudgeSettings(**chosen)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^Argument 'thresholds' must satisfy 0 < low < high"):
        SimServerConfig(thresholds=(2.0, 1.0))
