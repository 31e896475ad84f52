"""Receptive fields: which input pixels a unit can see, exactly, on the executed graph.

Per tensor we track, for the unit at (0, 0), the first input pixel it sees (``start``, negative
inside padding), how many pixels it spans (``size``) and how far apart neighbouring units'
fields are (``jump``, the effective stride). Per axis, through an op with kernel ``k``, stride
``s``, padding ``p`` and dilation ``d``:

    size' = size + (k - 1) * d * jump      jump' = jump * s      start' = start - p * jump

Element-wise ops that meet several paths (a residual add, a concatenation) take the union of
their inputs' fields. Tracking runs as a ``TorchDispatchMode``, so every pooling, padding and
branch the model really executes counts, whatever module it sits in, in eager models,
TorchScript and ``torch.export`` programs alike.

Where the spatial grid lives is tracked too, not assumed to be the last two axes: a permute to
channels-last, a reshape that merges height and width into one axis for a matrix product and
splits them again, a layer norm or a linear layer over the channel axis all keep the grid, so
ConvNeXt-style blocks carry their field through. A tensor that is broadcast onto the grid from
a global reduction (the gate of squeeze-and-excitation, a global softmax or group norm's
statistics) does not widen the field of the spatial path: the field says so with
``global_context`` instead of claiming the whole image. An op the tracker does not know is never
dropped silently: when it keeps the tensor's shape it is assumed pointwise and named in
``assumed``; otherwise the tensor's field is unknown and :meth:`ReceptiveFieldMode.unknown_op`
names the op.

The effective receptive field is different: how much each input pixel actually moves the
unit, ``|d unit / d input|``, computed with autograd on torch (:mod:`models.capture`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
from torch.utils._python_dispatch import TorchDispatchMode

_aten = torch.ops.aten


@dataclass(frozen=True)
class ReceptiveField:
    """The receptive field of a layer's units, in input-tensor pixels (per axis: y, x).

    ``global_context``: the unit also receives information from the whole image through a
    global reduction (squeeze-and-excitation, global normalisation), beside this field.
    ``assumed``: ops the tracker did not know and assumed to be pointwise on the way here.
    """

    size: tuple[int, int]
    jump: tuple[int, int]
    start: tuple[float, float]  # first input pixel seen by unit (0, 0); < 0 lies in padding
    global_context: bool = False
    assumed: tuple[str, ...] = ()

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
        return replace(
            self,
            size=tuple(self.size[a] + (kernel[a] - 1) * dilation[a] * self.jump[a] for a in (0, 1)),
            jump=tuple(self.jump[a] * stride[a] for a in (0, 1)),
            start=tuple(self.start[a] - padding[a] * self.jump[a] for a in (0, 1)),
        )

    def shifted(self, rows: float, cols: float) -> ReceptiveField:
        """Unit (0, 0) moved by whole units (a crop, or padding when negative)."""
        return replace(self, start=(self.start[0] + rows * self.jump[0],
                                    self.start[1] + cols * self.jump[1]))

    @staticmethod
    def union(fields: list[ReceptiveField]) -> ReceptiveField:
        """The field of a unit that sees through several paths (e.g. a residual add)."""
        start = tuple(min(f.start[a] for f in fields) for a in (0, 1))
        end = tuple(max(f.start[a] + f.size[a] for f in fields) for a in (0, 1))
        jump = tuple(min(f.jump[a] for f in fields) for a in (0, 1))
        return ReceptiveField(
            size=tuple(int(end[a] - start[a]) for a in (0, 1)), jump=jump, start=start,
            global_context=any(f.global_context for f in fields),
            assumed=_merge(*(f.assumed for f in fields)))


IDENTITY = ReceptiveField((1, 1), (1, 1), (0.0, 0.0))


def _merge(*names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(n for group in names for n in group))


@dataclass(frozen=True)
class _Axis:
    """Where one spatial axis lives in a tensor: along ``dim``, coordinate
    ``(index // inner) % size`` (``inner`` > 1 once height and width share a merged dim)."""

    dim: int
    inner: int
    size: int


@dataclass(frozen=True)
class _Track:
    """What the tracker knows of one tensor: its field, and where its (y, x) grid lives
    (None: no grid, e.g. a globally pooled vector, which still carries context)."""

    field: ReceptiveField
    axes: tuple[_Axis, _Axis] | None
    broadcast: bool = False  # expanded onto the grid from one value per channel


def _pair(v: object, default: tuple[int, int] | None = None) -> tuple[int, int]:
    if v is None or (isinstance(v, (list, tuple)) and len(v) == 0):
        assert default is not None
        return default
    if isinstance(v, (list, tuple)):
        return (int(v[0]), int(v[-1]))
    return (int(v), int(v))


def _flat(args: object) -> list[object]:
    if isinstance(args, (list, tuple)):
        return [b for a in args for b in _flat(a)]
    return [args]


def _tensors(out: object) -> list[torch.Tensor]:
    return [t for t in _flat(out) if isinstance(t, torch.Tensor)]


def _dims(value: object, ndim: int) -> list[int]:
    values = value if isinstance(value, (list, tuple)) else [value]
    return [int(v) % ndim for v in values] if ndim else []


_SLIDING = {"convolution", "_convolution", "conv2d", "max_pool2d", "max_pool2d_with_indices",
            "avg_pool2d", "_adaptive_avg_pool2d", "adaptive_avg_pool2d", "adaptive_max_pool2d",
            "constant_pad_nd", "reflection_pad2d", "replication_pad2d", "_pad_circular", "pad"}
_VIEWS = {"view", "_unsafe_view", "reshape", "squeeze", "unsqueeze", "flatten", "unflatten",
          "view_as", "_reshape_alias"}
_SAME = {"clone", "detach", "alias", "contiguous", "_to_copy", "to", "lift_fresh", "lift_fresh_copy",
         "native_dropout", "dropout", "feature_dropout", "_native_batch_norm_legit_no_training",
         "_native_batch_norm_legit", "native_batch_norm", "batch_norm", "_batch_norm_impl_index",
         "cudnn_batch_norm", "miopen_batch_norm", "_native_batch_norm_legit_functional"}
_REDUCTIONS = {"mean", "sum", "amax", "amin", "max", "min", "var", "std", "var_mean", "std_mean",
               "logsumexp", "norm", "linalg_vector_norm", "prod"}
_SOFTMAX = {"_softmax", "_log_softmax", "softmax", "log_softmax"}
_CONSTANT = {"empty", "zeros", "ones", "full", "randn", "rand", "arange", "empty_like", "zeros_like",
             "ones_like", "full_like", "randn_like", "rand_like", "new_empty", "new_zeros",
             "new_ones", "new_full", "scalar_tensor", "empty_strided", "new_empty_strided",
             "sym_size", "sym_stride", "sym_numel", "_local_scalar_dense", "lift_fresh_copy_"}


class ReceptiveFieldMode(TorchDispatchMode):
    """Tracks the receptive field of every tensor produced while active.

    :meth:`field` answers for a tensor *at the time it is asked* (in-place ops update the
    field of the tensor they write to). Tracked tensors are kept alive while the mode is, so
    their ids stay unique.
    """

    def __init__(self, inputs: list[torch.Tensor]) -> None:
        super().__init__()
        self._tracks: dict[int, _Track | None] = {}
        self._unknown: dict[int, str] = {}
        self._keep: list[torch.Tensor] = []
        for t in inputs:
            self._set(t, _Track(IDENTITY, (_Axis(t.dim() - 2, 1, t.shape[-2]),
                                           _Axis(t.dim() - 1, 1, t.shape[-1]))))

    # ------------------------------------------------------------------ queries
    def field(self, tensor: torch.Tensor) -> ReceptiveField | None:
        """The field of ``tensor``'s units, or None when it has no spatial grid (or the field
        is unknown: see :meth:`unknown_op`)."""
        return self._tracks[id(tensor)].field if self.grid_axes(tensor) is not None else None

    def grid_axes(self, tensor: torch.Tensor) -> tuple[int, int] | None:
        """The dims that hold ``tensor``'s (y, x) grid (e.g. ``(1, 2)`` for channels-last
        ``(N, H, W, C)``), or None."""
        track = self._tracks.get(id(tensor))
        if track is None or track.axes is None or any(a.inner != 1 for a in track.axes):
            return None
        return (track.axes[0].dim, track.axes[1].dim)

    def unknown_op(self, tensor: torch.Tensor) -> str | None:
        """The op that made the field of ``tensor`` unknown, if one did."""
        return self._unknown.get(id(tensor))

    # ------------------------------------------------------------------ tracking
    def _set(self, t: torch.Tensor, track: _Track | None) -> None:
        if id(t) not in self._tracks:
            self._keep.append(t)
        self._tracks[id(t)] = track

    def _get(self, t: object) -> _Track | None:
        return self._tracks.get(id(t)) if isinstance(t, torch.Tensor) else None

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        tracked = [a for a in _flat(list(args) + list(kwargs.values())) if self._get(a) is not None]
        if not tracked:
            return out  # constants, parameters: no field to carry
        name = func.overloadpacket.__name__
        try:
            results = self._propagate(name, func, args, kwargs, out)
        except (IndexError, TypeError, ValueError, ZeroDivisionError):
            results = None
        outs = _tensors(out)
        if results is None:  # an op we do not know
            results = self._assume_pointwise(str(func.overloadpacket), tracked, outs)
        mutated = args[0] if args and isinstance(args[0], torch.Tensor) and (
            torch.Tag.inplace in func.tags or name.endswith("_")) else None
        for t, track in zip(outs, results, strict=False):
            self._set(t, track)
            if track is None and t is not mutated:
                self._unknown.setdefault(id(t), str(func.overloadpacket))
        if mutated is not None and outs and outs[0] is not mutated:
            self._set(mutated, results[0] if results else None)
        return out

    def _assume_pointwise(self, op: str, tracked: list[torch.Tensor],
                          outs: list[torch.Tensor]) -> list[_Track | None]:
        results: list[_Track | None] = []
        for t in outs:
            same = [self._get(a) for a in tracked if tuple(a.shape) == tuple(t.shape)]
            same = [s for s in same if s is not None]
            if same and same[0].axes is not None:
                field = same[0].field
                results.append(_Track(replace(field, assumed=_merge(field.assumed, (op,))),
                                      same[0].axes))
            else:
                results.append(None)
        return results

    def _propagate(self, name: str, func, args, kwargs, out) -> list[_Track | None] | None:
        outs = _tensors(out)
        first = outs[0] if outs else None
        x = args[0] if args else None
        track = self._get(x)
        if name in _CONSTANT:
            return [None] * len(outs)
        if name in _SLIDING:
            return [self._sliding(name, args, track, first)] + [None] * (len(outs) - 1)
        if name in _SAME or name == "copy_":
            if name == "copy_":
                track = self._get(args[1])
                track = _right_align(track, args[1].dim(), x.dim()) if track else None
            return [track] + [None] * (len(outs) - 1)
        if name in _VIEWS:
            return [_reshape(track, tuple(x.shape), tuple(first.shape))]
        if name in ("expand", "expand_as"):
            return [_expand(track, x.dim(), first)]
        if name in ("permute", "transpose", "t", "swapaxes", "movedim", "numpy_T", "mT"):
            return [self._permute(name, args, track, x.dim())]
        if name in ("slice", "select", "narrow"):
            return [_slice(name, args, track, x.dim())]
        if name in ("cat", "concat", "stack"):
            return [self._cat(name, args, kwargs, first)]
        if name in ("split", "split_with_sizes", "chunk", "unbind", "unsafe_split",
                    "unsafe_split_with_sizes", "tensor_split"):
            return self._split(name, args, kwargs, track, outs)
        if name in _REDUCTIONS:
            return [_reduce(args, kwargs, track, x.dim(), first)] + [
                _reduce(args, kwargs, track, x.dim(), t) for t in outs[1:]]
        if name in _SOFTMAX:
            dim = _dims(args[1], x.dim())
            return [_with_context(track, _touches(track, dim))]
        if name in ("native_layer_norm", "layer_norm"):
            normalized = list(range(x.dim() - len(args[1]), x.dim()))
            return [_with_context(track, _touches(track, normalized))] + [None] * (len(outs) - 1)
        if name in ("native_group_norm", "group_norm", "instance_norm"):
            return [_with_context(track, True)] + [None] * (len(outs) - 1)
        if name in ("mm", "addmm", "bmm", "baddbmm"):
            a, b = (args[1], args[2]) if name in ("addmm", "baddbmm") else (args[0], args[1])
            ta, tb = self._get(a), self._get(b)
            if tb is not None and tb.axes is not None:
                return None  # the grid is contracted over: not a per-position product
            if ta is None:
                return [tb] if tb is not None else [None]
            contracted = a.dim() - 1
            if ta.axes is not None and any(ax.dim == contracted for ax in ta.axes):
                return None
            return [ta]
        if name in ("as_strided", "as_strided_") and tuple(x.shape) == tuple(first.shape):
            return [track]  # restrided in place to the same shape: the same values
        if _is_pointwise(func, name):
            return [self._pointwise(args, kwargs, first)] + [None] * (len(outs) - 1)
        return None

    def _sliding(self, name: str, args, track: _Track | None, first) -> _Track | None:
        if track is None or track.axes is None or first is None:
            return None
        x = args[0]
        ay, ax = track.axes
        nd = x.dim()
        if (ay.dim, ax.dim, ay.inner, ax.inner) != (nd - 2, nd - 1, 1, 1):
            return None  # a 2-D window over axes that are not the grid
        rf = track.field
        if name in ("convolution", "_convolution", "conv2d"):
            transposed = name != "conv2d" and bool(args[6])
            if transposed:
                return None
            w = args[1]
            rf = rf.through(tuple(w.shape[2:]), _pair(args[3]), _pair(args[4]), _pair(args[5]))
        elif name in ("max_pool2d", "max_pool2d_with_indices"):
            k = _pair(args[1])
            s = _pair(args[2] if len(args) > 2 else None, k)
            p = _pair(args[3] if len(args) > 3 else 0)
            d = _pair(args[4] if len(args) > 4 else 1)
            rf = rf.through(k, s, p, d)
        elif name == "avg_pool2d":
            k = _pair(args[1])
            s = _pair(args[2] if len(args) > 2 else None, k)
            rf = rf.through(k, s, _pair(args[3] if len(args) > 3 else 0))
        elif name in ("_adaptive_avg_pool2d", "adaptive_avg_pool2d", "adaptive_max_pool2d"):
            rf = _adaptive(rf, tuple(x.shape[-2:]), tuple(first.shape[-2:]))
        else:  # padding ops: pad[0:2] pads the last dim, pad[2:4] the one before
            pad = [*list(args[1]), 0, 0, 0, 0]
            rf = rf.shifted(-pad[2], -pad[0])
        oy, ox = first.shape[-2:]
        return _Track(rf, (_Axis(nd - 2, 1, int(oy)), _Axis(nd - 1, 1, int(ox))))

    def _permute(self, name: str, args, track: _Track | None, ndim: int) -> _Track | None:
        if track is None or track.axes is None:
            return track
        order = list(range(ndim))
        if name == "permute":
            order = _dims(args[1], ndim)
        elif name in ("transpose", "swapaxes"):
            a, b = _dims(args[1], ndim)[0], _dims(args[2], ndim)[0]
            order[a], order[b] = order[b], order[a]
        elif name in ("t", "numpy_T", "mT"):
            order = order[:-2] + order[-2:][::-1] if ndim >= 2 else order
        else:
            return None
        return replace(track, axes=tuple(replace(a, dim=order.index(a.dim)) for a in track.axes))

    def _cat(self, name: str, args, kwargs, first) -> _Track | None:
        tensors = list(args[0])
        dim = args[1] if len(args) > 1 else kwargs.get("dim", 0)
        tracks = [self._get(t) for t in tensors]
        spatial = [t for t in tracks if t is not None and t.axes is not None]
        if not spatial:
            known = [t for t in tracks if t is not None]
            return known[0] if known else None
        ndim = tensors[0].dim()
        d = _dims(dim, ndim + (1 if name == "stack" else 0))[0]
        axes = spatial[0].axes
        if name != "stack" and any(a.dim == d for a in axes):
            return None  # joined along the grid: not the union of the parts
        if any(t.axes != axes for t in spatial):
            return None
        field = ReceptiveField.union([t.field for t in spatial])
        if name == "stack":
            axes = tuple(replace(a, dim=a.dim + (1 if a.dim >= d else 0)) for a in axes)
        return _Track(field, axes)

    def _split(self, name: str, args, kwargs, track: _Track | None,
               outs: list[torch.Tensor]) -> list[_Track | None] | None:
        if track is None or track.axes is None:
            return [track] * len(outs)
        ndim = args[0].dim()
        dim = args[2] if len(args) > 2 else kwargs.get("dim", 0)
        if name == "unbind":
            dim = args[1] if len(args) > 1 else kwargs.get("dim", 0)
        d = _dims(dim, ndim)[0]
        if any(a.dim == d for a in track.axes):
            return None
        if name == "unbind":
            axes = tuple(replace(a, dim=a.dim - (1 if a.dim > d else 0)) for a in track.axes)
            return [_Track(track.field, axes)] * len(outs)
        return [track] * len(outs)

    def _pointwise(self, args, kwargs, first) -> _Track | None:
        if first is None:
            return None
        full: list[_Track] = []
        context = False
        for a in _flat(list(args) + list(kwargs.values())):
            track = self._get(a)
            if track is None:
                continue
            if tuple(a.shape) == tuple(first.shape) and not track.broadcast:
                full.append(_right_align(track, a.dim(), first.dim()))
            else:
                context = True  # broadcast onto the grid (a gate, a pooled statistic)
        if not full:
            return None
        grids = [t for t in full if t.axes is not None]
        if grids:
            axes = grids[0].axes
            if any(t.axes != axes for t in grids):
                return None
            context = context or len(grids) < len(full)
        else:
            axes = None
            grids = full
        field = grids[0].field if len(grids) == 1 else ReceptiveField.union([t.field for t in grids])
        if context and not field.global_context:
            field = replace(field, global_context=True)
        return _Track(field, axes)


_ELEMENTWISE = {"hardswish", "hardswish_", "softplus", "softshrink", "hardshrink", "threshold",
                "threshold_", "prelu", "_prelu_kernel", "celu", "celu_", "selu", "selu_",
                "rrelu_with_noise", "log_sigmoid_forward", "where", "masked_fill", "clamp", "lerp",
                "addcmul", "addcdiv", "hardtanh"}  # elementwise, but not tagged pointwise


def _is_pointwise(func, name: str) -> bool:
    if torch.Tag.pointwise in func.tags or name in _ELEMENTWISE:
        return True
    # in-place variants (hardswish_, silu_) are not always tagged; their functional twin is
    functional = getattr(_aten, name[:-1], None) if name.endswith("_") else None
    overload = getattr(functional, "default", None) or getattr(functional, "Tensor", None)
    return overload is not None and torch.Tag.pointwise in overload.tags


def _right_align(track: _Track | None, ndim: int, out_ndim: int) -> _Track | None:
    if track is None or track.axes is None or ndim == out_ndim:
        return track
    shift = out_ndim - ndim
    return _Track(track.field, tuple(replace(a, dim=a.dim + shift) for a in track.axes), track.broadcast)


def _adaptive(rf: ReceptiveField, size: tuple[int, int], out: tuple[int, int]) -> ReceptiveField:
    """An adaptive pool's bins: bin i spans ``[floor(i*in/out), ceil((i+1)*in/out))``. When
    ``out`` divides ``in`` that is a plain pool (exact); otherwise the bins differ in width and
    step, and the field takes the widest bin and the mean step, and says it is approximate."""
    kernel, stride = [], []
    for n, m in zip(size, out, strict=True):
        if n % m == 0:
            kernel.append(n // m)
            stride.append(n // m)
        else:
            kernel.append(max(-(-(i + 1) * n // m) - (i * n // m) for i in range(m)))
            stride.append(n / m)
    field = rf.through((kernel[0], kernel[1]), (stride[0], stride[1]), (0, 0))
    if all(n % m == 0 for n, m in zip(size, out, strict=True)):
        return field
    return replace(field, assumed=_merge(field.assumed, ("adaptive pooling with uneven bins "
                                                         "(approximate)",)))


def _expand(track: _Track | None, ndim: int, out: torch.Tensor) -> _Track | None:
    track = _right_align(track, ndim, out.dim())
    if track is None or track.axes is None:
        return track
    axes = tuple(replace(a, size=int(out.shape[a.dim])) for a in track.axes)
    return _Track(track.field, axes, broadcast=track.broadcast or axes != track.axes)


def _with_context(track: _Track | None, context: bool) -> _Track | None:
    if track is None or not context or track.field.global_context:
        return track
    return _Track(replace(track.field, global_context=True), track.axes)


def _touches(track: _Track | None, dims: list[int]) -> bool:
    return track is not None and track.axes is not None and any(a.dim in dims for a in track.axes)


def _reshape(track: _Track | None, shape: tuple[int, ...], new: tuple[int, ...]) -> _Track | None:
    """Carry the grid through a reshape (row-major semantics): each spatial axis must land
    inside one dim of the new shape."""
    if track is None or track.axes is None:
        return track
    axes = []
    for a in track.axes:
        step = math.prod(shape[a.dim + 1:]) * a.inner  # flat-index distance of one unit
        span = step * a.size
        placed = None
        for e in range(len(new)):
            stride = math.prod(new[e + 1:])
            if a.size == 1:  # a size-1 axis only survives as a size-1 dim at the same place
                fits = new[e] == 1 and stride == step
            else:
                fits = new[e] > 1 and stride <= step and step % stride == 0 and span <= stride * new[e]
            if fits:
                placed = _Axis(e, step // stride, a.size)
                break
        if placed is None:
            # the grid folded into a vector (flatten before a classifier): no grid is left,
            # and each value sees what the whole map saw
            extent = tuple(ax.size if ax.inner == 1 else 1 for ax in track.axes)
            return _Track(track.field.through(extent, (1, 1), (0, 0)), None)
        axes.append(placed)
    return replace(track, axes=(axes[0], axes[1]))


def _slice(name: str, args, track: _Track | None, ndim: int) -> _Track | None:
    if track is None or track.axes is None:
        return track
    d = _dims(args[1] if len(args) > 1 else 0, ndim)[0]
    hit = [i for i, a in enumerate(track.axes) if a.dim == d]
    if name == "select":
        if hit:
            return None  # one row or column picked: no grid left
        return replace(track, axes=tuple(replace(a, dim=a.dim - (1 if a.dim > d else 0))
                                         for a in track.axes))
    if not hit:
        return track
    i = hit[0]
    a = track.axes[i]
    if a.inner != 1:
        return None
    size = a.size
    if name == "narrow":
        start, step = int(args[2]), 1
        length = int(args[3])
    else:
        start = args[2] if len(args) > 2 and args[2] is not None else 0
        end = args[3] if len(args) > 3 and args[3] is not None else size
        step = int(args[4]) if len(args) > 4 else 1
        start, end = int(start), int(min(end, size))
        start = start + size if start < 0 else start
        end = end + size if end < 0 else end
        length = max(0, -(-(end - start) // step))
    rf = track.field.shifted(start if i == 0 else 0, start if i == 1 else 0)
    rf = replace(rf, jump=tuple(j * step if k == i else j for k, j in enumerate(rf.jump)))
    axes = list(track.axes)
    axes[i] = _Axis(a.dim, 1, length)
    return replace(track, field=rf, axes=(axes[0], axes[1]))


def _reduce(args, kwargs, track: _Track | None, ndim: int, out: torch.Tensor) -> _Track | None:
    if track is None or track.axes is None:
        return track
    dim = args[1] if len(args) > 1 else kwargs.get("dim")
    if isinstance(dim, bool) or dim is None or (isinstance(dim, (list, tuple)) and len(dim) == 0):
        dims = list(range(ndim))  # everything
    elif isinstance(dim, (int, list, tuple)):
        dims = _dims(dim, ndim)
    else:
        return None
    keep = out.dim() == ndim  # the reduced dims kept, as size 1
    reduced = [a for a in track.axes if a.dim in dims]
    if not reduced:  # over channels only: still one value per position
        if keep:
            return track
        return replace(track, axes=tuple(replace(a, dim=a.dim - sum(1 for d in dims if d < a.dim))
                                         for a in track.axes))
    if any(a.inner != 1 for a in track.axes):
        return None
    # a global reduction over the grid: every input pixel the map saw
    ky = track.axes[0].size if track.axes[0] in reduced else 1
    kx = track.axes[1].size if track.axes[1] in reduced else 1
    field = track.field.through((ky, kx), (1, 1), (0, 0))
    if keep:
        return _Track(field, tuple(replace(a, size=1) if a in reduced else a for a in track.axes))
    return _Track(field, None)


def split_layer_key(key: str) -> tuple[str, int]:
    """A layer key -> (module path, which call): ``"layer1.relu#2"`` -> ``("layer1.relu", 1)``.

    The runner names a module's second and later calls ``name#2``, ``name#3``, ...
    """
    path, _, call = key.partition("#")
    return path, int(call) - 1 if call.isdigit() else 0
