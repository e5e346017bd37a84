"""The progress bar and the end-of-run summary."""

from __future__ import annotations

import math
import os
import sys
import time
from typing import Any, TextIO

from genrm_rank.cli.judge import JudgeSetup
from genrm_rank.orchestrator import JudgeStatistics
from genrm_rank.sdg import (
    RunCounters,
    RunOutcome,
)

# --------------------------------------------------------------------------------------------
# Progress and summary


class Progress:
    """A tqdm bar (rows/s, calls, in flight, failures, projected calls and tokens, ETA)."""

    def __init__(self, total: int | None, *, enabled: bool, stream: TextIO = sys.stderr) -> None:
        self.total = total
        self.bar: Any = None
        self._last = 0.0
        self._shown = 0
        self.stats: JudgeStatistics | None = None
        self.in_flight = 0
        self.counters: RunCounters | None = None
        self.calls_offset = 0
        self.cached: Any = None
        if enabled:
            from tqdm import tqdm

            try:
                size = os.get_terminal_size(stream.fileno())
                known = size.columns > 0 and size.lines > 0
            except (OSError, ValueError, AttributeError):
                known = False
            # A pty that reports no size (some batch consoles) would make tqdm hide the bar.
            self.bar = tqdm(
                total=total,
                unit="row",
                file=stream,
                dynamic_ncols=known,
                ncols=None if known else 120,
                nrows=None if known else 24,
                smoothing=0.05,
                mininterval=0.5,
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

    def _refresh(self, force: bool = False) -> None:
        if self.bar is None:
            return
        now = time.monotonic()
        if not force and now - self._last < 0.5:
            return
        self._last = now
        stats, counters = self.stats, self.counters
        if stats is None or counters is None:
            return
        calls = stats.calls  # paid in this run; cache hits are counted apart
        done = counters.done
        postfix: dict[str, Any] = {
            "paid calls": calls,
            "in flight": self.in_flight,
            "failed verdicts": stats.verdicts_failed,
        }
        if self.cached is not None:
            postfix["cache hits"] = self.cached.hits
        remaining_rows = (
            None if self.total is None else max(0, self.total - counters.skipped - counters.blank)
        )
        if done and remaining_rows:
            # Projected for every row of this run (cache hits cost nothing, so are left out).
            tokens = stats.usage.total_tokens
            postfix["projected calls"] = _human(calls * remaining_rows / done)
            postfix["projected tokens"] = _human(tokens * remaining_rows / done)
        self.bar.set_postfix(postfix, refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self._refresh(force=True)
            self.bar.close()


def _human(value: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= size:
            return f"{value / size:.1f}{unit}"
    return f"{value:.0f}"


def summarize(
    outcome: RunOutcome, setup: JudgeSetup, wall: float, total_lines: int | None
) -> dict[str, Any]:
    c, s = outcome.counters, outcome.stats
    hits = setup.cached.hits if setup.cached is not None else 0
    saved_calls = setup.cached.calls_saved if setup.cached is not None else 0
    saved_tokens = setup.cached.tokens_saved if setup.cached is not None else 0
    decided = s.first_slot_wins + s.second_slot_wins
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
        "cache_hits": hits,
        "cache_calls_saved": saved_calls,
        "cache_tokens_saved": saved_tokens,
        "prompt_tokens": s.usage.prompt_tokens,
        "completion_tokens": s.usage.completion_tokens,
        "verdicts_ok": s.verdicts_ok,
        "verdicts_failed": s.verdicts_failed,
        "failures_by_kind": dict(sorted(s.failures.items())),
        "transport_faults_by_kind": dict(getattr(setup.inner, "faults", {})),
        "first_slot_win_share": s.first_slot_win_share,
        "pooled_position_bias_log_odds": (
            math.log(s.first_slot_wins / s.second_slot_wins)
            if s.first_slot_wins and s.second_slot_wins
            else None
        ),
        "decided_verdicts": decided,
        "wall_seconds": round(wall, 3),
        "rows_per_second": round(c.done / wall, 2) if wall > 0 else None,
        "recovered": {
            k: {"rows": v.rows, "truncated_bytes": v.truncated_bytes, "retried": v.retried}
            for k, v in outcome.recovered.items()
        },
    }


def format_summary(summary: dict[str, Any]) -> str:
    """The summary as an aligned two-column table."""
    share = summary["first_slot_win_share"]
    bias = summary["pooled_position_bias_log_odds"]
    rows = [
        ("status", summary["status"] + (f" ({summary['cap']})" if summary["cap"] else "")),
        ("rows ok", summary["rows_ok"]),
        ("rows failed", summary["rows_failed"]),
        ("rows rejected (threshold)", summary["rows_rejected"]),
        ("rows skipped (resume)", summary["rows_skipped"]),
        ("judge calls made", summary["judge_calls"]),
        (
            "cache hits",
            f"{summary['cache_hits']} ({summary['cache_calls_saved']} calls, "
            f"{summary['cache_tokens_saved']} tokens saved)",
        ),
        (
            "tokens prompt / completion",
            f"{summary['prompt_tokens']} / {summary['completion_tokens']}",
        ),
        (
            "verdicts failed",
            f"{summary['verdicts_failed']} {summary['failures_by_kind'] or ''}".strip(),
        ),
        (
            "transport faults (retried)",
            ", ".join(f"{k}: {v}" for k, v in summary.get("transport_faults_by_kind", {}).items())
            or "none",
        ),
        (
            "first-slot win share",
            "-"
            if share is None
            else f"{share:.3f} (pooled bias {bias:+.3f} log-odds)"
            if bias is not None
            else f"{share:.3f}",
        ),
        (
            "wall time",
            f"{summary['wall_seconds']:.1f} s ({summary['rows_per_second'] or 0:.1f} rows/s)",
        ),
    ]
    if summary["errors_by_kind"]:
        rows.insert(
            3, ("  by kind", ", ".join(f"{k}: {v}" for k, v in summary["errors_by_kind"].items()))
        )
    if summary["pair_lines"] and summary["pair_lines"] != summary["rows_ok"]:
        rows.insert(1, ("pair lines written", summary["pair_lines"]))
    if summary["message"]:
        rows.append(("message", summary["message"]))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k.ljust(width)}  {v}" for k, v in rows)
