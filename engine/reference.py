"""The oracle: torch.nn.functional.conv2d, imported lazily so the engines stay NumPy-only."""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np

from engine._common import ConvSpec, IntOrPair, Padding, make_spec, result_dtype
from engine.base import ConvResult, Engine

_TORCH_PAD_MODE = {"reflect": "reflect", "replicate": "replicate", "circular": "circular"}


class ReferenceEngine(Engine):
    name = "reference"
    description = "PyTorch's own conv2d (oneDNN on CPU): the oracle every engine is tested against"

    def run(
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
        weight_key: Hashable | None = None,  # nothing is derived from the weights: ignored
    ) -> ConvResult:
        import torch
        import torch.nn.functional as F

        xa, wa = np.asarray(x), np.asarray(weight)
        ba = None if bias is None else np.asarray(bias)
        dtype = result_dtype(xa, wa, ba)
        # same validation and messages as every other engine
        spec = make_spec(
            xa.shape,
            wa.shape,
            None if ba is None else ba.shape,
            stride,
            padding,
            dilation,
            groups,
            padding_mode,
            dtype,
        )
        tx = torch.from_numpy(np.ascontiguousarray(xa, dtype=dtype))
        tw = torch.from_numpy(np.ascontiguousarray(wa, dtype=dtype))
        tb = None if ba is None else torch.from_numpy(np.ascontiguousarray(ba, dtype=dtype))
        with torch.no_grad():
            if padding_mode == "zeros":
                top, bottom, left, right = spec.pad
                if top == bottom and left == right:
                    out = F.conv2d(tx, tw, tb, spec.stride, (top, left), spec.dilation, groups)
                else:
                    tx = F.pad(tx, (left, right, top, bottom))
                    out = F.conv2d(tx, tw, tb, spec.stride, 0, spec.dilation, groups)
            else:
                top, bottom, left, right = spec.pad
                tx = F.pad(tx, (left, right, top, bottom), mode=_TORCH_PAD_MODE[padding_mode])
                out = F.conv2d(tx, tw, tb, spec.stride, 0, spec.dilation, groups)
        self._local.algorithm = self.name
        return ConvResult(out.numpy(), self.name)

    def _compute(
        self,
        x: np.ndarray,
        weight: np.ndarray,
        bias: np.ndarray | None,
        spec: ConvSpec,
        weight_key: Hashable | None,
    ) -> tuple[np.ndarray, str]:
        raise NotImplementedError("ReferenceEngine overrides run()")  # pragma: no cover
