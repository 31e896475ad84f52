"""im2col + GEMM: unroll every receptive-field patch into a column, then one matrix product.

For group ``g`` the patch matrix ``P`` has one row per (input channel, kernel row, kernel
column) and one column per output pixel; the output is ``W_g @ P`` with ``W_g`` the group's
filters flattened to ``(C_out/g, C_in/g * kH * kW)``. The matrix product runs in BLAS, which is
why this is the workhorse algorithm on a CPU.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from engine._common import ConvSpec
from engine.base import Engine


def patch_matrix(xp: np.ndarray, spec: ConvSpec) -> np.ndarray:
    """The patch matrix of padded input ``xp`` ``(N, C, Hp, Wp)``.

    Returns ``(N, G, C/G * kH * kW, H_out * W_out)``, contiguous: row ``(c, i, j)``, column
    ``(y, x)`` holds ``xp[n, g*C/G + c, y*s + i*d, x*s + j*d]``.
    """
    xp = np.ascontiguousarray(xp)
    sn, sc, sh, sw = xp.strides
    st_h, st_w = spec.stride
    d_h, d_w = spec.dilation
    g, cg = spec.groups, spec.c_in_per_group
    view = as_strided(
        xp,
        shape=(spec.n, g, cg, spec.kh, spec.kw, spec.out_h, spec.out_w),
        strides=(sn, cg * sc, sc, d_h * sh, d_w * sw, st_h * sh, st_w * sw),
        writeable=False,
    )
    # the reshape makes the one copy: the patch matrix itself
    return view.reshape(spec.n, g, cg * spec.kh * spec.kw, spec.out_h * spec.out_w)


class Im2colEngine(Engine):
    name = "im2col"
    description = "Unroll patches into a matrix, then one GEMM per group (BLAS)"

    def algorithm_for(self, spec: ConvSpec) -> str:
        if self._is_pointwise(spec):
            return "im2col (1x1: plain GEMM, no patch matrix)"
        return "im2col+gemm"

    @staticmethod
    def _is_pointwise(spec: ConvSpec) -> bool:
        return spec.kh == spec.kw == 1 and spec.stride == (1, 1)

    def _compute(self, xp: np.ndarray, weight: np.ndarray, spec: ConvSpec) -> tuple[np.ndarray, str]:
        g, og = spec.groups, spec.c_out_per_group
        w = weight.reshape(g, og, -1)  # (G, O/G, C/G*kH*kW)
        if self._is_pointwise(spec):
            # a 1x1 stride-1 conv is already a matrix product over channels
            cols = xp.reshape(spec.n, g, spec.c_in_per_group, spec.hp * spec.wp)
        else:
            cols = patch_matrix(xp, spec)
        out = np.matmul(w[None], cols)  # (N, G, O/G, H_out*W_out)
        return out.reshape(spec.n, spec.c_out, spec.out_h, spec.out_w), self.algorithm_for(spec)
