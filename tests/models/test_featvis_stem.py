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


def _means(model, x: torch.Tensor, layer: str) -> np.ndarray:
    with torch.no_grad():
        out, _ = layer_output(model.module, x, layer, stop=True)
    return out[0].mean(dim=(1, 2)).numpy()


@pytest.fixture(scope="module", params=["pretrained", "untrained"])
def stem(request):
    model = with_input_size(load_catalog("efficientnet_lite0", untrained=request.param == "untrained"),
                            SIZE)
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
