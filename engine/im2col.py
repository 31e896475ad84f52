"""im2col + GEMM: unroll every receptive-field patch into a column, then one matrix product.

For group ``g`` the patch matrix ``P`` has one row per (input channel, kernel row, kernel
column) and one column per output pixel; the output is ``W_g @ P`` with ``W_g`` the group's
filters flattened to ``(C_out/g, C_in/g * kH * kW)``. The matrix product runs in BLAS, which is
why this is the workhorse algorithm on a CPU.

The patch matrix holds ``kH * kW`` copies of the input: for a big kernel on a big image that is
gigabytes (101x101 on a 3x224x224 input: 6 GB). It is therefore built for a band of output rows
at a time, small enough for the engines' work budget (:data:`engine._common.WORK_BYTES`), and
each band's product is written straight into the output.

A 1x1 convolution with stride 1 and no padding needs no patch matrix at all: the input, seen as
``(C_in, H*W)``, already is one. With numba present the patch matrix is filled by a compiled
kernel (:func:`engine._kernels.patches`) that copies each channel's band of input rows once,
zero padded, into a small buffer and every tap's runs from there (no padded copy of the whole
input is made).

Wide rows (strided convolutions and small maps, compiled path): the patch matrix's rows are
short runs there (7 values per output row on a 7x7 map, read with a stride of 2 after a strided
layer) and filling it cost more than the GEMM on it. The input is first split into phase planes,
``plane[c, (pr, pc)][r, q] = padded[c, r*sH + pr, q*sW + pc]`` (one pass over the input, the
space-to-depth rewrite that turns a strided convolution into stride-1 ones), each plane row
``wq = W_out + (kW - 1)*dW // sW`` wide. Every tap then reads its plane at a fixed offset, so if
each output row is computed ``wq`` wide (the extra columns computed and dropped), a row of the
patch matrix is one contiguous run of the plane: :func:`wide_patch_matrix` (NumPy form) and
:func:`engine._kernels.patches_wide` copy it in one go. The GEMM's result is cropped to
``W_out`` columns with the bias added in the same pass.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import replace

import numpy as np
from numpy.lib.stride_tricks import as_strided

from engine import _common, _jit
from engine import _parallel as parallel
from engine._common import ConvSpec, add_bias, chunks, zero_padded
from engine._workspace import scratch
from engine.base import Engine


def patch_matrix(xp: np.ndarray, spec: ConvSpec, y0: int = 0, y1: int | None = None) -> np.ndarray:
    """The patch matrix of padded input ``xp`` ``(N, C, Hp, Wp)`` for output rows ``y0 .. y1``.

    Returns ``(N, G, C/G * kH * kW, (y1 - y0) * W_out)``, contiguous: row ``(c, i, j)``, column
    ``(y - y0, x)`` holds ``xp[n, g*C/G + c, y*s + i*d, x*s + j*d]``.
    """
    y1 = spec.out_h if y1 is None else y1
    xp = np.ascontiguousarray(xp)
    sn, sc, sh, sw = xp.strides
    st_h, st_w = spec.stride
    d_h, d_w = spec.dilation
    g, cg = spec.groups, spec.c_in_per_group
    view = as_strided(
        xp[:, :, y0 * st_h :],
        shape=(spec.n, g, cg, spec.kh, spec.kw, y1 - y0, spec.out_w),
        strides=(sn, cg * sc, sc, d_h * sh, d_w * sw, st_h * sh, st_w * sw),
        writeable=False,
    )
    # the reshape makes the one copy: the patch matrix itself
    return view.reshape(spec.n, g, cg * spec.kh * spec.kw, (y1 - y0) * spec.out_w)


def is_pointwise(spec: ConvSpec) -> bool:
    """1x1, stride 1, no padding: the input itself is the patch matrix."""
    return spec.kh == spec.kw == 1 and spec.stride == (1, 1) and not any(spec.pad)


def row_bands(spec: ConvSpec, budget: int | None = None) -> list[tuple[int, int]]:
    """Bands of output rows whose patch matrix (one image, one group) fits ``budget`` (default:
    the work budget)."""
    k = spec.c_in_per_group * spec.kh * spec.kw
    return chunks(spec.out_h, k * spec.out_w * spec.dtype.itemsize, budget)


def im2col_conv(
    x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, spec: ConvSpec, use_jit: bool = False
) -> np.ndarray:
    """im2col + GEMM of ``x`` ``(N, C, H, W)`` (zero padding ``spec.pad`` applied here); returns
    ``(N, O, H_out, W_out)`` with bias added."""
    g, og, cg = spec.groups, spec.c_out_per_group, spec.c_in_per_group
    w = weight.reshape(g, og, -1)  # (G, O/G, C/G*kH*kW)
    out = np.empty(spec.output_shape, dtype=spec.dtype)
    kernels = _jit.kernels() if use_jit else None
    if is_pointwise(spec):
        # a 1x1 stride-1 conv is already a matrix product over channels
        hw = spec.h * spec.w
        for n in range(spec.n):
            xs, outs = x[n].reshape(g, cg, hw), out[n].reshape(g, og, hw)
            if use_jit:  # output channels split over the cores
                parts = parallel.gemm_pieces(og, cg * hw)
                for gi in range(g):
                    parallel.matmul_rows(w[gi], xs[gi], outs[gi], parts)
            else:
                np.matmul(w, xs, out=outs)
        return add_bias(out, bias)
    if kernels is not None and uses_wide_rows(spec):
        return _wide_conv(kernels, x, weight, bias, spec)
    xp = x if kernels is not None else zero_padded(x, spec)
    bands = row_bands(spec, min(_common.WORK_BYTES, _common.CACHE_BYTES) if kernels else None)
    k = cg * spec.kh * spec.kw
    if kernels is not None:  # one buffer for every band's patch matrix
        buffer = scratch("im2col patches", (k, (bands[0][1] - bands[0][0]) * spec.out_w), spec.dtype)
    for y0, y1 in bands:
        for n in range(spec.n):
            for gi in range(g):
                dst = out[n, gi * og : (gi + 1) * og, y0:y1].reshape(og, -1)  # a view: rows are whole
                if kernels is not None:
                    cols = buffer[:, : (y1 - y0) * spec.out_w]
                    parallel.run_kernel(  # the whole buffer: one compiled form for every band
                        kernels.patches,
                        (
                            x,
                            buffer,
                            n,
                            gi * cg,
                            spec.kh,
                            spec.kw,
                            *spec.stride,
                            *spec.dilation,
                            spec.pad[0],
                            spec.pad[2],
                            y0,
                            y1,
                            spec.out_w,
                        ),
                        parallel.kernel_pieces(k, (y1 - y0) * spec.out_w),
                    )
                    parallel.matmul_rows(
                        w[gi], cols, dst, parallel.gemm_pieces(og, k * (y1 - y0) * spec.out_w)
                    )
                else:
                    part = xp[n : n + 1, gi * cg : (gi + 1) * cg]
                    cols = patch_matrix(part, _one_group(spec), y0, y1)[0, 0]
                    np.matmul(w[gi], cols, out=dst)
                del cols  # before the next band's is made
    return add_bias(out, bias)


def plane_shape(spec: ConvSpec) -> tuple[int, int]:
    """``(hq, wq)``: rows (with one spare row that the last taps' runs reach into) and columns
    of each phase plane."""
    hq = spec.out_h + (spec.dilation[0] * (spec.kh - 1)) // spec.stride[0] + 1
    wq = spec.out_w + (spec.dilation[1] * (spec.kw - 1)) // spec.stride[1]
    return hq, wq


def phase_planes(xp: np.ndarray, spec: ConvSpec) -> np.ndarray:
    """The phase planes of padded input ``xp`` ``(N, C, Hp, Wp)``: ``(N, C, sH*sW, hq*wq)`` with
    ``planes[n, c, pr*sW + pc, r*wq + q] = xp[n, c, r*sH + pr, q*sW + pc]`` (zero beyond ``xp``)."""
    sh, sw = spec.stride
    hq, wq = plane_shape(spec)
    big = np.zeros((spec.n, spec.c_in, hq * sh, wq * sw), dtype=xp.dtype)
    rows, cols = min(xp.shape[2], hq * sh), min(xp.shape[3], wq * sw)
    big[:, :, :rows, :cols] = xp[:, :, :rows, :cols]
    planes = big.reshape(spec.n, spec.c_in, hq, sh, wq, sw).transpose(0, 1, 3, 5, 2, 4)
    return np.ascontiguousarray(planes).reshape(spec.n, spec.c_in, sh * sw, hq * wq)


def wide_patch_matrix(planes: np.ndarray, spec: ConvSpec, y0: int, y1: int) -> np.ndarray:
    """The wide patch matrix of one image's phase planes ``(C, sH*sW, hq*wq)`` for output rows
    ``y0 .. y1``: ``(C*kH*kW, (y1 - y0) * wq)``; row ``(c, i, j)``, column ``(y - y0)*wq + x``
    holds ``padded[c, y*sH + i*dH, x*sW + j*dW]`` for ``x < W_out`` (the rest is dropped)."""
    sh, sw = spec.stride
    dh, dw = spec.dilation
    _, wq = plane_shape(spec)
    length = (y1 - y0) * wq
    rows = []
    for c in range(planes.shape[0]):
        for i in range(spec.kh):
            for j in range(spec.kw):
                start = (y0 + (i * dh) // sh) * wq + (j * dw) // sw
                rows.append(planes[c, ((i * dh) % sh) * sw + (j * dw) % sw, start : start + length])
    return np.stack(rows)


def uses_wide_rows(spec: ConvSpec) -> bool:
    """Where the compiled path builds the wide patch matrix: one group, a strided kernel larger
    than 1x1 (whose per-row patch matrix is made of short strided runs), and wide rows at most
    10% wider than the output's (the GEMM computes the extra columns: on a 7x7 output, 9-wide
    rows cost more than they save; measured single-threaded, 2026-11-26)."""
    if spec.groups != 1 or spec.kh * spec.kw == 1 or spec.stride == (1, 1):
        return False
    _, wq = plane_shape(spec)
    return 10 * (wq - spec.out_w) <= spec.out_w


def _wide_conv(
    kernels, x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, spec: ConvSpec
) -> np.ndarray:
    """im2col + GEMM with the wide patch matrix (compiled kernels, split over the cores)."""
    sh, sw = spec.stride
    hq, wq = plane_shape(spec)
    k = spec.c_in * spec.kh * spec.kw
    w = weight.reshape(spec.c_out, k)
    out = np.empty(spec.output_shape, dtype=spec.dtype)
    bands = chunks(spec.out_h, k * wq * spec.dtype.itemsize, min(_common.WORK_BYTES, _common.CACHE_BYTES))
    rows = bands[0][1] - bands[0][0]
    planes = scratch("im2col planes", (spec.c_in, sh * sw, hq * wq), spec.dtype)
    cols = scratch("im2col patches", (k, rows * wq), spec.dtype)
    wide = scratch("im2col wide out", (spec.c_out, rows * wq), spec.dtype)
    b = np.empty(0, dtype=spec.dtype) if bias is None else bias
    for n in range(spec.n):
        planes.fill(0)
        parallel.run_kernel(
            kernels.phase_planes,
            (x, n, planes, sh, sw, spec.pad[0], spec.pad[2], hq, wq),
            parallel.kernel_pieces(spec.c_in, hq * wq * sh * sw),
        )
        for y0, y1 in bands:
            length = (y1 - y0) * wq
            parallel.run_kernel(
                kernels.patches_wide,
                (planes, cols, spec.kh, spec.kw, sh, sw, *spec.dilation, wq, y0, y1),
                parallel.kernel_pieces(k, length),
            )
            # the GEMM's rows, then the same rows cropped (bias added)
            parts = parallel.gemm_pieces(spec.c_out, k * length)
            parallel.matmul_rows(w, cols[:, :length], wide[:, :length], parts)
            parallel.run_kernel(kernels.crop_rows, (wide, b, out, n, y0, y1, wq), parts)
    return out


def _one_group(spec: ConvSpec) -> ConvSpec:
    """The spec of one image and one group of ``spec`` (what one patch matrix covers)."""
    return replace(spec, n=1, c_in=spec.c_in_per_group, c_out=spec.c_out_per_group, groups=1)


class Im2colEngine(Engine):
    name = "im2col"
    description = "Unroll patches into a matrix, then one GEMM per group (BLAS)"

    def __init__(self, jit: bool = True) -> None:
        super().__init__()
        self.jit = jit

    def algorithm_for(self, spec: ConvSpec) -> str:
        if is_pointwise(spec):
            return "im2col (1x1: plain GEMM, no patch matrix)"
        if self.jit and _jit.kernels() is not None and uses_wide_rows(spec):
            return "im2col+gemm (phase planes, wide rows)"
        return "im2col+gemm"

    def _compute(
        self,
        x: np.ndarray,
        weight: np.ndarray,
        bias: np.ndarray | None,
        spec: ConvSpec,
        weight_key: Hashable | None,
    ) -> tuple[np.ndarray, str]:
        return im2col_conv(x, weight, bias, spec, use_jit=self.jit), self.algorithm_for(spec)
