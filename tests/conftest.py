"""Shared test fixtures."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from reference_data import VICUNA_GPT4_PAIRWISE, expected_values, reference_path


@pytest.fixture(scope="session")
def expected() -> dict[str, Any]:
    """The reference figures of ``tests/data/expected_values.json``."""
    return expected_values()


@pytest.fixture(scope="session")
def vicuna_record() -> Path:
    """GPT-4's verdicts on every ordered pair of 8 systems x 80 Vicuna questions (QLoRA)."""
    return reference_path(VICUNA_GPT4_PAIRWISE)


ChatHandler = Callable[[web.Request], Awaitable[web.Response]]


@pytest.fixture
async def chat_server() -> AsyncIterator[Callable[[ChatHandler], Awaitable[str]]]:
    """Start hand-written OpenAI chat servers on loopback: ``url = await chat_server(handler)``.

    ``handler`` answers ``POST /v1/chat/completions``; the returned base URL ends in ``/v1``.
    Every server started is stopped when the test ends.
    """
    runners: list[web.AppRunner] = []

    async def start(handler: ChatHandler) -> str:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return f"http://127.0.0.1:{port}/v1"

    yield start
    for runner in runners:
        await runner.cleanup()
