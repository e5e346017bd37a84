"""The one place that locates the reference data that tests read (``tests/data/``).

The files are copies of real judges' verdicts, made by ``scripts/vendor_reference_data.py``;
``tests/data/README.md`` gives each file's source, commit and licence. Nothing here runs at
import time: each function reads when it is called, and the results are cached per session.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from genrm_rank.textfiles import open_text

DATA_DIR = Path(__file__).resolve().parent / "data"

VICUNA_GPT4_PAIRWISE = "qlora/vicuna_gpt4_pairwise.jsonl.gz"
PRD_RATINGS = "prd/vicuna80_ratings.jsonl.gz"
LLMBAR_SWAP_RESULTS = "llmbar/swap_results.jsonl.gz"
GSM8K_BEST_OF_4 = "gsm8k/best_of_4_correctness.jsonl.gz"


def reference_path(name: str) -> Path:
    """The path of one vendored file; a clear error if the copy is missing."""
    path = DATA_DIR / name
    if not path.is_file():
        raise FileNotFoundError(
            f"reference data {name!r} is missing from {DATA_DIR}; it is part of the repository "
            "(regenerate it with scripts/vendor_reference_data.py)"
        )
    return path


@cache
def _read_jsonl(name: str) -> tuple[dict[str, Any], ...]:
    with open_text(reference_path(name)) as handle:
        return tuple(json.loads(line) for line in handle if line.strip())


def read_jsonl(name: str) -> list[dict[str, Any]]:
    """Every row of one vendored JSONL file (a fresh list; the rows themselves are shared)."""
    return list(_read_jsonl(name))


@cache
def expected_values() -> dict[str, Any]:
    """The published and derived figures the tests reproduce (``expected_values.json``)."""
    data: dict[str, Any] = json.loads(reference_path("expected_values.json").read_text())
    return data
