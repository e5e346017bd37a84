"""The cost plan: its call counts are what a run pays; its arithmetic is the stated one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genrm_rank import SimulatedJudge, rank
from genrm_rank.cli import main
from genrm_rank.sdg.plan import (
    CostAssumptions,
    adaptive_ceiling,
    calls_for,
    expected_calls_for,
    plan_file,
)
from genrm_rank.spec import RankSpec


@settings(max_examples=60, deadline=None)
@given(
    strategy=st.sampled_from(["knockout", "round_robin", "circular", "swiss"]),
    swap=st.sampled_from(["both", "random", "none"]),
    n=st.integers(2, 9),
    samples=st.integers(1, 2),
    budget=st.none() | st.integers(0, 40),
    seed=st.integers(0, 50),
)
def test_planned_calls_are_what_a_run_pays(
    strategy: str, swap: str, n: int, samples: int, budget: int | None, seed: int
) -> None:
    spec = RankSpec(strategy=strategy, swap=swap, samples=samples, budget=budget, seed=seed)
    planned, exact = calls_for(spec, n)
    texts = [f"candidate {i}" for i in range(n)]
    ranking = rank(texts, "Q", judge=SimulatedJudge(seed=seed), spec=spec)
    assert exact and ranking.calls == planned


def test_an_outcome_dependent_count_is_a_bound() -> None:
    planned, exact = calls_for(RankSpec(strategy="knockout", swap="none", budget=3), 8)
    assert (planned, exact) == (3, True)
    spec = RankSpec(strategy="knockout", strategy_options={})
    assert calls_for(spec, 8) == (14, True)


@pytest.mark.parametrize(
    ("n", "budget", "own", "ceiling"),
    [
        (8, None, None, 32),  # 4N, not the hard cap 2N(N-1) = 112
        (2, None, None, 4),  # 4N at most the hard cap (4)
        (8, 14, None, 14),  # the spec's budget
        (8, 500, None, 112),  # a budget above the hard cap stops at it
        (8, None, 20, 20),  # the strategy's own budget
        (8, 10, 20, 10),  # the lower of both
    ],
)
def test_adaptive_ceiling_is_the_budget_else_4n(
    n: int, budget: int | None, own: int | None, ceiling: int
) -> None:
    options = {} if own is None else {"budget": own}
    spec = RankSpec(strategy="adaptive", swap="auto", budget=budget, strategy_options=options)
    assert adaptive_ceiling(spec, n) == ceiling
    assert calls_for(spec, n) == (ceiling, False)


@settings(max_examples=15, deadline=None)
@given(
    n=st.integers(2, 9),
    budget=st.none() | st.integers(1, 120),
    seed=st.integers(0, 50),
    noise_scale=st.sampled_from([0.1, 3.0]),
)
def test_adaptive_never_pays_more_than_its_planned_ceiling(
    n: int, budget: int | None, seed: int, noise_scale: float
) -> None:
    spec = RankSpec(strategy="adaptive", swap="auto", budget=budget, seed=seed)
    texts = [f"candidate {i}" for i in range(n)]
    judge = SimulatedJudge(seed=seed, noise_scale=noise_scale)
    assert rank(texts, "Q", judge=judge, spec=spec).calls <= calls_for(spec, n)[0]


def test_expected_adaptive_calls_state_their_basis() -> None:
    spec = RankSpec(strategy="adaptive", swap="auto")
    calls, basis = expected_calls_for(spec, 8, CostAssumptions()) or (0.0, "")
    assert calls == pytest.approx(26.9) and "benchmarks/README.md" in basis
    calls, _ = expected_calls_for(spec, 16, CostAssumptions()) or (0.0, "")
    assert calls == pytest.approx(50.0)
    # A given figure (a judge profile, a pilot run) wins, within each row's ceiling.
    given = CostAssumptions(expected_calls_per_row=40.0)
    assert expected_calls_for(spec, 8, given) == (32, "the expected calls a row given")
    assert expected_calls_for(spec, 16, given) == (40.0, "the expected calls a row given")
    # Other settings have no measurement: the ceiling, said so.
    tuned = RankSpec(strategy="adaptive", swap="auto", strategy_options={"delta": 0.3})
    assert expected_calls_for(tuned, 8, CostAssumptions()) == (
        32,
        "assumed: every row takes its bound; no measurement for these settings",
    )
    assert expected_calls_for(RankSpec(strategy="knockout"), 8, CostAssumptions()) is None


def test_dry_run_of_adaptive_gives_its_ceiling_and_expected_calls(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [{"id": i, "prompt": "Q", "candidates": list("abcdefgh")} for i in range(100)]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    summary = tmp_path / "plan.json"
    args = ["select", str(tmp_path / "in.jsonl"), "-o", str(tmp_path / "out.jsonl"),
            "--strategy", "adaptive", "--swap", "auto", "--dry-run", "--summary-json",
            str(summary)]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "judge calls               at most 3,200 " in out  # 100 rows x 4N, not 11,200
    assert "expected judge calls      about 2,690 (assumed: 84% of 4N a row" in out
    assert out.count("benchmarks/README.md") == 1  # stated once, not once a row
    # Tokens, GPU-hours and money: at the ceiling, and at the expected calls.
    assert "completion tokens         13,107,200 (4,096 a call, assumed); expected about " \
        "11,018,240" in out  # fmt: skip
    plan = json.loads(summary.read_text())
    assert plan["expected_comparisons"] == pytest.approx(2690.0)
    assert plan["expected_completion_tokens"] == pytest.approx(2690 * 4096)
    assert main([*args, "--throughput", "1000", "--price-per-gpu-hour", "2"]) == 0
    out = capsys.readouterr().out
    hours = 3200 * 4096 / 1000 / 3600 * 8
    assert f"GPU-hours                 {hours:,.1f} " in out
    assert f"; expected about {hours * 2690 / 3200:,.1f}" in out
    assert f"; expected about {hours * 2 * 2690 / 3200:,.2f}" in out
    assert main([*args, "--expect-calls-per-row", "20"]) == 0
    assert "about 2,000 (the expected calls a row given)" in capsys.readouterr().out


def _write(path: Path) -> None:
    rows = [
        {"id": 1, "prompt": "abcd" * 10, "candidates": ["x" * 40, "y" * 80]},
        {"id": 2, "prompt": "Q", "candidates": ["a", "b", "c", "d"]},
        {"id": 3, "prompt": "Q", "candidates": ["only one"]},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "not json\n")


def test_plan_counts_rows_calls_and_tokens(tmp_path: Path) -> None:
    _write(tmp_path / "in.jsonl")
    assumptions = CostAssumptions(
        completion_tokens_per_call=1000, tokens_per_second_per_replica=500.0,
        gpus_per_replica=8, price_per_gpu_hour=2.0,
    )  # fmt: skip
    plan = plan_file(tmp_path / "in.jsonl", RankSpec(), assumptions=assumptions)
    assert (plan.rows, plan.bad_rows) == (2, 2)
    assert plan.comparisons == 2 + 12 and plan.comparisons_exact  # round-robin, both orders
    assert plan.completion_tokens == 14 * 1000
    assert plan.gpu_hours == pytest.approx(14_000 / 500 / 3600 * 8)
    assert plan.cost == pytest.approx(plan.gpu_hours * 2.0)
    # A tokenizer that counts characters: two calls of row 1 hold its prompt and both texts.
    counted = plan_file(tmp_path / "in.jsonl", RankSpec(), count_tokens=len)
    assert counted.prompt_tokens_counted and counted.prompt_tokens > plan.prompt_tokens
    row_1 = 2 * (40 + 40 + 80 + 3 * 8)  # conversation + both candidates + message overheads
    row_2 = 12 * (1 + 2 * 1 + 3 * 8)
    assert counted.prompt_tokens == row_1 + row_2


def test_dry_run_calls_no_judge(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write(tmp_path / "in.jsonl")
    summary = tmp_path / "plan.json"
    status = main(
        ["select", str(tmp_path / "in.jsonl"), "-o", str(tmp_path / "out.jsonl"), "--dry-run",
         "--summary-json", str(summary), "--throughput", "1000"]
    )  # fmt: skip
    assert status == 0 and not (tmp_path / "out.jsonl").exists()
    out = capsys.readouterr().out
    assert (
        "judge calls               2 + 6".replace(" + ", "") not in out
    )  # formatted as one number
    plan = json.loads(summary.read_text())
    assert plan["comparisons"] == 2 + 6 and plan["rows"] == 2 and plan["gpu_hours"] > 0
    assert "GPU-hours" in out and "knockout" in out


def _write_multi_turn(path: Path, n: int, *, one_turn_first: int = 0) -> None:
    rows = []
    for i in range(n):
        history = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
        messages = [*([] if i < one_turn_first else history), {"role": "user", "content": "Q?"}]
        rows.append({"id": i, "messages": messages, "candidates": ["a", "b", "c"]})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_plan_counts_rows_the_format_cannot_hold(tmp_path: Path) -> None:
    from genrm_rank.sdg.filters import pair_rows

    _write_multi_turn(tmp_path / "in.jsonl", 5, one_turn_first=2)
    spec = RankSpec(strategy="round_robin")
    trl = plan_file(tmp_path / "in.jsonl", spec, formatter=pair_rows(format="trl"))
    assert (trl.rows, trl.bad_rows, trl.bad_rows_by_kind) == (2, 3, {"format_mismatch": 3})
    assert trl.comparisons == 2 * 6 and trl.stop is None  # a one-turn row came first
    chat = plan_file(tmp_path / "in.jsonl", spec, formatter=pair_rows(format="trl-chat"))
    assert (chat.rows, chat.bad_rows, chat.stop) == (5, 0, None)


def test_dry_run_stops_where_the_run_would(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A trl run on multi-turn rows would stop before its first call: the dry run says so."""
    _write_multi_turn(tmp_path / "in.jsonl", 10)
    argv = ["pairs", str(tmp_path / "in.jsonl"), "-o", str(tmp_path / "out.jsonl"), "--dry-run"]
    assert main([*argv, "--format", "trl"]) == 2
    captured = capsys.readouterr()
    assert "bad rows to the errors file: format_mismatch 10" in captured.out
    assert "the run would stop" in captured.out and "--format trl-chat holds" in captured.err
    assert main([*argv, "--format", "trl-chat"]) == 0
    assert "would stop" not in capsys.readouterr().out


def test_dry_run_stops_when_the_first_rows_lack_a_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [{"id": i, "prompt": "Q", "answers": ["a", "b"]} for i in range(9)]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    summary = tmp_path / "plan.json"
    argv = ["select", str(tmp_path / "in.jsonl"), "-o", str(tmp_path / "out.jsonl"), "--dry-run"]
    assert main([*argv, "--summary-json", str(summary)]) == 2
    assert "the first 8 rows all lack the field" in capsys.readouterr().err
    plan = json.loads(summary.read_text())
    assert plan["bad_rows_by_kind"] == {"missing_field": 9} and "lack" in plan["stop"]
    assert main([*argv, "--candidates-field", "answers"]) == 0


@pytest.mark.parametrize(
    ("swap", "samples", "calls"), [("both", 1, 90), ("none", 2, 90), ("random", 1, 45)]
)
def test_round_robin_calls_are_counted_without_building_pairs(
    swap: str, samples: int, calls: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = RankSpec(strategy="round_robin", swap=swap, samples=samples)  # type: ignore[arg-type]
    built = calls_for(spec, 10)
    assert built == (calls, True)

    def no_scheduler(*args: object, **kwargs: object) -> None:
        raise AssertionError("a round-robin is counted, never built (10,000 candidates: 40 GB)")

    monkeypatch.setattr("genrm_rank.sdg.plan.make_strategy", no_scheduler)
    assert calls_for(spec, 10) == built
    assert calls_for(spec, 10_000) == (calls * 10_000 * 9_999 // 90, True)
    assert calls_for(spec.replace(budget=7), 10_000) == (7, True)


def test_dry_run_stops_on_a_short_input_whose_rows_all_lack_a_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Fewer rows than the first-rows check reads: the dry run stops as the run does.
    rows = [{"id": i, "prompt": "Q", "answers": ["a", "b"]} for i in range(3)]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    argv = ["select", str(tmp_path / "in.jsonl"), "-o", str(tmp_path / "out.jsonl"), "--dry-run"]
    assert main(argv) == 2
    assert "the first 3 rows all lack the field" in capsys.readouterr().err
    assert main([*argv, "--candidates-field", "answers"]) == 0
