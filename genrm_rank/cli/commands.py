"""The subcommands."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import shlex
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from genrm_rank.api import arank
from genrm_rank.cli.config import cli_words, parse_args
from genrm_rank.cli.judge import make_judge
from genrm_rank.cli.options import (
    EXIT_OK,
    EXIT_ROWS_FAILED,
    EXIT_USAGE,
    PROG,
    UsageError,
    spec_from_args,
)
from genrm_rank.cli.run import given, input_source, row_spec, run_file_command
from genrm_rank.messages import normalize_conversation
from genrm_rank.results import Ranking
from genrm_rank.sdg.filters import SelectThresholds, pair_rows, rank_rows, select_rows
from genrm_rank.sdg.merge import merge_shards
from genrm_rank.sdg.output import Block, sidecar_path
from genrm_rank.sdg.rows import Row, RowReader
from genrm_rank.spec import RANK_DEFAULTS, RankSpec

# --------------------------------------------------------------------------------------------
# Subcommands: each builds the library's formatter from its options


_OUTPUT = ("result_field", "format", "id_field")


def cmd_rank(args: argparse.Namespace) -> int:
    fmt = rank_rows(include_judgements=args.judgements, **given(args, *_OUTPUT))
    return run_file_command(args, lambda _: fmt)


def cmd_select(args: argparse.Namespace) -> int:
    thresholds = SelectThresholds(args.min_score, args.min_margin, args.min_p_best)
    return run_file_command(
        args,
        lambda rejected: select_rows(thresholds, rejected_sink=rejected, **given(args, *_OUTPUT)),
    )


def cmd_pairs(args: argparse.Namespace) -> int:
    keys = ("min_margin", "max_pairs", "candidates_field", "format", "margin_field", "id_field")
    fmt = pair_rows(policy="all_pairs" if args.all_pairs else "best_vs_worst", **given(args, *keys))
    return run_file_command(args, lambda _: fmt, grouped=True, rejected_default=True)


def _text_arg(value: str, name: str) -> str:
    if value.startswith("@"):
        try:
            return Path(value[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"argument {name}: cannot read {value[1:]}: {exc.strerror}") from None
    return value


def cmd_compare(args: argparse.Namespace) -> int:
    prompt_text = _text_arg(args.prompt, "--prompt")
    conversation: Any = prompt_text
    if prompt_text.lstrip().startswith("["):
        with contextlib.suppress(json.JSONDecodeError):
            conversation = json.loads(prompt_text)
    try:  # a bad prompt is a usage error, not a traceback from inside the judge
        normalize_conversation(conversation, name="prompt")
    except (TypeError, ValueError) as exc:
        raise UsageError(cli_words(exc, "compare")) from None
    a, b = _text_arg(args.response_a, "--a"), _text_arg(args.response_b, "--b")
    setup = make_judge(args)
    # One pair is a round-robin of two candidates: the library's swap modes, the library's seed.
    spec = RankSpec(strategy="round_robin", swap=args.swap, seed=args.seed)

    async def go() -> Ranking:
        async with setup.opened():
            return await arank(
                [a, b],
                conversation,
                judge=setup.judge,
                spec=spec,
                principle=args.principle,
                prompt_id="compare",
                candidate_ids=["A", "B"],
            )

    results = []
    for judgement in sorted(asyncio.run(go()).judgements, key=lambda j: (j.first, j.sample)):
        v, first = judgement.verdict, "AB"[judgement.first]
        entry: dict[str, Any] = {"slot_1": first, "slot_2": "AB"[judgement.second]}
        entry |= {k: getattr(v, k) for k in ("ok", "ranking", "score_1", "score_2")}
        entry |= {"failure": None if v.failure is None else str(v.failure), "error": v.error}
        entry |= {"reasoning": v.reasoning, "answer": v.raw, "attempts": v.attempts}
        if v.ok:
            entry["preference_A"] = v.preference if first == "A" else 1.0 - v.preference
        results.append(entry)
    usable = [r["preference_A"] for r in results if "preference_A" in r]
    combined = sum(usable) / len(usable) if usable else None
    if args.json:
        data = {"verdicts": results, "preference_A": combined}
        print(json.dumps(data, indent=2, ensure_ascii=False))
        return EXIT_OK if usable else EXIT_ROWS_FAILED
    for r in results:
        print(f"== {r['slot_1']} in slot 1, {r['slot_2']} in slot 2")
        if r["ok"]:
            print(
                f"ranking {r['ranking']:g} (1 = slot 1 much better .. 6 = slot 2 much "
                f"better); scores {r['slot_1']} {r['score_1']}, {r['slot_2']} {r['score_2']}"
            )
        else:
            print(f"failed verdict: {r['failure']} ({r['error']})")
        if r["reasoning"]:
            print("reasoning:\n" + r["reasoning"].strip())
        print()
    if combined is None:
        print("verdict: none usable")
        return EXIT_ROWS_FAILED
    winner = "A" if combined > 0.5 else "B" if combined < 0.5 else "tie"
    print(f"verdict: {winner} (P(A better) = {combined:.3f}, over {len(usable)} order(s))")
    return EXIT_OK


def check_leaderboard_rows(args: argparse.Namespace) -> None:
    """Refuse, before any call, rows whose candidates carry no ids or lack the baseline (rows
    that are not valid are left to the run, which reports them without a call)."""
    reader = RowReader(row_spec(args))
    offset, step = args.shard
    no_ids: list[int] = []
    no_baseline: list[int] = []
    for number, raw in input_source(args):
        row = reader.parse(number, raw) if (number - 1) % step == offset else None
        if not isinstance(row, Row):
            continue
        if row.candidate_ids is None:
            no_ids.append(row.line)
        elif args.baseline is not None and args.baseline not in row.candidate_ids:
            no_baseline.append(row.line)
    if no_ids:
        raise UsageError(
            f"argument IN.jsonl: {len(no_ids)} rows have candidates without ids (first on line "
            f'{no_ids[0]}); a leaderboard needs {{"id", "text"}} candidates, the id naming the '
            "system that wrote each (--candidate-id-key names the key)"
        )
    if no_baseline:
        raise UsageError(
            f"argument --baseline: {len(no_baseline)} rows have no candidate with id "
            f"{args.baseline!r} (first on line {no_baseline[0]})"
        )


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from genrm_rank.api import leaderboard

    if args.baseline is not None:
        if args.strategy != RANK_DEFAULTS.strategy:
            raise UsageError("argument --baseline: not allowed with --strategy")
        if "baseline" in args.strategy_options:
            raise UsageError("argument --baseline: not allowed with a 'baseline' strategy option")
    check_leaderboard_rows(args)
    # What the run reads: the spec's strategy (a baseline) and where failed rows go. The rows
    # themselves are not the product, so nothing is written for them (no temporary folder).
    run = argparse.Namespace(**vars(args), resume=False, overwrite=False)
    if args.baseline is not None:
        run.strategy = "baseline"
        run.strategy_options = {**args.strategy_options, "baseline": args.baseline}
    if args.errors is None:  # beside the table (or the input); created only if a row fails
        base: Path = args.output or (
            args.input[0] if str(args.input[0]) != "-" else Path("stdin.jsonl")
        )
        stem = base.name.removesuffix(".jsonl").removesuffix(".json")
        run.errors = base.with_name(f"{stem}.leaderboard-errors.jsonl")
    mapping = spec_from_args(run).preference_mapping
    games: list[tuple[str, str, float, str]] = []

    def fmt(row: Row, ranking: Ranking) -> Block:
        ids = ranking.candidate_ids
        if ids is None:  # check_leaderboard_rows refused these rows
            raise RuntimeError(f"row on line {row.line} has candidates without ids")
        for j in ranking.judgements:
            if j.verdict.ranking is not None:
                games.append(
                    (ids[j.first], ids[j.second], j.verdict.preference_with(mapping), row.key)
                )
        return Block("out", ())

    status = run_file_command(run, lambda _: fmt, output=Path(os.devnull))
    if status not in (EXIT_OK, EXIT_ROWS_FAILED):
        return status
    if not games:
        print(f"{PROG} leaderboard: no usable game", file=sys.stderr)
        return EXIT_ROWS_FAILED
    table = leaderboard(
        games,
        fit_position_bias=args.fit_position_bias,
        bootstrap_rounds=args.table_bootstrap_rounds,
        **given(args, "seed", "confidence"),
    )
    print(table.to_markdown())
    if args.output is not None:
        data = {
            k: [dataclasses.asdict(r) for r in getattr(table, k)] for k in ("rows", "set_apart")
        }
        keys = ("notes", "position_bias", "position_bias_interval", "confidence")
        data |= {k: getattr(table, k) for k in keys} | {
            "games": len(games),
            "baseline": args.baseline,
        }
        args.output.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        print(f"table written to {args.output}")
    if args.plot is not None:
        _plot(table, args.plot)
    return status


def _plot(table: Any, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(
            f"{PROG} leaderboard: --plot needs matplotlib (pip install 'genrm-rank[plot]'); no "
            "plot written",
            file=sys.stderr,
        )
        return
    rows = list(table.rows)[::-1]
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(rows) + 1.2))
    lows = [r.rating - r.lower if r.lower is not None else 0 for r in rows]
    highs = [r.upper - r.rating if r.upper is not None else 0 for r in rows]
    ax.errorbar([r.rating for r in rows], range(len(rows)), xerr=[lows, highs], fmt="o", capsize=3)
    ax.set_yticks(range(len(rows)), [r.label for r in rows])
    ax.set_xlabel(f"rating (Elo scale, {round(table.confidence * 100)}% interval)")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"plot written to {path}")


def cmd_report(args: argparse.Namespace) -> int:
    from genrm_rank.report_html import write_report

    keywords = given(args, "result_field", "sample", "seed", "errors", "overwrite")
    path = write_report(args.input, args.output, **keywords)
    print(f"report written to {path}")
    return EXIT_OK


def cmd_cache(args: argparse.Namespace) -> int:
    from genrm_rank.cache import merge_caches

    report = merge_caches(args.output, args.inputs)
    print(
        f"merged {len(report.inputs)} caches into {report.output}: {report.read} verdicts read, "
        f"{report.added} added, {report.duplicates} already there, {report.conflicts} "
        f"conflicting (first kept); {report.total} in all"
    )
    return EXIT_OK


def cmd_serve_sim(args: argparse.Namespace) -> int:
    from genrm_rank.server.cli import serve_sim_main

    return serve_sim_main(args=args)


def bundled_example() -> Path:
    """Path of the bundled example file (80 Vicuna questions, 8 real answers each)."""
    ref = resources.files("genrm_rank") / "data" / "vicuna80.jsonl"
    return Path(str(ref))


# GPT-4's slot-1 advantage on the Vicuna record (log-odds; see benchmarks/README.md).
DEMO_POSITION_BIAS = 0.68


def gpt4_view(data: Path) -> tuple[dict[str, float], dict[str, str]]:
    """GPT-4's per-question strengths of the bundled answers, as qualities keyed by text.

    Returns the text -> strength table for the simulated GenRM and, per question id, the system
    GPT-4's own verdicts rank first (``vicuna80_gpt4_strengths.json``, written by
    ``scripts/make_example_data.py`` from the QLoRA record).
    """
    ref = resources.files("genrm_rank") / "data" / "vicuna80_gpt4_strengths.json"
    strengths: dict[str, dict[str, float]] = json.loads(ref.read_text(encoding="utf-8"))
    rows = [json.loads(line) for line in data.read_text(encoding="utf-8").splitlines()]
    tables = {str(row["id"]): strengths[str(row["id"])] for row in rows}
    favourites = {i: max(table, key=table.__getitem__) for i, table in tables.items()}
    qualities = {c["text"]: tables[str(r["id"])][c["id"]] for r in rows for c in r["candidates"]}
    return qualities, favourites


def cmd_demo(args: argparse.Namespace) -> int:
    data = bundled_example()
    if not data.is_file():
        print(f"{PROG} demo: the bundled example file is missing: {data}", file=sys.stderr)
        return EXIT_USAGE
    with tempfile.TemporaryDirectory(prefix="genrm-demo-") as temporary:  # gone at the end
        workdir: Path = args.keep or Path(temporary)
        workdir.mkdir(parents=True, exist_ok=True)
        return _demo(args, data, workdir / "vicuna80.best.jsonl")


def _demo(args: argparse.Namespace, data: Path, out: Path) -> int:
    from genrm_rank.server.app import SimServerConfig, ThreadedSimServers

    qualities, favourites = gpt4_view(data)
    config = SimServerConfig(
        latency="exponential",
        latency_mean=args.latency,
        capacity=256,
        qualities=qualities,
        position_bias=DEMO_POSITION_BIAS,
    )
    print(f"{PROG} demo: starting serve-sim on a free loopback port ...")
    with ThreadedSimServers([config]) as servers:
        url = servers.urls[0]
        print(f"{PROG} demo: serve-sim ready at {url} (simulated GenRM, model {config.model})")
        print(
            f"{PROG} demo: its answers' latent qualities are GPT-4's per-question Bradley-Terry "
            "strengths from the QLoRA record, with noise and a first-slot bias of "
            f"{DEMO_POSITION_BIAS} log-odds"
        )
        print(
            f"{PROG} demo: choosing the best of 8 answers for each of 80 Vicuna questions "
            f"({args.strategy}, both orders)"
        )
        argv = ["select", str(data), "-o", str(out), "--endpoint", url, "--model", config.model]
        argv += ["--strategy", args.strategy, "--concurrency", str(args.concurrency), "--seed", "0"]
        argv += ["--overwrite", *(["--quiet"] if args.quiet else [])]
        print(f"{PROG} demo: running: {shlex.join([PROG, *argv])}")
        print(
            f"{PROG} demo: (your own file, without a server: {PROG} select my.jsonl -o "
            "best.jsonl --judge simulated; see the README's Quick start)"
        )
        # The select command itself, on these options only (no --config, no GENRM_* variable)
        status = cmd_select(parse_args(argv, environ={}))
        requests = servers.stats(0).requests
    winners: Counter[str] = Counter()
    agree = 0
    print("\nfirst winners:")
    with open(out, encoding="utf-8") as handle:
        for i, line in enumerate(handle):
            row = json.loads(line)
            who = row.get("selected_id") or "?"
            winners[who] += 1
            agree += who == favourites.get(str(row["id"]))
            if i < 8:
                p = row.get("winner_p_best")
                print(
                    f"  q{row['id']:<3} {who:<14} P(best)={p if p is None else f'{p:.2f}'}  "
                    f"{str(row['prompt'])[:60]}"
                )
    print("\nwins by system:")
    for who, n in sorted(winners.items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"  {who:<14} {n:>3} {'#' * n}")
    print(
        f"\nthe winner is the answer GPT-4's own verdicts rank first on {agree} of "
        f"{len(favourites)} questions"
    )
    kept = f"output: {out}" if args.keep is not None else "output removed (--keep DIR keeps it)"
    print(f"\nserver requests: {requests}; {kept}")
    return status


def cmd_merge(args: argparse.Namespace) -> int:
    """Merge shard outputs (:func:`~genrm_rank.sdg.merge.merge_shards`); exit 0, or 2 with the
    reason when the shards do not merge. See ``docs/deployment.md`` for the Slurm recipe."""
    if not args.input.is_file():  # a missing shard is merge_shards' to refuse
        raise UsageError(f"argument IN.jsonl: no such file: {args.input}")
    shards = [
        {k: sidecar_path(p, k) if k != "out" else p for k in ("out", "errors", "rejected")}
        for p in args.shards
    ]
    rejected = args.rejected
    if rejected is None and any(Path(s["rejected"]).exists() for s in shards):
        rejected = sidecar_path(args.output, "rejected")
    errors = args.errors or sidecar_path(args.output, "errors")
    output = {"out": args.output, "errors": errors, "rejected": rejected}
    counts = merge_shards(
        args.input, shards, output, id_field=args.id_field, overwrite=args.overwrite
    )
    if not args.quiet:
        print(
            f"{PROG} merge: {len(shards)} shards -> {args.output}: {counts.ok} rows "
            f"({counts.pair_lines} lines), {counts.failed} errors, {counts.rejected} rejected, "
            f"{counts.blank} blank lines",
            file=sys.stderr,
        )
    return EXIT_OK


COMMAND_FUNCTIONS: dict[str, Callable[[argparse.Namespace], int]] = {
    "rank": cmd_rank,
    "select": cmd_select,
    "pairs": cmd_pairs,
    "compare": cmd_compare,
    "leaderboard": cmd_leaderboard,
    "report": cmd_report,
    "serve-sim": cmd_serve_sim,
    "merge": cmd_merge,
    "cache merge": cmd_cache,
    "demo": cmd_demo,
}
"""The function of each subcommand of :data:`~genrm_rank.cli.options.COMMANDS`."""
