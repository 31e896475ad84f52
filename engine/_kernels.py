"""numba kernels: single-pass versions of the engines' NumPy steps (see :mod:`engine._jit`).

Every kernel reads the *unpadded* input and treats taps outside it as zeros, so no padded copy
of the input is ever made; outputs are written in place into arrays the caller allocated (the
caller bounds their size). Parallel loops run over channels (``prange``); everything is compiled
on first use and cached on disk (``cache=True``).

What each computes is the NumPy form's result, bit for bit up to float rounding order:

- :func:`depthwise`: :class:`engine.direct.DirectEngine`'s tap loop for one input channel per
  group, with zero padding, stride, dilation and bias fused;
- :func:`winograd_input` / :func:`winograd_output`: :func:`engine.winograd.winograd_conv`'s
  ``B^T d B`` and ``A^T M A`` with the separable 1-D transforms written out (the NumPy form
  applies them as Kronecker matrices);
- :func:`patches`: :func:`engine.im2col.patch_matrix` for a band of output rows.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

_OPTS = dict(cache=True, nogil=True, error_model="numpy", boundscheck=False)


@njit(parallel=True, **_OPTS)
def depthwise(x, w, b, out, sh, sw, dh, dw, pt, pl):  # pragma: no cover - compiled
    """Depthwise conv: ``x`` (N, C, H, W), ``w`` (C*mult, 1, kH, kW), ``b`` (C*mult,) or empty,
    ``out`` (N, C*mult, H_out, W_out), zero padding ``pt`` (top) / ``pl`` (left).

    Per channel, the padded input is split into ``sh x sw`` phase planes (rows ``pr::sh``,
    columns ``pc::sw``), so that every tap reads one plane contiguously; each tap is then one
    multiply-add over the whole flattened output (its ``wq - W_out`` extra columns per row are
    computed and dropped).
    """
    n_, c_, h, wd = x.shape
    o_, _, kh, kw = w.shape
    mult = o_ // c_
    oh, ow = out.shape[2], out.shape[3]
    qr_max = ((kh - 1) * dh) // sh
    qc_max = ((kw - 1) * dw) // sw
    hq = oh + qr_max + 1  # one spare row: the flattened reads run past the last row's end
    wq = ow + qc_max
    size = hq * wq
    has_bias = b.shape[0] > 0
    for nc in prange(n_ * c_):
        n = nc // c_
        c = nc - n * c_
        planes = np.zeros((sh * sw, size), dtype=x.dtype)
        for pr in range(sh):
            for pc in range(sw):
                plane = planes[pr * sw + pc]
                # plane[r, q] = padded[r*sh + pr, q*sw + pc] = x[.., r*sh + pr - pt, q*sw + pc - pl]
                q0 = 0
                while q0 < wq and q0 * sw + pc - pl < 0:
                    q0 += 1
                q1 = wq
                while q1 > q0 and (q1 - 1) * sw + pc - pl >= wd:
                    q1 -= 1
                for r in range(hq):
                    src = r * sh + pr - pt
                    if src < 0 or src >= h:
                        continue
                    row = x[n, c, src]
                    base = r * wq
                    if sw == 1:
                        off = pc - pl
                        for q in range(q0, q1):
                            plane[base + q] = row[q + off]
                    else:
                        for q in range(q0, q1):
                            plane[base + q] = row[q * sw + pc - pl]
        acc = np.empty(oh * wq, dtype=x.dtype)
        for m in range(mult):
            o = c * mult + m
            start = b[o] if has_bias else 0.0
            for k in range(oh * wq):
                acc[k] = start
            for i in range(kh):
                pr = (i * dh) % sh
                qr = (i * dh) // sh
                for j in range(kw):
                    pc = (j * dw) % sw
                    qc = (j * dw) // sw
                    wv = w[o, 0, i, j]
                    src = planes[pr * sw + pc, qr * wq + qc : qr * wq + qc + oh * wq]
                    for k in range(oh * wq):
                        acc[k] += wv * src[k]
            for y in range(oh):
                dst = out[n, o, y]
                for xx in range(ow):
                    dst[xx] = acc[y * wq + xx]


@njit(parallel=True, **_OPTS)
def patches(x, cols, n, ch0, kh, kw, sh, sw, dh, dw, pt, pl, y0, y1, ow):  # pragma: no cover
    """Rows ``(c, i, j)`` of the patch matrix of image ``n``, channels ``ch0 ..``, for output
    rows ``y0 .. y1``: ``cols[(c*kH + i)*kW + j, (y - y0)*W_out + x] = padded[n, ch0 + c,
    y*sh + i*dh, x*sw + j*dw]`` (zero where that falls into the padding)."""
    h, wd = x.shape[2], x.shape[3]
    taps = kh * kw
    for r in prange(cols.shape[0]):
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
        dst_row = cols[r]
        for y in range(y0, y1):
            base = (y - y0) * ow
            src = y * sh + i * dh - pt
            if src < 0 or src >= h:
                for xx in range(ow):
                    dst_row[base + xx] = 0.0
                continue
            row = x[n, ch0 + c, src]
            for xx in range(x_lo):
                dst_row[base + xx] = 0.0
            if sw == 1:
                for xx in range(x_lo, x_hi):
                    dst_row[base + xx] = row[xx + col_off]
            else:
                for xx in range(x_lo, x_hi):
                    dst_row[base + xx] = row[xx * sw + col_off]
            for xx in range(x_hi, ow):
                dst_row[base + xx] = 0.0


@njit(parallel=True, **_OPTS)
def winograd_input(x, v, m, pt, pl, ty0, ty1, tw):  # pragma: no cover - compiled
    """``v[k1*a + k2, c, p] = (B^T d B)[k1, k2]`` for every tile ``d`` (``a x a``, a = m + 2) of
    ``x`` (N, C, H, W) in tile rows ``ty0 .. ty1``; tile ``p = (n*(ty1-ty0) + ty - ty0)*tw + tx``
    starts at padded row ``ty*m``, column ``tx*m``. F(4x4, 3x3) for m = 4, F(2x2, 3x3) for m = 2.
    """
    n_, c_, h, wd = x.shape
    a = m + 2
    rows = ty1 - ty0
    wbuf = tw * m + 2
    for nc in prange(n_ * c_):
        n = nc // c_
        c = nc - n * c_
        buf = np.zeros((a, wbuf), dtype=x.dtype)  # a input rows, zero padded left and right
        t = np.empty((a, a, tw), dtype=x.dtype)  # after the transform along W: t[i, k2, tx]
        for ty in range(ty0, ty1):
            for i in range(a):
                src = ty * m + i - pt
                if 0 <= src < h:
                    row = x[n, c, src]
                    dst = buf[i]
                    for q in range(wd):
                        dst[pl + q] = row[q]
                else:
                    buf[i, :] = 0.0
            if m == 4:
                for i in range(a):
                    bi = buf[i]
                    for tx in range(tw):
                        d0 = bi[4 * tx]
                        d1 = bi[4 * tx + 1]
                        d2 = bi[4 * tx + 2]
                        d3 = bi[4 * tx + 3]
                        d4 = bi[4 * tx + 4]
                        d5 = bi[4 * tx + 5]
                        p = d4 - 4.0 * d2
                        q = d3 - 4.0 * d1
                        r = d4 - d2
                        s = 2.0 * (d3 - d1)
                        t[i, 0, tx] = 4.0 * d0 - 5.0 * d2 + d4
                        t[i, 1, tx] = p + q
                        t[i, 2, tx] = p - q
                        t[i, 3, tx] = r + s
                        t[i, 4, tx] = r - s
                        t[i, 5, tx] = 4.0 * d1 - 5.0 * d3 + d5
                base = (n * rows + ty - ty0) * tw
                for k2 in range(a):
                    t0 = t[0, k2]
                    t1 = t[1, k2]
                    t2 = t[2, k2]
                    t3 = t[3, k2]
                    t4 = t[4, k2]
                    t5 = t[5, k2]
                    v0 = v[k2, c, base : base + tw]
                    v1 = v[6 + k2, c, base : base + tw]
                    v2 = v[12 + k2, c, base : base + tw]
                    v3 = v[18 + k2, c, base : base + tw]
                    v4 = v[24 + k2, c, base : base + tw]
                    v5 = v[30 + k2, c, base : base + tw]
                    for tx in range(tw):
                        d0 = t0[tx]
                        d1 = t1[tx]
                        d2 = t2[tx]
                        d3 = t3[tx]
                        d4 = t4[tx]
                        d5 = t5[tx]
                        p = d4 - 4.0 * d2
                        q = d3 - 4.0 * d1
                        r = d4 - d2
                        s = 2.0 * (d3 - d1)
                        v0[tx] = 4.0 * d0 - 5.0 * d2 + d4
                        v1[tx] = p + q
                        v2[tx] = p - q
                        v3[tx] = r + s
                        v4[tx] = r - s
                        v5[tx] = 4.0 * d1 - 5.0 * d3 + d5
            else:  # m == 2: B^T = [[1,0,-1,0],[0,1,1,0],[0,-1,1,0],[0,1,0,-1]]
                for i in range(a):
                    bi = buf[i]
                    for tx in range(tw):
                        d0 = bi[2 * tx]
                        d1 = bi[2 * tx + 1]
                        d2 = bi[2 * tx + 2]
                        d3 = bi[2 * tx + 3]
                        t[i, 0, tx] = d0 - d2
                        t[i, 1, tx] = d1 + d2
                        t[i, 2, tx] = d2 - d1
                        t[i, 3, tx] = d1 - d3
                base = (n * rows + ty - ty0) * tw
                for k2 in range(a):
                    t0 = t[0, k2]
                    t1 = t[1, k2]
                    t2 = t[2, k2]
                    t3 = t[3, k2]
                    v0 = v[k2, c, base : base + tw]
                    v1 = v[4 + k2, c, base : base + tw]
                    v2 = v[8 + k2, c, base : base + tw]
                    v3 = v[12 + k2, c, base : base + tw]
                    for tx in range(tw):
                        v0[tx] = t0[tx] - t2[tx]
                        v1[tx] = t1[tx] + t2[tx]
                        v2[tx] = t2[tx] - t1[tx]
                        v3[tx] = t1[tx] - t3[tx]


@njit(parallel=True, **_OPTS)
def winograd_output(mm, b, out, m, ty0, ty1, tw):  # pragma: no cover - compiled
    """``out[n, o, ty*m + i, tx*m + j] = (A^T M A)[i, j] + b[o]`` for tile rows ``ty0 .. ty1``,
    where ``M[k1, k2] = mm[k1*a + k2, o, p]`` (tiles numbered as in :func:`winograd_input`);
    outputs past ``out``'s edge are dropped. ``b`` empty: no bias."""
    n_, o_, oh, ow = out.shape
    a = m + 2
    rows = ty1 - ty0
    has_bias = b.shape[0] > 0
    for no in prange(n_ * o_):
        n = no // o_
        o = no - n * o_
        s = np.empty((a, m, tw), dtype=out.dtype)  # after the transform along W: s[k1, j, tx]
        row = np.empty((m, tw * m), dtype=out.dtype)
        bias = b[o] if has_bias else 0.0
        for ty in range(ty0, ty1):
            base = (n * rows + ty - ty0) * tw
            if m == 4:
                for k1 in range(a):
                    m0 = mm[k1 * 6, o, base : base + tw]
                    m1 = mm[k1 * 6 + 1, o, base : base + tw]
                    m2 = mm[k1 * 6 + 2, o, base : base + tw]
                    m3 = mm[k1 * 6 + 3, o, base : base + tw]
                    m4 = mm[k1 * 6 + 4, o, base : base + tw]
                    m5 = mm[k1 * 6 + 5, o, base : base + tw]
                    for tx in range(tw):
                        p = m1[tx] + m2[tx]
                        q = m1[tx] - m2[tx]
                        r = m3[tx] + m4[tx]
                        u = m3[tx] - m4[tx]
                        s[k1, 0, tx] = m0[tx] + p + r
                        s[k1, 1, tx] = q + 2.0 * u
                        s[k1, 2, tx] = p + 4.0 * r
                        s[k1, 3, tx] = q + 8.0 * u + m5[tx]
                for j in range(m):
                    for tx in range(tw):
                        a0 = s[0, j, tx]
                        a1 = s[1, j, tx]
                        a2 = s[2, j, tx]
                        a3 = s[3, j, tx]
                        a4 = s[4, j, tx]
                        a5 = s[5, j, tx]
                        p = a1 + a2
                        q = a1 - a2
                        r = a3 + a4
                        u = a3 - a4
                        row[0, 4 * tx + j] = a0 + p + r + bias
                        row[1, 4 * tx + j] = q + 2.0 * u + bias
                        row[2, 4 * tx + j] = p + 4.0 * r + bias
                        row[3, 4 * tx + j] = q + 8.0 * u + a5 + bias
            else:  # m == 2: A^T = [[1,1,1,0],[0,1,-1,-1]]
                for k1 in range(a):
                    m0 = mm[k1 * 4, o, base : base + tw]
                    m1 = mm[k1 * 4 + 1, o, base : base + tw]
                    m2 = mm[k1 * 4 + 2, o, base : base + tw]
                    m3 = mm[k1 * 4 + 3, o, base : base + tw]
                    for tx in range(tw):
                        s[k1, 0, tx] = m0[tx] + m1[tx] + m2[tx]
                        s[k1, 1, tx] = m1[tx] - m2[tx] - m3[tx]
                for j in range(m):
                    for tx in range(tw):
                        row[0, 2 * tx + j] = s[0, j, tx] + s[1, j, tx] + s[2, j, tx] + bias
                        row[1, 2 * tx + j] = s[1, j, tx] - s[2, j, tx] - s[3, j, tx] + bias
            for i in range(m):
                y = ty * m + i
                if y < oh:
                    dst = out[n, o, y]
                    src = row[i]
                    for xx in range(ow):
                        dst[xx] = src[xx]
