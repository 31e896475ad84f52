"""The engines' own threads: work split in contiguous pieces, one per core, nothing spinning.

Why not let each library thread itself? On a small machine three thread pools would share the
cores: NumPy's BLAS (OpenBLAS keeps its workers spinning for ~0.1 s after every GEMM), numba's
and torch's (OpenMP, spinning too after each parallel region). A pool that spins on a core
another pool needs halves that pool's speed, and a forward pass alternates between them every
few hundred microseconds. So while an engine computes, NumPy's BLAS runs single-threaded, the
compiled kernels are single-threaded, and the engine splits its work itself: ``run(fn, pieces)``
runs one piece on the calling thread and the others on idle Python threads (blocked on a lock,
not spinning; a round trip costs ~7 µs). NumPy's BLAS and numba kernels release the GIL.

``WORKERS`` (default: the cores this process may use) is a module attribute; set it to 1 to
run everything on the calling thread.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor


def _cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


WORKERS = _cores()
_local = threading.local()  # .workers: this thread's own limit (see :func:`serial`)
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


# Below these a piece is not worth a fork-join (~15 µs): GEMM multiply-adds (~50 G/s per core)
# and elements of the memory-bound kernels (transforms, copies, depthwise taps: ~2-5 G/s).
GEMM_MACS = 2_000_000
KERNEL_OPS = 200_000


def pieces(total: int, cost_per_item: int = 1, min_cost: int = 1) -> list[tuple[int, int]]:
    """``range(total)`` as up to :data:`WORKERS` contiguous ``(start, stop)`` pieces, each worth
    at least ``min_cost`` (items cost ``cost_per_item`` each); small work stays one piece."""
    worth = total * max(1, cost_per_item) // max(1, min_cost)
    k = max(1, min(getattr(_local, "workers", WORKERS), total, worth))
    return [(total * i // k, total * (i + 1) // k) for i in range(k)]


@contextlib.contextmanager
def serial() -> Iterator[None]:
    """``with serial():`` the engines compute on the calling thread only, for this thread's
    calls (other threads keep :data:`WORKERS`): for callers that run several passes side by
    side, one per core (a top-k scan's two lanes)."""
    before = getattr(_local, "workers", None)
    _local.workers = 1
    try:
        yield
    finally:
        if before is None:
            del _local.workers
        else:
            _local.workers = before


def workers() -> int:
    """The threads an engine's call may use (:data:`WORKERS`)."""
    return WORKERS


def gemm_pieces(total: int, macs_per_item: int) -> list[tuple[int, int]]:
    """Pieces of a batch of GEMMs (or of one GEMM's rows): split only when NumPy's BLAS can be
    held to one thread, else one piece and BLAS threads it itself."""
    if not numpy_blas.controllable:
        return [(0, total)]
    return pieces(total, macs_per_item, GEMM_MACS)


def kernel_pieces(total: int, ops_per_item: int) -> list[tuple[int, int]]:
    """Pieces of a compiled kernel's range (channels, rows) worth a thread each."""
    return pieces(total, ops_per_item, KERNEL_OPS)


class _Helper(threading.Thread):
    """A long-lived thread that runs one piece at a time, handed over through two locks (each
    hand-off is one futex wake-up; an executor's queue, future and condition took twice as long,
    ~15 µs per fork-join, 50 of them per pass of a mobile model)."""

    def __init__(self, index: int) -> None:
        super().__init__(name=f"convscope-engine-helper-{index}", daemon=True)
        self.go = threading.Lock()
        self.go.acquire()
        self.done = threading.Lock()
        self.done.acquire()
        self.task: tuple[Callable[[int, int], object], int, int] | None = None
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        while True:
            self.go.acquire()
            task, self.task = self.task, None
            try:
                if task is not None:
                    task[0](task[1], task[2])
            except BaseException as exc:  # handed to the caller, raised there
                self.error = exc
            finally:
                self.done.release()


_helpers: list[_Helper] = []
# one caller at a time uses the helpers; a concurrent caller (another GUI lane) uses the executor
_helpers_busy = threading.Lock()


def _run_on_helpers(fn: Callable[[int, int], object], parts: list[tuple[int, int]]) -> None:
    with _pool_lock:
        while len(_helpers) < len(parts) - 1:
            _helpers.append(_Helper(len(_helpers)))
    used = _helpers[: len(parts) - 1]
    for helper, (a, b) in zip(used, parts[1:], strict=True):
        helper.error = None
        helper.task = (fn, a, b)
        helper.go.release()
    error: BaseException | None = None
    try:
        fn(*parts[0])
    except BaseException as exc:  # re-raised below, once the others are done
        error = exc
    for helper in used:
        helper.done.acquire()
        if helper.error is not None and error is None:
            error = helper.error
        helper.error = None
    if error is not None:
        raise error


def run(fn: Callable[[int, int], object], parts: list[tuple[int, int]]) -> None:
    """``fn(start, stop)`` for every piece, in parallel; returns when all are done (the first
    exception is raised after every piece has finished)."""
    if len(parts) == 1:
        fn(*parts[0])
        return
    if _helpers_busy.acquire(blocking=False):
        try:
            _run_on_helpers(fn, parts)
        finally:
            _helpers_busy.release()
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
    """NumPy's BLAS thread count (OpenBLAS with its own threads, as NumPy's wheels ship it).

    threadpoolctl finds the library; the thread count is then set through OpenBLAS's own
    ``openblas_set_num_threads`` (threadpoolctl's setter obeys only the first Python thread that
    ever used it, and the engines run on whichever thread calls them). With another BLAS, or
    without threadpoolctl, :attr:`controllable` is False and the engines leave GEMMs to BLAS's
    own threads instead of splitting them.
    """

    def __init__(self) -> None:
        self._found = False
        self._get = self._set = None
        self._depth = 0
        self._saved = 0
        self._lock = threading.Lock()

    def _find(self) -> None:
        if self._found:
            return
        self._found = True
        try:
            import numpy as np
            from threadpoolctl import ThreadpoolController
        except ImportError:
            return
        site = os.path.dirname(os.path.dirname(os.path.abspath(np.__file__)))
        for c in ThreadpoolController().lib_controllers:
            path = os.path.abspath(c.filepath or "")
            if c.internal_api != "openblas" or not path.startswith(site):
                continue
            if os.path.basename(os.path.dirname(path)) not in ("numpy.libs", ".dylibs"):
                continue  # another package's OpenBLAS (scipy's, torch's)
            if getattr(c, "threading_layer", "pthreads") != "pthreads":
                continue
            for prefix in ("", "scipy_"):
                for suffix in ("", "64_", "_64"):
                    get = getattr(c.dynlib, f"{prefix}openblas_get_num_threads{suffix}", None)
                    set_ = getattr(c.dynlib, f"{prefix}openblas_set_num_threads{suffix}", None)
                    if get is not None and set_ is not None:
                        self._get, self._set = get, set_
                        return

    @property
    def controllable(self) -> bool:
        self._find()
        return self._set is not None

    def single_threaded(self) -> _NumpyBlas:
        """``with numpy_blas.single_threaded():`` NumPy's BLAS computes on the calling thread
        only (nested and concurrent uses are counted: the first in saves the setting, the last
        out restores it)."""
        return self

    def __enter__(self) -> None:
        with self._lock:
            if self._depth == 0 and self.controllable:
                self._saved = self._get()
                if self._saved != 1:
                    self._set(1)
            self._depth += 1

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._depth -= 1
            if self._depth == 0 and self._set is not None and self._saved != 1:
                self._set(self._saved)

    @property
    def threads(self) -> int | None:
        """NumPy's BLAS threads now, or None when they cannot be read."""
        self._find()
        return None if self._get is None else int(self._get())


numpy_blas = _NumpyBlas()
