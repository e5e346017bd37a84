"""The model an OpenAI-compatible server serves (``GET /models``), for a run not told its model:
the first one listed, as vLLM serves one model a server."""

from __future__ import annotations

import asyncio
import json

from genrm_rank.errors import ArgumentError, EndpointsUnavailableError
from genrm_rank.judges.settings import MAX_RESPONSE_BYTES
from genrm_rank.judges.transport import AiohttpTransport, Request, Response, TransportError
from genrm_rank.redaction import redact

__all__ = ["served_model"]


async def _get(request: Request, verify_tls: bool) -> Response:
    transport = AiohttpTransport(verify_tls=verify_tls)
    try:
        return await transport.send(request)
    finally:
        await transport.aclose()


def served_model(
    endpoint: str, api_key: str | None = None, *, verify_tls: bool = True, timeout: float = 10.0
) -> str:
    """The first model ``endpoint`` (an OpenAI-compatible base URL) lists; call it outside an
    event loop.

    Raises
    ------
    ArgumentError
        (``model``) The server answered, but with an error (quoted, with a likely fix) or
        without a model list: the model must be given.
    EndpointsUnavailableError
        Nobody answered.
    """
    url = endpoint.rstrip("/") + "/models"
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    request = Request("GET", url, headers, None, timeout, MAX_RESPONSE_BYTES)
    try:
        response = asyncio.run(_get(request, verify_tls))
    except (asyncio.TimeoutError, TransportError) as exc:  # nobody answered: the server is down
        reason = redact(str(exc) or f"no answer in {timeout:g} s", api_key)
        raise EndpointsUnavailableError(f"{url} could not be reached: {reason}") from None
    raw = response.body or b""
    if response.status != 200:  # the server answered: in its own words
        words = redact(raw.decode("utf-8", "replace"), api_key).strip()[:500]  # masked, then cut
        hint = ""
        if response.status in (401, 403):
            hint = "; no API key was sent" if not api_key else "; the API key sent was refused"
        elif response.status == 404 and not endpoint.rstrip("/").endswith("/v1"):
            hint = f"; did you mean {endpoint.rstrip('/')}/v1?"
        raise ArgumentError(
            "model", f": not given, and {url} answered HTTP {response.status}: {words}{hint}"
        )
    try:
        return str(json.loads(raw)["data"][0]["id"])
    except Exception as exc:  # an answer without a model list: the user must say which model
        raise ArgumentError(
            "model", f": not given, and {url} did not list a model ({redact(str(exc), api_key)})"
        ) from None
