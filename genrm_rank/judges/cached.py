"""A judge that answers from a :class:`~genrm_rank.cache.VerdictCache` and pays only on a miss."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, cast

from genrm_rank import validate as check
from genrm_rank.cache import VerdictCache, _canonical_namespace, _key_from_canonical
from genrm_rank.judges.base import BatchJudge, Judge, PairRequest, judge_many
from genrm_rank.verdict import FailureKind, Verdict

__all__ = ["CachedBatchJudge", "CachedJudge"]

_NOT_STORED = frozenset({FailureKind.REJECTED, FailureKind.UNAVAILABLE})
"""Failures that are a server's refusal or silence, not the model's answer: never stored."""


class CachedJudge:
    """A judge that answers from a :class:`VerdictCache` and pays the inner judge only on a miss.

    A hit returns the stored verdict unchanged. A fresh verdict is stored when it is what the
    model said (usable, or a failure of its own output, whose re-ask has its own key); a
    ``rejected`` or ``unavailable`` one, the server's doing, never is. Identical requests in
    flight at once are sent once. When another run sharing the file stored a verdict first
    under the same key, this run *adopts* it (its answer, with the ``attempts`` and ``usage``
    paid here), so both runs agree with the cache. Around a
    :class:`~genrm_rank.judges.base.BatchJudge` the constructor gives a
    :class:`CachedBatchJudge`. ``async with`` enters and exits the inner judge when it is an
    async context manager.

    Parameters
    ----------
    judge : Judge
        The inner judge, available as :attr:`inner`.
    cache : VerdictCache
        Where verdicts are kept; the caller owns it (never closed here).
    namespace : mapping
        What besides the messages changes the answer (:func:`~genrm_rank.cache.cache_key`).

    Attributes
    ----------
    hits, misses : int
        Requests answered without paying (from the cache or a shared call), and sent.
    calls_saved, tokens_saved : int
        Sums of ``attempts`` and of ``total_tokens`` over the hits.
    adopted : int
        Fresh verdicts set aside for the one another run had stored first.
    """

    def __new__(
        cls, judge: Judge, cache: VerdictCache, *, namespace: Mapping[str, Any]
    ) -> CachedJudge:
        if cls is CachedJudge and isinstance(judge, BatchJudge):
            cls = CachedBatchJudge
        return super().__new__(cls)

    def __init__(self, judge: Judge, cache: VerdictCache, *, namespace: Mapping[str, Any]) -> None:
        what = "a Judge (with async judge())"
        check.instance("judge", judge, Judge, what)  # type: ignore[type-abstract]
        check.instance("cache", cache, VerdictCache)
        self._namespace_json = _canonical_namespace(namespace)
        self.inner = judge
        self.cache = cache
        self.hits = 0
        self.misses = 0
        self.calls_saved = 0
        self.tokens_saved = 0
        self.adopted = 0
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

    def _adopt(self, fresh: Verdict, stored: Verdict) -> Verdict:
        """``fresh``, or the verdict stored first under its key, with what ``fresh`` cost."""
        if stored is fresh or stored == fresh:
            return fresh
        self.adopted += 1
        return dataclasses.replace(stored, attempts=fresh.attempts, usage=fresh.usage)

    def call_token_bound(self, request: PairRequest) -> int | None:
        """The inner judge's bound on one call's tokens, which a token cap reserves; ``None``
        when it declares none."""
        bound = getattr(self.inner, "call_token_bound", None)
        return None if bound is None else int(bound(request))

    async def judge(self, request: PairRequest) -> Verdict:
        """The stored verdict for ``request``, or the inner judge's (then stored)."""
        (verdict,) = await self._judge_all([request], self._send_one)
        return verdict

    async def _send_one(self, requests: Sequence[PairRequest]) -> list[Verdict]:
        return [await self.inner.judge(requests[0])]

    async def _judge_all(
        self,
        requests: Sequence[PairRequest],
        send: Callable[[list[PairRequest]], Awaitable[Sequence[Verdict]]],
    ) -> list[Verdict]:
        """Answer each request from the cache or an identical call in flight, else from one
        ``send`` of the misses (each distinct key once), storing what comes back."""
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
            with self.cache.intact():
                stored = self.cache.get(key)
            if stored is not None:
                results[i] = self._hit(stored)
                continue
            owned[key] = [i]
            self.misses += 1
            self._in_flight[key] = asyncio.get_running_loop().create_future()
        if owned:
            fresh: list[Verdict] | None = None
            try:
                fresh = list(await send([requests[indices[0]] for indices in owned.values()]))
                storable = [n for n, v in enumerate(fresh) if v.failure not in _NOT_STORED]
                keys_owned = list(owned)
                with self.cache.intact():
                    held = self.cache._put_first((keys_owned[n], fresh[n]) for n in storable)
                for n, stored in zip(storable, held, strict=True):
                    fresh[n] = self._adopt(fresh[n], stored)
            except BaseException:
                fresh = None
                raise
            finally:
                for n, key in enumerate(owned):
                    future = self._in_flight.pop(key)
                    if not future.done():
                        future.set_result(None if fresh is None else fresh[n])
            for (first, *copies), verdict in zip(owned.values(), fresh, strict=True):
                results[first] = verdict
                for i in copies:
                    results[i] = self._hit(verdict)
        for i, pending in waiting:
            # shield: a cancelled waiter must not cancel the call it shares; one that raised
            # (None) is made again
            shared = await asyncio.shield(pending)
            results[i] = self._hit(shared) if shared is not None else await self.judge(requests[i])
        return cast("list[Verdict]", results)  # every index is filled above

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
    """A :class:`CachedJudge` around a :class:`~genrm_rank.judges.base.BatchJudge`: sends only
    the misses, each distinct key once, to the inner ``judge_batch``."""

    inner: BatchJudge

    async def judge_batch(self, requests: Sequence[PairRequest]) -> list[Verdict]:
        """Judge every request; the i-th verdict answers the i-th request."""
        return await self._judge_all(requests, functools.partial(judge_many, self.inner))
