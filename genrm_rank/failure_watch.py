"""Stopping a run whose verdicts fail systematically, before it pays for every row.

A persistent fault (a rate limit, a proxy's HTML page, a server that never answers in time, a
gateway that strips the reasoning, a token limit every answer hits) fails every verdict the same
way. :class:`FailureWatch` sees every paid verdict of a run (not cached ones) in the order they
come back, and stops the run (:class:`~genrm_rank.errors.SystematicFailureError`) once the
failures are clearly systematic:

- **at the start**: the first :attr:`~FailureWatch.start` verdicts (8) all failed. Until the
  first usable verdict at most :attr:`~FailureWatch.probe_in_flight` requests (8) are in flight,
  so a misconfigured run pays for 8 to 16 calls, not a window of 64 or 512;
- **later**: :attr:`~FailureWatch.window_failed` (60) of the last :attr:`~FailureWatch.window`
  (64) verdicts failed: a fault that started mid-run (a healthy GenRM fails a few in a hundred).

A judge failing 30% of its verdicts at random trips the first rule with probability 0.3**8,
under 1 in 10,000. The rule depends on the sequence of verdicts alone. The stop names the most
common failure kind, quotes the server's or the parser's words for it and the likely fix. Rows in
flight when it stops are not written: a resumed run judges them again.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field

from genrm_rank import validate as check
from genrm_rank.errors import ArgumentError, SystematicFailureError, Words
from genrm_rank.parsing import NO_REASONING
from genrm_rank.verdict import FailureKind, Verdict

__all__ = ["FailureWatch", "systematic_hint"]

_RAW_LIMIT = 200

_arg = ArgumentError.Setting

_UNAVAILABLE_HINTS = (
    (
        "HTTP 429",
        "the server rate-limits the run: lower {a}, or ask for a higher rate limit",
        "concurrency",
    ),
    (
        "timed out",
        "no answer came within the timeout: raise {a} (a GenRM's reasoning can take minutes), or "
        "check that the server is generating",
        "timeout",
    ),
    (
        "'choices' is empty",
        "the server answered 200 with no choices: check the server's log and {a}",
        "model",
    ),
    (
        "malformed response",
        "the endpoint does not answer like an OpenAI API (a proxy or login page?): check {a}",
        "endpoints",
    ),
    ("HTTP 5", "the server fails every request: see its log", None),
    ("", "check that the server is up and reachable at {a}", "endpoints"),
)
"""``(words, hint, argument)`` for an unanswered request: the first whose words its error holds."""


def systematic_hint(verdict: Verdict) -> Words:
    """The likely fix for a failure that every verdict of a run shares."""
    error = verdict.error or ""
    kind = verdict.failure
    if kind is FailureKind.UNAVAILABLE:
        hint, name = next((h, a) for words, h, a in _UNAVAILABLE_HINTS if words in error)
        return Words(hint) if name is None else Words(hint, a=_arg(name))
    if kind is FailureKind.UNREADABLE and NO_REASONING in error:
        return Words(
            "the answers hold no reasoning: a gateway may strip it, or the model does not think; "
            "pass {fix} to read such answers",
            fix=_arg("thinking", False),
        )
    if kind is FailureKind.TRUNCATED:
        return Words("every answer hits the generation limit: raise {a}", a=_arg("max_tokens"))
    if kind is FailureKind.REJECTED:
        return Words(
            "the server refuses the requests: check the request options (extra_body, sampling)"
        )
    return Words(
        "the answers hold no verdict this parser reads: is {a} a GenRM, and its server's "
        "reasoning parser the right one?",
        a=_arg("model"),
    )


@dataclass(kw_only=True, eq=False)
class FailureWatch:
    """Watches a run's verdicts; raises once their failures are systematic.

    Parameters
    ----------
    start : int
        A run whose first ``start`` verdicts all failed stops.
    window, window_failed : int
        A run stops once ``window_failed`` of its last ``window`` verdicts failed.
    probe_in_flight : int
        Requests in flight at most until the first usable verdict (:meth:`in_flight_limit`).

    Examples
    --------
    >>> watch = FailureWatch(start=2)
    >>> watch.add(Verdict.failed(FailureKind.TRUNCATED, error="cut"))
    >>> watch.add(Verdict.failed(FailureKind.TRUNCATED, error="cut"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    genrm_rank.errors.SystematicFailureError: The first 2 verdicts of the run all failed ...
    """

    start: int = 8
    window: int = 64
    window_failed: int = 60
    probe_in_flight: int = 8
    ok_seen: int = field(default=0, init=False)
    failed_seen: int = field(default=0, init=False)
    _recent: deque[Verdict | None] = field(init=False, repr=False)
    """The last ``window`` verdicts: a failed one as itself, a usable one as ``None``."""

    def __post_init__(self) -> None:
        for name in ("start", "window", "window_failed", "probe_in_flight"):
            check.count(name, getattr(self, name), 1)
        if self.window_failed > self.window:
            raise ArgumentError(
                "window_failed",
                f"must be <= window ({self.window}), not {self.window_failed}.",
            )
        self._recent = deque(maxlen=self.window)

    def in_flight_limit(self, max_in_flight: int) -> int:
        """Requests that may be in flight now: :attr:`probe_in_flight` before any usable
        verdict, ``max_in_flight`` after."""
        return max_in_flight if self.ok_seen else min(max_in_flight, self.probe_in_flight)

    def add(self, verdict: Verdict) -> None:
        """Count one verdict (not a cached one) as it comes back; raise
        :class:`~genrm_rank.errors.SystematicFailureError` once the failures are systematic."""
        if verdict.cached:
            return
        if verdict.ok:
            self.ok_seen += 1
            self._recent.append(None)
            return
        self.failed_seen += 1
        self._recent.append(verdict)
        failed = [v for v in self._recent if v is not None]
        if not self.ok_seen and self.failed_seen >= self.start:
            lead = f"The first {self.start} verdicts of the run all failed"
            raise SystematicFailureError(self._message(lead, failed[-self.start :]))
        if self.ok_seen and len(failed) >= self.window_failed:
            lead = f"{len(failed)} of the last {len(self._recent)} verdicts failed"
            raise SystematicFailureError(self._message(lead, failed))

    @staticmethod
    def _message(lead: str, failed: list[Verdict]) -> Words:
        kinds = Counter(str(v.failure) for v in failed)
        dominant = kinds.most_common(1)[0][0]
        last = next(v for v in reversed(failed) if str(v.failure) == dominant)
        counts = ", ".join(f"{k}: {n}" for k, n in sorted(kinds.items()))
        began = ""
        if last.raw is not None and last.failure is not FailureKind.UNAVAILABLE:
            raw = last.raw if len(last.raw) <= _RAW_LIMIT else last.raw[:_RAW_LIMIT] + "..."
            began = f"; the answer began: {raw!r}"
        return Words(
            "{lead} ({counts}): the failures are systematic, so the run stops; resume it once "
            "the cause is fixed. Last {dominant} verdict: {words}{began}\n  hint: {hint}",
            lead=lead,
            counts=counts,
            dominant=dominant,
            words=last.error or "no message",
            began=began,
            hint=systematic_hint(last),
        )
