"""auto: per layer shape, the fastest of our algorithms, measured on first use and cached.

Like cuDNN's benchmark mode: the first call of a shape times every candidate that applies on the
real input (three turns each), keeps the winner for that shape and returns its result (so the
measurement costs no extra pass over the model); later calls of the shape go straight to the
winner.

What is timed is CPU time, not wall-clock time (on numba's thread team the calling thread's,
see below; with the Python helper threads the whole process's, ``time.process_time``, the
helpers included): on a machine shared
with other work, a call's wall-clock time is mostly how long the scheduler kept it waiting (a
3 ms layer measured 7-11 ms, and auto picked a 1.5x slower algorithm by it), while its CPU time
moves by a few percent. Every algorithm splits each of its steps over the engine's threads, so on
an idle machine the one that needs the least CPU time is also the one that finishes first. When
the pieces run on numba's OpenMP team (:func:`engine.uses_team`), only the calling thread's CPU
time is counted (``time.thread_time``; it computes one piece of every step and waits for the
others at the step's end): the team's threads spin for a while after each step (~5 ms with GNU
OpenMP's default spin, before ``engine._parallel.TEAM_SPIN`` shortened it), and that CPU time,
charged to whichever candidate ran next, made auto pick F(2x2) Winograd where F(4x4) was 20%
faster. float64 and FFT's complex GEMMs still go to the Python helper threads, whose CPU time
this clock misses: auto may then think those candidates cheaper than they are.

Depthwise convolutions (one input channel per group) take a fast path without measuring: the
direct tap loop does ``kH*kW`` vectorised multiply-adds over the whole map, where a GEMM
would degenerate into thousands of 1-row products. Dense 3x3 layers with few input channels
(stems) also time the compiled direct tap loop.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Hashable

import numpy as np

from engine._common import ConvSpec
from engine._parallel import uses_team
from engine._weight_cache import WeightCacheInfo
from engine.base import Engine
from engine.direct import DirectEngine, compiled_dense
from engine.fft import FFTEngine
from engine.im2col import Im2colEngine
from engine.winograd import WinogradEngine, applies


def shape_key(spec: ConvSpec) -> tuple:
    """What decides the winner: every shape field of the call."""
    return (
        spec.n,
        spec.c_in,
        spec.h,
        spec.w,
        spec.c_out,
        spec.kh,
        spec.kw,
        spec.stride,
        spec.pad,
        spec.dilation,
        spec.groups,
        spec.dtype.char,
    )


class AutoEngine(Engine):
    name = "auto"
    description = "The fastest of ours per layer shape, measured on first use and cached"

    def __init__(self, jit: bool = True) -> None:
        super().__init__()
        self.jit = jit
        self._engines: dict[str, Engine] = {
            "direct": DirectEngine(jit=jit),
            "im2col": Im2colEngine(jit=jit),
            "winograd F(2x2)": WinogradEngine(jit=jit, tile=2),
            "winograd F(4x4)": WinogradEngine(jit=jit, tile=4),
            "fft": FFTEngine(jit=jit),
        }
        self._choice: dict[tuple, str] = {}
        self._timings: dict[tuple, dict[str, float]] = {}
        self._lock = threading.Lock()

    def candidates(self, spec: ConvSpec) -> list[str]:
        """The algorithms worth timing for this shape."""
        if spec.is_depthwise:
            return ["direct"]  # depthwise fast path
        names = ["im2col"]
        if self.jit and compiled_dense(spec):
            names.append("direct")  # the compiled tap loop: stems (3 input channels, K = 27)
        if applies(spec):
            # F(4x4) does fewer multiplications, F(2x2) has 2.25x more tiles per GEMM and a
            # 2.25x smaller transformed filter: on small maps either can win
            if min(spec.out_h, spec.out_w) >= 4:
                names.append("winograd F(4x4)")
            names.append("winograd F(2x2)")
        # the transform's cost only pays off against big kernels
        if spec.kh * spec.kw >= 25 and spec.stride == (1, 1):
            names.append("fft")
        return names

    def cache_info(self) -> dict[tuple, tuple[str, dict[str, float]]]:
        """Shape key -> (chosen engine, CPU seconds measured per candidate, best of its turns)."""
        with self._lock:
            return {k: (v, dict(self._timings.get(k, {}))) for k, v in self._choice.items()}

    def clear_cache(self) -> None:
        """Forget the measured winners (the next call of each shape measures again)."""
        with self._lock:
            self._choice.clear()
            self._timings.clear()

    def clear_weight_cache(self) -> None:
        super().clear_weight_cache()
        for engine in self._engines.values():
            engine.clear_weight_cache()

    def weight_cache_info(self) -> WeightCacheInfo:
        """The sum over the algorithms auto runs."""
        infos = [engine.weight_cache_info() for engine in self._engines.values()]
        return WeightCacheInfo(*(sum(i[f] for i in infos) for f in range(4)), infos[0].limit_bytes)

    def algorithm_for(self, spec: ConvSpec) -> str:
        with self._lock:
            chosen = self._choice.get(shape_key(spec))
        if chosen is None:
            names = self.candidates(spec)
            if len(names) > 1:
                return "auto (not measured yet)"
            chosen = names[0]
        return f"auto → {self._engines[chosen].algorithm_for(spec)}"

    def _compute(
        self,
        x: np.ndarray,
        weight: np.ndarray,
        bias: np.ndarray | None,
        spec: ConvSpec,
        weight_key: Hashable | None,
    ) -> tuple[np.ndarray, str]:
        key = shape_key(spec)
        with self._lock:
            chosen = self._choice.get(key)
        if chosen is not None:
            out, algo = self._engines[chosen]._compute(x, weight, bias, spec, weight_key)
            return out, f"auto → {algo}"
        names = self.candidates(spec)
        best: tuple[float, str, np.ndarray, str] | None = None
        timings: dict[str, float] = {}
        # three rounds, candidates taking turns in alternating order, best of each: a first
        # call pays one-time costs (page faults, caches, the weight transform) and a shared
        # machine's speed drifts; one or two samples chose badly
        clock = time.thread_time if uses_team() else time.process_time
        for turn in range(3 if len(names) > 1 else 1):
            for name in names if turn % 2 == 0 else names[::-1]:
                start = clock()
                out, algo = self._engines[name]._compute(x, weight, bias, spec, weight_key)
                seconds = clock() - start
                timings[name] = min(seconds, timings.get(name, seconds))
                if best is None or seconds < best[0]:
                    best = (seconds, name, out, algo)
        assert best is not None
        with self._lock:
            self._choice[key] = best[1]
            self._timings[key] = timings
        return best[2], f"auto → {best[3]}"
