"""One explainer frame: a kernel's window on the input, the products, the sums and the output.

:func:`draw_frame` lays a frame out to fit a box (the pane that shows it), readable first: the
cells are made large enough for their numbers at 11 px or more (:func:`number_cell`), and what
does not fit at that size is cropped, not shrunk. The input shown is the block the played
positions read when it fits; otherwise a crop of it that follows the sliding kernel (a page of
positions at a time, with a cell of context round the window), and the output grid likewise.
Small maps of the whole input channel and output channel then say where the crop is. The
arrangements tried: each channel a row (input × kernel = products → Σ) with the output beside
or below the rows, or, in a narrow pane, one channel at a time with the kernel line under its
input and the output beside it. As many input channels as fit (at most ``max_channels``), the
others on later pages (``channel_page``). In a box less than 760 px tall the size formulas are
left to the side panel. Only when nothing fits at a readable size do the cells show colours only
(:meth:`Frame.value_at` gives the value under the pointer). The frame's size and crop size
depend only on the box, the region, the kernel, the channel count and the range of the values,
so the frames of one animation share them.
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
from models.explain.layout import (
    COMPACT_BELOW,
    DEFAULT_BOX,
    GAP,
    HIDDEN_NOTE,
    LABEL,
    LINE_H,
    MAP_LABEL_W,
    MARGIN,
    OP_W,
    SUM_W,
    TITLE_H,
    Shape,
    follow,
    follow_out,
    layout,
    number_cell,
    out_block,
)


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
    """A drawn frame: ``image`` ``(H, W, 3)`` uint8, its grids, and the channel pages.

    ``cell`` is the cells' size in pixels, ``number_px`` the numbers' font size in them (None
    when the cells show colours only), ``crop`` the input block drawn ``(row, col, rows, cols)``
    in padded-input coordinates, ``out_crop`` the output block ``(row, col, rows, cols)``."""

    image: np.ndarray = field(repr=False)
    grids: tuple[Grid, ...]
    page: int  # the page of input channels shown
    pages: int
    channels: tuple[int, ...]  # the input channels drawn
    numbers: bool  # values are written in the cells
    cell: int = 0
    number_px: int | None = None
    crop: tuple[int, int, int, int] = (0, 0, 0, 0)
    out_crop: tuple[int, int, int, int] = (0, 0, 0, 0)

    def value_at(self, x: float, y: float) -> str | None:
        """The value of the cell at pixel ``(x, y)`` of the image, as a line of text; None off
        the grids."""
        for g in self.grids:
            text = g.value_at(x, y)
            if text is not None:
                return text
        return None


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
               box: tuple[int, int] | None = None, channel_page: int = 0,
               out_map: np.ndarray | None = None) -> Frame:
    """One explainer frame for one output element.

    Shows, for a page of the input channels the filter reads: the padded input around the
    window (tapped cells outlined, so stride and dilation show as jumps and gaps; padding
    hatched with the values the padding mode put there), the kernel, the element-wise products
    and their sum; then the sum over all channels plus the bias, and the output grid filling up.
    When only a crop of the input or output is drawn, small maps of the whole input channel and
    output channel show where it is.

    Parameters
    ----------
    trace : the unit's terms, from :func:`~models.explain.explain_unit`
    layer_input : ``(C, H, W)`` the layer's (unpadded) input
    conv : the layer's convolution
    done : ``(H_out, W_out)`` output values computed so far, NaN where not yet (None: only this unit)
    region : ``(y0, y1, x0, x1)`` the output block played (None: :func:`default_region`); the
        input drawn is what that block's windows read, or a crop of it that follows the window
    engine_value : the engine's feature-map value at this unit, shown beside the traced value
    out_scale : colour scale of the output grid (max |value|), fixed across an animation
    out_channels : how many filters the layer has (for the "filter o of O" caption)
    max_channels : at most this many input channels per page
    box : ``(width, height)`` in pixels the frame should fit in (None: 1400x1000)
    channel_page : which page of input channels to draw (clipped to the pages there are)
    out_map : ``(H_out, W_out)`` the engine's whole output channel, for the small map (None: ``done``)
    """
    layer_input = np.asarray(layer_input)
    _, kh, kw = trace.kernel.shape
    spec = conv
    sh, sw = spec.stride
    dh, dw = spec.dilation
    span = ((kh - 1) * dh + 1, (kw - 1) * dw + 1)
    if region is None:
        region = default_region(spec, trace.y, trace.x)
    y0, y1, x0, x1 = region
    y0, y1 = min(y0, trace.y), max(y1, trace.y + 1)
    x0, x1 = min(x0, trace.x), max(x1, trace.x + 1)
    whole = (y0, y1, x0, x1) == (0, spec.out_h, 0, spec.out_w)
    if whole:  # the whole padded input, rows the stride never reaches included
        r0, r1, c0, c1 = 0, spec.hp, 0, spec.wp
    else:
        r0, r1 = y0 * sh, (y1 - 1) * sh + span[0]
        c0, c1 = x0 * sw, (x1 - 1) * sw + span[1]

    n_all = len(trace.input_channels)
    deck = min(out_channels - 1, 3) if out_channels else 0
    # the input the played positions read (padding repeats its values or is 0): the numbers'
    # range and kind, the same for every step of the animation
    block = layer_input[trace.input_channels, max(r0 - spec.pad[0], 0):max(r1 - spec.pad[0], 0),
                        max(c0 - spec.pad[2], 0):max(c1 - spec.pad[2], 0)]
    integral = bool(np.all(np.mod(block, 1) == 0) and np.all(np.mod(trace.kernel, 1) == 0)
                    and float(trace.bias).is_integer())
    big_in = float(np.abs(block).max(initial=0.0))
    big_k = float(np.abs(trace.kernel).max(initial=0.0))
    negative = float(block.min(initial=0.0)) < 0 or float(trace.kernel.min(initial=0.0)) < 0
    bound = max(big_in, big_k, big_in * big_k)  # no product is larger: the same for every step
    readable = number_cell(np.array([-bound if negative else 0.0, bound]), integral)
    shape = Shape((r1 - r0, c1 - c0), span, (kh, kw), (y1 - y0, x1 - x0), n_all, max(1, max_channels),
                   deck, readable, not whole)
    lay = layout(tuple(box or DEFAULT_BOX), shape)
    cell = lay.cell
    # the input crop round this window, and the output crop round this unit
    cr0 = follow(trace.y, y0, sh, span[0], lay.crop[0], r0, r1, spec.hp)
    cc0 = follow(trace.x, x0, sw, span[1], lay.crop[1], c0, c1, spec.wp)
    oy0 = follow_out(trace.y, y0, lay.out[0], y1)
    ox0 = follow_out(trace.x, x0, lay.out[1], x1)
    crop = (cr0, cc0, lay.crop[0], lay.crop[1])
    out_crop = (oy0, ox0, lay.out[0], lay.out[1])

    pages = math.ceil(n_all / lay.rows)
    page = int(np.clip(channel_page, 0, pages - 1))
    first = page * lay.rows
    picked = list(range(first, min(first + lay.rows, n_all)))  # indices into the trace's channels
    shown = trace.input_channels[picked]
    padded = pad_input(layer_input[None, shown], spec.pad, spec.padding_mode)[0][
        :, cr0:cr0 + lay.crop[0], cc0:cc0 + lay.crop[1]]
    prow = np.arange(cr0, cr0 + lay.crop[0]) - spec.pad[0]
    pcol = np.arange(cc0, cc0 + lay.crop[1]) - spec.pad[2]
    pad_mask = ((prow < 0) | (prow >= spec.h))[:, None] | ((pcol < 0) | (pcol >= spec.w))[None, :]

    image = Image.new("RGB", (lay.width, lay.height), d.BG)
    draw = ImageDraw.Draw(image)
    numbers = cell >= readable and all(d.numbers_fit(values, cell, integral)
                                       for values in (padded, trace.products[picked], trace.kernel[picked]))
    grids: list[Grid] = []
    _draw_title(draw, trace, spec, title, out_channels)
    crop_w, crop_h = lay.crop[1] * cell, lay.crop[0] * cell
    out_w, out_h = out_block(cell, lay.out, deck, lay.overview, not whole)
    line_w = 3 * OP_W + 2 * kw * cell + SUM_W
    if lay.arrangement == "split":
        top_h = max(crop_h + LABEL + 6, out_h)
        at = [((MARGIN, TITLE_H + LABEL), (MARGIN, TITLE_H + top_h + LABEL + 4))]
        out_at = (MARGIN + crop_w + GAP, TITLE_H)
        rows_bottom = TITLE_H + top_h + kh * cell + LABEL + 10
    else:
        row_h = max(lay.crop[0], kh) * cell + LABEL + 6
        at = [((MARGIN, TITLE_H + i * row_h + LABEL), (MARGIN + crop_w, TITLE_H + i * row_h + LABEL))
              for i in range(len(picked))]
        rows_bottom = TITLE_H + len(picked) * row_h
        out_at = None
    for i, k in enumerate(picked):
        _draw_channel(image, draw, trace, spec, k, padded[i], pad_mask, (cr0, cc0), at[i], cell, numbers,
                      integral, grids)
    if n_all > len(picked):
        rest = float(np.delete(trace.channel_sums, picked).sum())
        span_text = f"{int(shown[0])}–{int(shown[-1])}" if len(shown) > 1 else f"{int(shown[0])}"
        note = (f"input channels {span_text} of {n_all} shown (page {page + 1} of {pages}); the other "
                f"{n_all - len(picked)} are summed too: Σ = {d.fmt(rest, integral)}")
        if draw.textlength(note, font=d.get_font(14)) > lay.width - 2 * MARGIN:
            note = (f"channels {span_text} of {n_all} · page {page + 1}/{pages} · "
                    f"others Σ = {d.fmt(rest, integral)}")
        d.put_text(draw, (MARGIN, rows_bottom + 4), note, font=d.get_font(14), fill=d.MUTED)
        rows_bottom += HIDDEN_NOTE
    if out_at is None:
        out_at = (MARGIN, rows_bottom + 8) if lay.arrangement == "below" else \
            (MARGIN + crop_w + line_w + GAP, TITLE_H)
    out_bottom = _draw_output(image, draw, trace, spec, (y0, y1, x0, x1), out_crop, whole, done, out_scale,
                              out_channels, out_at, cell, integral, grids)
    if lay.overview:
        ox = out_at[0] + out_w - max(lay.overview, MAP_LABEL_W)
        _draw_overviews(image, draw, trace, spec, layer_input[int(shown[0])], crop, out_crop,
                        out_map if out_map is not None else done, (ox, out_at[1]), lay.overview)
        out_bottom = max(out_bottom, out_at[1] + out_h)
    text_top = max(rows_bottom, out_bottom) + 18
    _draw_sums(draw, trace, spec, picked, engine_value, integral, text_top,
               compact=(box or DEFAULT_BOX)[1] < COMPACT_BELOW)
    number_px = d.number_font_size(cell) if numbers else None
    return Frame(np.asarray(image), tuple(grids), page, pages, tuple(int(c) for c in shown), numbers,
                 cell, number_px, crop, out_crop)


def _draw_title(draw, trace: UnitTrace, spec: ConvSpec, title: str, out_channels: int | None) -> None:
    o = trace.out_channel
    of_o = f" of {out_channels}" if out_channels else ""
    d.put_text(draw, (MARGIN, 10), title or "Convolution, step by step", font=d.get_font(17, True),
               fill=d.INK)
    d.put_text(draw, (MARGIN, 34),
               f"filter {o}{of_o} → output channel {o}, position (y={trace.y}, x={trace.x})",
               font=d.get_font(13), fill=d.MUTED)


def _draw_channel(image, draw, trace: UnitTrace, spec: ConvSpec, k: int, padded: np.ndarray,
                  pad_mask: np.ndarray, origin: tuple[int, int], at, cell: int, numbers: bool,
                  integral: bool, grids: list[Grid]) -> None:
    """One input channel: its crop at ``at[0]``, then × kernel = products → Σ from ``at[1]`` on
    (beside the crop, or on a line of its own under it)."""
    r0, c0 = origin
    (x, y), (lx, ly) = at
    _, kh, kw = trace.kernel.shape
    in_h = cell * padded.shape[0]
    k_h, k_w = cell * kh, cell * kw
    tap_r = trace.rows + spec.pad[0] - r0  # taps of the window, in the crop's coordinates
    tap_c = trace.cols + spec.pad[2] - c0
    f_small, f_op = d.get_font(13), d.get_font(22, True)
    c = int(trace.input_channels[k])
    d.put_text(draw, (x, y - 18), f"input channel {c}", font=f_small, fill=d.MUTED)
    d.draw_grid(image, y, x, padded, cell, colors=d.value_colors(padded), numbers=numbers,
                integral=integral, padding=pad_mask)
    grids.append(Grid(f"input channel {c} (padded)", x, y, cell, padded, (r0, c0)))
    # the window's span (light) and its taps (bold): dilation leaves visible gaps
    draw.rectangle((x + tap_c[0] * cell, y + tap_r[0] * cell, x + (tap_c[-1] + 1) * cell,
                    y + (tap_r[-1] + 1) * cell), outline=(255, 196, 140), width=1)
    for rr in tap_r:
        for cc in tap_c:
            draw.rectangle((x + cc * cell, y + rr * cell, x + (cc + 1) * cell, y + (rr + 1) * cell),
                           outline=d.WINDOW, width=max(2, cell // 10))
    if ly == y:  # beside the crop: centred on it
        mid = y + max(in_h, k_h) / 2
        ky = y + (max(in_h, k_h) - k_h) // 2
    else:
        mid, ky = ly + k_h / 2, ly
    kscale = float(np.abs(trace.kernel).max(initial=0.0))
    pscale = float(np.abs(trace.products).max(initial=0.0))
    x = lx
    for op, label, values, scale in (("×", "kernel", trace.kernel, kscale),
                                     ("=", "products", trace.products, pscale)):
        d.put_text_center(draw, x + OP_W / 2, mid, op, f_op, d.MUTED)
        x += OP_W
        d.put_text(draw, (x, ky - 17), label, font=f_small, fill=d.MUTED)
        d.draw_grid(image, ky, x, values[k], cell, colors=d.value_colors(values[k], scale),
                    numbers=numbers, integral=integral)
        grids.append(Grid(f"{label}, channel {c}", x, ky, cell, values[k]))
        x += k_w
    d.put_text_center(draw, x + OP_W / 2, mid, "→", f_op, d.MUTED)
    x += OP_W
    d.put_text(draw, (x, mid - 20), "Σ", font=f_small, fill=d.MUTED)
    d.put_text(draw, (x, mid - 4), d.fmt(float(trace.channel_sums[k]), integral),
               font=d.get_font(16, True), fill=d.INK)


def _draw_output(image, draw, trace: UnitTrace, spec: ConvSpec, region, out_crop, whole: bool, done,
                 out_scale, out_channels, at: tuple[int, int], cell: int, integral: bool,
                 grids: list[Grid]) -> int:
    """The output grid filling up, this filter's channel in front of the others. Returns its bottom."""
    y0, y1, x0, x1 = region
    oy0, ox0, oh, ow = out_crop
    ox, top = at
    o = trace.out_channel
    deck = min(out_channels - 1, 3) if out_channels else 0
    oy = top + LABEL + 6 * deck
    out_w_px, out_h_px = cell * ow, cell * oh
    label = f"output channel {o}" + (f" of {out_channels}" if deck else "")
    d.put_text(draw, (ox, top), label, font=d.get_font(12), fill=d.MUTED)
    for k in range(deck, 0, -1):  # the other filters' channels, stacked behind this one
        s = 6 * k
        draw.rectangle((ox + s, oy - s, ox + out_w_px + s, oy + out_h_px - s), fill=d.PENDING, outline=d.GRID)
    out_vals = np.full((oh, ow), np.nan)
    if done is not None:
        out_vals[:] = np.asarray(done, dtype=np.float64)[oy0:oy0 + oh, ox0:ox0 + ow]
    out_vals[trace.y - oy0, trace.x - ox0] = trace.value
    pending = np.isnan(out_vals)
    values = np.nan_to_num(out_vals)
    if out_scale:
        scale = out_scale
    else:
        scale = float(np.nanmax(np.abs(out_vals), initial=0.0))
    d.draw_grid(image, oy, ox, values, cell, colors=d.value_colors(values, scale),
                numbers=d.numbers_fit(values[~pending], cell, integral), integral=integral, pending=pending)
    grids.append(Grid(f"output channel {o}", ox, oy, cell, values, (oy0, ox0), pending))
    cy, cx = trace.y - oy0, trace.x - ox0
    draw.rectangle((ox + cx * cell, oy + cy * cell, ox + (cx + 1) * cell, oy + (cy + 1) * cell),
                   outline=d.WINDOW, width=3)
    bottom = oy + out_h_px
    if not whole or (oh, ow) != (y1 - y0, x1 - x0):
        d.put_text(draw, (ox, bottom + 4), f"rows {oy0}–{oy0 + oh - 1} · cols {ox0}–{ox0 + ow - 1}",
                   font=d.get_font(12), fill=d.MUTED)
    return bottom + 24


def _thumbnail(values: np.ndarray, side: int) -> tuple[np.ndarray, float]:
    """``values`` as colours, resized (nearest) so its longer side is about ``side`` px; the scale."""
    h, w = values.shape
    scale = side / max(h, w)
    rows = np.minimum((np.arange(max(1, round(h * scale))) / scale).astype(int), h - 1)
    cols = np.minimum((np.arange(max(1, round(w * scale))) / scale).astype(int), w - 1)
    pending = np.isnan(values)
    colors = d.value_colors(np.nan_to_num(values))
    colors[pending] = d.PENDING
    return colors[rows][:, cols], scale


def _draw_overviews(image, draw, trace: UnitTrace, spec: ConvSpec, channel: np.ndarray, crop, out_crop,
                    out_map: np.ndarray | None, at: tuple[int, int], side: int) -> None:
    """Small maps of the whole input channel (the crop drawn outlined, the window in orange) and
    of the output channel (the block drawn outlined, the unit in orange)."""
    x, y = at
    f_small = d.get_font(12)
    thumb, s = _thumbnail(np.asarray(channel, dtype=np.float64), side)
    d.put_text(draw, (x, y), f"input {spec.h}×{spec.w}", font=f_small, fill=d.MUTED)
    top = y + LABEL - 2
    image.paste(Image.fromarray(np.ascontiguousarray(thumb)), (x, top))
    r0, c0, rh, cw = crop
    pr, pc = spec.pad[0], spec.pad[2]

    def box(r, c, h, w, color, width):
        draw.rectangle((x + max(0, (c - pc)) * s, top + max(0, (r - pr)) * s,
                        x + min(spec.w, c - pc + w) * s, top + min(spec.h, r - pr + h) * s),
                       outline=color, width=width)

    box(r0, c0, rh, cw, d.INK, 1)
    span_h = int(trace.rows[-1] - trace.rows[0] + 1)
    span_w = int(trace.cols[-1] - trace.cols[0] + 1)
    box(int(trace.rows[0]) + pr, int(trace.cols[0]) + pc, span_h, span_w, d.WINDOW, 2)
    y = top + thumb.shape[0] + 10
    if out_map is None:
        return
    thumb, s = _thumbnail(np.asarray(out_map, dtype=np.float64), side)
    d.put_text(draw, (x, y), f"output {spec.out_h}×{spec.out_w}", font=f_small, fill=d.MUTED)
    top = y + LABEL - 2
    image.paste(Image.fromarray(np.ascontiguousarray(thumb)), (x, top))
    oy0, ox0, oh, ow = out_crop
    draw.rectangle((x + ox0 * s, top + oy0 * s, x + (ox0 + ow) * s, top + (oy0 + oh) * s),
                   outline=d.INK, width=1)
    draw.rectangle((x + trace.x * s - 1, top + trace.y * s - 1, x + (trace.x + 1) * s + 1,
                    top + (trace.y + 1) * s + 1), outline=d.WINDOW, width=2)


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
    if draw.textlength(line, font=f_text) > draw.im.size[0] - 2 * MARGIN:  # a narrow frame: the total
        line = f"sum over all {len(trace.channel_sums)} channels  =  {total}"
    d.put_text(draw, (MARGIN, ty), line, font=f_text, fill=d.INK)
    line = f"+ bias {d.fmt(trace.bias, integral)}  =  "
    d.put_text(draw, (MARGIN, ty + LINE_H + 2), line, font=f_text, fill=d.INK)
    vx = MARGIN + draw.textlength(line, font=f_text)
    value_text = d.fmt(trace.value, integral) if integral else f"{trace.value:.4f}"
    d.put_text(draw, (vx, ty + LINE_H - 1), f"out[{trace.out_channel}, {trace.y}, {trace.x}] = {value_text}",
               font=d.get_font(17, True), fill=(200, 80, 0))
    if engine_value is not None:
        ok = agrees(trace.value, engine_value)
        shown_value = d.fmt(engine_value, True) if integral else f"{engine_value:.4f}"
        line = f"engine's feature map at this unit: {shown_value}   {'✓ equal' if ok else '✗ differs'}"
        if draw.textlength(line, font=f_text) > draw.im.size[0] - 2 * MARGIN:  # a narrow frame
            line = f"engine: {shown_value}  {'✓ equal' if ok else '✗ differs'}"
        d.put_text(draw, (MARGIN, ty + 2 * LINE_H + 4), line, font=f_text,
                   fill=(30, 130, 60) if ok else (200, 30, 30))
    if compact:
        return
    lines = [*layer_formulas(spec), f"stride {spec.stride[0]}×{spec.stride[1]} · dilation {spec.dilation[0]}×"
             f"{spec.dilation[1]} · padding {spec.pad[0]},{spec.pad[2]} ({spec.padding_mode})"]
    for i, line in enumerate(lines):
        d.put_text(draw, (MARGIN, ty + (3 + i) * LINE_H + 4), line, font=d.get_font(13), fill=d.MUTED)
