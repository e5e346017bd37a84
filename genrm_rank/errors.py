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
     ├── ArgumentError (ValueError)  a bad argument, named by ``argument``
     ├── ComparisonGraphError      the comparisons cannot support the requested answer
     ├── NoHealthyEndpointError    the endpoint pool has no healthy endpoint to route to now
     └── TransportError            an HTTP exchange failed after the request was sent
          └── ConnectError         no connection was made (the request never left)
               └── CertificateError    the server's TLS certificate could not be verified

The last two branches live beside what raises them (:mod:`genrm_rank.judges.routing`,
:mod:`genrm_rank.judges.transport`). Bad arguments raise ``TypeError`` or :class:`ArgumentError`,
naming the argument and the value received; :class:`Words` lets a front end (the CLI) word the
arguments a message names its own way. Failed *verdicts* are not exceptions but
:class:`~genrm_rank.verdict.Verdict` values with ``ok == False``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "ArgumentError",
    "ComparisonGraphError",
    "EndpointsUnavailableError",
    "GenRMRankError",
    "JudgeConfigurationError",
    "JudgeError",
    "ReplayMissError",
    "SystematicFailureError",
    "VerdictError",
    "Words",
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
    """Every endpoint refused the run's requests (401, 403, 404), or the verdict cache is
    damaged or locked; the message quotes each server (or names the file) and suggests the fix.
    It ends the run, not one prompt."""


class SystematicFailureError(JudgeError):
    """The verdicts of a run fail so consistently that the cause is the judge, not the rows
    (:class:`~genrm_rank.failure_watch.FailureWatch`); the message quotes the cause and a fix."""


class ReplayMissError(JudgeError, KeyError):
    """A :class:`~genrm_rank.judges.replay.ReplayJudge` was asked for a pair it has no record of."""

    def __str__(self) -> str:  # not quoted, as KeyError would
        return str(self.args[0]) if self.args else ""


class ArgumentError(GenRMRankError, ValueError):
    """A bad argument, named by :attr:`argument` as it was passed (``"paths['out']"``); ``str()``
    is the message in the Python API's words.

    Other arguments the message names (a fix) are :class:`Setting` keywords written ``{name}`` in
    ``message``, as are the values it quotes (paths), so their braces are never read as fields;
    :meth:`words` words every argument another way (the CLI names its flags).

    >>> fix = ArgumentError.Setting("overwrite", True)
    >>> error = ArgumentError("paths", ": {path} exists; pass {fix}.", path="o.jsonl", fix=fix)
    >>> str(error)
    "Argument 'paths': o.jsonl exists; pass overwrite=True."
    >>> error.words(lambda s, head: "argument -o" if head else f"--{s.name}")
    'argument -o: o.jsonl exists; pass --overwrite.'
    """

    @dataclass(frozen=True)
    class Setting:
        """An argument a message names, with the value it suggests (``overwrite=True``), or
        ``...`` (a singleton through pickling) for none."""

        name: str
        value: object = ...

        @property
        def has_value(self) -> bool:
            return self.value is not ...

    @staticmethod
    def python_words(setting: ArgumentError.Setting, head: bool) -> str:
        """A setting in the Python API's words: ``Argument 'x'`` (as ``head``) or ``x=value``."""
        if setting.has_value:
            return f"{setting.name}={setting.value!r}"
        return f"{'Argument' if head else 'argument'} '{setting.name}'"

    def __init__(self, argument: str, message: str, /, **settings: object) -> None:
        self.argument, self.message, self.settings = argument, message, settings
        super().__init__(self.words(self.python_words))

    def __reduce__(self) -> tuple[Callable[[], ArgumentError], tuple[()]]:
        """Pickled as its call (``args`` alone cannot rebuild it), so that it crosses processes
        (a Ray worker, a process pool) as itself."""
        return functools.partial(type(self), self.argument, self.message, **self.settings), ()

    def words(self, name: Callable[[ArgumentError.Setting, bool], str]) -> str:
        """The message with every argument worded by ``name(setting, head)``; ``head`` is true
        for the argument the error is about, which starts the message."""
        text = _fill(self.message, self.settings, name)
        head = name(ArgumentError.Setting(self.argument), True)
        return head + ("" if text.startswith((":", ";", ",")) else " ") + text


Namer = Callable[[ArgumentError.Setting, bool], str]
"""How a front end names a library argument: ``name(setting, head)`` (see :meth:`Words.words`)."""


def _fill(message: str, settings: dict[str, object], name: Namer) -> str:
    """``message`` with its fields filled: settings and nested :class:`Words` worded by ``name``
    (a setting given as ``head`` heads the message), other values as they are."""

    def word(key: str, value: object) -> object:
        if isinstance(value, ArgumentError.Setting):
            return name(value, key == "head")
        return value.words(name) if isinstance(value, Words) else value

    return message.format(**{k: word(k, v) for k, v in settings.items()}) if settings else message


class Words(str):
    """A message (not an error) that names library arguments: a hint, a row's reason, a stop.

    As a ``str`` it is the message in the Python API's words; :meth:`words` words the
    :class:`ArgumentError.Setting` keywords (the one given as ``head`` starts it) and nested
    :class:`Words` another way, as :meth:`ArgumentError.words` does. A ``TypeError`` about an
    argument is raised with one (:meth:`of` finds it).

    >>> fix = Words("pass {fix}", fix=ArgumentError.Setting("thinking", False))
    >>> fix
    'pass thinking=False'
    >>> fix.words(lambda s, head: "--no-thinking")
    'pass --no-thinking'
    """

    message: str
    settings: dict[str, object]

    def __new__(cls, message: str, /, **settings: object) -> Words:
        self = super().__new__(cls, _fill(message, settings, ArgumentError.python_words))
        self.message, self.settings = message, settings
        return self

    def words(self, name: Namer) -> str:
        """The message with every argument worded by ``name(setting, head)``."""
        return _fill(self.message, self.settings, name)

    @staticmethod
    def of(error: BaseException) -> str:
        """The :class:`Words` ``error`` was raised with, else ``str(error)``."""
        words = error.args[0] if error.args and not isinstance(error, ArgumentError) else None
        return words if isinstance(words, Words) else str(error)

    @staticmethod
    def worded(error: BaseException | str, name: Namer) -> str:
        """An error or a message with the arguments it names (if it is or was raised with a
        :class:`Words`) worded by ``name(setting, head)``; the one way a front end rewords.

        >>> Words.worded(ArgumentError("x", "must be > 0."), lambda s, head: f"field {s.name!r}")
        "field 'x' must be > 0."
        """
        if isinstance(error, BaseException) and not isinstance(error, ArgumentError):
            error = Words.of(error)
        if isinstance(error, (ArgumentError, Words)):
            return error.words(name)
        return error


class ComparisonGraphError(GenRMRankError, ValueError):
    """The comparisons cannot support the requested answer (e.g. too few items)."""
