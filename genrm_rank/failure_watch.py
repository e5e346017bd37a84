"""Stopping a run whose verdicts fail systematically, before it pays for every row.

A persistent fault (a rate limit on every request, a proxy answering an HTML page, a server that
never answers within the timeout, a gateway that strips the reasoning, a token limit every
answer hits) fails every verdict the same way. Re-asking each call and moving on to the next row
would pay for the whole input and leave every row in the errors file. :class:`FailureWatch`
sees every paid verdict of a run, in the order they come back, and stops the run
(:class:`~genrm_rank.errors.SystematicFailureError`) once the failures are clearly systematic:

- **at the start**: the first :attr:`~FailureWatch.start` verdicts (8) all failed. Until the
  first usable verdict, at most :attr:`~FailureWatch.probe_in_flight` requests (8) are in flight,
  so a misconfigured run pays for 8 to 16 calls, not a window of 64 or 512 (plus the judge's
  own free resends: :class:`~genrm_rank.judges.openai_http.OpenAIJudge` stops resending a 429
  after 16 before any answer);
- **later**: at least :attr:`~FailureWatch.window_failed` (60) of the last
  :attr:`~FailureWatch.window` (64) verdicts failed. A healthy GenRM fails a few verdicts in a
  hundred (unreadable, truncated); 60 of 64 is a fault that started mid-run (a replica's
  gateway, an expired key), and costs at most one window.

The thresholds are what a user would pay for a misconfiguration: a few dozen requests, in
exchange for a stop that a healthy judge practically never triggers (a judge failing 30% of its
verdicts at random trips the first rule with probability 0.3**8, under 1 in 10,000). Verdicts
served from a cache are not counted. The rule depends on the sequence of verdicts alone, so it
is deterministic given the judge's answers.

The stop names the most common failure kind, quotes the server's or the parser's words for it
(status code and body, or the parse error and the start of the answer) and the likely fix.
Rows in flight when it stops are not written: a resumed run judges them again.
"""

from __future__ import annotations

from collections import Counter, deque

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
        Words(
            "the server rate-limits the run: lower {a}, or ask for a higher rate limit",
            a=_arg("concurrency"),
        ),
    ),
    (
        "timed out",
        Words(
            "no answer came within the timeout: raise {a} (a GenRM's reasoning can take "
            "minutes), or check that the server is generating",
            a=_arg("timeout"),
        ),
    ),
    (
        "'choices' is empty",
        Words(
            "the server answered 200 with no choices: check the server's log and {a}",
            a=_arg("model"),
        ),
    ),
    (
        "malformed response",
        Words(
            "the endpoint does not answer like an OpenAI API (a proxy or login page?): check {a}",
            a=_arg("endpoints"),
        ),
    ),
    ("HTTP 5", Words("the server fails every request: see its log")),
)
"""Hints for an unanswered request, by the first words of its error that match."""


def systematic_hint(verdict: Verdict) -> Words:
    """The likely fix for a failure that every verdict of a run shares; a :class:`Words`, so
    that a front end names the arguments its own way."""
    error = verdict.error or ""
    kind = verdict.failure
    if kind is FailureKind.UNAVAILABLE:
        return next(
            (hint for words, hint in _UNAVAILABLE_HINTS if words in error),
            Words("check that the server is up and reachable at {a}", a=_arg("endpoints")),
        )
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

    def __init__(
        self,
        *,
        start: int = 8,
        window: int = 64,
        window_failed: int = 60,
        probe_in_flight: int = 8,
    ) -> None:
        check.count("start", start, 1)
        check.count("window", window, 1)
        check.count("window_failed", window_failed, 1)
        check.count("probe_in_flight", probe_in_flight, 1)
        if window_failed > window:
            raise ValueError(
                f"Argument 'window_failed' must be <= window ({window}), not {window_failed}."
            )
        self.start = start
        self.window = window
        self.window_failed = window_failed
        self.probe_in_flight = probe_in_flight
        self.ok_seen = 0
        self.failed_seen = 0
        self._recent: deque[Verdict | None] = deque(maxlen=window)
        """The last ``window`` verdicts: a failed one as itself, a usable one as ``None``."""

    def in_flight_limit(self, max_in_flight: int) -> int:
        """Requests that may be in flight now: :attr:`probe_in_flight` before any usable
        verdict, ``max_in_flight`` after."""
        return max_in_flight if self.ok_seen else min(max_in_flight, self.probe_in_flight)

    def add(self, verdict: Verdict) -> None:
        """Count one verdict as it comes back (cached ones are ignored).

        Raises
        ------
        SystematicFailureError
            When the failures so far are systematic (see the module docstring).
        """
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
