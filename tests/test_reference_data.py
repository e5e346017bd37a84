"""The vendored reference data: documented, complete, and reproducing its published figures."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from reference_data import DATA_DIR, GSM8K_BEST_OF_4, read_jsonl

GSM8K_SOURCES = ("6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification")


def test_every_vendored_file_is_documented_with_its_licence() -> None:
    readme = (DATA_DIR / "README.md").read_text(encoding="utf-8")
    files = sorted(p.relative_to(DATA_DIR).as_posix() for p in DATA_DIR.rglob("*") if p.is_file())
    assert "expected_values.json" in files and len(files) == 6
    for name in files:
        if name != "README.md":
            assert f"`{name}`" in readme, name
    assert readme.count("MIT, Copyright (c)") == 4


@pytest.fixture(scope="module")
def gsm8k() -> list[dict[str, bool]]:
    return [row["correct"] for row in read_jsonl(GSM8K_BEST_OF_4)]


def test_gsm8k_source_accuracies(gsm8k: list[dict[str, bool]], expected: dict[str, Any]) -> None:
    figures = expected["gsm8k_example_model_solutions"]
    assert len(gsm8k) == figures["n"] == 1319
    for source in GSM8K_SOURCES:
        accuracy = sum(row[source] for row in gsm8k) / len(gsm8k)
        assert accuracy == pytest.approx(figures["accuracy"][source], abs=5e-5), source


def test_gsm8k_oracle_and_correct_counts(
    gsm8k: list[dict[str, bool]], expected: dict[str, Any]
) -> None:
    figures = expected["gsm8k_example_model_solutions"]
    counts = Counter(sum(row.values()) for row in gsm8k)
    assert {str(k): v for k, v in sorted(counts.items())} == figures["num_correct_among_4"]
    oracle = sum(any(row.values()) for row in gsm8k) / len(gsm8k)
    assert oracle == pytest.approx(figures["oracle_any_of_4"], abs=5e-5)
