"""Cell numbers carry their digits at any scale (#15: an untrained layer read 0.00 in every cell)
and a small pane keeps the arithmetic readable (#15: 5x5 kernels at 1024x700 were colours only).

Oracles: the values the frame holds (tested equal to the engine's elsewhere), and the pixels a
caption or number leaves when drawn on its own at the same place (``put_text``)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw

from engine import get_engine, make_spec
from models.explain import draw_frame, explain_unit
from models.explain import drawing as d
from models.explain.layout import LABEL

INK_BELOW = 110  # a pixel this dark (mean of RGB) is a number's ink: the darkest cell colour is ~165
CAPTION_BELOW = 200  # a caption's (grey ink on white)


def _ink(rgb: np.ndarray, below: float = INK_BELOW) -> np.ndarray:
    return rgb.astype(np.float64).mean(axis=-1) < below


def _drawn_alone(shape, text: str, xy, font, center, below, fill) -> np.ndarray:
    """Where ``text`` puts ink when drawn alone on white at ``xy`` (the oracle's pixels)."""
    image = Image.new("RGB", (shape[1], shape[0]), d.BG)
    draw = ImageDraw.Draw(image)
    if center:
        d.put_text_center(draw, xy[0], xy[1], text, font, fill)
    else:
        d.put_text(draw, xy, text, font, fill)
    return _ink(np.asarray(image), below)


def _shows(frame_image, text: str, xy, font, box, center=False, below=INK_BELOW, fill=d.INK) -> bool:
    """The frame has ``text``'s ink at ``xy`` within ``box`` (x0, y0, x1, y1), and no other ink."""
    x0, y0, x1, y1 = (int(v) for v in box)
    want = _drawn_alone(frame_image.shape, text, xy, font, center, below, fill)[y0:y1, x0:x1]
    got = _ink(frame_image, below)[y0:y1, x0:x1]
    return bool(want.any()) and float((want == got).mean()) > 0.97


def _cell_shows(image: np.ndarray, grid, r: int, c: int, text: str) -> bool:
    cell = grid.cell
    font = d.get_font(d.number_font_size(cell))
    left, top = grid.left + c * cell, grid.top + r * cell
    center = (left + cell / 2, top + cell / 2)
    return _shows(
        image, text, center, font, (left + 2, top + 2, left + cell - 1, top + cell - 1), center=True
    )


def _layer(scale_in: float, scale_w: float, k: int = 3, groups: int = 1, seed: int = 0):
    rng = np.random.default_rng(seed)
    c = 4
    x = (scale_in * np.maximum(rng.standard_normal((c, 11, 11)), 0.05)).astype(np.float32)
    w = (scale_w * rng.standard_normal((4, c // groups, k, k))).astype(np.float32)
    b = np.zeros(4, np.float32)
    conv = make_spec((1, *x.shape), w.shape, b.shape, stride=1, padding=k // 2, groups=groups)
    fm = get_engine("reference").conv2d(x[None], w, b, **conv.engine_kwargs())[0]
    return w, b, x, conv, fm


def _frame(w, b, x, conv, fm, box=(1400, 1000), unit=(1, 5, 5)):
    o, y, xx = unit
    trace = explain_unit(w, b, x, conv, o, y, xx)
    done = np.full(fm.shape[1:], np.nan)
    done[: y + 1] = fm[o, : y + 1]
    return draw_frame(
        trace,
        x,
        conv,
        done=done,
        region=(y - 2, y + 3, xx - 2, xx + 3),
        box=box,
        out_channels=4,
        out_scale=float(np.abs(fm[o]).max()),
        out_map=fm[o],
    ), trace


def _label_xy(grid) -> tuple[tuple[float, float], object]:
    """Where a grid's caption is drawn, and its font (as parts.py places them)."""
    if grid.name.startswith("output"):
        return (grid.left, grid.top - LABEL - 6 * 3), d.get_font(12)  # over the deck of 4 filters
    if grid.name.startswith("input"):
        return (grid.left, grid.top - 18), d.get_font(13)
    return (grid.left, grid.top - 17), d.get_font(13)


def _caption(grid) -> str:
    c = grid.name.split()[-1] if not grid.name.startswith("input") else grid.name.split()[2]
    word = {"input": f"input channel {c}", "kernel,": "kernel", "products,": "products", "output": None}
    first = grid.name.split()[0]
    text = word[first] if word[first] is not None else f"output channel {c} of 4"
    return f"{text} {d.scale_mark(grid.exponent)}".strip()


def test_a_frame_of_small_values_shows_their_digits_and_the_scale_at_each_caption():
    w, b, x, conv, fm = _layer(scale_in=0.02, scale_w=0.03)  # an untrained layer's range
    frame, trace = _frame(w, b, x, conv, fm)
    assert frame.numbers
    image = frame.image
    for grid in frame.grids:
        shown = ~grid.missing if grid.missing is not None else np.ones(grid.values.shape, bool)
        big = float(np.abs(grid.values[shown]).max())
        assert big < 0.1 and grid.exponent == int(np.floor(np.log10(big)))  # the largest: 1.00-9.99
        assert grid.numbers
        texts = {grid.text(r, c) for r, c in zip(*np.nonzero(shown), strict=True)}
        assert len(texts - {"0.00"}) >= 2  # digits, not 0.00 everywhere
        for r, c in zip(*np.nonzero(shown), strict=True):
            text = grid.text(r, c)
            # the number shown times the scale is the value, to the shown precision
            assert (
                abs(float(text) * 10.0**grid.exponent - float(grid.values[r, c]))
                <= 0.0051 * 10.0**grid.exponent
            )
        r, c = np.unravel_index(np.argmax(np.where(shown, np.abs(grid.values), -1)), grid.values.shape)
        assert len(grid.text(r, c).lstrip("-").replace(".", "").lstrip("0")) == 3  # 3 significant digits
        assert _cell_shows(image, grid, r, c, grid.text(r, c))  # and it is what the cell shows
        # the caption carries the scale: "kernel ×10⁻²"
        xy, font = _label_xy(grid)
        caption = _caption(grid)
        assert "×10⁻" in caption
        width = ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength(caption, font=font)
        box = (xy[0], xy[1], xy[0] + width + 4, xy[1] + 16)
        assert _shows(image, caption, xy, font, box, below=CAPTION_BELOW, fill=d.MUTED)
    # the sums in the text lines keep their digits too
    assert d.fmt_text(float(trace.channel_sums[0]), False) != "0.00"


def test_a_frame_of_ordinary_values_shows_no_mark_and_todays_digits():
    def today(v: float) -> str:  # the cells' numbers before scales existed
        v = 0.0 if abs(v) < 0.005 else v
        return f"{v:.0f}" if abs(v) >= 100 else f"{v:.1f}" if abs(v) >= 10 else f"{v:.2f}"

    w, b, x, conv, fm = _layer(scale_in=6.0, scale_w=1.5)  # |v| ~ 1-100
    frame, _ = _frame(w, b, x, conv, fm)
    assert frame.numbers
    for grid in frame.grids:
        assert grid.exponent == 0 and d.scale_mark(grid.exponent) == ""
        shown = ~grid.missing if grid.missing is not None else np.ones(grid.values.shape, bool)
        for r, c in zip(*np.nonzero(shown), strict=True):
            assert grid.text(r, c) == today(float(grid.values[r, c]))
        xy, font = _label_xy(grid)
        caption = _caption(grid)
        assert "×" not in caption
        box = (xy[0], xy[1], xy[0] + 180, xy[1] + 16)  # and nothing after it
        assert _shows(frame.image, caption, xy, font, box, below=CAPTION_BELOW, fill=d.MUTED)
        r, c = np.argwhere(shown)[0]
        assert _cell_shows(frame.image, grid, r, c, grid.text(r, c))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=1, max_size=30),
    st.integers(-7, 0),
)
def test_numbers_times_their_scale_are_the_values(values, power):
    v = np.asarray(values, dtype=np.float64) * 10.0**power
    e = d.grid_exponent(v)
    big = float(np.abs(v).max())
    assert (e == 0) == (big == 0 or big >= 0.1)
    for value in v:
        text = d.fmt(float(value), False, e)
        assert len(text) <= 6  # fits a cell: at most "-88.8" or "-1000" (and "-999.9" rounds to 4 digits)
        decimals = len(text.split(".")[1]) if "." in text else 0
        assert abs(float(text) * 10.0**e - value) <= (0.5 * 10.0**-decimals + 1e-9) * 10.0**e + 1e-12


@pytest.mark.parametrize("box", [(479, 477), (470, 500)])
def test_a_5x5_kernel_in_a_small_pane_keeps_readable_numbers_where_the_arithmetic_is(box):
    # a depthwise 5x5 layer as efficientnet's: the whole frame cannot have 33 px cells in ~480 px
    w, b, x, conv, fm = _layer(scale_in=3.0, scale_w=0.3, k=5, groups=4, seed=3)
    frame, trace = _frame(w, b, x, conv, fm, box=box)
    h, wd = frame.image.shape[:2]
    assert wd <= box[0] and h <= box[1]
    assert 12 <= frame.context_cell < frame.cell  # the input crop and output in smaller cells
    by_name = {g.name.split(",")[0].split()[0]: g for g in frame.grids}
    for name in ("kernel", "products"):  # numbers at 11 px or more
        grid = by_name[name]
        assert grid.numbers and d.number_font_size(grid.cell) >= 11
        assert d.numbers_fit(grid.values, grid.cell, False, grid.exponent)
        assert _cell_shows(frame.image, grid, 2, 2, grid.text(2, 2))
    out = by_name["output"]
    assert not out.numbers and not by_name["input"].numbers  # colours only, read on hover
    # so the unit's value is written under the output grid, with its digits: "[5, 5] = -0.0213"
    r, c = trace.y - out.origin[0], trace.x - out.origin[1]
    text = f"[{trace.y}, {trace.x}] = {d.fmt_text(trace.value, False)}"
    xy = (out.left, out.top + out.values.shape[0] * out.cell + 3)
    font = d.get_font(13, True)
    width = ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength(text, font=font)
    box = (xy[0], xy[1], xy[0] + width, xy[1] + 16)
    assert _shows(frame.image, text, xy, font, box, below=CAPTION_BELOW, fill=d.WINDOW_INK)
    assert out.values[r, c] == pytest.approx(trace.value)
    # the same layer in a large pane: every grid the same cells, all with numbers
    big, _ = _frame(w, b, x, conv, fm, box=(1300, 1250))
    assert all(g.numbers for g in big.grids) and len({g.cell for g in big.grids}) == 1


def test_the_exported_gif_shows_the_scaled_numbers_and_marks(tmp_path):
    from models.explain import positions, region_of, render_explain_gif

    w, b, x, conv, fm = _layer(scale_in=0.02, scale_w=0.03)
    steps = positions(conv.out_h, conv.out_w, 4, center=(5, 5))
    path = tmp_path / "small.gif"
    assert render_explain_gif(w, b, x, conv, path, out_channel=1, positions=steps) == len(steps)
    with Image.open(path) as gif:
        gif.seek(len(steps) - 1)  # the last frame: every step's value in the output grid
        image = np.asarray(gif.convert("RGB"))
    # the frame the GIF drew, as the window draws it (the oracle for where things are)
    traces = [explain_unit(w, b, x, conv, 1, y, xx) for y, xx in steps]
    done = np.full(fm.shape[1:], np.nan)
    for t in traces:
        done[t.y, t.x] = t.value
    frame = draw_frame(
        traces[-1],
        x,
        conv,
        done=done,
        region=region_of(steps),
        out_scale=max(abs(t.value) for t in traces),
        out_channels=4,
    )
    assert image.shape == frame.image.shape
    kernel = next(g for g in frame.grids if g.name.startswith("kernel"))
    assert kernel.exponent < 0 and kernel.numbers
    caption = f"kernel {d.scale_mark(kernel.exponent)}"
    xy, font = _label_xy(kernel)
    box = (xy[0], xy[1], xy[0] + 100, xy[1] + 16)
    assert _shows(image, caption, xy, font, box, below=CAPTION_BELOW, fill=d.MUTED)
    r, c = np.unravel_index(np.argmax(np.abs(kernel.values)), kernel.values.shape)
    assert _cell_shows(image, kernel, r, c, kernel.text(r, c)) and kernel.text(r, c) != "0.00"
