"""Every catalog architecture against oracles that share no code with the runner.

- a layer's output: torch's own forward hooks, cloning each output when the hook fires; the
  same for a block's (a container's) output, after its residual add or concatenation;
- a conv row's parameters and MACs: the module's weight and the oracle's output shape;
- a receptive field: the non-zero support of d unit / d input on a positive, linear copy of
  the net (float64, conv and linear weights made positive, max-pool -> average pool of the same
  geometry, activations that saturate and normalisations -> identity, squeeze-excitation gates
  -> identity: the spatial path);
- a model file: TorchScript, torch.export and state-dict copies list the same layers with the
  same outputs as the model itself.

Untrained weights (no download), small inputs so the sweep stays quick.
"""

from __future__ import annotations

import copy
import math
import warnings

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from engine import available_engines
from models.runner import RunResult, run_model
from models.sources import LoadedModel, available_models, load_catalog, load_model
from tests.conftest import conv_tolerance

ARCHITECTURES = available_models()
SIZE = 64  # every catalog net runs at 64x64 (global pools at the end)


@pytest.fixture(scope="module")
def catalog() -> dict[str, LoadedModel]:
    return {}


def _model(catalog: dict[str, LoadedModel], name: str) -> LoadedModel:
    if name not in catalog:
        catalog[name] = load_catalog(name, untrained=True)
    return catalog[name]


def _input(channels: int = 3, size: int = SIZE) -> torch.Tensor:
    return torch.randn(1, channels, size, size, generator=torch.Generator().manual_seed(1))


NO_OPS: dict[str, set[str]] = {}  # per module id: leaf calls that return their input unchanged


def hooked_outputs(module: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every module call's output (but the root's) as torch's own forward hooks see it, cloned
    when the hook fires (``path``, ``path#2``, ... for repeated calls): leaves and the blocks
    that return a tensor, in the order they end."""
    outputs: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}
    no_ops = NO_OPS.setdefault(str(id(module)), set())

    versions: list[int] = []

    def pre(_m, inputs):
        versions.append(inputs[0]._version if inputs and isinstance(inputs[0], torch.Tensor) else -1)

    def hook_for(name: str):
        def hook(_m, inputs, out):
            version = versions.pop()
            if isinstance(out, torch.Tensor):
                counts[name] = counts.get(name, 0) + 1
                key = name if counts[name] == 1 else f"{name}#{counts[name]}"
                outputs[key] = out.detach().clone()
                if inputs and out is inputs[0] and out._version == version:
                    no_ops.add(key)  # Identity, Dropout or StochasticDepth at inference

        return hook

    called = [(n, m) for n, m in module.named_modules() if n]
    handles = [
        h for n, m in called for h in (m.register_forward_pre_hook(pre), m.register_forward_hook(hook_for(n)))
    ]
    try:
        with torch.no_grad():
            module(x)
    finally:
        for h in handles:
            h.remove()
    return outputs


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_every_layer_equals_torchs_own_hooks(catalog, name: str) -> None:
    model = _model(catalog, name)
    x = _input()
    oracle = hooked_outputs(model.module, x)
    result = run_model(model, x, "reference")
    assert [la.name for la in result.layers] == list(oracle), "layers differ from the module calls"
    for layer in result.layers:
        expected = oracle[layer.name][0].numpy()
        got = result.activations[layer.name]
        assert got.shape == expected.shape, layer.name
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5, err_msg=layer.name)
    # the conv rows are exactly the convolutions, with the module's numbers; the block rows
    # are the containers, with all their parameters
    modules = dict(model.module.named_modules())
    for layer in result.layers:
        m = modules[layer.name.partition("#")[0]]
        assert layer.is_conv == isinstance(m, nn.Conv2d), layer.name
        assert layer.block == bool(list(m.children())), layer.name
        assert layer.params == sum(p.numel() for p in m.parameters(recurse=layer.block)), layer.name
        if isinstance(m, nn.Conv2d):
            out = oracle[layer.name].shape
            o, i_per_group, kh, kw = m.weight.shape
            assert layer.macs == o * out[2] * out[3] * i_per_group * kh * kw, layer.name
            assert (layer.conv.kh, layer.conv.kw, layer.conv.stride, layer.conv.groups) == (
                kh,
                kw,
                tuple(m.stride),
                m.groups,
            ), layer.name


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_every_layer_on_auto_within_the_engine_tolerance(catalog, name: str) -> None:
    model = _model(catalog, name)
    x = _input()
    oracle = hooked_outputs(model.module, x)
    result = run_model(model, x, "auto")
    _assert_close_to(result, oracle)


@pytest.mark.slow
@pytest.mark.parametrize("engine", [e for e in available_engines() if e not in ("auto", "reference")])
@pytest.mark.parametrize("name", ["classic", "resnet18", "mobilenet_v3_small", "convnext_tiny"])
def test_every_layer_on_each_engine(catalog, name: str, engine: str) -> None:
    model = _model(catalog, name)
    x = _input(size=32)
    oracle = hooked_outputs(model.module, x)
    _assert_close_to(run_model(model, x, engine), oracle)


def _assert_close_to(result: RunResult, oracle: dict[str, torch.Tensor]) -> None:
    assert [la.name for la in result.layers] == list(oracle)
    for layer in result.layers:
        expected = oracle[layer.name][0].numpy()
        got = result.activations[layer.name]
        err = float(np.abs(got - expected).max(initial=0.0))
        assert err <= conv_tolerance(expected), f"{layer.name}: max abs error {err:.3g}"


# ------------------------------------------------------------------ receptive fields by gradient


def positive_linear_copy(module: nn.Module) -> nn.Module:
    """A float64 copy whose every path adds up: the support of a gradient is then the field."""
    net = copy.deepcopy(module).double().eval()
    swaps = {
        nn.MaxPool2d: lambda m: nn.AvgPool2d(m.kernel_size, m.stride, m.padding, m.ceil_mode),
        nn.AdaptiveMaxPool2d: lambda m: nn.AdaptiveAvgPool2d(m.output_size),
        nn.ReLU6: lambda m: nn.Identity(),
        nn.Hardsigmoid: lambda m: nn.Identity(),
        nn.Hardtanh: lambda m: nn.Identity(),
        nn.LayerNorm: lambda m: nn.Identity(),
        torchvision.ops.SqueezeExcitation: lambda m: nn.Identity(),
    }
    for name, m in list(net.named_modules()):
        for kind, make in swaps.items():
            if isinstance(m, kind) and name:
                parent, _, child = name.rpartition(".")
                setattr(net.get_submodule(parent) if parent else net, child, make(m))
                break
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.copy_(m.weight.abs() + 0.01)
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.zero_()
                m.running_var.fill_(1.0)
                if m.affine:
                    m.weight.fill_(1.0)
                    m.bias.zero_()
        for pname, p in net.named_parameters():
            if "layer_scale" in pname:
                p.copy_(p.abs() + 0.01)
    return net


class _Stop(Exception):
    pass


def gradient_support(
    net: nn.Module,
    path: str,
    call: int,
    grid: tuple[int, int] | None,
    unit: tuple[int, int] | None,
    size: int,
) -> tuple[int, int, int, int]:
    """Rows and columns ``(top, left, bottom, right)`` (exclusive) of the input pixels that
    move unit ``unit`` of channel 0 of ``path``'s ``call``-th output (``None``: any unit of
    the layer, i.e. the part of the image the layer reads at all)."""
    x = (
        torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(2), dtype=torch.float64) + 0.5
    ).requires_grad_(True)
    seen: list[torch.Tensor] = []

    def hook(_m, _i, out):
        seen.append(out)
        if len(seen) == call:
            raise _Stop  # the rest of the net does not matter

    handle = net.get_submodule(path).register_forward_hook(hook)
    try:
        net(x)
    except _Stop:
        pass
    finally:
        handle.remove()
    out = seen[call - 1][0]
    maps = out if grid is None else torch.movedim(out, (grid[0] - 1, grid[1] - 1), (-2, -1))
    maps = maps.reshape(-1, *maps.shape[-2:])
    (grad,) = torch.autograd.grad(maps.sum() if unit is None else maps[0, unit[0], unit[1]], x)
    support = grad[0].abs().sum(0) > 0
    rows, cols = np.nonzero(support.numpy())
    return int(rows.min()), int(cols.min()), int(rows.max()) + 1, int(cols.max()) + 1


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_receptive_fields_equal_the_gradients_support(catalog, name: str) -> None:
    model = _model(catalog, name)
    size = 96
    result = run_model(model, _input(size=size), "reference")
    net = positive_linear_copy(model.module)
    with_field = [
        la
        for la in result.layers
        if la.receptive_field is not None and min(result.maps(la.name).shape[-2:]) >= 2
    ]
    assert with_field, "no layer has a receptive field"
    picks = sorted({round(i) for i in np.linspace(0, len(with_field) - 1, 6)})
    for layer in (with_field[i] for i in picks):
        h, w = result.maps(layer.name).shape[-2:]
        path, _, call = layer.name.partition("#")
        # strided windows that do not fit drop the image's last rows: no unit can see them
        read = gradient_support(net, path, int(call or 1), layer.grid_axes, None, size)
        for unit in ((h // 2, w // 2), (h // 2, w // 2 + 1 if w > 2 else w // 2 - 1)):
            got = gradient_support(net, path, int(call or 1), layer.grid_axes, unit, size)
            top, left, bottom, right = layer.receptive_field.box(*unit)
            expected = (
                max(read[0], math.floor(top)),
                max(read[1], math.floor(left)),
                min(read[2], math.ceil(bottom)),
                min(read[3], math.ceil(right)),
            )
            message = f"{name} {layer.name} unit {unit}: gradient {got}, field {expected}"
            if layer.receptive_field.assumed:  # said to be approximate: it must contain the truth
                assert expected[:2] <= got[:2] and got[2:] <= expected[2:], message
            else:
                assert got == expected, message


def test_squeeze_excitation_is_context_not_the_whole_image(catalog) -> None:
    result = run_model(_model(catalog, "efficientnet_b0"), _input(size=224), "reference")
    rf = result.layer("features.8.0").receptive_field
    assert rf.global_context and rf.size[0] < 1000  # not the whole-image field of the gate
    assert not result.layer("features.0.0").receptive_field.global_context


def test_channels_last_blocks_keep_their_field(catalog) -> None:
    result = run_model(_model(catalog, "convnext_tiny"), _input(size=224), "reference")
    conv = result.layer("features.1.0.block.0")  # the 7x7 depthwise conv after the stem's norm
    assert conv.receptive_field.size == (28, 28)  # 4 (stem) + 6 * 4
    linear = result.layer("features.1.0.block.3")  # a Linear over channels, channels-last
    assert linear.channels_last and linear.receptive_field == conv.receptive_field
    assert result.maps("features.1.0.block.3").shape == (384, 56, 56)


# ------------------------------------------------------------------ model files


@pytest.mark.slow
@pytest.mark.parametrize("name", ARCHITECTURES)
def test_model_files_list_the_same_layers_and_outputs(catalog, name: str, tmp_path) -> None:
    model = _model(catalog, name)
    x = _input()
    hooked_outputs(model.module, x)
    no_ops = NO_OPS[str(id(model.module))]
    expected = run_model(model, x, "reference")
    eager = {la.name: la for la in expected.layers}
    files = {}
    with warnings.catch_warnings():  # scripted GoogLeNet warns that it returns a tuple
        warnings.simplefilter("ignore", UserWarning)
        scripted = torch.jit.script(model.module)
    files["torchscript"] = tmp_path / "model.ts.pt"
    torch.jit.save(scripted, files["torchscript"])
    files["export"] = tmp_path / "model.pt2"
    torch.export.save(torch.export.export(model.module, (x,)), files["export"])
    files["state_dict"] = tmp_path / "weights.pth"
    torch.save(model.module.state_dict(), files["state_dict"])
    for form, path in files.items():
        with warnings.catch_warnings():  # (scripted GoogLeNet warns on every forward pass)
            warnings.simplefilter("ignore", UserWarning)
            loaded = load_model(
                str(path), arch=name if form == "state_dict" else None, input_size=(SIZE, SIZE)
            )
            result = run_model(loaded, x, "reference")
        # a compiled model runs no op for a module that returns its input (Identity, Dropout
        # or StochasticDepth at inference): it has every other layer; block rows where the
        # form records them, equal to the eager ones
        names = [la.name for la in result.layers]
        assert names == [n for n in eager if (n not in no_ops and not eager[n].block) or n in names], form
        for layer in result.layers:
            np.testing.assert_allclose(
                result.activations[layer.name],
                expected.activations[layer.name],
                rtol=0,
                atol=1e-5,
                err_msg=f"{form} {layer.name}",
            )
            assert layer.is_conv == eager[layer.name].is_conv, f"{form} {layer.name}"
            if layer.is_conv:
                assert layer.conv == eager[layer.name].conv, f"{form} {layer.name}"
                assert layer.params == eager[layer.name].params, f"{form} {layer.name}"
                assert layer.macs == eager[layer.name].macs, f"{form} {layer.name}"
            assert layer.receptive_field == eager[layer.name].receptive_field, f"{form} {layer.name}"
