"""The exceptions genrm_rank raises.

Every exception the library raises on purpose derives from :class:`GenRMRankError`::

    GenRMRankError
     ├── VerdictError              a value was asked of a failed verdict
     ├── JudgeError                a judge could not answer at all
     │    ├── EndpointsUnavailableError   every endpoint is down (names them and their answers)
     │    ├── JudgeConfigurationError     every endpoint refuses the run (401/403/404): bad key,
     │    │                               wrong model or wrong path, quoted with a likely fix
     │    ├── SystematicFailureError      nearly every verdict of a run fails the same way (a
     │    │                               persistent fault): the cause, quoted, and a likely fix
     │    └── ReplayMissError             a replayed record has no verdict for that pair
     └── ComparisonGraphError      the comparisons cannot support the requested answer

Bad arguments are reported with the built-in :class:`ValueError` / :class:`TypeError`, whose
messages name the argument and the value received. Failed *verdicts* (unreadable, truncated,
rejected answers) are not exceptions: they are :class:`~genrm_rank.verdict.Verdict` values with
``ok == False``.
"""

from __future__ import annotations

__all__ = [
    "ComparisonGraphError",
    "EndpointsUnavailableError",
    "GenRMRankError",
    "JudgeConfigurationError",
    "JudgeError",
    "ReplayMissError",
    "SystematicFailureError",
    "VerdictError",
]


class GenRMRankError(Exception):
    """Root of every exception genrm_rank raises on purpose."""


class VerdictError(GenRMRankError, ValueError):
    """A numeric value was asked of a verdict that failed (see ``Verdict.failure``)."""


class JudgeError(GenRMRankError):
    """A judge could not produce any verdict (as opposed to producing a failed one)."""


class EndpointsUnavailableError(JudgeError):
    """Every endpoint of an HTTP judge is down; the message names each and its last answer."""


class JudgeConfigurationError(JudgeError):
    """Every endpoint refused the run's requests (401, 403, 404): a bad key, a wrong model or a
    wrong path. The message quotes each server and suggests the fix. Like
    :class:`EndpointsUnavailableError` it ends the run, not one prompt: every request would fail
    the same way."""


class SystematicFailureError(JudgeError):
    """The verdicts of a run fail so consistently that the cause is the judge, not the rows
    (:class:`~genrm_rank.failure_watch.FailureWatch`): a rate limit, a proxy page, a server
    that times out, a gateway that strips the reasoning. The message names the failure kind,
    quotes the server's or the parser's words and suggests the fix. It ends the run, which can
    be resumed once the cause is fixed."""


class ReplayMissError(JudgeError, KeyError):
    """A :class:`~genrm_rank.judges.replay.ReplayJudge` was asked for a pair it has no record of."""

    def __str__(self) -> str:  # KeyError quotes its argument; keep the message readable
        return str(self.args[0]) if self.args else ""


class ComparisonGraphError(GenRMRankError, ValueError):
    """The comparisons cannot support the requested answer (e.g. too few items)."""
