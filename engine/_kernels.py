"""numba kernels: single-pass versions of the engines' NumPy steps (see :mod:`engine._jit`).

Every kernel reads the *unpadded* input and treats taps outside it as zeros, so no padded copy
of the input is ever made; outputs are written in place into arrays the caller allocated (the
caller bounds their size). Each kernel does a range of channels (or rows) on the calling thread
and releases the GIL: :mod:`engine._parallel` runs the ranges on the machine's cores. Everything
is compiled on first use and cached on disk (``cache=True``).

What each computes is the NumPy form's result, bit for bit up to float rounding order:

- :func:`depthwise`: :class:`engine.direct.DirectEngine`'s tap loop for one input channel per
  group, with zero padding, stride, dilation and bias fused;
- :func:`winograd_input` / :func:`winograd_output`: :func:`engine.winograd.winograd_conv`'s
  ``B^T d B`` and ``A^T M A`` with the separable 1-D transforms written out (the NumPy form
  applies them as Kronecker matrices);
- :func:`patches`: :func:`engine.im2col.patch_matrix` for a band of output rows;
  :func:`patches_short` the same for short rows (plain indexed copies);
- :func:`phase_planes` / :func:`patches_wide`: :func:`engine.im2col.phase_planes` and
  :func:`engine.im2col.wide_patch_matrix` (strided convolutions).
"""

from __future__ import annotations

import numpy as np
from numba import njit

_OPTS = dict(cache=True, nogil=True, error_model="numpy", boundscheck=False)


# Indexing: numba wraps negative indices around, so an index it cannot prove non-negative
# (``row[q + off]``, ``a[t * m + j]``) costs a branch per element and keeps LLVM from
# vectorising the loop; inner loops here index slices by the bare loop variable instead.
#
# Constants as float32: a float64 literal would make numba compute float32 data in float64,
# which LLVM does not vectorise (4-5x slower). float32 * float64 is float64, so the float64
# kernels are unaffected (every constant here is exact in float32).
_TWO = np.float32(2.0)
_FOUR = np.float32(4.0)
_FIVE = np.float32(5.0)
_EIGHT = np.float32(8.0)
_ZERO = np.float32(0.0)


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
def winograd_input(x, v, m, pt, pl, ty0, ty1, tw, nc0, nc1):  # pragma: no cover - compiled
    """``v[k1*a + k2, c, p] = (B^T d B)[k1, k2]`` for every tile ``d`` (``a x a``, a = m + 2) of
    ``x`` (N, C, H, W) in tile rows ``ty0 .. ty1``; tile ``p = (n*(ty1-ty0) + ty - ty0)*tw + tx``
    starts at padded row ``ty*m``, column ``tx*m``. F(4x4, 3x3) for m = 4, F(2x2, 3x3) for m = 2.
    Images and input channels ``n*C + c`` in ``nc0 .. nc1``.

    Per tile row: the a input rows (zero padded) are combined along H first, over whole rows
    (contiguous, vectorised); each combined row is split by column phase (``q % m``), so that
    the transform along W reads contiguous arrays too.
    """
    _, c_, h, wd = x.shape
    a = m + 2
    rows = ty1 - ty0
    p_ = rows * tw
    wb = tw * m + 2  # the padded row width the tiles cover
    for nc in range(nc0, nc1):
        n = nc // c_
        c = nc - n * c_
        base = n * p_
        buf = np.zeros((a, wb), dtype=x.dtype)  # the tile row's input rows, zero padded
        r = np.empty((a, wb), dtype=x.dtype)  # after the transform along H
        ph = np.zeros((m, tw + 1), dtype=x.dtype)  # one row of r split by column phase
        for ty in range(ty0, ty1):
            for i in range(a):
                src = ty * m + i - pt
                bi = buf[i]
                if 0 <= src < h:
                    row = x[n, c, src]
                    inside = bi[pl : pl + wd]
                    for q in range(wd):
                        inside[q] = row[q]
                else:
                    for q in range(wb):
                        bi[q] = _ZERO
            pb = base + (ty - ty0) * tw
            if m == 4:
                b0, b1, b2, b3, b4, b5 = buf[0], buf[1], buf[2], buf[3], buf[4], buf[5]
                r0, r1, r2, r3, r4, r5 = r[0], r[1], r[2], r[3], r[4], r[5]
                for q in range(wb):
                    e0, e1, e2, e3, e4, e5 = b0[q], b1[q], b2[q], b3[q], b4[q], b5[q]
                    f1 = e4 - _FOUR * e2
                    f2 = e3 - _FOUR * e1
                    f3 = e4 - e2
                    f4 = _TWO * (e3 - e1)
                    r0[q] = _FOUR * e0 - _FIVE * e2 + e4
                    r1[q] = f1 + f2
                    r2[q] = f1 - f2
                    r3[q] = f3 + f4
                    r4[q] = f3 - f4
                    r5[q] = _FOUR * e1 - _FIVE * e3 + e5
                p0, p1, p2, p3 = ph[0], ph[1], ph[2], ph[3]
                for k1 in range(a):
                    rk = r[k1]
                    for t in range(tw):
                        p0[t] = rk[4 * t]
                        p1[t] = rk[4 * t + 1]
                        p2[t] = rk[4 * t + 2]
                        p3[t] = rk[4 * t + 3]
                    p0[tw] = rk[4 * tw]
                    p1[tw] = rk[4 * tw + 1]
                    o = k1 * 6
                    v0 = v[o, c, pb : pb + tw]
                    v1 = v[o + 1, c, pb : pb + tw]
                    v2 = v[o + 2, c, pb : pb + tw]
                    v3 = v[o + 3, c, pb : pb + tw]
                    v4 = v[o + 4, c, pb : pb + tw]
                    v5 = v[o + 5, c, pb : pb + tw]
                    for t in range(tw):
                        e0, e1, e2, e3, e4, e5 = p0[t], p1[t], p2[t], p3[t], p0[t + 1], p1[t + 1]
                        f1 = e4 - _FOUR * e2
                        f2 = e3 - _FOUR * e1
                        f3 = e4 - e2
                        f4 = _TWO * (e3 - e1)
                        v0[t] = _FOUR * e0 - _FIVE * e2 + e4
                        v1[t] = f1 + f2
                        v2[t] = f1 - f2
                        v3[t] = f3 + f4
                        v4[t] = f3 - f4
                        v5[t] = _FOUR * e1 - _FIVE * e3 + e5
            else:  # m == 2: B^T = [[1,0,-1,0],[0,1,1,0],[0,-1,1,0],[0,1,0,-1]]
                b0, b1, b2, b3 = buf[0], buf[1], buf[2], buf[3]
                r0, r1, r2, r3 = r[0], r[1], r[2], r[3]
                for q in range(wb):
                    r0[q] = b0[q] - b2[q]
                    r1[q] = b1[q] + b2[q]
                    r2[q] = b2[q] - b1[q]
                    r3[q] = b1[q] - b3[q]
                p0, p1 = ph[0], ph[1]
                for k1 in range(a):
                    rk = r[k1]
                    for t in range(tw + 1):
                        p0[t] = rk[2 * t]
                        p1[t] = rk[2 * t + 1]
                    o = k1 * 4
                    v0 = v[o, c, pb : pb + tw]
                    v1 = v[o + 1, c, pb : pb + tw]
                    v2 = v[o + 2, c, pb : pb + tw]
                    v3 = v[o + 3, c, pb : pb + tw]
                    for t in range(tw):
                        v0[t] = p0[t] - p0[t + 1]
                        v1[t] = p1[t] + p0[t + 1]
                        v2[t] = p0[t + 1] - p1[t]
                        v3[t] = p1[t] - p1[t + 1]


@njit(**_OPTS)
def winograd_output(mm, b, out, m, ty0, ty1, tw, no0, no1):  # pragma: no cover - compiled
    """``out[n, o, ty*m + i, tx*m + j] = (A^T M A)[i, j] + b[o]`` for tile rows ``ty0 .. ty1``,
    where ``M[k1, k2] = mm[k1*a + k2, o, p]`` (tiles numbered as in :func:`winograd_input`);
    outputs past ``out``'s edge are dropped. ``b`` empty: no bias. Images and output channels
    ``n*O + o`` in ``no0 .. no1``.

    Per output channel, both 1-D transforms run over all tiles of the band at once (contiguous
    in ``mm``); the m x m results are then written to their places in the output rows.
    """
    _, o_, oh, ow = out.shape
    a = m + 2
    rows = ty1 - ty0
    p_ = rows * tw
    has_bias = b.shape[0] > 0
    for no in range(no0, no1):
        n = no // o_
        o = no - n * o_
        base = n * p_
        s = np.empty((a, m, p_), dtype=out.dtype)  # s[k1, j] = sum_k2 A^T[j, k2] M[k1, k2]
        y = np.empty((m, m, p_), dtype=out.dtype)  # y[i, j] = sum_k1 A^T[i, k1] s[k1, j] + b
        bias = b[o] if has_bias else _ZERO
        if m == 4:
            for k1 in range(a):
                m0 = mm[k1 * 6, o, base : base + p_]
                m1 = mm[k1 * 6 + 1, o, base : base + p_]
                m2 = mm[k1 * 6 + 2, o, base : base + p_]
                m3 = mm[k1 * 6 + 3, o, base : base + p_]
                m4 = mm[k1 * 6 + 4, o, base : base + p_]
                m5 = mm[k1 * 6 + 5, o, base : base + p_]
                s0, s1, s2, s3 = s[k1, 0], s[k1, 1], s[k1, 2], s[k1, 3]
                for p in range(p_):
                    f1 = m1[p] + m2[p]
                    f2 = m1[p] - m2[p]
                    f3 = m3[p] + m4[p]
                    f4 = m3[p] - m4[p]
                    s0[p] = m0[p] + f1 + f3
                    s1[p] = f2 + _TWO * f4
                    s2[p] = f1 + _FOUR * f3
                    s3[p] = f2 + _EIGHT * f4 + m5[p]
            for j in range(m):
                a0, a1, a2, a3, a4, a5 = s[0, j], s[1, j], s[2, j], s[3, j], s[4, j], s[5, j]
                y0, y1, y2, y3 = y[0, j], y[1, j], y[2, j], y[3, j]
                for p in range(p_):
                    f1 = a1[p] + a2[p]
                    f2 = a1[p] - a2[p]
                    f3 = a3[p] + a4[p]
                    f4 = a3[p] - a4[p]
                    y0[p] = a0[p] + f1 + f3 + bias
                    y1[p] = f2 + _TWO * f4 + bias
                    y2[p] = f1 + _FOUR * f3 + bias
                    y3[p] = f2 + _EIGHT * f4 + a5[p] + bias
        else:  # m == 2: A^T = [[1,1,1,0],[0,1,-1,-1]]
            for k1 in range(a):
                m0 = mm[k1 * 4, o, base : base + p_]
                m1 = mm[k1 * 4 + 1, o, base : base + p_]
                m2 = mm[k1 * 4 + 2, o, base : base + p_]
                m3 = mm[k1 * 4 + 3, o, base : base + p_]
                s0, s1 = s[k1, 0], s[k1, 1]
                for p in range(p_):
                    s0[p] = m0[p] + m1[p] + m2[p]
                    s1[p] = m1[p] - m2[p] - m3[p]
            for j in range(m):
                a0, a1, a2, a3 = s[0, j], s[1, j], s[2, j], s[3, j]
                y0, y1 = y[0, j], y[1, j]
                for p in range(p_):
                    y0[p] = a0[p] + a1[p] + a2[p] + bias
                    y1[p] = a1[p] - a2[p] - a3[p] + bias
        full = ow // m  # tiles wholly inside the output row; the last may be cut
        for ty in range(ty0, ty1):
            pb = (ty - ty0) * tw
            for i in range(m):
                yy = ty * m + i
                if yy >= oh:
                    break
                dst = out[n, o, yy]
                if m == 4:  # one interleaving pass (constant stride: vectorised)
                    c0, c1 = y[i, 0, pb : pb + tw], y[i, 1, pb : pb + tw]
                    c2, c3 = y[i, 2, pb : pb + tw], y[i, 3, pb : pb + tw]
                    for t in range(full):
                        dst[4 * t] = c0[t]
                        dst[4 * t + 1] = c1[t]
                        dst[4 * t + 2] = c2[t]
                        dst[4 * t + 3] = c3[t]
                else:
                    c0, c1 = y[i, 0, pb : pb + tw], y[i, 1, pb : pb + tw]
                    for t in range(full):
                        dst[2 * t] = c0[t]
                        dst[2 * t + 1] = c1[t]
                for j in range(ow - full * m):
                    dst[full * m + j] = y[i, j, pb + full]


@njit(**_OPTS)
def winograd_filter(w9, gmat, u, f0, f1):  # pragma: no cover - compiled
    """``u[k1*a + k2, f] = (G g_f G^T)[k1, k2]`` for filters ``f0 .. f1`` of ``w9`` (F, 9), each a
    3x3 filter flattened; ``gmat`` is G (a, 3) in float64, the sums are done in float64 and
    rounded once to ``u``'s dtype. Two 1-D transforms per filter (along the filter's rows, then
    its columns)."""
    a = gmat.shape[0]
    t = np.empty((3, a), dtype=np.float64)  # t[i, k2] = sum_j g[i, j] G[k2, j]
    for f in range(f0, f1):
        for i in range(3):
            g0 = np.float64(w9[f, 3 * i])
            g1 = np.float64(w9[f, 3 * i + 1])
            g2 = np.float64(w9[f, 3 * i + 2])
            for k2 in range(a):
                t[i, k2] = gmat[k2, 0] * g0 + gmat[k2, 1] * g1 + gmat[k2, 2] * g2
        for k1 in range(a):
            for k2 in range(a):
                u[k1 * a + k2, f] = gmat[k1, 0] * t[0, k2] + gmat[k1, 1] * t[1, k2] + gmat[k1, 2] * t[2, k2]

