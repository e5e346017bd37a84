"""One prompt through the orchestrator, for tests that follow a single job to its end."""

from __future__ import annotations

from typing import Any

from genrm_rank.judges.base import Judge
from genrm_rank.orchestrator import Orchestrator, PromptJob, PromptRun


async def run_one(judge: Judge, job: PromptJob, **options: Any) -> PromptRun:
    """Run a single job to the end; ``options`` go to :class:`Orchestrator`.

    Raises ``RuntimeError`` naming the cap when a run-wide cap ends the run first.
    """
    orchestrator = Orchestrator(judge, **options)
    runs = [run async for run in orchestrator.run([job])]
    if not runs:
        raise RuntimeError(
            f"The run ended before the prompt finished: {orchestrator.cap_reached} reached."
        )
    return runs[0]
