"""The engine contract: one ``conv2d`` with torch's signature, and the algorithm that ran."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from typing import NamedTuple

import numpy as np

from engine._common import ConvSpec, IntOrPair, Padding, add_bias, prepare


class ConvResult(NamedTuple):
    """What one call computed and how: ``output`` is ``(N, C_out, H_out, W_out)``."""

    output: np.ndarray
    algorithm: str


class Engine(ABC):
    """A convolution algorithm behind torch's ``F.conv2d`` signature.

    Subclasses implement :meth:`_compute` on an already validated and padded input. Every call
    records the algorithm that really ran (per thread) in :attr:`last_algorithm`; :meth:`run`
    returns it with the output.
    """

    name: str = ""
    description: str = ""

    def __init__(self) -> None:
        self._local = threading.local()

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
    ) -> np.ndarray:
        """2-D convolution (cross-correlation, as in torch) of ``(N, C_in, H, W)`` input with
        ``(C_out, C_in/groups, kH, kW)`` weight; returns ``(N, C_out, H_out, W_out)``.

        ``H_out = floor((H + 2p - d(k-1) - 1) / s) + 1``. Raises ``ValueError`` naming the
        values on invalid arguments.
        """
        return self.run(x, weight, bias, stride, padding, dilation, groups, padding_mode).output

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
    ) -> ConvResult:
        """Like :meth:`conv2d`, also naming the algorithm that ran."""
        xp, w, b, spec = prepare(x, weight, bias, stride, padding, dilation, groups, padding_mode)
        out, algorithm = self._compute(xp, w, spec)
        out = add_bias(out, b)
        self._local.algorithm = algorithm
        return ConvResult(out, algorithm)

    @property
    def last_algorithm(self) -> str | None:
        """The algorithm of this thread's latest call, or None before the first."""
        return getattr(self._local, "algorithm", None)

    def algorithm_for(self, spec: ConvSpec) -> str:
        """The algorithm this engine runs for a call of this shape (no computation)."""
        return self.name

    @abstractmethod
    def _compute(self, xp: np.ndarray, weight: np.ndarray, spec: ConvSpec) -> tuple[np.ndarray, str]:
        """Convolve padded ``xp`` ``(N, C_in, Hp, Wp)``; return the output without bias and the
        name of the algorithm that ran. The output must be a fresh, writable array."""
