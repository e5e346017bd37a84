"""The scheduler seam: strategies say which ordered pairs to judge next and take verdicts back.

A strategy never waits on anything. The orchestrator asks it for calls
(:meth:`Scheduler.next_pairs`), has a judge answer them, and hands each verdict back
(:meth:`Scheduler.record`) until the strategy is :attr:`~Scheduler.done`. One orchestrator can
so run thousands of strategies, one per prompt, through one judge and one window of in-flight
requests.

Most strategies think in *matches* between two candidates; :class:`MatchScheduler` turns each
match into ordered calls according to the swap mode and combines the verdicts back into one
preference:

- ``swap="both"``: each sample is judged in both orders and combined softly,
  ``0.5 * (p_ab + 1 - p_ba)`` (Zheng et al. 2023; NVIDIA's evaluation averages both orders);
- ``swap="random"``: one call per sample, in a seeded random order;
- ``swap="none"``: one call per sample, in the order the strategy proposes;
- ``swap="auto"``: one call per sample in a seeded random order, and the reverse order only
  where it pays: when the first verdicts are close (mean ranking 3 to 4, where a slot-1 bias
  can decide the call), when none of them is usable, or when the match decides the strategy's
  result (:meth:`MatchScheduler._decides_result`, e.g. a knockout's final).
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
    "StrategyOutcome",
    "SwapMode",
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


@dataclass(frozen=True)
class PairCall:
    """One ordered comparison a scheduler wants judged: ``first`` in slot 1, ``second`` in slot 2.

    ``sample`` numbers repeated judgements of the same ordered pair within one run.
    """

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
    """A contest between candidates ``a`` and ``b``, made of one or more ordered calls."""

    match_id: int
    a: int
    b: int
    round: int = 0
    calls: list[PairCall] = field(default_factory=list)
    judgements: list[Judgement] = field(default_factory=list)
    preference: float | None = None
    """Combined strength in [0, 1] with which ``a`` beats ``b``; ``None`` if none is usable."""
    reversed: bool = False
    """``swap="auto"``: whether the reverse order was asked for after the first verdicts."""

    @property
    def complete(self) -> bool:
        """Whether every call of the match has come back."""
        return len(self.judgements) == len(self.calls)


@dataclass(frozen=True)
class StrategyOutcome:
    """What a strategy itself concluded, beyond the comparisons it made.

    ``best`` is the strategy's own winner (a knockout's champion), ``order`` its own full order
    when it defines one; ``None`` leaves it to the aggregator. ``notes`` explains decisions that
    had no usable verdict (e.g. a knockout match settled by a coin). ``p_best`` is the P(best)
    of each candidate the strategy decided on, when it decides on one (adaptive selection's
    stopping rule): the ranking reports it rather than drawing its own. ``budget_bound`` says
    that a budget stopped the strategy before its own stopping rule did, when the strategy took
    that budget as its own (the orchestrator cannot tell then).
    """

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
        """Calls to issue now (each returned once), at most ``limit`` of them.

        Empty while awaiting verdicts or when done. Calls held back by ``limit`` stay queued for
        a later call (or are dropped by :meth:`stop`).
        """
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

    Verdicts with ``a`` in slot 1 give ``p``, those with ``a`` in slot 2 give ``1 - p``; when
    both orders have usable verdicts, the two orders' means are averaged with equal weight
    (``0.5 * (p_ab + 1 - p_ba)``), so a judge's position bias cancels. Failed verdicts are left
    out; ``None`` when none is usable.
    """
    usable = [j for j in judgements if j.verdict.ok]
    as_first = [j.verdict.preference_with(mapping) for j in usable if j.first == a]
    # Slot-1 strength of the opponent in the calls where ``a`` sat in slot 2.
    as_second = [j.verdict.preference_with(mapping) for j in usable if j.second == a]
    if as_first and as_second:
        # 0.5 * (p_ab + 1 - p_ba), written as a difference so that a judge with pure position
        # bias (identical verdicts in both orders) gives exactly 0.5 for any number of samples.
        return 0.5 + 0.5 * (fmean(as_first) - fmean(as_second))
    if as_first:
        return fmean(as_first)
    return 1.0 - fmean(as_second) if as_second else None


def resolve_seeding(
    seeding: Iterable[int] | None, n_items: int, rng: np.random.Generator
) -> tuple[int, ...]:
    """A seeding (candidate indices, seed 1 first) checked to be a permutation of ``n_items``.

    ``None`` draws a random seeding from ``rng``. Shared by the strategies that seed candidates
    (knockout, swiss); not part of the public API.
    """
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
    """Base for strategies made of matches; handles swap modes, samples and bookkeeping.

    A strategy is a dataclass: it declares the keywords it adds (and, to change it, the default
    of ``swap``) as fields, schedules its first matches in ``__post_init__`` after calling this
    class's, and implements :meth:`_on_match_done` (react to a finished match, e.g. schedule the
    next round) and :meth:`result`. Subclasses call :meth:`_add_match` to schedule matches.

    Parameters
    ----------
    n_items : int
        Number of candidates (>= 2).
    swap : {"both", "random", "none", "auto"}
    samples : int
        Judgements per match and order (``k``).
    seed : int or numpy.random.Generator, optional
        Source of every random choice the strategy makes (orders, seeding, coins).
    preference_mapping : callable, optional
        Ranking (1..6) to preference (0..1); default :func:`~genrm_rank.verdict.linear_preference`.
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
        if not callable(self.preference_mapping):
            raise TypeError(
                "Argument 'preference_mapping' must be callable, "
                f"not {type(self.preference_mapping).__name__}."
            )
        self.matches: list[Match] = []
        self._queue: list[PairCall] = []
        self._outstanding = 0
        self._judgements: list[Judgement] = []
        self._stopped = False
        self._samples_of: dict[tuple[int, int], int] = {}
        self._pending: set[PairCall] = set()

    # -- for subclasses ---------------------------------------------------------------------
    def _add_match(self, a: int, b: int, round: int = 0) -> Match:
        """Schedule a match between ``a`` and ``b`` (``a`` in slot 1 when the order is free)."""
        if a == b:
            raise ValueError(f"A match needs two different candidates, not {a} and {b}.")
        match = Match(len(self.matches), a, b, round)
        orders: list[tuple[int, int]] = []
        for _ in range(self.samples):
            if self.swap == "both":
                orders += [(a, b), (b, a)]
            elif self.swap in ("random", "auto"):
                orders.append((a, b) if self.rng.random() < 0.5 else (b, a))
            else:
                orders.append((a, b))
        for first, second in orders:
            sample = self._samples_of.get((first, second), 0)
            self._samples_of[(first, second)] = sample + 1
            match.calls.append(PairCall(first, second, match.match_id, sample))
        self.matches.append(match)
        self._queue.extend(match.calls)
        return match

    def _decides_result(self, match: Match) -> bool:
        """``swap="auto"``: whether this match decides the result (then both orders are judged).

        No match does by default; a knockout's final does.
        """
        return False

    def _ask_reverse(self, match: Match) -> bool:
        """``swap="auto"``: schedule the reverse order of a match's first calls if that pays."""
        if self.swap != "auto" or match.reversed or self._stopped:
            return False
        p = match.preference
        if p is not None and abs(p - 0.5) > CLOSE_PREFERENCE and not self._decides_result(match):
            return False
        match.reversed = True
        for call in list(match.calls):
            first, second = call.second, call.first
            sample = self._samples_of.get((first, second), 0)
            self._samples_of[(first, second)] = sample + 1
            reverse = PairCall(first, second, match.match_id, sample)
            match.calls.append(reverse)
            self._queue.append(reverse)
        return True

    @abc.abstractmethod
    def _on_match_done(self, match: Match) -> None:
        """React to a finished match (``match.preference`` is set, maybe ``None``)."""

    # -- Scheduler protocol -----------------------------------------------------------------
    def next_pairs(self, limit: int | None = None) -> list[PairCall]:
        """Calls to issue now, at most ``limit``; each is returned once."""
        if self._stopped:
            return []
        cut = len(self._queue) if limit is None else max(int(limit), 0)
        calls, self._queue = self._queue[:cut], self._queue[cut:]
        self._outstanding += len(calls)
        self._pending.update(calls)
        return calls

    def record(self, call: PairCall, verdict: Verdict) -> None:
        """Take back a verdict; finishing a match may schedule more."""
        if not 0 <= call.match_id < len(self.matches):
            raise ValueError(f"Argument 'call' names an unknown match: {call!r}.")
        match = self.matches[call.match_id]
        if call not in self._pending:
            # Not issued by next_pairs yet, or already recorded: either would corrupt the count
            # of outstanding calls (and a match could complete on one verdict counted twice).
            raise ValueError(f"Argument 'call' is not an outstanding call of its match: {call!r}.")
        self._pending.remove(call)
        judgement = Judgement(call.first, call.second, verdict, call.match_id, call.sample)
        match.judgements.append(judgement)
        self._judgements.append(judgement)
        self._outstanding -= 1
        if match.complete:
            match.preference = combine_preferences(
                match.a, match.judgements, self.preference_mapping
            )
            if self._ask_reverse(match):
                return
            self._on_match_done(match)

    @property
    def done(self) -> bool:
        """No calls queued and none outstanding."""
        return self._outstanding == 0 and (self._stopped or not self._queue)

    def stop(self) -> None:
        """Issue no more calls; matches left without verdicts stay undecided."""
        self._stopped = True
        self._queue = []

    @property
    def stopped(self) -> bool:
        """Whether :meth:`stop` was called."""
        return self._stopped

    def judgements(self) -> list[Judgement]:
        """Every finished call, in arrival order."""
        return list(self._judgements)

    @abc.abstractmethod
    def result(self) -> StrategyOutcome:
        """The strategy's own conclusion."""


@dataclass(eq=False, repr=False)
class FixedSchedule(MatchScheduler):
    """A strategy whose matches are all scheduled up front (circular, baseline).

    It has no order of its own (the aggregator ranks from the comparisons); its notes name the
    matches left without a usable verdict. Subclasses schedule their matches in ``__post_init__``
    and may label the first side of a match (:attr:`first_label`).
    """

    first_label = ""
    """Written before the first candidate of a match in the notes (e.g. ``"baseline "``)."""

    def _on_match_done(self, match: Match) -> None:
        """Nothing to react to: every match was scheduled up front."""

    def result(self) -> StrategyOutcome:
        """No order of its own; notes name the matches left without a usable verdict."""
        notes = tuple(
            f"match {m.match_id} ({self.first_label}{m.a} vs {m.b}): no readable verdict"
            for m in self.matches
            if m.complete and m.preference is None
        )
        return StrategyOutcome(notes=notes)
