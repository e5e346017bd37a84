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

import hashlib
import json
import math
import os
import sqlite3
import time
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any

from genrm_rank.judges.base import PairRequest
from genrm_rank.verdict import Verdict, verdict_from_dict, verdict_to_dict

__all__ = [
    "PROTOCOL_VERSION",
    "SCHEMA_VERSION",
    "VerdictCache",
    "cache_key",
]

PROTOCOL_VERSION = 1
"""Version of the request/answer protocol folded into every :func:`cache_key`.

Bump it when :func:`~genrm_rank.messages.build_messages` or the answer parser changes what a
request means or how an answer is read; every key changes, so no stale verdict is served.
"""

SCHEMA_VERSION = 1
"""Version of the SQLite layout and of the stored verdict JSON; kept in the ``meta`` table."""

# Words that mark a namespace entry as a credential (matched in the lower-cased, '-' -> '_' name).
_SECRET_WORDS = ("api_key", "apikey", "authorization", "password", "secret", "access_token")


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
