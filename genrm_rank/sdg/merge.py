"""Merge the outputs of ``shard=(i, n)`` runs back into one run's files, in input order.

A row's result depends only on the run seed and its id, so the merged files are byte for byte
those of a single run. The input is read once more: line ``k`` (1-based) is in shard
``(k - 1) % n``, in its errors file (by ``line``), blank, or heading its output (all its pair
lines) or rejected file (by id). Lines are copied as they are; memory is one id index.
"""

from __future__ import annotations

import filecmp
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, cast

from genrm_rank.errors import ArgumentError
from genrm_rank.sdg.inputs import open_input
from genrm_rank.sdg.output import RunCounters, open_locked
from genrm_rank.sdg.rows import IdIndex, id_key
from genrm_rank.sdg.runfiles import changes, shard_settings
from genrm_rank.textfiles import file_key, fsync_folder

__all__ = ["merge_shards"]

_SINKS = ("out", "errors", "rejected")


class _ShardFile:
    """One shard file read line by line, with the head line's key at hand."""

    def __init__(self, path: Path | None, shard: int, sink: str, id_field: str) -> None:
        self.path, self.shard, self.sink = path, shard, sink
        self.key_field = "line" if sink == "errors" else id_field
        self._lines: Iterator[bytes] = iter(()) if path is None else self._read(path)
        self.head: bytes | None = None
        self.key: str | None = None
        self.number = 0
        self.advance()

    @staticmethod
    def _read(path: Path) -> Iterator[bytes]:
        with open(path, "rb") as handle:
            yield from handle

    def where(self) -> str:
        return f"shard {self.shard} ({self.path}:{self.number})"

    def advance(self) -> None:
        raw = next(self._lines, None)
        self.head, self.key = raw, None
        if raw is None:
            return
        self.number += 1
        if not raw.endswith(b"\n"):
            raise ArgumentError(
                "shards",
                f": {self.where()} ends in a torn line (a killed run); resume "
                "that shard before merging.",
            )
        try:
            data = json.loads(raw)
        except json.JSONDecodeError:
            data = None
        if not isinstance(data, dict) or self.key_field not in data:
            raise ArgumentError(
                "shards",
                f": {self.where()} is not a JSON object with a "
                f"{self.key_field!r} field; not an output of this tool with that id field.",
            )
        value = data[self.key_field]
        self.key = str(value) if self.sink == "errors" else id_key(value)


def _input_key(raw: object, id_field: str) -> str | None:
    """The id key of an input line, or ``None`` when the line is blank."""
    try:
        text = bytes(cast(bytes, raw)).decode("utf-8")
    except UnicodeDecodeError:
        return ""  # not a row: its result must be in the errors file
    if not text.strip():
        return None
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError:
        return ""
    if not isinstance(data, dict) or id_field not in data:
        return ""
    return id_key(data[id_field])


def _shard_paths(
    shards: Sequence[Mapping[str, str | os.PathLike[str] | None]],
) -> list[dict[str, Path | None]]:
    if isinstance(shards, (str, bytes)) or not isinstance(shards, Sequence) or not shards:
        raise ArgumentError(
            "shards",
            "must be a non-empty sequence of mappings (one per shard, in "
            f"shard order), not {shards!r}.",
        )
    out = []
    for i, shard in enumerate(shards):
        if not isinstance(shard, Mapping) or "out" not in shard or shard["out"] is None:
            raise TypeError(
                f"Argument 'shards[{i}]' must be a mapping with an 'out' path (and optional "
                f"'errors' and 'rejected' paths), not {shard!r}."
            )
        if unknown := set(shard) - set(_SINKS):
            raise ArgumentError(f"shards[{i}]", f"has unknown keys {sorted(unknown)}.")
        paths = {sink: Path(p) for sink in _SINKS if (p := shard.get(sink)) is not None}
        if not paths["out"].is_file():
            raise ArgumentError(f"shards[{i}]['out']", f": no such file: {paths['out']}.")
        out.append({sink: p if (p := paths.get(sink)) and p.exists() else None for sink in _SINKS})
    return out


def _check_settings(shards: Sequence[Mapping[str, Path | None]]) -> None:
    """Refuse a shard whose run file records other settings than the first shard's that has one
    (a shard without a run file, as the library writes it, is not checked)."""
    first: tuple[int, dict[str, Any]] | None = None
    for i, paths in enumerate(shards):
        out = paths["out"]
        settings = None if out is None else shard_settings(out)
        if settings is None:
            continue
        if first is None:
            first = i, settings
        elif settings != first[1]:
            raise ArgumentError(
                "shards",
                f": shard {i} ({out}) was run with other settings than shard {first[0]} "
                f"({changes(first[1], settings)}); the merge would not be one run's output.",
            )


def merge_shards(
    input_path: str | os.PathLike[str],
    shards: Sequence[Mapping[str, str | os.PathLike[str] | None]],
    output: Mapping[str, str | os.PathLike[str] | None],
    *,
    id_field: str = "id",
    overwrite: bool = False,
) -> RunCounters:
    """Merge the files of ``n`` shard runs into one run's files, in input order.

    The files are written beside their final paths (``OUT.merging``, locked against a second
    merge) and renamed into place once the merge succeeded. A killed merge is finished by
    running it again: an existing output that is byte for byte its result is not refused.

    Parameters
    ----------
    input_path : path
        The input file every shard read.
    shards : sequence of mapping
        Shard ``i``'s ``"out"`` (required), ``"errors"`` and ``"rejected"`` paths at position
        ``i``; a path that does not exist stands for an empty file.
    output : mapping
        ``"out"``, ``"errors"`` and, if the shards have rejected rows, ``"rejected"`` paths.
    id_field : str
        The row id field, as the shards were run with.
    overwrite : bool
        Replace existing output files (otherwise they are refused).

    Returns
    -------
    RunCounters
        The input's lines and the rows merged by where they went.

    Raises
    ------
    ValueError
        A shard that is incomplete, torn, from another input or another ``n``, or run with other
        settings (its ``OUT.run.json``); a row id in two shards; output files that exist
        without ``overwrite`` or that are also inputs.
    """
    shard_paths = _shard_paths(shards)
    _check_settings(shard_paths)
    n = len(shard_paths)
    if not isinstance(output, Mapping) or output.get("out") is None or output.get("errors") is None:
        raise TypeError(
            f"Argument 'output' must be a mapping with 'out' and 'errors' paths, not {output!r}."
        )
    targets = {k: Path(v) for k, v in output.items() if v is not None}
    if unknown := set(targets) - set(_SINKS):
        raise ArgumentError("output", f"has unknown keys {sorted(unknown)}.")
    sources = {file_key(Path(input_path))} | {
        file_key(p) for paths in shard_paths for p in paths.values() if p is not None
    }
    for name, path in targets.items():
        if file_key(path) in sources:
            raise ArgumentError(f"output[{name!r}]", f"is also an input: {path}.")
    if len({file_key(p) for p in targets.values()}) != len(targets):
        raise ArgumentError("output", "names one file twice; each output must differ.")

    files = [
        {sink: _ShardFile(paths[sink], i, sink, id_field) for sink in _SINKS}
        for i, paths in enumerate(shard_paths)
    ]
    for i, shard_files in enumerate(files):
        if shard_files["rejected"].head is not None and "rejected" not in targets:
            raise ArgumentError(
                "output", f": shard {i} has rejected rows but no 'rejected' path is given."
            )
    # The output appears last, so that its errors and rejected files are in place beside it.
    temps = {
        name: targets[name].with_name(targets[name].name + ".merging")
        for name in sorted(targets, key=lambda name: name == "out")
    }
    for name, temp in temps.items():  # emptied, then renamed or removed: never an input
        if file_key(temp) in sources:
            raise ArgumentError(f"output[{name!r}]", f": its temporary file {temp} is an input.")
    handles: dict[str, IO[bytes]] = {}
    counts = RunCounters()
    seen = IdIndex()
    try:
        for name, temp in temps.items():
            # A temporary file left by a killed merge is reused (emptied), never left to pile up.
            busy = (
                f": another merge is writing {targets[name]} (it holds {temp}); wait for it to end."
            )
            fd = open_locked(temp, os.O_WRONLY | os.O_CREAT, ArgumentError("output", busy))
            handles[name] = os.fdopen(fd, "wb")
            os.ftruncate(fd, 0)
        for number, raw in open_input(input_path, format="jsonl"):
            counts.lines += 1
            shard = files[(number - 1) % n]
            errors = shard["errors"]
            if errors.key == str(number):
                handles["errors"].write(errors.head or b"")
                errors.advance()
                counts.failed += 1
                continue
            key = _input_key(raw, id_field)
            if key is None:
                counts.blank += 1
                continue
            sink = next((s for s in ("out", "rejected") if key and shard[s].key == key), None)
            if sink is None:
                raise ArgumentError(
                    "shards",
                    f": shard {(number - 1) % n} has no result for input line "
                    f"{number}" + (f" (id {key})" if key else "") + "; the shard is incomplete "
                    f"(resume it) or was run on another input or with another n than {n}.",
                )
            first = seen.setdefault(key, number)
            if first is not None:
                raise ArgumentError(
                    "input_path",
                    f": the row id {key} is on lines {first} and {number}, "
                    "in two shards; a single run would reject the second as a duplicate.",
                )
            source = shard[sink]
            while source.key == key:  # one line, or a row's group of pair lines
                handles[sink].write(source.head or b"")
                source.advance()
                if sink == "out":
                    counts.pair_lines += 1
            if sink == "out":
                counts.ok += 1
            else:
                counts.rejected += 1
        for shard_files in files:
            for source in shard_files.values():
                if source.head is not None:
                    raise ArgumentError(
                        "shards",
                        f": {source.where()} holds a row that is not in the "
                        "input at its place (another input, or another shard count).",
                    )
        for handle in handles.values():
            handle.flush()
            os.fsync(handle.fileno())
        for name, path in targets.items():
            if path.is_file() and path.stat().st_size > 0 and not overwrite:
                if not filecmp.cmp(temps[name], path, shallow=False):
                    raise ArgumentError(
                        f"output[{name!r}]",
                        ": {path} already exists (and is not this merge's result); pass "
                        "{overwrite}.",
                        path=path,
                        overwrite=ArgumentError.Setting("overwrite", True),
                    )
    except BaseException:
        for name, handle in handles.items():  # only the temporary files this merge holds
            temps[name].unlink(missing_ok=True)
            handle.close()
        raise
    for name, temp in temps.items():
        os.replace(temp, targets[name])
    for handle in handles.values():
        handle.close()  # and so the lock
    for folder in {path.parent for path in targets.values()}:
        fsync_folder(folder)
    return counts
