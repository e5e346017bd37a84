"""End-to-end tests of the ``genrm-rank`` command line against serve-sim.

The servers run in this process (``ThreadedSimServers``, loopback only), and so does the CLI,
as ``main(argv)`` talking HTTP to them: exit statuses, output files and what it prints are the
same as a user's. A separate ``python -m genrm_rank.cli`` process runs only where the process
boundary is the point: a signal, stderr as a pipe (a batch job's log), and the exit status of
the program itself.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shlex
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from genrm_rank.cli import main
from genrm_rank.server.app import SimServerConfig, ThreadedSimServers

FIXTURES = Path(__file__).parent / "fixtures"
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def cli_process(*args: object, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """The CLI as its own process (``python -m genrm_rank.cli``)."""
    return subprocess.run(
        [sys.executable, "-m", "genrm_rank.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=ENV,
    )


def run_main(*args: object) -> int:
    """The CLI in this process: its exit status."""
    try:
        return main([str(a) for a in args])
    except SystemExit as exc:  # argparse
        return int(exc.code or 0)


@dataclasses.dataclass(frozen=True)
class Ran:
    """One in-process run: its exit status and what it printed."""

    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(capfd: pytest.CaptureFixture[str]) -> Callable[..., Ran]:
    """Runs the CLI in this process and returns its status and what it wrote to stdout and
    stderr, as a subprocess would; not the run summary, whose stream the CLI binds to the
    ``sys.stderr`` of import time."""

    def run(*args: object) -> Ran:
        capfd.readouterr()  # what earlier steps of the test printed is not this run's
        status = run_main(*args)
        out, err = capfd.readouterr()
        return Ran(status, out, err)

    return run


def start_cli(*args: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "genrm_rank.cli", *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def write_rows(path: Path, n: int, k: int = 4, *, bad_every: int = 0, ids: bool = False) -> None:
    with open(path, "w") as f:
        for i in range(n):
            if bad_every and i % bad_every == bad_every - 1:
                f.write(f'{{"id": "broken {i}", "prompt": \n')
                continue
            cands = [f"Answer {j} to question {i}: " + "detail " * (j + i % 5) for j in range(k)]
            f.write(
                json.dumps(
                    {
                        "id": f"row-{i}",
                        "prompt": f"Question {i}?",
                        "meta": {"n": i},
                        "candidates": [{"id": f"sys-{j}", "text": c} for j, c in enumerate(cands)]
                        if ids
                        else cands,
                    }
                )
                + "\n"
            )


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadedSimServers]:
    with ThreadedSimServers([SimServerConfig(latency_mean=0.0, capacity=256)]) as servers:
        yield servers


@pytest.fixture
def url(server: ThreadedSimServers) -> str:
    return server.urls[0]


# -- subcommands ---------------------------------------------------------------------------


def test_rank_writes_one_row_per_input_row_in_order(
    tmp_path: Path, url: str, cli: Callable[..., Ran]
) -> None:
    write_rows(tmp_path / "in.jsonl", 12, k=5)
    r = cli(
        "rank",
        tmp_path / "in.jsonl",
        "-o",
        tmp_path / "out.jsonl",
        "--endpoint",
        url,
        "--strategy",
        "round-robin",
        "--summary-json",
        tmp_path / "s.json",
    )
    assert r.returncode == 0, r.stderr
    out = rows(tmp_path / "out.jsonl")
    assert [o["id"] for o in out] == [f"row-{i}" for i in range(12)]
    first = out[0]
    assert first["meta"] == {"n": 0} and len(first["candidates"]) == 5  # the row's own fields kept
    g = first["genrm"]
    assert g["strategy"] == "round_robin" and g["calls"] == 20  # 10 pairs x 2 orders
    assert sorted(g["order"]) == list(range(5)) and g["best"] == g["order"][0]
    assert {"lower", "upper", "p_best", "mean_score"} <= set(g["scores"][0])
    assert g["prompt_tokens"] > 0 and "consistency" in g
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["rows_ok"] == 12 and summary["judge_calls"] == 240
    # The summary table on stderr: test_a_batch_job_gets_plain_progress_lines_and_the_summary_last.


@pytest.mark.parametrize("strategy", ["knockout", "circular", "swiss", "round_robin"])
def test_every_strategy_runs(
    tmp_path: Path, url: str, strategy: str, cli: Callable[..., Ran]
) -> None:
    write_rows(tmp_path / "in.jsonl", 3, k=4)
    r = cli(
        "select",
        tmp_path / "in.jsonl",
        "-o",
        tmp_path / "o.jsonl",
        "--endpoint",
        url,
        "--strategy",
        strategy,
        "--swap",
        "random",
        "--quiet",
    )
    assert r.returncode == 0, r.stderr
    assert all(o["selected"] is not None for o in rows(tmp_path / "o.jsonl"))


def test_select_thresholds_null_or_rejected_file(
    tmp_path: Path, url: str, cli: Callable[..., Ran]
) -> None:
    write_rows(tmp_path / "in.jsonl", 10)
    cache = ["--cache", tmp_path / "v.db"]  # the second run sees the same verdicts
    r = cli(
        "select",
        tmp_path / "in.jsonl",
        "-o",
        tmp_path / "a.jsonl",
        "--endpoint",
        url,
        "--min-score",
        "4.5",
        "--quiet",
        *cache,
    )
    assert r.returncode == 0, r.stderr
    out = rows(tmp_path / "a.jsonl")
    assert len(out) == 10
    held = [o for o in out if o["selected"] is None]
    assert held and all("min_score 4.5" in o["select_reason"] for o in held)
    kept = [o for o in out if o["selected"] is not None]
    assert all(o["winner_score"] >= 4.5 for o in kept)
    for o in kept:
        assert o["selected"] == o["candidates"][o["selected_index"]]
    r = cli(
        "select",
        tmp_path / "in.jsonl",
        "-o",
        tmp_path / "b.jsonl",
        "--endpoint",
        url,
        "--min-score",
        "4.5",
        "--rejected",
        tmp_path / "rej.jsonl",
        "--quiet",
        *cache,
    )
    assert r.returncode == 0, r.stderr
    assert len(rows(tmp_path / "b.jsonl")) == len(kept)
    assert [o["id"] for o in rows(tmp_path / "rej.jsonl")] == [o["id"] for o in held]


def test_pairs_best_worst_and_all_pairs_by_margin(
    tmp_path: Path, url: str, cli: Callable[..., Ran]
) -> None:
    write_rows(tmp_path / "in.jsonl", 6, k=4, ids=True)
    r = cli(
        "pairs", tmp_path / "in.jsonl", "-o", tmp_path / "p.jsonl", "--endpoint", url, "--quiet"
    )
    assert r.returncode == 0, r.stderr
    out = rows(tmp_path / "p.jsonl")
    assert len(out) == 6 and all(o["n_pairs"] == 1 for o in out)
    assert all(o["chosen"] != o["rejected"] and "candidates" not in o for o in out)
    assert out[0]["prompt"] == "Question 0?" and out[0]["chosen_id"].startswith("sys-")
    r = cli(
        "pairs",
        tmp_path / "in.jsonl",
        "-o",
        tmp_path / "all.jsonl",
        "--endpoint",
        url,
        "--all-pairs",
        "--min-margin",
        "0.5",
        "--quiet",
    )
    assert r.returncode == 0, r.stderr
    out = rows(tmp_path / "all.jsonl")
    assert all(o["genrm_strength_gap"] >= 0.5 for o in out)
    by_row: dict[str, list[float]] = {}
    for o in out:
        by_row.setdefault(o["id"], []).append(o["genrm_strength_gap"])
    assert all(m == sorted(m, reverse=True) for m in by_row.values())
    rejected = tmp_path / "all.rejected.jsonl"
    n_rejected = len(rows(rejected)) if rejected.exists() else 0
    assert len(by_row) + n_rejected == 6


def test_compare_prints_verdict_and_reasoning(url: str, cli: Callable[..., Ran]) -> None:
    r = cli("compare", "--endpoint", url, "--prompt", "What is 2+2?", "--a", "4", "--b", "5")
    assert r.returncode == 0, r.stderr
    assert "A in slot 1" in r.stdout and "B in slot 1" in r.stdout
    assert "reasoning:" in r.stdout and "verdict:" in r.stdout
    r = cli(
        "compare",
        "--endpoint",
        url,
        "--prompt",
        "2+2?",
        "--a",
        "4",
        "--b",
        "5",
        "--json",
        "--swap",
        "none",
    )
    data = json.loads(r.stdout)
    assert len(data["verdicts"]) == 1 and 0.0 <= data["preference_A"] <= 1.0


def test_leaderboard_table_and_plot(tmp_path: Path, url: str, cli: Callable[..., Ran]) -> None:
    write_rows(tmp_path / "in.jsonl", 8, k=4, ids=True)
    plot = tmp_path / "lb.png"
    r = cli(
        "leaderboard",
        tmp_path / "in.jsonl",
        "--endpoint",
        url,
        "--table-bootstrap-rounds",
        "20",
        "--plot",
        plot,
        "-o",
        tmp_path / "lb.json",
        "--quiet",
    )
    assert r.returncode == 0, r.stderr
    assert "| rank | model |" in r.stdout and "sys-3" in r.stdout
    table = json.loads((tmp_path / "lb.json").read_text())
    assert sorted(row["label"] for row in table["rows"]) == [f"sys-{j}" for j in range(4)]
    assert all(row["lower"] <= row["rating"] <= row["upper"] for row in table["rows"])
    assert table["games"] == 8 * 12  # 6 pairs x 2 orders per row
    pytest.importorskip("matplotlib")
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_serve_sim_subcommand_serves_and_stops_on_sigint(
    tmp_path: Path, cli: Callable[..., Ran]
) -> None:
    proc = start_cli("serve-sim", "--port", "0", "--latency-mean", "0")
    try:
        line = ""
        for _ in range(200):  # bounded wait for the ready line
            line = proc.stdout.readline() if proc.stdout else ""
            if "ready" in line or proc.poll() is not None:
                break
        assert "serve-sim: ready" in line, line
        endpoint = line.split()[2]
        r = cli(
            "compare", "--endpoint", endpoint, "--prompt", "hi", "--a", "x", "--b", "y", "--json"
        )
        assert r.returncode == 0, r.stderr
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0


def test_demo_runs_offline(tmp_path: Path, cli: Callable[..., Ran]) -> None:
    r = cli("demo", "--keep", tmp_path, "--quiet")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "wins by system" in r.stdout and "gpt-4" in r.stdout
    assert len(rows(tmp_path / "vicuna80.best.jsonl")) == 80
    # It shows the command it ran, one a user can copy.
    ran = re.search(r"^genrm-rank demo: running: (genrm-rank select .*)$", r.stdout, re.M)
    assert ran is not None
    argv = shlex.split(ran.group(1))
    assert argv[argv.index("-o") + 1] == str(tmp_path / "vicuna80.best.jsonl")
    assert argv[argv.index("--endpoint") + 1].startswith("http://127.0.0.1:")
    assert argv[2].endswith(".jsonl") and "--quiet" in argv
    assert "select my.jsonl -o best.jsonl --judge simulated" in r.stdout
    # The simulated GenRM's qualities are GPT-4's per-question strengths: the knockout's
    # winners agree with GPT-4's own pick on 63 of 80 questions with the demo's fixed seeds,
    # the figure the README promises. (64 while the highest P(best) under the alpha prior was
    # the pick; 65 with the posterior mean's leader under the default profile; 63 with the
    # profile a run learns from its first 32 prompts, which the ranking now uses.)
    agreed = re.search(r"GPT-4's own verdicts rank first on (\d+) of 80", r.stdout)
    assert agreed is not None and int(agreed.group(1)) == 63


# -- bad input, usage errors ---------------------------------------------------------------


def test_bad_rows_go_to_the_errors_file_and_the_run_goes_on(
    tmp_path: Path, url: str, cli: Callable[..., Ran]
) -> None:
    expected = json.loads((FIXTURES / "bad_rows.expected.json").read_text())
    out = tmp_path / "o.jsonl"
    r = cli(
        "rank",
        FIXTURES / "bad_rows.jsonl",
        "-o",
        out,
        "--endpoint",
        url,
        "--max-chars",
        expected["max_chars"],
        "--summary-json",
        tmp_path / "s.json",
    )
    assert r.returncode == 1, r.stderr
    errors = rows(tmp_path / "o.errors.jsonl")
    assert [(e["line"], e["kind"]) for e in errors] == [
        (e["line"], e["kind"]) for e in expected["errors"]
    ]
    for got, want in zip(errors, expected["errors"], strict=True):
        assert want["reason"] in got["reason"]
    assert len(rows(out)) == len(expected["ok_lines"])
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["rows_failed"] == len(expected["errors"])
    assert summary["rows_ok"] == len(expected["ok_lines"])


def test_rows_without_a_usable_verdict_are_errors_not_guesses(
    tmp_path: Path, cli: Callable[..., Ran]
) -> None:
    # The first row's 6 calls are answered; every later answer is unreadable. One at a time,
    # so the answers land on the rows in order (too few failures to be systematic).
    write_rows(tmp_path / "in.jsonl", 3)
    config = SimServerConfig(latency_mean=0.0, fault_sequence=("ok",) * 6 + ("unreadable",) * 99)
    with ThreadedSimServers([config]) as servers:
        r = cli(
            "select", tmp_path / "in.jsonl", "-o", tmp_path / "o.jsonl", "--quiet",
            "--endpoint", servers.urls[0], "--summary-json", tmp_path / "s.json",
            "--concurrency", "1",
        )  # fmt: skip
    assert r.returncode == 1, r.stderr
    assert len(rows(tmp_path / "o.jsonl")) == 1
    errors = rows(tmp_path / "o.errors.jsonl")
    assert [e["kind"] for e in errors] == ["no_usable_verdict"] * 2
    assert [e["cause"] for e in errors] == ["judge"] * 2  # resume judges them again
    assert "unreadable" in errors[0]["reason"]
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["failures_by_kind"]["unreadable"] > 0
    # Resumed against a healthy server: the two rows are judged again and written once.
    with ThreadedSimServers([SimServerConfig(latency_mean=0.0)]) as servers:
        r = cli(
            "select", tmp_path / "in.jsonl", "-o", tmp_path / "o.jsonl", "--quiet",
            "--endpoint", servers.urls[0], "--summary-json", tmp_path / "s.json", "--resume",
            "--concurrency", "1",
        )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert [row["id"] for row in rows(tmp_path / "o.jsonl")] == ["row-0", "row-1", "row-2"]
    assert rows(tmp_path / "o.errors.jsonl") == []
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["recovered"]["errors"]["retried"] == 2


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--strategy", "bogus"], "--strategy"),
        (["--swap", "sometimes"], "--swap"),
        (["--shard", "4/4"], "--shard"),
        (["--concurrency", "0"], "--concurrency"),
        (["--extra-body", "[1]"], "--extra-body"),
        (["--min-p-best", "2"], "--min-p-best"),
        (["--endpoint", "ftp://x"], "--endpoint"),
        ([], "--endpoint"),  # no judge at all
        (
            ["--judge", "simulated", "--principle", "x", "--principle-file", "p.txt"],
            "--principle-file",
        ),
    ],
)
def test_usage_errors_exit_2_naming_the_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], option: str
) -> None:
    write_rows(tmp_path / "in.jsonl", 2)
    assert run_main("select", tmp_path / "in.jsonl", "-o", tmp_path / "o.jsonl", *args) == 2
    assert option in capsys.readouterr().err


def test_usage_error_through_the_console_script(tmp_path: Path) -> None:
    write_rows(tmp_path / "in.jsonl", 2)
    r = cli_process(
        "rank",
        tmp_path / "in.jsonl",
        "-o",
        tmp_path / "o.jsonl",
        "--judge",
        "simulated",
        "--strategy",
        "best-of",
    )
    assert r.returncode == 2
    names = "adaptive, baseline, circular, knockout, round-robin, swiss"
    assert "--strategy" in r.stderr and names in r.stderr


def test_existing_output_needs_resume_or_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_rows(tmp_path / "in.jsonl", 2)
    (tmp_path / "o.jsonl").write_text('{"id": "x"}\n')
    assert (
        run_main("rank", tmp_path / "in.jsonl", "-o", tmp_path / "o.jsonl", "--judge", "simulated")
        == 2
    )
    err = capsys.readouterr().err
    assert "--resume" in err and "--overwrite" in err


# -- cache ---------------------------------------------------------------------------------


def test_cache_second_run_makes_zero_calls_and_identical_rows(
    tmp_path: Path, url: str, server: ThreadedSimServers, cli: Callable[..., Ran]
) -> None:
    write_rows(tmp_path / "in.jsonl", 15, k=4)
    cache = tmp_path / "v.db"
    common = ["--endpoint", url, "--cache", cache, "--quiet"]
    r = cli(
        "select",
        tmp_path / "in.jsonl",
        "-o",
        tmp_path / "a.jsonl",
        *common,
        "--summary-json",
        tmp_path / "a.json",
    )
    assert r.returncode == 0, r.stderr
    before = server.stats(0).requests
    r = cli(
        "select",
        tmp_path / "in.jsonl",
        "-o",
        tmp_path / "b.jsonl",
        *common,
        "--summary-json",
        tmp_path / "b.json",
    )
    assert r.returncode == 0, r.stderr
    assert server.stats(0).requests == before  # the server saw nothing
    first, second = (json.loads((tmp_path / f"{n}.json").read_text()) for n in "ab")
    assert first["judge_calls"] == 90 and second["judge_calls"] == 0
    assert second["cache_hits"] == 90
    # The same rows, but what they cost is reported as it was: paid, then cached (free).
    paid, cached = rows(tmp_path / "a.jsonl"), rows(tmp_path / "b.jsonl")
    cost = ("calls", "cached", "prompt_tokens", "completion_tokens")
    for a, b in zip(paid, cached, strict=True):
        assert b["genrm"]["calls"] == 0 and b["genrm"]["cached"] == a["genrm"]["calls"] == 6
        assert a["genrm"]["cached"] == 0 and b["genrm"]["completion_tokens"] == 0
        for row in (a, b):
            for key in cost:
                del row["genrm"][key]
        assert a == b


# -- kill and resume -----------------------------------------------------------------------


def test_torn_last_line_is_truncated_on_resume(tmp_path: Path) -> None:
    write_rows(tmp_path / "in.jsonl", 20)
    common = ["--judge", "simulated", "--quiet"]
    assert run_main("rank", tmp_path / "in.jsonl", "-o", tmp_path / "ref.jsonl", *common) == 0
    ref = (tmp_path / "ref.jsonl").read_bytes()
    lines = ref.split(b"\n")
    (tmp_path / "o.jsonl").write_bytes(b"\n".join(lines[:7]) + b"\n" + lines[7][:40])
    assert (
        run_main(
            "rank",
            tmp_path / "in.jsonl",
            "-o",
            tmp_path / "o.jsonl",
            "--resume",
            *common,
            "--summary-json",
            tmp_path / "s.json",
        )
        == 0
    )
    assert (tmp_path / "o.jsonl").read_bytes() == ref
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["rows_skipped"] == 7 and summary["recovered"]["out"]["truncated_bytes"] == 40


@pytest.mark.slow
def test_sigint_stops_cleanly_with_130_and_resume_over_http_completes(
    tmp_path: Path, cli: Callable[..., Ran]
) -> None:
    write_rows(tmp_path / "in.jsonl", 120, k=4)
    config = SimServerConfig(latency="constant", latency_mean=0.01, capacity=8)
    common = ["--strategy", "knockout", "--concurrency", "8", "--quiet", "--model", config.model]
    with ThreadedSimServers([config]) as servers:
        r = cli(
            "select",
            tmp_path / "in.jsonl",
            "-o",
            tmp_path / "ref.jsonl",
            "--endpoint",
            servers.urls[0],
            *common,
        )
        assert r.returncode == 0, r.stderr
    out = tmp_path / "o.jsonl"
    # Fresh servers for each segment: a simulated server draws by request count, so a request
    # repeated on the same server would get another sample (a real GenRM is random anyway).
    with ThreadedSimServers([config]) as servers:
        # SIGINT right after the 20th row is written (not after a sleep: issue 18).
        proc = subprocess.run(
            [sys.executable, str(Path(__file__).parent / "guarded_cli.py"), str(tmp_path),
             "--after-rows", "20", "--signal", "INT",
             "select", str(tmp_path / "in.jsonl"), "-o", str(out), "--endpoint", servers.urls[0],
             *common],
            capture_output=True, text=True, timeout=60, env=ENV,
        )  # fmt: skip
        assert proc.returncode == 130, proc.stderr
    partial = out.read_bytes()
    assert partial.endswith(b"\n") and 20 <= partial.count(b"\n") < 120
    with ThreadedSimServers([config]) as servers:
        r = cli(
            "select",
            tmp_path / "in.jsonl",
            "-o",
            out,
            "--endpoint",
            servers.urls[0],
            "--resume",
            *common,
        )
        assert r.returncode == 0, r.stderr
    assert out.read_bytes() == (tmp_path / "ref.jsonl").read_bytes()


def test_max_calls_cap_exits_3_and_resume_finishes(tmp_path: Path) -> None:
    write_rows(tmp_path / "in.jsonl", 30)
    common = ["--judge", "simulated", "--quiet", "--strategy", "knockout"]
    assert run_main("select", tmp_path / "in.jsonl", "-o", tmp_path / "ref.jsonl", *common) == 0
    assert (
        run_main(
            "select",
            tmp_path / "in.jsonl",
            "-o",
            tmp_path / "o.jsonl",
            *common,
            "--max-calls",
            "60",
            "--concurrency",
            "4",
        )
        == 3
    )
    assert 0 < len(rows(tmp_path / "o.jsonl")) < 30
    assert (
        run_main("select", tmp_path / "in.jsonl", "-o", tmp_path / "o.jsonl", *common, "--resume")
        == 0
    )
    assert (tmp_path / "o.jsonl").read_bytes() == (tmp_path / "ref.jsonl").read_bytes()


def test_resume_with_other_settings_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_rows(tmp_path / "in.jsonl", 4)
    common = ["--judge", "simulated", "--quiet", "--max-calls", "6", "--concurrency", "2"]
    assert run_main("select", tmp_path / "in.jsonl", "-o", tmp_path / "o.jsonl", *common) == 3
    capsys.readouterr()
    status = run_main(
        "select", tmp_path / "in.jsonl", "-o", tmp_path / "o.jsonl", *common, "--resume",
        "--strategy", "swiss",
    )  # fmt: skip
    assert status == 2
    err = capsys.readouterr().err
    assert "--resume" in err and "spec.strategy: 'knockout' -> 'swiss'" in err


def test_every_endpoint_down_exits_4_resumable(tmp_path: Path) -> None:
    write_rows(tmp_path / "in.jsonl", 3)
    status = run_main(
        "select", tmp_path / "in.jsonl", "-o", tmp_path / "o.jsonl", "--quiet",
        "--endpoint", "http://127.0.0.1:9/v1", "--model", "m",
        "--max-resends", "0", "--down-timeout", "0.2",
    )  # fmt: skip
    assert status == 4
    assert (tmp_path / "o.jsonl").read_bytes() == b""  # nothing was written as failed


def test_shards_cover_the_file(tmp_path: Path) -> None:
    write_rows(tmp_path / "in.jsonl", 10)
    ids = []
    for i in range(2):
        assert (
            run_main(
                "rank",
                tmp_path / "in.jsonl",
                "-o",
                tmp_path / f"s{i}.jsonl",
                "--judge",
                "simulated",
                "--shard",
                f"{i}/2",
                "--quiet",
            )
            == 0
        )
        ids += [o["id"] for o in rows(tmp_path / f"s{i}.jsonl")]
    assert sorted(ids) == sorted(f"row-{i}" for i in range(10))


@pytest.mark.parametrize("prompt", ["[1, 2]", '[{"role": "user", "content": 3}]', ""])
def test_compare_with_a_bad_prompt_is_a_usage_error(
    prompt: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run_main("compare", "--judge", "simulated", "--prompt", prompt, "--a", "x", "--b", "y")
    assert code == 2
    assert "--prompt" in capsys.readouterr().err


def test_a_defect_during_the_run_is_not_reported_as_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Exit 2 means the user's options were wrong; a ValueError from inside the run is a bug."""
    import genrm_rank.cli.run as run_module

    async def broken(*args: object, **kwargs: object) -> None:
        raise ValueError("an internal inconsistency")

    monkeypatch.setattr(run_module, "process_file", broken)
    write_rows(tmp_path / "in.jsonl", 2)
    with pytest.raises(RuntimeError, match="internal error during the run"):
        main(
            [
                "rank",
                str(tmp_path / "in.jsonl"),
                "-o",
                str(tmp_path / "o.jsonl"),
                "--judge",
                "simulated",
                "--quiet",
            ]
        )


# -- one front door ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "options", "function"),
    [
        ("select", ["--seed", "3", "--budget", "9"], "select_best"),
        ("rank", ["--seed", "5", "--strategy", "swiss", "--swap", "random"], "rank"),
        ("select", ["--seed", "3", "--strategy", "knockout", "--samples", "2"], "select_best"),
    ],
)
def test_cli_and_python_give_the_same_result(
    tmp_path: Path, command: str, options: list[str], function: str
) -> None:
    """One code path: the CLI and the Python API, same input, spec and seed, same rankings."""
    import genrm_rank
    from genrm_rank.cli import build_parser
    from genrm_rank.cli.options import SPEC_OPTIONS, spec_from_args

    write_rows(tmp_path / "in.jsonl", 6, k=5, ids=True)
    out = tmp_path / "out.jsonl"
    argv = [command, tmp_path / "in.jsonl", "-o", out, "--judge", "simulated", "--quiet"]
    assert run_main(*argv, *options) == 0
    spec = spec_from_args(build_parser().parse_args([str(a) for a in argv + options]))
    assert set(SPEC_OPTIONS) == {f.name for f in dataclasses.fields(spec)}
    call = getattr(genrm_rank, function)
    for row in rows(out):
        ranking = call(
            [c["text"] for c in row["candidates"]],
            row["prompt"],
            judge=genrm_rank.SimulatedJudge(seed=0),
            spec=spec,
            prompt_id=str(row["id"]),
            candidate_ids=[c["id"] for c in row["candidates"]],
        )
        assert ranking.to_dict() == row["genrm"]


# -- fail fast, in the server's words ------------------------------------------------------------


@pytest.fixture(scope="module")
def keyed() -> Iterator[ThreadedSimServers]:
    config = SimServerConfig(latency_mean=0.0, api_key="the-right-key")
    with ThreadedSimServers([config]) as servers:
        yield servers


@pytest.mark.parametrize(
    ("options", "words"),
    [
        (["--model", "nope"], ["model 'nope' is not served (GET /models)", "--model", "serves"]),
        (["--model", "sim-genrm", "--v1-missing"], ["HTTP 404", "did you mean", "/v1?"]),
        (["--model", "sim-genrm", "--keyed"], ["HTTP 401: Unauthorized", "no API key was sent"]),
    ],
    ids=["wrong-model", "no-v1", "no-key"],
)
def test_misconfigured_run_stops_at_once_in_the_servers_words(
    tmp_path: Path,
    server: ThreadedSimServers,
    keyed: ThreadedSimServers,
    capsys: pytest.CaptureFixture[str],
    options: list[str],
    words: list[str],
) -> None:
    write_rows(tmp_path / "in.jsonl", 40, k=4)
    target = keyed if "--keyed" in options else server
    endpoint = target.servers[0].root_url if "--v1-missing" in options else target.urls[0]
    options = [o for o in options if o not in ("--keyed", "--v1-missing")]
    before = target.stats(0).by_path
    status = run_main(
        "rank", tmp_path / "in.jsonl", "--endpoint", endpoint, *options,
        "--api-key-env", "GENRM_TEST_UNSET_KEY", "-o", tmp_path / "out.jsonl", "--quiet",
    )  # fmt: skip
    err = capsys.readouterr().err
    assert status == 2, err
    for word in words:
        assert word in err
    # Stopped at once, not after a window or 40 rows x 12 calls: a wrong model or key is seen by
    # GET /models before any chat request; a wrong path costs one chat request.
    posts = {k: v - before.get(k, 0) for k, v in target.stats(0).by_path.items() if "POST" in k}
    assert sum(posts.values()) == (1 if "/v1?" in words else 0)
    errors = tmp_path / "out.errors.jsonl"
    assert not errors.exists() or rows(errors) == []


def test_down_server_exits_4(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_rows(tmp_path / "in.jsonl", 3)
    status = run_main(
        "rank", tmp_path / "in.jsonl", "--endpoint", "http://127.0.0.1:1/v1",
        "-o", tmp_path / "out.jsonl", "--quiet",
    )  # fmt: skip
    err = capsys.readouterr().err
    assert status == 4 and "could not be reached" in err


def test_output_paths_checked_before_any_call(
    tmp_path: Path, server: ThreadedSimServers, capsys: pytest.CaptureFixture[str]
) -> None:
    write_rows(tmp_path / "in.jsonl", 3)
    before = server.stats(0).requests
    status = run_main(
        "rank", tmp_path / "in.jsonl", "--endpoint", server.urls[0],
        "-o", tmp_path / "nodir" / "out.jsonl", "--quiet",
    )  # fmt: skip
    err = capsys.readouterr().err
    assert status == 2 and "argument --output: directory" in err and "does not exist" in err
    assert "Traceback" not in err
    assert server.stats(0).requests == before


def test_wrong_field_names_stop_the_run_naming_the_keys(
    tmp_path: Path, url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with open(tmp_path / "in.jsonl", "w") as f:
        for i in range(30):
            f.write(json.dumps({"id": i, "prompt": "q?", "responses": ["a", "b"]}) + "\n")
    status = run_main(
        "rank", tmp_path / "in.jsonl", "--endpoint", url, "-o", tmp_path / "out.jsonl", "--quiet"
    )
    err = capsys.readouterr().err
    assert status == 2, err
    assert "--candidates-field" in err and "['id', 'prompt', 'responses']" in err
    errors = tmp_path / "out.errors.jsonl"
    # Nothing written: a rerun with --candidates-field responses must not skip these rows.
    assert not errors.exists() or rows(errors) == []


def test_a_few_rows_missing_a_field_go_to_the_errors_file_with_their_keys(
    tmp_path: Path, url: str
) -> None:
    write_rows(tmp_path / "in.jsonl", 6)
    with open(tmp_path / "in.jsonl", "a") as f:
        f.write(json.dumps({"id": "odd", "prompt": "q?", "answers": ["a", "b"]}) + "\n")
    status = run_main(
        "rank", tmp_path / "in.jsonl", "--endpoint", url, "-o", tmp_path / "out.jsonl", "--quiet"
    )
    assert status == 1
    (error,) = rows(tmp_path / "out.errors.jsonl")
    assert error["kind"] == "missing_field" and error["keys"] == ["id", "prompt", "answers"]


def test_errors_file_carries_each_failed_request_in_its_own_words(tmp_path: Path) -> None:
    config = SimServerConfig(latency_mean=0.0, unreadable_rate=1.0)
    write_rows(tmp_path / "in.jsonl", 2, k=2)
    with ThreadedSimServers([config]) as servers:
        status = run_main(
            "rank", tmp_path / "in.jsonl", "--endpoint", servers.urls[0],
            "-o", tmp_path / "out.jsonl", "--quiet", "--retries", "0",
        )  # fmt: skip
    assert status == 1
    errors = rows(tmp_path / "out.errors.jsonl")
    assert [e["kind"] for e in errors] == ["no_usable_verdict"] * 2
    for error in errors:
        assert len(error["failed_requests"]) == 2
        for failed in error["failed_requests"]:
            assert failed["failure"] == "unreadable" and failed["error"]
            assert "cannot decide" in failed["raw"]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["select", "IN", "-o", "OLD"], "argument --output: OLD already exists; pass --resume"),
        (["select", "IN", "-o", "NEW", "--resume", "--overwrite"], "--resume and --overwrite"),
        (
            ["select", "IN", "-o", "NEW", "--errors", "NEW"],
            "argument --errors: NEW is also the --output file",
        ),
        (["merge", "IN", "OLD", "-o", "OLD"], "argument --output is also an input: OLD"),
        (
            ["merge", "IN", "OLD", "-o", "OLD2"],
            "already exists (and is not this merge's result); pass --overwrite.",
        ),
        (
            ["select", "IN", "-o", "NEW", "--endpoint", "http://me:pw-9f2@127.0.0.1:9/v1"],
            "argument --endpoint holds credentials (http://***@127.0.0.1:9/v1); pass the key "
            "with --api-key-env or --api-key-file",
        ),
        (["select", "IN", "-o", "NEW", "--dry-run", "--throughput", "-1"], "argument --throughput"),
        (
            ["select", "IN", "-o", "NEW", "--model", "m", "--timeout", "-1", "--endpoint", "URL"],
            "argument --timeout must be > 0",
        ),
    ],
)
def test_library_messages_name_flags_not_python_parameters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], expected: str
) -> None:
    """Library checks say 'Argument 'paths'' and 'overwrite=True'; the CLI says its flags."""
    names = {n: str(tmp_path / f"{n.lower()}.jsonl") for n in ("IN", "OLD", "OLD2", "NEW")}
    names["URL"] = "http://127.0.0.1:9/v1"  # never called: the options are refused first
    for name in ("IN", "OLD", "OLD2"):
        Path(names[name]).write_text('{"id": 1, "prompt": "Q", "candidates": ["a", "b"]}\n')
    # Not what merging IN and OLD writes (an output equal to the merge's result is a finished
    # merge, not refused).
    Path(names["OLD2"]).write_text('{"id": 9, "prompt": "R", "candidates": ["c", "d"]}\n')
    extra = (
        ["--judge", "simulated", "-q"] if argv[0] == "select" and "--endpoint" not in argv else []
    )
    assert main([names.get(a, a) for a in argv] + extra) == 2
    err = capsys.readouterr().err
    for name, path in names.items():
        err = err.replace(path, name)
    assert expected in err
    assert "Argument '" not in err and "=True" not in err and "pw-9f2" not in err


# -- progress in batch jobs ------------------------------------------------------------------


def _progress_run(
    tmp_path: Path, run: Callable[..., Ran | subprocess.CompletedProcess[str]], *extra: str
) -> list[str]:
    write_rows(tmp_path / "in.jsonl", 3, k=4)
    args = ["select", tmp_path / "in.jsonl", "-o", tmp_path / "o.jsonl", "--judge", "simulated",
            "--strategy", "adaptive", "--swap", "auto", "--concurrency", "1", *extra]  # fmt: skip
    process = run(*args)
    assert process.returncode == 0, process.stderr
    return process.stderr.splitlines()


def test_a_batch_job_gets_plain_progress_lines_and_the_summary_last(tmp_path: Path) -> None:
    # stderr is a pipe, as in a Slurm log: lines, not a bar. A 1 ms interval prints one at
    # most updates (the run takes far longer than 1 ms).
    err = _progress_run(tmp_path, cli_process, "--progress-interval", "0.001")
    lines = [line for line in err if line.startswith("progress: ")]
    assert lines and "\r" not in "".join(err)
    assert re.fullmatch(
        r"progress: \d+/3 rows done \(0 failed\), \d+ paid calls, \S+ tokens, [\d.]+ rows/s, "
        r"\S+ elapsed(; projected \d+ calls(, \S+ left)?)?",
        lines[-1],
    )
    # Projections never pass the plan's ceiling for adaptive: 3 rows x 4N = 48 calls.
    projected = [int(m[1]) for line in lines if (m := re.search(r"projected (\d+) calls", line))]
    assert projected and max(projected) <= 48
    assert err.index(lines[-1]) < err.index(next(e for e in err if "rows ok" in e))


def test_quiet_batch_job_prints_no_progress(tmp_path: Path, cli: Callable[..., Ran]) -> None:
    err = _progress_run(tmp_path, cli, "--progress-interval", "0.001", "--quiet")
    assert not any(line.startswith("progress: ") for line in err)


@pytest.mark.parametrize("value", ["0", "-5", "soon"])
def test_progress_interval_must_be_a_positive_number(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    write_rows(tmp_path / "in.jsonl", 1)
    status = run_main("select", tmp_path / "in.jsonl", "-o", tmp_path / "o.jsonl",
                      "--judge", "simulated", "--progress-interval", value)  # fmt: skip
    assert status == 2 and "--progress-interval" in capsys.readouterr().err
