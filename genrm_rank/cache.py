"""A persistent verdict cache, so that no judge call is ever paid twice.

:class:`~genrm_rank.judges.cached.CachedJudge` stores every verdict it is given in a
:class:`VerdictCache` (one SQLite file) under :func:`cache_key`; a rerun, or a run resumed after
a crash, is served from the file, verdicts unchanged (same ``attempts`` and ``usage``). Every
:meth:`~VerdictCache.put` is its own committed transaction in WAL mode (``synchronous=NORMAL``):
once it returns the verdict survives a ``kill -9``, at a cost far below any judge's rate
(``benchmarks/README.md``, "Verdict cache writes"). The cache is for one thread, the event
loop's; several processes may share a file on a local disk. A network filesystem is refused
(:func:`network_filesystem`): SQLite's locks and WAL index do not work there, so each shard
keeps its own cache, joined afterwards by :func:`merge_caches`.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import math
import os
import re
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genrm_rank import validate as check
from genrm_rank.errors import ArgumentError, JudgeConfigurationError
from genrm_rank.judges.base import PairRequest
from genrm_rank.verdict import Verdict, verdict_from_dict, verdict_to_dict

_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_FULL = 5, 6, 13


def _is_locked(err: sqlite3.DatabaseError) -> bool:
    """Whether SQLite gave up waiting for another connection's lock (busy or locked)."""
    return (getattr(err, "sqlite_errorcode", 0) & 0xFF) in (_SQLITE_BUSY, _SQLITE_LOCKED)


__all__ = [
    "NETWORK_FILESYSTEMS",
    "PROTOCOL_VERSION",
    "SCHEMA_VERSION",
    "MergeReport",
    "VerdictCache",
    "cache_key",
    "merge_caches",
    "network_filesystem",
]

PROTOCOL_VERSION = 1
"""Version of the request/answer protocol folded into every :func:`cache_key`: bump it when
message building or answer parsing changes meaning, so that no stale verdict is served."""

SCHEMA_VERSION = 1
"""Version of the SQLite layout and of the stored verdict JSON; kept in the ``meta`` table."""

# Words that mark a namespace entry as a credential (matched in the lower-cased, '-' -> '_' name).
_SECRET_WORDS = ("api_key", "apikey", "authorization", "password", "secret", "access_token")


def _dumps_verdict(verdict: Verdict) -> str:
    # ensure_ascii: a lone surrogate from a server cannot be stored as UTF-8 text; escaped it can
    return json.dumps(verdict_to_dict(verdict), ensure_ascii=True, separators=(",", ":"))


def _loads_verdict(blob: str) -> Verdict:
    # An older cache may hold a server's impossible usage (negative tokens): read as unknown.
    data = json.loads(blob)
    try:
        return verdict_from_dict(data)
    except ValueError:
        if not isinstance(data, dict) or data.get("usage") is None:
            raise
        return verdict_from_dict({**data, "usage": None})


def _check_no_secrets(value: Any, where: str) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(
                    f"Argument '{where}' must have string keys, not {type(key).__name__} {key!r}."
                )
            name = key.lower().replace("-", "_")
            if name == "token" or any(word in name for word in _SECRET_WORDS):
                raise ArgumentError(
                    where,
                    f"must not hold credentials, not the key {key!r}; build "
                    "the namespace from the model and sampling settings only.",
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
    check.mapping("namespace", namespace)
    _check_no_secrets(namespace, "namespace")
    try:
        return _canonical(dict(namespace))
    except (TypeError, ValueError) as err:
        raise type(err)(
            f"Argument 'namespace' must hold only finite JSON values (str, int, float, bool, "
            f"None, lists, dicts), not {namespace!r}: {err}."
        ) from None


def _key_from_canonical(namespace_json: str, request: PairRequest) -> str:
    check.instance("request", request, PairRequest)
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

    Hashes canonical JSON of :data:`PROTOCOL_VERSION`, the namespace, ``request.messages()``,
    ``request.sample`` and ``request.attempt``; not the prompt id nor the candidates' indices and
    ids: the same messages are the same judgement.

    Parameters
    ----------
    namespace : mapping
        Everything besides the messages that changes the answer: the model, the sampling
        parameters, any extra request body. JSON values only; a key naming a credential (API
        key, token, password, secret) raises ``ValueError``.
    request : PairRequest

    >>> from genrm_rank.judges.base import PairRequest
    >>> request = PairRequest("Capital of France?", "Paris.", "Lyon.")
    >>> key = cache_key({"model": "genrm", "temperature": 0.6}, request)
    >>> len(key), key == cache_key({"temperature": 0.6, "model": "genrm"}, request)
    (64, True)
    """
    return _key_from_canonical(_canonical_namespace(namespace), request)


NETWORK_FILESYSTEMS = frozenset(
    (
        "9p afs beegfs ceph cifs fuse.ceph fuse.gcsfuse fuse.glusterfs fuse.rclone fuse.s3fs "
        "fuse.sshfs glusterfs gpfs lustre ncpfs nfs nfs4 orangefs panfs pvfs2 smb3 smbfs sshfs "
        "wekafs"
    ).split()
)
"""Filesystem types (as ``/proc/mounts`` names them) on which SQLite's locks and WAL mode fail."""


def _unescape_mount(field: str) -> str:
    """A path as ``/proc/mounts`` escapes it (a space as ``\\040``), unescaped."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), field)


def network_filesystem(
    path: str | os.PathLike[str], *, mounts: str | os.PathLike[str] = "/proc/mounts"
) -> tuple[str, str] | None:
    """The network filesystem a path lies on, as ``(fstype, mount_point)``, or ``None``.

    The real path is matched against the longest mount point in ``mounts`` (a file in the
    format of ``/proc/mounts``); ``None`` also when ``mounts`` cannot be read.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.NamedTemporaryFile("w", suffix=".mounts", delete=False) as f:
    ...     _ = f.write("server:/home /home nfs4 rw 0 0\\n/dev/sda1 / ext4 rw 0 0\\n")
    >>> network_filesystem("/home/me/cache.db", mounts=f.name)
    ('nfs4', '/home')
    >>> network_filesystem("/tmp/cache.db", mounts=f.name) is None
    True
    """
    try:
        text = Path(mounts).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    target = os.path.realpath(os.fspath(path))
    rows = [line.split() for line in text.splitlines()]
    points = [(row[2].lower(), _unescape_mount(row[1])) for row in rows if len(row) >= 3]
    inside = [m for m in points if target == m[1] or target.startswith(m[1].rstrip("/") + "/")]
    best = max(inside, key=lambda m: len(m[1]), default=None)  # the longest mount point
    return best if best is not None and best[0] in NETWORK_FILESYSTEMS else None


_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS verdicts "
    "(key TEXT PRIMARY KEY, verdict TEXT NOT NULL, created REAL)",
)
# INSERT OR IGNORE: the first verdict stored for a key wins (see VerdictCache.put).
_PUT = "INSERT OR IGNORE INTO verdicts (key, verdict, created) VALUES (?, ?, ?)"
_GET = "SELECT verdict FROM verdicts WHERE key = ?"


@contextlib.contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """One ``BEGIN IMMEDIATE`` transaction: committed, or rolled back on any exception."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):  # SQLite may have rolled back itself
            conn.execute("ROLLBACK")
        raise


def _check_key(key: object) -> str:
    if not isinstance(key, str):
        raise TypeError(f"Argument 'key' must be a string, not {type(key).__name__}.")
    return key


class VerdictCache:
    """Verdicts by key in one SQLite file (WAL mode), committed as they are put.

    Parameters
    ----------
    path : str or os.PathLike
        The database file, created if absent; ``":memory:"`` lives as long as the object.
    timeout : float
        Seconds a write waits for another process's write (SQLite's busy timeout).
    mounts : str or os.PathLike
        The mount table read by :func:`network_filesystem`; a path on a network filesystem
        raises ``ValueError``.

    Attributes
    ----------
    hits, misses : int
        :meth:`get` calls that found / did not find a verdict.
    journal_mode : str
        ``"wal"``, or ``"memory"`` for ``":memory:"``.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        timeout: float = 30.0,
        mounts: str | os.PathLike[str] = "/proc/mounts",
    ) -> None:
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(
                f"Argument 'path' must be a str or os.PathLike, not {type(path).__name__}."
            )
        if not (isinstance(timeout, (int, float)) and math.isfinite(timeout) and timeout >= 0):
            raise ArgumentError("timeout", f"must be a finite number >= 0, not {timeout!r}.")
        self.path = os.fspath(path)
        if self.path != ":memory:":
            remote = network_filesystem(self.path, mounts=mounts)
            if remote is not None:
                raise ArgumentError(
                    "path",
                    f"must be on a local filesystem, not {self.path!r} on "
                    f"{remote[0]} (mounted at {remote[1]}): SQLite's locks and WAL mode do not "
                    "work on a network filesystem, so a cache there can be corrupted. Give each "
                    "job or shard its own cache on a local disk (e.g. under $TMPDIR) and join "
                    "them afterwards with merge_caches (genrm-rank cache merge).",
                )
        self.hits = 0
        self.misses = 0
        # isolation_level=None: no implicit transactions (see _transaction)
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
            with _transaction(conn):
                for statement in _SCHEMA:
                    conn.execute(statement)
                set_meta = "INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)"
                if conn.execute(set_meta, ("schema_version", str(SCHEMA_VERSION))).rowcount:
                    conn.execute(set_meta, ("protocol_version", str(PROTOCOL_VERSION)))
                row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        except sqlite3.DatabaseError as err:
            if _is_locked(err):
                raise
            raise ArgumentError(
                "path", f"must be a verdict cache or a new file, not {self.path!r} ({err})."
            ) from err
        if row[0] != str(SCHEMA_VERSION):
            raise ArgumentError(
                "path",
                f"holds a verdict cache of schema version {row[0]}; this "
                f"genrm_rank reads version {SCHEMA_VERSION}: {self.path!r}.",
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

    @contextlib.contextmanager
    def intact(self) -> Iterator[None]:
        """Reads and writes of a run: a damaged file (found when a page is read), or one another
        process keeps locked past the busy timeout, ends the run with a clear
        :class:`~genrm_rank.errors.JudgeConfigurationError` naming it."""
        try:
            yield
        except sqlite3.DatabaseError as err:
            if _is_locked(err):
                raise JudgeConfigurationError(
                    f"The verdict cache {self.path!r} stayed locked by another process past its "
                    f"timeout ({err}): a 'cache merge' into it, say; run again once it is done."
                ) from err
            if isinstance(err, sqlite3.OperationalError):  # I/O, full: not the file's content
                raise
            raise JudgeConfigurationError(
                f"The verdict cache {self.path!r} is damaged ({err}); move it aside and run "
                "again with a new cache, which pays for its verdicts anew."
            ) from err

    def get(self, key: str) -> Verdict | None:
        """The verdict stored under ``key``, or ``None``; counts a hit or a miss."""
        row = self._connection().execute(_GET, (_check_key(key),)).fetchone()
        if row is None:
            self.misses += 1
            return None
        self.hits += 1
        return _loads_verdict(row[0])

    def __contains__(self, key: object) -> bool:
        """Whether ``key`` is stored (not counted as a hit or a miss)."""
        if not isinstance(key, str):
            return False
        row = self._connection().execute("SELECT 1 FROM verdicts WHERE key = ?", (key,)).fetchone()
        return row is not None

    def put(self, key: str, verdict: Verdict) -> Verdict:
        """Store ``verdict`` under ``key``, committed before this returns; the verdict now stored.

        The first verdict stored for a key wins: one stored first (by another run, say) is kept
        and returned, for the caller to adopt.
        """
        return self._put_first([(key, verdict)])[0]

    def put_many(self, items: Iterable[tuple[str, Verdict]]) -> int:
        """Store many ``(key, verdict)`` pairs in one committed transaction, the first verdict
        of a key winning as in :meth:`put`; returns how many pairs were given."""
        return len(self._put_first(items))

    def _put_first(self, items: Iterable[tuple[str, Verdict]]) -> list[Verdict]:
        """Insert the pairs not yet held in one transaction; the verdict stored under each key."""
        now = time.time()
        rows = [(_check_key(key), verdict, _dumps_verdict(verdict)) for key, verdict in items]
        if not rows:
            return []
        conn = self._connection()
        stored: list[Verdict] = []
        try:
            with _transaction(conn):
                for key, verdict, blob in rows:
                    if conn.execute(_PUT, (key, blob, now)).rowcount:
                        stored.append(verdict)
                        continue
                    (held,) = conn.execute(_GET, (key,)).fetchone()
                    stored.append(verdict if held == blob else _loads_verdict(held))
        except sqlite3.OperationalError as err:
            if getattr(err, "sqlite_errorcode", None) == _SQLITE_FULL or "is full" in str(err):
                # an OSError as the output's would be: the run stops, resumably
                raise OSError(
                    errno.ENOSPC, f"no space left to store verdicts ({err})", os.fspath(self.path)
                ) from err
            raise
        return stored

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

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"VerdictCache({self.path!r}, {state}, hits={self.hits}, misses={self.misses})"


@dataclass(frozen=True)
class MergeReport:
    """What :func:`merge_caches` did.

    Attributes
    ----------
    output : str
        The cache merged into.
    inputs : tuple of str
        The caches read, in order.
    read, added, total : int
        Verdicts read from the inputs, new to the output, and in the output afterwards.
    duplicates, conflicts : int
        Keys already held with the same verdict, and with a different one (the first kept).
    """

    output: str
    inputs: tuple[str, ...]
    read: int
    added: int
    duplicates: int
    conflicts: int
    total: int


def _check_input(path: str) -> None:
    """Raise unless ``path`` is a whole cache of this schema and protocol (read-only)."""
    if not os.path.isfile(path):
        raise ArgumentError("inputs", f"must name existing cache files, not {path!r}.")
    uri = Path(path).resolve().as_uri() + "?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True)
        try:
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            conn.execute("SELECT key, verdict, created FROM verdicts LIMIT 1").fetchall()
            # every page read before anything is written: a corrupt input fails here, not half-way
            problems = [str(r[0]) for r in conn.execute("PRAGMA quick_check(3)").fetchall()]
        finally:
            conn.close()
    except sqlite3.DatabaseError as err:
        raise ArgumentError("inputs", f"must name verdict caches, not {path!r} ({err}).") from None
    if problems != ["ok"]:
        raise ArgumentError(
            "inputs",
            f"holds a corrupt cache, {path!r} (SQLite's quick_check: "
            f"{'; '.join(problems)}); nothing was merged.",
        )
    # caches written before the protocol was recorded are of protocol 1
    schema, protocol = meta.get("schema_version"), meta.get("protocol_version", "1")
    if schema != str(SCHEMA_VERSION) or protocol != str(PROTOCOL_VERSION):
        raise ArgumentError(
            "inputs",
            f"holds {path!r}, a cache of schema version {schema} and "
            f"protocol version {protocol}; this genrm_rank writes schema {SCHEMA_VERSION}, "
            f"protocol {PROTOCOL_VERSION}, and does not mix them.",
        )


def merge_caches(
    output: str | os.PathLike[str],
    inputs: Sequence[str | os.PathLike[str]],
    *,
    mounts: str | os.PathLike[str] = "/proc/mounts",
) -> MergeReport:
    """Merge verdict caches (one per shard, say) into one; the first verdict of a key wins.

    Every input must be of this :data:`SCHEMA_VERSION` and :data:`PROTOCOL_VERSION` (checked
    before anything is written). The output (created if absent) keeps its own verdicts first,
    then each input's in order; a key held with a different verdict is a conflict, counted.
    Each input is merged in one transaction, so merging again after a failure is safe.

    Parameters
    ----------
    output : str or os.PathLike
        The cache to merge into (a :class:`VerdictCache` path).
    inputs : sequence of str or os.PathLike
        The caches to read; none may be the output itself.
    mounts : str or os.PathLike
        The mount table checked for ``output`` (:func:`network_filesystem`).

    Returns
    -------
    MergeReport
    """
    if isinstance(inputs, (str, os.PathLike)) or not isinstance(inputs, Sequence):
        raise TypeError(
            f"Argument 'inputs' must be a sequence of paths, not {type(inputs).__name__}."
        )
    if len(inputs) == 0:
        raise ArgumentError("inputs", "must name at least one cache, not none.")
    paths = [os.fspath(p) for p in inputs]
    out_path = os.fspath(output)
    out_real = os.path.realpath(out_path)
    for path in paths:
        if os.path.realpath(path) == out_real:
            raise ArgumentError("inputs", f"must not include the output {out_path!r}.")
    for path in paths:
        _check_input(path)
    counts = [0, 0, 0, 0]
    created = not os.path.exists(out_path)
    try:
        with VerdictCache(out_path, mounts=mounts) as cache:
            conn = cache._connection()
            for path in paths:  # one at a time: SQLite attaches at most 10 files at once
                try:
                    counts = [c + d for c, d in zip(counts, _merge_one(conn, path), strict=True)]
                except sqlite3.DatabaseError as err:
                    raise ArgumentError(
                        "inputs",
                        f"holds a cache that cannot be read whole, {path!r} "
                        f"({err}); its verdicts were not merged.",
                    ) from None
            total = len(cache)
    except BaseException:
        if created:  # leave no output behind rather than an empty or partial one
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(out_path + suffix).unlink(missing_ok=True)
        raise
    read, added, duplicates, conflicts = counts
    return MergeReport(out_path, tuple(paths), read, added, duplicates, conflicts, total)


def _merge_one(conn: sqlite3.Connection, path: str) -> tuple[int, int, int, int]:
    """Insert one input's new verdicts in one transaction: (read, added, same, different)."""
    conn.execute("ATTACH DATABASE ? AS source", (path,))
    try:
        with _transaction(conn):
            n, same, differ = conn.execute(
                "SELECT COUNT(*), COALESCE(SUM(m.verdict = s.verdict), 0), "
                "COALESCE(SUM(m.verdict != s.verdict), 0) FROM source.verdicts AS s "
                "LEFT JOIN main.verdicts AS m ON m.key = s.key"
            ).fetchone()
            inserted = conn.execute(
                "INSERT OR IGNORE INTO main.verdicts (key, verdict, created) "
                "SELECT key, verdict, created FROM source.verdicts"
            ).rowcount
    finally:
        conn.execute("DETACH DATABASE source")
    return int(n), int(inserted), int(same), int(differ)
