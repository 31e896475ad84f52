"""Convolution engines: our own algorithms behind torch's ``F.conv2d`` signature.

>>> from engine import available_engines, get_engine
>>> get_engine("im2col").conv2d(x, w, b, stride=2, padding=1)      # doctest: +SKIP

Every engine validates its arguments the same way (``ValueError`` naming the values) and
records which algorithm really ran (:attr:`Engine.last_algorithm`, :meth:`Engine.run`).
"""

from __future__ import annotations

import importlib
import threading

from engine._common import PADDING_MODES, ConvSpec, make_spec, output_size, pad_input
from engine._parallel import serial, uses_team, workers
from engine.base import ConvResult, Engine

# name -> (module, class); the order is the order users see
_REGISTRY: dict[str, tuple[str, str]] = {
    "auto": ("engine.auto", "AutoEngine"),
    "direct": ("engine.direct", "DirectEngine"),
    "im2col": ("engine.im2col", "Im2colEngine"),
    "fft": ("engine.fft", "FFTEngine"),
    "winograd": ("engine.winograd", "WinogradEngine"),
    "reference": ("engine.reference", "ReferenceEngine"),
}
_instances: dict[str, Engine] = {}
_lock = threading.Lock()


def available_engines() -> list[str]:
    """Names of every engine, ``auto`` first and the ``reference`` oracle last."""
    return list(_REGISTRY)


def warm_up() -> bool:
    """Compile, or load from numba's disk cache, the compiled kernels (the first time on a
    machine ~30 s on 2 cores, later ~0.5 s); False when they are not available. Call it off the GUI thread
    at start-up so the first image does not wait for it."""
    from engine import _jit

    return _jit.warm_up()


def get_engine(name: str) -> Engine:
    """The (shared) engine called ``name``; ``ValueError`` for an unknown name."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown engine {name!r}; available: {', '.join(_REGISTRY)}")
    with _lock:
        if name not in _instances:
            module_name, class_name = _REGISTRY[name]
            cls = getattr(importlib.import_module(module_name), class_name)
            _instances[name] = cls()
        return _instances[name]


__all__ = [
    "PADDING_MODES",
    "ConvResult",
    "ConvSpec",
    "Engine",
    "available_engines",
    "get_engine",
    "make_spec",
    "output_size",
    "pad_input",
    "serial",
    "uses_team",
    "warm_up",
    "workers",
]
