"""Messages in: the chat request a GenRM expects for one comparison.

NVIDIA's GenRMs take the conversation so far (``user``/``assistant`` turns ending with a user
turn), then the optional rubric in the role ``principle``, then the two candidates in the roles
``response_1`` and ``response_2`` (the order of NVIDIA's own client, NeMo-Gym
``genrm_model/app.py``). The judge sees final answers only: reasoning (text up to ``</think>``)
is stripped from assistant turns and from both candidates, and an empty candidate is sent as the
literal text ``None``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from genrm_rank import validate as check
from genrm_rank.errors import ArgumentError, Words

__all__ = [
    "CONVERSATION_ROLES",
    "Conversation",
    "Message",
    "build_messages",
    "content_text",
    "normalize_conversation",
    "strip_reasoning",
]

Message = dict[str, str]
Conversation = str | Sequence[Mapping[str, Any]]
"""A single user turn as a string, or a list of ``{"role", "content"}`` messages."""

CONVERSATION_ROLES = frozenset({"system", "user", "assistant"})
"""Roles accepted in the conversation history (``system`` is passed through as given)."""

THINK_END = "</think>"
EMPTY_CANDIDATE = "None"


def strip_reasoning(text: str) -> str:
    """The text after the last ``</think>``, leading whitespace removed (all of it without one).

    >>> strip_reasoning("<think>hmm</think>\\n\\nParis.")
    'Paris.'
    >>> strip_reasoning("Paris.")
    'Paris.'
    """
    _, sep, tail = text.rpartition(THINK_END)
    return tail.lstrip() if sep else text


def content_text(content: object, name: str = "content") -> str:
    """A message's content as one string: a string as it is, or OpenAI's list of text parts
    joined with newlines, as vLLM joins them (the GenRM reads no other part).

    >>> content_text([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}])
    'a\\nb'
    """
    if isinstance(content, str):
        return content
    parts = check.instance(name, content, list, "a string or a list of text parts")
    texts: list[str] = []
    for i, part in enumerate(parts):
        kind = part.get("type") if isinstance(part, Mapping) else None
        if kind != "text" or not isinstance(part, Mapping):
            what = f"of type {kind!r}" if kind is not None else type(part).__name__
            raise ArgumentError(
                f"{name}[{i}]",
                f"is a part {what}; the GenRM reads text only (parts of type 'text').",
            )
        texts.append(check.instance(f"{name}[{i}]['text']", part.get("text"), str, "a string"))
    return "\n".join(texts)


def normalize_conversation(
    conversation: Conversation, *, name: str = "conversation"
) -> list[Message]:
    """A conversation checked (errors name it ``name``) as ``{"role", "content"}`` dicts, with
    reasoning stripped from assistant turns."""
    if isinstance(conversation, str):
        if not conversation.strip():
            raise ArgumentError(name, f"must be a non-empty string, not {conversation!r}.")
        return [{"role": "user", "content": conversation}]
    if isinstance(conversation, (Mapping, bytes, bytearray)) or not isinstance(
        conversation, Sequence
    ):
        raise TypeError(
            Words(
                "{head} must be a string or a list of {{'role', 'content'}} messages, not {kind}.",
                head=ArgumentError.Setting(name),
                kind=type(conversation).__name__,
            )
        )
    if len(conversation) == 0:
        raise ArgumentError(name, "must hold at least one user turn, not an empty list.")
    messages: list[Message] = []
    for i, item in enumerate(conversation):
        where, what = f"{name}[{i}]", "a {'role', 'content'} mapping"
        message: Mapping[str, Any] = check.instance(where, item, Mapping, what)  # type: ignore[type-abstract]
        role = message.get("role")
        if not isinstance(role, str) or role not in CONVERSATION_ROLES:
            raise ArgumentError(
                where,
                f"has role {role!r}; expected one of "
                f"{sorted(CONVERSATION_ROLES)}: the GenRM takes only these turns (tool calls, "
                "tool results and other roles cannot be shown to it).",
            )
        content = content_text(message.get("content"), f"{where}['content']")
        if role == "assistant":
            content = strip_reasoning(content)
        messages.append({"role": role, "content": content})
    if not any(m["role"] == "user" for m in messages):
        raise ArgumentError(name, "must hold at least one user turn, not none.")
    if messages[-1]["role"] != "user":
        raise ArgumentError(name, f"must end with a user turn, not {messages[-1]['role']!r}.")
    return messages


def _candidate(text: object, name: str) -> str:
    stripped = strip_reasoning(check.instance(name, text, str, "a string"))
    return stripped if stripped.strip() else EMPTY_CANDIDATE


def build_messages(
    conversation: Conversation, response_1: str, response_2: str, principle: str | None = None
) -> list[Message]:
    """The chat messages for one GenRM comparison.

    Parameters
    ----------
    conversation : str or list of dict
        One user turn as a string, or ``{"role", "content"}`` messages ending with a user turn.
    response_1, response_2 : str
        The candidates for slot 1 and slot 2.
    principle : str, optional
        A rubric for the judge (role ``principle``).

    Returns
    -------
    list of dict
        History, then principle, then ``response_1``, then ``response_2``.

    Examples
    --------
    >>> [m["role"] for m in build_messages("Hi?", "Hello.", "", principle="Be brief.")]
    ['user', 'principle', 'response_1', 'response_2']
    >>> build_messages("Hi?", "Hello.", "")[-1]["content"]
    'None'
    """
    messages = normalize_conversation(conversation)
    if principle is not None:
        if check.instance("principle", principle, str, "a string or None").strip():
            messages.append({"role": "principle", "content": principle})
    messages.append({"role": "response_1", "content": _candidate(response_1, "response_1")})
    messages.append({"role": "response_2", "content": _candidate(response_2, "response_2")})
    return messages
