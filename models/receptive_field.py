"""Receptive fields: which input pixels a unit can see, exactly, on the executed graph.

Per tensor we track, for the unit at (0, 0), the first input pixel it sees (``start``, negative
inside padding), how many pixels it spans (``size``) and how far apart neighbouring units'
fields are (``jump``, the effective stride). Per axis, through an op with kernel ``k``, stride
``s``, padding ``p`` and dilation ``d``:

    size' = size + (k - 1) * d * jump      jump' = jump * s      start' = start - p * jump

Element-wise ops that meet several paths (a residual add, a concatenation) take the union of
their inputs' fields. Tracking runs as a ``TorchDispatchMode`` beside the engine's, so every
pooling, padding and branch the model really executes counts, whatever module it sits in.

The effective receptive field is different: how much each input pixel actually moves the
unit, ``|d unit / d input|``, computed with autograd on torch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from models.errors import Cancelled, LayerError

_aten = torch.ops.aten


@dataclass(frozen=True)
class ReceptiveField:
    """The receptive field of a layer's units, in input-tensor pixels (per axis: y, x)."""

    size: tuple[int, int]
    jump: tuple[int, int]
    start: tuple[float, float]  # first input pixel seen by unit (0, 0); < 0 lies in padding

    @property
    def center(self) -> tuple[float, float]:
        """Centre of unit (0, 0)'s field, in input pixel coordinates."""
        return (self.start[0] + (self.size[0] - 1) / 2, self.start[1] + (self.size[1] - 1) / 2)

    def box(self, y: int, x: int) -> tuple[float, float, float, float]:
        """Unit (y, x)'s field as ``(top, left, bottom, right)``, bottom/right exclusive, unclipped."""
        top = self.start[0] + y * self.jump[0]
        left = self.start[1] + x * self.jump[1]
        return (top, left, top + self.size[0], left + self.size[1])

    def unit_center(self, y: int, x: int) -> tuple[float, float]:
        cy, cx = self.center
        return (cy + y * self.jump[0], cx + x * self.jump[1])

    def share_of(self, height: int, width: int) -> float:
        """Fraction of an image of this size that one central unit sees (clipped to the image)."""
        return min(1.0, self.size[0] / height) * min(1.0, self.size[1] / width)

    def through(self, kernel: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int],
                dilation: tuple[int, int] = (1, 1)) -> ReceptiveField:
        """The field after a sliding-window op."""
        return ReceptiveField(
            size=tuple(self.size[a] + (kernel[a] - 1) * dilation[a] * self.jump[a] for a in (0, 1)),
            jump=tuple(self.jump[a] * stride[a] for a in (0, 1)),
            start=tuple(self.start[a] - padding[a] * self.jump[a] for a in (0, 1)),
        )

    @staticmethod
    def union(fields: list[ReceptiveField]) -> ReceptiveField:
        """The field of a unit that sees through several paths (e.g. a residual add)."""
        start = tuple(min(f.start[a] for f in fields) for a in (0, 1))
        end = tuple(max(f.start[a] + f.size[a] for f in fields) for a in (0, 1))
        jump = tuple(min(f.jump[a] for f in fields) for a in (0, 1))
        return ReceptiveField(size=tuple(int(end[a] - start[a]) for a in (0, 1)), jump=jump,
                              start=start)


IDENTITY = ReceptiveField((1, 1), (1, 1), (0.0, 0.0))


def _pair(v: object, default: tuple[int, int] | None = None) -> tuple[int, int]:
    if v is None or (isinstance(v, (list, tuple)) and len(v) == 0):
        assert default is not None
        return default
    if isinstance(v, (list, tuple)):
        return (int(v[0]), int(v[-1]))
    return (int(v), int(v))


def _spatial(t: object) -> tuple[int, int] | None:
    return tuple(t.shape[-2:]) if isinstance(t, torch.Tensor) and t.dim() == 4 else None


class ReceptiveFieldMode(TorchDispatchMode):
    """Tracks the receptive field of every 4-D tensor produced while active.

    ``fields[id(tensor)]``; the tensors are kept alive while the mode is (ids stay unique).
    """

    def __init__(self, inputs: list[torch.Tensor]) -> None:
        super().__init__()
        self._fields: dict[int, ReceptiveField | None] = {id(t): IDENTITY for t in inputs}
        self._keep: list[torch.Tensor] = list(inputs)

    def field(self, tensor: torch.Tensor) -> ReceptiveField | None:
        return self._fields.get(id(tensor))

    def _rf(self, t: object) -> ReceptiveField | None:
        return self._fields.get(id(t)) if isinstance(t, torch.Tensor) else None

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        try:
            rf = self._propagate(func, args, out)
        except (IndexError, TypeError, ValueError):
            rf = None
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor) and t.dim() == 4 and id(t) not in self._fields:
                self._fields[id(t)] = rf
                self._keep.append(t)
        return out

    def _propagate(self, func, args, out) -> ReceptiveField | None:
        first = out[0] if isinstance(out, (tuple, list)) else out
        if _spatial(first) is None:
            return None
        x = args[0] if args else None
        rf = self._rf(x)
        packet = func.overloadpacket
        if packet in (_aten.convolution, _aten._convolution):
            if rf is None or args[6]:  # transposed convs grow the map: no box in this sense
                return None
            w = args[1]
            return rf.through(tuple(w.shape[2:]), _pair(args[3]), _pair(args[4]), _pair(args[5]))
        if packet in (_aten.max_pool2d, _aten.max_pool2d_with_indices):
            if rf is None:
                return None
            k = _pair(args[1])
            s = _pair(args[2] if len(args) > 2 else None, k)
            p = _pair(args[3] if len(args) > 3 else 0)
            d = _pair(args[4] if len(args) > 4 else 1)
            return rf.through(k, s, p, d)
        if packet == _aten.avg_pool2d:
            if rf is None:
                return None
            k = _pair(args[1])
            s = _pair(args[2] if len(args) > 2 else None, k)
            return rf.through(k, s, _pair(args[3] if len(args) > 3 else 0))
        if packet in (_aten._adaptive_avg_pool2d, _aten.adaptive_avg_pool2d,
                      _aten.adaptive_max_pool2d):
            if rf is None:
                return None
            (ih, iw), (oh, ow) = _spatial(x), _spatial(first)
            # bins of an adaptive pool: exact when the sizes divide, the widest bin otherwise
            k = (-(-ih // oh), -(-iw // ow))
            s = (ih // oh, iw // ow)
            return rf.through(k, s, (0, 0))
        if packet in (_aten.constant_pad_nd, _aten.reflection_pad2d, _aten.replication_pad2d,
                      _aten._pad_circular, _aten.pad):
            if rf is None:
                return None
            pad = [*list(args[1]), 0, 0, 0, 0]
            left, top = pad[0], pad[2]
            return ReceptiveField(rf.size, rf.jump, (rf.start[0] - top * rf.jump[0],
                                                     rf.start[1] - left * rf.jump[1]))
        size = _spatial(first)
        if size == (1, 1) and rf is not None and _spatial(x) not in (None, (1, 1)):
            # a global reduction (mean / amax over H, W): every input pixel the map saw
            return rf.through(_spatial(x), (1, 1), (0, 0))
        # element-wise and shape-preserving ops: the union of every input on the same grid
        inputs = [a for a in _flat(args) if _spatial(a) is not None]
        fields = [self._rf(a) for a in inputs if _spatial(a) == size or _spatial(a) == (1, 1)]
        fields = [f for f in fields if f is not None]
        if not fields or any(_spatial(a) != size and _spatial(a) != (1, 1) for a in inputs):
            return None
        return fields[0] if len(fields) == 1 else ReceptiveField.union(fields)


def _flat(args: object) -> list[object]:
    if isinstance(args, (list, tuple)):
        return [b for a in args for b in _flat(a)]
    return [args]


def split_layer_key(key: str) -> tuple[str, int]:
    """A layer key -> (module path, which call): ``"layer1.relu#2"`` -> ``("layer1.relu", 1)``.

    The runner names a module's second and later calls ``name#2``, ``name#3``, ...
    """
    path, _, call = key.partition("#")
    return path, int(call) - 1 if call.isdigit() else 0


def effective_receptive_field(
    module: torch.nn.Module, tensor: torch.Tensor, layer: str, channel: int, y: int, x: int,
    cancel: Callable[[], bool] | None = None,
) -> np.ndarray:
    """``|d unit / d input|`` summed over input channels: ``(H, W)`` float32.

    Runs on torch with autograd (not on the selected engine: the engines compute forward passes
    only). ``layer`` is a layer key (a module path, ``#n`` for its n-th call).
    """
    modules = dict(module.named_modules())
    path, call = split_layer_key(layer)
    if path not in modules:
        raise LayerError(f"unknown layer {layer!r}")
    captured: list[torch.Tensor] = []
    handle = modules[path].register_forward_hook(lambda _m, _i, out: captured.append(out))
    inp = tensor.detach().clone().requires_grad_(True)
    try:
        with torch.enable_grad():
            module(inp)
            if cancel and cancel():
                raise Cancelled("effective receptive field cancelled")
            if call >= len(captured):
                raise LayerError(f"layer {layer!r} did not run {call + 1} times")
            out = captured[call]
            if out.dim() != 4:
                raise LayerError(f"layer {layer!r} has no spatial map")
            c, h, w = out.shape[1:]
            if not (0 <= channel < c and 0 <= y < h and 0 <= x < w):
                raise LayerError(f"unit ({channel}, {y}, {x}) is outside layer {layer!r} ({c}x{h}x{w})")
            (grad,) = torch.autograd.grad(out[0, channel, y, x], inp)
    finally:
        handle.remove()
    return grad[0].abs().sum(0).numpy().astype(np.float32)
