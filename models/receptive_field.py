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

This module holds the field itself; the tracker is :mod:`models.field_tracker` (the dispatch
mode: which tensor has which field) and :mod:`models.field_rules` (how each kind of op moves a
field and its grid).

The effective receptive field is different: how much each input pixel actually moves the
unit, ``|d unit / d input|``, computed with autograd on torch (:mod:`models.gradients`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace


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

    def through(
        self,
        kernel: tuple[int, int],
        stride: tuple[int, int],
        padding: tuple[int, int],
        dilation: tuple[int, int] = (1, 1),
    ) -> ReceptiveField:
        """The field after a sliding-window op."""
        return replace(
            self,
            size=tuple(self.size[a] + (kernel[a] - 1) * dilation[a] * self.jump[a] for a in (0, 1)),
            jump=tuple(self.jump[a] * stride[a] for a in (0, 1)),
            start=tuple(self.start[a] - padding[a] * self.jump[a] for a in (0, 1)),
        )

    def shifted(self, rows: float, cols: float) -> ReceptiveField:
        """Unit (0, 0) moved by whole units (a crop, or padding when negative)."""
        return replace(self, start=(self.start[0] + rows * self.jump[0], self.start[1] + cols * self.jump[1]))

    @staticmethod
    def union(fields: list[ReceptiveField]) -> ReceptiveField:
        """The field of a unit that sees through several paths (e.g. a residual add)."""
        start = tuple(min(f.start[a] for f in fields) for a in (0, 1))
        end = tuple(max(f.start[a] + f.size[a] for f in fields) for a in (0, 1))
        jump = tuple(min(f.jump[a] for f in fields) for a in (0, 1))
        return ReceptiveField(
            size=tuple(int(end[a] - start[a]) for a in (0, 1)),
            jump=jump,
            start=start,
            global_context=any(f.global_context for f in fields),
            assumed=merge_assumed(*(f.assumed for f in fields)),
        )


IDENTITY = ReceptiveField((1, 1), (1, 1), (0.0, 0.0))


def merge_assumed(*names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(n for group in names for n in group))
