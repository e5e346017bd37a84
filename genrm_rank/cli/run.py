"""Running ``rank``/``select``/``pairs`` on a file: sinks, resume, signals, summary, exit status."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import hashlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from genrm_rank.cli.judge import JudgeSetup, cli_words, make_judge
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
    read_principle,
    spec_from_args,
)
from genrm_rank.cli.report import Progress, format_summary, projection_bounds, summarize
from genrm_rank.judge_profile import JudgeProfile
from genrm_rank.sdg import (
    DEFAULT_PROMPT_FIELDS,
    STDOUT,
    Formatter,
    OutputFiles,
    RowSpec,
    RunOutcome,
    prepare_output,
    process_file,
)
from genrm_rank.sdg.inputs import (
    STDIN,
    InputError,
    RowSource,
    group_messages,
    merge_candidate_files,
    open_input,
)
from genrm_rank.sdg.output import StreamSink, is_stream, sidecar_path
from genrm_rank.sdg.plan import CostAssumptions, plan_file
from genrm_rank.sdg.rows import MAX_CANDIDATES, RowLayout, first_row_layout
from genrm_rank.spec import RankSpec

# --------------------------------------------------------------------------------------------
# Running a file


def row_spec(args: argparse.Namespace) -> RowSpec:
    """Where rows keep their parts (the input layout options)."""
    return RowSpec(
        id_field=args.id_field,
        prompt_fields=(args.prompt_field,) if args.prompt_field else DEFAULT_PROMPT_FIELDS,
        candidates_field=args.candidates_field,
        candidate_id_key=args.candidate_id_key,
        candidate_text_key=args.candidate_text_key,
        principle_field=args.principle_field,
        max_chars=args.max_chars or None,
        max_candidates=args.max_candidates or None,
        id_from_line=args.id_from_line,
        allow_templated=args.allow_templated_prompt,
    )


def input_name(args: argparse.Namespace) -> str:
    """The input(s), for messages."""
    return " ".join(str(p) for p in args.input)


def input_source(args: argparse.Namespace) -> RowSource:
    """The rows the input options describe: one input, merged files, or grouped messages."""
    paths: list[Path] = args.input
    merging = args.candidates_from_files
    if not merging:
        for flag, value in (
            ("--candidate-field", args.candidate_field),
            ("--align-by", args.align_by),
        ):
            if value is not None:
                raise UsageError(f"argument {flag}: needs --candidates-from-files")
        if len(paths) > 1:
            raise UsageError(
                f"argument IN: {len(paths)} inputs given; several files are read only with "
                "--candidates-from-files (one sample a row, candidate i from file i)"
            )
    if args.group_by is not None and not args.group_messages:
        raise UsageError("argument --group-by: needs --group-messages")
    if merging and args.group_messages:
        raise UsageError("argument --group-messages: not allowed with --candidates-from-files")
    if merging and (len(paths) < 2 or args.candidate_field is None):
        raise UsageError(
            "argument --candidates-from-files: needs two or more inputs and --candidate-field "
            f"(got {len(paths)} input(s), --candidate-field {args.candidate_field})"
        )
    try:
        sources = [open_input(p, format=args.input_format, split=args.split) for p in paths]
        if merging:
            return merge_candidate_files(
                sources,
                candidate_field=args.candidate_field,
                candidates_field=args.candidates_field,
                align_by=args.align_by,
                candidate_id_key=args.candidate_id_key,
                candidate_text_key=args.candidate_text_key,
                prompt_fields=row_spec(args).prompt_fields,
            )
        if args.group_messages:
            return group_messages(
                sources[0],
                messages_field=args.prompt_field or "messages",
                group_by=args.group_by,
                candidates_field=args.candidates_field,
            )
    except (InputError, ValueError) as exc:
        raise UsageError(cli_words(str(exc).replace("Argument 'input'", "argument IN"))) from None
    return sources[0]


def _open_output(
    args: argparse.Namespace, paths: dict[str, Path | None], grouped: bool, *, fresh: bool
) -> OutputFiles:
    try:
        return prepare_output(
            paths,
            resume=False if fresh else args.resume,
            overwrite=True if fresh else args.overwrite,
            grouped=grouped,
            id_field=args.id_field,
            fsync_interval=args.fsync_interval,
        )
    except ValueError as exc:
        flag = "--resume" if args.resume else "--output"
        message = str(exc).replace(
            "resume it or overwrite it", "pass --resume to continue it or --overwrite to replace it"
        )
        for prefix in ("Argument 'paths['out']': ", "Argument 'paths': "):  # the flag says it
            message = message.removeprefix(prefix)
        raise UsageError(f"argument {flag}: {message}") from None


OUTPUT_KEYS = (
    "command", "id_field", "prompt_field", "candidates_field", "candidate_id_key",
    "candidate_text_key", "principle_field", "max_chars", "result_field", "judgements",
    "min_score", "min_margin", "min_p_best", "all_pairs", "max_pairs", "shard", "format",
    "margin_field",
)  # fmt: skip
INPUT_KEYS = (
    "input_format", "split", "id_from_line", "allow_templated_prompt", "candidates_from_files",
    "candidate_field", "align_by", "group_messages", "group_by", "max_candidates",
)  # fmt: skip
"""Input options that change which rows a run reads: recorded when not at their default (so a
run started before they existed resumes)."""
_INPUT_DEFAULTS = {"input_format": "auto", "split": "train", "max_candidates": MAX_CANDIDATES}
"""Options besides the spec that change what a row's output is: a resumed run must use the
same."""


FOUND_KEYS = ("prompt_field_found",)
"""What a run found in its input rather than was told: recorded, and compared on resume only
when the run file has it (a run started before they were recorded resumes)."""


def rows_summary(args: argparse.Namespace, layout: RowLayout) -> dict[str, Any]:
    """How the rows were read: the prompt field and where the ids came from."""
    from_line = layout.id_from_line if args.id_from_line is None else args.id_from_line
    return {
        "prompt_field": args.prompt_field or layout.prompt_field,
        "ids": "line numbers" if from_line else f"field {args.id_field!r}",
    }


def format_rows(rows: dict[str, Any]) -> str:
    """The summary line of :func:`rows_summary`."""
    prompt = rows["prompt_field"]
    where = f"prompt from {prompt!r}" if prompt else "no valid row"
    return f"rows: {where}, ids from {rows['ids']}"


def run_settings(
    args: argparse.Namespace,
    spec: RankSpec,
    setup: JudgeSetup,
    *,
    layout: RowLayout | None = None,
) -> dict[str, Any]:
    """What a run's output depends on, for the ``OUT.run.json`` sidecar: the spec and more.

    ``layout`` (:func:`~genrm_rank.sdg.rows.first_row_layout`): what the first rows showed,
    recorded when the options leave it open: the prompt field, and whether ids come from line
    numbers (so that a resumed run reads its rows as the first did).
    """
    settings: dict[str, Any] = {k: getattr(args, k, None) for k in OUTPUT_KEYS}
    if layout is not None and args.prompt_field is None:
        settings["prompt_field_found"] = layout.prompt_field
    if layout is not None and args.id_from_line is None and layout.id_from_line:
        settings["id_from_line"] = True
    for key in INPUT_KEYS:
        value = getattr(args, key, None)
        if value not in (None, False, _INPUT_DEFAULTS.get(key)):
            settings[key] = value
    settings["shard"] = list(args.shard)
    settings["spec"] = spec.to_dict()
    if getattr(args, "judge_profile", None) is not None:  # recorded when given, by content
        settings["judge_profile"] = load_profile(args).to_dict()  # type: ignore[union-attr]
    principle = read_principle(args)
    settings["principle_sha256"] = (
        None if principle is None else hashlib.sha256(principle.encode()).hexdigest()
    )
    settings["judge"] = setup.namespace
    return settings


def _flat(settings: dict[str, Any]) -> dict[str, Any]:
    """Settings with the spec's fields as ``spec.<field>`` keys, to name what changed."""
    flat = {k: v for k, v in settings.items() if k != "spec"}
    spec = settings.get("spec")
    if isinstance(spec, dict):
        flat.update({f"spec.{k}": v for k, v in spec.items()})
    return flat


def settings_path(output: Path) -> Path:
    return sidecar_path(output, "run", "json")


FROZEN_PROFILE_KEY = "judge_profile_frozen"
"""The run file's record of the profile a run froze after its warm-up (``--resume`` uses it);
not a setting, so never compared on resume."""


def load_profile(args: argparse.Namespace) -> JudgeProfile | None:
    """The ``--judge-profile`` file's profile (``None`` without one); a bad file is a usage
    error naming the flag."""
    path: Path | None = getattr(args, "judge_profile", None)
    if path is None:
        return None
    try:
        return JudgeProfile.load(path)
    except OSError as exc:
        raise UsageError(f"argument --judge-profile: cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise UsageError(f"argument --judge-profile: {exc}") from None


def frozen_profile(output: Path) -> JudgeProfile | None:
    """The profile an interrupted run froze, from its run file (``None``: none frozen yet)."""
    try:
        data = json.loads(settings_path(output).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    record = data.get(FROZEN_PROFILE_KEY) if isinstance(data, dict) else None
    if record is None:
        return None
    try:
        return JudgeProfile.from_dict(record)
    except (TypeError, ValueError) as exc:
        raise UsageError(
            f"argument --resume: {settings_path(output)} holds a frozen judge profile that is "
            f"not one ({exc}); use --overwrite to start again"
        ) from None


def record_frozen_profile(output: Path, profile: JudgeProfile) -> None:
    """Add the frozen profile to the run file, atomically (a temporary file, then a rename)."""
    path = settings_path(output)
    data = json.loads(path.read_text(encoding="utf-8"))
    data[FROZEN_PROFILE_KEY] = profile.to_dict()
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def check_settings(
    output: Path, settings: dict[str, Any], *, resume: bool, inputs: Sequence[Path] = ()
) -> None:
    """Refuse to resume onto an output written with other settings or from another input.

    Otherwise record them (with the inputs' :func:`input_identity`) in the run file.
    """
    path = settings_path(output)
    settings = {**settings, "input": input_identity(inputs)}
    if resume and path.exists():
        try:
            before = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            before = None
        now = _flat(json.loads(json.dumps({k: v for k, v in settings.items() if k != "input"})))
        if isinstance(before, dict):
            before.pop(FROZEN_PROFILE_KEY, None)
            _check_input(output, before.pop("input", None), inputs, path)
            now = {k: v for k, v in now.items() if k not in FOUND_KEYS or k in before}
        if isinstance(before, dict) and _flat(before) != now:
            before = _flat(before)
            changed = [
                f"{k}: {before.get(k)!r} -> {now.get(k)!r}"
                for k in sorted(set(before) | set(now))
                if before.get(k) != now.get(k)
            ]
            raise UsageError(
                f"argument --resume: {output} was written with other settings ("
                + "; ".join(changed)
                + f"); resume with the same options, or use --overwrite (settings: {path})"
            )
        return
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(settings, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


async def _drive(coro: Any) -> Any:
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
        result = await task
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
    return result, received


async def _run_pipeline(
    args: argparse.Namespace,
    setup: JudgeSetup,
    spec: RankSpec,
    formatter: Formatter,
    files: OutputFiles,
    progress: Progress,
    source: RowSource,
    profile: JudgeProfile | None = None,
    on_profile: Callable[[JudgeProfile], None] | None = None,
) -> RunOutcome:
    async with contextlib.AsyncExitStack() as stack:
        if hasattr(setup.judge, "__aenter__"):
            await stack.enter_async_context(setup.judge)  # type: ignore[arg-type]
        ticker = asyncio.ensure_future(progress.tick())
        stack.callback(ticker.cancel)
        outcome = await process_file(
            source,
            judge=setup.judge,
            spec=spec,
            formatter=formatter,
            sinks=files.sinks,
            rows=row_spec(args),
            principle=read_principle(args),
            concurrency=args.concurrency,
            max_calls=args.max_calls,
            max_tokens=args.max_tokens,
            max_pending=args.max_pending,
            skip_keys=files.skip_keys,
            skip_lines=files.skip_lines,
            shard=args.shard,
            on_row=progress.on_row,
            on_progress=progress.on_judge,
            judge_profile=profile,
            on_profile=on_profile,
            learn_profile=getattr(args, "save_judge_profile", None) is not None,
        )
    outcome.recovered = files.recovered
    return outcome


def check_distinct_paths(
    written: dict[str, Path | None], read: dict[str, Sequence[Path | None]]
) -> None:
    """Refuse a command whose files coincide, before anything is opened.

    Every path a command writes (``written``: by option) must differ from every other one and
    from every path it reads (``read``), so that ``--overwrite`` never empties a cache, an
    input or another output. Standard streams and devices are not files and are skipped.
    """

    def the(flag: str) -> str:
        return flag if flag.startswith("the ") else f"the {flag} file"

    sources: dict[Path, str] = {}
    for flag, paths in read.items():
        for path in paths:
            if path is not None and str(path) != STDIN and path.exists():
                sources.setdefault(path.resolve(), flag)
    targets: dict[Path, str] = {}
    for flag, path in written.items():
        if path is None or str(path) == STDOUT or is_stream(path):
            continue
        key = path.resolve()
        if key in sources:
            raise UsageError(
                f"argument {flag}: {path} is also {the(sources[key])}, which this run reads; "
                "choose another file"
            )
        if key in targets:
            raise UsageError(
                f"argument {flag}: {path} is also {the(targets[key])}; every file a run "
                "writes must differ"
            )
        targets[key] = flag


IDENTITY_BYTES = 1 << 20
"""How much of an input its identity hashes (see :func:`input_identity`)."""


def _read_paths(args: argparse.Namespace) -> dict[str, Sequence[Path | None]]:
    """The files a run reads, by option."""
    return {
        "IN": args.input,
        "--principle-file": [getattr(args, "principle_file", None)],
        "--judge-profile": [getattr(args, "judge_profile", None)],
    }


def input_identity(paths: Sequence[Path]) -> list[dict[str, Any]]:
    """What ``--resume`` checks the input against: per input, its name and its first bytes.

    A file is known by the SHA-256 of its first :data:`IDENTITY_BYTES` bytes (or all of it, if
    shorter) and how many bytes that was, so the check reads at most 1 MiB, and an input that
    has only grown (rows appended) is still the same input. Standard input and datasets are
    known by their name only.
    """
    identity: list[dict[str, Any]] = []
    for path in paths:
        if str(path) == STDIN or not path.is_file():
            identity.append({"path": str(path)})
            continue
        with open(path, "rb") as handle:
            head = handle.read(IDENTITY_BYTES)
        identity.append(
            {
                "path": str(path.resolve()),
                "head_bytes": len(head),
                "head_sha256": hashlib.sha256(head).hexdigest(),
            }
        )
    return identity


def _same_input(before: dict[str, Any], path: Path) -> bool:
    if "head_sha256" not in before:
        return str(before.get("path")) == str(path)
    if str(path) == STDIN or not path.is_file():
        return False
    size = int(before.get("head_bytes", 0))
    with open(path, "rb") as handle:
        head = handle.read(size)
    return len(head) == size and hashlib.sha256(head).hexdigest() == before["head_sha256"]


def _check_input(output: Path, before: Any, inputs: Sequence[Path], path: Path) -> None:
    """Refuse to resume ``output`` from an input other than the one it was written from."""
    if not isinstance(before, list):
        return  # a run file from before inputs were recorded
    if len(before) != len(inputs) or not all(
        isinstance(b, dict) and _same_input(b, p) for b, p in zip(before, inputs, strict=False)
    ):
        names = ", ".join(str(b.get("path")) if isinstance(b, dict) else "?" for b in before)
        raise UsageError(
            f"argument --resume: {output} was written from another input ({names}, as its "
            f"first bytes were then), not {', '.join(map(str, inputs))}; resume with that "
            f"input, or use --overwrite (run file: {path})"
        )


def _check_output_paths(paths: dict[str, Path | None], args: argparse.Namespace) -> None:
    """Refuse output paths that cannot be written, before any judge call is made."""
    flags = {
        "out": "--output",
        "errors": "--errors",
        "rejected": "--rejected",
        "save_judge_profile": "--save-judge-profile",
    }
    for name, path in paths.items():
        if path is None or str(path) == STDOUT or is_stream(path):
            continue
        parent = path.parent if str(path.parent) else Path(".")
        if path.is_dir():
            raise UsageError(f"argument {flags[name]}: {path} is a directory, not a file")
        if not parent.is_dir():
            raise UsageError(f"argument {flags[name]}: directory {parent} does not exist")
        if not os.access(parent, os.W_OK):
            raise UsageError(f"argument {flags[name]}: directory {parent} is not writable")


def _write_failed(args: argparse.Namespace, exc: OSError, *, to_stdout: bool) -> int:
    """A run stopped by its output: a full disk (resumable) or a closed standard output."""
    if exc.errno == errno.EPIPE and to_stdout:
        # The reader went away (-o - | head): what it read is what it wanted. Standard output
        # is pointed at /dev/null so that the interpreter's last flush does not fail too.
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)
            os.close(devnull)
        return EXIT_BROKEN_PIPE
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        where = f" ({exc.filename})" if exc.filename else ""
        print(
            f"{PROG} {args.command}: error: no space left on the device{where}: every row "
            "written before is complete; free some space, then rerun the same command with "
            f"--resume to continue (exit {EXIT_NO_SPACE})",
            file=sys.stderr,
        )
        return EXIT_NO_SPACE
    raise exc


def _save_profile(args: argparse.Namespace, outcome: RunOutcome) -> str | None:
    """Write ``--save-judge-profile``; what was done, for the summary."""
    path: Path | None = getattr(args, "save_judge_profile", None)
    if path is None:
        return None
    learnt = outcome.learnt_profile
    if learnt is None:
        return f"judge profile: no usable verdict, nothing written to {path}"
    learnt.save(path)
    return (
        f"judge profile: {path} (from {learnt.prompts} rows, {learnt.verdicts} verdicts; "
        f"slot-1 bias {learnt.position_bias:.2f} ± {learnt.position_bias_stderr:.2f}, "
        f"dispersion {learnt.dispersion:.2f})"
    )


def _exit_status(outcome: RunOutcome, received: list[int]) -> int:
    if outcome.status == "interrupted" or received:
        return EXIT_TERMINATED if signal.SIGTERM in received else EXIT_INTERRUPTED
    if outcome.status == "cap":
        return EXIT_CAP
    if outcome.status in ("unavailable", "systematic_failure"):
        return EXIT_UNAVAILABLE
    if outcome.status == "misconfigured":
        return EXIT_USAGE
    return EXIT_ROWS_FAILED if outcome.counters.failed else EXIT_OK


def print_plan(
    args: argparse.Namespace, out_stream: TextIO, formatter: Formatter | None = None
) -> int:
    """``--dry-run``: the cost plan of the file under the options' spec; no judge is called.

    Exits 2, as the run would, when the first rows would stop the run as misconfigured."""
    spec = spec_from_args(args)
    try:
        assumptions = CostAssumptions(
            completion_tokens_per_call=args.expect_completion_tokens,
            tokens_per_second_per_replica=args.throughput,
            gpus_per_replica=args.gpus_per_replica,
            price_per_gpu_hour=args.price_per_gpu_hour,
            expected_calls_per_row=args.expect_calls_per_row,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    check_distinct_paths({"--summary-json": args.summary_json}, _read_paths(args))
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
    print(
        f"{PROG} {args.command} --dry-run: {input_name(args)} ({spec.strategy}, swap {spec.swap})"
    )
    print(cli_words(plan.format()))
    if plan.stop is not None:
        print(f"{PROG} {args.command}: error: {cli_words(plan.stop)}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


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

    def count(text: str) -> int:
        return len(tokenizer.encode(text, add_special_tokens=False))

    return count


def run_file_command(
    args: argparse.Namespace,
    formatter_for: Callable[[bool], Formatter],
    *,
    grouped: bool = False,
    rejected_default: bool = False,
    output: Path | None = None,
    out_stream: TextIO = sys.stderr,
) -> int:
    """Shared body of rank/select/pairs/leaderboard: files, judge, progress, summary, status.

    ``output`` overrides ``--output`` (a one-shot run whose rows are not the product, such as
    the leaderboard's): it is written afresh, never resumed.
    """
    source = input_source(args)
    try:
        layout = first_row_layout(source, row_spec(args))
    except InputError as exc:
        raise UsageError(cli_words(str(exc).replace("Argument 'input'", "argument IN"))) from None
    if args.dry_run:
        return print_plan(args, out_stream, formatter_for(False))
    fresh = output is not None
    out_path: Path = output if output is not None else args.output
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
    run_file = None if fresh or to_stdout else settings_path(out_path)
    check_distinct_paths(
        {
            "--output": out_path,
            "--errors": errors,
            "--rejected": rejected,
            "the run file": run_file,
            "--cache": args.cache,
            **({"--output": args.output, "--plot": getattr(args, "plot", None)} if fresh else {}),
            "--summary-json": args.summary_json,
            "--save-judge-profile": args.save_judge_profile,
        },
        _read_paths(args),
    )
    _check_output_paths(paths, args)
    _check_output_paths({"save_judge_profile": args.save_judge_profile}, args)
    spec = spec_from_args(args)
    profile = load_profile(args)
    setup = make_judge(args, cache_path=args.cache)
    files = _open_output(args, paths, grouped, fresh=fresh or to_stdout)
    try:
        if to_stderr:
            files.sinks["errors"] = StreamSink(2)
        if not fresh and not to_stdout:
            settings = run_settings(args, spec, setup, layout=layout)
            check_settings(out_path, settings, resume=args.resume, inputs=args.input)
            if profile is None and args.resume:
                profile = frozen_profile(out_path)  # what the interrupted run froze
        try:
            total = source.count()
        except InputError as exc:
            raise UsageError(
                cli_words(str(exc).replace("Argument 'input'", "argument IN"))
            ) from None
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
    started = time.monotonic()
    try:
        on_profile = (
            None if run_file is None else lambda frozen: record_frozen_profile(out_path, frozen)
        )
        outcome, received = asyncio.run(
            _drive(
                _run_pipeline(
                    args, setup, spec, formatter, files, progress, source, profile, on_profile
                )
            )
        )
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
    wall = time.monotonic() - started
    written = any(p is not None and p.is_file() and p.stat().st_size for p in paths.values())
    if outcome.status == "misconfigured" and not written and not fresh and not to_stdout:
        # Nothing was written under these settings: a rerun with the fix (--model, say) and
        # --resume is not held to them.
        settings_path(out_path).unlink(missing_ok=True)
    saved = _save_profile(args, outcome)
    summary = summarize(outcome, setup, wall, shard_total)
    shown = {**paths, "errors": "stderr"} if to_stderr else paths
    summary["output"] = {k: None if v is None else str(v) for k, v in shown.items()}
    if summary["message"]:
        summary["message"] = cli_words(summary["message"])
    summary["rows"] = rows_summary(args, layout)
    if args.summary_json is not None:
        args.summary_json.write_text(json.dumps(summary, indent=2) + "\n")
    status = _exit_status(outcome, received)
    if outcome.status in ("misconfigured", "systematic_failure") and outcome.message:
        # Stopped in seconds, in the server's (or the rows') own words: always shown.
        print(f"{PROG} {args.command}: error: {cli_words(outcome.message)}", file=sys.stderr)
    if not args.quiet:
        print(f"{PROG} {args.command}: {input_name(args)} -> {output or out_path}", file=out_stream)
        print(format_summary(summary), file=out_stream)
        print(f"  {format_rows(summary['rows'])}", file=out_stream)
        if outcome.counters.failed:
            print(
                f"  {outcome.counters.failed} rows failed: see {shown['errors']}", file=out_stream
            )
        if saved is not None:
            print(f"  {saved}", file=out_stream)
        if status in (EXIT_CAP, EXIT_UNAVAILABLE, EXIT_INTERRUPTED, EXIT_TERMINATED):
            print(
                "  stopped early; rerun the same command with --resume to continue (exit "
                f"{status})",
                file=out_stream,
            )
    return status
