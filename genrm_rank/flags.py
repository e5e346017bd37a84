"""Command-line options declared as values, for ``genrm-rank`` and ``python -m genrm_rank.server``.

An :class:`Option` is one flag (or positional) with its help, type, default and the library
arguments it sets; its :attr:`~Option.key` and :attr:`~Option.env` name it in a TOML file and in
the environment, always after the flag (``--no-verify-tls`` is ``no_verify_tls`` and
``GENRM_NO_VERIFY_TLS``, given by ``true``), so a file or a variable means what the flag means;
the names of the settings such flags turn off (``GENRM_VERIFY_TLS``) are refused.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["ENV_PREFIX", "Action", "Option", "documented", "integer", "json_object", "number"]

ENV_PREFIX = "GENRM_"
"""The prefix of every option's environment variable."""

Action = Literal["store", "store_true", "store_false", "toggle", "append", "positional"]


@dataclass(frozen=True)
class Option:
    """One option, declared once: ``flag`` is the long flag (or a positional's name);
    ``params`` are the library arguments it sets, besides its :attr:`dest`."""

    flag: str
    help: str = ""
    type: Callable[[str], Any] | None = None
    default: Any = None
    metavar: str | None = None
    action: Action = "store"
    short: str | None = None
    dest_: str | None = None
    choices: tuple[str, ...] | None = None
    nargs: str | None = None
    required: bool = False
    params: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")

    @property
    def dest(self) -> str:
        return self.dest_ or self.key

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.key.upper()

    @property
    def takes_value(self) -> bool:
        return self.action not in ("store_true", "store_false", "toggle")

    @property
    def shown(self) -> str:
        """How messages name it: the flag, or a positional's metavar."""
        return self.metavar or self.flag if self.action == "positional" else self.flag

    def add_to(self, parser: argparse.ArgumentParser | Any, default: Any = None) -> None:
        """Add the option to ``parser`` (or a group), with ``default`` in place of its own."""
        value = self.default if default is None else default
        text = self.help
        if self.takes_value and value not in (None, "", [], {}) and "default" not in text:
            text += " (default: %(default)s)"
        kwargs: dict[str, Any] = {"help": text.strip()}
        if self.type is not None:
            kwargs["type"] = self.type
        if self.action == "positional":
            parser.add_argument(self.dest, nargs=self.nargs, metavar=self.metavar, **kwargs)
            return
        names = [*([self.short] if self.short else []), self.flag]
        action = argparse.BooleanOptionalAction if self.action == "toggle" else self.action
        default_ = None if self.action == "append" else value
        kwargs.update(dest=self.dest, action=action, default=default_)
        if self.takes_value:
            kwargs.update(metavar=self.metavar, choices=self.choices, required=self.required)
        parser.add_argument(*names, **kwargs)


def integer(minimum: int) -> Callable[[str], int]:
    """An integer ``>= minimum``."""

    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer, not {value!r}") from None
        if number < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, not {number}")
        return number

    return parse


def number(low: float = -math.inf, high: float = math.inf, *, positive: bool = False) -> Any:
    """A finite number in ``[low, high]`` (``> 0`` if ``positive``)."""

    def parse(value: str) -> float:
        try:
            x = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number, not {value!r}") from None
        if not math.isfinite(x):
            raise argparse.ArgumentTypeError(f"must be finite, not {value!r}")
        if positive and x <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, not {value}")
        if not low <= x <= high:
            raise argparse.ArgumentTypeError(f"must be in [{low:g}, {high:g}], not {value}")
        return x

    return parse


def json_object(value: str) -> dict[str, Any]:
    """A JSON object."""
    try:
        data = json.loads(value)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"is not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object, not {type(data).__name__}")
    return data


def documented(cls: type) -> dict[str, str]:
    """The first paragraph of each parameter in ``cls``'s numpydoc Parameters section, as an
    option's help: plain text, lower case (but for a name like ``L2``), no final stop."""
    section = inspect.cleandoc(cls.__doc__ or "").split("Parameters\n----------\n")[1]
    texts: dict[str, str] = {}
    name, ended = "", False
    for line in section.splitlines():
        if line and not line.startswith(" "):
            if " : " not in line:  # the next section
                break
            name, ended = line.split(" : ")[0], False
            texts[name] = ""
        elif not line.strip():
            ended = True
        elif not ended:
            texts[name] += " " + line.strip().replace("``", "")
    plain = {k: v.strip().removesuffix(".") for k, v in texts.items()}
    return {k: v[:1].lower() + v[1:] if v[1:2].islower() else v for k, v in plain.items()}
