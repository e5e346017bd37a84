"""End-to-end serving throughput: N=8 knockout, both orders, many prompts, against serve-sim.

Starts ``--replicas`` simulated vLLM replicas (``--capacity`` sequences each, lognormal latency
of mean ``--latency-mean`` s) in a separate process, so ``time.process_time`` counts only this
client. Then runs a knockout over 8 candidates with both orders of every match judged (14
comparisons a prompt, three dependent rounds) for ``--prompts`` prompts, and prints:

- achieved comparisons/s against the capacity bound ``replicas * capacity / latency_mean``
  (prefix-cache hits are not made faster here, so the bound is exact), and the servers'
  measured utilisation;
- client CPU per comparison (all included: driver, judge, HTTP, parsing);
- prefix-cache hit rate with affinity routing vs random routing;
- a naive client (prompts one after another, one ``asyncio.gather`` per round) for the ratio.

Drivers: ``--driver orchestrator`` uses ``genrm_rank.orchestrator.Orchestrator`` with
``genrm_rank.strategies.knockout.Knockout``; ``--driver builtin`` a small self-contained
knockout driver (one global window of in-flight requests shared by all prompts, each round's
two orders judged before the next round). ``auto`` (default) uses the orchestrator if it imports.

    .venv/bin/python benchmarks/bench_serving.py                 # 1,000 prompts
    .venv/bin/python benchmarks/bench_serving.py --prompts 200   # quick
    .venv/bin/python benchmarks/bench_serving.py --strategies knockout adaptive adaptive_p50 \
        --no-baselines                                           # strategies side by side

``--strategies`` runs the orchestrator once per strategy (``adaptive``: ``swap="auto"``, its
default budget and batch; ``adaptive_p50``: stop at P(best) 0.5, one call a prompt in flight)
against the same servers, and prints each one's comparisons/s and prompts/s relative to the first.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from _sim_procs import SimServerProcess

from genrm_rank.judges.base import PairRequest
from genrm_rank.judges.openai_http import OpenAIJudge
from genrm_rank.judges.settings import Limits, Routing
from genrm_rank.verdict import Verdict

MODEL = "sim-genrm"
N_CANDIDATES = 8


def make_prompts(n: int, seed: int = 0) -> list[tuple[str, str, list[str]]]:
    prompts = []
    for i in range(n):
        conversation = f"[{seed}:{i}] Write a short, correct answer to question number {i}. " * 6
        candidates = [
            f"Candidate {j} for question {i}: " + "some answer text. " * (10 + j)
            for j in range(N_CANDIDATES)
        ]
        prompts.append((f"p{seed}-{i}", conversation, candidates))
    return prompts


def _preference(verdict: Verdict) -> float | None:
    return verdict.preference if verdict.ok else None


async def knockout_builtin(
    judge: OpenAIJudge,
    pid: str,
    conversation: str,
    candidates: list[str],
    call: Callable[[PairRequest], Awaitable[Verdict]],
) -> int:
    """Knockout with both orders of every match; returns the champion."""
    alive = list(range(len(candidates)))
    while len(alive) > 1:
        pairs = [(alive[k], alive[k + 1]) for k in range(0, len(alive) - 1, 2)]
        requests = []
        for a, b in pairs:
            forward = PairRequest(
                conversation, candidates[a], candidates[b], prompt_id=pid, index_1=a, index_2=b
            )
            requests += [forward, forward.swapped()]
        verdicts = await asyncio.gather(*(call(r) for r in requests))
        winners = []
        for m, (a, b) in enumerate(pairs):
            ab, ba = _preference(verdicts[2 * m]), _preference(verdicts[2 * m + 1])
            scores = [p for p in (ab, None if ba is None else 1.0 - ba) if p is not None]
            strength = sum(scores) / len(scores) if scores else 0.5
            winners.append(a if strength >= 0.5 else b)
        alive = winners + alive[2 * len(pairs) :]
    return alive[0]


async def run_builtin(
    judge: OpenAIJudge, prompts: list[tuple[str, str, list[str]]], window: int
) -> None:
    semaphore = asyncio.Semaphore(window)

    async def call(request: PairRequest) -> Verdict:
        async with semaphore:
            return await judge.judge(request)

    await asyncio.gather(
        *(knockout_builtin(judge, pid, conv, cands, call) for pid, conv, cands in prompts)
    )


STRATEGIES: dict[str, tuple[str, dict[str, Any]]] = {
    "knockout": ("knockout", {"swap": "both"}),
    "adaptive": ("adaptive", {"swap": "auto"}),
    "adaptive_p50": ("adaptive", {"swap": "auto", "delta": 0.5, "batch": 1}),
    "adaptive_p70": ("adaptive", {"swap": "auto", "delta": 0.3}),
}
"""``--strategies`` choices: the library strategy and its options (as in
``benchmarks/quality.py``: ``adaptive_p50`` stops at P(best) 0.5 with one call of a prompt in
flight, ``adaptive_p70`` at P(best) 0.7 with the default batch)."""


async def run_orchestrator(
    judge: OpenAIJudge,
    prompts: list[tuple[str, str, list[str]]],
    window: int,
    admission: str = "streaming",
    strategy: str = "knockout",
    calls: list[int] | None = None,
) -> None:
    from genrm_rank.orchestrator import Orchestrator, PromptJob
    from genrm_rank.strategies import make_strategy

    name, options = STRATEGIES[strategy]
    jobs = (
        PromptJob(conv, cands, make_strategy(name, len(cands), seed=i, **options), prompt_id=pid)
        for i, (pid, conv, cands) in enumerate(prompts)
    )
    orchestrator = Orchestrator(judge, max_in_flight=window, retries=0, admission=admission)
    done = 0
    async for result in orchestrator.run(jobs):
        done += 1
        if calls is not None:
            calls.append(result.calls)
    if done != len(prompts):
        raise RuntimeError(f"orchestrator finished {done} of {len(prompts)} prompts")


async def run_naive(
    judge: OpenAIJudge, prompts: list[tuple[str, str, list[str]]], window: int
) -> None:
    async def call(request: PairRequest) -> Verdict:
        return await judge.judge(request)

    for pid, conv, cands in prompts:  # one prompt at a time, one gather per round
        await knockout_builtin(judge, pid, conv, cands, call)


@dataclass
class Result:
    name: str
    prompts: int
    comparisons: int
    wall: float
    cpu: float
    hits: float
    queries: float
    service: float
    server_cpu: float

    @property
    def throughput(self) -> float:
        return self.comparisons / self.wall


async def measure(
    name: str,
    servers: SimServerProcess,
    runner: Callable[..., Awaitable[None]],
    prompts: list[Any],
    window: int,
    routing: str,
    per_endpoint: int,
    spill: tuple[float, float] = (2.0, 10.0),
) -> Result:
    before = [servers.metric(m) for m in _METRICS]
    server_cpu = servers.cpu_seconds()
    async with OpenAIJudge(
        servers.urls,
        model=MODEL,
        api_key_env=None,
        routing=Routing(
            routing,  # type: ignore[arg-type]
            spill_factor=spill[0],
            spill_offset=spill[1],
        ),
        limits=Limits(max_in_flight_per_endpoint=per_endpoint),
        seed=0,
    ) as judge:
        cpu, wall = time.process_time(), time.perf_counter()
        await runner(judge, prompts, window)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        stats = judge.stats
    server_cpu = servers.cpu_seconds() - server_cpu
    after = [servers.metric(m) for m in _METRICS]
    completed, queries, hits, service = (a - b for a, b in zip(after, before, strict=True))
    failures = sum(s.failures for s in stats.values())
    if failures:
        print(f"  ({name}: {failures} failed requests)")
    return Result(name, len(prompts), int(completed), wall, cpu, hits, queries, service, server_cpu)


_METRICS = (
    "vllm:request_success_total",
    "genrm_sim:prefix_cache_request_queries_total",
    "genrm_sim:prefix_cache_request_hits_total",
    "genrm_sim:service_seconds_total",
)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--prompts", type=int, default=1000)
    parser.add_argument(
        "--random-prompts",
        type=int,
        default=None,
        help="prompts for the random-routing run (default: --prompts / 4)",
    )
    parser.add_argument("--naive-prompts", type=int, default=20)
    parser.add_argument("--replicas", type=int, default=4)
    parser.add_argument("--capacity", type=int, default=64)
    parser.add_argument("--latency-mean", type=float, default=0.3)
    parser.add_argument(
        "--window", type=int, default=512, help="requests in flight across all prompts"
    )
    parser.add_argument("--driver", choices=("auto", "orchestrator", "builtin"), default="auto")
    parser.add_argument(
        "--admission",
        choices=("streaming", "eager"),
        default="streaming",
        help="the orchestrator's admission policy (see genrm_rank.orchestrator.Orchestrator)",
    )
    parser.add_argument(
        "--prefix-hit-factor",
        type=float,
        default=1.0,
        help="latency multiplier of a prefix-cache hit on the servers (1.0: hits are not faster, "
        "so the capacity bound is exact; 0.5 models vLLM skipping the shared prefill)",
    )
    parser.add_argument(
        "--spill",
        type=float,
        nargs=2,
        default=(2.0, 10.0),
        metavar=("FACTOR", "OFFSET"),
        help="affinity spill rule: leave the preferred replica when its load > FACTOR*least+OFFSET",
    )
    parser.add_argument(
        "--strategies",
        nargs="+",
        choices=sorted(STRATEGIES),
        default=["knockout"],
        help="one affinity run per strategy, side by side in this process and these servers "
        "(orchestrator driver only); throughput is reported relative to the first",
    )
    parser.add_argument(
        "--no-baselines",
        action="store_true",
        help="skip the random-routing and naive runs",
    )
    args = parser.parse_args()
    driver = args.driver
    if driver == "auto":
        try:
            import genrm_rank.orchestrator
            import genrm_rank.strategies.knockout  # noqa: F401

            driver = "orchestrator"
        except ImportError:
            driver = "builtin"
    runner: Callable[..., Awaitable[None]] = (
        functools.partial(run_orchestrator, admission=args.admission)
        if driver == "orchestrator"
        else run_builtin
    )
    if driver == "orchestrator":
        driver = f"orchestrator ({args.admission})"
    server_args = [
        "--replicas",
        str(args.replicas),
        "--capacity",
        str(args.capacity),
        "--latency-mean",
        str(args.latency_mean),
        "--prefix-hit-latency-factor",
        str(args.prefix_hit_factor),
    ]
    slots = args.replicas * args.capacity
    bound = slots / args.latency_mean
    per_endpoint = args.window  # the window bounds the total; the spill rule balances replicas
    random_prompts = args.random_prompts or max(1, args.prompts // 4)
    calls: dict[str, list[int]] = {}
    with SimServerProcess(server_args) as servers:
        results = []
        for strategy in args.strategies if driver.startswith("orchestrator") else ["knockout"]:
            calls[strategy] = []
            run = (
                functools.partial(
                    run_orchestrator,
                    admission=args.admission,
                    strategy=strategy,
                    calls=calls[strategy],
                )
                if driver.startswith("orchestrator")
                else runner
            )
            results.append(
                asyncio.run(
                    measure(
                        f"{strategy}, affinity",
                        servers,
                        run,
                        make_prompts(args.prompts, 1),
                        args.window,
                        "affinity",
                        per_endpoint,
                        tuple(args.spill),
                    )
                )
            )
        if not args.no_baselines:
            results.append(
                asyncio.run(
                    measure(
                        f"{driver}, random routing",
                        servers,
                        runner,
                        make_prompts(random_prompts, 2),
                        args.window,
                        "random",
                        per_endpoint,
                    )
                )
            )
            results.append(
                asyncio.run(
                    measure(
                        "naive (sequential prompts)",
                        servers,
                        run_naive,
                        make_prompts(args.naive_prompts, 3),
                        args.window,
                        "affinity",
                        per_endpoint,
                        tuple(args.spill),
                    )
                )
            )
    print(
        f"\n{args.replicas} replicas x capacity {args.capacity}, lognormal latency mean "
        f"{args.latency_mean:g} s -> bound {bound:.0f} comparisons/s; window {args.window} in "
        f"flight; N={N_CANDIDATES}; driver {driver}\n"
    )
    header = (
        f"{'run':<28} {'prompts':>7} {'comparisons':>11} {'wall s':>7} {'cmp/s':>7} {'/bound':>7} "
        f"{'util':>6} {'CPU ms/cmp':>10} {'srv CPU':>7} {'prefix hit':>10}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        util = r.service / (slots * r.wall)
        hit = r.hits / r.queries if r.queries else 0.0
        print(
            f"{r.name:<28} {r.prompts:>7} {r.comparisons:>11} {r.wall:>7.1f} {r.throughput:>7.0f} "
            f"{r.throughput / bound:>7.3f} {util:>6.3f} {r.cpu / r.comparisons * 1e3:>10.3f} "
            f"{r.server_cpu / r.comparisons * 1e3:>7.3f} {hit:>10.3f}"
        )
    for strategy, made in calls.items():
        if made:
            print(f"{strategy}: {sum(made) / len(made):.2f} calls a prompt")
    first = results[0]
    for r in results[1 : len(calls)]:
        ratio = r.throughput / first.throughput
        prompts = (r.prompts / r.wall) / (first.prompts / first.wall)
        print(f"{r.name} / {first.name}: {ratio:.3f}x comparisons/s, {prompts:.3f}x prompts/s")
    if not args.no_baselines:
        print(
            f"\nglobal window vs naive: {first.throughput / results[-1].throughput:.1f}x throughput"
        )


if __name__ == "__main__":
    main()
