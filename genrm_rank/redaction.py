"""Keeping secrets out of what the library writes: URL credentials and the API key (which a
server's error body may echo), masked where text enters the library."""

from __future__ import annotations

import re

__all__ = ["MASK", "redact", "redact_url"]

MASK = "***"
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/\s?#@'\"]*@")


def redact_url(text: str) -> str:
    """``text`` with the ``user:password@`` of every URL in it masked.

    >>> redact_url("http://me:pw@host:8000/v1 refused; http://host/v1 too")
    'http://***@host:8000/v1 refused; http://host/v1 too'
    """
    return _USERINFO.sub(lambda match: match.group(1) + MASK + "@", text)


def redact(text: str, secret: str | None = None) -> str:
    """``text`` without ``secret`` (the API key, wherever it stands) and without URL credentials.

    >>> redact("bad key sk-123 from http://u:p@h/v1", "sk-123")
    'bad key *** from http://***@h/v1'
    """
    if secret:
        text = text.replace(secret, MASK)
    return redact_url(text)
