"""The public entry points: :func:`select_best`, :func:`rank`, :func:`group_rewards`,
:func:`leaderboard`, and :func:`arank_many` for many prompts at once.

Each has one async implementation (``aselect_best``, ``arank``, ``agroup_rewards``); the sync
names are thin :func:`asyncio.run` wrappers, like ``httpx.get``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

from genrm_rank.aggregators import (
    LeaderboardTable,
    bradley_terry,
    fit_leaderboard,
    mean_score,
    simple_tiebreaker,
    win_rate,
)
from genrm_rank.judges.base import Judge
from genrm_rank.messages import Conversation, normalize_conversation
from genrm_rank.orchestrator import Orchestrator, PromptJob, PromptRun, aiterate
from genrm_rank.results import (
    DEFAULT_ALPHA,
    Ranking,
    Selection,
    build_ranking,
    judgements_to_comparisons,
)
from genrm_rank.strategies import check_swap, make_strategy, strategy_name
from genrm_rank.verdict import PreferenceMapping, linear_preference

__all__ = [
    "REWARDS",
    "GroupRewards",
    "PromptInput",
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
REWARDS = ("simple_tiebreaker", "mean_score", "bradley_terry", "win_rate")


def _run_sync(coro: Coroutine[Any, Any, T], name: str, judge: object = None) -> T:
    """Run ``coro`` in a fresh event loop; let the judge drop loop-bound connections after."""
    try:
        asyncio.get_running_loop()
        in_a_loop = True
    except RuntimeError:
        in_a_loop = False
    if in_a_loop:
        coro.close()
        raise RuntimeError(
            f"{name}() cannot run inside a running event loop; use 'await a{name}(...)' instead."
        )

    async def main() -> T:
        try:
            return await coro
        finally:
            release = getattr(judge, "aclose_connections", None)
            if release is not None:
                await release()

    return asyncio.run(main())


def _check_candidates(candidates: Sequence[str]) -> list[str]:
    if isinstance(candidates, str) or not isinstance(candidates, Sequence):
        raise TypeError(
            f"Argument 'candidates' must be a sequence of strings, not {type(candidates).__name__}."
        )
    for i, text in enumerate(candidates):
        if not isinstance(text, str):
            raise TypeError(
                f"Argument 'candidates[{i}]' must be a string, not {type(text).__name__}."
            )
    if len(candidates) < 2:
        raise ValueError(
            f"Argument 'candidates' must hold at least 2 candidates, not {len(candidates)}."
        )
    return list(candidates)


@dataclass(frozen=True)
class PromptInput:
    """One prompt of a many-prompt run (:func:`arank_many`)."""

    conversation: Conversation
    candidates: Sequence[str]
    principle: str | None = None
    prompt_id: str = ""
    candidate_ids: Sequence[str] | None = None
    key: Any = None


def _job(
    prompt: PromptInput,
    *,
    strategy: str,
    swap: str,
    samples: int,
    seed: int | None,
    budget: int | None,
    preference_mapping: PreferenceMapping,
    strategy_options: Mapping[str, Any] | None,
) -> PromptJob:
    candidates = _check_candidates(prompt.candidates)
    normalize_conversation(prompt.conversation)  # fail early, naming the argument
    scheduler = make_strategy(
        strategy,
        len(candidates),
        swap=swap,
        samples=samples,
        seed=seed,
        preference_mapping=preference_mapping,
        **dict(strategy_options or {}),
    )
    return PromptJob(
        conversation=prompt.conversation,
        candidates=candidates,
        scheduler=scheduler,
        principle=prompt.principle,
        prompt_id=prompt.prompt_id,
        candidate_ids=None
        if prompt.candidate_ids is None
        else [str(c) for c in prompt.candidate_ids],
        budget=budget,
        key=prompt.key,
    )


async def _arank(
    candidates: Sequence[str],
    conversation: Conversation,
    *,
    judge: Judge,
    strategy: str,
    swap: str,
    principle: str | None,
    seed: int | None,
    budget: int | None,
    samples: int,
    candidate_ids: Sequence[str] | None,
    prompt_id: str,
    max_in_flight: int,
    verdict_retries: int,
    position_bias: bool,
    alpha: float,
    confidence: float,
    n_bootstrap: int,
    preference_mapping: PreferenceMapping,
    strategy_options: Mapping[str, Any] | None,
    result_type: type[Ranking],
) -> Ranking:
    name = strategy_name(strategy)
    swap = check_swap(swap)
    job = _job(
        PromptInput(conversation, candidates, principle, prompt_id, candidate_ids),
        strategy=name,
        swap=swap,
        samples=samples,
        seed=seed,
        budget=budget,
        preference_mapping=preference_mapping,
        strategy_options=strategy_options,
    )
    orchestrator = Orchestrator(judge, max_in_flight=max_in_flight, verdict_retries=verdict_retries)
    runs: list[PromptRun] = [run async for run in orchestrator.run([job])]
    run = runs[0]
    # An errored call is closed with a failed verdict, so judgements are never empty here.
    if run.error is not None and not any(j.verdict.ok for j in run.judgements):
        raise run.error
    return build_ranking(
        run,
        strategy=name,
        swap=swap,
        alpha=alpha,
        position_bias=position_bias,
        confidence=confidence,
        n_bootstrap=n_bootstrap,
        seed=seed,
        preference_mapping=preference_mapping,
        result_type=result_type,
    )


async def arank(
    candidates: Sequence[str],
    conversation: Conversation,
    *,
    judge: Judge,
    strategy: str = "round_robin",
    swap: str = "both",
    principle: str | None = None,
    seed: int | None = None,
    budget: int | None = None,
    samples: int = 1,
    candidate_ids: Sequence[str] | None = None,
    prompt_id: str = "",
    max_in_flight: int = 64,
    verdict_retries: int = 1,
    position_bias: bool = True,
    alpha: float = DEFAULT_ALPHA,
    confidence: float = 0.95,
    n_bootstrap: int = 0,
    preference_mapping: PreferenceMapping = linear_preference,
    strategy_options: Mapping[str, Any] | None = None,
) -> Ranking:
    """Rank candidate responses to a conversation with a pairwise judge.

    Parameters
    ----------
    candidates : sequence of str
        At least two candidate responses.
    conversation : str or list of dict
        The prompt, or the chat history ending with a user turn.
    judge : Judge
        Any judge (:class:`~genrm_rank.judges.simulated.SimulatedJudge`,
        :class:`~genrm_rank.judges.replay.ReplayJudge`, the HTTP judge, ...).
    strategy : str
        ``"round_robin"`` (default here), ``"knockout"``, ``"circular"`` or ``"swiss"``.
    swap : {"both", "random", "none"}
        Position debiasing: both orders combined softly, one seeded random order, or none.
    principle : str, optional
        A rubric for the judge.
    seed : int, optional
        Seed of every random choice (orders, brackets, posterior draws).
    budget : int, optional
        Most judge calls to spend; the result says when it bound.
    samples : int
        Judgements per match and order.
    candidate_ids : sequence of str, optional
        Stable ids of the candidates (reported; used by replay judges and leaderboards).
    max_in_flight : int
        Concurrent judge requests.
    verdict_retries : int
        Re-asks of a failed verdict before it counts as failed.
    position_bias : bool
        Fit the judge's slot-1 advantage jointly in the Bradley-Terry aggregation.
    alpha : float
        L2 prior of the Bradley-Terry fit.
    confidence : float
        Level of the strength intervals.
    n_bootstrap : int
        Bootstrap resamples for the intervals (0: normal approximation).
    preference_mapping : callable
        Ranking (1..6) to preference (0..1).
    strategy_options : mapping, optional
        Extra options for the strategy (e.g. ``{"seeding": [...]}`` for a knockout).

    Returns
    -------
    Ranking
    """
    return await _arank(
        candidates, conversation, judge=judge, strategy=strategy, swap=swap, principle=principle,
        seed=seed, budget=budget, samples=samples, candidate_ids=candidate_ids,
        prompt_id=prompt_id, max_in_flight=max_in_flight, verdict_retries=verdict_retries,
        position_bias=position_bias, alpha=alpha, confidence=confidence, n_bootstrap=n_bootstrap,
        preference_mapping=preference_mapping, strategy_options=strategy_options,
        result_type=Ranking,
    )  # fmt: skip


async def aselect_best(
    candidates: Sequence[str],
    conversation: Conversation,
    *,
    judge: Judge,
    strategy: str = "knockout",
    swap: str = "both",
    principle: str | None = None,
    seed: int | None = None,
    budget: int | None = None,
    samples: int = 1,
    candidate_ids: Sequence[str] | None = None,
    prompt_id: str = "",
    max_in_flight: int = 64,
    verdict_retries: int = 1,
    position_bias: bool = True,
    alpha: float = DEFAULT_ALPHA,
    confidence: float = 0.95,
    n_bootstrap: int = 0,
    preference_mapping: PreferenceMapping = linear_preference,
    strategy_options: Mapping[str, Any] | None = None,
) -> Selection:
    """Choose the best of N candidates (a knockout with both orders by default: 2(N-1) calls).

    Takes the same arguments as :func:`arank`; returns a :class:`~genrm_rank.results.Selection`
    whose ``best``, ``best_text`` and ``p_best`` give the choice, and ``calls`` its cost.
    """
    result = await _arank(
        candidates, conversation, judge=judge, strategy=strategy, swap=swap, principle=principle,
        seed=seed, budget=budget, samples=samples, candidate_ids=candidate_ids,
        prompt_id=prompt_id, max_in_flight=max_in_flight, verdict_retries=verdict_retries,
        position_bias=position_bias, alpha=alpha, confidence=confidence, n_bootstrap=n_bootstrap,
        preference_mapping=preference_mapping, strategy_options=strategy_options,
        result_type=Selection,
    )  # fmt: skip
    if not isinstance(result, Selection):  # pragma: no cover - result_type guarantees it
        raise TypeError("internal error: expected a Selection")
    return result


def rank(candidates: Sequence[str], conversation: Conversation, **options: Any) -> Ranking:
    """Sync twin of :func:`arank` (``asyncio.run``); same arguments."""
    return _run_sync(arank(candidates, conversation, **options), "rank", options.get("judge"))


def select_best(candidates: Sequence[str], conversation: Conversation, **options: Any) -> Selection:
    """Sync twin of :func:`aselect_best` (``asyncio.run``); same arguments.

    Examples
    --------
    >>> from genrm_rank import SimulatedJudge, select_best
    >>> judge = SimulatedJudge(qualities={"4": 2.0, "5": -1.0, "four": 1.0}, seed=0)
    >>> choice = select_best(["5", "4", "four"], "What is 2 + 2?", judge=judge, seed=0)
    >>> choice.best_text, choice.calls
    ('4', 4)
    """
    return _run_sync(
        aselect_best(candidates, conversation, **options), "select_best", options.get("judge")
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
    strategy: str = "circular",
    swap: str = "none",
    reward: str = "simple_tiebreaker",
    **options: Any,
) -> GroupRewards:
    """Rewards for a GRPO-style group of rollouts.

    The default reproduces NVIDIA's RLHF recipe (NeMo-Gym ``genrm_compare``): circular pairs
    ``(i, (i+1) % N)`` with no swap (N calls) and the ``simple_tiebreaker`` reward (mean
    individual score, ties broken by the ranking). ``reward`` may also be ``"mean_score"``,
    ``"bradley_terry"`` (strength with the position term) or ``"win_rate"``. A candidate with no
    usable comparison gets NaN, never an invented middle value.
    """
    if reward not in REWARDS:
        raise ValueError(f"Argument 'reward' must be one of {REWARDS}, not {reward!r}.")
    ranking = await arank(
        candidates, conversation, judge=judge, strategy=strategy, swap=swap, **options
    )
    n = len(ranking.candidates)
    comparisons = judgements_to_comparisons(n, ranking.judgements)
    rewards: NDArray[np.float64]
    if reward == "simple_tiebreaker":
        has_scores = comparisons.score_first is not None and bool(
            np.isfinite(comparisons.score_first).any()
        )
        if len(comparisons) and not has_scores:
            raise ValueError(
                "Argument 'reward' is 'simple_tiebreaker', but the judge gave no individual "
                "scores; use reward='bradley_terry' or 'win_rate'."
            )
        rewards = simple_tiebreaker(comparisons) if len(comparisons) else np.full(n, np.nan)
    elif reward == "mean_score":
        rewards = mean_score(comparisons) if len(comparisons) else np.full(n, np.nan)
    elif reward == "win_rate":
        rewards = win_rate(comparisons)
    else:
        fit = bradley_terry(
            comparisons, alpha=options.get("alpha", DEFAULT_ALPHA), position_bias=True
        )
        rewards = np.array(fit.params, dtype=float)
        counts = np.bincount(np.concatenate([comparisons.first, comparisons.second]), minlength=n)
        rewards[counts == 0] = np.nan
    return GroupRewards(np.asarray(rewards, dtype=float), reward, ranking)


def group_rewards(
    candidates: Sequence[str], conversation: Conversation, **options: Any
) -> GroupRewards:
    """Sync twin of :func:`agroup_rewards`."""
    return _run_sync(
        agroup_rewards(candidates, conversation, **options), "group_rewards", options.get("judge")
    )


async def arank_many(
    prompts: Iterable[PromptInput] | AsyncIterable[PromptInput],
    *,
    judge: Judge,
    strategy: str = "knockout",
    swap: str = "both",
    seed: int | None = None,
    budget: int | None = None,
    samples: int = 1,
    max_in_flight: int = 256,
    verdict_retries: int = 1,
    max_calls: int | None = None,
    max_tokens: int | None = None,
    position_bias: bool = True,
    alpha: float = DEFAULT_ALPHA,
    confidence: float = 0.95,
    n_bootstrap: int = 0,
    preference_mapping: PreferenceMapping = linear_preference,
    strategy_options: Mapping[str, Any] | None = None,
    orchestrator: Orchestrator | None = None,
) -> AsyncIterator[tuple[PromptInput, Ranking]]:
    """Rank many prompts through one judge with one global window of requests.

    Yields ``(prompt, ranking)`` in completion order. Prompts are read lazily. Pass your own
    ``orchestrator`` to watch its statistics (calls, tokens, failures, pooled position bias).
    """
    name = strategy_name(strategy)
    swap = check_swap(swap)
    if orchestrator is None:
        orchestrator = Orchestrator(
            judge,
            max_in_flight=max_in_flight,
            verdict_retries=verdict_retries,
            max_calls=max_calls,
            max_tokens=max_tokens,
        )
    inputs: dict[int, PromptInput] = {}

    async def jobs() -> AsyncIterator[PromptJob]:
        async for prompt in aiterate(prompts):
            job = _job(
                prompt, strategy=name, swap=swap, samples=samples, seed=seed, budget=budget,
                preference_mapping=preference_mapping, strategy_options=strategy_options,
            )  # fmt: skip
            inputs[id(job)] = prompt
            yield job

    async for run in orchestrator.run(jobs()):
        prompt = inputs.pop(id(run.job))
        yield prompt, build_ranking(
            run, strategy=name, swap=swap, alpha=alpha, position_bias=position_bias,
            confidence=confidence, n_bootstrap=n_bootstrap, seed=seed,
            preference_mapping=preference_mapping,
        )  # fmt: skip


def leaderboard(
    results: Iterable[Ranking] | Iterable[tuple[str, str, float]],
    *,
    position_bias: bool = True,
    n_bootstrap: int = 200,
    seed: int | None = None,
    confidence: float = 0.95,
) -> LeaderboardTable:
    """A model-level leaderboard from verdicts across many prompts (Arena-Hard style).

    ``results`` holds :class:`~genrm_rank.results.Ranking` objects whose candidates carry ids
    (the system that wrote each candidate), or ``(first_label, second_label, outcome)`` games
    with ``outcome`` the strength with which the slot-1 system won. Fits Bradley-Terry with a
    position term, with bootstrap intervals, on the Elo scale (Chiang et al. 2024, Chatbot
    Arena, arXiv:2403.04132; Li et al. 2024, Arena-Hard, arXiv:2406.11939).
    """
    first: list[str] = []
    second: list[str] = []
    outcome: list[float] = []
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
                outcome.append(j.verdict.preference)
        else:
            game: tuple[str, str, float] = item  # type: ignore[assignment]
            first.append(str(game[0]))
            second.append(str(game[1]))
            outcome.append(float(game[2]))
    if not first:
        raise ValueError("Argument 'results' holds no usable game.")
    return fit_leaderboard(
        first, second, np.array(outcome), position_bias=position_bias, n_bootstrap=n_bootstrap,
        seed=seed, confidence=confidence,
    )  # fmt: skip
