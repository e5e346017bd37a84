"""Shared test fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
"""The reference data sets shared by the project (``/work/shared/data`` in this checkout)."""

ANSWERS = Path(__file__).resolve().parent / "fixtures" / "answers"
"""Realistic GenRM answer texts used by the parser tests."""


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to the shared reference data directory."""
    return SHARED_DATA
