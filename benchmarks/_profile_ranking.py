"""Profile the aggregation of one ranking of 8 candidates, stage by stage, in CPU time.

A knockout and a round-robin (both orders) are run once against the in-process simulated
judge; the ``PromptRun`` each hands to :func:`~genrm_rank.results.build_ranking` is kept and
then aggregated ``REPEATS`` times under ``cProfile``. The table gives each stage's cumulative
CPU milliseconds a ranking (the profiler's own overhead included, so the stages are for
comparison with one another and with another revision profiled the same way) and, measured
without the profiler, the whole ``build_ranking`` call. Used by ``bench_client_cpu.py
--profile``.
"""

from __future__ import annotations

import cProfile
import pstats
import time
from typing import Any

import genrm_rank.runner
from genrm_rank import SimulatedJudge, rank
from genrm_rank.results import build_ranking

REPEATS = 300
STAGES = {
    "judgements_to_comparisons": "verdicts to comparisons",
    "identify": "identification (all calls)",
    "bradley_terry": "Bradley-Terry posterior (fit, identification, covariance)",
    "_minimise": "Newton fit",
    "_fit_with_prior": "Newton fit under the prior",
    "p_best": "P(best) (BradleyTerryFit.p_best)",
    "win_rate": "win rate",
    "intransitive_cycles": "cycles",
    "connected_components": "components",
    "consistency_report": "consistency",
    "build_ranking": "build_ranking, total",
}


def captured_run(strategy: str) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The arguments ``build_ranking`` gets for one ranking of 8 candidates (both orders)."""
    captured: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def keep(*args: Any, **kwargs: Any) -> Any:
        captured.append((args, kwargs))
        return build_ranking(*args, **kwargs)

    original = genrm_rank.runner.build_ranking
    genrm_rank.runner.build_ranking = keep  # type: ignore[assignment]
    try:
        candidates = [f"candidate {i} " + "word " * (10 * i + 5) for i in range(8)]
        rank(candidates, "Which is best?", judge=SimulatedJudge(seed=0), strategy=strategy,
             swap="both", prompt_id="profile")  # fmt: skip
    finally:
        genrm_rank.runner.build_ranking = original
    return captured[0]


def profile() -> None:
    for strategy in ("knockout", "round-robin"):
        args, kwargs = captured_run(strategy)
        for _ in range(20):  # warm-up
            build_ranking(*args, **kwargs)
        started = time.process_time()
        for _ in range(REPEATS):
            build_ranking(*args, **kwargs)
        total = 1000 * (time.process_time() - started) / REPEATS
        profiler = cProfile.Profile(time.process_time)
        profiler.enable()
        for _ in range(REPEATS):
            build_ranking(*args, **kwargs)
        profiler.disable()
        stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
        cumulative: dict[str, float] = {}
        for (_, _, name), (_, _, _, ct, _) in stats.items():
            if name in STAGES:
                cumulative[name] = cumulative.get(name, 0.0) + ct
        print(f"\n{strategy}, both orders, N=8 ({len(args[0].judgements)} verdicts): "
              f"build_ranking {total:.2f} CPU ms a ranking without the profiler")  # fmt: skip
        print("| stage | CPU ms a ranking (under cProfile) |")
        print("|---|---:|")
        for name, label in STAGES.items():
            if name in cumulative:
                print(f"| {label} | {1000 * cumulative[name] / REPEATS:.3f} |")
