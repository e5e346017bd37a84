"""Verdict cache writes: one committed ``put`` a verdict against ``put_many`` batches.

:class:`~genrm_rank.cache.VerdictCache` commits every ``put`` on its own (WAL mode,
``synchronous=NORMAL``), so a verdict survives a ``kill -9`` once ``put`` returns. This measures
what batching the commits would buy: the same verdicts written one transaction each, and in
transactions of ``--batch`` verdicts, for a small verdict and one with a long reasoning::

    .venv/bin/python benchmarks/bench_cache.py --verdicts 2000 --batch 64 --repeats 5

Each repeat writes into a fresh file in a temporary folder on the local disk; the rows are the
median over the repeats and the range (smallest to largest).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from genrm_rank.cache import VerdictCache
from genrm_rank.verdict import Usage, Verdict

SIZES = {"small": 0, "14 KB reasoning": 14_000}
"""Verdict kinds: the characters of reasoning each carries (the answer JSON comes on top)."""


def _verdict(reasoning_chars: int, i: int) -> Verdict:
    raw = f'{{"score_1": 4, "score_2": 3, "ranking": 2, "n": {i}}}'
    reasoning = ("The first response explains the cause correctly. " * 400)[:reasoning_chars]
    return Verdict(
        score_1=4.0,
        score_2=3.0,
        ranking=2.0,
        raw=raw,
        reasoning=reasoning or None,
        finish_reason="stop",
        usage=Usage(prompt_tokens=900, completion_tokens=1 + reasoning_chars // 4),
        attempts=1,
    )


def _write(folder: Path, verdicts: list[Verdict], batch: int) -> float:
    """Seconds to store ``verdicts`` in a fresh cache, ``batch`` a transaction (1: ``put``)."""
    cache = VerdictCache(folder / f"cache-{time.perf_counter_ns()}.db")
    items = [(f"{i:064x}", v) for i, v in enumerate(verdicts)]
    try:
        started = time.perf_counter()
        if batch == 1:
            for key, verdict in items:
                cache.put(key, verdict)
        else:
            for start in range(0, len(items), batch):
                cache.put_many(items[start : start + batch])
        return time.perf_counter() - started
    finally:
        cache.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--verdicts", type=int, default=2000, help="verdicts written a run")
    parser.add_argument("--batch", type=int, default=64, help="verdicts a put_many transaction")
    parser.add_argument("--repeats", type=int, default=5, help="runs of each configuration")
    args = parser.parse_args()
    print(f"{args.verdicts} verdicts, median of {args.repeats} runs (range in brackets)\n")
    print("| verdict | put (one commit each), verdicts/s | put_many, verdicts/s | batching gain |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name, chars in SIZES.items():
            verdicts = [_verdict(chars, i) for i in range(args.verdicts)]
            single: list[float] = []
            batched: list[float] = []
            for _ in range(args.repeats):  # interleaved, so that load from elsewhere hits both
                single.append(args.verdicts / _write(folder, verdicts, 1))
                batched.append(args.verdicts / _write(folder, verdicts, args.batch))
            gains = [b / s for s, b in zip(single, batched, strict=True)]
            print(
                f"| {name} | {statistics.median(single):,.0f} "
                f"[{min(single):,.0f}-{max(single):,.0f}] "
                f"| {statistics.median(batched):,.0f} "
                f"[{min(batched):,.0f}-{max(batched):,.0f}] "
                f"| {statistics.median(gains):.2f}x [{min(gains):.2f}-{max(gains):.2f}] |"
            )


if __name__ == "__main__":
    main()
