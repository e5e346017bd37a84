"""One BLAS thread for the small per-prompt linear algebra.

OpenBLAS splits even a few-candidate Bradley-Terry fit over its thread pool, whose threads then
spin for far longer than the work took (``benchmarks/README.md``, "Client CPU (issue 22)"). So
per-prompt aggregation runs inside :func:`one_blas_thread`, which limits every loaded BLAS library
to one thread with ``threadpoolctl`` and restores the setting on the way out; a leaderboard's
large fits keep the pool. The limit is process-wide while it holds: the first entry from any
thread sets it and the last one out restores it.
"""

from __future__ import annotations

import functools
import threading
from contextlib import ContextDecorator
from typing import Any

__all__ = ["one_blas_thread"]

_lock = threading.Lock()
_depth = 0
_saved: list[tuple[Any, int]] = []


@functools.cache
def _blas_libraries() -> list[Any]:
    """``threadpoolctl``'s controllers of the loaded BLAS libraries (found once)."""
    from threadpoolctl import ThreadpoolController

    return list(ThreadpoolController().select(user_api="blas").lib_controllers)


def _restore() -> None:
    while _saved:
        library, threads = _saved.pop()
        library.set_num_threads(threads)


class one_blas_thread(ContextDecorator):  # lower case, as contextlib's own (suppress)
    """A re-entrant context manager (or decorator) that limits every BLAS library to one thread
    inside; a nested entry costs a lock and a counter.

    Examples
    --------
    >>> import numpy as np
    >>> with one_blas_thread():
    ...     value = float(np.ones((3, 3)) @ np.ones(3) @ np.ones(3))
    >>> value
    9.0
    """

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
