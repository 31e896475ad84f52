"""The image that feature visualization optimises, and what is done to it each step (Lucid /
Lucent's parameterisation and transformation robustness; see :mod:`models.featvis`): a batch
of images parameterised by a 1/f-scaled spectrum in a decorrelated colour basis, and one random
jitter, scale and rotation per image per step."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# Lucent's colour decorrelation: the square root of ImageNet's colour covariance (its SVD), by
# columns, scaled so its largest column has norm 1
_COLOR_SQRT = np.array([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], dtype=np.float32)
COLOR_DECORRELATION = _COLOR_SQRT / np.max(np.linalg.norm(_COLOR_SQRT, axis=0))
_SPECTRUM_SD = 0.01  # initial spread of the spectrum (Lucent)
_MAGIC = 4.0  # Lucent divides the inverse FFT by this before the sigmoid
JITTER = (8, 4)  # pixels: Lucent jitters twice, 8 then 4 (here one shift of their sum)
SCALES = tuple(1 + (i - 5) / 50 for i in range(11))  # 0.90 .. 1.10
ANGLES = tuple(range(-10, 11)) + (0,) * 5  # degrees, upright more often


class FourierImage(nn.Module):
    """A batch of images ``(N, C, H, W)`` in [0, 1] parameterised by a 1/f-scaled spectrum.

    ``spectrum``: ``(N, C, H, W//2 + 1, 2)`` real and imaginary parts, the only parameter.
    3 channels are colour-decorrelated; 1 channel (grey) is not.
    """

    def __init__(
        self,
        channels: int,
        size: tuple[int, int],
        generators: list[torch.Generator],
        decay_power: float = 1.0,
    ) -> None:
        super().__init__()
        h, w = size
        fy = np.fft.fftfreq(h)[:, None]
        fx = np.fft.rfftfreq(w)[None, :]
        freqs = np.sqrt(fx * fx + fy * fy)
        scale = 1.0 / np.maximum(freqs, 1.0 / max(h, w)) ** decay_power
        self.register_buffer("scale", torch.from_numpy(scale.astype(np.float32))[None, None, ..., None])
        self.spectrum = nn.Parameter(
            torch.stack([torch.randn(channels, *freqs.shape, 2, generator=g) for g in generators])
            * _SPECTRUM_SD
        )
        self.size = (h, w)
        self.register_buffer("color", torch.from_numpy(COLOR_DECORRELATION.T.copy()))

    def forward(self) -> torch.Tensor:
        spectrum = torch.view_as_complex((self.scale * self.spectrum).contiguous())
        image = torch.fft.irfftn(spectrum, s=self.size, norm="ortho") / _MAGIC
        if image.shape[1] == 3:  # decorrelated -> RGB
            image = (image.permute(0, 2, 3, 1) @ self.color).permute(0, 3, 1, 2)
        return torch.sigmoid(image)


def random_transform(
    images: torch.Tensor,
    generators: list[torch.Generator],
    jitter: tuple[int, ...] = JITTER,
    center: tuple[float, float] | None = None,
) -> torch.Tensor:
    """Each image jittered, scaled and rotated at random (one bilinear resampling, same size,
    grey beyond the border): Lucent's standard transforms at a constant size. Image ``i`` draws
    from ``generators[i]``; scale and rotation turn about ``center`` ``(y, x)`` in pixels
    (default: the image's centre)."""
    _, _, h, w = images.shape

    def pick(options: Sequence[float]) -> torch.Tensor:
        chosen = torch.cat([torch.randint(len(options), (1,), generator=g) for g in generators])
        return torch.tensor(options, dtype=torch.float32)[chosen]

    shift = torch.stack(
        [sum(torch.randint(-j, j + 1, (2,), generator=g) for j in jitter) for g in generators]
    ).float()  # (N, (y, x)) pixels
    scale = pick(SCALES)
    angle = pick([float(a) for a in ANGLES]) * (math.pi / 180)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    # in pixels (x, y), output p reads input q = A (p - c) + c + shift; affine_grid wants it in
    # coordinates normalised to [-1, 1] per axis: u = p / (w/2, h/2) - 1
    cy, cx = center if center is not None else (h / 2, w / 2)
    a = torch.stack([torch.stack([cos, -sin], 1), torch.stack([sin, cos], 1)], 1)  # (N, 2, 2)
    half = torch.tensor([w / 2, h / 2])
    c = torch.tensor([cx, cy], dtype=torch.float32)
    linear = a * half[None, None, :] / half[None, :, None]  # D^-1 A D
    moved = (torch.einsum("nij,j->ni", a, half - c) + c + shift.flip(1)) / half - 1
    theta = torch.cat([linear, moved[:, :, None]], 2)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images - 0.5, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + 0.5
