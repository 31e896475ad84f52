"""Scratch arrays reused from one call to the next (per thread).

An algorithm's temporaries (Winograd's transformed tiles, im2col's patch matrix) are a few MB
per layer. Freshly allocated on every call, each one costs page faults on first touch: the C
allocator hands such blocks back to the system when they are freed, and taking them again
zero-fills every page (measured: a 64-channel 56x56 Winograd layer took 3.2 ms instead of
1.8 ms). Kept here, they are touched once per process. A buffer larger than
:data:`RETAIN_BYTES` is not kept (a huge layer's temporaries are freed after its call); no
temporary exceeds the engines' work budget anyway (:data:`engine._common.WORK_BYTES`).

A scratch array is valid until the next :func:`scratch` call with the same name on the same
thread; it never leaves the engine (outputs are always fresh arrays).
"""

from __future__ import annotations

import math
import threading

import numpy as np

RETAIN_BYTES = 64 * 2**20
_ALIGN = 64  # bytes: a cache line, and what AVX-512 loads like


class _Buffers(threading.local):
    def __init__(self) -> None:
        self.by_name: dict[str, np.ndarray] = {}


_buffers = _Buffers()


def scratch(name: str, shape: tuple[int, ...], dtype: np.dtype | type) -> np.ndarray:
    """An uninitialised C-contiguous array of ``shape``, reusing this thread's buffer ``name``."""
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes > RETAIN_BYTES:
        return np.empty(shape, dtype=dtype)
    raw = _buffers.by_name.get(name)
    if raw is None or raw.nbytes < nbytes + _ALIGN:
        raw = np.empty(nbytes + _ALIGN, dtype=np.uint8)
        _buffers.by_name[name] = raw
    start = -raw.ctypes.data % _ALIGN
    return raw[start : start + nbytes].view(dtype).reshape(shape)


def release() -> None:
    """Free this thread's scratch buffers."""
    _buffers.by_name.clear()
