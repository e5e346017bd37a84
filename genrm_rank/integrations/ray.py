"""Ray Data: rank the rows of a dataset across machines, one runner per actor.

:func:`rank_dataset` is a ``map_batches`` over an actor pool: each actor builds its judge once
(``judge_factory()``) and runs the :class:`~genrm_rank.runner.Runner` over each batch on an
event loop that lives as long as the actor; Ray schedules, retries and writes.

With ``cache_dir``, every actor writes its own SQLite file ``verdicts.<random>.db`` (locked by
``verdicts.<random>.lock`` while it works on a batch) and reads one consolidated
``verdicts.base.db`` that nobody writes during a run. A run first folds the files of earlier
runs, finished or killed, into a new base renamed over the old (:func:`consolidate_caches`),
so a rerun of a killed job pays only for verdicts no earlier run paid for. Put ``cache_dir``
on a local disk (:class:`~genrm_rank.cache.VerdictCache` refuses a network filesystem); join
the files of several machines with :func:`~genrm_rank.cache.merge_caches`.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import shutil
import sqlite3
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from genrm_rank import validate as check
from genrm_rank.cache import VerdictCache, merge_caches
from genrm_rank.judge_profile import ProfileLike, as_profile
from genrm_rank.judges.base import Judge
from genrm_rank.judges.cached import CachedJudge
from genrm_rank.runner import PromptInput, PromptResult, Runner
from genrm_rank.sdg.output import open_locked
from genrm_rank.sdg.rows import MAX_CANDIDATES, Row, RowReader, RowSpec
from genrm_rank.spec import RankSpec
from genrm_rank.verdict import Verdict, verdict_from_dict

__all__ = ["BASE_CACHE", "RESULT_COLUMNS", "consolidate_caches", "rank_dataset"]

BASE_CACHE = "verdicts.base.db"
"""The consolidated cache file in a ``cache_dir``, read (never written) by the actors."""

RESULT_COLUMNS = ("best", "order", "status", "calls", "cached", "error", "ranking")
"""Columns :func:`rank_dataset` adds under ``result_prefix``; ``status`` is the ranking's, or
``"invalid"`` (a row refused) or ``"failed"`` (no ranking), and ``error`` says why no best."""

JudgeFactory = Callable[[], Judge]


def _lock(path: Path) -> int | None:
    """``path`` opened (created if absent) and locked; ``None`` while another file holds it."""
    try:
        return open_locked(path, os.O_RDWR | os.O_CREAT, BlockingIOError())
    except BlockingIOError:
        return None


def _same_file(fd: int, path: Path) -> bool:
    """Whether ``path`` still names the file open as ``fd`` (not removed, not replaced)."""
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def consolidate_caches(cache_dir: str | os.PathLike[str]) -> Path | None:
    """Fold the per-actor cache files of ``cache_dir`` whose writer closed or died into a new
    ``verdicts.base.db``, and delete them; a file still being written is left for later.
    Returns the base, or ``None`` when the folder holds no cache at all."""
    folder = Path(cache_dir)
    if not folder.is_dir():
        raise ValueError(f"Argument 'cache_dir' must be an existing folder, not {folder}.")
    base = folder / BASE_CACHE
    guard = os.open(folder / "verdicts.consolidate.lock", os.O_RDWR | os.O_CREAT, 0o644)
    held: dict[Path, int] = {}
    try:
        fcntl.flock(guard, fcntl.LOCK_EX)  # one consolidation at a time
        for part in sorted(folder.glob("verdicts.*.db")):
            if part != base and (fd := _lock(part.with_suffix(".lock"))) is not None:
                held[part] = fd  # its writer has finished; a live one keeps its file
        if not held:
            return base if base.exists() else None
        _fold(base, list(held))
        for part in held:
            for name in (part.name, f"{part.name}-wal", f"{part.name}-shm", f"{part.stem}.lock"):
                (folder / name).unlink(missing_ok=True)
    finally:
        for fd in (*held.values(), guard):
            os.close(fd)
    return base


def _fold(base: Path, parts: list[Path]) -> None:
    """Write a new base holding the old base and ``parts``, then rename it over the old one."""
    fresh = base.with_name(f"{BASE_CACHE}.{uuid.uuid4().hex}.tmp")
    try:
        if base.exists():
            shutil.copyfile(base, fresh)
        for part in parts:
            VerdictCache(part).close()  # recovers a killed writer's log, checks the schema
        merge_caches(fresh, parts)
        with contextlib.closing(sqlite3.connect(fresh, isolation_level=None)) as conn:
            conn.execute("PRAGMA journal_mode=DELETE")  # read-only readers need no WAL file
        with open(fresh, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(fresh, base)
    finally:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(str(fresh) + suffix).unlink(missing_ok=True)


class _ShardCache(VerdictCache):
    """An actor's own cache file, with a read-only consolidated base behind it."""

    def __init__(self, path: Path, base: Path | None) -> None:
        # Locked before the file exists, held until closed: consolidate_caches leaves it alone.
        lock_path = path.with_suffix(".lock")
        self._lock = _lock(lock_path)
        if self._lock is not None and not _same_file(self._lock, lock_path):
            os.close(self._lock)  # a consolidation removed the lock file we had opened
            self._lock = None
        if self._lock is None:
            raise RuntimeError(f"The cache {path} is held by another writer.")
        try:
            super().__init__(path)
        except BaseException:
            os.close(self._lock)
            raise
        self._base = (
            None if base is None else sqlite3.connect(f"file:{base}?mode=ro&immutable=1", uri=True)
        )

    def get(self, key: str) -> Verdict | None:
        own = super().get(key)
        if own is not None or self._base is None:
            return own
        row = self._base.execute("SELECT verdict FROM verdicts WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        self.misses -= 1
        self.hits += 1
        return verdict_from_dict(json.loads(row[0]))

    def close(self) -> None:
        if self._base is not None:
            self._base.close()
            self._base = None
        super().close()
        if self._lock is not None:  # after the last commit: the file may now be consolidated
            os.close(self._lock)
            self._lock = None


def _cell(value: Any) -> Any:
    """A dataset cell as plain Python (numpy arrays of a pandas batch become lists)."""
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        value = value.tolist()
    if isinstance(value, list):
        return [_cell(v) for v in value]
    if isinstance(value, dict):
        return {k: _cell(v) for k, v in value.items()}
    return value


class _RankActor:
    """One actor of the pool: a judge, optionally a cache, and an event loop for its life."""

    def __init__(
        self,
        spec: RankSpec,
        judge_factory: JudgeFactory,
        columns: Mapping[str, str | None],
        runner_options: Mapping[str, Any],
        cache_dir: str | None,
        namespace: Mapping[str, Any] | None,
        result_prefix: str,
        max_candidates: int | None = MAX_CANDIDATES,
    ) -> None:
        self.rows = RowSpec(
            id_field=columns["id"] or "id",
            prompt_fields=(str(columns["prompt"]),),
            candidates_field=str(columns["candidates"]),
            principle_field=columns["principle"] or "principle",
            max_candidates=max_candidates,
            id_from_line=columns["id"] is None,
        )
        self.spec, self.judge_factory, self.columns = spec, judge_factory, dict(columns)
        self.runner_options, self.namespace = dict(runner_options), dict(namespace or {})
        self.cache_dir, self.prefix = cache_dir, result_prefix
        self.own: Path | None = None
        self.judged: tuple[Judge, asyncio.AbstractEventLoop] | None = None

    def _open_cache(self) -> _ShardCache | None:
        """The cache of one batch: the actor's own file, locked for the batch only (so that a
        consolidation between batches may fold it); a new file when one did, or is doing so."""
        if self.cache_dir is None:
            return None
        folder = Path(self.cache_dir)
        base = folder / BASE_CACHE if (folder / BASE_CACHE).exists() else None
        if self.own is not None:
            with contextlib.suppress(RuntimeError):
                return _ShardCache(self.own, base)
        self.own = folder / f"verdicts.{uuid.uuid4().hex}.db"
        return _ShardCache(self.own, base)

    def _prompt(self, row: Mapping[str, Any], index: int) -> PromptInput | str:
        """The row as a prompt, or why the pipeline's row reader refuses it (``kind: reason``);
        a reader per row, since duplicates across batches depend on how Ray cut them."""
        named = [self.columns[part] for part in ("prompt", "candidates", "id", "principle")]
        record = {col: _cell(row[col]) for col in named if col is not None and col in row}
        parsed = RowReader(self.rows).parse(index + 1, record)
        if not isinstance(parsed, Row):
            return "empty row" if parsed is None else f"{parsed.kind}: {parsed.reason}"
        return parsed.prompt(None, index, with_id=self.columns["id"] is not None)

    async def _rank(self, judge: Judge, prompts: Sequence[PromptInput]) -> list[PromptResult]:
        return [
            result async for result in Runner(judge, self.spec, **self.runner_options).run(prompts)
        ]

    def __call__(self, batch: Any) -> Any:
        # The judge is built on the first batch, in the thread that runs batches (Ray may
        # construct the actor in another; SQLite connections belong to their thread).
        if self.judged is None:
            judge = self.judge_factory()
            if not isinstance(judge, Judge):
                raise TypeError(
                    f"Argument 'judge_factory' must return a Judge, not {type(judge).__name__}."
                )
            self.judged = judge, asyncio.new_event_loop()
        judge, loop = self.judged
        rows = batch.to_dict("records")
        out: list[dict[str, Any]] = [dict.fromkeys(RESULT_COLUMNS) for _ in rows]
        prompts: list[PromptInput] = []
        for i, row in enumerate(rows):
            prompt = self._prompt(row, i)
            if isinstance(prompt, str):
                out[i].update(status="invalid", error=prompt, calls=0, cached=0)
            else:
                prompts.append(prompt)
        cache = self._open_cache()
        try:
            if cache is not None:
                judge = CachedJudge(judge, cache, namespace=self.namespace)
            results = loop.run_until_complete(self._rank(judge, prompts))
        finally:
            if cache is not None:
                cache.close()
        for result in results:
            ranking, cells = result.ranking, out[result.prompt.key]
            if ranking is None:
                error = f"{result.error_kind}: {result.error}"
                cells.update(status="failed", calls=0, cached=0, error=error)
                continue
            cells.update(
                best=ranking.best,
                order=list(ranking.order),
                status=ranking.status,
                calls=ranking.calls,
                cached=ranking.cached,
                error="no usable verdict" if ranking.best is None else None,
                ranking=json.dumps(ranking.to_dict(), allow_nan=False),
            )
        result_batch = batch.copy()
        for name in RESULT_COLUMNS:
            result_batch[self.prefix + name] = [cells[name] for cells in out]
        result_batch[self.prefix + "best"] = result_batch[self.prefix + "best"].astype("Int64")
        return result_batch


def rank_dataset(
    ds: Any,
    *,
    spec: RankSpec,
    judge_factory: JudgeFactory,
    actors: int = 2,
    batch_size: int = 256,
    concurrency: int = 64,
    judge_batch_size: int = 1,
    prompt_column: str = "prompt",
    candidates_column: str = "candidates",
    id_column: str | None = "id",
    principle_column: str | None = None,
    result_prefix: str = "genrm_",
    cache_dir: str | os.PathLike[str] | None = None,
    cache_namespace: Mapping[str, Any] | None = None,
    num_cpus: float = 1.0,
    num_gpus: float = 0.0,
    max_candidates: int | None = MAX_CANDIDATES,
    judge_profile: ProfileLike | None = None,
) -> Any:
    """Rank every row of a Ray dataset; returns the dataset with the ranking columns.

    Parameters
    ----------
    ds : ray.data.Dataset
        Rows with a prompt (a string or chat messages) and a list of candidates.
    spec : RankSpec
        How each row is ranked (as for :func:`~genrm_rank.select_best`).
    judge_factory : callable
        ``judge_factory() -> Judge``, called once in each actor (build the judge inside it).
    actors, batch_size, num_cpus, num_gpus
        The pool's actors, the rows of a batch, and each actor's resources.
    concurrency, judge_batch_size : int
        Per actor, as for :class:`~genrm_rank.runner.Runner` (``batch_size``).
    prompt_column, candidates_column, id_column, principle_column : str or None
        Where rows keep their parts (``id_column=None``: the content keys the randomness).
    result_prefix : str
        Prefix of the added columns (:data:`RESULT_COLUMNS`).
    cache_dir, cache_namespace : path and mapping, optional
        Folder of verdict caches (see the module docstring), and their namespace.
    max_candidates : int or None
        As for :class:`~genrm_rank.sdg.rows.RowSpec`; a wider row is ``"invalid"``.
    judge_profile : JudgeProfile or path, optional
        What every row assumes of the judge; without one, each batch learns its own, so rows
        depend on how the dataset is batched.

    Returns
    -------
    ray.data.Dataset
        The rows with the added columns, lazily (consume or write it to run).
    """
    try:
        import ray.data
    except ImportError as exc:
        raise ImportError("rank_dataset needs Ray Data: pip install 'genrm-rank[ray]'.") from exc

    check.instance("spec", spec, RankSpec)
    if not callable(judge_factory):
        raise TypeError(
            f"Argument 'judge_factory' must be a callable returning a Judge, not "
            f"{type(judge_factory).__name__}."
        )
    check.count("max_candidates", max_candidates, 2, optional=True)
    check.count("actors", actors, 1)
    check.count("batch_size", batch_size, 1)
    check.count("concurrency", concurrency, 1)
    check.count("judge_batch_size", judge_batch_size, 1)
    check.instance("ds", ds, ray.data.Dataset, "a ray.data.Dataset")
    if cache_dir is not None and cache_namespace is None:
        raise ValueError(
            "Argument 'cache_namespace' must be given with 'cache_dir' (the model and "
            "sampling settings that key the cache), not None."
        )
    if cache_dir is None and cache_namespace is not None:
        raise ValueError("Argument 'cache_namespace' needs 'cache_dir'; pass both or neither.")
    if cache_dir is not None:
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        consolidate_caches(cache_dir)
    columns = dict(
        prompt=prompt_column, candidates=candidates_column, id=id_column, principle=principle_column
    )
    profile = as_profile(judge_profile)
    options = dict(concurrency=concurrency, batch_size=judge_batch_size, judge_profile=profile)
    folder = None if cache_dir is None else os.fspath(cache_dir)
    actor = (spec, judge_factory, columns, options, folder, cache_namespace, result_prefix)
    return ds.map_batches(
        _RankActor,
        fn_constructor_args=(*actor, max_candidates),
        batch_size=batch_size,
        batch_format="pandas",
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_cpus=num_cpus,
        num_gpus=num_gpus,
    )
