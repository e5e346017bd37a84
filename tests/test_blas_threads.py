"""Per-prompt linear algebra runs on one BLAS thread; leaderboard-sized fits keep the pool."""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from genrm_rank import SimulatedJudge, select_best
from genrm_rank.aggregators import Comparisons, bradley_terry
from genrm_rank.blas_threads import one_blas_thread
from genrm_rank.strategies.adaptive import Adaptive

bt = importlib.import_module("genrm_rank.aggregators.bradley_terry")


def _blas_threads() -> list[int]:
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


@pytest.fixture
def two_threads() -> Any:
    """A BLAS pool of two threads, whatever the environment set (restored afterwards)."""
    assert _blas_threads(), "numpy's BLAS must be one threadpoolctl controls (one_blas_thread)"
    with threadpool_limits(limits=2, user_api="blas"):
        yield


def _record_threads(monkeypatch: pytest.MonkeyPatch, name: str, seen: list[list[int]]) -> None:
    original = getattr(bt, name)

    def recording(*args: Any, **kwargs: Any) -> Any:
        seen.append(_blas_threads())
        return original(*args, **kwargs)

    monkeypatch.setattr(bt, name, recording)


def test_one_blas_thread_limits_and_restores(two_threads: None) -> None:
    with one_blas_thread():
        assert set(_blas_threads()) == {1}
        with one_blas_thread():
            assert set(_blas_threads()) == {1}
        assert set(_blas_threads()) == {1}
    assert set(_blas_threads()) == {2}


def test_one_blas_thread_restores_after_an_error(two_threads: None) -> None:
    with pytest.raises(RuntimeError, match="inside"), one_blas_thread():
        raise RuntimeError("inside")
    assert set(_blas_threads()) == {2}


def test_a_prompts_fit_covariance_and_p_best_run_on_one_thread(
    two_threads: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[list[int]] = []
    for name in ("_minimise", "_covariance", "_settled"):
        _record_threads(monkeypatch, name, seen)
    candidates = [f"candidate {i} " + "word " * (5 * i) for i in range(8)]
    ranking = select_best(candidates, "Which?", judge=SimulatedJudge(seed=0), prompt_id="t")
    assert ranking.best is not None
    assert seen and all(set(threads) == {1} for threads in seen)
    assert set(_blas_threads()) == {2}


def test_a_leaderboard_sized_fit_keeps_the_pool(
    two_threads: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[list[int]] = []
    _record_threads(monkeypatch, "_minimise", seen)
    n = bt.IMPORTANCE_MAX_PARAMS + 1
    first = np.arange(n)
    bradley_terry(Comparisons.from_arrays(n, first, (first + 1) % n, np.full(n, 0.7)), alpha=0.1)
    assert seen == [_blas_threads()]
    assert set(seen[0]) == {2}


def test_the_adaptive_strategys_fits_and_draws_run_on_one_thread(
    two_threads: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[list[int]] = []
    for name in ("_posterior", "_draws"):
        original = getattr(Adaptive, name)

        def recording(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            seen.append(_blas_threads())
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(Adaptive, name, recording)
    candidates = [f"candidate {i} " + "word " * (5 * i) for i in range(6)]
    judge = SimulatedJudge(seed=0)
    ranking = select_best(candidates, "Which?", judge=judge, strategy="adaptive", prompt_id="a")
    assert ranking.best is not None
    assert len(seen) > 10 and all(set(threads) == {1} for threads in seen)
    assert set(_blas_threads()) == {2}
