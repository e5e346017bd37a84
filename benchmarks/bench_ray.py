"""Ray Data: client throughput with 1 and 2 actors, against serve-sim that is not the limit.

Starts serve-sim in a separate process (``--replicas`` x ``--capacity`` sequences at
``--latency-mean`` seconds, so its capacity bound is far above what the clients can send),
a local Ray instance, and ranks the same generated rows with :func:`rank_dataset` once per
actor count (round robin with both orders: 12 comparisons a row of 4 candidates)::

    .venv/bin/python benchmarks/bench_ray.py --rows 2000 --actors 1 2

Prints, per actor count, the wall time of the whole ``rank_dataset`` run (actor start-up
included), comparisons per second, and the ratio to one actor. Needs the ``ray`` extra.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import time

from _sim_procs import SimServerProcess

from genrm_rank.integrations.ray import rank_dataset
from genrm_rank.judges.openai_http import OpenAIJudge
from genrm_rank.judges.settings import Limits
from genrm_rank.spec import RankSpec


def _rows(n: int) -> list[dict[str, object]]:
    return [
        {
            "id": f"r{i}",
            "prompt": f"Question {i}: explain the result in two sentences.",
            "candidates": [f"answer {i}.{k} " + "because " * ((i + k) % 7) for k in range(4)],
        }
        for i in range(n)
    ]


def _busy_cores_seconds() -> float:
    """CPU-seconds every core of the machine spent busy so far (Linux ``/proc/stat``)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields) - idle) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--actors", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--replicas", type=int, default=4)
    parser.add_argument("--capacity", type=int, default=512)
    parser.add_argument("--latency-mean", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=256, help="in flight per actor")
    parser.add_argument("--batch-size", type=int, default=250, help="rows per actor batch")
    parser.add_argument("--num-cpus", type=int, default=2, help="CPUs given to Ray")
    args = parser.parse_args()

    import ray

    server_args = [
        "--replicas", str(args.replicas), "--capacity", str(args.capacity),
        "--latency-mean", str(args.latency_mean),
    ]  # fmt: skip
    bound = args.replicas * args.capacity / args.latency_mean
    ray.init(num_cpus=args.num_cpus, include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    spec = RankSpec(strategy="round_robin", seed=0)
    results = []
    with SimServerProcess(server_args) as server:
        factory = functools.partial(
            OpenAIJudge, server.urls, model="sim-genrm", api_key_env=None,
            limits=Limits(max_in_flight_per_endpoint=args.concurrency),
        )  # fmt: skip
        for actors in args.actors:
            ds = ray.data.from_items(_rows(args.rows))
            started = time.perf_counter()
            server_cpu, machine_cpu = server.cpu_seconds(), _busy_cores_seconds()
            ranked = rank_dataset(
                ds,
                spec=spec,
                judge_factory=factory,
                actors=actors,
                batch_size=args.batch_size,
                concurrency=args.concurrency,
            )
            calls = sum(int(row["genrm_calls"]) for row in ranked.iter_rows())
            wall = time.perf_counter() - started
            server_cores = (server.cpu_seconds() - server_cpu) / wall
            busy = (_busy_cores_seconds() - machine_cpu) / wall
            results.append(
                {"actors": actors, "wall_s": wall, "calls": calls, "calls_s": calls / wall,
                 "server_cores": server_cores, "machine_busy_cores": busy}
            )  # fmt: skip
    ray.shutdown()
    one = results[0]["calls_s"]
    print(f"server capacity bound: {bound:,.0f} comparisons/s")
    print(f"machine: {os.cpu_count()} cores")
    print(
        "| actors | rows | comparisons | wall s | comparisons/s | / 1 actor | server cores "
        "| machine busy cores |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['actors']} | {args.rows:,} | {r['calls']:,} | {r['wall_s']:.1f} | "
            f"{r['calls_s']:,.0f} | {r['calls_s'] / one:.2f} | {r['server_cores']:.2f} | "
            f"{r['machine_busy_cores']:.2f} |"
        )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
