"""Adaptive best-of-N: a top-two rule on a Bradley-Terry posterior, stopping once the pick is sure.

1. **Posterior.** The aggregators' :func:`~genrm_rank.aggregators.bradley_terry_posterior`, with
   the prior, dispersion and repeat correlation of the judge's
   :class:`~genrm_rank.judge_profile.JudgeProfile`, updated after each verdict from the last
   mode. Its P(best) is the one the ranking reports, so a prompt stops on what it reports.
2. **Next pair.** Every candidate once, in disjoint pairs (a knockout's first round); then the
   posterior mean's leader meets the rival likeliest to beat it (EB-TC), weighed by what a
   repeat call is worth for a judge that copies itself.
3. **Stop** at ``P(best) >= 1 - delta``, at the budget, or at :func:`max_calls`. A given budget
   that stops it first makes the result ``budget_bound``.
4. **Swap** (``"auto"``): each pair in the order judged less often; the reverse order at once
   only while the profile's position bias is not known to within ``bias_tolerance``.
5. **Failures and ties** never take a coin while evidence can decide. A candidate the judge
   keeps failing on (``SET_ASIDE_FAILURES``) is set aside with a note.

A result depends on the verdicts, the profile and the seed only. Figures (calls, accuracy,
calibration, cost per proposal) are in ``benchmarks/README.md``.

References
----------
Jourdan, Degenne, Baudry, de Heide & Kaufmann, "Top Two Algorithms Revisited", NeurIPS 2022
(arXiv:2206.05979): the EB-TC leader and challenger. Russo, "Simple Bayesian Algorithms for Best
Arm Identification", COLT 2016 (arXiv:1602.08448). Bradley & Terry, Biometrika 39 (1952). Zheng
et al. 2023 (arXiv:2306.05685), position bias. Wedderburn, Biometrika 61 (1974), the dispersion.
Kish, "Survey Sampling" (1965), the design effect.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from statistics import NormalDist
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.special import log_ndtr

from genrm_rank import validate as check
from genrm_rank.aggregators import BradleyTerryPosterior, BradleyTerryPrior, bradley_terry_posterior
from genrm_rank.aggregators.bradley_terry import IMPORTANCE_MAX_PARAMS
from genrm_rank.blas_threads import one_blas_thread
from genrm_rank.judge_profile import DEFAULT_PROFILE, JudgeProfile
from genrm_rank.strategies.base import (
    Judgement,
    PairCall,
    StrategyOutcome,
    check_mapping,
    check_swap,
)
from genrm_rank.verdict import PreferenceMapping, Verdict, linear_preference

__all__ = ["DEFAULT_DELTA", "Adaptive", "default_budget", "max_calls"]

DEFAULT_DELTA = 0.05
"""Default confidence target: stop once the pick's P(best) reaches 0.95."""
TIE_TOLERANCE = 1e-9
"""Posterior means within this distance are an exact tie."""
SET_ASIDE_FAILURES = 3
"""Failed verdicts, none usable, against two rivals or more, that set a candidate aside."""
FIT_TOL = 1e-4
"""Newton's tolerance (largest step, log-odds) of the per-verdict posterior updates."""
SCREEN_MARGIN = 1.0
"""Standard errors of room the P(best) screen keeps where P(best) is importance-sampled."""
SCREEN_SHARE = 0.1
"""P(best) is drawn only when the leader tops ``1 - delta - SCREEN_SHARE`` of 256 rough draws."""
_SCREEN_DRAWS = 256


def max_calls(n_items: int) -> int:
    """The hard cap, ``2 N (N - 1)``: each ordered pair judged twice.

    >>> max_calls(8)
    112
    """
    return 2 * n_items * (n_items - 1)


def default_budget(n_items: int) -> int:
    """Calls allowed when no budget is given: ``4 N``, at most :func:`max_calls`.

    >>> [default_budget(n) for n in (2, 3, 8, 64)]
    [4, 12, 32, 256]
    """
    return min(4 * n_items, max_calls(n_items))


def _real(
    name: str, value: object, ok: Callable[[float], bool], words: str, kind: str = ""
) -> float:
    """``value`` as a float if it is a number ``ok`` accepts; else an error naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"Argument '{name}' must be a number{kind}, not {type(value).__name__}.")
    if not ok(value):
        raise ValueError(f"Argument '{name}' must be {words}, not {value}.")
    return float(value)


def _scale(name: str, value: object) -> float | None:
    """An optional finite positive override (``prior_sd``, ``dispersion``)."""
    if value is None:
        return None
    return _real(name, value, lambda v: 0 < v < math.inf, "finite and > 0", " or None")


class Adaptive:
    """Leader against challenger for the best candidate, on the judge profile's posterior.

    Parameters
    ----------
    n_items : int
        Number of candidates (>= 2).
    swap : {"auto", "both", "random", "none"}
        ``"auto"``: see the module; ``"both"``: a pair's first visit in both orders;
        ``"random"``: the order judged less often; ``"none"``: the leader in slot 1.
    samples : int
        Must be 1: the strategy chooses its own repeats.
    seed, preference_mapping
        As :class:`~genrm_rank.strategies.base.MatchScheduler`'s.
    budget : int, optional
        Most calls; default :func:`default_budget`, or the first :meth:`next_pairs` ``limit``
        (which can only lower a given one).
    delta : float
        Stop once the pick's P(best) is at least ``1 - delta``; in (0, 1).
    batch : int, optional
        Calls in flight at once; default ``max(1, N // 4)``.
    bias_tolerance : float
        Standard error (log-odds) under which the profile's position bias counts as known.
    p_best_draws : int
        Posterior draws for P(best) at each stopping check.
    prior_sd, dispersion, repeat_correlation : float, optional
        Overrides of the profile's (a dispersion given is taken as known).
    profile : JudgeProfile, optional
        What the judge is like; default :data:`~genrm_rank.judge_profile.DEFAULT_PROFILE`.
    """

    def __init__(
        self,
        n_items: int,
        *,
        swap: str = "auto",
        samples: int = 1,
        seed: int | np.random.Generator | None = None,
        budget: int | None = None,
        delta: float = DEFAULT_DELTA,
        batch: int | None = None,
        bias_tolerance: float = 0.2,
        p_best_draws: int = 1000,
        preference_mapping: PreferenceMapping = linear_preference,
        prior_sd: float | None = None,
        dispersion: float | None = None,
        repeat_correlation: float | None = None,
        profile: JudgeProfile | None = None,
    ) -> None:
        self.n_items = n = check.integer("n_items", n_items, 2)
        self.swap = check_swap(swap)
        if check.integer("samples", samples, 1) != 1:
            raise ValueError(
                f"Argument 'samples' must be 1 for the adaptive strategy (it chooses its own "
                f"repeats), not {samples}."
            )
        self.rng = np.random.default_rng(seed)  # a Generator is returned as it is
        own = default_budget(n) if budget is None else check.integer("budget", budget, 0)
        self.budget = min(own, max_calls(n))
        self._default_budget = budget is None
        self.delta = _real("delta", delta, lambda v: 0.0 < v < 1.0, "in (0, 1)")
        self.bias_tolerance = _real("bias_tolerance", bias_tolerance, lambda v: v > 0, "> 0")
        self.batch = max(1, n // 4) if batch is None else check.integer("batch", batch, 1)
        self.p_best_draws = check.integer("p_best_draws", p_best_draws, 1)
        self.preference_mapping = check_mapping(preference_mapping)
        self.prior_sd = _scale("prior_sd", prior_sd)
        self.dispersion = _scale("dispersion", dispersion)
        if repeat_correlation is not None and (
            isinstance(repeat_correlation, bool)
            or not isinstance(repeat_correlation, (int, float))
            or not 0.0 <= repeat_correlation <= 1.0
        ):
            raise ValueError(
                "Argument 'repeat_correlation' must be None or in [0, 1], "
                f"not {repeat_correlation!r}."
            )
        self.repeat_correlation = None if repeat_correlation is None else float(repeat_correlation)
        if profile is not None and not isinstance(profile, JudgeProfile):
            raise TypeError(
                f"Argument 'profile' must be a JudgeProfile or None, not {type(profile).__name__}."
            )
        self.profile = DEFAULT_PROFILE if profile is None else profile
        self.prior = BradleyTerryPrior.from_profile(self.profile)
        if self.prior_sd is not None:
            self.prior = replace(self.prior, strength_sd=self.prior_sd)
        if self.dispersion is not None:
            self.prior = replace(self.prior, dispersion=self.dispersion, dispersion_df=math.inf)
        # Usable verdicts of each ordered pair (slot 1, slot 2), their summed slot-1
        # preferences and squares; calls issued of each ordered pair.
        self._count, self._sum, self._sum_sq = np.zeros((3, n, n))
        self._issued_pairs = np.zeros((n, n), dtype=np.int64)
        self._judgements: list[Judgement] = []
        self._pending: set[PairCall] = set()
        self._followups: list[tuple[int, int]] = []
        self._issued = self._used = 0
        self._seen = np.zeros(n, dtype=bool)
        self._stopped = self._limit_seen = False
        self._budget_given = budget is not None
        self._failed = np.zeros(n, dtype=np.int64)
        self._failed_with: list[set[int]] = [set() for _ in range(n)]
        self._aside: list[int] = []
        self._active_of: tuple[int, NDArray[np.int64]] = (-1, np.arange(n))
        margin = 0.0 if n + 1 > IMPORTANCE_MAX_PARAMS else SCREEN_MARGIN
        self._screen_z = NormalDist().inv_cdf(1.0 - self.delta) - margin
        self._fit: BradleyTerryPosterior | None = None
        self._fit_at = -1
        self._exact = False
        self._p_best: NDArray[np.float64] | None = None
        self._decided_at, self._decided = (-1, 0), False  # the last stopping check's state
        self._notes: list[str] = []

    # -- the judge -----------------------------------------------------------------------------
    def strength_sd(self) -> float:
        """Prior standard deviation of each strength: ``prior_sd``, else the profile's."""
        return self.prior.strength_sd

    def judge_dispersion(self) -> float:
        """The judge's dispersion: ``dispersion``, else the profile's."""
        return self.prior.dispersion

    def judge_repeat_correlation(self) -> float:
        """``repeat_correlation``, else the profile's."""
        if self.repeat_correlation is not None:
            return self.repeat_correlation
        return self.profile.repeat_correlation

    @property
    def bias_known(self) -> bool:
        """Whether the profile's slot-1 advantage is known to within ``bias_tolerance``."""
        return self.prior.position_bias_sd <= self.bias_tolerance

    @property
    def set_aside(self) -> tuple[int, ...]:
        """Candidates set aside because the judge kept failing on them."""
        return tuple(self._aside)

    def _active(self) -> NDArray[np.int64]:
        """The candidates not set aside (cached, read-only)."""
        if self._active_of[0] != len(self._aside):
            active = np.setdiff1d(np.arange(self.n_items), self._aside)
            active.flags.writeable = False
            self._active_of = (len(self._aside), active)
        return self._active_of[1]

    # -- posterior: the public entry points that fit or draw hold one BLAS thread --------------
    def _posterior(self, exact: bool = True) -> BradleyTerryPosterior:
        """The posterior after every usable verdict, from the last one: Newton's method to
        ``FIT_TOL`` if ``exact``, else one step (for proposals and screens)."""
        if self._fit_at != self._used or (exact and not self._exact):
            rho = self.judge_repeat_correlation()
            scale = 1.0 / (1.0 + np.maximum(self._count - 1.0, 0.0) * rho)
            self._fit = bradley_terry_posterior(
                self._count * scale,
                self._sum * scale,
                self._sum_sq * scale,
                self.prior,
                fit_position_bias=True,
                initial=self._fit,
                tol=FIT_TOL,
                max_iter=100 if exact or self._fit is None else 1,
            )
            self._exact = exact or self._fit.converged
            self._fit_at = self._used
            self._p_best = None
        assert self._fit is not None
        return self._fit

    def _draws(self, size: int) -> NDArray[np.float64]:
        """Rows of draws from the one-step posterior; candidates set aside never top one."""
        draws = self._posterior(exact=False).draws(size, self.rng)
        draws[:, self._aside] = -np.inf
        return draws

    @one_blas_thread()
    def p_best(self) -> NDArray[np.float64]:
        """P(best) of each candidate not set aside, under the current posterior."""
        fit = self._posterior()
        if self._p_best is None:
            among = self._active() if self._aside else None
            self._p_best = fit.p_best(self.p_best_draws, seed=self.rng, among=among)
        return self._p_best

    def _leaders(self) -> list[int]:
        """Candidates whose posterior mean is the highest (more than one on an exact tie)."""
        mode = self._posterior().params
        active = self._active()
        top = float(np.max(mode[active]))
        return [int(i) for i in active if top - float(mode[i]) <= TIE_TOLERANCE]

    def _confident(self) -> bool:
        """Whether the leader's P(best) has reached ``1 - delta``, checked once a state, after
        two cheap screens (a stop they delay costs a call; P(best) decides every stop)."""
        state = (self._used, len(self._aside))
        if self._decided_at == state:
            return self._decided
        self._decided_at, self._decided = state, False
        if not self._used:
            return False
        active = self._active()
        rough = int(active[np.argmax(self._posterior(exact=False).params[active])])
        if not self._may_be_confident(rough):
            return False
        if self.n_items > 2:
            tops = np.argmax(self._draws(_SCREEN_DRAWS), axis=1)
            if np.count_nonzero(tops == rough) / tops.size < 1.0 - self.delta - SCREEN_SHARE:
                return False
        leaders = self._leaders()
        if len(leaders) != 1 or not self._may_be_confident(leaders[0]):
            return False
        self._decided = float(self.p_best()[leaders[0]]) >= 1.0 - self.delta
        return self._decided

    def _may_be_confident(self, leader: int) -> bool:
        """Whether no rival is within reach: every standardised gap clears the screen."""
        return float(self._gaps(leader)[1].min()) >= self._screen_z

    def _gaps(self, leader: int) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """The active rivals of ``leader``, and its standardised gap to each (one-step fit)."""
        fit = self._posterior(exact=False)
        cov = fit.covariance
        active = self._active()
        rivals = active[active != leader]
        gap = fit.params[leader] - fit.params[rivals]
        variance = cov[leader, leader] + cov[rivals, rivals] - 2.0 * cov[leader, rivals]
        return rivals, gap / np.sqrt(np.maximum(variance, 1e-300))

    # -- proposing ---------------------------------------------------------------------------
    def _propose(self, chosen: set[frozenset[int]]) -> tuple[int, int]:
        """The next pair: unseen candidates in disjoint pairs, then the leader against the rival
        maximising ``P(rival beats leader) * worth`` (EB-TC), avoiding pairs in ``chosen``;
        when no rival is worth a call, the pair worth most."""
        active = self._active()
        fresh = active[~self._seen[active]] if not self._seen.all() else active[:0]
        if fresh.size >= 2:
            first, second = self.rng.choice(fresh, 2, replace=False)
            return int(first), int(second)
        mode = self._posterior(exact=False).params
        leader = int(fresh[0]) if fresh.size else int(active[np.argmax(mode[active])])
        rivals, z = self._gaps(leader)
        score = log_ndtr(-z)
        if self.judge_repeat_correlation():  # else every call is worth one verdict
            worth = self._worth(np.array(leader), rivals)
            score = np.where(worth > 0, score + np.log(np.maximum(worth, 1e-300)), -np.inf)
        score[[frozenset((leader, int(r))) in chosen for r in rivals]] = -np.inf
        if np.isfinite(score).any():
            return leader, int(rivals[np.argmax(score)])
        every = np.arange(self.n_items)
        worth = np.triu(self._worth(every[:, None], every[None, :]), 1)
        open_ = np.triu(np.ones_like(worth, dtype=bool), 1)
        open_[self._aside, :] = open_[:, self._aside] = False
        for pair in chosen:
            open_[min(pair), max(pair)] = False
        if not open_.any():  # every pair is out already: the likeliest rival again
            return leader, int(rivals[np.argmin(z)])
        worth[~open_] = -np.inf
        summed = np.where(worth == worth.max(), mode[:, None] + mode[None, :], -np.inf)
        flat = int(np.flatnonzero(summed == summed.max())[-1])
        return flat // self.n_items, flat % self.n_items

    def _worth(self, a: NDArray[np.int64], b: NDArray[np.int64]) -> NDArray[np.float64]:
        """Fresh verdicts the next call of each pair ``(a, b)`` adds, in the order it would
        take: 1 for a new order, less for a repeat of a self-copying judge."""
        issued = self._issued_pairs
        k = self._count[a, b]
        if self.swap != "none":
            k = np.where(issued[b, a] < issued[a, b], self._count[b, a], k)
        rho = self.judge_repeat_correlation()
        seen = np.maximum(k, 1.0)  # k = 0 is worth 1; keep its formula finite at rho = 1
        return np.where(k > 0, (k + 1.0) / (1.0 + k * rho) - k / (1.0 + (seen - 1.0) * rho), 1.0)

    def _ordered(self, a: int, b: int) -> tuple[int, int]:
        """The order judged less often so far; a coin when equal (``"none"``: as given)."""
        if self.swap == "none":
            return a, b
        ab, ba = self._issued_pairs[a, b], self._issued_pairs[b, a]
        if ab != ba:
            return (a, b) if ab < ba else (b, a)
        return (a, b) if self.rng.random() < 0.5 else (b, a)

    @one_blas_thread()
    def next_pairs(self, limit: int | None = None) -> list[PairCall]:
        """Calls to issue now: reverse orders first, then new pairs. The first ``limit`` given
        before any call (an orchestrator's budget) sets :attr:`budget`."""
        if limit is not None:
            limit = max(int(limit), 0)
            if not self._limit_seen and self._issued == 0:
                own = max_calls(self.n_items) if self._default_budget else self.budget
                self._budget_given = self._budget_given or limit < own
                self.budget = min(own, limit)
            self._limit_seen = True
        if self._stopped or self.done:
            return []
        room = min(self.budget - self._issued, self.batch - len(self._pending))
        if limit is not None:
            room = min(room, limit)
        calls: list[PairCall] = []
        while self._followups and len(calls) < room:
            calls.append(self._issue(*self._followups.pop(0)))
        # Confident already: no new pair, even with earlier calls of the batch still out.
        if not calls and self._confident():
            return []
        chosen = {frozenset((c.first, c.second)) for c in [*self._pending, *calls]}
        while len(calls) < room:
            pair = self._propose(chosen)
            chosen.add(frozenset(pair))
            calls.append(self._issue(*self._ordered(*pair)))
        return calls

    def _issue(self, first: int, second: int) -> PairCall:
        call = PairCall(first, second, -1, int(self._issued_pairs[first, second]))
        self._issued_pairs[first, second] += 1
        self._pending.add(call)
        self._issued += 1
        self._seen[[first, second]] = True
        return call

    # -- taking verdicts ---------------------------------------------------------------------
    def record(self, call: PairCall, verdict: Verdict) -> None:
        """Take back a verdict; a usable one updates the posterior, a failed one adds nothing."""
        if call not in self._pending:
            raise ValueError(f"Argument 'call' is not an outstanding call: {call!r}.")
        check.instance("verdict", verdict, Verdict)
        self._pending.remove(call)
        self._judgements.append(Judgement(call.first, call.second, verdict, -1, call.sample))
        if verdict.ranking is None:
            self._record_failure(call.first, call.second)
            return
        p = float(verdict.preference_with(self.preference_mapping))
        self._count[call.first, call.second] += 1.0
        self._sum[call.first, call.second] += p
        self._sum_sq[call.first, call.second] += p * p
        self._used += 1
        wanted = self.swap == "both" or (self.swap == "auto" and not self.bias_known)
        if wanted and not self._stopped and not self._issued_pairs[call.second, call.first]:
            self._followups.append((call.second, call.first))  # its first visit: both orders

    def _record_failure(self, first: int, second: int) -> None:
        """Count a failed verdict against both; set aside one the judge keeps failing on."""
        for me, other in ((first, second), (second, first)):
            self._failed[me] += 1
            self._failed_with[me].add(other)
        for me in (first, second):
            usable = self._count[me].sum() + self._count[:, me].sum()
            if (
                me not in self._aside
                and self._failed[me] >= SET_ASIDE_FAILURES
                and not usable
                and len(self._failed_with[me]) >= 2
                and self.n_items - len(self._aside) > 2
            ):
                self._aside.append(me)
                self._followups = [f for f in self._followups if me not in f]
                self._p_best = None
                self._notes.append(
                    f"adaptive: candidate {me} set aside after {int(self._failed[me])} failed "
                    f"verdicts and none usable (against candidates "
                    f"{sorted(self._failed_with[me])}); it is not picked"
                )

    # -- Scheduler protocol ------------------------------------------------------------------
    @property
    def done(self) -> bool:
        """Nothing in flight, and stopped, out of budget, or confident of the best."""
        if self._pending:
            return False
        if self._stopped or self._issued >= self.budget:
            return True
        if self._followups:
            return False
        if self._decided_at == (self._used, len(self._aside)):
            return self._decided  # checked in this state already: no linear algebra
        with one_blas_thread():
            return self._confident()

    @property
    def calls_issued(self) -> int:
        """Calls handed out so far."""
        return self._issued

    def stop(self) -> None:
        """Ask for no more calls; :meth:`result` uses what was judged."""
        self._stopped = True
        self._followups = []

    def judgements(self) -> list[Judgement]:
        """Every finished call, in arrival order."""
        return list(self._judgements)

    @one_blas_thread()
    def result(self) -> StrategyOutcome:
        """The posterior mean's leader and order, and the P(best) it stopped on (a seeded coin
        only for an exact tie at the end)."""
        notes = list(self._notes)
        if not self._used:
            notes.append("adaptive: no usable verdict; no candidate is chosen")
            return StrategyOutcome(notes=tuple(notes))
        mode = self._posterior().params
        leaders = self._leaders()
        best = leaders[0]
        if len(leaders) > 1:
            best = int(self.rng.choice(leaders))
            notes.append(
                f"adaptive: candidates {leaders} are exactly tied at the top after "
                f"{self._issued} calls (no budget left to separate them); {best} picked by "
                "a seeded coin"
            )
        p_best = self.p_best()
        short = float(p_best[best]) < 1.0 - self.delta
        if short:
            notes.append(
                f"adaptive: stopped at P(best) {float(p_best[best]):.3f} < {1.0 - self.delta:.3f} "
                f"after {self._issued} calls"
            )
        active = [int(i) for i in self._active() if i != best]
        rest = sorted(active, key=lambda i: -mode[i]) + sorted(self._aside)
        bound = (
            (short or len(leaders) > 1)
            and self._budget_given
            and self._issued >= self.budget
            and self.budget < max_calls(self.n_items)
        )
        return StrategyOutcome(
            best=best,
            order=(best, *rest),
            notes=tuple(notes),
            p_best=tuple(float(v) for v in p_best),
            budget_bound=bool(bound),
        )

    @one_blas_thread()
    def posterior(self) -> dict[str, Any]:
        """The current posterior: strengths, slot-1 advantage and P(best) (for diagnostics)."""
        fit = self._posterior()
        return {
            "strength": fit.params.copy(),
            "stderr": np.sqrt(np.clip(np.diag(fit.covariance), 0.0, None)),
            "position_bias": fit.position_bias,
            "dispersion": fit.dispersion,
            "p_best": self.p_best().copy(),
        }
