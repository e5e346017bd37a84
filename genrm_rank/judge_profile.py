"""What a judge is like, as a value: its slot-1 bias, dispersion, strength spread and repeats.

These belong to the judge (a model at a temperature, with a prompt template), not to one prompt:
a :class:`JudgeProfile` holds them with their uncertainty, so that every prompt of a run, a
resumed run, a shard or a single call ranks with the same model of the judge. It is learnt from
verdicts (:func:`learn_judge_profile`), saved as JSON, and passed to every door
(``judge_profile=``, the CLI's ``--judge-profile FILE``).
"""

from __future__ import annotations

import functools
import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from genrm_rank import validate as check
from genrm_rank.aggregators.bradley_terry import _Gaussian, _moments, _Pairs
from genrm_rank.aggregators.comparisons import Comparisons, weighted_bincount
from genrm_rank.blas_threads import one_blas_thread
from genrm_rank.textfiles import write_atomically

__all__ = [
    "DEFAULT_PROFILE",
    "MIN_DISPERSION",
    "MIN_STRENGTH_SD",
    "PROFILE_FORMAT",
    "UNINFORMED_BIAS_SD",
    "JudgeProfile",
    "ProfileLike",
    "as_profile",
    "learn_judge_profile",
]

PROFILE_FORMAT = "genrm_rank.judge_profile/1"
"""The ``format`` field of a saved profile."""
_POSITIVE_FIELDS = (
    "position_bias_stderr",
    "dispersion",
    "dispersion_df",
    "strength_sd",
    "strength_df",
)


def _number(name: str, value: object, *, low: float, high: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"Field '{name}' must be a number, not {type(value).__name__}.")
    if not (math.isfinite(value) and low <= value <= high):
        raise ValueError(f"Field '{name}' must be finite and in [{low}, {high}], not {value}.")
    return float(value)


@dataclass(frozen=True)
class JudgeProfile:
    """The judge's slot-1 bias, dispersion, strength spread and repeat correlation.

    Parameters
    ----------
    position_bias, position_bias_stderr : float
        Slot-1 advantage in log-odds (positive favours the first response), and its standard
        error (> 0), the standard deviation of the prior on a prompt's bias.
    dispersion, dispersion_df : float
        Quasi-likelihood dispersion ``phi`` of one verdict (> 0), and its residual degrees of
        freedom (> 0).
    strength_sd, strength_df : float
        Prior standard deviation of a prompt's strengths in log-odds (> 0), and its degrees of
        freedom (> 0).
    repeat_correlation, repeat_pairs : float
        Correlation of two verdicts of one ordered pair in [0, 1], and the repeats behind it.
    verdicts, prompts : int
        Usable verdicts and prompts the profile was learnt from (0 for the default).
    """

    position_bias: float = 0.0
    position_bias_stderr: float = 1.0
    dispersion: float = 1.0
    dispersion_df: float = 10.0
    strength_sd: float = 2.0
    strength_df: float = 10.0
    repeat_correlation: float = 0.0
    repeat_pairs: float = 0.0
    verdicts: int = 0
    prompts: int = 0

    def __post_init__(self) -> None:
        _number("position_bias", self.position_bias, low=-math.inf)
        for name in _POSITIVE_FIELDS:
            if _number(name, getattr(self, name), low=0.0) == 0.0:
                raise ValueError(f"Field '{name}' must be > 0, not 0.")
        _number("repeat_correlation", self.repeat_correlation, low=0.0, high=1.0)
        _number("repeat_pairs", self.repeat_pairs, low=0.0)
        for name in ("verdicts", "prompts"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"Field '{name}' must be an int >= 0, not {value!r}.")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, with the ``format`` tag.

        >>> JudgeProfile.from_dict(DEFAULT_PROFILE.to_dict()) == DEFAULT_PROFILE
        True
        """
        return {"format": PROFILE_FORMAT, **asdict(self)}

    @classmethod
    def from_dict(cls, data: object) -> JudgeProfile:
        """The profile :meth:`to_dict` wrote; unknown or missing fields are errors."""
        if not isinstance(data, dict):
            raise TypeError(f"A judge profile must be a JSON object, not {type(data).__name__}.")
        if data.get("format") != PROFILE_FORMAT:
            raise ValueError(
                f'A judge profile must have "format": {PROFILE_FORMAT!r}, '
                f"not {data.get('format')!r}."
            )
        names = {f.name for f in fields(cls)}
        given = set(data) - {"format"}
        if given - names:
            raise ValueError(f"Unknown judge-profile fields: {sorted(given - names)}.")
        if names - given:
            raise ValueError(f"Missing judge-profile fields: {sorted(names - given)}.")
        return cls(**{name: data[name] for name in names})

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the profile as JSON to ``path``, atomically (a temporary file, then a rename)."""
        text = json.dumps(self.to_dict(), indent=2) + "\n"
        write_atomically(Path(path), text.encode("utf-8"))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> JudgeProfile:
        """Read a profile :meth:`save` wrote; a bad file raises ``ValueError`` naming it."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            return cls.from_dict(data)
        except (ValueError, TypeError) as error:
            raise ValueError(f"{os.fspath(path)} is not a judge profile: {error}") from error


DEFAULT_PROFILE = JudgeProfile()
"""What is assumed of a judge before anything is learnt: no bias (prior SD 1 log-odds),
Bernoulli dispersion and a strength spread of 2, each counted as 10 degrees of freedom, and
independent repeats."""

MIN_DISPERSION = 1e-2
"""Floor on a learnt dispersion (a judge that never errs would otherwise give 0)."""
MIN_STRENGTH_SD = 1e-2
"""Floor on a learnt strength spread (a judge that cannot tell any candidates apart gives 0)."""
UNINFORMED_BIAS_SD = 1e3
"""Prior standard deviation of the slot-1 bias when :func:`learn_judge_profile` has no prior."""
_MAX_ROUNDS = 50
_MAX_NEWTON = 100
_TOL = 1e-10

ProfileLike = JudgeProfile | str | os.PathLike[str]
"""What the doors take for a profile: a :class:`JudgeProfile`, or the path of a saved one."""


def as_profile(value: ProfileLike | None, name: str = "judge_profile") -> JudgeProfile | None:
    """A profile argument as a :class:`JudgeProfile`: given, loaded from a path, or ``None``.

    >>> as_profile(None) is None
    True
    >>> as_profile(DEFAULT_PROFILE) is DEFAULT_PROFILE
    True
    """
    if value is None or isinstance(value, JudgeProfile):
        return value
    if isinstance(value, (str, os.PathLike)):
        return JudgeProfile.load(value)
    raise TypeError(
        f"Argument {name!r} must be a JudgeProfile, the path of a saved one, or None, "
        f"not {type(value).__name__}."
    )


@dataclass
class _Bucket:
    """Prompts with the same number of candidates, one entry per judged ordered pair: its
    prompt, slots, sums of the verdicts' ``w``, ``w o`` and ``w o^2``, ``count`` of verdicts
    and ``spread``, ``sum (o - mean o)^2``; ``theta[prompt, candidate]`` the strengths."""

    theta: NDArray[np.float64]
    prompt: NDArray[np.int64]
    first: NDArray[np.int64]
    second: NDArray[np.int64]
    weight: NDArray[np.float64]
    wins: NDArray[np.float64]
    wins_sq: NDArray[np.float64]
    count: NDArray[np.float64]
    spread: NDArray[np.float64]

    def pairs(self, rho: float, gamma: float) -> _Pairs:
        """The prompts as stacked Bradley-Terry problems with the slot-1 term ``gamma`` held
        fixed, each verdict weighing ``1 / (1 + (k - 1) rho)`` of its ordered pair (Kish)."""
        c = 1.0 / (1.0 + np.maximum(self.count - 1.0, 0.0) * rho)
        size, n = self.theta.shape
        w, o, o2 = (a * c for a in (self.weight, self.wins, self.wins_sq))
        return _Pairs(self.first, self.second, w, o, o2, n, n, self.prompt, size, gamma)


def _comparisons_of(item: object, preference_mapping: Any) -> Comparisons:
    """One prompt's verdicts as comparisons: given, or from a Ranking or a PromptRun."""
    if isinstance(item, Comparisons):
        return item
    judgements = getattr(item, "judgements", None)
    candidates = getattr(item, "candidates", None)
    if candidates is None:
        candidates = getattr(getattr(item, "job", None), "candidates", None)
    if judgements is None or candidates is None:
        raise TypeError(
            "Argument 'prompts' must hold Comparisons, Rankings or PromptRuns (one a prompt), "
            f"not {type(item).__name__}."
        )
    from genrm_rank.results import judgements_to_comparisons  # results imports strategies

    return judgements_to_comparisons(
        len(candidates), list(judgements), preference_mapping=preference_mapping
    )


def _buckets(prompts: Sequence[Comparisons]) -> list[_Bucket]:
    """The prompts with a usable verdict, bucketed by size."""
    by_size: dict[int, list[list[NDArray[Any]]]] = {}
    for c in prompts:
        n = c.n_items
        if n < 2 or not len(c) or not float(np.sum(c.weight)) > 0:
            continue
        pairs, cell = np.unique(c.first * n + c.second, return_inverse=True)
        count, outcomes, _ = _moments(cell, len(pairs), np.ones_like(c.outcome), c.outcome)
        spread = weighted_bincount(cell, (c.outcome - (outcomes / count)[cell]) ** 2, len(pairs))
        index = np.full(len(pairs), len(by_size.get(n, [])), dtype=np.int64)
        moments = _moments(cell, len(pairs), c.weight, c.outcome)
        by_size.setdefault(n, []).append([index, pairs // n, pairs % n, *moments, count, spread])
    buckets = []
    for n in sorted(by_size):
        columns = [np.concatenate(column) for column in zip(*by_size[n], strict=True)]
        buckets.append(_Bucket(np.zeros((len(by_size[n]), n)), *columns))
    return buckets


@dataclass(frozen=True)
class _Judge:
    """The judge-level quantities a round of the fit holds fixed."""

    phi: float
    strength_var: float
    rho: float
    bias_mean: float
    bias_sd: float


def _strength_modes(
    b: _Bucket, gamma: float, judge: _Judge, variance: float
) -> tuple[float, NDArray[np.float64]]:
    """Laplace's log marginal likelihood of the bias and spread, summed over the bucket's
    prompts, and the strengths' posterior covariances; each prompt's ``theta`` moves to its mode."""
    pairs = b.pairs(judge.rho, gamma)
    n = b.theta.shape[1]
    # The mode of l / phi - |theta|^2 / (2 s^2) is that of l - phi |theta|^2 / (2 s^2).
    prior = _Gaussian(np.zeros(n), np.full(n, judge.phi / variance))
    b.theta = pairs.minimise(prior, b.theta, _MAX_NEWTON, _TOL).x
    hess = pairs.hessian(b.theta, prior) / judge.phi
    log_post = -float(np.sum(pairs.objective(b.theta, prior))) / judge.phi
    log_det = float(np.sum(np.linalg.slogdet(hess)[1]))
    total = log_post - 0.5 * log_det - 0.5 * b.theta.size * math.log(variance)
    inverse: NDArray[np.float64] = np.asarray(np.linalg.inv(hess), dtype=np.float64)
    return total, inverse


def _log_marginal(
    buckets: Sequence[_Bucket],
    x: NDArray[np.float64],
    *,
    judge: _Judge,
    spread: tuple[float, float],
) -> float:
    """Log marginal posterior of ``x = (bias, log strength sd)``; ``spread``: the variance and
    degrees of freedom of a scaled inverse chi-square prior on the strength variance."""
    gamma = float(x[0])
    variance = max(math.exp(2.0 * float(x[1])), MIN_STRENGTH_SD**2)
    total = -0.5 * (gamma - judge.bias_mean) ** 2 / judge.bias_sd**2
    prior_var, prior_df = spread
    total -= 0.5 * prior_df * (math.log(variance) + prior_var / variance)
    for b in buckets:
        total += _strength_modes(b, gamma, judge, variance)[0]
    return total


def _maximise(f: Any, x: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The maximiser of ``f`` in two dimensions, and the Hessian there: Newton's method with
    central differences and step halving."""
    h = 1e-4
    eye = np.eye(2) * h
    current = f(x)
    hess = -np.eye(2)
    for _ in range(60):
        grad = np.array([(f(x + e) - f(x - e)) / (2 * h) for e in eye])
        hess = np.empty((2, 2))
        for i in range(2):
            hess[i, i] = (f(x + eye[i]) - 2 * current + f(x - eye[i])) / h**2
        hess[0, 1] = hess[1, 0] = (
            f(x + eye[0] + eye[1])
            - f(x + eye[0] - eye[1])
            - f(x - eye[0] + eye[1])
            + f(x - eye[0] - eye[1])
        ) / (4 * h * h)
        if np.all(np.linalg.eigvalsh(hess) < 0):
            step = -np.linalg.solve(hess, grad)
        else:  # not concave here: a cautious step up the gradient
            step = grad / (np.max(np.abs(np.diag(hess))) + 1.0)
        step = np.clip(step, -1.0, 1.0)
        t = 1.0
        for _ in range(40):
            value = f(x + t * step)
            if value >= current - 1e-10 * (1.0 + abs(current)):
                break
            t /= 2.0
        else:
            break
        x, current = x + t * step, value
        if float(np.max(np.abs(t * step))) < 1e-6:
            break
    return x, hess


@one_blas_thread()  # many small solves: the BLAS pool would only spin
def learn_judge_profile(
    prompts: Iterable[Comparisons | Any],
    *,
    prior: JudgeProfile | None = DEFAULT_PROFILE,
    preference_mapping: Any = None,
) -> JudgeProfile:
    """Learn what a judge is like from its verdicts over many prompts.

    One hierarchical Bradley-Terry model of every verdict: prompt ``p``'s candidate ``i`` has a
    strength ``theta_pi ~ N(0, s^2)``, and a verdict of the ordered pair ``(i, j)`` has mean
    ``sigmoid(theta_pi - theta_pj + gamma)``, one slot-1 bias ``gamma`` shared by every prompt
    (the home-advantage model; Agresti, *Categorical Data Analysis*, sec. 10.6), and
    quasi-likelihood variance ``phi p (1 - p)`` (Wedderburn, Biometrika 61, 1974). Rounds
    alternate until the dispersion and the repeat correlation settle:

    - ``position_bias`` and ``strength_sd``: the mode of the marginal posterior of ``gamma``
      and ``log s``, every prompt's strengths integrated out by Laplace's method (Tierney &
      Kadane, JASA 81, 1986), so that prompts of few verdicts do not pull the bias low as
      penalised quasi-likelihood does (Breslow & Clayton, JASA 88, 1993); ``strength_sd`` is
      the empirical-Bayes spread (Casella, Am. Stat. 39, 1985), on ``N - 1`` degrees of freedom
      a prompt; the bias's standard error comes from the curvature;
    - ``dispersion``: the pooled moment estimate ``sum w (o - p)^2 / sum w p (1 - p)``, scaled
      by verdicts over residual degrees of freedom (verdicts less ``2 tr(H) - tr(H^2)``, ``H``
      the hat matrix; Hastie & Tibshirani, *Generalized Additive Models*, 1990, sec. 3.5);
      it runs a little low on prompts of few hard verdicts (``benchmarks/README.md``);
    - ``repeat_correlation``: the intra-class correlation of the verdicts of one ordered pair
      judged ``k >= 2`` times (``repeat_pairs`` sums ``k - 1``); each verdict then weighs
      ``1 / (1 + (k - 1) r)`` (Kish's design effect).

    Parameters
    ----------
    prompts : iterable
        One item a prompt: its :class:`~genrm_rank.aggregators.Comparisons`, or a
        :class:`~genrm_rank.results.Ranking` or :class:`~genrm_rank.orchestrator.PromptRun`.
    prior : JudgeProfile or None
        The priors on ``gamma`` and ``s^2`` (scaled inverse chi-square), its ``*_df`` and
        ``repeat_pairs`` counted in the pooled estimates; ``None``: the verdicts alone.
    preference_mapping : callable, optional
        Ranking (1..6) to preference, for Rankings and PromptRuns; default linear.

    Returns
    -------
    JudgeProfile

    Raises
    ------
    ValueError
        No prompt has a usable verdict.

    Examples
    --------
    >>> c = Comparisons.from_arrays(2, first=[0, 1] * 20, second=[1, 0] * 20,
    ...                             outcome=[1.0, 0.0] * 15 + [0.0, 1.0] * 5)
    >>> profile = learn_judge_profile([c])
    >>> profile.verdicts, profile.prompts, abs(round(profile.position_bias, 2))
    (40, 1, 0.0)
    """
    from genrm_rank.verdict import linear_preference

    mapping = linear_preference if preference_mapping is None else preference_mapping
    if prior is not None:
        check.instance("prior", prior, JudgeProfile, "a JudgeProfile or None")
    buckets = _buckets([_comparisons_of(item, mapping) for item in prompts])
    if not buckets:
        raise ValueError("Argument 'prompts' holds no usable verdict; a profile needs some.")
    base = prior or DEFAULT_PROFILE
    bias = (base.position_bias, base.position_bias_stderr) if prior else (0.0, UNINFORMED_BIAS_SD)
    judge = _Judge(base.dispersion, base.strength_sd**2, base.repeat_correlation, *bias)
    verdicts = round(sum(float(b.count.sum()) for b in buckets))
    n_prompts = sum(int(b.theta.shape[0]) for b in buckets)
    strength_dof = float(sum(b.theta.shape[0] * (b.theta.shape[1] - 1) for b in buckets))
    repeats = float(sum(float(np.sum(np.clip(b.count - 1.0, 0.0, None))) for b in buckets))
    spread_prior = (base.strength_sd**2, base.strength_df if prior is not None else 0.0)
    x = np.array([judge.bias_mean, math.log(base.strength_sd)])
    variance_g = judge.bias_sd**2
    for _ in range(_MAX_ROUNDS):
        x, hess = _maximise(
            functools.partial(_log_marginal, buckets, judge=judge, spread=spread_prior), x
        )
        x[1] = max(float(x[1]), math.log(MIN_STRENGTH_SD))
        gamma, strength_var = float(x[0]), math.exp(2.0 * float(x[1]))
        if np.all(np.linalg.eigvalsh(hess) < 0):
            variance_g = float(np.linalg.inv(-hess)[0, 0])
        elif hess[0, 0] < 0:  # the spread at its floor: the bias's own curvature
            variance_g = -1.0 / float(hess[0, 0])
        else:  # the verdicts say nothing of the bias: its prior
            variance_g = judge.bias_sd**2
        residuals = spread = total = hat = repeat_sq = repeat_null = 0.0
        for b in buckets:
            inverse = _strength_modes(b, gamma, judge, strength_var)[1]
            pairs = b.pairs(judge.rho, gamma)
            p = pairs.probabilities(b.theta)
            residuals += float(np.sum(p * p * pairs.weight - 2.0 * p * pairs.wins + pairs.wins_sq))
            spread += float(np.sum(pairs.weight * p * (1.0 - p)))
            total += pairs.total
            # 2 tr(H) - tr(H^2) = n - tr(C^2) / s^4 a prompt, C its strengths' covariance
            hat += float(inverse.shape[1] * inverse.shape[0] - np.sum(inverse**2) / strength_var**2)
            repeated = b.count >= 2
            repeat_sq += float(np.sum(b.spread[repeated]))
            repeat_null += float(np.sum(((b.count - 1.0) * p * (1.0 - p))[repeated]))
        hat += max(1.0 - (variance_g / judge.bias_sd**2) ** 2, 0.0)
        df = total - hat
        raw = residuals / spread * total / df if df > 0 and spread > 0 else base.dispersion
        df = max(df, 0.0)
        dispersion_df = df + (base.dispersion_df if prior is not None else 0.0)
        phi = (df * raw + (dispersion_df - df) * base.dispersion) / dispersion_df
        phi = max(phi, MIN_DISPERSION)
        repeat_pairs = repeats + (base.repeat_pairs if prior is not None else 0.0)
        rho = base.repeat_correlation
        if repeat_pairs > 0:
            own = 1.0 - repeat_sq / (phi * repeat_null) if repeat_null > 0 else 1.0
            pooled = repeats * own + (repeat_pairs - repeats) * base.repeat_correlation
            rho = min(max(pooled / repeat_pairs, 0.0), 1.0)
        moved = max(abs(phi - judge.phi) / judge.phi, abs(rho - judge.rho))
        judge = _Judge(phi, strength_var, rho, judge.bias_mean, judge.bias_sd)
        if moved < 1e-4:
            break
    strength_df = strength_dof + (base.strength_df if prior is not None else 0.0)
    return JudgeProfile(
        position_bias=gamma,
        position_bias_stderr=math.sqrt(variance_g),
        dispersion=judge.phi,
        dispersion_df=dispersion_df,
        strength_sd=math.sqrt(judge.strength_var),
        strength_df=strength_df,
        repeat_correlation=judge.rho,
        repeat_pairs=repeat_pairs,
        verdicts=verdicts,
        prompts=n_prompts,
    )
