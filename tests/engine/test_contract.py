"""Every engine against torch.nn.functional.conv2d, over random shapes and every argument.

"Every engine" is each registered engine (compiled kernels where numba is there) and the NumPy
form of each algorithm that has compiled kernels (``jit=False``): both are the algorithm.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import Engine, available_engines, get_engine
from engine.auto import AutoEngine
from engine.direct import DirectEngine
from engine.im2col import Im2colEngine
from engine.winograd import WinogradEngine
from tests.conftest import assert_conv_close

OURS = [name for name in available_engines() if name != "reference"]
NUMPY_FORMS = {"direct": DirectEngine, "im2col": Im2colEngine, "winograd": WinogradEngine, "auto": AutoEngine}
_numpy_instances: dict[str, Engine] = {}
_keys = iter(range(10**9))


def engine_for(name: str) -> Engine:
    """A registered engine, or ``"<name>:numpy"``: that algorithm's NumPy form (no numba)."""
    if name.endswith(":numpy"):
        base = name.split(":")[0]
        if base not in _numpy_instances:
            _numpy_instances[base] = NUMPY_FORMS[base](jit=False)
        return _numpy_instances[base]
    return get_engine(name)


ALL_FORMS = OURS + [f"{name}:numpy" for name in NUMPY_FORMS]


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
        n=draw(st.integers(1, 2)),
        c_in=c_in,
        c_out=c_out,
        h=h,
        w=w,
        k=(kh, kw),
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        mode=mode,
        bias=draw(st.booleans()),
        dtype=draw(st.sampled_from([np.float32, np.float64])),
        seed=draw(st.integers(0, 2**16)),
    )


def _arrays(case: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    rng = np.random.default_rng(case["seed"])
    x = rng.standard_normal((case["n"], case["c_in"], case["h"], case["w"])).astype(case["dtype"])
    w = rng.standard_normal((case["c_out"], case["c_in"] // case["groups"], *case["k"]))
    b = rng.standard_normal(case["c_out"]).astype(case["dtype"]) if case["bias"] else None
    return x * 2, w.astype(case["dtype"]) * 0.5, b


@pytest.mark.parametrize("name", ALL_FORMS)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=conv_cases())
def test_engine_matches_torch(name: str, case: dict) -> None:
    x, w, b = _arrays(case)
    args = (x, w, b, case["stride"], case["padding"], case["dilation"], case["groups"], case["mode"])
    expected = get_engine("reference").conv2d(*args)
    engine = engine_for(name)
    result = engine.run(*args)
    assert_conv_close(result.output, expected)
    assert result.algorithm and engine.last_algorithm == result.algorithm


@pytest.mark.parametrize("name", ALL_FORMS)
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=conv_cases())
def test_weight_key_gives_the_uncached_result(name: str, case: dict) -> None:
    """With a weight key, the first call (a miss) and the second (a hit, where the engine caches)
    both equal the call without a key, and torch; new weights under a new key give new results."""
    x, w, b = _arrays(case)
    args = (case["stride"], case["padding"], case["dilation"], case["groups"], case["mode"])
    engine = engine_for(name)
    plain = engine.run(x, w, b, *args)
    key = ("case", next(_keys))
    first = engine.run(x, w, b, *args, weight_key=key)
    second = engine.run(x, w, b, *args, weight_key=key)
    np.testing.assert_array_equal(first.output, plain.output)
    np.testing.assert_array_equal(second.output, plain.output)
    assert first.algorithm == second.algorithm == plain.algorithm
    w2 = w[::-1].copy() + 0.25  # other weights, other key: never the cached transform
    result = engine.run(x, w2, b, *args, weight_key=("case", next(_keys)))
    assert_conv_close(result.output, get_engine("reference").conv2d(x, w2, b, *args))


@pytest.mark.parametrize("name", [*available_engines(), *ALL_FORMS[len(OURS) :]])
def test_batch_and_non_square_float32(name: str) -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 4, 17, 23), dtype=np.float32)
    w = rng.standard_normal((6, 2, 3, 5), dtype=np.float32)
    expected = get_engine("reference").conv2d(x, w, None, (2, 1), (1, 2), 1, 2)
    out = engine_for(name).conv2d(x, w, None, (2, 1), (1, 2), 1, 2)
    assert out.shape == (3, 6, 9, 23)
    assert_conv_close(out, expected)
