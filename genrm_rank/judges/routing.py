"""Endpoint routing for HTTP judges: least outstanding requests with prefix affinity.

Every comparison of one prompt shares its conversation as a prefix, which a vLLM replica can
serve from its prefix cache: the comparisons of one prompt
(:meth:`~genrm_rank.judges.base.PairRequest.prefix_key`) go to one replica, chosen by rendezvous
hashing, and spill over when it is much busier than the least loaded one (the rule of NVIDIA's
vLLM load balancer, NeMo-RL ``tools/external_gym_vllm/vllm_pool_lb.py``). :func:`choose_endpoint`
is the pure rule; :class:`EndpointPool` holds the state around it (loads, limits, health,
counters, a rate limiter), and creates no asyncio object before it is used (``docs/deployment.md``,
"Prefix affinity, vLLM data-parallel, and load balancers").

References
----------
Thaler & Ravishankar, "Using name-based mappings to increase hit rates", IEEE/ACM Transactions
on Networking 6(1), 1998 (rendezvous hashing).
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass, fields

from aiolimiter import AsyncLimiter

from genrm_rank import validate as check
from genrm_rank.errors import GenRMRankError
from genrm_rank.judges.settings import ROUTING_POLICIES, Health, Limits, Routing, RoutingPolicy

__all__ = [
    "ROUTING_POLICIES",
    "EndpointPool",
    "EndpointStats",
    "NoHealthyEndpointError",
    "RouteChoice",
    "RoutingPolicy",
    "choose_endpoint",
    "rendezvous_rank",
]


class NoHealthyEndpointError(GenRMRankError):
    """No healthy endpoint is left (:meth:`EndpointPool.acquire`); the judge waits for a
    recovery, then raises :class:`~genrm_rank.errors.EndpointsUnavailableError`."""


def _weight(key: str, name: str) -> int:
    digest = hashlib.blake2b(f"{key}\x00{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def rendezvous_rank(key: str, names: Sequence[str]) -> list[int]:
    """Indices of ``names`` from most to least preferred for ``key`` (rendezvous hashing:
    removing an endpoint moves only the keys that preferred it).

    >>> rendezvous_rank("prompt-1", ["a", "b"]) in ([0, 1], [1, 0])
    True
    """
    weights = [_weight(key, name) for name in names]
    return sorted(range(len(names)), key=lambda i: weights[i], reverse=True)


@dataclass(frozen=True)
class RouteChoice:
    """Where one request goes (``index``), its key's preferred endpoint among the healthy ones
    (``None`` without a key), and whether it ``spilled`` from there (too busy or full)."""

    index: int
    preferred: int | None
    spilled: bool

    @property
    def affine(self) -> bool:
        """Whether the request went to its preferred endpoint."""
        return self.preferred is not None and self.index == self.preferred


def _candidates(
    healthy: Sequence[bool], exclude: frozenset[int] | set[int]
) -> tuple[list[int], list[int]]:
    """The healthy endpoints, and those not excluded (all healthy ones when every one is)."""
    candidates = [i for i, ok in enumerate(healthy) if ok]
    if not candidates:
        raise NoHealthyEndpointError("no healthy endpoint")
    return candidates, [i for i in candidates if i not in exclude] or candidates


def choose_endpoint(
    loads: Sequence[int],
    healthy: Sequence[bool],
    *,
    names: Sequence[str] | None = None,
    key: str | None = None,
    limits: Sequence[int] | None = None,
    exclude: frozenset[int] | set[int] = frozenset(),
    spill_factor: float = 2.0,
    spill_offset: float = 10.0,
    tie_breaker: int = 0,
) -> RouteChoice | None:
    """Choose an endpoint: prefix affinity with spill-over, else least outstanding requests.

    Parameters
    ----------
    loads, healthy : sequence
        Requests in flight on each endpoint, and whether each is in rotation.
    names : sequence of str, optional
        Stable endpoint names (URLs) for rendezvous hashing; required with ``key``.
    key : str, optional
        The affinity key (a prompt's prefix key); ``None`` routes by load only.
    limits : sequence of int, optional
        Per-endpoint in-flight limits; a full endpoint is never chosen.
    exclude : set of int
        Endpoints not to use (the one that just failed), unless they are the only healthy ones.
    spill_factor, spill_offset : float
        Leave the preferred endpoint when ``load[preferred] > spill_factor * least +
        spill_offset`` (:class:`~genrm_rank.judges.settings.Routing`).
    tie_breaker : int
        Rotates the choice among equally loaded endpoints (pass a counter).

    Returns
    -------
    RouteChoice or None
        ``None`` when every healthy endpoint is full.

    Raises
    ------
    NoHealthyEndpointError
        No endpoint is healthy.

    Examples
    --------
    >>> choose_endpoint([3, 1, 2], [True, True, True]).index
    1
    >>> choose_endpoint([3, 1, 2], [True, False, True]).index
    2
    """
    n = len(loads)
    if len(healthy) != n:
        raise ValueError(
            "Arguments 'loads' and 'healthy' must have the same length, "
            f"not {n} and {len(healthy)}."
        )
    if limits is not None and len(limits) != n:
        raise ValueError(f"Argument 'limits' must have {n} entries, not {len(limits)}.")
    candidates, preferred_pool = _candidates(healthy, exclude)
    usable = [i for i in preferred_pool if limits is None or loads[i] < limits[i]]
    preferred: int | None = None
    if key is not None:
        if names is None or len(names) != n:
            raise ValueError("Argument 'names' must name every endpoint when 'key' is given.")
        # over every healthy endpoint: a momentarily full replica does not move the prompt's home
        order = rendezvous_rank(key, [names[i] for i in candidates])
        ranked = [candidates[j] for j in order if candidates[j] in preferred_pool]
        preferred = ranked[0]
    if not usable:
        return None
    least = min(loads[i] for i in usable)
    if preferred is not None and preferred in usable:
        if loads[preferred] <= spill_factor * least + spill_offset:
            return RouteChoice(preferred, preferred, False)
    ties = [i for i in usable if loads[i] == least]
    return RouteChoice(ties[tie_breaker % len(ties)], preferred, preferred is not None)


@dataclass(frozen=True)
class EndpointStats:
    """A snapshot of one endpoint's counters (``OpenAIJudge.stats``).

    Attributes
    ----------
    url : str
        The endpoint's base URL.
    requests, in_flight, failures, retries : int
        HTTP requests sent to it (resends included), outstanding now, failed there, and sent
        as a resend of an earlier failure.
    healthy : bool
        Whether it is in rotation.
    affinity_hits, spills : int
        Requests routed to it as their prompt's preferred replica, and away from another one.
    last_error : str or None
        Its most recent failure.
    """

    url: str
    requests: int
    in_flight: int
    failures: int
    retries: int
    healthy: bool
    affinity_hits: int
    spills: int
    last_error: str | None


@dataclass
class _Endpoint:
    url: str
    requests: int = 0
    in_flight: int = 0
    failures: int = 0
    retries: int = 0
    healthy: bool = True
    affinity_hits: int = 0
    spills: int = 0
    last_error: str | None = None
    consecutive_failures: int = 0


class EndpointPool:
    """Routing state for a set of endpoints: loads, limits, health, counters.

    Parameters
    ----------
    urls : sequence of str
        The endpoints' base URLs (their names for rendezvous hashing).
    limits, routing, health : optional
        The settings of :mod:`~genrm_rank.judges.settings` (defaults when ``None``); requests
        over ``max_in_flight_per_endpoint`` wait in FIFO order.
    seed : int, optional
        Seeds the ``"random"`` policy.
    """

    def __init__(
        self,
        urls: Sequence[str],
        *,
        limits: Limits | None = None,
        routing: Routing | None = None,
        health: Health | None = None,
        seed: int | None = None,
    ) -> None:
        if len(urls) == 0:
            raise ValueError("Argument 'urls' must name at least one endpoint, not an empty list.")
        if len(set(urls)) != len(urls):
            raise ValueError(f"Argument 'urls' must not repeat an endpoint, not {list(urls)}.")
        self.urls = tuple(urls)
        self.limits = check.instance("limits", Limits() if limits is None else limits, Limits)
        self.routing = check.instance("routing", Routing() if routing is None else routing, Routing)
        self.health = check.instance("health", Health() if health is None else health, Health)
        self._endpoints = [_Endpoint(u) for u in self.urls]
        self._limits = [self.limits.max_in_flight_per_endpoint] * len(self.urls)
        self._rng = random.Random(seed)
        self._tie = 0
        self._waiters: collections.deque[asyncio.Future[int]] = collections.deque()
        self._limiter: AsyncLimiter | None = None

    def __len__(self) -> int:
        return len(self._endpoints)

    @property
    def healthy(self) -> list[bool]:
        """Health flag of each endpoint."""
        return [e.healthy for e in self._endpoints]

    @property
    def loads(self) -> list[int]:
        """Requests in flight on each endpoint."""
        return [e.in_flight for e in self._endpoints]

    def last_error(self, index: int) -> str | None:
        """The last failure seen on an endpoint."""
        return self._endpoints[index].last_error

    def stats(self) -> dict[str, EndpointStats]:
        """A snapshot of every endpoint's counters, by URL."""
        names = [f.name for f in fields(EndpointStats)]
        return {e.url: EndpointStats(*(getattr(e, n) for n in names)) for e in self._endpoints}

    def choose(
        self, key: str | None, exclude: frozenset[int] | set[int] = frozenset()
    ) -> RouteChoice | None:
        """The endpoint for a request now (pure given the current state); ``None`` if all full."""
        self._tie += 1
        routing = self.routing
        if routing.policy == "random":
            loads, pool = self.loads, _candidates(self.healthy, exclude)[1]
            usable = [i for i in pool if loads[i] < self._limits[i]]
            return RouteChoice(self._rng.choice(usable), None, False) if usable else None
        return choose_endpoint(
            self.loads,
            self.healthy,
            names=self.urls,
            key=key if routing.policy == "affinity" else None,
            limits=self._limits,
            exclude=exclude,
            spill_factor=routing.spill_factor,
            spill_offset=routing.spill_offset,
            tie_breaker=self._tie,
        )

    async def acquire(
        self,
        key: str | None,
        *,
        exclude: frozenset[int] | set[int] = frozenset(),
        retry: bool = False,
    ) -> int:
        """Wait for the rate limiter and a free slot; the endpoint index, counted in flight until
        :meth:`release`. Raises :class:`NoHealthyEndpointError` (also while waiting)."""
        if self.limits.requests_per_second is not None:
            if self._limiter is None:
                self._limiter = AsyncLimiter(self.limits.requests_per_second, 1.0)
            await self._limiter.acquire()
        while self._waiters and self._waiters[0].done():
            self._waiters.popleft()
        choice = None if self._waiters else self.choose(key, exclude)
        while choice is None:
            future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
            self._waiters.append(future)
            try:
                hops = await future
            except BaseException:
                if future.done() and not future.cancelled():
                    self._wake_one(future.result())  # pass on a wake-up we can no longer use
                else:
                    future.cancel()
                raise
            choice = self.choose(key, exclude)
            if choice is None and hops > 0:
                # the freed slot is excluded for this request: pass the wake-up on, once around
                self._wake_one(hops - 1)
        endpoint = self._endpoints[choice.index]
        endpoint.in_flight += 1
        endpoint.requests += 1
        endpoint.retries += retry
        endpoint.affinity_hits += choice.affine
        endpoint.spills += choice.spilled and not choice.affine
        return choice.index

    def release(self, index: int) -> None:
        """Mark a request on endpoint ``index`` finished and wake the next waiter."""
        self._endpoints[index].in_flight -= 1
        if self._waiters:
            self._wake_one(len(self._waiters))

    def _wake_one(self, hops: int) -> None:
        while self._waiters:
            future = self._waiters.popleft()
            if not future.done():
                future.set_result(hops)
                return

    def _wake_all(self) -> None:
        """Wake every waiter: it must re-route (or learn that nothing is left)."""
        while self._waiters:
            self._wake_one(0)

    def record_success(self, index: int) -> None:
        """An answer came back from endpoint ``index``: it is working."""
        self._endpoints[index].consecutive_failures = 0

    def record_failure(self, index: int, detail: str, *, counts_toward_health: bool = True) -> bool:
        """A request failed on endpoint ``index``; whether it just left rotation. A failure that
        does not count toward health (overloaded, not broken) is only counted."""
        endpoint = self._endpoints[index]
        endpoint.failures += 1
        endpoint.last_error = detail
        if not counts_toward_health:
            return False
        endpoint.consecutive_failures += 1
        if endpoint.healthy and endpoint.consecutive_failures >= self.health.failure_threshold:
            endpoint.healthy = False
            self._wake_all()
            return True
        return False

    def mark_healthy(self, index: int) -> None:
        """Put endpoint ``index`` back into rotation (a health probe succeeded)."""
        endpoint = self._endpoints[index]
        endpoint.healthy = True
        endpoint.consecutive_failures = 0
        self._wake_all()
