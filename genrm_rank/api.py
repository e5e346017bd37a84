"""The public entry points: :func:`select_best`, :func:`rank`, :func:`group_rewards`,
:func:`arank_many` for many prompts at once, and :func:`leaderboard`.

Each is a call of the one :class:`~genrm_rank.runner.Runner` with a
:class:`~genrm_rank.spec.RankSpec`: a ``spec``, or its fields as keyword arguments, never both,
with the matching CLI command's defaults shown in the signature. Each has one async
implementation; the sync names are :func:`asyncio.run` wrappers, like ``httpx.get``.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import AsyncIterable, AsyncIterator, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ParamSpec, Protocol, TypeVar

import numpy as np
from numpy.typing import NDArray
from typing_extensions import Unpack

from genrm_rank.aggregators import (
    LeaderboardTable,
    bradley_terry,
    fit_leaderboard,
    mean_score,
    simple_tiebreaker,
    win_rate,
)
from genrm_rank.duplicates import distinct
from genrm_rank.judge_profile import ProfileLike
from genrm_rank.judges.base import Judge
from genrm_rank.messages import Conversation
from genrm_rank.results import Ranking, judgements_to_comparisons
from genrm_rank.runner import PromptInput, PromptResult, Runner
from genrm_rank.spec import (
    RANK_DEFAULTS,
    REWARD_DEFAULTS,
    SELECT_DEFAULTS,
    Preference,
    RankSpec,
    SpecFields,
    preference_mapping,
    resolve_spec,
)

__all__ = [
    "REWARDS",
    "GroupRewards",
    "OnePromptCall",
    "agroup_rewards",
    "arank",
    "arank_many",
    "aselect_best",
    "group_rewards",
    "leaderboard",
    "rank",
    "select_best",
]

T = TypeVar("T")
P = ParamSpec("P")
REWARDS = ("simple_tiebreaker", "mean_score", "bradley_terry", "win_rate")


def _sync_twin(afunc: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, T]:
    """The sync twin of an async entry point: same signature, run in a fresh event loop, after
    which the judge (``judge=``) drops its loop-bound connections."""
    name = afunc.__name__.removeprefix("a")

    @functools.wraps(afunc)
    def run(*args: P.args, **kwargs: P.kwargs) -> T:
        judge = kwargs.get("judge")

        async def main() -> T:
            try:
                return await afunc(*args, **kwargs)
            finally:
                release = getattr(judge, "aclose_connections", None)
                if release is not None:
                    await release()

        try:
            asyncio.get_running_loop()
        except RuntimeError:  # no loop running: the one place a fresh loop may start
            return asyncio.run(main())
        raise RuntimeError(
            f"{name}() cannot run inside a running event loop; use "
            f"'await {afunc.__name__}(...)' instead."
        )

    run.__name__ = run.__qualname__ = name
    signature = inspect.signature(afunc)
    returned = str(signature.return_annotation)
    if returned.startswith("Coroutine[Any, Any, "):  # the twin returns what is awaited
        returned = returned.removeprefix("Coroutine[Any, Any, ").removesuffix("]")
    run.__signature__ = signature.replace(return_annotation=returned)  # type: ignore[attr-defined]
    run.__doc__ = (
        f"Sync twin of :func:`{afunc.__name__}` (``asyncio.run``); same arguments.\n\n"
        + (afunc.__doc__ or "")
    )
    return run


def _explicit_signature(func: Callable[..., Any], defaults: RankSpec, like: Any = None) -> None:
    """Show the spec fields ``func`` takes as ``**fields`` as keyword arguments in its signature
    (``like``'s when given), with the defaults of ``defaults``."""
    signature = inspect.signature(like if like is not None else func)
    params = [p for p in signature.parameters.values() if p.name != "self"]
    fields = [
        inspect.Parameter(
            name,
            inspect.Parameter.KEYWORD_ONLY,
            default=dict(defaults.strategy_options)
            if name == "strategy_options"
            else getattr(defaults, name),
            annotation=getattr(annotation, "__forward_arg__", annotation),
        )
        for name, annotation in SpecFields.__annotations__.items()
    ]
    keep = [p for p in params if p.kind != inspect.Parameter.VAR_KEYWORD]
    func.__signature__ = signature.replace(parameters=[*keep, *fields])  # type: ignore[attr-defined]


async def _rank_one(
    prompt: PromptInput,
    judge: Judge,
    spec: RankSpec,
    concurrency: int,
    judge_profile: ProfileLike | None = None,
) -> Ranking:
    """One prompt through the runner; a judge error with no usable verdict is raised."""
    runner = Runner(judge, spec, concurrency=concurrency, judge_profile=judge_profile)
    [result] = [result async for result in runner.run([prompt])]  # one prompt, no run-wide cap
    if result.ranking is None:
        raise result.error or RuntimeError("the runner gave neither a ranking nor an error")
    return result.ranking


class OnePromptCall(Protocol):
    """The signature of :func:`aselect_best` and :func:`arank` (written once, here)."""

    def __call__(
        self,
        candidates: Sequence[str],
        conversation: Conversation,
        *,
        judge: Judge,
        spec: RankSpec | None = None,
        principle: str | None = None,
        prompt_id: str = "",
        candidate_ids: Sequence[str] | None = None,
        concurrency: int = 64,
        judge_profile: ProfileLike | None = None,
        **fields: Unpack[SpecFields],
    ) -> Coroutine[Any, Any, Ranking]: ...


def _one_prompt_entry(defaults: RankSpec, name: str, doc: str) -> OnePromptCall:
    """An async entry point ranking one prompt, with ``defaults`` for the spec's fields."""

    async def entry(
        candidates: Sequence[str],
        conversation: Conversation,
        *,
        judge: Judge,
        spec: RankSpec | None = None,
        **options: Any,
    ) -> Ranking:
        where = {k: options.pop(k) for k in _PROMPT_OPTIONS if k in options}
        concurrency = where.pop("concurrency", 64)
        profile = options.pop("judge_profile", None)
        prompt = PromptInput(conversation, candidates, **where)
        resolved = resolve_spec(spec, options, defaults)
        return await _rank_one(prompt, judge, resolved, concurrency, profile)

    entry.__name__ = entry.__qualname__ = name
    entry.__doc__ = doc
    _explicit_signature(entry, defaults, like=OnePromptCall.__call__)
    return entry


_PROMPT_OPTIONS = ("principle", "prompt_id", "candidate_ids", "concurrency")

aselect_best = _one_prompt_entry(
    SELECT_DEFAULTS,
    "aselect_best",
    """Choose the best of N candidates with a pairwise judge.

    By default a knockout in both orders (:data:`~genrm_rank.spec.SELECT_DEFAULTS`): 2(N-1)
    calls. The result's ``best``, ``best_text`` and ``p_best`` give the choice, ``calls`` what
    it paid and ``status`` whether the strategy decided it (``"complete"``) or a budget cut it
    short (``"budget_bound"``).

    Parameters
    ----------
    candidates, conversation, principle, prompt_id, candidate_ids
        The prompt, as :class:`~genrm_rank.runner.PromptInput` holds it.
    judge : Judge
        Any judge (HTTP, simulated, cached, replay, ...).
    spec : RankSpec, optional
        How to rank; or its fields (:class:`~genrm_rank.spec.SpecFields`) as keywords.
    concurrency : int
        Judge requests in flight at once.
    judge_profile : JudgeProfile or path, optional
        What the judge is like; default :data:`~genrm_rank.judge_profile.DEFAULT_PROFILE`, as
        a run's first prompts. One learnt by a run (``--save-judge-profile``) ranks as it does.

    Returns
    -------
    Ranking

    Examples
    --------
    >>> from genrm_rank import SimulatedJudge, select_best
    >>> judge = SimulatedJudge(qualities={"4": 2.0, "5": -1.0, "four": 1.0}, seed=0)
    >>> choice = select_best(["5", "4", "four"], "What is 2 + 2?", judge=judge)
    >>> choice.best_text, choice.calls, choice.status
    ('4', 4, 'complete')
    """,
)

arank = _one_prompt_entry(
    RANK_DEFAULTS,
    "arank",
    """Rank candidate responses with a pairwise judge: strengths, intervals, P(best).

    By default a round-robin in both orders (:data:`~genrm_rank.spec.RANK_DEFAULTS`): N(N-1)
    calls. Takes the same arguments as :func:`aselect_best`.
    """,
)


@dataclass(frozen=True)
class GroupRewards:
    """One reward per candidate of an RL group, and the ranking behind it."""

    rewards: NDArray[np.float64]
    """Per-candidate rewards in input order; NaN for a candidate with no usable comparison."""
    reward: str
    ranking: Ranking


async def agroup_rewards(
    candidates: Sequence[str],
    conversation: Conversation,
    *,
    judge: Judge,
    reward: str = "simple_tiebreaker",
    spec: RankSpec | None = None,
    principle: str | None = None,
    prompt_id: str = "",
    concurrency: int = 64,
    judge_profile: ProfileLike | None = None,
    **fields: Unpack[SpecFields],
) -> GroupRewards:
    """Rewards for a GRPO-style group of rollouts.

    The default is NVIDIA's RLHF recipe (NeMo-Gym ``genrm_compare``): circular pairs, no swap
    (:data:`~genrm_rank.spec.REWARD_DEFAULTS`), and the ``simple_tiebreaker`` reward. ``reward``
    is one of :data:`REWARDS`; a candidate with no usable comparison gets NaN. Other arguments
    as in :func:`aselect_best`.
    """
    if reward not in REWARDS:
        raise ValueError(f"Argument 'reward' must be one of {REWARDS}, not {reward!r}.")
    resolved = resolve_spec(spec, fields, REWARD_DEFAULTS)
    prompt = PromptInput(conversation, candidates, principle, prompt_id)
    ranking = await _rank_one(prompt, judge, resolved, concurrency, judge_profile)
    n = len(ranking.candidates)
    comparisons = judgements_to_comparisons(
        n, ranking.judgements, preference_mapping=resolved.preference_mapping
    )
    rewards: NDArray[np.float64]
    if reward in ("simple_tiebreaker", "mean_score"):
        scores = comparisons.score_first
        has_scores = scores is not None and bool(np.isfinite(scores).any())
        if reward == "simple_tiebreaker" and len(comparisons) and not has_scores:
            raise ValueError(
                "Argument 'reward' is 'simple_tiebreaker', but the judge gave no individual "
                "scores; use reward='bradley_terry' or 'win_rate'."
            )
        by_score = simple_tiebreaker if reward == "simple_tiebreaker" else mean_score
        rewards = by_score(comparisons) if len(comparisons) else np.full(n, np.nan)
    elif reward == "win_rate":
        rewards = win_rate(comparisons)
    else:
        fit = bradley_terry(
            comparisons,
            alpha=resolved.alpha,
            fit_position_bias=resolved.fit_position_bias and len(comparisons) > 0,
        )
        rewards = np.array(fit.params, dtype=float)
        counts = np.bincount(np.concatenate([comparisons.first, comparisons.second]), minlength=n)
        rewards[counts == 0] = np.nan
    # Judgements name the first copy of a duplicated text; every copy gets that copy's reward.
    groups = distinct(ranking.candidates)
    copy_of = [groups.members[u][0] for u in groups.of]
    return GroupRewards(np.asarray(rewards, dtype=float)[copy_of], reward, ranking)


async def arank_many(
    prompts: Iterable[PromptInput] | AsyncIterable[PromptInput],
    *,
    judge: Judge,
    spec: RankSpec | None = None,
    concurrency: int = 64,
    max_calls: int | None = None,
    max_tokens: int | None = None,
    judge_profile: ProfileLike | None = None,
    **fields: Unpack[SpecFields],
) -> AsyncIterator[PromptResult]:
    """Rank many prompts through one judge with one window of requests.

    Yields a :class:`~genrm_rank.runner.PromptResult` per prompt in completion order. Arguments
    as :class:`~genrm_rank.runner.Runner`'s, defaults as :func:`arank`; for the run's statistics
    or learnt profile, use the runner itself.
    """
    runner = Runner(
        judge,
        resolve_spec(spec, fields, RANK_DEFAULTS),
        concurrency=concurrency,
        max_calls=max_calls,
        max_tokens=max_tokens,
        judge_profile=judge_profile,
    )
    async for result in runner.run(prompts):
        yield result


_explicit_signature(agroup_rewards, REWARD_DEFAULTS)
_explicit_signature(arank_many, RANK_DEFAULTS)
select_best = _sync_twin(aselect_best)
rank = _sync_twin(arank)
group_rewards = _sync_twin(agroup_rewards)


def leaderboard(
    results: Iterable[Ranking] | Iterable[tuple[str, str, float] | tuple[str, str, float, Any]],
    *,
    fit_position_bias: bool = True,
    bootstrap_rounds: int = 200,
    seed: int | None = None,
    confidence: float = 0.95,
    preference: Preference = "linear",
) -> LeaderboardTable:
    """A model-level leaderboard from verdicts across many prompts (Arena-Hard style).

    ``results`` holds :class:`~genrm_rank.results.Ranking` objects whose candidates carry ids
    (the system behind each), or games ``(first, second, outcome[, prompt])``, ``outcome`` the
    strength with which the slot-1 system won. Fitted by
    :func:`~genrm_rank.aggregators.fit_leaderboard`, the bootstrap resampling whole prompts
    (Chiang et al. 2024, arXiv:2403.04132; Li et al. 2024, Arena-Hard, arXiv:2406.11939).
    """
    mapping = preference_mapping(preference)
    first: list[str] = []
    second: list[str] = []
    outcome: list[float] = []
    clusters: list[Any] = []
    for i, item in enumerate(results):
        if isinstance(item, Ranking):
            if item.candidate_ids is None:
                raise ValueError(
                    f"Argument 'results[{i}]' has no candidate ids; a leaderboard needs the "
                    "system behind each candidate (pass candidate_ids=...)."
                )
            for j in item.judgements:
                if j.verdict.ranking is None:
                    continue
                first.append(item.candidate_ids[j.first])
                second.append(item.candidate_ids[j.second])
                outcome.append(j.verdict.preference_with(mapping))
                clusters.append(("ranking", i))
        else:
            if len(item) not in (3, 4):
                raise ValueError(
                    f"Argument 'results[{i}]' must be (first, second, outcome[, prompt]), "
                    f"not {len(item)} items."
                )
            first.append(str(item[0]))
            second.append(str(item[1]))
            outcome.append(float(item[2]))
            clusters.append(("prompt", item[3]) if len(item) == 4 else ("game", i))
    if not first:
        raise ValueError("Argument 'results' holds no usable game.")
    return fit_leaderboard(
        first,
        second,
        np.array(outcome),
        fit_position_bias=fit_position_bias,
        bootstrap_rounds=bootstrap_rounds,
        seed=seed,
        confidence=confidence,
        clusters=clusters,
    )
