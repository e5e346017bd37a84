"""Duplicate candidates: identical texts are judged once and share one result.

Judging two copies of a text would pay for comparisons whose answer is known and give the copies
different results by chance. The runner ranks the distinct texts (:func:`distinct`), then gives
every input candidate its text's result (:func:`expand_ranking`): the same scores and reward,
adjacent places in the order. P(best) alone is not copied: the pick among copies is the first
copy, which carries its text's P(best) while the others carry 0, so P(best) still sums to 1.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

from genrm_rank.results import Ranking

__all__ = ["DuplicateGroups", "distinct", "expand_ranking"]


@dataclass(frozen=True)
class DuplicateGroups:
    """How input candidates map onto distinct texts.

    Attributes
    ----------
    of : tuple of int
        For each input candidate, the index of its text among the distinct ones.
    members : tuple of tuple of int
        For each distinct text, the input candidates that hold it (in input order).
    """

    of: tuple[int, ...]
    members: tuple[tuple[int, ...], ...]

    @property
    def groups(self) -> tuple[tuple[int, ...], ...]:
        """The groups of two or more input candidates with the same text."""
        return tuple(m for m in self.members if len(m) > 1)

    @property
    def first(self) -> tuple[int, ...]:
        """The first input candidate of each distinct text."""
        return tuple(m[0] for m in self.members)


def distinct(candidates: Sequence[str]) -> DuplicateGroups:
    """Group the input candidates by text.

    >>> distinct(["a", "b", "a"]).groups
    ((0, 2),)
    >>> distinct(["a", "b", "a"]).of
    (0, 1, 0)
    """
    index: dict[str, int] = {}
    of = tuple(index.setdefault(text, len(index)) for text in candidates)
    members: list[list[int]] = [[] for _ in index]
    for i, u in enumerate(of):
        members[u].append(i)
    return DuplicateGroups(of, tuple(map(tuple, members)))


def expand_ranking(
    ranking: Ranking,
    candidates: Sequence[str],
    candidate_ids: Sequence[str] | None,
    groups: DuplicateGroups,
) -> Ranking:
    """A ranking of the distinct texts, spread back over every input candidate (see the module
    docstring); ``best``, ``champion`` and judgements name the first copy; a note lists the
    duplicates."""
    if not groups.groups:
        return ranking
    members = groups.members

    def first(u: int | None) -> int | None:
        return None if u is None else members[u][0]

    ids = None if candidate_ids is None else tuple(str(c) for c in candidate_ids)

    def p_best(i: int) -> float:
        shared = ranking.scores[groups.of[i]].p_best  # a NaN (no usable verdict) stays on each
        return shared if members[groups.of[i]][0] == i or math.isnan(shared) else 0.0

    scores = tuple(
        dataclasses.replace(
            ranking.scores[groups.of[i]],
            index=i,
            id=None if ids is None else ids[i],
            p_best=p_best(i),
        )
        for i in range(len(candidates))
    )
    note = (
        "duplicate candidates judged once, sharing one result: "
        + "; ".join(", ".join(map(str, g)) for g in groups.groups)
        + " (the first copy carries its text's P(best), the others 0)"
    )
    return dataclasses.replace(
        ranking,
        candidates=tuple(candidates),
        candidate_ids=ids,
        scores=scores,
        order=tuple(i for u in ranking.order for i in members[u]),
        best=first(ranking.best),
        champion=first(ranking.champion),
        components=tuple(
            tuple(sorted(i for u in c for i in members[u])) for c in ranking.components
        ),
        cycles=tuple(tuple(members[u][0] for u in c) for c in ranking.cycles),
        judgements=tuple(
            dataclasses.replace(j, first=members[j.first][0], second=members[j.second][0])
            for j in ranking.judgements
        ),
        notes=(*ranking.notes, note),
    )
