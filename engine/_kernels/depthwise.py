"""Compiled depthwise convolution (one input channel per group), and the phase planes it reads
(which the strided im2col path and the dense tap loop read too).

:func:`_phase_planes` lives here, beside its callers: numba's disk cache checks only the file
that defines a function, so a kernel calling a compiled function of another module would keep
running a stale copy of it after that module changed."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

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
def phase_planes(x, n, planes, sh, sw, pt, pl, hq, wq, c0, c1):  # pragma: no cover - compiled
    """``planes[c, pr*sW + pc, r*wq + q] = padded[n, c, r*sH + pr, q*sW + pc]`` for channels
    ``c0 .. c1`` (see :func:`_phase_planes`; ``planes`` zeroed by the caller: padding cells are
    never written)."""
    rowbuf = np.zeros(max(sw * wq, pl + x.shape[3]), dtype=x.dtype)
    for c in range(c0, c1):
        _phase_planes(x, n, c, planes[c], rowbuf, sh, sw, pt, pl, hq, wq)


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
    if kh == 3 and kw == 3 and mult == 1:
        _depthwise3(x, w, b, out, planes, rowbuf, acc, tpl, toff, sh, sw, pt, pl, hq, wq, length, nc0, nc1)
        return
    if kh == 5 and kw == 5 and mult == 1:
        _depthwise5(x, w, b, out, planes, rowbuf, acc, tpl, toff, sh, sw, pt, pl, hq, wq, length, nc0, nc1)
        return
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
                    acc[k] = (
                        start
                        + (w0 * t0[k] + w1 * t1[k] + w2 * t2[k])
                        + (w3 * t3[k] + w4 * t4[k] + w5 * t5[k])
                        + (w6 * t6[k] + w7 * t7[k] + w8 * t8[k])
                    )
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


@njit(**_OPTS)
def _depthwise5(
    x, w, b, out, planes, rowbuf, acc, tpl, toff, sh, sw, pt, pl, hq, wq, length, nc0, nc1
):  # pragma: no cover - compiled
    """:func:`depthwise`'s loop for 5x5 kernels without a channel multiplier: the 25 taps'
    views of the phase planes are made once for all channels (they stay valid: each channel's
    planes are written into the same buffer), and summed in one pass (25 weights in registers,
    the accumulator written once). Five passes over the accumulator with five new views each,
    per channel, cost twice as much on the 7x7 and 14x14 maps where 5x5 kernels run."""
    c_ = x.shape[1]
    oh, ow = out.shape[2], out.shape[3]
    has_bias = b.shape[0] > 0
    t0, t1, t2, t3, t4 = (
        _tapv(planes, tpl, toff, 0, length),
        _tapv(planes, tpl, toff, 1, length),
        _tapv(planes, tpl, toff, 2, length),
        _tapv(planes, tpl, toff, 3, length),
        _tapv(planes, tpl, toff, 4, length),
    )
    t5, t6, t7, t8, t9 = (
        _tapv(planes, tpl, toff, 5, length),
        _tapv(planes, tpl, toff, 6, length),
        _tapv(planes, tpl, toff, 7, length),
        _tapv(planes, tpl, toff, 8, length),
        _tapv(planes, tpl, toff, 9, length),
    )
    t10, t11, t12, t13, t14 = (
        _tapv(planes, tpl, toff, 10, length),
        _tapv(planes, tpl, toff, 11, length),
        _tapv(planes, tpl, toff, 12, length),
        _tapv(planes, tpl, toff, 13, length),
        _tapv(planes, tpl, toff, 14, length),
    )
    t15, t16, t17, t18, t19 = (
        _tapv(planes, tpl, toff, 15, length),
        _tapv(planes, tpl, toff, 16, length),
        _tapv(planes, tpl, toff, 17, length),
        _tapv(planes, tpl, toff, 18, length),
        _tapv(planes, tpl, toff, 19, length),
    )
    t20, t21, t22, t23, t24 = (
        _tapv(planes, tpl, toff, 20, length),
        _tapv(planes, tpl, toff, 21, length),
        _tapv(planes, tpl, toff, 22, length),
        _tapv(planes, tpl, toff, 23, length),
        _tapv(planes, tpl, toff, 24, length),
    )
    for nc in range(nc0, nc1):
        n = nc // c_
        c = nc - n * c_
        _phase_planes(x, n, c, planes, rowbuf, sh, sw, pt, pl, hq, wq)
        start = b[c] if has_bias else _ZERO
        wc = w[c, 0]
        w0, w1, w2, w3, w4 = wc[0, 0], wc[0, 1], wc[0, 2], wc[0, 3], wc[0, 4]
        w5, w6, w7, w8, w9 = wc[1, 0], wc[1, 1], wc[1, 2], wc[1, 3], wc[1, 4]
        w10, w11, w12, w13, w14 = wc[2, 0], wc[2, 1], wc[2, 2], wc[2, 3], wc[2, 4]
        w15, w16, w17, w18, w19 = wc[3, 0], wc[3, 1], wc[3, 2], wc[3, 3], wc[3, 4]
        w20, w21, w22, w23, w24 = wc[4, 0], wc[4, 1], wc[4, 2], wc[4, 3], wc[4, 4]
        for k in range(length):
            acc[k] = (
                start
                + ((w0 * t0[k] + w1 * t1[k] + w2 * t2[k]) + (w3 * t3[k] + w4 * t4[k]))
                + ((w5 * t5[k] + w6 * t6[k] + w7 * t7[k]) + (w8 * t8[k] + w9 * t9[k]))
                + ((w10 * t10[k] + w11 * t11[k] + w12 * t12[k]) + (w13 * t13[k] + w14 * t14[k]))
                + ((w15 * t15[k] + w16 * t16[k] + w17 * t17[k]) + (w18 * t18[k] + w19 * t19[k]))
                + ((w20 * t20[k] + w21 * t21[k] + w22 * t22[k]) + (w23 * t23[k] + w24 * t24[k]))
            )
        for y in range(oh):
            dst = out[n, c, y]
            av = acc[y * wq : y * wq + ow]
            for xx in range(ow):
                dst[xx] = av[xx]


@njit(**_OPTS)
def _depthwise3(
    x, w, b, out, planes, rowbuf, acc, tpl, toff, sh, sw, pt, pl, hq, wq, length, nc0, nc1
):  # pragma: no cover - compiled
    """:func:`_depthwise5` for 3x3 kernels: nine views made once, one pass per channel."""
    c_ = x.shape[1]
    oh, ow = out.shape[2], out.shape[3]
    has_bias = b.shape[0] > 0
    t0, t1, t2 = (
        _tapv(planes, tpl, toff, 0, length),
        _tapv(planes, tpl, toff, 1, length),
        _tapv(planes, tpl, toff, 2, length),
    )
    t3, t4, t5 = (
        _tapv(planes, tpl, toff, 3, length),
        _tapv(planes, tpl, toff, 4, length),
        _tapv(planes, tpl, toff, 5, length),
    )
    t6, t7, t8 = (
        _tapv(planes, tpl, toff, 6, length),
        _tapv(planes, tpl, toff, 7, length),
        _tapv(planes, tpl, toff, 8, length),
    )
    for nc in range(nc0, nc1):
        n = nc // c_
        c = nc - n * c_
        _phase_planes(x, n, c, planes, rowbuf, sh, sw, pt, pl, hq, wq)
        start = b[c] if has_bias else _ZERO
        wc = w[c, 0]
        w0, w1, w2 = wc[0, 0], wc[0, 1], wc[0, 2]
        w3, w4, w5 = wc[1, 0], wc[1, 1], wc[1, 2]
        w6, w7, w8 = wc[2, 0], wc[2, 1], wc[2, 2]
        for k in range(length):
            acc[k] = (
                start
                + (w0 * t0[k] + w1 * t1[k] + w2 * t2[k])
                + (w3 * t3[k] + w4 * t4[k] + w5 * t5[k])
                + (w6 * t6[k] + w7 * t7[k] + w8 * t8[k])
            )
        for y in range(oh):
            dst = out[n, c, y]
            av = acc[y * wq : y * wq + ow]
            for xx in range(ow):
                dst[xx] = av[xx]


# Each kernel's pieces on numba's OpenMP team (see engine._parallel.run_kernel): one wrapper
# per kernel, written out, because numba's disk cache cannot keep a function that takes a
# compiled function as an argument (its type names the function's address in this process).


@njit(parallel=True, **_OPTS)
def phase_planes_team(x, n, planes, sh, sw, pt, pl, hq, wq, bounds):  # pragma: no cover - compiled
    for p in prange(bounds.shape[0] - 1):
        phase_planes(x, n, planes, sh, sw, pt, pl, hq, wq, bounds[p], bounds[p + 1])


@njit(parallel=True, **_OPTS)
def depthwise_team(x, w, b, out, sh, sw, dh, dw, pt, pl, bounds):  # pragma: no cover - compiled
    for p in prange(bounds.shape[0] - 1):
        depthwise(x, w, b, out, sh, sw, dh, dw, pt, pl, bounds[p], bounds[p + 1])
