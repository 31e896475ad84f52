"""What a stored scan is keyed by: the model's weights and layers, and how images are prepared.

The engine is deliberately *not* part of the key. Every engine computes the same convolution
(each is tested against torch within ``1e-4 * (1 + max|ref|)``), so two engines can only rank
two images differently when their activations lie within that tolerance of each other, a tie
either answer is right for. Keying on the engine would make a user who switches engines wait
for a scan whose result they could not tell apart; the store records which engines computed a
scan instead.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import weakref

import torch
from torch import nn

from models.images import Preprocess
from models.layers import LayerInfo

# bump when what a scan computes changes (image reading, preparing, the per-image candidate):
# older stored scans then no longer match
PIPELINE_VERSION = 1

_weights: weakref.WeakKeyDictionary[nn.Module, str] = weakref.WeakKeyDictionary()


def weights_hash(module: nn.Module) -> str:
    """SHA-256 of the module's state dict (names, dtypes, shapes, bytes), computed once per
    module object (a model's weights do not change while ConvScope shows it)."""
    cached = _weights.get(module)
    if cached is not None:
        return cached
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}\n".encode())
        t = tensor.detach().cpu().contiguous()
        if t.is_quantized:
            t = t.int_repr()
        if t.numel():
            digest.update(t.reshape(-1).view(torch.uint8).numpy())
    _weights[module] = digest.hexdigest()
    return _weights[module]


def layers_hash(layers: list[LayerInfo]) -> str:
    """SHA-256 of the conv layer table a scan ranks: names, output shapes, convolutions and
    receptive fields (two models with equal weights but other strides differ here)."""
    table = [
        (
            la.name,
            la.type,
            tuple(la.output_shape),
            repr(la.conv),
            la.grid_axes,
            None
            if la.receptive_field is None
            else (la.receptive_field.size, la.receptive_field.jump, la.receptive_field.start),
        )
        for la in layers
    ]
    return hashlib.sha256(repr(table).encode()).hexdigest()


def model_key(module: nn.Module, layers: list[LayerInfo]) -> str:
    return hashlib.sha256(f"{weights_hash(module)}|{layers_hash(layers)}".encode()).hexdigest()


def preprocess_key(preprocess: Preprocess) -> str:
    """The preprocessing as canonical JSON, with the pipeline version."""
    doc = {"pipeline": PIPELINE_VERSION, **dataclasses.asdict(preprocess)}
    return json.dumps(doc, sort_keys=True)


def same_model(a, b) -> bool:
    """The same network as far as a scan is concerned: the same weights (hash of the state
    dict, computed once per module), name and preprocessing."""
    if a is b:
        return True
    return (
        a.name == b.name and a.preprocess == b.preprocess and weights_hash(a.module) == weights_hash(b.module)
    )
