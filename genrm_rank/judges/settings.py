"""Settings of the HTTP judge, grouped where they travel together (as httpx's ``Limits``): frozen
values, checked once when made, that :class:`~genrm_rank.judges.openai_http.OpenAIJudge` and
:class:`~genrm_rank.judges.routing.EndpointPool` take whole.

>>> Retries(max_resends=2, backoff_base=1.0, backoff_max=4.0).budget
3.0
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

from genrm_rank import validate as check

__all__ = [
    "MAX_RESPONSE_BYTES",
    "ROUTING_POLICIES",
    "Health",
    "Limits",
    "Retries",
    "Routing",
    "RoutingPolicy",
]

MAX_RESPONSE_BYTES = 8 * 2**20
"""Default longest answer body read (8 MiB); a GenRM answer of 24,576 tokens is a few hundred KB."""

RoutingPolicy = Literal["affinity", "least_loaded", "random"]
ROUTING_POLICIES: tuple[str, ...] = ("affinity", "least_loaded", "random")


@dataclass(frozen=True)
class Limits:
    """How much the judge asks of its servers at once.

    Parameters
    ----------
    max_in_flight_per_endpoint : int
        Requests outstanding per endpoint at most (vLLM's ``--max-num-seqs`` or a multiple);
        further requests wait in FIFO order.
    requests_per_second : float, optional
        Cap on the request rate over all endpoints (a burst of one second's worth).
    max_response_bytes : int
        Longest answer body read; a longer one is read no further and fails the call
        (``unavailable``, paid).
    """

    max_in_flight_per_endpoint: int = 64
    requests_per_second: float | None = None
    max_response_bytes: int = MAX_RESPONSE_BYTES

    def __post_init__(self) -> None:
        check.count("max_in_flight_per_endpoint", self.max_in_flight_per_endpoint, 1)
        check.positive("requests_per_second", self.requests_per_second, optional=True)
        check.count("max_response_bytes", self.max_response_bytes, 1)


@dataclass(frozen=True)
class Routing:
    """Which endpoint a request goes to (:func:`~genrm_rank.judges.routing.choose_endpoint`).

    Parameters
    ----------
    policy : {"affinity", "least_loaded", "random"}
        One replica per prompt, for its prefix cache, with spill-over; the fewest requests in
        flight; or uniformly at random (a baseline).
    spill_factor, spill_offset : float
        Affinity gives way when ``load[preferred] > spill_factor * least + spill_offset``.
    """

    policy: RoutingPolicy = "affinity"
    spill_factor: float = 2.0
    spill_offset: float = 10.0

    def __post_init__(self) -> None:
        check.one_of("policy", self.policy, ROUTING_POLICIES)
        check.at_least("spill_factor", self.spill_factor, 1)
        check.at_least("spill_offset", self.spill_offset, 0)


@dataclass(frozen=True)
class Retries:
    """How a call that no server started (connection refused, 408, 429, 502, 503) is resent, for
    free; a failure after which the server may have generated is never resent by the judge.

    Parameters
    ----------
    max_resends : int
        Free resends of one call at most.
    backoff_base, backoff_max : float
        Resend ``k`` (0-based) waits ``uniform(0, min(backoff_max, backoff_base * 2**k))``
        seconds, "full jitter", and at least the server's ``Retry-After`` (which the judge
        cuts to :meth:`Health.down_after`: a server asking for hours is not waited for).

    References
    ----------
    Brooker, "Exponential Backoff And Jitter", AWS Architecture Blog, 2015.
    """

    max_resends: int = 5
    backoff_base: float = 0.5
    backoff_max: float = 30.0

    def __post_init__(self) -> None:
        check.count("max_resends", self.max_resends, 0)
        check.at_least("backoff_base", self.backoff_base, 0)
        check.at_least("backoff_max", self.backoff_max, 0)

    def _ceiling(self, resend: int) -> float:
        return float(min(self.backoff_max, self.backoff_base * 2.0**resend))

    @property
    def budget(self) -> float:
        """The longest all resends of one call can wait, Retry-After aside."""
        return sum(self._ceiling(k) for k in range(self.max_resends))

    def delay(self, resend: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait before resend ``resend`` (0-based), at least ``retry_after``."""
        ceiling = self._ceiling(resend)
        delay = rng.uniform(0.0, ceiling) if ceiling > 0 else 0.0
        return delay if retry_after is None else max(delay, retry_after)


@dataclass(frozen=True)
class Health:
    """When an endpoint leaves rotation, how it comes back, and when the judge gives up.

    Health comes from probes, connection errors and 5xx answers, never from how long a
    generation took: under vLLM's unbounded queue a slow replica is busy.

    Parameters
    ----------
    failure_threshold : int
        Consecutive failures that take an endpoint out of rotation.
    health_check_interval : float
        Seconds between ``GET /health`` probes of an endpoint out of rotation.
    down_timeout : float, optional
        How long every endpoint may be out of rotation before ``judge()`` raises
        :class:`~genrm_rank.errors.EndpointsUnavailableError`. Default: :attr:`Retries.budget`,
        and at least two health-check intervals.
    """

    failure_threshold: int = 3
    health_check_interval: float = 5.0
    down_timeout: float | None = None

    def __post_init__(self) -> None:
        check.at_least("failure_threshold", self.failure_threshold, 1)
        check.positive("health_check_interval", self.health_check_interval)
        check.at_least("down_timeout", self.down_timeout, 0, optional=True)

    def down_after(self, retries: Retries) -> float:
        """:attr:`down_timeout`, or its default for ``retries``."""
        if self.down_timeout is not None:
            return float(self.down_timeout)
        return max(retries.budget, 2.0 * self.health_check_interval)
