"""Baseline: every candidate meets one baseline candidate, as Arena-Hard judges models.

N-1 matches; with ``swap="both"`` (the default, as Arena-Hard) 2(N-1) calls, with ``"none"``
the baseline in slot 1. The baseline is an index, or an id looked up in ``candidate_ids`` (the
runner passes each prompt's), so one spec serves prompts whose candidates come in other orders.
The star of pairs anchors a cross-prompt Bradley-Terry fit (:func:`genrm_rank.leaderboard`).

References
----------
Li et al., "From Crowdsourced Data to High-Quality Benchmarks: Arena-Hard and BenchBuilder
Pipeline", 2024 (arXiv:2406.11939).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import InitVar, dataclass
from typing import ClassVar

from genrm_rank import validate as check
from genrm_rank.strategies.base import FixedSchedule

__all__ = ["Baseline", "baseline_index"]


def baseline_index(
    baseline: int | str, n_items: int, candidate_ids: Sequence[str] | None = None
) -> int:
    """The index of the baseline among ``n_items`` candidates; errors name the argument.

    >>> baseline_index("gpt-4", 3, ["a", "gpt-4", "b"])
    1
    >>> baseline_index(0, 3)
    0
    """
    if isinstance(baseline, str):
        if candidate_ids is None:
            raise ValueError(
                f"Argument 'baseline' is the id {baseline!r}, but the candidates carry no ids "
                "(pass candidate_ids=...)."
            )
        ids = [str(c) for c in candidate_ids]
        if ids.count(baseline) != 1:
            found = "is not" if baseline not in ids else "is more than once"
            raise ValueError(
                f"Argument 'baseline' is {baseline!r}, which {found} among the candidate ids {ids}."
            )
        return ids.index(baseline)
    if not check.is_int(baseline):
        raise TypeError(
            f"Argument 'baseline' must be a candidate index or id, not {type(baseline).__name__}."
        )
    if not 0 <= baseline < n_items:
        raise ValueError(f"Argument 'baseline' must be in 0..{n_items - 1}, not {baseline}.")
    return int(baseline)


@dataclass(eq=False, repr=False, kw_only=True)
class Baseline(FixedSchedule):
    """Matches ``(baseline, i)`` for every other candidate ``i``; no order of its own.

    Keywords as :class:`~genrm_rank.strategies.base.MatchScheduler`, and:

    Parameters
    ----------
    baseline : int or str
        The baseline's index, or its id among ``candidate_ids`` (default: candidate 0).
    candidate_ids : sequence of str, optional
        The candidates' ids, to find a baseline given by id.
    """

    takes_candidate_ids: ClassVar[bool] = True  # the runner passes each prompt's ids

    first_label = "baseline "

    baseline: int | str = 0
    candidate_ids: InitVar[Sequence[str] | None] = None

    def __post_init__(self, candidate_ids: Sequence[str] | None) -> None:
        super().__post_init__()
        if candidate_ids is not None and len(candidate_ids) != self.n_items:
            raise ValueError(
                f"Argument 'candidate_ids' must hold {self.n_items} ids, not {len(candidate_ids)}."
            )
        self.baseline = index = baseline_index(self.baseline, self.n_items, candidate_ids)
        for i in range(self.n_items):
            if i != index:
                self._add_match(index, i)
