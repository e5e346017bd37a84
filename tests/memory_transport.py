"""An in-memory HTTP transport and a fake clock, for testing the HTTP judge without a socket.

``MemoryTransport(handler)`` is a :class:`~genrm_rank.judges.transport.Transport` that hands
each :class:`~genrm_rank.judges.transport.Request` to ``handler``, which returns a
:class:`~genrm_rank.judges.transport.Response` or raises what a transport raises
(``ConnectError``, ``TransportError``, ``asyncio.TimeoutError``). :func:`openai_server` makes a
handler that answers ``GET /models`` and ``GET /health`` as vLLM does and leaves the chat
requests to a function; :func:`answers` plays a script of answers in order.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from typing import Any

from genrm_rank.judges.transport import Request, Response

MODEL = "sim-genrm"
GOOD = '```json\n{"score_1": 4, "score_2": 2, "ranking": 2}\n```'


Handler = Callable[[Request], Response]


class MemoryTransport:
    """Answers every request with ``handler(request)``; records what was sent."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.sent: list[Request] = []
        self.closed = 0

    async def send(self, request: Request) -> Response:
        self.sent.append(request)
        await asyncio.sleep(0)  # a real transport yields: let other requests interleave
        response = self.handler(request)
        if response.body is not None and len(response.body) > request.max_bytes:
            return Response(response.status, response.headers, None)
        return response

    async def aclose(self) -> None:
        self.closed += 1

    @property
    def chats(self) -> list[Request]:
        """The chat requests sent, in order."""
        return [s for s in self.sent if s.method == "POST"]


def reply(status: int, body: object, headers: Mapping[str, str] | None = None) -> Response:
    """An answer with ``body`` as JSON (bytes and str as they are)."""
    if isinstance(body, str):
        body = body.encode()
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Response(status, dict(headers or {}), raw)


def completion(
    content: str | None, *, finish: str = "stop", usage: object = None, **message: Any
) -> Response:
    """A 200 chat completion holding ``content`` (and ``message``'s other fields)."""
    return reply(
        200,
        {
            "object": "chat.completion",
            "model": MODEL,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content, **message},
                    "finish_reason": finish,
                }
            ],
            "usage": usage or {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        },
    )


def error(status: int, message: str = "nope", retry_after: float | None = None) -> Response:
    """An OpenAI-style error answer, with ``Retry-After`` when given."""
    headers = {} if retry_after is None else {"Retry-After": f"{retry_after:g}"}
    return reply(status, {"error": {"message": message, "type": "x", "code": status}}, headers)


def answers(*script: Response | BaseException) -> Handler:
    """A chat handler playing ``script`` in order (an exception is raised), then its last."""
    calls = 0

    def chat(request: Request) -> Response:
        nonlocal calls
        item = script[min(calls, len(script) - 1)]
        calls += 1
        if isinstance(item, BaseException):
            raise item
        return item

    return chat


def openai_server(
    chat: Handler, *, model: str = MODEL, health: Callable[[], int] = lambda: 200
) -> Handler:
    """A handler answering like vLLM: ``GET /models`` lists ``model``, ``GET /health`` answers
    ``health()``, and a chat request gets ``chat(request)``."""

    def handle(request: Request) -> Response:
        if request.method == "GET" and request.url.endswith("/models"):
            return reply(200, {"object": "list", "data": [{"id": model, "object": "model"}]})
        if request.method == "GET" and request.url.endswith("/health"):
            return reply(health(), b"")
        return chat(request)

    return handle


class FakeClock:
    """An injectable clock: ``sleep`` records the delay and advances time instantly."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)
