"""The one runner: prompts in, rankings out, through one judge and one window of requests.

Every door (:func:`~genrm_rank.select_best`, :func:`~genrm_rank.rank`,
:func:`~genrm_rank.group_rewards`, :func:`~genrm_rank.arank_many`, the SDG pipeline and so the
CLI) goes through :class:`Runner`, so one :class:`~genrm_rank.spec.RankSpec`, input and seed
give one result whichever is used. Each prompt's scheduler, seeded by
:meth:`RankSpec.prompt_seeds`, runs through one :class:`~genrm_rank.orchestrator.Orchestrator`;
each finished prompt is aggregated (:func:`~genrm_rank.results.build_ranking`) on a worker thread.

**The judge profile** every prompt assumes never depends on which prompts finished first: the
one given (``judge_profile=``), else :data:`~genrm_rank.judge_profile.DEFAULT_PROFILE` for the
first ``warmup`` prompts in input order, then one learnt from their verdicts and frozen
(:attr:`Runner.profile`, ``on_profile``) before any later prompt is admitted. So rows depend on
input, seed and settings only, and a resume given the frozen profile continues as the
uninterrupted run would have (``benchmarks/README.md``, "Judge profiles").
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import inspect
import json
import threading
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Callable,
    Iterable,
    Iterator,
    Sequence,
)
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

from genrm_rank import validate as check
from genrm_rank.aggregators import Comparisons
from genrm_rank.blas_threads import one_blas_thread
from genrm_rank.duplicates import DuplicateGroups, distinct, expand_ranking
from genrm_rank.failure_watch import FailureWatch
from genrm_rank.judge_profile import (
    DEFAULT_PROFILE,
    JudgeProfile,
    ProfileLike,
    as_profile,
    learn_judge_profile,
)
from genrm_rank.judges.base import Judge
from genrm_rank.messages import Conversation, normalize_conversation
from genrm_rank.orchestrator import (
    JudgeStatistics,
    Orchestrator,
    ProgressCallback,
    PromptJob,
    PromptRun,
    aiterate,
)
from genrm_rank.results import Ranking, build_ranking, judgements_to_comparisons
from genrm_rank.spec import RankSpec
from genrm_rank.strategies import STRATEGIES, make_strategy

__all__ = [
    "LEARN_PROMPTS",
    "WARMUP_PROMPTS",
    "PromptInput",
    "PromptResult",
    "Runner",
    "check_candidates",
]

WARMUP_PROMPTS = 32
"""Prompts, in input order, that run on the default profile before the profile is learnt."""
LEARN_PROMPTS = 2048
"""Most prompts :meth:`Runner.learnt_profile` learns from: every ``k``-th in input order, ``k``
the smallest power of two that keeps them within this many."""


def check_candidates(candidates: Sequence[str], name: str = "candidates") -> list[str]:
    """The candidates as a list of at least two strings; errors name the argument."""
    if isinstance(candidates, str) or not isinstance(candidates, Sequence):
        raise TypeError(
            f"Argument '{name}' must be a sequence of strings, not {type(candidates).__name__}."
        )
    for i, text in enumerate(candidates):
        if not isinstance(text, str):
            raise TypeError(f"Argument '{name}[{i}]' must be a string, not {type(text).__name__}.")
    if len(candidates) < 2:
        raise ValueError(
            f"Argument '{name}' must hold at least 2 candidates, not {len(candidates)}."
        )
    return list(candidates)


@dataclass(frozen=True)
class PromptInput:
    """One prompt to rank.

    Attributes
    ----------
    conversation : str or list of dict
        The prompt, or the chat history ending with a user turn.
    candidates : sequence of str
        At least two candidate responses.
    principle : str, optional
        A rubric for the judge.
    prompt_id : str
        Identifies the prompt to judges and keys its randomness (:meth:`seed_key`).
    candidate_ids : sequence of str, optional
        Stable ids of the candidates (the system that wrote each, say).
    key : object
        The caller's handle, returned on the result untouched.
    """

    conversation: Conversation
    candidates: Sequence[str]
    principle: str | None = None
    prompt_id: str = ""
    candidate_ids: Sequence[str] | None = None
    key: Any = None

    def seed_key(self) -> str:
        """What keys this prompt's randomness: its id, else a digest of its content."""
        if self.prompt_id:
            return f"id:{self.prompt_id}"
        blob = json.dumps(
            [normalize_conversation(self.conversation), list(self.candidates), self.principle],
            ensure_ascii=False,
            sort_keys=True,
        )
        return "content:" + hashlib.blake2b(blob.encode(), digest_size=16).hexdigest()


ErrorKind = Literal["judge_error", "ranking_error"]


@dataclass(frozen=True)
class PromptResult:
    """What the runner made of one prompt: a ranking, or the ``error`` (and its kind) that left
    none. ``duplicates``: groups of input candidates with the same text, judged once."""

    prompt: PromptInput
    ranking: Ranking | None
    error: BaseException | None = None
    error_kind: ErrorKind | None = None
    duplicates: tuple[tuple[int, ...], ...] = ()

    @property
    def ok(self) -> bool:
        """Whether there is a ranking with a best candidate."""
        return self.ranking is not None and self.ranking.best is not None


class Runner:
    """Ranks prompts through one judge, as a :class:`~genrm_rank.spec.RankSpec` says.

    Parameters
    ----------
    judge : Judge
    spec : RankSpec
    concurrency : int
        Judge requests in flight at once, across all prompts (``max_in_flight``).
    max_calls, max_tokens, batch_size, admission, on_progress, failure_watch
        As :class:`~genrm_rank.orchestrator.Orchestrator`'s; prompts a cap leaves unfinished
        are not yielded.
    judge_profile : JudgeProfile or path, optional
        The profile every prompt uses; default: learnt after a warm-up (see the module).
    warmup : int
        Prompts of the warm-up (at least 1).
    on_profile : callable, optional
        Called with the profile the warm-up froze, before any prompt after it is admitted.
    learn_profile : bool
        Keep prompts' verdicts for :meth:`learnt_profile`.
    """

    def __init__(
        self,
        judge: Judge,
        spec: RankSpec,
        *,
        concurrency: int = 64,
        max_calls: int | None = None,
        max_tokens: int | None = None,
        batch_size: int = 1,
        admission: str = "streaming",
        on_progress: ProgressCallback | None = None,
        failure_watch: FailureWatch | None = None,
        judge_profile: ProfileLike | None = None,
        warmup: int = WARMUP_PROMPTS,
        on_profile: Callable[[JudgeProfile], None] | None = None,
        learn_profile: bool = False,
    ) -> None:
        what = "a Judge (with async judge())"
        self.judge = check.instance("judge", judge, Judge, what)  # type: ignore[type-abstract]
        self.spec = check.instance("spec", spec, RankSpec)
        self.on_profile = on_profile
        self.warmup = check.count("warmup", warmup, 1)
        self.profile: JudgeProfile | None = as_profile(judge_profile)
        """The profile given, else the frozen one (``None`` until the warm-up has finished)."""
        self._received = 0
        self._warm: dict[int, Comparisons] = {}
        self._kept: dict[int, Comparisons] | None = {} if learn_profile else None
        self._stride = 1
        self._takes_profile = "profile" in inspect.signature(STRATEGIES[spec.strategy]).parameters
        self.orchestrator = Orchestrator(
            judge,
            max_in_flight=concurrency,
            retries=spec.retries,
            batch_size=batch_size,
            max_calls=max_calls,
            max_tokens=max_tokens,
            on_progress=on_progress,
            admission=admission,
            failure_watch=failure_watch,
        )

    @property
    def stats(self) -> JudgeStatistics:
        """Judge statistics pooled over every prompt run so far (calls, tokens, bias)."""
        return self.orchestrator.stats

    @property
    def cap_reached(self) -> str | None:
        """The run-wide cap that stopped the run, if one did."""
        return self.orchestrator.cap_reached

    @property
    def warming_up(self) -> bool:
        """Whether the next prompt is one of the warm-up's (no profile given or frozen yet)."""
        return self.warmup_left > 0

    @property
    def warmup_left(self) -> int:
        """Prompts still to come before the warm-up is complete (0 with a profile)."""
        return 0 if self.profile is not None else max(self.warmup - self._received, 0)

    def learnt_profile(self) -> JudgeProfile:
        """What the kept verdicts (``learn_profile``, :data:`LEARN_PROMPTS`) say of the judge;
        ``ValueError`` when no prompt has a usable verdict."""
        if self._kept is None:
            raise ValueError("The runner keeps no verdicts: build it with learn_profile=True.")
        return learn_judge_profile([self._kept[i] for i in sorted(self._kept)])

    def job(
        self, prompt: PromptInput, profile: JudgeProfile | None = None
    ) -> tuple[PromptJob, int]:
        """The orchestrator job for one prompt (its distinct texts, :mod:`~genrm_rank.duplicates`)
        and the seed of its aggregation; ``profile`` goes to a strategy that takes one."""
        groups = distinct(check_candidates(prompt.candidates))
        if len(groups.members) < 2:
            raise ValueError(
                "Argument 'candidates' must hold at least 2 distinct texts, not "
                f"{len(groups.members)} ({len(prompt.candidates)} candidates, all the same)."
            )
        ids = None if prompt.candidate_ids is None else [str(c) for c in prompt.candidate_ids]
        normalize_conversation(prompt.conversation)  # fail early, naming the argument
        seeds, spec = self.spec.prompt_seeds(prompt.seed_key()), self.spec
        options = dict(spec.strategy_options)
        if profile is not None and self._takes_profile and "profile" not in options:
            options["profile"] = profile
        if getattr(STRATEGIES[spec.strategy], "takes_candidate_ids", False):
            options["candidate_ids"] = ids  # a baseline names candidates by id
        scheduler = make_strategy(
            spec.strategy,
            len(groups.first),
            swap=spec.swap,
            samples=spec.samples,
            seed=seeds.strategy,
            preference_mapping=spec.preference_mapping,
            **options,
        )
        job = PromptJob(
            conversation=prompt.conversation,
            scheduler=scheduler,
            principle=prompt.principle,
            candidates=[prompt.candidates[i] for i in groups.first],
            prompt_id=prompt.prompt_id,
            candidate_ids=None if ids is None else [ids[i] for i in groups.first],
            budget=spec.budget,
            key=(prompt, groups),
        )
        return job, seeds.aggregation

    def result(
        self, run: PromptRun, seed: int, profile: JudgeProfile | None = None
    ) -> PromptResult:
        """Aggregate one finished prompt (``profile``: the judge profile it used)."""
        prompt: PromptInput
        groups: DuplicateGroups
        prompt, groups = run.job.key
        dups = groups.groups
        if run.error is not None and not any(j.verdict.ok for j in run.judgements):
            return PromptResult(prompt, None, run.error, "judge_error", dups)
        try:
            ranking = build_ranking(run, self.spec, seed=seed, profile=profile)
            ranking = expand_ranking(ranking, prompt.candidates, prompt.candidate_ids, groups)
        except Exception as error:  # one prompt's failure must not end a run of many
            return PromptResult(prompt, None, error, "ranking_error", dups)
        return PromptResult(prompt, ranking, duplicates=dups)

    def _comparisons(self, run: PromptRun) -> Comparisons:
        """A finished prompt's usable verdicts, in a fixed order (not their arrival order)."""
        judgements = sorted(run.judgements, key=lambda j: (j.match_id, j.sample, j.first, j.second))
        return judgements_to_comparisons(
            len(run.job.candidates), judgements, preference_mapping=self.spec.preference_mapping
        )

    async def _freeze(self) -> None:
        """Learn the profile from the warm-up's verdicts, in input order, on a worker thread."""
        warm = [self._warm[i] for i in sorted(self._warm)]
        try:
            profile = await asyncio.to_thread(learn_judge_profile, warm)
        except ValueError:  # no usable verdict in the warm-up: nothing learnt
            profile = DEFAULT_PROFILE
        self.profile = profile
        self._warm.clear()
        if self.on_profile is not None:
            self.on_profile(profile)

    async def run(
        self, prompts: Iterable[PromptInput] | AsyncIterable[PromptInput]
    ) -> AsyncIterator[PromptResult]:
        """Rank every prompt (read lazily); yield each result as soon as its prompt is done.

        An invalid prompt raises ``TypeError``/``ValueError`` naming the argument before any of
        its calls. Calling :meth:`run` again continues the run, the warm-up counting on.
        """
        source = aiterate(prompts)
        exhausted = False

        async def warmup() -> AsyncIterator[PromptInput]:
            nonlocal exhausted
            while self._received < self.warmup:
                try:
                    yield await source.__anext__()
                except StopAsyncIteration:
                    exhausted = True
                    return

        if self.warming_up:
            async with contextlib.aclosing(self._run(warmup(), warm=True)) as results:
                async for result in results:
                    yield result
            if self.cap_reached is not None or exhausted:
                return
            if self._received >= self.warmup:
                with one_blas_thread():  # held here: the learning runs on a worker thread
                    await self._freeze()
        # Closed explicitly: a caller who stops early stops the requests and the thread at once.
        async with contextlib.aclosing(self._run(source, warm=False)) as results:
            async for result in results:
                yield result

    async def _run(
        self, prompts: AsyncIterable[PromptInput], *, warm: bool
    ) -> AsyncGenerator[PromptResult, None]:
        """One pass of the orchestrator: warm-up prompts on the default profile, or the rest."""
        profile = DEFAULT_PROFILE if warm else self.profile
        seeds: dict[int, tuple[int, int]] = {}

        async def jobs() -> AsyncIterator[PromptJob]:
            async for prompt in prompts:
                job, seed = self.job(prompt, profile)
                seeds[id(job)] = (seed, self._received)
                self._received += 1
                yield job

        loop = asyncio.get_running_loop()
        aggregated: asyncio.Queue[asyncio.Future[PromptResult]] = asyncio.Queue(AGGREGATIONS_QUEUED)

        # One worker thread aggregates, so that it never holds the loop's requests back.
        pool = ThreadPoolExecutor(1, thread_name_prefix="genrm-rank-aggregate")

        async def feed() -> None:
            async for run in self.orchestrator.run(jobs()):
                seed, index = seeds.pop(id(run.job))
                if warm or self._kept is not None:
                    comparisons = self._comparisons(run)
                    if warm:
                        self._warm[index] = comparisons
                    if self._kept is not None and index % self._stride == 0:
                        self._kept[index] = comparisons
                        while len(self._kept) > LEARN_PROMPTS:  # every other one, input order
                            self._stride *= 2
                            self._kept = {
                                i: c for i, c in self._kept.items() if i % self._stride == 0
                            }
                aggregation = loop.run_in_executor(pool, self.result, run, seed, profile)
                await aggregated.put(aggregation)

        # One BLAS thread, held by the caller's thread (OpenBLAS ignores a count set from the
        # worker thread): every matrix of a run is a prompt's few candidates.
        feeder = asyncio.create_task(feed())
        try:
            with one_blas_thread(), _run_gc():
                while (future := await _next(aggregated, feeder)) is not None:
                    yield await future
                await feeder  # the run's own error, if it ended with one
        finally:
            feeder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await feeder
            pool.shutdown(wait=True, cancel_futures=True)  # at most the one it is on


GC_THRESHOLD = 10_000
"""Net allocations between youngest-generation collections while a run lasts (Python's default,
700, took a few percent of a client's CPU: ``benchmarks/README.md``, "Client CPU, third pass")."""

_gc_lock = threading.Lock()
_gc_runs = 0
_gc_saved = gc.get_threshold()


@contextlib.contextmanager
def _run_gc() -> Iterator[None]:
    """For a run's life, freeze the heap that exists before it (never the run's garbage) and
    collect less often (``benchmarks/README.md``, "The event loop"). Process-wide: the first of
    concurrent runs sets both, the last one out restores them."""
    global _gc_runs, _gc_saved
    with _gc_lock:
        _gc_runs += 1
        if _gc_runs == 1:
            _gc_saved = gc.get_threshold()
            gc.freeze()
            if _gc_saved[0]:  # 0: the caller turned automatic collection off
                gc.set_threshold(max(GC_THRESHOLD, _gc_saved[0]), *_gc_saved[1:])
    try:
        yield
    finally:
        with _gc_lock:
            _gc_runs -= 1
            if _gc_runs == 0:
                gc.unfreeze()
                gc.set_threshold(*_gc_saved)


AGGREGATIONS_QUEUED = 64
"""Finished prompts whose results may wait for the caller; beyond it the run waits too."""


async def _next(
    queue: asyncio.Queue[asyncio.Future[PromptResult]], feeder: asyncio.Task[None]
) -> asyncio.Future[PromptResult] | None:
    """The next aggregation in finishing order; ``None`` once the feeder has ended."""
    while True:
        if not queue.empty():
            return queue.get_nowait()
        if feeder.done():
            return None
        getter = asyncio.ensure_future(queue.get())
        try:
            await asyncio.wait({getter, feeder}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            getter.cancel()
        if getter.done() and not getter.cancelled():
            return getter.result()
