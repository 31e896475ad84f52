"""The receptive-field tracker: a ``TorchDispatchMode`` that gives every tensor made while it is
active a field and a grid (see :mod:`models.receptive_field`), by the rules of
:mod:`models.field_rules`."""

from __future__ import annotations

from dataclasses import replace

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from models.field_rules import (
    CONSTANT,
    REDUCTIONS,
    SAME,
    SLIDING,
    SOFTMAX,
    VIEWS,
    Axis,
    Track,
    adaptive_field,
    dims_of,
    expand_track,
    flatten_args,
    is_pointwise,
    pair_of,
    reduce_track,
    reshape_track,
    right_align,
    slice_track,
    tensors_in,
    touches,
    with_context,
)
from models.receptive_field import IDENTITY, ReceptiveField, merge_assumed


class ReceptiveFieldMode(TorchDispatchMode):
    """Tracks the receptive field of every tensor produced while active.

    :meth:`field` answers for a tensor *at the time it is asked* (in-place ops update the
    field of the tensor they write to). Tracked tensors are kept alive while the mode is, so
    their ids stay unique.
    """

    def __init__(self, inputs: list[torch.Tensor]) -> None:
        super().__init__()
        self._tracks: dict[int, Track | None] = {}
        self._unknown: dict[int, str] = {}
        self._keep: list[torch.Tensor] = []
        for t in inputs:
            self._set(
                t, Track(IDENTITY, (Axis(t.dim() - 2, 1, t.shape[-2]), Axis(t.dim() - 1, 1, t.shape[-1])))
            )

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
    def _set(self, t: torch.Tensor, track: Track | None) -> None:
        if id(t) not in self._tracks:
            self._keep.append(t)
        self._tracks[id(t)] = track

    def _get(self, t: object) -> Track | None:
        return self._tracks.get(id(t)) if isinstance(t, torch.Tensor) else None

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        tracked = [a for a in flatten_args(list(args) + list(kwargs.values())) if self._get(a) is not None]
        if not tracked:
            return out  # constants, parameters: no field to carry
        name = func.overloadpacket.__name__
        try:
            results = self._propagate(name, func, args, kwargs, out)
        except (IndexError, TypeError, ValueError, ZeroDivisionError):
            results = None
        outs = tensors_in(out)
        if results is None:  # an op we do not know
            results = self._assume_pointwise(str(func.overloadpacket), tracked, outs)
        mutated = (
            args[0]
            if args
            and isinstance(args[0], torch.Tensor)
            and (torch.Tag.inplace in func.tags or name.endswith("_"))
            else None
        )
        for t, track in zip(outs, results, strict=False):
            self._set(t, track)
            if track is None and t is not mutated:
                self._unknown.setdefault(id(t), str(func.overloadpacket))
        if mutated is not None and outs and outs[0] is not mutated:
            self._set(mutated, results[0] if results else None)
        return out

    def _assume_pointwise(
        self, op: str, tracked: list[torch.Tensor], outs: list[torch.Tensor]
    ) -> list[Track | None]:
        results: list[Track | None] = []
        for t in outs:
            same = [self._get(a) for a in tracked if tuple(a.shape) == tuple(t.shape)]
            same = [s for s in same if s is not None]
            if same and same[0].axes is not None:
                field = same[0].field
                results.append(
                    Track(replace(field, assumed=merge_assumed(field.assumed, (op,))), same[0].axes)
                )
            else:
                results.append(None)
        return results

    def _propagate(self, name: str, func, args, kwargs, out) -> list[Track | None] | None:
        outs = tensors_in(out)
        first = outs[0] if outs else None
        x = args[0] if args else None
        track = self._get(x)
        if name in CONSTANT:
            return [None] * len(outs)
        if name in SLIDING:
            return [self._sliding(name, args, track, first)] + [None] * (len(outs) - 1)
        if name in SAME or name == "copy_":
            if name == "copy_":
                track = self._get(args[1])
                track = right_align(track, args[1].dim(), x.dim()) if track else None
            return [track] + [None] * (len(outs) - 1)
        if name in VIEWS:
            return [reshape_track(track, tuple(x.shape), tuple(first.shape))]
        if name in ("expand", "expand_as"):
            return [expand_track(track, x.dim(), first)]
        if name in ("permute", "transpose", "t", "swapaxes", "movedim", "numpy_T", "mT"):
            return [self._permute(name, args, track, x.dim())]
        if name in ("slice", "select", "narrow"):
            return [slice_track(name, args, track, x.dim())]
        if name in ("cat", "concat", "stack"):
            return [self._cat(name, args, kwargs, first)]
        if name in (
            "split",
            "split_with_sizes",
            "chunk",
            "unbind",
            "unsafe_split",
            "unsafe_split_with_sizes",
            "tensor_split",
        ):
            return self._split(name, args, kwargs, track, outs)
        if name in REDUCTIONS:
            return [reduce_track(args, kwargs, track, x.dim(), first)] + [
                reduce_track(args, kwargs, track, x.dim(), t) for t in outs[1:]
            ]
        if name in SOFTMAX:
            dim = dims_of(args[1], x.dim())
            return [with_context(track, touches(track, dim))]
        if name in ("native_layer_norm", "layer_norm"):
            normalized = list(range(x.dim() - len(args[1]), x.dim()))
            return [with_context(track, touches(track, normalized))] + [None] * (len(outs) - 1)
        if name in ("native_group_norm", "group_norm", "instance_norm"):
            return [with_context(track, True)] + [None] * (len(outs) - 1)
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
        if is_pointwise(func, name):
            return [self._pointwise(args, kwargs, first)] + [None] * (len(outs) - 1)
        return None

    def _sliding(self, name: str, args, track: Track | None, first) -> Track | None:
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
            rf = rf.through(tuple(w.shape[2:]), pair_of(args[3]), pair_of(args[4]), pair_of(args[5]))
        elif name in ("max_pool2d", "max_pool2d_with_indices"):
            k = pair_of(args[1])
            s = pair_of(args[2] if len(args) > 2 else None, k)
            p = pair_of(args[3] if len(args) > 3 else 0)
            d = pair_of(args[4] if len(args) > 4 else 1)
            rf = rf.through(k, s, p, d)
        elif name == "avg_pool2d":
            k = pair_of(args[1])
            s = pair_of(args[2] if len(args) > 2 else None, k)
            rf = rf.through(k, s, pair_of(args[3] if len(args) > 3 else 0))
        elif name in ("_adaptive_avg_pool2d", "adaptive_avg_pool2d", "adaptive_max_pool2d"):
            rf = adaptive_field(rf, tuple(x.shape[-2:]), tuple(first.shape[-2:]))
        else:  # padding ops: pad[0:2] pads the last dim, pad[2:4] the one before
            pad = [*list(args[1]), 0, 0, 0, 0]
            rf = rf.shifted(-pad[2], -pad[0])
        oy, ox = first.shape[-2:]
        return Track(rf, (Axis(nd - 2, 1, int(oy)), Axis(nd - 1, 1, int(ox))))

    def _permute(self, name: str, args, track: Track | None, ndim: int) -> Track | None:
        if track is None or track.axes is None:
            return track
        order = list(range(ndim))
        if name == "permute":
            order = dims_of(args[1], ndim)
        elif name in ("transpose", "swapaxes"):
            a, b = dims_of(args[1], ndim)[0], dims_of(args[2], ndim)[0]
            order[a], order[b] = order[b], order[a]
        elif name in ("t", "numpy_T", "mT"):
            order = order[:-2] + order[-2:][::-1] if ndim >= 2 else order
        else:
            return None
        return replace(track, axes=tuple(replace(a, dim=order.index(a.dim)) for a in track.axes))

    def _cat(self, name: str, args, kwargs, first) -> Track | None:
        tensors = list(args[0])
        dim = args[1] if len(args) > 1 else kwargs.get("dim", 0)
        tracks = [self._get(t) for t in tensors]
        spatial = [t for t in tracks if t is not None and t.axes is not None]
        if not spatial:
            known = [t for t in tracks if t is not None]
            return known[0] if known else None
        ndim = tensors[0].dim()
        d = dims_of(dim, ndim + (1 if name == "stack" else 0))[0]
        axes = spatial[0].axes
        if name != "stack" and any(a.dim == d for a in axes):
            return None  # joined along the grid: not the union of the parts
        if any(t.axes != axes for t in spatial):
            return None
        field = ReceptiveField.union([t.field for t in spatial])
        if name == "stack":
            axes = tuple(replace(a, dim=a.dim + (1 if a.dim >= d else 0)) for a in axes)
        return Track(field, axes)

    def _split(
        self, name: str, args, kwargs, track: Track | None, outs: list[torch.Tensor]
    ) -> list[Track | None] | None:
        if track is None or track.axes is None:
            return [track] * len(outs)
        ndim = args[0].dim()
        dim = args[2] if len(args) > 2 else kwargs.get("dim", 0)
        if name == "unbind":
            dim = args[1] if len(args) > 1 else kwargs.get("dim", 0)
        d = dims_of(dim, ndim)[0]
        if any(a.dim == d for a in track.axes):
            return None
        if name == "unbind":
            axes = tuple(replace(a, dim=a.dim - (1 if a.dim > d else 0)) for a in track.axes)
            return [Track(track.field, axes)] * len(outs)
        return [track] * len(outs)

    def _pointwise(self, args, kwargs, first) -> Track | None:
        if first is None:
            return None
        full: list[Track] = []
        context = False
        for a in flatten_args(list(args) + list(kwargs.values())):
            track = self._get(a)
            if track is None:
                continue
            if tuple(a.shape) == tuple(first.shape) and not track.broadcast:
                full.append(right_align(track, a.dim(), first.dim()))
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
        return Track(field, axes)
