"""Client CPU a comparison of ``genrm-rank select`` as a user runs it, against 4 serve-sim replicas.

The figure of issue 22: the CLI process's own user + system CPU seconds divided by the judge
calls it paid, with the BLAS environment as a user has it (nothing set), with
``OPENBLAS_NUM_THREADS=1``, and with the pool forced to 8 threads (what a bigger node starts by
default), side by side in one run, the variants alternating, several repeats, medians. The
servers run in their own process (``_sim_procs.SimServerProcess``), so their CPU is not counted.

Only ``*_NUM_THREADS`` variables are removed or set; ``OPENBLAS_CORETYPE`` and
``OPENBLAS_L2_SIZE`` are left as the machine has them.

Run from the repository root::

    .venv/bin/python benchmarks/bench_client_cpu.py --prompts 250 --repeats 3
    .venv/bin/python benchmarks/bench_client_cpu.py --code /tmp/old   # another checkout's code
    .venv/bin/python benchmarks/bench_client_cpu.py --profile          # one ranking, by stage
    .venv/bin/python benchmarks/bench_client_cpu.py --loop-probe       # longest step on the loop
    .venv/bin/python benchmarks/bench_client_cpu.py --prompts 1000 --repeats 1 --only knockout

``--code DIR`` runs the CLI of the checkout in DIR (first on ``PYTHONPATH``). ``--profile``
times the stages of one ranking of 8 candidates (knockout and round-robin, both orders) in
this process, in CPU time. ``--loop-probe`` runs each strategy once with every event-loop
callback timed (``_loop_probe.py``) and prints the longest synchronous step.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _sim_procs import SimServerProcess
from bench_cli_scale import write_rows

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent

STRATEGIES = {
    "knockout, both orders": ["--strategy", "knockout", "--swap", "both"],
    "round-robin, both orders": ["--strategy", "round-robin", "--swap", "both"],
    "adaptive": ["--strategy", "adaptive"],
}
THREAD_VARIABLES = (
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
ENVIRONMENTS: dict[str, dict[str, str]] = {
    "unset": {},
    "OPENBLAS_NUM_THREADS=1": {"OPENBLAS_NUM_THREADS": "1"},
    "OPENBLAS_NUM_THREADS=8": {"OPENBLAS_NUM_THREADS": "8"},
}


def environment(code: Path, threads: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    env.update(threads)
    env["PYTHONPATH"] = str(code)
    return env


def strategies(args: argparse.Namespace) -> dict[str, list[str]]:
    """The strategies to run: all, or those whose name starts with one of ``--only``."""
    if not args.only:
        return STRATEGIES
    return {k: v for k, v in STRATEGIES.items() if any(k.startswith(o) for o in args.only)}


def server_args(args: argparse.Namespace) -> list[str]:
    """serve-sim's arguments: 4 replicas in one held-out process."""
    return [
        "--replicas", "4", "--latency-mean", str(args.latency), "--capacity", str(args.capacity),
        "--seed", "0",
    ]  # fmt: skip


def cli_argv(
    args: argparse.Namespace, rows: Path, server: SimServerProcess, options: list[str]
) -> list[str]:
    """``genrm-rank select`` over ``rows`` against every replica of ``server``."""
    endpoints = [a for url in server.urls for a in ("--endpoint", url)]
    out = rows.with_name("out.jsonl")
    return [
        "select", str(rows), "-o", str(out), "--overwrite", "-q", "--concurrency",
        str(args.concurrency), "--model", "sim-genrm", *endpoints, *options,
    ]  # fmt: skip


def run_cli(
    code: Path, argv: list[str], env: dict[str, str], prefix: list[str] | None = None
) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one CLI child process (its own rusage, from wait4)."""
    command = prefix or [sys.executable, "-m", "genrm_rank.cli"]
    started = time.monotonic()
    proc = subprocess.Popen([*command, *argv], env=env, cwd=code)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"the CLI exited with status {os.waitstatus_to_exitcode(status)}")
    return usage.ru_utime + usage.ru_stime, wall


def startup_cpu(code: Path, env: dict[str, str]) -> float:
    """CPU seconds of starting the CLI and importing what a run imports, with no work."""
    snippet = "import genrm_rank.cli, genrm_rank.results, genrm_rank.judges, aiohttp"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-c", snippet], env=env, cwd=code, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def measure(args: argparse.Namespace) -> None:
    code = args.code.resolve()
    with tempfile.TemporaryDirectory(prefix="bench-client-cpu-") as tmp:
        rows = Path(tmp) / "rows.jsonl"
        write_rows(rows, args.prompts, args.candidates)
        cpu: dict[tuple[str, str], list[float]] = {}
        wall: dict[tuple[str, str], list[float]] = {}
        calls: dict[str, int] = {}
        with SimServerProcess(server_args(args)) as server:
            for repeat in range(args.repeats):
                for strategy, options in strategies(args).items():
                    for env_name, threads in ENVIRONMENTS.items():
                        summary = Path(tmp) / "summary.json"
                        argv = [*cli_argv(args, rows, server, options), "--summary-json",
                                str(summary)]  # fmt: skip
                        seconds, elapsed = run_cli(code, argv, environment(code, threads))
                        paid = int(json.loads(summary.read_text())["judge_calls"])
                        calls[strategy] = paid
                        cpu.setdefault((strategy, env_name), []).append(seconds)
                        wall.setdefault((strategy, env_name), []).append(elapsed)
                        print(
                            f"run {repeat} {strategy:26} {env_name:24} {seconds:6.2f} CPU s "
                            f"{elapsed:6.1f} wall s {paid} calls "
                            f"{1000 * seconds / paid:.3f} ms/comparison",
                            flush=True,
                        )
        start = statistics.median(
            startup_cpu(code, environment(code, {})) for _ in range(args.repeats)
        )
    print(
        f"\ncode: {code}; {args.prompts} prompts x {args.candidates} candidates, 4 serve-sim "
        f"replicas (latency {args.latency} s, capacity {args.capacity} each), concurrency "
        f"{args.concurrency}; medians of {args.repeats}; CPU = user + system of the CLI process"
    )
    print(f"start-up and imports alone: {start:.2f} CPU s (included below)\n")
    header = " | ".join(f"{name} ms/comparison" for name in ENVIRONMENTS)
    print(
        f"| strategy | calls | {header} | 8 threads / 1 thread | unset, start-up excluded "
        "| processes for 8,500/s |"
    )
    print("|---|---:|" + "---:|" * len(ENVIRONMENTS) + "---:|---:|---:|")
    for strategy in strategies(args):
        paid = calls[strategy]
        ms = {e: 1000 * statistics.median(cpu[(strategy, e)]) / paid for e in ENVIRONMENTS}
        ratio = ms["OPENBLAS_NUM_THREADS=8"] / ms["OPENBLAS_NUM_THREADS=1"]
        steady = ms["unset"] - 1000 * start / paid
        # 1,000 replicas need about 8,500 comparisons a second (docs/deployment.md); a process
        # spending m ms of CPU a comparison sustains 1000 / m a second on one core.
        processes = 8500 * steady / 1000
        cells = " | ".join(f"{ms[e]:.3f}" for e in ENVIRONMENTS)
        print(f"| {strategy} | {paid} | {cells} | {ratio:.2f} | {steady:.3f} | {processes:.1f} |")


def loop_probe(args: argparse.Namespace) -> None:
    code = args.code.resolve()
    with tempfile.TemporaryDirectory(prefix="bench-loop-") as tmp:
        rows = Path(tmp) / "rows.jsonl"
        write_rows(rows, args.prompts, args.candidates)
        with SimServerProcess(server_args(args)) as server:
            longest: list[tuple[str, list[tuple[float, str]]]] = []
            print("| strategy | longest step, CPU ms | 99.9th percentile | steps over 5 ms |")
            print("|---|---:|---:|---:|")
            for strategy, options in strategies(args).items():
                report = Path(tmp) / "probe.json"
                env = environment(code, {})
                env["LOOP_PROBE_REPORT"] = str(report)
                argv = cli_argv(args, rows, server, options)
                run_cli(code, argv, env, prefix=[sys.executable, str(HERE / "_loop_probe.py")])
                stats = json.loads(report.read_text())
                print(
                    f"| {strategy} | {stats['max_ms']:.2f} | {stats['p999_ms']:.2f} | "
                    f"{stats['over_5ms']} |"
                )
                longest.append((strategy, stats["longest"]))
                print(
                    f"<!-- over 5 ms without gc: {stats['over_5ms_without_gc']}; gc ms in "
                    f"long steps: {stats['over_5ms_gc_ms']} -->"
                )
                for where, count in stats["samples"]:
                    print(f"<!--   {count:5d}  {where} -->")
        for strategy, steps in longest:
            print(f"\n{strategy}, the longest steps:")
            for took, what in steps:
                print(f"  {took:.2f} ms  {what}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=250)
    parser.add_argument("--candidates", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--latency", type=float, default=0.2, help="serve-sim mean latency, s")
    parser.add_argument("--capacity", type=int, default=64, help="sequences a replica runs")
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--code", type=Path, default=ROOT, metavar="DIR")
    parser.add_argument("--only", nargs="+", default=[], metavar="STRATEGY",
                        help="knockout, round-robin and/or adaptive (default: all)")  # fmt: skip
    parser.add_argument("--profile", action="store_true", help="profile one ranking instead")
    parser.add_argument("--loop-probe", action="store_true", help="longest event-loop step")
    args = parser.parse_args()
    if args.profile:
        sys.path.insert(0, str(args.code.resolve()))
        from _profile_ranking import profile

        profile()
    elif args.loop_probe:
        loop_probe(args)
    else:
        measure(args)


if __name__ == "__main__":
    main()
