"""The runner: every convolution on the engine, every layer captured, in order, with its table row."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from models.errors import Cancelled, LayerError
from models.images import Preprocess
from models.runner import conv_bias, find_layer, layer_weights, run_model
from models.sources import LoadedModel, load_model
from tests.conftest import conv_tolerance


def _loaded(module: nn.Module, name: str = "net") -> LoadedModel:
    if not isinstance(module, torch.fx.GraphModule):  # exported programs have no eval()
        module.eval()
    return LoadedModel(
        name=name,
        module=module,
        source="catalog",
        preprocess=Preprocess(size=(32, 32)),
        categories=None,
        pretrained=False,
    )


class MyConv(nn.Conv2d):
    """A subclass: the runner must still see it."""


class Mixed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = MyConv(3, 8, 3, stride=2, padding=1)
        self.w = nn.Parameter(torch.randn(8, 8, 3, 3) * 0.2)
        self.act = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.stem(x))
        x = self.act(F.conv2d(x, self.w, padding=1))  # functional, no module of its own
        return self.fc(self.pool(x).flatten(1))


def test_every_convolution_is_computed_by_the_engine() -> None:
    torch.manual_seed(0)
    model = _loaded(torchvision.models.resnet18())
    x = torch.randn(1, 3, 64, 64)
    result = run_model(model, x, "im2col")
    assert result.conv_calls == 20
    convs = [la for la in result.layers if la.is_conv]
    assert len(convs) == 20 and all(la.algorithm.startswith("im2col") for la in convs)
    with torch.no_grad():
        expected = model.module(x).numpy()[0]
    assert np.abs(result.logits - expected).max() <= conv_tolerance(expected)
    names = [la.name for la in result.layers]
    assert names[:4] == ["conv1", "bn1", "relu", "maxpool"]
    assert "layer1.0.relu#2" in names  # BasicBlock calls its ReLU twice: both calls are layers
    assert names[-1] == "fc"
    layer = find_layer(result, "layer2.0.conv1")
    assert layer.output_shape == (1, 128, 8, 8)
    assert layer.params == 64 * 128 * 9
    assert layer.macs == 128 * 8 * 8 * 64 * 9
    assert layer.conv.stride == (2, 2) and (layer.conv.kh, layer.conv.kw) == (3, 3)
    np.testing.assert_allclose(result.activations["layer2.0.conv1"].shape, (128, 8, 8))


def test_functional_calls_subclasses_script_and_export_all_count() -> None:
    torch.manual_seed(0)
    net = Mixed().eval()
    x = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        expected = net(x).numpy()[0]
    for module in (net, torch.jit.script(net), torch.export.export(net, (x,)).module()):
        result = run_model(_loaded(module), x, "direct")
        assert result.conv_calls == 2
        np.testing.assert_allclose(result.logits, expected, atol=1e-5)
    # every form lists every leaf call, and the functional conv as a layer named by its weight
    eager = [(la.name, la.type, la.is_conv) for la in run_model(_loaded(net), x, "fft").layers]
    assert eager == [
        ("stem", "MyConv", True),
        ("act", "ReLU", False),
        ("w", "F.conv2d", True),
        ("act#2", "ReLU", False),
        ("pool", "AdaptiveAvgPool2d", False),
        ("fc", "Linear", False),
    ]
    for module in (torch.jit.script(net), torch.jit.trace(net, x), torch.export.export(net, (x,)).module()):
        layers = run_model(_loaded(module), x, "fft").layers
        assert [(la.name, la.type, la.is_conv) for la in layers] == eager


def test_activations_match_torch_layer_by_layer() -> None:
    model = load_model("classic")
    x = torch.rand(1, 3, 40, 48)
    result = run_model(model, x, "winograd")
    with torch.no_grad():
        edges = model.module.edges(x)
    np.testing.assert_allclose(result.activations["edges"], edges[0].numpy(), atol=1e-4)
    assert result.activations["pool2"].shape == (4, 10, 12)
    assert result.predictions == []


def test_progress_and_cancel() -> None:
    model = load_model("classic")
    seen = []
    run_model(model, torch.rand(1, 3, 32, 32), "auto", progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (6, 6) and len(seen) >= 6
    with pytest.raises(Cancelled):
        run_model(model, torch.rand(1, 3, 32, 32), "auto", cancel=lambda: True)


def test_weights_bias_input_and_unknown_layer() -> None:
    model = load_model("classic")
    x = torch.rand(1, 3, 32, 32)
    result = run_model(model, x, "auto")
    assert layer_weights(model, "edges").shape == (9, 3, 3, 3)
    assert layer_weights(model, "relu1") is None
    assert conv_bias(model, "combine").shape == (4,)
    # what combine received is pool1's output, as the run captured it
    np.testing.assert_array_equal(result.conv_inputs["combine"], result.activations["pool1"])
    # edges pads with replicate itself: its captured input is the unpadded photo
    np.testing.assert_array_equal(result.conv_inputs["edges"], x[0].numpy())
    assert set(result.conv_inputs) == {"edges", "combine"}
    assert result.layer("combine").input_shape == (1, 9, 16, 16)  # what the engine was given
    assert result.layer("edges").input_shape == (1, 3, 32, 32)  # not the replicate-padded 34x34
    assert result.layer("relu1").input_shape is None
    with pytest.raises(LayerError, match=r"unknown layer 'edgse'.*did you mean edges"):
        find_layer(result, "edgse")


class _Twice(nn.Module):
    """One conv module applied two times."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(self.act(self.conv(x))))


@pytest.mark.parametrize("form", ["eager", "script", "trace", "export"])
def test_a_module_called_twice_is_two_layers_with_their_own_outputs(form: str) -> None:
    torch.manual_seed(0)
    net = _Twice().eval()
    x = torch.randn(1, 3, 12, 12)
    module = {
        "eager": lambda: net,
        "script": lambda: torch.jit.script(net),
        "trace": lambda: torch.jit.trace(net, x),
        "export": lambda: torch.export.export(net, (x,)).module(),
    }[form]()
    result = run_model(_loaded(module), x, "direct")
    assert [la.name for la in result.layers] == ["conv", "act", "conv#2", "act#2"]
    with torch.no_grad():
        first = net.conv(x)
        second = net.conv(torch.relu(first))
    np.testing.assert_allclose(result.activations["conv"], first[0].numpy(), atol=1e-5)
    np.testing.assert_allclose(result.activations["conv#2"], second[0].numpy(), atol=1e-5)
    assert result.layer("conv").is_conv and result.layer("conv#2").is_conv
    assert not result.layer("act").is_conv  # an in-place ReLU is not the conv it follows
    assert result.activations["conv"].min() < 0  # the conv's maps, not the ReLU's
    np.testing.assert_array_equal(result.conv_inputs["conv#2"], result.activations["act"])


class _HeldInThread(nn.Module):
    """Holds its forward in the middle (between the convs) when run on ``held_thread``."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(4, 5, 3)
        self.held_thread: int | None = None
        self.entered = threading.Event()
        self.gate = threading.Event()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv1(x)
        if threading.get_ident() == self.held_thread:
            self.entered.set()
            self.gate.wait(30)
        return self.conv2(self.relu(y))


@pytest.mark.parametrize("engine", ["reference", "direct"])
def test_a_run_abandoned_mid_forward_does_not_touch_later_runs(engine: str) -> None:
    # The window abandons a run whose forward never returns; its hooks and conv swaps stay on
    # the module until it ends, and must not cancel, or record into, the user's next run.
    torch.manual_seed(0)
    net = _HeldInThread().eval()
    model = _loaded(net)
    x = torch.randn(1, 3, 12, 12)
    run_model(model, x, engine)  # the plan exists before the held run starts
    stop = threading.Event()
    outcome: list[object] = []

    def held() -> None:
        net.held_thread = threading.get_ident()
        try:
            outcome.append(run_model(model, x, engine, cancel=stop.is_set))
        except Cancelled as exc:
            outcome.append(exc)

    thread = threading.Thread(target=held, daemon=True)
    thread.start()
    assert net.entered.wait(30)
    stop.set()  # the user pressed Cancel; the held run cannot see it yet
    later = run_model(model, x, engine)
    with torch.no_grad():
        assert torch.allclose(
            torch.from_numpy(later.maps("conv2")), net.conv2(net.relu(net.conv1(x)))[0], atol=1e-4
        )
    assert [la.name for la in later.layers] == ["conv1", "relu", "conv2"]
    net.gate.set()
    thread.join(30)
    assert len(outcome) == 1 and isinstance(outcome[0], Cancelled)


@pytest.mark.parametrize("engine", ["reference", "direct"])
def test_a_copy_made_during_a_run_computes_with_its_own_weights(engine: str) -> None:
    # The Engines tab deep-copies the window's model, possibly while a run on it is under way:
    # the copy must be a model of its own, not one that still calls the original's layers.
    import copy

    torch.manual_seed(0)
    net = _HeldInThread().eval()
    model = _loaded(net)
    x = torch.randn(1, 3, 12, 12)
    run_model(model, x, engine)

    def held() -> None:
        net.held_thread = threading.get_ident()
        run_model(model, x, engine)

    thread = threading.Thread(target=held, daemon=True)
    thread.start()
    assert net.entered.wait(30)
    # made while the held run is inside the model (its events shared: they cannot be copied)
    twin = copy.deepcopy(net, {id(net.entered): net.entered, id(net.gate): net.gate})
    net.gate.set()
    thread.join(30)
    twin.held_thread = None
    with torch.no_grad():
        twin.conv2.weight.mul_(-1.0)
        twin.relu = nn.Identity()
        expected = twin.conv2(twin.relu(twin.conv1(x)))
        assert not torch.allclose(expected, net.conv2(net.relu(net.conv1(x))))
        assert torch.allclose(twin(x), expected, atol=1e-6)
    later = run_model(_loaded(twin), x, engine)
    np.testing.assert_allclose(later.maps("conv2"), expected[0].numpy(), atol=1e-4)
    # the original keeps nothing of the runs; the copy has at most its modules' own forwards
    assert all("forward" not in m.__dict__ for m in net.modules())
    for m in twin.modules():
        own = m.__dict__.get("forward")
        assert own is None or (own.__self__ is m and own.__func__ is type(m).forward)


def test_a_run_keeps_the_modules_own_hooks_and_forwards() -> None:
    # the capture stands in for each module's forward during a run: a forward the user set on
    # an instance still computes, the user's hooks still fire, and both are there afterwards
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 2, 3)).eval()
    original = net[1].forward
    net[1].forward = lambda t: torch.relu(t) * 2.0  # an instance forward of the user's
    seen: list[torch.Tensor] = []
    handle = net[2].register_forward_hook(lambda _m, _i, out: seen.append(out.detach().clone()))
    x = torch.randn(1, 3, 10, 10)
    result = run_model(_loaded(net), x, "direct")
    with torch.no_grad():
        doubled = torch.relu(net[0](x)) * 2.0
        expected = net[2](doubled)
    np.testing.assert_allclose(result.activations["1"], doubled[0].numpy(), atol=1e-5)
    np.testing.assert_allclose(result.maps("2"), expected[0].numpy(), atol=1e-4)
    assert len(seen) == 3  # the plan's run, the run, our check above
    np.testing.assert_allclose(seen[1][0].numpy(), result.maps("2"), atol=1e-6)
    assert net[1].__dict__["forward"] is not original and callable(net[1].forward)
    assert "forward" not in net[0].__dict__ and "forward" not in net[2].__dict__
    handle.remove()
