"""Circular pairs: NVIDIA's RLHF scheme, ``(i, (i + 1) % N)`` with ``i`` in slot 1.

N calls with ``swap="none"`` (the default, as in NVIDIA's recipe): every candidate is judged once
in each slot, which balances a position bias over the group. The one cycle is the sparsest
connected comparison graph; ranking is left to an aggregator.

References
----------
NVIDIA-NeMo/Gym, ``resources_servers/genrm_compare``: circular comparison of GRPO rollouts with
Qwen3-Nemotron-235B-A22B-GenRM. Wang et al., "HelpSteer3-Preference", 2025 (arXiv:2505.11475).
"""

from __future__ import annotations

from dataclasses import dataclass

from genrm_rank.strategies.base import FixedSchedule, SwapMode

__all__ = ["Circular"]


@dataclass(eq=False, repr=False, kw_only=True)
class Circular(FixedSchedule):
    """Matches ``(i, (i + 1) % N)`` for every ``i``; no order of its own.

    Keywords as :class:`~genrm_rank.strategies.base.MatchScheduler`, ``swap`` defaulting to
    ``"none"``.
    """

    swap: SwapMode = "none"

    def __post_init__(self) -> None:
        super().__post_init__()
        for i in range(self.n_items):
            self._add_match(i, (i + 1) % self.n_items)
