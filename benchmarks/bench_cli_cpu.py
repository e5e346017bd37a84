"""Client CPU a row of ``genrm-rank select --judge simulated``, against another checkout too.

The CLI-scale benchmark (``bench_cli_scale.py``) measures wall time against serve-sim, which a
shared, loaded machine makes noisy. This one measures what the client itself spends: the CPU
seconds (user + system) of a ``genrm-rank select`` child process over a generated file, with the
in-process simulated judge (no HTTP), so that two revisions can be compared side by side in one
run, alternating, on CPU time rather than wall time.

Run from the repository root::

    python benchmarks/bench_cli_cpu.py --rows 2000 --repeats 3
    git worktree add /tmp/old <rev>
    python benchmarks/bench_cli_cpu.py --rows 2000 --repeats 3 --compare-with /tmp/old

``--compare-with DIR`` runs the CLI of the checkout in DIR (put first on ``PYTHONPATH``) before
each run of this one; the medians and their ratio are printed.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_cli_scale import write_rows  # the same generated rows as the CLI-scale run

ROOT = Path(__file__).resolve().parents[1]


def cpu_seconds(checkout: Path, rows: Path, out: Path) -> float:
    """CPU seconds of one ``genrm-rank select`` run of the checkout's code."""
    env = dict(os.environ, PYTHONPATH=str(checkout))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    argv = [sys.executable, "-m", "genrm_rank.cli", "select", str(rows), "-o", str(out)]
    subprocess.run([*argv, "--judge", "simulated", "-q", "--overwrite"], env=env, cwd=checkout,
                   check=True)  # fmt: skip
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--candidates", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--compare-with", type=Path, default=None, metavar="DIR")
    args = parser.parse_args()
    sides = {"this": ROOT}
    if args.compare_with is not None:
        sides = {"other": args.compare_with.resolve(), **sides}
    with tempfile.TemporaryDirectory() as tmp:
        rows = Path(tmp) / "rows.jsonl"
        write_rows(rows, args.rows, args.candidates)
        seconds: dict[str, list[float]] = {name: [] for name in sides}
        for repeat in range(args.repeats):
            for name, checkout in sides.items():
                cpu = cpu_seconds(checkout, rows, Path(tmp) / f"{name}.jsonl")
                seconds[name].append(cpu)
                print(f"{name} run {repeat}: {cpu:.2f} CPU s", flush=True)
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    for name, median in medians.items():
        print(f"{name}: median {median:.2f} CPU s, {1000 * median / args.rows:.2f} ms a row")
    if "other" in medians:
        print(f"this / other: {medians['this'] / medians['other']:.2f}")


if __name__ == "__main__":
    main()
