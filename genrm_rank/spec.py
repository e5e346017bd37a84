"""The run spec: one frozen, validated value holding what defines a ranking run.

Every door into genrm_rank (the Python functions, the SDG pipeline and the ``genrm-rank`` CLI,
whose spec options and their help come from :class:`RankSpec`'s fields and Parameters) builds a
:class:`RankSpec` and hands it to the one runner (:mod:`genrm_rank.runner`). It holds how
candidates are compared and how verdicts are aggregated; the inputs and the run's resources (the
judge, concurrency, run-wide caps) belong to a call.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypedDict, cast

import numpy as np

from genrm_rank import validate as check
from genrm_rank.errors import ArgumentError
from genrm_rank.strategies import check_swap, strategy_name
from genrm_rank.verdict import PreferenceMapping, linear_preference, table_preference

__all__ = [
    "DEFAULT_ALPHA",
    "RANK_DEFAULTS",
    "RENAMED_FIELDS",
    "REWARD_DEFAULTS",
    "SELECT_DEFAULTS",
    "PromptSeeds",
    "RankSpec",
    "SpecFields",
    "preference_mapping",
    "renamed_fields",
    "resolve_spec",
]

DEFAULT_ALPHA = 0.05
"""L2 prior strength of the per-prompt Bradley-Terry fit: a N(0, 1/(2*alpha)) prior on each
strength (standard deviation about 3.2 in log-odds). Weak enough to let a few verdicts speak,
strong enough that a candidate that won every match gets a finite strength and an interval."""

Preference = str | Mapping[int, float] | PreferenceMapping
"""``"linear"``, a table of the six rankings to preferences, or a callable."""


@dataclass(frozen=True)
class PromptSeeds:
    """One prompt's randomness: a generator for its strategy and a seed for its aggregation."""

    strategy: np.random.Generator
    aggregation: int


_LEAST = dict(samples=1, seed=0, budget=0, retries=0, p_best_draws=1, bootstrap_rounds=0)
"""The integer fields of :class:`RankSpec` and their least values (``budget`` may be None)."""


@dataclass(frozen=True)
class RankSpec:
    """What defines a ranking run; validated once, when built.

    The first paragraph of each parameter is also the help of its ``genrm-rank`` option.

    Parameters
    ----------
    strategy : str
        One of adaptive, baseline, circular, knockout, round-robin, swiss (``-`` or ``_``
        accepted).
    swap : {"both", "random", "none", "auto"}
        Position debiasing: both orders, one seeded random order, none (as scheduled), or auto
        (the reverse order only where it pays: close or deciding verdicts).

        Use ``"auto"`` with ``strategy="adaptive"``: ``"both"`` makes it judge every pair it
        visits in both orders.
    samples : int
        Judgements per match and order.
    seed : int or numpy.random.Generator
        The run seed: each prompt's randomness comes from it and the prompt's key (its id).

        See :meth:`prompt_seeds`. A ``Generator`` is drawn from once, here, for an int seed, so
        the spec stays a plain value that can be stored.
    budget : int or None
        Most paid judge calls per prompt, re-asks included (a ceiling, never a target; the
        result says when it bound).

        ``None``: no limit. Cached verdicts are free.
    retries : int
        Paid re-asks of a failed verdict (unreadable, truncated, no answer), within the budget.
    preference : str, mapping or callable
        Ranking to preference: linear, or a JSON table of the six rankings.

        A table is ``{1: ..., 6: ...}`` (:func:`~genrm_rank.verdict.table_preference`); in
        Python a callable is accepted too.
    fit_position_bias : bool
        Fit the judge's slot-1 advantage in the Bradley-Terry aggregation.

        The fitted value is :attr:`~genrm_rank.results.Ranking.position_bias`. Named
        ``position_bias`` before 0.2.0; :meth:`from_dict` still reads that name.
    alpha : float
        L2 prior of the Bradley-Terry fit.
    confidence : float
        Level of the strength intervals, in (0, 1).
    p_best_draws : int
        Posterior draws for P(best).
    bootstrap_rounds : int
        Bootstrap resamples for the intervals (0: the normal approximation).
    strategy_options : mapping
        Extra options of the strategy, e.g. '{"seeding": [3, 0, 1, 2]}' for a knockout.

    Examples
    --------
    >>> spec = RankSpec(strategy="knockout", budget=10)
    >>> spec.strategy, spec.swap, spec.budget
    ('knockout', 'both', 10)
    >>> RankSpec.from_dict(spec.to_dict()) == spec
    True
    """

    strategy: str = "round_robin"
    swap: str = "both"
    samples: int = 1
    seed: int | np.random.Generator = 0
    budget: int | None = None
    retries: int = 2
    preference: Preference = "linear"
    fit_position_bias: bool = True
    alpha: float = DEFAULT_ALPHA
    confidence: float = 0.95
    p_best_draws: int = 4000
    bootstrap_rounds: int = 0
    strategy_options: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "strategy", strategy_name(self.strategy))
        set_(self, "swap", check_swap(self.swap))
        if isinstance(self.seed, np.random.Generator):
            set_(self, "seed", int(self.seed.integers(0, 2**63 - 1)))
        for name, minimum in _LEAST.items():
            value = getattr(self, name)
            if not (name == "budget" and value is None):
                set_(self, name, check.integer(name, value, minimum, spelled=">="))
        preference_mapping(self.preference)  # checked now, built on use
        check.flag("fit_position_bias", self.fit_position_bias)
        for name in ("alpha", "confidence"):
            set_(self, name, check.number(name, getattr(self, name)))
        check.at_least("alpha", self.alpha, 0)
        if not 0.0 < self.confidence < 1.0:
            raise ArgumentError("confidence", f"must be in (0, 1), not {self.confidence}.")
        options = check.mapping("strategy_options", self.strategy_options)
        set_(self, "strategy_options", MappingProxyType(dict(options)))

    @property
    def preference_mapping(self) -> PreferenceMapping:
        """The ranking-to-preference callable this spec names."""
        return preference_mapping(self.preference)

    def prompt_seeds(self, key: str) -> PromptSeeds:
        """The randomness of the prompt with this key, derived from the run seed.

        The same key and seed always give the same draws, whatever order prompts arrive in;
        different keys give independent streams (:class:`numpy.random.SeedSequence`).

        >>> spec = RankSpec(seed=7)
        >>> spec.prompt_seeds("a").aggregation == spec.prompt_seeds("a").aggregation
        True
        >>> spec.prompt_seeds("a").aggregation == spec.prompt_seeds("b").aggregation
        False
        """
        digest = hashlib.blake2b(key.encode("utf-8"), digest_size=16).digest()
        words = tuple(int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4))
        root = np.random.SeedSequence(entropy=cast(int, self.seed), spawn_key=words)
        for_strategy, for_aggregation = root.spawn(2)
        return PromptSeeds(
            strategy=np.random.default_rng(for_strategy),
            aggregation=int(for_aggregation.generate_state(2, np.uint64)[0] >> np.uint64(1)),
        )

    def replace(self, **changes: Any) -> RankSpec:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The spec as JSON-ready values (what a resume file stores).

        Raises ``ValueError`` for a callable ``preference``, which has no stored form.
        """
        if callable(self.preference):
            raise ValueError(
                "Argument 'preference' is a callable, which cannot be stored; give 'linear' or "
                "a table {1: ..., 6: ...} to store the spec."
            )
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        if isinstance(self.preference, Mapping):
            out["preference"] = {str(k): float(v) for k, v in sorted(self.preference.items())}
        out["strategy_options"] = dict(self.strategy_options)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RankSpec:
        """The spec :meth:`to_dict` stored (unknown keys are refused, naming them).

        A field's name before a rename (:data:`RENAMED_FIELDS`) is read as its new name, so a
        spec stored by an earlier version loads.
        """
        values = renamed_fields(data)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"Argument 'data' has keys that are not RankSpec fields: {unknown}.")
        if isinstance(values.get("preference"), Mapping):
            values["preference"] = {int(k): float(v) for k, v in values["preference"].items()}
        return cls(**values)


RENAMED_FIELDS: Mapping[str, str] = {"position_bias": "fit_position_bias"}
"""RankSpec fields renamed in 0.2.0, old name to new (``Ranking.position_bias`` is the fitted
value; the spec's switch says what it does)."""


def renamed_fields(data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` with the old names of renamed fields (:data:`RENAMED_FIELDS`) replaced by the new.

    >>> renamed_fields({"position_bias": False, "seed": 3})
    {'fit_position_bias': False, 'seed': 3}
    """
    return {RENAMED_FIELDS.get(k, k): v for k, v in data.items()}


def preference_mapping(preference: Preference) -> PreferenceMapping:
    """The ranking-to-preference callable that a ``preference`` setting names (checked)."""
    if callable(preference):
        return preference
    if isinstance(preference, Mapping):
        return table_preference({int(k): float(v) for k, v in preference.items()})
    if preference == "linear":
        return linear_preference
    raise ArgumentError(
        "preference",
        f"must be 'linear', a table {{1: ..., 6: ...}} or a callable, not {preference!r}.",
    )


RANK_DEFAULTS = RankSpec()
"""Defaults of :func:`~genrm_rank.rank`, ``genrm-rank rank`` and ``genrm-rank pairs``: a
round-robin in both orders, N(N-1) calls."""

SELECT_DEFAULTS = RankSpec(strategy="knockout")
"""Defaults of :func:`~genrm_rank.select_best` and ``genrm-rank select``: a knockout in both
orders, 2(N-1) calls."""

REWARD_DEFAULTS = RankSpec(strategy="circular", swap="none")
"""Defaults of :func:`~genrm_rank.group_rewards`: NVIDIA's circular pairs, N calls."""


class SpecFields(TypedDict, total=False):
    """The fields of :class:`RankSpec`, as keyword arguments of the public functions."""

    strategy: str
    swap: str
    samples: int
    seed: int | np.random.Generator
    budget: int | None
    retries: int
    preference: Preference
    fit_position_bias: bool
    alpha: float
    confidence: float
    p_best_draws: int
    bootstrap_rounds: int
    strategy_options: Mapping[str, Any]


def resolve_spec(spec: RankSpec | None, fields: Mapping[str, Any], defaults: RankSpec) -> RankSpec:
    """The spec of a call: ``spec`` as given, or ``defaults`` with ``fields`` changed.

    Passing both a spec and fields is refused, since the two could disagree.
    """
    unknown = sorted(set(fields) - set(SpecFields.__annotations__))
    if unknown:
        renamed = "".join(
            f"; {old!r} is now {RENAMED_FIELDS[old]!r}" for old in unknown if old in RENAMED_FIELDS
        )
        raise TypeError(f"Unexpected keyword arguments {unknown}: not RankSpec fields{renamed}.")
    if spec is not None:
        check.instance("spec", spec, RankSpec)
        if fields:
            raise TypeError(
                f"Pass either 'spec' or its fields ({', '.join(sorted(fields))}), not both: "
                "use spec.replace(...) to change a spec."
            )
        return spec
    return defaults.replace(**fields) if fields else defaults
