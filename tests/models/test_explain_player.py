"""The explainer without a window: the player's steps, filter and play state, what a source
traces, and frames laid out to fit a box (numbers only where they fit, values on hover,
channels paged)."""

from __future__ import annotations

import numpy as np
import pytest

from engine import get_engine, make_spec
from models.errors import ConvScopeError, LayerError
from models.explain import Player, Sandbox, Source, draw_frame, explain_unit


def _layer(c_in=6, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((c_in, 15, 13)).astype(np.float32)
    w = rng.standard_normal((4, c_in, 3, 3)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    conv = make_spec((1, *x.shape), w.shape, b.shape, stride=2, padding=1)
    fm = get_engine("reference").conv2d(x[None], w, b, **conv.engine_kwargs())[0]
    return w, b, x, conv, fm


def test_player_steps_wrap_filters_and_play_state():
    player = Player()
    assert player.current() is None and not player.play() and not player.playing
    player.load([(0, 0), (0, 1), (1, 0)], filters=3, at=(0, 1), filter=2)
    assert player.current() == (2, 0, 1) and player.visited() == [(0, 0)]
    assert player.step(1) and player.index == 2
    assert player.step(1) and player.index == 0  # wraps round
    assert player.step(-1) and player.index == 2
    assert not player.go_to(2) and not player.go_to(7)  # same place, outside: nothing changes
    player.next_filter()
    assert player.current() == (0, 0, 0)  # filter 2 + 1 wraps to 0, from the first position
    assert player.set_filter(9) and player.filter == 2  # clipped to the filters there are
    assert player.play() and player.tick() and player.index == 1
    player.pause()
    assert not player.tick() and player.index == 1  # paused: the timer's tick does nothing
    player.load([], filters=3)
    assert not player.playing and player.current() is None
    assert player.play() is False


def test_source_traces_equal_the_feature_map_and_fill_the_grid():
    w, b, x, conv, fm = _layer()
    source = Source.of_layer(w, b, x, conv, fm, "conv")
    player = Player()
    player.load(source.steps_around(3, 4), conv.c_out, at=(3, 4), filter=1)
    f, y, xx = player.current()
    assert source.trace(f, y, xx).value == pytest.approx(float(fm[f, y, xx]), abs=1e-4)
    assert source.engine_value(f, y, xx) == pytest.approx(float(fm[f, y, xx]))
    done = source.done_grid(f, player.visited())
    visited = np.zeros(fm.shape[1:], bool)
    for p in player.visited():
        visited[p] = True
    np.testing.assert_allclose(done[visited], fm[f][visited])
    assert np.isnan(done[~visited]).all()
    traced = Source.of_layer(w, b, x, conv, None, "conv").done_grid(f, player.visited())  # no feature map
    np.testing.assert_allclose(traced[visited], fm[f][visited], atol=1e-4)
    assert Source.of_layer(w, b, x, conv, fm[:, :2], "conv").output is None  # another call's map: traced
    with pytest.raises(LayerError, match="expects"):
        Source.of_layer(w[:, :3], b, x, conv, fm, "conv")


def test_sandbox_kernel_of_nine_is_allowed_and_says_when_it_has_no_output():
    box = Sandbox(size=9, kernel_size=9)
    assert box.compute().shape == (1, 1, 1) and box.problem() is None
    small = Sandbox(size=5, kernel_size=9)
    assert "larger than the padded input" in small.problem()
    assert Source.of_sandbox(small) is None
    with pytest.raises(ConvScopeError, match="larger"):
        _ = small.conv
    with pytest.raises(ConvScopeError, match=r"1\.\.9"):
        Sandbox(kernel_size=10)


@pytest.mark.parametrize("box", [(1400, 1000), (700, 800), (450, 600)])
def test_frames_fit_their_box(box):
    w, b, x, conv, _fm = _layer()
    trace = explain_unit(w, b, x, conv, 1, 3, 4)
    frame = draw_frame(trace, x, conv, box=box, out_channels=4)
    h, wd = frame.image.shape[:2]
    assert wd <= box[0] and h <= box[1]
    names = [g.name for g in frame.grids]
    assert "output channel 1" in names and any(n.startswith("input channel") for n in names)
    for g in frame.grids:  # every grid lies inside the image
        gh, gw = g.values.shape
        assert g.left + gw * g.cell <= wd and g.top + gh * g.cell <= h


def test_numbers_are_drawn_only_where_they_fit_and_hover_gives_the_value():
    box = Sandbox(size=6, channels=1, padding=1)
    trace = explain_unit(box.weight, box.bias, box.input, box.conv, 0, 2, 3)
    big = draw_frame(trace, box.input, box.conv, box=(1400, 1000))
    assert big.numbers and min(g.cell for g in big.grids) >= 20
    tiny = draw_frame(trace, box.input, box.conv, box=(420, 400))
    assert tiny.image.shape[1] <= 420
    if not tiny.numbers:  # too small for 12 px numbers: read on hover instead
        assert min(g.cell for g in tiny.grids) < 44
    kernel = next(g for g in big.grids if g.name.startswith("kernel"))
    text = big.value_at(kernel.left + 1.5 * kernel.cell, kernel.top + 0.5 * kernel.cell)
    assert text == f"kernel, channel 0 [0, 1] = {float(box.weight[0, 0, 0, 1]):.5g}"
    out = next(g for g in big.grids if g.name.startswith("output"))
    assert "not computed yet" in out.value_at(out.left + 0.5 * out.cell, out.top + 0.5 * out.cell)
    assert big.value_at(2, 2) is None


def test_many_input_channels_are_paged_and_all_summed():
    w, b, x, conv, fm = _layer(c_in=64)
    trace = explain_unit(w, b, x, conv, 2, 1, 1)
    first = draw_frame(trace, x, conv, box=(900, 700), max_channels=3)
    assert first.pages == -(-64 // len(first.channels)) and first.channels[0] == 0
    second = draw_frame(trace, x, conv, box=(900, 700), max_channels=3, channel_page=1)
    assert second.page == 1 and second.channels[0] == len(first.channels)
    last = draw_frame(trace, x, conv, box=(900, 700), channel_page=999)
    assert last.page == last.pages - 1 and last.channels[-1] == 63
    assert first.image.shape == second.image.shape  # pages share a size
    assert trace.value == pytest.approx(float(fm[2, 1, 1]), abs=1e-4)  # all 64 summed


# panes about as large as the explainer's at 1024x700, 1600x1000 and 2560x1440
PANES = [(470, 500), (540, 800), (1300, 1250)]


@pytest.mark.parametrize("box", PANES)
@pytest.mark.parametrize(("size", "k", "stride"), [(112, 3, 1), (56, 3, 1), (56, 1, 1), (112, 3, 2)])
def test_real_sized_layers_show_readable_numbers_and_the_crop_follows_the_kernel(box, size, k, stride):
    from engine import pad_input
    from models.explain import LAYER_STEPS, positions, region_of

    rng = np.random.default_rng(size + k)
    x = np.maximum(rng.standard_normal((16, size, size)), 0).astype(np.float32)  # a ReLU's output
    w = (0.3 * rng.standard_normal((8, 16, k, k))).astype(np.float32)
    b = (0.1 * rng.standard_normal(8)).astype(np.float32)
    conv = make_spec((1, *x.shape), w.shape, b.shape, stride=stride, padding=k // 2)
    fm = get_engine("reference").conv2d(x[None], w, b, **conv.engine_kwargs())[0]
    padded = pad_input(x[None], conv.pad, conv.padding_mode)[0]
    steps = positions(conv.out_h, conv.out_w, LAYER_STEPS, center=(conv.out_h // 2, conv.out_w // 3))
    region = region_of(steps)
    shapes = set()
    for i in range(0, len(steps), 4):
        y, xx = steps[i]
        trace = explain_unit(w, b, x, conv, 5, y, xx)
        done = np.full((conv.out_h, conv.out_w), np.nan)
        for py, px in steps[:i]:
            done[py, px] = fm[5, py, px]
        frame = draw_frame(trace, x, conv, done=done, region=region, box=box, out_channels=8, out_map=fm[5])
        assert frame.numbers and frame.number_px >= 11  # readable at 100% zoom
        assert frame.image.shape[1] <= box[0] and frame.image.shape[0] <= box[1]
        shapes.add(frame.image.shape)
        r0, c0, rows, cols = frame.crop  # the window's taps lie inside the crop drawn
        taps_r, taps_c = trace.rows + conv.pad[0], trace.cols + conv.pad[2]
        assert r0 <= taps_r.min() and taps_r.max() < r0 + rows
        assert c0 <= taps_c.min() and taps_c.max() < c0 + cols
        oy, ox, orows, ocols = frame.out_crop  # and the unit inside the output drawn
        assert oy <= y < oy + orows and ox <= xx < ox + ocols
        grid = next(g for g in frame.grids if g.name.startswith("input channel"))
        channel = int(grid.name.split()[2])
        np.testing.assert_array_equal(grid.values, padded[channel, r0 : r0 + rows, c0 : c0 + cols])
        out = next(g for g in frame.grids if g.name.startswith("output"))
        np.testing.assert_allclose(
            out.values[~out.missing], fm[5, oy : oy + orows, ox : ox + ocols][~out.missing], atol=1e-4
        )
    assert len(shapes) == 1  # one size for the whole animation: the player does not jump
