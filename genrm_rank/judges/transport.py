"""The HTTP seam of :class:`~genrm_rank.judges.openai_http.OpenAIJudge`: a :class:`Request`
in, a :class:`Response` out, so that tests can use an in-memory transport
(``tests/memory_transport.py``). :class:`AiohttpTransport`, the default, is raw aiohttp rather
than the ``openai`` client, for its CPU per request (``benchmarks/README.md``, "HTTP transport:
client CPU per request"). A transport raises ``asyncio.TimeoutError`` (no answer in time),
:class:`ConnectError` (the request never reached a server), :class:`CertificateError`, or
:class:`TransportError` (the connection dropped after sending): the judge prices each apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import aiohttp
from aiohttp.helpers import basicauth_from_netrc, get_env_proxy_for_url, netrc_from_env
from yarl import URL

from genrm_rank import validate as check
from genrm_rank.errors import GenRMRankError

__all__ = [
    "AiohttpTransport",
    "CertificateError",
    "ConnectError",
    "Request",
    "Response",
    "Transport",
    "TransportError",
]

_CHUNK = 64 * 1024


class TransportError(GenRMRankError):
    """The connection failed after the request was sent (its message says how)."""


class ConnectError(TransportError):
    """No connection was made: the request never reached a server."""


class CertificateError(ConnectError):
    """The server's TLS certificate could not be verified."""


@dataclass(frozen=True)
class Request:
    """One HTTP request: seconds for the whole exchange, and the longest body read."""

    method: Literal["GET", "POST"]
    url: str
    headers: Mapping[str, str] = field(repr=False)  # the API key: never shown
    body: bytes | None = field(repr=False)
    timeout: float
    max_bytes: int


@dataclass(frozen=True)
class Response:
    """An HTTP answer; ``body`` is ``None`` when longer than the request's ``max_bytes``."""

    status: int
    headers: Mapping[str, str]
    body: bytes | None


@runtime_checkable
class Transport(Protocol):
    """Sends HTTP requests; :meth:`aclose` closes its connections (a later request reopens)."""

    async def send(self, request: Request) -> Response:
        """Send ``request`` and read the answer; raise as the module docstring says."""
        ...

    async def aclose(self) -> None:
        """Close the connections."""
        ...


def _environment_route(url: str) -> dict[str, Any]:
    """The proxy and ``~/.netrc`` credentials ``trust_env=True`` gives ``url``, as aiohttp
    request keywords."""
    target = URL(url)
    route: dict[str, Any] = {}
    with contextlib.suppress(LookupError):
        route["proxy"], route["proxy_auth"] = get_env_proxy_for_url(target)
    if target.host is not None:
        with contextlib.suppress(LookupError):
            route["auth"] = basicauth_from_netrc(netrc_from_env(), target.host)
    return route


async def _read_capped(response: aiohttp.ClientResponse, limit: int) -> bytes | None:
    """The body, or ``None`` once longer than ``limit`` (the connection closed, not drained)."""
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


class AiohttpTransport:
    """The default :class:`Transport`: one pooled :class:`aiohttp.ClientSession`.

    Proxies and ``~/.netrc`` credentials are read from the environment once per URL (not in a
    worker thread per request, as aiohttp's ``trust_env`` would), CA bundles (``SSL_CERT_FILE``,
    ``SSL_CERT_DIR``) when the session opens, on the first request's event loop (afresh on
    another loop). The API key is dropped when a redirect leaves its origin.

    Parameters
    ----------
    verify_tls : bool
        Verify the server's TLS certificate against the CA bundle.
    """

    def __init__(self, *, verify_tls: bool = True) -> None:
        self.verify_tls = check.flag("verify_tls", verify_tls)
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._routes: dict[str, dict[str, Any]] = {}
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}

    def _open(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._loop is not loop:
            # SSL_CERT_FILE read now; no connection limit: the EndpointPool bounds the requests
            tls: ssl.SSLContext | bool = ssl.create_default_context() if self.verify_tls else False
            connector = aiohttp.TCPConnector(ssl=tls, limit=0, keepalive_timeout=75.0)
            self._session = aiohttp.ClientSession(connector=connector, trust_env=False)
            self._loop = loop
        return self._session

    async def send(self, request: Request) -> Response:
        """Send ``request``; see :class:`Transport`."""
        url = request.url
        route = self._routes.get(url)
        if route is None:
            route = self._routes[url] = _environment_route(url)
        timeout = self._timeouts.get(request.timeout)
        if timeout is None:
            timeout = self._timeouts[request.timeout] = aiohttp.ClientTimeout(request.timeout)
        try:
            async with self._open().request(
                request.method,
                url,
                data=request.body,
                headers=request.headers,
                timeout=timeout,
                **route,
            ) as response:
                raw = await _read_capped(response, request.max_bytes)
                return Response(response.status, response.headers, raw)
        except asyncio.TimeoutError:
            raise
        except (aiohttp.ClientConnectorCertificateError, aiohttp.ClientSSLError) as exc:
            raise CertificateError(str(exc)) from exc
        except aiohttp.ClientConnectorError as exc:
            raise ConnectError(f"{type(exc).__name__}: {exc}") from exc
        except (aiohttp.ClientError, OSError) as exc:
            words = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            raise TransportError(words) from exc

    async def aclose(self) -> None:
        """Close the session (if it belongs to the running loop; another loop's is dropped)."""
        session, self._session = self._session, None
        if session is not None and self._loop is asyncio.get_running_loop():
            await session.close()
