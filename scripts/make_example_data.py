"""Build ``genrm_rank/data/vicuna80.jsonl`` from the QLoRA Vicuna-80 record.

Source: artidoro/qlora @ 7f4e95a6 (MIT licence), as copied under ``../shared/data/qlora/``:
``vicuna_questions.jsonl`` (80 questions) and ``vicuna_generations/`` (8 systems' answers).

The two kinds of generation file differ:

- ``{7b,13b,30b,65b}-guanaco-vicuna-generations-topp0.9-temp0.7.jsonl`` hold the question
  fields plus ``prompt`` (the Guanaco chat template), ``generation`` (the raw sampled text, which
  sometimes runs on into an invented ``### Human:`` turn) and ``generation_truncated`` (cut
  before it). We take ``generation_truncated``. The 30b file is the model the pairwise record
  calls ``guanaco-33b``.
- ``answer_*.jsonl`` (FastChat format) hold ``answer_id``, ``model_id``, ``question_id`` and the
  answer in ``text`` (``answer_gpt4.jsonl`` has no final newline and no ``metadata``).

Candidate ids are the system names of ``vicuna_gpt4_pairwise.jsonl`` so that the bundled file
can be joined with that record. Run from the repository root::

    python scripts/make_example_data.py [--source ../shared/data/qlora] \\
        [--out genrm_rank/data/vicuna80.jsonl]

It also writes ``examples/data/vicuna5_custom_layout.jsonl``: the first five questions in another
layout (``uid``, a ``messages`` conversation, ``responses: [{"model", "response"}]``), to show
the ``--id-field``/``--prompt-field``/``--candidates-field`` options.

And ``genrm_rank/data/vicuna80_gpt4_strengths.json``: for each question, GPT-4's view of the 8
answers as Bradley-Terry strengths (log-odds, centred), fitted on its 56 verdicts on that
question in ``vicuna_gpt4_pairwise.jsonl`` (A = 1, B = 0, tie = 0.5, errors left out) with a
jointly fitted position term and the per-prompt prior of ``genrm_rank.results.DEFAULT_ALPHA``.
``genrm-rank demo`` gives these to its simulated GenRM as the answers' latent qualities, so the
demo's winners follow a real judge's view of real answers.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

SYSTEMS = (
    # (candidate id, file, text field)
    ("guanaco-7b", "7b-guanaco-vicuna-generations-topp0.9-temp0.7.jsonl", "generation_truncated"),
    ("guanaco-13b", "13b-guanaco-vicuna-generations-topp0.9-temp0.7.jsonl", "generation_truncated"),
    ("guanaco-33b", "30b-guanaco-vicuna-generations-topp0.9-temp0.7.jsonl", "generation_truncated"),
    ("guanaco-65b", "65b-guanaco-vicuna-generations-topp0.9-temp0.7.jsonl", "generation_truncated"),
    ("bard", "answer_bard.jsonl", "text"),
    ("gpt-3.5-turbo", "answer_gpt35.jsonl", "text"),
    ("gpt-4", "answer_gpt4.jsonl", "text"),
    ("vicuna-13b", "answer_vicuna-13b.jsonl", "text"),
)


def read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def build(source: Path) -> list[dict]:
    questions = read_jsonl(source / "vicuna_questions.jsonl")
    answers: dict[str, dict[int, str]] = {}
    for system, name, text_field in SYSTEMS:
        by_question: dict[int, str] = {}
        for row in read_jsonl(source / "vicuna_generations" / name):
            qid = int(row["question_id"])
            if qid in by_question:
                raise ValueError(f"{name}: question {qid} answered twice")
            text = row[text_field]
            if not isinstance(text, str) or not text.strip():
                raise ValueError(f"{name}: question {qid} has no {text_field!r} text")
            by_question[qid] = text.strip()
        answers[system] = by_question
    rows = []
    for q in questions:
        qid = int(q["question_id"])
        missing = [s for s, _, _ in SYSTEMS if qid not in answers[s]]
        if missing:
            raise ValueError(f"question {qid} has no answer from {missing}")
        rows.append(
            {
                "id": qid,
                "category": q["category"],
                "prompt": q["text"],
                "candidates": [{"id": s, "text": answers[s][qid]} for s, _, _ in SYSTEMS],
            }
        )
    return rows


def gpt4_strengths(source: Path) -> dict[str, dict[str, float]]:
    """Per-question Bradley-Terry strengths of the 8 systems from GPT-4's pairwise verdicts."""
    from genrm_rank.aggregators import Comparisons, bradley_terry
    from genrm_rank.spec import DEFAULT_ALPHA

    systems = [s for s, _, _ in SYSTEMS]
    index = {s: i for i, s in enumerate(systems)}
    games: dict[str, list[tuple[int, int, float]]] = {}
    outcome = {"A": 1.0, "B": 0.0, "tie": 0.5}
    for row in read_jsonl(source / "vicuna_gpt4_pairwise.jsonl"):
        if row["winner"] in outcome:
            games.setdefault(str(row["qid"]), []).append(
                (index[row["model_a"]], index[row["model_b"]], outcome[row["winner"]])
            )
    strengths = {}
    for qid, rows in sorted(games.items(), key=lambda item: int(item[0])):
        first, second, result = zip(*rows, strict=True)
        fit = bradley_terry(
            Comparisons.from_arrays(len(systems), first, second, result),
            alpha=DEFAULT_ALPHA,
            position_bias=True,
        )
        strengths[qid] = {s: round(float(fit.params[index[s]]), 4) for s in systems}
    return strengths


def main() -> None:
    root = Path(__file__).resolve().parents[1]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=root.parent / "shared" / "data" / "qlora")
    parser.add_argument("--out", type=Path, default=root / "genrm_rank" / "data" / "vicuna80.jsonl")
    args = parser.parse_args()
    rows = build(args.source)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", encoding="utf-8", newline="\n") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"wrote {len(rows)} rows x {len(SYSTEMS)} candidates to {args.out}")
    custom = root / "examples" / "data" / "vicuna5_custom_layout.jsonl"
    custom.parent.mkdir(parents=True, exist_ok=True)
    with open(custom, "w", encoding="utf-8", newline="\n") as handle:
        for row in rows[:5]:
            handle.write(
                json.dumps(
                    {
                        "uid": f"vicuna-{row['id']}",
                        "messages": [{"role": "user", "content": row["prompt"]}],
                        "responses": [
                            {"model": c["id"], "response": c["text"]} for c in row["candidates"]
                        ],
                    },
                    ensure_ascii=False,
                )
                + "\n"
            )
    print(f"wrote 5 rows to {custom}")
    strengths_path = args.out.parent / "vicuna80_gpt4_strengths.json"
    strengths = gpt4_strengths(args.source)
    strengths_path.write_text(json.dumps(strengths, indent=1, sort_keys=True) + "\n")
    print(f"wrote GPT-4 per-question strengths ({len(strengths)} questions) to {strengths_path}")


if __name__ == "__main__":
    main()
