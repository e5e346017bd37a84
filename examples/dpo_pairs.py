"""Chosen/rejected pairs for DPO from many prompts, with the streaming library API.

Every prompt is ranked (round-robin, both orders) through one shared window of requests
(``arank_many``); :func:`genrm_rank.sdg.preference_pairs` turns each ranking into its best and
worst candidate, kept when the judge separates them by at least ``--min-margin`` (Bradley-Terry
log-odds): the same policy ``genrm-rank pairs`` applies. Output rows follow TRL's preference
format: ``{"prompt", "chosen", "rejected"}``. For large files use ``sdg_best_of_n.py``'s
pipeline or the CLI, which add resume, the verdict cache and the errors file:
``genrm-rank pairs IN.jsonl -o pairs.jsonl --endpoint URL``.

    python examples/dpo_pairs.py -o /tmp/dpo.jsonl
    python examples/dpo_pairs.py --endpoint http://127.0.0.1:8000/v1 --model <served-name> \\
        --input my.jsonl -o dpo.jsonl
"""

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

from _sim import endpoint, parser

from genrm_rank import OpenAIJudge, PromptInput, arank_many
from genrm_rank.cli import bundled_example
from genrm_rank.sdg import preference_pairs


def prompts(path: Path, limit: int) -> Iterator[PromptInput]:
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f):
            if i >= limit:
                return
            row = json.loads(line)
            texts = [c["text"] if isinstance(c, dict) else c for c in row["candidates"]]
            yield PromptInput(row["prompt"], texts, prompt_id=str(row["id"]), key=row)


async def main(
    url: str, model: str, source: Path, out: Path, limit: int, min_margin: float
) -> None:
    kept = 0
    async with OpenAIJudge(url, model=model) as judge:
        with open(out, "w", encoding="utf-8") as f:
            async for result in arank_many(prompts(source, limit), judge=judge, seed=0):
                if not result.ok or result.ranking is None:
                    print(f"prompt {result.prompt.prompt_id}: no ranking ({result.error})")
                    continue
                for pair in preference_pairs(result.ranking, min_margin=min_margin):
                    row = {
                        "prompt": result.prompt.conversation,
                        "chosen": result.prompt.candidates[pair.chosen],
                        "rejected": result.prompt.candidates[pair.rejected],
                    }
                    f.write(json.dumps(row, ensure_ascii=False) + "\n")
                    kept += 1
    print(f"{kept} pairs of {limit} prompts written to {out}")


if __name__ == "__main__":
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--input", type=Path, default=bundled_example())
    p.add_argument("-o", "--output", type=Path, default=Path("dpo_pairs.jsonl"))
    p.add_argument("--limit", type=int, default=10, help="prompts to use (default: %(default)s)")
    p.add_argument("--min-margin", type=float, default=1.0)
    args = p.parse_args()
    with endpoint(args.endpoint) as url:
        asyncio.run(main(url, args.model, args.input, args.output, args.limit, args.min_margin))
