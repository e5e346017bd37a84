"""A persistent verdict cache, so that no judge call is ever paid twice.

A GenRM call costs thousands of reasoning tokens on a multi-GPU replica. :class:`CachedJudge`
wraps any judge and stores every verdict it is given in a :class:`VerdictCache` (one SQLite file)
under :func:`cache_key`; a rerun of the same requests, or a run resumed after a crash, is served
from the file and pays nothing. A cached verdict comes back unchanged, with the ``attempts`` and
``usage`` that were originally paid, so result rows are identical between a first run and a
rerun.

What a key covers
-----------------
:func:`cache_key` is a sha256 over canonical JSON of :data:`PROTOCOL_VERSION`, the caller's
*namespace*, the exact chat messages of the request, and its ``sample`` and ``attempt``. The
messages carry the conversation, both candidate texts in their slots and the principle. The
prompt id, candidate indices and candidate ids are left out on purpose: the same messages are the
same judgement, whichever prompt or system they came from.

The namespace must name everything else that changes the answer: at least the model and the
sampling parameters (temperature, top_p, max_tokens, seed, ...) and any extra request body
(e.g. ``chat_template_kwargs``). It must never hold an API key or other credential; callers build
it from non-secret settings, and :func:`cache_key` refuses keys that name a credential
(``api_key``, ``authorization``, ``password``, ...), which would also void the cache whenever a
key is rotated.

Bump :data:`PROTOCOL_VERSION` whenever message building or answer parsing changes meaning: every
key changes with it, so old verdicts are no longer served.

Storage and durability
----------------------
:class:`VerdictCache` keeps one SQLite table ``verdicts(key, verdict, created)`` (the verdict as
the JSON of :func:`verdict_to_dict`) and a ``meta`` table holding :data:`SCHEMA_VERSION`. The
file is in WAL mode with ``synchronous=NORMAL`` and every :meth:`~VerdictCache.put` is its own
committed transaction (:meth:`~VerdictCache.put_many` one transaction for the lot). In WAL mode a
commit appends to the log without an fsync (only checkpoints sync), so it costs little: thousands
of single-row commits a second, far beyond any judge's rate. Batching commits behind a timer was
measured to buy little (about 1.3x for small verdicts, nothing for 14 KB ones, where writing the
pages dominates) at the price of verdicts that a kill can lose, so it is not done.
Once ``put`` returns, the verdict survives a ``kill -9`` of the process, and a kill at any moment
never corrupts the file (a power cut may lose the last commits, never the file).

The cache is synchronous and meant for one thread, the event loop's: a lookup or a commit takes
well under a millisecond, next to judge calls of seconds, so it runs inline rather than through a
thread (and a connection per thread). Several processes may open the same file at once: WAL lets
readers run beside the writer, and writers wait for one another up to ``timeout`` seconds
(SQLite's busy timeout).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import math
import os
import sqlite3
import time
from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any

from genrm_rank.judges.base import BatchJudge, Judge, PairRequest
from genrm_rank.verdict import FailureKind, RubricScore, Usage, Verdict

__all__ = [
    "PROTOCOL_VERSION",
    "SCHEMA_VERSION",
    "CachedBatchJudge",
    "CachedJudge",
    "VerdictCache",
    "cache_key",
    "verdict_from_dict",
    "verdict_to_dict",
]

PROTOCOL_VERSION = 1
"""Version of the request/answer protocol folded into every :func:`cache_key`.

Bump it when :func:`~genrm_rank.messages.build_messages` or the answer parser changes what a
request means or how an answer is read; every key changes, so no stale verdict is served.
"""

SCHEMA_VERSION = 1
"""Version of the SQLite layout and of the stored verdict JSON; kept in the ``meta`` table."""

_VERDICT_KEYS = frozenset(
    {
        "score_1",
        "score_2",
        "ranking",
        "rubrics",
        "raw",
        "reasoning",
        "failure",
        "error",
        "finish_reason",
        "usage",
        "attempts",
    }
)
_RUBRIC_KEYS = frozenset({"rubric_id", "score_1", "score_2", "ranking"})
_USAGE_KEYS = frozenset({"prompt_tokens", "completion_tokens"})

# Words that mark a namespace entry as a credential (matched in the lower-cased, '-' -> '_' name).
_SECRET_WORDS = ("api_key", "apikey", "authorization", "password", "secret", "access_token")


# --------------------------------------------------------------------------------------------
# Verdict <-> JSON


def verdict_to_dict(verdict: Verdict) -> dict[str, Any]:
    """Every field of a verdict as a JSON-ready dict; :func:`verdict_from_dict` inverts it.

    >>> verdict_to_dict(Verdict(score_1=4, score_2=2, ranking=2))["ranking"]
    2
    """
    if not isinstance(verdict, Verdict):
        raise TypeError(f"Argument 'verdict' must be a Verdict, not {type(verdict).__name__}.")
    usage = verdict.usage
    return {
        "score_1": verdict.score_1,
        "score_2": verdict.score_2,
        "ranking": verdict.ranking,
        "rubrics": [
            {
                "rubric_id": r.rubric_id,
                "score_1": r.score_1,
                "score_2": r.score_2,
                "ranking": r.ranking,
            }
            for r in verdict.rubrics
        ],
        "raw": verdict.raw,
        "reasoning": verdict.reasoning,
        "failure": None if verdict.failure is None else verdict.failure.value,
        "error": verdict.error,
        "finish_reason": verdict.finish_reason,
        "usage": None
        if usage is None
        else {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens},
        "attempts": verdict.attempts,
    }


def _check_keys(data: Mapping[str, Any], allowed: frozenset[str], name: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ValueError(f"Argument '{name}' has unknown keys {unknown}.")


def verdict_from_dict(data: Mapping[str, Any]) -> Verdict:
    """The verdict a :func:`verdict_to_dict` dict describes.

    Missing keys take the :class:`~genrm_rank.verdict.Verdict` defaults; unknown keys raise
    ``ValueError``, as do values the verdict itself rejects.
    """
    if not isinstance(data, Mapping):
        raise TypeError(f"Argument 'data' must be a mapping, not {type(data).__name__}.")
    _check_keys(data, _VERDICT_KEYS, "data")
    rubrics = []
    for i, item in enumerate(data.get("rubrics") or ()):
        if not isinstance(item, Mapping):
            raise TypeError(
                f"Argument 'data['rubrics'][{i}]' must be a mapping, not {type(item).__name__}."
            )
        _check_keys(item, _RUBRIC_KEYS, f"data['rubrics'][{i}]")
        rubrics.append(
            RubricScore(
                item.get("rubric_id"), item.get("score_1"), item.get("score_2"), item.get("ranking")
            )
        )
    usage_data = data.get("usage")
    usage = None
    if usage_data is not None:
        if not isinstance(usage_data, Mapping):
            raise TypeError(
                f"Argument 'data['usage']' must be a mapping or None, "
                f"not {type(usage_data).__name__}."
            )
        _check_keys(usage_data, _USAGE_KEYS, "data['usage']")
        usage = Usage(
            int(usage_data.get("prompt_tokens", 0)), int(usage_data.get("completion_tokens", 0))
        )
    attempts = data.get("attempts", 1)
    if isinstance(attempts, bool) or not isinstance(attempts, int):
        raise TypeError(
            f"Argument 'data['attempts']' must be an int, not {type(attempts).__name__}."
        )
    failure = data.get("failure")
    return Verdict(
        score_1=data.get("score_1"),
        score_2=data.get("score_2"),
        ranking=data.get("ranking"),
        rubrics=tuple(rubrics),
        raw=data.get("raw"),
        reasoning=data.get("reasoning"),
        failure=None if failure is None else FailureKind(failure),
        error=data.get("error"),
        finish_reason=data.get("finish_reason"),
        usage=usage,
        attempts=attempts,
    )


def _dumps_verdict(verdict: Verdict) -> str:
    # ensure_ascii: raw text may hold lone surrogates (a JSON "\ud800" from a server), which
    # SQLite cannot store as UTF-8 text; escaped, every string round-trips.
    return json.dumps(verdict_to_dict(verdict), ensure_ascii=True, separators=(",", ":"))


# --------------------------------------------------------------------------------------------
# Keys


def _check_no_secrets(value: Any, where: str) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(
                    f"Argument '{where}' must have string keys, not {type(key).__name__} {key!r}."
                )
            name = key.lower().replace("-", "_")
            if name == "token" or any(word in name for word in _SECRET_WORDS):
                raise ValueError(
                    f"Argument '{where}' must not hold credentials, not the key {key!r}; build "
                    "the namespace from the model and sampling settings only."
                )
            _check_no_secrets(item, f"{where}[{key!r}]")
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_no_secrets(item, f"{where}[{i}]")


def _canonical(payload: Any) -> str:
    return json.dumps(
        payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    )


def _canonical_namespace(namespace: Mapping[str, Any]) -> str:
    if not isinstance(namespace, Mapping):
        raise TypeError(f"Argument 'namespace' must be a mapping, not {type(namespace).__name__}.")
    _check_no_secrets(namespace, "namespace")
    try:
        return _canonical(dict(namespace))
    except (TypeError, ValueError) as err:
        raise type(err)(
            f"Argument 'namespace' must hold only finite JSON values (str, int, float, bool, "
            f"None, lists, dicts), not {namespace!r}: {err}."
        ) from None


def _key_from_canonical(namespace_json: str, request: PairRequest) -> str:
    if not isinstance(request, PairRequest):
        raise TypeError(f"Argument 'request' must be a PairRequest, not {type(request).__name__}.")
    body = _canonical(
        {
            "messages": request.messages(),
            "sample": request.sample,
            "attempt": request.attempt,
        }
    )
    # The namespace is already canonical JSON: splice it in rather than parse it again.
    blob = f'{{"body":{body},"namespace":{namespace_json},"protocol":{PROTOCOL_VERSION}}}'
    return hashlib.sha256(blob.encode("ascii")).hexdigest()


def cache_key(namespace: Mapping[str, Any], request: PairRequest) -> str:
    """The cache key of a request under a namespace: a sha256 hex digest.

    Hashes canonical JSON (sorted keys, no whitespace) of :data:`PROTOCOL_VERSION`, the
    namespace, ``request.messages()``, ``request.sample`` and ``request.attempt``. The prompt id,
    candidate indices and ids are not part of it: the same messages are the same judgement.

    Parameters
    ----------
    namespace : mapping
        Everything besides the messages that changes the answer: the model name and the sampling
        parameters at least, and any extra request body. JSON values only; no credentials (keys
        naming an API key, token, password or secret raise ``ValueError``).
    request : PairRequest

    >>> from genrm_rank.judges.base import PairRequest
    >>> request = PairRequest("Capital of France?", "Paris.", "Lyon.")
    >>> key = cache_key({"model": "genrm", "temperature": 0.6}, request)
    >>> len(key), key == cache_key({"temperature": 0.6, "model": "genrm"}, request)
    (64, True)
    """
    return _key_from_canonical(_canonical_namespace(namespace), request)


# --------------------------------------------------------------------------------------------
# Storage

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS verdicts "
    "(key TEXT PRIMARY KEY, verdict TEXT NOT NULL, created REAL)",
)
_PUT = "INSERT OR REPLACE INTO verdicts (key, verdict, created) VALUES (?, ?, ?)"


def _check_key(key: object) -> str:
    if not isinstance(key, str):
        raise TypeError(f"Argument 'key' must be a string, not {type(key).__name__}.")
    return key


class VerdictCache:
    """Verdicts by key in one SQLite file (WAL mode), committed as they are put.

    Parameters
    ----------
    path : str or os.PathLike
        The database file; created if absent (its folder must exist). ``":memory:"`` gives a
        cache that lives as long as the object.
    timeout : float
        Seconds a write waits for another process's write to finish (SQLite's busy timeout).

    Attributes
    ----------
    hits, misses : int
        :meth:`get` calls that found / did not find a verdict.
    journal_mode : str
        The journal mode SQLite settled on: ``"wal"``, or ``"memory"`` for ``":memory:"``.

    Notes
    -----
    Every :meth:`put` commits before it returns (WAL mode, ``synchronous=NORMAL``: thousands of
    puts a second), so a verdict put survives a ``kill -9`` and the file is never left corrupt.
    Use the cache from one thread; several processes may share the file.
    """

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 30.0) -> None:
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(
                f"Argument 'path' must be a str or os.PathLike, not {type(path).__name__}."
            )
        if not (isinstance(timeout, (int, float)) and math.isfinite(timeout) and timeout >= 0):
            raise ValueError(f"Argument 'timeout' must be a finite number >= 0, not {timeout!r}.")
        self.path = os.fspath(path)
        self.hits = 0
        self.misses = 0
        # isolation_level=None: no implicit transactions; each statement commits on its own,
        # and put_many opens its own transaction explicitly.
        self._conn: sqlite3.Connection | None = sqlite3.connect(
            self.path, timeout=timeout, isolation_level=None
        )
        try:
            self.journal_mode = self._open(self._conn, timeout)
        except BaseException:
            self._conn.close()
            self._conn = None
            raise

    def _open(self, conn: sqlite3.Connection, timeout: float) -> str:
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            mode = str(conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]).lower()
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in _SCHEMA:
                    conn.execute(statement)
                conn.execute(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                    (str(SCHEMA_VERSION),),
                )
                row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        except sqlite3.DatabaseError as err:
            if isinstance(err, sqlite3.OperationalError) and "locked" in str(err):
                raise
            raise ValueError(
                f"Argument 'path' must be a verdict cache or a new file, not {self.path!r} ({err})."
            ) from err
        if row[0] != str(SCHEMA_VERSION):
            raise ValueError(
                f"Argument 'path' holds a verdict cache of schema version {row[0]}; this "
                f"genrm_rank reads version {SCHEMA_VERSION}: {self.path!r}."
            )
        return mode

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError(f"This VerdictCache ({self.path!r}) is closed.")
        return self._conn

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._conn is None

    def get(self, key: str) -> Verdict | None:
        """The verdict stored under ``key``, or ``None``; counts a hit or a miss."""
        row = (
            self._connection()
            .execute("SELECT verdict FROM verdicts WHERE key = ?", (_check_key(key),))
            .fetchone()
        )
        if row is None:
            self.misses += 1
            return None
        self.hits += 1
        return verdict_from_dict(json.loads(row[0]))

    def __contains__(self, key: object) -> bool:
        """Whether ``key`` is stored (not counted as a hit or a miss)."""
        if not isinstance(key, str):
            return False
        row = self._connection().execute("SELECT 1 FROM verdicts WHERE key = ?", (key,)).fetchone()
        return row is not None

    def put(self, key: str, verdict: Verdict) -> None:
        """Store ``verdict`` under ``key`` (replacing any), committed before this returns."""
        blob = _dumps_verdict(verdict)
        self._connection().execute(_PUT, (_check_key(key), blob, time.time()))

    def put_many(self, items: Iterable[tuple[str, Verdict]]) -> int:
        """Store many ``(key, verdict)`` pairs in one committed transaction; returns how many."""
        now = time.time()
        rows = [(_check_key(key), _dumps_verdict(verdict), now) for key, verdict in items]
        if not rows:
            return 0
        conn = self._connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(_PUT, rows)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return len(rows)

    def __len__(self) -> int:
        return int(self._connection().execute("SELECT COUNT(*) FROM verdicts").fetchone()[0])

    def close(self) -> None:
        """Close the file; idempotent. Every put was already committed."""
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.close()

    def __enter__(self) -> VerdictCache:
        self._connection()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"VerdictCache({self.path!r}, {state}, hits={self.hits}, misses={self.misses})"


# --------------------------------------------------------------------------------------------
# The judge


class CachedJudge:
    """A judge that answers from a :class:`VerdictCache` and pays the inner judge only on a miss.

    A hit returns the stored verdict unchanged (same ``attempts`` and ``usage`` as originally
    paid). Every fresh verdict is stored, except ``unavailable`` ones (transport failures, worth
    asking again later); failed verdicts of other kinds are stored, since the orchestrator's
    re-ask of one has its own key (``attempt + 1``). Requests with the same key that are in flight
    at the same time are sent once and share the verdict.

    Constructing a ``CachedJudge`` around a :class:`~genrm_rank.judges.base.BatchJudge` gives a
    :class:`CachedBatchJudge`, which has ``judge_batch`` too; around a plain judge it has only
    ``judge``, so the orchestrator treats it as the inner judge would be treated.

    Parameters
    ----------
    judge : Judge
        The inner judge, available as :attr:`inner`.
    cache : VerdictCache
        Where verdicts are kept. The caller owns it: it is never closed here.
    namespace : mapping
        What besides the messages changes the answer (see :func:`cache_key`): the model name and
        sampling parameters at least; never a credential. Copied at construction.

    Attributes
    ----------
    hits : int
        Requests answered without paying: from the cache, or shared with an identical request
        in flight.
    misses : int
        Requests sent to the inner judge.
    calls_saved, tokens_saved : int
        Sums of ``attempts`` and of ``total_tokens`` over the hits.

    Notes
    -----
    ``async with CachedJudge(judge, ...)`` enters and exits the inner judge when it is an async
    context manager (so ``async with CachedJudge(OpenAIJudge(...), ...)`` opens and closes its
    HTTP session), and does nothing to it otherwise. A judge entered elsewhere can be wrapped
    without ``async with``; the wrapper then leaves its lifecycle alone.
    """

    def __new__(
        cls, judge: Judge, cache: VerdictCache, *, namespace: Mapping[str, Any]
    ) -> CachedJudge:
        if cls is CachedJudge and isinstance(judge, BatchJudge):
            cls = CachedBatchJudge
        return super().__new__(cls)

    def __init__(self, judge: Judge, cache: VerdictCache, *, namespace: Mapping[str, Any]) -> None:
        if not isinstance(judge, Judge):
            raise TypeError(
                f"Argument 'judge' must be a Judge (with async judge()), "
                f"not {type(judge).__name__}."
            )
        if not isinstance(cache, VerdictCache):
            raise TypeError(f"Argument 'cache' must be a VerdictCache, not {type(cache).__name__}.")
        self._namespace_json = _canonical_namespace(namespace)
        self.inner = judge
        self.cache = cache
        self.hits = 0
        self.misses = 0
        self.calls_saved = 0
        self.tokens_saved = 0
        # key -> the in-flight call's outcome (None: it raised, a waiter must ask itself).
        self._in_flight: dict[str, asyncio.Future[Verdict | None]] = {}
        self._entered = False

    @property
    def namespace(self) -> dict[str, Any]:
        """A copy of the namespace folded into every key."""
        result: dict[str, Any] = json.loads(self._namespace_json)
        return result

    def key(self, request: PairRequest) -> str:
        """The cache key of ``request`` under this judge's namespace."""
        return _key_from_canonical(self._namespace_json, request)

    def _hit(self, verdict: Verdict) -> Verdict:
        self.hits += 1
        self.calls_saved += verdict.attempts
        self.tokens_saved += verdict.total_tokens
        return dataclasses.replace(verdict, cached=True)

    def _claim(self, key: str) -> asyncio.Future[Verdict | None]:
        self.misses += 1
        future: asyncio.Future[Verdict | None] = asyncio.get_running_loop().create_future()
        self._in_flight[key] = future
        return future

    def _settle(self, key: str, verdict: Verdict | None) -> None:
        future = self._in_flight.pop(key)
        if not future.done():
            future.set_result(verdict)

    async def judge(self, request: PairRequest) -> Verdict:
        """The stored verdict for ``request``, or the inner judge's (then stored)."""
        key = self.key(request)
        while True:
            pending = self._in_flight.get(key)
            if pending is None:
                break
            # shield: a waiter being cancelled must not cancel the call it shares.
            shared = await asyncio.shield(pending)
            if shared is not None:
                return self._hit(shared)
        stored = self.cache.get(key)
        if stored is not None:
            return self._hit(stored)
        self._claim(key)
        verdict: Verdict | None = None
        try:
            verdict = await self.inner.judge(request)
            if verdict.failure is not FailureKind.UNAVAILABLE:
                self.cache.put(key, verdict)
        except BaseException:
            verdict = None
            raise
        finally:
            self._settle(key, verdict)
        return verdict

    async def __aenter__(self) -> CachedJudge:
        enter = getattr(self.inner, "__aenter__", None)
        if enter is not None and hasattr(self.inner, "__aexit__"):
            await enter()
            self._entered = True
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._entered:
            self._entered = False
            await self.inner.__aexit__(exc_type, exc, tb)  # type: ignore[attr-defined]

    async def aclose_connections(self) -> None:
        """Forward to the inner judge's ``aclose_connections`` when it has one."""
        release = getattr(self.inner, "aclose_connections", None)
        if release is not None:
            await release()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.inner!r}, hits={self.hits}, misses={self.misses}, "
            f"calls_saved={self.calls_saved})"
        )


class CachedBatchJudge(CachedJudge):
    """A :class:`CachedJudge` around a :class:`~genrm_rank.judges.base.BatchJudge`.

    ``CachedJudge(batch_judge, ...)`` returns one of these; :meth:`judge_batch` looks every
    request up, sends only the misses (each distinct key once) to the inner ``judge_batch``, and
    stores what comes back.
    """

    inner: BatchJudge

    async def judge_batch(self, requests: Sequence[PairRequest]) -> list[Verdict]:
        """Judge every request; the i-th verdict answers the i-th request."""
        keys = [self.key(r) for r in requests]
        results: list[Verdict | None] = [None] * len(requests)
        owned: dict[str, list[int]] = {}
        waiting: list[tuple[int, asyncio.Future[Verdict | None]]] = []
        for i, key in enumerate(keys):
            if key in owned:  # the same request twice in this batch: send it once
                owned[key].append(i)
                continue
            pending = self._in_flight.get(key)
            if pending is not None:
                waiting.append((i, pending))
                continue
            stored = self.cache.get(key)
            if stored is not None:
                results[i] = self._hit(stored)
                continue
            owned[key] = [i]
            self._claim(key)
        if owned:
            fresh: list[Verdict] | None = None
            try:
                fresh = list(
                    await self.inner.judge_batch(
                        [requests[indices[0]] for indices in owned.values()]
                    )
                )
                if len(fresh) != len(owned):
                    raise RuntimeError(
                        f"{type(self.inner).__name__}.judge_batch returned {len(fresh)} "
                        f"verdicts for {len(owned)} requests."
                    )
                self.cache.put_many(
                    (key, verdict)
                    for key, verdict in zip(owned, fresh, strict=True)
                    if verdict.failure is not FailureKind.UNAVAILABLE
                )
            except BaseException:
                fresh = None
                raise
            finally:
                for n, key in enumerate(owned):
                    self._settle(key, None if fresh is None else fresh[n])
            for (first, *copies), verdict in zip(owned.values(), fresh, strict=True):
                results[first] = verdict
                for i in copies:
                    results[i] = self._hit(verdict)
        for i, pending in waiting:
            shared = await asyncio.shield(pending)
            results[i] = self._hit(shared) if shared is not None else await self.judge(requests[i])
        done: list[Verdict] = []
        for result in results:
            if result is None:  # pragma: no cover - every index is filled above
                raise RuntimeError("CachedJudge.judge_batch left a request without a verdict.")
            done.append(result)
        return done
