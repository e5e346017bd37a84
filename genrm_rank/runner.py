"""The one runner: prompts in, rankings out, through one judge and one window of requests.

Every door into genrm_rank goes through :class:`Runner`: :func:`~genrm_rank.select_best`,
:func:`~genrm_rank.rank` and :func:`~genrm_rank.group_rewards` are one-prompt calls of it,
:func:`~genrm_rank.arank_many` streams prompts through it, and the SDG pipeline
(:func:`genrm_rank.sdg.process_file`, and so the ``genrm-rank`` CLI) feeds it rows. So the same
:class:`~genrm_rank.spec.RankSpec`, input and seed give the same result whichever door is used.

Each :class:`PromptInput` becomes a scheduler with the prompt's own randomness
(:meth:`RankSpec.prompt_seeds`); every prompt's scheduler runs through one
:class:`~genrm_rank.orchestrator.Orchestrator`, and each finished prompt is aggregated with
:func:`~genrm_rank.results.build_ranking` on a worker thread. A :class:`PromptResult` is yielded
per prompt in completion order: a ranking, or the reason there is none.

**The judge profile** (:mod:`genrm_rank.judge_profile`) is what every prompt assumes of the judge,
handed to a strategy that takes one (``profile=``) and to the aggregation. It never depends on
which prompts finished first:

- a profile given (``judge_profile=``) is used by every prompt;
- without one, the first ``warmup`` prompts *in input order* use
  :data:`~genrm_rank.judge_profile.DEFAULT_PROFILE`; when they have all finished, the runner
  learns a profile from their verdicts, freezes it (:attr:`Runner.profile`, ``on_profile``), and
  only then admits the prompts after them, which all use it. So a run's rows depend on its
  input, seed and settings only, at any concurrency, and a resumed run given the frozen profile
  (the CLI keeps it in its run file) continues as the uninterrupted run would have.

The prompts after the warm-up wait until its last prompt has finished
(``benchmarks/README.md``, "Judge profiles").
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
"""Prompts, in input order, that run on the default profile before a run without a given profile
learns and freezes its own (see the module)."""
LEARN_PROMPTS = 2048
"""Most prompts :meth:`Runner.learnt_profile` learns from: every ``k``-th in input order, ``k``
the smallest power of two that keeps them within this many (bounded memory and time; a profile
from 2,048 prompts is already known to a few hundredths)."""


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
        Identifies the prompt to judges (routing, replay records) and keys its randomness.
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
    """What the runner made of one prompt.

    Attributes
    ----------
    prompt : PromptInput
    ranking : Ranking or None
        ``None`` when a judge error ended the prompt before any usable verdict, or when the
        verdicts could not be aggregated.
    error : BaseException or None
        Why there is no ranking.
    error_kind : {"judge_error", "ranking_error"} or None
    duplicates : tuple of tuple of int
        Groups of input candidates with the same text (judged once, sharing one result).
    """

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
        Judge requests in flight at once, across all prompts.
    max_calls, max_tokens : int, optional
        Run-wide ceilings on paid generations and their tokens (see
        :class:`~genrm_rank.orchestrator.Orchestrator`); prompts a cap leaves unfinished are not
        yielded (:attr:`cap_reached` says which cap).
    batch_size : int
        Requests per ``judge_batch`` call for a batch judge.
    admission : {"streaming", "eager"}
        How prompts are admitted (see :class:`~genrm_rank.orchestrator.Orchestrator`).
    on_progress : callable, optional
        ``on_progress(stats, in_flight)`` after every verdict.
    failure_watch : FailureWatch, optional
        Stops the run once its verdicts fail systematically (see
        :mod:`~genrm_rank.failure_watch`).
    judge_profile : JudgeProfile or path, optional
        The judge profile every prompt uses (:mod:`genrm_rank.judge_profile`); default: learnt
        after a warm-up (see the module).
    warmup : int
        Prompts of the warm-up (at least 1; :data:`WARMUP_PROMPTS`).
    on_profile : callable, optional
        Called with the profile the warm-up froze, before any prompt after it is admitted (the
        CLI stores it in its run file).
    learn_profile : bool
        Keep prompts' verdicts, so that :meth:`learnt_profile` can learn from them (at most
        :data:`LEARN_PROMPTS`, evenly spaced in input order; off by default).
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
        if not isinstance(judge, Judge):
            raise TypeError(
                "Argument 'judge' must be a Judge (with async judge()), "
                f"not {type(judge).__name__}."
            )
        if not isinstance(spec, RankSpec):
            raise TypeError(f"Argument 'spec' must be a RankSpec, not {type(spec).__name__}.")
        self.judge, self.spec, self.on_profile = judge, spec, on_profile
        self.warmup = check.count("warmup", warmup, 1)
        self.profile: JudgeProfile | None = as_profile(judge_profile)
        """The profile prompts after the warm-up use: the one given, else the frozen one
        (``None`` until the warm-up has finished)."""
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
        """What the verdicts of the prompts run so far say of the judge (``learn_profile``).

        Learnt from every ``k``-th prompt in input order (:data:`LEARN_PROMPTS`), with the
        default profile as prior; ``ValueError`` when no prompt has a usable verdict.
        """
        if self._kept is None:
            raise ValueError("The runner keeps no verdicts: build it with learn_profile=True.")
        return learn_judge_profile([self._kept[i] for i in sorted(self._kept)])

    def job(
        self, prompt: PromptInput, profile: JudgeProfile | None = None
    ) -> tuple[PromptJob, int]:
        """The orchestrator job for one prompt, and the seed of its aggregation.

        Identical candidate texts are judged once (:mod:`genrm_rank.duplicates`): the job holds
        the distinct texts, and :meth:`result` spreads their ranking back over every input.
        ``profile`` goes to a strategy that takes one (``profile=``).
        """
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
        """Learn the profile from the warm-up's verdicts, in input order, and keep it (on a worker
        thread: seconds at N = 64, while the loop serves what is in flight)."""
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
        """Rank every prompt; yield each result as soon as its prompt is done.

        Prompts are read lazily. An invalid prompt (fewer than two candidates, a bad
        conversation) raises ``TypeError``/``ValueError`` naming the argument before any of its
        calls. A run may be continued by calling :meth:`run` again, the warm-up counting on.
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
        # Closed explicitly, so that a caller who stops early stops the requests and the worker
        # thread at once, not when the garbage collector finalises the pass.
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

        # Each finished prompt is aggregated on one worker thread, so that its few milliseconds
        # never hold the loop's requests back (issue 22).
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

        # The BLAS limit is held here, by the caller's thread, for the whole run: OpenBLAS
        # ignores a thread count set from the worker thread (tests/test_blas_threads.py), and
        # every matrix of a run is a prompt's few candidates.
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
"""Net allocations between collections of the youngest generation while a run lasts (Python's
default is 700). A run allocates hundreds of short-lived objects a comparison, nearly all freed
by reference counting; collecting every 700 took about 5% of a client's CPU
(``benchmarks/README.md``, "Client CPU, third pass")."""

_gc_lock = threading.Lock()
_gc_runs = 0
_gc_saved = gc.get_threshold()


@contextlib.contextmanager
def _run_gc() -> Iterator[None]:
    """For a run's life, freeze the heap that exists before it and collect less often.

    What exists before the run (modules, the caller's data) is never the run's garbage, but
    every full collection walks it all, in one loop step: frozen, a run's collections touch only
    what the run made (``benchmarks/README.md``, "The event loop"). Process-wide, as the
    collector is: the first of concurrent runs sets both, the last one out restores them.
    """
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
"""Finished prompts whose aggregation may wait for the caller to take their results; beyond
it the run waits too (its requests in flight go on)."""


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
