"""The SDG pipeline: a file of rows through the one runner, results durably in input order.

:func:`process_file` reads rows (:mod:`~genrm_rank.sdg.rows`), ranks the valid ones with the
:class:`~genrm_rank.runner.Runner` as the :class:`~genrm_rank.spec.RankSpec` says, and writes
what each produced in input order (:mod:`~genrm_rank.sdg.output`); :func:`prepare_output` opens
the output files of a new or a resumed run. A row's randomness comes from the run seed and its
id, and what it assumes of the judge is a fixed profile (:mod:`genrm_rank.runner`), so a
resumed or sharded run writes the bytes of an uninterrupted one. A row the judge failed is
written with ``"cause": "judge"`` and judged again on resume.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import Counter
from collections.abc import (
    AsyncIterator,
    Callable,
    Container,
    Generator,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, cast

from genrm_rank.errors import (
    ArgumentError,
    EndpointsUnavailableError,
    GenRMRankError,
    JudgeConfigurationError,
    SystematicFailureError,
    Words,
)
from genrm_rank.failure_watch import FailureWatch
from genrm_rank.judge_profile import JudgeProfile, ProfileLike
from genrm_rank.judges.base import Judge
from genrm_rank.orchestrator import JudgeStatistics, ProgressCallback
from genrm_rank.runner import PromptInput, PromptResult, Runner
from genrm_rank.sdg.filters import Formatter, format_problem
from genrm_rank.sdg.inputs import InputError, RowSource, open_input
from genrm_rank.sdg.output import (
    STDOUT,
    Block,
    JsonlSink,
    Recovered,
    ReorderBuffer,
    RunCounters,
    StreamSink,
    drop_retried_errors,
    is_stream,
    open_locked,
    recover,
)
from genrm_rank.sdg.rows import IdIndex, Row, RowError, RowReader, RowSpec
from genrm_rank.spec import RankSpec
from genrm_rank.textfiles import file_key

__all__ = [
    "FIELD_CHECK_ROWS",
    "OutputFiles",
    "RunCounters",
    "RunOutcome",
    "first_rows_message",
    "holds_back",
    "prepare_output",
    "process_file",
    "read_rows",
]

FIELD_CHECK_ROWS = 8
"""When this many first rows (or all of a shorter input) fail alike (a missing field, a
chat-templated prompt, a format that cannot hold them), the run stops (``"misconfigured"``)."""

_FIRST_ROWS = {
    "templated_prompt": "the first {n} rows all hold a chat-templated prompt: {reason}",
    "format_mismatch": "the output format can hold none of the first {n} rows: {reason}",
    "ambiguous_field": "the first {n} rows are all ambiguous: {reason}",
}
_STOP_KINDS = ("missing_field", *_FIRST_ROWS)

_ERROR_WORDS_LIMIT = 1000


class _MissingFieldStop(GenRMRankError):
    """The first rows all lack the same field (see :data:`FIELD_CHECK_ROWS`)."""


@dataclass
class RunOutcome:
    """How :func:`process_file` ended."""

    counters: RunCounters
    stats: JudgeStatistics
    status: Literal[
        "complete", "cap", "interrupted", "unavailable", "misconfigured", "systematic_failure"
    ] = "complete"
    """``"misconfigured"``: the endpoints refused the run, or the first rows failed alike
    (:data:`FIELD_CHECK_ROWS`); ``"systematic_failure"``: :mod:`~genrm_rank.failure_watch`."""
    cap: str | None = None
    message: str | None = None
    recovered: dict[str, Recovered] = field(default_factory=dict)
    judge_profile: JudgeProfile | None = None
    """The profile the rows after the warm-up used (``None``: the run ended in its warm-up)."""
    learnt_profile: JudgeProfile | None = None
    """With ``learn_profile``: what this run's verdicts say of the judge."""


@dataclass
class OutputFiles:
    """The sinks of a run, and what a resumed run must skip (:func:`prepare_output`)."""

    sinks: dict[str, JsonlSink]
    recovered: dict[str, Recovered] = field(default_factory=dict)

    @property
    def skip_keys(self) -> Container[str]:
        """Row ids already written to the output or rejected file."""
        return self.recovered["out"].keys if "out" in self.recovered else ()

    @property
    def skip_lines(self) -> Container[str]:
        """Input line numbers already written to the errors file."""
        return self.recovered["errors"].keys if "errors" in self.recovered else ()

    def close(self) -> None:
        """Close every sink (and so release the output's lock)."""
        for sink in self.sinks.values():
            sink.close()


def prepare_output(
    paths: Mapping[str, str | os.PathLike[str] | None],
    *,
    resume: bool = False,
    overwrite: bool = False,
    grouped: bool = False,
    id_field: str = "id",
    fsync_interval: float = 5.0,
) -> OutputFiles:
    """Open the output files of a run, new or resumed.

    The ``"out"`` file is created at once and locked (``flock``) until its sink closes, so
    that a second run writing it is refused.

    Parameters
    ----------
    paths : mapping
        ``"out"``, ``"errors"`` and ``"rejected"`` paths (``None``: rows counted, not kept);
        one may be ``"-"``, standard output (never resumed).
    resume : bool
        Continue an interrupted run's files (:func:`~genrm_rank.sdg.output.recover`).
    overwrite : bool
        Empty existing files (truncated in place, never unlinked); without ``resume`` or
        ``overwrite`` they are refused. A stream (:func:`~genrm_rank.sdg.output.is_stream`)
        is only appended to.
    grouped : bool
        The output holds groups of pair lines (``n_pairs``), recovered whole.
    id_field : str
        The row id field of the output.
    fsync_interval : float
        Seconds between ``fsync`` calls of each file.

    Raises
    ------
    ValueError
        Files that coincide, that exist without ``resume`` or ``overwrite``, that this library
        did not write, or an output that another run is writing.
    """
    if resume and overwrite:
        raise ArgumentError(
            "resume",
            "and {overwrite} exclude each other; pass one.",
            overwrite=ArgumentError.Setting("overwrite"),
        )
    streams = [name for name, p in paths.items() if p is not None and os.fspath(p) == STDOUT]
    if len(streams) > 1 or (streams and resume):
        raise ArgumentError(
            "paths",
            f": standard output ('-') can take one output and cannot be resumed, not {streams}"
            f"{' with resume' if resume else ''}.",
        )
    real = {name: Path(p) for name, p in paths.items() if p is not None and name not in streams}
    if len({file_key(p) for p in real.values()}) != len(real):  # a hard link included
        raise ArgumentError("paths", "names one file twice; each output must differ.")
    for name, p in real.items():
        if not p.parent.is_dir():
            raise ArgumentError(f"paths[{name!r}]", f": no such folder: {p.parent}.")
    files = {name: p for name, p in real.items() if not is_stream(p)}

    def refuse_existing() -> list[Path]:
        existing = [p for p in files.values() if p.is_file() and p.stat().st_size > 0]
        if existing and not resume and not overwrite:
            names = ", ".join(str(p) for p in existing)
            raise ArgumentError(
                "paths",
                ": {names} already exists; pass {resume} to continue it or {overwrite} to "
                "replace it.",
                names=names,
                resume=ArgumentError.Setting("resume", True),
                overwrite=ArgumentError.Setting("overwrite", True),
            )
        return existing

    refuse_existing()  # before the output is created by locking it
    out = files.get("out")
    busy = ArgumentError(
        "paths['out']",
        f": {out} is being written by another run (it holds the file's lock); wait for that "
        "run to end, or write to another file.",
    )
    fds: dict[str, int] = {}
    with contextlib.ExitStack() as opened:  # closes what it opened unless all goes well
        if out is not None:
            fds["out"] = open_locked(out, os.O_WRONLY | os.O_APPEND | os.O_CREAT, busy)
            opened.callback(os.close, fds["out"])
        existing = refuse_existing()  # again: another run may have written it meanwhile
        recovered: dict[str, Recovered] = {}
        if not resume:
            for stale in existing:  # truncated in place: the path stays the locked file
                os.truncate(stale, 0)
        done_ids = IdIndex()  # rows in the output and rejected files share one index
        for name, p in files.items() if resume else ():
            errors = name == "errors"
            retried = drop_retried_errors(p) if errors else 0
            key_field, keys = ("line", None) if errors else (id_field, done_ids)
            recovered[name] = recover(
                p, key_field=key_field, grouped=grouped and name == "out", keys=keys
            )
            recovered[name].retried = retried
        for name, p in real.items():
            if name not in files:  # a stream or a device: opened as it is, never created
                try:
                    fds[name] = os.open(p, os.O_WRONLY | os.O_APPEND)
                except OSError as exc:
                    raise ArgumentError(
                        "paths", f": cannot open {exc.filename}: {exc.strerror}."
                    ) from None
                opened.callback(os.close, fds[name])
        opened.pop_all()  # the sinks own the descriptors now
    sinks: dict[str, JsonlSink] = {
        name: JsonlSink(real[name], fsync_interval=fsync_interval, fd=fds.get(name))
        if name in real
        else StreamSink()
        if name in streams
        else JsonlSink(os.devnull)  # no rejected file: its rows are counted, not kept
        for name in paths
    }
    return OutputFiles(sinks, recovered)


def _no_usable_verdict(row: Row, result: PromptResult) -> RowError:
    """The error of a ranked row without a winner: each failed call, kind and words."""
    judgements = result.ranking.judgements if result.ranking is not None else ()
    failed: list[dict[str, object]] = []
    for verdict in (j.verdict for j in judgements if j.verdict.failure is not None):
        entry: dict[str, object] = {"failure": str(verdict.failure), "error": verdict.error}
        if verdict.finish_reason is not None:
            entry["finish_reason"] = verdict.finish_reason
        if (raw := verdict.raw) is not None:
            entry["raw"] = raw[:_ERROR_WORDS_LIMIT] + (
                "..." if len(raw) > _ERROR_WORDS_LIMIT else ""
            )
        failed.append(entry)
    kinds = Counter(str(entry["failure"]) for entry in failed)
    detail = ", ".join(f"{k}: {v}" for k, v in sorted(kinds.items())) or "none"
    reason = f"no usable verdict in {len(judgements)} judged calls (failures: {detail})"
    # Refused requests (a prompt over the context length) are the row's own; others the judge's.
    cause: Literal["row", "judge"] = "row" if failed and set(kinds) == {"rejected"} else "judge"
    failed_requests = tuple(failed)
    return RowError(
        row.line, row.id, "no_usable_verdict", reason, failed_requests=failed_requests, cause=cause
    )


def holds_back(held: Sequence[RowError], error: RowError) -> bool:
    """Whether ``error``, read while every row so far failed as ``held`` did, joins them: the
    same stopping kind and field (see :data:`FIELD_CHECK_ROWS`)."""
    return error.kind in _STOP_KINDS and (
        not held or (held[0].kind, held[0].field) == (error.kind, error.field)
    )


def first_rows_message(errors: Sequence[RowError]) -> Words:
    """Why a run stops when its first :data:`FIELD_CHECK_ROWS` rows all failed as ``errors``."""
    first = errors[0]
    if first.kind in _FIRST_ROWS:
        return Words(_FIRST_ROWS[first.kind], n=len(errors), reason=first.reason)
    keys = sorted({k for e in errors for k in e.keys})
    argument = first.field if first.field and "." in first.field else f"rows.{first.field}"
    hint: Words | str = ""
    if first.field == "id_field":
        hint = Words(
            "; rows without ids can be numbered by their line instead ({a})",
            a=ArgumentError.Setting("rows.id_from_line"),
        )
    return Words(
        "the first {n} rows all lack the field the run looks for: {reason} ({a}); the rows have "
        "the keys {keys}{hint}",
        n=len(errors),
        reason=first.reason,
        a=ArgumentError.Setting(argument),
        keys=keys,
        hint=hint,
    )


def read_rows(
    input_path: str | os.PathLike[str] | RowSource,
    reader: RowReader,
    shard: tuple[int, int] = (0, 1),
    formatter: Formatter | None = None,
) -> Generator[tuple[int, Row | RowError | None], None, None]:
    """The shard's lines of an input, read as the run reads them (``None``: a blank line); a
    row ``formatter`` cannot write is its error (:func:`~genrm_rank.sdg.filters.format_problem`).
    """
    source = input_path if isinstance(input_path, RowSource) else open_input(input_path)
    return _parsed(iter(source), reader, shard, formatter)


def _parsed(
    lines: Iterator[tuple[int, object]],
    reader: RowReader,
    shard: tuple[int, int],
    formatter: Formatter | None,
) -> Generator[tuple[int, Row | RowError | None], None, None]:
    """:func:`read_rows` past the opening (an input that cannot be opened raises at once)."""
    try:
        for number, raw in lines:
            if shard == (0, 1) or (number - 1) % shard[1] == shard[0]:
                parsed = reader.parse(number, raw)
                if isinstance(parsed, Row):
                    parsed = format_problem(formatter, parsed) or parsed
                yield number, parsed
    finally:
        getattr(lines, "close", lambda: None)()


def _error_block(error: RowError) -> Block:
    return Block("errors", (error.to_dict(),), error)


def _result_block(row: Row, result: PromptResult, formatter: Formatter) -> Block:
    """What a ranked row writes: the formatter's lines with the row's notes, or its error."""
    if result.ranking is None:
        kind = result.error_kind or "ranking_error"
        if kind == "judge_error":
            error = RowError(row.line, row.id, kind, f"judge error: {result.error}", cause="judge")
        else:
            reason = f"ranking failed: {type(result.error).__name__}: {result.error}"
            error = RowError(row.line, row.id, kind, reason)
        return _error_block(error)
    if result.ranking.best is None:
        return _error_block(_no_usable_verdict(row, result))
    try:
        block = formatter(row, result.ranking)
        notes: dict[str, object] = {}
        if result.duplicates:
            notes["duplicate_candidates"] = [list(g) for g in result.duplicates]
        if row.dropped:
            notes["dropped_candidates"] = [dict(d) for d in row.dropped]
        lines = block.lines
        if notes and block.sink == "out":
            lines = tuple({**line, **notes} for line in block.lines)
        # Encoded here: text UTF-8 cannot hold is then this row's error, not the writer's crash.
        return Block(block.sink, lines, block.error, Block(block.sink, lines).encode())
    except UnicodeEncodeError as exc:
        reason = (
            f"the row's output holds {exc.object[exc.start : exc.end]!a}, a lone surrogate "
            "that is not text and cannot be written"
        )
        return _error_block(RowError(row.line, row.id, "bad_encoding", reason))
    except Exception as exc:  # one row's failure must not end a run of hours
        reason = f"ranking failed: {type(exc).__name__}: {exc}"
        return _error_block(RowError(row.line, row.id, "ranking_error", reason))


async def process_file(
    input_path: str | os.PathLike[str] | RowSource,
    *,
    judge: Judge,
    spec: RankSpec,
    formatter: Formatter,
    sinks: Mapping[str, JsonlSink],
    rows: RowSpec | None = None,
    principle: str | None = None,
    concurrency: int = 64,
    max_calls: int | None = None,
    max_tokens: int | None = None,
    max_pending: int | None = None,
    skip_keys: Container[str] = (),
    skip_lines: Container[str] = (),
    shard: tuple[int, int] = (0, 1),
    counters: RunCounters | None = None,
    on_row: Callable[[RunCounters], None] | None = None,
    on_progress: ProgressCallback | None = None,
    failure_watch: FailureWatch | None = None,
    judge_profile: ProfileLike | None = None,
    on_profile: Callable[[JudgeProfile], None] | None = None,
    learn_profile: bool = False,
) -> RunOutcome:
    """Rank every row of an input, writing results in input order.

    Parameters
    ----------
    input_path : path or RowSource
        A path (:func:`~genrm_rank.sdg.inputs.open_input`), or rows read as they are.
    judge, spec : Judge, RankSpec
        Who judges, and how each row is ranked (as for :func:`~genrm_rank.select_best`).
    formatter : callable
        ``formatter(row, ranking) -> Block``: :func:`~genrm_rank.sdg.filters.select_rows`,
        ``pair_rows``, ``rank_rows``, or your own.
    sinks : mapping
        ``"out"``, ``"errors"`` and optionally ``"rejected"`` sinks (:func:`prepare_output`).
    rows, principle : RowSpec and str, optional
        Where rows keep their parts; a rubric for rows without their own.
    concurrency, max_calls, max_tokens, failure_watch, judge_profile, on_profile, learn_profile
        As for :class:`~genrm_rank.runner.Runner`; a cap ends the run (``status == "cap"``).
    max_pending : int, optional
        Rows admitted but not yet written; default ``max(1024, 8 * concurrency)``.
    skip_keys, skip_lines : container of str
        Row ids and line numbers written already (:class:`OutputFiles`): not run again.
    shard : (int, int)
        Keep lines whose 0-based index is ``shard[0]`` modulo ``shard[1]``.
    counters, on_row, on_progress : optional
        Counters updated live; ``on_row(counters)`` after each settled row,
        ``on_progress(stats, in_flight)`` after each verdict.

    Cancelled (Ctrl-C), it leaves written rows written and cancels the requests in flight.
    """
    reader = RowReader(rows)
    counters = counters if counters is not None else RunCounters()
    runner = Runner(
        judge,
        spec,
        concurrency=concurrency,
        max_calls=max_calls,
        max_tokens=max_tokens,
        on_progress=on_progress,
        failure_watch=failure_watch if failure_watch is not None else FailureWatch(),
        judge_profile=judge_profile,
        on_profile=on_profile,
        learn_profile=learn_profile,
    )
    outcome = RunOutcome(counters, runner.stats)
    limit = max_pending if max_pending is not None else max(1024, 8 * concurrency)
    if limit < 1:
        raise ValueError(f"Argument 'max_pending' must be >= 1 or None, not {max_pending}.")

    def notify() -> None:
        if on_row is not None:
            on_row(counters)

    def emit(block: Block) -> None:
        if block.lines:
            sinks[block.sink].write(block.encode(), len(block.lines))
        if block.sink == "out":
            counters.ok += 1
            counters.pair_lines += len(block.lines)
        elif block.sink == "rejected":
            counters.rejected += 1
        else:
            counters.failed += 1
            kind = block.error.kind if block.error is not None else "error"
            counters.errors_by_kind[kind] = counters.errors_by_kind.get(kind, 0) + 1
        notify()

    buffer = ReorderBuffer(emit)
    lines = read_rows(input_path, reader, shard, formatter)
    exhausted = False
    # Leading rows that fail alike are held back: if the first FIELD_CHECK_ROWS all do, the run
    # stops without writing them (a rerun with the right options must not skip them as done);
    # otherwise they go to the errors file in their place. ``None`` once the check is over.
    held: list[RowError] | None = []

    def flush_held() -> None:
        nonlocal held
        for error in held or ():
            buffer.put(buffer.reserve(), _error_block(error))
        held = None

    # Warm-up rows an earlier run wrote: judged again (not written) before the first row to do,
    # so that a run resumed within its warm-up freezes the profile the uninterrupted run did.
    deferred: list[Row] = []

    async def prompts() -> AsyncIterator[PromptInput]:
        nonlocal exhausted
        while buffer.outstanding < limit:
            try:
                number, parsed = next(lines)
            except StopIteration:
                exhausted = True
                if held:  # a short input whose every row failed alike: the same stop
                    raise _MissingFieldStop(first_rows_message(held)) from None
                flush_held()
                return
            counters.lines += 1
            if parsed is None:
                counters.blank += 1
            elif isinstance(parsed, RowError) and str(number) not in skip_lines:
                if held is not None and holds_back(held, parsed):
                    held.append(parsed)
                    if len(held) >= FIELD_CHECK_ROWS:
                        raise _MissingFieldStop(first_rows_message(held))
                else:
                    flush_held()
                    buffer.put(buffer.reserve(), _error_block(parsed))
                continue
            elif isinstance(parsed, Row):
                flush_held()
                # skip_lines: a valid row whose ranking failed (judge error, no usable verdict)
                # was written to the errors file; running it again would write it twice.
                if parsed.key not in skip_keys and str(number) not in skip_lines:
                    while deferred:
                        done = deferred.pop(0)
                        yield done.prompt(principle, (None, done))
                    yield parsed.prompt(principle, (buffer.reserve(), parsed))
                    continue
                if len(deferred) < runner.warmup_left:  # the warm-up needs its verdicts
                    deferred.append(parsed)
                counters.skipped += 1
            else:
                counters.skipped += 1
            notify()

    try:
        # A pass ends when the input does, at a cap, or paused with max_pending rows held
        # behind a slow one: the window drained, the next pass carries on.
        while not exhausted and runner.cap_reached is None:
            async for result in runner.run(prompts()):
                seq, row = cast(tuple[int | None, Row], result.prompt.key)
                if seq is not None:  # None: a deferred warm-up row
                    buffer.put(seq, _result_block(row, result, formatter))
        if runner.cap_reached is not None:
            outcome.status, outcome.cap = "cap", runner.cap_reached
        outcome.judge_profile = runner.profile
        if learn_profile:
            with contextlib.suppress(ValueError):  # no usable verdict: nothing learnt
                outcome.learnt_profile = runner.learnt_profile()
    except EndpointsUnavailableError as exc:
        outcome.status, outcome.message = "unavailable", Words.of(exc)
    except SystematicFailureError as exc:
        outcome.status, outcome.message = "systematic_failure", Words.of(exc)
    except (JudgeConfigurationError, _MissingFieldStop, InputError) as exc:
        outcome.status, outcome.message = "misconfigured", Words.of(exc)
    except asyncio.CancelledError:
        outcome.status = "interrupted"
    finally:
        lines.close()
        for sink in sinks.values():
            sink.close()
    return outcome
