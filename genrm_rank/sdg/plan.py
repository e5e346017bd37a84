"""A cost plan before the first call (:func:`plan_file`): rows, comparisons (:func:`calls_for`,
:func:`expected_calls_for`), prompt tokens (counted with a tokenizer when given, else 4
characters a token), and from :class:`CostAssumptions` completion tokens, GPU-hours and money.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from functools import cache, partial
from typing import Any

from genrm_rank import validate as check
from genrm_rank.errors import ArgumentError, Words
from genrm_rank.messages import build_messages
from genrm_rank.sdg.filters import Formatter
from genrm_rank.sdg.inputs import RowSource
from genrm_rank.sdg.pipeline import FIELD_CHECK_ROWS, first_rows_message, holds_back, read_rows
from genrm_rank.sdg.rows import Row, RowError, RowReader, RowSpec
from genrm_rank.spec import RankSpec
from genrm_rank.strategies import make_strategy
from genrm_rank.strategies.adaptive import default_budget, max_calls
from genrm_rank.verdict import Verdict

__all__ = [
    "ADAPTIVE_MEASURED_CALLS",
    "FIXED_STRATEGIES",
    "CostAssumptions",
    "CostPlan",
    "adaptive_ceiling",
    "calls_for",
    "depends_on_verdicts",
    "expected_calls_for",
    "plan_file",
    "plan_rows",
]

FIXED_STRATEGIES = frozenset({"knockout", "round_robin", "circular", "swiss"})
"""Strategies whose number of calls does not depend on the verdicts (with a fixed swap mode)."""
_FIXED_SWAPS = frozenset({"both", "random", "none"})
_STAND_IN = Verdict(score_1=4, score_2=3, ranking=2)
_MESSAGE_OVERHEAD_TOKENS = 8  # role markers and separators of one chat message

ADAPTIVE_MEASURED_CALLS: dict[int, float] = {8: 26.9, 16: 50.0, 64: 208.3}
"""Calls a prompt the default adaptive (``delta`` 0.05, budget ``4 N``) made at each N, from
benchmarks/README.md, "Current figures (issue 12d)": N = 8 on replayed GPT-4 Vicuna verdicts,
N = 16 and 64 on the simulated biased judge. Update them with the benchmarks."""
_ADAPTIVE_SOURCE = "benchmarks/README.md, 'Current figures (issue 12d)'"
_ADAPTIVE_DEFAULT_OPTIONS = frozenset({"budget", "batch"})


@dataclass(frozen=True)
class CostAssumptions:
    """What a plan assumes beyond the file and the spec.

    Attributes
    ----------
    completion_tokens_per_call : int
        Reasoning plus verdict tokens a call generates (a run's summary reports the measured).
    chars_per_token : float
        Characters a token, when no tokenizer is given.
    tokens_per_second_per_replica : float, optional
        Generated tokens a second one replica sustains; without it, no GPU-hours.
    gpus_per_replica : int
        GPUs one replica holds (8 H200s for Nemotron-3-Ultra GenRM).
    price_per_gpu_hour : float, optional
        Money a GPU-hour costs; without it, no cost.
    expected_calls_per_row : float, optional
        Calls a row of an outcome-dependent strategy is expected to take (at most its bound);
        without it, :data:`ADAPTIVE_MEASURED_CALLS` is assumed.
    """

    completion_tokens_per_call: int = 4096
    chars_per_token: float = 4.0
    tokens_per_second_per_replica: float | None = None
    gpus_per_replica: int = 8
    price_per_gpu_hour: float | None = None
    expected_calls_per_row: float | None = None

    def __post_init__(self) -> None:
        check.at_least("completion_tokens_per_call", self.completion_tokens_per_call, 0)
        rates = ("chars_per_token", "tokens_per_second_per_replica", "price_per_gpu_hour")
        for name in (*rates, "expected_calls_per_row"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ArgumentError(f"{name}", f"must be a positive number, not {value}.")
        check.at_least("gpus_per_replica", self.gpus_per_replica, 1)


@dataclass
class CostPlan:
    """What a run would cost (see the module docstring)."""

    rows: int = 0
    """Valid rows that would be ranked."""
    bad_rows: int = 0
    """Rows that would go to the errors file (no call made for them)."""
    comparisons: int = 0
    comparisons_exact: bool = True
    """False when a strategy's count depends on the verdicts: ``comparisons`` is then a bound."""
    expected_comparisons: float | None = None
    """Calls the run is expected to take when ``comparisons`` is a bound, else ``None``."""
    expected_basis: str | None = None
    """Where :attr:`expected_comparisons` comes from (a given figure or a stated assumption)."""
    prompt_tokens: int = 0
    prompt_tokens_counted: bool = False
    """True when a tokenizer counted them, False for the 4-characters-a-token estimate."""
    completion_tokens: int = 0
    assumptions: CostAssumptions = field(default_factory=CostAssumptions)
    by_candidates: dict[int, int] = field(default_factory=dict)
    """Rows by number of candidates."""
    bad_rows_by_kind: dict[str, int] = field(default_factory=dict)
    """Bad rows by :attr:`~genrm_rank.sdg.rows.RowError.kind`."""
    stop: str | None = None
    """Why the run would stop as misconfigured before its first call, or ``None``."""

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def gpu_hours(self) -> float | None:
        """GPU-hours the generation takes at the assumed throughput, or ``None``."""
        rate = self.assumptions.tokens_per_second_per_replica
        if rate is None:
            return None
        return self.completion_tokens / rate / 3600.0 * self.assumptions.gpus_per_replica

    @property
    def cost(self) -> float | None:
        """Money at the assumed price per GPU-hour, or ``None``."""
        hours, price = self.gpu_hours, self.assumptions.price_per_gpu_hour
        return None if hours is None or price is None else hours * price

    def expected(self, bound: float | None) -> float | None:
        """``bound`` (a figure counted at :attr:`comparisons`: completion tokens, GPU-hours,
        cost) at the expected calls instead, or ``None`` when no expected calls are known."""
        if bound is None or self.expected_comparisons is None or not self.comparisons:
            return None
        return bound * self.expected_comparisons / self.comparisons

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(total_tokens=self.total_tokens, gpu_hours=self.gpu_hours, cost=self.cost)
        out.update(
            expected_completion_tokens=self.expected(self.completion_tokens),
            expected_gpu_hours=self.expected(self.gpu_hours),
            expected_cost=self.expected(self.cost),
        )
        out["by_candidates"] = {str(k): v for k, v in sorted(self.by_candidates.items())}
        return out

    def format(self) -> str:
        """The plan as a short table for a terminal."""
        a, hours, cost = self.assumptions, self.gpu_hours, self.cost

        def expected(bound: float | None, spec: str) -> str:
            value = self.expected(bound)
            return "" if value is None else f"; expected about {value:{spec}}"

        kinds = ", ".join(f"{k} {v:,}" for k, v in sorted(self.bad_rows_by_kind.items()))
        bound = "" if self.comparisons_exact else "at most "
        counted = "counted" if self.prompt_tokens_counted else "estimated, 4 chars a token"
        shown = {
            "rows to rank": f"{self.rows:,} ({self.bad_rows:,} bad rows to the errors file"
            + (f": {kinds})" if kinds else ")"),
            "judge calls": f"{bound}{self.comparisons:,} (re-asks of failed verdicts not included)",
        }
        if self.expected_comparisons is not None:
            calls = f"about {self.expected_comparisons:,.0f} ({self.expected_basis})"
            shown["expected judge calls"] = calls
        shown["prompt tokens"] = f"{self.prompt_tokens:,} ({counted})"
        per_call = f"{a.completion_tokens_per_call:,} a call, assumed"
        tokens = f"{self.completion_tokens:,} ({per_call})"
        shown["completion tokens"] = tokens + expected(self.completion_tokens, ",.0f")
        shown["total tokens"] = f"{self.total_tokens:,}"
        if hours is not None:
            speed = f"{a.tokens_per_second_per_replica:,.0f} generated tokens/s a replica"
            at = f"{hours:,.1f} (at {speed} of {a.gpus_per_replica} GPUs)"
            shown["GPU-hours"] = at + expected(hours, ",.1f")
        if cost is not None:
            price = f"{cost:,.2f} (at {a.price_per_gpu_hour:g} a GPU-hour)"
            shown["cost"] = price + expected(cost, ",.2f")
        if self.stop is not None:
            shown["the run would stop"] = Words("before its first call: {s}", s=self.stop)
        return Words(  # the stop names arguments, which a front end words its own way
            "\n".join(f"{name:<26}{{v{i}}}" for i, name in enumerate(shown)),
            **{f"v{i}": value for i, value in enumerate(shown.values())},
        )


def calls_for(spec: RankSpec, n_candidates: int) -> tuple[int, bool]:
    """Judge calls one row of ``n_candidates`` costs under ``spec``, and whether exactly.

    Fixed strategies are driven to the end with a stand-in verdict, within the budget (a
    round-robin is counted); adaptive gets :func:`adaptive_ceiling`, others the most the budget,
    or their cap of ``2 N (N - 1)`` calls a sample, allows.

    >>> calls_for(RankSpec(strategy="knockout"), 8)
    (14, True)
    >>> calls_for(RankSpec(strategy="round_robin", swap="none", budget=10), 8)
    (10, True)
    >>> calls_for(RankSpec(strategy="adaptive"), 8)
    (32, False)
    """
    budget = spec.budget
    if spec.strategy == "adaptive":
        return adaptive_ceiling(spec, n_candidates), False
    if depends_on_verdicts(spec):
        cap = 2 * n_candidates * (n_candidates - 1) * spec.samples
        return (cap if budget is None else min(cap, budget)), False
    if spec.strategy == "round_robin":  # counted, not driven: it schedules every pair up front
        calls = n_candidates * (n_candidates - 1) // 2 * spec.samples
        calls *= 2 if spec.swap == "both" else 1
        return (calls if budget is None else min(calls, budget)), True
    scheduler = make_strategy(
        spec.strategy,
        n_candidates,
        swap=spec.swap,
        samples=spec.samples,
        seed=spec.prompt_seeds("plan").strategy,
        **dict(spec.strategy_options),
    )
    calls = 0
    while not scheduler.done:
        left = None if budget is None else budget - calls
        batch = scheduler.next_pairs(left)
        if not batch:
            scheduler.stop()  # held back by the budget
            break
        calls += len(batch)
        for call in batch:
            scheduler.record(call, _STAND_IN)
    return calls, True


def depends_on_verdicts(spec: RankSpec) -> bool:
    """Whether the calls a row takes under ``spec`` depend on the verdicts (a plan's bound).

    >>> depends_on_verdicts(RankSpec(strategy="knockout"))
    False
    >>> depends_on_verdicts(RankSpec(strategy="adaptive"))
    True
    """
    return spec.strategy not in FIXED_STRATEGIES or spec.swap not in _FIXED_SWAPS


def adaptive_ceiling(spec: RankSpec, n_candidates: int) -> int:
    """The most calls the adaptive strategy makes on a row: the spec's or its own budget,
    whichever is lower, at most its cap of ``2 N (N - 1)``; else ``4 N``.

    >>> [adaptive_ceiling(RankSpec(strategy="adaptive", budget=b), 8) for b in (None, 14, 500)]
    [32, 14, 112]
    """
    own = spec.strategy_options.get("budget")
    limits = [int(b) for b in (own, spec.budget) if b is not None]
    if not limits:
        return default_budget(n_candidates)
    return min([max_calls(n_candidates), *limits])


def expected_calls_for(
    spec: RankSpec, n_candidates: int, assumptions: CostAssumptions
) -> tuple[float, str] | None:
    """Calls a row of an outcome-dependent strategy is expected to take, and on what basis
    (``None`` for a fixed strategy): ``assumptions.expected_calls_per_row``, else for the
    default adaptive the share of ``4 N`` it spent at the nearest measured N
    (:data:`ADAPTIVE_MEASURED_CALLS`), else the bound; never above the bound.

    >>> expected_calls_for(RankSpec(strategy="adaptive"), 8, CostAssumptions())[0]
    26.9
    >>> expected_calls_for(RankSpec(strategy="adaptive", budget=14), 8, CostAssumptions())[0]
    14
    """
    bound, exact = calls_for(spec, n_candidates)
    if exact:
        return None
    given = assumptions.expected_calls_per_row
    if given is not None:
        return min(given, bound), "the expected calls a row given"
    if spec.strategy != "adaptive" or not set(spec.strategy_options) <= _ADAPTIVE_DEFAULT_OPTIONS:
        return bound, "assumed: every row takes its bound; no measurement for these settings"
    default = default_budget(n_candidates)
    measured = min(ADAPTIVE_MEASURED_CALLS, key=lambda m: abs(math.log(m / n_candidates)))
    share = ADAPTIVE_MEASURED_CALLS[measured] / (4 * measured)
    if bound > default:
        return bound, "assumed: every row takes its budget; measured only up to 4N"
    basis = (
        f"assumed: {share:.0%} of 4N a row, as the default adaptive at N = {measured} in "
        f"{_ADAPTIVE_SOURCE}; a real judge may take up to the bound"
    )
    return min(bound, round(share * default, 1)), basis


def plan_file(
    input_path: str | os.PathLike[str] | RowSource,
    spec: RankSpec,
    *,
    rows: RowSpec | None = None,
    principle: str | None = None,
    assumptions: CostAssumptions | None = None,
    count_tokens: Callable[[str], int] | None = None,
    shard: tuple[int, int] = (0, 1),
    formatter: Formatter | None = None,
) -> CostPlan:
    """The cost plan of ranking every row of an input (a path or a ``RowSource``) with ``spec``
    (no judge is called); with the run's ``formatter``, a row it cannot write is a bad row."""
    read = read_rows(input_path, RowReader(rows), shard, formatter)
    return plan_rows(
        (parsed for _, parsed in read if parsed is not None),
        spec,
        principle=principle,
        assumptions=assumptions,
        count_tokens=count_tokens,
    )


def plan_rows(
    rows: Iterable[Row | RowError],
    spec: RankSpec,
    *,
    principle: str | None = None,
    assumptions: CostAssumptions | None = None,
    count_tokens: Callable[[str], int] | None = None,
) -> CostPlan:
    """The cost plan of rows already read (see :func:`plan_file`)."""
    plan = CostPlan(assumptions=assumptions or CostAssumptions())
    plan.prompt_tokens_counted = count_tokens is not None
    chars_per_token = plan.assumptions.chars_per_token

    def tokens(text: str) -> int:
        if count_tokens is not None:
            return int(count_tokens(text))
        return math.ceil(len(text) / chars_per_token)

    calls_of = cache(partial(calls_for, spec))
    expected_of = cache(partial(expected_calls_for, spec, assumptions=plan.assumptions))
    bases: list[str] = []
    leading: list[RowError] | None = []  # the first rows' errors, while all alike (the run's check)
    for row in rows:
        if leading is not None:
            if isinstance(row, RowError) and holds_back(leading, row):
                leading.append(row)
                if len(leading) == FIELD_CHECK_ROWS:
                    plan.stop = first_rows_message(leading)
            else:
                leading = None
        if isinstance(row, RowError):
            plan.bad_rows += 1
            plan.bad_rows_by_kind[row.kind] = plan.bad_rows_by_kind.get(row.kind, 0) + 1
            continue
        n = len(row.candidates)
        plan.rows += 1
        plan.by_candidates[n] = plan.by_candidates.get(n, 0) + 1
        calls, exact = calls_of(n)
        plan.comparisons += calls
        plan.comparisons_exact &= exact
        expected = expected_of(n)
        if expected is not None:
            plan.expected_comparisons = (plan.expected_comparisons or 0.0) + expected[0]
            if expected[1] not in bases:
                bases.append(expected[1])
                plan.expected_basis = "; ".join(bases)
        rubric = row.principle if row.principle is not None else principle
        # Every message of one comparison but the two candidates' texts, then their mean.
        messages = build_messages(row.conversation, "-", "-", rubric)
        shared_tokens = sum(
            _MESSAGE_OVERHEAD_TOKENS
            + (0 if m["role"] in ("response_1", "response_2") else tokens(m["content"]))
            for m in messages
        )
        candidate_tokens = sum(tokens(text) for text in row.candidates) / n
        per_call = shared_tokens + 2 * candidate_tokens
        plan.prompt_tokens += round(calls * per_call)
        plan.completion_tokens += calls * plan.assumptions.completion_tokens_per_call
    if leading and plan.stop is None:  # a short input whose every row failed alike: the same
        plan.stop = first_rows_message(leading)
    return plan
