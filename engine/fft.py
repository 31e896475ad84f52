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

Kernel spectra take ``C_out * C_in/G`` transforms at the input's (padded) size: for a big image
that is far more than the input itself. They are made for blocks of output (and, if need be,
input) channels that fit the engines' work budget (:data:`engine._common.WORK_BYTES`), and
cached per block when the caller names the weights (``weight_key``).
"""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np

from engine import _parallel as parallel
from engine._common import ConvSpec, add_bias, chunks, zero_padded
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

    def __init__(self, jit: bool = True) -> None:
        super().__init__()
        self.jit = jit  # no compiled kernels: the per-frequency products split over the cores

    def algorithm_for(self, spec: ConvSpec) -> str:
        if spec.stride != (1, 1):
            return f"fft (stride {spec.stride[0]}x{spec.stride[1]}: computed at stride 1, subsampled)"
        return "fft"

    def _compute(
        self,
        x: np.ndarray,
        weight: np.ndarray,
        bias: np.ndarray | None,
        spec: ConvSpec,
        weight_key: Hashable | None,
    ) -> tuple[np.ndarray, str]:
        g, cg, og, n = spec.groups, spec.c_in_per_group, spec.c_out_per_group, spec.n
        k = dilate_kernel(weight, spec.dilation)
        ekh, ekw = k.shape[2:]
        xp = zero_padded(x, spec)
        lh, lw = fast_size(spec.hp), fast_size(spec.wp)
        fw = lw // 2 + 1
        nf = lh * fw
        xf = np.fft.rfft2(xp, s=(lh, lw))  # (N, C, lh, lw//2+1)
        csize = xf.dtype.itemsize
        sh, sw = spec.stride
        vh, vw = spec.hp - ekh + 1, spec.wp - ekw + 1  # valid stride-1 outputs
        out = np.empty(spec.output_shape, dtype=spec.dtype)
        # blocks of input channels whose spectra for one output channel fit the budget, then
        # blocks of output channels: spectra, products and the inverse transform of a block fit
        in_blocks = chunks(cg, nf * csize)
        for gi in range(g):
            # per frequency: (O/G, C/G) @ (C/G, N) -- the channel sum, batched over frequencies
            xt = xf[:, gi * cg : (gi + 1) * cg].reshape(n, cg, nf).transpose(2, 1, 0)  # (F, C/G, N)
            widest = max(c1 - c0 for c0, c1 in in_blocks)
            per_out = (widest + n) * nf * csize + n * lh * lw * spec.dtype.itemsize
            for o0, o1 in chunks(og, per_out):
                of = np.zeros((nf, o1 - o0, n), dtype=xf.dtype)
                for c0, c1 in in_blocks:
                    ob = slice(gi * og + o0, gi * og + o1)

                    def spectra(ob: slice = ob, c0: int = c0, c1: int = c1) -> np.ndarray:
                        kf = np.fft.rfft2(k[ob, c0:c1], s=(lh, lw))  # (ob, cb, lh, fw)
                        return np.ascontiguousarray(
                            np.conj(kf).reshape(ob.stop - ob.start, c1 - c0, nf).transpose(2, 0, 1)
                        )  # (F, ob, cb)

                    kt = self._weight_derived(
                        weight_key,
                        ("conj rfft2", lh, lw, ob.start, ob.stop, c0, c1, k.shape, spec.dtype.str),
                        spectra,
                    )
                    xc = xt[:, c0:c1]
                    if self.jit:
                        parallel.run(
                            lambda f0, f1, kt=kt, xc=xc, of=of: np.add(
                                of[f0:f1], np.matmul(kt[f0:f1], xc[f0:f1]), out=of[f0:f1]
                            ),
                            parallel.gemm_pieces(nf, 4 * (o1 - o0) * (c1 - c0) * n),
                        )
                    else:
                        of += np.matmul(kt, xc)  # (F, ob, N)
                full = np.fft.irfft2(of.transpose(2, 1, 0).reshape(n, o1 - o0, lh, fw), s=(lh, lw))
                out[:, gi * og + o0 : gi * og + o1] = full[:, :, :vh:sh, :vw:sw]
        return add_bias(out, bias), self.algorithm_for(spec)
