"""Argument checks shared by the package, each naming the argument and what it received.

Each check takes the argument's name and value, raises ``TypeError`` for a wrong type and
:class:`~genrm_rank.errors.ArgumentError` for a value out of range, in openskill's wording
(``"Argument 'x' must be ..., not ...."``), and returns the value normalised (a numpy integer
becomes an ``int``). A bool is never a number here. ``optional=True`` lets ``None`` through and
says so in the message.

>>> from genrm_rank import validate as check
>>> check.count("retries", 3, 0)
3
>>> check.count("retries", True, 0)
Traceback (most recent call last):
...
genrm_rank.errors.ArgumentError: Argument 'retries' must be an int >= 0, not True.
>>> check.one_of("policy", "spill", ("spill", "round_robin"))
'spill'
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping
from typing import Any, Literal, TypeGuard, TypeVar, overload

import numpy as np

from genrm_rank.errors import ArgumentError, Words

__all__ = [
    "at_least",
    "count",
    "flag",
    "instance",
    "integer",
    "is_int",
    "mapping",
    "number",
    "one_of",
    "positive",
    "probability",
    "text",
]

T = TypeVar("T")


def _or_none(optional: bool) -> str:
    return " or None" if optional else ""


def is_int(value: object) -> TypeGuard[int | np.integer[Any]]:
    """Whether ``value`` is an integer (numpy integers too) and not a bool.

    >>> is_int(3), is_int(np.int64(3)), is_int(True), is_int(3.0)
    (True, True, False, False)
    """
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def integer(
    name: str,
    value: object,
    minimum: int | None = None,
    *,
    spelled: Literal["at least", ">="] = "at least",
) -> int:
    """An int of at least ``minimum`` (the bound ``spelled`` as the caller always has):
    ``TypeError`` for a non-int, ``ValueError`` below it.

    >>> integer("n_items", 1, 2)
    Traceback (most recent call last):
    ...
    genrm_rank.errors.ArgumentError: Argument 'n_items' must be at least 2, not 1.
    """
    if not is_int(value):
        raise TypeError(f"Argument '{name}' must be an int, not {type(value).__name__}.")
    if minimum is not None and value < minimum:
        raise ArgumentError(name, f"must be {spelled} {minimum}, not {value}.")
    return int(value)


@overload
def count(name: str, value: object, minimum: int, *, optional: Literal[False] = ...) -> int: ...
@overload
def count(name: str, value: object, minimum: int, *, optional: bool) -> int | None: ...
def count(name: str, value: object, minimum: int, *, optional: bool = False) -> int | None:
    """An int of at least ``minimum`` (or ``None`` when optional), else one ``ValueError`` for
    a wrong type and a value out of range alike."""
    if optional and value is None:
        return None
    if not is_int(value) or value < minimum:
        raise ArgumentError(
            name, f"must be an int >= {minimum}{_or_none(optional)}, not {value!r}."
        )
    return int(value)


@overload
def number(name: str, value: object, *, optional: Literal[False] = ...) -> float: ...
@overload
def number(name: str, value: object, *, optional: bool) -> float | None: ...
def number(name: str, value: object, *, optional: bool = False) -> float | None:
    """A finite number as a float: ``TypeError`` for a non-number, ``ValueError`` if not finite.

    >>> number("alpha", float("nan"))
    Traceback (most recent call last):
    ...
    genrm_rank.errors.ArgumentError: Argument 'alpha' must be finite, not nan.
    """
    if optional and value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(
            f"Argument '{name}' must be a number{_or_none(optional)}, not {type(value).__name__}."
        )
    if not math.isfinite(value):
        raise ArgumentError(name, f"must be finite, not {value}.")
    return float(value)


def _holds(
    name: str, value: T | None, test: Callable[[Any], bool], words: str, optional: bool
) -> T | None:
    if optional and value is None:
        return None
    if not test(value):
        raise ArgumentError(name, f"must be {words}{_or_none(optional)}, not {value!r}.")
    return value


@overload
def at_least(name: str, value: T, bound: float, *, optional: Literal[False] = ...) -> T: ...
@overload
def at_least(name: str, value: T | None, bound: float, *, optional: bool) -> T | None: ...
def at_least(name: str, value: T | None, bound: float, *, optional: bool = False) -> T | None:
    """A value ``>= bound`` (NaN is not), returned as given; else ``ValueError``.

    >>> at_least("retry_after", -1.0, 0)
    Traceback (most recent call last):
    ...
    genrm_rank.errors.ArgumentError: Argument 'retry_after' must be >= 0, not -1.0.
    """
    return _holds(name, value, lambda v: v >= bound, f">= {bound}", optional)


@overload
def positive(name: str, value: T, *, optional: Literal[False] = ...) -> T: ...
@overload
def positive(name: str, value: T | None, *, optional: bool) -> T | None: ...
def positive(name: str, value: T | None, *, optional: bool = False) -> T | None:
    """A value ``> 0`` (NaN is not), returned as given; else ``ValueError``.

    >>> positive("timeout", 0)
    Traceback (most recent call last):
    ...
    genrm_rank.errors.ArgumentError: Argument 'timeout' must be > 0, not 0.
    """
    return _holds(name, value, lambda v: v > 0, "> 0", optional)


def probability(name: str, value: T) -> T:
    """A value in ``[0, 1]`` (NaN is not), returned as given; else ``ValueError``.

    >>> probability("unreadable_rate", 1.5)
    Traceback (most recent call last):
    ...
    genrm_rank.errors.ArgumentError: Argument 'unreadable_rate' must be in [0, 1], not 1.5.
    """
    return _holds(name, value, lambda v: 0.0 <= v <= 1.0, "in [0, 1]", False)  # type: ignore[return-value]


def _typed(name: str, value: object, kind: type[T], what: str, optional: bool) -> T | None:
    if optional and value is None:
        return None
    if not isinstance(value, kind):
        raise TypeError(
            Words(
                "{head} must be {what}{none}, not {kind}.",
                head=ArgumentError.Setting(name),
                what=what,
                none=_or_none(optional),
                kind=type(value).__name__,
            )
        )
    return value


@overload
def flag(name: str, value: object, *, optional: Literal[False] = ...) -> bool: ...
@overload
def flag(name: str, value: object, *, optional: bool) -> bool | None: ...
def flag(name: str, value: object, *, optional: bool = False) -> bool | None:
    """A bool (an int 0 or 1 is not one), or ``None`` when optional; else ``TypeError``."""
    return _typed(name, value, bool, "a bool", optional)


def instance(name: str, value: object, kind: type[T], what: str | None = None) -> T:
    """An instance of ``kind``; else ``TypeError`` naming ``what`` (``a <kind>``) and the type.

    >>> instance("spec", {}, str)
    Traceback (most recent call last):
    ...
    TypeError: Argument 'spec' must be a str, not dict.
    """
    return _typed(name, value, kind, what or f"a {kind.__name__}", False)  # type: ignore[return-value]


def one_of(name: str, value: T, choices: Collection[object]) -> T:
    """A value among ``choices`` (shown as given, e.g. a tuple); else ``ValueError``."""
    if value not in choices:
        raise ArgumentError(name, f"must be one of {choices}, not {value!r}.")
    return value


def text(name: str, value: object) -> str:
    """A non-empty string; else ``ValueError`` (the value is shown)."""
    if not isinstance(value, str) or not value:
        raise ArgumentError(name, f"must be a non-empty string, not {value!r}.")
    return value


@overload
def mapping(name: str, value: object, *, optional: Literal[False] = ...) -> Mapping[Any, Any]: ...
@overload
def mapping(name: str, value: object, *, optional: bool) -> Mapping[Any, Any] | None: ...
def mapping(name: str, value: object, *, optional: bool = False) -> Mapping[Any, Any] | None:
    """A mapping (or ``None`` when optional); else ``TypeError``."""
    return _typed(name, value, Mapping, "a mapping", optional)  # type: ignore[type-abstract]
