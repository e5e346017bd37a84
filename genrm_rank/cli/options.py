"""The ``genrm-rank`` options: argument types, the parser, exit statuses."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from genrm_rank.sdg import (
    DEFAULT_PROMPT_FIELDS,
    PAIR_FORMATS,
    RANK_FORMATS,
    SELECT_FORMATS,
    parse_shard,
)
from genrm_rank.sdg.inputs import INPUT_FORMATS
from genrm_rank.sdg.rows import MAX_CANDIDATES
from genrm_rank.spec import RANK_DEFAULTS, SELECT_DEFAULTS, RankSpec
from genrm_rank.strategies import STRATEGIES, SWAP_MODES, strategy_name

EXIT_OK = 0
EXIT_ROWS_FAILED = 1
EXIT_USAGE = 2
EXIT_CAP = 3
EXIT_UNAVAILABLE = 4
EXIT_NO_SPACE = 5
"""The disk (or the quota) filled up: free space, then ``--resume`` continues the run."""
EXIT_BROKEN_PIPE = 141
"""``-o -`` and the reader of standard output went away (``| head``): 128 + SIGPIPE."""
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143

PROG = "genrm-rank"

_STRATEGY_NAMES = ", ".join(name.replace("_", "-") for name in sorted(STRATEGIES))


class UsageError(Exception):
    """A bad option value found after parsing (reported like argparse's, exit 2)."""


# --------------------------------------------------------------------------------------------
# Argument parsing


def _strategy(value: str) -> str:
    try:
        return strategy_name(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid strategy {value!r} (choose from {_STRATEGY_NAMES})"
        ) from None


def _int_at_least(value: str, minimum: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer, not {value!r}") from None
    if number < minimum:
        raise argparse.ArgumentTypeError(f"must be >= {minimum}, not {number}")
    return number


def _positive_int(value: str) -> int:
    return _int_at_least(value, 1)


def _nonneg_int(value: str) -> int:
    return _int_at_least(value, 0)


def _float(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, not {value!r}") from None
    if not math.isfinite(number):
        raise argparse.ArgumentTypeError(f"must be finite, not {value!r}")
    return number


def _positive_float(value: str) -> float:
    number = _float(value)
    if number <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, not {value}")
    return number


def _probability(value: str) -> float:
    number = _float(value)
    if not 0.0 <= number <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], not {value}")
    return number


def _shard(value: str) -> tuple[int, int]:
    try:
        return parse_shard(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must look like i/n with 0 <= i < n (e.g. 0/4), not {value!r}"
        ) from None


def _json_object(value: str) -> dict[str, Any]:
    try:
        data = json.loads(value)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"is not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object, not {type(data).__name__}")
    return data


def _judge_options(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("judge")
    g.add_argument(
        "--endpoint",
        action="append",
        default=[],
        metavar="URL",
        help="OpenAI-compatible base URL of a GenRM server, e.g. http://host:8000/v1; repeat for "
        "several replicas (requests are routed with prefix affinity)",
    )
    g.add_argument(
        "--judge",
        choices=("http", "simulated"),
        default=None,
        help="http (default when --endpoint is given) or simulated: an in-process simulated GenRM "
        "(no server; the same answers as serve-sim with its defaults) for tests and dry runs",
    )
    g.add_argument(
        "--model",
        metavar="NAME",
        default=None,
        help="served model name (default: the first one the endpoint lists)",
    )
    g.add_argument(
        "--api-key-env",
        default="GENRM_API_KEY",
        metavar="VAR",
        help="environment variable holding the API key (default: %(default)s)",
    )
    g.add_argument(
        "--api-key-file",
        type=Path,
        default=None,
        metavar="FILE",
        help="file holding the API key (wins over --api-key-env); keys are never taken on the "
        "command line",
    )
    g.add_argument(
        "--no-verify-tls",
        dest="verify_tls",
        action="store_false",
        help="do not verify the server's TLS certificate (on by default; a custom CA bundle is "
        "read from SSL_CERT_FILE, proxies from HTTPS_PROXY/HTTP_PROXY/NO_PROXY)",
    )
    g.add_argument(
        "--no-thinking",
        dest="thinking",
        action="store_false",
        default=None,
        help="read each answer whole, as a judge that does not think (or a gateway that strips "
        "the reasoning) gives it; by default a GenRM's answer without reasoning is unreadable, "
        "unless --extra-body turns thinking off (OpenAIJudge's thinking=False)",
    )
    g.add_argument(
        "--temperature",
        metavar="T",
        type=_float,
        default=1.0,
        help="sampling temperature (default: %(default)s, the model card's)",
    )
    g.add_argument(
        "--top-p",
        metavar="P",
        type=_float,
        default=0.95,
        help="nucleus sampling (default: %(default)s)",
    )
    g.add_argument(
        "--max-new-tokens",
        type=_positive_int,
        default=24576,
        metavar="N",
        help="generation limit of one verdict (default: %(default)s)",
    )
    g.add_argument(
        "--extra-body",
        type=_json_object,
        default=None,
        metavar="JSON",
        help="extra request fields, e.g. '{\"top_k\": 20}'",
    )
    g.add_argument(
        "--timeout",
        type=_float,
        default=600.0,
        metavar="S",
        help="seconds per request (default: %(default)s)",
    )
    g.add_argument(
        "--max-resends",
        type=_nonneg_int,
        default=5,
        metavar="N",
        help="free resends of a request no server started (connection refused, 408, 429, 502, "
        "503), with backoff (default: %(default)s); a timeout or 500 is re-asked as a paid "
        "call (--retries)",
    )
    g.add_argument(
        "--down-timeout",
        type=_float,
        default=None,
        metavar="S",
        help="stop (exit 4, resumable) once every endpoint has been down for S seconds "
        "(default: the retry budget)",
    )
    g.add_argument(
        "--sim-seed",
        type=int,
        default=0,
        metavar="N",
        help="seed of --judge simulated (default: %(default)s)",
    )


def _preference(value: str) -> str | dict[int, float]:
    if value == "linear":
        return value
    try:
        data = json.loads(value)
    except json.JSONDecodeError:
        raise argparse.ArgumentTypeError(
            f"must be 'linear' or a JSON table of the six rankings, not {value!r}"
        ) from None
    if not isinstance(data, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object, not {type(data).__name__}")
    try:
        return {int(k): float(v) for k, v in data.items()}
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(
            'must map rankings to numbers, e.g. {"1": 1, "2": 0.8, ..., "6": 0}'
        ) from None


def _strategy_options(parser: argparse.ArgumentParser, defaults: RankSpec) -> None:
    """The RankSpec's fields as options; their defaults are ``defaults``'s (the Python API's)."""
    g = parser.add_argument_group("ranking (the run spec)")
    g.add_argument(
        "--strategy",
        metavar="NAME",
        type=_strategy,
        default=defaults.strategy,
        help=f"{_STRATEGY_NAMES} (- or _ accepted; default: %(default)s)",
    )
    g.add_argument(
        "--swap",
        choices=SWAP_MODES,
        default=defaults.swap,
        help="both orders, one random order, or as scheduled (default: %(default)s)",
    )
    g.add_argument(
        "--samples",
        metavar="N",
        type=_positive_int,
        default=defaults.samples,
        help="judgements per match and order (default: %(default)s)",
    )
    g.add_argument(
        "--principle",
        metavar="TEXT",
        default=None,
        help="rubric for the judge (a row's own 'principle' field wins)",
    )
    g.add_argument(
        "--principle-file",
        type=Path,
        default=None,
        metavar="FILE",
        help="read --principle from a file",
    )
    g.add_argument(
        "--budget",
        type=_nonneg_int,
        default=defaults.budget,
        metavar="N",
        help="most paid judge calls per row, re-asks included (a ceiling; the row says when it "
        "bound)",
    )
    g.add_argument(
        "--seed",
        metavar="N",
        type=_nonneg_int,
        default=defaults.seed,
        help="run seed; each row's randomness comes from it and the row's id (default: "
        "%(default)s)",
    )
    g.add_argument(
        "--retries",
        type=_nonneg_int,
        default=defaults.retries,
        metavar="N",
        help="paid re-asks of a failed verdict (unreadable, truncated, no answer) "
        "(default: %(default)s)",
    )
    g.add_argument(
        "--preference",
        type=_preference,
        default=defaults.preference,
        metavar="MAP",
        help="ranking to preference: linear, or a JSON table of the six rankings "
        "(default: %(default)s)",
    )
    g.add_argument(
        "--no-position-term",
        dest="position_bias",
        action="store_false",
        default=defaults.position_bias,
        help="do not fit the judge's slot-1 advantage in the Bradley-Terry aggregation",
    )
    g.add_argument(
        "--alpha",
        type=_float,
        default=defaults.alpha,
        metavar="A",
        help="L2 prior of the Bradley-Terry fit (default: %(default)s)",
    )
    g.add_argument(
        "--confidence",
        type=_probability,
        default=defaults.confidence,
        metavar="C",
        help="level of the strength intervals (default: %(default)s)",
    )
    g.add_argument(
        "--p-best-draws",
        type=_positive_int,
        default=defaults.p_best_draws,
        metavar="N",
        help="posterior draws for P(best) (default: %(default)s)",
    )
    g.add_argument(
        "--bootstrap-rounds",
        type=_nonneg_int,
        default=defaults.bootstrap_rounds,
        metavar="N",
        help="bootstrap resamples for the intervals (default: %(default)s: normal approximation)",
    )
    g.add_argument(
        "--strategy-options",
        type=_json_object,
        default=dict(defaults.strategy_options),
        metavar="JSON",
        help="extra options of the strategy, e.g. '{\"seeding\": [3, 0, 1, 2]}'",
    )


SPEC_OPTIONS = {
    "strategy": "--strategy", "swap": "--swap", "samples": "--samples", "seed": "--seed",
    "budget": "--budget", "retries": "--retries", "preference": "--preference",
    "position_bias": "--no-position-term", "alpha": "--alpha", "confidence": "--confidence",
    "p_best_draws": "--p-best-draws", "bootstrap_rounds": "--bootstrap-rounds",
    "strategy_options": "--strategy-options",
}  # fmt: skip
"""Each RankSpec field and the option that sets it."""


def spec_from_args(args: argparse.Namespace) -> RankSpec:
    """The run spec the options describe (validated once, by :class:`RankSpec`)."""
    try:
        return RankSpec(**{name: getattr(args, name) for name in SPEC_OPTIONS})
    except (TypeError, ValueError) as exc:
        message = str(exc)
        for name, flag in SPEC_OPTIONS.items():
            message = message.replace(f"Argument '{name}'", f"argument {flag}")
        raise UsageError(message) from None


def _run_options(parser: argparse.ArgumentParser, *, needs_output: bool = True) -> None:
    g = parser.add_argument_group("run")
    g.add_argument(
        "input",
        type=Path,
        nargs="+",
        metavar="IN",
        help="input rows: JSON Lines (.gz/.zst too), a JSON array, Parquet, a folder saved "
        "with datasets, hf:NAME, or - for standard input; several files with "
        "--candidates-from-files",
    )
    g.add_argument(
        "-o",
        "--output",
        type=Path,
        required=needs_output,
        metavar="OUT.jsonl" if needs_output else "TABLE.json",
        help="output rows, in input order (- for standard output; errors then go to stderr)"
        if needs_output
        else "write the table as JSON (rows: label, rating, lower, upper, games, win_rate)",
    )
    g.add_argument(
        "--errors",
        type=Path,
        default=None,
        metavar="FILE",
        help="rows that could not be ranked (default: OUT.errors.jsonl)"
        if needs_output
        else "rows that could not be ranked (default: TABLE.leaderboard-errors.jsonl, or "
        "IN.leaderboard-errors.jsonl without -o; written only if a row fails)",
    )
    if needs_output:  # a leaderboard keeps no rows to resume (a --cache reruns it for free)
        g.add_argument(
            "--resume",
            action="store_true",
            help="continue an interrupted run: skip rows already in the output files (refused "
            "for another input or other settings, or while another run writes the output)",
        )
        g.add_argument(
            "--overwrite",
            action="store_true",
            help="empty existing output files instead of refusing (never a cache or an input)",
        )
    else:
        parser.set_defaults(resume=False, overwrite=False)
    g.add_argument(
        "--cache",
        type=Path,
        default=None,
        metavar="PATH",
        help="SQLite verdict cache: a verdict is never paid for twice",
    )
    g.add_argument(
        "--shard",
        type=_shard,
        default=(0, 1),
        metavar="i/n",
        help="rank only lines with 0-based index i modulo n",
    )
    g.add_argument(
        "--judge-profile",
        type=Path,
        default=None,
        metavar="FILE",
        help="what the judge is like (slot-1 bias, dispersion, strength spread, repeats), as "
        "--save-judge-profile wrote it; every row uses it (default: learnt from the first "
        "32 rows, then frozen and kept in the run file for --resume)",
    )
    g.add_argument(
        "--save-judge-profile",
        type=Path,
        default=None,
        metavar="FILE",
        help="write the judge profile learnt from the rows this run judges (every k-th in "
        "input order beyond 2,048) as JSON",
    )
    g.add_argument(
        "--concurrency",
        type=_positive_int,
        default=64,
        metavar="N",
        help="judge requests in flight (default: %(default)s)",
    )
    g.add_argument(
        "--max-pending",
        type=_positive_int,
        default=None,
        metavar="N",
        help="rows admitted but not yet written (bounds memory; default: max(1024, 8 x "
        "concurrency))",
    )
    g.add_argument(
        "--max-calls",
        type=_nonneg_int,
        default=None,
        metavar="N",
        help="stop (exit 3, resumable) after N judge calls",
    )
    g.add_argument(
        "--max-tokens",
        type=_nonneg_int,
        default=None,
        metavar="N",
        help="stop (exit 3, resumable) after N tokens",
    )
    g.add_argument(
        "--fsync-interval",
        type=_float,
        default=5.0,
        metavar="S",
        help="fsync output files at most every S seconds, and at exit (default: %(default)s)",
    )
    g.add_argument(
        "--quiet", "-q", action="store_true", help="no progress bar and no summary table"
    )
    g.add_argument(
        "--progress-interval",
        type=_positive_float,
        default=30.0,
        metavar="S",
        help="when standard error is not a terminal (a batch job's log), print a progress line "
        "every S seconds instead of a bar (default: %(default)s)",
    )
    g.add_argument(
        "--summary-json",
        type=Path,
        default=None,
        metavar="FILE",
        help="write the run summary as JSON",
    )
    c = parser.add_argument_group("cost plan")
    c.add_argument(
        "--dry-run",
        action="store_true",
        help="print what the run would cost (rows, judge calls, tokens, GPU-hours, money) and "
        "exit without calling a judge",
    )
    c.add_argument(
        "--expect-completion-tokens",
        type=_positive_int,
        default=4096,
        metavar="N",
        help="tokens a call is expected to generate, for the plan and the progress bar's "
        "projection (default: %(default)s, an assumption: the model card gives only the "
        "24,576 limit)",
    )
    c.add_argument(
        "--expect-calls-per-row",
        type=_positive_float,
        default=None,
        metavar="N",
        help="calls a row of an outcome-dependent strategy (adaptive) is expected to take, for "
        "the plan and the projection (e.g. a pilot run's judge calls / rows ok; default: the "
        "default adaptive's benchmark figures, an assumption the plan states)",
    )
    c.add_argument(
        "--tokenizer",
        metavar="PATH",
        default=None,
        help="count prompt tokens with this local Hugging Face tokenizer (needs transformers); "
        "default: estimate at 4 characters a token",
    )
    c.add_argument(
        "--throughput",
        type=_float,
        default=None,
        metavar="TOK/S",
        help="generated tokens a second one replica sustains, for GPU-hours",
    )
    c.add_argument(
        "--gpus-per-replica",
        type=_positive_int,
        default=8,
        metavar="N",
        help="GPUs one replica holds, for GPU-hours (default: %(default)s)",
    )
    c.add_argument(
        "--price-per-gpu-hour",
        type=_float,
        default=None,
        metavar="P",
        help="money a GPU-hour costs, for the cost",
    )
    f = parser.add_argument_group("input layout")
    f.add_argument(
        "--input-format",
        choices=INPUT_FORMATS,
        default="auto",
        help="how to read IN (default: %(default)s: by name and first bytes)",
    )
    f.add_argument(
        "--split",
        metavar="NAME",
        default="train",
        help="split of a dataset (default: %(default)s)",
    )
    f.add_argument(
        "--id-field", metavar="NAME", default="id", help="row id field (default: %(default)s)"
    )
    f.add_argument(
        "--id-from-line",
        action=argparse.BooleanOptionalAction,
        default=None,
        help='give each row "line:N" from its line (row) number, written under --id-field (a '
        "row that has that field is then an error); --no-id-from-line: every row needs "
        "--id-field (default: line ids when the first row has no --id-field, and every row "
        "must then have none)",
    )
    f.add_argument(
        "--allow-templated-prompt",
        action="store_true",
        help="pass a prompt that went through a chat template (<|im_start|>, [INST], ...) as "
        "it is instead of refusing the row",
    )
    f.add_argument(
        "--candidates-from-files",
        action="store_true",
        help="IN is several files with one sample a row (e.g. output-rs*.jsonl): candidate i "
        "of a row comes from file i",
    )
    f.add_argument(
        "--candidate-field",
        metavar="NAME",
        default=None,
        help="with --candidates-from-files: the field holding each file's sample (e.g. generation)",
    )
    f.add_argument(
        "--align-by",
        metavar="KEY",
        default=None,
        help="with --candidates-from-files: pair rows by this field, not by row number",
    )
    f.add_argument(
        "--group-messages",
        action="store_true",
        help="rows hold one sample each as messages ending with the assistant turn: group "
        "them by prompt (rows of one prompt must be next to each other)",
    )
    f.add_argument(
        "--group-by",
        metavar="KEY",
        default=None,
        help="with --group-messages: group by this field instead of the prompt",
    )
    f.add_argument(
        "--prompt-field",
        metavar="NAME",
        default=None,
        help=f"prompt field (default: whichever of {', '.join(DEFAULT_PROMPT_FIELDS)} the row "
        "has; a row with two of them is refused)",
    )
    f.add_argument(
        "--candidates-field",
        metavar="NAME",
        default="candidates",
        help="candidates field (default: %(default)s)",
    )
    f.add_argument(
        "--candidate-id-key",
        metavar="KEY",
        default="id",
        help="id key of a candidate object (default: %(default)s)",
    )
    f.add_argument(
        "--candidate-text-key",
        metavar="KEY",
        default="text",
        help="text key of a candidate object (default: %(default)s)",
    )
    f.add_argument(
        "--principle-field",
        metavar="NAME",
        default="principle",
        help="per-row rubric field (default: %(default)s)",
    )
    f.add_argument(
        "--max-chars",
        type=_nonneg_int,
        default=200_000,
        metavar="N",
        help="longest prompt or candidate accepted; 0 = no limit (default: %(default)s)",
    )
    f.add_argument(
        "--max-candidates",
        type=_nonneg_int,
        default=MAX_CANDIDATES,
        metavar="N",
        help="most candidates a row may hold; a row with more is a row error "
        "(too_many_candidates), refused before anything is scheduled; 0 = no limit "
        "(default: %(default)s)",
    )
    f.add_argument(
        "--result-field",
        metavar="NAME",
        default="genrm",
        help="output field holding the ranking (default: %(default)s)",
    )


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


def _format_option(parser: argparse.ArgumentParser, formats: tuple[str, ...], help: str) -> None:
    parser.add_argument(
        "--format",
        choices=formats,
        default="full",
        help=f"output rows: {help} (default: %(default)s)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``genrm-rank`` argument parser."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "rank",
        help="full ranking of every row",
        description="Rank every row's candidates; one output row per input row, in input "
        "order, with the ranking under --result-field.",
    )
    _run_options(p)
    _strategy_options(p, RANK_DEFAULTS)
    _judge_options(p)
    p.add_argument(
        "--judgements", action="store_true", help="also write every judge call's verdict"
    )
    _format_option(
        p,
        RANK_FORMATS,
        "full: the rows with the ranking added; nemo-rl: NeMo RL's "
        "{context, completions: [{rank, completion}]}",
    )

    p = sub.add_parser(
        "select",
        help="best of N per row",
        description="Choose the best candidate of every row ('selected'). With --min-score / "
        "--min-margin / --min-p-best, a row whose winner misses a threshold gets "
        "\"selected\": null and a 'select_reason' (or goes to --rejected FILE).",
    )
    _run_options(p)
    _strategy_options(p, SELECT_DEFAULTS)
    _judge_options(p)
    t = p.add_argument_group("thresholds")
    t.add_argument(
        "--min-score",
        type=_float,
        default=None,
        metavar="S",
        help="winner's mean individual score (1-5) must be >= S",
    )
    t.add_argument(
        "--min-margin",
        type=_float,
        default=None,
        metavar="M",
        help="winner's strength minus the runner-up's (log-odds) must be >= M",
    )
    t.add_argument(
        "--min-p-best",
        type=_probability,
        default=None,
        metavar="P",
        help="winner's P(best) must be >= P",
    )
    t.add_argument(
        "--rejected",
        type=Path,
        default=None,
        metavar="FILE",
        help='write rows that miss a threshold here instead of with "selected": null',
    )
    _format_option(
        p,
        SELECT_FORMATS,
        "full: the rows with the winner added; sft: "
        "{messages: [..., the winner as the assistant turn]}, rows not kept dropped",
    )

    p = sub.add_parser(
        "pairs",
        help="chosen/rejected pairs for DPO",
        description="Chosen/rejected pairs for preference training: best vs worst per row "
        "(default) or every pair ordered by margin (--all-pairs). Each pair line keeps the row's "
        "fields (the candidates and the prompt field excepted) and adds the prompt, chosen and "
        "rejected of the prompt's kind (TRL's preference format), their ids and the margin. "
        "Rows with no pair passing --min-margin go to --rejected (default OUT.rejected.jsonl).",
    )
    _run_options(p)
    _strategy_options(p, RANK_DEFAULTS)
    _judge_options(p)
    t = p.add_argument_group("pairs")
    t.add_argument(
        "--all-pairs",
        action="store_true",
        help="every pair (i above j in the ranking), largest margin first",
    )
    t.add_argument(
        "--min-margin",
        type=_float,
        default=None,
        metavar="M",
        help="keep pairs whose strength gap (log-odds) is >= M",
    )
    t.add_argument(
        "--max-pairs", type=_positive_int, default=None, metavar="N", help="at most N pairs per row"
    )
    t.add_argument(
        "--rejected",
        type=Path,
        default=None,
        metavar="FILE",
        help="rows with no pair (default: OUT.rejected.jsonl)",
    )
    _format_option(
        p,
        PAIR_FORMATS,
        "full: the rows' fields, an explicit prompt, chosen and "
        "rejected of the prompt's kind; trl: TRL standard preference; trl-chat: conversational "
        "prompt/chosen/rejected; openrlhf: chosen/rejected as whole conversations, no prompt; "
        "nemo-rl: {context, completions}",
    )
    t.add_argument(
        "--margin-field",
        metavar="NAME",
        default=None,
        help="also write the strength gap (log-odds) under this column; off by default "
        "(OpenRLHF reads a 'margin' column as its margin-loss term)",
    )

    p = sub.add_parser(
        "compare",
        help="judge one pair and print the verdict and reasoning",
        description="Judge one pair of responses. Texts starting with @ are read from that file.",
    )
    p.add_argument(
        "--prompt",
        required=True,
        help="the user prompt (or @FILE; a JSON list of messages is accepted)",
    )
    p.add_argument(
        "--a",
        "-a",
        required=True,
        dest="response_a",
        metavar="TEXT",
        help="first response (or @FILE)",
    )
    p.add_argument(
        "--b",
        "-b",
        required=True,
        dest="response_b",
        metavar="TEXT",
        help="second response (or @FILE)",
    )
    p.add_argument("--principle", metavar="TEXT", default=None, help="rubric for the judge")
    p.add_argument(
        "--swap",
        choices=SWAP_MODES,
        default="both",
        help="both: judge both orders (default); none: A in slot 1 only",
    )
    p.add_argument("--json", action="store_true", help="print the verdicts as JSON")
    p.add_argument("--seed", metavar="N", type=int, default=0)
    _judge_options(p)

    p = sub.add_parser(
        "leaderboard",
        help="model-level table with intervals",
        description="Rank every row (candidates must carry ids: the system that wrote each), "
        "pool every verdict, and fit a Bradley-Terry leaderboard with a position term and "
        "bootstrap intervals (Arena-Hard style).",
    )
    _run_options(p, needs_output=False)
    _strategy_options(p, RANK_DEFAULTS)
    _judge_options(p)
    t = p.add_argument_group("leaderboard")
    t.add_argument(
        "--plot",
        type=Path,
        default=None,
        metavar="FILE",
        help="write a PNG of the ratings with intervals (needs matplotlib)",
    )
    t.add_argument(
        "--baseline",
        metavar="MODEL_ID",
        default=None,
        help="Arena-Hard style: each candidate against this candidate id's answer to the same "
        "prompt (strategy 'baseline': N-1 matches per row, 2(N-1) calls in both orders, N-1 "
        "with --swap random); every row must hold it",
    )
    t.add_argument(
        "--table-bootstrap-rounds",
        type=_nonneg_int,
        default=200,
        metavar="N",
        help="bootstrap rounds of the table's intervals (default: %(default)s)",
    )

    p = sub.add_parser(
        "report",
        help="a self-contained HTML report of an output file",
        description="Write one HTML file (no network needed to view it) about the rows a rank or "
        "select run wrote: the summary, the calls and tokens spent, position-bias and "
        "consistency plots, and for a sample of rows the pair graph with each verdict's "
        "reasoning (rows written with 'rank --judgements').",
    )
    p.add_argument("input", type=Path, metavar="OUT.jsonl", help="rows a rank or select run wrote")
    p.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        metavar="REPORT.html",
        help="the HTML file (default: OUT.report.html)",
    )
    p.add_argument(
        "--sample",
        type=_nonneg_int,
        default=8,
        metavar="N",
        help="rows shown in detail (default: %(default)s)",
    )
    p.add_argument(
        "--seed", type=_nonneg_int, default=0, metavar="N", help="seed of the sample (default: 0)"
    )
    p.add_argument(
        "--result-field",
        metavar="NAME",
        default="genrm",
        help="field holding each row's ranking (default: %(default)s)",
    )
    p.add_argument(
        "--errors",
        type=Path,
        default=None,
        metavar="FILE",
        help="the run's errors file (default: OUT.errors.jsonl, when it exists)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing REPORT.html that is not a report (a report is rewritten)",
    )

    p = sub.add_parser(
        "serve-sim",
        help="run a simulated vLLM GenRM server",
        description="Simulated vLLM servers with a GenRM loaded (OpenAI chat API, latency and "
        "fault injection).",
    )
    from genrm_rank.server.cli import add_serve_sim_arguments

    add_serve_sim_arguments(p)

    p = sub.add_parser(
        "merge",
        help="merge the outputs of --shard i/n runs, in input order",
        description="Merge the output, errors and rejected files of --shard i/n runs into one "
        "run's files, row for row in input order (byte for byte what one run writes).",
    )
    from genrm_rank.cli.merge import add_merge_arguments

    add_merge_arguments(p)

    p = sub.add_parser(
        "cache",
        help="verdict cache tools (merge the caches of several shards)",
        description="Tools for --cache files.",
    )
    cache_sub = p.add_subparsers(dest="cache_command", metavar="ACTION", required=True)
    merge = cache_sub.add_parser(
        "merge",
        help="merge verdict caches into one",
        description="Merge verdict caches (one per shard, each on a local disk) into OUT.db, "
        "created if absent. Schema and protocol versions must match. A key held with a "
        "different verdict is a conflict: the first verdict (OUT.db's own, then the earliest "
        "input's) is kept, and conflicts are counted.",
    )
    merge.add_argument("output", type=Path, metavar="OUT.db")
    merge.add_argument("inputs", type=Path, nargs="+", metavar="IN.db")

    p = sub.add_parser(
        "demo",
        help="rank the bundled Vicuna-80 file against a local simulated server",
        description="Start serve-sim on a free loopback port, select the best of 8 real "
        "answers for each of the 80 Vicuna questions, print the winners and a "
        "summary. No GPU, no network.",
    )
    p.add_argument("--strategy", metavar="NAME", type=_strategy, default="knockout")
    p.add_argument("--concurrency", type=_positive_int, default=64)
    p.add_argument(
        "--latency",
        type=_float,
        default=0.002,
        metavar="S",
        help="simulated mean seconds per verdict (default: %(default)s)",
    )
    p.add_argument(
        "--keep",
        type=Path,
        default=None,
        metavar="DIR",
        help="write the outputs here instead of a temporary folder",
    )
    p.add_argument("--quiet", "-q", action="store_true")
    return parser


def read_principle(args: argparse.Namespace) -> str | None:
    if getattr(args, "principle_file", None) is not None:
        if args.principle is not None:
            raise UsageError("argument --principle-file: not allowed with --principle")
        try:
            return str(args.principle_file.read_text(encoding="utf-8")).strip() or None
        except OSError as exc:
            raise UsageError(
                f"argument --principle-file: cannot read {args.principle_file}: {exc.strerror}"
            ) from None
    principle: str | None = args.principle
    return principle
