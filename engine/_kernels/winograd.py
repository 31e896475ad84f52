"""Compiled Winograd transforms: input tiles, output tiles, filters (F(2x2,3x3), F(4x4,3x3))."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from engine._kernels._shared import EIGHT as _EIGHT
from engine._kernels._shared import FIVE as _FIVE
from engine._kernels._shared import FOUR as _FOUR
from engine._kernels._shared import OPTS as _OPTS
from engine._kernels._shared import TWO as _TWO
from engine._kernels._shared import ZERO as _ZERO


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


# Each kernel's pieces on numba's OpenMP team (see engine._parallel.run_kernel): one wrapper
# per kernel, written out, because numba's disk cache cannot keep a function that takes a
# compiled function as an argument (its type names the function's address in this process).


@njit(parallel=True, **_OPTS)
def winograd_input_team(x, v, m, pt, pl, ty0, ty1, tw, bounds):  # pragma: no cover - compiled
    for p in prange(bounds.shape[0] - 1):
        winograd_input(x, v, m, pt, pl, ty0, ty1, tw, bounds[p], bounds[p + 1])


@njit(parallel=True, **_OPTS)
def winograd_output_team(mm, b, out, m, ty0, ty1, tw, bounds):  # pragma: no cover - compiled
    for p in prange(bounds.shape[0] - 1):
        winograd_output(mm, b, out, m, ty0, ty1, tw, bounds[p], bounds[p + 1])


@njit(parallel=True, **_OPTS)
def winograd_filter_team(w9, gmat, u, bounds):  # pragma: no cover - compiled
    for p in prange(bounds.shape[0] - 1):
        winograd_filter(w9, gmat, u, bounds[p], bounds[p + 1])
