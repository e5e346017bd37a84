"""Strategies: schedulers that choose which ordered pairs to judge, with no I/O.

One module per tournament format (round_robin, knockout, circular, swiss, adaptive, baseline);
:func:`make_strategy` builds one by name.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from genrm_rank import validate as check
from genrm_rank.strategies.adaptive import Adaptive
from genrm_rank.strategies.base import (
    SWAP_MODES,
    Judgement,
    Match,
    MatchScheduler,
    PairCall,
    Scheduler,
    StrategyOutcome,
    SwapMode,
    check_swap,
)
from genrm_rank.strategies.baseline import Baseline
from genrm_rank.strategies.circular import Circular
from genrm_rank.strategies.knockout import Knockout
from genrm_rank.strategies.round_robin import RoundRobin
from genrm_rank.strategies.swiss import Swiss

__all__ = [
    "STRATEGIES",
    "SWAP_MODES",
    "Adaptive",
    "Baseline",
    "Circular",
    "Judgement",
    "Knockout",
    "Match",
    "MatchScheduler",
    "PairCall",
    "RoundRobin",
    "Scheduler",
    "StrategyOutcome",
    "SwapMode",
    "Swiss",
    "check_swap",
    "make_strategy",
    "strategy_name",
]

STRATEGIES: dict[str, Callable[..., Scheduler]] = {
    "adaptive": Adaptive,
    "baseline": Baseline,
    "circular": Circular,
    "knockout": Knockout,
    "round_robin": RoundRobin,
    "swiss": Swiss,
}
"""Strategy constructors by canonical name (``n_items`` first, options by keyword)."""


def strategy_name(name: str) -> str:
    """The canonical name of a strategy (``round-robin`` and ``round_robin`` are the same)."""
    canonical = check.instance("strategy", name, str, "a string").strip().lower().replace("-", "_")
    if canonical not in STRATEGIES:
        known = ", ".join(sorted(STRATEGIES))
        raise ValueError(f"Argument 'strategy' must be one of {known}, not {name!r}.")
    return canonical


def make_strategy(name: str, n_items: int, **options: Any) -> Scheduler:
    """Build a strategy by name, e.g. ``make_strategy("knockout", 8, swap="both", seed=0)``."""
    return STRATEGIES[strategy_name(name)](n_items, **options)
