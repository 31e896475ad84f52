"""Class activation maps against their formulas computed here with plain torch, on a
hand-made net whose class is a bright square (the map's peak lies on it), on every model form,
and mapped back onto a photo of another shape."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from models import cam
from models.errors import LayerError, ModelError
from models.images import Preprocess, prepare_image
from models.sources import LoadedModel

PLAIN = Preprocess(size=(32, 32), resize=None, crop=False, mean=(0.0,) * 3, std=(1.0,) * 3)


def _random_net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 6, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(6, 5),
    ).eval()


def _model(net: nn.Module, categories: list[str] | None = None, pre: Preprocess = PLAIN) -> LoadedModel:
    return LoadedModel("net", net, "catalog", pre, categories, False)


def _oracle(
    net: nn.Sequential, x: torch.Tensor, split: int, target: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The layer's maps A and d score / d A: the net cut in two by hand, A a leaf tensor."""
    with torch.no_grad():
        a = net[:split](x)
    a.requires_grad_(True)
    score = net[split:](a)[0, target]
    (g,) = torch.autograd.grad(score, a)
    return a.detach()[0].double(), g[0].double()


def _close(got: np.ndarray, expected: torch.Tensor) -> None:
    """float32 against float64: within 1e-5 of the map's maximum."""
    expected = expected.numpy()
    assert got.shape == expected.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5 * float(expected.max()))


@pytest.mark.parametrize("target", [None, 2])
def test_grad_cam_is_the_formula(target) -> None:
    net = _random_net()
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    result = cam.class_map(_model(net), x, layer="2", target=target)
    expected_class = int(net(x)[0].argmax()) if target is None else target
    assert result.class_index == expected_class and result.layer == "2"
    a, g = _oracle(net, x, 3, expected_class)  # layer "2" is the output of net[:3]
    expected = torch.relu((g.mean(dim=(1, 2))[:, None, None] * a).sum(0))
    assert (expected > 0).sum() > 100
    _close(result.cam, expected)
    assert result.heat.shape == (32, 32) and result.heat.max() == pytest.approx(1.0)
    with torch.no_grad():
        logits = net(x)[0]
    assert result.score == pytest.approx(float(logits[expected_class]), rel=1e-5)
    assert result.probability == pytest.approx(float(torch.softmax(logits, 0)[expected_class]), rel=1e-5)
    assert "autograd" in result.note


def test_a_map_that_is_zero_everywhere_says_so() -> None:
    torch.manual_seed(0)
    head = nn.Linear(4, 2)
    with torch.no_grad():
        head.weight.fill_(-1.0)  # class 0 falls as every (non-negative) unit rises
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), head).eval()
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    result = cam.class_map(_model(net), x, layer="1", target=0)
    assert result.empty and float(np.abs(result.cam).max()) == 0
    assert "zero everywhere at 1" in result.empty_note()
    assert not cam.class_map(_model(_random_net()), x, layer="2").empty


def test_grad_cam_plus_plus_is_its_closed_form() -> None:
    net = _random_net()
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    result = cam.class_map(_model(net), x, layer="3", target=1, method="gradcam++")
    a, g = _oracle(net, x, 4, 1)
    alpha = g**2 / (2 * g**2 + a.sum(dim=(1, 2), keepdim=True) * g**3)
    alpha = torch.where(g != 0, alpha, torch.zeros_like(alpha))
    weights = (alpha * torch.relu(g)).sum(dim=(1, 2))
    expected = torch.relu((weights[:, None, None] * a).sum(0))
    assert (expected > 0).sum() > 10
    _close(result.cam, expected)
    assert result.method == "Grad-CAM++"


def test_a_layer_overwritten_in_place_later_is_explained_as_the_layer_made_it() -> None:
    class Residual(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.bn = nn.BatchNorm2d(4)
            self.head = nn.Linear(4, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = self.bn(self.conv(x))
            out += x[:, :1]  # resnet's in-place sum, after the layer "bn" made its output
            return self.head(torch.relu(out).mean(dim=(2, 3)))

    torch.manual_seed(3)
    net = Residual().eval()
    x = torch.rand(1, 3, 16, 16)
    result = cam.class_map(_model(net), x, layer="bn", target=2)
    with torch.no_grad():
        a = net.bn(net.conv(x))
    a.requires_grad_(True)
    score = net.head(torch.relu(a + x[:, :1]).mean(dim=(2, 3)))[0, 2]
    (g,) = torch.autograd.grad(score, a)
    expected = torch.relu((g[0].mean(dim=(1, 2))[:, None, None] * a[0].detach()).sum(0))
    assert (expected > 0).sum() > 10
    _close(result.cam, expected)


def _square_net() -> nn.Sequential:
    """Class 0: bright pixels (a 'bright' detector, mean-pooled); class 1: dark pixels."""
    net = nn.Sequential(
        nn.Conv2d(3, 2, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 2)
    )
    with torch.no_grad():
        net[0].weight.zero_()
        net[0].weight[0] = 1 / 27  # mean brightness of the 3x3 patch
        net[0].weight[1] = -1 / 27
        net[0].bias.copy_(torch.tensor([-0.5, 0.5]))
        net[4].weight.copy_(torch.tensor([[100.0, 0.0], [0.0, 1.0]]))
        net[4].bias.zero_()
    return net.eval()


def _square_photo(height: int, width: int, box: tuple[int, int, int, int]) -> Image.Image:
    rgb = np.full((height, width, 3), 25, dtype=np.uint8)
    top, left, bottom, right = box
    rgb[top:bottom, left:right] = 230
    return Image.fromarray(rgb)


@pytest.mark.parametrize("method", ["gradcam", "gradcam++", "scorecam"])
def test_the_peak_lies_on_the_one_object_in_the_model_view_and_on_the_photo(method) -> None:
    # a 120x90 photo, resized (shorter side 36) and centre-cropped to 32x32: the crop keeps
    # the square, which sits off-centre
    box = (20, 50, 45, 75)  # top, left, bottom, right in the photo
    pre = Preprocess(size=(32, 32), resize=36, crop=True, mean=(0.0,) * 3, std=(1.0,) * 3)
    model = _model(_square_net(), ["bright", "dark"], pre)
    image = prepare_image(_square_photo(90, 120, box), pre)
    # the ReLU's maps: Grad-CAM++'s closed form assumes activations >= 0
    result = cam.class_map(model, image, layer="1", method=method)
    assert result.class_name == "bright"
    y, x = np.unravel_index(np.argmax(result.heat), result.heat.shape)
    inside = image.model_view[..., 0] > 128  # the square as the model saw it
    assert inside[y, x] and inside.sum() < 0.4 * inside.size
    assert result.heat[inside].mean() > 4 * result.heat[~inside].mean()
    back = cam.heat_on_original(result.heat, image.mapping)
    assert back.shape == (90, 120)
    y0, x0 = np.unravel_index(np.argmax(back), back.shape)
    assert box[0] <= y0 < box[2] and box[1] <= x0 < box[3]
    # outside the crop nothing is drawn: the crop is the middle 90 of 120 columns
    assert back[:, :14].max() == 0 and back[:, 106:].max() == 0
    drawn = cam.on_original(result, image)
    assert drawn.shape == (90, 120, 3) and drawn.dtype == np.uint8


def test_the_other_class_lights_up_the_background() -> None:
    model = _model(_square_net(), ["bright", "dark"])
    x = torch.from_numpy(np.asarray(_square_photo(32, 32, (8, 8, 18, 18)), dtype=np.float32) / 255)
    result = cam.class_map(model, x.permute(2, 0, 1)[None], layer="0", target="Dark")
    assert result.class_index == 1
    assert result.heat[10:16, 10:16].max() < 0.05 and result.heat[25:, 25:].min() > 0.5


def test_score_cam_is_the_papers_weighted_sum() -> None:
    net = _random_net()
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    seen = []
    result = cam.class_map(
        _model(net),
        x,
        layer="1",
        target=2,
        method="scorecam",
        batch=3,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert seen == [(3, 8), (6, 8), (8, 8)]
    with torch.no_grad():
        a = net[:2](x)[0]
        scores = []
        for k in range(8):
            m = torch.nn.functional.interpolate(a[k][None, None], size=(32, 32), mode="bilinear")[0, 0]
            m = (m - m.min()) / (m.max() - m.min()) if m.max() > m.min() else torch.zeros_like(m)
            scores.append(float(net(x * m)[0, 2]))
        w = torch.softmax(torch.tensor(scores, dtype=torch.float64), 0)
        expected = torch.relu((w[:, None, None] * a.double()).sum(0))
    assert (expected > 0).sum() > 10
    _close(result.cam, expected)


def test_default_layer_is_the_last_convolution_with_a_map() -> None:
    assert cam.default_layer(_random_net(), torch.zeros(1, 3, 32, 32)) == "2"


def test_program_form_matches_eager_and_torchscript_asks_for_score_cam(tmp_path) -> None:
    from models.sources import load_model

    net = _random_net()
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(5))
    eager = cam.class_map(_model(net), x, layer="2")
    torch.export.save(torch.export.export(net, (x,)), tmp_path / "m.pt2")
    program = load_model(str(tmp_path / "m.pt2"))
    np.testing.assert_allclose(cam.class_map(program, x, layer="2").cam, eager.cam, rtol=1e-4, atol=1e-6)
    torch.jit.save(torch.jit.trace(net, x), tmp_path / "m.pt")
    script = load_model(str(tmp_path / "m.pt"))
    with pytest.raises(ModelError, match=r"TorchScript.*Score-CAM needs no gradient"):
        cam.class_map(script, x, layer="2")
    scored = cam.class_map(script, x, layer="2", method="scorecam")
    np.testing.assert_allclose(
        scored.cam, cam.class_map(_model(net), x, layer="2", method="scorecam").cam, rtol=1e-4, atol=1e-6
    )


def test_classes_by_index_or_name_and_one_line_errors() -> None:
    logits = np.array([0.1, 3.0, -1.0], dtype=np.float32)
    model = _model(_random_net(), ["tabby cat", "Egyptian cat", "dog"])
    assert cam.resolve_class(model, None, logits) == 1
    assert cam.resolve_class(model, "2", logits) == 2 and cam.resolve_class(model, 0, logits) == 0
    assert cam.resolve_class(model, "egyptian CAT", logits) == 1
    with pytest.raises(LayerError, match=r"unknown class 'egyptian kat'; did you mean 'Egyptian cat'"):
        cam.resolve_class(model, "egyptian kat", logits)
    with pytest.raises(LayerError, match=r"class 3 is outside the model's 3 outputs \(0..2\)"):
        cam.resolve_class(model, 3, logits)
    with pytest.raises(LayerError, match=r"has no category names.*give an index 0..2"):
        cam.resolve_class(_model(_random_net()), "dog", logits)
    net, x = _random_net(), torch.zeros(1, 3, 32, 32)
    with pytest.raises(LayerError, match=r"layer '6' \(Linear, output \[1, 5\]\) has no spatial map"):
        cam.class_map(_model(net), x, layer="6")
    with pytest.raises(LayerError, match="has a 1x1 map"):
        cam.class_map(_model(net), x, layer="4")
    with pytest.raises(LayerError, match="unknown layer"):
        cam.class_map(_model(net), x, layer="conv9")
    with pytest.raises(ModelError, match=r"output \(\[1, 6, 16, 16\]\) is not one score per class"):
        cam.class_map(_model(net[:4]), x, layer="0")
    with pytest.raises(ModelError, match="unknown CAM method"):
        cam.class_map(_model(net), x, method="lime")
