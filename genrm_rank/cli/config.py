"""Options from a TOML file (``--config``) and from ``GENRM_*`` environment variables.

Every option of a subcommand can also come from a configuration file or the environment, in
the usual order of precedence: **a flag on the command line, then the environment, then the
file, then the built-in default** (as Slurm job templates need: a shared file, a per-job
variable, a one-off flag).

- **File**: ``--config FILE`` (or ``GENRM_CONFIG=FILE``), TOML. Top-level keys apply to every
  subcommand that has the option; a table named after a subcommand (``[select]``, ``[pairs]``)
  applies to that one and wins over the top level. Keys are option names with ``-`` or ``_``
  (``max-new-tokens = 16384``, ``endpoint = ["http://a:8000/v1", "http://b:8000/v1"]``).
- **Environment**: ``GENRM_`` and the option's name in capitals with ``_``
  (``GENRM_CONCURRENCY=128``, ``GENRM_ENDPOINT=http://a:8000/v1,http://b:8000/v1``; flags take
  ``1``/``true``/``yes``/``on`` or ``0``/``false``/``no``/``off``).

A key or value that does not fit is a usage error naming where it came from; a key the
subcommand does not have is refused too, so a typo is not silently ignored. Positional
arguments (the input file) come from the command line only.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from genrm_rank.cli.options import UsageError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["ENV_PREFIX", "add_config_option", "apply_config", "fill_repeatable"]

ENV_PREFIX = "GENRM_"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_NOT_OPTIONS = {"help", "config", "command"}


def _options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """The subcommand's options by dest (positionals and --help left out)."""
    return {
        action.dest: action
        for action in parser._actions
        if action.option_strings and action.dest not in _NOT_OPTIONS
    }


def _subparser(parser: argparse.ArgumentParser, argv: Sequence[str]) -> tuple[str, Any] | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for item in argv:
                if item in action.choices:
                    return item, action.choices[item]
    return None


def _all_subparsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    return [
        choice
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
        for choice in action.choices.values()
    ]


def _config_path(argv: Sequence[str], environ: Mapping[str, str]) -> Path | None:
    for i, item in enumerate(argv):
        if item == "--config" and i + 1 < len(argv):
            return Path(argv[i + 1])
        if item.startswith("--config="):
            return Path(item.split("=", 1)[1])
    value = environ.get(ENV_PREFIX + "CONFIG")
    return Path(value) if value else None


def _convert(action: argparse.Action, value: Any, source: str) -> Any:
    """A file or environment value as the option's own parser would give it."""
    name = action.option_strings[-1]
    try:
        if action.nargs == 0:  # store_true / store_false
            if isinstance(value, bool):
                flag = value
            elif str(value).strip().lower() in _TRUE | _FALSE:
                flag = str(value).strip().lower() in _TRUE
            else:
                raise argparse.ArgumentTypeError(f"must be true or false, not {value!r}")
            return flag if action.const is True else not flag
        if isinstance(action, argparse._AppendAction):
            items = value if isinstance(value, list) else str(value).split(",")
            return [_one(action, item) for item in items if str(item).strip()]
        return _one(action, value)
    except (argparse.ArgumentTypeError, TypeError, ValueError) as exc:
        raise UsageError(f"{source}: {name} {exc}") from None


def _one(action: argparse.Action, value: Any) -> Any:
    if isinstance(value, (dict, list)):
        raise argparse.ArgumentTypeError(f"must be a single value, not {type(value).__name__}")
    text = str(value).strip() if not isinstance(value, bool) else str(value).lower()
    converted = action.type(text) if callable(action.type) else text
    if action.choices is not None and converted not in action.choices:
        choices = ", ".join(map(str, action.choices))
        raise argparse.ArgumentTypeError(f"must be one of {choices}, not {converted!r}")
    return converted


def _from_file(
    path: Path, command: str, options: Mapping[str, argparse.Action], known: set[str]
) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"argument --config: cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"argument --config: {path} is not valid TOML ({exc})") from None
    top = {k: v for k, v in data.items() if not isinstance(v, dict)}
    section = data.get(command, {})
    values: dict[str, Any] = {}
    for scope, table in ((f"{path}", top), (f"{path} [{command}]", section)):
        for key, value in table.items():
            dest = key.replace("-", "_")
            if dest not in options:
                if scope == str(path) and dest in known:
                    continue  # a top-level key for other subcommands
                if scope == str(path):
                    raise UsageError(f"{scope}: no subcommand has an option {key!r}")
                raise UsageError(f"{scope}: {command} has no option {key!r}")
            values[dest] = _convert(options[dest], value, scope)
    return values


def apply_config(
    parser: argparse.ArgumentParser,
    argv: Sequence[str],
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Set the chosen subcommand's defaults from the config file, then the environment.

    Returns the values of repeatable options (``--endpoint``), which argparse would otherwise
    add to, not replace, on the command line: fill them in after parsing when the command line
    gave none (:func:`fill_repeatable`).
    """
    environ = os.environ if environ is None else environ
    found = _subparser(parser, argv)
    if found is None:
        return {}
    command, sub = found
    options = _options(sub)
    values: dict[str, Any] = {}
    path = _config_path(argv, environ)
    if path is not None:
        known = {dest for choice in _all_subparsers(parser) for dest in _options(choice)}
        values.update(_from_file(path, command, options, known))
    for dest, action in options.items():
        name = ENV_PREFIX + dest.upper()
        if name in environ and name != ENV_PREFIX + "CONFIG":
            values[dest] = _convert(action, environ[name], f"environment {name}")
    repeatable = {
        dest: values.pop(dest)
        for dest in list(values)
        if isinstance(options[dest], argparse._AppendAction)
    }
    sub.set_defaults(**values)
    return repeatable


def fill_repeatable(args: argparse.Namespace, repeatable: Mapping[str, Any]) -> None:
    """Repeatable options from the file or environment, where the command line gave none."""
    for dest, value in repeatable.items():
        if not getattr(args, dest, None):
            setattr(args, dest, value)


def add_config_option(parser: argparse.ArgumentParser) -> None:
    """Give every subcommand a ``--config FILE`` option (read before parsing)."""
    for sub in _all_subparsers(parser):
        sub.add_argument(
            "--config",
            type=Path,
            default=None,
            metavar="FILE",
            help="options from a TOML file (flag > GENRM_* environment > file > default; "
            "see the README's Configuration)",
        )
