"""Shared test fixtures."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from reference_data import VICUNA_GPT4_PAIRWISE, expected_values, reference_path


@pytest.fixture(scope="session")
def expected() -> dict[str, Any]:
    """The reference figures of ``tests/data/expected_values.json``."""
    return expected_values()


@pytest.fixture(scope="session")
def vicuna_record() -> Path:
    """GPT-4's verdicts on every ordered pair of 8 systems x 80 Vicuna questions (QLoRA)."""
    return reference_path(VICUNA_GPT4_PAIRWISE)
