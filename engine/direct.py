"""The direct algorithm: slide the kernel over the input, multiply, sum.

The textbook definition, for output channel ``o`` of group ``g`` and output position (y, x)::

    out[n, o, y, x] = bias[o] + sum_c sum_i sum_j  w[o, c, i, j] * xp[n, g*Cg + c, y*s + i*d, x*s + j*d]

:meth:`DirectEngine.explain` evaluates exactly this for one output element and reports every
term. :meth:`DirectEngine._compute` evaluates it for all positions at once by sliding the other
way round: for each kernel tap (i, j) the strided window of the input that the tap touches is
multiplied by that tap's weights and accumulated, so the loop runs kH*kW times rather than once
per output element.

A depthwise convolution (one input channel per group) has no channel sum: each tap is a
multiply-add over whole maps. With numba present, :func:`engine._kernels.depthwise` does all
taps of a channel in one pass over memory that stays in cache, padding included; the NumPy loop
makes a pass over the whole output per tap. A dense 3x3 convolution with few input channels (a
stem) runs :func:`engine._kernels.dense3x3`: the same tap loop over the input's phase planes,
four output channels per pass.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np

from engine import _jit
from engine import _parallel as parallel
from engine._common import ConvSpec, IntOrPair, Padding, add_bias, prepare, zero_padded
from engine._workspace import scratch
from engine.base import Engine
from engine.im2col import plane_shape


@dataclass(frozen=True)
class UnitTrace:
    """Every term of one output element, as the direct algorithm computes it.

    Attributes
    ----------
    patch : ``(C_in/groups, kH, kW)`` the padded-input values under the kernel
    kernel : ``(C_in/groups, kH, kW)`` the filter's kernels, one per input channel
    products : ``(C_in/groups, kH, kW)`` element-wise ``patch * kernel``
    channel_sums : ``(C_in/groups,)`` the sum of products per input channel
    bias : the filter's bias (0.0 when the layer has none)
    value : ``channel_sums.sum() + bias``, the output element
    input_channels : ``(C_in/groups,)`` which input channels the filter reads (its group)
    rows, cols : ``(kH,)``, ``(kW,)`` input coordinates of the taps (may be outside the image)
    in_padding : ``(kH, kW)`` True where a tap falls into padding
    """

    n: int
    out_channel: int
    y: int
    x: int
    patch: np.ndarray
    kernel: np.ndarray
    products: np.ndarray
    channel_sums: np.ndarray
    bias: float
    value: float
    input_channels: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    in_padding: np.ndarray


def tap_window(xp: np.ndarray, spec: ConvSpec, i: int, j: int) -> np.ndarray:
    """The strided view of padded input that kernel tap (i, j) touches:
    ``(N, C, H_out, W_out)``, element [.., y, x] = ``xp[.., y*s + i*d, x*s + j*d]``."""
    sh, sw = spec.stride
    dh, dw = spec.dilation
    r0, c0 = i * dh, j * dw
    return xp[:, :, r0 : r0 + sh * (spec.out_h - 1) + 1 : sh, c0 : c0 + sw * (spec.out_w - 1) + 1 : sw]


def direct_conv(xp: np.ndarray, weight: np.ndarray, spec: ConvSpec) -> np.ndarray:
    """The tap loop on padded ``xp`` ``(N, C, Hp, Wp)``: ``(N, O, H_out, W_out)`` without bias."""
    g, cg, og = spec.groups, spec.c_in_per_group, spec.c_out_per_group
    out = np.zeros((spec.n, g, og, spec.out_h, spec.out_w), dtype=spec.dtype)
    w = weight.reshape(g, og, cg, spec.kh, spec.kw)
    for i in range(spec.kh):
        for j in range(spec.kw):
            window = tap_window(xp, spec, i, j).reshape(spec.n, g, cg, spec.out_h, spec.out_w)
            if cg == 1:  # depthwise: one input channel per group, no channel sum
                out += w[None, :, :, 0, i, j, None, None] * window
            else:
                # (g, og, cg) x (n, g, cg, H, W) -> (n, g, og, H, W): sum over input channels
                out += np.einsum("goc,ngchw->ngohw", w[:, :, :, i, j], window, optimize=True)
    return out.reshape(spec.n, spec.c_out, spec.out_h, spec.out_w)


# input channels up to which auto also times the compiled dense 3x3 tap loop: it beat
# im2col+GEMM on 3- to 32-channel layers (stems), and lost to Winograd and GEMMs beyond
DENSE_MAX_CHANNELS = 32


def compiled_dense(spec: ConvSpec) -> bool:
    """Where the compiled dense tap loop runs: one group, a 3x3 kernel, few input channels."""
    return spec.groups == 1 and (spec.kh, spec.kw) == (3, 3) and spec.c_in <= DENSE_MAX_CHANNELS


def _dense3x3(
    kernels, x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, spec: ConvSpec
) -> np.ndarray:
    """The tap loop over each image's phase planes (:func:`engine.im2col.phase_planes`'s
    layout), four output channels per pass, groups of four split over the cores."""
    sh, sw = spec.stride
    hq, wq = plane_shape(spec)
    out = np.empty(spec.output_shape, dtype=spec.dtype)
    planes = scratch("direct planes", (spec.c_in, sh * sw, hq * wq), spec.dtype)
    b = np.empty(0, dtype=spec.dtype) if bias is None else bias
    groups4 = -(-spec.c_out // 4)
    for n in range(spec.n):
        planes.fill(0)
        parallel.run_kernel(
            kernels.phase_planes,
            (x, n, planes, sh, sw, spec.pad[0], spec.pad[2], hq, wq),
            parallel.kernel_pieces(spec.c_in, hq * wq * sh * sw),
        )
        parallel.run_kernel(
            kernels.dense3x3,
            (planes, weight, b, out, n, sh, sw, *spec.dilation, wq),
            parallel.kernel_pieces(groups4, 36 * spec.c_in * hq * wq),
        )
    return out


class DirectEngine(Engine):
    name = "direct"
    description = "Sliding window: for each kernel tap, multiply the shifted input and accumulate"

    def __init__(self, jit: bool = True) -> None:
        super().__init__()
        self.jit = jit

    def _compute(
        self,
        x: np.ndarray,
        weight: np.ndarray,
        bias: np.ndarray | None,
        spec: ConvSpec,
        weight_key: Hashable | None,
    ) -> tuple[np.ndarray, str]:
        if spec.c_in_per_group == 1 and self.jit:
            kernels = _jit.kernels()
            if kernels is not None:
                out = np.empty(spec.output_shape, dtype=spec.dtype)
                b = np.empty(0, dtype=spec.dtype) if bias is None else bias
                taps = spec.c_out_per_group * spec.out_h * spec.out_w * spec.kh * spec.kw
                parallel.run_kernel(
                    kernels.depthwise,
                    (x, weight, b, out, *spec.stride, *spec.dilation, spec.pad[0], spec.pad[2]),
                    parallel.kernel_pieces(spec.n * spec.c_in, taps),
                )
                return out, self.name
        if self.jit and compiled_dense(spec):
            kernels = _jit.kernels()
            if kernels is not None:
                return _dense3x3(kernels, x, weight, bias, spec), self.name
        return add_bias(direct_conv(zero_padded(x, spec), weight, spec), bias), self.name

    def explain(
        self,
        x: np.ndarray,
        weight: np.ndarray,
        bias: np.ndarray | None = None,
        stride: IntOrPair = 1,
        padding: Padding = 0,
        dilation: IntOrPair = 1,
        groups: int = 1,
        padding_mode: str = "zeros",
        *,
        n: int = 0,
        out_channel: int = 0,
        y: int = 0,
        x_pos: int = 0,
    ) -> UnitTrace:
        """Every term of output element ``[n, out_channel, y, x_pos]``, computed term by term.

        Raises ``ValueError`` if the element is outside the output.
        """
        xp, w, b, spec = prepare(x, weight, bias, stride, padding, dilation, groups, padding_mode)
        for label, value, size in (
            ("n", n, spec.n),
            ("out_channel", out_channel, spec.c_out),
            ("y", y, spec.out_h),
            ("x", x_pos, spec.out_w),
        ):
            if not 0 <= value < size:
                raise ValueError(f"{label}={value} is outside the output (size {size})")
        cg = spec.c_in_per_group
        group = out_channel // spec.c_out_per_group
        channels = np.arange(group * cg, (group + 1) * cg)
        sh, sw = spec.stride
        dh, dw = spec.dilation
        prow = y * sh + np.arange(spec.kh) * dh  # rows in the padded input
        pcol = x_pos * sw + np.arange(spec.kw) * dw
        patch = xp[n][np.ix_(channels, prow, pcol)]
        kernel = w[out_channel]
        products = patch * kernel
        channel_sums = products.sum(axis=(1, 2))
        bias_value = 0.0 if b is None else float(b[out_channel])
        rows, cols = prow - spec.pad[0], pcol - spec.pad[2]
        in_padding = ((rows < 0) | (rows >= spec.h))[:, None] | ((cols < 0) | (cols >= spec.w))[None, :]
        return UnitTrace(
            n=n,
            out_channel=out_channel,
            y=y,
            x=x_pos,
            patch=patch,
            kernel=kernel,
            products=products,
            channel_sums=channel_sums,
            bias=bias_value,
            value=float(channel_sums.sum() + bias_value),
            input_channels=channels,
            rows=rows,
            cols=cols,
            in_padding=in_padding,
        )
