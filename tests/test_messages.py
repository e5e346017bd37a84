"""Tests of genrm_rank.messages: the chat request a GenRM expects (as NVIDIA's own client sends
it: NVIDIA-NeMo/Gym, ``responses_api_models/genrm_model/app.py``)."""

from __future__ import annotations

from typing import Any

import pytest

from genrm_rank.messages import (
    build_messages,
    content_text,
    normalize_conversation,
    strip_reasoning,
)


def test_string_conversation_becomes_one_user_turn() -> None:
    assert build_messages("What is 2+2?", "4", "5") == [
        {"role": "user", "content": "What is 2+2?"},
        {"role": "response_1", "content": "4"},
        {"role": "response_2", "content": "5"},
    ]


def test_order_is_history_principle_response_1_response_2() -> None:
    history = [
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "Name a prime."},
    ]
    messages = build_messages(history, "7", "9", principle="Correctness matters most.")
    assert [m["role"] for m in messages] == [
        "system",
        "user",
        "assistant",
        "user",
        "principle",
        "response_1",
        "response_2",
    ]
    assert messages[4]["content"] == "Correctness matters most."
    assert messages[5]["content"] == "7" and messages[6]["content"] == "9"


def test_input_is_not_mutated_and_extra_keys_dropped() -> None:
    history: list[dict[str, Any]] = [
        {"role": "user", "content": "Hi", "name": "alice"},
        {"role": "assistant", "content": "<think>greet</think>Hello", "reasoning_content": "greet"},
        {"role": "user", "content": "Bye"},
    ]
    before = [dict(m) for m in history]
    messages = build_messages(history, "a", "b")
    assert history == before
    assert messages[1] == {"role": "assistant", "content": "Hello"}
    assert messages[0] == {"role": "user", "content": "Hi"}


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("<think>Let me think.</think>\n\nParis.", "Paris."),
        ("Let me think.</think>Paris.", "Paris."),  # bare </think> (template opened <think>)
        ("Paris.", "Paris."),
        ("<think>a</think>b</think>c", "c"),
        ("  Paris, with leading space", "  Paris, with leading space"),
    ],
)
def test_reasoning_stripped_from_candidates_and_assistant_turns(text: str, shown: str) -> None:
    assert strip_reasoning(text) == shown
    history = [
        {"role": "user", "content": "Q1"},
        {"role": "assistant", "content": text},
        {"role": "user", "content": "<think>user text is left alone</think>Q2"},
    ]
    messages = build_messages(history, text, text)
    assert messages[1]["content"] == shown
    assert messages[2]["content"] == "<think>user text is left alone</think>Q2"
    assert messages[-2]["content"] == shown
    assert messages[-1]["content"] == shown


@pytest.mark.parametrize(
    "empty", ["", "   ", "\n\t", "<think>only reasoning</think>", "x</think>  \n"]
)
def test_empty_candidate_is_sent_as_literal_none(empty: str) -> None:
    messages = build_messages("Q", empty, "real answer")
    assert messages[-2] == {"role": "response_1", "content": "None"}
    messages = build_messages("Q", "real answer", empty)
    assert messages[-1] == {"role": "response_2", "content": "None"}


@pytest.mark.parametrize("principle", [None, "", "   "])
def test_no_principle_message_without_a_principle(principle: str | None) -> None:
    roles = [m["role"] for m in build_messages("Q", "a", "b", principle=principle)]
    assert roles == ["user", "response_1", "response_2"]


def test_returned_list_is_fresh() -> None:
    first = build_messages("Q", "a", "b")
    first[0]["content"] = "changed"
    assert build_messages("Q", "a", "b")[0]["content"] == "Q"


@pytest.mark.parametrize(
    ("conversation", "error", "message"),
    [
        ("", ValueError, r"Argument 'conversation' must be a non-empty string, not ''"),
        ("   ", ValueError, r"Argument 'conversation' must be a non-empty string, not '   '"),
        (
            [],
            ValueError,
            r"Argument 'conversation' must hold at least one user turn, not an empty list",
        ),
        (
            [{"role": "system", "content": "s"}],
            ValueError,
            r"Argument 'conversation' must hold at least one user turn, not none",
        ),
        (
            [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
            ValueError,
            r"Argument 'conversation' must end with a user turn, not 'assistant'",
        ),
        (
            [{"role": "user", "content": "q"}, {"role": "tool", "content": "t"}],
            ValueError,
            r"Argument 'conversation\[1\]' has role 'tool'; expected one of",
        ),
        (
            [{"role": "response_1", "content": "q"}],
            ValueError,
            r"Argument 'conversation\[0\]' has role 'response_1'",
        ),
        ([{"content": "q"}], ValueError, r"Argument 'conversation\[0\]' has role None"),
        (
            [{"role": ["user"], "content": "q"}],
            ValueError,
            r"conversation\[0\]' has role \['user'\]",
        ),
        (
            [{"role": "user", "content": None}],
            TypeError,
            r"Argument 'conversation\[0\]\['content'\]' must be a string or a list of text "
            r"parts, not NoneType",
        ),
        (
            [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}],
            ValueError,
            r"Argument 'conversation\[0\]\['content'\]\[0\]' is a part of type 'image_url'; "
            r"the GenRM reads text only",
        ),
        (
            [{"role": "user", "content": [{"type": "text", "text": 3}]}],
            TypeError,
            r"'conversation\[0\]\['content'\]\[0\]\['text'\]' must be a string, not int",
        ),
        (
            ["hello"],
            TypeError,
            r"Argument 'conversation\[0\]' must be a \{'role', 'content'\} mapping, not str",
        ),
        (
            {"role": "user", "content": "q"},
            TypeError,
            r"Argument 'conversation' must be a string or a list .* not dict",
        ),
        (42, TypeError, r"Argument 'conversation' must be a string or a list .* not int"),
        (None, TypeError, r"Argument 'conversation' must be a string or a list .* not NoneType"),
        (b"hello", TypeError, r"Argument 'conversation' must be a string or a list .* not bytes"),
    ],
)
def test_bad_conversation(conversation: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        build_messages(conversation, "a", "b")


@pytest.mark.parametrize(
    ("response_1", "response_2", "principle", "message"),
    [
        (None, "b", None, r"Argument 'response_1' must be a string, not NoneType"),
        ("a", 3, None, r"Argument 'response_2' must be a string, not int"),
        ("a", ["b"], None, r"Argument 'response_2' must be a string, not list"),
        ("a", "b", 1, r"Argument 'principle' must be a string or None, not int"),
    ],
)
def test_bad_candidates(response_1: Any, response_2: Any, principle: Any, message: str) -> None:
    with pytest.raises(TypeError, match=message):
        build_messages("Q", response_1, response_2, principle=principle)


def test_normalize_conversation_names_the_argument() -> None:
    with pytest.raises(ValueError, match=r"Argument 'history' must end with a user turn"):
        normalize_conversation(
            [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
            name="history",
        )


def test_text_parts_are_joined_as_vllm_joins_them() -> None:
    parts = [{"type": "text", "text": "Look:"}, {"type": "text", "text": "2 + 2?"}]
    assert normalize_conversation([{"role": "user", "content": parts}]) == [
        {"role": "user", "content": "Look:\n2 + 2?"}
    ]
    assert content_text("plain") == "plain"
