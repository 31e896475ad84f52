"""The explainer's arithmetic: traced values equal the engines, the sandbox equals the formula,
the GIF has one frame per step."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest
from PIL import Image

from engine import get_engine, make_spec
from models.errors import ConvScopeError, LayerError
from models.explain import (
    Sandbox,
    explain_unit,
    layer_formulas,
    output_size,
    output_size_formula,
    positions,
    region_of,
    render_explain_gif,
    render_frame,
    why_convolution,
)

CASES = [
    # (C_in, C_out, k, stride, padding, dilation, groups, padding_mode)
    (3, 4, 3, 1, 1, 1, 1, "zeros"),
    (3, 4, 3, 2, 1, 1, 1, "zeros"),
    (2, 3, 3, 1, 2, 2, 1, "zeros"),
    (4, 4, 3, 1, 1, 1, 4, "zeros"),  # depthwise
    (4, 6, 3, 2, 1, 1, 2, "reflect"),  # grouped
    (3, 2, 5, 1, 2, 1, 1, "replicate"),
    (3, 2, 3, 2, 1, 2, 1, "circular"),
    (2, 2, (3, 1), (2, 1), (1, 0), 1, 1, "zeros"),
    (3, 5, 3, 1, "same", 2, 1, "zeros"),
]


def _layer(case, seed=0, size=(9, 10)):
    c_in, c_out, k, s, p, d, g, mode = case
    kh, kw = (k, k) if isinstance(k, int) else k
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((c_in, *size)).astype(np.float32)
    w = rng.standard_normal((c_out, c_in // g, kh, kw)).astype(np.float32)
    b = rng.standard_normal(c_out).astype(np.float32)
    conv = make_spec((1, *x.shape), w.shape, b.shape, s, p, d, g, mode)
    return w, b, x, conv


@pytest.mark.parametrize("case", CASES, ids=[str(c) for c in CASES])
def test_traced_value_equals_every_engine(case):
    w, b, x, conv = _layer(case)
    outputs = {
        name: get_engine(name).conv2d(x[None], w, b, **conv.engine_kwargs())[0]
        for name in ("direct", "im2col", "reference")
    }
    o, ho, wo = outputs["direct"].shape
    units = {(0, 0, 0), (o - 1, ho - 1, wo - 1), (o // 2, ho // 2, wo // 2), (o - 1, 0, wo - 1)}
    for oc, y, xx in units:
        trace = explain_unit(w, b, x, conv, oc, y, xx)
        assert trace.channel_sums.shape == (w.shape[1],)
        assert trace.value == pytest.approx(float(trace.channel_sums.sum() + b[oc]), rel=1e-6)
        for name, out in outputs.items():
            assert trace.value == pytest.approx(float(out[oc, y, xx]), abs=1e-4), name


def test_trace_shows_padding_as_the_mode_fills_it():
    x = np.arange(16, dtype=np.float32).reshape(1, 4, 4)
    w = np.ones((1, 1, 3, 3), dtype=np.float32)
    conv = make_spec((1, *x.shape), w.shape, None, padding=1, padding_mode="replicate")
    trace = explain_unit(w, None, x, conv, 0, 0, 0)
    assert trace.in_padding[0].all() and trace.in_padding[:, 0].all() and not trace.in_padding[1:, 1:].any()
    np.testing.assert_array_equal(trace.patch[0], [[0, 0, 1], [0, 0, 1], [4, 4, 5]])


def test_unit_outside_the_output_is_a_layer_error():
    w, b, x, conv = _layer(CASES[1])
    with pytest.raises(LayerError, match="outside"):
        explain_unit(w, b, x, conv, 0, 99, 0)
    with pytest.raises(LayerError, match="channels"):
        explain_unit(w[:, :2], b, x, conv, 0, 0, 0)


def test_formula_string_and_value():
    assert output_size_formula(7, 3, 2, 1, 1) == "H_out = ⌊(7 + 2·1 − 1·(3−1) − 1)/2⌋ + 1 = 4"
    assert output_size(7, 3, 2, 1, 1) == 4
    assert output_size(224, 7, 2, 3, 1) == 112
    assert output_size(5, 3, 1, 0, 2) == 1
    assert output_size_formula(8, 3, 1, (1, 1), 2, "W_out").endswith("= 6")
    assert output_size_formula(9, 4, 1, (1, 2), 1).startswith("H_out = ⌊(9 + 1 + 2 − 1·(4−1)")
    h, w = layer_formulas(make_spec((1, 3, 9, 10), (4, 3, 3, 3), None, stride=2, padding=1))
    assert h.endswith("= 5") and w.endswith("= 5")


def test_sandbox_output_size_equals_formula_and_engines_over_the_controls():
    checked = 0
    for size, k, s, p, d in itertools.product(range(5, 10), range(1, 6), range(1, 4), range(0, 3), (1, 2)):
        box = Sandbox(size=size, kernel_size=k, stride=s, padding=p, dilation=d, channels=2, out_channels=2)
        n = output_size(size, k, s, p, d)
        assert int(re.search(r"= (-?\d+)$", box.formula()).group(1)) == n
        assert box.output_hw() == (n, n)
        if box.problem() is not None:
            assert d * (k - 1) + 1 > size + 2 * p  # only when the kernel does not fit
            with pytest.raises(ConvScopeError):
                box.compute()
            continue
        out = box.compute()
        assert out.shape == (2, n, n)
        checked += 1
    assert checked > 300


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
def test_sandbox_matches_reference_in_every_padding_mode(mode):
    for size, k, s, p, d in [(5, 3, 1, 1, 1), (7, 3, 2, 2, 1), (9, 3, 2, 2, 2), (6, 5, 1, 2, 1)]:
        box = Sandbox(
            size=size,
            kernel_size=k,
            stride=s,
            padding=p,
            dilation=d,
            channels=3,
            out_channels=2,
            padding_mode=mode,
            seed=size,
        )
        np.testing.assert_allclose(box.compute("direct"), box.compute("reference"), atol=1e-4)
        trace = explain_unit(box.weight, box.bias, box.input, box.conv, 1, 0, 0)
        assert trace.value == pytest.approx(float(box.compute()[1, 0, 0]), abs=1e-4)


def test_sandbox_values_are_integers_and_survive_setting_changes():
    box = Sandbox(size=6, channels=2, seed=4)
    assert box.input.shape == (2, 6, 6) and box.weight.shape == (1, 2, 3, 3) and box.bias.shape == (1,)
    assert np.all(box.input == np.round(box.input)) and box.input.min() >= 0 and box.input.max() <= 9
    edited = box.with_value("input", (1, 2, 3), 42.0)
    assert edited.input[1, 2, 3] == 42.0 and box.input[1, 2, 3] != 42.0
    bigger = edited.with_settings(size=8, kernel_size=5, channels=3)
    assert bigger.input.shape == (3, 8, 8) and bigger.weight.shape == (1, 3, 5, 5)
    np.testing.assert_array_equal(bigger.input[:2, :6, :6], edited.input)
    np.testing.assert_array_equal(bigger.weight[:, :2, :3, :3], edited.weight)
    assert not np.array_equal(box.randomized().input, box.input)
    with pytest.raises(ConvScopeError, match="size"):
        Sandbox(size=12)
    with pytest.raises(ConvScopeError, match="padding mode"):
        Sandbox(padding_mode="mirror")


def test_positions_play_order_and_crop():
    assert positions(2, 3) == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
    steps = positions(112, 112, 36)
    assert len(steps) == 36 and steps == sorted(steps)
    assert region_of(steps) == (53, 59, 53, 59)
    corner = positions(50, 60, 30, center=(0, 59))
    y0, y1, x0, x1 = region_of(corner)
    assert len(corner) <= 30 and (y0, x1) == (0, 60) and len(corner) == (y1 - y0) * (x1 - x0)
    assert len(positions(1, 500, 40)) == 40
    assert positions(0, 5) == []


def test_why_convolution_notes_example():
    info = why_convolution((1, 1, 3, 3), (1, 4, 4), (1, 2, 2))
    assert info["conv_params"] == 9 and info["fc_params"] == 64
    assert info["ratio"] == pytest.approx(64 / 9)
    assert "3×3" in info["locality"] and "4 positions" in info["sharing"]
    layer = why_convolution((64, 3, 7, 7), (3, 224, 224), (64, 112, 112), bias=True)
    assert layer["conv_params"] == 64 * 3 * 49 + 64
    assert layer["fc_params"] == 3 * 224 * 224 * 64 * 112 * 112 + 64 * 112 * 112


def test_frame_draws_window_and_keeps_its_size_across_steps():
    box = Sandbox(size=7, channels=2, stride=2, padding=1)
    first = explain_unit(box.weight, box.bias, box.input, box.conv, 0, 0, 0)
    later = explain_unit(box.weight, box.bias, box.input, box.conv, 0, 2, 3)
    a = render_frame(first, box.input, box.conv, title="sandbox")
    b = render_frame(later, box.input, box.conv, title="sandbox")
    assert a.dtype == np.uint8 and a.ndim == 3 and a.shape == b.shape
    orange = np.all(a == (255, 133, 0), axis=-1)
    assert orange.sum() > 100
    # the window moved: its outline is elsewhere
    assert not np.array_equal(orange, np.all(b == (255, 133, 0), axis=-1))


def test_gif_has_one_frame_per_step(tmp_path):
    box = Sandbox(size=5, channels=2, out_channels=2, padding=1)
    path = tmp_path / "sandbox.gif"
    n = render_explain_gif(box.weight, box.bias, box.input, box.conv, path, out_channel=1)
    with Image.open(path) as gif:
        assert gif.n_frames == n == 25 and gif.is_animated
    rng = np.random.default_rng(1)
    x = rng.standard_normal((32, 40, 40)).astype(np.float32)
    w = rng.standard_normal((8, 32, 3, 3)).astype(np.float32)
    conv = make_spec((1, *x.shape), w.shape, None, stride=(1, 1), padding=(1, 1), dilation=(1, 1))
    big = tmp_path / "layer.gif"
    assert render_explain_gif(w, None, x, conv, big, out_channel=3, max_steps=30, duration_ms=200) == 30
    with Image.open(big) as gif:
        assert gif.n_frames == 30
    chosen = [(0, 0), (0, 1), (5, 5)]
    assert render_explain_gif(w, None, x, conv, tmp_path / "few.gif", positions=chosen) == 3
    with pytest.raises(LayerError, match="filter 8"):
        render_explain_gif(w, None, x, conv, tmp_path / "bad.gif", out_channel=8)


def test_a_layer_that_is_no_convolution_is_refused_in_models_words_not_a_flags():
    from types import SimpleNamespace

    from models.explain import require_conv

    relu = SimpleNamespace(name="relu1", type="ReLU", is_conv=False)
    with pytest.raises(LayerError) as caught:
        require_conv(relu)
    message = str(caught.value)
    assert "'relu1' is a ReLU, not a convolution" in message
    assert "--" not in message  # the CLI adds "--explain needs ..." (tests/test_cli.py)
