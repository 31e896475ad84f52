"""Feature visualization of the default model's first layer, what a new user sees first.

EfficientNet-Lite0's ``_conv_stem`` channel 0 is an edge detector whose kernel sums to about zero
in every colour: its raw mean over the map hardly moves whatever the image. The visualization
maximises the channel as the network uses it, after ``_bn0`` and ``_act_stem`` (ReLU6), and must
raise it far above what random noise and the sample photo give -- on the pretrained weights and
on an untrained copy. Measured by an independent forward pass in torch on the saved uint8 image.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models import featvis
from models.images import prepare_image, sample_images
from models.runner import layer_output
from models.sources import load_catalog
from models.sources.catalog import with_input_size

SIZE = (96, 96)  # small: the stem's receptive field is 3 pixels, the mean is over the map
CHANNELS = [0, 1, 3, 6, 7]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Hundreds of small steps: torch's two threads only wait on each other on a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _means(model, x: torch.Tensor, layer: str) -> np.ndarray:
    with torch.no_grad():
        out, _ = layer_output(model.module, x, layer, stop=True)
    return out[0].mean(dim=(1, 2)).numpy()


@pytest.fixture(scope="module", params=["pretrained", "untrained"])
def stem(request):
    model = with_input_size(load_catalog("efficientnet_lite0", untrained=request.param == "untrained"), SIZE)
    vis = featvis.visualize_channels(model, "_conv_stem", CHANNELS, steps=128, seed=0)
    return request.param, model, vis


def test_the_stem_is_seen_after_its_batchnorm_and_relu6(stem) -> None:
    _, model, vis = stem
    assert vis.layer == "_conv_stem" and vis.objective_layer == "_act_stem"
    assert featvis.objective_layer(model, "_conv_stem", SIZE) == "_act_stem"
    assert featvis.objective_layer(model, "_act_stem", SIZE) == "_act_stem"  # nothing after it
    # the raw objective stays available: the layer itself
    raw = featvis.visualize(model, "_conv_stem", 0, steps=1, size=(32, 32), as_used=False)
    assert raw.objective_layer == "_conv_stem"


def test_every_stem_channel_is_excited_far_above_noise_and_the_photo(stem) -> None:
    name, model, vis = stem
    layer = "_act_stem"
    grey = _means(model, featvis.model_input(model, np.full((*SIZE, 3), 128, np.uint8)), layer)
    rng = np.random.default_rng(0)
    noise = _means(model, featvis.model_input(model, rng.integers(0, 256, (*SIZE, 3), np.uint8)), layer)
    photo = _means(model, prepare_image(sample_images()["chelsea"], model.preprocess).tensor, layer)
    for i, c in enumerate(CHANNELS):
        got = _means(model, featvis.model_input(model, vis.images[i]), layer)[c]
        assert got == pytest.approx(float(vis.activations[i]), rel=0.02, abs=1e-3)  # same number
        assert float(vis.baseline[i]) == pytest.approx(grey[c], rel=0.02, abs=1e-3)
        # a BatchNorm's bias lifts the resting level (a grey image) above 0: the excitation is
        # the rise above it. The photo's and the noise's rises are small or negative.
        # Pretrained: 2.3x to 20x (128 steps, 96x96). Untrained, random kernels respond to a
        # photo's colours too: 1.9x to 5x. (Without the jitter the untrained stem doubles, with
        # 2-pixel patterns locked to the stride: the adversarial noise the jitter is there to stop.)
        rise = got - grey[c]
        factor = 2 if name == "pretrained" else 1.6
        assert rise > factor * max(noise[c] - grey[c], photo[c] - grey[c], 0.05), (name, c)
        assert got > noise[c] and got > photo[c]


def test_a_deeper_layer_of_the_default_model_is_excited_too() -> None:
    model = with_input_size(load_catalog("efficientnet_lite0"), SIZE)
    vis = featvis.visualize_channels(model, "_blocks.5._expand_conv", 4, steps=64, seed=0)
    layer = vis.objective_layer
    assert layer == "_blocks.5._act0"
    rng = np.random.default_rng(1)
    noise = _means(model, featvis.model_input(model, rng.integers(0, 256, (*SIZE, 3), np.uint8)), layer)
    photo = _means(model, prepare_image(sample_images()["chelsea"], model.preprocess).tensor, layer)
    for c in range(4):
        got = _means(model, featvis.model_input(model, vis.images[c]), layer)[c]
        rise = got - float(vis.baseline[c])
        assert rise > 2 * max(noise[c] - vis.baseline[c], photo[c] - vis.baseline[c], 0.05), c


def test_a_channel_off_everywhere_on_the_grey_start_still_comes_to_life(monkeypatch) -> None:
    # a ReLU after a bias of -1.5: on the grey start the channel is 0 everywhere, so the plain
    # gradient is 0 and, without the leak through the ReLU's off side, it stays exactly 0
    from models.images import Preprocess
    from models.sources import LoadedModel

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 2, 5), torch.nn.ReLU()).eval()
    with torch.no_grad():
        net[0].bias.fill_(-1.5)
    model = LoadedModel(
        "dead",
        net,
        "catalog",
        Preprocess(size=(48, 48), resize=None, crop=False, mean=(0.5,) * 3, std=(0.25,) * 3),
        None,
        False,
    )
    rng = np.random.default_rng(0)
    with torch.no_grad():
        noise = net(featvis.model_input(model, rng.integers(0, 256, (48, 48, 3), np.uint8)))[0]
    vis = featvis.visualize_channels(model, "0", [0, 1], steps=120, seed=0)
    assert vis.objective_layer == "1" and np.all(vis.baseline == 0)
    for i in range(2):
        with torch.no_grad():
            got = float(net(featvis.model_input(model, vis.images[i]))[0, i].mean())
        assert got == pytest.approx(float(vis.activations[i]), rel=0.02, abs=1e-3)
        assert got > 0.05 and got > 10 * float(noise[i].mean())
    monkeypatch.setattr(featvis, "LEAK", 0.0)
    stuck = featvis.visualize_channels(model, "0", [0, 1], steps=120, seed=0)
    assert np.all(stuck.activations == 0) and np.all(stuck.history == 0)
