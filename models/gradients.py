"""Layer outputs and gradients on torch with autograd, for any model form: the effective
receptive field (``|d unit / d input|``) and a layer's output as the layer made it (what
feature visualization and class activation maps differentiate). The engines compute forward
passes only; these run through the same capture as a run, so a layer key means the same layer.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from models.capture import CancelFn, Options, Record, model_form
from models.errors import LayerError
from models.layers import split_layer_key
from models.run_plan import capture, plan, program_of
from models.sources import LoadedModel


def effective_receptive_field(
    model: LoadedModel | nn.Module,
    tensor: torch.Tensor,
    layer: str,
    channel: int,
    y: int,
    x: int,
    cancel: CancelFn | None = None,
) -> np.ndarray:
    """``|d unit / d input|`` summed over input channels: ``(H, W)`` float32.

    Runs on torch with autograd (not on the selected engine: the engines compute forward passes
    only), for any model form. ``layer`` is a layer key (a module path, ``#n`` for its n-th
    call); ``(channel, y, x)`` index the layer's maps as drawn (:meth:`RunResult.maps`).
    """
    module = model if isinstance(model, nn.Module) else model.module
    form = model_form(module)
    program = program_of(module, form)
    inp = tensor.detach().clone().requires_grad_(True)
    opts = Options(keys=frozenset({layer}), clone=None, cancel=cancel)  # before in-place ops
    with torch.enable_grad():
        _, records = capture(module, form, program, inp, None, opts)
        if cancel is not None and cancel():
            from models.errors import Cancelled

            raise Cancelled("effective receptive field cancelled")
    if not records:
        path, call = split_layer_key(layer)
        if path in dict(module.named_modules()) or call:
            raise LayerError(f"layer {layer!r} did not run {call + 1} times")
        raise LayerError(f"unknown layer {layer!r}")
    out = records[0].output
    row = plan(module, tensor).rows.get(layer)
    axes = row.grid_axes if row is not None else None
    if out.dim() < 3 or (axes is None and out.dim() != 4):
        raise LayerError(f"layer {layer!r} has no spatial map")
    maps = _grid_tensor(out[0], axes)
    c, h, w = maps.shape
    if not (0 <= channel < c and 0 <= y < h and 0 <= x < w):
        raise LayerError(f"unit ({channel}, {y}, {x}) is outside layer {layer!r} ({c}x{h}x{w})")
    (grad,) = torch.autograd.grad(maps[channel, y, x], inp)
    return grad[0].abs().sum(0).numpy().astype(np.float32)


class _Reached(Exception):
    """Raised from the capture once the wanted layer is recorded: the layers after it never run."""


def layer_output(
    model: LoadedModel | nn.Module,
    x: torch.Tensor,
    layer: str,
    *,
    stop: bool = True,
    on_output: Callable[[torch.Tensor], None] | None = None,
    cancel: CancelFn | None = None,
) -> tuple[torch.Tensor, object | None]:
    """``layer``'s output for the batch ``x`` and the model's output, computed by torch with
    autograd as the caller has it (wrap in ``torch.enable_grad()`` for gradients), any model form.

    The layer's output is the tensor the layer made, not a copy, so gradients flow through it.
    ``stop``: end the forward pass right after the layer (the model's output is then None) --
    for eager models and ``.pt2`` programs; a TorchScript model always runs whole, and its layer
    outputs are copies made inside its graph: gradients reach the input through them, but the
    model's output does not depend on them. ``on_output(out)`` sees the output as soon as it
    is made, before any later layer runs (a gradient hook registered there survives a later
    in-place op). Raises ``LayerError`` for a layer that does not exist or did not run.
    """
    module = model if isinstance(model, nn.Module) else model.module
    form = model_form(module)
    found: list[torch.Tensor] = []

    def on_record(_record: Record, out: torch.Tensor, _given: torch.Tensor | None) -> None:
        found.append(out)
        if on_output is not None:
            on_output(out)
        if stop:
            raise _Reached

    opts = Options(keys=frozenset({layer}), cancel=cancel, on_record=on_record)
    try:
        output, _ = capture(module, form, program_of(module, form), x, None, opts)
    except _Reached:
        output = None
    if not found:
        path, call = split_layer_key(layer)
        if path in dict(module.named_modules()) or call:
            raise LayerError(f"layer {layer!r} did not run {call + 1} times")
        raise LayerError(f"unknown layer {layer!r}")
    return found[0], output


def _grid_tensor(t: torch.Tensor, axes: tuple[int, int] | None) -> torch.Tensor:
    if axes is None or (axes[0] - 1, axes[1] - 1) == (t.dim() - 2, t.dim() - 1):
        return t
    moved = torch.movedim(t, (axes[0] - 1, axes[1] - 1), (-2, -1))
    return moved.reshape(-1, *moved.shape[-2:])
