"""Copy the reference data that tests and benchmarks read into ``tests/data/``.

The source is the project's read-only ``shared/data/`` folder (beside the repository in the
development checkout). A user who clones the repository has no such folder, so the tests and
benchmarks read the copies this script writes, never the source. The copies keep only the files
and fields that something in the repository reads, as gzipped JSONL (written with ``mtime=0``,
so a rerun on the same source gives byte-identical files), plus ``expected_values.json``
verbatim: the published figures stay the test oracle.

Run from the repository root::

    python scripts/vendor_reference_data.py [--source ../shared/data] [--out tests/data]
    python scripts/vendor_reference_data.py --check    # exit 1 if the copies are stale

What is written, and from what (``tests/data/README.md`` gives sources, commits and licences):

- ``expected_values.json``: verbatim.
- ``qlora/vicuna_gpt4_pairwise.jsonl.gz``: every row, fields ``qid``, ``model_a``,
  ``model_b``, ``winner`` (the constant ``bench`` field is dropped).
- ``prd/vicuna80_ratings.jsonl.gz``: every row, fields ``reviewer_dir``, ``model_a``,
  ``model_b``, ``question_id``, ``score`` (the ``file`` field, which repeats the others, is
  dropped).
- ``llmbar/swap_results.jsonl.gz``: every run, fields ``dataset``, ``evaluator``,
  ``strategy``, ``items`` and the four published counts of ``statistics`` that the consistency
  report reproduces (``correct_False``, ``correct_True``, ``correct_both``, ``equal``).
- ``gsm8k/best_of_4_correctness.jsonl.gz``: per test problem, in file order, whether each of
  the four model solutions is correct (``is_correct``); the texts are dropped.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LLMBAR_COUNTS = ("correct_False", "correct_True", "correct_both", "equal")
GSM8K_SOURCES = ("6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification")


def _rows(path: Path) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def _keep(*fields: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def project(row: dict[str, Any]) -> dict[str, Any]:
        return {field: row[field] for field in fields}

    return project


def _llmbar(row: dict[str, Any]) -> dict[str, Any]:
    kept = _keep("dataset", "evaluator", "strategy", "items")(row)
    kept["statistics"] = {name: row["statistics"][name] for name in LLMBAR_COUNTS}
    return kept


def _gsm8k(row: dict[str, Any]) -> dict[str, Any]:
    return {"correct": {source: bool(row[source]["is_correct"]) for source in GSM8K_SOURCES}}


# (output path, source path, row projection)
COPIES: tuple[tuple[str, str, Callable[[dict[str, Any]], dict[str, Any]]], ...] = (
    (
        "qlora/vicuna_gpt4_pairwise.jsonl.gz",
        "qlora/vicuna_gpt4_pairwise.jsonl",
        _keep("qid", "model_a", "model_b", "winner"),
    ),
    (
        "prd/vicuna80_ratings.jsonl.gz",
        "prd/vicuna80_ratings_compact.jsonl",
        _keep("reviewer_dir", "model_a", "model_b", "question_id", "score"),
    ),
    ("llmbar/swap_results.jsonl.gz", "llmbar/swap_results_compact.jsonl", _llmbar),
    ("gsm8k/best_of_4_correctness.jsonl.gz", "gsm8k/example_model_solutions.jsonl", _gsm8k),
)


def _gzip_jsonl(rows: Iterable[dict[str, Any]]) -> bytes:
    text = "".join(json.dumps(row, ensure_ascii=False, sort_keys=False) + "\n" for row in rows)
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=9, mtime=0) as handle:
        handle.write(text.encode("utf-8"))
    return buffer.getvalue()


def build(source: Path) -> dict[str, bytes]:
    """The vendored files' contents, by path relative to the output folder."""
    files = {"expected_values.json": (source / "expected_values.json").read_bytes()}
    for out, src, project in COPIES:
        files[out] = _gzip_jsonl(project(row) for row in _rows(source / src))
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "data")
    parser.add_argument(
        "--check", action="store_true", help="compare with the copies; write nothing"
    )
    args = parser.parse_args(argv)
    if not (args.source / "expected_values.json").is_file():
        parser.error(f"--source {args.source} holds no expected_values.json")
    files = build(args.source)
    stale = [name for name, data in files.items() if _read(args.out / name) != data]
    if args.check:
        for name in stale:
            print(f"stale: {args.out / name}", file=sys.stderr)
        return 1 if stale else 0
    for name in stale:
        path = args.out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(files[name])
    total = sum(len(data) for data in files.values())
    print(f"{len(stale)} of {len(files)} files written to {args.out} ({total / 1e6:.2f} MB)")
    return 0


def _read(path: Path) -> bytes | None:
    return path.read_bytes() if path.is_file() else None


if __name__ == "__main__":
    raise SystemExit(main())
