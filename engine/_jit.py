"""Compiled kernels for the engines' hot loops, when numba is there to compile them.

Each engine's algorithm is written out in NumPy (the documented, readable form, tested against
torch like everything else). Some steps of it cannot be expressed in NumPy without extra passes
over memory: padding copied into a bigger array, Winograd's tile transforms as whole-array
products, a depthwise tap loop with a temporary per tap. :mod:`engine._kernels` does those steps
in one pass each, compiled by numba and cached on disk (the first run on a machine compiles
them; later processes load them in milliseconds).

An engine built with ``jit=False``, or any engine when ``CONVSCOPE_JIT=0`` is set or numba
cannot be imported, runs the NumPy form instead. Only this module and :mod:`engine._kernels`
import numba (the import-linter contract in ``pyproject.toml`` says so).
"""

from __future__ import annotations

import os
import pickle
import threading
from pathlib import Path
from types import ModuleType

_lock = threading.Lock()
_module: ModuleType | None = None
_tried = False
_error: str | None = None


def enabled_by_environment() -> bool:
    """False when ``CONVSCOPE_JIT`` is set to 0/off/no/false."""
    return os.environ.get("CONVSCOPE_JIT", "1").strip().lower() not in ("0", "off", "no", "false")


def kernels() -> ModuleType | None:
    """:mod:`engine._kernels`, imported on first use; None if disabled or numba is missing."""
    global _module, _tried, _error
    if _tried:
        return _module
    with _lock:
        if not _tried:
            _module, _error = None, None
            if enabled_by_environment():
                try:
                    from engine import _kernels

                    _module = _kernels
                except ImportError as exc:  # numba missing or broken: the NumPy forms still work
                    _error = f"{type(exc).__name__}: {exc}"
            else:
                _error = "disabled by CONVSCOPE_JIT"
            _tried = True
    return _module


# What numba raises when a kernel's disk cache file is damaged (truncated by a full disk or a
# killed process): the pickled index or object code does not load.
DAMAGED_CACHE: tuple[type[BaseException], ...] = (pickle.UnpicklingError, EOFError)
_damaged = False


def drop_damaged_cache(exc: BaseException) -> bool:
    """After a kernel failed to load from its damaged disk cache: delete the cache files (the
    next start compiles them again), and run the NumPy forms and the helper threads for the
    rest of this process. False when the kernels were not in use (nothing to drop)."""
    global _module, _error, _damaged
    with _lock:
        if _module is None:  # not in use, or another thread met the damage first
            return _damaged
        folder = Path(_module.__file__).parent / "__pycache__"
        for path in list(folder.glob("*.nbi")) + list(folder.glob("*.nbc")):
            path.unlink(missing_ok=True)
        _module, _damaged = None, True
        _error = (
            f"the compiled kernels' disk cache was damaged ({type(exc).__name__}: {exc}); it was "
            "deleted and the kernels compile again at the next start"
        )
    from engine import _parallel

    _parallel.team.give_up(_error)
    return True


def unavailable_reason() -> str | None:
    """Why :func:`kernels` returned None (after a call), or None when they are loaded."""
    return _error


def warm_up() -> bool:
    """Compile (first run on a machine: ~30 s on 2 cores) or load from the disk cache (~0.5 s)
    every float32 kernel and its team wrapper, with tiny calls split as if they were big; False
    when the kernels are not available. Meant for a background thread at start-up, so the
    first image does not wait for it."""
    if kernels() is None:
        return False
    from engine import _parallel

    try:
        _warm_up_calls()  # each kernel as one piece (small layers, a top-k scan's lanes)
        with _parallel.split_all():  # and split: the team wrappers are compiled on their own
            _warm_up_calls()
    except DAMAGED_CACHE as exc:
        if not drop_damaged_cache(exc):
            raise
        return False
    return True


def _warm_up_calls() -> None:
    import numpy as np

    from engine.direct import DirectEngine
    from engine.im2col import Im2colEngine
    from engine.winograd import WinogradEngine

    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 2, 9, 9), dtype=np.float32)
    w3 = rng.standard_normal((2, 2, 3, 3), dtype=np.float32)
    for tile in (2, 4):
        WinogradEngine(tile=tile).conv2d(x, w3, None, 1, 1)
    DirectEngine().conv2d(x, w3[:, :1], None, 1, 1, 1, 2)
    w8 = rng.standard_normal((8, 2, 3, 3), dtype=np.float32)
    DirectEngine().conv2d(x, w8, None, 1, 1)  # dense 3x3 (stems), two groups of four
    Im2colEngine().conv2d(x, w3, None, 2, 1)  # short rows
    wide = rng.standard_normal((1, 2, 24, 36), dtype=np.float32)
    Im2colEngine().conv2d(wide, w3, None, 2, 1)  # strided: phase planes, wide rows
    Im2colEngine().conv2d(wide, w3, None, 1, 1)  # long rows
    Im2colEngine().conv2d(wide, w3[:, :, :1, :1], None, 1, 0)  # 1x1: a plain GEMM
