"""Invalid arguments name their values; every engine says which algorithm really ran."""

from __future__ import annotations

import numpy as np
import pytest

from engine import _jit, available_engines, get_engine
from engine.direct import DirectEngine
from tests.conftest import assert_conv_close

X = np.zeros((1, 4, 8, 8), dtype=np.float32)
W = np.zeros((6, 2, 3, 3), dtype=np.float32)


@pytest.mark.parametrize("name", available_engines())
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(x=X, weight=W, groups=3), r"input channels \(4\) must be divisible by groups \(3\)"),
        (dict(x=X, weight=W, groups=1), r"input has 4 channels but weight \(6, 2, 3, 3\)"),
        (dict(x=X, weight=np.zeros((2, 4, 11, 3), np.float32)), r"kernel \(11, 3\).*padded input \(8, 8\)"),
        (dict(x=X[0], weight=W, groups=2), r"input must be 4-D .* got shape \(4, 8, 8\)"),
        (dict(x=X, weight=W, groups=2, stride=0), r"stride must be positive, got 0"),
        (dict(x=X, weight=W, groups=2, stride=(1, -2)), r"stride must be positive, got \(1, -2\)"),
        (dict(x=X, weight=W, groups=2, padding=-1), r"padding .*-1"),
        (dict(x=X, weight=W, groups=2, bias=np.zeros(5, np.float32)), r"bias must have shape \(6,\)"),
        (dict(x=X, weight=W, groups=2, padding_mode="mirror"), r"padding_mode .* 'mirror'"),
        (dict(x=X, weight=W, groups=2, padding="same", stride=2), r"same"),
    ],
)
def test_invalid_arguments_raise_value_error_naming_values(name: str, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        get_engine(name).conv2d(**kwargs)


def test_unknown_engine_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown engine 'cudnn'; available: auto, direct"):
        get_engine("cudnn")


def _case(shape: tuple, kernel: tuple, seed: int = 0, groups: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.uniform(-10, 10, shape).astype(np.float32)
    w = (rng.standard_normal((kernel[0], shape[1] // groups, *kernel[1:])) * 0.2).astype(np.float32)
    return x, w


@pytest.mark.parametrize(("size", "tile"), [(5, 2), (30, 4)])
def test_winograd_tile_choice_and_accuracy(size: int, tile: int) -> None:
    x, w = _case((2, 16, size, size + 3), (8, 3, 3))
    result = get_engine("winograd").run(x, w, None, 1, 1)
    assert result.algorithm == f"winograd F({tile}x{tile},3x3)"
    assert_conv_close(result.output, get_engine("reference").conv2d(x, w, None, 1, 1))


@pytest.mark.parametrize(
    ("kernel", "stride", "dilation"), [((8, 5, 5), 1, 1), ((8, 3, 3), 2, 1), ((8, 3, 3), 1, 2)]
)
def test_winograd_names_the_fallback_for_other_shapes(kernel: tuple, stride: int, dilation: int) -> None:
    x, w = _case((1, 4, 12, 12), kernel)
    result = get_engine("winograd").run(x, w, None, stride, 2, dilation)
    assert result.algorithm.startswith("im2col+gemm (winograd needs a 3x3 kernel, stride 1, dilation 1)")
    assert_conv_close(result.output, get_engine("reference").conv2d(x, w, None, stride, 2, dilation))


def test_winograd_with_a_fixed_tile() -> None:
    from engine.winograd import WinogradEngine

    x, w = _case((1, 6, 11, 9), (5, 3, 3))
    for tile in (2, 4):
        result = WinogradEngine(tile=tile).run(x, w, None, 1, 1)
        assert result.algorithm == f"winograd F({tile}x{tile},3x3)"
        assert_conv_close(result.output, get_engine("reference").conv2d(x, w, None, 1, 1))
    with pytest.raises(ValueError, match="tiles here are 2 or 4, got 3"):
        WinogradEngine(tile=3)


def test_fft_says_when_stride_is_done_by_subsampling() -> None:
    x, w = _case((1, 3, 15, 15), (4, 5, 5))
    assert get_engine("fft").run(x, w, None, 1, 2).algorithm == "fft"
    assert "subsampled" in get_engine("fft").run(x, w, None, 2, 2).algorithm


def test_im2col_pointwise_skips_the_patch_matrix() -> None:
    x, w = _case((1, 8, 10, 10), (16, 1, 1))
    result = get_engine("im2col").run(x, w)
    assert "1x1" in result.algorithm
    assert_conv_close(result.output, get_engine("reference").conv2d(x, w))


def test_auto_measures_once_per_shape_and_caches_the_winner() -> None:
    auto = get_engine("auto")
    auto.clear_cache()
    x, w = _case((1, 8, 20, 20), (8, 3, 3))
    first = auto.run(x, w, None, 1, 1)
    info = auto.cache_info()
    assert len(info) == 1
    ((chosen, timings),) = info.values()
    # 8 input channels: the compiled dense tap loop is timed too (where numba is there)
    dense = {"direct"} if _jit.kernels() is not None else set()
    assert set(timings) == {"im2col", "winograd F(2x2)", "winograd F(4x4)"} | dense
    assert chosen == min(timings, key=timings.get)
    expected = {
        "im2col": "auto → im2col+gemm",
        "winograd F(2x2)": "auto → winograd F(2x2,3x3)",
        "winograd F(4x4)": "auto → winograd F(4x4,3x3)",
        "direct": "auto → direct",
    }[chosen]
    assert first.algorithm == expected
    second = auto.run(x * 2, w, None, 1, 1)
    assert auto.cache_info() == info  # no new measurement
    assert first.algorithm == second.algorithm and first.algorithm.startswith("auto → ")
    assert_conv_close(second.output, get_engine("reference").conv2d(x * 2, w, None, 1, 1))


def test_auto_takes_the_depthwise_fast_path_without_measuring() -> None:
    auto = get_engine("auto")
    auto.clear_cache()
    x, w = _case((1, 32, 14, 14), (32, 3, 3), groups=32)
    result = auto.run(x, w, None, 1, 1, 1, 32)
    assert result.algorithm == "auto → direct"
    ((chosen, timings),) = auto.cache_info().values()
    assert chosen == "direct" and list(timings) == ["direct"]


@pytest.mark.parametrize(
    ("stride", "padding", "dilation", "groups", "mode"),
    [(1, 1, 1, 1, "zeros"), (2, 2, 1, 2, "reflect"), (1, 2, 2, 1, "circular"), (3, 1, 1, 4, "replicate")],
)
def test_direct_explain_adds_up_to_the_output(stride, padding, dilation, groups, mode) -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 4, 9, 10)).astype(np.float64)
    w = rng.standard_normal((8, 4 // groups, 3, 3))
    b = rng.standard_normal(8)
    out = get_engine("reference").conv2d(x, w, b, stride, padding, dilation, groups, mode)
    engine = DirectEngine()
    for o, y, xx in [(0, 0, 0), (7, out.shape[2] - 1, out.shape[3] - 1), (5, 1, 2)]:
        t = engine.explain(x, w, b, stride, padding, dilation, groups, mode, out_channel=o, y=y, x_pos=xx)
        np.testing.assert_allclose(t.products, t.patch * t.kernel)
        np.testing.assert_allclose(t.channel_sums, t.products.sum(axis=(1, 2)))
        assert t.value == pytest.approx(t.channel_sums.sum() + t.bias)
        assert t.value == pytest.approx(out[0, o, y, xx])
        assert list(t.input_channels) == list(
            range(o // (8 // groups) * (4 // groups), (o // (8 // groups) + 1) * (4 // groups))
        )
        # padding cells are exactly the taps outside the image
        outside = ((t.rows < 0) | (t.rows >= 9))[:, None] | ((t.cols < 0) | (t.cols >= 10))[None, :]
        np.testing.assert_array_equal(t.in_padding, outside)
        if mode == "zeros":
            assert np.all(t.patch[:, t.in_padding] == 0)


def test_fft_kernel_cache_follows_weights_changed_in_place() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 4, 9, 9), dtype=np.float32)
    w = rng.standard_normal((2, 4, 3, 3), dtype=np.float32)
    fft = get_engine("fft")
    first = fft.conv2d(x, w)
    w[1, 2, 0, 0] += 1.0  # same buffer, new content: a cached spectrum must not be reused
    np.testing.assert_allclose(fft.conv2d(x, w), get_engine("direct").conv2d(x, w), atol=1e-4)
    assert not np.allclose(first, fft.conv2d(x, w))


@pytest.mark.parametrize("m", [2, 4])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_winograd_filter_transform_compiled_equals_numpy(m: int, dtype: type) -> None:
    from engine import make_spec
    from engine.winograd import filter_transform

    w = np.random.default_rng(m).standard_normal((12, 5, 3, 3)).astype(dtype)
    spec = make_spec((1, 10, 9, 9), w.shape, None, 1, 1, 1, 2, "zeros", dtype)
    plain = filter_transform(w, spec, m, use_jit=False)
    compiled = filter_transform(w, spec, m, use_jit=True)
    assert compiled.shape == plain.shape == ((m + 2) ** 2, 2, 6, 5) and compiled.dtype == dtype
    np.testing.assert_allclose(compiled, plain, rtol=1e-6 if dtype == np.float32 else 1e-12, atol=1e-7)


def test_a_cached_spec_never_skips_validation() -> None:
    """make_spec remembers valid calls by their arguments; arguments equal to a valid call's
    under == (True == 1, [1, 1] == (1, 1) as a list) are still validated."""
    from engine._common import make_spec

    first = make_spec((1, 4, 8, 8), (6, 4, 3, 3), None, 1, 1)
    assert make_spec((1, 4, 8, 8), (6, 4, 3, 3), None, 1, 1) is first
    with pytest.raises(ValueError, match="stride must be an int or a pair of ints"):
        make_spec((1, 4, 8, 8), (6, 4, 3, 3), None, True, 1)
    with pytest.raises(ValueError, match="stride must be an int or a pair of ints"):
        make_spec((1, 4, 8, 8), (6, 4, 3, 3), None, (1, True), 1)
    assert make_spec((1, 4, 8, 8), (6, 4, 3, 3), None, [1, 1], 1) == first
    with pytest.raises(ValueError, match="input has 4 channels"):
        make_spec((1, 4, 8, 8), (6, 2, 3, 3), None, 1, 1)
