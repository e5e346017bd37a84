"""Results: from one prompt's judgements to a :class:`Ranking` with confidence.

Usable verdicts become :class:`~genrm_rank.aggregators.Comparisons` (a failed verdict is counted
and reported, never turned into a number); the ranking holds the Bradley-Terry posterior under
the judge profile (:meth:`~genrm_rank.aggregators.BradleyTerryPrior.from_profile`), with
intervals and P(best), win rates, mean scores and graph diagnostics.

**The pick.** ``best`` is the posterior mean's leader (a bracket's champion is kept as
``champion``, and ``notes`` says when they differ); adaptive selection keeps its own leader,
picked on this same posterior. The highest P(best) is not the pick: with equal means it is the
candidate judged least (``benchmarks/README.md``, "Pick rule"). An exactly tied top is settled
by the prompt's seeded coin, and ``notes`` says so.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any, Literal

import numpy as np

from genrm_rank import validate as check
from genrm_rank.aggregators import (
    BradleyTerryFit,
    BradleyTerryPrior,
    Comparisons,
    bootstrap_bradley_terry,
    bradley_terry,
    connected_components,
    intransitive_cycles,
    mean_score,
    repeat_weights,
    win_rate,
)
from genrm_rank.blas_threads import one_blas_thread
from genrm_rank.consistency import ConsistencyReport, consistency_report
from genrm_rank.judge_profile import DEFAULT_PROFILE, JudgeProfile
from genrm_rank.orchestrator import PromptRun
from genrm_rank.spec import DEFAULT_ALPHA, RankSpec
from genrm_rank.strategies.base import Judgement
from genrm_rank.verdict import PreferenceMapping, Usage, linear_preference

__all__ = [
    "DEFAULT_ALPHA",
    "CandidateScore",
    "Ranking",
    "RankingStatus",
    "build_ranking",
    "finite_or_none",
    "judgements_to_comparisons",
]

RankingStatus = Literal["complete", "budget_bound", "unreliable", "judge_error", "no_verdict"]
"""How a prompt's ranking ended: the strategy ran to its end (``complete``); its budget stopped
it before it could decide (``budget_bound``: the best is a provisional pick from the evidence
so far); more than half of its verdicts failed (``unreliable``: the best rests on the few that
did not); a judge error stopped it (``judge_error``); or no verdict was usable (``no_verdict``:
no candidate is chosen)."""


def judgements_to_comparisons(
    n_items: int,
    judgements: Sequence[Judgement],
    *,
    preference_mapping: PreferenceMapping = linear_preference,
) -> Comparisons:
    """Usable judgements as comparisons (outcome: preference of slot 1); failed ones dropped."""
    verdicts = [(j, j.verdict) for j in judgements if j.verdict.ranking is not None]
    return Comparisons.from_arrays(
        n_items,
        first=np.array([j.first for j, _ in verdicts], dtype=np.int64),
        second=np.array([j.second for j, _ in verdicts], dtype=np.int64),
        outcome=np.array([v.preference_with(preference_mapping) for _, v in verdicts], dtype=float),
        # None (no score) becomes NaN
        score_first=np.array([v.score_1 for _, v in verdicts], dtype=float),
        score_second=np.array([v.score_2 for _, v in verdicts], dtype=float),
        ranking=np.array([v.ranking for _, v in verdicts], dtype=float),
    )


@dataclass(frozen=True)
class CandidateScore:
    """One candidate's scores.

    Attributes
    ----------
    index, id
        Position in the input list, and the candidate's id (``None`` without).
    strength, stderr, lower, upper : float
        Bradley-Terry log-strength (centred over the prompt's candidates), its posterior
        standard error at the mode, and its interval at the ranking's confidence level.
    p_best : float
        Posterior probability that this candidate is the best.
    win_rate, mean_score : float
        Soft wins over usable comparisons, and the mean individual 1-5 score (NaN with none).
    comparisons : int
        Usable comparisons it took part in.
    """

    index: int
    id: str | None
    strength: float
    stderr: float
    lower: float
    upper: float
    p_best: float
    win_rate: float
    mean_score: float
    comparisons: int


@dataclass(frozen=True)
class Ranking:
    """A full ranking of one prompt's candidates, with confidence and cost.

    Attributes
    ----------
    candidates, candidate_ids : tuple of str
        The candidate texts, and their ids (``None`` without), in input order.
    order : tuple of int
        Candidate indices, best first; empty when no verdict was usable.
    best, champion : int or None
        The pick (see the module; ``None`` when no verdict was usable: nothing is guessed), and
        the strategy's own winner (a knockout's champion) when it has one.
    scores : tuple of CandidateScore
        Per-candidate scores, in input order.
    calls, cached, failed_calls : int
        Judge calls paid (re-asks included); verdicts served free from a cache; verdicts that
        stayed failed after re-asking.
    usage : Usage
        Tokens the server reported.
    budget, strategy, swap
        As the run had them.
    status : str
        :data:`RankingStatus`; only a ``complete`` ranking's best is the strategy's decision.
    position_bias : float or None
        Fitted slot-1 advantage (log-odds) of the judge on this prompt.
    consistency : ConsistencyReport
        Agreement between the two orders of pairs judged both ways.
    connected, components, cycles
        Whether the usable comparisons connect every candidate, the comparison graph's
        connected components, and intransitive cycles among majority preferences.
    notes : tuple of str
        Decisions made without a usable verdict, and warnings.
    judgements : tuple of Judgement
        Every call made, with its verdict.
    confidence : float
        Level of the scores' ``lower``/``upper`` intervals.
    """

    candidates: tuple[str, ...]
    order: tuple[int, ...]
    best: int | None
    scores: tuple[CandidateScore, ...]
    calls: int
    failed_calls: int
    usage: Usage
    budget: int | None
    status: RankingStatus
    strategy: str
    swap: str
    position_bias: float | None
    consistency: ConsistencyReport
    connected: bool
    components: tuple[tuple[int, ...], ...]
    cycles: tuple[tuple[int, ...], ...]
    notes: tuple[str, ...]
    judgements: tuple[Judgement, ...] = field(repr=False)
    confidence: float = 0.95
    candidate_ids: tuple[str, ...] | None = None
    cached: int = 0
    champion: int | None = None

    @property
    def best_text(self) -> str | None:
        """Text of the best candidate."""
        return None if self.best is None else self.candidates[self.best]

    @property
    def best_id(self) -> str | None:
        """Id of the best candidate, when ids were given."""
        if self.best is None or self.candidate_ids is None:
            return None
        return self.candidate_ids[self.best]

    @property
    def p_best(self) -> float | None:
        """P(best) of the chosen candidate (see the module: not always the highest)."""
        return None if self.best is None else self.scores[self.best].p_best

    @property
    def decided(self) -> bool:
        """Whether the strategy ran to its end: the best is its decision, not a provisional pick."""
        return self.status == "complete"

    def to_dict(self, *, include_judgements: bool = False) -> dict[str, Any]:
        """A JSON-ready summary (texts left out; indices refer to the input order); with
        ``include_judgements``, every verdict too, reasoning cut to :data:`REASONING_CHARS`."""
        out: dict[str, Any] = {
            "best": self.best,
            "best_id": self.best_id,
            "champion": self.champion,
            "order": list(self.order),
            "p_best": finite_or_none(self.p_best),
            "scores": [_record(s) for s in self.scores],
            "status": self.status,
            "calls": self.calls,
            "cached": self.cached,
            "failed_calls": self.failed_calls,
            "prompt_tokens": self.usage.prompt_tokens,
            "completion_tokens": self.usage.completion_tokens,
            "budget": self.budget,
            "budget_bound": self.status == "budget_bound",
            "strategy": self.strategy,
            "swap": self.swap,
            "position_bias": finite_or_none(self.position_bias),
            "consistency": _record(self.consistency),
            "connected": self.connected,
            "cycles": [list(c) for c in self.cycles],
            "notes": list(self.notes),
            "confidence": self.confidence,
        }
        if include_judgements:
            out["judgements"] = [
                {
                    "first": j.first,
                    "second": j.second,
                    "sample": j.sample,
                    "score_1": j.verdict.score_1,
                    "score_2": j.verdict.score_2,
                    "ranking": j.verdict.ranking,
                    "failure": None if j.verdict.failure is None else str(j.verdict.failure),
                    "error": j.verdict.error,
                    "reasoning": _shorten(j.verdict.reasoning, REASONING_CHARS),
                }
                for j in self.judgements
            ]
        return out


REASONING_CHARS = 2000
"""Longest judge reasoning kept per verdict by ``Ranking.to_dict(include_judgements=True)``."""


def _shorten(text: str | None, limit: int) -> str | None:
    """``text`` cut to ``limit`` characters, saying how much was cut.

    >>> _shorten("abcdef", 3)
    'abc... [3 more characters]'
    """
    if text is None or len(text) <= limit:
        return text
    return f"{text[:limit]}... [{len(text) - limit} more characters]"


def finite_or_none(value: float | np.floating[Any] | None) -> float | None:
    """A float for JSON: ``None`` for NaN, infinity or ``None`` (JSON has no NaN)."""
    return None if value is None or not math.isfinite(value) else float(value)


def _record(obj: Any) -> dict[str, Any]:
    """A dataclass of scalars as a JSON-ready dict (what ``asdict`` gives, cleaned, cheaper)."""
    return {name: _plain(value) for name, value in vars(obj).items()}


def _plain(value: Any) -> Any:
    """A JSON scalar: floats through :func:`finite_or_none`, numpy integers as Python ones."""
    if isinstance(value, (float, np.floating)):
        return finite_or_none(value)
    return int(value) if isinstance(value, np.integer) else value


@one_blas_thread()  # a prompt's few candidates: the BLAS pool would only spin
def build_ranking(
    run: PromptRun,
    spec: RankSpec,
    *,
    seed: int | None = None,
    profile: JudgeProfile | None = None,
) -> Ranking:
    """Aggregate one prompt's run into a :class:`Ranking`, as ``spec`` says.

    Parameters
    ----------
    run : PromptRun
        What the orchestrator produced for the prompt.
    spec : RankSpec
        The strategy and swap (recorded) and the aggregation settings; its ``alpha`` is the
        penalty of the bootstrap's resampled fits only (the profile is the posterior's prior).
    seed : int, optional
        The prompt's own seed (:meth:`RankSpec.prompt_seeds`), for the posterior draws, the
        bootstrap and the coin for an exactly tied top.
    profile : JudgeProfile, optional
        The fit's prior, dispersion and repeat weights; default
        :data:`~genrm_rank.judge_profile.DEFAULT_PROFILE`. Pass the profile the strategy used,
        so that the ranking is that strategy's posterior.
    """
    if profile is None:
        profile = DEFAULT_PROFILE
    check.instance("profile", profile, JudgeProfile, "a JudgeProfile or None")
    confidence, position_bias = spec.confidence, spec.fit_position_bias
    job, n = run.job, len(run.job.candidates)
    # Verdicts arrive in completion order; a fixed order makes results reproducible run to run.
    judgements = sorted(run.judgements, key=lambda j: (j.match_id, j.sample, j.first, j.second))
    comparisons = judgements_to_comparisons(
        n, judgements, preference_mapping=spec.preference_mapping
    )
    usable = len(comparisons) > 0
    if profile.repeat_correlation > 0 and usable:
        weight = repeat_weights(comparisons.first, comparisons.second, profile.repeat_correlation)
        comparisons = dataclasses.replace(comparisons, weight=weight)
    notes = list(run.outcome.notes)
    if run.error is not None:
        notes.append(f"stopped by a judge error: {run.error}")
    budget_bound = run.budget_bound or run.outcome.budget_bound
    if budget_bound:
        notes.append(f"the budget of {job.budget} calls bound before the strategy finished")
    prior = BradleyTerryPrior.from_profile(profile)
    fit = bradley_terry(comparisons, fit_position_bias=position_bias, prior=prior)
    if position_bias and usable and not fit.identification.position_bias_identified:
        notes.append(
            "the judged pairs cannot separate the judge's slot-1 bias from the strengths "
            "(each pair in one slot order along a tree); the judge profile's bias "
            f"({profile.position_bias:+.2f} ± {profile.position_bias_stderr:.2f}) stands in"
        )
    if spec.bootstrap_rounds > 0 and usable:
        boot = bootstrap_bradley_terry(
            comparisons,
            bootstrap_rounds=spec.bootstrap_rounds,
            seed=seed,
            alpha=spec.alpha,
            fit_position_bias=position_bias,
            confidence=confidence,
        )
        lower, upper = boot.lower, boot.upper
    else:
        z = NormalDist().inv_cdf(0.5 + confidence / 2.0)
        lower, upper = fit.params - z * fit.standard_errors, fit.params + z * fit.standard_errors
    own = run.outcome.p_best
    if not usable:
        p_best = np.full(n, np.nan)
    elif own is not None and len(own) == n:
        p_best = np.asarray(own, dtype=float)  # the posterior the strategy stopped on
    else:
        p_best = fit.p_best(n_samples=spec.p_best_draws, seed=seed)
    components = [tuple(sorted(c)) for c in connected_components(comparisons)]
    if len(components) > 1:
        notes.append(
            f"the usable comparisons split the candidates into {len(components)} groups "
            f"{components}; their relative order rests on the prior alone"
        )
    champion: int | None = run.outcome.best
    order: tuple[int, ...] = ()
    best = None
    if usable:
        given = run.outcome.order
        order = tuple(int(i) for i in fit.ranking()) if given is None else tuple(given)
        best = _pick(fit, champion, own is not None, order, seed, notes)
        order = (best, *(i for i in order if i != best))
    else:
        notes.append("no usable verdict: no candidate is chosen")
    ids = tuple(job.candidate_ids) if job.candidate_ids is not None else None
    counts = np.bincount(np.concatenate([comparisons.first, comparisons.second]), minlength=n)
    wins, means = win_rate(comparisons), mean_score(comparisons)  # NaN where none
    scores = tuple(
        CandidateScore(
            index=i,
            id=None if ids is None else ids[i],
            strength=float(fit.params[i]),
            stderr=float(fit.standard_errors[i]),
            lower=float(lower[i]),
            upper=float(upper[i]),
            p_best=float(p_best[i]),
            win_rate=float(wins[i]),
            mean_score=float(means[i]),
            comparisons=int(counts[i]),
        )
        for i in range(n)
    )
    failed = sum(not j.verdict.ok for j in judgements)
    status: RankingStatus = "complete"
    if not usable:
        status = "no_verdict"
    elif run.error is not None:
        status = "judge_error"
    elif budget_bound:
        status = "budget_bound"
        notes.append(
            "the best is a provisional pick from the verdicts the budget allowed, not the "
            "strategy's decision"
        )
    elif 2 * failed > len(judgements):
        status = "unreliable"
        notes.append(
            f"{failed} of {len(judgements)} verdicts failed: the best rests on the few that did "
            "not, not on the strategy's full evidence"
        )
    return Ranking(
        candidates=tuple(job.candidates),
        order=order,
        best=best,
        scores=scores,
        calls=run.calls,
        failed_calls=run.failed_calls,
        usage=run.usage,
        budget=job.budget,
        status=status,
        strategy=spec.strategy,
        swap=spec.swap,
        position_bias=fit.position_bias,
        consistency=consistency_report(judgements),
        connected=len(components) == 1,
        components=tuple(components),
        cycles=tuple(tuple(c) for c in intransitive_cycles(comparisons)) if usable else (),
        notes=tuple(notes),
        judgements=tuple(judgements),
        confidence=confidence,
        candidate_ids=ids,
        cached=run.cached,
        champion=champion,
    )


TIE_TOLERANCE = 1e-9
"""Strengths within this distance are an exact tie."""


def _pick(
    fit: BradleyTerryFit,
    champion: int | None,
    adopt: bool,
    order: Sequence[int],
    seed: int | None,
    notes: list[str],
) -> int:
    """The pick (see the module): the strategy's ``champion`` if ``adopt`` (it was picked on
    this posterior), else the posterior mean's leader, the first in ``order`` among an exactly
    tied top, which the prompt's seeded coin settles; ``notes`` says what differs."""
    if adopt and champion is not None:
        return champion
    params = fit.params
    top = float(np.max(params))
    best = next(int(i) for i in order if float(params[i]) >= top - TIE_TOLERANCE)
    tied = [i for i, p in enumerate(params) if abs(p - params[best]) <= TIE_TOLERANCE]
    if len(tied) > 1 and np.all(np.isfinite(params)):
        # Neither standard errors (the candidate judged least has the widest posterior, not the
        # better answer) nor P(best)'s Monte Carlo noise may settle a tie silently.
        best = int(np.random.default_rng(seed).choice(tied))
        notes.append(
            f"candidates {tied} are exactly tied at the top (equal posterior "
            f"strength); candidate {best} was picked by the prompt's seeded coin"
        )
    elif champion is not None and best != champion:
        notes.append(
            f"the strategy's winner was candidate {champion} (strength "
            f"{params[champion]:.3f}); over all verdicts the posterior ranks "
            f"candidate {best} first (strength {params[best]:.3f}), and it is chosen"
        )
    return best
