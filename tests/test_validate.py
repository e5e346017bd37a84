"""The shared argument checks: what each accepts, and the exact words of what it refuses."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from genrm_rank import validate as check


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (lambda: check.integer("n", np.int64(3), 2), 3),
        (lambda: check.integer("n", 3), 3),
        (lambda: check.count("k", 0, 0), 0),
        (lambda: check.count("k", None, 1, optional=True), None),
        (lambda: check.number("x", np.float32(0.5)), 0.5),
        (lambda: check.number("x", None, optional=True), None),
        (lambda: check.at_least("x", 0.0, 0), 0.0),
        (lambda: check.at_least("x", None, 0, optional=True), None),
        (lambda: check.positive("x", 1e-9), 1e-9),
        (lambda: check.probability("p", 1), 1),
        (lambda: check.flag("f", False), False),
        (lambda: check.flag("f", None, optional=True), None),
        (lambda: check.one_of("c", "b", ("a", "b")), "b"),
        (lambda: check.text("s", "x"), "x"),
        (lambda: check.mapping("m", {"a": 1}), {"a": 1}),
        (lambda: check.mapping("m", None, optional=True), None),
        (lambda: check.instance("s", "x", str), "x"),
    ],
)
def test_accepts_and_returns_the_value(call: Callable[[], Any], expected: object) -> None:
    assert call() == expected


def test_returns_plain_python_numbers() -> None:
    assert type(check.integer("n", np.int64(3))) is int
    assert type(check.count("n", np.int32(3), 1)) is int
    assert type(check.number("x", 2)) is float


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda: check.integer("n_items", True, 2),
            TypeError,
            "Argument 'n_items' must be an int, not bool.",
        ),
        (
            lambda: check.integer("n_items", 2.0, 2),
            TypeError,
            "Argument 'n_items' must be an int, not float.",
        ),
        (
            lambda: check.integer("n_items", 1, 2),
            ValueError,
            "Argument 'n_items' must be at least 2, not 1.",
        ),
        (
            lambda: check.integer("seed", -1, 0, spelled=">="),
            ValueError,
            "Argument 'seed' must be >= 0, not -1.",
        ),
        (
            lambda: check.count("capacity", 0, 1),
            ValueError,
            "Argument 'capacity' must be an int >= 1, not 0.",
        ),
        (
            lambda: check.count("capacity", "2", 1),
            ValueError,
            "Argument 'capacity' must be an int >= 1, not '2'.",
        ),
        (
            lambda: check.count("capacity", False, 0),
            ValueError,
            "Argument 'capacity' must be an int >= 0, not False.",
        ),
        (
            lambda: check.count("max_pairs", 0, 1, optional=True),
            ValueError,
            "Argument 'max_pairs' must be an int >= 1 or None, not 0.",
        ),
        (
            lambda: check.number("alpha", "1"),
            TypeError,
            "Argument 'alpha' must be a number, not str.",
        ),
        (
            lambda: check.number("alpha", True),
            TypeError,
            "Argument 'alpha' must be a number, not bool.",
        ),
        (
            lambda: check.number("min_score", [], optional=True),
            TypeError,
            "Argument 'min_score' must be a number or None, not list.",
        ),
        (
            lambda: check.number("alpha", math.inf),
            ValueError,
            "Argument 'alpha' must be finite, not inf.",
        ),
        (
            lambda: check.at_least("retry_after", -0.5, 0),
            ValueError,
            "Argument 'retry_after' must be >= 0, not -0.5.",
        ),
        (
            lambda: check.at_least("x", math.nan, 0),
            ValueError,
            "Argument 'x' must be >= 0, not nan.",
        ),
        (
            lambda: check.at_least("down_timeout", -1, 0, optional=True),
            ValueError,
            "Argument 'down_timeout' must be >= 0 or None, not -1.",
        ),
        (
            lambda: check.positive("timeout", 0),
            ValueError,
            "Argument 'timeout' must be > 0, not 0.",
        ),
        (
            lambda: check.positive("requests_per_second", -1.0, optional=True),
            ValueError,
            "Argument 'requests_per_second' must be > 0 or None, not -1.0.",
        ),
        (
            lambda: check.probability("rate", 1.5),
            ValueError,
            "Argument 'rate' must be in [0, 1], not 1.5.",
        ),
        (
            lambda: check.probability("rate", math.nan),
            ValueError,
            "Argument 'rate' must be in [0, 1], not nan.",
        ),
        (
            lambda: check.flag("position_bias", 1),
            TypeError,
            "Argument 'position_bias' must be a bool, not int.",
        ),
        (
            lambda: check.flag("id_from_line", "yes", optional=True),
            TypeError,
            "Argument 'id_from_line' must be a bool or None, not str.",
        ),
        (
            lambda: check.one_of("swap", "never", ("both", "none")),
            ValueError,
            "Argument 'swap' must be one of ('both', 'none'), not 'never'.",
        ),
        (
            lambda: check.text("model", ""),
            ValueError,
            "Argument 'model' must be a non-empty string, not ''.",
        ),
        (
            lambda: check.text("model", None),
            ValueError,
            "Argument 'model' must be a non-empty string, not None.",
        ),
        (
            lambda: check.mapping("data", []),
            TypeError,
            "Argument 'data' must be a mapping, not list.",
        ),
        (
            lambda: check.instance("cache", {}, Path),
            TypeError,
            "Argument 'cache' must be a Path, not dict.",
        ),
        (
            lambda: check.instance("principle", 3, str, "a string or None"),
            TypeError,
            "Argument 'principle' must be a string or None, not int.",
        ),
        (
            lambda: check.mapping("extra_body", 1, optional=True),
            TypeError,
            "Argument 'extra_body' must be a mapping or None, not int.",
        ),
    ],
)
def test_refuses_with_the_argument_named(
    call: Callable[[], Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        call()


@pytest.mark.parametrize("value", [True, False, np.bool_(True), 1.0, "1", None])
def test_is_int_refuses_bools_and_non_integers(value: object) -> None:
    assert not check.is_int(value)
