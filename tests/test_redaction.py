"""URL credentials and the API key are masked in any text the library keeps."""

from __future__ import annotations

import pytest

from genrm_rank.redaction import redact, redact_url


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("http://u:pw@h:8000/v1", "http://***@h:8000/v1"),
        ("HTTPS://only-user@h/v1", "HTTPS://***@h/v1"),
        ("'ftp://u:p:q@h/x' refused", "'ftp://***@h/x' refused"),
        ("a http://u:1@a/v1 and http://v:2@b/v1", "a http://***@a/v1 and http://***@b/v1"),
        ("http://h/v1?next=a@b", "http://h/v1?next=a@b"),  # an @ after the host is not a login
        ("mail me@example.com", "mail me@example.com"),
        ("no url here", "no url here"),
    ],
)
def test_redact_url(text: str, expected: str) -> None:
    assert redact_url(text) == expected


@pytest.mark.parametrize(
    ("text", "secret", "expected"),
    [
        ("Bearer sk-1 sk-1", "sk-1", "Bearer *** ***"),
        ("Bearer sk-1", None, "Bearer sk-1"),
        ("Bearer sk-1", "", "Bearer sk-1"),
        ("sk-1 at http://u:p@h/v1", "sk-1", "*** at http://***@h/v1"),
    ],
)
def test_redact(text: str, secret: str | None, expected: str) -> None:
    assert redact(text, secret) == expected
