"""The ``genrm-rank`` command line (``genrm-rank --help`` lists the subcommands and the exit
statuses). Every option is declared once (:mod:`.options`); the parser, the ``--config`` keys and
the ``GENRM_*`` variables come from that declaration (:mod:`.config`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from genrm_rank.cli.commands import COMMAND_FUNCTIONS, bundled_example
from genrm_rank.cli.config import build_parser, cli_words, parse_args, warn_unknown_environment
from genrm_rank.cli.options import (
    EXIT_BROKEN_PIPE,
    EXIT_CAP,
    EXIT_INTERRUPTED,
    EXIT_NO_SPACE,
    EXIT_OK,
    EXIT_ROWS_FAILED,
    EXIT_TERMINATED,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    PROG,
    UsageError,
)
from genrm_rank.errors import EndpointsUnavailableError, JudgeConfigurationError
from genrm_rank.redaction import redact_url
from genrm_rank.sdg.progress import format_summary

__all__ = [
    "EXIT_BROKEN_PIPE",
    "EXIT_CAP",
    "EXIT_INTERRUPTED",
    "EXIT_NO_SPACE",
    "EXIT_OK",
    "EXIT_ROWS_FAILED",
    "EXIT_TERMINATED",
    "EXIT_UNAVAILABLE",
    "EXIT_USAGE",
    "build_parser",
    "bundled_example",
    "format_summary",
    "main",
]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``genrm-rank``; returns the exit status."""
    try:
        args = parse_args(list(sys.argv[1:] if argv is None else argv))
    except UsageError as exc:  # a --config file or a GENRM_* variable that does not fit
        build_parser().error(str(exc))
    key_variable = getattr(args, "api_key_env", None)
    warn_unknown_environment(also=[key_variable] if key_variable else [])
    error: Exception
    try:
        return COMMAND_FUNCTIONS[command_of(args)](args)
    except EndpointsUnavailableError as exc:
        status, error = EXIT_UNAVAILABLE, exc
    except (UsageError, JudgeConfigurationError, ValueError) as exc:
        # a bad option, every endpoint refusing the run, or a library check naming the argument
        status, error = EXIT_USAGE, exc
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    words = redact_url(cli_words(error, command_of(args)))
    print(f"{PROG} {args.command}: error: {words}", file=sys.stderr)
    return status


def command_of(args: argparse.Namespace) -> str:
    """The subcommand's name in :data:`~genrm_rank.cli.options.COMMANDS` (``cache merge``)."""
    action = getattr(args, "cache_command", None)
    return f"{args.command} {action}" if action else str(args.command)
