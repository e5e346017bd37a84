"""Ray Data: rank the rows of a dataset across machines, one runner per actor.

:func:`rank_dataset` is a ``map_batches`` over an actor pool: each actor builds its judge once
(``judge_factory()``: an :class:`~genrm_rank.judges.openai_http.OpenAIJudge` on shared vLLM
endpoints, or a :class:`~genrm_rank.judges.vllm_offline.VLLMOfflineJudge` on its own GPUs) and
runs the one async :class:`~genrm_rank.runner.Runner` over each batch, on an event loop that
lives as long as the actor. Ray schedules the batches, retries a lost actor's tasks and writes
the output.

The verdict cache and resume
----------------------------
SQLite must not be written by several machines at once, so with ``cache_dir`` every actor
writes its **own** file, ``verdicts.<random>.db``, and reads besides one consolidated file,
``verdicts.base.db``, that nobody writes during a run. :func:`rank_dataset` first folds every
per-actor file left by earlier runs (finished or killed: each verdict is committed when paid)
into the base (:func:`consolidate_caches`). An actor holds an exclusive ``flock`` on
``verdicts.<random>.lock`` while it works on a batch, and only files whose lock is free are
folded; the base is never changed in place (a new one is renamed over it), so actors keep
reading the file they opened. A rerun of a killed job with the same ``cache_dir`` recomputes
every row (Ray Data writes its output when consumed) but pays only for verdicts no earlier run
paid for. Call :func:`consolidate_caches` after the last run to leave one file.

Put ``cache_dir`` on a local disk: a :class:`~genrm_rank.cache.VerdictCache` refuses a network
filesystem (SQLite's locks fail there), so an actor given one fails on its first batch. To
carry verdicts between machines, join their files with :func:`~genrm_rank.cache.merge_caches`
(``genrm-rank cache merge``).
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
from genrm_rank.sdg.rows import MAX_CANDIDATES, Row, RowReader, RowSpec
from genrm_rank.spec import RankSpec
from genrm_rank.verdict import Verdict, verdict_from_dict

__all__ = ["BASE_CACHE", "RESULT_COLUMNS", "consolidate_caches", "rank_dataset"]

BASE_CACHE = "verdicts.base.db"
"""The consolidated cache file in a ``cache_dir``, read (never written) by the actors."""

RESULT_COLUMNS = ("best", "order", "status", "calls", "cached", "error", "ranking")
"""Columns :func:`rank_dataset` adds, each under ``result_prefix``: the best candidate's index
(null without one), the candidates best first, the ranking's status (``"invalid"`` for a row that
could not be ranked, ``"failed"`` for one with no ranking), paid and cached judge calls, the
reason there is no best (else null), and the whole ranking as JSON."""

JudgeFactory = Callable[[], Judge]


def _part_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("verdicts.*.db") if p.name != BASE_CACHE)


def _lock_path(part: Path) -> Path:
    """The lock file of a per-actor cache (``verdicts.<id>.db`` -> ``verdicts.<id>.lock``)."""
    return part.with_suffix(".lock")


def _lock(path: Path, *, wait: bool) -> int | None:
    """An open descriptor holding an exclusive ``flock`` on ``path`` (created if absent); without
    ``wait``, ``None`` when another open file holds the lock."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


def _same_file(fd: int, path: Path) -> bool:
    """Whether ``path`` still names the file open as ``fd`` (not removed, not replaced)."""
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def consolidate_caches(cache_dir: str | os.PathLike[str]) -> Path | None:
    """Fold the finished per-actor cache files of ``cache_dir`` into ``verdicts.base.db``.

    Every ``verdicts.<id>.db`` whose writer has finished (closed, or died: its lock is free) is
    copied into a new base file, written beside the old one and renamed over it, and is then
    deleted. A file an actor is still writing (its ``verdicts.<id>.lock`` is held) is left
    as it is, for a later consolidation: nothing is lost while a run goes on. The base is left
    in rollback-journal mode so that actors on any machine can read it read-only.

    Returns
    -------
    Path or None
        The base file, or ``None`` when the folder holds no cache at all.
    """
    folder = Path(cache_dir)
    if not folder.is_dir():
        raise ValueError(f"Argument 'cache_dir' must be an existing folder, not {folder}.")
    base = folder / BASE_CACHE
    guard = _lock(folder / "verdicts.consolidate.lock", wait=True)  # one consolidation at a time
    held: list[tuple[Path, int]] = []
    try:
        for part in _part_files(folder):
            fd = _lock(_lock_path(part), wait=False)
            if fd is not None:  # its writer has finished; a live one keeps its file
                held.append((part, fd))
        if not held:
            return base if base.exists() else None
        _fold(base, [part for part, _ in held])
        for part, _ in held:
            for suffix in ("", "-wal", "-shm"):
                Path(str(part) + suffix).unlink(missing_ok=True)
            _lock_path(part).unlink(missing_ok=True)
    finally:
        for _, fd in held:
            os.close(fd)
        if guard is not None:
            os.close(guard)
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
        conn = sqlite3.connect(fresh, isolation_level=None)
        try:  # read-only readers on any machine need no WAL file beside it
            conn.execute("PRAGMA journal_mode=DELETE")
        finally:
            conn.close()
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
        lock_path = _lock_path(path)
        self._lock: int | None = _lock(lock_path, wait=False)
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
        self.judge_factory = judge_factory
        self.cache_dir = cache_dir
        self.namespace = dict(namespace or {})
        self.spec = spec
        self.columns = dict(columns)
        self.runner_options = dict(runner_options)
        self.prefix = result_prefix
        self.own: Path | None = None
        self.judge: Judge | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    def _setup(self) -> tuple[Judge, asyncio.AbstractEventLoop]:
        # Built on the first batch, in the thread that runs batches (Ray may construct the actor
        # in another; SQLite connections belong to the thread that opened them).
        if self.judge is None or self.loop is None:
            judge = self.judge_factory()
            if not isinstance(judge, Judge):
                raise TypeError(
                    f"Argument 'judge_factory' must return a Judge, not {type(judge).__name__}."
                )
            self.judge, self.loop = judge, asyncio.new_event_loop()
        return self.judge, self.loop

    def _open_cache(self) -> _ShardCache | None:
        """The cache of one batch: the actor's own file, locked for the batch only, so that a
        consolidation between batches (another job's start) may fold it; a new file when one
        did, or is doing so now."""
        if self.cache_dir is None:
            return None
        folder = Path(self.cache_dir)
        base = folder / BASE_CACHE
        if self.own is not None:
            with contextlib.suppress(RuntimeError):
                return _ShardCache(self.own, base if base.exists() else None)
        self.own = folder / f"verdicts.{uuid.uuid4().hex}.db"
        return _ShardCache(self.own, base if base.exists() else None)

    def _prompt(self, row: Mapping[str, Any], index: int) -> PromptInput | str:
        """The row as a prompt, or why it cannot be one (``kind: reason``).

        Read by the pipeline's :class:`~genrm_rank.sdg.rows.RowReader`, so a row it refuses is
        refused here in the same words; a reader per row, since duplicates across batches
        depend on how Ray cut them.
        """
        cols = self.columns
        named = [cols["prompt"], cols["candidates"], cols["id"], cols["principle"]]
        record = {col: _cell(row[col]) for col in named if col is not None and col in row}
        parsed = RowReader(self.rows).parse(index + 1, record)
        if not isinstance(parsed, Row):
            return "empty row" if parsed is None else f"{parsed.kind}: {parsed.reason}"
        return parsed.prompt(None, index, with_id=cols["id"] is not None)

    async def _rank(self, judge: Judge, prompts: Sequence[PromptInput]) -> list[PromptResult]:
        runner = Runner(judge, self.spec, **self.runner_options)
        return [result async for result in runner.run(prompts)]

    def __call__(self, batch: Any) -> Any:
        judge, loop = self._setup()
        cache = self._open_cache()
        try:
            if cache is not None:
                judge = CachedJudge(judge, cache, namespace=self.namespace)
            return self._batch(judge, loop, batch)
        finally:
            if cache is not None:
                cache.close()

    def _batch(self, judge: Judge, loop: asyncio.AbstractEventLoop, batch: Any) -> Any:
        rows = batch.to_dict("records")
        out: list[dict[str, Any]] = [dict.fromkeys(RESULT_COLUMNS) for _ in rows]
        prompts: list[PromptInput] = []
        for i, row in enumerate(rows):
            prompt = self._prompt(row, i)
            if isinstance(prompt, str):
                out[i].update(status="invalid", error=prompt, calls=0, cached=0)
            else:
                prompts.append(prompt)
        for result in loop.run_until_complete(self._rank(judge, prompts)):
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
        Rows with a prompt (a string or a list of chat messages) and a list of candidates.
    spec : RankSpec
        How each row is ranked (the same spec :func:`~genrm_rank.select_best` takes); each row's
        randomness comes from the run seed and its id, as in the SDG pipeline.
    judge_factory : callable
        ``judge_factory() -> Judge``, called once in each actor (it is pickled to the actors,
        so build the judge inside it, never outside).
    actors : int
        Actors in the pool (``ActorPoolStrategy(size=actors)``).
    batch_size : int
        Rows per batch handed to an actor.
    concurrency : int
        Judge requests in flight per actor (the runner's window).
    judge_batch_size : int
        Requests per ``judge_batch`` call (for a :class:`VLLMOfflineJudge`: a few hundred).
    prompt_column, candidates_column, id_column, principle_column : str or None
        Where rows keep their parts (``id_column=None``: the content keys the randomness).
    result_prefix : str
        Prefix of the added columns (:data:`RESULT_COLUMNS`).
    cache_dir : path, optional
        Folder of verdict caches: one file per actor plus a consolidated base (see the module
        docstring); a rerun pays only for what no earlier run paid for.
    cache_namespace : mapping, optional
        The cache namespace (model and sampling settings; no credentials), required with
        ``cache_dir`` (:meth:`VLLMOfflineJudge.namespace` gives one for the offline judge).
    num_cpus, num_gpus : float
        Resources of each actor (``num_gpus`` for an offline vLLM judge).
    max_candidates : int or None
        Most candidates a row may hold (:data:`~genrm_rank.sdg.rows.MAX_CANDIDATES` by
        default; ``None``: no limit); a wider row is ``"invalid"``, refused before anything is
        scheduled, as in the SDG pipeline.
    judge_profile : JudgeProfile or path, optional
        What every row assumes of the judge (:mod:`genrm_rank.judge_profile`). Without one,
        each batch is a run of its own that learns a profile from its first rows
        (:mod:`genrm_rank.runner`), so rows depend on how the dataset is batched; give one
        (``--save-judge-profile`` of a pilot run, say) for rows that do not.

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
    if not isinstance(ds, ray.data.Dataset):
        raise TypeError(f"Argument 'ds' must be a ray.data.Dataset, not {type(ds).__name__}.")
    folder: str | None = None
    namespace: dict[str, Any] | None = None
    if cache_dir is not None:
        if cache_namespace is None:
            raise ValueError(
                "Argument 'cache_namespace' must be given with 'cache_dir' (the model and "
                "sampling settings that key the cache), not None."
            )
        namespace = dict(cache_namespace)
        path = Path(cache_dir)
        path.mkdir(parents=True, exist_ok=True)
        consolidate_caches(path)
        folder = str(path)
    elif cache_namespace is not None:
        raise ValueError("Argument 'cache_namespace' needs 'cache_dir'; pass both or neither.")
    columns = dict(
        prompt=prompt_column, candidates=candidates_column, id=id_column, principle=principle_column
    )
    profile = as_profile(judge_profile)
    runner_options = dict(
        concurrency=concurrency, batch_size=judge_batch_size, judge_profile=profile
    )
    actor_args = (spec, judge_factory, columns, runner_options, folder, namespace, result_prefix)
    return ds.map_batches(
        _RankActor,
        fn_constructor_args=(*actor_args, max_candidates),
        batch_size=batch_size,
        batch_format="pandas",
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_cpus=num_cpus,
        num_gpus=num_gpus,
    )
