"""Run ``genrm_rank.cli`` with every event-loop callback timed; write the longest to a file.

Every synchronous step the loop runs (a task step, a callback) goes through
``asyncio.events.Handle._run``; this wraps it with the thread's CPU clock
(``time.thread_time``: what the step itself computed, not the time other processes on a shared
machine took the core away) and, at exit, writes the longest step, the 99.9th percentile, the
count over 5 ms and what the three longest steps ran, as JSON, to the path in
``LOOP_PROBE_REPORT``. Used by ``bench_client_cpu.py --loop-probe``; the wrapper's own overhead
makes it unfit for CPU figures.
"""

from __future__ import annotations

import asyncio.events
import atexit
import collections
import gc
import json
import os
import sys
import threading
import time
import traceback
from pathlib import Path

_started = time.perf_counter()
durations: list[float] = []
longest: list[tuple[float, str]] = []
_run = asyncio.events.Handle._run
_gc_started = 0.0
_gc_in_step = 0.0
gc_steps: list[float] = []
"""Garbage-collection CPU time inside each step over 5 ms."""
_step_started: list[float] = []
"""Wall clock at which the running step began (empty between steps)."""
_samples: collections.Counter[str] = collections.Counter()
"""Where long steps spent their time: the loop thread's innermost genrm_rank/numpy frames,
sampled every millisecond by a watcher thread while a step has run for over 5 ms."""


def _on_gc(phase: str, info: dict[str, object]) -> None:
    global _gc_started, _gc_in_step
    if phase == "start":
        _gc_started = time.thread_time()
    elif _step_started:
        _gc_in_step += time.thread_time() - _gc_started


def _watch(loop_thread: int) -> None:
    while True:
        time.sleep(0.001)
        started = _step_started[0] if _step_started else None
        if started is None or time.perf_counter() - started < 0.005:
            continue
        frame = sys._current_frames().get(loop_thread)
        if frame is None:
            continue
        stack = traceback.extract_stack(frame)
        ours = [
            f
            for f in stack
            if "genrm_rank" in f.filename
            or "numpy" in f.filename
            or "scipy" in f.filename
            or "aiohttp" in f.filename
        ]
        where = ours[-3:] if ours else stack[-2:]
        _samples[" < ".join(f"{Path(f.filename).name}:{f.name}" for f in reversed(where))] += 1


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
    global _gc_in_step
    started = time.thread_time()
    _gc_in_step = 0.0
    _step_started.append(time.perf_counter())
    try:
        _run(self)
    finally:
        _step_started.clear()
        took = time.thread_time() - started
        durations.append(took)
        if took > 0.005:
            gc_steps.append(_gc_in_step)
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
        "over_5ms_gc_ms": sorted(1000 * g for g in gc_steps)[-10:],
        "over_5ms_without_gc": sum(
            d - g > 0.005
            for d, g in zip([d for d in durations if d > 0.005], gc_steps, strict=True)
        ),
        "samples": _samples.most_common(15),
    }
    with open(os.environ["LOOP_PROBE_REPORT"], "w") as f:
        json.dump(stats, f)


asyncio.events.Handle._run = _timed  # type: ignore[method-assign]
atexit.register(_report)
gc.callbacks.append(_on_gc)
threading.Thread(target=_watch, args=(threading.get_ident(),), daemon=True).start()

if __name__ == "__main__":
    from genrm_rank.cli import main

    sys.argv = ["genrm-rank", *sys.argv[1:]]
    sys.exit(main())
