"""Durable JSONL output in input order, and a torn end recovered on resume.

A :class:`ReorderBuffer` writes row ``k``'s block only after rows ``0..k-1``'s, so the output
is always a prefix of the input's results; a :class:`JsonlSink` writes each block with one
``write`` and ``fsync``\\s it, so a ``kill -9`` leaves at most a torn end, which :func:`recover`
cuts before a resumed run appends (and so ends with the bytes of an uninterrupted run).
"""

from __future__ import annotations

import errno
import fcntl
import json
import math
import os
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from genrm_rank.sdg.rows import IdIndex, RowError, id_key
from genrm_rank.textfiles import write_atomically

__all__ = [
    "STDOUT",
    "Block",
    "JsonlSink",
    "Recovered",
    "ReorderBuffer",
    "RunCounters",
    "Sink",
    "StreamSink",
    "drop_retried_errors",
    "is_stream",
    "open_locked",
    "recover",
    "sidecar_path",
]

Sink = Literal["out", "rejected", "errors"]


class JsonlSink:
    """An append-only JSONL file, created on first write (unless ``fd``, a file open for
    appending, is given); ``fsync`` runs every ``fsync_interval`` seconds and at :meth:`close`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        fsync_interval: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        fd: int | None = None,
    ) -> None:
        self.path = Path(path)
        self.fsync_interval = fsync_interval
        self._clock = clock
        self._fd: int | None = fd
        self._last_sync = clock()
        self._dirty, self.rows = False, 0

    def write(self, data: bytes, rows: int = 1) -> None:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        view = memoryview(data)
        while view:  # whole lines at once: a killed process leaves at most one torn block
            written = os.write(self._fd, view)
            view = view[written:]
        self.rows += rows
        self._dirty = True
        if self._clock() - self._last_sync >= self.fsync_interval:
            self.sync()

    def sync(self) -> None:
        if self._fd is not None and self._dirty:
            try:
                os.fsync(self._fd)
            except OSError as exc:  # a pipe or a terminal (/dev/stderr): nothing to sync
                if exc.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EROFS):
                    raise
            self._dirty = False
        self._last_sync = self._clock()

    def close(self) -> None:
        if self._fd is not None:
            try:
                self.sync()
            finally:  # a failed fsync (a full disk) still closes, and so releases a lock
                os.close(self._fd)
                self._fd = None


STDOUT = "-"
"""The path that names standard output (``-o -``)."""


def sidecar_path(output: str | os.PathLike[str], suffix: str, extension: str = "jsonl") -> Path:
    """The file beside an output that holds its ``suffix`` part (errors, rejected, run file).

    >>> sidecar_path("runs/best.jsonl", "errors").as_posix()
    'runs/best.errors.jsonl'
    >>> sidecar_path("runs/best", "run", "json").as_posix()
    'runs/best.run.json'
    """
    path = Path(output)
    return path.with_name(f"{path.name.removesuffix('.jsonl')}.{suffix}.{extension}")


def open_locked(path: Path, flags: int, busy: Exception) -> int:
    """``path`` opened (``os.open`` ``flags``) and locked (``flock``) until it is closed; ``busy``
    is raised while another process holds the lock. Without locks (``ENOLCK``) it is unlocked."""
    fd = os.open(path, flags, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno != errno.ENOLCK:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise busy from None
            raise
    return fd


def is_stream(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names a stream or a device (under ``/dev`` or ``/proc``, or anything
    but a regular file): written to, but never unlinked, created, truncated or read back."""
    name = os.path.abspath(os.fspath(path))
    if name.startswith(("/dev/", "/proc/")):
        return True
    try:
        return not stat.S_ISREG(os.stat(name).st_mode)
    except OSError:
        return False


class StreamSink(JsonlSink):
    """Whole lines to an open file descriptor (standard output by default), never fsynced."""

    def __init__(self, fd: int = 1) -> None:
        super().__init__(STDOUT, fsync_interval=math.inf, fd=fd)

    def close(self) -> None:
        """The stream belongs to the process: left open."""


@dataclass
class RunCounters:
    """Rows a run (or a merge of shards) settled, by where they went; updated live."""

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

    @property
    def done(self) -> int:
        """Rows settled by this run (written to a sink)."""
        return self.ok + self.failed + self.rejected


@dataclass
class Recovered:
    """What :func:`recover` found in an existing output file."""

    keys: IdIndex = field(default_factory=IdIndex)
    """Id keys (``out``/``rejected``) or line numbers as strings (``errors``) already written."""
    rows: int = 0
    truncated_bytes: int = 0
    retried: int = 0
    """Rows the judge failed, taken out of the errors file (:func:`drop_retried_errors`)."""


def _complete_lines(handle: IO[bytes]) -> Iterator[tuple[int, bytes, Any]]:
    """``(number, line, JSON value or ...)`` for each line of ``handle`` up to a torn end."""
    for number, raw in enumerate(handle, start=1):
        if not raw.endswith(b"\n"):
            return
        try:
            yield number, raw, json.loads(raw)
        except json.JSONDecodeError:
            yield number, raw, ...


def recover(
    path: str | os.PathLike[str],
    *,
    key_field: str,
    grouped: bool = False,
    keys: IdIndex | None = None,
) -> Recovered:
    """Read an output file written by :class:`JsonlSink`, truncating a torn end.

    A last line without a newline is cut off, and with ``grouped`` (``n_pairs`` lines a row)
    an incomplete last group. Returns the keys of the rows that remain (added to ``keys``).

    Raises
    ------
    ValueError
        A complete line that is not a JSON object (the file was not written by this tool).
    """
    found = Recovered(keys if keys is not None else IdIndex())
    p = Path(path)
    if not p.exists():
        return found
    keep = offset = group_seen = group_need = 0  # keep: bytes known good
    group_key: str | None = None
    with open(p, "rb") as handle:
        for number, raw, data in _complete_lines(handle):
            offset += len(raw)
            if data is ...:
                raise ValueError(f"{p}:{number} is not valid JSON; cannot resume onto this file.")
            if not isinstance(data, dict) or key_field not in data:
                raise ValueError(
                    f"{p}:{number} has no {key_field!r} field; cannot resume onto this file."
                )
            key = str(data[key_field]) if key_field == "line" else id_key(data[key_field])
            rows = 1
            if grouped and "n_pairs" in data:
                if group_key != key or group_seen >= group_need:
                    group_key, group_seen, group_need = key, 0, int(data["n_pairs"])
                group_seen += 1
                if group_seen != group_need:
                    continue
                rows = group_need
            found.keys.add(key)
            found.rows += rows
            keep = offset
        size = handle.seek(0, os.SEEK_END)
    if keep < size:
        with open(p, "r+b") as handle:
            handle.truncate(keep)
            os.fsync(handle.fileno())
        found.truncated_bytes = size - keep
    return found


_JUDGE_KINDS = frozenset({"judge_error", "no_usable_verdict"})


def _judge_failed(entry: dict[str, Any]) -> bool:
    """Whether an errors-file entry is a row the judge failed; entries written before the
    ``cause`` field are told by their kind (unless every failed call was ``rejected``)."""
    cause = entry.get("cause")
    if cause is not None:
        return bool(cause == "judge")
    if entry.get("kind") not in _JUDGE_KINDS:
        return False
    failed = entry.get("failed_requests")
    if not isinstance(failed, list) or not failed:
        return True
    return not all(isinstance(r, dict) and r.get("failure") == "rejected" for r in failed)


def drop_retried_errors(path: str | os.PathLike[str]) -> int:
    """Take the rows the judge failed out of an errors file, so a resumed run judges them again.

    The file is rewritten atomically, without them and a torn end; it is left untouched when
    there is nothing to take out, it is not a regular file, or a line is not a JSON object
    (:func:`recover` then refuses it). Returns the number taken out.
    """
    p = Path(path)
    if not p.is_file():
        return 0
    p = p.resolve()  # rewrite the file a link points at, not the link
    kept: list[bytes] = []
    dropped = 0
    with open(p, "rb") as handle:
        for _, raw, entry in _complete_lines(handle):
            if not isinstance(entry, dict):
                return 0
            if _judge_failed(entry):
                dropped += 1
            else:
                kept.append(raw)
    if not dropped:
        return 0
    write_atomically(p, b"".join(kept), mode=p.stat().st_mode & 0o7777)
    return dropped


@dataclass(frozen=True)
class Block:
    """What one input row produced: lines for one sink."""

    sink: Sink
    lines: tuple[dict[str, Any], ...]
    error: RowError | None = None
    encoded: bytes | None = field(default=None, compare=False, repr=False)
    """The lines as :meth:`encode` gives them, when encoded already (:meth:`encode` returns it)."""

    def encode(self) -> bytes:
        """The lines as JSONL, UTF-8; ``UnicodeEncodeError`` for text UTF-8 cannot hold (a lone
        surrogate), but in the errors file, where it is escaped so a bad row is always reported.
        """
        if self.encoded is not None:
            return self.encoded
        out: list[bytes] = []
        for line in self.lines:
            text = json.dumps(line, ensure_ascii=False, allow_nan=False)
            try:
                out.append(text.encode())
            except UnicodeEncodeError:
                if self.sink != "errors":
                    raise
                out.append(json.dumps(line, ensure_ascii=True, allow_nan=False).encode())
            out.append(b"\n")
        return b"".join(out)


class ReorderBuffer:
    """Releases blocks to ``emit`` in sequence order, whatever order they are put in."""

    def __init__(self, emit: Callable[[Block], None]) -> None:
        self._emit = emit
        self._pending: dict[int, Block] = {}
        self._issued = self._next = 0

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
