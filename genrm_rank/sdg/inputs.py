"""Input sources (:class:`RowSource`): rows from JSON Lines (plain, gzip, zstandard), JSON arrays,
Parquet, Hugging Face datasets or stdin, and adapters that build rows of candidates from rows of
one sample each (:func:`merge_candidate_files`, :func:`group_messages`).
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import stat
import sys
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from itertools import zip_longest
from pathlib import Path
from typing import IO, Any, Literal, get_args

from genrm_rank import validate as check
from genrm_rank.errors import ArgumentError, Words
from genrm_rank.messages import content_text
from genrm_rank.textfiles import decompressed, first_bytes

__all__ = [
    "BATCH_ROWS",
    "DEFAULT_PROMPT_FIELDS",
    "HF_PREFIX",
    "INPUT_FORMATS",
    "MISSING_CANDIDATES",
    "STDIN",
    "InputError",
    "InputFormat",
    "InputProblem",
    "RowSource",
    "count_lines",
    "dataset_source",
    "file_labels",
    "group_messages",
    "in_row_words",
    "is_saved_dataset",
    "merge_candidate_files",
    "open_input",
]

STDIN = "-"
HF_PREFIX = "hf:"
DEFAULT_PROMPT_FIELDS = (
    "conversation",
    "prompt",
    "messages",
    "problem",
    "question",
    "instruction",
    "input",
)
"""Fields recognised as the prompt when none is named (NeMo-Skills writes ``problem``,
Alpaca-style rows ``instruction``, TRL ``prompt``, chat rows ``messages``)."""
BATCH_ROWS = 1024
"""Rows read at a time from Parquet files and datasets."""

InputFormat = Literal["auto", "jsonl", "json", "parquet", "dataset"]
INPUT_FORMATS: tuple[str, ...] = get_args(InputFormat)

_PARQUET_MAGIC = b"PAR1"
_CHUNK = 1 << 20


class InputError(ArgumentError):
    """The input cannot be read at all (a missing package, a corrupt stream, a broken array)."""


@dataclass(frozen=True)
class InputProblem:
    """A row a source could not put together; the reader turns it into a row error."""

    kind: str
    """A :class:`~genrm_rank.sdg.rows.RowError` kind (``misaligned``, ``missing_field``, ...)."""
    reason: str
    field: str | None = None
    """For ``missing_field``: the argument naming the field looked for."""
    keys: tuple[str, ...] = ()
    """For ``missing_field``: the keys the record does have."""


Item = object
"""``bytes`` (a JSONL line), a decoded record, or an :class:`InputProblem`."""


@dataclass
class RowSource:
    """A re-readable input: ``name`` names it in messages, ``rows()`` opens a fresh iteration,
    ``count()`` gives the number of rows (``None`` when only reading it all would tell).

    An iteration yields ``(number, item)``: the 1-based line of a JSON Lines file (blank lines
    count: resume and sharding key on it) or row of any other source, and an :data:`Item` for
    :meth:`~genrm_rank.sdg.rows.RowReader.parse`.
    """

    name: str
    rows: Callable[[], Iterator[tuple[int, Item]]]
    count: Callable[[], int | None] = field(default=lambda: None)

    def __iter__(self) -> Iterator[tuple[int, Item]]:
        return self.rows()


@dataclass
class _Spool:
    """Standard input, copied to an anonymous temporary file as it is read (re-readable)."""

    stream: IO[bytes]
    file: IO[bytes] = field(default_factory=tempfile.TemporaryFile)
    eof: bool = False


class _SpoolReader(io.RawIOBase):
    """One reader of a :class:`_Spool` (``BufferedReader`` needs ``readable`` and ``readinto``)."""

    def __init__(self, spool: _Spool) -> None:
        self.spool, self.pos = spool, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        spool, view = self.spool, memoryview(buffer).cast("B")
        if self.pos < spool.file.seek(0, os.SEEK_END):
            spool.file.seek(self.pos)
            data = spool.file.read(len(view))
        else:  # at the end of what was copied: copy more
            read = getattr(spool.stream, "read1", spool.stream.read)
            data = b"" if spool.eof else read(len(view))
            spool.eof = not data
            spool.file.write(data)
        view[: len(data)] = data
        self.pos += len(data)
        return len(data)


_stdin_spool: _Spool | None = None


def _open_bytes(path: str) -> IO[bytes]:
    global _stdin_spool
    if path == STDIN:
        if _stdin_spool is None or _stdin_spool.stream is not sys.stdin.buffer:
            _stdin_spool = _Spool(sys.stdin.buffer)
        return io.BufferedReader(_SpoolReader(_stdin_spool), buffer_size=_CHUNK)
    try:
        return open(path, "rb")
    except OSError as exc:
        raise InputError("input", f": cannot open {path}: {exc.strerror}.") from None


def _package_error(package: str, extra: str, what: str) -> InputError:
    return InputError(
        "input", f": {what} needs the {package!r} package (pip install 'genrm-rank[{extra}]')."
    )


def _need(module: str, extra: str, what: str) -> Any:
    """``module`` imported, or an :class:`InputError`: ``what`` needs its package."""
    try:
        return __import__(module, fromlist=["_"])
    except ImportError:
        raise _package_error(module.split(".")[0], extra, what) from None


def _decompressed(stream: IO[bytes], name: str) -> IO[bytes]:
    """:func:`~genrm_rank.textfiles.decompressed`, a missing package worded as an input error."""
    try:
        return decompressed(stream, name)
    except ImportError:
        raise _package_error(
            "zstandard", "zstd", f"{name} is zstandard-compressed, and reading it"
        ) from None


def _read_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [OSError, EOFError, gzip.BadGzipFile]
    with contextlib.suppress(ImportError):  # zstd input needs the optional package anyway
        import zstandard

        errors.append(zstandard.ZstdError)
    return tuple(errors)


def _lines(stream: IO[bytes], name: str) -> Iterator[tuple[int, Item]]:
    number = 0
    try:
        for number, raw in enumerate(stream, start=1):
            yield number, raw.rstrip(b"\r\n")
    except _read_errors() as exc:
        raise InputError("input", f": {name} cannot be read past line {number}: {exc}.") from None
    finally:
        stream.close()


def _array(stream: IO[bytes], name: str) -> Iterator[tuple[int, Item]]:
    """Elements of a JSON array, one at a time (1-based numbers)."""
    decoder = json.JSONDecoder()
    text = io.TextIOWrapper(stream, encoding="utf-8-sig")
    buffer, pos, number = "", 0, 0

    def fill() -> bool:
        nonlocal buffer, pos
        chunk = text.read(_CHUNK)
        if chunk:
            buffer, pos = buffer[pos:] + chunk, 0
        return bool(chunk)

    def next_char() -> str:
        """The next non-blank character ('' at the end), not consumed."""
        nonlocal pos
        while True:
            while pos < len(buffer) and buffer[pos] in " \t\r\n":
                pos += 1
            if pos < len(buffer) or not fill():
                return buffer[pos : pos + 1]

    def broken(what: str) -> InputError:
        return InputError(
            "input", f": {name} is not a valid JSON array: {what} (after element {number})."
        )

    def element() -> Any:
        nonlocal pos
        while True:
            try:
                value, end = decoder.raw_decode(buffer, pos)
            except json.JSONDecodeError as exc:
                if fill():
                    continue
                raise broken(f"{exc.msg} in element {number + 1}") from None
            if end < len(buffer) or not fill():  # at the end, a number or a literal may go on
                pos = end
                return value

    try:
        first = next_char()
        if first != "[":
            raise broken(f"it starts with {first!r}, not '['" if first else "it is empty")
        pos += 1
        if next_char() == "]":
            pos += 1
        else:
            while True:
                if next_char() in ("", "]", ","):
                    raise broken(f"an element is missing before {next_char() or 'the end'!r}")
                value = element()
                number += 1
                yield number, value
                char = next_char()
                pos += 1
                if char == "]":
                    break
                if char != ",":
                    raise broken(f"expected ',' or ']', found {char!r}" if char else "no ']'")
        if next_char():
            raise broken("text after the closing ']'")
    except UnicodeDecodeError as exc:
        raise broken(f"it is not valid UTF-8 ({exc.reason})") from None
    except _read_errors() as exc:
        raise broken(f"it cannot be read ({exc})") from None
    finally:
        text.close()


def count_lines(stream: IO[bytes], chunk: int = _CHUNK) -> int:
    """Lines in a binary stream (a last line without a newline counts)."""
    count, last = 0, b"\n"
    while block := stream.read(chunk):
        count += block.count(b"\n")
        last = block[-1:]
    return count + (last != b"\n")


def _numbered(batches: Iterable[Iterable[dict[str, Any]]]) -> Iterator[tuple[int, Item]]:
    """The records of a table's batches, numbered from 1."""
    return enumerate((record for batch in batches for record in batch), start=1)


def _parquet(path: str) -> RowSource:
    if path == STDIN:
        raise InputError("input", ": Parquet cannot be read from standard input ('-').")
    pq = _need("pyarrow.parquet", "parquet", "reading Parquet")

    def open_file() -> Any:
        try:
            return contextlib.closing(pq.ParquetFile(path))
        except Exception as exc:  # pyarrow raises its own ArrowInvalid, OSError, ...
            raise InputError("input", f": {path} is not a readable Parquet file ({exc}).") from None

    def rows() -> Iterator[tuple[int, Item]]:
        with open_file() as handle:
            yield from _numbered(b.to_pylist() for b in handle.iter_batches(batch_size=BATCH_ROWS))

    def count() -> int:
        with open_file() as handle:
            return int(handle.metadata.num_rows)

    return RowSource(path, rows, count)


def is_saved_dataset(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a folder written by ``Dataset``/``DatasetDict.save_to_disk``."""
    folder = Path(path)
    return folder.is_dir() and any(
        (folder / name).is_file() for name in ("state.json", "dataset_dict.json")
    )


def dataset_source(dataset: Any, name: str, split: str | None = None) -> RowSource:
    """A source over a Hugging Face ``Dataset`` (or a ``DatasetDict`` and its ``split``): any
    object with ``__len__`` and ``iter(batch_size=...)`` yielding dicts of columns."""
    if isinstance(dataset, Mapping):  # a DatasetDict
        if split is None or split not in dataset:
            raise InputError(
                "split", f": {name} holds the splits {sorted(dataset)}, not {split!r}."
            )
        dataset = dataset[split]

    def records(batch: Mapping[str, list[Any]]) -> Iterator[dict[str, Any]]:
        return (
            dict(zip(batch, values, strict=True)) for values in zip(*batch.values(), strict=True)
        )

    def rows() -> Iterator[tuple[int, Item]]:
        return _numbered(map(records, dataset.iter(batch_size=BATCH_ROWS)))

    return RowSource(name, rows, lambda: len(dataset))


def _dataset(path: str, split: str) -> RowSource:
    datasets = _need("datasets", "datasets", "reading Hugging Face datasets")
    try:
        if path.startswith(HF_PREFIX):
            dataset = datasets.load_dataset(path[len(HF_PREFIX) :], split=split)
        else:
            dataset = datasets.load_from_disk(path)
    except Exception as exc:  # datasets raises many kinds: name them in the message
        raise InputError(
            "input", f": cannot load the dataset {path} ({type(exc).__name__}: {exc})."
        ) from None
    return dataset_source(dataset, path, split)


_SPECIAL_FILES = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISBLK, "a block device"),
)


def _not_a_file(name: str) -> str:
    """What a path that is not a regular file is, in words (a FIFO is read once: use ``-``)."""
    try:
        mode = os.stat(name).st_mode
    except FileNotFoundError:
        return "no such file"
    except OSError as exc:
        return f"not readable ({exc.strerror})"
    if stat.S_ISDIR(mode):
        return "a folder, not a file"
    kind = next((k for test, k in _SPECIAL_FILES if test(mode)), "a special file")
    return (
        f"{kind}, not a regular file (an input is read more than once; to stream it, give - "
        f"and redirect it to standard input: IN = - < {name})"
    )


def open_input(
    path: str | os.PathLike[str], *, format: InputFormat = "auto", split: str = "train"
) -> RowSource:
    """Open one input for reading, choosing the reader by ``format``.

    Parameters
    ----------
    path : path or str
        A file, ``"-"`` (standard input, spooled to a temporary file so that it can be read
        twice), a folder saved with ``datasets``, or ``"hf:NAME"`` (``datasets.load_dataset``).
    format : {"auto", "jsonl", "json", "parquet", "dataset"}
        ``"auto"``: a dataset for ``hf:`` names and saved folders, Parquet by the ``.parquet``
        suffix or the ``PAR1`` magic, a JSON array when the first character is ``[``, JSON
        Lines otherwise (gzip or zstandard compression recognised by the magic bytes).
    split : str
        The split of a dataset dictionary or of ``load_dataset``.

    Raises
    ------
    InputError
        The input does not exist, is not of the format asked for, or needs a package that is
        not installed (the message names it).
    """
    check.one_of("format", format, INPUT_FORMATS)
    name = os.fspath(path)
    if format == "dataset" or (
        format == "auto" and (name.startswith(HF_PREFIX) or is_saved_dataset(name))
    ):
        return _dataset(name, split)
    if name != STDIN and not Path(name).is_file():
        raise InputError("input", f": {name} is {_not_a_file(name)}.")
    if format == "parquet" or (format == "auto" and name.endswith(".parquet")):
        return _parquet(name)

    def opened() -> IO[bytes]:
        return _decompressed(_open_bytes(name), name)

    array, head = format == "json", b""
    if format == "auto":
        with opened() as probe, contextlib.suppress(*_read_errors()):
            head = first_bytes(probe, 4096)  # when it cannot be read, the reader says why
            array = head.lstrip(b" \t\r\n\xef\xbb\xbf")[:1] == b"["
        if name != STDIN and head[:4] == _PARQUET_MAGIC:
            return _parquet(name)

    def rows() -> Iterator[tuple[int, Item]]:
        stream = opened()
        return _array(stream, name) if array else _lines(stream, name)

    def count() -> int | None:
        if name == STDIN:
            return None
        if array:
            return sum(1 for _ in rows())
        with opened() as stream:
            return count_lines(stream)

    return RowSource(name, rows, count)


def _record(item: Item, where: str) -> dict[str, Any] | InputProblem:
    """A source item as a JSON object, or the problem that stops it being one."""
    if isinstance(item, InputProblem):
        return InputProblem(item.kind, f"{where}: {item.reason}", item.field, item.keys)
    if isinstance(item, (bytes, bytearray)):
        try:
            item = json.loads(bytes(item).decode("utf-8"))
        except UnicodeDecodeError as exc:
            return InputProblem("bad_encoding", f"{where} is not valid UTF-8 ({exc.reason})")
        except json.JSONDecodeError as exc:
            return InputProblem("malformed_json", f"{where}: malformed JSON: {exc.msg}")
    if not isinstance(item, dict):
        return InputProblem("malformed_json", f"{where} is a {type(item).__name__}, not an object")
    return item


def _missing(name: str, argument: str, record: dict[str, Any], where: str = "") -> InputProblem:
    """A ``missing_field`` problem naming the field, its argument and the keys the row has."""
    return InputProblem(
        "missing_field", f"missing field {name!r}{where}", f"inputs.{argument}", tuple(record)
    )


def _preview(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _blank(item: Item) -> bool:
    return isinstance(item, (bytes, bytearray)) and not bytes(item).strip()


MISSING_CANDIDATES = "missing_candidates"
"""The field of a merged row naming the files that had no row for it (``{"id", "reason"}``)."""


def file_labels(names: Sequence[str]) -> list[str]:
    """Short names for input files, the ids of the candidates merged from them: a name without
    its folder and extensions, or the names as given when two files would share one.

    >>> file_labels(["run/output-rs0.jsonl", "run/output-rs1.jsonl.gz"])
    ['output-rs0', 'output-rs1']
    >>> file_labels(["a/out.jsonl", "b/out.jsonl"])
    ['a/out.jsonl', 'b/out.jsonl']
    """
    labels = []
    for name in names:
        label = Path(name).name
        for suffix in (".gz", ".zst", ".jsonl", ".json", ".parquet"):
            label = label.removesuffix(suffix)
        labels.append(label or name)
    return labels if len(set(labels)) == len(labels) else list(names)


def merge_candidate_files(
    sources: Sequence[RowSource],
    *,
    candidate_field: str,
    candidates_field: str = "candidates",
    align_by: str | None = None,
    candidate_id_key: str = "id",
    candidate_text_key: str = "text",
    prompt_fields: Sequence[str] = DEFAULT_PROMPT_FIELDS,
) -> RowSource:
    """Rows of N files holding one sample each (NeMo-Skills' ``output-rs{i}.jsonl``), merged
    into rows of N candidates.

    Parameters
    ----------
    sources : sequence of RowSource
        Two or more inputs; candidate ``i`` of a merged row comes from ``sources[i]``.
    candidate_field : str
        The field of each row holding its sample (NeMo-Skills: ``"generation"``).
    candidates_field, candidate_id_key, candidate_text_key, prompt_fields
        The row reader's (:class:`~genrm_rank.sdg.rows.RowSpec`); the prompt stays on the row.
    align_by : str, optional
        A field whose value pairs rows across files (rows out of step wait in memory for their
        partner); without it rows pair by number. Rows of the first file set the order.

    A merged row keeps the fields its files' rows share; each candidate holds its sample, its
    file's label (:func:`file_labels`) and the other fields of its own row. A row missing from
    some files is merged from the others when at least two have it, naming the rest under
    :data:`MISSING_CANDIDATES`; otherwise it is a ``misaligned`` error row, as are rows paired
    up that hold different prompts and rows of later files matching no row of the first (those
    numbered after the first file's rows).
    """
    if len(sources) < 2:
        raise ValueError(f"Argument 'sources' must hold at least two inputs, not {len(sources)}.")
    names = [s.name for s in sources]
    if len(set(names)) != len(names):
        raise ArgumentError("sources", f"names one input twice: {names}.")
    labels = file_labels(names)
    if isinstance(prompt_fields, str) or not all(isinstance(f, str) for f in prompt_fields):
        raise TypeError(
            f"Argument 'prompt_fields' must be a sequence of field names, not {prompt_fields!r}."
        )
    row_only = {candidate_field, *prompt_fields, *([align_by] if align_by is not None else [])}
    Record = dict[str, Any] | InputProblem

    def merged(records: list[Record]) -> dict[str, Any]:
        present = [r for r in records if isinstance(r, dict)]
        row = {
            k: v
            for k, v in present[0].items()
            if k != candidate_field and all(k in r and r[k] == v for r in present)
        }
        pairs = list(zip(labels, records, strict=True))
        row[candidates_field] = [
            {
                **{k: v for k, v in r.items() if k not in row_only},
                candidate_id_key: label,
                candidate_text_key: r[candidate_field],
            }
            for label, r in pairs
            if isinstance(r, dict)
        ]
        missing = [{"id": i, "reason": r.reason} for i, r in pairs if isinstance(r, InputProblem)]
        if missing:
            row[MISSING_CANDIDATES] = missing
        return row

    def prompt_of(record: dict[str, Any]) -> tuple[str, str] | None:
        name = next((f for f in prompt_fields if f in record), None)
        if name is None:
            return None
        return name, json.dumps(record[name], sort_keys=True, ensure_ascii=True)

    def check(records: list[Record], rows: Sequence[int]) -> Item:
        """The merged row, or why there is none (a bad row, too few, different prompts)."""
        for i, record in enumerate(records):
            if isinstance(record, InputProblem) and record.kind != "misaligned":
                return record
            if isinstance(record, dict) and candidate_field not in record:
                where = f" in row {rows[i]} of {names[i]}"
                return _missing(candidate_field, "candidate_field", record, where)
        found = [(i, r) for i, r in enumerate(records) if isinstance(r, dict)]
        if len(found) < 2:  # too few to rank: the first absence says why
            return next(r for r in records if isinstance(r, InputProblem))
        i0, first = found[0][0], prompt_of(found[0][1])
        for i, other in ((i, prompt_of(r)) for i, r in found[1:]):
            if first is not None and other is not None and other[1] != first[1]:
                return InputProblem(
                    "misaligned",
                    Words(
                        "{rows}; a reordered or regenerated file pairs samples of different "
                        "prompts ({a} pairs rows by a key)",
                        rows=f"row {rows[i0]} of {names[i0]} and row {rows[i]} of {names[i]} "
                        f"hold different prompts (field {first[0]!r}: {_preview(first[1])} vs "
                        f"field {other[0]!r}: {_preview(other[1])})",
                        a=ArgumentError.Setting("inputs.align_by"),
                    ),
                )
        return merged(records)

    def by_row() -> Iterator[tuple[int, Item]]:
        iterators = [iter(s) for s in sources]
        rows_in = [0] * len(sources)  # rows each file has had so far
        try:
            for number, got in enumerate(zip_longest(*iterators), start=1):
                items = [None if g is None else g[1] for g in got]
                present = [i for i, item in enumerate(items) if item is not None]
                for i in present:
                    rows_in[i] = number
                blank = [i for i in present if _blank(items[i])]
                if blank:
                    why = f"row {number} of {names[blank[0]]} is blank while others are not"
                    yield number, b"" if blank == present else InputProblem("misaligned", why)
                    continue
                records = [
                    _record(item, f"row {number} of {names[i]}")
                    if item is not None
                    else InputProblem(
                        "misaligned",
                        f"row {number} of {names[present[0]]} has no partner: {names[i]} ends "
                        f"at row {rows_in[i]}",
                    )
                    for i, item in enumerate(items)
                ]
                yield number, check(records, [number] * len(records))
        finally:
            _close(iterators)

    def by_key(key: str) -> Iterator[tuple[int, Item]]:
        from genrm_rank.sdg.rows import id_key

        iterators = [iter(s) for s in sources[1:]]
        waiting: list[dict[str, tuple[int, dict[str, Any]]]] = [{} for _ in iterators]
        strays: list[tuple[str, int, str]] = []  # (file, row, why) of later files' bad rows
        number = 0

        def find(i: int, wanted: str) -> tuple[int, dict[str, Any]] | None:
            if wanted in waiting[i]:
                return waiting[i].pop(wanted)
            for row, item in iterators[i]:
                if _blank(item):
                    continue
                record = _record(item, f"row {row} of {names[i + 1]}")
                if isinstance(record, InputProblem) or key not in record:
                    why = getattr(record, "reason", f"missing field {key!r}")
                    strays.append((names[i + 1], row, why))
                    continue
                found = id_key(record[key])
                if found == wanted:
                    return row, record
                if found in waiting[i]:
                    strays.append((names[i + 1], row, f"{key} {record[key]!r} seen twice"))
                else:
                    waiting[i][found] = (row, record)
            return None

        try:
            for number, item in sources[0]:
                first = b"" if _blank(item) else _record(item, f"row {number} of {names[0]}")
                if not isinstance(first, dict):
                    yield number, first
                    continue
                if key not in first:
                    where = f" in row {number} of {names[0]}"
                    yield number, _missing(key, "align_by", first, where)
                    continue
                why = f"row {number} of {names[0]} ({key} {first[key]!r}) has no partner in "
                partners = [find(i, id_key(first[key])) for i in range(len(iterators))]
                records: list[Record] = [first]
                records += [
                    p[1] if p else InputProblem("misaligned", why + names[i + 1])
                    for i, p in enumerate(partners)
                ]
                yield number, check(records, [number, *(p[0] if p else 0 for p in partners)])
            leftovers = [
                (names[i + 1], row, f"{key} {rec[key]!r} matches no row of {names[0]}")
                for i, left in enumerate(waiting)
                for row, rec in left.values()
            ]
            leftovers += [  # rows never looked at
                (names[i + 1], row, f"matches no row of {names[0]}")
                for i, it in enumerate(iterators)
                for row, item in it
                if not _blank(item)
            ]
            for file, row, why in sorted(strays + leftovers, key=lambda s: (s[0], s[1])):
                number += 1
                yield number, InputProblem("misaligned", f"row {row} of {file}: {why}")
        finally:
            _close(iterators)

    if align_by is None:
        return RowSource(" + ".join(names), by_row, sources[0].count)
    return RowSource(" + ".join(names), partial(by_key, align_by))


def _close(iterators: Iterable[Iterator[Any]]) -> None:
    for it in iterators:
        getattr(it, "close", lambda: None)()


def group_messages(
    source: RowSource,
    *,
    messages_field: str = "messages",
    group_by: str | None = None,
    candidates_field: str = "candidates",
) -> RowSource:
    """Rows of one sample each, in OpenAI ``messages`` form, grouped into rows of candidates.

    Parameters
    ----------
    source : RowSource
    messages_field : str
        The field holding each row's messages, ending with the sample's assistant turn.
    group_by : str, optional
        A field whose value groups rows; by default rows group by their prompt (the messages
        before the last assistant turn, compared as canonical JSON).
    candidates_field : str
        Where the grouped row keeps its candidates (the assistant turns' texts).

    A grouped row keeps the fields and the number of its group's first row, its prompt under
    ``messages_field``. Rows of one group must be next to each other: a group that comes back
    after another began is an error row, never a second group (memory holds one group and a
    64-bit digest per closed group).
    """
    from genrm_rank.sdg.rows import IdIndex, id_key

    def sample(number: int, item: Item) -> tuple[str, dict[str, Any], Any] | InputProblem:
        record = _record(item, f"row {number}")
        if isinstance(record, InputProblem):
            return record
        if messages_field not in record:
            return _missing(messages_field, "messages_field", record)
        messages = record[messages_field]
        if not isinstance(messages, list) or not messages:
            why = f"field {messages_field!r} must be a non-empty list of messages"
            return InputProblem("bad_field", why)
        last = messages[-1]
        if not isinstance(last, dict) or last.get("role") != "assistant":
            role = last.get("role") if isinstance(last, dict) else type(last).__name__
            why = (
                f"field {messages_field!r} must end with the sample's assistant turn, not {role!r}"
            )
            return InputProblem("bad_field", why)
        content = last.get("content")
        if content is not None:
            try:
                content = content_text(content, f"{messages_field}[-1]['content']")
            except (TypeError, ValueError) as exc:
                return InputProblem("bad_field", in_row_words(exc))
        if group_by is None:
            return id_key(messages[:-1]), record, content
        if group_by not in record:
            return _missing(group_by, "group_by", record)
        return id_key(record[group_by]), record, content

    def rows() -> Iterator[tuple[int, Item]]:
        closed = IdIndex()
        group: list[tuple[int, dict[str, Any], Any]] = []
        group_key = ""

        def emit() -> tuple[int, Item]:
            number, first, _ = group[0]
            row = {k: v for k, v in first.items() if k != messages_field}
            row[messages_field] = first[messages_field][:-1]
            row[candidates_field] = [content for _, _, content in group]
            closed.setdefault(group_key, number)
            return number, row

        for number, item in source:
            if _blank(item):
                continue
            got = sample(number, item)
            if isinstance(got, InputProblem):
                yield number, got
                continue
            key, record, content = got
            if group and key == group_key:
                group.append((number, record, content))
            elif (earlier := closed.get(key)) is not None:
                why = (
                    f"row {number} belongs to the group that began on row {earlier}, which "
                    "other rows followed; rows of one group must be next to each other (sort "
                    "the input by prompt or by the group key)"
                )
                yield number, InputProblem("ungrouped", why)
            else:
                if group:
                    yield emit()
                group, group_key = [(number, record, content)], key
        if group:
            yield emit()

    return RowSource(source.name, rows)


def in_row_words(error: BaseException) -> str:
    """A library error about a value read from a row, worded for the row: the argument it is
    about becomes ``field 'x'`` (other arguments it names keep the library's words)."""
    return Words.worded(
        error, lambda s, head: f"field '{s.name}'" if head else ArgumentError.python_words(s, head)
    )
