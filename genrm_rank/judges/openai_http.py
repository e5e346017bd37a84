"""A judge that calls GenRMs served by vLLM (or any OpenAI-compatible server) over HTTP.

:class:`OpenAIJudge` posts each comparison to ``{base}/chat/completions`` on one of several
replicas (:class:`~genrm_rank.judges.routing.EndpointPool`) through a
:class:`~genrm_rank.judges.transport.Transport`, and parses the answer with
:func:`~genrm_rank.parsing.parse_verdict`. A call makes at most one generation; re-asking after a
paid failure is the orchestrator's job. What can go wrong, and what the judge does::

    answer unreadable, truncated, ...       the failed verdict with its raw text (attempts = 1)
    timeout, 500, 504, dropped connection,  failed "unavailable" at once (attempts = 1); a timeout
    malformed or oversized 200              or malformed 200 is not ill health
    refused connection, 408, 429, 502, 503  resent for free (Retries), then "unavailable"
                                            (attempts = 0); 16 429s before any answer end that
    401, 403, 404, unverified TLS           the endpoint is left out; when all are,
                                            JudgeConfigurationError
    other 4xx (prompt too long, ...)        failed "rejected" with the server's message
    failure_threshold failures in a row     out of rotation, probed on GET /health until 200
    every endpoint out past down_timeout    EndpointsUnavailableError

Before its first chat request the judge asks each endpoint ``GET {base}/models`` once, so that a
wrong key, model or path costs at most one chat request per endpoint.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import json
import logging
import os
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from genrm_rank import validate as check
from genrm_rank.errors import (
    ArgumentError,
    EndpointsUnavailableError,
    JudgeConfigurationError,
    Words,
)
from genrm_rank.judges.base import PairRequest
from genrm_rank.judges.routing import EndpointPool, EndpointStats, NoHealthyEndpointError
from genrm_rank.judges.settings import MAX_RESPONSE_BYTES, Health, Limits, Retries, Routing
from genrm_rank.judges.transport import (
    AiohttpTransport,
    CertificateError,
    ConnectError,
    Request,
    Response,
    Transport,
    TransportError,
)
from genrm_rank.parsing import parse_verdict, resolve_thinking
from genrm_rank.redaction import MASK, redact, redact_url
from genrm_rank.verdict import FailureKind, Usage, Verdict

__all__ = ["MAX_RESPONSE_BYTES", "OpenAIJudge", "check_endpoints", "resolve_api_key"]

logger = logging.getLogger(__name__)

_UNPAID_STATUSES = frozenset({408, 429, 502, 503})
"""Statuses that say no generation was started: resent for free."""
_CONFIG_STATUSES = frozenset({401, 403, 404})
"""Statuses that say the run is misconfigured (key, model, path): every request would get them."""
_ERROR_TEXT_LIMIT = 500
_BODY_WORDS_LIMIT = 120
"""Bytes of a malformed 200's body quoted in its failure (a proxy's HTML page, say)."""
_STARTUP_429_LIMIT = 16
"""429s before the first answer after which a 429 is not resent: a spent quota, not a burst."""
_MAX_TOKENS_REPORTED = 2**40
"""More tokens than one call can use; a larger count is not a count (e.g. ``1e308``)."""
_TLS_HINT = Words(
    "the server's certificate could not be verified: give its CA bundle in the environment "
    "variable SSL_CERT_FILE, or pass {fix} to turn verification off",
    fix=ArgumentError.Setting("verify_tls", False),
)
_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}

_arg = ArgumentError.Setting

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]


class _Secret:
    """The API key and the headers that carry it; prints as ``***``."""

    __slots__ = ("headers", "value")

    def __init__(self, value: str) -> None:
        self.value = value
        self.headers = {**_HEADERS, "Authorization": f"Bearer {value}"}

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
    fault: str | None
    """Its kind in :attr:`OpenAIJudge.faults`; ``None`` for a refusal of the run itself (key,
    model, path, TLS), never resent there."""
    retryable: bool = True
    counts_toward_health: bool = True
    retry_after: float | None = None
    paid: bool = False
    """The server may have generated before failing: resending would be a paid re-ask."""
    hint: str | None = None


def resolve_api_key(
    api_key: str | None, api_key_env: str | None, api_key_file: str | os.PathLike[str] | None
) -> str | None:
    """The API key: ``api_key``, else read from ``api_key_file``, else from the environment
    variable ``api_key_env``; ``None`` when none is given (see :class:`OpenAIJudge`)."""
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
    return (os.environ.get(api_key_env) or None) if api_key_env else None


def check_endpoints(endpoints: str | Sequence[str]) -> tuple[str, ...]:
    """The endpoint base URLs, checked: http(s), no credentials; a trailing ``/`` removed.

    A URL is never echoed with its ``user:password@``
    (:func:`~genrm_rank.redaction.redact_url`).
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


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """``Retry-After`` in seconds; ``None`` for an HTTP date (rare from inference servers)."""
    try:
        seconds = float(headers.get("Retry-After", "-1"))
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def _error_message(status: int, raw: bytes) -> str:
    """``HTTP <status>: <the server's message>``, from OpenAI's, vLLM's or a plain body."""
    text = raw.decode("utf-8", "replace")
    try:
        body = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: JSON nested past the stack
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
    """A 200 whose ``choices`` is empty."""


def _reasoning_field(message: Mapping[str, Any]) -> str | None:
    """``reasoning`` or ``reasoning_content``, the first that holds text (an empty one never
    hides the other); ``""`` when one is there but empty, ``None`` when neither is a string."""
    fields = (message.get("reasoning"), message.get("reasoning_content"))
    texts = [f for f in fields if isinstance(f, str)]
    return next((t for t in texts if t.strip()), texts[0] if texts else None)


def _read_usage(body: object) -> tuple[Usage | None, bool]:
    """The server's ``usage``, and whether it was refused: ``None`` when it is absent or holds a
    count no call can have (negative, fractional, absurdly large, a bool, a string)."""
    if not isinstance(body, dict):
        return None, False
    counts = [body.get(name) for name in ("prompt_tokens", "completion_tokens")]
    if counts == [None, None]:  # {} or a total alone: unknown, not a call that cost nothing
        return None, False
    whole = [
        int(c) if isinstance(c, float) and c.is_integer() and c <= _MAX_TOKENS_REPORTED else c
        for c in counts
    ]
    try:
        usage = Usage(*(0 if c is None else c for c in whole))
    except ValueError:
        return None, True
    if max(usage.prompt_tokens, usage.completion_tokens) > _MAX_TOKENS_REPORTED:
        return None, True
    return usage, False


def _paid(detail: str, fault: str) -> _Failure:
    """A failure after which the server may have generated, and that is no sign of ill health."""
    return _Failure(detail, fault, counts_toward_health=False, paid=True)


def _refusal(detail: str, hint: str | None = None) -> _Failure:
    return _Failure(detail, None, retryable=False, hint=hint)


def _status_failure(status: int, raw: bytes, headers: Mapping[str, str]) -> _Failure:
    """What an error status means: a refusal of the run, a free resend, a paid failure, or a
    rejection of this one request."""
    message, fault = _error_message(status, raw), f"http_{status}"
    if status in _CONFIG_STATUSES:
        return _refusal(message)
    if status in _UNPAID_STATUSES:  # a 429 is an overloaded replica, not a broken one
        return _Failure(message, fault, True, status != 429, _retry_after(headers))
    if status >= 500:
        return _Failure(message, fault, retry_after=_retry_after(headers), paid=True)
    return _Failure(message, fault, retryable=False)


def _answer_or_failure(raw: bytes) -> _Answer | _Failure:
    """A 200's answer; a malformed one is a per-request failure, not ill health."""
    try:
        body = json.loads(raw)
        if not body["choices"]:
            raise _EmptyChoicesError("'choices' is empty")
        choice = body["choices"][0]
        message = choice.get("message") or {}
        content = message.get("content")
        if content is not None and not isinstance(content, str):
            raise TypeError(f"message.content is {type(content).__name__}, not a string")
        usage, refused = _read_usage(body.get("usage"))
        reasoning = _reasoning_field(message)
        return _Answer(content, reasoning, choice.get("finish_reason"), usage, refused)
    except (ValueError, KeyError, IndexError, TypeError, AttributeError, RecursionError) as exc:
        fault = "empty_choices" if isinstance(exc, _EmptyChoicesError) else "malformed_response"
        begins = raw[:_BODY_WORDS_LIMIT].decode("utf-8", "replace")
        why = f"{type(exc).__name__}: {exc}"
        return _paid(f"malformed response ({why}); the body began: {begins!r}", fault)


class OpenAIJudge:
    """Judge pairs with a GenRM behind one or more OpenAI-compatible (vLLM) endpoints.

    Parameters
    ----------
    endpoints : str or sequence of str
        Base URLs of replicas of one model, e.g. ``"http://127.0.0.1:8000/v1"``.
    model : str
        The served model name sent in every request.
    api_key, api_key_env, api_key_file : optional
        The bearer token (never shown), else the file, else the environment variable holding it
        (:func:`resolve_api_key`); none sends no ``Authorization`` header.
    temperature, top_p, max_tokens : float, float, int
        Sampling parameters (the model card's ``1.0, 0.95, 24576`` by default).
    extra_body : mapping, optional
        Merged at the top level of every request body (``top_k``, ``chat_template_kwargs``,
        ...); its keys override the sampling parameters.
    thinking : bool, optional
        Whether the model thinks before it answers (:func:`~genrm_rank.parsing.parse_verdict`).
        Default: ``True``, unless ``extra_body``'s ``chat_template_kwargs`` turn thinking off. As
        :func:`~genrm_rank.parsing.resolve_thinking` (``thinking_given``: set against them).
    template_token_allowance : int
        Tokens allowed for the chat template's own text in :meth:`call_token_bound`.
    timeout : float
        Seconds allowed for one HTTP request (connection to last byte).
    limits, routing, retries, health : optional
        The grouped settings of :mod:`~genrm_rank.judges.settings`.
    seed : int, optional
        Seeds the backoff jitter (and the ``"random"`` routing policy).
    verify_tls : bool
        Verify the server's TLS certificate; for the default transport only.
    transport : Transport, optional
        Sends the HTTP requests (an ``AiohttpTransport`` by default); closed with the judge.
    sleep, clock : callable, optional
        ``asyncio.sleep`` and ``time.monotonic`` by default; tests pass a fake clock.

    Examples
    --------
    ::

        retries = Retries(max_resends=3, backoff_max=10.0)
        async with OpenAIJudge(url, model="genrm", retries=retries) as judge:
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
        thinking: bool | None = None,
        template_token_allowance: int = 4096,
        timeout: float = 600.0,
        limits: Limits | None = None,
        routing: Routing | None = None,
        retries: Retries | None = None,
        health: Health | None = None,
        seed: int | None = None,
        verify_tls: bool = True,
        transport: Transport | None = None,
        sleep: Sleep | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.endpoints: tuple[str, ...] = check_endpoints(endpoints)
        self.model = check.text("model", model)
        self.max_tokens = check.count("max_tokens", max_tokens, 1)
        self.timeout = float(check.positive("timeout", timeout))
        self.template_token_allowance = check.count(
            "template_token_allowance", template_token_allowance, 0
        )
        self.extra_body: dict[str, Any] = dict(
            check.mapping("extra_body", extra_body, optional=True) or {}
        )
        for name in ("max_completion_tokens", "max_tokens"):  # vLLM reads the first one given
            if name in self.extra_body:  # the server's limit: call_token_bound must use it
                self.max_tokens = check.count(f"extra_body[{name!r}]", self.extra_body[name], 1)
                break
        if self.extra_body.get("n", 1) != 1:  # n generations a call, paid, counted as one
            raise ArgumentError("extra_body['n']", "must be 1 (one generation a call), if given.")
        check.flag("thinking", thinking, optional=True)
        self._pool = EndpointPool(
            self.endpoints, limits=limits, routing=routing, health=health, seed=seed
        )
        self.limits, self.health = self._pool.limits, self._pool.health
        self.retries = check.instance("retries", Retries() if retries is None else retries, Retries)
        if transport is None:
            transport = AiohttpTransport(verify_tls=verify_tls)
        elif verify_tls is not True:
            raise ArgumentError("verify_tls", "applies to the default transport only.")
        self.temperature = float(temperature)
        self.top_p = float(top_p)
        self.thinking, self.thinking_given = resolve_thinking(
            thinking, self.extra_body.get("chat_template_kwargs")
        )
        self.verify_tls = verify_tls
        self.down_timeout = self.health.down_after(self.retries)
        self._transport: Transport = transport
        key = resolve_api_key(api_key, api_key_env, api_key_file)
        self._api_key = _Secret(key) if key is not None else None
        self._chat_urls = [u + "/chat/completions" for u in self.endpoints]
        self._health_urls = [u.removesuffix("/v1") + "/health" for u in self.endpoints]
        self._rng = random.Random(seed)
        self._sleep: Sleep = sleep if sleep is not None else asyncio.sleep
        self._clock: Clock = clock if clock is not None else time.monotonic
        self._state: Literal["unopened", "open", "closed"] = "unopened"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._probes: dict[int, asyncio.Task[None]] = {}
        self._probe_due: dict[int, float] = {}
        """When each endpoint out of rotation is next probed; outlives the loop's probe tasks."""
        self._probe_detail: dict[int, str] = {}
        self._all_down_since: float | None = None
        self._recovery: asyncio.Task[bool] | None = None
        self._refusals: dict[int, _Failure] = {}
        self._faults: collections.Counter[str] = collections.Counter()
        self._diagnosis: str | None = None
        self._preflight: asyncio.Task[None] | None = None
        self._confirmed = [False] * len(self.endpoints)
        """Endpoints known to take the run's requests; another's first chat request goes alone."""
        self._first_calls: dict[int, asyncio.Lock] = {}
        self._answered = False
        self._unanswered_429 = 0

    def __repr__(self) -> str:
        return (
            f"OpenAIJudge(endpoints={list(self.endpoints)!r}, model={self.model!r}, "
            f"api_key={'set' if self._api_key is not None else 'none'}, state={self._state})"
        )

    @property
    def is_closed(self) -> bool:
        """Whether :meth:`aclose` was called."""
        return self._state == "closed"

    def _open(self) -> None:
        if self._state == "closed":
            raise RuntimeError("This OpenAIJudge is closed; create a new one.")
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # another loop's tasks (an earlier asyncio.run) cannot serve
            self._drop_tasks()
            self._loop = loop
        self._state = "open"
        for index, healthy in enumerate(self._pool.healthy):
            if not healthy:  # its probe may have gone with an earlier loop or aclose_connections
                self._start_probe(index)

    async def __aenter__(self) -> OpenAIJudge:
        self._open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop health probes and close the transport's connections. Idempotent."""
        self._state = "closed"
        await self._close_connections()

    async def aclose_connections(self) -> None:
        """Close the connections and probes but stay usable: the next call reopens them and
        probes again the endpoints out of rotation (the sync wrappers call this before their
        event loop ends)."""
        await self._close_connections()
        if self._state == "open":
            self._state = "unopened"

    def _drop_tasks(self) -> list[asyncio.Task[Any]]:
        """Forget the tasks bound to the loop: probes, recovery, an unfinished preflight."""
        tasks: list[asyncio.Task[Any]] = [*self._probes.values()]
        if self._recovery is not None:
            tasks.append(self._recovery)
        if self._preflight is not None and not self._preflight.done():
            tasks.append(self._preflight)
            self._preflight = None
        self._probes.clear()
        self._recovery = None
        self._first_calls.clear()
        return tasks

    async def _close_connections(self) -> None:
        tasks = self._drop_tasks()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._transport.aclose()

    @property
    def stats(self) -> dict[str, EndpointStats]:
        """Per-endpoint counters by URL (:class:`~genrm_rank.judges.routing.EndpointStats`)."""
        return self._pool.stats()

    @property
    def faults(self) -> dict[str, int]:
        """Failed HTTP attempts so far, by kind (sorted), each retried or reported.

        Kinds: ``http_<status>``, ``timeout``, ``connection_refused`` (never reached a server),
        ``connection_dropped`` (cut off after sending), ``empty_choices`` and
        ``malformed_response`` (a 200 without a readable answer), ``oversized_answer`` (longer
        than ``max_response_bytes``), and ``impossible_usage`` (an answer read, with usage no
        call can have). Refusals of the run (401/403/404) and unreadable answers are not
        faults.
        """
        return dict(sorted(self._faults.items()))

    def _payload(self, request: PairRequest) -> bytes:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": request.messages(),
            "temperature": self.temperature,
            "top_p": self.top_p,
            "max_tokens": self.max_tokens,
            **self.extra_body,
        }
        return json.dumps(body, ensure_ascii=False).encode()

    async def judge(self, request: PairRequest) -> Verdict:
        """Judge ``request`` (slot 1 vs slot 2): a :class:`~genrm_rank.verdict.Verdict`, failed
        rather than raising for a per-request problem (the module docstring says which raise)."""
        check.instance("request", request, PairRequest)
        self._open()
        await self._check_endpoints()
        result = await self._call(request.prefix_key(), self._payload(request))
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
        """Most tokens one call of ``request`` can use: its messages' UTF-8 bytes (a byte-level
        BPE token is at least one byte), :attr:`template_token_allowance` and ``max_tokens``."""
        content = sum(len(m["content"].encode()) + 8 for m in request.messages())
        return content + self.template_token_allowance + self.max_tokens

    async def judge_batch(self, requests: Sequence[PairRequest]) -> list[Verdict]:
        """Judge many requests concurrently; results in order. The requests still running are
        cancelled when one raises."""
        tasks = [asyncio.ensure_future(self.judge(r)) for r in requests]
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    async def _call(self, key: str, payload: bytes) -> _Answer | Verdict:
        """One call: the answer, or the failed verdict, after the free resends."""
        max_resends = self.retries.max_resends
        exclude = frozenset(self._refusals)  # an endpoint that refused the run is left out
        detail = "no attempt made"
        attempt = 0
        while attempt <= max_resends:
            index = await self._acquire(key, exclude, retry=attempt > 0)
            try:
                outcome = self._scrub(await self._post_checked(index, payload))
            finally:
                self._pool.release(index)
            if isinstance(outcome, _Answer):
                self._pool.record_success(index)
                if outcome.usage_refused:
                    self._faults["impossible_usage"] += 1
                if outcome.usage_refused and self._faults["impossible_usage"] == 1:
                    logger.warning(
                        "%s reports token usage no call can have (negative, fractional, "
                        "absurd or not a number): read as unknown, not summed (counted in "
                        "faults as impossible_usage)",
                        self.endpoints[index],
                    )
                self._answered = True
                return outcome
            detail = f"{self.endpoints[index]}: {outcome.detail}"
            if not outcome.retryable:
                self._pool.record_success(index)  # the server is up; it refuses
            if outcome.fault is None:  # a refusal of the run
                await self._refuse(index, outcome)
                exclude = frozenset(self._refusals)  # try an endpoint that has not refused
                continue  # free: no generation ran, and at most one refusal per endpoint
            self._faults[outcome.fault] += 1
            if not outcome.retryable:
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
            if not self._answered and outcome.fault == "http_429":
                self._unanswered_429 += 1
                if self._unanswered_429 >= _STARTUP_429_LIMIT:
                    return Verdict.failed(
                        FailureKind.UNAVAILABLE,
                        error=f"no answer after {attempt + 1} tries, and {self._unanswered_429} "
                        f"429s before any answer; last: {detail}",
                        attempts=0,
                    )
            exclude = frozenset({index}) | frozenset(self._refusals)
            if attempt < max_resends:  # a Retry-After past down_timeout (or inf) is cut to it
                retry_after = outcome.retry_after
                if retry_after is not None:
                    retry_after = min(retry_after, self.down_timeout)
                await self._sleep(self.retries.delay(attempt, retry_after, self._rng))
            attempt += 1
        return Verdict.failed(
            FailureKind.UNAVAILABLE,
            error=f"no answer after {max_resends + 1} tries; last: {detail}",
            attempts=0,
        )

    def _redact(self, text: str) -> str:
        """Server text without the API key it may echo, nor URL credentials."""
        return redact(text, self._api_key.value if self._api_key is not None else None)

    def _scrub(self, outcome: _Answer | _Failure) -> _Answer | _Failure:
        """:meth:`_redact` on every text of an answer or failure."""
        if isinstance(outcome, _Failure):
            return dataclasses.replace(outcome, detail=self._redact(outcome.detail))
        return dataclasses.replace(
            outcome,
            content=None if outcome.content is None else self._redact(outcome.content),
            reasoning=None if outcome.reasoning is None else self._redact(outcome.reasoning),
        )

    async def _post_checked(self, index: int, payload: bytes) -> _Answer | _Failure:
        """:meth:`_post`; an endpoint's first chat request goes alone until it is confirmed, so
        that a wrong path or model costs one request per endpoint."""
        if self._confirmed[index]:
            return await self._post(index, payload)
        async with self._first_calls.setdefault(index, asyncio.Lock()):
            refusal = self._refusals.get(index)
            if refusal is not None:
                return refusal  # refused while this request waited: not sent
            outcome = await self._post(index, payload)
            if not (isinstance(outcome, _Failure) and outcome.fault is None):
                self._confirmed[index] = True
            return outcome

    async def _send(
        self, method: Literal["GET", "POST"], url: str, timeout: float, body: bytes | None = None
    ) -> Response:
        headers = _HEADERS if self._api_key is None else self._api_key.headers
        limit = self.limits.max_response_bytes
        response = await self._transport.send(Request(method, url, headers, body, timeout, limit))
        if self._api_key is None or response.body is None:
            return response
        # masked before any quote of the body is cut, which would leave the key's first half
        masked = response.body.replace(self._api_key.value.encode(), MASK.encode())
        return dataclasses.replace(response, body=masked)

    async def _post(self, index: int, payload: bytes) -> _Answer | _Failure:
        try:
            response = await self._send("POST", self._chat_urls[index], self.timeout, payload)
        except asyncio.TimeoutError:  # under vLLM's unbounded queue: busy, not broken
            return _paid(f"timed out after {self.timeout:g} s", "timeout")
        except CertificateError as exc:
            return _refusal(f"TLS: {exc}", _TLS_HINT)
        except ConnectError as exc:  # never reached the server: free to resend
            return _Failure(str(exc), "connection_refused")
        except TransportError as exc:  # dropped after the request was sent
            return _Failure(str(exc), "connection_dropped", paid=True)
        if response.body is None:
            limit = self.limits.max_response_bytes
            return _paid(
                f"answer longer than max_response_bytes={limit} (HTTP {response.status}); not "
                "read further",
                "oversized_answer",
            )
        if response.status == 200:
            return _answer_or_failure(response.body)
        return _status_failure(response.status, response.body, response.headers)

    async def _get(self, url: str, timeout: float = 10.0) -> Response | str:
        """``GET url``, or why no answer came."""
        try:
            return await self._send("GET", url, timeout)
        except asyncio.TimeoutError:
            return "timed out"
        except TransportError as exc:
            return str(exc)

    def _model_list(self, got: Response | str) -> list[str] | None:
        """The model ids of a ``GET /models`` answer; ``None`` when it is not a model list."""
        if isinstance(got, str) or got.status != 200:
            return None
        try:
            body = json.loads(got.body or b"")
        except (ValueError, RecursionError):
            return None
        if not isinstance(body, dict) or not isinstance(body.get("data"), list):
            return None
        return [
            self._redact(str(m["id"])) for m in body["data"] if isinstance(m, dict) and "id" in m
        ]

    async def _check_endpoints(self) -> None:
        """Check every endpoint once before the first chat request (shared by every caller)."""
        if self._preflight is None:
            self._preflight = asyncio.get_running_loop().create_task(self._check_models())
        await asyncio.shield(self._preflight)

    async def _check_models(self) -> None:
        """``GET {base}/models`` once per endpoint: refuse those that refuse the key or do not
        serve the model; raise when every endpoint does."""
        answers = await asyncio.gather(*(self._get(b + "/models") for b in self.endpoints))
        served = [self._model_list(got) for got in answers]
        listed = any(models is not None and self.model in models for models in served)
        for index, (got, models) in enumerate(zip(answers, served, strict=True)):
            if models is not None and self.model in models:
                self._confirmed[index] = True
            if isinstance(got, str) or self._confirmed[index]:
                continue  # no answer: the first chat request decides
            words = self._redact(_error_message(got.status, got.body or b""))  # may quote the key
            if got.status in (401, 403):
                self._refusals[index] = _refusal(f"{words} (GET /models)")
            elif models is not None:
                served_hint = self._served_hint(models)
                detail = f"model {self.model!r} is not served (GET /models)"
                self._refusals[index] = _refusal(detail, served_hint)
            elif got.status == 404 and listed:  # the other replicas list it: a wrong path
                detail = f"{words} (GET /models; the other endpoints list the model)"
                self._refusals[index] = _refusal(detail)
            else:
                logger.warning(
                    "endpoint %s: GET /models answered %s without a model list; the key and the "
                    "model are checked by the first request instead",
                    self.endpoints[index],
                    words,
                )
        if len(self._refusals) == len(self.endpoints):
            raise JudgeConfigurationError(await self._configuration_message())
        for index, failure in sorted(self._refusals.items()):
            await self._warn_refusal(index, failure)

    async def _refuse(self, index: int, failure: _Failure) -> None:
        """Leave out an endpoint that refused a chat request; raise once every one has."""
        if index not in self._refusals:
            self._refusals[index] = failure
            if len(self._refusals) < len(self.endpoints):
                await self._warn_refusal(index, failure)
        if len(self._refusals) == len(self.endpoints):
            raise JudgeConfigurationError(await self._configuration_message())

    async def _warn_refusal(self, index: int, failure: _Failure) -> None:
        """Say that one endpoint refuses the run and is left out (the others carry on)."""
        logger.warning(
            "endpoint %s refuses the run and is left out: %s (hint: %s)",
            self.endpoints[index],
            failure.detail,
            await self._hint(index, failure),
        )

    async def _hint(self, index: int, failure: _Failure) -> str:
        base = self.endpoints[index]
        if failure.hint is not None:
            return failure.hint
        if failure.detail.startswith(("HTTP 401", "HTTP 403")):
            keys = {"env": _arg("api_key_env"), "file": _arg("api_key_file")}
            if self._api_key is None:
                return Words(
                    "no API key was sent: give it with {env} (an environment variable) or {file}",
                    **keys,
                )
            return Words(
                "the API key sent was refused: check the key given by {env} or {file}", **keys
            )
        served = self._model_list(await self._get(base + "/models"))
        if served is not None:
            if self.model not in served:
                return self._served_hint(served)
            return (
                f"the server serves model {self.model!r} but {base}/chat/completions is not found"
            )
        if not base.endswith("/v1"):
            if self._model_list(await self._get(base + "/v1/models")) is not None:
                return Words("did you mean {base}/v1? ({a})", base=base, a=_arg("endpoints"))
        return Words(
            "check {e} ({base}) and {m} ({model!r})",
            e=_arg("endpoints"),
            base=base,
            m=_arg("model"),
            model=self.model,
        )

    def _served_hint(self, served: list[str]) -> Words:
        return Words(
            "{m} is {model!r}; the server serves {served}",
            m=_arg("model"),
            model=self.model,
            served=served,
        )

    async def _configuration_message(self) -> str:
        if self._diagnosis is None:
            lines = [
                "Every endpoint refused the requests for model {model!r}; the run is "
                "misconfigured, so no request can succeed:"
            ]
            settings: dict[str, object] = {"model": self.model}
            for index, failure in sorted(self._refusals.items()):
                lines.append(f"  {{url{index}}}: {{detail{index}}}\n    hint: {{hint{index}}}")
                settings[f"url{index}"] = self.endpoints[index]
                settings[f"detail{index}"] = failure.detail
                settings[f"hint{index}"] = await self._hint(index, failure)
            self._diagnosis = Words("\n".join(lines), **settings)
        return self._diagnosis

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
        """Wait for the recovery task all waiting requests share: it probes until an endpoint
        answers or down_timeout has passed."""
        if self._recovery is None or self._recovery.done():
            self._recovery = asyncio.get_running_loop().create_task(self._recovery_loop())
        if not await asyncio.shield(self._recovery):
            since = self._all_down_since if self._all_down_since is not None else self._clock()
            raise EndpointsUnavailableError(self._down_message(self._clock() - since))

    async def _recovery_loop(self) -> bool:
        if self._all_down_since is None:
            self._all_down_since = self._clock()
        deadline = self._all_down_since + self.down_timeout
        while not any(self._pool.healthy):
            now = self._clock()
            if now >= deadline or self._state != "open":
                return False
            await self._sleep(min(self.health.health_check_interval, deadline - now))
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
        task = self._probes.get(index)
        if self._state == "open" and (task is None or task.done()):
            self._probe_due.setdefault(index, self._clock() + self.health.health_check_interval)
            self._probes[index] = asyncio.get_running_loop().create_task(self._probe_loop(index))

    async def _probe_loop(self, index: int) -> None:
        """Probe an endpoint out of rotation every health_check_interval until it is back, on
        the schedule an earlier loop's probe left."""
        while self._state == "open" and not self._pool.healthy[index]:
            wait = self._probe_due[index] - self._clock()
            if wait > 0:
                await self._sleep(wait)
            if not self._pool.healthy[index]:
                self._probe_due[index] = self._clock() + self.health.health_check_interval
                await self._probe_once(index)

    async def _probe_once(self, index: int) -> None:
        """``GET /health`` on one endpoint; put it back in rotation on a 200."""
        if self._state != "open":
            return
        timeout = min(self.timeout, max(1.0, self.health.health_check_interval))
        got = await self._get(self._health_urls[index], timeout)
        if isinstance(got, str) or got.status != 200:
            failed = f": {got}" if isinstance(got, str) else f" answered {got.status}"
            self._probe_detail[index] = "GET /health" + failed
            return
        self._probe_detail.pop(index, None)
        self._probe_due.pop(index, None)
        if not self._pool.healthy[index]:
            logger.info("endpoint %s back in rotation", self.endpoints[index])
            self._pool.mark_healthy(index)
