"""Feature visualization: the image found excites its channel (measured by a forward pass on
our engine, not by the optimiser's own number), shows the known pattern of a known detector,
is reproducible from its seed, and the optimisation stops at the layer."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from models import featvis
from models.errors import Cancelled, LayerError
from models.images import Preprocess, prepare_image, sample_images
from models.runner import run_model
from models.sources import LoadedModel, load_catalog
from models.sources.catalog import with_input_size

SIZE = (48, 48)


@pytest.fixture(scope="module")
def classic() -> LoadedModel:
    return with_input_size(load_catalog("classic"), SIZE)


@pytest.fixture(scope="module")
def edges(classic) -> featvis.Visualization:
    """combine's vertical-edge (0) and horizontal-edge (1) channels, in one batch."""
    return featvis.visualize_channels(classic, "combine", [0, 1], steps=128, seed=0)


def _engine_activation(model: LoadedModel, x: torch.Tensor, layer: str, channel: int) -> float:
    """The oracle: the channel's mean activation from a forward pass on our im2col engine."""
    return float(run_model(model, x, "im2col").maps(layer)[channel].mean())


def test_visualization_excites_its_channel_far_above_noise_and_the_photo(classic, edges) -> None:
    photo = prepare_image(sample_images()["chelsea"], classic.preprocess).tensor
    rng = np.random.default_rng(0)
    noise = featvis.model_input(classic, rng.integers(0, 256, (*SIZE, 3), dtype=np.uint8))
    for i, channel in enumerate(edges.channels):
        vis = _engine_activation(classic, featvis.model_input(classic, edges.images[i]), "combine", channel)
        # the optimiser's own final number is the same forward pass (float32, uint8 rounding)
        assert vis == pytest.approx(float(edges.activations[i]), rel=0.02)
        assert vis > 2 * _engine_activation(classic, noise, "combine", channel)  # uniform noise
        assert vis > 4 * _engine_activation(classic, photo, "combine", channel)
        assert edges.history[-1, i] > 10 * max(edges.history[0, i], 1e-3)  # it climbed


def _gradient_energy(rgb: np.ndarray) -> tuple[float, float]:
    """Mean |d/dx| and |d/dy| of the grey image (x: along a row)."""
    grey = rgb.astype(np.float64).mean(axis=2)
    return float(np.abs(np.diff(grey, axis=1)).mean()), float(np.abs(np.diff(grey, axis=0)).mean())


def test_vertical_edge_detector_draws_vertical_stripes_and_horizontal_the_other_way(edges) -> None:
    # classic's combine 0 sums |Sobel x| (vertical edges), 1 sums |Sobel y| (horizontal edges)
    gx, gy = _gradient_energy(edges.images[0])
    assert gx > 1.25 * gy
    gx, gy = _gradient_energy(edges.images[1])
    assert gy > 1.25 * gx


def test_each_image_of_a_batch_is_for_its_own_channel(classic, edges) -> None:
    acts = np.array(
        [
            [
                _engine_activation(classic, featvis.model_input(classic, img), "combine", c)
                for c in edges.channels
            ]
            for img in edges.images
        ]
    )
    assert acts[0, 0] > acts[1, 0] and acts[1, 1] > acts[0, 1]
    assert edges.images.shape == (2, *SIZE, 3) and edges.images.dtype == np.uint8
    assert edges.history.shape == (128, 2) and edges.size == SIZE
    # combine is followed by a ReLU (relu2): the image is optimised for the channel after it
    assert edges.objective_layer == "relu2" and edges.layer == "combine"
    assert "autograd" in edges.note and "relu2" in edges.note
    assert edges.mosaic().shape[1] > SIZE[1]


def test_same_seed_same_image_bit_for_bit_another_seed_another(classic) -> None:
    runs = [featvis.visualize(classic, "edges", 3, steps=12, seed=s, size=(32, 32)) for s in (7, 7, 8)]
    assert np.array_equal(runs[0].images, runs[1].images)
    assert np.array_equal(runs[0].history, runs[1].history)
    assert np.abs(runs[0].images.astype(int) - runs[2].images).mean() > 2


def test_progress_previews_every_few_steps_and_cancel_stops_it(classic) -> None:
    seen = []
    featvis.visualize(
        classic,
        "edges",
        0,
        steps=10,
        size=(32, 32),
        preview_every=4,
        progress=lambda step, total, preview: seen.append((step, total, preview)),
    )
    assert [s for s, _, _ in seen] == list(range(1, 11)) and {t for _, t, _ in seen} == {10}
    previews = [s for s, _, p in seen if p is not None]
    assert previews == [4, 8, 10]
    assert all(p.shape == (32, 32, 3) and p.dtype == np.uint8 for _, _, p in seen if p is not None)
    seen.clear()  # a grid in one batch: one step counts for all its channels
    featvis.visualize_channels(
        classic,
        "edges",
        3,
        steps=5,
        size=(32, 32),
        preview_every=0,
        progress=lambda step, total, preview: seen.append((step, total, preview)),
    )
    assert [(s, t) for s, t, _ in seen] == [(i, 5) for i in range(1, 6)]
    assert seen[-1][2].shape == (66, 66, 3)  # the last step: the mosaic of three, two by two
    assert all(p is None for _, _, p in seen[:-1])
    calls = []
    with pytest.raises(Cancelled):
        featvis.visualize(
            classic,
            "edges",
            0,
            steps=50,
            size=(32, 32),
            progress=lambda step, total, preview: calls.append(step),
            cancel=lambda: len(calls) >= 3,
        )
    assert calls == [1, 2, 3]


class _Counting(nn.Module):
    """A classifier head that counts its calls."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.fc(x.mean(dim=(2, 3)))


def _small_net(channels: int = 3) -> LoadedModel:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(channels, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 4, 3, padding=1), _Counting()
    ).eval()
    pre = Preprocess(
        size=(32, 32),
        resize=None,
        crop=False,
        mean=(0.5,) * channels,
        std=(0.25,) * channels,
        channels=channels,
    )
    return LoadedModel("small", net, "catalog", pre, None, False)


def test_the_forward_pass_stops_at_the_layer_and_leaves_the_model_alone() -> None:
    model = _small_net()
    head = model.module[3]
    before = {k: v.clone() for k, v in model.module.state_dict().items()}
    featvis.layer_channels(model, "2", (32, 32))  # the plan runs the whole model once
    calls = head.calls
    featvis.visualize(model, "2", 1, steps=5, size=(32, 32))
    assert head.calls == calls  # the head (and its classifier) never ran
    assert all(p.grad is None for p in model.module.parameters())
    assert all(torch.equal(v, model.module.state_dict()[k]) for k, v in before.items())


def test_a_grey_model_gets_a_grey_image_normalised_with_its_own_mean_and_std() -> None:
    model = _small_net(channels=1)
    vis = featvis.visualize(model, "1", 2, steps=40, size=(32, 32))
    img = vis.image
    assert np.array_equal(img[..., 0], img[..., 1]) and np.array_equal(img[..., 0], img[..., 2])
    x = featvis.model_input(model, img)
    assert x.shape == (1, 1, 32, 32)
    assert torch.allclose(
        x, (torch.from_numpy(img[..., :1].astype(np.float32)).permute(2, 0, 1)[None] / 255 - 0.5) / 0.25
    )
    out = float(run_model(model, x, "im2col").maps("1")[2].mean())
    grey = float(run_model(model, torch.zeros(1, 1, 32, 32), "im2col").maps("1")[2].mean())
    assert out == pytest.approx(float(vis.activations[0]), rel=0.02, abs=1e-3)
    assert out > 5 * grey and out > 0.3


def test_one_unit_is_raised_far_above_the_photo(classic) -> None:
    vis = featvis.visualize(classic, "edges", 3, unit=(20, 30), steps=40, seed=1)
    act = run_model(classic, featvis.model_input(classic, vis.image), "im2col").maps("edges")[3]
    photo = prepare_image(sample_images()["chelsea"], classic.preprocess).tensor
    on_photo = run_model(classic, photo, "im2col").maps("edges")[3]
    assert act[20, 30] == pytest.approx(float(vis.activations[0]), rel=0.02)
    assert act[20, 30] > 3 * abs(on_photo[20, 30]) and act[20, 30] > 1.0
    assert vis.unit == (20, 30)


class _ToChannelsLast(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 2, 3, 1)


def test_a_channels_last_layer_is_indexed_by_its_channel() -> None:
    torch.manual_seed(1)
    net = nn.Sequential(nn.Conv2d(3, 5, 3, padding=1), _ToChannelsLast(), nn.Linear(5, 7)).eval()
    model = LoadedModel(
        "nhwc", net, "catalog", Preprocess(size=(24, 24), resize=None, crop=False), None, False
    )
    assert featvis.layer_channels(model, "2", (24, 24)) == (7, (24, 24))
    vis = featvis.visualize(model, "2", 4, steps=20, size=(24, 24))
    with torch.no_grad():
        direct = net(featvis.model_input(model, vis.image))[0, :, :, 4].mean()
    assert float(direct) == pytest.approx(float(vis.activations[0]), rel=0.02, abs=1e-3)


def test_bad_requests_are_one_line_layer_errors(classic) -> None:
    with pytest.raises(LayerError, match=r"channel 4 is outside layer 'combine', which has 4"):
        featvis.visualize(classic, "combine", 4, steps=1)
    with pytest.raises(LayerError, match=r"unknown layer 'combin'.*did you mean combine"):
        featvis.visualize(classic, "combin", 0, steps=1)
    with pytest.raises(LayerError, match=r"unit \(48, 0\) is outside layer 'edges' of size 48x48"):
        featvis.visualize(classic, "edges", 0, unit=(48, 0), steps=1)
    model = _small_net()
    with pytest.raises(LayerError, match="no spatial map"):
        featvis.visualize(model, "3.fc", 0, unit=(1, 1), steps=1)


def test_layer_output_stops_eager_and_pt2_runs_at_the_layer(tmp_path) -> None:
    from models.runner import layer_output
    from models.sources import load_model

    model = _small_net()
    x = torch.zeros(1, 3, 32, 32)
    torch.export.save(torch.export.export(model.module, (x,)), tmp_path / "m.pt2")
    for module in (model.module, load_model(str(tmp_path / "m.pt2")).module):
        out, rest = layer_output(module, x, "2", stop=True)
        assert rest is None and out.shape == (1, 4, 32, 32)  # stopped: no model output
        out, rest = layer_output(module, x, "2", stop=False)
        assert rest.shape == (1, 3)
    with pytest.raises(LayerError, match="unknown layer 'nine'"):
        layer_output(model.module, x, "nine")


def test_torchscript_and_pt2_copies_give_the_eager_image(tmp_path) -> None:
    from models.sources import load_model

    model = _small_net()
    x = torch.zeros(1, 3, 32, 32)
    torch.jit.save(torch.jit.trace(model.module, x), tmp_path / "m.pt")
    torch.export.save(torch.export.export(model.module, (x,)), tmp_path / "m.pt2")
    eager = featvis.visualize_channels(model, "2", [0, 3], steps=6, size=(32, 32), seed=3)
    for name in ("m.pt", "m.pt2"):
        other = load_model(str(tmp_path / name))
        other.preprocess = model.preprocess
        copy = featvis.visualize_channels(other, "2", [0, 3], steps=6, size=(32, 32), seed=3)
        # a fixed-batch .pt2 runs the two channels one at a time: same images all the same
        assert np.abs(copy.images.astype(int) - eager.images).max() <= 1, name
        np.testing.assert_allclose(copy.activations, eager.activations, rtol=1e-3, atol=1e-5)
