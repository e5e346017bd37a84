"""Tests of genrm_rank.judges.openai_http.OpenAIJudge.

Where the HTTP exchange itself is not the point (resends, backoff, 429s, odd bodies, key
redaction, health), the judge talks to an in-memory transport on a fake clock
(``memory_transport.py``). Where a real socket is the point (timeouts, dropped and refused
connections, TLS, proxies, redirects, streaming a huge body), it talks to servers on loopback:
:class:`~genrm_rank.server.SimServer` instances, or a small aiohttp app.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from memory_transport import (
    GOOD,
    FakeClock,
    MemoryTransport,
    answers,
    completion,
    error,
    openai_server,
    reply,
)
from one_prompt import run_one

import genrm_rank.judges.discovery as discovery
import genrm_rank.judges.openai_http as openai_http
import genrm_rank.judges.transport as transport
from genrm_rank.api import rank
from genrm_rank.errors import EndpointsUnavailableError, JudgeConfigurationError
from genrm_rank.judges.base import BatchJudge, PairRequest
from genrm_rank.judges.openai_http import OpenAIJudge
from genrm_rank.judges.settings import Health, Limits, Retries, Routing
from genrm_rank.judges.transport import AiohttpTransport, ConnectError, Request, TransportError
from genrm_rank.orchestrator import Orchestrator, PromptJob, PromptRun
from genrm_rank.server import SimServer, SimServerConfig
from genrm_rank.strategies import RoundRobin
from genrm_rank.verdict import FailureKind

MODEL = "sim-genrm"
FAST = SimServerConfig(latency_mean=0.0)
BASE = "http://replica-a/v1"
ECHO_KEY = "sk-echo-5e1d7c3b9a"


def req(prompt: str = "What is 2+2?", a: str = "4", b: str = "5", **kw: Any) -> PairRequest:
    return PairRequest(prompt, a, b, **kw)


async def _collect(runs: AsyncIterator[PromptRun]) -> list[PromptRun]:
    return [run async for run in runs]


def fast_judge(urls: str | list[str], clock: FakeClock | None = None, **kw: Any) -> OpenAIJudge:
    """A judge of loopback servers: on ``clock``, else with short real waits."""
    opts: dict[str, Any] = {"model": MODEL, "api_key_env": None, "seed": 0}
    if clock is not None:
        opts.update(sleep=clock.sleep, clock=clock)
    else:
        opts.update(retries=Retries(backoff_base=0.001), health=FAST_HEALTH)
    opts.update(kw)
    return OpenAIJudge(urls, **opts)


FAST_HEALTH = Health(health_check_interval=0.02)


def memory_judge(
    transport: MemoryTransport,
    clock: FakeClock | None = None,
    urls: str | list[str] = BASE,
    **kw: Any,
) -> OpenAIJudge:
    """A judge whose requests go to ``transport``, on a fake clock: no socket, no real wait."""
    clock = clock or FakeClock()
    opts: dict[str, Any] = {"model": MODEL, "api_key_env": None, "seed": 0}
    opts.update(transport=transport, sleep=clock.sleep, clock=clock, **kw)
    return OpenAIJudge(urls, **opts)


def web_completion(content: str) -> web.Response:
    """A chat completion from a loopback aiohttp app."""
    return web.Response(body=completion(content).body, content_type="application/json")


def test_all_is_complete_and_sorted() -> None:
    assert openai_http.__all__ == [
        "MAX_RESPONSE_BYTES",
        "OpenAIJudge",
        "check_endpoints",
        "resolve_api_key",
    ]


def test_is_a_batch_judge_and_builds_without_a_loop() -> None:
    judge = OpenAIJudge(
        "http://127.0.0.1:1/v1", model=MODEL, api_key_env=None, limits=Limits(requests_per_second=3)
    )
    assert isinstance(judge, BatchJudge)
    assert "state=unopened" in repr(judge)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"endpoints": []}, "'endpoints'"),
        ({"endpoints": "127.0.0.1:8000"}, r"'endpoints\[0\]'"),
        ({"model": ""}, "'model'"),
        ({"max_tokens": 0}, "'max_tokens'"),
        ({"timeout": 0}, "'timeout'"),
        ({"template_token_allowance": 1.5}, "'template_token_allowance'"),
        ({"verify_tls": False, "transport": MemoryTransport(answers(error(500)))}, "'verify_tls'"),
    ],
)
def test_validation_names_the_argument(kwargs: dict[str, Any], fragment: str) -> None:
    args: dict[str, Any] = {
        "endpoints": "http://127.0.0.1:1/v1",
        "model": MODEL,
        "api_key_env": None,
        **kwargs,
    }
    with pytest.raises(ValueError, match=fragment):
        OpenAIJudge(args.pop("endpoints"), **args)


@pytest.mark.parametrize("answer_format", ["json", "rubric", "boxed"])
@pytest.mark.parametrize(
    "reasoning_style", ["reasoning", "reasoning_content", "think", "bare", "none"]
)
async def test_verdicts_parsed_across_formats_and_styles(
    answer_format: str, reasoning_style: str
) -> None:
    config = SimServerConfig(
        latency_mean=0.0, answer_format=answer_format, reasoning_style=reasoning_style
    )  # type: ignore[arg-type]
    # "none": a server whose model answers without thinking (told so with thinking=False).
    thinking = reasoning_style != "none"
    async with SimServer(config) as server, fast_judge(server.url, thinking=thinking) as judge:
        verdict = await judge.judge(req())
    assert verdict.ok and verdict.attempts == 1
    assert verdict.usage is not None and verdict.usage.prompt_tokens > 0
    if reasoning_style != "none":
        assert verdict.reasoning and "compare the two responses" in verdict.reasoning
    if answer_format == "rubric":
        assert len(verdict.rubrics) == 2


async def test_unusable_answers_are_reasked_by_the_orchestrator_within_the_budget() -> None:
    config = SimServerConfig(latency_mean=0.0, fault_sequence=("unreadable", "truncated"))
    async with SimServer(config) as server, fast_judge(server.url) as judge:
        job = PromptJob("Q", ["a", "b"], RoundRobin(2, swap="none"), budget=5)
        run = await run_one(judge, job, retries=2)
        assert server.stats().completed == 3
    assert run.calls == 3 and run.reasked == 2 and run.failed_calls == 0
    assert run.judgements[0].verdict.ok and run.judgements[0].verdict.attempts == 1


@pytest.mark.parametrize(
    ("fault", "kind"),
    [("unreadable", FailureKind.UNREADABLE), ("truncated", FailureKind.TRUNCATED)],
)
async def test_reasks_exhausted_report_the_failure(fault: str, kind: FailureKind) -> None:
    config = SimServerConfig(latency_mean=0.0, fault_sequence=(fault,) * 10)
    async with SimServer(config) as server, fast_judge(server.url) as judge:
        job = PromptJob("Q", ["a", "b"], RoundRobin(2, swap="none"))
        run = await run_one(judge, job, retries=2)
        assert server.stats().completed == 3
    verdict = run.judgements[0].verdict
    assert verdict.failure is kind and run.calls == 3 and run.failed_calls == 1
    assert run.usage.prompt_tokens > 0


# -- fail fast, in the server's words -----------------------------------------------------------


async def test_wrong_model_stops_the_run_naming_the_served_models() -> None:
    async with SimServer(FAST) as server, fast_judge(server.url, model="nope") as judge:
        with pytest.raises(JudgeConfigurationError) as info:
            await judge.judge(req())
        assert server.stats().requests == 0  # GET /models said so: no chat request paid
    message = str(info.value)
    assert "model 'nope' is not served (GET /models)" in message
    assert "the server serves ['sim-genrm']" in message and "argument 'model'" in message


async def test_endpoint_without_v1_suggests_it() -> None:
    async with SimServer(FAST) as server, fast_judge(server.root_url) as judge:
        with pytest.raises(JudgeConfigurationError, match=r"HTTP 404") as info:
            await judge.judge(req())
    assert f"did you mean {server.root_url}/v1?" in str(info.value)


@pytest.mark.parametrize(("key", "hint"), [(None, "no API key was sent"), ("wrong", "refused")])
async def test_bad_or_missing_key_stops_the_run(key: str | None, hint: str) -> None:
    config = SimServerConfig(latency_mean=0.0, api_key="right-key")
    async with SimServer(config) as server, fast_judge(server.url, api_key=key) as judge:
        with pytest.raises(JudgeConfigurationError, match=r"HTTP 401: Unauthorized") as info:
            await judge.judge(req())
    assert hint in str(info.value) and "right-key" not in str(info.value)
    assert key is None or key not in str(info.value)


async def test_one_refusing_endpoint_is_routed_around_for_free() -> None:
    async with (
        SimServer(FAST) as good,
        SimServer(SimServerConfig(latency_mean=0.0, model="other")) as wrong,
        fast_judge([wrong.url, good.url], routing=Routing("least_loaded")) as judge,
    ):
        verdicts = [await judge.judge(req(prompt=f"q{i}")) for i in range(4)]
        assert all(v.ok and v.attempts == 1 for v in verdicts)
        assert good.stats().completed == 4


async def test_each_endpoint_is_checked_once_before_the_first_chat_request() -> None:
    async with SimServer(FAST) as a, SimServer(FAST) as b, fast_judge([a.url, b.url]) as judge:
        verdicts = await judge.judge_batch([req(prompt=f"q{i}") for i in range(32)])
        verdicts += [await judge.judge(req())]
    assert all(v.ok for v in verdicts)
    assert a.stats().by_path["GET /v1/models"] == b.stats().by_path["GET /v1/models"] == 1


async def test_one_endpoint_at_a_wrong_path_is_dropped_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with SimServer(FAST) as good, SimServer(FAST) as other:
        wrong = other.root_url + "/wrong/v1"
        async with fast_judge([wrong, good.url], routing=Routing("least_loaded")) as judge:
            verdicts = await judge.judge_batch([req(prompt=f"q{i}") for i in range(16)])
    assert all(v.ok for v in verdicts) and good.stats().completed == 16
    assert not any(k.startswith("POST") for k in other.stats().by_path)  # never sent a chat
    [warning] = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert wrong in warning and "left out" in warning and "HTTP 404" in warning


async def test_a_wrong_path_costs_one_chat_request_per_endpoint() -> None:
    # /models is not found either (as behind a gateway without it): the chat request decides.
    async with SimServer(FAST) as a, SimServer(FAST) as b:
        urls = [a.root_url + "/x/v1", b.root_url + "/x/v1"]
        async with fast_judge(urls) as judge:
            with pytest.raises(JudgeConfigurationError, match=r"HTTP 404"):
                await judge.judge_batch([req(prompt=f"q{i}") for i in range(64)])
        for server in (a, b):
            assert server.stats().by_path["POST /x/v1/chat/completions"] == 1


# -- HTTP edge cases, against serve-sim --------------------------------------------------------


async def test_verdict_only_in_reasoning_content_is_a_parser_misconfiguration() -> None:
    config = SimServerConfig(
        latency_mean=0.0, reasoning_style="reasoning_content", fault_sequence=("misparsed",)
    )
    async with SimServer(config) as server, fast_judge(server.url) as judge:
        verdict = await judge.judge(req())
    assert verdict.failure is FailureKind.UNREADABLE
    assert "reasoning parser" in (verdict.error or "") and "--reasoning-parser" in (
        verdict.error or ""
    )


async def test_empty_reasoning_field_does_not_hide_reasoning_content() -> None:
    config = SimServerConfig(
        latency_mean=0.0, reasoning_style="reasoning_content", empty_reasoning_field=True
    )
    async with SimServer(config) as server, fast_judge(server.url) as judge:
        verdict = await judge.judge(req())
    assert verdict.ok and verdict.reasoning and "compare the two responses" in verdict.reasoning


async def test_timeouts_under_queueing_keep_a_healthy_replica_in_rotation() -> None:
    # One slot, 0.3 s a request: queued requests time out at 0.1 s, again and again.
    config = SimServerConfig(latency="constant", latency_mean=0.3, capacity=1)
    async with (
        SimServer(config) as server,
        fast_judge(
            server.url,
            timeout=0.1,
            health=Health(failure_threshold=1, health_check_interval=0.02),
            retries=Retries(max_resends=0),
        ) as judge,
    ):
        verdicts = await judge.judge_batch([req(prompt=f"q{i}") for i in range(4)])
        assert all(v.failure is FailureKind.UNAVAILABLE for v in verdicts)
        assert all("timed out" in (v.error or "") for v in verdicts)
        assert judge.stats[server.url].healthy


async def test_proxy_from_the_environment_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    async with SimServer(FAST) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.root_url)
        # Nothing listens on port 1: the answer can only come through the proxy.
        async with fast_judge("http://127.0.0.1:1/v1", retries=Retries(max_resends=0)) as judge:
            verdict = await judge.judge(req())
        assert verdict.ok and proxy.stats().completed == 1


async def test_the_environment_is_looked_up_once_per_url_not_per_request(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # aiohttp's trust_env read ~/.netrc and the proxy variables in a worker thread on every
    # request: two thread hops a comparison. The judge reads them once, when it opens.
    looked_up: list[str] = []
    original = transport._environment_route

    def counting(url: str) -> dict[str, Any]:
        looked_up.append(url)
        return original(url)

    monkeypatch.setattr(transport, "_environment_route", counting)
    async with SimServer(FAST) as server, fast_judge(server.url) as judge:
        verdicts = await judge.judge_batch([req(prompt=f"q{i}") for i in range(12)])
        assert all(v.ok for v in verdicts)
    # Once per URL the judge used (no /health probe was needed), when first used.
    assert sorted(looked_up) == sorted([server.url + "/chat/completions", server.url + "/models"])


async def test_netrc_credentials_and_no_proxy_are_found_for_the_host(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login user password secret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    route = transport._environment_route("http://127.0.0.1:8000/v1/chat/completions")
    assert route["auth"].login == "user" and route["auth"].password == "secret"
    assert "proxy" not in transport._environment_route("http://127.0.0.1:8000/health")


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1"),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


@pytest.mark.parametrize("setting", ["default", "ca_bundle", "verify_off"])
async def test_tls_verified_by_default_ca_bundle_from_the_environment(
    setting: str, tls_files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = tls_files
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    if setting == "ca_bundle":
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    async with (
        SimServer(FAST, ssl_context=context) as server,
        fast_judge(server.url, verify_tls=setting != "verify_off") as judge,
    ):
        assert server.url.startswith("https://")
        if setting == "default":
            with pytest.raises(JudgeConfigurationError, match=r"SSL_CERT_FILE.*verify_tls=False"):
                await judge.judge(req())
        else:
            assert (await judge.judge(req())).ok


async def test_dropped_connection_is_a_paid_failure_reasked_by_the_orchestrator() -> None:
    config = SimServerConfig(latency_mean=0.0, fault_sequence=("drop", "drop"))
    async with SimServer(config) as server, fast_judge(server.url) as judge:
        verdict = await judge.judge(req())
        job = PromptJob("Q", ["a", "b"], RoundRobin(2, swap="none"))
        run = await run_one(judge, job, retries=2)
    assert verdict.failure is FailureKind.UNAVAILABLE and verdict.attempts == 1
    assert run.judgements[0].verdict.ok and run.calls == 2 and run.reasked == 1


async def test_hang_times_out_and_is_reasked_as_a_paid_call() -> None:
    config = SimServerConfig(latency_mean=0.0, fault_sequence=("hang",))
    async with SimServer(config) as server, fast_judge(server.url, timeout=0.2) as judge:
        start = time.perf_counter()
        job = PromptJob("Q", ["a", "b"], RoundRobin(2, swap="none"))
        run = await run_one(judge, job, retries=1)
        assert "timed out" in (judge.stats[server.url].last_error or "")
    assert run.judgements[0].verdict.ok and time.perf_counter() - start < 5
    assert run.calls == 2  # the timed-out call may have generated: it counts


async def test_endpoint_killed_mid_run_completes_on_the_others() -> None:
    config = SimServerConfig(latency="constant", latency_mean=0.01)
    servers = [await SimServer(config).start() for _ in range(3)]
    try:
        health = Health(failure_threshold=2, health_check_interval=0.02)
        async with fast_judge([s.url for s in servers], health=health) as judge:
            jobs = [
                PromptJob(f"p{i}", [f"a{i}", f"b{i}"], RoundRobin(2, swap="none"), key=i)
                for i in range(300)
            ]
            orchestrator = Orchestrator(judge, max_in_flight=64, retries=3)
            batch = asyncio.ensure_future(_collect(orchestrator.run(jobs)))
            while servers[0].stats().completed < 10:
                await asyncio.sleep(0.005)
            await servers[0].stop()
            runs = await batch
            stats = judge.stats
        verdicts = [run.judgements[0].verdict for run in runs]
        assert len(runs) == 300 and all(v.ok for v in verdicts)
        # The requests the killed replica dropped were paid for once and asked again.
        assert sum(run.calls for run in runs) == 300 + sum(run.reasked for run in runs)
        assert not stats[servers[0].url].healthy
        assert sum(s.stats().completed for s in servers) >= 300
    finally:
        for s in servers:
            await s.stop()


async def test_all_endpoints_down_raises_naming_each() -> None:
    clock = FakeClock()
    servers = [await SimServer(FAST).start() for _ in range(2)]
    urls = [s.url for s in servers]
    for s in servers:
        await s.stop()
    async with fast_judge(urls, clock, health=Health(failure_threshold=1)) as judge:
        with pytest.raises(EndpointsUnavailableError) as info:
            await judge.judge(req())
        assert not any(s.healthy for s in judge.stats.values())
    message = str(info.value)
    for url in urls:
        assert url in message
    assert "ClientConnectorError" in message or "Connect" in message
    assert clock.now >= judge.down_timeout


async def test_prefix_affinity_keeps_a_prompt_on_one_replica() -> None:
    servers = [await SimServer(FAST).start() for _ in range(4)]
    try:
        async with fast_judge([s.url for s in servers]) as judge:
            for p in range(12):
                for i in range(6):
                    assert (await judge.judge(req(f"prompt {p}", f"a{i}", f"b{i}"))).ok
            stats = judge.stats
        # Each prompt's six comparisons hit one replica: 1 miss + 5 hits per prompt.
        hits = sum(s.stats().prefix_cache_hits for s in servers)
        assert hits == 12 * 5
        assert sum(s.affinity_hits for s in stats.values()) == 72
        assert sum(1 for s in servers if s.stats().completed) >= 2
    finally:
        for s in servers:
            await s.stop()


async def test_prefix_affinity_spills_under_load() -> None:
    config = SimServerConfig(latency="constant", latency_mean=0.05)
    servers = [await SimServer(config).start() for _ in range(2)]
    try:
        spilling = Routing(spill_factor=1.0, spill_offset=2.0)
        async with fast_judge([s.url for s in servers], routing=spilling) as judge:
            verdicts = await judge.judge_batch(
                [req("one prompt", f"a{i}", f"b{i}") for i in range(20)]
            )
            stats = judge.stats
        assert all(v.ok for v in verdicts)
        assert sum(s.spills for s in stats.values()) > 0
        assert all(s.stats().completed > 0 for s in servers)
    finally:
        for s in servers:
            await s.stop()


async def test_in_flight_limit_per_endpoint() -> None:
    config = SimServerConfig(latency="constant", latency_mean=0.02, capacity=100)
    async with (
        SimServer(config) as server,
        fast_judge(server.url, limits=Limits(max_in_flight_per_endpoint=3)) as judge,
    ):
        await judge.judge_batch([req(f"p{i}") for i in range(15)])
        assert server.stats().max_running == 3


async def test_rate_limit_is_respected() -> None:
    async with (
        SimServer(FAST) as server,
        fast_judge(server.url, limits=Limits(requests_per_second=20)) as judge,
    ):
        start = time.perf_counter()
        await judge.judge_batch([req(f"p{i}") for i in range(30)])
        elapsed = time.perf_counter() - start
    assert elapsed >= 0.4  # 20 at once (one second's burst), then 10 more at 20/s


async def test_closed_judge_refuses_work() -> None:
    async with SimServer(FAST) as server:
        judge = fast_judge(server.url)
        assert (await judge.judge(req())).ok  # opens lazily
        await judge.aclose()
        await judge.aclose()
        assert judge.is_closed
        with pytest.raises(RuntimeError, match="closed"):
            await judge.judge(req())


async def test_judge_rejects_a_non_request() -> None:
    judge = fast_judge("http://127.0.0.1:1/v1")
    with pytest.raises(TypeError, match="'request'"):
        await judge.judge("hello")  # type: ignore[arg-type]
    await judge.aclose()


def test_credentials_in_an_endpoint_url_are_refused_without_echoing_them() -> None:
    with pytest.raises(ValueError, match=r"endpoints\[1\]' holds credentials") as info:
        OpenAIJudge(["http://127.0.0.1:1/v1", "https://user:s3cret@host/v1"], model="m")
    assert "s3cret" not in str(info.value)


def test_a_non_http_url_is_refused_without_its_password() -> None:
    with pytest.raises(ValueError, match=r"endpoints\[0\]' must be an http\(s\) URL") as info:
        OpenAIJudge(["ftp://user:s3cret@host/v1"], model="m")
    assert "s3cret" not in str(info.value) and "ftp://***@host/v1" in str(info.value)


ECHO_KEY = "sk-echo-5e1d7c3b9a"


async def test_a_chat_request_redirected_to_another_origin_carries_no_key(
    chat_server: Callable[[Callable[[web.Request], Awaitable[web.Response]]], Awaitable[str]],
) -> None:
    """aiohttp drops ``Authorization`` when a redirect leaves the origin (discovery does too)."""
    seen: list[str | None] = []

    async def other(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization"))
        return web_completion("thought</think>" + GOOD)

    target = await chat_server(other)

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect(target + "/chat/completions")

    origin = await chat_server(redirect)
    async with fast_judge(origin, api_key=ECHO_KEY) as judge:
        verdict = await judge.judge(req())
    assert verdict.ok and seen == [None]


# -- an answer of gigabytes is not read whole; impossible usage is not summed ------------------


def _streaming(
    total: int, *, declare: bool
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A handler streaming ``total`` bytes lazily (never held), declared or chunked."""

    async def chat(request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        if declare:
            response.content_length = total
        await response.prepare(request)
        chunk = b" " * (1 << 20)
        try:
            for _ in range(total // len(chunk)):
                await response.write(chunk)
        except (ConnectionError, RuntimeError):
            pass  # the client hung up, as it should
        return response

    return chat


@pytest.mark.parametrize("declare", [False, True])
async def test_an_answer_over_max_response_bytes_is_a_failed_call_not_read_whole(
    chat_server: Callable[..., Awaitable[str]], declare: bool
) -> None:
    import tracemalloc

    big = await chat_server(_streaming(256 << 20, declare=declare))
    good = await chat_server(_ok)
    async with fast_judge(big, retries=Retries(max_resends=0)) as judge:
        tracemalloc.start()
        try:
            verdict = await judge.judge(req())
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert verdict.failure is FailureKind.UNAVAILABLE and verdict.attempts == 1
        assert "answer longer than max_response_bytes=8388608" in (verdict.error or "")
        assert judge.faults == {"oversized_answer": 1}
        assert peak < 48 << 20  # 256 MiB read whole would be far above
    async with fast_judge(good, thinking=False) as judge:  # and the run goes on
        assert (await judge.judge(req())).ok


async def _ok(request: web.Request) -> web.Response:
    await request.read()
    return web_completion(GOOD)


# -- through the in-memory transport, on a fake clock ------------------------------------------


def test_the_default_transport_is_aiohttp_and_flat_settings_are_gone() -> None:
    judge = OpenAIJudge(BASE, model=MODEL, api_key_env=None, verify_tls=False)
    assert isinstance(judge._transport, AiohttpTransport) and not judge._transport.verify_tls
    with pytest.raises(TypeError, match="max_resends"):
        OpenAIJudge(BASE, model=MODEL, max_resends=3)  # type: ignore[call-arg]


def test_a_request_never_shows_its_headers_or_body() -> None:
    request = Request("POST", BASE, {"Authorization": f"Bearer {ECHO_KEY}"}, b"{}", 1.0, 10)
    assert ECHO_KEY not in repr(request) and BASE in repr(request)


@pytest.mark.parametrize("group", ["limits", "routing", "retries", "health"])
def test_settings_groups_are_taken_whole(group: str) -> None:
    with pytest.raises(TypeError, match=f"Argument '{group}' must be a "):
        OpenAIJudge(BASE, model=MODEL, **{group: {"max_resends": 1}})


async def test_the_transport_is_closed_with_the_judge_and_reopened_after_aclose_connections() -> (
    None
):
    memory = MemoryTransport(openai_server(answers(completion(GOOD))))
    judge = memory_judge(memory, thinking=False)
    assert (await judge.judge(req())).ok
    await judge.aclose_connections()
    assert memory.closed == 1 and not judge.is_closed
    assert (await judge.judge(req())).ok
    await judge.aclose()
    assert memory.closed == 2 and judge.is_closed


async def test_request_body_sampling_extra_body_roles_and_bearer() -> None:
    memory = MemoryTransport(openai_server(answers(completion(GOOD, reasoning="thought"))))
    judge = memory_judge(
        memory,
        api_key="s3cret-key",
        temperature=0.6,
        top_p=0.9,
        max_tokens=123,
        extra_body={"top_k": 20, "chat_template_kwargs": {"enable_thinking": True}},
    )
    async with judge:
        verdict = await judge.judge(req(principle="Be correct."))
    assert verdict.ok and verdict.reasoning == "thought"
    [chat] = memory.chats
    body = json.loads(chat.body or b"")
    assert chat.url == BASE + "/chat/completions"
    assert body["model"] == MODEL and body["max_tokens"] == 123
    assert (body["temperature"], body["top_p"], body["top_k"]) == (0.6, 0.9, 20)
    assert body["chat_template_kwargs"] == {"enable_thinking": True}
    assert [m["role"] for m in body["messages"]] == [
        "user",
        "principle",
        "response_1",
        "response_2",
    ]
    assert all(s.headers["Authorization"] == "Bearer s3cret-key" for s in memory.sent)


@pytest.mark.parametrize("name", ["max_tokens", "max_completion_tokens"])
async def test_a_generation_limit_in_extra_body_bounds_the_token_cap(name: str) -> None:
    # extra_body's keys override the sampling parameters; the token bound once kept the
    # max_tokens argument, and a run's max_tokens cap was overshot by the calls in flight.
    def chat(request: Request) -> Any:
        body = json.loads(request.body or b"")
        spent = body.get("max_completion_tokens") or body["max_tokens"]
        usage = {"prompt_tokens": 10, "completion_tokens": spent, "total_tokens": 10 + spent}
        return completion(GOOD, usage=usage)

    memory = MemoryTransport(openai_server(chat))
    judge = memory_judge(
        memory, max_tokens=10, extra_body={name: 1000}, template_token_allowance=0, thinking=False
    )
    jobs = [PromptJob(f"p{i}", ["a", "b"], RoundRobin(2, swap="none")) for i in range(40)]
    async with judge:
        orchestrator = Orchestrator(judge, max_in_flight=16, max_tokens=5000)
        await _collect(orchestrator.run(jobs))
    assert orchestrator.cap_reached == "max_tokens"
    assert 0 < orchestrator.stats.usage.total_tokens <= 5000
    assert judge.max_tokens == 1000


@pytest.mark.parametrize("value", [None, 0, "1000"])
def test_a_generation_limit_in_extra_body_is_checked(value: object) -> None:
    with pytest.raises(ValueError, match=r"Argument 'extra_body\['max_tokens'\]'"):
        OpenAIJudge(BASE, model=MODEL, api_key_env=None, extra_body={"max_tokens": value})


def test_extra_body_cannot_ask_several_generations_a_call() -> None:
    # n=4 made vLLM generate four answers a call, paid, while budgets and caps counted one.
    with pytest.raises(ValueError, match=r"Argument 'extra_body\['n'\]' must be 1"):
        OpenAIJudge(BASE, model=MODEL, api_key_env=None, extra_body={"n": 4})
    assert OpenAIJudge(BASE, model=MODEL, api_key_env=None, extra_body={"n": 1})


async def test_api_key_never_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    memory = MemoryTransport(openai_server(answers(error(503)), health=lambda: 503))
    key_file = tmp_path / "key"
    key_file.write_text("file-key-123\n")
    judge = memory_judge(
        memory,
        api_key_file=key_file,
        retries=Retries(max_resends=3),
        health=Health(failure_threshold=2, down_timeout=0.05),
    )
    async with judge:
        with pytest.raises(EndpointsUnavailableError) as info:
            await judge.judge(req())
    assert memory.chats[0].headers["Authorization"] == "Bearer file-key-123"
    for text in (repr(judge), str(info.value), caplog.text, repr(vars(judge)), repr(judge.stats)):
        assert "file-key-123" not in text
    monkeypatch.setenv("MY_GENRM_KEY", "env-key-456")
    env_judge = OpenAIJudge(BASE, model=MODEL, api_key_env="MY_GENRM_KEY")
    assert "env-key-456" not in repr(env_judge) and "api_key=set" in repr(env_judge)
    assert "api_key=none" in repr(memory_judge(memory))


async def test_reasoning_content_and_null_content_answers() -> None:
    memory = MemoryTransport(
        openai_server(
            answers(
                completion(None, finish="length", reasoning_content="half a thought"),
                completion(GOOD, reasoning_content="full"),
            )
        )
    )
    async with memory_judge(memory) as judge:
        first = await judge.judge(req())
        second = await judge.judge(req())
    # One generation a call: the truncated answer comes back as it is, paid, for the
    # orchestrator to re-ask; the judge does not ask again behind the caller's back.
    assert first.failure is FailureKind.TRUNCATED and first.attempts == 1
    assert first.reasoning == "half a thought"
    assert second.ok and second.reasoning == "full" and second.attempts == 1
    assert second.usage is not None and second.usage.total_tokens == 15
    assert len(memory.chats) == 2


async def test_429_retry_after_is_honoured_on_a_fake_clock() -> None:
    clock = FakeClock()
    chat = answers(error(429, retry_after=7), error(429, retry_after=7), completion(GOOD))
    memory = MemoryTransport(openai_server(chat))
    async with memory_judge(memory, clock, thinking=False) as judge:
        verdict = await judge.judge(req())
        stats = judge.stats[BASE]
        assert judge.faults == {"http_429": 2}
    assert verdict.ok
    assert len(clock.sleeps) == 2 and all(s >= 7 for s in clock.sleeps)
    assert stats.failures == 2 and stats.retries == 2 and stats.healthy  # 429 is not ill health


@pytest.mark.parametrize("value", ["inf", "1e400", "1e9"])
async def test_a_retry_after_past_down_timeout_is_cut_to_it(value: str) -> None:
    # An infinite or absurd Retry-After once made the judge sleep forever (or for years).
    clock = FakeClock()
    too_long = reply(429, error(429).body or b"", {"Retry-After": value})
    memory = MemoryTransport(openai_server(answers(too_long, completion(GOOD))))
    health = Health(down_timeout=60.0)
    async with memory_judge(memory, clock, health=health, thinking=False) as judge:
        verdict = await judge.judge(req())
    assert verdict.ok and clock.sleeps == [60.0]


async def test_backoff_is_exponential_with_full_jitter() -> None:
    clock = FakeClock()
    memory = MemoryTransport(openai_server(answers(*[error(503)] * 4, completion(GOOD))))
    retries = Retries(backoff_base=1.0, backoff_max=4.0)
    health = Health(failure_threshold=10)
    async with memory_judge(memory, clock, retries=retries, health=health, thinking=False) as j:
        assert (await j.judge(req())).ok
    ceilings = [1.0, 2.0, 4.0, 4.0]
    assert len(clock.sleeps) == 4 and len(set(clock.sleeps)) == 4
    assert all(0 <= s <= c for s, c in zip(clock.sleeps, ceilings, strict=True))


async def test_503_fails_over_to_another_endpoint_for_free() -> None:
    bad, good = "http://bad/v1", "http://good/v1"

    def chat(request: Request) -> Any:
        return error(503) if request.url.startswith(bad) else completion(GOOD)

    memory = MemoryTransport(openai_server(chat))
    async with memory_judge(
        memory, urls=[bad, good], health=Health(failure_threshold=1000), thinking=False
    ) as judge:
        verdicts = await judge.judge_batch([req(f"prompt {i}") for i in range(20)])
        stats = judge.stats
    assert all(v.ok and v.attempts == 1 for v in verdicts)  # resends of a 503 are free
    sent_bad = sum(1 for s in memory.chats if s.url.startswith(bad))
    assert stats[bad].failures == sent_bad > 0
    assert stats[good].retries == stats[bad].failures  # every failure resent


@pytest.mark.parametrize(
    ("failure", "detail", "fault"),
    [
        (error(500, "boom"), "HTTP 500: boom", "http_500"),
        (error(504, "gateway"), "HTTP 504: gateway", "http_504"),
        (asyncio.TimeoutError(), "timed out after 600 s", "timeout"),
        (TransportError("ServerDisconnectedError: gone"), "ServerDisconnectedError", None),
    ],
)
async def test_a_failure_after_a_possible_generation_is_paid_and_not_resent(
    failure: Any, detail: str, fault: str | None
) -> None:
    """A 500, 504, timeout or dropped connection may come after a generation: resending is a
    paid re-ask, the orchestrator's."""
    memory = MemoryTransport(openai_server(answers(failure, completion(GOOD))))
    async with memory_judge(memory, thinking=False) as judge:
        verdict = await judge.judge(req())
        assert len(memory.chats) == 1
        run = await run_one(judge, PromptJob("Q", ["a", "b"], RoundRobin(2, swap="none")))
        assert len(memory.chats) == 2
        assert judge.faults == {fault or "connection_dropped": 1}
        assert judge.stats[BASE].healthy
    assert verdict.failure is FailureKind.UNAVAILABLE and verdict.attempts == 1
    assert detail in (verdict.error or "")
    assert run.judgements[0].verdict.ok and run.calls == 1


async def test_400_is_rejected_and_not_retried() -> None:
    words = "This model's maximum context length is 100 tokens. However, you requested 550"
    memory = MemoryTransport(openai_server(answers(error(400, words))))
    async with memory_judge(memory) as judge:
        verdict = await judge.judge(req("x" * 2000))
        assert judge.faults == {"http_400": 1}
    assert len(memory.chats) == 1
    assert verdict.failure is FailureKind.REJECTED and verdict.attempts == 0
    assert verdict.error == f"{BASE}: HTTP 400: {words}"


async def test_a_refused_connection_is_resent_for_free() -> None:
    refused = ConnectError("ClientConnectorError: Cannot connect to host replica-a:80")
    memory = MemoryTransport(openai_server(answers(refused, completion(GOOD))))
    clock = FakeClock()
    async with memory_judge(memory, clock, thinking=False) as judge:
        verdict = await judge.judge(req())
        assert judge.faults == {"connection_refused": 1}
    assert verdict.ok and verdict.attempts == 1 and len(clock.sleeps) == 1


async def test_an_html_page_is_quoted_in_the_failure() -> None:
    page = "<html><head><title>Sign in</title></head><body>proxy login</body></html>"
    memory = MemoryTransport(openai_server(answers(reply(200, page))))
    async with memory_judge(memory) as judge:
        verdict = await judge.judge(req())
        assert judge.faults == {"malformed_response": 1}
    assert verdict.failure is FailureKind.UNAVAILABLE and verdict.attempts == 1
    assert "the body began: '<html><head><title>Sign in" in (verdict.error or "")


async def test_empty_choices_is_a_per_request_failure_not_ill_health() -> None:
    empty = reply(200, {"object": "chat.completion", "choices": []})
    memory = MemoryTransport(openai_server(answers(*[empty] * 8, completion(GOOD))))
    async with memory_judge(memory, health=Health(failure_threshold=2), thinking=False) as judge:
        verdicts = [await judge.judge(req()) for _ in range(8)]
        assert all(v.failure is FailureKind.UNAVAILABLE and v.attempts == 1 for v in verdicts)
        assert "'choices' is empty" in (verdicts[0].error or "")
        assert judge.stats[BASE].healthy  # 8 such answers, threshold 2: still in rotation
        assert judge.faults == {"empty_choices": 8}
        assert (await judge.judge(req())).ok


async def test_an_answer_over_max_response_bytes_from_the_transport_is_a_paid_failure() -> None:
    memory = MemoryTransport(openai_server(answers(completion("x" * 2000), completion(GOOD))))
    limits = Limits(max_response_bytes=1000)
    async with memory_judge(memory, limits=limits, thinking=False) as judge:
        verdict = await judge.judge(req())
        assert judge.faults == {"oversized_answer": 1}
        assert (await judge.judge(req())).ok  # the models list fitted, and so does this
    assert verdict.failure is FailureKind.UNAVAILABLE and verdict.attempts == 1
    assert "answer longer than max_response_bytes=1000 (HTTP 200)" in (verdict.error or "")


async def test_retries_exhausted_is_unavailable() -> None:
    memory = MemoryTransport(openai_server(answers(error(503))))
    retries, health = Retries(max_resends=2), Health(failure_threshold=100)
    async with memory_judge(memory, retries=retries, health=health) as judge:
        verdict = await judge.judge(req())
    assert verdict.failure is FailureKind.UNAVAILABLE and "503" in (verdict.error or "")
    assert verdict.attempts == 0  # no server started a generation: nothing was paid
    assert len(memory.chats) == 3


async def test_endpoint_recovers_after_health_probe() -> None:
    clock = FakeClock()
    memory = MemoryTransport(openai_server(answers(error(503), error(503), completion(GOOD))))
    health = Health(failure_threshold=2)
    async with memory_judge(memory, clock, health=health, thinking=False) as judge:
        verdict = await judge.judge(req())
        assert judge.stats[BASE].healthy
    assert verdict.ok
    assert 5.0 in clock.sleeps  # waited one health_check_interval for the probe
    assert [s.url for s in memory.sent if s.url.endswith("/health")] == ["http://replica-a/health"]


class _FlakyPair:
    """Replicas A and B behind one judge; A fails its chats and health probes until ``up``."""

    A, B = BASE, "http://replica-b/v1"

    def __init__(self) -> None:
        self.up = False
        self.probed_at: list[float] = []
        self.clock = FakeClock()
        self.memory = MemoryTransport(self._handle)
        self.judge = memory_judge(
            self.memory,
            self.clock,
            urls=[self.A, self.B],
            routing=Routing("least_loaded"),
            health=Health(failure_threshold=1),
            thinking=False,
        )

    def _handle(self, request: Request) -> transport.Response:
        on_a = request.url.startswith("http://replica-a/")
        if on_a and request.url.endswith("/health"):
            self.probed_at.append(self.clock.now)
        server = openai_server(
            answers(error(503) if on_a and not self.up else completion(GOOD)),
            health=lambda: 503 if on_a and not self.up else 200,
        )
        return server(request)

    def chats_to_a(self) -> int:
        return sum(r.url.startswith(self.A) for r in self.memory.chats)

    def recover(self) -> tuple[int, int]:
        """A comes back and a probe interval passes; A's chats and probes so far."""
        assert not self.judge.stats[self.A].healthy and self.judge.stats[self.A].failures
        self.up = True
        self.clock.now += self.judge.health.health_check_interval
        return self.chats_to_a(), len(self.probed_at)


def test_an_endpoint_out_of_rotation_is_probed_again_by_the_next_sync_call() -> None:
    pair = _FlakyPair()
    candidates = ["a", "b", "c", "d"]
    rank(candidates, "Q", judge=pair.judge, seed=0, concurrency=1)  # one call at a time
    chats, probes = pair.recover()
    now = pair.clock.now
    result = rank(candidates, "Q", judge=pair.judge, seed=0, concurrency=1)
    assert pair.judge.stats[pair.A].healthy and pair.chats_to_a() > chats
    assert pair.probed_at[probes:] == [now]  # overdue: probed at once, not an interval later
    assert all(j.verdict.ok for j in result.judgements)


async def test_an_endpoint_out_of_rotation_is_probed_again_after_aclose_connections() -> None:
    pair = _FlakyPair()
    for i in range(2):  # least loaded with ties rotating: one of them goes to A
        assert (await pair.judge.judge(req(f"p{i}"))).ok
    await pair.judge.aclose_connections()
    chats, _ = pair.recover()
    for i in range(4):
        assert (await pair.judge.judge(req(f"q{i}"))).ok
    assert pair.judge.stats[pair.A].healthy and pair.chats_to_a() > chats
    await pair.judge.aclose()


async def test_all_down_with_503_names_the_status() -> None:
    clock = FakeClock()
    memory = MemoryTransport(openai_server(answers(error(503)), health=lambda: 503))
    async with memory_judge(memory, clock, health=Health(failure_threshold=2)) as judge:
        with pytest.raises(EndpointsUnavailableError, match=r"HTTP 503.*GET /health answered 503"):
            await judge.judge(req())
    assert clock.now >= judge.down_timeout == Health().down_after(Retries())


@pytest.mark.parametrize("status", [400, 401, 500])
async def test_a_key_the_server_echoes_is_kept_out_of_verdicts_and_errors(status: int) -> None:
    """vLLM quotes requests in its errors; a server may quote the Authorization header too."""
    echo = error(status, f"bad request from Bearer {ECHO_KEY} ({ECHO_KEY})")
    memory = MemoryTransport(answers(echo))  # /models too: nothing confirms the model
    async with memory_judge(memory, api_key=ECHO_KEY, retries=Retries(max_resends=0)) as judge:
        if status == 401:
            with pytest.raises(JudgeConfigurationError) as info:
                await judge.judge(req())
            text = str(info.value)
        else:
            verdict = await judge.judge(req())
            text = str(verdict.error) + str(verdict.raw) + repr(judge.stats)
    assert memory.sent[0].headers["Authorization"] == f"Bearer {ECHO_KEY}"  # the key was sent
    assert f"HTTP {status}: bad request from Bearer *** (***)" in text
    assert ECHO_KEY not in text


@pytest.mark.parametrize(
    "answer",
    [
        error(400, "x" * 485 + f" Bearer {ECHO_KEY}"),  # the message is cut at 500 characters
        reply(200, b"<html>" + b"x" * 100 + f"Bearer {ECHO_KEY}".encode()),  # quoted: 120 bytes
    ],
)
async def test_a_key_the_quote_of_an_answer_would_cut_is_masked_whole(answer: Any) -> None:
    # Quotes were cut before the key was masked, so the cut key's first characters showed.
    memory = MemoryTransport(openai_server(answers(answer)))
    async with memory_judge(memory, api_key=ECHO_KEY, retries=Retries(max_resends=0)) as judge:
        verdict = await judge.judge(req())
    assert verdict.failure is not None and "Bearer ***" in str(verdict.error)
    assert ECHO_KEY[:7] not in repr(verdict)


def test_model_discovery_masks_an_echoed_key_before_cutting_the_quote(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def refused(request: Request, verify_tls: bool) -> transport.Response:
        return transport.Response(401, {}, ("x" * 485 + f" Bearer {ECHO_KEY}").encode())

    monkeypatch.setattr(discovery, "_get", refused)
    with pytest.raises(ValueError, match=r"Bearer \*\*\*; the API key sent was refused") as info:
        discovery.served_model(BASE, ECHO_KEY)
    assert ECHO_KEY[:7] not in str(info.value)


async def test_a_key_echoed_in_an_answer_is_kept_out_of_the_verdict() -> None:
    echoed = f"the header said {ECHO_KEY}</think>{GOOD} {ECHO_KEY}"
    memory = MemoryTransport(openai_server(answers(completion(echoed))))
    async with memory_judge(memory, api_key=ECHO_KEY) as judge:
        verdict = await judge.judge(req())
    assert verdict.ok and verdict.ranking == 2
    assert ECHO_KEY not in repr(verdict) and "***" in str(verdict.raw)


@pytest.mark.parametrize(
    "usage",
    [
        {"prompt_tokens": -5, "completion_tokens": 10},
        {"prompt_tokens": 10, "completion_tokens": 1e308},
        {"prompt_tokens": 10, "completion_tokens": 2**41},
        {"prompt_tokens": 10.5, "completion_tokens": 10},
        {"prompt_tokens": True, "completion_tokens": 10},
        {"prompt_tokens": False, "completion_tokens": 10},
        {"prompt_tokens": "10", "completion_tokens": 10},
    ],
)
async def test_impossible_usage_is_unknown_not_summed(usage: dict[str, Any]) -> None:
    memory = MemoryTransport(openai_server(answers(completion(GOOD, usage=usage))))
    async with memory_judge(memory, thinking=False) as judge:
        verdict = await judge.judge(req())
        assert judge.faults == {"impossible_usage": 1}
    assert verdict.ok and verdict.usage is None and verdict.total_tokens == 0


@pytest.mark.parametrize("usage", [{"x": 1}, {"total_tokens": 5000}, {"prompt_tokens": None}])
async def test_usage_without_counts_is_unknown_not_zero(usage: dict[str, Any]) -> None:
    # Read as 0 tokens, such a call was free to the max_tokens cap.
    memory = MemoryTransport(openai_server(answers(completion(GOOD, usage=usage))))
    async with memory_judge(memory, thinking=False) as judge:
        verdict = await judge.judge(req())
        assert judge.faults == {}
    assert verdict.ok and verdict.usage is None


@pytest.mark.parametrize("status", [200, 500])
async def test_a_body_nested_past_the_stack_is_a_failed_call_not_a_crash(status: int) -> None:
    # json.loads raised RecursionError, which nothing caught: the run crashed.
    memory = MemoryTransport(openai_server(answers(reply(status, b"[" * 100_000))))
    async with memory_judge(memory, retries=Retries(max_resends=0)) as judge:
        verdict = await judge.judge(req())
    assert verdict.failure is FailureKind.UNAVAILABLE and verdict.attempts == 1
    assert ("RecursionError" if status == 200 else "HTTP 500: [[[") in str(verdict.error)


async def test_whole_float_usage_is_a_count() -> None:
    usage = {"prompt_tokens": 10.0, "completion_tokens": None}
    memory = MemoryTransport(openai_server(answers(completion(GOOD, usage=usage))))
    async with memory_judge(memory) as judge:
        verdict = await judge.judge(req())
    assert verdict.usage is not None and verdict.total_tokens == 10


async def test_a_429_on_every_request_is_not_resent_forever_before_any_answer() -> None:
    memory = MemoryTransport(openai_server(answers(error(429, retry_after=0))))
    async with memory_judge(memory, retries=Retries(max_resends=5)) as judge:
        verdicts = await judge.judge_batch([req(prompt=f"q{i}") for i in range(8)])
        assert all(v.failure is FailureKind.UNAVAILABLE and v.attempts == 0 for v in verdicts)
        assert "429s before any answer" in (verdicts[-1].error or "")
        # 16 before the limit, and each call's request in flight when it was reached: not 8 x 6.
        assert len(memory.chats) <= 16 + 8
        assert (await judge.judge(req())).attempts == 0 and len(memory.chats) <= 16 + 9


async def test_a_429_burst_after_an_answer_is_still_ridden_out() -> None:
    chat = answers(completion(GOOD), *[error(429, retry_after=0)] * 20, completion(GOOD))
    memory = MemoryTransport(openai_server(chat))
    async with memory_judge(memory, retries=Retries(max_resends=30), thinking=False) as judge:
        assert (await judge.judge(req())).ok
        verdict = await judge.judge(req())
        assert verdict.ok and len(memory.chats) == 22
