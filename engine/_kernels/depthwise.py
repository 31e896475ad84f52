"""Compiled depthwise convolution (one input channel per group)."""

from __future__ import annotations

import numpy as np
from numba import njit

from engine._kernels._shared import OPTS as _OPTS
from engine._kernels._shared import ZERO as _ZERO
from engine._kernels.im2col import _phase_planes


@njit(**_OPTS)
def depthwise(x, w, b, out, sh, sw, dh, dw, pt, pl, nc0, nc1):  # pragma: no cover - compiled
    """Depthwise conv: ``x`` (N, C, H, W), ``w`` (C*mult, 1, kH, kW), ``b`` (C*mult,) or empty,
    ``out`` (N, C*mult, H_out, W_out), zero padding ``pt`` (top) / ``pl`` (left); images and
    input channels ``n*C + c`` in ``nc0 .. nc1``.

    Per channel, the padded input is split into ``sh x sw`` phase planes (rows ``pr::sh``,
    columns ``pc::sw``), so that every tap reads one plane contiguously; the taps of a kernel
    row (all nine of a 3x3 kernel) are then summed in one pass over the whole flattened output
    (its ``wq - W_out`` extra columns per row are computed and dropped).
    """
    c_ = x.shape[1]
    o_, _, kh, kw = w.shape
    mult = o_ // c_
    oh, ow = out.shape[2], out.shape[3]
    qr_max = ((kh - 1) * dh) // sh
    qc_max = ((kw - 1) * dw) // sw
    hq = oh + qr_max + 1  # one spare row: the flattened reads run past the last row's end
    wq = ow + qc_max
    size = hq * wq
    length = oh * wq
    has_bias = b.shape[0] > 0
    # the padding cells are the same for every channel: zeroed once, never written
    planes = np.zeros((sh * sw, size), dtype=x.dtype)
    rowbuf = np.zeros(max(sw * wq, pl + x.shape[3]), dtype=x.dtype)
    acc = np.empty(length, dtype=x.dtype)
    # each tap's phase plane and start, computed once: four integer divisions per tap and
    # channel cost more than a 7x7 map's multiply-adds
    tpl = np.empty(kh * kw, dtype=np.int64)
    toff = np.empty(kh * kw, dtype=np.int64)
    for i in range(kh):
        for j in range(kw):
            tpl[i * kw + j] = ((i * dh) % sh) * sw + (j * dw) % sw
            toff[i * kw + j] = ((i * dh) // sh) * wq + (j * dw) // sw
    for nc in range(nc0, nc1):
        n = nc // c_
        c = nc - n * c_
        _phase_planes(x, n, c, planes, rowbuf, sh, sw, pt, pl, hq, wq)
        for m in range(mult):
            o = c * mult + m
            start = b[o] if has_bias else _ZERO
            if kh == 3 and kw == 3:
                t0 = _tapv(planes, tpl, toff, 0, length)
                t1 = _tapv(planes, tpl, toff, 1, length)
                t2 = _tapv(planes, tpl, toff, 2, length)
                t3 = _tapv(planes, tpl, toff, 3, length)
                t4 = _tapv(planes, tpl, toff, 4, length)
                t5 = _tapv(planes, tpl, toff, 5, length)
                t6 = _tapv(planes, tpl, toff, 6, length)
                t7 = _tapv(planes, tpl, toff, 7, length)
                t8 = _tapv(planes, tpl, toff, 8, length)
                w0, w1, w2 = w[o, 0, 0, 0], w[o, 0, 0, 1], w[o, 0, 0, 2]
                w3, w4, w5 = w[o, 0, 1, 0], w[o, 0, 1, 1], w[o, 0, 1, 2]
                w6, w7, w8 = w[o, 0, 2, 0], w[o, 0, 2, 1], w[o, 0, 2, 2]
                for k in range(length):
                    acc[k] = (start + (w0 * t0[k] + w1 * t1[k] + w2 * t2[k])
                              + (w3 * t3[k] + w4 * t4[k] + w5 * t5[k])
                              + (w6 * t6[k] + w7 * t7[k] + w8 * t8[k]))
            else:
                for k in range(length):
                    acc[k] = start
                for i in range(kh):
                    j = 0
                    while j + 5 <= kw:  # five taps of the row per pass
                        t0 = _tapv(planes, tpl, toff, i * kw + j, length)
                        t1 = _tapv(planes, tpl, toff, i * kw + j + 1, length)
                        t2 = _tapv(planes, tpl, toff, i * kw + j + 2, length)
                        t3 = _tapv(planes, tpl, toff, i * kw + j + 3, length)
                        t4 = _tapv(planes, tpl, toff, i * kw + j + 4, length)
                        w0, w1, w2 = w[o, 0, i, j], w[o, 0, i, j + 1], w[o, 0, i, j + 2]
                        w3, w4 = w[o, 0, i, j + 3], w[o, 0, i, j + 4]
                        for k in range(length):
                            acc[k] += (w0 * t0[k] + w1 * t1[k] + w2 * t2[k]) + (w3 * t3[k] + w4 * t4[k])
                        j += 5
                    while j < kw:
                        t0 = _tapv(planes, tpl, toff, i * kw + j, length)
                        wv = w[o, 0, i, j]
                        for k in range(length):
                            acc[k] += wv * t0[k]
                        j += 1
            for y in range(oh):
                dst = out[n, o, y]
                av = acc[y * wq : y * wq + ow]
                for xx in range(ow):
                    dst[xx] = av[xx]


@njit(inline="always", **_OPTS)
def _tapv(planes, tpl, toff, t, length):  # pragma: no cover - compiled
    """The flattened input that kernel tap ``t = i*kW + j`` multiplies (offsets from
    :func:`depthwise`'s table)."""
    return planes[tpl[t], toff[t] : toff[t] + length]

