"""The catalog: classic, the offline pretrained default, torchvision by name, user files."""

from __future__ import annotations

import hashlib
import http.server
import os
import threading
import urllib.error
from functools import partial

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from engine import available_engines
from models.engine_mode import EngineConvMode
from models.errors import (
    ArchitectureNeededError,
    Cancelled,
    ModelError,
    UntrustedModelError,
    WeightsUnavailableError,
)
from models.images import prepare_image, sample_images
from models.runner import run_model
from models.sources import available_models, download, load_model
from models.sources.catalog import load_catalog

IMAGENET_CATS = {"tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"}


def test_catalog_lists_default_classic_and_torchvision() -> None:
    names = available_models()
    assert names[:2] == ["efficientnet_lite0", "classic"]
    for name in [
        "alexnet",
        "vgg11",
        "vgg16",
        "resnet18",
        "resnet50",
        "googlenet",
        "squeezenet1_1",
        "mobilenet_v2",
        "mobilenet_v3_small",
        "efficientnet_b0",
        "densenet121",
        "convnext_tiny",
    ]:
        assert name in names


def test_classic_first_layer_holds_known_kernels() -> None:
    model = load_model("classic")
    w = model.module.edges.weight.detach().numpy()
    names = model.channel_names["edges"]
    sobel = w[names.index("Sobel x (dark→light)")]
    # one kernel per colour channel, each the Sobel kernel scaled by that channel's luma weight
    np.testing.assert_allclose(sobel.sum(0), [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], atol=1e-6)
    np.testing.assert_allclose(w[names.index("identity")].sum(0)[1, 1], 1.0, atol=1e-6)
    assert model.categories is None


@pytest.fixture(scope="module")
def lite0():
    return load_model("efficientnet_lite0")


@pytest.mark.slow
@pytest.mark.parametrize("engine", available_engines())
def test_default_model_sees_a_cat_on_every_engine(lite0, engine: str) -> None:
    image = prepare_image(sample_images()["chelsea"], lite0.preprocess)
    with torch.no_grad(), EngineConvMode(engine) as mode:
        probs = lite0.module(image.tensor).softmax(1)[0]
    assert len(mode.calls) == 49
    top = lite0.categories[int(probs.argmax())]
    assert top in IMAGENET_CATS and float(probs.max()) > 0.3


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    old = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    yield tmp_path / "hub" / "checkpoints"
    torch.hub.set_dir(old)


def test_torchvision_weights_load_from_the_cache_without_network(torch_home, monkeypatch) -> None:
    def no_network(*_a, **_k):
        raise AssertionError("the network was used")

    monkeypatch.setattr("urllib.request.urlopen", no_network)
    torch.manual_seed(1)
    saved = torchvision.models.squeezenet1_1().state_dict()
    torch_home.mkdir(parents=True)
    torch.save(saved, torch_home / "squeezenet1_1-b8a52dc0.pth")
    model = load_model("squeezenet1_1")
    assert model.pretrained and len(model.categories) == 1000
    assert model.preprocess.size == (224, 224) and model.preprocess.resize == 256
    torch.testing.assert_close(model.module.state_dict()["features.0.weight"], saved["features.0.weight"])


def test_offline_and_not_cached_says_which_file_to_put_where(torch_home, monkeypatch) -> None:
    def offline(url, timeout=None):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr("urllib.request.urlopen", offline)
    with pytest.raises(WeightsUnavailableError) as info:
        load_model("squeezenet1_1")
    message = str(info.value)
    assert "squeezenet1_1-b8a52dc0.pth" in message and str(torch_home) in message
    assert "\n" not in message
    assert info.value.url.endswith("/squeezenet1_1-b8a52dc0.pth")  # to fetch it elsewhere
    assert info.value.path == str(torch_home / "squeezenet1_1-b8a52dc0.pth")
    assert not list(torch_home.glob("*"))  # nothing half-written


def test_offline_the_command_line_offers_random_weights(torch_home, monkeypatch, capsys, tmp_path) -> None:
    import main

    def offline(url, timeout=None):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr("urllib.request.urlopen", offline)
    assert main.main(["--model", "squeezenet1_1", "--export", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot download squeezenet1_1-b8a52dc0.pth") and err.count("\n") == 1
    assert "--untrained" in err  # the command line's own remedy, not the model layer's


@pytest.fixture
def served_file(tmp_path):
    payload = os.urandom(300_000)
    name = f"weights-{hashlib.sha256(payload).hexdigest()[:8]}.pth"
    (tmp_path / "srv").mkdir()
    (tmp_path / "srv" / name).write_bytes(payload)
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "srv"))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/{name}", name, payload
    server.shutdown()
    server.server_close()


def test_download_reports_progress_and_checks_the_hash(served_file, tmp_path) -> None:
    url, name, payload = served_file
    seen = []
    path = download(url, tmp_path / "cache" / name, progress=lambda d, t: seen.append((d, t)), chunk=65536)
    assert path.read_bytes() == payload
    assert seen[0] == (0, len(payload)) and seen[-1] == (len(payload), len(payload))
    assert len(seen) >= 5


def test_download_cancel_leaves_nothing(served_file, tmp_path) -> None:
    url, name, _ = served_file
    calls = []
    with pytest.raises(Cancelled):
        download(url, tmp_path / "cache" / name, cancel=lambda: calls.append(1) or len(calls) > 2)
    assert not list((tmp_path / "cache").glob("*"))


def test_download_with_wrong_hash_is_refused(served_file, tmp_path) -> None:
    url, _, _ = served_file
    with pytest.raises(WeightsUnavailableError, match="hash mismatch"):
        download(url, tmp_path / "cache" / "weights-00000000.pth")
    assert not list((tmp_path / "cache").glob("*"))


@pytest.mark.parametrize("name", ["googlenet", "densenet121", "convnext_tiny", "mobilenet_v3_small"])
def test_untrained_builds_offline(name: str) -> None:
    model = load_model(name, untrained=True)
    assert not model.pretrained and "untrained" in model.description
    with torch.no_grad():
        out = model.module(torch.zeros(1, 3, 64, 64))
    assert out.shape == (1, 1000)


def test_unknown_name_is_a_model_error() -> None:
    with pytest.raises(ModelError, match="unknown model 'resnet19'; catalog: efficientnet_lite0"):
        load_model("resnet19")


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.head = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.conv(x).mean((2, 3)))


def test_torchscript_and_export_files_load_with_their_input_shape(tmp_path) -> None:
    net = _Net().eval()
    torch.jit.save(torch.jit.script(net), tmp_path / "net.pt")
    scripted = load_model(str(tmp_path / "net.pt"))
    assert scripted.source == "torchscript"
    assert scripted.preprocess.channels == 1  # from the first conv's weight
    example = torch.randn(1, 1, 40, 56)
    torch.export.save(torch.export.export(net, (example,)), tmp_path / "net.pt2")
    exported = load_model(str(tmp_path / "net.pt2"))
    assert exported.source == "export" and exported.preprocess.size == (40, 56)
    with torch.no_grad():
        torch.testing.assert_close(exported.module(example), net(example))


def test_state_dict_needs_an_architecture(tmp_path) -> None:
    torch.manual_seed(3)
    sd = torchvision.models.resnet18().state_dict()
    torch.save({"state_dict": {f"module.{k}": v for k, v in sd.items()}}, tmp_path / "ckpt.pth")
    with pytest.raises(ArchitectureNeededError, match="is a state dict") as info:
        load_model(str(tmp_path / "ckpt.pth"))
    assert info.value.guess == "resnet18" and "--arch" not in str(info.value)
    model = load_model(str(tmp_path / "ckpt.pth"), arch="resnet18")
    # the architecture's class names are not the file's own (a fine-tune may have others):
    # ImageNet's, marked as a guess, as for a TorchScript file with 1000 outputs
    assert model.source == "state_dict" and model.categories is None
    torch.testing.assert_close(model.module.state_dict()["conv1.weight"], sd["conv1.weight"])
    result = run_model(model, torch.rand(1, 3, 224, 224), engine="reference")
    assert len(result.predictions) == 5 and "ImageNet's classes, a guess" in result.prediction_note
    catalog = load_catalog("resnet18", untrained=True)  # a catalog model's names are its own
    assert len(catalog.categories) == 1000
    assert run_model(catalog, torch.rand(1, 3, 224, 224), engine="reference").prediction_note is None
    with pytest.raises(ModelError, match="does not fit architecture vgg11"):
        load_model(str(tmp_path / "ckpt.pth"), arch="vgg11")


def test_the_command_line_asks_for_the_architecture_it_guessed(tmp_path, capsys) -> None:
    import main

    torch.manual_seed(3)
    torch.save(torchvision.models.resnet18().state_dict(), tmp_path / "ckpt.pth")
    assert main.main(["--model", str(tmp_path / "ckpt.pth"), "--export", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ckpt.pth is a state dict") and err.count("\n") == 1
    assert err.rstrip().endswith("its keys and shapes are those of resnet18; pass --arch resnet18")
    assert err.count("resnet18") == 2  # the finding and the remedy, each once
    # the wrong architecture passed: what disagrees, whose keys they are, and the one remedy
    assert (
        main.main(["--model", str(tmp_path / "ckpt.pth"), "--arch", "vgg11", "--export", str(tmp_path / "o")])
        == 2
    )
    err = capsys.readouterr().err
    assert err.startswith("error: ckpt.pth does not fit architecture vgg11: ") and err.count("\n") == 1
    assert err.rstrip().endswith("; its keys and shapes are those of resnet18; pass --arch resnet18")


class Booby(nn.Module):
    """Unpickling this touches a marker file: proof of whether code from a pickle ran."""

    marker = None

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        open(os.environ["CONVSCOPE_MARKER"], "w").close()


def test_pickled_module_runs_no_code_unless_trusted(tmp_path, monkeypatch, capsys) -> None:
    marker = tmp_path / "ran"
    monkeypatch.setenv("CONVSCOPE_MARKER", str(marker))
    torch.save(Booby(), tmp_path / "full.pth")
    with pytest.raises(UntrustedModelError, match=r"pickled model: loading it runs code"):
        load_model(str(tmp_path / "full.pth"))
    assert not marker.exists()
    import main

    assert main.main(["--model", str(tmp_path / "full.pth"), "--export", str(tmp_path / "o")]) == 2
    assert not marker.exists()  # and the command line says how to allow it
    assert "--trust-model" in capsys.readouterr().err
    model = load_model(str(tmp_path / "full.pth"), trust=True)
    assert marker.exists() and model.source == "pickle"


@pytest.mark.parametrize("content", [b"hello, I am text", b"PK\x03\x04garbage"])
def test_a_file_that_is_no_model_is_one_line(tmp_path, content: bytes) -> None:
    (tmp_path / "x.pth").write_bytes(content)
    with pytest.raises(ModelError) as info:
        load_model(str(tmp_path / "x.pth"))
    assert "\n" not in str(info.value) and "x.pth" in str(info.value)
    assert "not a model file" in str(info.value)  # not mistaken for a pickle to trust


def test_a_model_without_convolution_is_refused(tmp_path) -> None:
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(3 * 224 * 224, 10)).eval()
    torch.jit.save(torch.jit.script(mlp), tmp_path / "mlp.pt")
    with pytest.raises(ModelError, match="has no convolution layer"):
        load_model(str(tmp_path / "mlp.pt"))


def test_missing_model_file(tmp_path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        load_model(str(tmp_path / "nope.pt"))
