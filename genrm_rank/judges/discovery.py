"""The model an OpenAI-compatible server serves, asked before a run (``GET /models``).

A run that is not told its model asks the first endpoint for its list and takes the first one,
as vLLM serves one model a server. The API key goes only to the endpoint's own origin, even
through redirects.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from http.client import HTTPMessage
from typing import IO

from genrm_rank.errors import ArgumentError, EndpointsUnavailableError
from genrm_rank.redaction import redact

__all__ = ["served_model"]


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urllib.parse.urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    return parts.scheme.lower(), (parts.hostname or "").lower(), parts.port or default


class _SameOriginRedirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects, but sends the API key only to the origin it was given for."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and _origin(new.full_url) != _origin(req.full_url):
            new.remove_header("Authorization")
        return new


def served_model(
    endpoint: str, api_key: str | None = None, *, verify_tls: bool = True, timeout: float = 10.0
) -> str:
    """The first model ``endpoint`` (an OpenAI-compatible base URL) lists.

    Raises
    ------
    ArgumentError
        (``model``) The server answered, but with an error (quoted, with a likely fix) or
        without a model list: the model must be given.
    EndpointsUnavailableError
        Nobody answered.
    """
    url = endpoint.rstrip("/") + "/models"
    request = urllib.request.Request(url)
    if api_key:
        request.add_header("Authorization", f"Bearer {api_key}")
    handlers: list[urllib.request.BaseHandler] = [_SameOriginRedirects()]
    if not verify_tls:
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        handlers.append(urllib.request.HTTPSHandler(context=context))
    try:
        with urllib.request.build_opener(*handlers).open(request, timeout=timeout) as response:
            body = json.load(response)
        return str(body["data"][0]["id"])
    except urllib.error.HTTPError as exc:  # the server answered: in its own words
        words = redact(exc.read().decode("utf-8", "replace").strip()[:500], api_key)
        hint = ""
        if exc.code in (401, 403):
            hint = "; no API key was sent" if not api_key else "; the API key sent was refused"
        elif exc.code == 404 and not endpoint.rstrip("/").endswith("/v1"):
            hint = f"; did you mean {endpoint.rstrip('/')}/v1?"
        raise ArgumentError(
            "model", f": not given, and {url} answered HTTP {exc.code}: {words}{hint}"
        ) from None
    except (urllib.error.URLError, OSError) as exc:  # nobody answered: the server is down
        reason = redact(str(getattr(exc, "reason", exc)), api_key)
        raise EndpointsUnavailableError(f"{url} could not be reached: {reason}") from None
    except Exception as exc:  # an answer without a model list: the user must say which model
        raise ArgumentError(
            "model", f": not given, and {url} did not list a model ({redact(str(exc), api_key)})"
        ) from None
