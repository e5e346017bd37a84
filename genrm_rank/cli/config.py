"""The parser, a TOML file (``--config``) and ``GENRM_*`` variables, all from the option table
(flag > environment > file > default; names follow the flag: :class:`~genrm_rank.flags.Option`),
and the library's messages in the CLI's words. A key or value that does not fit is a usage error
naming where it came from and the closest valid name; an unknown ``GENRM_*`` variable a warning.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from genrm_rank.cli.options import (
    COMMANDS,
    PROG,
    UsageError,
    every_option,
    groups_of,
    options_of,
)
from genrm_rank.errors import ArgumentError, Words
from genrm_rank.flags import ENV_PREFIX, Option

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["OTHER_VARIABLES", "build_parser", "cli_words", "parse_args", "warn_unknown_environment"]

_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}
OTHER_VARIABLES = frozenset(
    {"GENRM_CONFIG", "GENRM_API_KEY", "GENRM_VLLM_VENV", "GENRM_VLLM_LOG_DIR", "GENRM_EXTRA_SITE"}
)
"""``GENRM_*`` variables that are not options but are read by the project (never warned about):
the file itself, the key under ``--api-key-env``'s default name, the real-vLLM tests'."""

DESCRIPTION = """\
Rank candidate responses with pairwise generative reward models (NVIDIA Nemotron GenRMs served
by vLLM, or any OpenAI-compatible server).

Input rows (JSON Lines, .gz/.zst, a JSON array, Parquet, a Hugging Face dataset, or stdin):
  {"id": ..., "prompt" | "conversation" | "messages": ..., "candidates": [str | {"id", "text"}],
   "principle"?: str}

Exit status: 0 all rows ranked; 1 some rows failed (see the errors file); 2 usage error;
3 a --max-calls/--max-tokens cap stopped the run (resumable); 4 every endpoint was unavailable
(resumable); 5 the disk filled up (resumable); 130 interrupted (resumable); 141 -o - and its
reader went away.
"""
EPILOG = """\
examples:
  genrm-rank demo
  genrm-rank serve-sim --port 8000 &
  genrm-rank select sdg.jsonl -o best.jsonl --endpoint http://127.0.0.1:8000/v1 --cache verdicts.db
  genrm-rank select sdg.jsonl -o best.jsonl --endpoint http://127.0.0.1:8000/v1 \\
      --cache verdicts.db --resume
  genrm-rank pairs sdg.jsonl -o dpo.jsonl --endpoint http://127.0.0.1:8000/v1 \\
      --all-pairs --min-margin 1
"""


def build_parser(defaults: Mapping[str, Any] | None = None) -> argparse.ArgumentParser:
    """The ``genrm-rank`` parser, from :data:`~genrm_rank.cli.options.COMMANDS`; ``defaults``
    (by destination) replace the options' own (values from a file or the environment)."""
    defaults = defaults or {}
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parsers = {"": parser.add_subparsers(dest="command", metavar="COMMAND", required=True)}
    for name, command in COMMANDS.items():
        parent, _, action = name.rpartition(" ")  # ``cache merge``: the action of ``cache``
        if parent not in parsers:
            help_ = "verdict cache tools (merge the caches of several shards)"
            tools = parsers[""].add_parser(
                parent, help=help_, description="Tools for --cache files."
            )
            parsers[parent] = tools.add_subparsers(
                dest="cache_command", metavar="ACTION", required=True
            )
        sub = parsers[parent].add_parser(action, help=command.help, description=command.description)
        for title, options in groups_of(name).items():
            group = sub if title is None else sub.add_argument_group(title)
            for option in options:
                option.add_to(group, defaults.get(option.dest))
    return parser


def parse_args(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> argparse.Namespace:
    """``argv`` parsed, with the options a ``--config`` file and ``environ`` give (flag >
    environment > file > default). Raises :class:`UsageError` for a file or a variable that
    does not fit, and exits 2 with argparse's message for a command line that does not."""
    environ = os.environ if environ is None else environ
    command = _command(argv)
    sourced = {} if command is None else _sourced(command, argv, environ)
    repeatable = {o.dest for o in options_of(command) if o.action == "append"} if command else set()
    args = build_parser({k: v for k, v in sourced.items() if k not in repeatable}).parse_args(argv)
    for dest in repeatable:  # argparse would add the command line's to these, not replace them
        if not getattr(args, dest, None):
            setattr(args, dest, sourced.get(dest, []))
    return args


def _command(argv: Sequence[str]) -> str | None:
    name = " ".join(argv[:2]) if argv[:1] == ["cache"] else argv[0] if argv else None
    return name if name in COMMANDS else None


def _configurable(command: str) -> dict[str, Option]:
    """The options of ``command`` a file or the environment may set, by key."""
    return {o.key: o for o in options_of(command) if o.action != "positional" and o.key != "config"}


def _former_names(options: Mapping[str, Option]) -> dict[str, Option]:
    """Names of the settings flags like ``--no-verify-tls`` turn off (``verify_tls``): refused,
    since they read the other way round."""
    return {o.dest: o for key, o in options.items() if o.dest != key and o.dest not in options}


def _closest(name: str, valid: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` for the closest valid name, or ``""`` when none is close."""
    match = difflib.get_close_matches(name, sorted(set(valid)), n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


def _refuse_former(key: str, option: Option, source: str, *, env: bool) -> UsageError:
    name = ENV_PREFIX + key.upper() if env else key
    right = option.env if env else option.key.replace("_", "-")
    value = "VALUE" if option.takes_value else "1" if env else "true"
    return UsageError(
        f"{source}: {name!r} is not an option name; names follow the flag: "
        f"{right}{'=' if env else ' = '}{value} means {option.flag}"
    )


def _convert(option: Option, value: Any, source: str) -> Any:
    """A file or environment value as the option's flag would give it."""
    try:
        if not option.takes_value:  # true = the flag is given
            text = str(value).strip().lower()
            if not isinstance(value, bool) and text not in _TRUE | _FALSE:
                raise argparse.ArgumentTypeError(f"must be true or false, not {value!r}")
            given = value if isinstance(value, bool) else text in _TRUE
            return (option.action != "store_false") if given else option.default
        if option.action == "append":
            items = value if isinstance(value, list) else str(value).split(",")
            return [_one(option, item) for item in items if str(item).strip()]
        return _one(option, value)
    except (argparse.ArgumentTypeError, TypeError, ValueError) as exc:
        raise UsageError(f"{source}: {option.flag} {exc}") from None


def _one(option: Option, value: Any) -> Any:
    if isinstance(value, dict):  # a TOML table for a JSON option (extra-body = {top_k = 20})
        value = json.dumps(value)
    if isinstance(value, list):
        raise argparse.ArgumentTypeError(f"must be a single value, not {type(value).__name__}")
    text = str(value).lower() if isinstance(value, bool) else str(value).strip()
    converted = option.type(text) if option.type is not None else text
    if option.choices is not None and converted not in option.choices:
        choices = ", ".join(option.choices)
        raise argparse.ArgumentTypeError(f"must be one of {choices}, not {converted!r}")
    return converted


def _config_path(argv: Sequence[str], environ: Mapping[str, str]) -> Path | None:
    for i, item in enumerate(argv):
        if item == "--config" and i + 1 < len(argv):
            return Path(argv[i + 1])
        if item.startswith("--config="):
            return Path(item.split("=", 1)[1])
    value = environ.get(ENV_PREFIX + "CONFIG")
    return Path(value) if value else None


def _check_keys(
    scope: str, table: Mapping[str, Any], options: Mapping[str, Option], what: str
) -> None:
    """Refuse a key ``options`` lacks, naming the closest valid one."""
    former = _former_names(options)
    for key in table:
        name = key.replace("-", "_")
        if name in former:
            raise _refuse_former(name, former[name], scope, env=False)
        if name not in options:
            valid = [k.replace("_", "-") for k in options]
            raise UsageError(
                f"{scope}: {what} option {key!r}{_closest(key.replace('_', '-'), valid)}"
            )


def _from_file(path: Path, command: str) -> dict[str, Any]:
    """The values the file gives ``command``'s options, by destination."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"argument --config: cannot read {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"argument --config: {path} is not valid TOML ({exc})") from None
    names = [c for c in COMMANDS if " " not in c]  # a table is named after its subcommand
    every = {o.key: o for c in COMMANDS for o in _configurable(c).values()}
    tables = {k: v for k, v in data.items() if isinstance(v, dict) and k in names}
    top = {k: v for k, v in data.items() if k not in tables}
    for key, value in top.items():
        if isinstance(value, dict) and key.replace("-", "_") not in every:
            raise UsageError(f"{path}: no subcommand [{key}]{_closest(key, names)}")
    _check_keys(f"{path}", top, every, "no subcommand has an")
    for name, table in tables.items():
        _check_keys(f"{path} [{name}]", table, _configurable(name), f"{name} has no")
    options = _configurable(command)
    former = _former_names(options)
    values: dict[str, Any] = {}
    for scope, table in ((f"{path}", top), (f"{path} [{command}]", tables.get(command, {}))):
        for key, value in table.items():
            name = key.replace("-", "_")
            if name in options:
                values[options[name].dest] = _convert(options[name], value, scope)
            elif name in former:  # valid for another subcommand, read the other way round here
                raise _refuse_former(name, former[name], scope, env=False)
    return values


def _sourced(command: str, argv: Sequence[str], environ: Mapping[str, str]) -> dict[str, Any]:
    """The values the file, then the environment, give ``command``'s options, by destination."""
    path = _config_path(argv, environ)
    values = {} if path is None else _from_file(path, command)
    options = _configurable(command)
    for key, option in _former_names(options).items():
        if ENV_PREFIX + key.upper() in environ:
            raise _refuse_former(key, option, f"environment {ENV_PREFIX + key.upper()}", env=True)
    for option in options.values():
        if option.env in environ:
            values[option.dest] = _convert(option, environ[option.env], f"environment {option.env}")
    return values


def warn_unknown_environment(
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
    known = set(OTHER_VARIABLES) | set(also) | {o.env for _, o in every_option()}
    warnings = [
        f"{PROG}: warning: environment variable {name} is not an option and is ignored"
        + _closest(name, known)
        for name in sorted(environ)
        if name.startswith(ENV_PREFIX) and name not in known
    ]
    for line in warnings:
        print(line, file=sys.stderr if stream is None else stream)
    return warnings


# --------------------------------------------------------------------------------------------
# The library's words, in the CLI's: each argument an option sets is named by its flag


def flag_words(command: str) -> Callable[[ArgumentError.Setting, bool], str]:
    """How ``command`` names a library argument: the flag of the option that sets it
    (``params``), ``argument --flag`` at the head of a message; a suggested value is the flag
    that gives it (``verify_tls=False`` is ``--no-verify-tls``)."""
    options = options_of(command)  # a declared parameter wins over a destination
    by_param = {o.dest: o for o in options} | {p: o for o in options for p in o.params}

    def name(setting: ArgumentError.Setting, head: bool) -> str:
        option = by_param.get(setting.name) or by_param.get(setting.name.split("[")[0])
        if option is None:
            return ArgumentError.python_words(setting, head)
        if setting.has_value and option.takes_value:
            return f"{option.shown} {setting.value}"
        if setting.has_value and setting.value != (option.action != "store_false"):
            return ArgumentError.python_words(setting, head)  # a value the flag does not give
        return f"argument {option.shown}" if head else option.shown

    return name


def cli_words(error: BaseException | str, command: str) -> str:
    """An error or a message in ``command``'s words (:meth:`~genrm_rank.errors.Words.worded` by
    :func:`flag_words`)."""
    return Words.worded(error, flag_words(command))
