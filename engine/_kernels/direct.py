"""Compiled direct convolution of dense 3x3 kernels (:func:`engine.direct.direct_conv`'s tap
loop), for layers with few input channels (the stems)."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from engine._kernels._shared import OPTS as _OPTS
from engine._kernels._shared import ZERO as _ZERO

# output values per band of rows (per accumulator): four accumulators and the input runs they
# read stay in the L1 cache (32 KB; measured 512 to 4096: 2048 best, by a little)
BAND_VALUES = 2048


@njit(**_OPTS)
def dense3x3(planes, w, b, out, n, sh, sw, dh, dw, wq, g0, g1):  # pragma: no cover - compiled
    """``out[n, o]`` for output channels ``o`` in groups of four ``g0 .. g1`` (group ``g`` is
    channels ``4g .. 4g+3``, the last group cut at ``O``): the direct tap loop over the phase
    planes of image ``n`` (``planes[c, pr*sW + pc, r*wq + q] = padded[c, r*sH + pr, q*sW + pc]``,
    :func:`engine._kernels.phase_planes`), ``w`` ``(O, C, 3, 3)``, ``b`` ``(O,)`` or empty.

    Each output row is computed ``wq`` wide over the flattened planes (as the depthwise kernel
    does), so that every tap of every input channel is one contiguous run; four output channels
    share each pass, so every input value loaded feeds 4 multiply-adds (a GEMM on a 27-row patch
    matrix does little more work per value it loads, and first the patch matrix is built).
    """
    c_ = planes.shape[0]
    o_ = w.shape[0]
    oh, ow = out.shape[2], out.shape[3]
    # bands of output rows whose accumulators and input runs stay in the L1 cache
    band = max(1, BAND_VALUES // wq)
    length = min(oh, band) * wq
    has_bias = b.shape[0] > 0
    a0 = np.empty(length, dtype=out.dtype)
    a1 = np.empty(length, dtype=out.dtype)
    a2 = np.empty(length, dtype=out.dtype)
    a3 = np.empty(length, dtype=out.dtype)
    tpl = np.empty(9, dtype=np.int64)
    toff = np.empty(9, dtype=np.int64)
    for i in range(3):
        for j in range(3):
            tpl[i * 3 + j] = ((i * dh) % sh) * sw + (j * dw) % sw
            toff[i * 3 + j] = ((i * dh) // sh) * wq + (j * dw) // sw
    for g in range(g0, g1):
        o = 4 * g
        # a cut last group computes its last channel again in the spare lanes, never stored
        oa, ob, oc, od = o, min(o + 1, o_ - 1), min(o + 2, o_ - 1), min(o + 3, o_ - 1)
        ba = b[oa] if has_bias else _ZERO
        bb = b[ob] if has_bias else _ZERO
        bc = b[oc] if has_bias else _ZERO
        bd = b[od] if has_bias else _ZERO
        for y0 in range(0, oh, band):
            y1 = min(oh, y0 + band)
            ln = (y1 - y0) * wq
            st = y0 * wq
            for k in range(ln):
                a0[k] = ba
                a1[k] = bb
                a2[k] = bc
                a3[k] = bd
            for c in range(c_):
                pc = planes[c]
                t0 = pc[tpl[0], st + toff[0] : st + toff[0] + ln]
                t1 = pc[tpl[1], st + toff[1] : st + toff[1] + ln]
                t2 = pc[tpl[2], st + toff[2] : st + toff[2] + ln]
                t3 = pc[tpl[3], st + toff[3] : st + toff[3] + ln]
                t4 = pc[tpl[4], st + toff[4] : st + toff[4] + ln]
                t5 = pc[tpl[5], st + toff[5] : st + toff[5] + ln]
                t6 = pc[tpl[6], st + toff[6] : st + toff[6] + ln]
                t7 = pc[tpl[7], st + toff[7] : st + toff[7] + ln]
                t8 = pc[tpl[8], st + toff[8] : st + toff[8] + ln]
                wa, wb, wc, wd = w[oa, c], w[ob, c], w[oc, c], w[od, c]
                x0, x1, x2, x3, x4 = wa[0, 0], wa[0, 1], wa[0, 2], wa[1, 0], wa[1, 1]
                x5, x6, x7, x8 = wa[1, 2], wa[2, 0], wa[2, 1], wa[2, 2]
                y0_, y1_, y2_, y3_, y4_ = wb[0, 0], wb[0, 1], wb[0, 2], wb[1, 0], wb[1, 1]
                y5_, y6_, y7_, y8_ = wb[1, 2], wb[2, 0], wb[2, 1], wb[2, 2]
                z0, z1, z2, z3, z4 = wc[0, 0], wc[0, 1], wc[0, 2], wc[1, 0], wc[1, 1]
                z5, z6, z7, z8 = wc[1, 2], wc[2, 0], wc[2, 1], wc[2, 2]
                u0, u1, u2, u3, u4 = wd[0, 0], wd[0, 1], wd[0, 2], wd[1, 0], wd[1, 1]
                u5, u6, u7, u8 = wd[1, 2], wd[2, 0], wd[2, 1], wd[2, 2]
                for k in range(ln):
                    v0, v1, v2, v3, v4 = t0[k], t1[k], t2[k], t3[k], t4[k]
                    v5, v6, v7, v8 = t5[k], t6[k], t7[k], t8[k]
                    a0[k] += (
                        (x0 * v0 + x1 * v1 + x2 * v2)
                        + (x3 * v3 + x4 * v4 + x5 * v5)
                        + (x6 * v6 + x7 * v7 + x8 * v8)
                    )
                    a1[k] += (
                        (y0_ * v0 + y1_ * v1 + y2_ * v2)
                        + (y3_ * v3 + y4_ * v4 + y5_ * v5)
                        + (y6_ * v6 + y7_ * v7 + y8_ * v8)
                    )
                    a2[k] += (
                        (z0 * v0 + z1 * v1 + z2 * v2)
                        + (z3 * v3 + z4 * v4 + z5 * v5)
                        + (z6 * v6 + z7 * v7 + z8 * v8)
                    )
                    a3[k] += (
                        (u0 * v0 + u1 * v1 + u2 * v2)
                        + (u3 * v3 + u4 * v4 + u5 * v5)
                        + (u6 * v6 + u7 * v7 + u8 * v8)
                    )
            for y in range(y1 - y0):
                s0 = a0[y * wq : y * wq + ow]
                s1 = a1[y * wq : y * wq + ow]
                s2 = a2[y * wq : y * wq + ow]
                s3 = a3[y * wq : y * wq + ow]
                d0 = out[n, oa, y0 + y]
                for q in range(ow):
                    d0[q] = s0[q]
                if o + 1 < o_:
                    d1 = out[n, ob, y0 + y]
                    for q in range(ow):
                        d1[q] = s1[q]
                if o + 2 < o_:
                    d2 = out[n, oc, y0 + y]
                    for q in range(ow):
                        d2[q] = s2[q]
                if o + 3 < o_:
                    d3 = out[n, od, y0 + y]
                    for q in range(ow):
                        d3[q] = s3[q]


# Each kernel's pieces on numba's OpenMP team (see engine._parallel.run_kernel): one wrapper
# per kernel, written out, because numba's disk cache cannot keep a function that takes a
# compiled function as an argument (its type names the function's address in this process).


@njit(parallel=True, **_OPTS)
def dense3x3_team(planes, w, b, out, n, sh, sw, dh, dw, wq, bounds):  # pragma: no cover - compiled
    for p in prange(bounds.shape[0] - 1):
        dense3x3(planes, w, b, out, n, sh, sw, dh, dw, wq, bounds[p], bounds[p + 1])
