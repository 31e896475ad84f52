"""Temporaries whose size grows with the kernel (im2col's patch matrix, FFT's kernel spectra)
stay within the engines' work budget: the work is done in bands, and the result is unchanged."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from engine import _common, get_engine
from engine.fft import FFTEngine
from engine.im2col import Im2colEngine
from engine.winograd import WinogradEngine
from tests.conftest import assert_conv_close

MB = 2**20


def _warm(engine) -> None:
    """One small call first: loading compiled kernels allocates Python objects of its own."""
    rng = np.random.default_rng(9)
    for k in (1, 3, 5):
        x = rng.standard_normal((1, 2, 12, 12), dtype=np.float32)
        engine.conv2d(x, rng.standard_normal((2, 2, k, k), dtype=np.float32), None, 1, k // 2)


def _peak_bytes(fn) -> tuple[object, int]:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        result = fn()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _huge_kernel_case() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A 101x101 kernel, 'same' padding, on 2 x 110 x 110: an unbanded patch matrix of 2 * 101^2
    rows by 110^2 columns is 988 MB."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 2, 110, 110), dtype=np.float32)
    w = rng.standard_normal((3, 2, 101, 101), dtype=np.float32) * 0.01
    b = rng.standard_normal(3, dtype=np.float32)
    return x, w, b


@pytest.mark.slow
@pytest.mark.parametrize("engine", [Im2colEngine(), Im2colEngine(jit=False)], ids=["jit", "numpy"])
def test_im2col_with_a_101x101_kernel_matches_torch_within_the_default_budget(engine) -> None:
    x, w, b = _huge_kernel_case()
    _warm(engine)
    out, peak = _peak_bytes(lambda: engine.conv2d(x, w, b, 1, 50))
    assert_conv_close(out, get_engine("reference").conv2d(x, w, b, 1, 50))
    unbanded = 2 * 101 * 101 * 110 * 110 * 4
    assert unbanded > 900 * MB
    # the patch matrix of one band, the padded input (NumPy form) and the output
    assert peak <= _common.WORK_BYTES + 2 * x.nbytes + out.nbytes + MB, f"peak {peak / MB:.0f} MB"


def _bounded(engine, x, w, b, padding, budget, monkeypatch) -> None:
    monkeypatch.setattr(_common, "WORK_BYTES", budget)
    expected = get_engine("reference").conv2d(x, w, b, 1, padding)
    _warm(engine)
    out, peak = _peak_bytes(lambda: engine.conv2d(x, w, b, 1, padding))
    assert_conv_close(out, expected)
    # within the budget, plus what is proportional to the data: the input's padded copy and
    # spectrum, the output (a block of it in transformed form), the weights' transforms
    data = 4 * x.nbytes + 3 * out.nbytes + 2 * w.nbytes * 36 // 9
    assert peak <= budget + data + MB // 2, f"peak {peak / MB:.1f} MB, budget {budget / MB:.1f} MB"


@pytest.mark.parametrize("jit", [True, False], ids=["jit", "numpy"])
def test_im2col_bands_keep_the_patch_matrix_within_a_small_budget(jit: bool, monkeypatch) -> None:
    x, w, b = _huge_kernel_case()
    x = x[:, :, :60, :60].copy()
    w = w[:, :, :31, :31].copy()
    # unbanded: 2*31*31 x 3600 x 4 bytes = 27.7 MB
    _bounded(Im2colEngine(jit=jit), x, w, b, 15, 2 * MB, monkeypatch)


@pytest.mark.parametrize("jit", [True, False], ids=["jit", "numpy"])
def test_winograd_bands_keep_transformed_tiles_within_a_small_budget(jit: bool, monkeypatch) -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 32, 64, 61), dtype=np.float32)
    w = rng.standard_normal((48, 32, 3, 3), dtype=np.float32) * 0.2
    b = rng.standard_normal(48, dtype=np.float32)
    # unbanded: V + M = 36 x (32 + 48) x 2*16*16 tiles x 4 bytes = 5.9 MB
    _bounded(WinogradEngine(jit=jit), x, w, b, 1, 256 * 1024, monkeypatch)


def test_fft_blocks_keep_kernel_spectra_within_a_small_budget(monkeypatch) -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 16, 40, 40), dtype=np.float32)
    w = rng.standard_normal((24, 16, 9, 9), dtype=np.float32) * 0.05
    b = rng.standard_normal(24, dtype=np.float32)
    # all spectra at once: 24 x 16 x 48 x 25 complex64 = 3.7 MB
    _bounded(FFTEngine(), x, w, b, 4, 200 * 1024, monkeypatch)
