"""One BLAS thread for the small per-prompt linear algebra.

A prompt's Bradley-Terry fit, covariance and P(best) draws work on matrices of a few candidates.
OpenBLAS splits even these over its thread pool (one thread a core unless
``OPENBLAS_NUM_THREADS`` says otherwise), and the pool's threads then spin, waiting for more
work, for far longer than the work took: measured from outside, a large share of a client's
CPU went to that spinning (``benchmarks/README.md``, "Client CPU (issue 22)"). So the
per-prompt aggregation runs inside :func:`one_blas_thread`, which limits every loaded BLAS
library to one thread with ``threadpoolctl`` (from the joblib and scikit-learn developers, who
use it for the same purpose) and restores the previous setting on the way out.

Large problems (a leaderboard's fit and bootstrap over thousands of items) are not limited:
they keep the pool the environment gives them.

The limit is process-wide while it holds, as BLAS thread counts are: entries from several
threads are counted, the first one sets the limit and the last one out restores it.
"""

from __future__ import annotations

import threading
from contextlib import ContextDecorator
from typing import Any

__all__ = ["one_blas_thread"]

_lock = threading.Lock()
_depth = 0
_libraries: list[Any] | None = None
_saved: list[tuple[Any, int]] = []


def _blas_libraries() -> list[Any]:
    """``threadpoolctl``'s controllers of the BLAS libraries loaded now (found once)."""
    global _libraries
    if _libraries is None:
        from threadpoolctl import ThreadpoolController

        _libraries = list(ThreadpoolController().select(user_api="blas").lib_controllers)
    return _libraries


def _restore() -> None:
    while _saved:
        library, threads = _saved.pop()
        library.set_num_threads(threads)


class _OneBlasThread(ContextDecorator):
    """What :func:`one_blas_thread` returns: one stateless object, so an entry creates nothing."""

    def __enter__(self) -> None:
        global _depth
        with _lock:
            _depth += 1
            if _depth == 1:
                try:
                    for library in _blas_libraries():
                        threads = library.get_num_threads()
                        if threads is not None and threads != 1:
                            library.set_num_threads(1)
                            _saved.append((library, threads))
                except BaseException:
                    _depth -= 1
                    _restore()
                    raise

    def __exit__(self, *exc: object) -> None:
        global _depth
        with _lock:
            _depth -= 1
            if _depth == 0:
                _restore()


_ONE_BLAS_THREAD = _OneBlasThread()


def one_blas_thread() -> _OneBlasThread:
    """A context manager (or decorator) that limits every BLAS library to one thread inside.

    Re-entrant and cheap: the outermost entry reads each library's thread count and sets the
    ones above 1 (a few microseconds; nothing to set when the environment already asks for one
    thread); a nested entry costs a lock and a counter.

    Examples
    --------
    >>> import numpy as np
    >>> with one_blas_thread():
    ...     value = float(np.ones((3, 3)) @ np.ones(3) @ np.ones(3))
    >>> value
    9.0
    """
    return _ONE_BLAS_THREAD
