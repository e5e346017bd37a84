"""Does ``genrm-rank`` stay flat in memory as the input grows? Rows/s and peak RSS at 10k vs 100k.

For each size it writes a synthetic SDG file (``--candidates`` responses per prompt), starts
serve-sim in its own process at zero latency (``--latency-mean 0``: every verdict answered at
once, so the client is the bottleneck), and runs ``genrm-rank select`` on it as a child process.
The child's peak resident memory comes from ``os.wait4`` (its own ``ru_maxrss``, not the
server's), its rows/s from the wall time and the run summary. With ``--judge simulated`` the
in-process simulated judge is used instead of serve-sim (no HTTP).

Run from the repository root::

    .venv/bin/python benchmarks/bench_cli_scale.py --rows 10000 100000

The table it prints is the one quoted in the README; ``--json FILE`` keeps the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _sim_procs import SimServerProcess


def write_rows(path: Path, n: int, k: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    words = "the a model answer because therefore data value result step first then".split()
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            cands = [
                f"[{i}.{j}] " + " ".join(rng.choice(words) for _ in range(rng.randint(20, 120)))
                for j in range(k)
            ]
            f.write(
                json.dumps(
                    {
                        "id": f"sdg-{i}",
                        "prompt": f"Task {i}: " + " ".join(rng.choice(words) for _ in range(30)),
                        "candidates": cands,
                    }
                )
                + "\n"
            )


def run_cli(args: list[str]) -> tuple[int, float, int]:
    """Run the CLI; return (exit status, wall seconds, peak RSS in KiB of that child)."""
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "genrm_rank.cli", *args])
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, time.monotonic() - started, usage.ru_maxrss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--candidates", type=int, default=4)
    parser.add_argument("--strategy", default="knockout")
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--judge", choices=("serve-sim", "simulated"), default="serve-sim")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp:
        for n in args.rows:
            data = Path(tmp) / f"in{n}.jsonl"
            write_rows(data, n, args.candidates)
            out = Path(tmp) / f"out{n}.jsonl"
            summary_path = Path(tmp) / f"s{n}.json"
            common = [
                "select",
                str(data),
                "-o",
                str(out),
                "--strategy",
                args.strategy,
                "--concurrency",
                str(args.concurrency),
                "--quiet",
                "--summary-json",
                str(summary_path),
            ]
            if args.judge == "serve-sim":
                with SimServerProcess(["--latency-mean", "0", "--capacity", "4096"]) as server:
                    status, wall, rss = run_cli(
                        [*common, "--endpoint", server.urls[0], "--model", "sim-genrm"]
                    )
                    server_cpu = server.cpu_seconds()
            else:
                status, wall, rss = run_cli([*common, "--judge", "simulated"])
                server_cpu = 0.0
            summary = json.loads(summary_path.read_text())
            result = {
                "rows": n,
                "status": status,
                "wall_s": round(wall, 1),
                "rows_per_s": round(n / wall, 1),
                "judge_calls": summary["judge_calls"],
                "calls_per_s": round(summary["judge_calls"] / wall, 1),
                "peak_rss_mib": round(rss / 1024, 1),
                "server_cpu_s": round(server_cpu, 1),
                "input_mib": round(data.stat().st_size / 2**20, 1),
                "output_mib": round(out.stat().st_size / 2**20, 1),
            }
            results.append(result)
            print(json.dumps(result), flush=True)
            out.unlink()
            data.unlink()
    print(
        f"\njudge: {args.judge}; {args.candidates} candidates/row, {args.strategy}, both orders, "
        f"concurrency {args.concurrency}"
    )
    print("| rows | wall s | rows/s | judge calls/s | peak RSS MiB | input MiB |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['rows']:,} | {r['wall_s']} | {r['rows_per_s']} | {r['calls_per_s']} | "
            f"{r['peak_rss_mib']} | {r['input_mib']} |"
        )
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
