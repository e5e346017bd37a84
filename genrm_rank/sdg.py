"""Ranking JSONL files: rows in, validated; results out, durably, in input order; resume.

This is the file-level machinery behind ``genrm-rank rank|select|pairs``, usable from Python too
(:func:`process_file`). It is built for synthetic-data-generation (SDG) files of hundreds of
thousands of rows, ranked over hours on shared clusters where jobs get killed:

- **Streaming.** The input is read line by line and never held whole. A row becomes a
  :class:`~genrm_rank.orchestrator.PromptJob` only when the orchestrator's window has room, and
  at most ``max_pending`` rows are admitted but not yet written, so memory does not grow with the
  file. The ids seen (to catch duplicates and to resume) are the only thing that grows: an
  :class:`IdIndex` of 64-bit digests, about 32 bytes a row.
- **Validation.** A bad row never stops the run. :class:`RowReader` turns each line into a
  :class:`Row` or a :class:`RowError` naming the line, the id and the reason (malformed JSON, a
  missing field, fewer than two candidates, duplicate candidates or ids, an over-long text); the
  error goes to the errors file and the run goes on.
- **Input order.** Rankings finish in any order; a :class:`ReorderBuffer` writes the result of
  row ``k`` only after rows ``0..k-1``, so the output of a run does not depend on timing, and the
  rows written at any moment are those of a *prefix* of the input.
- **Durability.** A :class:`JsonlSink` writes each row's lines with one ``write`` system call on
  a file opened for appending, and ``fsync``\\s at most every ``fsync_interval`` seconds and at
  close. A ``kill -9`` can only leave a torn last line (or a torn group of pair lines), which
  :func:`recover` detects and truncates before a resumed run appends.
- **Resume.** :func:`recover` collects the ids already written to the output (and rejected)
  files and the line numbers already written to the errors file; a resumed run skips exactly
  those, so that an interrupted-then-resumed run ends with byte-identical files to an
  uninterrupted one.
- **Sharding.** ``shard=(i, n)`` keeps the lines whose 0-based line index is ``i`` modulo ``n``
  (every shard writes its own files; concatenate them in any order). Duplicate ids are caught
  within a shard only.

Determinism needs a deterministic judge answer per request (a real GenRM is not, which is what
the verdict cache is for) and per-row seeds (every row uses ``seed``). The judgements of a prompt
are put in a canonical order before aggregation, so that floating-point sums do not depend on the
order in which concurrent verdicts came back.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from array import array
from collections.abc import Callable, Container, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from genrm_rank.errors import EndpointsUnavailableError
from genrm_rank.judges.base import Judge
from genrm_rank.messages import Conversation, normalize_conversation
from genrm_rank.orchestrator import JudgeStatistics, Orchestrator, PromptJob, PromptRun
from genrm_rank.results import DEFAULT_ALPHA, Ranking, build_ranking
from genrm_rank.strategies import check_swap, make_strategy, strategy_name

__all__ = [
    "DEFAULT_PROMPT_FIELDS",
    "Block",
    "IdIndex",
    "JsonlSink",
    "Recovered",
    "ReorderBuffer",
    "Row",
    "RowError",
    "RowReader",
    "RowSpec",
    "RunCounters",
    "RunOptions",
    "RunOutcome",
    "Sink",
    "count_lines",
    "iter_lines",
    "parse_shard",
    "process_file",
    "recover",
]

DEFAULT_PROMPT_FIELDS = ("conversation", "prompt", "messages")
Sink = Literal["out", "rejected", "errors"]


# --------------------------------------------------------------------------------------------
# Rows


@dataclass(frozen=True)
class RowSpec:
    """Where a row keeps its parts (the ``--*-field`` options).

    Attributes
    ----------
    id_field : str
        The row's unique id (string or integer).
    prompt_fields : tuple of str
        Fields tried in order for the prompt: a string, or a list of ``{"role", "content"}``
        messages ending with a user turn.
    candidates_field : str
        The list of candidates: strings, or objects with ``candidate_id_key`` and
        ``candidate_text_key``.
    candidate_id_key, candidate_text_key : str
        Keys of a candidate object.
    principle_field : str
        Optional per-row rubric (overrides the run-wide one).
    max_chars : int or None
        Longest prompt or candidate text accepted, in characters (``None``: no limit).
    """

    id_field: str = "id"
    prompt_fields: tuple[str, ...] = DEFAULT_PROMPT_FIELDS
    candidates_field: str = "candidates"
    candidate_id_key: str = "id"
    candidate_text_key: str = "text"
    principle_field: str = "principle"
    max_chars: int | None = 200_000


@dataclass(frozen=True)
class Row:
    """A valid input row."""

    line: int
    """1-based line number in the input file."""
    id: str | int
    data: dict[str, Any]
    """The row as read (all its own fields)."""
    conversation: Conversation
    candidates: tuple[str, ...]
    candidate_ids: tuple[str, ...] | None
    principle: str | None
    prompt_field: str

    @property
    def key(self) -> str:
        """The id as canonical JSON (``1`` and ``"1"`` differ)."""
        return id_key(self.id)


@dataclass(frozen=True)
class RowError:
    """Why one input line (or its ranking) could not be used."""

    line: int
    id: str | int | None
    kind: str
    """A short machine-readable category: ``malformed_json``, ``missing_field``, ``bad_field``,
    ``too_few_candidates``, ``duplicate_candidate``, ``duplicate_id``, ``too_long``,
    ``bad_encoding``, ``judge_error``, ``no_usable_verdict``, ``ranking_error``."""
    reason: str
    raw: str | None = None
    """The start of the line, for lines that could not be read as a JSON object."""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "line": self.line,
            "id": self.id,
            "kind": self.kind,
            "reason": self.reason,
        }
        if self.raw is not None:
            out["raw"] = self.raw
        return out


def id_key(value: Any) -> str:
    """The canonical JSON of an id, the key resume and duplicate detection use."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _first_duplicate(values: Sequence[str]) -> tuple[int, int] | None:
    """Indices ``(j, i)``, ``j < i``, of the first value seen twice; ``None`` if all differ."""
    seen: dict[str, int] = {}
    for i, value in enumerate(values):
        j = seen.setdefault(value, i)
        if j != i:
            return j, i
    return None


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class IdIndex:
    """A compact set of string keys with an integer each (the first line an id was seen on).

    Keys are kept as 64-bit BLAKE2b digests in an open-addressing table of two ``array('Q')``
    (about 32 bytes a key at the maximum load of one half), a third of what a ``dict`` of
    digests costs and a tenth of a ``set`` of the strings: the only part of a run whose memory
    grows with the file. Two distinct keys share a digest with probability about
    ``n**2 / 2**65`` (1e-8 for 1e6 rows).

    >>> index = IdIndex()
    >>> index.setdefault('"a"', 3), index.setdefault('"a"', 9), '"a"' in index, '"b"' in index
    (None, 3, True, False)
    """

    def __init__(self, capacity: int = 1024) -> None:
        size = 1
        while size < max(8, 2 * capacity):
            size *= 2
        self._keys = array("Q", bytes(8 * size))
        self._values = array("Q", bytes(8 * size))
        self._mask = size - 1
        self._count = 0

    @staticmethod
    def _digest(key: str) -> int:
        digest = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little")
        return digest or 1  # 0 marks an empty slot

    def _slot(self, digest: int) -> int:
        keys, mask = self._keys, self._mask
        slot = digest & mask
        while keys[slot] != 0 and keys[slot] != digest:
            slot = (slot + 1) & mask
        return slot

    def get(self, key: str) -> int | None:
        """The value stored with ``key``, or ``None``."""
        digest = self._digest(key)
        slot = self._slot(digest)
        return None if self._keys[slot] == 0 else int(self._values[slot])

    def setdefault(self, key: str, value: int = 0) -> int | None:
        """Store ``key`` with ``value`` unless present; return the earlier value, or ``None``."""
        digest = self._digest(key)
        slot = self._slot(digest)
        if self._keys[slot] != 0:
            return int(self._values[slot])
        self._keys[slot] = digest
        self._values[slot] = value
        self._count += 1
        if 2 * self._count > self._mask + 1:
            self._grow()
        return None

    def add(self, key: str) -> None:
        self.setdefault(key)

    def _grow(self) -> None:
        keys, values = self._keys, self._values
        size = 2 * (self._mask + 1)
        self._keys = array("Q", bytes(8 * size))
        self._values = array("Q", bytes(8 * size))
        self._mask = size - 1
        for digest, value in zip(keys, values, strict=True):
            if digest:
                slot = self._slot(digest)
                self._keys[slot] = digest
                self._values[slot] = value

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self._keys[self._slot(self._digest(key))] != 0

    def __len__(self) -> int:
        return self._count


class RowReader:
    """Validates lines into :class:`Row` or :class:`RowError`; remembers ids to catch duplicates.

    Parameters
    ----------
    spec : RowSpec
    """

    def __init__(self, spec: RowSpec | None = None) -> None:
        self.spec = spec or RowSpec()
        self._seen = IdIndex()  # id key -> first line

    def parse(self, line: int, raw: bytes) -> Row | RowError | None:
        """Read one line; ``None`` for a blank line (not a row)."""
        spec = self.spec
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            return RowError(
                line,
                None,
                "bad_encoding",
                f"the line is not valid UTF-8 ({exc.reason} at byte {exc.start})",
            )
        if not text.strip():
            return None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            return RowError(
                line,
                None,
                "malformed_json",
                f"malformed JSON: {exc.msg} (column {exc.colno})",
                text[:200],
            )
        if not isinstance(data, dict):
            return RowError(
                line,
                None,
                "malformed_json",
                f"the line is a JSON {type(data).__name__}, not an object",
                text[:200],
            )
        if spec.id_field not in data:
            return RowError(line, None, "missing_field", f"missing field {spec.id_field!r}")
        row_id = data[spec.id_field]
        if isinstance(row_id, bool) or not isinstance(row_id, (str, int)) or row_id == "":
            return RowError(
                line,
                None,
                "bad_field",
                f"field {spec.id_field!r} must be a non-empty string or an integer, not "
                f"{_short(row_id)}",
            )
        first = self._seen.setdefault(id_key(row_id), line)
        if first is not None:
            return RowError(
                line, row_id, "duplicate_id", f"duplicate id {row_id!r} (first on line {first})"
            )
        return self._check(line, row_id, data)

    def _check(self, line: int, row_id: str | int, data: dict[str, Any]) -> Row | RowError:
        spec = self.spec
        prompt_field = next((f for f in spec.prompt_fields if f in data), None)
        if prompt_field is None:
            names = " or ".join(repr(f) for f in spec.prompt_fields)
            return RowError(line, row_id, "missing_field", f"missing field {names}")
        conversation = data[prompt_field]
        try:
            normalized = normalize_conversation(conversation, name=prompt_field)
        except (TypeError, ValueError) as exc:
            return RowError(line, row_id, "bad_field", _strip_argument(str(exc)))
        if spec.candidates_field not in data:
            return RowError(
                line, row_id, "missing_field", f"missing field {spec.candidates_field!r}"
            )
        raw_candidates = data[spec.candidates_field]
        if not isinstance(raw_candidates, list):
            return RowError(
                line,
                row_id,
                "bad_field",
                f"field {spec.candidates_field!r} must be a list, not "
                f"{type(raw_candidates).__name__}",
            )
        texts: list[str] = []
        ids: list[str] = []
        for i, cand in enumerate(raw_candidates):
            where = f"{spec.candidates_field}[{i}]"
            if isinstance(cand, str):
                texts.append(cand)
                ids.append("")
            elif isinstance(cand, dict):
                text = cand.get(spec.candidate_text_key)
                if not isinstance(text, str):
                    return RowError(
                        line,
                        row_id,
                        "bad_field",
                        f"{where} has no string {spec.candidate_text_key!r}",
                    )
                cid = cand.get(spec.candidate_id_key)
                if cid is not None and (isinstance(cid, bool) or not isinstance(cid, (str, int))):
                    return RowError(
                        line,
                        row_id,
                        "bad_field",
                        f"{where}.{spec.candidate_id_key} must be a string or an integer, not "
                        f"{_short(cid)}",
                    )
                texts.append(text)
                ids.append("" if cid is None else str(cid))
            else:
                return RowError(
                    line,
                    row_id,
                    "bad_field",
                    f"{where} must be a string or an object with {spec.candidate_text_key!r}, "
                    f"not {type(cand).__name__}",
                )
        if len(texts) < 2:
            return RowError(
                line, row_id, "too_few_candidates", f"fewer than two candidates ({len(texts)})"
            )
        twins = _first_duplicate(texts)
        if twins is not None:
            return RowError(
                line,
                row_id,
                "duplicate_candidate",
                f"candidates {twins[0]} and {twins[1]} have the same text",
            )
        has_ids = any(ids)
        if has_ids:
            if not all(ids):
                missing = ids.index("")
                return RowError(
                    line,
                    row_id,
                    "bad_field",
                    f"{spec.candidates_field}[{missing}] has no {spec.candidate_id_key!r} while "
                    "others do",
                )
            twins = _first_duplicate(ids)
            if twins is not None:
                j, i = twins
                return RowError(
                    line,
                    row_id,
                    "duplicate_candidate",
                    f"candidates {j} and {i} have the same id {ids[i]!r}",
                )
        principle = data.get(spec.principle_field)
        if principle is not None and not isinstance(principle, str):
            return RowError(
                line,
                row_id,
                "bad_field",
                f"field {spec.principle_field!r} must be a string or null, not "
                f"{type(principle).__name__}",
            )
        if spec.max_chars is not None:
            prompt_chars = sum(len(str(m.get("content", ""))) for m in normalized)
            if prompt_chars > spec.max_chars:
                return RowError(
                    line,
                    row_id,
                    "too_long",
                    f"the prompt has {prompt_chars} characters, over --max-chars {spec.max_chars}",
                )
            for i, text in enumerate(texts):
                if len(text) > spec.max_chars:
                    return RowError(
                        line,
                        row_id,
                        "too_long",
                        f"candidate {i} has {len(text)} characters, over --max-chars "
                        f"{spec.max_chars}",
                    )
        return Row(
            line=line,
            id=row_id,
            data=data,
            conversation=conversation,
            candidates=tuple(texts),
            candidate_ids=tuple(ids) if has_ids else None,
            principle=principle or None,
            prompt_field=prompt_field,
        )


def _strip_argument(message: str) -> str:
    """Library messages say "Argument 'x' must ..."; in a row, say "field 'x' must ..."."""
    return message.replace("Argument '", "field '", 1)


# --------------------------------------------------------------------------------------------
# Files


def iter_lines(path: str | os.PathLike[str]) -> Generator[tuple[int, bytes], None, None]:
    """Yield ``(line_number, bytes)`` for each line of a file (1-based), streaming, newline "
    "dropped."""
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            yield number, raw.rstrip(b"\r\n")


def count_lines(path: str | os.PathLike[str], chunk: int = 1 << 20) -> int:
    """Lines in a file, counted by newlines in 1 MiB chunks (a last line without one counts)."""
    count = 0
    last = b"\n"
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            count += block.count(b"\n")
            last = block[-1:]
    return count + (last != b"\n")


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` -> ``(i, n)`` with ``0 <= i < n`` (raises ``ValueError`` naming ``--shard``)."""
    try:
        left, right = text.split("/")
        index, count = int(left), int(right)
    except ValueError:
        raise ValueError(
            f"Argument '--shard' must look like i/n (e.g. 0/4), not {text!r}."
        ) from None
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"Argument '--shard' must satisfy 0 <= i < n, not {text!r}.")
    return index, count


class JsonlSink:
    """An append-only JSONL file written durably.

    Each :meth:`write` is one ``os.write`` of whole lines (looped only if the kernel writes
    part), so a killed process leaves at most one torn block at the end. ``fsync`` runs at most
    every ``fsync_interval`` seconds and at :meth:`close`. The file is created on first write.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        fsync_interval: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = Path(path)
        self.fsync_interval = fsync_interval
        self._clock = clock
        self._fd: int | None = None
        self._last_sync = clock()
        self._dirty = False
        self.rows = 0

    def write(self, data: bytes, rows: int = 1) -> None:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self.rows += rows
        self._dirty = True
        if self._clock() - self._last_sync >= self.fsync_interval:
            self.sync()

    def sync(self) -> None:
        if self._fd is not None and self._dirty:
            os.fsync(self._fd)
            self._dirty = False
        self._last_sync = self._clock()

    def close(self) -> None:
        if self._fd is not None:
            self.sync()
            os.close(self._fd)
            self._fd = None


@dataclass
class Recovered:
    """What :func:`recover` found in an existing output file."""

    keys: IdIndex = field(default_factory=IdIndex)
    """Id keys (``out``/``rejected``) or line numbers as strings (``errors``) already written."""
    rows: int = 0
    truncated_bytes: int = 0


def recover(
    path: str | os.PathLike[str],
    *,
    key_field: str,
    grouped: bool = False,
    keys: IdIndex | None = None,
) -> Recovered:
    """Read an output file written by :class:`JsonlSink`, truncating a torn end.

    A last line without a newline (a write cut by ``kill -9``) is cut off. With ``grouped``
    (pair files: each source row writes ``n_pairs`` lines carrying ``pair_index``), an
    incomplete last group is cut off too. Returns the keys of the rows that remain (added to
    ``keys`` when given, so that several files can share one index).

    Raises
    ------
    ValueError
        A complete line that is not a JSON object (the file was not written by this tool).
    """
    found = Recovered(keys if keys is not None else IdIndex())
    p = Path(path)
    if not p.exists():
        return found
    keep = 0  # bytes known good
    offset = 0
    group_key: str | None = None
    group_seen = group_need = 0
    with open(p, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            offset += len(raw)
            if not raw.endswith(b"\n"):
                break  # torn last line
            try:
                data = json.loads(raw)
            except json.JSONDecodeError:
                raise ValueError(
                    f"{p}:{number} is not valid JSON; cannot resume onto this file."
                ) from None
            if not isinstance(data, dict) or key_field not in data:
                raise ValueError(
                    f"{p}:{number} has no {key_field!r} field; cannot resume onto this file."
                )
            key = str(data[key_field]) if key_field == "line" else id_key(data[key_field])
            if grouped and "n_pairs" in data:
                if group_key != key or group_seen >= group_need:
                    group_key, group_seen = key, 0
                    group_need = int(data["n_pairs"])
                group_seen += 1
                if group_seen == group_need:
                    found.keys.add(key)
                    found.rows += group_need
                    keep = offset
                continue
            found.keys.add(key)
            found.rows += 1
            keep = offset
        size = handle.seek(0, os.SEEK_END)
    if keep < size:
        with open(p, "r+b") as handle:
            handle.truncate(keep)
            handle.flush()
            os.fsync(handle.fileno())
        found.truncated_bytes = size - keep
    return found


@dataclass(frozen=True)
class Block:
    """What one input row produced: lines for one sink."""

    sink: Sink
    lines: tuple[dict[str, Any], ...]
    error: RowError | None = None

    def encode(self) -> bytes:
        return b"".join(
            json.dumps(line, ensure_ascii=False, allow_nan=False).encode() + b"\n"
            for line in self.lines
        )


class ReorderBuffer:
    """Releases blocks in sequence order, whatever order they are put in.

    Parameters
    ----------
    emit : callable
        Called with each block, in sequence order.
    """

    def __init__(self, emit: Callable[[Block], None]) -> None:
        self._emit = emit
        self._pending: dict[int, Block] = {}
        self._issued = 0
        self._next = 0

    def reserve(self) -> int:
        """The sequence number of the next row."""
        seq = self._issued
        self._issued += 1
        return seq

    def put(self, seq: int, block: Block) -> None:
        if seq in self._pending or not self._next <= seq < self._issued:
            raise ValueError(f"Argument 'seq' is not an open sequence number: {seq}.")
        self._pending[seq] = block
        while self._next in self._pending:
            self._emit(self._pending.pop(self._next))
            self._next += 1

    @property
    def outstanding(self) -> int:
        """Rows reserved and not yet emitted (in flight, or waiting behind an earlier row)."""
        return self._issued - self._next

    @property
    def buffered(self) -> int:
        """Rows finished but held back behind an unfinished earlier row."""
        return len(self._pending)


# --------------------------------------------------------------------------------------------
# The run


class Formatter(Protocol):
    """Turns a row and its ranking into the lines to write (see ``genrm_rank.cli``)."""

    def __call__(self, row: Row, ranking: Ranking) -> Block: ...


@dataclass(frozen=True)
class RunOptions:
    """How :func:`process_file` ranks each row (the common CLI options)."""

    strategy: str = "knockout"
    swap: str = "both"
    seed: int = 0
    budget: int | None = None
    samples: int = 1
    max_in_flight: int = 64
    verdict_retries: int = 1
    max_calls: int | None = None
    max_tokens: int | None = None
    max_pending: int | None = None
    """Rows admitted but not yet written; default ``max(1024, 8 * max_in_flight)``."""
    principle: str | None = None
    alpha: float = DEFAULT_ALPHA
    confidence: float = 0.95
    n_bootstrap: int = 0
    p_best_samples: int = 4000

    def __post_init__(self) -> None:
        object.__setattr__(self, "strategy", strategy_name(self.strategy))
        check_swap(self.swap)
        for name in ("samples", "max_in_flight"):
            value = getattr(self, name)
            if value < 1:
                raise ValueError(f"Argument '{name}' must be >= 1, not {value}.")
        for name in ("budget", "max_calls", "max_tokens", "max_pending"):
            value = getattr(self, name)
            if value is not None and value < (1 if name == "max_pending" else 0):
                raise ValueError(f"Argument '{name}' must be >= 0, not {value}.")

    @property
    def pending_limit(self) -> int:
        return (
            self.max_pending if self.max_pending is not None else max(1024, 8 * self.max_in_flight)
        )


@dataclass
class RunCounters:
    """Live counts of a run (what the progress bar and the summary show)."""

    lines: int = 0
    """Input lines of this shard read so far (blank lines included)."""
    ok: int = 0
    failed: int = 0
    rejected: int = 0
    skipped: int = 0
    """Rows already written by an earlier run (``resume``)."""
    blank: int = 0
    pair_lines: int = 0
    errors_by_kind: dict[str, int] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)

    @property
    def done(self) -> int:
        """Rows settled by this run (written to a sink)."""
        return self.ok + self.failed + self.rejected


@dataclass
class RunOutcome:
    """How :func:`process_file` ended."""

    counters: RunCounters
    stats: JudgeStatistics
    status: Literal["complete", "cap", "interrupted", "unavailable"] = "complete"
    cap: str | None = None
    message: str | None = None
    recovered: dict[str, Recovered] = field(default_factory=dict)


def _canonical(judgements: Sequence[Any]) -> list[Any]:
    """Judgements in an order independent of when they came back."""
    return sorted(
        judgements,
        key=lambda j: (
            min(j.first, j.second),
            max(j.first, j.second),
            j.first,
            j.sample,
            j.match_id,
        ),
    )


def _failure_reason(run: PromptRun) -> str:
    kinds: dict[str, int] = {}
    for j in run.judgements:
        if j.verdict.failure is not None:
            kinds[str(j.verdict.failure)] = kinds.get(str(j.verdict.failure), 0) + 1
    detail = ", ".join(f"{k}: {v}" for k, v in sorted(kinds.items())) or "none"
    return f"no usable verdict in {len(run.judgements)} judged calls (failures: {detail})"


async def process_file(
    input_path: str | os.PathLike[str],
    *,
    judge: Judge,
    formatter: Formatter,
    sinks: Mapping[str, JsonlSink],
    options: RunOptions,
    spec: RowSpec | None = None,
    skip_keys: Container[str] = (),
    skip_lines: Container[str] = (),
    shard: tuple[int, int] = (0, 1),
    counters: RunCounters | None = None,
    orchestrator: Orchestrator | None = None,
    on_row: Callable[[RunCounters], None] | None = None,
) -> RunOutcome:
    """Rank every row of a JSONL file, writing results in input order.

    Parameters
    ----------
    input_path : path
    judge : Judge
    formatter : callable
        ``formatter(row, ranking) -> Block`` (the subcommand's output layout).
    sinks : mapping
        ``"out"``, ``"errors"`` and optionally ``"rejected"`` :class:`JsonlSink`\\ s.
    options : RunOptions
    spec : RowSpec
    skip_keys, skip_lines : container of str
        Row id keys / line numbers already written (from :func:`recover`): not run again.
    shard : (int, int)
        Keep lines whose 0-based index is ``shard[0]`` modulo ``shard[1]``.
    counters : RunCounters, optional
        Updated live (pass one to watch a run).
    orchestrator : Orchestrator, optional
        Built from ``options`` when not given (pass one with ``on_progress`` to watch calls).
    on_row : callable, optional
        Called after each row is settled.

    The coroutine can be cancelled (Ctrl-C): rows already written stay written, every in-flight
    request is cancelled, and the counters say how far it got.
    """
    reader = RowReader(spec)
    counters = counters if counters is not None else RunCounters()
    if orchestrator is None:
        orchestrator = Orchestrator(
            judge,
            max_in_flight=options.max_in_flight,
            verdict_retries=options.verdict_retries,
            max_calls=options.max_calls,
            max_tokens=options.max_tokens,
        )
    outcome = RunOutcome(counters, orchestrator.stats)
    rank_all = shard == (0, 1)

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
        if on_row is not None:
            on_row(counters)

    buffer = ReorderBuffer(emit)
    lines = iter_lines(input_path)
    limit = options.pending_limit
    state = {"exhausted": False}

    def error_block(error: RowError) -> Block:
        return Block("errors", (error.to_dict(),), error)

    async def jobs() -> Any:
        while buffer.outstanding < limit:
            try:
                number, raw = next(lines)
            except StopIteration:
                state["exhausted"] = True
                return
            if not rank_all and (number - 1) % shard[1] != shard[0]:
                continue
            counters.lines += 1
            parsed = reader.parse(number, raw)
            if parsed is None:
                counters.blank += 1
                if on_row is not None:
                    on_row(counters)
                continue
            if isinstance(parsed, RowError):
                if str(number) in skip_lines:
                    counters.skipped += 1
                    continue
                buffer.put(buffer.reserve(), error_block(parsed))
                continue
            if parsed.key in skip_keys or str(number) in skip_lines:
                # skip_lines: a valid row whose ranking failed (judge error, no usable verdict)
                # was written to the errors file; running it again would write it twice.
                counters.skipped += 1
                if on_row is not None:
                    on_row(counters)
                continue
            seq = buffer.reserve()
            n = len(parsed.candidates)
            scheduler = make_strategy(
                options.strategy, n, swap=options.swap, samples=options.samples, seed=options.seed
            )
            yield PromptJob(
                conversation=parsed.conversation,
                candidates=list(parsed.candidates),
                scheduler=scheduler,
                principle=parsed.principle if parsed.principle is not None else options.principle,
                prompt_id=str(parsed.id),
                candidate_ids=None if parsed.candidate_ids is None else list(parsed.candidate_ids),
                budget=options.budget,
                key=(seq, parsed),
            )

    def settle(run: PromptRun) -> None:
        seq, row = run.job.key
        # The orchestrator closes an errored call with a failed verdict, so judgements are
        # never empty here: what matters is whether any verdict is usable.
        if run.error is not None and not any(j.verdict.ok for j in run.judgements):
            error = RowError(row.line, row.id, "judge_error", f"judge error: {run.error}")
            buffer.put(seq, error_block(error))
            return
        run.judgements = _canonical(run.judgements)
        try:
            ranking = build_ranking(
                run,
                strategy=options.strategy,
                swap=options.swap,
                alpha=options.alpha,
                confidence=options.confidence,
                n_bootstrap=options.n_bootstrap,
                p_best_samples=options.p_best_samples,
                seed=options.seed,
            )
            if ranking.best is None:
                error = RowError(row.line, row.id, "no_usable_verdict", _failure_reason(run))
                buffer.put(seq, error_block(error))
                return
            block = formatter(row, ranking)
        except Exception as exc:  # one row's failure must not end a run of hours
            reason = f"ranking failed: {type(exc).__name__}: {exc}"
            buffer.put(seq, error_block(RowError(row.line, row.id, "ranking_error", reason)))
            return
        buffer.put(seq, block)

    try:
        while True:
            async for run in orchestrator.run(jobs()):
                settle(run)
            if orchestrator.cap_reached is not None:
                outcome.status, outcome.cap = "cap", orchestrator.cap_reached
                break
            if state["exhausted"]:
                break
            # Paused: too many rows held behind a slow one; the window drained, carry on.
    except EndpointsUnavailableError as exc:
        outcome.status, outcome.message = "unavailable", str(exc)
    except asyncio.CancelledError:
        outcome.status = "interrupted"
    finally:
        lines.close()
        for sink in sinks.values():
            sink.close()
    return outcome


# --------------------------------------------------------------------------------------------
# Helpers for formatters


def margin_of(ranking: Ranking, winner: int, loser: int) -> float:
    """Bradley-Terry strength gap (log-odds) between two candidates of a ranking."""
    return float(ranking.scores[winner].strength - ranking.scores[loser].strength)


def runner_up_margin(ranking: Ranking) -> float | None:
    """Strength gap between the best and the strongest other candidate (``None`` if no best)."""
    if ranking.best is None:
        return None
    others = [s.strength for s in ranking.scores if s.index != ranking.best]
    return float(ranking.scores[ranking.best].strength - max(others)) if others else None


def finite_or_none(value: float | None) -> float | None:
    if value is None or not np.isfinite(value):
        return None
    return float(value)
