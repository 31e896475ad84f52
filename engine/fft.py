"""Convolution by the convolution theorem: multiply in the frequency domain.

A layer's cross-correlation of the padded input ``xp`` with a (dilated) kernel ``k`` is
``irfft2(rfft2(xp) * conj(rfft2(k)))`` on a grid at least as large as ``xp``: the circular
wrap-around then only touches outputs past the valid ones, which we drop. Per group, the sum
over input channels happens in the frequency domain, as one batched matrix product per
frequency.

- dilation: the kernel is spread out with zeros before its transform (a dilated kernel *is* a
  sparse bigger kernel), so it costs nothing extra in the frequency domain;
- stride: the transform yields every stride-1 output; we keep every s-th. That wastes work,
  and the reported algorithm says so.
"""

from __future__ import annotations

import numpy as np

from engine._common import ConvSpec
from engine.base import Engine


def fast_size(n: int) -> int:
    """The smallest 5-smooth number >= ``n`` (sizes pocketfft transforms fastest)."""
    best = 1 << max(0, (n - 1).bit_length())
    p5 = 1
    while p5 < best:
        p35 = p5
        while p35 < best:
            size = p35
            while size < n:
                size *= 2
            best = min(best, size)
            p35 *= 3
        p5 *= 5
    return best


def dilate_kernel(weight: np.ndarray, dilation: tuple[int, int]) -> np.ndarray:
    """``(O, C, kH, kW)`` -> ``(O, C, d(kH-1)+1, d(kW-1)+1)`` with zeros between the taps."""
    dh, dw = dilation
    if dh == dw == 1:
        return weight
    o, c, kh, kw = weight.shape
    out = np.zeros((o, c, dh * (kh - 1) + 1, dw * (kw - 1) + 1), dtype=weight.dtype)
    out[:, :, ::dh, ::dw] = weight
    return out


class FFTEngine(Engine):
    name = "fft"
    description = "Convolution theorem: rfft2 of input and kernel, multiply, inverse transform"

    def algorithm_for(self, spec: ConvSpec) -> str:
        if spec.stride != (1, 1):
            return f"fft (stride {spec.stride[0]}x{spec.stride[1]}: computed at stride 1, subsampled)"
        return "fft"

    def _compute(self, xp: np.ndarray, weight: np.ndarray, spec: ConvSpec) -> tuple[np.ndarray, str]:
        g, cg, og, n = spec.groups, spec.c_in_per_group, spec.c_out_per_group, spec.n
        k = dilate_kernel(weight, spec.dilation)
        ekh, ekw = k.shape[2:]
        lh, lw = fast_size(spec.hp), fast_size(spec.wp)
        xf = np.fft.rfft2(xp, s=(lh, lw))  # (N, C, lh, lw//2+1)
        kf = np.fft.rfft2(k, s=(lh, lw))  # (O, C/G, lh, lw//2+1)
        nf = xf.shape[-2] * xf.shape[-1]
        # per frequency: (O/G, C/G) @ (C/G, N) -- the channel sum, batched over groups and frequencies
        xt = xf.reshape(n, g, cg, nf).transpose(1, 3, 2, 0)  # (G, F, C/G, N)
        kt = np.conj(kf).reshape(g, og, cg, nf).transpose(0, 3, 1, 2)  # (G, F, O/G, C/G)
        of = np.matmul(kt, xt)  # (G, F, O/G, N)
        of = of.transpose(3, 0, 2, 1).reshape(n, spec.c_out, lh, lw // 2 + 1)
        full = np.fft.irfft2(of, s=(lh, lw))
        sh, sw = spec.stride
        vh, vw = spec.hp - ekh + 1, spec.wp - ekw + 1  # valid stride-1 outputs
        out = full[:, :, :vh:sh, :vw:sw]
        return np.array(out, dtype=spec.dtype), self.algorithm_for(spec)
