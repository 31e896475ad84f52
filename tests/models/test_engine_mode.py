"""EngineConvMode: every 2-D convolution a model executes is computed by the engine."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.engine_mode import EngineConvMode


class _Functional(nn.Module):
    """A conv via F.conv2d, a Conv2d subclass, and a transposed conv that must pass through."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(4, 3, 3, 3) * 0.3)
        self.sub = type("MyConv", (nn.Conv2d,), {})(4, 6, 3, stride=2, padding=1, groups=2)
        self.up = nn.ConvTranspose2d(6, 2, 2, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(F.conv2d(x, self.w, padding=1))
        return self.up(self.sub(x))


def _forward(model: nn.Module, x: torch.Tensor, engine: str) -> tuple[torch.Tensor, EngineConvMode]:
    with torch.no_grad(), EngineConvMode(engine) as mode:
        return model(x), mode


def test_eager_script_and_export_all_route_to_the_engine() -> None:
    torch.manual_seed(0)
    model = _Functional().eval()
    x = torch.randn(1, 3, 10, 12)
    with torch.no_grad():
        expected = model(x)
    for program in (model, torch.jit.script(model), torch.export.export(model, (x,)).module()):
        out, mode = _forward(program, x, "direct")
        assert len(mode.calls) == 2  # F.conv2d and the subclass; the transposed conv is torch's
        assert mode.passed_through == 1
        assert [c.weight_shape for c in mode.calls] == [(4, 3, 3, 3), (6, 2, 3, 3)]
        assert mode.calls[1].stride == (2, 2) and mode.calls[1].groups == 2
        assert all(c.algorithm for c in mode.calls)
        torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
