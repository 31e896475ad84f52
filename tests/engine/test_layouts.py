"""The patch-matrix layouts of the compiled im2col path, against torch and against their NumPy forms.

Strided convolutions build a wide patch matrix from phase planes; the others a patch matrix
copied from each channel's zero-padded band of input rows. Both must give exactly the matrix the
textbook form gives, and whole convolutions equal to torch's, on the shapes real models have
(stems, strided 3x3 layers, odd padding and dilation, batches).
"""

from __future__ import annotations

import numpy as np
import pytest

from engine import _jit, get_engine
from engine._common import make_spec, zero_padded
from engine.im2col import (
    Im2colEngine,
    patch_matrix,
    phase_planes,
    plane_shape,
    uses_wide_rows,
    wide_patch_matrix,
)
from tests.conftest import assert_conv_close

kernels = _jit.kernels()
needs_numba = pytest.mark.skipif(kernels is None, reason="numba kernels not available")

# (input shape, weight shape, stride, padding, dilation): stems, strided layers, odd cases
STRIDED = [
    ((1, 3, 64, 64), (8, 3, 7, 7), 2, 3, 1),  # resnet's 7x7 stem
    ((1, 3, 45, 45), (8, 3, 3, 3), 2, 1, 1),  # mobilenet's 3x3 stem, odd size
    ((2, 16, 28, 28), (12, 16, 3, 3), 2, 1, 1),  # a strided 3x3 layer, a batch of 2
    ((1, 6, 40, 33), (5, 6, 5, 5), (3, 2), (2, 1), 1),  # unequal strides and padding
    ((1, 4, 50, 50), (3, 4, 3, 3), 2, 2, 2),  # dilated
    ((1, 4, 31, 31), (3, 4, 4, 4), 2, 0, 1),  # even kernel, no padding
]


def _arrays(x_shape, w_shape, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = (rng.standard_normal(w_shape) * 0.3).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype)
    return x, w, b


@pytest.mark.parametrize(("x_shape", "w_shape", "stride", "padding", "dilation"), STRIDED)
def test_wide_patch_matrix_holds_the_patch_matrix_in_its_first_columns(
    x_shape, w_shape, stride, padding, dilation
) -> None:
    """The NumPy forms: cropping each wide output row to W_out gives the textbook patch matrix."""
    x, _, _ = _arrays(x_shape, w_shape)
    spec = make_spec(x.shape, w_shape, None, stride, padding, dilation)
    planes = phase_planes(zero_padded(x, spec), spec)
    _, wq = plane_shape(spec)
    y0, y1 = 1, spec.out_h  # a band that does not start at row 0
    wide = wide_patch_matrix(planes[-1], spec, y0, y1)
    cropped = wide.reshape(wide.shape[0], y1 - y0, wq)[:, :, : spec.out_w]
    expected = patch_matrix(zero_padded(x[-1:], spec), spec, y0, y1)[0, 0]
    np.testing.assert_array_equal(cropped.reshape(expected.shape), expected)


@needs_numba
@pytest.mark.parametrize(("x_shape", "w_shape", "stride", "padding", "dilation"), STRIDED)
def test_compiled_wide_patches_equal_the_numpy_form(x_shape, w_shape, stride, padding, dilation) -> None:
    x, _, _ = _arrays(x_shape, w_shape)
    spec = make_spec(x.shape, w_shape, None, stride, padding, dilation)
    expected_planes = phase_planes(zero_padded(x, spec), spec)
    sh, sw = spec.stride
    hq, wq = plane_shape(spec)
    k = spec.c_in * spec.kh * spec.kw
    for n in range(spec.n):
        planes = np.zeros((spec.c_in, sh * sw, hq * wq), dtype=x.dtype)
        kernels.phase_planes(x, n, planes, sh, sw, spec.pad[0], spec.pad[2], hq, wq, 0, spec.c_in)
        np.testing.assert_array_equal(planes, expected_planes[n])
        cols = np.full((k, spec.out_h * wq), np.nan, dtype=x.dtype)
        kernels.patches_wide(planes, cols, spec.kh, spec.kw, sh, sw, *spec.dilation, wq, 0, spec.out_h, 0, k)
        np.testing.assert_array_equal(cols, wide_patch_matrix(expected_planes[n], spec, 0, spec.out_h))


@needs_numba
@pytest.mark.parametrize(
    ("x_shape", "w_shape", "stride", "padding", "dilation"),
    [
        *STRIDED,
        ((1, 16, 7, 7), (4, 16, 3, 3), 1, 1, 1),
        ((1, 8, 9, 12), (4, 8, 3, 2), (1, 2), (0, 3), (2, 1)),
        ((1, 4, 40, 40), (3, 4, 3, 3), 1, 1, 1),  # long rows
        ((1, 3, 5, 6), (2, 3, 3, 3), 1, 4, 1),  # padding wider than the input
        ((1, 3, 12, 12), (2, 3, 2, 2), 3, 0, 1),
    ],
)  # input columns never read
def test_compiled_patches_equal_the_numpy_form(x_shape, w_shape, stride, padding, dilation) -> None:
    """Every row range and band: the rows asked for are the textbook patch matrix's, the others
    are not written."""
    x, _, _ = _arrays(x_shape, w_shape)
    spec = make_spec(x.shape, w_shape, None, stride, padding, dilation)
    k = spec.c_in * spec.kh * spec.kw
    for n in range(spec.n):
        for y0, y1 in [(0, spec.out_h), (1, spec.out_h), (spec.out_h - 1, spec.out_h)]:
            expected = patch_matrix(zero_padded(x[n : n + 1], spec), spec, y0, y1)[0, 0]
            for r0, r1 in [(0, k), (1, k - 1)]:
                cols = np.full((k, (y1 - y0) * spec.out_w), np.nan, dtype=x.dtype)
                kernels.patches(
                    x,
                    cols,
                    n,
                    0,
                    spec.kh,
                    spec.kw,
                    *spec.stride,
                    *spec.dilation,
                    spec.pad[0],
                    spec.pad[2],
                    y0,
                    y1,
                    spec.out_w,
                    r0,
                    r1,
                )
                np.testing.assert_array_equal(cols[r0:r1], expected[r0:r1])
                assert np.isnan(cols[:r0]).all() and np.isnan(cols[r1:]).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("x_shape", "w_shape", "stride", "padding", "dilation"), STRIDED)
def test_strided_convolutions_match_torch(x_shape, w_shape, stride, padding, dilation, dtype) -> None:
    x, w, b = _arrays(x_shape, w_shape, dtype, seed=3)
    expected = get_engine("reference").conv2d(x, w, b, stride, padding, dilation)
    for engine in (get_engine("im2col"), Im2colEngine(jit=False), get_engine("auto")):
        result = engine.run(x, w, b, stride, padding, dilation)
        assert_conv_close(result.output, expected)


@needs_numba
def test_the_wide_layout_says_so_where_it_runs() -> None:
    x, w, b = _arrays((1, 3, 64, 64), (8, 3, 7, 7))
    spec = make_spec(x.shape, w.shape, b.shape, 2, 3)
    assert uses_wide_rows(spec)
    assert get_engine("im2col").run(x, w, b, 2, 3).algorithm == "im2col+gemm (phase planes, wide rows)"
    assert Im2colEngine(jit=False).run(x, w, b, 2, 3).algorithm == "im2col+gemm"
    # stride 1, 1x1 kernels, groups and 7x7 outputs of a 3x3 (9-wide rows) keep the per-row matrix
    for args in [
        ((1, 4, 9, 9), (4, 4, 3, 3), 1, 1),
        ((1, 4, 9, 9), (4, 4, 1, 1), 2, 0),
        ((1, 4, 14, 14), (4, 4, 3, 3), 2, 1),
    ]:
        assert not uses_wide_rows(make_spec(args[0], args[1], None, args[2], args[3]))
    assert not uses_wide_rows(make_spec((1, 4, 9, 9), (4, 2, 3, 3), None, 2, 1, 1, 2))


@needs_numba
@pytest.mark.parametrize("with_bias", [True, False])
def test_compiled_crop_of_the_wide_result_is_the_numpy_crop(with_bias) -> None:
    """crop_rows: rows y0 .. y1 of channels o0 .. o1 cropped to W_out, bias added; nothing else
    of the output is written."""
    rng = np.random.default_rng(5)
    o, rows, wq, ow, y0 = 6, 4, 9, 7, 3
    wide = rng.standard_normal((o, rows * wq)).astype(np.float32)
    b = rng.standard_normal(o).astype(np.float32) if with_bias else np.empty(0, np.float32)
    out = np.full((2, o, 8, ow), np.nan, dtype=np.float32)
    kernels.crop_rows(wide, b, out, 1, y0, y0 + rows, wq, 1, 5)
    expected = wide.reshape(o, rows, wq)[1:5, :, :ow] + (b[1:5, None, None] if with_bias else 0)
    np.testing.assert_array_equal(out[1, 1:5, y0 : y0 + rows], expected)
    assert np.isnan(out[0]).all() and np.isnan(out[1, [0, 5]]).all()
    assert np.isnan(out[1, :, :y0]).all() and np.isnan(out[1, :, y0 + rows :]).all()


@needs_numba
@pytest.mark.parametrize("with_bias", [True, False])
def test_wide_rows_in_several_bands_and_pieces_match_torch(monkeypatch, with_bias) -> None:
    """A cache budget of a few rows: many bands, each GEMM piece cropping its own channels."""
    from engine import _common, _parallel

    monkeypatch.setattr(_common, "CACHE_BYTES", 4096)
    monkeypatch.setattr(_parallel, "WORKERS", 3)
    monkeypatch.setattr(_parallel, "GEMM_MACS", 1)
    x, w, b = _arrays((2, 3, 64, 64), (10, 3, 7, 7), seed=7)
    b = b if with_bias else None
    expected = get_engine("reference").conv2d(x, w, b, 2, 3)
    result = Im2colEngine().run(x, w, b, 2, 3)
    assert result.algorithm == "im2col+gemm (phase planes, wide rows)"
    assert_conv_close(result.output, expected)
