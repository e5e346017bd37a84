"""The ``genrm-rank`` command line.

Subcommands::

    genrm-rank rank IN.jsonl -o OUT.jsonl          full ranking of every row
    genrm-rank select IN.jsonl -o OUT.jsonl        best of N per row (thresholds optional)
    genrm-rank pairs IN.jsonl -o PAIRS.jsonl       chosen/rejected pairs for DPO
    genrm-rank compare --prompt P --a A --b B      one pair: the verdict and the reasoning
    genrm-rank leaderboard IN.jsonl                model-level table (candidates with ids)
    genrm-rank report OUT.jsonl                    a self-contained HTML report of a run
    genrm-rank serve-sim --port 8000               a simulated vLLM GenRM server
    genrm-rank merge IN.jsonl S0.jsonl S1.jsonl -o OUT.jsonl   merge --shard i/n outputs
    genrm-rank cache merge OUT.db IN1.db IN2.db    merge the verdict caches of several shards
    genrm-rank demo                                everything above on bundled data, offline

The judge is ``--endpoint URL`` (repeatable: one per vLLM replica; an OpenAI-compatible base URL
ending in ``/v1``) or ``--judge simulated`` (an in-process simulated GenRM, for tests and
dry runs). Exit status: 0 every row ranked, 1 some rows failed (bad input or ranking failure;
see the errors file), 2 usage error, 3 a ``--max-calls``/``--max-tokens`` cap stopped the run
(``--resume`` continues it), 4 every endpoint was unavailable (``--resume`` continues), 5 the
disk filled up (free space, then ``--resume`` continues), 130 interrupted (SIGINT; 143 for
SIGTERM), after writing every row that was complete; 141 ``-o -`` whose reader went away
(``| head``).

A run writes only the files it is given (and their ``OUT.errors.jsonl``,
``OUT.rejected.jsonl`` and ``OUT.run.json`` sidecars): every one must differ from the others
and from the inputs and the cache, the output is locked while the run lasts (a second run on it
is refused), and ``--overwrite`` empties files in place, never unlinking a path.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from genrm_rank.cli.commands import (
    bundled_example,
    cmd_cache,
    cmd_compare,
    cmd_demo,
    cmd_leaderboard,
    cmd_pairs,
    cmd_rank,
    cmd_report,
    cmd_select,
    cmd_serve_sim,
)
from genrm_rank.cli.config import (
    add_config_option,
    apply_config,
    fill_repeatable,
    warn_unknown_environment,
)
from genrm_rank.cli.judge import ServerDownError, cli_words
from genrm_rank.cli.merge import cmd_merge
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
    build_parser,
)
from genrm_rank.cli.report import format_summary
from genrm_rank.errors import EndpointsUnavailableError, JudgeConfigurationError
from genrm_rank.redaction import redact_url

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

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "rank": cmd_rank,
    "select": cmd_select,
    "pairs": cmd_pairs,
    "compare": cmd_compare,
    "leaderboard": cmd_leaderboard,
    "report": cmd_report,
    "serve-sim": cmd_serve_sim,
    "merge": cmd_merge,
    "cache": cmd_cache,
    "demo": cmd_demo,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``genrm-rank``; returns the exit status."""
    parser = build_parser()
    add_config_option(parser)
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        repeatable = apply_config(parser, argv)
    except UsageError as exc:
        parser.error(str(exc))
    args = parser.parse_args(argv)
    fill_repeatable(args, repeatable)
    key_variable = getattr(args, "api_key_env", None)
    warn_unknown_environment(parser, also=[key_variable] if key_variable else [])
    try:
        return COMMANDS[args.command](args)
    except UsageError as exc:
        _error(args, exc)
        return EXIT_USAGE
    except (ServerDownError, EndpointsUnavailableError) as exc:
        _error(args, exc)
        return EXIT_UNAVAILABLE
    except JudgeConfigurationError as exc:  # every endpoint refused the run: a usage error
        _error(args, exc)
        return EXIT_USAGE
    except ValueError as exc:  # a library check that names the argument
        _error(args, exc)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def _error(args: argparse.Namespace, exc: Exception) -> None:
    """The error in the CLI's words (flags, not parameters), no URL's password in it."""
    print(f"{PROG} {args.command}: error: {redact_url(cli_words(str(exc)))}", file=sys.stderr)
