"""A simulated vLLM server with a GenRM loaded: real HTTP, OpenAI chat API, faults on demand.

:class:`SimServer` answers like ``vllm serve <GenRM>``: ``POST /v1/chat/completions`` validated
as vLLM does and answered by a :class:`~genrm_rank.judges.simulated.SimulatedJudge`, errors in
vLLM's ``{"error": {"message", "type", "param", "code"}}`` shape, ``GET /v1/models``,
``GET /health`` (503 while :attr:`SimServer.dead`) and ``GET /metrics`` (Prometheus text, vLLM's
metric names where vLLM has one). It models what a client's throughput depends on: ``capacity``
sequences at once and a FIFO queue behind them, seeded latencies shortened by a prefix-cache hit,
and faults injected at given rates or in a fixed order.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import hashlib
import itertools
import json
import math
import random
import socket
import ssl
import threading
import time
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, TypeVar, get_args

from aiohttp import web
from aiohttp.typedefs import Handler

from genrm_rank import validate as check
from genrm_rank.judges.simulated import (
    SimulatedJudge,
    SimulatedJudgeSettings,
    estimate_tokens,
    text_quality,
)

__all__ = [
    "FAULT_KINDS",
    "FaultKind",
    "LatencyDistribution",
    "SimServer",
    "SimServerConfig",
    "SimServerStats",
    "ThreadedSimServers",
    "config_dict",
    "error_body",
]

LatencyDistribution = Literal["lognormal", "constant", "exponential"]
FaultKind = Literal[
    "ok",
    "500",
    "503",
    "429",
    "hang",
    "drop",
    "unreadable",
    "truncated",
    "empty_choices",
    "misparsed",
    "html",
]
FAULT_KINDS: tuple[str, ...] = get_args(FaultKind)
_T = TypeVar("_T")
_RATED: tuple[str, ...] = ("500", "503", "429", "hang", "drop", "html", "empty_choices")
"""The faults injected at a rate, each by its ``fault_rate_<kind>`` setting."""
_FAULT_ERRORS = {
    "500": (500, "InternalServerError", "Simulated internal server error."),
    "503": (503, "ServiceUnavailableError", "Simulated overload: the request queue is full."),
    "429": (429, "RateLimitError", "Simulated rate limit."),
    "hang": (504, "GatewayTimeout", "Simulated hang ended."),  # after hang_seconds
}
_REASONING_FIELDS = ("reasoning", "reasoning_content")
_MESSAGE_ROLES = frozenset({"system", "user", "assistant", "principle", "response_1", "response_2"})
_HISTORY_ROLES = frozenset({"system", "user", "assistant"})
_METRICS = {
    # name: (value, help); a name ending in "_total" is a counter, any other a gauge
    "vllm:num_requests_running": ("running", "Number of requests in model execution batches."),
    "vllm:num_requests_waiting": ("waiting", "Number of requests waiting to be processed."),
    "vllm:request_success_total": ("completed", "Count of successfully processed requests."),
    "vllm:prefix_cache_queries_total": ("tokens", "Prefix cache queries, in prompt tokens."),
    "vllm:prefix_cache_hits_total": ("token_hits", "Prefix cache hits, in prompt tokens."),
    "genrm_sim:requests_total": ("requests", "Chat requests received."),
    "genrm_sim:requests_rejected_total": ("rejected", "Chat requests refused by validation."),
    "genrm_sim:prefix_cache_request_queries_total": ("queries", "Requests looked up in the cache."),
    "genrm_sim:prefix_cache_request_hits_total": ("hits", "Requests whose prefix was cached."),
    "genrm_sim:service_seconds_total": ("seconds", "Simulated service time of served requests."),
}


@dataclass(frozen=True, kw_only=True)
class SimServerConfig(SimulatedJudgeSettings):
    """How a :class:`SimServer` behaves: its judge's settings, and its own.

    Takes :class:`~genrm_rank.judges.simulated.SimulatedJudgeSettings`' keywords, and:

    Attributes
    ----------
    model : str
        The served model name; requests for another name get vLLM's 404.
    max_model_len, capacity : int
        Context length (a longer prompt, 4 characters a token, or ``max_tokens`` gets a 400),
        and sequences served at once (the others wait in FIFO order).
    latency, latency_mean, latency_sigma : {"lognormal", "constant", "exponential"}, float, float
        Distribution of a request's service time, its mean in seconds for a prefix-cache miss
        (``0``: no sleeping at all), and the lognormal's log-space standard deviation.
    prefix_cache_size, prefix_hit_latency_factor : int, float
        Conversation prefixes remembered (LRU; ``0``: no prefix-cache model), and a hit's
        service time as a fraction of a miss's.
    judge_seed, seed : int
        Seeds of the simulated judge, and of the latency and fault draws.
    qualities : mapping of str to float, optional
        Latent quality of given candidate texts (as shown); other texts get one from their hash.
    fault_rate_500, fault_rate_503, fault_rate_429, fault_rate_hang, fault_rate_drop : float
        Probability per chat request (their sum at most 1) of a 500, a 503, a 429 with
        ``Retry-After``, a hang of ``hang_seconds``, a connection closed without a reply.
    fault_rate_html, fault_rate_empty_choices : float
        Probability of a 200 holding an HTML page (a proxy's login page), or ``choices: []``.
    retry_after, hang_seconds : float
        Seconds in an injected 429/503's ``Retry-After``; how long a hung request sleeps.
    fault_sequence : tuple of str
        Faults for the first chat requests, in arrival order, before the rates apply: each of
        ``FAULT_KINDS``; ``"misparsed"`` is what a wrong reasoning parser gives (``content``
        null, the whole answer in the reasoning field, ``finish_reason`` ``"stop"``).
    empty_reasoning_field : bool
        With ``reasoning_style="reasoning_content"``, also send ``"reasoning": ""``.
    api_key : str, optional
        When set, requests must carry ``Authorization: Bearer <api_key>`` (vLLM ``--api-key``).
    """

    model: str = "sim-genrm"
    max_model_len: int = 65536
    capacity: int = 64
    latency: LatencyDistribution = "lognormal"
    latency_mean: float = 0.3
    latency_sigma: float = 0.5
    prefix_cache_size: int = 1024
    prefix_hit_latency_factor: float = 0.5
    judge_seed: int = 0
    fault_rate_500: float = 0.0
    fault_rate_503: float = 0.0
    fault_rate_429: float = 0.0
    fault_rate_hang: float = 0.0
    fault_rate_drop: float = 0.0
    fault_rate_html: float = 0.0
    fault_rate_empty_choices: float = 0.0
    retry_after: float = 1.0
    hang_seconds: float = 3600.0
    fault_sequence: tuple[str, ...] = ()
    empty_reasoning_field: bool = False
    api_key: str | None = field(default=None, repr=False)
    seed: int = 0
    qualities: Mapping[str, float] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        check.text("model", self.model)
        check.count("max_model_len", self.max_model_len, 1)
        check.count("capacity", self.capacity, 1)
        check.one_of("latency", self.latency, get_args(LatencyDistribution))
        if not (self.latency_mean >= 0 and math.isfinite(self.latency_mean)):
            raise ValueError(f"Argument 'latency_mean' must be >= 0, not {self.latency_mean!r}.")
        check.at_least("latency_sigma", self.latency_sigma, 0)
        check.at_least("prefix_cache_size", self.prefix_cache_size, 0)
        if not 0 < self.prefix_hit_latency_factor <= 1:
            raise ValueError(
                "Argument 'prefix_hit_latency_factor' must be in (0, 1], "
                f"not {self.prefix_hit_latency_factor!r}."
            )
        rates = self.fault_rates()
        for kind, rate in rates.items():
            check.probability(f"fault_rate_{kind}", rate)
        if sum(rates.values()) > 1.0 + 1e-12:
            raise ValueError(
                f"Arguments 'fault_rate_*' must sum to at most 1, not {sum(rates.values())}."
            )
        check.at_least("retry_after", self.retry_after, 0)
        check.at_least("hang_seconds", self.hang_seconds, 0)
        for i, kind in enumerate(self.fault_sequence):
            check.one_of(f"fault_sequence[{i}]", kind, FAULT_KINDS)
        super().__post_init__()

    def fault_rates(self) -> dict[str, float]:
        """The injected-fault probabilities, by kind."""
        return {kind: getattr(self, f"fault_rate_{kind}") for kind in _RATED}

    def make_judge(self) -> SimulatedJudge:
        """The simulated judge writing this server's answers."""
        table, seed = self.qualities or {}, self.judge_seed

        def quality(text: str) -> float:
            return float(table[text]) if text in table else text_quality(text, seed=seed)

        return SimulatedJudge(**asdict(self.settings()), qualities=quality, seed=seed)


@dataclass(frozen=True)
class SimServerStats:
    """Counters of one :class:`SimServer` (also in ``/metrics``).

    ``requests``: chat requests received, valid or not; ``rejected``: refused (4xx);
    ``running``/``waiting``: served now/queued behind ``capacity``; ``faults``: injected, by kind;
    ``prefix_cache_queries``/``prefix_cache_hits``: requests looked up in the prefix cache/found
    there; ``service_seconds``: simulated service time of completed requests; ``by_path``: every
    HTTP request, by ``"METHOD /path"`` (wrong paths included).
    """

    requests: int
    completed: int
    running: int
    waiting: int
    max_running: int
    rejected: int
    faults: dict[str, int]
    prefix_cache_queries: int
    prefix_cache_hits: int
    service_seconds: float = 0.0
    by_path: dict[str, int] = field(default_factory=dict)

    @property
    def prefix_cache_hit_rate(self) -> float:
        """Share of prefix-cache lookups that hit (0 without lookups)."""
        queries = self.prefix_cache_queries
        return self.prefix_cache_hits / queries if queries else 0.0


class _HttpError(Exception):
    """A request refused with vLLM's error body (``param`` names the field at fault)."""

    def __init__(
        self, message: str, param: str | None = "messages", status: int = 400, kind: str = ""
    ) -> None:
        super().__init__(message)
        body = error_body(status, kind or "BadRequestError", message, param)
        self.response = web.json_response(body, status=status)


def error_body(
    status: int, err_type: str, message: str, param: str | None = None
) -> dict[str, Any]:
    """vLLM's error shape: ``{"error": {"message", "type", "param", "code"}}``."""
    return {"error": {"message": message, "type": err_type, "param": param, "code": status}}


class SimServer:
    """One simulated vLLM GenRM server, in this process, on a local port.

    Parameters
    ----------
    config : SimServerConfig, optional
    host : str
    port : int
        ``0`` picks a free one (read it back from :attr:`port` after :meth:`start`).
    ssl_context : ssl.SSLContext, optional
        Serve HTTPS with this context (its certificate and key loaded).

    Examples
    --------
    ::

        async with SimServer(SimServerConfig(latency_mean=0.0)) as server:
            judge = OpenAIJudge(server.url, model=server.config.model)
    """

    def __init__(
        self,
        config: SimServerConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.config = SimServerConfig() if config is None else config
        check.instance("config", self.config, SimServerConfig)
        self.host = host
        self._ssl_context = ssl_context
        self._requested_port = port
        self._port: int | None = None
        self._runner: web.AppRunner | None = None
        self.dead = False
        """While true, ``/health`` answers 503 (vLLM's answer once the engine is dead)."""
        self._judge = self.config.make_judge()
        self._rng = random.Random(self.config.seed)
        self._faults_left = list(self.config.fault_sequence)
        self._prefix_cache: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._running = self._max_running = 0
        self._queue: collections.deque[asyncio.Future[None]] = collections.deque()
        self._ids = itertools.count()
        self._count: collections.Counter[str] = collections.Counter()
        """``requests``, ``completed``, ``rejected``; prefix-cache ``queries``, ``hits``, and
        the prompt ``tokens`` and ``token_hits`` of those."""
        self._faults: dict[str, int] = {k: 0 for k in FAULT_KINDS if k != "ok"}
        self._service_seconds = 0.0
        self._created = int(time.time())
        self._handlers: set[asyncio.Task[Any]] = set()
        self._by_path: collections.Counter[str] = collections.Counter()

    @property
    def port(self) -> int:
        """The bound port (after :meth:`start`)."""
        if self._port is None:
            raise RuntimeError("SimServer is not started; call 'await server.start()' first.")
        return self._port

    @property
    def root_url(self) -> str:
        """``http://HOST:PORT`` (where ``/health`` and ``/metrics`` live)."""
        scheme = "https" if self._ssl_context is not None else "http"
        return f"{scheme}://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """The OpenAI base URL, ``http://HOST:PORT/v1``."""
        return self.root_url + "/v1"

    @property
    def started(self) -> bool:
        """Whether the server is listening."""
        return self._runner is not None

    def make_app(self) -> web.Application:
        """The aiohttp application (routes only; :meth:`start` runs it)."""
        app = web.Application(client_max_size=64 * 1024 * 1024, middlewares=[self._track])
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/health", self._health)
        app.router.add_get("/metrics", self._metrics)
        return app

    async def start(self) -> SimServer:
        """Bind and start listening; returns ``self``.

        Started again after :meth:`stop`, it binds its former port and keeps its counters.
        """
        if self._runner is not None:
            raise RuntimeError(f"SimServer is already running at {self.url}.")
        runner = web.AppRunner(self.make_app(), access_log=None, shutdown_timeout=0.05)
        await runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self._port if self._port is not None else self._requested_port))
            sock.listen(1024)
            sock.setblocking(False)
            site = web.SockSite(runner, sock, backlog=1024, ssl_context=self._ssl_context)
            await site.start()
        except BaseException:
            sock.close()
            await runner.cleanup()
            raise
        self._port = int(sock.getsockname()[1])
        self._runner = runner
        return self

    async def stop(self) -> None:
        """Stop listening and drop every open connection (like killing the process)."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        for task in list(self._handlers):
            task.cancel()
        await runner.cleanup()

    async def __aenter__(self) -> SimServer:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def __repr__(self) -> str:
        where = self.url if self._port is not None else "not started"
        return f"SimServer({where}, model={self.config.model!r}, capacity={self.config.capacity})"

    def stats(self) -> SimServerStats:
        """A snapshot of the server's counters."""
        return SimServerStats(
            requests=self._count["requests"],
            completed=self._count["completed"],
            running=self._running,
            waiting=sum(1 for f in self._queue if not f.done()),
            max_running=self._max_running,
            rejected=self._count["rejected"],
            faults=dict(self._faults),
            prefix_cache_queries=self._count["queries"],
            prefix_cache_hits=self._count["hits"],
            service_seconds=self._service_seconds,
            by_path=dict(sorted(self._by_path.items())),
        )

    def _draw_fault(self) -> str:
        if self._faults_left:
            return self._faults_left.pop(0)
        rates = self.config.fault_rates()
        if not any(rates.values()):
            return "ok"
        k = bisect.bisect_right(list(itertools.accumulate(rates.values())), self._rng.random())
        return list(rates)[k] if k < len(rates) else "ok"

    def _latency(self, hit: bool) -> float:
        cfg, mean = self.config, self.config.latency_mean
        if mean <= 0:
            return 0.0
        if cfg.latency == "constant":
            value = mean
        elif cfg.latency == "exponential":
            value = self._rng.expovariate(1.0 / mean)
        else:
            sigma = cfg.latency_sigma
            value = self._rng.lognormvariate(math.log(mean) - 0.5 * sigma * sigma, sigma)
        return value * (cfg.prefix_hit_latency_factor if hit else 1.0)

    def _prefix_lookup(self, messages: list[dict[str, str]]) -> bool:
        if self.config.prefix_cache_size == 0:
            return False
        history = [m for m in messages if m["role"] in _HISTORY_ROLES]
        tokens = sum(estimate_tokens(m["content"]) + 4 for m in history)
        blob = json.dumps(history, ensure_ascii=False, sort_keys=True).encode()
        key = hashlib.blake2b(blob, digest_size=8).hexdigest()
        cache, hit = self._prefix_cache, key in self._prefix_cache
        self._count.update(queries=1, tokens=tokens, hits=hit, token_hits=tokens * hit)
        if hit:
            cache.move_to_end(key)
            return True
        cache[key] = None
        if len(cache) > self.config.prefix_cache_size:
            cache.popitem(last=False)
        return False

    async def _acquire_slot(self) -> None:
        if self._running < self.config.capacity and not self._queue:
            self._running += 1
        else:
            future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._queue.append(future)
            try:
                await future  # the releasing request hands its slot over (running unchanged)
            except BaseException:
                if future.done() and not future.cancelled():
                    self._release_slot()
                else:
                    future.cancel()
                raise
        self._max_running = max(self._max_running, self._running)

    def _release_slot(self) -> None:
        while self._queue:
            future = self._queue.popleft()
            if not future.done():
                future.set_result(None)
                return
        self._running -= 1

    def _validate(self, body: Any) -> tuple[list[dict[str, str]], int]:
        """The request's messages and ``max_tokens``; :class:`_HttpError` as vLLM refuses."""
        cfg = self.config
        if not isinstance(body, dict):
            raise _HttpError("The request body must be a JSON object.", None)
        model = body.get("model")
        if model != cfg.model:
            raise _HttpError(f"The model `{model}` does not exist.", "model", 404, "NotFoundError")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise _HttpError("Field 'messages' must be a non-empty list of messages.")
        checked: list[dict[str, str]] = []
        for i, m in enumerate(messages):
            if not isinstance(m, dict):
                raise _HttpError(f"messages[{i}] must be an object.")
            role, content = m.get("role"), m.get("content")
            if role not in _MESSAGE_ROLES:
                raise _HttpError(
                    f"messages[{i}] has role {role!r}; this model's chat template accepts "
                    f"{sorted(_MESSAGE_ROLES)}."
                )
            if not isinstance(content, str):
                raise _HttpError(f"messages[{i}].content must be a string.")
            checked.append({"role": role, "content": content})
        roles = [m["role"] for m in checked]
        for needed in ("response_1", "response_2"):
            if roles.count(needed) != 1:
                raise _HttpError(
                    f"A GenRM request needs exactly one '{needed}' message, "
                    f"not {roles.count(needed)}."
                )
        history = [r for r in roles if r in _HISTORY_ROLES]
        if not history or history[-1] != "user":
            raise _HttpError(
                "The conversation history must end with a 'user' turn, "
                f"not {history[-1] if history else 'nothing'!r}."
            )
        max_tokens = body.get("max_tokens", body.get("max_completion_tokens"))
        prompt_tokens = sum(estimate_tokens(m["content"]) + 4 for m in checked)
        if max_tokens is not None:
            if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
                raise _HttpError(
                    f"max_tokens must be at least 1, got {max_tokens!r}.", "max_tokens"
                )
            if max_tokens > cfg.max_model_len:
                raise _HttpError(
                    f"'max_tokens' or 'max_completion_tokens' is too large: {max_tokens}. This "
                    f"model's maximum context length is {cfg.max_model_len} tokens.",
                    "max_tokens",
                )
        if prompt_tokens > cfg.max_model_len:
            raise _HttpError(
                f"This model's maximum context length is {cfg.max_model_len} tokens. However, your "
                f"request has {prompt_tokens} input tokens. Please reduce the length of the input "
                "messages."
            )
        return checked, max_tokens or cfg.max_model_len - prompt_tokens

    @web.middleware
    async def _track(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Count the request by path, and track its task so that :meth:`stop` can cancel it."""
        self._by_path[f"{request.method} {request.path}"] += 1
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        try:
            return await handler(request)
        finally:
            if task is not None:
                self._handlers.discard(task)

    def _authorized(self, request: web.Request) -> bool:
        key = self.config.api_key
        return key is None or request.headers.get("Authorization") == f"Bearer {key}"

    async def _health(self, request: web.Request) -> web.Response:
        return web.Response(status=503 if self.dead else 200)

    async def _models(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.json_response({"error": "Unauthorized"}, status=401)
        card = {
            "id": self.config.model,
            "object": "model",
            "created": self._created,
            "owned_by": "vllm",
            "root": self.config.model,
            "parent": None,
            "max_model_len": self.config.max_model_len,
        }
        return web.json_response({"object": "list", "data": [card]})

    async def _metrics(self, request: web.Request) -> web.Response:
        s, label = self.stats(), f'model_name="{self.config.model}"'
        values = {**asdict(s), **self._count, "seconds": f"{s.service_seconds:.6f}"}
        lines = []
        for name, (key, text) in _METRICS.items():
            kind = "counter" if name.endswith("_total") else "gauge"
            lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
            lines.append(f"{name}{{{label}}} {values.get(key, 0)}")
        lines += [
            "# HELP genrm_sim:faults_injected_total Faults injected, by kind.",
            "# TYPE genrm_sim:faults_injected_total counter",
            *(
                f'genrm_sim:faults_injected_total{{{label},kind="{k}"}} {v}'
                for k, v in s.faults.items()
            ),
        ]
        return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        self._count["requests"] += 1
        if not self._authorized(request):
            self._count["rejected"] += 1
            return web.json_response({"error": "Unauthorized"}, status=401)
        try:
            try:
                body = json.loads(await request.read())
            except ValueError as exc:
                raise _HttpError(f"Invalid JSON body: {exc}", None) from None
            messages, max_tokens = self._validate(body)
        except _HttpError as err:
            self._count["rejected"] += 1
            return err.response
        fault = self._draw_fault()
        if fault in self._faults:
            self._faults[fault] += 1
        if fault in _FAULT_ERRORS:
            if fault == "hang":
                await asyncio.sleep(self.config.hang_seconds)
            retry = {"Retry-After": _retry_after(self.config.retry_after)}
            headers = retry if fault in ("503", "429") else None
            status = _FAULT_ERRORS[fault][0]
            return web.json_response(
                error_body(*_FAULT_ERRORS[fault]), status=status, headers=headers
            )
        if fault == "html":
            page = "<html><head><title>Sign in</title></head><body>Please sign in.</body></html>"
            return web.Response(text=page, content_type="text/html")
        if fault == "drop":
            if request.transport is not None:
                request.transport.abort()
            raise asyncio.CancelledError  # nothing is written on the closed connection
        await self._acquire_slot()
        try:
            delay = self._latency(self._prefix_lookup(messages))
            self._service_seconds += delay
            if delay > 0:
                await asyncio.sleep(delay)
            answer = self._judge.respond_messages(messages)
        finally:
            self._release_slot()
        content, reasoning, finish = answer.content, answer.reasoning, answer.finish_reason
        completion_tokens = answer.usage.completion_tokens
        style = self.config.reasoning_style
        if fault == "unreadable":
            content = "Both responses have merit; I cannot decide on a score."
            if style not in _REASONING_FIELDS:
                content = f"<think>\n{answer.reasoning or ''}\n</think>\n\n{content}"
            finish = "stop"
        if fault == "misparsed":  # a reasoning parser that never finds the end of the reasoning
            whole = (answer.reasoning or "") + "\n</think>\n" + (answer.content or "")
            content, reasoning, finish = None, whole, "stop"
        if fault == "truncated" or completion_tokens > max_tokens:
            text = answer.reasoning or answer.content or ""
            cut = self.config.truncated(text[: max(1, len(text) // 2)])
            content, reasoning, finish = cut.content, cut.reasoning, "length"
            completion_tokens = min(completion_tokens, max_tokens)
        self._count["completed"] += 1
        message: dict[str, Any] = {"role": "assistant", "content": content, "tool_calls": []}
        if style in _REASONING_FIELDS or fault == "misparsed":
            message[style if style in _REASONING_FIELDS else "reasoning"] = reasoning
            if style == "reasoning_content" and self.config.empty_reasoning_field:
                message["reasoning"] = ""
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
        prompt_tokens = answer.usage.prompt_tokens
        payload = {
            "id": f"chatcmpl-{self.port:x}{next(self._ids):012x}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.config.model,
            "choices": [] if fault == "empty_choices" else [{**choice, "stop_reason": None}],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
                "completion_tokens": completion_tokens,
                "prompt_tokens_details": None,
            },
        }
        return web.Response(body=json.dumps(payload).encode(), content_type="application/json")


def _retry_after(seconds: float) -> str:
    """HTTP's whole seconds; a sub-second value (for fast tests) as a decimal, which lenient
    clients (ours among them) read."""
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


class ThreadedSimServers:
    """Several :class:`SimServer` on a background thread's event loop, for synchronous callers:
    ``with ThreadedSimServers([cfg, cfg]) as servers: servers.urls``.

    Parameters
    ----------
    configs : sequence of SimServerConfig
        One server per config.
    host : str
    ports : sequence of int, optional
        Ports to bind (``0``: a free one); by default all free.
    """

    def __init__(
        self,
        configs: Sequence[SimServerConfig],
        *,
        host: str = "127.0.0.1",
        ports: Sequence[int] | None = None,
    ) -> None:
        if len(configs) == 0:
            raise ValueError("Argument 'configs' must hold at least one SimServerConfig, not none.")
        if ports is not None and len(ports) != len(configs):
            raise ValueError(
                f"Argument 'ports' must have one port per config ({len(configs)}), "
                f"not {len(ports)}."
            )
        self.configs = tuple(configs)
        self.host = host
        self._ports = tuple(ports) if ports is not None else (0,) * len(configs)
        self.servers: list[SimServer] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> ThreadedSimServers:
        """Start the loop thread and every server; returns ``self``."""
        if self._thread is not None:
            raise RuntimeError("ThreadedSimServers is already running.")
        self._loop = loop = asyncio.new_event_loop()

        def run() -> None:
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, name="genrm-sim-servers", daemon=True)
        self._thread.start()
        self.servers = [
            SimServer(c, host=self.host, port=p)
            for c, p in zip(self.configs, self._ports, strict=True)
        ]
        try:
            for server in self.servers:
                self._run(server.start())
        except BaseException:
            self.stop()
            raise
        return self

    @property
    def urls(self) -> list[str]:
        """The servers' OpenAI base URLs."""
        return [s.url for s in self.servers]

    def _run(self, work: Coroutine[Any, Any, _T]) -> _T:
        """Run ``work`` on the servers' loop and wait for its result."""
        if self._loop is None:
            work.close()
            raise RuntimeError("ThreadedSimServers is not running.")
        return asyncio.run_coroutine_threadsafe(work, self._loop).result(timeout=30)

    def stop_server(self, index: int) -> None:
        """Stop one server (its port then refuses connections)."""
        self._run(self.servers[index].stop())

    def start_server(self, index: int) -> None:
        """Start a stopped server again, at its former port (a replica coming back)."""
        self._run(self.servers[index].start())

    def stats(self, index: int) -> SimServerStats:
        """One server's counters."""
        return self._run(_stats(self.servers[index]))

    def stop(self) -> None:
        """Stop every server and the loop thread."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        for server in self.servers:
            if server.started:
                self._run(server.stop())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        self._loop = self._thread = None

    def __enter__(self) -> ThreadedSimServers:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


async def _stats(server: SimServer) -> SimServerStats:
    """The server's counters, read on its own loop."""
    return server.stats()


def config_dict(config: SimServerConfig) -> dict[str, Any]:
    """A config as a plain dict (the API key masked), for logs."""
    out = asdict(config)
    if out.get("api_key") is not None:
        out["api_key"] = "***"
    if out.get("qualities") is not None:
        out["qualities"] = f"<{len(out['qualities'])} texts>"
    return out
