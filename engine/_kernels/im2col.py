"""Compiled im2col steps: the patch matrix, the wide patch matrix (read from the phase planes of
:mod:`engine._kernels.depthwise`) and the crop of the wide GEMM's result.

No kernel here calls a compiled function of another module: numba's disk cache checks only the
defining file, so a caller in one file would keep running a stale copy of a callee changed in
another."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from engine._kernels._shared import OPTS as _OPTS
from engine._kernels._shared import ZERO as _ZERO


@njit(**_OPTS)
def patches_wide(planes, cols, kh, kw, sh, sw, dh, dw, wq, y0, y1, r0, r1):  # pragma: no cover
    """Rows ``r0 .. r1`` of the wide patch matrix for output rows ``y0 .. y1``: row ``(c, i, j)``
    is the run of ``(y1 - y0) * wq`` values of phase plane ``((i*dH) % sH, (j*dW) % sW)`` of
    channel ``c`` that starts at plane row ``y0 + (i*dH) // sH``, column ``(j*dW) // sW`` (each
    output row followed by ``wq - W_out`` columns that are computed and dropped)."""
    taps = kh * kw
    length = (y1 - y0) * wq
    for r in range(r0, r1):
        c = r // taps
        i = (r // kw) % kh
        j = r % kw
        plane = planes[c, ((i * dh) % sh) * sw + (j * dw) % sw]
        start = (y0 + (i * dh) // sh) * wq + (j * dw) // sw
        src = plane[start : start + length]
        dst = cols[r, :length]
        for q in range(length):
            dst[q] = src[q]


@njit(**_OPTS)
def crop_rows(wide, b, out, n, y0, y1, wq, o0, o1):  # pragma: no cover - compiled
    """``out[n, o, y0 + r, :] = wide[o, r*wq : r*wq + W_out] + b[o]`` for output channels ``o0
    .. o1`` and rows ``r < y1 - y0`` (``b`` empty: no bias): the wide GEMM's result cropped to
    the output's width, bias added, in one pass (NumPy's broadcast add over the strided crop
    took 2-3x as long)."""
    ow = out.shape[3]
    has_bias = b.shape[0] > 0
    for o in range(o0, o1):
        bias = b[o] if has_bias else _ZERO
        src_o = wide[o]
        for r in range(y1 - y0):
            dst = out[n, o, y0 + r]
            src = src_o[r * wq : r * wq + ow]
            if has_bias:
                for q in range(ow):
                    dst[q] = src[q] + bias
            else:
                for q in range(ow):
                    dst[q] = src[q]


@njit(**_OPTS)
def patches(x, cols, n, ch0, kh, kw, sh, sw, dh, dw, pt, pl, y0, y1, ow, r0, r1):  # pragma: no cover
    """Rows ``r0 .. r1`` (each a tap ``(c, i, j)``) of the patch matrix of image ``n``, channels
    ``ch0 ..``, for output rows ``y0 .. y1``: ``cols[(c*kH + i)*kW + j, (y - y0)*W_out + x] =
    padded[n, ch0 + c, y*sh + i*dh, x*sw + j*dw]`` (zero where that falls into the padding).

    Built from a zero-padded copy of each channel's band of input rows, so that every tap's
    runs are plain copies with no bounds to work out per output row. Working out each run's
    bounds in the unpadded input instead took 2-4x as long, on 7x7 maps and on 112x112 ones
    alike (single-threaded, 2026-11-26)."""
    h, wd = x.shape[2], x.shape[3]
    taps = kh * kw
    rows = y1 - y0
    ph = (rows - 1) * sh + (kh - 1) * dh + 1
    pw = (ow - 1) * sw + (kw - 1) * dw + 1
    top = y0 * sh - pt  # the input row of the band's first padded row
    # the input columns inside the padded row: px - pl in [0, W)
    x_lo = min(max(0, pl), pw)
    x_hi = max(x_lo, min(pw, wd + pl))
    pad = np.zeros(ph * pw, dtype=x.dtype)
    c_done = -1
    for r in range(r0, r1):
        c = r // taps
        t = r - c * taps
        i = t // kw
        j = t - i * kw
        if c != c_done:  # the channel's padded band (its padding cells are always zero)
            xc = x[n, ch0 + c]
            for py in range(ph):
                prow = pad[py * pw : py * pw + pw]
                src = top + py
                if 0 <= src < h:
                    sv = xc[src, x_lo - pl : x_hi - pl]
                    inner = prow[x_lo:x_hi]
                    for q in range(x_hi - x_lo):
                        inner[q] = sv[q]
                else:
                    for q in range(pw):
                        prow[q] = _ZERO
            c_done = c
        dst = cols[r]
        if sw == 1:  # contiguous runs: slices, which LLVM copies as blocks
            for y in range(rows):
                base = (y * sh + i * dh) * pw + j * dw
                sv = pad[base : base + ow]
                dv = dst[y * ow : y * ow + ow]
                for q in range(ow):
                    dv[q] = sv[q]
        else:  # strided runs: plain indexed loads (a view per run costs more than the run)
            sv = pad[i * dh * pw + j * dw :]
            d = 0
            for y in range(rows):
                base = y * sh * pw
                for q in range(ow):
                    dst[d + q] = sv[base + q * sw]
                d += ow


# Each kernel's pieces on numba's OpenMP team (see engine._parallel.run_kernel): one wrapper
# per kernel, written out, because numba's disk cache cannot keep a function that takes a
# compiled function as an argument (its type names the function's address in this process).


@njit(parallel=True, **_OPTS)
def patches_wide_team(planes, cols, kh, kw, sh, sw, dh, dw, wq, y0, y1, bounds):  # pragma: no cover
    for p in prange(bounds.shape[0] - 1):
        patches_wide(planes, cols, kh, kw, sh, sw, dh, dw, wq, y0, y1, bounds[p], bounds[p + 1])


@njit(parallel=True, **_OPTS)
def crop_rows_team(wide, b, out, n, y0, y1, wq, bounds):  # pragma: no cover - compiled
    for p in prange(bounds.shape[0] - 1):
        crop_rows(wide, b, out, n, y0, y1, wq, bounds[p], bounds[p + 1])


@njit(parallel=True, **_OPTS)
def patches_team(x, cols, n, ch0, kh, kw, sh, sw, dh, dw, pt, pl, y0, y1, ow, bounds):  # pragma: no cover
    for p in prange(bounds.shape[0] - 1):
        patches(x, cols, n, ch0, kh, kw, sh, sw, dh, dw, pt, pl, y0, y1, ow, bounds[p], bounds[p + 1])
