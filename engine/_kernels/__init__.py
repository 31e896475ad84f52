"""numba kernels: single-pass versions of the engines' NumPy steps (see :mod:`engine._jit`).

Every kernel reads the *unpadded* input and treats taps outside it as zeros, so no padded copy
of the input is ever made; outputs are written in place into arrays the caller allocated (the
caller bounds their size). Each kernel does a range of channels (or rows) on the calling thread
and releases the GIL: :mod:`engine._parallel` runs the ranges on the machine's cores. Everything
is compiled on first use and cached on disk (``cache=True``).

What each computes is the NumPy form's result, bit for bit up to float rounding order:

- :func:`depthwise`: :class:`engine.direct.DirectEngine`'s tap loop for one input channel per
  group, with zero padding, stride, dilation and bias fused; :func:`dense3x3` the same loop
  for dense 3x3 kernels (over phase planes, four output channels per pass);
- :func:`winograd_input` / :func:`winograd_output`: :func:`engine.winograd.winograd_conv`'s
  ``B^T d B`` and ``A^T M A`` with the separable 1-D transforms written out (the NumPy form
  applies them as Kronecker matrices);
- :func:`patches`: :func:`engine.im2col.patch_matrix` for a band of output rows;
- :func:`phase_planes` / :func:`patches_wide`: :func:`engine.im2col.phase_planes` and
  :func:`engine.im2col.wide_patch_matrix` (strided convolutions), :func:`crop_rows` the
  crop of the wide GEMM's result to the output's width, bias added;
- :mod:`engine._kernels.blas`: GEMM pieces through NumPy's own BLAS.

Each kernel ``k`` has a ``k_team(..., bounds)`` beside it: ``k``'s pieces ``bounds[p] ..
bounds[p + 1]`` run on numba's threads (the ``threadsafe`` threading layer: OpenMP, or TBB if installed; see
:mod:`engine._parallel` for why a thread team and not Python threads).
"""

import atexit
import os

import numba

if "NUMBA_THREADING_LAYER" not in os.environ:  # the user's own choice wins
    numba.config.THREADING_LAYER = "threadsafe"  # two GUI lanes may launch at once


from engine._kernels import blas
from engine._kernels.depthwise import depthwise, phase_planes
from engine._kernels.direct import dense3x3
from engine._kernels.im2col import crop_rows, patches, patches_wide
from engine._kernels.winograd import winograd_filter, winograd_input, winograd_output


def _hold_the_compiler() -> None:
    """At exit, wait for a compilation under way on another thread (the start-up warm-up) and
    keep any other from starting: LLVM is torn down when the process ends, and a compiler
    thread still inside it crashed the app's exit (SIGSEGV or SIGABRT, 5 of 7 exits within
    the first ~30 s on a machine that had never compiled the kernels)."""
    from numba.core.compiler_lock import global_compiler_lock

    global_compiler_lock.acquire()  # held until the process is gone


atexit.register(_hold_the_compiler)

__all__ = [
    "blas",
    "crop_rows",
    "dense3x3",
    "depthwise",
    "patches",
    "patches_wide",
    "phase_planes",
    "winograd_filter",
    "winograd_input",
    "winograd_output",
]
