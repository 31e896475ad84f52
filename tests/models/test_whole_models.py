"""Whole torchvision models with every convolution computed by each of our engines."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision

from engine import available_engines
from models.engine_mode import EngineConvMode
from tests.conftest import conv_tolerance

CASES = {"resnet18": 20, "mobilenet_v2": 52}  # convolutions each model executes


@pytest.fixture(scope="module", params=list(CASES))
def model_case(request: pytest.FixtureRequest) -> tuple[str, torch.nn.Module, torch.Tensor, np.ndarray]:
    torch.manual_seed(0)
    model = getattr(torchvision.models, request.param)(weights=None).eval()
    # random-init logits are tiny and flat; the last feature maps carry the whole computation
    if request.param == "resnet18":
        body = torch.nn.Sequential(*list(model.children())[:-1])
    else:
        body = model.features
    x = torch.randn(1, 3, 112, 112)
    with torch.no_grad():
        expected = body(x).numpy()
    return request.param, body, x, expected


@pytest.mark.slow
@pytest.mark.parametrize("engine", [e for e in available_engines() if e != "reference"])
def test_model_on_engine_matches_torch(engine: str, model_case) -> None:
    name, body, x, expected = model_case
    with torch.no_grad(), EngineConvMode(engine) as mode:
        out = body(x).numpy()
    assert len(mode.calls) == CASES[name]
    assert mode.passed_through == 0
    err = np.abs(out - expected).max()
    assert err <= conv_tolerance(expected), f"{name} on {engine}: max abs error {err:.3g}"
