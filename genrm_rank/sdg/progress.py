"""A run's progress on standard error (:class:`Progress`), and its summary (:func:`summarize`,
:func:`format_summary`: what ``genrm-rank --summary-json`` writes and the table it prints)."""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TextIO

from genrm_rank.judges.cached import CachedJudge
from genrm_rank.orchestrator import JudgeStatistics
from genrm_rank.sdg.filters import Formatter
from genrm_rank.sdg.inputs import RowSource
from genrm_rank.sdg.pipeline import RunCounters, RunOutcome
from genrm_rank.sdg.plan import CostAssumptions, depends_on_verdicts, plan_file
from genrm_rank.sdg.rows import RowSpec
from genrm_rank.spec import RankSpec

__all__ = ["Progress", "format_summary", "projection_bounds", "summarize"]


class Progress:
    """Progress of a run: :func:`~genrm_rank.sdg.process_file`'s ``on_row`` and ``on_progress``
    shown as a tqdm bar within ``columns`` (the terminal's width by default), or with
    ``interval`` (seconds of ``clock``) as a plain line that often, for a batch job's log.

    Projected calls (:mod:`genrm_rank.sdg.plan`'s rule): the mean calls of a done row for every
    row, within ``calls_ceiling`` (the plan's bound) and the calls paid; before any row is
    done, ``calls_expected``.
    """

    def __init__(
        self,
        total: int | None,
        *,
        enabled: bool,
        stream: TextIO = sys.stderr,
        interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        columns: int | None = None,
        calls_ceiling: int | None = None,
        calls_expected: float | None = None,
    ) -> None:
        self.total, self.stream, self.clock = total, stream, clock
        self.interval = interval if enabled else None
        self.calls_ceiling, self.calls_expected = calls_ceiling, calls_expected
        self.started = self._last_line = clock()
        self._last, self._shown, self.in_flight = -math.inf, 0, 0
        self.stats, self.counters = JudgeStatistics(), RunCounters()
        self.cached: Any = None
        self.bar: Any = None
        if enabled and interval is None:
            from tqdm import tqdm

            dynamic = False
            if columns is None:
                with contextlib.suppress(OSError, ValueError, AttributeError):
                    size = os.get_terminal_size(stream.fileno())
                    if size.columns > 0 and size.lines > 0:
                        columns, dynamic = size.columns, True
            # A pty that reports no size (some batch consoles) would make tqdm hide the bar.
            self.bar = tqdm(
                total=total,
                unit="row",
                file=stream,
                dynamic_ncols=dynamic,
                ncols=columns or 120,
                nrows=None if dynamic else 24,
                smoothing=0.05,
                mininterval=0.5,
                bar_format=_BAR_FORMAT,
            )

    def on_judge(self, stats: JudgeStatistics, in_flight: int) -> None:
        self.stats, self.in_flight = stats, in_flight
        self._refresh()

    def on_row(self, counters: RunCounters) -> None:
        self.counters = counters
        if self.bar is not None:
            shown = counters.done + counters.skipped + counters.blank
            self.bar.update(shown - self._shown)
            self._shown = shown
        self._refresh()

    def _rows_to_do(self) -> int | None:
        """Rows this run settles (those an earlier run wrote, and blank lines, left out)."""
        if self.total is None:
            return None
        return max(0, self.total - self.counters.skipped - self.counters.blank)

    def projected_calls(self) -> float | None:
        """Calls the whole run is projected to pay, or ``None``."""
        calls, done, rows = self.stats.calls, self.counters.done, self._rows_to_do()
        if done and rows:
            projected = calls * rows / done
        elif self.calls_expected is not None:
            projected = self.calls_expected
        else:
            return None
        if self.calls_ceiling is not None:
            projected = min(projected, self.calls_ceiling)
        return max(projected, calls)

    def line(self) -> str:
        """The plain progress line."""
        done, failed, calls = self.counters.done, self.counters.failed, self.stats.calls
        elapsed = self.clock() - self.started
        rate = done / elapsed if elapsed > 0 else 0.0
        rows = self._rows_to_do()
        of = "" if rows is None else f"/{rows:,}"
        text = (
            f"progress: {done:,}{of} rows done ({failed:,} failed), {calls:,} paid calls, "
            f"{_human(self.stats.usage.total_tokens)} tokens, {rate:.2f} rows/s, "
            f"{_duration(elapsed)} elapsed"
        )
        projected = self.projected_calls()
        if projected is not None:
            text += f"; projected {_human(projected)} calls"
            if rows is not None and rate > 0:
                text += f", {_duration((rows - done) / rate)} left"
        return text

    async def tick(self, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        """Print the plain line every ``interval`` while no verdict comes back (a stalled
        judge), until cancelled; returns at once when there are no plain lines."""
        if self.interval is None:
            return
        while True:
            await sleep(self._last_line + self.interval - self.clock())
            self._refresh()

    def _refresh(self, force: bool = False) -> None:
        now = self.clock()
        if self.interval is not None:
            if now - self._last_line >= self.interval:
                self._last_line = now
                print(self.line(), file=self.stream, flush=True)
            return
        if self.bar is None or (not force and now - self._last < 0.5):
            return
        self._last = now
        calls, tokens = self.stats.calls, self.stats.usage.total_tokens
        projected = self.projected_calls()
        parts = [f"{_human(calls)} calls", f"{_human(tokens)} tok"]
        parts += [f"{self.counters.failed} failed", f"{self.in_flight} out"]
        if projected is not None:
            parts[0] += f"/~{_human(projected)}"
            if calls:
                parts[1] = f"{_human(tokens)}/~{_human(tokens * projected / calls)} tok"
        if self.cached is not None:
            parts.append(f"{_human(self.cached.hits)} cached")
        self.bar.set_postfix_str(", ".join(parts), refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self._refresh(force=True)
            self.bar.close()


def projection_bounds(
    source: RowSource,
    spec: RankSpec,
    *,
    rows: RowSpec,
    shard: tuple[int, int],
    formatter: Formatter | None = None,
    expected_calls_per_row: float | None = None,
) -> tuple[int | None, float | None]:
    """:class:`Progress`'s ``calls_ceiling`` and ``calls_expected`` from the cost plan (the
    input read once more) when the calls depend on the verdicts; else ``(None, None)``."""
    if not depends_on_verdicts(spec):
        return None, None
    assumptions = CostAssumptions(expected_calls_per_row=expected_calls_per_row)
    plan = plan_file(
        source, spec, rows=rows, assumptions=assumptions, shard=shard, formatter=formatter
    )
    return plan.comparisons, plan.expected_comparisons


_BAR_FORMAT = "{percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}{postfix}]"
"""tqdm's default without the rate (the ETA says it), so 80 columns hold the projections."""


def _duration(seconds: float) -> str:
    """``seconds`` as ``1h02m``, ``3m05s`` or ``42s``.

    >>> [_duration(s) for s in (42, 185, 3720)]
    ['42s', '3m05s', '1h02m']
    """
    s = max(0, round(seconds))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    if s >= 60:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s}s"


def _human(value: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= size:
            return f"{value / size:.1f}{unit}"
    return f"{value:.0f}"


def summarize(
    outcome: RunOutcome,
    wall: float,
    total_lines: int | None,
    *,
    cached: CachedJudge | None = None,
    faults: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """The run's summary: rows, calls, tokens, verdicts, the judge's slot-1 advantage, time;
    ``cached``'s hits and savings, and the transport ``faults`` retried, by kind."""
    c, s = outcome.counters, outcome.stats
    return {
        "status": outcome.status,
        "cap": outcome.cap,
        "message": outcome.message,
        "rows_in_input": total_lines,
        "rows_ok": c.ok,
        "rows_failed": c.failed,
        "rows_rejected": c.rejected,
        "rows_skipped": c.skipped,
        "blank_lines": c.blank,
        "pair_lines": c.pair_lines,
        "errors_by_kind": dict(sorted(c.errors_by_kind.items())),
        "judge_calls": s.calls,
        "judge_calls_with_cache_hits": s.calls + s.cached_calls,
        "cache_hits": 0 if cached is None else cached.hits,
        "cache_calls_saved": 0 if cached is None else cached.calls_saved,
        "cache_tokens_saved": 0 if cached is None else cached.tokens_saved,
        "prompt_tokens": s.usage.prompt_tokens,
        "completion_tokens": s.usage.completion_tokens,
        "verdicts_ok": s.verdicts_ok,
        "verdicts_failed": s.verdicts_failed,
        "failures_by_kind": dict(sorted(s.failures.items())),
        "transport_faults_by_kind": dict(faults or {}),
        "first_slot_win_share": s.first_slot_win_share,
        "pooled_position_bias_log_odds": (
            math.log(s.first_slot_wins / s.second_slot_wins)
            if s.first_slot_wins and s.second_slot_wins
            else None
        ),
        "decided_verdicts": s.first_slot_wins + s.second_slot_wins,
        "wall_seconds": round(wall, 3),
        "rows_per_second": round(c.done / wall, 2) if wall > 0 else None,
        "recovered": {
            k: {"rows": v.rows, "truncated_bytes": v.truncated_bytes, "retried": v.retried}
            for k, v in outcome.recovered.items()
        },
    }


def format_summary(summary: dict[str, Any]) -> str:
    """The summary as an aligned two-column table."""
    s = summary
    share, bias = s["first_slot_win_share"], s["pooled_position_bias_log_odds"]
    if share is not None:
        share = f"{share:.3f}" + ("" if bias is None else f" (pooled bias {bias:+.3f} log-odds)")
    saved = f"{s['cache_calls_saved']} calls, {s['cache_tokens_saved']} tokens saved"
    faults = s.get("transport_faults_by_kind", {})
    rate = s["rows_per_second"] or 0
    rows = [
        ("status", s["status"] + (f" ({s['cap']})" if s["cap"] else "")),
        ("rows ok", s["rows_ok"]),
        ("rows failed", s["rows_failed"]),
        ("rows rejected (threshold)", s["rows_rejected"]),
        ("rows skipped (resume)", s["rows_skipped"]),
        ("judge calls made", s["judge_calls"]),
        ("cache hits", f"{s['cache_hits']} ({saved})"),
        ("tokens prompt / completion", f"{s['prompt_tokens']} / {s['completion_tokens']}"),
        ("verdicts failed", f"{s['verdicts_failed']} {s['failures_by_kind'] or ''}".strip()),
        ("transport faults (retried)", _kinds(faults) or "none"),
        ("first-slot win share", "-" if share is None else share),
        ("wall time", f"{s['wall_seconds']:.1f} s ({rate:.1f} rows/s)"),
    ]
    if s["errors_by_kind"]:
        rows.insert(3, ("  by kind", _kinds(s["errors_by_kind"])))
    if s["pair_lines"] and s["pair_lines"] != s["rows_ok"]:
        rows.insert(1, ("pair lines written", s["pair_lines"]))
    if s["message"]:
        rows.append(("message", s["message"]))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k.ljust(width)}  {v}" for k, v in rows)


def _kinds(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in counts.items())
