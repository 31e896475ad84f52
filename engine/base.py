"""The engine contract: one ``conv2d`` with torch's signature, and the algorithm that ran."""

from __future__ import annotations

import itertools
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable
from typing import NamedTuple

import numpy as np

from engine import _jit, _parallel
from engine._common import ConvSpec, IntOrPair, Padding, validate
from engine._weight_cache import SHARED, WeightCacheInfo

_owners = itertools.count(1)


class ConvResult(NamedTuple):
    """What one call computed and how: ``output`` is ``(N, C_out, H_out, W_out)``."""

    output: np.ndarray
    algorithm: str


class Engine(ABC):
    """A convolution algorithm behind torch's ``F.conv2d`` signature.

    Subclasses implement :meth:`_compute` on an already validated input. Every call records the
    algorithm that really ran (per thread) in :attr:`last_algorithm`; :meth:`run` returns it with
    the output.

    ``weight_key`` (keyword-only, any hashable, optional): the caller's name for the *values* of
    ``weight``. Equal keys must mean equal weight values (e.g. ``(model serial, parameter name,
    tensor._version)``); with a key, an engine may reuse what it derived from the weights on an
    earlier call (Winograd's transformed filters, kernel spectra), kept in a byte-bounded LRU that
    all engines share (:mod:`engine._weight_cache`). Without a key nothing is cached. Engines
    that derive nothing from the weights ignore it.
    """

    name: str = ""
    description: str = ""
    # compiled kernels and the engine's own threads (NumPy's BLAS single-threaded meanwhile);
    # False: the plain NumPy form, threaded only by whatever BLAS does (see engine._jit)
    jit: bool = False

    def __init__(self) -> None:
        self._local = threading.local()
        self._owner = next(_owners)

    def conv2d(
        self,
        x: np.ndarray,
        weight: np.ndarray,
        bias: np.ndarray | None = None,
        stride: IntOrPair = 1,
        padding: Padding = 0,
        dilation: IntOrPair = 1,
        groups: int = 1,
        padding_mode: str = "zeros",
        *,
        weight_key: Hashable | None = None,
    ) -> np.ndarray:
        """2-D convolution (cross-correlation, as in torch) of ``(N, C_in, H, W)`` input with
        ``(C_out, C_in/groups, kH, kW)`` weight; returns ``(N, C_out, H_out, W_out)``.

        ``H_out = floor((H + 2p - d(k-1) - 1) / s) + 1``. Raises ``ValueError`` naming the
        values on invalid arguments. ``weight_key``: see the class docstring.
        """
        return self.run(
            x, weight, bias, stride, padding, dilation, groups, padding_mode, weight_key=weight_key
        ).output

    def run(
        self,
        x: np.ndarray,
        weight: np.ndarray,
        bias: np.ndarray | None = None,
        stride: IntOrPair = 1,
        padding: Padding = 0,
        dilation: IntOrPair = 1,
        groups: int = 1,
        padding_mode: str = "zeros",
        *,
        weight_key: Hashable | None = None,
    ) -> ConvResult:
        """Like :meth:`conv2d`, also naming the algorithm that ran."""
        xa, w, b, spec = validate(x, weight, bias, stride, padding, dilation, groups, padding_mode)
        if self.jit:
            with _parallel.numpy_blas.single_threaded():
                try:
                    out, algorithm = self._compute(xa, w, b, spec, weight_key)
                except _jit.DAMAGED_CACHE as exc:  # a kernel's disk cache file is damaged
                    if not _jit.drop_damaged_cache(exc):
                        raise
                    out, algorithm = self._compute(xa, w, b, spec, weight_key)  # the NumPy forms
        else:
            out, algorithm = self._compute(xa, w, b, spec, weight_key)
        self._local.algorithm = algorithm
        return ConvResult(out, algorithm)

    @property
    def last_algorithm(self) -> str | None:
        """The algorithm of this thread's latest call, or None before the first."""
        return getattr(self._local, "algorithm", None)

    def algorithm_for(self, spec: ConvSpec) -> str:
        """The algorithm this engine runs for a call of this shape (no computation)."""
        return self.name

    # -- weight-derived cache -------------------------------------------------------------------

    def _weight_derived(
        self, weight_key: Hashable | None, tag: Hashable, build: Callable[[], object]
    ) -> object:
        """``build()``, or its cached value when the caller named the weights.

        ``tag`` says what was derived and for which shape and dtype, so one key can hold the
        F(2x2) and the F(4x4) transform of the same weights side by side.
        """
        if weight_key is None:
            return build()
        return SHARED.get(self._owner, weight_key, tag, build)

    def clear_weight_cache(self) -> None:
        """Forget everything this engine derived from weights."""
        SHARED.clear(self._owner)

    def weight_cache_info(self) -> WeightCacheInfo:
        """Hits, misses, entries and bytes of this engine's weight-derived cache."""
        return SHARED.info(self._owner)

    @abstractmethod
    def _compute(
        self,
        x: np.ndarray,
        weight: np.ndarray,
        bias: np.ndarray | None,
        spec: ConvSpec,
        weight_key: Hashable | None,
    ) -> tuple[np.ndarray, str]:
        """Convolve ``x`` ``(N, C_in, H, W)`` (zero padding ``spec.pad`` not yet applied) and
        add ``bias``; return the output, a fresh writable array of ``spec.dtype``, and the name
        of the algorithm that ran."""
