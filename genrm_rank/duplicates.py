"""Duplicate candidates: identical texts are judged once and share one result.

Low-temperature sampling often produces the same text twice. Judging both copies would pay for
comparisons whose answer is known (a text against itself), and would give the copies different
strengths, ranks and rewards by chance. Instead the runner ranks the distinct texts
(:func:`distinct`) and then gives every input candidate the result of its text
(:func:`expand_ranking`): the same scores, the same reward, adjacent places in the order. The
ranking keeps every input candidate, in input order, and says which were duplicates.

P(best) is the one score that is not copied. It is the chance that a candidate is the pick,
and the pick among copies is always the first copy (``best`` names it), so the first copy
carries its text's P(best) and the other copies 0: the P(best) of all candidates still sums to
1, and ``Ranking.p_best`` (what ``min_p_best`` reads) is the text's. Copying it to every copy
would count one text's chance once per copy.
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
    of: list[int] = []
    members: list[list[int]] = []
    for i, text in enumerate(candidates):
        u = index.setdefault(text, len(members))
        if u == len(members):
            members.append([])
        members[u].append(i)
        of.append(u)
    return DuplicateGroups(tuple(of), tuple(tuple(m) for m in members))


def expand_ranking(
    ranking: Ranking,
    candidates: Sequence[str],
    candidate_ids: Sequence[str] | None,
    groups: DuplicateGroups,
) -> Ranking:
    """A ranking of the distinct texts, spread back over every input candidate.

    Copies of one text share its scores (each under its own index and id), except P(best),
    which the first copy carries whole and the others as 0 (see the module docstring), and sit
    next to each other in ``order``; ``best`` and ``champion`` name the first copy; judgements
    name the first copy of each text; a note lists the duplicates.
    """
    if not groups.groups:
        return ranking
    members = groups.members

    def first(u: int | None) -> int | None:
        return None if u is None else members[u][0]

    ids = None if candidate_ids is None else tuple(str(c) for c in candidate_ids)

    def p_best(i: int) -> float:
        shared = ranking.scores[groups.of[i]].p_best
        # A NaN (no usable verdict) stays NaN on every copy: there is no chance to split.
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
