"""One BLAS thread for the small per-prompt linear algebra.

A prompt's Bradley-Terry fit, covariance and P(best) draws work on matrices of a few candidates.
OpenBLAS splits even these over its thread pool (one thread a core unless
``OPENBLAS_NUM_THREADS`` says otherwise), and the pool's threads then spin, waiting for more
work, for far longer than the work took: measured from outside, about two thirds of a client's
CPU went to that spinning (issue 22; ``benchmarks/README.md``, "Client CPU"). So the per-prompt
aggregation runs inside :func:`one_blas_thread`, which limits every loaded BLAS library to one
thread with ``threadpoolctl`` (Pedregosa et al.; the library scikit-learn uses for the same
purpose) and restores the previous setting on the way out.

Large problems (a leaderboard's fit and bootstrap over thousands of items) are not limited:
they keep the pool the environment gives them.

The limit is process-wide while it holds, as BLAS thread counts are: entries from several
threads are counted, the first one sets the limit and the last one out restores it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["one_blas_thread"]

_lock = threading.Lock()
_depth = 0
_controller: Any = None
_limiter: Any = None


def _blas_controller() -> Any:
    """The ``threadpoolctl`` controller of the BLAS libraries loaded now (made once)."""
    global _controller
    if _controller is None:
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController().select(user_api="blas")
    return _controller


@contextmanager
def one_blas_thread() -> Iterator[None]:
    """Run the body with every BLAS library limited to one thread; restore it afterwards.

    Re-entrant and cheap (about 10 microseconds for the outermost entry, nothing for a nested
    one), so it can wrap every per-prompt aggregation.

    Examples
    --------
    >>> import numpy as np
    >>> with one_blas_thread():
    ...     value = float(np.ones((3, 3)) @ np.ones(3) @ np.ones(3))
    >>> value
    9.0
    """
    global _depth, _limiter
    with _lock:
        _depth += 1
        if _depth == 1:
            try:
                _limiter = _blas_controller().limit(limits=1)
            except BaseException:
                _depth -= 1
                raise
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _limiter is not None:
                limiter, _limiter = _limiter, None
                limiter.restore_original_limits()
