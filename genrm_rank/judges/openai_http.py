"""A judge that calls GenRMs served by vLLM (or any OpenAI-compatible server) over HTTP.

:class:`OpenAIJudge` sends each comparison as an OpenAI chat request
(``POST {base}/chat/completions``, custom roles ``principle``/``response_1``/``response_2`` sent
as they are) to one of several endpoints, and reads the answer into a
:class:`~genrm_rank.verdict.Verdict` with :func:`~genrm_rank.parsing.parse_verdict`.

The transport is raw :mod:`aiohttp` with one pooled connector, not the ``openai`` client: at
hundreds of requests in flight the ``openai`` client spends many times aiohttp's CPU on each
request (``benchmarks/README.md``, "HTTP transport: client CPU per request").

A call makes at most one generation: ``Verdict.attempts`` says what it paid (1 for an answer,
or for a failure after which the server may have generated; 0 when no server started on it).
Asking again after a paid failure is the orchestrator's job, the one retry layer, which counts
every re-ask against the budget and the caps. What can go wrong, and what the judge does::

    answer unreadable / ambiguous / out of range / empty / truncated
        -> the failed verdict, with its raw text (attempts = 1); the orchestrator may re-ask
    timeout, HTTP 500 or 504, a connection dropped after the request was sent, a malformed 200
    (an empty ``choices`` included), an answer longer than ``max_response_bytes`` (read no
    further, its connection closed)
        -> ``Verdict.failed("unavailable")`` at once (attempts = 1: the server may have
           generated, so resending is a paid re-ask, not a free retry). A timeout or a
           malformed 200 does not count toward the endpoint's health: under vLLM's unbounded
           queue a slow replica is busy, not broken
    connection refused, 408, 429, 502, 503 (the server started no generation)
        -> resent up to ``max_resends`` times with exponential backoff and full jitter
           (``Retry-After`` honoured), preferably on another endpoint; these resends are free;
           then ``Verdict.failed("unavailable")`` (attempts = 0). Once 16 requests got a 429
           before the judge's first answer, a 429 is not resent until an answer comes (a rate
           limit on every request is not a burst to ride out)
    401, 403, 404 (bad key, wrong model, wrong path: a misconfiguration, not a bad request)
        -> resent for free to another endpoint; the endpoint is left out of rotation, with a
           warning; once every endpoint has answered so, ``judge()`` raises
           :class:`~genrm_rank.errors.JudgeConfigurationError`, quoting the server and
           suggesting the fix (the models the server serves, a missing ``/v1``)
    other 4xx (e.g. vLLM's 400 for a prompt over max-model-len)
        -> ``Verdict.failed("rejected", error=<server message>)`` (attempts = 0), not resent
    an endpoint failing ``failure_threshold`` times in a row
        -> out of rotation, probed on ``GET /health`` every ``health_check_interval`` until 200
    every endpoint out of rotation for longer than ``down_timeout``
        -> ``judge()`` raises :class:`~genrm_rank.errors.EndpointsUnavailableError`, naming each
           endpoint and its last answer (the only exception for a per-request problem)

Before its first chat request the judge checks each endpoint once, with ``GET {base}/models``
and the key: an endpoint that refuses the key (401/403) or does not serve the model is left out
with a warning, and when every endpoint is so, ``judge()`` raises
:class:`~genrm_rank.errors.JudgeConfigurationError` before any chat request is paid. An endpoint
whose ``/models`` does not confirm the model (a gateway without ``/models``) is not refused on
that account: its first chat request goes alone, so a wrong path costs one chat request per
endpoint, not a window of them.

Health comes from ``GET /health`` probes and connection errors (and 5xx answers), never from
how long a generation took. Proxies (``HTTP(S)_PROXY``, ``NO_PROXY``), ``~/.netrc``
credentials and CA bundles (``SSL_CERT_FILE``, ``SSL_CERT_DIR``) are read from the environment
when the judge is opened (once: aiohttp's ``trust_env`` would look the first two up again in a
worker thread on every request, two thread hops a comparison); TLS certificates are verified
unless ``verify_tls=False`` is passed.

Routing is :class:`~genrm_rank.judges.routing.EndpointPool`: prefix affinity (all comparisons
of one prompt to one replica, for vLLM's prefix cache) with spill-over to the least loaded
replica, a per-endpoint in-flight limit and an optional requests-per-second limit.

The judge creates no asyncio object before it is used; it binds to the running loop when
opened (``async with judge`` or the first ``judge()``), and is closed with ``aclose()``. Sleeping
and the clock are injectable so that backoff and health probing run on a fake clock in tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import json
import logging
import os
import random
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.helpers import basicauth_from_netrc, get_env_proxy_for_url, netrc_from_env
from yarl import URL

from genrm_rank import validate as check
from genrm_rank.errors import ArgumentError, EndpointsUnavailableError, JudgeConfigurationError
from genrm_rank.judges.base import PairRequest
from genrm_rank.judges.routing import (
    EndpointPool,
    EndpointStats,
    NoHealthyEndpointError,
    RoutingPolicy,
)
from genrm_rank.parsing import parse_verdict
from genrm_rank.redaction import redact, redact_url
from genrm_rank.verdict import FailureKind, Usage, Verdict

__all__ = ["MAX_RESPONSE_BYTES", "OpenAIJudge", "check_endpoints"]

logger = logging.getLogger(__name__)

_UNPAID_STATUSES = frozenset({408, 429, 502, 503})
"""Statuses that say no generation was started: resent for free."""
_PAID_STATUSES = frozenset({500, 504})
"""Server errors after which a generation may have run: a paid failure, not resent here."""
_CONFIG_STATUSES = frozenset({401, 403, 404})
"""Statuses that say the run is misconfigured (key, model, path): every request would get them."""
_ERROR_TEXT_LIMIT = 500
MAX_RESPONSE_BYTES = 8 * 2**20
"""Default longest answer body read (8 MiB): a GenRM answer of 24,576 tokens of reasoning is a
few hundred KB; a longer body (a broken proxy, a server streaming garbage) is not read whole."""
_CHUNK = 64 * 1024
_BODY_WORDS_LIMIT = 120
"""Bytes of a malformed 200's body quoted in its failure (a proxy's HTML page, say)."""
_STARTUP_429_LIMIT = 16
"""429s before the judge's first answer after which a 429 is no longer resent: every request
of a run refused so is a spent quota or a limit below the run's rate, and resending it only
multiplies the requests paid before the run stops."""

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]


class _State(enum.Enum):
    UNOPENED = "unopened"
    OPEN = "open"
    CLOSED = "closed"


class _Secret:
    """Holds the API key; prints as ``***`` wherever it ends up."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "'***'"

    __str__ = __repr__


@dataclass(frozen=True)
class _Answer:
    content: str | None
    reasoning: str | None
    finish_reason: str | None
    usage: Usage | None
    usage_refused: bool = False
    """The server reported usage no call can have: read as unknown (``usage`` is None)."""


@dataclass(frozen=True)
class _Failure:
    detail: str
    retryable: bool
    counts_toward_health: bool = True
    retry_after: float | None = None
    paid: bool = False
    """The server may have generated before failing: resending would be a paid re-ask."""
    refused: bool = False
    """A refusal of the run itself (401/403/404, an unverified TLS certificate)."""
    hint: str | None = None


def _resolve_api_key(
    api_key: str | None, api_key_env: str | None, api_key_file: str | os.PathLike[str] | None
) -> str | None:
    if api_key is not None:
        if not isinstance(api_key, str) or not api_key:
            raise ArgumentError("api_key", "must be a non-empty string or None (value not shown).")
        return api_key
    if api_key_file is not None:
        path = Path(api_key_file)
        try:
            key = path.read_text().strip()
        except OSError as exc:
            raise ArgumentError(
                "api_key_file", f"could not be read: {path} ({exc.strerror})."
            ) from None
        if not key:
            raise ArgumentError("api_key_file", f"names an empty file: {path}.")
        return key
    if api_key_env:
        return os.environ.get(api_key_env) or None
    return None


def check_endpoints(endpoints: str | Sequence[str]) -> tuple[str, ...]:
    """The endpoint base URLs, checked: http(s), no credentials; a trailing ``/`` removed.

    A URL is never echoed with its ``user:password@`` (:func:`~genrm_rank.redaction.redact_url`):
    endpoint URLs appear in errors, logs and cached verdicts.
    """
    urls = [endpoints] if isinstance(endpoints, str) else list(endpoints)
    if not urls:
        raise ArgumentError("endpoints", "must name at least one URL, not an empty list.")
    for i, url in enumerate(urls):
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            shown = redact_url(url) if isinstance(url, str) else url
            raise ArgumentError(f"endpoints[{i}]", f"must be an http(s) URL, not {shown!r}.")
        if "@" in url.split("//", 1)[1].split("/", 1)[0]:
            raise ArgumentError(
                f"endpoints[{i}]",
                "holds credentials ({url}); pass the key with {env} or {file} instead.",
                url=redact_url(url),
                env=ArgumentError.Setting("api_key_env"),
                file=ArgumentError.Setting("api_key_file"),
            )
    return tuple(u.rstrip("/") for u in urls)


def _environment_route(url: str) -> dict[str, Any]:
    """The proxy and ``~/.netrc`` credentials that ``trust_env=True`` gives ``url``, as
    keyword arguments of an aiohttp request (empty when the environment sets neither)."""
    target = URL(url)
    route: dict[str, Any] = {}
    with contextlib.suppress(LookupError):
        route["proxy"], route["proxy_auth"] = get_env_proxy_for_url(target)
    if target.host is not None:
        with contextlib.suppress(LookupError):
            route["auth"] = basicauth_from_netrc(netrc_from_env(), target.host)
    return route


def _health_url(base: str) -> str:
    root = base[: -len("/v1")] if base.endswith("/v1") else base
    return root + "/health"


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("Retry-After")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None  # an HTTP date: rare from inference servers; fall back to backoff
    return seconds if seconds >= 0 else None


def _error_message(status: int, raw: bytes) -> str:
    text = raw.decode("utf-8", "replace")
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            text = err["message"]
        elif isinstance(err, str):
            text = err
        elif isinstance(body.get("message"), str):  # older vLLM: flat {"object": "error", ...}
            text = body["message"]
    text = text.strip()
    if len(text) > _ERROR_TEXT_LIMIT:
        text = text[:_ERROR_TEXT_LIMIT] + "..."
    return f"HTTP {status}: {text}" if text else f"HTTP {status}"


class _EmptyChoicesError(ValueError):
    """A 200 whose ``choices`` is empty: the server answered, with nothing in it."""


def _reasoning_field(message: Mapping[str, Any]) -> str | None:
    """``reasoning`` or ``reasoning_content``: the first that holds text, so an empty one never
    hides the other; ``""`` when a field is there but empty, ``None`` when neither is a string."""
    fields = [message.get(name) for name in ("reasoning", "reasoning_content")]
    texts = [f for f in fields if isinstance(f, str)]
    for text in texts:
        if text.strip():
            return text
    return texts[0] if texts else None


_MAX_TOKENS_REPORTED = 2**40
"""More tokens than one call can use; a larger count is not a count (e.g. ``1e308``)."""


def _token_count(value: object) -> int | None:
    """A reported token count, or ``None`` when it is no possible count (negative, fractional,
    a bool, a string, absurdly large)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and 0 <= value <= _MAX_TOKENS_REPORTED:
        return value
    return None


def _read_usage(body: object) -> tuple[Usage | None, bool]:
    """The server's ``usage`` and whether it was refused: ``None`` (unknown, so not summed)
    when it is absent or holds a count no call can have (a negative, fractional or absurd
    number, a bool, a string)."""
    if not isinstance(body, dict):
        return None, False
    counts = [body.get(name) for name in ("prompt_tokens", "completion_tokens")]
    checked = [0 if value is None else _token_count(value) for value in counts]
    if any(count is None for count in checked):
        return None, True
    return Usage(checked[0] or 0, checked[1] or 0), False


def _read_answer(raw: bytes) -> _Answer:
    body = json.loads(raw)
    choices = body["choices"]
    if not choices:
        raise _EmptyChoicesError("'choices' is empty")
    choice = choices[0]
    message = choice.get("message") or {}
    content = message.get("content")
    reasoning = _reasoning_field(message)
    usage, refused = _read_usage(body.get("usage"))
    if content is not None and not isinstance(content, str):
        raise TypeError(f"message.content is {type(content).__name__}, not a string")
    return _Answer(content, reasoning, choice.get("finish_reason"), usage, refused)


class OpenAIJudge:
    """Judge pairs with a GenRM behind one or more OpenAI-compatible (vLLM) endpoints.

    Parameters
    ----------
    endpoints : str or sequence of str
        Base URLs, e.g. ``"http://127.0.0.1:8000/v1"``. Each is a replica of the same model.
    model : str
        The served model name sent in every request.
    api_key : str, optional
        Bearer token. Default: read from ``api_key_file``, else from the environment variable
        ``api_key_env``; no key sends no ``Authorization`` header. Never logged or shown in
        ``repr``.
    api_key_env : str, optional
        Environment variable holding the key (``"GENRM_API_KEY"``).
    api_key_file : path, optional
        File holding the key (surrounding whitespace removed).
    temperature, top_p, max_tokens : float, float, int
        Sampling parameters (the model card's ``1.0, 0.95, 24576`` by default).
    extra_body : mapping, optional
        Merged at the top level of every request body (``top_k``, ``chat_template_kwargs``,
        ``structured_outputs``, ...); its keys override the sampling parameters above.
    timeout : float
        Seconds allowed for one HTTP request (connection to last byte).
    max_in_flight_per_endpoint : int
        Requests outstanding per endpoint at most (match vLLM's ``--max-num-seqs`` or a
        multiple of it); further requests wait.
    requests_per_second : float, optional
        Cap on the request rate over all endpoints (:class:`aiolimiter.AsyncLimiter`).
    max_resends : int
        Free resends of one call that no server started (connection refused, 408, 429, 502,
        503). A failure after which the server may have generated is not resent here: it comes
        back as ``unavailable`` with ``attempts == 1``, for the orchestrator to re-ask (paid).
    template_token_allowance : int
        Tokens allowed for the chat template's own text in :meth:`call_token_bound`.
    backoff_base, backoff_max : float
        Resend ``k`` (0-based) waits ``uniform(0, min(backoff_max, backoff_base * 2**k))`` seconds
        (full jitter), and at least the server's ``Retry-After``.
    health_check_interval : float
        Seconds between ``GET /health`` probes of an endpoint out of rotation.
    seed : int, optional
        Seeds the backoff jitter (and the ``"random"`` routing policy).
    routing : {"affinity", "least_loaded", "random"}
        Routing policy (:class:`~genrm_rank.judges.routing.EndpointPool`).
    spill_factor, spill_offset : float
        Prefix affinity gives way when ``load[preferred] > spill_factor * least + spill_offset``.
    failure_threshold : int
        Consecutive failures that take an endpoint out of rotation.
    down_timeout : float, optional
        How long every endpoint may be out of rotation before ``judge()`` raises
        :class:`~genrm_rank.errors.EndpointsUnavailableError`. Default: the retry budget,
        ``sum(min(backoff_max, backoff_base * 2**k) for k < max_resends)``, and at least two
        health-check intervals.
    thinking : bool, optional
        Whether the model thinks before it answers (every GenRM does): see
        :func:`~genrm_rank.parsing.parse_verdict`. Default: ``True``, unless ``extra_body``
        turns thinking off (``{"chat_template_kwargs": {"enable_thinking": False}}``).
    verify_tls : bool
        Verify the server's TLS certificate against the CA bundle (the system's, or
        ``SSL_CERT_FILE``/``SSL_CERT_DIR``). Turning it off must be asked for.
    max_response_bytes : int
        Longest answer body read (:data:`MAX_RESPONSE_BYTES`, 8 MiB, by default). A longer one
        is read no further: the call is a failed verdict (``unavailable``, paid, saying so), so
        a server streaming gigabytes costs the run one call, not its memory.
    sleep, clock : callable, optional
        ``await sleep(seconds)`` and ``clock() -> seconds`` used for backoff, probing and the
        down deadline (``asyncio.sleep`` and ``time.monotonic`` by default); tests pass a fake
        clock.

    Examples
    --------
    ::

        async with OpenAIJudge("http://127.0.0.1:8000/v1", model="genrm") as judge:
            verdict = await judge.judge(PairRequest("2+2?", "4", "5"))
    """

    def __init__(
        self,
        endpoints: str | Sequence[str],
        *,
        model: str,
        api_key: str | None = None,
        api_key_env: str | None = "GENRM_API_KEY",
        api_key_file: str | os.PathLike[str] | None = None,
        temperature: float = 1.0,
        top_p: float = 0.95,
        max_tokens: int = 24576,
        extra_body: Mapping[str, Any] | None = None,
        timeout: float = 600.0,
        max_in_flight_per_endpoint: int = 64,
        requests_per_second: float | None = None,
        max_resends: int = 5,
        template_token_allowance: int = 4096,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        health_check_interval: float = 5.0,
        seed: int | None = None,
        routing: RoutingPolicy = "affinity",
        spill_factor: float = 2.0,
        spill_offset: float = 10.0,
        failure_threshold: int = 3,
        down_timeout: float | None = None,
        thinking: bool | None = None,
        verify_tls: bool = True,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
        sleep: Sleep | None = None,
        clock: Clock | None = None,
    ) -> None:
        urls = list(check_endpoints(endpoints))
        check.text("model", model)
        check.count("max_tokens", max_tokens, 1)
        check.positive("timeout", timeout)
        self.max_response_bytes = check.count("max_response_bytes", max_response_bytes, 1)
        check.count("max_resends", max_resends, 0)
        check.count("template_token_allowance", template_token_allowance, 0)
        check.at_least("backoff_base", backoff_base, 0)
        check.at_least("backoff_max", backoff_max, 0)
        check.positive("health_check_interval", health_check_interval)
        check.at_least("down_timeout", down_timeout, 0, optional=True)
        check.mapping("extra_body", extra_body, optional=True)
        for name, flag in (("thinking", thinking), ("verify_tls", verify_tls)):
            if flag is not None and not isinstance(flag, bool):
                raise TypeError(f"Argument '{name}' must be a bool, not {type(flag).__name__}.")
        self.endpoints: tuple[str, ...] = tuple(urls)
        self.model = model
        self.temperature = float(temperature)
        self.top_p = float(top_p)
        self.max_tokens = max_tokens
        self.extra_body: dict[str, Any] = dict(extra_body or {})
        kwargs = self.extra_body.get("chat_template_kwargs")
        thinking_off = isinstance(kwargs, Mapping) and (
            kwargs.get("enable_thinking") is False or kwargs.get("thinking") is False
        )
        self.thinking: bool = (not thinking_off) if thinking is None else thinking
        self.verify_tls = verify_tls
        self.timeout = float(timeout)
        self.max_resends = max_resends
        self.template_token_allowance = template_token_allowance
        self.backoff_base = float(backoff_base)
        self.backoff_max = float(backoff_max)
        self.health_check_interval = float(health_check_interval)
        if down_timeout is None:
            budget = sum(
                min(self.backoff_max, self.backoff_base * 2**k) for k in range(max_resends)
            )
            down_timeout = max(budget, 2 * self.health_check_interval)
        self.down_timeout = float(down_timeout)
        self._pool = EndpointPool(
            self.endpoints,
            max_in_flight_per_endpoint=max_in_flight_per_endpoint,
            requests_per_second=requests_per_second,
            policy=routing,
            spill_factor=spill_factor,
            spill_offset=spill_offset,
            failure_threshold=failure_threshold,
            seed=seed,
        )
        key = _resolve_api_key(api_key, api_key_env, api_key_file)
        self._api_key = _Secret(key) if key is not None else None
        self._chat_urls = [u + "/chat/completions" for u in self.endpoints]
        self._health_urls = [_health_url(u) for u in self.endpoints]
        self._rng = random.Random(seed)
        self._sleep: Sleep = sleep if sleep is not None else asyncio.sleep
        self._clock: Clock = clock if clock is not None else time.monotonic
        self._state = _State.UNOPENED
        self._session: aiohttp.ClientSession | None = None
        self._routes: dict[str, dict[str, Any]] = {}
        self._session_loop: asyncio.AbstractEventLoop | None = None
        self._probes: dict[int, asyncio.Task[None]] = {}
        self._probe_detail: dict[int, str] = {}
        self._all_down_since: float | None = None
        self._recovery: asyncio.Task[bool] | None = None
        self._refusals: dict[int, _Failure] = {}
        self._faults: dict[str, int] = {}
        self._diagnosis: str | None = None
        self._preflight: asyncio.Task[None] | None = None
        self._confirmed = [False] * len(self.endpoints)
        """Endpoints known to take the run's requests (their ``/models`` lists the model, or a
        chat request got an answer that is not a refusal); another endpoint's first chat request
        goes alone."""
        self._first_calls: dict[int, asyncio.Lock] = {}
        self._answered = False
        """Whether any chat request has been answered (200 with an answer)."""
        self._unanswered_429 = 0

    # -- lifecycle -----------------------------------------------------------------------------

    def __repr__(self) -> str:
        return (
            f"OpenAIJudge(endpoints={list(self.endpoints)!r}, model={self.model!r}, "
            f"api_key={'set' if self._api_key is not None else 'none'}, state={self._state.value})"
        )

    @property
    def is_closed(self) -> bool:
        """Whether :meth:`aclose` was called."""
        return self._state is _State.CLOSED

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key is not None:
            headers["Authorization"] = f"Bearer {self._api_key.reveal()}"
        return headers

    def _open(self) -> aiohttp.ClientSession:
        if self._state is _State.CLOSED:
            raise RuntimeError("This OpenAIJudge is closed; create a new one.")
        loop = asyncio.get_running_loop()
        if self._session is not None and self._session_loop is not loop:
            # Opened on another event loop (e.g. an earlier asyncio.run): that pool cannot serve
            # this loop, so start a fresh one. Sync callers avoid this via aclose_connections().
            self._session = None
            self._probes.clear()
            self._recovery = None
            self._first_calls.clear()
            if self._preflight is not None and not self._preflight.done():
                self._preflight = None
        if self._session is None:
            per_endpoint = self._pool.max_in_flight_per_endpoint
            # A fresh context reads SSL_CERT_FILE / SSL_CERT_DIR now, not at import time.
            tls: ssl.SSLContext | bool = ssl.create_default_context() if self.verify_tls else False
            connector = aiohttp.TCPConnector(
                ssl=tls,
                limit=len(self.endpoints) * (per_endpoint + 1),
                limit_per_host=per_endpoint + 1,  # +1: a health probe never waits behind requests
                keepalive_timeout=75.0,
                enable_cleanup_closed=False,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                headers=self._headers(),
                auto_decompress=True,
                trust_env=False,  # looked up once here instead (see the module docstring)
            )
            models = (base + "/models" for base in self.endpoints)  # the check before calls
            self._routes = {
                url: _environment_route(url)
                for url in (*self._chat_urls, *self._health_urls, *models)
            }
            self._session_loop = loop
            self._state = _State.OPEN
        return self._session

    async def __aenter__(self) -> OpenAIJudge:
        self._open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop health probes and close the connection pool. Idempotent."""
        self._state = _State.CLOSED
        await self._close_connections()

    async def aclose_connections(self) -> None:
        """Close the connection pool and probes but stay usable: the next call reopens them.

        The sync wrappers (:func:`~genrm_rank.select_best` and friends) call this before their
        event loop ends, so one judge can serve many sync calls.
        """
        await self._close_connections()
        if self._state is _State.OPEN:
            self._state = _State.UNOPENED

    async def _close_connections(self) -> None:
        probes: list[asyncio.Task[Any]] = list(self._probes.values())
        self._probes.clear()
        if self._recovery is not None:
            probes.append(self._recovery)
            self._recovery = None
        if self._preflight is not None and not self._preflight.done():
            probes.append(self._preflight)
            self._preflight = None  # cut short: checked again on the next use
        for task in probes:
            task.cancel()
        if probes:
            await asyncio.gather(*probes, return_exceptions=True)
        self._first_calls.clear()
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    # -- observation ---------------------------------------------------------------------------

    @property
    def stats(self) -> dict[str, EndpointStats]:
        """Per-endpoint counters by URL: requests, in_flight, failures, retries, healthy,
        affinity_hits, spills, last_error."""
        return self._pool.stats()

    @property
    def faults(self) -> dict[str, int]:
        """Failed HTTP attempts so far, by kind (sorted), each retried or reported.

        Kinds: ``http_<status>`` (an error status, e.g. ``http_503``), ``timeout``,
        ``connection_refused`` (never reached a server), ``connection_dropped`` (cut off after
        the request was sent), ``empty_choices`` and ``malformed_response`` (a 200 without a
        readable answer), ``oversized_answer`` (longer than ``max_response_bytes``), and
        ``impossible_usage`` (an answer that was read, with usage figures no call can have,
        read as unknown). Refusals of the run itself (401/403/404) are not faults: they raise
        :class:`~genrm_rank.errors.JudgeConfigurationError`. Answers that came back but hold
        no usable verdict (unreadable, truncated) are failed verdicts, counted by the
        orchestrator's ``JudgeStatistics.failures``.
        """
        return dict(sorted(self._faults.items()))

    def _count_fault(self, failure: _Failure) -> None:
        detail = failure.detail
        if detail.startswith("HTTP "):
            kind = "http_" + detail[5:8]
        elif detail.startswith("timed out"):
            kind = "timeout"
        elif detail.startswith("answer longer than"):
            kind = "oversized_answer"
        elif detail.startswith("malformed response"):
            kind = "empty_choices" if "_EmptyChoicesError" in detail else "malformed_response"
        elif detail.startswith("ClientConnectorError"):
            kind = "connection_refused"
        else:
            kind = "connection_dropped"
        self._faults[kind] = self._faults.get(kind, 0) + 1

    # -- judging -------------------------------------------------------------------------------

    def _payload(self, request: PairRequest) -> bytes:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": request.messages(),
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
        }
        if self.extra_body:
            body.update(self.extra_body)
        return json.dumps(body, ensure_ascii=False).encode()

    async def judge(self, request: PairRequest) -> Verdict:
        """Judge ``request`` (slot 1 vs slot 2).

        Returns a :class:`~genrm_rank.verdict.Verdict`, failed (``rejected``, ``unavailable``,
        or the parse failure of the answer: one call, one generation) rather than raising for a
        per-request problem. Raises :class:`~genrm_rank.errors.EndpointsUnavailableError` only
        when every endpoint has been out of rotation for longer than ``down_timeout``.
        """
        check.instance("request", request, PairRequest)
        session = self._open()
        await self._check_endpoints(session)
        result = await self._call(session, request.prefix_key(), self._payload(request))
        if isinstance(result, Verdict):  # rejected / unavailable: no answer obtained
            return result
        return parse_verdict(
            result.content,
            result.reasoning,
            result.finish_reason,
            usage=result.usage,
            thinking=self.thinking,
        )

    def call_token_bound(self, request: PairRequest) -> int:
        """Most tokens one call of ``request`` can use: prompt plus generation limit.

        The prompt is bounded by the UTF-8 bytes of its messages (a byte-level BPE token is at
        least one byte) plus :attr:`template_token_allowance` for the chat template's own text.
        The orchestrator reserves this much for a call in flight under a run-wide token cap.
        """
        content = sum(len(m["content"].encode()) + 8 for m in request.messages())
        return content + self.template_token_allowance + self.max_tokens

    async def judge_batch(self, requests: Sequence[PairRequest]) -> list[Verdict]:
        """Judge many requests concurrently (routing and limits shared); results in order.

        If :class:`~genrm_rank.errors.EndpointsUnavailableError` is raised, the requests still
        running are cancelled.
        """
        tasks = [asyncio.ensure_future(self.judge(r)) for r in requests]
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    # -- one call, with retries ----------------------------------------------------------------

    def _backoff(self, retry: int, retry_after: float | None) -> float:
        ceiling = min(self.backoff_max, self.backoff_base * (2.0**retry))
        delay = self._rng.uniform(0.0, ceiling) if ceiling > 0 else 0.0
        if retry_after is not None:
            delay = max(delay, retry_after)
        return delay

    async def _call(
        self, session: aiohttp.ClientSession, key: str, payload: bytes
    ) -> _Answer | Verdict:
        exclude = frozenset(self._refusals)  # an endpoint that refused the run is left out
        detail = "no attempt made"
        attempt = 0
        while attempt <= self.max_resends:
            index = await self._acquire(key, exclude, retry=attempt > 0)
            try:
                outcome = self._scrub(await self._post_checked(session, index, payload))
            finally:
                self._pool.release(index)
            if isinstance(outcome, _Answer):
                self._pool.record_success(index)
                if outcome.usage_refused:
                    self._faults["impossible_usage"] = self._faults.get("impossible_usage", 0) + 1
                    if self._faults["impossible_usage"] == 1:
                        logger.warning(
                            "%s reports token usage no call can have (negative, fractional, "
                            "absurd or not a number): read as unknown, not summed (counted in "
                            "faults as impossible_usage)",
                            self.endpoints[index],
                        )
                self._answered = True
                return outcome
            detail = f"{self.endpoints[index]}: {outcome.detail}"
            if not outcome.refused:
                self._count_fault(outcome)
            if outcome.refused:
                self._pool.record_success(index)  # the server is up; it refuses this run
                if index not in self._refusals:
                    self._refusals[index] = outcome
                    if len(self._refusals) < len(self.endpoints):
                        await self._warn_refusal(session, index, outcome)
                if len(self._refusals) == len(self.endpoints):
                    raise JudgeConfigurationError(await self._configuration_message(session))
                exclude = frozenset(self._refusals)  # try an endpoint that has not refused
                continue  # free: no generation ran, and at most one refusal per endpoint
            if not outcome.retryable:
                self._pool.record_success(index)  # the server is up; it refused this request
                return Verdict.failed(FailureKind.REJECTED, error=detail, attempts=0)
            if self._pool.record_failure(
                index, outcome.detail, counts_toward_health=outcome.counts_toward_health
            ):
                logger.warning(
                    "endpoint %s out of rotation after: %s", self.endpoints[index], outcome.detail
                )
                self._start_probe(index)
            if outcome.paid:
                return Verdict.failed(FailureKind.UNAVAILABLE, error=detail, attempts=1)
            if not self._answered and outcome.detail.startswith("HTTP 429"):
                self._unanswered_429 += 1
                if self._unanswered_429 >= _STARTUP_429_LIMIT:
                    # Nothing has ever been answered: a rate limit on every request (a quota
                    # spent, a limit below one request), not a burst to ride out.
                    return Verdict.failed(
                        FailureKind.UNAVAILABLE,
                        error=f"no answer after {attempt + 1} tries, and {self._unanswered_429} "
                        f"429s before any answer; last: {detail}",
                        attempts=0,
                    )
            exclude = frozenset({index}) | frozenset(self._refusals)
            if attempt < self.max_resends:
                await self._sleep(self._backoff(attempt, outcome.retry_after))
            attempt += 1
        return Verdict.failed(
            FailureKind.UNAVAILABLE,
            error=f"no answer after {self.max_resends + 1} tries; last: {detail}",
            attempts=0,
        )

    def _redact(self, text: str) -> str:
        """Server text as the library keeps it: without the API key a server may echo back (in
        an error body or an answer) and without URL credentials (a proxy's, in an error)."""
        return redact(text, self._api_key.reveal() if self._api_key is not None else None)

    def _scrub(self, outcome: _Answer | _Failure) -> _Answer | _Failure:
        """:meth:`_redact` on every text of an answer or failure, as it comes from the server."""
        if isinstance(outcome, _Failure):
            return dataclasses.replace(outcome, detail=self._redact(outcome.detail))
        return dataclasses.replace(
            outcome,
            content=None if outcome.content is None else self._redact(outcome.content),
            reasoning=None if outcome.reasoning is None else self._redact(outcome.reasoning),
        )

    async def _post_checked(
        self, session: aiohttp.ClientSession, index: int, payload: bytes
    ) -> _Answer | _Failure:
        """:meth:`_post`; the first chat request of an endpoint not yet confirmed goes alone,
        so that a wrong path or model costs one request per endpoint."""
        if self._confirmed[index]:
            return await self._post(session, index, payload)
        lock = self._first_calls.setdefault(index, asyncio.Lock())
        async with lock:
            refusal = self._refusals.get(index)
            if refusal is not None:
                return refusal  # refused while this request waited: not sent
            outcome = await self._post(session, index, payload)
            if not (isinstance(outcome, _Failure) and outcome.refused):
                self._confirmed[index] = True
            return outcome

    async def _post(
        self, session: aiohttp.ClientSession, index: int, payload: bytes
    ) -> _Answer | _Failure:
        try:
            url = self._chat_urls[index]
            async with session.post(url, data=payload, **self._routes[url]) as response:
                status = response.status
                raw = await self._read_body(response)
                if raw is None:
                    return _Failure(
                        f"answer longer than max_response_bytes={self.max_response_bytes} "
                        f"(HTTP {status}); not read further",
                        retryable=True,
                        counts_toward_health=False,
                        paid=True,
                    )
                if status == 200:
                    try:
                        return _read_answer(raw)
                    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
                        # The server is up and answered: a per-request failure, not ill health.
                        begins = raw[:_BODY_WORDS_LIMIT].decode("utf-8", "replace")
                        return _Failure(
                            f"malformed response ({type(exc).__name__}: {exc}); the body "
                            f"began: {begins!r}",
                            retryable=True,
                            counts_toward_health=False,
                            paid=True,
                        )
                message = _error_message(status, raw)
                retry_after = _retry_after(response.headers)
                if status in _CONFIG_STATUSES:
                    return _Failure(message, retryable=False, refused=True)
                if status == 429:
                    return _Failure(message, True, False, retry_after)
                if status in _UNPAID_STATUSES:
                    return _Failure(message, True, True, retry_after)
                if status in _PAID_STATUSES or status >= 500:
                    return _Failure(message, True, True, retry_after, paid=True)
                return _Failure(message, retryable=False)
        except asyncio.TimeoutError:
            # Under vLLM's unbounded queue a slow answer means a busy replica, not a broken one:
            # health is left to /health probes and connection errors.
            return _Failure(
                f"timed out after {self.timeout:g} s",
                retryable=True,
                counts_toward_health=False,
                paid=True,
            )
        except (aiohttp.ClientConnectorCertificateError, aiohttp.ClientSSLError) as exc:
            return _Failure(
                f"TLS: {exc}",
                retryable=False,
                refused=True,
                hint="the server's certificate could not be verified: give its CA bundle in "
                "the environment variable SSL_CERT_FILE, or pass verify_tls=False to turn "
                "verification off",
            )
        except aiohttp.ClientConnectorError as exc:  # never reached the server: free to resend
            return _Failure(f"{type(exc).__name__}: {exc}", retryable=True)
        except (aiohttp.ClientError, OSError) as exc:  # dropped after the request was sent
            return _Failure(
                f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__,
                retryable=True,
                paid=True,
            )

    async def _read_body(self, response: aiohttp.ClientResponse) -> bytes | None:
        """The body, or ``None`` once it is longer than :attr:`max_response_bytes` (then the
        connection is closed rather than drained)."""
        limit = self.max_response_bytes
        if response.content_length is not None and response.content_length > limit:
            response.close()
            return None
        body = bytearray()
        async for chunk in response.content.iter_chunked(_CHUNK):
            body += chunk
            if len(body) > limit:
                response.close()
                return None
        return bytes(body)

    # -- misconfiguration -----------------------------------------------------------------------

    async def _get(self, session: aiohttp.ClientSession, url: str) -> tuple[int, bytes]:
        """``GET url`` -> (status, body); status 0 when no answer came."""
        try:
            route = self._routes[url] if url in self._routes else _environment_route(url)
            timeout = aiohttp.ClientTimeout(total=10.0)
            async with session.get(url, timeout=timeout, **route) as response:
                raw = await self._read_body(response)
                return response.status, b"" if raw is None else raw
        except (asyncio.TimeoutError, aiohttp.ClientError, OSError):
            return 0, b""

    def _model_list(self, status: int, raw: bytes) -> list[str] | None:
        """The model ids of a ``GET /models`` answer; ``None`` when it is not a model list."""
        try:
            body = json.loads(raw) if status == 200 else None
        except ValueError:
            return None
        if not isinstance(body, dict) or not isinstance(body.get("data"), list):
            return None
        return [
            self._redact(str(m["id"])) for m in body["data"] if isinstance(m, dict) and "id" in m
        ]

    async def _served_models(self, session: aiohttp.ClientSession, base: str) -> list[str] | None:
        return self._model_list(*await self._get(session, base + "/models"))

    async def _check_endpoints(self, session: aiohttp.ClientSession) -> None:
        """Check every endpoint once before the first chat request (shared by every caller)."""
        task = self._preflight
        if task is None:
            task = self._preflight = asyncio.get_running_loop().create_task(
                self._check_models(session)
            )
        await asyncio.shield(task)

    async def _check_models(self, session: aiohttp.ClientSession) -> None:
        """``GET {base}/models`` with the key, once per endpoint: refuse the endpoints that
        refuse the key or do not serve the model; raise when every endpoint does."""
        answers = await asyncio.gather(*(self._get(session, b + "/models") for b in self.endpoints))
        served = [self._model_list(status, raw) for status, raw in answers]
        listed = any(models is not None and self.model in models for models in served)
        for index, ((status, raw), models) in enumerate(zip(answers, served, strict=True)):
            base = self.endpoints[index]
            if models is not None and self.model in models:
                self._confirmed[index] = True
            elif status in (401, 403):
                words = _error_message(status, raw)
                self._refusals[index] = _Failure(
                    f"{words} (GET /models)", retryable=False, refused=True
                )
            elif models is not None:
                self._refusals[index] = _Failure(
                    f"model {self.model!r} is not served (GET /models)",
                    retryable=False,
                    refused=True,
                    hint=f"argument 'model' is {self.model!r}; the server serves {models}",
                )
            elif status == 404 and listed:
                # The other replicas list the model: this base URL is the wrong path.
                self._refusals[index] = _Failure(
                    f"{_error_message(status, raw)} (GET /models; the other endpoints list the "
                    "model)",
                    retryable=False,
                    refused=True,
                )
            elif status != 0:
                logger.warning(
                    "endpoint %s: GET /models answered %s without a model list; the key and the "
                    "model are checked by the first request instead",
                    base,
                    _error_message(status, raw),
                )
        if len(self._refusals) == len(self.endpoints):
            raise JudgeConfigurationError(await self._configuration_message(session))
        for index, failure in sorted(self._refusals.items()):
            await self._warn_refusal(session, index, failure)

    async def _warn_refusal(
        self, session: aiohttp.ClientSession, index: int, failure: _Failure
    ) -> None:
        """Say that one endpoint refuses the run and is left out (the others carry on)."""
        hint = await self._hint(session, index, failure)
        logger.warning(
            "endpoint %s refuses the run and is left out: %s (hint: %s)",
            self.endpoints[index],
            failure.detail,
            hint,
        )

    async def _hint(self, session: aiohttp.ClientSession, index: int, failure: _Failure) -> str:
        base = self.endpoints[index]
        if failure.hint is not None:
            return failure.hint
        if failure.detail.startswith(("HTTP 401", "HTTP 403")):
            if self._api_key is None:
                return (
                    "no API key was sent: give it with argument 'api_key_env' (an environment "
                    "variable) or argument 'api_key_file'"
                )
            return (
                "the API key sent was refused: check the key given by argument 'api_key_env' or "
                "argument 'api_key_file'"
            )
        served = await self._served_models(session, base)
        if served is not None:
            if self.model not in served:
                return f"argument 'model' is {self.model!r}; the server serves {served}"
            return (
                f"the server serves model {self.model!r} but {base}/chat/completions is not found"
            )
        if not base.endswith("/v1"):
            if await self._served_models(session, base + "/v1") is not None:
                return f"did you mean {base}/v1? (argument 'endpoints')"
        return f"check argument 'endpoints' ({base}) and argument 'model' ({self.model!r})"

    async def _configuration_message(self, session: aiohttp.ClientSession) -> str:
        if self._diagnosis is None:
            lines = [
                f"Every endpoint refused the requests for model {self.model!r}; the run is "
                "misconfigured, so no request can succeed:"
            ]
            for index, failure in sorted(self._refusals.items()):
                hint = await self._hint(session, index, failure)
                lines.append(f"  {self.endpoints[index]}: {failure.detail}\n    hint: {hint}")
            self._diagnosis = "\n".join(lines)
        return self._diagnosis

    # -- endpoint health -----------------------------------------------------------------------

    async def _acquire(self, key: str, exclude: frozenset[int], *, retry: bool) -> int:
        while True:
            try:
                index = await self._pool.acquire(key, exclude=exclude, retry=retry)
            except NoHealthyEndpointError:
                await self._wait_for_recovery()
                continue
            self._all_down_since = None
            return index

    async def _wait_for_recovery(self) -> None:
        # Every waiting request shares one recovery task, which probes the endpoints every
        # health_check_interval until one answers or down_timeout has passed.
        task = self._recovery
        if task is None or task.done():
            task = self._recovery = asyncio.get_running_loop().create_task(self._recovery_loop())
        if not await asyncio.shield(task):
            since = self._all_down_since if self._all_down_since is not None else self._clock()
            raise EndpointsUnavailableError(self._down_message(self._clock() - since))

    async def _recovery_loop(self) -> bool:
        if self._all_down_since is None:
            self._all_down_since = self._clock()
        deadline = self._all_down_since + self.down_timeout
        while not any(self._pool.healthy):
            now = self._clock()
            if now >= deadline or self._state is not _State.OPEN:
                return False
            await self._sleep(min(self.health_check_interval, deadline - now))
            down = [i for i, healthy in enumerate(self._pool.healthy) if not healthy]
            await asyncio.gather(*(self._probe_once(i) for i in down))
        self._all_down_since = None
        return True

    def _down_message(self, elapsed: float) -> str:
        lines = [
            f"All {len(self.endpoints)} endpoint(s) of model {self.model!r} have been out of "
            f"rotation for {elapsed:.1f} s (down_timeout={self.down_timeout:g} s):"
        ]
        for index, url in enumerate(self.endpoints):
            last = self._pool.last_error(index) or "no error recorded"
            probe = self._probe_detail.get(index)
            lines.append(
                f"  {url}: last answer: {last}" + (f"; last health probe: {probe}" if probe else "")
            )
        return "\n".join(lines)

    def _start_probe(self, index: int) -> None:
        if self._state is not _State.OPEN:
            return
        task = self._probes.get(index)
        if task is not None and not task.done():
            return
        self._probes[index] = asyncio.get_running_loop().create_task(self._probe_loop(index))

    async def _probe_loop(self, index: int) -> None:
        while self._state is _State.OPEN and not self._pool.healthy[index]:
            await self._sleep(self.health_check_interval)
            if not self._pool.healthy[index]:
                await self._probe_once(index)

    async def _probe_once(self, index: int) -> bool:
        """``GET /health`` on one endpoint; put it back in rotation on a 200."""
        session = self._session
        if session is None or self._state is not _State.OPEN:
            return False
        probe_timeout = aiohttp.ClientTimeout(
            total=min(self.timeout, max(1.0, self.health_check_interval))
        )
        try:
            url = self._health_urls[index]
            async with session.get(url, timeout=probe_timeout, **self._routes[url]) as response:
                await self._read_body(response)
                status = response.status
        except asyncio.TimeoutError:
            self._probe_detail[index] = "GET /health timed out"
            return False
        except (aiohttp.ClientError, OSError) as exc:
            self._probe_detail[index] = f"GET /health: {type(exc).__name__}: {exc}"
            return False
        if status != 200:
            self._probe_detail[index] = f"GET /health answered {status}"
            return False
        self._probe_detail.pop(index, None)
        if not self._pool.healthy[index]:
            logger.info("endpoint %s back in rotation", self.endpoints[index])
            self._pool.mark_healthy(index)
        return True
