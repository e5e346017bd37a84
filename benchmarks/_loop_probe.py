"""Run ``genrm_rank.cli`` with every event-loop callback timed; write the longest to a file.

Every synchronous step the loop runs (a task step, a callback) goes through
``asyncio.events.Handle._run``; this wraps it with the thread's CPU clock
(``time.thread_time``: what the step itself computed, not the time other processes on a shared
machine took the core away) and, at exit, writes the longest step, the 99.9th percentile, the
count over 5 ms and what the three longest steps ran, as JSON, to the path in
``GENRM_LOOP_PROBE``. Used by ``bench_client_cpu.py --loop-probe``; the wrapper's own overhead
makes it unfit for CPU figures.
"""

from __future__ import annotations

import asyncio.events
import atexit
import json
import os
import sys
import time

_started = time.perf_counter()
durations: list[float] = []
longest: list[tuple[float, str]] = []
_run = asyncio.events.Handle._run


def _describe(handle: asyncio.events.Handle) -> str:
    """The coroutine a task step ran (its innermost frame), else the handle."""
    task = getattr(getattr(handle, "_callback", None), "__self__", None)
    if isinstance(task, asyncio.Task):
        coro: object = task.get_coro()
        names = []
        while coro is not None:
            code = getattr(coro, "cr_code", None) or getattr(coro, "ag_code", None)
            names.append(getattr(code, "co_qualname", repr(coro)))
            coro = getattr(coro, "cr_await", None) or getattr(coro, "ag_await", None)
        return " > ".join(names)
    return repr(handle)[:200]


def _timed(self: asyncio.events.Handle) -> None:
    started = time.thread_time()
    try:
        _run(self)
    finally:
        took = time.thread_time() - started
        durations.append(took)
        if len(longest) < 3 or took > longest[0][0]:
            at = time.perf_counter() - _started
            longest.append((took, f"at {at:.2f} s, step {len(durations)}: {_describe(self)}"))
            longest.sort()
            del longest[:-3]


def _report() -> None:
    ordered = sorted(durations) or [0.0]
    stats = {
        "steps": len(durations),
        "max_ms": 1000 * ordered[-1],
        "p999_ms": 1000 * ordered[min(len(ordered) - 1, int(0.999 * len(ordered)))],
        "over_5ms": sum(d > 0.005 for d in ordered),
        "longest": [(1000 * took, what) for took, what in reversed(longest)],
    }
    with open(os.environ["GENRM_LOOP_PROBE"], "w") as f:
        json.dump(stats, f)


asyncio.events.Handle._run = _timed  # type: ignore[method-assign]
atexit.register(_report)

if __name__ == "__main__":
    from genrm_rank.cli import main

    sys.argv = ["genrm-rank", *sys.argv[1:]]
    sys.exit(main())
