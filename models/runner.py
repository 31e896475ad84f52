"""Run a model with every convolution on the selected engine, capturing every layer.

One forward pass under two dispatch modes: :class:`~models.engine_mode.EngineConvMode` computes
each convolution on the engine, :class:`~models.receptive_field.ReceptiveFieldMode` tracks the
receptive field of every tensor. Forward hooks on the leaf modules capture each layer's output
(batch 0) in execution order, named by module path. TorchScript and ``torch.export`` programs
have no hooks to offer: their layers are their convolutions, named by their weight's path.
"""

from __future__ import annotations

import difflib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from models.engine_mode import EngineConvMode
from models.errors import Cancelled, LayerError
from models.images import PreparedImage
from models.receptive_field import ReceptiveField, ReceptiveFieldMode, split_layer_key
from models.zoo import LoadedModel

ProgressFn = Callable[[int, int], None]
CancelFn = Callable[[], bool]


@dataclass
class LayerInfo:
    """One row of the layer table."""

    name: str
    type: str
    output_shape: tuple[int, ...]
    params: int
    macs: int
    time_ms: float
    algorithm: str | None
    receptive_field: ReceptiveField | None
    conv: dict | None = None
    input_shape: tuple[int, ...] | None = None  # for convolutions: the layer's input (N, C, H, W)

    @property
    def is_conv(self) -> bool:
        return self.conv is not None


@dataclass
class RunResult:
    model_name: str
    engine: str
    input_shape: tuple[int, ...]
    layers: list[LayerInfo]
    activations: dict[str, np.ndarray] = field(repr=False)
    logits: np.ndarray | None
    predictions: list[tuple[str, float]]
    conv_calls: int
    total_ms: float
    # each convolution's input as the layer received it (batch 0, before a non-zero padding mode
    # pads it): what the explainer traces, without running the model again
    conv_inputs: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def layer(self, name: str) -> LayerInfo:
        return find_layer(self, name)

    def index(self, name: str) -> int:
        return [la.name for la in self.layers].index(find_layer(self, name).name)


def _weight_owners(module: nn.Module) -> dict[int, str]:
    """data_ptr of each 4-D weight -> the path of the module that owns it."""
    owners = {}
    for pname, p in module.named_parameters():
        if p.dim() == 4:
            owners.setdefault(p.data_ptr(), pname.rsplit(".", 1)[0] if "." in pname else pname)
    for bname, b in module.named_buffers():
        if b.dim() == 4:
            owners.setdefault(b.data_ptr(), bname.rsplit(".", 1)[0] if "." in bname else bname)
    return owners


def _conv_info(m: nn.Module) -> dict | None:
    if isinstance(m, nn.Conv2d):
        return {
            "in_channels": m.in_channels, "out_channels": m.out_channels,
            "kernel": list(m.kernel_size), "stride": list(m.stride),
            "padding": m.padding if isinstance(m.padding, str) else list(m.padding),
            "dilation": list(m.dilation), "groups": m.groups, "padding_mode": m.padding_mode,
        }
    return None


def _macs(m: nn.Module | None, out: torch.Tensor, conv: dict | None) -> int:
    if conv is not None:
        k = conv["kernel"][0] * conv["kernel"][1]
        return int(out[0].numel() * (conv["in_channels"] // conv["groups"]) * k)
    if isinstance(m, nn.Linear):
        return int(m.in_features * m.out_features)
    return 0


def _prepare_input(image: PreparedImage | torch.Tensor) -> torch.Tensor:
    return image.tensor if isinstance(image, PreparedImage) else image


def run_model(model: LoadedModel, image: PreparedImage | torch.Tensor, engine: str = "auto", *,
              progress: ProgressFn | None = None, cancel: CancelFn | None = None) -> RunResult:
    """Forward ``image`` through ``model`` with every convolution on ``engine``."""
    module = model.module
    x = _prepare_input(image).detach().float()
    leaves = [(n, m) for n, m in module.named_modules()
              if n and not list(m.children()) and not isinstance(m, torch.jit.ScriptModule)]
    hookable = bool(leaves) and not isinstance(module, torch.jit.ScriptModule)
    total = max(1, len(leaves))
    # (layer key, module, output, seconds, the module's input)
    records: list[tuple[str, nn.Module | None, torch.Tensor, float, torch.Tensor | None]] = []
    seen: dict[str, int] = {}
    starts: dict[int, float] = {}

    def pre_hook(m: nn.Module, _inputs: object) -> None:
        if cancel and cancel():
            raise Cancelled("run cancelled")
        starts[id(m)] = time.perf_counter()

    def make_hook(name: str) -> Callable:
        def hook(m: nn.Module, inputs: tuple, out: object) -> None:
            elapsed = time.perf_counter() - starts.pop(id(m), time.perf_counter())
            if not isinstance(out, torch.Tensor):
                return
            seen[name] = seen.get(name, 0) + 1
            key = name if seen[name] == 1 else f"{name}#{seen[name]}"  # a module called twice
            # the module's own input: a non-zero padding mode pads before the engine sees it
            given = inputs[0] if inputs and isinstance(inputs[0], torch.Tensor) else None
            records.append((key, m, out, elapsed, given))
            if progress:
                progress(min(len(records), total), total)
        return hook

    handles = []
    if hookable:
        for name, m in leaves:
            handles.append(m.register_forward_pre_hook(pre_hook))
            handles.append(m.register_forward_hook(make_hook(name)))
    start = time.perf_counter()
    try:
        with torch.no_grad(), EngineConvMode(engine) as conv_mode, ReceptiveFieldMode([x]) as rf_mode:
            output = module(x)
            owners = _weight_owners(module)
            conv_by_output = {id(c.output): c for c in conv_mode.calls}
            if not hookable:  # script / export: the layers are the convolutions
                for i, call in enumerate(conv_mode.calls):
                    records.append((owners.get(call.weight_ptr, f"conv{i}"), None, call.output,
                                    call.seconds, call.input))
            layers, activations, conv_inputs = [], {}, {}
            for key, m, out, elapsed, given in records:
                call = conv_by_output.get(id(out))
                conv = _conv_info(m) if m is not None else None
                if call is not None and conv is None:
                    conv = {"in_channels": call.input_shape[1], "out_channels": call.weight_shape[0],
                            "kernel": list(call.weight_shape[2:]), "stride": list(call.stride),
                            "padding": list(call.padding), "dilation": list(call.dilation),
                            "groups": call.groups, "padding_mode": "zeros"}
                if conv is not None and call is None:
                    conv = None if m is not None and not isinstance(m, nn.Conv2d) else conv
                params = sum(p.numel() for p in m.parameters(recurse=False)) if m is not None else (
                    int(np.prod(call.weight_shape)) if call else 0)
                layers.append(LayerInfo(
                    name=key, type=type(m).__name__ if m is not None else "Conv2d",
                    output_shape=tuple(out.shape), params=int(params), macs=_macs(m, out, conv),
                    time_ms=(call.seconds if call else elapsed) * 1e3,
                    algorithm=call.algorithm if call else None,
                    receptive_field=rf_mode.field(out), conv=conv,
                    input_shape=tuple(given.shape) if conv is not None and given is not None else None,
                ))
                activations[key] = out[0].detach().float().numpy().copy()
                if conv is not None and given is not None and given.dim() == 4:
                    conv_inputs[key] = given[0].detach().float().numpy().copy()
    finally:
        for h in handles:
            h.remove()
    total_ms = (time.perf_counter() - start) * 1e3
    logits = output[0].detach().float().numpy() if isinstance(output, torch.Tensor) else None
    predictions: list[tuple[str, float]] = []
    if model.categories and logits is not None and logits.ndim == 1 and len(logits) == len(model.categories):
        probs = torch.softmax(torch.from_numpy(logits).double(), 0).numpy()
        predictions = [(model.categories[i], float(probs[i])) for i in np.argsort(-probs)[:5]]
    if progress:
        progress(total, total)
    return RunResult(
        model_name=model.name, engine=engine, input_shape=tuple(x.shape), layers=layers,
        activations=activations, logits=logits, predictions=predictions,
        conv_calls=len(conv_mode.calls), total_ms=total_ms, conv_inputs=conv_inputs,
    )


def find_layer(result: RunResult, name: str) -> LayerInfo:
    """The layer called ``name``; ``LayerError`` naming close matches otherwise."""
    for layer in result.layers:
        if layer.name == name:
            return layer
    names = [la.name for la in result.layers]
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else f"; layers: {', '.join(names[:8])}, ..."
    raise LayerError(f"unknown layer {name!r} in {result.model_name}{hint}")


def _module(model: LoadedModel, layer: str) -> nn.Module:
    modules = dict(model.module.named_modules())
    path, _ = split_layer_key(layer)
    if path not in modules:
        raise LayerError(f"unknown layer {layer!r} in {model.name}")
    return modules[path]


def layer_weights(model: LoadedModel, layer: str) -> np.ndarray | None:
    """The filters of a conv layer, ``(O, I/groups, kH, kW)`` float32; None for other layers."""
    try:
        m = _module(model, layer)
    except LayerError:
        m = None
    if m is not None:
        w = getattr(m, "weight", None)
        if isinstance(w, torch.Tensor) and w.dim() == 4:
            return w.detach().float().numpy().copy()
        return None
    params = dict(model.module.named_parameters())  # script/export: layers named by weight path
    w = params.get(f"{layer}.weight")
    return w.detach().float().numpy().copy() if w is not None and w.dim() == 4 else None


def conv_bias(model: LoadedModel, layer: str) -> np.ndarray | None:
    params = dict(model.module.named_parameters())
    path, _ = split_layer_key(layer)
    b, w = params.get(f"{path}.bias"), params.get(f"{path}.weight")
    return b.detach().float().numpy().copy() if b is not None and w is not None and w.dim() == 4 else None
