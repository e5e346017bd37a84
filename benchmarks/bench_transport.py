"""Client CPU per request: the ``openai`` client vs raw aiohttp vs the full OpenAIJudge.

Runs serve-sim in zero-latency mode in a separate process (so only the client's CPU is
counted, by ``time.process_time``), then sends the same GenRM chat request ``--requests`` times
at ``--concurrency`` in flight with each transport::

    .venv/bin/python benchmarks/bench_transport.py --requests 3000 --concurrency 256

Rows: ``openai`` (AsyncOpenAI.chat.completions.create, extra_body), ``aiohttp`` (one pooled
session, POST + json.loads), ``OpenAIJudge`` (everything a comparison costs: message
building, routing, HTTP, parse_verdict).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from _sim_procs import SimServerProcess

from genrm_rank.judges.base import PairRequest
from genrm_rank.judges.openai_http import OpenAIJudge
from genrm_rank.judges.settings import Limits

MODEL = "sim-genrm"
REQUEST = PairRequest(
    "Explain why the sky is blue in two sentences." * 4,
    "Rayleigh scattering: shorter wavelengths scatter more. " * 8,
    "Because it reflects the ocean. " * 8,
    prompt_id="p0",
)
SAMPLING = {"temperature": 1.0, "top_p": 0.95, "max_tokens": 24576}


async def _drive(
    call: Callable[[int], Awaitable[Any]], n: int, concurrency: int
) -> tuple[float, float]:
    semaphore = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with semaphore:
            await call(i)

    await asyncio.gather(*(one(i) for i in range(min(n, concurrency))))  # warm the pool
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    return time.process_time() - cpu, time.perf_counter() - wall


async def bench_openai(url: str, n: int, concurrency: int) -> tuple[float, float]:
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=url, api_key="unused", max_retries=0, timeout=600)
    messages: Any = REQUEST.messages()

    async def call(i: int) -> None:
        response = await client.chat.completions.create(
            model=MODEL,
            messages=messages,
            temperature=1.0,
            top_p=0.95,
            max_tokens=24576,
            extra_body={"top_k": 20},
        )
        message = response.choices[0].message
        _ = (message.content, getattr(message, "reasoning", None), response.usage)

    try:
        return await _drive(call, n, concurrency)
    finally:
        await client.close()


async def bench_aiohttp(url: str, n: int, concurrency: int) -> tuple[float, float]:
    connector = aiohttp.TCPConnector(limit=concurrency + 1)
    async with aiohttp.ClientSession(connector=connector) as session:
        headers = {"Content-Type": "application/json", "Authorization": "Bearer unused"}

        async def call(i: int) -> None:
            body = {"model": MODEL, "messages": REQUEST.messages(), **SAMPLING, "top_k": 20}
            async with session.post(
                url + "/chat/completions", data=json.dumps(body).encode(), headers=headers
            ) as r:
                data = json.loads(await r.read())
            _ = data["choices"][0]["message"]["content"]

        return await _drive(call, n, concurrency)


async def bench_judge(url: str, n: int, concurrency: int) -> tuple[float, float]:
    async with OpenAIJudge(
        url,
        model=MODEL,
        api_key="unused",
        limits=Limits(max_in_flight_per_endpoint=concurrency),
        extra_body={"top_k": 20},
    ) as judge:

        async def call(i: int) -> None:
            verdict = await judge.judge(REQUEST)
            if not verdict.ok:
                raise RuntimeError(verdict)

        return await _drive(call, n, concurrency)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument(
        "--repeats", type=int, default=2, help="runs per transport; the best is shown"
    )
    args = parser.parse_args()
    server_args = ["--latency-mean", "0", "--capacity", "4096", "--prefix-cache-size", "0"]
    rows = []
    with SimServerProcess(server_args) as servers:
        url = servers.urls[0]
        for name, bench in (
            ("openai", bench_openai),
            ("aiohttp", bench_aiohttp),
            ("OpenAIJudge", bench_judge),
        ):
            best = min(
                (
                    asyncio.run(bench(url, args.requests, args.concurrency))
                    for _ in range(args.repeats)
                ),
                key=lambda r: r[0],
            )
            rows.append((name, best))
    print(
        f"\n{args.requests} requests at {args.concurrency} in flight, "
        "serve-sim zero-latency (separate process)\n"
    )
    print(f"{'transport':<12} {'client CPU ms/request':>22} {'wall req/s':>11}")
    for name, (cpu, wall) in rows:
        print(f"{name:<12} {cpu / args.requests * 1e3:>22.3f} {args.requests / wall:>11.0f}")


if __name__ == "__main__":
    main()
