"""Model sources: every catalog name, every file form, the channel count a file takes, and the
errors that tell a user what is wrong with their file."""

from __future__ import annotations

import subprocess
import sys
import warnings
import zipfile

import pytest
import torch
import torchvision
from torch import nn

from models.errors import ArchitectureNeededError, ModelError, UntrustedModelError
from models.images import prepare_image, sample_images
from models.sources import (
    FILE_SOURCES,
    MODEL_SUFFIXES,
    available_models,
    input_channels,
    is_model_file,
    load_model,
)
from models.sources.catalog import _build, architecture_signature
from models.sources.state_dict import guess_architecture, mismatch


@pytest.mark.slow
@pytest.mark.parametrize("name", available_models())
def test_every_catalog_name_loads_untrained_and_its_weights_guess_it(name: str) -> None:
    model = load_model(name, untrained=True)
    assert not model.pretrained or name == "classic"
    state = model.module.state_dict()
    assert {k: tuple(v.shape) for k, v in state.items()} == architecture_signature(name)
    assert guess_architecture(state) == name  # the keys and shapes single out one architecture
    image = prepare_image(sample_images()["chelsea"], model.preprocess)
    with torch.no_grad():
        out = model.module(image.tensor)
    assert out.shape[0] == 1 and torch.isfinite(out).all()


def test_signatures_are_built_without_weights() -> None:
    with torch.device("meta"):
        module = _build("vgg16")
    assert next(module.parameters()).device.type == "meta"  # 138 M parameters, no memory
    assert architecture_signature("vgg16")["classifier.6.weight"] == (1000, 4096)


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 6, 3, padding=1)
        self.bn = nn.BatchNorm2d(6)
        self.head = nn.Linear(6, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.bn(self.conv(x))).mean((2, 3)))


def _save_every_form(net: nn.Module, folder, x: torch.Tensor) -> dict[str, str]:
    paths = {
        "scripted": folder / "scripted.pt",
        "traced": folder / "traced.pt",
        "program": folder / "program.pt2",
        "pickle": folder / "pickle.pth",
    }
    torch.jit.save(torch.jit.script(net), paths["scripted"])
    torch.jit.save(torch.jit.trace(net, x), paths["traced"])
    torch.export.save(torch.export.export(net, (x,)), paths["program"])
    torch.save(net, paths["pickle"])
    return {k: str(v) for k, v in paths.items()}


def test_every_file_form_gives_the_module_it_was_saved_from(tmp_path) -> None:
    torch.manual_seed(0)
    net = Net().eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        expected = net(x)
    paths = _save_every_form(net, tmp_path, x)
    sources = {"scripted": "torchscript", "traced": "torchscript", "program": "export", "pickle": "pickle"}
    for form, path in paths.items():
        model = load_model(path, trust=form == "pickle")
        assert model.source == sources[form], form
        assert model.preprocess.channels == 3 and model.preprocess.size == (224, 224)
        with torch.no_grad():
            torch.testing.assert_close(model.module(x), expected, msg=form)


@pytest.mark.parametrize("wrap", [None, "state_dict", "model", "module."])
def test_state_dicts_bare_wrapped_or_data_parallel(tmp_path, wrap) -> None:
    torch.manual_seed(1)
    net = torchvision.models.squeezenet1_1().eval()
    state = net.state_dict()
    if wrap == "module.":
        saved = {f"module.{k}": v for k, v in state.items()}
    elif wrap:
        saved = {wrap: state, "epoch": 3, "optimizer": {"lr": 0.1}}
    else:
        saved = state
    torch.save(saved, tmp_path / "w.pth")
    model = load_model(str(tmp_path / "w.pth"), arch="squeezenet1_1")
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(model.module(x), net(x))


def test_a_wrong_architecture_names_the_keys_and_shapes_that_disagree(tmp_path) -> None:
    torch.manual_seed(3)
    state = torchvision.models.resnet18().state_dict()
    torch.save(state, tmp_path / "r18.pth")
    with pytest.raises(ArchitectureNeededError) as info:
        load_model(str(tmp_path / "r18.pth"), arch="resnet50")
    message = str(info.value)
    expected = torchvision.models.resnet50().state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [k for k in expected if k in state and state[k].shape != expected[k].shape]
    assert f"{len(missing)} keys missing ({', '.join(missing[:3])}, ...)" in message
    assert f"{len(unexpected)} keys unexpected" in message or not unexpected
    assert f"{len(shapes)} keys of another shape ({shapes[0]} " in message
    assert "those of resnet18" in message and info.value.guess == "resnet18"
    assert "\n" not in message


def test_a_fine_tuned_head_is_no_catalog_architecture(tmp_path) -> None:
    net = torchvision.models.resnet18(num_classes=10)
    torch.save(net.state_dict(), tmp_path / "ten.pth")
    with pytest.raises(ArchitectureNeededError) as info:
        load_model(str(tmp_path / "ten.pth"))
    assert info.value.guess is None and "match no catalog architecture" in str(info.value)
    problem = mismatch(net.state_dict(), "resnet18")
    assert problem == "2 keys of another shape (fc.weight 10x512 vs 1000x512, fc.bias 10 vs 1000)"


_TRAINING_SCRIPT = """
import argparse, sys, torch
from torch import nn

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        return self.conv(x)

torch.save(Net(), sys.argv[1])
torch.save({"state_dict": Net().state_dict(), "args": argparse.Namespace(lr=0.1)}, sys.argv[2])
"""


def test_a_class_from_the_training_script_is_explained(tmp_path) -> None:
    subprocess.run(
        [sys.executable, "-c", _TRAINING_SCRIPT, str(tmp_path / "net.pth"), str(tmp_path / "ckpt.pth")],
        check=True,
        capture_output=True,
    )
    with pytest.raises(UntrustedModelError, match=r"it names __main__\.Net"):
        load_model(str(tmp_path / "net.pth"))
    with pytest.raises(ModelError) as info:
        load_model(str(tmp_path / "net.pth"), trust=True)
    message = str(info.value)
    assert "class Net was defined in the script that saved it" in message
    assert "TorchScript" in message and "state dict" in message and "\n" not in message
    # a checkpoint that pickles other objects beside its weights: trusted, it is a state dict
    with pytest.raises(UntrustedModelError, match=r"argparse\.Namespace"):
        load_model(str(tmp_path / "ckpt.pth"))
    with pytest.raises(ArchitectureNeededError):
        load_model(str(tmp_path / "ckpt.pth"), trust=True)


class _GroupedFirst(nn.Module):
    """Three input channels, each filtered on its own: weight (6, 1, 3, 3)."""

    def __init__(self) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(3, 6, 3, groups=3)
        self.mix = nn.Conv2d(6, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mix(self.depthwise(x))


class _TransposedFirst(nn.Module):
    """One input channel up-sampled to three: weight (1, 3, 2, 2), (in, out, kh, kw)."""

    def __init__(self) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(1, 3, 2, stride=2)
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.up(x))


class _DefinedLate(nn.Module):
    """The first conv defined is not the first one run: scripts say which runs first."""

    def __init__(self) -> None:
        super().__init__()
        self.second = nn.Conv2d(8, 4, 1)
        self.first = nn.Conv2d(1, 8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.second(self.first(x))


@pytest.mark.parametrize(("net", "channels"), [(_GroupedFirst, 3), (_TransposedFirst, 1)])
def test_input_channels_of_a_grouped_or_transposed_first_conv(tmp_path, net, channels) -> None:
    torch.manual_seed(0)
    module = net().eval()
    weight = next(p for p in module.parameters() if p.dim() == 4)
    assert weight.shape[1] != channels  # the old guess (the first weight's 2nd axis) was wrong
    x = torch.randn(1, channels, 32, 32)
    paths = _save_every_form(module, tmp_path, x)
    for form, path in paths.items():
        model = load_model(path, trust=form == "pickle")
        assert model.preprocess.channels == channels, form
        with torch.no_grad():
            torch.testing.assert_close(model.module(x), module(x), msg=form)


def test_a_script_says_which_conv_runs_first() -> None:
    scripted = torch.jit.script(_DefinedLate().eval())
    assert input_channels(scripted) == 1
    traced = torch.jit.trace(_DefinedLate().eval(), torch.randn(1, 1, 8, 8))
    assert input_channels(traced) == 1


def test_a_float16_model_runs_in_float32(tmp_path) -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()).eval()
    torch.jit.save(torch.jit.script(net.half()), tmp_path / "half.pt")
    model = load_model(str(tmp_path / "half.pt"))
    x = torch.randn(1, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(model.module(x), net.float()(x))


def test_a_model_that_fails_says_torchs_reason_not_the_interpreters(tmp_path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch: zero-element init is a no-op
        net = nn.Sequential(nn.Conv2d(3, 0, 3), nn.Conv2d(0, 2, 1)).eval()
        torch.jit.save(torch.jit.script(net), tmp_path / "zero.pt")
    with pytest.raises(ModelError) as info:
        load_model(str(tmp_path / "zero.pt"))
    message = str(info.value)
    assert "expected weight to be at least 1 at dimension 0" in message
    assert "TorchScript interpreter" not in message and "\n" not in message


def test_loading_torchscript_warns_nothing(tmp_path) -> None:
    torch.jit.save(torch.jit.script(nn.Sequential(nn.Conv2d(3, 4, 3))), tmp_path / "s.pt")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_model(str(tmp_path / "s.pt"))
    assert not caught, [str(w.message) for w in caught]


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "is empty"),
        (b"hello, I am text", "is not a model file"),
        (b"\x89PNG\r\n\x1a\n not really", "is not a model file"),
        (b"PK\x03\x04garbage", "damaged or truncated"),
        (b"\x80\x02garbage", "is not a model file"),
    ],
)
@pytest.mark.parametrize("suffix", [".pt", ".pt2", ".pth", ".bin"])
def test_a_file_that_is_no_model_says_so_in_one_line(tmp_path, content, words, suffix) -> None:
    path = tmp_path / f"x{suffix}"
    path.write_bytes(content)
    with pytest.raises(ModelError) as info:
        load_model(str(path))
    assert words in str(info.value) and path.name in str(info.value)
    assert "\n" not in str(info.value) and "Error" not in str(info.value)
    assert not isinstance(info.value, UntrustedModelError | ArchitectureNeededError)


def test_a_zip_of_something_else_is_no_model(tmp_path) -> None:
    with zipfile.ZipFile(tmp_path / "photos.pt", "w") as archive:
        archive.writestr("a.txt", "hello")
    with pytest.raises(ModelError, match="a zip archive, but no TorchScript"):
        load_model(str(tmp_path / "photos.pt"))


def test_a_catalog_model_takes_the_input_size_asked_for() -> None:
    model = load_model("classic", input_size=(64, 96))
    assert model.preprocess.size == (64, 96)
    image = prepare_image(sample_images()["chelsea"], model.preprocess)
    assert image.tensor.shape == (1, 3, 64, 96)
    resnet = load_model("resnet18", untrained=True, input_size=(160, 160))
    assert resnet.preprocess.size == (160, 160) and resnet.preprocess.resize == 183  # 256/224
    with pytest.raises(ModelError, match=r"alexnet does not run on a 3x16x16 input: "):
        load_model("alexnet", untrained=True, input_size=(16, 16))
    with pytest.raises(ModelError, match="too large"):
        load_model("classic", input_size=(100000, 100000))


def test_one_table_of_suffixes() -> None:
    assert ".bin" in MODEL_SUFFIXES and all(s == s.lower() and s.startswith(".") for s in MODEL_SUFFIXES)
    assert is_model_file("/x/weights.BIN") and is_model_file("m.pt2") and not is_model_file("cat.png")
    assert [s.NAME for s in FILE_SOURCES] == ["export", "torchscript", "state_dict", "pickle"]
