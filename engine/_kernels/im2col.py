"""Compiled im2col steps: patch matrices (plain and wide rows) and phase planes."""

from __future__ import annotations

import numpy as np
from numba import njit

from engine._kernels._shared import OPTS as _OPTS
from engine._kernels._shared import ZERO as _ZERO


@njit(**_OPTS)
def _phase_planes(x, n, c, planes, rowbuf, sh, sw, pt, pl, hq, wq):  # pragma: no cover
    """Fill ``planes[pr*sw + pc, r*wq + q] = padded[r*sh + pr, q*sw + pc]`` for one channel.

    Cells that fall into the padding are never written (the caller zeroes ``planes`` and
    ``rowbuf`` once per call, and every channel writes the same cells).
    """
    h, wd = x.shape[2], x.shape[3]
    for pr in range(sh):
        for r in range(hq):
            src = r * sh + pr - pt
            if src < 0 or src >= h:
                continue
            row = x[n, c, src]
            if sw == 1:
                # plane columns q whose input column q - pl is inside the row
                q0 = min(pl, wq)
                q1 = max(q0, min(wq, wd + pl))
                dst = planes[pr, r * wq + q0 : r * wq + q1]
                sv = row[q0 - pl : q1 - pl]
                for q in range(q1 - q0):
                    dst[q] = sv[q]
                continue
            # the padded row, then one pass that de-interleaves it into the column phases
            cw = min(wd, rowbuf.shape[0] - pl)
            rb = rowbuf[pl : pl + cw]
            for q in range(cw):
                rb[q] = row[q]
            if sw == 2:  # a constant stride: LLVM de-interleaves with shuffles
                p0 = planes[pr * 2, r * wq : r * wq + wq]
                p1 = planes[pr * 2 + 1, r * wq : r * wq + wq]
                for q in range(wq):
                    p0[q] = rowbuf[2 * q]
                    p1[q] = rowbuf[2 * q + 1]
            else:
                for pc in range(sw):
                    pv = planes[pr * sw + pc, r * wq : r * wq + wq]
                    st = rowbuf[pc : pc + (wq - 1) * sw + 1 : sw]
                    for q in range(wq):
                        pv[q] = st[q]



@njit(**_OPTS)
def patches(x, cols, n, ch0, kh, kw, sh, sw, dh, dw, pt, pl, y0, y1, ow, r0, r1):  # pragma: no cover
    """Rows ``r0 .. r1`` (each a tap ``(c, i, j)``) of the patch matrix of image ``n``, channels
    ``ch0 ..``, for output rows ``y0 .. y1``: ``cols[(c*kH + i)*kW + j, (y - y0)*W_out + x] =
    padded[n, ch0 + c, y*sh + i*dh, x*sw + j*dw]`` (zero where that falls into the padding)."""
    h, wd = x.shape[2], x.shape[3]
    taps = kh * kw
    for r in range(r0, r1):
        c = r // taps
        i = (r // kw) % kh
        j = r % kw
        col_off = j * dw - pl
        # output columns whose tap lands inside the input: 0 <= xx*sw + col_off < W
        x_lo = 0
        while x_lo < ow and x_lo * sw + col_off < 0:
            x_lo += 1
        x_hi = ow
        while x_hi > x_lo and (x_hi - 1) * sw + col_off >= wd:
            x_hi -= 1
        for y in range(y0, y1):
            dst = cols[r, (y - y0) * ow : (y - y0 + 1) * ow]
            src = y * sh + i * dh - pt
            if src < 0 or src >= h:
                for xx in range(ow):
                    dst[xx] = _ZERO
                continue
            for xx in range(x_lo):
                dst[xx] = _ZERO
            inner = dst[x_lo:x_hi]
            s0 = x_lo * sw + col_off  # >= 0
            if sw == 1:
                sv = x[n, ch0 + c, src, s0 : s0 + x_hi - x_lo]
                for q in range(x_hi - x_lo):
                    inner[q] = sv[q]
            elif sw == 2:  # a constant stride: vectorised loads
                sv = x[n, ch0 + c, src, s0:]
                for q in range(x_hi - x_lo):
                    inner[q] = sv[2 * q]
            else:
                st = x[n, ch0 + c, src, s0 : s0 + (x_hi - x_lo - 1) * sw + 1 : sw]
                for q in range(x_hi - x_lo):
                    inner[q] = st[q]
            tail = dst[x_hi:]
            for q in range(ow - x_hi):
                tail[q] = _ZERO



@njit(**_OPTS)
def patches_short(x, cols, n, ch0, kh, kw, sh, sw, dh, dw, pt, pl, y0, y1, ow, r0, r1):  # pragma: no cover
    """:func:`patches` for short output rows (a few to a few dozen pixels, or strided reads):
    the same matrix, filled with plain indexed loads and stores. Slicing one view per output row
    and tap (as :func:`patches` does, so that long rows vectorise) costs more than the copy
    itself when the rows are short: a 7x7 map's patch matrix took 2.7 ns per element."""
    h, wd = x.shape[2], x.shape[3]
    taps = kh * kw
    for r in range(r0, r1):
        c = r // taps
        i = (r // kw) % kh
        j = r % kw
        col_off = j * dw - pl
        x_lo = 0
        while x_lo < ow and x_lo * sw + col_off < 0:
            x_lo += 1
        x_hi = ow
        while x_hi > x_lo and (x_hi - 1) * sw + col_off >= wd:
            x_hi -= 1
        dst = cols[r]
        xc = x[n, ch0 + c]
        d = 0
        for y in range(y0, y1):
            src = y * sh + i * dh - pt
            if src < 0 or src >= h:
                for xx in range(ow):
                    dst[d + xx] = _ZERO
            else:
                for xx in range(x_lo):
                    dst[d + xx] = _ZERO
                for xx in range(x_lo, x_hi):
                    dst[d + xx] = xc[src, xx * sw + col_off]
                for xx in range(x_hi, ow):
                    dst[d + xx] = _ZERO
            d += ow


@njit(**_OPTS)
def phase_planes(x, n, planes, sh, sw, pt, pl, hq, wq, c0, c1):  # pragma: no cover - compiled
    """``planes[c, pr*sW + pc, r*wq + q] = padded[n, c, r*sH + pr, q*sW + pc]`` for channels
    ``c0 .. c1`` (see :func:`_phase_planes`; ``planes`` zeroed by the caller: padding cells are
    never written)."""
    rowbuf = np.zeros(max(sw * wq, pl + x.shape[3]), dtype=x.dtype)
    for c in range(c0, c1):
        _phase_planes(x, n, c, planes[c], rowbuf, sh, sw, pt, pl, hq, wq)


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
