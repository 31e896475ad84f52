"""Every engine against torch.nn.functional.conv2d, over random shapes and every argument."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import available_engines, get_engine
from tests.conftest import assert_conv_close

OURS = [name for name in available_engines() if name != "reference"]


@st.composite
def conv_cases(draw: st.DrawFn) -> dict:
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    depthwise = draw(st.booleans()) and groups > 1
    c_in = groups if depthwise else groups * draw(st.integers(1, 3))
    c_out = groups * draw(st.integers(1, 3))
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    mode = draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"]))
    same = draw(st.integers(0, 4)) == 0
    stride = (1, 1) if same else (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    h, w = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    if same:
        padding: object = "same"
    elif draw(st.booleans()):
        padding = draw(st.sampled_from([0, "valid"]))
    else:
        padding = (draw(st.integers(0, 3)), draw(st.integers(0, 3)))
    # keep only calls torch accepts: reflect pads < size, kernel fits the padded input
    pad_h = dilation[0] * (kh - 1) if same else (0 if padding in (0, "valid") else padding[0] * 2)
    pad_w = dilation[1] * (kw - 1) if same else (0 if padding in (0, "valid") else padding[1] * 2)
    if mode == "reflect":
        h, w = max(h, pad_h // 2 + pad_h % 2 + 1), max(w, pad_w // 2 + pad_w % 2 + 1)
    h = max(h, dilation[0] * (kh - 1) + 1 - pad_h)
    w = max(w, dilation[1] * (kw - 1) + 1 - pad_w)
    if mode == "circular":
        h, w = max(h, pad_h), max(w, pad_w)
    return dict(
        n=draw(st.integers(1, 2)), c_in=c_in, c_out=c_out, h=h, w=w, k=(kh, kw),
        stride=stride, padding=padding, dilation=dilation, groups=groups, mode=mode,
        bias=draw(st.booleans()), dtype=draw(st.sampled_from([np.float32, np.float64])),
        seed=draw(st.integers(0, 2**16)),
    )


def _arrays(case: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    rng = np.random.default_rng(case["seed"])
    x = rng.standard_normal((case["n"], case["c_in"], case["h"], case["w"])).astype(case["dtype"])
    w = rng.standard_normal((case["c_out"], case["c_in"] // case["groups"], *case["k"]))
    b = rng.standard_normal(case["c_out"]).astype(case["dtype"]) if case["bias"] else None
    return x * 2, w.astype(case["dtype"]) * 0.5, b


@pytest.mark.parametrize("name", OURS)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=conv_cases())
def test_engine_matches_torch(name: str, case: dict) -> None:
    x, w, b = _arrays(case)
    args = (x, w, b, case["stride"], case["padding"], case["dilation"], case["groups"], case["mode"])
    expected = get_engine("reference").conv2d(*args)
    result = get_engine(name).run(*args)
    assert_conv_close(result.output, expected)
    assert result.algorithm and get_engine(name).last_algorithm == result.algorithm


@pytest.mark.parametrize("name", available_engines())
def test_batch_and_non_square_float32(name: str) -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 4, 17, 23), dtype=np.float32)
    w = rng.standard_normal((6, 2, 3, 5), dtype=np.float32)
    expected = get_engine("reference").conv2d(x, w, None, (2, 1), (1, 2), 1, 2)
    out = get_engine(name).conv2d(x, w, None, (2, 1), (1, 2), 1, 2)
    assert out.shape == (3, 6, 9, 23)
    assert_conv_close(out, expected)
