"""The engines' own threads: work split in contiguous pieces, one per core, nothing spinning.

Why not let each library thread itself? On a small machine three thread pools would share the
cores: NumPy's BLAS (OpenBLAS keeps its workers spinning for ~0.1 s after every GEMM), numba's
and torch's (OpenMP, spinning too after each parallel region). A pool that spins on a core
another pool needs halves that pool's speed, and a forward pass alternates between them every
few hundred microseconds. So while an engine computes, NumPy's BLAS runs single-threaded, the
compiled kernels are single-threaded, and the engine splits its work itself: ``run(fn, pieces)``
runs one piece on the calling thread and the others on idle Python threads (blocked on a lock,
not spinning; a round trip costs ~10 µs). NumPy's BLAS and numba kernels release the GIL.

``WORKERS`` (default: the cores this process may use) is a module attribute; set it to 1 to
run everything on the calling thread.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager


def _cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


WORKERS = _cores()
_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_pool_lock = threading.Lock()


def _executor(helpers: int) -> ThreadPoolExecutor:
    global _pool, _pool_size
    with _pool_lock:
        if _pool is None or _pool_size < helpers:
            _pool = ThreadPoolExecutor(max_workers=helpers, thread_name_prefix="convscope-engine")
            _pool_size = helpers
        return _pool


def pieces(total: int, min_items: int = 1) -> list[tuple[int, int]]:
    """``range(total)`` as up to :data:`WORKERS` contiguous ``(start, stop)`` pieces of at least
    ``min_items`` items each (one piece for small work)."""
    k = max(1, min(WORKERS, total // max(1, min_items)))
    return [(total * i // k, total * (i + 1) // k) for i in range(k)]


def run(fn: Callable[[int, int], object], parts: list[tuple[int, int]]) -> None:
    """``fn(start, stop)`` for every piece, in parallel; returns when all are done (the first
    exception is raised after every piece has finished)."""
    if len(parts) == 1:
        fn(*parts[0])
        return
    pool = _executor(len(parts) - 1)
    futures = [pool.submit(fn, *p) for p in parts[1:]]
    error: BaseException | None = None
    try:
        fn(*parts[0])
    except BaseException as exc:  # re-raised below, once the others are done
        error = exc
    for future in futures:
        exc = future.exception()
        if exc is not None and error is None:
            error = exc
    if error is not None:
        raise error


class _NumpyBlas:
    """NumPy's BLAS thread count, through threadpoolctl when it is installed."""

    def __init__(self) -> None:
        self._controllers: list | None = None
        self._depth = 0
        self._saved: list[int] = []
        self._lock = threading.Lock()

    def _find(self) -> list:
        if self._controllers is None:
            try:
                import numpy as np
                from threadpoolctl import ThreadpoolController
            except ImportError:
                self._controllers = []
            else:
                numpy_dir = os.path.dirname(os.path.dirname(np.__file__))
                self._controllers = [
                    c for c in ThreadpoolController().lib_controllers
                    if c.user_api == "blas" and os.path.basename(os.path.dirname(c.filepath)).startswith(
                        ("numpy", ".dylibs")) and c.filepath.startswith(numpy_dir)
                ]
        return self._controllers

    @contextmanager
    def single_threaded(self) -> Iterator[None]:
        """NumPy's BLAS on the calling thread only, for the duration (nesting and concurrent
        callers are counted; the first to enter saves the setting, the last to leave restores)."""
        with self._lock:
            if self._depth == 0:
                controllers = self._find()
                self._saved = [c.num_threads for c in controllers]
                for c in controllers:
                    c.set_num_threads(1)
            self._depth += 1
        try:
            yield
        finally:
            with self._lock:
                self._depth -= 1
                if self._depth == 0:
                    for c, n in zip(self._find(), self._saved, strict=True):
                        c.set_num_threads(n)


numpy_blas = _NumpyBlas()
