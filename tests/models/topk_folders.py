"""Generated image folders whose top examples are known, and a model of known edge detectors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from models.images import Preprocess
from models.sources import LoadedModel

SIZE = 32
BAR = 4  # bar width in pixels


def bar_image(kind: str, at: int, brightness: int, size: int = SIZE) -> np.ndarray:
    """A black ``size`` square with a bright bar: ``kind`` "v" (vertical, columns ``at`` ..
    ``at + BAR``) or "h" (horizontal, rows), the whole way across; "blank" is all black."""
    a = np.zeros((size, size, 3), dtype=np.uint8)
    if kind == "v":
        a[:, at : at + BAR] = brightness
    elif kind == "h":
        a[at : at + BAR, :] = brightness
    return a


def bars_folder(
    folder: Path, vertical: int = 5, horizontal: int = 5, blank: int = 4, size: int = SIZE
) -> dict[str, tuple[str, int, int]]:
    """Write ``v*.png`` / ``h*.png`` / ``blank*.png``; name -> (kind, at, brightness). Every
    bar has its own brightness (the i-th of a kind is ``60 + 15 i``) and position, so the true
    top-k of an edge detector is the brightest bars of its orientation, without ties."""
    folder.mkdir(parents=True, exist_ok=True)
    made = {}
    for kind, count in (("v", vertical), ("h", horizontal), ("blank", blank)):
        for i in range(count):
            at = 3 + (5 * i) % (size - BAR - 6)
            brightness = 60 + 15 * i
            name = f"{kind}{i:02d}.png"
            Image.fromarray(bar_image(kind, at, brightness, size)).save(folder / name)
            made[name] = (kind, at, brightness)
    return made


def edge_model(size: int = SIZE) -> LoadedModel:
    """One conv layer ``edges`` with two known detectors on the grey level (each colour channel
    weighted 1/3): channel 0 Sobel x (dark -> light, left to right: a vertical edge), channel 1
    Sobel y (dark -> light, top to bottom: a horizontal edge). Replicate padding: the image
    border is no edge. A bar of brightness b (0..255) gives ``4 b / 255`` on the detector of
    its orientation, and 0 on the other."""
    sobel_x = torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]])
    conv = nn.Conv2d(3, 2, 3, padding=1, padding_mode="replicate", bias=False)
    with torch.no_grad():
        conv.weight[0] = sobel_x / 3
        conv.weight[1] = sobel_x.T / 3
    module = nn.Sequential()
    module.add_module("edges", conv)
    module.add_module("relu", nn.ReLU())
    return LoadedModel(
        name="edges",
        module=module.eval(),
        source="catalog",
        preprocess=Preprocess(
            size=(size, size), resize=None, crop=False, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0)
        ),
        categories=None,
        pretrained=False,
    )


def expected_top(made: dict[str, tuple[str, int, int]], kind: str, k: int) -> list[str]:
    """The names of the ``k`` brightest bars of ``kind``, strongest first."""
    bars = sorted((n for n, (kd, _, _) in made.items() if kd == kind), key=lambda n: -made[n][2])
    return bars[:k]
