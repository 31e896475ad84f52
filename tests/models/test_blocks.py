"""Block rows: a container's own output (after its residual add or concatenation) is a layer."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from models.capture import value
from models.images import Preprocess
from models.runner import effective_receptive_field, layer_output, plan, run_batch, run_model
from models.sources import LoadedModel, load_catalog


class Residual(nn.Module):
    """``relu(bn(conv(x)) + x)`` with an in-place add, and a concatenating pair of branches."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn(self.conv(x))
        out += x
        return self.relu(out)


class Concat(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(4, 2, 1)
        self.b = nn.Conv2d(4, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.a(x), self.b(x)], 1)


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())
        self.stage = nn.Sequential(Residual(), Residual())
        self.mix = Concat()
        self.head = nn.Conv2d(5, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stage(self.stem(x))
        y = self.mix(x)
        y.mul_(2)  # overwrites the concatenation in place: its row must be a copy
        return self.head(y)


def _loaded(module: nn.Module) -> LoadedModel:
    torch.manual_seed(0)
    for m in module.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2)
    return LoadedModel(
        name="net",
        module=module.eval(),
        source="catalog",
        preprocess=Preprocess(size=(12, 12)),
        categories=None,
        pretrained=False,
    )


def _oracle(module: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Each container's output as its own forward hook sees it, cloned then."""
    outputs: dict[str, torch.Tensor] = {}

    def hook_for(name: str):
        def hook(_m, _inputs, out) -> None:  # (a hook that returns a value replaces the output)
            outputs.setdefault(name, out.clone())

        return hook

    handles = [
        m.register_forward_hook(hook_for(n)) for n, m in module.named_modules() if n and list(m.children())
    ]
    try:
        with torch.no_grad():
            module(x)
    finally:
        for h in handles:
            h.remove()
    return outputs


@pytest.mark.parametrize("engine", ["reference", "direct"])
def test_block_rows_hold_the_blocks_outputs_after_add_and_concat(engine: str) -> None:
    torch.manual_seed(1)
    model = _loaded(Net())
    x = torch.randn(1, 3, 12, 12)
    oracle = _oracle(model.module, x)
    result = run_model(model, x, engine)
    names = [la.name for la in result.layers]
    blocks = [la.name for la in result.layers if la.block]
    assert blocks == ["stem", "stage.0", "stage.1", "stage", "mix"]
    # a block's row comes after its layers, in the order the blocks end
    assert names.index("stage.0.relu") < names.index("stage.0") < names.index("stage.1.conv")
    for name in blocks:
        np.testing.assert_allclose(
            result.activations[name], oracle[name][0].numpy(), rtol=0, atol=1e-5, err_msg=name
        )
        layer = result.layer(name)
        assert not layer.is_conv and layer.receptive_field is not None
        assert layer.output_shape == tuple(oracle[name].shape)
    # the mix's output was doubled in place after it ended: the row is as the block returned it
    assert not np.allclose(result.activations["mix"], 0)
    # a residual block: its parameters, the MACs of its convolution, the field of its conv
    res = model.module.stage[0]
    assert result.layer("stage.0").params == sum(p.numel() for p in res.parameters())
    assert result.layer("stage.0").macs == result.layer("stage.0.conv").macs
    assert result.layer("stage.0").receptive_field == result.layer("stage.0.conv").receptive_field
    assert result.layer("stage").receptive_field.size == (7, 7)  # 3 + 2 + 2
    assert result.maps("mix").shape == (5, 12, 12)


def test_blocks_that_return_a_layers_output_hold_nothing_of_their_own() -> None:
    model = _loaded(Net())
    x = torch.randn(1, 3, 12, 12)
    the_plan = plan(model, x)
    # a Sequential returns its last layer's output, a residual block its ReLU's: read those
    assert the_plan.derive["stem"] == "stem.1"
    assert the_plan.derive["stage.0"] == "stage.0.relu"
    assert the_plan.derive["stage"] == "stage.1"
    # the concatenation is a tensor of its own, overwritten later: copied when recorded
    assert "mix" not in the_plan.derive and "mix" in the_plan.clone
    # the runs hook only the containers with an output of their own (a hook costs a call)
    hooked = [n for n, _, leaf in the_plan.modules if not leaf]
    assert hooked == ["mix"]
    # no block claims its layers' convolutions or keeps an input
    result = run_model(model, x, "direct")
    assert "stage.0" not in result.conv_inputs
    assert result.layer("stage.0").algorithm is None and result.layer("stage.0.conv").algorithm


def test_block_rows_in_batches_layer_output_and_the_effective_field() -> None:
    model = _loaded(Net())
    x = torch.randn(3, 3, 12, 12, generator=torch.Generator().manual_seed(2))
    oracle = _oracle(model.module, x)
    _, outs = run_batch(model, x, "direct", layers=["stage", "mix"])
    for name in ("stage", "mix"):
        np.testing.assert_allclose(outs[name].numpy(), oracle[name].numpy(), rtol=0, atol=1e-5)
    out, _ = layer_output(model, x[:1], "stage.0")
    np.testing.assert_allclose(out.detach().numpy(), oracle["stage.0"][:1].numpy(), atol=1e-6)
    channel = int(np.argmax(oracle["stage"][0, :, 6, 6].numpy()))  # a unit the ReLU lets through
    erf = effective_receptive_field(model, x[:1], "stage", channel, 6, 6)
    support = np.argwhere(erf > 0)
    assert len(support) > 9  # through both blocks' convolutions, within the 7x7 field
    assert support.min(0).tolist() >= [3, 3] and support.max(0).tolist() <= [9, 9]
    assert support.max(0)[0] - support.min(0)[0] >= 4


def test_a_resnet_stage_and_an_inception_module_are_rows() -> None:
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    for name, block, channels in (("resnet18", "layer2", 128), ("googlenet", "inception3a", 256)):
        model = load_catalog(name, untrained=True)
        result = run_model(model, x, "auto")
        oracle = _oracle(model.module, x)
        assert result.layer(block).block and result.maps(block).shape[0] == channels
        got = result.activations[block]
        np.testing.assert_allclose(
            got, oracle[block][0].numpy(), rtol=0, atol=1e-3 * float(np.abs(got).max()), err_msg=name
        )


def test_block_values_are_read_through_the_rows_they_name() -> None:
    model = _loaded(Net())
    x = torch.randn(1, 3, 12, 12)
    the_plan = plan(model, x)
    from models.runner import _run

    _, records, _ = _run(model.module, the_plan, x, "reference", None, None)
    by_key = {r.key: r for r in records}
    assert by_key["stage"].output is None and by_key["stage"].block
    assert torch.equal(value(by_key, "stage"), value(by_key, "stage.1.relu"))


def test_a_program_file_has_the_same_block_rows(tmp_path) -> None:
    from models.sources import load_model

    model = _loaded(Net())
    x = torch.randn(1, 3, 12, 12, generator=torch.Generator().manual_seed(4))
    eager = run_model(model, x, "reference")
    path = tmp_path / "net.pt2"
    torch.export.save(torch.export.export(model.module, (x,)), str(path))
    result = run_model(load_model(str(path), input_size=(12, 12)), x, "direct")
    assert [la.name for la in result.layers if la.block] == ["stem", "stage.0", "stage.1", "stage", "mix"]
    assert [la.name for la in result.layers] == [la.name for la in eager.layers]
    for layer in result.layers:
        np.testing.assert_allclose(
            result.activations[layer.name],
            eager.activations[layer.name],
            rtol=0,
            atol=1e-4,
            err_msg=layer.name,
        )
        assert layer.receptive_field == eager.layer(layer.name).receptive_field, layer.name
    assert result.layer("stage.0").params == eager.layer("stage.0").params
    assert result.layer("mix").macs == eager.layer("mix").macs
