"""Receptive fields against values worked out by hand, branches, and the effective field."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from models.errors import LayerError
from models.receptive_field import ReceptiveField
from models.runner import effective_receptive_field, find_layer, run_model
from models.sources import LoadedModel, load_model

# By hand, per axis: size' = size + (k-1)*d*jump, jump' = jump*s, start' = start - p*jump.
# alexnet: conv11 s4 p2 -> (11, 4, -2); pool3 s2 -> (19, 8); conv5 p2 -> (51, 8, -18);
#   pool3 s2 -> (67, 16); conv3 p1 x3 -> 99 (-34), 131 (-50), 163 (-66); pool3 s2 -> (195, 32, -66)
ALEXNET = {
    "features.0": (11, 4, -2),
    "features.2": (19, 8, -2),
    "features.3": (51, 8, -18),
    "features.5": (67, 16, -18),
    "features.10": (163, 16, -66),
    "features.12": (195, 32, -66),
}
# vgg16: 3x3 p1 convs add 2*jump, 2x2 s2 pools add jump and double it.
#   block1 3, 5 | pool 6 (j2) | 10, 14 | 16 (j4) | 24, 32, 40 | 44 (j8) | 60, 76, 92 | 100 (j16)
#   | 132, 164, 196 | pool5 212 (j32); start falls by one jump per conv: ... -90 after conv5_3
VGG16 = {
    "features.0": (3, 1, -1),
    "features.4": (6, 2, -2),
    "features.9": (16, 4, -6),
    "features.16": (44, 8, -18),
    "features.23": (100, 16, -42),
    "features.29": (196, 16, -90),
    "features.30": (212, 32, -90),
}
# resnet18: conv7 s2 p3 (7, 2, -3); maxpool3 s2 p1 (11, 4, -5); layer1: 4 convs +8 each -> 43;
#   layer2: 51 (s2, j8), 67, 83, 99; layer3: 115 (j16), 147, 179, 211;
#   layer4: 243 (j32), 307, 371, 435. The 1x1 downsample paths are inside the main path's field.
RESNET18 = {
    "conv1": (7, 2, -3),
    "maxpool": (11, 4, -5),
    "layer1.1.conv2": (43, 4, -21),
    "layer2.0.conv1": (51, 8, -25),
    "layer2.1.relu#2": (99, 8, -49),
    "layer3.1.conv2": (211, 16, -105),
    "layer4.1.relu#2": (435, 32, -217),
}
# resnet50 (v1.5: stride in the 3x3): after maxpool 11 (j4); layer1: 3 bottlenecks, one 3x3 each,
#   +8 -> 35; layer2: 43 (j8) +16*3 -> 91; layer3: 107 (j16) +32*5 -> 267;
#   layer4: 299 (j32) +64*2 -> 427
RESNET50 = {
    "layer1.2.relu#3": (35, 4, None),
    "layer2.0.conv2": (43, 8, None),
    "layer2.3.relu#3": (91, 8, None),
    "layer3.5.relu#3": (267, 16, None),
    "layer4.0.conv2": (299, 32, None),
    "layer4.2.relu#3": (427, 32, -213),
}


@pytest.mark.parametrize(
    ("name", "expected"),
    [("alexnet", ALEXNET), ("vgg16", VGG16), ("resnet18", RESNET18), ("resnet50", RESNET50)],
)
def test_receptive_fields_equal_hand_derivations(name: str, expected: dict) -> None:
    model = load_model(name, untrained=True)
    result = run_model(model, torch.zeros(1, 3, 224, 224), "reference")
    for layer, (size, jump, start) in expected.items():
        rf = find_layer(result, layer).receptive_field
        assert rf.size == (size, size), layer
        assert rf.jump == (jump, jump), layer
        if start is not None:
            assert rf.start == (start, start), layer


class Branches(nn.Module):
    """A dilated path and a strided path meeting in an add: the union of the two fields."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(1, 1, 3, padding=2, dilation=2)  # 5 wide
        self.b = nn.Conv2d(1, 1, (1, 7), padding=(0, 3))  # 1 tall, 7 wide
        self.pool = nn.AvgPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.a(x) + self.b(x))


def test_union_over_branches_dilation_and_pooling() -> None:
    model = LoadedModel("b", Branches().eval(), "catalog", load_model("classic").preprocess, None, False)
    result = run_model(model, torch.zeros(1, 1, 16, 16), "reference")
    assert find_layer(result, "a").receptive_field == ReceptiveField((5, 5), (1, 1), (-2, -2))
    assert find_layer(result, "b").receptive_field == ReceptiveField((1, 7), (1, 1), (0, -3))
    # the add sees both: 5 tall (from a), 7 wide (from b); the 2x2 pool adds 1 and doubles the jump
    assert find_layer(result, "pool").receptive_field == ReceptiveField((6, 8), (2, 2), (-2, -3))


def test_box_and_center_arithmetic() -> None:
    rf = ReceptiveField(size=(11, 11), jump=(4, 4), start=(-5.0, -5.0))
    assert rf.center == (0.0, 0.0)
    assert rf.box(2, 3) == (3.0, 7.0, 14.0, 18.0)
    assert rf.unit_center(2, 3) == (8.0, 12.0)
    assert rf.share_of(224, 224) == pytest.approx((11 / 224) ** 2)


def test_effective_field_is_inside_the_box_and_peaks_at_its_centre() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(*[nn.Conv2d(1, 1, 3, padding=1, bias=False) for _ in range(4)])
    for conv in net:
        nn.init.uniform_(conv.weight, 0.1, 1.0)  # positive, linear: every path adds up
    model = LoadedModel("lin", net.eval(), "catalog", load_model("classic").preprocess, None, False)
    x = torch.rand(1, 1, 32, 32)
    result = run_model(model, x, "reference")
    rf = find_layer(result, "3").receptive_field
    heat = effective_receptive_field(net, x, "3", 0, 16, 16)
    top, left, bottom, right = (int(v) for v in rf.box(16, 16))
    assert (bottom - top, right - left) == (9, 9)
    inside = np.zeros_like(heat, dtype=bool)
    inside[top:bottom, left:right] = True
    assert heat[~inside].max() == 0 and heat[inside].min() > 0
    cy, cx = (int(v) for v in rf.unit_center(16, 16))
    assert heat.argmax() == cy * 32 + cx  # widest (strongest) at the centre
    assert heat[cy, cx] > 3 * heat[top, left]


def test_effective_field_of_a_second_call_is_the_wider_one() -> None:
    class Twice(nn.Module):  # one conv module applied two times: layer keys "conv" and "conv#2"
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(1, 1, 3, padding=1, bias=False)
            nn.init.constant_(self.conv.weight, 0.5)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv(self.conv(x))

    x = torch.rand(1, 1, 16, 16)
    first = effective_receptive_field(Twice(), x, "conv", 0, 8, 8)
    second = effective_receptive_field(Twice(), x, "conv#2", 0, 8, 8)
    assert (first > 0).sum() == 9 and (second > 0).sum() == 25  # 3x3, then 5x5
    with pytest.raises(LayerError, match="did not run 3 times"):
        effective_receptive_field(Twice(), x, "conv#3", 0, 8, 8)
