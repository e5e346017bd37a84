"""A judge that answers from a record of real verdicts on ordered pairs.

Strategies are measured on real noise, position bias and intransitivity this way; the QLoRA
record of GPT-4 on the Vicuna benchmark (``vicuna_gpt4_pairwise.jsonl``) loads with
:meth:`ReplayJudge.from_jsonl` as it is. Three-class labels map to the ranking scale so:

===========  =========  ============================================
record       ranking    meaning
===========  =========  ============================================
``A``        1          slot 1 wins (preference 1.0)
``B``        6          slot 2 wins (preference 0.0)
``tie``      3.5        no preference (0.5); the GenRM scale has no tie value
``error``    (failed)   the judge's text could not be read: ``unreadable``
===========  =========  ============================================

References
----------
Dettmers et al., "QLoRA: Efficient Finetuning of Quantized LLMs", 2023 (arXiv:2305.14314).
Zheng et al., "Judging LLM-as-a-Judge with MT-Bench and Chatbot Arena", 2023 (arXiv:2306.05685).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from genrm_rank.errors import ReplayMissError
from genrm_rank.judges.base import PairRequest
from genrm_rank.textfiles import open_text
from genrm_rank.verdict import FailureKind, Verdict

__all__ = ["WINNER_RANKINGS", "ReplayJudge", "ReplayRecord"]

WINNER_RANKINGS: Mapping[str, float] = {"A": 1.0, "B": 6.0, "tie": 3.5}
"""Ranking written for each three-class winner label."""


@dataclass(frozen=True)
class ReplayRecord:
    """One recorded verdict on an ordered pair: ``first`` was shown in slot 1."""

    prompt_id: str
    first: str
    second: str
    winner: str

    def verdict(self) -> Verdict:
        """The record as a :class:`~genrm_rank.verdict.Verdict` (see the module's table)."""
        if self.winner in WINNER_RANKINGS:
            return Verdict(ranking=WINNER_RANKINGS[self.winner], raw=self.winner)
        error = f"the recorded judge's answer was {self.winner!r}"
        return Verdict.failed(FailureKind.UNREADABLE, raw=self.winner, error=error)


class ReplayJudge:
    """Answers comparisons from recorded verdicts.

    Requests are matched on ``(prompt_id, id_1, id_2)`` (ids default to the candidate indices,
    ``"0"``, ``"1"``, ...); the request's ``sample`` picks among a pair's records (cycling). A
    pair with no record raises :class:`~genrm_rank.errors.ReplayMissError`: it is never guessed.

    Parameters
    ----------
    records : iterable of ReplayRecord
    """

    def __init__(self, records: Iterable[ReplayRecord]) -> None:
        table: dict[tuple[str, str, str], list[ReplayRecord]] = defaultdict(list)
        for record in records:
            table[(record.prompt_id, record.first, record.second)].append(record)
        self._table = dict(table)
        self.calls = 0

    @classmethod
    def from_jsonl(
        cls,
        path: str | Path,
        *,
        prompt_field: str = "qid",
        first_field: str = "model_a",
        second_field: str = "model_b",
        winner_field: str = "winner",
    ) -> ReplayJudge:
        """Load a JSONL record, plain, gzip or zstandard (defaults: the QLoRA Vicuna record)."""
        records = []
        with open_text(path) as handle:
            for line_number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    fields = (prompt_field, first_field, second_field, winner_field)
                    records.append(ReplayRecord(*(str(row[name]) for name in fields)))
                except (json.JSONDecodeError, KeyError, TypeError) as exc:
                    raise ValueError(
                        f"{path}:{line_number}: cannot read a replay record ({exc!r})."
                    ) from exc
        return cls(records)

    @property
    def records(self) -> list[ReplayRecord]:
        """Every record, in load order within each pair."""
        return [r for rows in self._table.values() for r in rows]

    def prompt_ids(self) -> list[str]:
        """The prompts the record covers, in first-seen order."""
        return list(dict.fromkeys(key[0] for key in self._table))

    def candidates(self, prompt_id: str) -> list[str]:
        """The candidate ids recorded for one prompt, sorted."""
        return sorted({name for key in self._table if key[0] == prompt_id for name in key[1:]})

    def lookup(self, prompt_id: str, first: str, second: str, sample: int = 0) -> Verdict:
        """The recorded verdict for ``first`` (slot 1) against ``second`` (slot 2)."""
        rows = self._table.get((prompt_id, first, second))
        if not rows:
            raise ReplayMissError(
                f"The replay record has no verdict for prompt {prompt_id!r} with {first!r} in "
                f"slot 1 and {second!r} in slot 2."
            )
        return rows[sample % len(rows)].verdict()

    async def judge(self, request: PairRequest) -> Verdict:
        """The recorded verdict for this ordered pair."""
        first = request.id_1 if request.id_1 is not None else str(request.index_1)
        second = request.id_2 if request.id_2 is not None else str(request.index_2)
        verdict = self.lookup(request.prompt_id, first, second, request.sample)
        self.calls += 1
        return verdict

    async def judge_batch(self, requests: Sequence[PairRequest]) -> list[Verdict]:
        """Judge many requests in one go."""
        return [await self.judge(r) for r in requests]
