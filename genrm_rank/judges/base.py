"""The judge seam: :class:`PairRequest` in, :class:`~genrm_rank.verdict.Verdict` out.

A judge is anything with ``async def judge(self, request) -> Verdict``; one that serves many
requests in one go (in-process vLLM) also has ``judge_batch``, which :func:`judge_many` uses.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol, runtime_checkable

from genrm_rank.messages import Conversation, Message, build_messages, normalize_conversation
from genrm_rank.verdict import Verdict

__all__ = ["BatchJudge", "Judge", "PairRequest", "judge_many"]


@dataclass(frozen=True)
class PairRequest:
    """One comparison to judge: a conversation and the two candidates in their slots.

    Attributes
    ----------
    conversation : str or list of dict
        The prompt (one user turn) or the chat history ending with a user turn.
    response_1, response_2 : str
        Candidate texts in slot 1 and slot 2.
    principle : str, optional
        Rubric for the judge.
    prompt_id : str
        The prompt (row) the comparison belongs to.
    index_1, index_2 : int
        The two candidates' indices among the prompt's candidates.
    id_1, id_2 : str, optional
        Their stable ids (e.g. the system that wrote them).
    sample, attempt : int
        Which repeated sample of the same ordered comparison, and which re-ask after a failed
        verdict, this is (0 for the first); both are part of a cache key.
    """

    conversation: Conversation
    response_1: str
    response_2: str
    principle: str | None = None
    prompt_id: str = ""
    index_1: int = 0
    index_2: int = 1
    id_1: str | None = None
    id_2: str | None = None
    sample: int = 0
    attempt: int = 0
    # init=False: dataclasses.replace() must not carry a cache built for other texts.
    _messages: list[Message] | None = field(
        default=None, init=False, repr=False, compare=False, hash=False
    )

    def messages(self) -> list[Message]:
        """The chat messages (:func:`~genrm_rank.messages.build_messages`), built once; a copy."""
        cached = self._messages
        if cached is None:
            cached = build_messages(
                self.conversation, self.response_1, self.response_2, self.principle
            )
            object.__setattr__(self, "_messages", cached)
        return [dict(m) for m in cached]

    def swapped(self) -> PairRequest:
        """The same comparison with the two candidates' slots exchanged."""
        return replace(
            self,
            response_1=self.response_2,
            response_2=self.response_1,
            index_1=self.index_2,
            index_2=self.index_1,
            id_1=self.id_2,
            id_2=self.id_1,
        )

    def prefix_key(self) -> str:
        """A short digest of the conversation: equal for every comparison of one prompt."""
        history = normalize_conversation(self.conversation)
        blob = json.dumps(history, ensure_ascii=False, sort_keys=True)
        return hashlib.blake2b(blob.encode(), digest_size=8).hexdigest()


@runtime_checkable
class Judge(Protocol):
    """Anything that judges one ordered pair."""

    async def judge(self, request: PairRequest) -> Verdict:
        """Judge ``request.response_1`` (slot 1) against ``request.response_2`` (slot 2)."""
        ...


@runtime_checkable
class BatchJudge(Judge, Protocol):
    """A judge that can also take many requests at once."""

    async def judge_batch(self, requests: Sequence[PairRequest]) -> list[Verdict]:
        """Judge every request; the i-th verdict answers the i-th request."""
        ...


async def judge_many(judge: Judge, requests: Sequence[PairRequest]) -> list[Verdict]:
    """Judge many requests: one ``judge_batch`` call if the judge has it, else concurrently."""
    if not requests:
        return []
    if isinstance(judge, BatchJudge):
        verdicts = await judge.judge_batch(requests)
        if len(verdicts) != len(requests):
            raise RuntimeError(
                f"{type(judge).__name__}.judge_batch returned {len(verdicts)} verdicts "
                f"for {len(requests)} requests."
            )
        return list(verdicts)
    return list(await asyncio.gather(*(judge.judge(r) for r in requests)))
