"""Layers as the app names and shows them: the row of the layer table, keys, look-ups.

A layer's key is its module path (``layer2.0.conv1``); a module called more than once per
forward pass gives ``path#2``, ``path#3``, ... for the later calls. A convolution made outside
any leaf module (``F.conv2d`` in a container's forward) is named by its weight's path.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from torch import nn

from engine import ConvSpec
from models.errors import LayerError
from models.receptive_field import ReceptiveField


@dataclass
class LayerInfo:
    """One row of the layer table.

    ``conv``: the convolution this layer computes, for one image (``n == 1``), with the
    module's own padding and padding mode; None for other layers. ``grid_axes``: the dims of
    the output that hold its (y, x) grid, ``(2, 3)`` for NCHW, ``(1, 2)`` for channels-last
    NHWC; None without a grid. ``field_note``: why there is no receptive field, when one is
    unknown rather than absent. ``block``: the row of a container (a ResNet's ``layer2``, a
    block inside it, an Inception module): its output after the residual add or the
    concatenation; ``params`` counts the whole block's, ``macs`` its rows'.
    """

    name: str
    type: str
    output_shape: tuple[int, ...]
    params: int
    macs: int
    time_ms: float
    algorithm: str | None
    receptive_field: ReceptiveField | None
    conv: ConvSpec | None = None
    input_shape: tuple[int, ...] | None = None  # for convolutions: the layer's input (N, C, H, W)
    grid_axes: tuple[int, int] | None = None
    field_note: str | None = None
    block: bool = False  # a container's output (a stage, a residual block), not a leaf layer's

    @property
    def is_conv(self) -> bool:
        return self.conv is not None

    @property
    def channels_last(self) -> bool:
        return self.grid_axes is not None and self.grid_axes != (
            len(self.output_shape) - 2,
            len(self.output_shape) - 1,
        )


class HasLayers(Protocol):
    model_name: str
    layers: list[LayerInfo]


def split_layer_key(key: str) -> tuple[str, int]:
    """A layer key -> (module path, which call): ``"layer1.relu#2"`` -> ``("layer1.relu", 1)``."""
    path, _, call = key.partition("#")
    return path, int(call) - 1 if call.isdigit() else 0


def find_layer(result: HasLayers, name: str) -> LayerInfo:
    """The layer called ``name``; ``LayerError`` naming close matches otherwise."""
    for layer in result.layers:
        if layer.name == name:
            return layer
    names = [la.name for la in result.layers]
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    if close:
        hint = f"; did you mean {', '.join(close)}?"
    elif names:
        hint = f"; layers: {', '.join(names[:8])}{', ...' if len(names) > 8 else ''}"
    else:
        hint = "; the model has no layers"
    raise LayerError(f"unknown layer {name!r} in {result.model_name}{hint}")


def parameter(model: nn.Module | object, key: str, name: str) -> torch.Tensor | None:
    """The parameter ``name`` (``"weight"``, ``"bias"``) of the layer ``key``, whatever the
    model's form (eager, TorchScript, or a ``torch.export`` program, whose parameters keep
    their module paths). ``model``: a module, or a loaded model holding one."""
    module = model if isinstance(model, nn.Module) else model.module
    path, _ = split_layer_key(key)
    params = dict(module.named_parameters())
    found = params.get(f"{path}.{name}") if path else None
    if found is None and name == "weight":
        found = params.get(path)  # a bare parameter used by F.conv2d: its own name
    return found


def layer_weights(model: nn.Module | object, key: str) -> np.ndarray | None:
    """The filters of a conv layer, ``(O, I/groups, kH, kW)`` float32; None for other layers."""
    w = parameter(model, key, "weight")
    return w.detach().float().numpy().copy() if w is not None and w.dim() == 4 else None


def conv_bias(model: nn.Module | object, key: str) -> np.ndarray | None:
    """The bias of a conv layer, ``(O,)`` float32; None without one."""
    w, b = parameter(model, key, "weight"), parameter(model, key, "bias")
    if b is None or w is None or w.dim() != 4:
        return None
    return b.detach().float().numpy().copy()


def grid_maps(array: np.ndarray, grid_axes: tuple[int, int] | None) -> np.ndarray:
    """One image's output as maps to draw: ``(C, H, W)`` with the grid last (channels-last
    outputs are moved, a view); other outputs unchanged. ``grid_axes`` count the batch dim."""
    if grid_axes is None or array.ndim < 2:
        return array
    y, x = grid_axes[0] - 1, grid_axes[1] - 1
    if (y, x) == (array.ndim - 2, array.ndim - 1):
        return array
    moved = np.moveaxis(array, (y, x), (-2, -1))
    return moved.reshape(-1, *moved.shape[-2:])
