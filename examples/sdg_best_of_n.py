"""Filter a synthetic-data file: keep the best of N responses per prompt, drop prompts where
nothing is good, and write SFT rows.

It runs ``genrm-rank select`` (streaming, in input order, resumable, with a verdict cache and an
errors file) and turns its output into ``{"id", "messages": [..., {"role": "assistant", ...}]}``
rows. Rerunning it after a crash continues where it stopped and pays for no verdict twice.
The same as two shell commands::

    genrm-rank select IN.jsonl -o best.jsonl --endpoint URL --min-score 3.5 \\
        --rejected dropped.jsonl --cache verdicts.db --resume
    # then keep rows with "selected" != null

    python examples/sdg_best_of_n.py --workdir /tmp/sdg          # bundled Vicuna-80, serve-sim
    python examples/sdg_best_of_n.py --endpoint http://127.0.0.1:8000/v1 --model <name> \\
        --input sdg.jsonl --workdir out/
"""

import json
from pathlib import Path

from _sim import endpoint, parser

from genrm_rank.cli import bundled_example, main


def run(url: str, model: str, source: Path, workdir: Path, min_score: float) -> int:
    workdir.mkdir(parents=True, exist_ok=True)
    best = workdir / "best.jsonl"
    status = main(
        [
            "select",
            str(source),
            "-o",
            str(best),
            "--endpoint",
            url,
            "--model",
            model,
            "--strategy",
            "knockout",
            "--min-score",
            str(min_score),
            "--rejected",
            str(workdir / "dropped.jsonl"),
            "--cache",
            str(workdir / "verdicts.db"),
            "--resume",
            "--seed",
            "0",
        ]
    )
    if status not in (0, 1):  # 1: some rows were bad input (see best.errors.jsonl)
        return status
    sft = workdir / "sft.jsonl"
    n = 0
    with open(best, encoding="utf-8") as src, open(sft, "w", encoding="utf-8") as dst:
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
    print(f"{n} SFT rows in {sft}; dropped prompts in {workdir / 'dropped.jsonl'}")
    return status


if __name__ == "__main__":
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--input", type=Path, default=bundled_example())
    p.add_argument("--workdir", type=Path, default=Path("sdg_out"))
    p.add_argument("--min-score", type=float, default=3.5)
    args = p.parse_args()
    with endpoint(args.endpoint) as url:
        raise SystemExit(run(url, args.model, args.input, args.workdir, args.min_score))
