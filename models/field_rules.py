"""How each kind of op moves a tensor's receptive field and where its spatial grid lives: the
rules :class:`models.field_tracker.ReceptiveFieldMode` applies (see :mod:`models.receptive_field`
for the arithmetic)."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch

from models.receptive_field import ReceptiveField, merge_assumed

_aten = torch.ops.aten


@dataclass(frozen=True)
class Axis:
    """Where one spatial axis lives in a tensor: along ``dim``, coordinate
    ``(index // inner) % size`` (``inner`` > 1 once height and width share a merged dim)."""

    dim: int
    inner: int
    size: int


@dataclass(frozen=True)
class Track:
    """What the tracker knows of one tensor: its field, and where its (y, x) grid lives
    (None: no grid, e.g. a globally pooled vector, which still carries context)."""

    field: ReceptiveField
    axes: tuple[Axis, Axis] | None
    broadcast: bool = False  # expanded onto the grid from one value per channel


def pair_of(v: object, default: tuple[int, int] | None = None) -> tuple[int, int]:
    if v is None or (isinstance(v, (list, tuple)) and len(v) == 0):
        assert default is not None
        return default
    if isinstance(v, (list, tuple)):
        return (int(v[0]), int(v[-1]))
    return (int(v), int(v))


def flatten_args(args: object) -> list[object]:
    if isinstance(args, (list, tuple)):
        return [b for a in args for b in flatten_args(a)]
    return [args]


def tensors_in(out: object) -> list[torch.Tensor]:
    return [t for t in flatten_args(out) if isinstance(t, torch.Tensor)]


def dims_of(value: object, ndim: int) -> list[int]:
    values = value if isinstance(value, (list, tuple)) else [value]
    return [int(v) % ndim for v in values] if ndim else []


SLIDING = {
    "convolution",
    "_convolution",
    "conv2d",
    "max_pool2d",
    "max_pool2d_with_indices",
    "avg_pool2d",
    "_adaptive_avg_pool2d",
    "adaptive_avg_pool2d",
    "adaptive_max_pool2d",
    "constant_pad_nd",
    "reflection_pad2d",
    "replication_pad2d",
    "_pad_circular",
    "pad",
}
VIEWS = {
    "view",
    "_unsafe_view",
    "reshape",
    "squeeze",
    "unsqueeze",
    "flatten",
    "unflatten",
    "view_as",
    "_reshape_alias",
}
SAME = {
    "clone",
    "detach",
    "alias",
    "contiguous",
    "_to_copy",
    "to",
    "lift_fresh",
    "lift_fresh_copy",
    "native_dropout",
    "dropout",
    "feature_dropout",
    "_native_batch_norm_legit_no_training",
    "_native_batch_norm_legit",
    "native_batch_norm",
    "batch_norm",
    "_batch_norm_impl_index",
    "cudnn_batch_norm",
    "miopen_batch_norm",
    "_native_batch_norm_legit_functional",
}
REDUCTIONS = {
    "mean",
    "sum",
    "amax",
    "amin",
    "max",
    "min",
    "var",
    "std",
    "var_mean",
    "std_mean",
    "logsumexp",
    "norm",
    "linalg_vector_norm",
    "prod",
}
SOFTMAX = {"_softmax", "_log_softmax", "softmax", "log_softmax"}
CONSTANT = {
    "empty",
    "zeros",
    "ones",
    "full",
    "randn",
    "rand",
    "arange",
    "empty_like",
    "zeros_like",
    "ones_like",
    "full_like",
    "randn_like",
    "rand_like",
    "new_empty",
    "new_zeros",
    "new_ones",
    "new_full",
    "scalar_tensor",
    "empty_strided",
    "new_empty_strided",
    "sym_size",
    "sym_stride",
    "sym_numel",
    "_local_scalar_dense",
    "lift_fresh_copy_",
}


ELEMENTWISE = {
    "hardswish",
    "hardswish_",
    "softplus",
    "softshrink",
    "hardshrink",
    "threshold",
    "threshold_",
    "prelu",
    "_prelu_kernel",
    "celu",
    "celu_",
    "selu",
    "selu_",
    "rrelu_with_noise",
    "log_sigmoid_forward",
    "where",
    "masked_fill",
    "clamp",
    "lerp",
    "addcmul",
    "addcdiv",
    "hardtanh",
}  # elementwise, but not tagged pointwise


def is_pointwise(func, name: str) -> bool:
    if torch.Tag.pointwise in func.tags or name in ELEMENTWISE:
        return True
    # in-place variants (hardswish_, silu_) are not always tagged; their functional twin is
    functional = getattr(_aten, name[:-1], None) if name.endswith("_") else None
    overload = getattr(functional, "default", None) or getattr(functional, "Tensor", None)
    return overload is not None and torch.Tag.pointwise in overload.tags


def right_align(track: Track | None, ndim: int, out_ndim: int) -> Track | None:
    if track is None or track.axes is None or ndim == out_ndim:
        return track
    shift = out_ndim - ndim
    return Track(track.field, tuple(replace(a, dim=a.dim + shift) for a in track.axes), track.broadcast)


def adaptive_field(rf: ReceptiveField, size: tuple[int, int], out: tuple[int, int]) -> ReceptiveField:
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
    return replace(
        field, assumed=merge_assumed(field.assumed, ("adaptive pooling with uneven bins (approximate)",))
    )


def expand_track(track: Track | None, ndim: int, out: torch.Tensor) -> Track | None:
    track = right_align(track, ndim, out.dim())
    if track is None or track.axes is None:
        return track
    axes = tuple(replace(a, size=int(out.shape[a.dim])) for a in track.axes)
    return Track(track.field, axes, broadcast=track.broadcast or axes != track.axes)


def with_context(track: Track | None, context: bool) -> Track | None:
    if track is None or not context or track.field.global_context:
        return track
    return Track(replace(track.field, global_context=True), track.axes)


def touches(track: Track | None, dims: list[int]) -> bool:
    return track is not None and track.axes is not None and any(a.dim in dims for a in track.axes)


def reshape_track(track: Track | None, shape: tuple[int, ...], new: tuple[int, ...]) -> Track | None:
    """Carry the grid through a reshape (row-major semantics): each spatial axis must land
    inside one dim of the new shape."""
    if track is None or track.axes is None:
        return track
    axes = []
    for a in track.axes:
        step = math.prod(shape[a.dim + 1 :]) * a.inner  # flat-index distance of one unit
        span = step * a.size
        placed = None
        for e in range(len(new)):
            stride = math.prod(new[e + 1 :])
            if a.size == 1:  # a size-1 axis only survives as a size-1 dim at the same place
                fits = new[e] == 1 and stride == step
            else:
                fits = new[e] > 1 and stride <= step and step % stride == 0 and span <= stride * new[e]
            if fits:
                placed = Axis(e, step // stride, a.size)
                break
        if placed is None:
            # the grid folded into a vector (flatten before a classifier): no grid is left,
            # and each value sees what the whole map saw
            extent = tuple(ax.size if ax.inner == 1 else 1 for ax in track.axes)
            return Track(track.field.through(extent, (1, 1), (0, 0)), None)
        axes.append(placed)
    return replace(track, axes=(axes[0], axes[1]))


def slice_track(name: str, args, track: Track | None, ndim: int) -> Track | None:
    if track is None or track.axes is None:
        return track
    d = dims_of(args[1] if len(args) > 1 else 0, ndim)[0]
    hit = [i for i, a in enumerate(track.axes) if a.dim == d]
    if name == "select":
        if hit:
            return None  # one row or column picked: no grid left
        return replace(track, axes=tuple(replace(a, dim=a.dim - (1 if a.dim > d else 0)) for a in track.axes))
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
    axes[i] = Axis(a.dim, 1, length)
    return replace(track, field=rf, axes=(axes[0], axes[1]))


def reduce_track(args, kwargs, track: Track | None, ndim: int, out: torch.Tensor) -> Track | None:
    if track is None or track.axes is None:
        return track
    dim = args[1] if len(args) > 1 else kwargs.get("dim")
    if isinstance(dim, bool) or dim is None or (isinstance(dim, (list, tuple)) and len(dim) == 0):
        dims = list(range(ndim))  # everything
    elif isinstance(dim, (int, list, tuple)):
        dims = dims_of(dim, ndim)
    else:
        return None
    keep = out.dim() == ndim  # the reduced dims kept, as size 1
    reduced = [a for a in track.axes if a.dim in dims]
    if not reduced:  # over channels only: still one value per position
        if keep:
            return track
        return replace(
            track, axes=tuple(replace(a, dim=a.dim - sum(1 for d in dims if d < a.dim)) for a in track.axes)
        )
    if any(a.inner != 1 for a in track.axes):
        return None
    # a global reduction over the grid: every input pixel the map saw
    ky = track.axes[0].size if track.axes[0] in reduced else 1
    kx = track.axes[1].size if track.axes[1] in reduced else 1
    field = track.field.through((ky, kx), (1, 1), (0, 0))
    if keep:
        return Track(field, tuple(replace(a, size=1) if a in reduced else a for a in track.axes))
    return Track(field, None)
