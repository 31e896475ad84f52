"""``classic``: a hand-made CNN whose filters are the image-processing kernels people know.

No training, no download. The first layer applies Sobel, Laplacian, blur, sharpen and identity
kernels to the photo (each kernel weighted per colour channel by luminance, so a filter is
visibly "one kernel per input channel, summed"); the second layer combines those maps into
vertical, horizontal and all edges. It is small and fast: the first network a newcomer should
open, and the test suite's workhorse.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch
from torch import nn

LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R BT.601 weights per channel

_SOBEL_X = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=np.float32)
_GAUSS = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], dtype=np.float32) / 16
KERNELS: OrderedDict[str, np.ndarray] = OrderedDict(
    [
        ("identity", np.array([[0, 0, 0], [0, 1, 0], [0, 0, 0]], dtype=np.float32)),
        ("Gaussian blur", _GAUSS),
        ("sharpen", np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]], dtype=np.float32)),
        ("Sobel x (dark→light)", _SOBEL_X),
        ("Sobel x (light→dark)", -_SOBEL_X),
        ("Sobel y (dark→light)", _SOBEL_X.T.copy()),
        ("Sobel y (light→dark)", -_SOBEL_X.T),
        ("Laplacian (spots)", np.array([[0, -1, 0], [-1, 4, -1], [0, -1, 0]], dtype=np.float32)),
        ("emboss", np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]], dtype=np.float32)),
    ]
)
COMBINED = ["vertical edges", "horizontal edges", "all edges", "smooth brightness"]


def _first_layer_weight() -> np.ndarray:
    """``(9, 3, 3, 3)``: each filter = its kernel in every colour channel, times the luma weight."""
    kernels = np.stack(list(KERNELS.values()))  # (9, 3, 3)
    return kernels[:, None, :, :] * LUMA[None, :, None, None]


def _second_layer_weight() -> np.ndarray:
    """``(4, 9, 3, 3)``: sums of first-layer maps, smoothed by a small blur so edges connect."""
    names = list(KERNELS)
    w = np.zeros((len(COMBINED), len(names), 3, 3), dtype=np.float32)
    mix = {
        "vertical edges": ["Sobel x (dark→light)", "Sobel x (light→dark)"],
        "horizontal edges": ["Sobel y (dark→light)", "Sobel y (light→dark)"],
        "all edges": [
            "Sobel x (dark→light)",
            "Sobel x (light→dark)",
            "Sobel y (dark→light)",
            "Sobel y (light→dark)",
        ],
        "smooth brightness": ["Gaussian blur"],
    }
    for o, name in enumerate(COMBINED):
        for source in mix[name]:
            w[o, names.index(source)] = _GAUSS
    return w


def classic() -> nn.Module:
    """The hand-made CNN, in eval mode; replicate padding keeps borders free of fake edges."""
    model = nn.Sequential(
        OrderedDict(
            [
                ("edges", nn.Conv2d(3, len(KERNELS), 3, padding=1, padding_mode="replicate")),
                ("relu1", nn.ReLU()),
                ("pool1", nn.MaxPool2d(2)),
                ("combine", nn.Conv2d(len(KERNELS), len(COMBINED), 3, padding=1)),
                ("relu2", nn.ReLU()),
                ("pool2", nn.MaxPool2d(2)),
            ]
        )
    )
    with torch.no_grad():
        model.edges.weight.copy_(torch.from_numpy(_first_layer_weight()))
        model.edges.bias.zero_()
        model.combine.weight.copy_(torch.from_numpy(_second_layer_weight()))
        model.combine.bias.zero_()
    return model.eval()


CHANNEL_NAMES = {
    "edges": list(KERNELS),
    "relu1": list(KERNELS),
    "pool1": list(KERNELS),
    "combine": COMBINED,
    "relu2": COMBINED,
    "pool2": COMBINED,
}
