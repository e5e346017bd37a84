"""Running ``rank``/``select``/``pairs`` on a file: sinks, resume, signals, summary, exit status."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import errno
import hashlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Coroutine
from functools import partial
from pathlib import Path
from typing import Any, TextIO, TypeVar

from genrm_rank.cli import options as o
from genrm_rank.cli.config import cli_words
from genrm_rank.cli.judge import JudgeSetup, make_judge
from genrm_rank.cli.options import PLAN, PROG, UsageError, read_principle, spec_from_args
from genrm_rank.judge_profile import JudgeProfile
from genrm_rank.sdg import inputs, runfiles
from genrm_rank.sdg.filters import Formatter
from genrm_rank.sdg.output import STDOUT, StreamSink, sidecar_path
from genrm_rank.sdg.pipeline import RunOutcome, prepare_output, process_file
from genrm_rank.sdg.plan import CostAssumptions, plan_file
from genrm_rank.sdg.progress import Progress, format_summary, projection_bounds, summarize
from genrm_rank.sdg.rows import MAX_CANDIDATES, RowLayout, RowSpec, first_row_layout
from genrm_rank.spec import RankSpec

T = TypeVar("T")
_KEYS = ("candidates_field", "candidate_id_key", "candidate_text_key")


def given(args: Any, *names: str) -> dict[str, Any]:
    """The named options (attributes), as the keywords of the library argument each is named
    after."""
    return {name: getattr(args, name) for name in names}


def row_spec(args: argparse.Namespace) -> RowSpec:
    """Where rows keep their parts (the input layout options)."""
    return RowSpec(
        prompt_fields=(args.prompt_field,) if args.prompt_field else inputs.DEFAULT_PROMPT_FIELDS,
        max_chars=args.max_chars or None,
        max_candidates=args.max_candidates or None,
        allow_templated=args.allow_templated_prompt,
        **given(args, *_KEYS, "id_field", "principle_field", "id_from_line"),
    )


def input_source(args: argparse.Namespace) -> inputs.RowSource:
    """The rows the input options describe: one input, merged files, or grouped messages."""
    paths: list[Path] = args.input
    merging = args.candidates_from_files
    for flag, value, allowed, needs in (
        ("--candidate-field", args.candidate_field, merging, "--candidates-from-files"),
        ("--align-by", args.align_by, merging, "--candidates-from-files"),
        ("--group-by", args.group_by, args.group_messages, "--group-messages"),
    ):
        if value is not None and not allowed:
            raise UsageError(f"argument {flag}: needs {needs}")
    if len(paths) > 1 and not merging:
        raise UsageError(
            f"argument IN: {len(paths)} inputs given; several files are read only with "
            "--candidates-from-files (one sample a row, candidate i from file i)"
        )
    if merging and args.group_messages:
        raise UsageError("argument --group-messages: not allowed with --candidates-from-files")
    if merging and (len(paths) < 2 or args.candidate_field is None):
        raise UsageError(
            "argument --candidates-from-files: needs two or more inputs and --candidate-field "
            f"(got {len(paths)} input(s), --candidate-field {args.candidate_field})"
        )
    sources = [inputs.open_input(p, format=args.input_format, split=args.split) for p in paths]
    if merging:
        return inputs.merge_candidate_files(
            sources,
            prompt_fields=row_spec(args).prompt_fields,
            **given(args, *_KEYS, "candidate_field", "align_by"),
        )
    if args.group_messages:
        return inputs.group_messages(
            sources[0],
            messages_field=args.prompt_field or "messages",
            **given(args, "group_by", "candidates_field"),
        )
    return sources[0]


OUTPUT_KEYS = tuple(
    "command id_field prompt_field candidates_field candidate_id_key candidate_text_key "
    "principle_field max_chars result_field judgements min_score min_margin min_p_best "
    "all_pairs max_pairs shard format margin_field".split()
)
"""Options besides the spec that change what a row's output is: a resumed run must use the
same."""
INPUT_KEYS = tuple(
    "input_format split id_from_line allow_templated_prompt candidates_from_files "
    "candidate_field align_by group_messages group_by max_candidates".split()
)
"""Input options that change which rows a run reads: recorded when not at their default (so a
run started before they existed resumes)."""
_INPUT_DEFAULTS = {"input_format": "auto", "split": "train", "max_candidates": MAX_CANDIDATES}
FOUND_KEYS = ("prompt_field_found",)
"""What a run found in its input rather than was told: compared on resume only when the run
file has it."""


def format_rows(rows: dict[str, Any]) -> str:
    """The summary line saying how the rows were read: the prompt field and the ids' source."""
    prompt = rows["prompt_field"]
    where = f"prompt from {prompt!r}" if prompt else "no valid row"
    return f"rows: {where}, ids from {rows['ids']}"


def run_settings(
    args: argparse.Namespace,
    spec: RankSpec,
    setup: JudgeSetup,
    layout: RowLayout,
    profile: JudgeProfile | None,
    principle: str | None,
) -> dict[str, Any]:
    """What a run's output depends on, for the ``OUT.run.json`` sidecar: the spec and more,
    with what the first rows showed (``layout``) where the options leave it open, so that a
    resumed run reads its rows as the first did."""
    settings: dict[str, Any] = {k: getattr(args, k, None) for k in OUTPUT_KEYS}
    if args.prompt_field is None:
        settings["prompt_field_found"] = layout.prompt_field
    if args.id_from_line is None and layout.id_from_line:
        settings["id_from_line"] = True
    for key in INPUT_KEYS:
        value = getattr(args, key, None)
        if value not in (None, False, _INPUT_DEFAULTS.get(key)):
            settings[key] = value
    if profile is not None:  # recorded when given, by content
        settings["judge_profile"] = profile.to_dict()
    digest = None if principle is None else hashlib.sha256(principle.encode()).hexdigest()
    return {
        **settings,
        "shard": list(args.shard),
        "spec": spec.to_dict(),
        "principle_sha256": digest,
        "judge": setup.namespace,
    }


def load_profile(args: argparse.Namespace) -> JudgeProfile | None:
    """The ``--judge-profile`` file's profile (``None`` without one)."""
    path: Path | None = getattr(args, "judge_profile", None)
    try:
        return None if path is None else JudgeProfile.load(path)
    except OSError as exc:
        raise UsageError(f"argument --judge-profile: cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise UsageError(f"argument --judge-profile: {exc}") from None


async def _drive(coro: Coroutine[Any, Any, T]) -> tuple[T, list[int]]:
    """Run ``coro`` as a task that SIGINT/SIGTERM cancel (the pipeline then stops cleanly)."""
    task = asyncio.ensure_future(coro)
    loop = asyncio.get_running_loop()
    received: list[int] = []

    def on_signal(signum: int) -> None:
        received.append(signum)
        task.cancel()

    installed = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, on_signal, signum)
            installed.append(signum)
    try:
        return await task, received
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)


def _write_failed(args: argparse.Namespace, exc: OSError, *, to_stdout: bool) -> int:
    """A run stopped by its output: a full disk (resumable) or a closed standard output."""
    if exc.errno == errno.EPIPE and to_stdout:
        # The reader went away (-o - | head). Standard output is pointed at /dev/null so that
        # the interpreter's last flush does not fail too.
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.close(devnull)
        return o.EXIT_BROKEN_PIPE
    if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
        raise exc
    where = f" ({exc.filename})" if exc.filename else ""
    print(
        f"{PROG} {args.command}: error: no space left on the device{where}: every row written "
        "before is complete; free some space, then rerun the same command with --resume to "
        f"continue (exit {o.EXIT_NO_SPACE})",
        file=sys.stderr,
    )
    return o.EXIT_NO_SPACE


def _save_profile(path: Path, outcome: RunOutcome) -> str:
    """Write ``--save-judge-profile``; what was done, for the summary."""
    learnt = outcome.learnt_profile
    if learnt is None:
        return f"judge profile: no usable verdict, nothing written to {path}"
    learnt.save(path)
    return (
        f"judge profile: {path} (from {learnt.prompts} rows, {learnt.verdicts} verdicts; "
        f"slot-1 bias {learnt.position_bias:.2f} ± {learnt.position_bias_stderr:.2f}, "
        f"dispersion {learnt.dispersion:.2f})"
    )


_STATUSES = {
    "cap": o.EXIT_CAP,
    "unavailable": o.EXIT_UNAVAILABLE,
    "systematic_failure": o.EXIT_UNAVAILABLE,
    "misconfigured": o.EXIT_USAGE,
}
_RESUMABLE = (o.EXIT_CAP, o.EXIT_UNAVAILABLE, o.EXIT_INTERRUPTED, o.EXIT_TERMINATED)


def _exit_status(outcome: RunOutcome, received: list[int]) -> int:
    if outcome.status == "interrupted" or received:
        return o.EXIT_TERMINATED if signal.SIGTERM in received else o.EXIT_INTERRUPTED
    return _STATUSES.get(
        outcome.status, o.EXIT_ROWS_FAILED if outcome.counters.failed else o.EXIT_OK
    )


def print_plan(args: argparse.Namespace, formatter: Formatter | None = None) -> int:
    """``--dry-run``: the cost plan of the file under the options' spec; no judge is called.
    Exits 2, as the run would, when the first rows would stop the run as misconfigured."""
    spec = spec_from_args(args)
    fields = {f.name for f in dataclasses.fields(CostAssumptions)}  # set by the PLAN options
    given = {p: getattr(args, x.dest) for x in PLAN for p in x.params or (x.dest,) if p in fields}
    assumptions = CostAssumptions(**given)
    runfiles.check_paths({"summary_json": args.summary_json}, _read(args))
    plan = plan_file(
        input_source(args),
        spec,
        rows=row_spec(args),
        principle=read_principle(args),
        assumptions=assumptions,
        count_tokens=_tokenizer(args.tokenizer),
        shard=args.shard,
        formatter=formatter,
    )
    if args.summary_json is not None:
        args.summary_json.write_text(json.dumps(plan.to_dict(), indent=2) + "\n")
    read = " ".join(map(str, args.input))
    print(f"{PROG} {args.command} --dry-run: {read} ({spec.strategy}, swap {spec.swap})")
    print(cli_words(plan.format(), args.command))
    if plan.stop is None:
        return o.EXIT_OK
    print(f"{PROG} {args.command}: error: {cli_words(plan.stop, args.command)}", file=sys.stderr)
    return o.EXIT_USAGE


def _tokenizer(name: str | None) -> Callable[[str], int] | None:
    if name is None:
        return None
    try:
        from transformers import AutoTokenizer  # type: ignore[import-not-found]
    except ImportError:
        raise UsageError("argument --tokenizer: needs the transformers package") from None
    try:
        tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=True)
    except Exception as exc:
        raise UsageError(f"argument --tokenizer: cannot load {name!r} locally ({exc})") from None
    return lambda text: len(tokenizer.encode(text, add_special_tokens=False))


def _read(args: argparse.Namespace) -> dict[str, list[Path | None]]:
    """The files a run reads, by argument."""
    names = ("principle_file", "judge_profile")
    return {"input": args.input} | {n: [getattr(args, n, None)] for n in names}


def run_file_command(
    args: argparse.Namespace,
    formatter_for: Callable[[bool], Formatter],
    *,
    grouped: bool = False,
    rejected_default: bool = False,
    output: Path | None = None,
    out_stream: TextIO | None = None,
) -> int:
    """Shared body of rank/select/pairs/leaderboard: files, judge, progress, summary, status.

    ``output`` overrides ``--output`` for a one-shot run whose rows are not the product (the
    leaderboard's): written afresh, never resumed. The summary goes to ``out_stream``, by
    default the standard error of the moment of the call.
    """
    try:
        return _run_file(args, formatter_for, grouped, rejected_default, output, out_stream)
    except OSError as exc:  # a full disk before or after the rows (the run file, the summary)
        return _write_failed(args, exc, to_stdout=str(output or args.output) == STDOUT)


def _run_file(
    args: argparse.Namespace,
    formatter_for: Callable[[bool], Formatter],
    grouped: bool,
    rejected_default: bool,
    output: Path | None,
    out_stream: TextIO | None,
) -> int:
    source = input_source(args)
    layout = first_row_layout(source, row_spec(args))
    if args.dry_run:
        return print_plan(args, formatter_for(False))
    out_path: Path = output or args.output
    to_stdout = str(out_path) == STDOUT  # -o -: rows to standard output, errors to stderr
    if to_stdout and args.resume:
        raise UsageError("argument --resume: not allowed with -o - (standard output)")
    rejected: Path | None = getattr(args, "rejected", None)
    if rejected is None and rejected_default and not to_stdout:
        rejected = sidecar_path(out_path, "rejected")
    # -o -: errors go to the process's own stderr descriptor, never to a path opened by name.
    to_stderr = to_stdout and args.errors is None
    errors = args.errors or (None if to_stdout else sidecar_path(args.output or out_path, "errors"))
    paths: dict[str, Path | None] = {"out": out_path, "errors": errors, "rejected": rejected}
    run_file = None if output is not None or to_stdout else runfiles.run_file_path(out_path)
    written = {"output": args.output, "errors": errors, "rejected": rejected, "run": run_file}
    written |= {"plot": getattr(args, "plot", None)}
    runfiles.check_paths(
        written | given(args, "cache", "summary_json", "save_judge_profile"), _read(args)
    )
    spec = spec_from_args(args)
    profile = given_profile = load_profile(args)
    principle = read_principle(args)
    setup = make_judge(args, cache_path=args.cache)
    files = prepare_output(
        paths,
        resume=args.resume and run_file is not None,
        overwrite=args.overwrite or output is not None,  # -o -: a named --errors is kept
        grouped=grouped,
        **given(args, "id_field", "fsync_interval"),
    )
    try:
        if to_stderr:
            files.sinks["errors"] = StreamSink(2)
        if run_file is not None:
            settings = run_settings(args, spec, setup, layout, given_profile, principle)
            runfiles.check_run_file(
                out_path, settings, resume=args.resume, inputs=args.input, found=FOUND_KEYS
            )
            if profile is None and args.resume:
                profile = runfiles.frozen_profile(out_path)  # what the interrupted run froze
        total = source.count()
    except BaseException:
        files.close()  # the output's lock with it
        raise
    formatter = formatter_for(rejected is not None)
    shard_total = None if total is None else len(range(args.shard[0], total, args.shard[1]))
    ceiling, expected = None, None
    if not args.quiet and shard_total is not None:
        ceiling, expected = projection_bounds(
            source,
            spec,
            rows=row_spec(args),
            shard=args.shard,
            formatter=formatter,
            expected_calls_per_row=args.expect_calls_per_row,
        )
    progress = Progress(
        shard_total,
        enabled=not args.quiet,
        interval=None if sys.stderr.isatty() else args.progress_interval,
        calls_ceiling=ceiling,
        calls_expected=expected,
    )
    progress.cached = setup.cached
    on_profile = None if run_file is None else partial(runfiles.record_frozen_profile, out_path)

    async def run() -> RunOutcome:
        async with setup.opened():
            ticking = asyncio.ensure_future(progress.tick())
            try:
                return await process_file(
                    source,
                    judge=setup.judge,
                    spec=spec,
                    formatter=formatter,
                    sinks=files.sinks,
                    rows=row_spec(args),
                    principle=principle,
                    **given(files, "skip_keys", "skip_lines"),
                    on_row=progress.on_row,
                    on_progress=progress.on_judge,
                    judge_profile=profile,
                    on_profile=on_profile,
                    learn_profile=args.save_judge_profile is not None,
                    **given(args, "concurrency", "max_calls", "max_tokens", "max_pending", "shard"),
                )
            finally:
                ticking.cancel()

    started = time.monotonic()
    try:
        outcome, received = asyncio.run(_drive(run()))
    except ValueError as exc:
        # Options were all checked above: a ValueError from inside the run is a defect, not a
        # usage error (exit 2), so let it surface with its traceback.
        raise RuntimeError(f"internal error during the run: {exc}") from exc
    except OSError as exc:
        progress.close()
        return _write_failed(args, exc, to_stdout=to_stdout)
    finally:
        files.close()
        progress.close()
        if setup.cache is not None:
            setup.cache.close()
    outcome.recovered = files.recovered
    wall = time.monotonic() - started
    wrote = any(p is not None and p.is_file() and p.stat().st_size for p in paths.values())
    if outcome.status == "misconfigured" and not wrote and run_file is not None:
        # Nothing was written under these settings: a rerun with the fix and --resume is not
        # held to them.
        run_file.unlink(missing_ok=True)
    saved = args.save_judge_profile and _save_profile(args.save_judge_profile, outcome)
    faults = getattr(setup.inner, "faults", None)
    summary = summarize(outcome, wall, shard_total, cached=setup.cached, faults=faults)
    shown = {**paths, "errors": "stderr"} if to_stderr else paths
    summary["output"] = {k: None if v is None else str(v) for k, v in shown.items()}
    if summary["message"]:
        summary["message"] = cli_words(summary["message"], args.command)
    from_line = layout.id_from_line if args.id_from_line is None else args.id_from_line
    summary["rows"] = {
        "prompt_field": args.prompt_field or layout.prompt_field,
        "ids": "line numbers" if from_line else f"field {args.id_field!r}",
    }
    if args.summary_json is not None:
        args.summary_json.write_text(json.dumps(summary, indent=2) + "\n")
    status = _exit_status(outcome, received)
    if outcome.status in ("misconfigured", "systematic_failure") and outcome.message:
        # Stopped in seconds, in the server's (or the rows') own words: always shown.
        words = cli_words(outcome.message, args.command)
        print(f"{PROG} {args.command}: error: {words}", file=sys.stderr)
    if args.quiet:
        return status
    lines = [
        f"{PROG} {args.command}: {' '.join(map(str, args.input))} -> {out_path}",
        format_summary(summary),
        f"  {format_rows(summary['rows'])}",
    ]
    if outcome.counters.failed:
        lines.append(f"  {outcome.counters.failed} rows failed: see {shown['errors']}")
    if saved:
        lines.append(f"  {saved}")
    if status in _RESUMABLE:
        lines.append(
            f"  stopped early; rerun the same command with --resume to continue (exit {status})"
        )
    print("\n".join(lines), file=out_stream or sys.stderr)
    return status
