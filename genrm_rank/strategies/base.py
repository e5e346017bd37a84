"""The scheduler seam: strategies say which ordered pairs to judge next and take verdicts back.

A strategy never waits on anything, so one orchestrator runs thousands of them through one
window of requests. :class:`MatchScheduler` turns each *match* into ordered calls by swap mode:

- ``"both"``: each sample in both orders, combined as ``0.5 * (p_ab + 1 - p_ba)`` (Zheng et al.
  2023);
- ``"random"``: one call a sample, in a seeded random order; ``"none"``: in the order proposed;
- ``"auto"``: as ``"random"``, and the reverse order only when the first verdicts are close
  (mean ranking 3 to 4), none is usable, or the match decides the result (a knockout's final).
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Sequence
from dataclasses import KW_ONLY, dataclass, field
from statistics import fmean
from typing import Literal, Protocol, cast, runtime_checkable

import numpy as np

from genrm_rank import validate as check
from genrm_rank.verdict import PreferenceMapping, Verdict, linear_preference

__all__ = [
    "SWAP_MODES",
    "FixedSchedule",
    "Judgement",
    "Match",
    "MatchScheduler",
    "PairCall",
    "Scheduler",
    "SeededScheduler",
    "StrategyOutcome",
    "SwapMode",
    "check_mapping",
    "check_swap",
    "combine_preferences",
    "resolve_seeding",
]

SwapMode = Literal["both", "random", "none", "auto"]
SWAP_MODES: tuple[str, ...] = ("both", "random", "none", "auto")
CLOSE_PREFERENCE = 0.1 + 1e-9
"""``swap="auto"``: a first-order preference within this of 0.5 is close (rankings 3 to 4)."""
TIE_TOLERANCE = 1e-12
"""A match preference within this distance of 0.5 is a tie (float rounding only)."""


def check_swap(swap: str) -> SwapMode:
    """Validate a swap mode, naming the argument on error."""
    return cast(SwapMode, check.one_of("swap", str(swap), SWAP_MODES))


def check_mapping(mapping: PreferenceMapping) -> PreferenceMapping:
    """Validate a ``preference_mapping`` (a callable), naming the argument on error."""
    if not callable(mapping):
        raise TypeError(
            f"Argument 'preference_mapping' must be callable, not {type(mapping).__name__}."
        )
    return mapping


@dataclass(frozen=True)
class PairCall:
    """One ordered comparison to judge: ``first`` in slot 1; ``sample`` numbers its repeats."""

    first: int
    second: int
    match_id: int = -1
    sample: int = 0


@dataclass(frozen=True)
class Judgement:
    """A finished call: the ordered pair and the verdict the judge gave."""

    first: int
    second: int
    verdict: Verdict
    match_id: int = -1
    sample: int = 0


@dataclass
class Match:
    """A contest between ``a`` and ``b`` in ordered calls; ``preference``: the combined strength
    with which ``a`` beats ``b`` (:func:`combine_preferences`); ``reversed``: whether
    ``swap="auto"`` asked for the reverse order."""

    match_id: int
    a: int
    b: int
    round: int = 0
    calls: list[PairCall] = field(default_factory=list)
    judgements: list[Judgement] = field(default_factory=list)
    preference: float | None = None
    reversed: bool = False

    @property
    def complete(self) -> bool:
        """Whether every call of the match has come back."""
        return len(self.judgements) == len(self.calls)


@dataclass(frozen=True)
class StrategyOutcome:
    """What a strategy itself concluded: its own winner and order (``None``: the aggregator's),
    notes on decisions made without a usable verdict, the P(best) it stopped on, and whether a
    budget it took as its own stopped it."""

    best: int | None = None
    order: tuple[int, ...] | None = None
    notes: tuple[str, ...] = ()
    p_best: tuple[float, ...] | None = None
    budget_bound: bool = False


@runtime_checkable
class Scheduler(Protocol):
    """What the orchestrator needs of a strategy."""

    n_items: int

    def next_pairs(self, limit: int | None = None) -> list[PairCall]:
        """Calls to issue now, each once, at most ``limit`` (the rest stay queued)."""
        ...

    def record(self, call: PairCall, verdict: Verdict) -> None:
        """Take back the verdict of a call returned by :meth:`next_pairs`."""
        ...

    @property
    def done(self) -> bool:
        """True once the strategy needs no more verdicts."""
        ...

    def stop(self) -> None:
        """Stop asking for calls (budget bound); :meth:`result` then uses what was judged."""
        ...

    def judgements(self) -> list[Judgement]:
        """Every finished call, in the order they came back."""
        ...

    def result(self) -> StrategyOutcome:
        """The strategy's own conclusion (call once :attr:`done`)."""
        ...


def combine_preferences(
    a: int, judgements: Sequence[Judgement], mapping: PreferenceMapping = linear_preference
) -> float | None:
    """Combined strength with which candidate ``a`` beats its opponent over a match's verdicts.

    With usable verdicts in both orders, the two orders' means weigh equally
    (``0.5 * (p_ab + 1 - p_ba)``), so a position bias cancels. ``None`` when none is usable.
    """
    usable = [j for j in judgements if j.verdict.ok]
    as_first = [j.verdict.preference_with(mapping) for j in usable if j.first == a]
    as_second = [j.verdict.preference_with(mapping) for j in usable if j.second == a]
    if as_first and as_second:
        # A difference, so that pure position bias gives exactly 0.5 for any number of samples.
        return 0.5 + 0.5 * (fmean(as_first) - fmean(as_second))
    if as_first:
        return fmean(as_first)
    return 1.0 - fmean(as_second) if as_second else None


def resolve_seeding(
    seeding: Iterable[int] | None, n_items: int, rng: np.random.Generator
) -> tuple[int, ...]:
    """A seeding (candidate indices, seed 1 first) checked to be a permutation of ``n_items``;
    ``None`` draws one from ``rng``."""
    if seeding is None:
        return tuple(int(c) for c in rng.permutation(n_items))
    if isinstance(seeding, (str, bytes)) or not isinstance(seeding, Iterable):
        raise TypeError(
            "Argument 'seeding' must be a sequence of candidate indices, "
            f"not {type(seeding).__name__}."
        )
    order = list(seeding)
    for c in order:
        if not check.is_int(c):
            raise TypeError(
                f"Argument 'seeding' must hold int candidate indices, not {type(c).__name__}."
            )
    if sorted(int(c) for c in order) != list(range(n_items)):
        raise ValueError(
            f"Argument 'seeding' must be a permutation of 0..{n_items - 1}, not {order!r}."
        )
    return tuple(int(c) for c in order)


@dataclass(eq=False, repr=False)
class MatchScheduler(abc.ABC):
    """Base for strategies made of matches: a dataclass subclass declares its keywords as fields,
    schedules matches with :meth:`_add_match`, and implements :meth:`_on_match_done` and
    :meth:`result`.

    Parameters
    ----------
    n_items : int
        Number of candidates (>= 2).
    swap : {"both", "random", "none", "auto"}
    samples : int
        Judgements per match and order.
    seed : int or numpy.random.Generator, optional
        Source of every random choice (orders, seeding, coins).
    preference_mapping : callable, optional
        Ranking (1..6) to preference (0..1).
    """

    n_items: int
    _: KW_ONLY
    swap: SwapMode = "both"
    samples: int = 1
    seed: int | np.random.Generator | None = None
    preference_mapping: PreferenceMapping = linear_preference

    def __post_init__(self) -> None:
        self.n_items = check.integer("n_items", self.n_items, 2)
        if not check.is_int(self.samples) or self.samples < 1:
            raise ValueError(f"Argument 'samples' must be a positive int, not {self.samples!r}.")
        self.swap = check_swap(self.swap)
        self.samples = int(self.samples)
        self.rng = np.random.default_rng(self.seed)  # a Generator is returned as it is
        check_mapping(self.preference_mapping)
        self.matches: list[Match] = []
        self.stopped = False
        """Whether :meth:`stop` was called."""
        self._queue: list[PairCall] = []
        self._judgements: list[Judgement] = []
        self._samples_of: dict[tuple[int, int], int] = {}
        self._pending: set[PairCall] = set()

    @property
    def _outstanding(self) -> int:
        return len(self._pending)

    # -- for subclasses ---------------------------------------------------------------------
    def _add_match(self, a: int, b: int, round: int = 0) -> Match:
        """Schedule a match between ``a`` and ``b`` (``a`` in slot 1 when the order is free)."""
        if a == b:
            raise ValueError(f"A match needs two different candidates, not {a} and {b}.")
        match = Match(len(self.matches), a, b, round)
        self.matches.append(match)
        for _ in range(self.samples):
            if self.swap == "both":
                self._add_call(match, a, b)
                self._add_call(match, b, a)
            elif self.swap != "none" and self.rng.random() >= 0.5:
                self._add_call(match, b, a)
            else:
                self._add_call(match, a, b)
        return match

    def _add_call(self, match: Match, first: int, second: int) -> None:
        sample = self._samples_of.get((first, second), 0)
        self._samples_of[(first, second)] = sample + 1
        match.calls.append(PairCall(first, second, match.match_id, sample))
        self._queue.append(match.calls[-1])

    def _decides_result(self, match: Match) -> bool:
        """``swap="auto"``: whether this match decides the result (a knockout's final does)."""
        return False

    def _ask_reverse(self, match: Match) -> bool:
        """``swap="auto"``: schedule the reverse order of a match's first calls if that pays."""
        if self.swap != "auto" or match.reversed or self.stopped:
            return False
        p = match.preference
        if p is not None and abs(p - 0.5) > CLOSE_PREFERENCE and not self._decides_result(match):
            return False
        match.reversed = True
        for call in list(match.calls):
            self._add_call(match, call.second, call.first)
        return True

    @abc.abstractmethod
    def _on_match_done(self, match: Match) -> None:
        """React to a finished match (``match.preference`` is set, maybe ``None``)."""

    # -- Scheduler protocol -----------------------------------------------------------------
    def next_pairs(self, limit: int | None = None) -> list[PairCall]:
        """Calls to issue now, at most ``limit``; each is returned once."""
        if self.stopped:
            return []
        cut = len(self._queue) if limit is None else max(int(limit), 0)
        calls, self._queue = self._queue[:cut], self._queue[cut:]
        self._pending.update(calls)
        return calls

    def record(self, call: PairCall, verdict: Verdict) -> None:
        """Take back a verdict; finishing a match may schedule more."""
        if not 0 <= call.match_id < len(self.matches):
            raise ValueError(f"Argument 'call' names an unknown match: {call!r}.")
        if call not in self._pending:  # not issued yet, or recorded already
            raise ValueError(f"Argument 'call' is not an outstanding call of its match: {call!r}.")
        self._pending.remove(call)
        match = self.matches[call.match_id]
        judgement = Judgement(call.first, call.second, verdict, call.match_id, call.sample)
        match.judgements.append(judgement)
        self._judgements.append(judgement)
        if match.complete:
            match.preference = combine_preferences(
                match.a, match.judgements, self.preference_mapping
            )
            if not self._ask_reverse(match):
                self._on_match_done(match)

    @property
    def done(self) -> bool:
        """No calls queued and none outstanding."""
        return not self._pending and (self.stopped or not self._queue)

    def stop(self) -> None:
        """Issue no more calls; matches left without verdicts stay undecided."""
        self.stopped = True
        self._queue = []

    def judgements(self) -> list[Judgement]:
        """Every finished call, in arrival order."""
        return list(self._judgements)

    @abc.abstractmethod
    def result(self) -> StrategyOutcome:
        """The strategy's own conclusion."""


@dataclass(eq=False, repr=False)
class FixedSchedule(MatchScheduler):
    """Matches all scheduled up front, no order of its own; notes name the matches left
    without a usable verdict, the first side after :attr:`first_label`."""

    first_label = ""

    def _on_match_done(self, match: Match) -> None:
        """Nothing to react to."""

    def result(self) -> StrategyOutcome:
        """No order of its own; notes on the matches without a usable verdict."""
        notes = tuple(
            f"match {m.match_id} ({self.first_label}{m.a} vs {m.b}): no readable verdict"
            for m in self.matches
            if m.complete and m.preference is None
        )
        return StrategyOutcome(notes=notes)


@dataclass(eq=False, repr=False, kw_only=True)
class SeededScheduler(MatchScheduler):
    """A strategy played in rounds from a seeding (knockout, swiss).

    ``seeding``: candidate indices in seed order, seed 1 first (:func:`resolve_seeding`);
    after construction, the tuple used.
    """

    seeding: Iterable[int] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        self.seeding = resolve_seeding(self.seeding, self.n_items, self.rng)
        self._seed_rank = {c: rank for rank, c in enumerate(self.seeding)}
        self.round = 0  # the round in progress, 1-based
        self._notes: list[str] = []

    def _unfinished(self, name: str, where: str) -> StrategyOutcome:
        """No conclusion from rounds left unfinished; a note says where they stopped."""
        state = "stopped" if self.stopped else "not finished"
        return StrategyOutcome(notes=(*self._notes, f"{name} {state} {where}"))
