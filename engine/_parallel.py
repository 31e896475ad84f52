"""The engines' threads: work split in contiguous pieces, one per core.

Why not let each library thread itself? On a small machine several thread pools would share the
cores: NumPy's BLAS (OpenBLAS keeps its workers spinning for ~0.1 s after every GEMM), numba's
and torch's (OpenMP, spinning too after each parallel region). A pool that spins on a core
another pool needs halves that pool's speed, and a forward pass alternates between them every
few hundred microseconds. So while an engine computes, NumPy's BLAS runs single-threaded and
the engine splits its work itself, into pieces that run on numba's thread team (below) or, as
a fallback, ``run(fn, pieces)``: one piece on the calling thread and the others on idle Python
threads (blocked on a lock, not spinning; a round trip costs 15-50 µs). NumPy's BLAS and numba
kernels release the GIL.

``WORKERS`` (default: the cores this process may use) is a module attribute; set it to 1 to
run everything on the calling thread.

One thread team (:func:`run_kernel`, :func:`matmul_rows`, :func:`matmul_batch`): with the
compiled kernels, the pieces do not go to Python threads but to numba's OpenMP team
(``prange`` over the pieces, :mod:`engine._kernels`), and the GEMM pieces call NumPy's own
OpenBLAS (``cblas_sgemm``, held to one thread) from that team. A team's threads wait for the
next parallel region the way torch's do, so torch's ops can keep all cores between two
convolutions: measured on 2 cores (2026-11-26), a 64x56x56 batch norm on torch's two threads
followed by an engine step took 108 µs with the team (29 + 75 alone) and 196 µs with the
Python helper threads (which took 106 µs alone), and a 128x576x3136 GEMM interleaved with it
2.40 ms against 2.93 ms (median 2.59 against 5.96). ``CONVSCOPE_ENGINE_THREADS=python`` keeps
the Python helper threads (and torch on one thread while an engine runs); without numba, or
when no threadsafe threading layer loads (OpenMP or TBB), they are used anyway.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from engine import _jit


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


# Below these a piece is not worth a fork-join on the Python helper threads (~15-50 µs): GEMM
# multiply-adds (~50 G/s per core) and elements of the memory-bound kernels (transforms,
# copies, depthwise taps: ~2-5 G/s). A fork-join on numba's team costs ~3 µs (2 µs a launch
# from compiled code): there a piece is worth it at a tenth of these (TEAM_SCALE). With the
# helpers' thresholds on the team, resnet18 ran six of its ten Winograd input transforms and
# all seven of its patch matrices on 7x7 maps on one thread (0.4 ms each, 5 ms a pass).
GEMM_MACS = 2_000_000
KERNEL_OPS = 200_000
TEAM_SCALE = 10


def pieces(total: int, cost_per_item: int = 1, min_cost: int = 1) -> list[tuple[int, int]]:
    """``range(total)`` as up to :data:`WORKERS` contiguous ``(start, stop)`` pieces, each worth
    at least ``min_cost`` (items cost ``cost_per_item`` each); small work stays one piece."""
    if getattr(_local, "split_all", False):
        min_cost = 1
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


@contextlib.contextmanager
def split_all() -> Iterator[None]:
    """``with split_all():`` this thread's calls split even the smallest work into pieces (for
    :func:`engine._jit.warm_up`, so that tiny calls compile every team wrapper too)."""
    _local.split_all = True
    try:
        yield
    finally:
        _local.split_all = False


def workers() -> int:
    """The threads an engine's call may use (:data:`WORKERS`)."""
    return WORKERS


# How long numba's OpenMP threads spin for the next step before they sleep: GNU OpenMP's default
# (300,000 pauses, ~5 ms here) keeps a core busy long after a convolution, while torch's own
# threads compute the batch norms and activations that follow. 20,000 (~0.3 ms) still bridges
# the gaps between one convolution's steps. resnet18 / mobilenet_v2 on auto, engine alone, two
# runs each (2026-11-26): default 1.10-1.16 / 1.02-1.14 x torch, medians 35.5-37.3 ms for
# resnet18; 20,000: 1.07-1.11 / 0.98-1.00, medians 26.8-36.0; 2,000: 1.09-1.12 / 0.69-1.00. A
# GOMP_SPINCOUNT or OMP_WAIT_POLICY set by the user is left as it is.
TEAM_SPIN = "20000"


# A busy machine: when other processes keep every core busy, GNU OpenMP's teams (numba's and
# torch's alike) wait for a thread that another process has off its core at every step:
# efficientnet_lite0 through run_model, torch on one thread (the window's way), took 55-400 ms a
# pass instead of 16 ms with two CPU-bound processes beside it on this 2-core VM, under every
# spin setting tried; the Python helper threads took 24-48 ms (2026-11-26). So the time the
# calling thread waits in team launches is counted against the time they take: when it waits
# more than BUSY_WAIT of every BUSY_WINDOW seconds of launches, the team is put aside for REST
# seconds (the helper threads, and torch on one thread, meanwhile), then tried again. Measured
# per 50 ms of launches: 0.00-0.02 on the quiet VM (efficientnet_lite0, resnet18,
# mobilenet_v2), 0.43-0.71 with the two CPU-bound processes.
BUSY_WINDOW = 0.05  # of sampled launches (one in SAMPLE)
BUSY_WAIT = 0.25
SAMPLE = 4
REST = 15.0


class _Team:
    """Whether the pieces run on numba's thread team: decided once, on first use, and put
    aside for a while when the machine is too busy for it (see BUSY_WAIT)."""

    def __init__(self) -> None:
        self._ready: bool | None = None
        self.reason = ""
        self._lock = threading.Lock()
        self._wall = self._wait = 0.0  # sampled launches' time and this thread's waiting in them
        self._launches = 0
        self._resting_until = 0.0
        self.rests = 0  # how many times the team was put aside (for tests and the benchmark)

    def ready(self) -> bool:
        if self._ready is None:
            with self._lock:
                if self._ready is None:
                    self._ready = self._probe()
        return self._ready and (not self._resting_until or time.monotonic() >= self._resting_until)

    def give_up(self, reason: str) -> None:
        """No team for the rest of this process (the compiled kernels are gone)."""
        with self._lock:
            self._ready, self.reason = False, reason

    def timed(self, launch: Callable[[], object]) -> None:
        """Run a team launch, counting (for one launch in SAMPLE) how long this thread waited
        in it for the others: reading the thread's CPU clock costs ~1 µs, a launch ~2 µs."""
        self._launches += 1
        if self._launches % SAMPLE:
            launch()
            return
        wall, cpu = time.perf_counter(), time.thread_time()
        launch()
        wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
        with self._lock:
            self._wall += wall
            self._wait += max(0.0, wall - cpu)
            if self._wall < BUSY_WINDOW:
                return
            busy = self._wait > BUSY_WAIT * self._wall
            self._wall = self._wait = 0.0
            if busy:
                self._resting_until = time.monotonic() + REST
                self.rests += 1

    def _probe(self) -> bool:
        if os.environ.get("CONVSCOPE_ENGINE_THREADS", "").strip().lower() == "python":
            self.reason = "CONVSCOPE_ENGINE_THREADS=python"
            return False
        kernels = _jit.kernels()
        if kernels is None:
            self.reason = f"no compiled kernels ({_jit.unavailable_reason()})"
            return False
        marks = np.zeros(2, dtype=np.int64)
        # numba's OpenMP library is loaded by this first launch, after torch's own copy read its
        # settings: a shorter spin for numba's threads only (see TEAM_SPIN)
        ours = "GOMP_SPINCOUNT" not in os.environ and "OMP_WAIT_POLICY" not in os.environ
        if ours:
            os.environ["GOMP_SPINCOUNT"] = TEAM_SPIN
        try:
            kernels.blas.probe_team(marks, np.array([0, 1, 2], dtype=np.int64))
        except Exception as exc:  # numba: "No threading layer could be loaded"
            self.reason = f"no threadsafe threading layer for numba ({exc})".splitlines()[0]
            return False
        finally:
            if ours:
                del os.environ["GOMP_SPINCOUNT"]
        if marks.tolist() != [1, 2]:
            self.reason = "numba's thread team did not run its pieces"
            return False
        layer = kernels.blas.threading_layer()
        if layer not in ("omp", "tbb"):  # workqueue aborts the process on concurrent launches
            self.reason = f"numba's {layer} threading layer cannot take two threads' launches at once"
            return False
        self.reason = f"numba's {layer} team"
        return True


team = _Team()


def _after_fork_in_child() -> None:
    """A child made by fork has none of its parent's threads: GNU OpenMP's team cannot run in
    it (numba stops the process: "fork() called from a process already using GNU OpenMP"), and
    the helper threads are gone. The child computes on its own thread."""
    global WORKERS, _pool, _pool_size
    team._ready, team.reason = False, "a child made by fork (its parent's threads are not in it)"
    _helpers.clear()
    _pool, _pool_size = None, 0
    WORKERS = 1


os.register_at_fork(after_in_child=_after_fork_in_child)


def uses_team() -> bool:
    """True when the engines' pieces run on numba's thread team (see the module's docstring):
    its threads wait for the next step the way torch's own do (a short spin, then asleep), so
    torch's ops may keep every core between convolutions; False with the Python helper
    threads."""
    return team.ready()


def _bounds(parts: list[tuple[int, int]]):
    return np.array([a for a, _ in parts] + [parts[-1][1]], dtype=np.int64)


def run_kernel(kernel: Callable[..., object], args: tuple, parts: list[tuple[int, int]]) -> None:
    """``kernel(*args, start, stop)`` for every piece: a compiled kernel of
    :mod:`engine._kernels`, on numba's team when it is ready (the kernel's ``<name>_team``
    wrapper beside it), else through :func:`run`."""
    if len(parts) == 1:
        kernel(*args, *parts[0])
        return
    if team.ready():
        wrapper = _team_wrapper(kernel)
        bounds = _bounds(parts)
        team.timed(lambda: wrapper(*args, bounds))
        return
    run(lambda a, b: kernel(*args, a, b), parts)


@functools.cache
def _team_wrapper(kernel: Callable[..., object]) -> Callable[..., object]:
    """The ``<name>_team`` wrapper beside a compiled kernel (looked up once per kernel)."""
    fn = kernel.py_func  # type: ignore[attr-defined]
    return getattr(sys.modules[fn.__module__], f"{fn.__name__}_team")


def _team_gemm(arrays: tuple, ndim: int):
    """NumPy's BLAS sgemm as a ctypes function for these arrays (``a, b, out``), or None when
    the team cannot take them (no team, not float32, a layout BLAS cannot read as it is)."""
    if not team.ready():
        return None
    for m in arrays:
        if m.ndim != ndim or m.dtype != np.float32 or m.strides[-1] != m.itemsize:
            return None
        if any(st <= 0 or st % m.itemsize for st in m.strides):
            return None
    if not arrays[-1].flags.writeable:
        return None
    return numpy_blas.sgemm


def _matrix(m: np.ndarray, axis: int = 0) -> tuple[int, int]:
    """(address, row stride in elements) of a row-major matrix (of each matrix of a batch)."""
    return m.ctypes.data, m.strides[axis] // m.itemsize


def matmul_rows(a: np.ndarray, b: np.ndarray, out: np.ndarray, parts: list[tuple[int, int]]) -> None:
    """``out = a @ b`` (2-D) in as many pieces as ``parts`` has: ``out[r0:r1] = a[r0:r1] @ b``
    for each of its row ranges, or on numba's team column ranges of as many pieces when ``b``
    is the bigger matrix."""
    if len(parts) == 1:
        r0, r1 = parts[0]
        np.matmul(a[r0:r1], b, out=out[r0:r1])
        return
    gemm = _team_gemm((a, b, out), 2)
    if gemm is None:
        run(lambda r0, r1: np.matmul(a[r0:r1], b, out=out[r0:r1]), parts)
        return
    blas = _jit.kernels().blas
    (m, k), n = a.shape, b.shape[1]
    pointers = (*_matrix(a), *_matrix(b), *_matrix(out), a.itemsize)
    if m * k < k * n and n >= 64 * len(parts):
        # each thread packs the whole of the matrix it does not split: split the bigger one
        # (a stem's 64x147 filters against a 147x12880 patch matrix: 1.31 ms, not 1.41)
        edges = [0] + [n * i // len(parts) // 16 * 16 for i in range(1, len(parts))] + [n]
        bounds = np.array(edges, dtype=np.int64)
        team.timed(lambda: blas.gemm_cols_team(gemm, m, k, *pointers, bounds))
    else:
        bounds = _bounds(parts)
        team.timed(lambda: blas.gemm_rows_team(gemm, k, n, *pointers, bounds))


def matmul_batch(a: np.ndarray, b: np.ndarray, out: np.ndarray, parts: list[tuple[int, int]]) -> None:
    """``out[i] = a[i] @ b[i]`` for every piece of the batch (3-D), in parallel."""
    if len(parts) == 1:
        k0, k1 = parts[0]
        np.matmul(a[k0:k1], b[k0:k1], out=out[k0:k1])
        return
    gemm = _team_gemm((a, b, out), 3)
    if gemm is None:
        run(lambda k0, k1: np.matmul(a[k0:k1], b[k0:k1], out=out[k0:k1]), parts)
        return
    blas = _jit.kernels().blas
    m, k, n = a.shape[1], a.shape[2], b.shape[2]
    addresses = (*_matrix(a, 1), a.strides[0], *_matrix(b, 1), b.strides[0], *_matrix(out, 1), out.strides[0])
    bounds = _bounds(parts)
    team.timed(lambda: blas.gemm_batch_team(gemm, m, n, k, *addresses, bounds))


def gemm_pieces(total: int, macs_per_item: int) -> list[tuple[int, int]]:
    """Pieces of a batch of GEMMs (or of one GEMM's rows): split only when NumPy's BLAS can be
    held to one thread, else one piece and BLAS threads it itself."""
    if not numpy_blas.controllable:
        return [(0, total)]
    return pieces(total, macs_per_item, _worth_a_piece(GEMM_MACS))


def kernel_pieces(total: int, ops_per_item: int) -> list[tuple[int, int]]:
    """Pieces of a compiled kernel's range (channels, rows) worth a thread each."""
    return pieces(total, ops_per_item, _worth_a_piece(KERNEL_OPS))


def _worth_a_piece(threshold: int) -> int:
    """The least work worth a piece: a helper thread's threshold, a tenth of it on the team."""
    return threshold // TEAM_SCALE if team.ready() else threshold


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
        self._sgemm = None
        self._typed = False
        self._int = ctypes.c_int32
        self._depth = 0
        self._saved = 0
        self._lock = threading.Lock()

    def _find(self) -> None:
        if self._found:
            return
        self._found = True
        try:
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
                        self._sgemm = getattr(c.dynlib, f"{prefix}cblas_sgemm{suffix}", None)
                        self._int = ctypes.c_int64 if suffix else ctypes.c_int32
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
    def sgemm(self) -> object | None:
        """``cblas_sgemm`` of NumPy's OpenBLAS as a typed ctypes function, or None (another
        BLAS). Meant for calls while the BLAS is held to one thread (:meth:`single_threaded`).

        float32 only: numba types a ctypes function by its Python class, the same for every
        function of a library, so a kernel compiled for sgemm would call dgemm with sgemm's
        argument types (float64 products through the team came out as garbage)."""
        self._find()
        if self._set is None or self._sgemm is None:
            return None
        if not self._typed:
            i, p, f = self._int, ctypes.c_void_p, ctypes.c_float
            self._sgemm.argtypes = [ctypes.c_int32] * 3 + [i] * 3 + [f, p, i, p, i, f, p, i]
            self._sgemm.restype = None
            self._typed = True
        return self._sgemm

    @property
    def threads(self) -> int | None:
        """NumPy's BLAS threads now, or None when they cannot be read."""
        self._find()
        return None if self._get is None else int(self._get())


numpy_blas = _NumpyBlas()
