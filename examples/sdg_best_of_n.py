"""Filter a synthetic-data file in Python: keep the best of N responses per prompt, drop
prompts where nothing is good, and write SFT rows.

It uses the library's SDG door (:mod:`genrm_rank.sdg`), the same code ``genrm-rank select``
runs: rows streamed through the one runner, written in input order to files that survive a
kill, a verdict cache so no verdict is paid twice, and an errors file for bad rows. Rerunning it
after a crash continues where it stopped. The same as two shell commands::

    genrm-rank select IN.jsonl -o best.jsonl --endpoint URL --min-score 3.5 \\
        --rejected dropped.jsonl --cache verdicts.db --resume
    # then keep rows with "selected" != null

    python examples/sdg_best_of_n.py --workdir /tmp/sdg          # bundled Vicuna-80, serve-sim
    python examples/sdg_best_of_n.py --endpoint http://127.0.0.1:8000/v1 --model <name> \\
        --input sdg.jsonl --workdir out/
"""

import asyncio
import json
from pathlib import Path

from _sim import endpoint, parser

from genrm_rank import CachedJudge, OpenAIJudge, RankSpec, VerdictCache
from genrm_rank.cli import bundled_example
from genrm_rank.sdg import SelectThresholds, prepare_output, process_file, select_rows


async def select(url: str, model: str, source: Path, workdir: Path, min_score: float) -> int:
    files = prepare_output(
        {
            "out": workdir / "best.jsonl",
            "errors": workdir / "best.errors.jsonl",
            "rejected": workdir / "dropped.jsonl",
        },
        resume=True,  # a first run finds nothing to resume; a rerun skips what is written
    )
    with VerdictCache(workdir / "verdicts.db") as cache:
        http = OpenAIJudge(url, model=model)
        judge = CachedJudge(http, cache, namespace={"model": model, "judge": "openai_http"})
        async with judge:
            outcome = await process_file(
                source,
                judge=judge,
                spec=RankSpec(strategy="knockout", seed=0),
                formatter=select_rows(SelectThresholds(min_score=min_score), rejected_sink=True),
                sinks=files.sinks,
                skip_keys=files.skip_keys,
                skip_lines=files.skip_lines,
            )
    counts = outcome.counters
    print(
        f"{counts.ok} kept, {counts.rejected} dropped, {counts.failed} failed, "
        f"{counts.skipped} rows skipped (resume); {outcome.stats.calls} judge calls paid, "
        f"{outcome.stats.cached_calls} verdicts from the cache"
    )
    return 0 if outcome.status == "complete" else 3


def write_sft(workdir: Path) -> int:
    n = 0
    with (
        open(workdir / "best.jsonl", encoding="utf-8") as src,
        open(workdir / "sft.jsonl", "w", encoding="utf-8") as dst,
    ):
        for line in src:
            row = json.loads(line)
            prompt = (
                row.get("messages")
                or row.get("conversation")
                or [{"role": "user", "content": row["prompt"]}]
            )
            messages = [*prompt, {"role": "assistant", "content": row["selected"]}]
            dst.write(
                json.dumps({"id": row["id"], "messages": messages}, ensure_ascii=False) + "\n"
            )
            n += 1
    return n


if __name__ == "__main__":
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--input", type=Path, default=bundled_example())
    p.add_argument("--workdir", type=Path, default=Path("sdg_out"))
    p.add_argument("--min-score", type=float, default=3.5)
    args = p.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    with endpoint(args.endpoint) as url:
        status = asyncio.run(select(url, args.model, args.input, args.workdir, args.min_score))
    n = write_sft(args.workdir)
    print(f"{n} SFT rows in {args.workdir / 'sft.jsonl'}; dropped prompts in dropped.jsonl")
    raise SystemExit(status)
