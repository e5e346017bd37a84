"""Input rows: each line validated into a :class:`Row` or a :class:`RowError`, never a stop."""

from __future__ import annotations

import hashlib
import json
import math
import re
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import partial
from itertools import islice
from typing import Any, Literal

from genrm_rank import validate as check
from genrm_rank.errors import ArgumentError, Words
from genrm_rank.messages import Conversation, content_text, normalize_conversation
from genrm_rank.runner import PromptInput
from genrm_rank.sdg.inputs import DEFAULT_PROMPT_FIELDS, InputProblem, _preview, in_row_words

__all__ = [
    "DEFAULT_PROMPT_FIELDS",
    "MAX_CANDIDATES",
    "TEMPLATE_MARKERS",
    "IdIndex",
    "Row",
    "RowError",
    "RowLayout",
    "RowReader",
    "RowSpec",
    "first_row_layout",
    "id_key",
    "parse_shard",
]

TEMPLATE_MARKERS = (
    "<|im_start|>",
    "<|start_header_id|>",
    "<|begin_of_text|>",
    "[INST]",
    "<start_of_turn>",
    "<|user|>",
)
"""Markup that chat templates put around turns (ChatML and Qwen, Llama 3, Llama 2 and Mistral,
Gemma, Phi and Zephyr): a prompt holding one was rendered already."""

MAX_CANDIDATES = 1024
"""Most candidates a row may hold by default (:attr:`RowSpec.max_candidates`): a round-robin
over 10,000 candidates would schedule 50 million matches (about 40 GB) before its first call."""


@dataclass(frozen=True)
class RowSpec:
    """Where a row keeps its parts, and the longest text accepted.

    Attributes
    ----------
    id_field : str
        The row's unique id (string or integer).
    prompt_fields : tuple of str
        Fields that may hold the prompt (a string, or messages ending with a user turn); a row
        must hold exactly one of them.
    candidates_field : str
        The list of candidates: strings, objects with ``candidate_id_key`` and
        ``candidate_text_key``, assistant messages, or message lists ending with one (as TRL
        and vLLM write completions).
    candidate_id_key, candidate_text_key : str
        Keys of a candidate object.
    principle_field : str
        Optional per-row rubric (overrides the run-wide one).
    max_chars, max_candidates : int or None
        Longest prompt or candidate text, in characters, and most candidates a row may hold
        (:data:`MAX_CANDIDATES`); ``None``: no limit.
    id_from_line : bool or None
        ``True``: a row's id is ``"line:N"``, written under ``id_field``, and a row holding
        ``id_field`` is an error. ``False``: every row holds ``id_field``. ``None``: the
        first row read decides, and later rows must agree.
    allow_templated : bool
        Accept a prompt already rendered by a chat template (:data:`TEMPLATE_MARKERS`), which
        the GenRM would otherwise read as words.
    """

    id_field: str = "id"
    prompt_fields: tuple[str, ...] = DEFAULT_PROMPT_FIELDS
    candidates_field: str = "candidates"
    candidate_id_key: str = "id"
    candidate_text_key: str = "text"
    principle_field: str = "principle"
    max_chars: int | None = 200_000
    max_candidates: int | None = MAX_CANDIDATES
    id_from_line: bool | None = None
    allow_templated: bool = False

    def __post_init__(self) -> None:
        check.flag("id_from_line", self.id_from_line, optional=True)
        if not self.prompt_fields or not all(isinstance(f, str) for f in self.prompt_fields):
            raise ValueError(
                "Argument 'prompt_fields' must be a non-empty tuple of field names, not "
                f"{self.prompt_fields!r}."
            )
        check.flag("allow_templated", self.allow_templated)
        check.count("max_candidates", self.max_candidates, 2, optional=True)


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
    dropped: tuple[dict[str, Any], ...] = ()
    """Candidates dropped for being ``None`` or empty: ``{"index", "reason"}``, the index in
    the row as read (the row's candidates, and every index in its output, count the kept
    ones)."""

    @property
    def key(self) -> str:
        """The id as canonical JSON (``1`` and ``"1"`` differ)."""
        return id_key(self.id)

    def prompt(self, principle: str | None, key: Any, *, with_id: bool = True) -> PromptInput:
        """The runner's prompt for the row (its own principle wins over ``principle``); without
        ``with_id``, its content alone keys its randomness."""
        return PromptInput(
            self.conversation,
            list(self.candidates),
            principle=self.principle if self.principle is not None else principle,
            prompt_id=str(self.id) if with_id else "",
            candidate_ids=None if self.candidate_ids is None else list(self.candidate_ids),
            key=key,
        )


@dataclass(frozen=True)
class RowError:
    """Why one input line (or its ranking) could not be used."""

    line: int
    id: str | int | None
    kind: str
    """A short machine-readable category: ``malformed_json``, ``missing_field``, ``bad_field``,
    ``ambiguous_field``, ``too_few_candidates``, ``too_many_candidates``,
    ``duplicate_candidate``, ``duplicate_id``, ``too_long``, ``bad_encoding``,
    ``templated_prompt``, ``misaligned`` and ``ungrouped`` (:mod:`~genrm_rank.sdg.inputs`),
    ``format_mismatch`` (:func:`~genrm_rank.sdg.filters.format_problem`), ``judge_error``,
    ``no_usable_verdict``, ``ranking_error``."""
    reason: str
    raw: str | None = None
    """The start of the line, for lines that could not be read as a JSON object."""
    field: str | None = None
    """For ``missing_field``: the :class:`RowSpec` attribute naming the field looked for
    (``"id_field"``, ``"prompt_fields"``, ``"candidates_field"``)."""
    keys: tuple[str, ...] = ()
    """For ``missing_field``: the keys the row does have."""
    failed_requests: tuple[dict[str, Any], ...] = ()
    """For a row whose judge calls failed: each failed call's failure kind and words
    (``error``), as bespoke curator's ``failed_requests`` does."""
    cause: Literal["row", "judge"] = "row"
    """``"row"``: refused for its own content, not tried again on resume; ``"judge"``: the
    judge failed it (transport faults, unreadable answers), and resume retries it."""

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in ("line", "id", "kind", "cause", "reason")}
        if self.raw is not None:
            out["raw"] = self.raw
        if self.kind in ("missing_field", "ambiguous_field"):
            out["keys"] = list(self.keys)
        if self.failed_requests:
            out["failed_requests"] = [dict(r) for r in self.failed_requests]
        return out


def _missing(
    line: int, row_id: str | int | None, names: str, field: str, data: dict[str, Any]
) -> RowError:
    """A ``missing_field`` error naming the field looked for and the keys the row has."""
    return RowError(
        line, row_id, "missing_field", f"missing field {names}", field=field, keys=tuple(data)
    )


def id_key(value: Any) -> str:
    """The canonical JSON of an id, the key resume and duplicate detection use."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _is_id(value: Any) -> bool:
    """Whether ``value`` can be an id: a string or an integer (not a bool)."""
    return isinstance(value, (str, int)) and not isinstance(value, bool)


class IdIndex:
    """A compact set of string keys with an integer each (the first line an id was seen on).

    Keys are 64-bit BLAKE2b digests in an open-addressing table of two ``array('Q')``, about 32
    bytes a key (a tenth of a ``set`` of the strings); two keys share a digest with probability
    about ``n**2 / 2**65``.

    >>> index = IdIndex()
    >>> index.setdefault('"a"', 3), index.setdefault('"a"', 9), '"a"' in index, '"b"' in index
    (None, 3, True, False)
    """

    def __init__(self, capacity: int = 1024) -> None:
        self._keys = self._values = array("Q")
        self._count = 0
        self._resize(1 << (max(8, 2 * capacity) - 1).bit_length())

    def _slot(self, digest: int) -> int:
        keys, mask = self._keys, self._mask
        slot = digest & mask
        while keys[slot] != 0 and keys[slot] != digest:
            slot = (slot + 1) & mask
        return slot

    def _find(self, key: str) -> tuple[int, int]:
        """The digest of ``key`` (never 0, which marks an empty slot) and its slot."""
        digest = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little")
        return digest or 1, self._slot(digest or 1)

    def get(self, key: str) -> int | None:
        """The value stored with ``key``, or ``None``."""
        slot = self._find(key)[1]
        return None if self._keys[slot] == 0 else int(self._values[slot])

    def setdefault(self, key: str, value: int = 0) -> int | None:
        """Store ``key`` with ``value`` unless present; return the earlier value, or ``None``."""
        digest, slot = self._find(key)
        if self._keys[slot] != 0:
            return int(self._values[slot])
        self._keys[slot], self._values[slot] = digest, value
        self._count += 1
        if 2 * self._count > self._mask + 1:
            self._resize(2 * (self._mask + 1))
        return None

    def add(self, key: str) -> None:
        self.setdefault(key)

    def _resize(self, size: int) -> None:
        keys, values = self._keys, self._values
        self._keys, self._values = array("Q", bytes(8 * size)), array("Q", bytes(8 * size))
        self._mask = size - 1
        for digest, value in zip(keys, values, strict=True):
            if digest:
                slot = self._slot(digest)
                self._keys[slot], self._values[slot] = digest, value

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None

    def __len__(self) -> int:
        return self._count


class RowReader:
    """Validates lines into :class:`Row` or :class:`RowError`; remembers ids to catch duplicates."""

    def __init__(self, spec: RowSpec | None = None) -> None:
        self.spec = spec or RowSpec()
        self._seen = IdIndex()  # id key -> first line
        self._id_from_line = self.spec.id_from_line

    @property
    def id_from_line(self) -> bool | None:
        """Whether ids come from line numbers: ``spec.id_from_line``, or what the first row
        read decided (``None`` until then)."""
        return self._id_from_line

    def parse(self, line: int, raw: object) -> Row | RowError | None:
        """Read one item of a :class:`~genrm_rank.sdg.inputs.RowSource`: a JSONL line (``None``
        for a blank one, which is not a row), a decoded record, or an ``InputProblem``."""
        if isinstance(raw, InputProblem):
            return RowError(line, None, raw.kind, raw.reason, field=raw.field, keys=raw.keys)
        bad = partial(RowError, line, None)
        if isinstance(raw, dict):
            return self._identify(line, raw)
        if not isinstance(raw, (bytes, bytearray)):
            why = f"the row is a {type(raw).__name__}, not an object"
            return bad("malformed_json", why, _preview(repr(raw), 200))
        try:
            text = bytes(raw).decode("utf-8")
        except UnicodeDecodeError as exc:
            why = f"the line is not valid UTF-8 ({exc.reason} at byte {exc.start})"
            return bad("bad_encoding", why)
        if not text.strip():
            return None
        try:
            data = json.loads(text, parse_constant=_no_constant, parse_float=_finite_float)
        except json.JSONDecodeError as exc:
            why = f"malformed JSON: {exc.msg} (column {exc.colno})"
            return bad("malformed_json", why, text[:200])
        except (ValueError, RecursionError) as exc:  # NaN, 1e999, 5000-digit ints, deep nesting
            reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
            return bad("malformed_json", f"malformed JSON: {reason}", text[:200])
        if not isinstance(data, dict):
            why = f"the line is a JSON {type(data).__name__}, not an object"
            return bad("malformed_json", why, text[:200])
        # Decoded UTF-8 holds no surrogate: only a "\\udXXX" escape can bring one in.
        return self._identify(line, data, _SURROGATE_ESCAPE.search(text) is not None)

    def _identify(self, line: int, data: dict[str, Any], scan: bool = True) -> Row | RowError:
        spec = self.spec
        bad = partial(RowError, line, None)
        found = _lone_surrogate(data) if scan else None
        if found is not None:  # text that can be neither sent nor written: refused at once
            where, char = found
            given = data.get(spec.id_field) if not spec.id_from_line else f"line:{line}"
            return RowError(
                line,
                given if _is_id(given) else None,
                "bad_encoding",
                f"field {where} holds {char!a}, a lone surrogate (a JSON escape of half a "
                "UTF-16 pair), which is not text: the row can be neither judged nor written",
            )
        row_id: str | int
        if self._id_from_line is None:  # the first row decides; later rows must agree
            self._id_from_line = spec.id_field not in data
        if self._id_from_line and spec.id_field in data:
            why: str = Words(
                "the row has the field {f!r} while ids come from row numbers{how} ({a}); "
                "give every row an id or none",
                f=spec.id_field,
                how="" if spec.id_from_line else ", as the first row has no id",
                a=ArgumentError.Setting("rows.id_from_line"),
            )
            return bad("bad_field", why)
        if self._id_from_line:
            row_id = f"line:{line}"
            data = {spec.id_field: row_id, **data}
        elif spec.id_field not in data:
            error = _missing(line, None, repr(spec.id_field), "id_field", data)
            if spec.id_from_line is None:  # the first row had an id: no mixing
                why = f"{error.reason} while the first row has one; give every row an id or none"
                return replace(error, reason=why)
            return error
        else:
            row_id = data[spec.id_field]
            if not _is_id(row_id) or row_id == "":
                why = f"field {spec.id_field!r} must be a non-empty string or an integer, not "
                return bad("bad_field", why + _preview(repr(row_id)))
        first = self._seen.setdefault(id_key(row_id), line)
        if first is not None:
            why = f"duplicate id {row_id!r} (first on line {first})"
            return RowError(line, row_id, "duplicate_id", why)
        return self._check(line, row_id, data)

    def _check(self, line: int, row_id: str | int, data: dict[str, Any]) -> Row | RowError:
        spec = self.spec
        bad = partial(RowError, line, row_id)
        # A null field is absent: a Parquet or dataset row has every column of the table.
        present = [f for f in spec.prompt_fields if data.get(f) is not None]
        if not present:
            names = " or ".join(repr(f) for f in spec.prompt_fields)
            return _missing(line, row_id, names, "prompt_fields", data)
        if len(present) > 1:
            why: str = Words(
                "the row has {names}, and which one is the prompt is ambiguous; name it ({a})",
                names=" and ".join(repr(f) for f in present),
                a=ArgumentError.Setting("rows.prompt_fields"),
            )
            return bad("ambiguous_field", why, field="prompt_fields", keys=tuple(data))
        prompt_field = present[0]
        conversation = data[prompt_field]
        try:
            normalized = normalize_conversation(conversation, name=prompt_field)
        except (TypeError, ValueError) as exc:
            return bad("bad_field", in_row_words(exc))
        if not spec.allow_templated:
            marker = next(
                (m for msg in normalized for m in TEMPLATE_MARKERS if m in msg["content"]), None
            )
            if marker is not None:
                why = Words(
                    "field {f!r} holds a chat-templated prompt (it contains {marker!r}): the "
                    "GenRM would read the template's markup as the user's words; give the plain "
                    "text or the messages, or pass it as it is ({a})",
                    f=prompt_field,
                    marker=marker,
                    a=ArgumentError.Setting("rows.allow_templated"),
                )
                return bad("templated_prompt", why, field="prompt_fields")
        field, text_key = spec.candidates_field, spec.candidate_text_key
        if field not in data:
            return _missing(line, row_id, repr(field), "candidates_field", data)
        raw_candidates = data[field]
        if not isinstance(raw_candidates, list):
            why = f"field {field!r} must be a list, not {type(raw_candidates).__name__}"
            return bad("bad_field", why)
        if spec.max_candidates is not None and len(raw_candidates) > spec.max_candidates:
            why = f"{len(raw_candidates)} candidates, over max_candidates={spec.max_candidates}"
            return bad("too_many_candidates", why)
        texts: list[str] = []
        ids: list[str] = []
        kept: list[Any] = []
        dropped: list[dict[str, Any]] = []
        for i, cand in enumerate(raw_candidates):
            where = f"{field}[{i}]"
            # an assistant message (an object with a role, not the text key), or messages
            if isinstance(cand, list) or (
                isinstance(cand, dict) and "role" in cand and text_key not in cand
            ):
                try:
                    cand = _message_text(cand, where)
                except (TypeError, ValueError) as exc:
                    return bad("bad_field", in_row_words(exc))
            # A null text is a sample that failed (dropped); no text key, a layout error.
            text = cand.get(text_key, ...) if isinstance(cand, dict) else cand
            if text is None or (isinstance(text, str) and not text.strip()):
                dropped.append({"index": i, "reason": "null" if text is None else "empty"})
                continue
            kept.append(cand)
            cid = cand.get(spec.candidate_id_key) if isinstance(cand, dict) else None
            if isinstance(cand, dict) and not isinstance(text, str):
                return bad("bad_field", f"{where} has no string {text_key!r}")
            if cid is not None and not _is_id(cid):
                why = f"{where}.{spec.candidate_id_key} must be a string or an integer, not "
                return bad("bad_field", why + _preview(repr(cid)))
            if not isinstance(text, str):
                why = (
                    f"{where} must be a string, an object with {text_key!r}, an "
                    "assistant message or a list of messages ending with one, not "
                    f"{type(cand).__name__}"
                )
                return bad("bad_field", why)
            texts.append(text)
            ids.append("" if cid is None else str(cid))
        if len(texts) < 2:
            note = f" after dropping {len(dropped)} null or empty" if dropped else ""
            return bad("too_few_candidates", f"fewer than two candidates ({len(texts)}{note})")
        # Identical texts are kept: the runner judges them once and they share one result.
        if len(set(texts)) < 2:
            why = f"fewer than two distinct candidates ({len(texts)} with the same text)"
            return bad("too_few_candidates", why)
        has_ids = any(ids)
        if has_ids and not all(ids):
            why = f"{field}[{ids.index('')}] has no {spec.candidate_id_key!r} while others do"
            return bad("bad_field", why)
        seen: dict[str, int] = {}
        for i, cid in enumerate(ids if has_ids else ()):
            if (j := seen.setdefault(cid, i)) != i:
                why = f"candidates {j} and {i} have the same id {cid!r}"
                return bad("duplicate_candidate", why)
        principle = data.get(spec.principle_field)
        if principle is not None and not isinstance(principle, str):
            why = f"field {spec.principle_field!r} must be a string or null, not "
            return bad("bad_field", why + type(principle).__name__)
        if spec.max_chars is not None:
            sizes = {"the prompt": sum(len(str(m.get("content", ""))) for m in normalized)}
            sizes |= {f"candidate {i}": len(t) for i, t in enumerate(texts)}
            for what, size in sizes.items():
                if size > spec.max_chars:
                    why = f"{what} has {size} characters, over max_chars={spec.max_chars}"
                    return bad("too_long", why)
        if dropped:  # the row's candidates, as written, are the kept ones: indices agree
            data = {**data, field: kept}
        return Row(
            line=line,
            id=row_id,
            data=data,
            conversation=conversation,
            candidates=tuple(texts),
            candidate_ids=tuple(ids) if has_ids else None,
            principle=principle or None,
            prompt_field=prompt_field,
            dropped=tuple(dropped),
        )


def _message_text(message: dict[str, Any] | list[Any], where: str) -> str | None:
    """The text of an assistant candidate given as a message or a list ending with one."""
    if isinstance(message, list):
        if not message:
            raise ValueError(f"Argument '{where}' is an empty list of messages.")
        where, message = f"{where}[{len(message) - 1}]", message[-1]
        if not isinstance(message, dict):
            raise TypeError(
                f"Argument '{where}' must be a message object, not {type(message).__name__}."
            )
    role = message.get("role")
    if role != "assistant":
        raise ValueError(
            f"Argument '{where}' must be the assistant's turn (role 'assistant'), not {role!r}."
        )
    content = message.get("content")
    return None if content is None else content_text(content, f"{where}['content']")


@dataclass(frozen=True)
class RowLayout:
    """How the first rows of an input are laid out, as a :class:`RowReader` reads them."""

    id_from_line: bool | None
    """Whether ids come from line numbers (``None``: no row could be read as an object)."""
    prompt_field: str | None
    """The field the first valid row keeps its prompt in (``None``: no valid row)."""


def first_row_layout(
    source: Iterable[tuple[int, object]], spec: RowSpec, limit: int = 100
) -> RowLayout:
    """The id mode and prompt field the first rows of ``source`` (at most ``limit``) show: a run
    records them (``OUT.run.json``) so that a resumed run reads its rows the same way."""
    reader = RowReader(spec)
    rows = iter(source)
    try:
        parsed = (reader.parse(number, raw) for number, raw in islice(rows, limit))
        row = next((r for r in parsed if isinstance(r, Row)), None)
    finally:
        getattr(rows, "close", lambda: None)()
    return RowLayout(reader.id_from_line, None if row is None else row.prompt_field)


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON value")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {text[:40]} is out of range")
    return value


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _lone_surrogate(value: Any, where: str = "") -> tuple[str, str] | None:
    """The first place (``'meta.notes[2]'``) in a decoded row holding a lone surrogate, with the
    character; ``None`` when every string (key or value) can be encoded as UTF-8."""
    if isinstance(value, str):
        if value.isascii():
            return None
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            return repr(where) if where else "(the row)", exc.object[exc.start]
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{where}.{key}" if where else str(key)
            found = _lone_surrogate(key, path) or _lone_surrogate(item, path)
            if found is not None:
                return found
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            found = _lone_surrogate(item, f"{where}[{i}]")
            if found is not None:
                return found
    return None


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` -> ``(i, n)`` with ``0 <= i < n`` (raises ``ValueError`` naming ``shard``)."""
    try:
        left, right = text.split("/")
        index, count = int(left), int(right)
    except ValueError:
        raise ValueError(f"Argument 'shard' must look like i/n (e.g. 0/4), not {text!r}.") from None
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"Argument 'shard' must satisfy 0 <= i < n, not {text!r}.")
    return index, count
