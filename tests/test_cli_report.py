"""Progress of a run: plain lines for batch logs, a bar that fits 80 columns, projections."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import pytest

from genrm_rank.orchestrator import JudgeStatistics
from genrm_rank.sdg import RowSpec
from genrm_rank.sdg.inputs import open_input
from genrm_rank.sdg.pipeline import RunCounters
from genrm_rank.sdg.progress import Progress, projection_bounds
from genrm_rank.spec import RankSpec
from genrm_rank.verdict import Usage


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _stats(calls: int, tokens: int) -> JudgeStatistics:
    return JudgeStatistics(calls=calls, usage=Usage(prompt_tokens=tokens, completion_tokens=0))


def test_plain_lines_every_interval_of_the_injected_clock() -> None:
    clock, stream = FakeClock(), io.StringIO()
    progress = Progress(2000, enabled=True, stream=stream, interval=30.0, clock=clock)
    progress.on_judge(_stats(10, 5000), 4)
    clock.now += 29.0
    progress.on_row(RunCounters(ok=1))
    assert stream.getvalue() == ""
    clock.now += 1.0
    progress.on_judge(_stats(40, 20_000), 4)
    progress.on_row(RunCounters(ok=9, failed=1))
    lines = stream.getvalue().splitlines()
    assert lines == [
        "progress: 1/2,000 rows done (0 failed), 40 paid calls, 20.0k tokens, 0.03 rows/s, "
        "30s elapsed; projected 80.0k calls, 16h39m left"
    ]
    clock.now += 30.0
    progress.on_row(RunCounters(ok=9, failed=1))
    assert stream.getvalue().splitlines()[1] == (
        "progress: 10/2,000 rows done (1 failed), 40 paid calls, 20.0k tokens, 0.17 rows/s, "
        "1m00s elapsed; projected 8.0k calls, 3h19m left"
    )


def test_plain_lines_keep_coming_while_no_verdict_does() -> None:
    clock, stream = FakeClock(), io.StringIO()
    progress = Progress(10, enabled=True, stream=stream, interval=30.0, clock=clock)
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 4:
            raise asyncio.CancelledError  # the run ended
        clock.now += seconds

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(progress.tick(sleep))
    assert slept == [30.0] * 4
    assert [line.split(", ")[-1] for line in stream.getvalue().splitlines()] == [
        "30s elapsed",
        "1m00s elapsed",
        "1m30s elapsed",
    ]


def test_the_bar_needs_no_ticker() -> None:
    progress = Progress(10, enabled=False, interval=None)

    async def sleep(seconds: float) -> None:
        raise AssertionError("no sleep expected")

    asyncio.run(progress.tick(sleep))  # returns at once


def test_plain_lines_are_off_when_disabled() -> None:
    clock, stream = FakeClock(), io.StringIO()
    progress = Progress(10, enabled=False, stream=stream, interval=30.0, clock=clock)
    clock.now += 100.0
    progress.on_judge(_stats(4, 10), 0)
    progress.on_row(RunCounters(ok=1))
    progress.close()
    assert stream.getvalue() == ""


@pytest.mark.parametrize(
    ("calls", "done", "ceiling", "expected", "projected"),
    [
        (40, 10, None, None, 8000.0),  # the mean of the done rows, for all 2,000
        (40, 10, 6400, None, 6400.0),  # never above the plan's ceiling (say 2,000 rows x 4N)
        (7000, 10, 6400, None, 7000.0),  # nor below what is already paid
        (40, 0, 6400, 5380.0, 5380.0),  # the plan's expected value before any row is done
        (40, 0, None, None, None),
    ],
)
def test_projected_calls_follow_the_plan_rule(
    calls: int, done: int, ceiling: int | None, expected: float | None, projected: float | None
) -> None:
    progress = Progress(
        2000, enabled=False, calls_ceiling=ceiling, calls_expected=expected, clock=FakeClock()
    )
    progress.on_judge(_stats(calls, 1), 0)
    progress.on_row(RunCounters(ok=done))
    assert progress.projected_calls() == projected


def test_the_bar_keeps_its_projections_within_80_columns() -> None:
    clock, stream = FakeClock(), io.StringIO()
    progress = Progress(2_000_000, enabled=True, stream=stream, columns=80, clock=clock)
    progress.cached = None
    progress.on_judge(_stats(3_790_000, 1_234_000_000), 120)
    clock.now += 1.0
    progress.on_row(RunCounters(ok=119_000, failed=1000))
    progress.close()
    last = stream.getvalue().replace("\r", "\n").strip().splitlines()[-1]
    assert len(last) <= 80
    assert "3.8M calls/~63.2M" in last
    assert "1.2G/~20.6G tok" in last


@pytest.mark.parametrize(
    ("spec", "bounds"),
    [
        (RankSpec(strategy="knockout"), (None, None)),  # exact: the mean of done rows is right
        (RankSpec(strategy="adaptive", swap="auto"), (3 * 32, 3 * 26.9)),  # 3 rows at N = 8
        (RankSpec(strategy="adaptive", swap="auto", budget=14), (3 * 14, 3 * 14)),
    ],
)
def test_projection_bounds_are_the_cost_plans(
    tmp_path: Path, spec: RankSpec, bounds: tuple[int | None, float | None]
) -> None:
    rows = [{"id": i, "prompt": "Q", "candidates": list("abcdefgh")} for i in range(3)]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    found = projection_bounds(
        open_input(tmp_path / "in.jsonl"), spec, rows=RowSpec(), shard=(0, 1), formatter=None
    )
    assert found == (bounds if bounds[0] is None else pytest.approx(bounds))
