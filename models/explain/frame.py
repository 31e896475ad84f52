"""One explainer frame: a kernel's window on the input, the products, the sums and the output.

:func:`draw_frame` lays a frame out to fit a box (the pane that shows it): one cell size for
every grid, as large as fits (up to 44 px); the output grid beside the channel rows or, when
that is too wide, below them; in a box less than 760 px tall the size formulas are left to the
side panel; as many input channels as fit (at most ``max_channels``), the
others on later pages (``channel_page``). Numbers are drawn in the cells when they fit at 12 px
or more; otherwise the cells show colours only and :meth:`Frame.value_at` gives the value under
the pointer. The frame's size depends only on the box, the region, the kernel and the channel
count, so the frames of one animation share it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

from engine import ConvSpec, pad_input
from engine.direct import UnitTrace
from models.explain import drawing as d
from models.explain.arithmetic import agrees, layer_formulas, positions, region_of

_MARGIN, _TITLE_H, _OP_W, _SUM_W, _GAP = 16, 62, 30, 90, 28
_LINE_H = 22
_COMPACT_BELOW = 760  # a box less tall than this leaves the size formulas to the side panel


def _text_h(compact: bool) -> int:
    return 18 + (3 if compact else 6) * _LINE_H + _MARGIN
_MAX_CELL, _MIN_CELL = 44, 8
_READABLE = 30  # below this a cell holds no number at 12 px: prefer fewer channels per page
_DEFAULT_BOX = (1400, 1000)  # the GIF's frames, and a frame drawn without a box


@dataclass(frozen=True)
class Grid:
    """A grid drawn in a frame: where it is and what its cells hold (for values on hover)."""

    name: str
    left: int
    top: int
    cell: int
    values: np.ndarray = field(repr=False)
    origin: tuple[int, int] = (0, 0)  # the (row, col) of the first cell in the grid's own indices
    missing: np.ndarray | None = field(default=None, repr=False)  # cells with no value yet

    def value_at(self, x: float, y: float) -> str | None:
        r, c = int((y - self.top) // self.cell), int((x - self.left) // self.cell)
        h, w = self.values.shape
        if not (0 <= r < h and 0 <= c < w and x >= self.left and y >= self.top):
            return None
        if self.missing is not None and self.missing[r, c]:
            return f"{self.name} [{r + self.origin[0]}, {c + self.origin[1]}]: not computed yet"
        return f"{self.name} [{r + self.origin[0]}, {c + self.origin[1]}] = {float(self.values[r, c]):.5g}"


@dataclass(frozen=True)
class Frame:
    """A drawn frame: ``image`` ``(H, W, 3)`` uint8, its grids, and the channel pages."""

    image: np.ndarray = field(repr=False)
    grids: tuple[Grid, ...]
    page: int  # the page of input channels shown
    pages: int
    channels: tuple[int, ...]  # the input channels drawn
    numbers: bool  # values are written in the cells

    def value_at(self, x: float, y: float) -> str | None:
        """The value of the cell at pixel ``(x, y)`` of the image, as a line of text; None off
        the grids."""
        for g in self.grids:
            text = g.value_at(x, y)
            if text is not None:
                return text
        return None


@dataclass(frozen=True)
class _Layout:
    cell: int
    rows: int
    below: bool  # the output grid below the channel rows, not beside them
    width: int
    height: int


def _measure(cell: int, rows: int, below: bool, crop: tuple[int, int], kernel: tuple[int, int],
             out: tuple[int, int], hidden: bool, deck: int, compact: bool) -> tuple[int, int]:
    (ih, iw), (kh, kw), (oh, ow) = crop, kernel, out
    row_w = iw * cell + 3 * _OP_W + 2 * kw * cell + _SUM_W
    row_h = max(ih, kh) * cell + 26
    rows_h = rows * row_h + (30 if hidden else 0)
    out_w = max(ow * cell + 6 * deck, 200)
    out_h = 20 + 6 * deck + oh * cell + 24
    if below:
        width = 2 * _MARGIN + max(row_w, out_w)
        height = _TITLE_H + rows_h + 8 + out_h + _text_h(compact)
    else:
        width = 2 * _MARGIN + row_w + _GAP + out_w + 20
        height = _TITLE_H + max(rows_h, out_h) + _text_h(compact)
    return max(width, 420), height


def _layout(box: tuple[int, int], crop, kernel, out, n_channels: int, max_rows: int, deck: int) -> _Layout:
    """The largest cell size (and then the most channel rows) whose frame fits in ``box``;
    the smallest frame when nothing fits (the view scrolls)."""
    box_w, box_h = box
    compact = box_h < _COMPACT_BELOW
    most = max(1, min(max_rows, n_channels))

    def best(rows: int, smallest: int) -> _Layout | None:
        hidden = n_channels > rows
        for cell in range(_MAX_CELL, smallest - 1, -1):
            for below in (False, True):
                w, h = _measure(cell, rows, below, crop, kernel, out, hidden, deck, compact)
                if w <= box_w and h <= box_h:
                    return _Layout(cell, rows, below, w, h)
        return None

    for smallest in (_READABLE, _MIN_CELL):  # readable numbers first, then colours only
        for rows in range(most, 0, -1):
            found = best(rows, smallest)
            if found is not None:
                return found
    w, h = _measure(_MIN_CELL, 1, True, crop, kernel, out, n_channels > 1, deck, compact)
    return _Layout(_MIN_CELL, 1, True, w, h)


def default_region(conv: ConvSpec, y: int, x: int, cap: int = 49) -> tuple[int, int, int, int]:
    """The output block a frame shows around unit ``(y, x)``: the whole output when it has at
    most 64 positions, else up to ``cap`` positions around the unit."""
    if conv.out_h * conv.out_w <= 64:
        return (0, conv.out_h, 0, conv.out_w)
    return region_of(positions(conv.out_h, conv.out_w, cap, center=(y, x)))


def render_frame(trace: UnitTrace, layer_input: np.ndarray, conv: ConvSpec, **options) -> np.ndarray:
    """One explainer frame for one output element: ``(H, W, 3)`` uint8 RGB (see :func:`draw_frame`)."""
    return draw_frame(trace, layer_input, conv, **options).image


def draw_frame(trace: UnitTrace, layer_input: np.ndarray, conv: ConvSpec, *,
               done: np.ndarray | None = None, region: tuple[int, int, int, int] | None = None,
               max_channels: int = 3, title: str = "", engine_value: float | None = None,
               out_scale: float | None = None, out_channels: int | None = None,
               box: tuple[int, int] | None = None, channel_page: int = 0) -> Frame:
    """One explainer frame for one output element.

    Shows, for a page of the input channels the filter reads: the padded input around the
    window (tapped cells outlined, so stride and dilation show as jumps and gaps; padding
    hatched with the values the padding mode put there), the kernel, the element-wise products
    and their sum; then the sum over all channels plus the bias, and the output grid filling up.

    Parameters
    ----------
    trace : the unit's terms, from :func:`~models.explain.explain_unit`
    layer_input : ``(C, H, W)`` the layer's (unpadded) input
    conv : the layer's convolution
    done : ``(H_out, W_out)`` output values computed so far, NaN where not yet (None: only this unit)
    region : ``(y0, y1, x0, x1)`` the output block shown (None: :func:`default_region`); the
        input shown is what that block's windows cover
    engine_value : the engine's feature-map value at this unit, shown beside the traced value
    out_scale : colour scale of the output grid (max |value|), fixed across an animation
    out_channels : how many filters the layer has (for the "filter o of O" caption)
    max_channels : at most this many input channels per page
    box : ``(width, height)`` in pixels the frame should fit in (None: 1400x1000)
    channel_page : which page of input channels to draw (clipped to the pages there are)
    """
    layer_input = np.asarray(layer_input)
    _, kh, kw = trace.kernel.shape
    spec = conv
    sh, sw = spec.stride
    dh, dw = spec.dilation
    if region is None:
        region = default_region(spec, trace.y, trace.x)
    y0, y1, x0, x1 = region
    y0, y1 = min(y0, trace.y), max(y1, trace.y + 1)
    x0, x1 = min(x0, trace.x), max(x1, trace.x + 1)
    whole = (y0, y1, x0, x1) == (0, spec.out_h, 0, spec.out_w)
    if whole:  # the whole padded input, rows the stride never reaches included
        r0, r1, c0, c1 = 0, spec.hp, 0, spec.wp
    else:
        r0, r1 = y0 * sh, (y1 - 1) * sh + (kh - 1) * dh + 1
        c0, c1 = x0 * sw, (x1 - 1) * sw + (kw - 1) * dw + 1

    n_all = len(trace.input_channels)
    deck = min(out_channels - 1, 3) if out_channels else 0
    lay = _layout(box or _DEFAULT_BOX, (r1 - r0, c1 - c0), (kh, kw), (y1 - y0, x1 - x0), n_all,
                  max_channels, deck)
    pages = math.ceil(n_all / lay.rows)
    page = int(np.clip(channel_page, 0, pages - 1))
    first = page * lay.rows
    picked = list(range(first, min(first + lay.rows, n_all)))  # indices into the trace's channels
    shown = trace.input_channels[picked]
    padded = pad_input(layer_input[None, shown], spec.pad, spec.padding_mode)[0][:, r0:r1, c0:c1]
    prow = np.arange(r0, r1) - spec.pad[0]
    pcol = np.arange(c0, c1) - spec.pad[2]
    pad_mask = ((prow < 0) | (prow >= spec.h))[:, None] | ((pcol < 0) | (pcol >= spec.w))[None, :]
    integral = bool(np.all(np.mod(padded, 1) == 0) and np.all(np.mod(trace.kernel, 1) == 0)
                    and float(trace.bias).is_integer())

    image = Image.new("RGB", (lay.width, lay.height), d.BG)
    draw = ImageDraw.Draw(image)
    cell = lay.cell
    numbers = all(d.numbers_fit(values, cell, integral)
                  for values in (padded, trace.products[picked], trace.kernel[picked]))
    grids: list[Grid] = []
    _draw_title(draw, trace, spec, title, out_channels)
    rows_bottom = _draw_rows(image, draw, trace, spec, padded, pad_mask, picked, (r0, c0), cell, numbers,
                             integral, grids)
    rows_right = _MARGIN + (c1 - c0) * cell + 3 * _OP_W + 2 * kw * cell + _SUM_W
    if n_all > len(picked):
        rest = float(np.delete(trace.channel_sums, picked).sum())
        span = f"{int(shown[0])}–{int(shown[-1])}" if len(shown) > 1 else f"{int(shown[0])}"
        note = (f"input channels {span} of {n_all} shown (page {page + 1} of {pages}); the other "
                f"{n_all - len(picked)} are summed too: Σ = {d.fmt(rest, integral)}")
        if draw.textlength(note, font=d.get_font(14)) > lay.width - 2 * _MARGIN:
            note = (f"channels {span} of {n_all} · page {page + 1}/{pages} · "
                    f"others Σ = {d.fmt(rest, integral)}")
        d.put_text(draw, (_MARGIN, rows_bottom + 4), note, font=d.get_font(14), fill=d.MUTED)
        rows_bottom += 30
    if lay.below:
        ox, otop = _MARGIN, rows_bottom + 8
    else:
        ox, otop = rows_right + _GAP, _TITLE_H
    out_bottom = _draw_output(image, draw, trace, spec, (y0, y1, x0, x1), whole, done, out_scale,
                              out_channels, (ox, otop), cell, integral, grids)
    text_top = max(rows_bottom, out_bottom) + 18
    _draw_sums(draw, trace, spec, picked, engine_value, integral, text_top,
               compact=(box or _DEFAULT_BOX)[1] < _COMPACT_BELOW)
    return Frame(np.asarray(image), tuple(grids), page, pages, tuple(int(c) for c in shown), numbers)


def _draw_title(draw, trace: UnitTrace, spec: ConvSpec, title: str, out_channels: int | None) -> None:
    o = trace.out_channel
    of_o = f" of {out_channels}" if out_channels else ""
    d.put_text(draw, (_MARGIN, 10), title or "Convolution, step by step", font=d.get_font(17, True),
               fill=d.INK)
    d.put_text(draw, (_MARGIN, 34),
               f"filter {o}{of_o} → output channel {o}, position (y={trace.y}, x={trace.x})",
               font=d.get_font(13), fill=d.MUTED)


def _draw_rows(image, draw, trace: UnitTrace, spec: ConvSpec, padded: np.ndarray, pad_mask: np.ndarray,
               picked: list[int], origin: tuple[int, int], cell: int, numbers: bool, integral: bool,
               grids: list[Grid]) -> int:
    """One row per drawn input channel: input × kernel = products → Σ. Returns the rows' bottom."""
    r0, c0 = origin
    _, kh, kw = trace.kernel.shape
    in_h, in_w = cell * padded.shape[1], cell * padded.shape[2]
    k_h, k_w = cell * kh, cell * kw
    row_h = max(in_h, k_h) + 26
    tap_r = trace.rows + spec.pad[0] - r0  # taps of the window, in the shown crop's coordinates
    tap_c = trace.cols + spec.pad[2] - c0
    kscale = float(np.abs(trace.kernel).max(initial=0.0))
    pscale = float(np.abs(trace.products).max(initial=0.0))
    f_small, f_op = d.get_font(13), d.get_font(22, True)
    for i, k in enumerate(picked):
        c = int(trace.input_channels[k])
        y = _TITLE_H + i * row_h + 20
        x = _MARGIN
        d.put_text(draw, (x, y - 18), f"input channel {c}", font=f_small, fill=d.MUTED)
        d.draw_grid(image, y, x, padded[i], cell, colors=d.value_colors(padded[i]), numbers=numbers,
                    integral=integral, padding=pad_mask)
        grids.append(Grid(f"input channel {c} (padded)", x, y, cell, padded[i], (r0, c0)))
        # the window's span (light) and its taps (bold): dilation leaves visible gaps
        draw.rectangle((x + tap_c[0] * cell, y + tap_r[0] * cell, x + (tap_c[-1] + 1) * cell,
                        y + (tap_r[-1] + 1) * cell), outline=(255, 196, 140), width=1)
        for rr in tap_r:
            for cc in tap_c:
                draw.rectangle((x + cc * cell, y + rr * cell, x + (cc + 1) * cell, y + (rr + 1) * cell),
                               outline=d.WINDOW, width=max(2, cell // 10))
        x += in_w
        mid = y + max(in_h, k_h) / 2
        ky = y + (max(in_h, k_h) - k_h) // 2
        for op, label, values, scale in (("×", "kernel", trace.kernel, kscale),
                                         ("=", "products", trace.products, pscale)):
            d.put_text_center(draw, x + _OP_W / 2, mid, op, f_op, d.MUTED)
            x += _OP_W
            d.put_text(draw, (x, ky - 17), label, font=f_small, fill=d.MUTED)
            d.draw_grid(image, ky, x, values[k], cell, colors=d.value_colors(values[k], scale),
                        numbers=numbers, integral=integral)
            grids.append(Grid(f"{label}, channel {c}", x, ky, cell, values[k]))
            x += k_w
        d.put_text_center(draw, x + _OP_W / 2, mid, "→", f_op, d.MUTED)
        x += _OP_W
        d.put_text(draw, (x, mid - 20), "Σ", font=f_small, fill=d.MUTED)
        d.put_text(draw, (x, mid - 4), d.fmt(float(trace.channel_sums[k]), integral),
                   font=d.get_font(16, True), fill=d.INK)
    return _TITLE_H + len(picked) * row_h


def _draw_output(image, draw, trace: UnitTrace, spec: ConvSpec, region, whole: bool, done, out_scale,
                 out_channels, at: tuple[int, int], cell: int, integral: bool, grids: list[Grid]) -> int:
    """The output grid filling up, this filter's channel in front of the others. Returns its bottom."""
    y0, y1, x0, x1 = region
    ox, top = at
    o = trace.out_channel
    deck = min(out_channels - 1, 3) if out_channels else 0
    oy = top + 20 + 6 * deck
    out_w_px, out_h_px = cell * (x1 - x0), cell * (y1 - y0)
    label = f"output channel {o}" + (f"  (1 of {out_channels} stacked)" if deck else "")
    d.put_text(draw, (ox, top), label, font=d.get_font(13), fill=d.MUTED)
    for k in range(deck, 0, -1):  # the other filters' channels, stacked behind this one
        s = 6 * k
        draw.rectangle((ox + s, oy - s, ox + out_w_px + s, oy + out_h_px - s), fill=d.PENDING, outline=d.GRID)
    out_vals = np.full((y1 - y0, x1 - x0), np.nan)
    if done is not None:
        out_vals[:] = np.asarray(done, dtype=np.float64)[y0:y1, x0:x1]
    out_vals[trace.y - y0, trace.x - x0] = trace.value
    pending = np.isnan(out_vals)
    values = np.nan_to_num(out_vals)
    scale = out_scale if out_scale else float(np.nanmax(np.abs(out_vals), initial=0.0))
    d.draw_grid(image, oy, ox, values, cell, colors=d.value_colors(values, scale),
                numbers=d.numbers_fit(values[~pending], cell, integral), integral=integral, pending=pending)
    grids.append(Grid(f"output channel {o}", ox, oy, cell, values, (y0, x0), pending))
    cy, cx = trace.y - y0, trace.x - x0
    draw.rectangle((ox + cx * cell, oy + cy * cell, ox + (cx + 1) * cell, oy + (cy + 1) * cell),
                   outline=d.WINDOW, width=3)
    bottom = oy + out_h_px
    if not whole:
        d.put_text(draw, (ox, bottom + 4),
                   f"rows {y0}–{y1 - 1}, cols {x0}–{x1 - 1} of {spec.out_h}×{spec.out_w}",
                   font=d.get_font(13), fill=d.MUTED)
    return bottom + 24


def _draw_sums(draw, trace: UnitTrace, spec: ConvSpec, picked: list[int], engine_value: float | None,
               integral: bool, ty: int, compact: bool) -> None:
    """The sum over channels, the bias, the result, the engine's value and (unless ``compact``:
    the side panel shows them) the size formulas."""
    f_text = d.get_font(14)
    sums = [d.fmt(float(trace.channel_sums[k]), integral) for k in picked]
    terms = " + ".join(f"({s})" if s.startswith("-") else s for s in sums)
    others = len(trace.channel_sums) - len(picked)
    if others:
        rest = float(np.delete(trace.channel_sums, picked).sum())
        terms += f" + … ({others} more: {d.fmt(rest, integral)})"
    total = d.fmt(float(trace.channel_sums.sum()), integral)
    line = f"sum over channels: {terms}  =  {total}"
    if draw.textlength(line, font=f_text) > draw.im.size[0] - 2 * _MARGIN:  # a narrow frame: the total
        line = f"sum over all {len(trace.channel_sums)} channels  =  {total}"
    d.put_text(draw, (_MARGIN, ty), line, font=f_text, fill=d.INK)
    line = f"+ bias {d.fmt(trace.bias, integral)}  =  "
    d.put_text(draw, (_MARGIN, ty + _LINE_H + 2), line, font=f_text, fill=d.INK)
    vx = _MARGIN + draw.textlength(line, font=f_text)
    value_text = d.fmt(trace.value, integral) if integral else f"{trace.value:.4f}"
    d.put_text(draw, (vx, ty + _LINE_H - 1), f"out[{trace.out_channel}, {trace.y}, {trace.x}] = {value_text}",
               font=d.get_font(17, True), fill=(200, 80, 0))
    if engine_value is not None:
        ok = agrees(trace.value, engine_value)
        shown_value = d.fmt(engine_value, True) if integral else f"{engine_value:.4f}"
        d.put_text(draw, (_MARGIN, ty + 2 * _LINE_H + 4),
                   f"engine's feature map at this unit: {shown_value}   {'✓ equal' if ok else '✗ differs'}",
                   font=f_text, fill=(30, 130, 60) if ok else (200, 30, 30))
    if compact:
        return
    lines = [*layer_formulas(spec), f"stride {spec.stride[0]}×{spec.stride[1]} · dilation {spec.dilation[0]}×"
             f"{spec.dilation[1]} · padding {spec.pad[0]},{spec.pad[2]} ({spec.padding_mode})"]
    for i, line in enumerate(lines):
        d.put_text(draw, (_MARGIN, ty + (3 + i) * _LINE_H + 4), line, font=d.get_font(13), fill=d.MUTED)
