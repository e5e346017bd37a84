"""Options from a TOML file (``--config``) and from ``GENRM_*`` environment variables.

Every option of a subcommand can also come from a configuration file or the environment, in
the usual order of precedence: **a flag on the command line, then the environment, then the
file, then the built-in default** (as Slurm job templates need: a shared file, a per-job
variable, a one-off flag).

One rule names them all: **a key or a variable is the option's long flag**.

- **File**: ``--config FILE`` (or ``GENRM_CONFIG=FILE``), TOML. Top-level keys apply to every
  subcommand that has the option; a table named after a subcommand (``[select]``, ``[pairs]``)
  applies to that one and wins over the top level. Keys are flags without ``--``, with ``-``
  or ``_`` (``max-new-tokens = 16384``, ``endpoint = ["http://a:8000/v1", "http://b:8000/v1"]``).
- **Environment**: ``GENRM_`` and the flag in capitals with ``_`` (``GENRM_CONCURRENCY=128``,
  ``GENRM_ENDPOINT=http://a:8000/v1,http://b:8000/v1``).
- **Flags** (options that take no value) take ``true``/``false`` (in the environment also
  ``1``/``yes``/``on`` or ``0``/``no``/``off``): true means the flag is given, false that it
  is not. ``no-verify-tls = true`` or ``GENRM_NO_VERIFY_TLS=1`` turns certificate checks off,
  exactly as ``--no-verify-tls`` does; the names of the settings such flags turn off
  (``GENRM_VERIFY_TLS``, ``position-bias``) are refused, since they read the other way round.

A key or value that does not fit is a usage error naming where it came from; an unknown table or
key is refused too, naming the closest valid one, so a typo is not silently ignored. An unknown
``GENRM_*`` variable is a warning naming the closest valid one (other programs' variables may
share the prefix). Positional arguments (the input file) come from the command line only.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from genrm_rank.cli.options import PROG, UsageError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = [
    "ENV_PREFIX",
    "OTHER_VARIABLES",
    "add_config_option",
    "apply_config",
    "env_name",
    "fill_repeatable",
    "option_key",
    "warn_unknown_environment",
]

ENV_PREFIX = "GENRM_"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_NOT_OPTIONS = {"help", "config", "command"}
OTHER_VARIABLES = frozenset(
    {
        "GENRM_CONFIG",  # the file itself
        "GENRM_API_KEY",  # the key, under --api-key-env's default name
        "GENRM_VLLM_VENV",  # the real-vLLM tests
        "GENRM_VLLM_LOG_DIR",
        "GENRM_EXTRA_SITE",
    }
)
"""``GENRM_*`` variables that are not options but are read by the project (never warned about)."""


def option_key(action: argparse.Action) -> str:
    """The option's name in files and the environment: its long flag, ``_`` for ``-``.

    ``--no-verify-tls`` (dest ``verify_tls``) is ``no_verify_tls``: a file or variable means
    what the flag means, whatever the flag's destination is called.
    """
    flag = next((o for o in action.option_strings if o.startswith("--")), action.option_strings[0])
    return flag.lstrip("-").replace("-", "_")


def env_name(action: argparse.Action) -> str:
    """The environment variable of an option: ``GENRM_`` and :func:`option_key` in capitals."""
    return ENV_PREFIX + option_key(action).upper()


def _flag(action: argparse.Action) -> str:
    return "--" + option_key(action).replace("_", "-")


def _options(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """The subcommand's options by :func:`option_key` (positionals and --help left out)."""
    return {
        option_key(action): action
        for action in parser._actions
        if action.option_strings and action.dest not in _NOT_OPTIONS
    }


def _former_names(options: Mapping[str, argparse.Action]) -> dict[str, argparse.Action]:
    """Names taken from a destination that differ from the flag (``verify_tls``): refused, since
    for a flag like ``--no-verify-tls`` they read the other way round."""
    return {
        action.dest: action
        for key, action in options.items()
        if action.dest != key and action.dest not in options
    }


def _subparser(parser: argparse.ArgumentParser, argv: Sequence[str]) -> tuple[str, Any] | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for item in argv:
                if item in action.choices:
                    return item, action.choices[item]
    return None


def _named_subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    return {
        name: choice
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
        for name, choice in action.choices.items()
    }


def _all_subparsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    return list(_named_subparsers(parser).values())


def _closest(name: str, valid: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` for the closest valid name, or ``""`` when none is close."""
    match = difflib.get_close_matches(name, sorted(set(valid)), n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


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
    name = _flag(action)
    try:
        if action.nargs == 0:  # store_true / store_false: true = the flag is given
            if isinstance(value, bool):
                given = value
            elif str(value).strip().lower() in _TRUE | _FALSE:
                given = str(value).strip().lower() in _TRUE
            else:
                raise argparse.ArgumentTypeError(f"must be true or false, not {value!r}")
            if isinstance(action, argparse.BooleanOptionalAction):  # const is None there
                return True if given else action.default
            return action.const if given else action.default
        if isinstance(action, argparse._AppendAction):
            items = value if isinstance(value, list) else str(value).split(",")
            return [_one(action, item) for item in items if str(item).strip()]
        return _one(action, value)
    except (argparse.ArgumentTypeError, TypeError, ValueError) as exc:
        raise UsageError(f"{source}: {name} {exc}") from None


def _one(action: argparse.Action, value: Any) -> Any:
    if isinstance(value, dict):  # a TOML table for a JSON option (extra-body = {top_k = 20})
        value = json.dumps(value)
    if isinstance(value, list):
        raise argparse.ArgumentTypeError(f"must be a single value, not {type(value).__name__}")
    text = str(value).strip() if not isinstance(value, bool) else str(value).lower()
    converted = action.type(text) if callable(action.type) else text
    if action.choices is not None and converted not in action.choices:
        choices = ", ".join(map(str, action.choices))
        raise argparse.ArgumentTypeError(f"must be one of {choices}, not {converted!r}")
    return converted


def _refuse_former(key: str, action: argparse.Action, source: str, *, env: bool) -> UsageError:
    name = ENV_PREFIX + key.upper() if env else key
    right = env_name(action) if env else option_key(action).replace("_", "-")
    value = ("1" if env else "true") if action.nargs == 0 else "VALUE"
    return UsageError(
        f"{source}: {name!r} is not an option name; names follow the flag: "
        f"{right}{'=' if env else ' = '}{value} means {_flag(action)}"
    )


def _check_table(
    scope: str, table: Mapping[str, Any], options: Mapping[str, argparse.Action], what: str
) -> None:
    """Refuse a key ``options`` lacks, naming the closest valid one."""
    former = _former_names(options)
    for key in table:
        name = key.replace("-", "_")
        if name in options:
            continue
        if name in former:
            raise _refuse_former(name, former[name], scope, env=False)
        valid = [k.replace("_", "-") for k in options]
        raise UsageError(f"{scope}: {what} option {key!r}{_closest(key.replace('_', '-'), valid)}")


def _from_file(
    path: Path,
    command: str,
    options: Mapping[str, argparse.Action],
    subparsers: Mapping[str, argparse.ArgumentParser],
) -> dict[str, Any]:
    """The values the file gives ``command``'s options, by option key."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"argument --config: cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"argument --config: {path} is not valid TOML ({exc})") from None
    every = {key: action for sub in subparsers.values() for key, action in _options(sub).items()}
    tables = {k: v for k, v in data.items() if isinstance(v, dict) and k in subparsers}
    top = {k: v for k, v in data.items() if k not in tables}
    for key, value in top.items():
        if isinstance(value, dict) and key.replace("-", "_") not in every:
            raise UsageError(f"{path}: no subcommand [{key}]{_closest(key, subparsers)}")
    _check_table(f"{path}", top, every, "no subcommand has an")
    for name, table in tables.items():
        _check_table(f"{path} [{name}]", table, _options(subparsers[name]), f"{name} has no")
    former = _former_names(options)
    for key in top:  # valid for another subcommand, but read the other way round by this one
        name = key.replace("-", "_")
        if name not in options and name in former:
            raise _refuse_former(name, former[name], f"{path}", env=False)
    values: dict[str, Any] = {}
    section = tables.get(command, {})
    for scope, table in ((f"{path}", top), (f"{path} [{command}]", section)):
        for key, value in table.items():
            name = key.replace("-", "_")
            if name in options:
                values[name] = _convert(options[name], value, scope)
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
        values.update(_from_file(path, command, options, _named_subparsers(parser)))
    for key, action in _former_names(options).items():
        name = ENV_PREFIX + key.upper()
        if name in environ:
            raise _refuse_former(key, action, f"environment {name}", env=True)
    for key, action in options.items():
        name = env_name(action)
        if name in environ and name != ENV_PREFIX + "CONFIG":
            values[key] = _convert(action, environ[name], f"environment {name}")
    repeatable = {
        options[key].dest: values.pop(key)
        for key in list(values)
        if isinstance(options[key], argparse._AppendAction)
    }
    sub.set_defaults(**{options[key].dest: value for key, value in values.items()})
    return repeatable


def warn_unknown_environment(
    parser: argparse.ArgumentParser,
    environ: Mapping[str, str] | None = None,
    *,
    also: Iterable[str] = (),
    stream: IO[str] | None = None,
) -> list[str]:
    """Warn about ``GENRM_*`` variables that no option reads (a typo would be ignored).

    ``also`` names further variables in use (the one ``--api-key-env`` names). Returns the
    warnings written to ``stream`` (standard error by default).
    """
    environ = os.environ if environ is None else environ
    known = set(OTHER_VARIABLES) | set(also)
    for sub in _all_subparsers(parser):
        known.update(env_name(action) for action in _options(sub).values())
    warnings = [
        f"{PROG}: warning: environment variable {name} is not an option and is ignored"
        + _closest(name, known)
        for name in sorted(environ)
        if name.startswith(ENV_PREFIX) and name not in known
    ]
    out = sys.stderr if stream is None else stream
    for line in warnings:
        print(line, file=out)
    return warnings


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
