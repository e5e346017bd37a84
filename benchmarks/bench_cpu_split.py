"""Where a comparison's client CPU goes: loop thread, other threads, garbage collection, HTTP.

Two measurements against 4 serve-sim replicas held in another process (issue 22):

- ``cli``: ``genrm-rank select`` run in this process after its imports, with the CPU of the
  loop thread (``time.thread_time``), of the process (``time.process_time``; the rest is the
  aggregation worker) and of the garbage collector (``gc.callbacks``), each divided by the
  judge calls paid. ``--gc-threshold`` sets the youngest generation's threshold before the run
  (a run of this code raises it to ``genrm_rank.runner.GC_THRESHOLD`` unless it is higher).
- ``http``: the same number of requests through ``OpenAIJudge`` alone, 256 at a time, then
  through an ``Orchestrator`` with knockout schedulers: the HTTP judge's own cost a request.

Run from the repository root (``PYTHONPATH=DIR`` for another checkout's code)::

    .venv/bin/python benchmarks/bench_cpu_split.py cli --strategy knockout --prompts 150
    .venv/bin/python benchmarks/bench_cpu_split.py http --prompts 150
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _sim_procs import SimServerProcess
from bench_cli_scale import write_rows

SERVER = ["--replicas", "4", "--latency-mean", "0.2", "--capacity", "64", "--seed", "0"]


def cli(args: argparse.Namespace) -> None:
    from genrm_rank.cli import main

    spent = [0.0, 0.0]  # collector CPU seconds, start of the current collection

    def on_gc(phase: str, info: dict[str, object]) -> None:
        if phase == "start":
            spent[1] = time.thread_time()
        else:
            spent[0] += time.thread_time() - spent[1]

    with tempfile.TemporaryDirectory() as tmp, SimServerProcess(SERVER) as server:
        rows, summary = Path(tmp) / "rows.jsonl", Path(tmp) / "summary.json"
        write_rows(rows, args.prompts, 8)
        argv = [
            "select", str(rows), "-o", str(Path(tmp) / "out.jsonl"), "--overwrite", "-q",
            "--concurrency", "256", "--model", "sim-genrm", "--strategy", args.strategy,
            "--summary-json", str(summary),
            *[a for url in server.urls for a in ("--endpoint", url)],
        ]  # fmt: skip
        if args.strategy != "adaptive":
            argv += ["--swap", "both"]
        gc.set_threshold(args.gc_threshold, 10, 10)
        gc.callbacks.append(on_gc)
        process, loop = time.process_time(), time.thread_time()
        main(argv)
        process, loop = time.process_time() - process, time.thread_time() - loop
        calls = json.loads(summary.read_text())["judge_calls"]
    ms = {"process": process, "loop thread": loop, "other threads": process - loop}
    cells = ", ".join(f"{k} {1000 * v / calls:.3f}" for k, v in ms.items())
    collector = 1000 * spent[0] / calls
    print(f"{args.strategy}: {calls} calls; ms a comparison: {cells}, gc {collector:.3f}")


async def http(args: argparse.Namespace) -> None:
    from genrm_rank.judges import OpenAIJudge
    from genrm_rank.judges.base import PairRequest
    from genrm_rank.orchestrator import Orchestrator, PromptJob
    from genrm_rank.strategies import make_strategy

    n = 14 * args.prompts  # a both-orders knockout of 8 makes 14 calls a prompt

    async def alone(judge: OpenAIJudge) -> None:
        window = asyncio.Semaphore(256)

        async def one(i: int) -> None:
            request = PairRequest(
                conversation=f"prompt {i // 14}", response_1="a " * 50 + str(i),
                response_2="b " * 60, prompt_id=str(i // 14), index_1=0, index_2=1,
            )  # fmt: skip
            async with window:
                await judge.judge(request)

        await asyncio.gather(*(one(i) for i in range(n)))

    async def orchestrated(judge: OpenAIJudge) -> None:
        jobs = (
            PromptJob(
                conversation=f"prompt {p}",
                candidates=[f"c{i} " + "w " * 40 for i in range(8)],
                scheduler=make_strategy("knockout", 8, swap="both", seed=p),
                prompt_id=str(p),
            )
            for p in range(args.prompts)
        )
        async for _ in Orchestrator(judge, max_in_flight=256).run(jobs):
            continue

    with SimServerProcess(SERVER) as server:
        async with OpenAIJudge(server.urls, model="sim-genrm") as judge:
            for name, work in (
                ("OpenAIJudge alone", alone),
                ("through the orchestrator", orchestrated),
            ):
                await work(judge)  # warm: connections opened
                started = time.process_time()
                await work(judge)
                print(f"{name}: {1000 * (time.process_time() - started) / n:.3f} ms a request")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("cli", "http"))
    parser.add_argument("--strategy", default="knockout", choices=("knockout", "adaptive"))
    parser.add_argument("--prompts", type=int, default=150)
    parser.add_argument("--gc-threshold", type=int, default=700)
    args = parser.parse_args()
    if args.what == "cli":
        cli(args)
    else:
        asyncio.run(http(args))


if __name__ == "__main__":
    main()
