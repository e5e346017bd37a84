"""The ``genrm-rank`` options, one :class:`~genrm_rank.flags.Option` each, from which the parser,
the TOML keys and the ``GENRM_*`` variables all come (:mod:`.config`); the spec's options are
:class:`~genrm_rank.spec.RankSpec`'s fields, with its defaults and words. Also the exit statuses.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from genrm_rank.flags import Option, documented, integer, json_object, number
from genrm_rank.sdg.filters import PAIR_FORMATS, RANK_FORMATS, SELECT_FORMATS
from genrm_rank.sdg.inputs import DEFAULT_PROMPT_FIELDS, INPUT_FORMATS
from genrm_rank.sdg.rows import MAX_CANDIDATES
from genrm_rank.sdg.rows import parse_shard as _parse_shard
from genrm_rank.spec import RANK_DEFAULTS, SELECT_DEFAULTS, RankSpec
from genrm_rank.strategies import STRATEGIES, SWAP_MODES, strategy_name

EXIT_OK, EXIT_ROWS_FAILED, EXIT_USAGE, EXIT_CAP, EXIT_UNAVAILABLE, EXIT_NO_SPACE = range(6)
EXIT_INTERRUPTED, EXIT_BROKEN_PIPE, EXIT_TERMINATED = 130, 141, 143
"""The exit statuses, as ``genrm-rank --help`` states them (130, 141 and 143: 128 plus SIGINT,
SIGPIPE and SIGTERM)."""

PROG = "genrm-rank"


class UsageError(Exception):
    """A bad option value found after parsing (reported like argparse's, exit 2)."""


def preference(value: str) -> str | dict[int, float]:
    if value == "linear":
        return value
    try:
        return {int(k): float(v) for k, v in json_object(value).items()}
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"must be 'linear' or a JSON table of the six rankings, not {value!r}"
        ) from None
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(
            'must map rankings to numbers, e.g. {"1": 1, "2": 0.8, ..., "6": 0}'
        ) from None


def shard(value: str) -> tuple[int, int]:
    try:
        return _parse_shard(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must look like i/n with 0 <= i < n (e.g. 0/4), not {value!r}"
        ) from None


STRATEGY_NAMES = ", ".join(name.replace("_", "-") for name in sorted(STRATEGIES))


def strategy(value: str) -> str:
    try:
        return strategy_name(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid strategy {value!r} (choose from {STRATEGY_NAMES})"
        ) from None


POSITIVE, COUNT = integer(1), integer(0)

# --------------------------------------------------------------------------------------------
# The options

# fmt: off
opt = Option
JUDGE = (
    opt("--endpoint", "OpenAI-compatible base URL of a GenRM server, e.g. http://host:8000/v1; "
        "repeat for several replicas (requests are routed with prefix affinity)", metavar="URL",
        action="append", default=[], params=("endpoints",)),
    opt("--judge", "http (default when --endpoint is given) or simulated: an in-process "
        "simulated GenRM (no server; the same answers as serve-sim with its defaults) for tests "
        "and dry runs", choices=("http", "simulated")),
    opt("--model", "served model name (default: the first one the endpoint lists)",
        metavar="NAME"),
    opt("--api-key-env", "environment variable holding the API key", default="GENRM_API_KEY",
        metavar="VAR"),
    opt("--api-key-file", "file holding the API key (wins over --api-key-env); keys are never "
        "taken on the command line", Path, metavar="FILE"),
    opt("--no-verify-tls", "do not verify the server's TLS certificate (on by default; a custom "
        "CA bundle is read from SSL_CERT_FILE, proxies from HTTPS_PROXY/HTTP_PROXY/NO_PROXY)",
        action="store_false", default=True, dest_="verify_tls"),
    opt("--no-thinking", "read each answer whole, as a judge that does not think (or a gateway "
        "that strips the reasoning) gives it; by default a GenRM's answer without reasoning is "
        "unreadable, unless --extra-body turns thinking off", action="store_false",
        dest_="thinking"),
    opt("--temperature", "sampling temperature (the model card's)", number(), 1.0, "T"),
    opt("--top-p", "nucleus sampling", number(), 0.95, "P"),
    opt("--max-new-tokens", "generation limit of one verdict", POSITIVE, 24576, "N",
        params=("max_tokens",)),
    opt("--extra-body", "extra request fields, e.g. '{\"top_k\": 20}'", json_object,
        metavar="JSON"),
    opt("--timeout", "seconds per request", number(), 600.0, "S"),
    opt("--max-resends", "free resends of a request no server started (connection refused, "
        "408, 429, 502, 503), with backoff; a timeout or 500 is re-asked as a paid call "
        "(--retries)", COUNT, 5, "N"),
    opt("--down-timeout", "stop (exit 4, resumable) once every endpoint has been down for S "
        "seconds (default: the retry budget)", number(), metavar="S"),
    opt("--sim-seed", "seed of --judge simulated", int, 0, "N"),
)


def spec_options(d: RankSpec) -> tuple[Option, ...]:
    """The RankSpec's fields as options, with ``d``'s defaults (the Python API's) and their
    Parameters' first paragraphs as help (:func:`~genrm_rank.flags.documented`)."""
    text = documented(RankSpec)

    def field(name: str, type_: Any = None, metavar: str | None = None, **kw: Any) -> Option:
        kw.setdefault("default", getattr(d, name))
        return opt("--" + name.replace("_", "-"), text[name], type_, metavar=metavar, **kw)

    return (
        field("strategy", strategy, "NAME"),
        field("swap", choices=SWAP_MODES),
        field("samples", POSITIVE, "N"),
        opt("--principle", "rubric for the judge (a row's own 'principle' field wins)",
            metavar="TEXT"),
        opt("--principle-file", "read --principle from a file", Path, metavar="FILE"),
        field("budget", COUNT, "N"),
        field("seed", COUNT, "N"),
        field("retries", COUNT, "N"),
        field("preference", preference, "MAP"),
        opt("--no-fit-position-bias", "do not " + text["fit_position_bias"],
            action="store_false", default=d.fit_position_bias, dest_="fit_position_bias"),
        field("alpha", number(), "A"),
        field("confidence", number(0, 1), "C"),
        field("p_best_draws", POSITIVE, "N"),
        field("bootstrap_rounds", COUNT, "N"),
        field("strategy_options", json_object, "JSON", default=dict(d.strategy_options)),
    )


SPEC_OPTIONS = {f.name: "--" + f.name.replace("_", "-") for f in fields(RankSpec)} | {
    "fit_position_bias": "--no-fit-position-bias"
}
"""Each RankSpec field and the option that sets it."""

INPUT = opt("input", "input rows: JSON Lines (.gz/.zst too), a JSON array, Parquet, a folder "
            "saved with datasets, hf:NAME, or - for standard input; several files with "
            "--candidates-from-files", Path, action="positional", nargs="+", metavar="IN",
            params=("sources",))


def run_options(needs_output: bool = True) -> tuple[Option, ...]:
    files: tuple[Option, ...]
    if needs_output:
        files = (
            opt("--output", "output rows, in input order (- for standard output; errors then "
                "go to stderr)", Path, metavar="OUT.jsonl", short="-o", required=True,
                params=("paths", "paths['out']")),
            opt("--errors", "rows that could not be ranked (default: OUT.errors.jsonl)", Path,
                metavar="FILE", params=("paths['errors']",)),
            opt("--resume", "continue an interrupted run: skip rows already in the output files "
                "(refused for another input or other settings, or while another run writes the "
                "output)", action="store_true", default=False),
            opt("--overwrite", "empty existing output files instead of refusing (never a cache "
                "or an input)", action="store_true", default=False),
        )
    else:  # a leaderboard keeps no rows to resume (a --cache reruns it for free)
        files = (
            opt("--output", "write the table as JSON (rows: label, rating, lower, upper, games, "
                "win_rate)", Path, metavar="TABLE.json", short="-o"),
            opt("--errors", "rows that could not be ranked (default: "
                "TABLE.leaderboard-errors.jsonl, or IN.leaderboard-errors.jsonl without -o; "
                "written only if a row fails)", Path, metavar="FILE",
                params=("paths['errors']",)),
        )
    return (
        INPUT, *files,
        opt("--cache", "SQLite verdict cache: a verdict is never paid for twice", Path,
            metavar="PATH"),
        opt("--shard", "rank only lines with 0-based index i modulo n", shard, (0, 1), "i/n"),
        opt("--judge-profile", "what the judge is like (slot-1 bias, dispersion, strength "
            "spread, repeats), as --save-judge-profile wrote it; every row uses it (default: "
            "learnt from the first 32 rows, then frozen and kept in the run file for --resume)",
            Path, metavar="FILE", params=("judge_profile",)),
        opt("--save-judge-profile", "write the judge profile learnt from the rows this run "
            "judges (every k-th in input order beyond 2,048) as JSON", Path, metavar="FILE",
            params=("save_judge_profile",)),
        opt("--concurrency", "judge requests in flight", POSITIVE, 64, "N"),
        opt("--max-pending", "rows admitted but not yet written (bounds memory; default: "
            "max(1024, 8 x concurrency))", POSITIVE, metavar="N"),
        opt("--max-calls", "stop (exit 3, resumable) after N judge calls", COUNT, metavar="N"),
        opt("--max-tokens", "stop (exit 3, resumable) after N tokens", COUNT, metavar="N"),
        opt("--fsync-interval", "fsync output files at most every S seconds, and at exit",
            number(), 5.0, "S"),
        opt("--quiet", "no progress bar and no summary table", action="store_true",
            default=False, short="-q"),
        opt("--progress-interval", "when standard error is not a terminal (a batch job's log), "
            "print a progress line every S seconds instead of a bar", number(positive=True),
            30.0, "S"),
        opt("--summary-json", "write the run summary as JSON", Path, metavar="FILE"),
    )


PLAN = (
    opt("--dry-run", "print what the run would cost (rows, judge calls, tokens, GPU-hours, "
        "money) and exit without calling a judge", action="store_true", default=False),
    opt("--expect-completion-tokens", "tokens a call is expected to generate, for the plan and "
        "the progress bar's projection (an assumption: the model card gives only the 24,576 "
        "limit)", POSITIVE, 4096, "N", params=("completion_tokens_per_call",)),
    opt("--expect-calls-per-row", "calls a row of an outcome-dependent strategy (adaptive) is "
        "expected to take, for the plan and the projection (e.g. a pilot run's judge calls / "
        "rows ok; default: the default adaptive's benchmark figures, an assumption the plan "
        "states)", number(positive=True), metavar="N", params=("expected_calls_per_row",)),
    opt("--tokenizer", "count prompt tokens with this local Hugging Face tokenizer (needs "
        "transformers); default: estimate at 4 characters a token", metavar="PATH"),
    opt("--throughput", "generated tokens a second one replica sustains, for GPU-hours",
        number(), metavar="TOK/S", params=("tokens_per_second_per_replica",)),
    opt("--gpus-per-replica", "GPUs one replica holds, for GPU-hours", POSITIVE, 8, "N"),
    opt("--price-per-gpu-hour", "money a GPU-hour costs, for the cost", number(), metavar="P"),
)

LAYOUT = (
    opt("--input-format", "how to read IN (by name and first bytes by default)",
        default="auto", choices=INPUT_FORMATS),
    opt("--split", "split of a dataset", default="train", metavar="NAME"),
    opt("--id-field", "row id field", default="id", metavar="NAME", params=("rows.id_field",)),
    opt("--id-from-line", "give each row \"line:N\" from its line (row) number, written under "
        "--id-field (a row that has that field is then an error); --no-id-from-line: every row "
        "needs --id-field (default: line ids when the first row has no --id-field, and every "
        "row must then have none)", action="toggle", params=("rows.id_from_line",)),
    opt("--allow-templated-prompt", "pass a prompt that went through a chat template "
        "(<|im_start|>, [INST], ...) as it is instead of refusing the row", action="store_true",
        default=False, params=("rows.allow_templated",)),
    opt("--candidates-from-files", "IN is several files with one sample a row (e.g. "
        "output-rs*.jsonl): candidate i of a row comes from file i", action="store_true",
        default=False),
    opt("--candidate-field", "with --candidates-from-files: the field holding each file's "
        "sample (e.g. generation)", metavar="NAME", params=("inputs.candidate_field",)),
    opt("--align-by", "with --candidates-from-files: pair rows by this field, not by row "
        "number", metavar="KEY", params=("inputs.align_by",)),
    opt("--group-messages", "rows hold one sample each as messages ending with the assistant "
        "turn: group them by prompt (rows of one prompt must be next to each other)",
        action="store_true", default=False),
    opt("--group-by", "with --group-messages: group by this field instead of the prompt",
        metavar="KEY", params=("inputs.group_by",)),
    opt("--prompt-field", "prompt field (default: whichever of "
        f"{', '.join(DEFAULT_PROMPT_FIELDS)} the row has; a row with two of them is refused)",
        metavar="NAME", params=("rows.prompt_fields", "inputs.messages_field")),
    opt("--candidates-field", "candidates field", default="candidates", metavar="NAME",
        params=("rows.candidates_field",)),
    opt("--candidate-id-key", "id key of a candidate object", default="id", metavar="KEY"),
    opt("--candidate-text-key", "text key of a candidate object", default="text",
        metavar="KEY"),
    opt("--principle-field", "per-row rubric field", default="principle", metavar="NAME"),
    opt("--max-chars", "longest prompt or candidate accepted; 0 = no limit", COUNT, 200_000,
        "N"),
    opt("--max-candidates", "most candidates a row may hold; a row with more is a row error "
        "(too_many_candidates), refused before anything is scheduled; 0 = no limit", COUNT,
        MAX_CANDIDATES, "N"),
    opt("--result-field", "output field holding the ranking", default="genrm", metavar="NAME"),
)


def _format(formats: tuple[str, ...], text: str) -> Option:
    return opt("--format", f"output rows: {text}", default="full", choices=formats)


def _run_command(
    defaults: RankSpec, title: str, extra: tuple[Option, ...], needs_output: bool = True
) -> dict[str | None, tuple[Option, ...]]:
    return {"run": run_options(needs_output), "ranking (the run spec)": spec_options(defaults),
            "judge": JUDGE, title: extra, "cost plan": PLAN, "input layout": LAYOUT}


@dataclass(frozen=True)
class Command:
    """A subcommand: its help line, description and option groups (``None``: no group)."""

    help: str
    description: str
    groups: Mapping[str | None, tuple[Option, ...]]


COMMANDS: dict[str, Command] = {
    "rank": Command(
        "full ranking of every row",
        "Rank every row's candidates; one output row per input row, in input order, with the "
        "ranking under --result-field.",
        _run_command(RANK_DEFAULTS, "output", (
            opt("--judgements", "also write every judge call's verdict", action="store_true",
                default=False, params=("include_judgements",)),
            _format(RANK_FORMATS, "full: the rows with the ranking added; nemo-rl: NeMo RL's "
                    "{context, completions: [{rank, completion}]}"))),
    ),
    "select": Command(
        "best of N per row",
        "Choose the best candidate of every row ('selected'). With --min-score / --min-margin "
        "/ --min-p-best, a row whose winner misses a threshold gets \"selected\": null and a "
        "'select_reason' (or goes to --rejected FILE).",
        _run_command(SELECT_DEFAULTS, "thresholds", (
            opt("--min-score", "winner's mean individual score (1-5) must be >= S", number(),
                metavar="S"),
            opt("--min-margin", "winner's strength minus the runner-up's (log-odds) must be "
                ">= M", number(), metavar="M"),
            opt("--min-p-best", "winner's P(best) must be >= P", number(0, 1), metavar="P"),
            opt("--rejected", "write rows that miss a threshold here instead of with "
                "\"selected\": null", Path, metavar="FILE", params=("paths['rejected']",)),
            _format(SELECT_FORMATS, "full: the rows with the winner added; sft: {messages: "
                    "[..., the winner as the assistant turn]}, rows not kept dropped"))),
    ),
    "pairs": Command(
        "chosen/rejected pairs for DPO",
        "Chosen/rejected pairs for preference training: best vs worst per row (default) or "
        "every pair ordered by margin (--all-pairs). Each pair line keeps the row's fields (the "
        "candidates and the prompt field excepted) and adds the prompt, chosen and rejected of "
        "the prompt's kind (TRL's preference format), their ids and the margin. Rows with no "
        "pair passing --min-margin go to --rejected (default OUT.rejected.jsonl).",
        _run_command(RANK_DEFAULTS, "pairs", (
            opt("--all-pairs", "every pair (i above j in the ranking), largest margin first",
                action="store_true", default=False),
            opt("--min-margin", "keep pairs whose strength gap (log-odds) is >= M", number(),
                metavar="M"),
            opt("--max-pairs", "at most N pairs per row", POSITIVE, metavar="N"),
            opt("--rejected", "rows with no pair (default: OUT.rejected.jsonl)", Path,
                metavar="FILE", params=("paths['rejected']",)),
            _format(PAIR_FORMATS, "full: the rows' fields, an explicit prompt, chosen and "
                    "rejected of the prompt's kind; trl: TRL standard preference; trl-chat: "
                    "conversational prompt/chosen/rejected; openrlhf: chosen/rejected as whole "
                    "conversations, no prompt; nemo-rl: {context, completions}"),
            opt("--margin-field", "also write the strength gap (log-odds) under this column; "
                "off by default (OpenRLHF reads a 'margin' column as its margin-loss term)",
                metavar="NAME"))),
    ),
    "compare": Command(
        "judge one pair and print the verdict and reasoning",
        "Judge one pair of responses. Texts starting with @ are read from that file.",
        {None: (
            opt("--prompt", "the user prompt (or @FILE; a JSON list of messages is accepted)",
                required=True),
            opt("--a", "first response (or @FILE)", metavar="TEXT", short="-a", required=True,
                dest_="response_a"),
            opt("--b", "second response (or @FILE)", metavar="TEXT", short="-b", required=True,
                dest_="response_b"),
            opt("--principle", "rubric for the judge", metavar="TEXT"),
            opt("--swap", "both: judge both orders; none: A in slot 1 only", default="both",
                choices=SWAP_MODES),
            opt("--json", "print the verdicts as JSON", action="store_true", default=False),
            opt("--seed", "seed of the random order", int, 0, "N")),
         "judge": JUDGE},
    ),
    "leaderboard": Command(
        "model-level table with intervals",
        "Rank every row (candidates must carry ids: the system that wrote each), pool every "
        "verdict, and fit a Bradley-Terry leaderboard with a position term and bootstrap "
        "intervals (Arena-Hard style).",
        _run_command(RANK_DEFAULTS, "leaderboard", (
            opt("--plot", "write a PNG of the ratings with intervals (needs matplotlib)", Path,
                metavar="FILE"),
            opt("--baseline", "Arena-Hard style: each candidate against this candidate id's "
                "answer to the same prompt (strategy 'baseline': N-1 matches per row, 2(N-1) "
                "calls in both orders, N-1 with --swap random); every row must hold it",
                metavar="MODEL_ID"),
            opt("--table-bootstrap-rounds", "bootstrap rounds of the table's intervals", COUNT,
                200, "N")), needs_output=False),
    ),
    "report": Command(
        "a self-contained HTML report of an output file",
        "Write one HTML file (no network needed to view it) about the rows a rank or select run "
        "wrote: the summary, the calls and tokens spent, position-bias and consistency plots, "
        "and for a sample of rows the pair graph with each verdict's reasoning (rows written "
        "with 'rank --judgements').",
        {None: (
            opt("input", "rows a rank or select run wrote", Path, action="positional",
                metavar="OUT.jsonl", params=("path",)),
            opt("--output", "the HTML file (default: OUT.report.html)", Path,
                metavar="REPORT.html", short="-o"),
            opt("--sample", "rows shown in detail", COUNT, 8, "N"),
            opt("--seed", "seed of the sample", COUNT, 0, "N"),
            opt("--result-field", "field holding each row's ranking", default="genrm",
                metavar="NAME"),
            opt("--errors", "the run's errors file (default: OUT.errors.jsonl, when it exists)",
                Path, metavar="FILE"),
            opt("--overwrite", "replace an existing REPORT.html that is not a report (a report "
                "is rewritten)", action="store_true", default=False))},
    ),
    "serve-sim": Command(
        "run a simulated vLLM GenRM server",
        "Simulated vLLM servers with a GenRM loaded (OpenAI chat API, latency and fault "
        "injection).",
        {},  # genrm_rank.server.cli's SERVE_SIM_OPTIONS, read on first use (groups_of)
    ),
    "merge": Command(
        "merge the outputs of --shard i/n runs, in input order",
        "Merge the output, errors and rejected files of --shard i/n runs into one run's files, "
        "row for row in input order (byte for byte what one run writes). Restartable: a merge "
        "killed at any point is finished by running the same command again.",
        {None: (
            opt("input", "the input every shard read", Path, action="positional",
                metavar="IN.jsonl", params=("input_path",)),
            opt("shards", "each shard's output, shard 0 first (its errors and rejected files are "
                "found beside it: SHARD.errors.jsonl, SHARD.rejected.jsonl)", Path,
                action="positional", nargs="+", metavar="SHARD.jsonl"),
            opt("--output", "merged output", Path, metavar="OUT.jsonl", short="-o",
                required=True, params=("output['out']", "output")),
            opt("--errors", "merged errors file (default: OUT.errors.jsonl)", Path,
                metavar="FILE", params=("output['errors']",)),
            opt("--rejected", "merged rejected file (default: OUT.rejected.jsonl when a shard "
                "has one)", Path, metavar="FILE", params=("output['rejected']",)),
            opt("--id-field", "row id field", default="id", metavar="NAME"),
            opt("--overwrite", "replace existing output files instead of refusing",
                action="store_true", default=False),
            opt("--quiet", "no summary line", action="store_true", default=False, short="-q"))},
    ),
    "cache merge": Command(
        "merge verdict caches into one",
        "Merge verdict caches (one per shard, each on a local disk) into OUT.db, created if "
        "absent. Schema and protocol versions must match. A key held with a different verdict "
        "is a conflict: the first verdict (OUT.db's own, then the earliest input's) is kept, "
        "and conflicts are counted.",
        {None: (
            opt("output", "", Path, action="positional", metavar="OUT.db", params=("path",)),
            opt("inputs", "", Path, action="positional", nargs="+", metavar="IN.db"))},
    ),
    "demo": Command(
        "rank the bundled Vicuna-80 file against a local simulated server",
        "Start serve-sim on a free loopback port, select the best of 8 real answers for each "
        "of the 80 Vicuna questions, print the winners and a summary. No GPU, no network.",
        {None: (
            opt("--strategy", "", strategy, "knockout", "NAME"),
            opt("--concurrency", "", POSITIVE, 64, "N"),
            opt("--latency", "simulated mean seconds per verdict", number(), 0.002, "S"),
            opt("--keep", "write the outputs here instead of a temporary folder", Path,
                metavar="DIR"),
            opt("--quiet", "", action="store_true", default=False, short="-q"))},
    ),
}
"""Every subcommand (``cache merge`` is ``cache``'s one action), in ``--help`` order."""

CONFIG = opt("--config", "options from a TOML file (flag > GENRM_* environment > file > "
             "default; see the README's Configuration)", Path, metavar="FILE")
# fmt: on


def groups_of(command: str) -> Mapping[str | None, tuple[Option, ...]]:
    """The option groups of ``command``, ``--config`` among them."""
    groups = COMMANDS[command].groups
    if command == "serve-sim":  # declared beside the server, which also runs without this CLI
        from genrm_rank.server.cli import SERVE_SIM_OPTIONS

        groups = SERVE_SIM_OPTIONS
    return {**groups, None: (*groups.get(None, ()), CONFIG)}


def options_of(command: str) -> tuple[Option, ...]:
    """Every option of ``command``."""
    return tuple(o for group in groups_of(command).values() for o in group)


def every_option() -> Iterable[tuple[str, Option]]:
    """Every subcommand's options, as (subcommand, option)."""
    return ((command, o) for command in COMMANDS for o in options_of(command))


def spec_from_args(args: argparse.Namespace) -> RankSpec:
    """The run spec the options describe (validated once, by :class:`RankSpec`)."""
    return RankSpec(**{name: getattr(args, name) for name in SPEC_OPTIONS})


def read_principle(args: argparse.Namespace) -> str | None:
    """``--principle``, or the text of ``--principle-file``."""
    path: Path | None = getattr(args, "principle_file", None)
    if path is None:
        return getattr(args, "principle", None)
    if args.principle is not None:
        raise UsageError("argument --principle-file: not allowed with --principle")
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except OSError as exc:
        raise UsageError(f"argument --principle-file: cannot read {path}: {exc.strerror}") from None
