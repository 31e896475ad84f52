"""Shared test helpers: the engines' documented tolerance against torch."""

from __future__ import annotations

import numpy as np


def conv_tolerance(reference: np.ndarray) -> float:
    """Max abs error allowed against torch: float32 1e-4 x (1 + max|ref|), float64 1e-10 x (...)."""
    scale = 1.0 + float(np.abs(reference).max(initial=0.0))
    return (1e-4 if reference.dtype == np.float32 else 1e-10) * scale


def assert_conv_close(out: np.ndarray, reference: np.ndarray) -> None:
    assert out.shape == reference.shape
    assert out.dtype == reference.dtype
    err = float(np.abs(out - reference).max(initial=0.0))
    assert err <= conv_tolerance(reference), f"max abs error {err:.3g} > {conv_tolerance(reference):.3g}"
