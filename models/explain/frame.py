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
from models.explain import parts
from models.explain.arithmetic import positions, region_of
from models.explain.layout import (
    COMPACT_BELOW,
    DEFAULT_BOX,
    GAP,
    HIDDEN_NOTE,
    LABEL,
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
from models.explain.parts import Grid


@dataclass(frozen=True)
class Frame:
    """A drawn frame: ``image`` ``(H, W, 3)`` uint8, its grids, and the channel pages.

    ``cell`` is the kernel's and products' cells in pixels, ``number_px`` the numbers' font size
    in them (None when they show colours only; ``numbers`` says so); each :class:`Grid` says its
    own (a small pane's "focus" layout draws the input crop and the output in smaller cells,
    colours only, ``context_cell``), ``crop`` the input block drawn ``(row, col, rows, cols)``
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
    context_cell: int = 0  # the input crop's and output's cells (smaller than ``cell`` in "focus")

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


def draw_frame(
    trace: UnitTrace,
    layer_input: np.ndarray,
    conv: ConvSpec,
    *,
    done: np.ndarray | None = None,
    region: tuple[int, int, int, int] | None = None,
    max_channels: int = 3,
    title: str = "",
    engine_value: float | None = None,
    out_scale: float | None = None,
    out_channels: int | None = None,
    box: tuple[int, int] | None = None,
    channel_page: int = 0,
    out_map: np.ndarray | None = None,
) -> Frame:
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
    block = layer_input[
        trace.input_channels,
        max(r0 - spec.pad[0], 0) : max(r1 - spec.pad[0], 0),
        max(c0 - spec.pad[2], 0) : max(c1 - spec.pad[2], 0),
    ]
    integral = bool(
        np.all(np.mod(block, 1) == 0)
        and np.all(np.mod(trace.kernel, 1) == 0)
        and float(trace.bias).is_integer()
    )
    big_in = float(np.abs(block).max(initial=0.0))
    big_k = float(np.abs(trace.kernel).max(initial=0.0))
    negative = float(block.min(initial=0.0)) < 0 or float(trace.kernel.min(initial=0.0)) < 0
    bound = max(big_in, big_k, big_in * big_k)  # no product is larger: the same for every step
    readable = number_cell(np.array([-bound if negative else 0.0, bound]), integral)
    shape = Shape(
        (r1 - r0, c1 - c0),
        span,
        (kh, kw),
        (y1 - y0, x1 - x0),
        n_all,
        max(1, max_channels),
        deck,
        readable,
        not whole,
    )
    lay = layout(tuple(box or DEFAULT_BOX), shape)
    cell, ctx = lay.cell, lay.ctx  # the kernel line's cells; the input crop's and output's
    focus = lay.arrangement == "focus"
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
        :, cr0 : cr0 + lay.crop[0], cc0 : cc0 + lay.crop[1]
    ]
    prow = np.arange(cr0, cr0 + lay.crop[0]) - spec.pad[0]
    pcol = np.arange(cc0, cc0 + lay.crop[1]) - spec.pad[2]
    pad_mask = ((prow < 0) | (prow >= spec.h))[:, None] | ((pcol < 0) | (pcol >= spec.w))[None, :]

    image = Image.new("RGB", (lay.width, lay.height), d.BG)
    draw = ImageDraw.Draw(image)
    # each input row on the scale of its channel's played block: steady while the crop moves
    in_exponents = [d.grid_exponent(np.abs(block[k]).max(initial=0.0), integral) for k in picked]
    numbers = cell >= readable and all(  # in the kernel line
        d.numbers_fit(values, cell, integral, d.grid_exponent(values, integral))
        for values in (*(trace.products[k] for k in picked), *(trace.kernel[k] for k in picked))
    )
    in_numbers = (numbers or focus) and all(
        d.numbers_fit(padded[i], ctx, integral, in_exponents[i]) for i in range(len(picked))
    )
    grids: list[Grid] = []
    parts.draw_title(draw, trace, spec, title, out_channels)
    crop_w, crop_h = lay.crop[1] * ctx, lay.crop[0] * ctx
    out_w, out_h = out_block(ctx, lay.out, deck, lay.overview, not whole)
    line_w = 3 * OP_W + 2 * kw * cell + SUM_W
    if lay.arrangement in ("split", "focus"):
        top_h = max(crop_h + LABEL + 6, out_h)
        at = [((MARGIN, TITLE_H + LABEL), (MARGIN, TITLE_H + top_h + LABEL + 4))]
        out_at = (MARGIN + crop_w + GAP, TITLE_H)
        rows_bottom = TITLE_H + top_h + kh * cell + LABEL + 10
    else:
        row_h = max(lay.crop[0], kh) * cell + LABEL + 6
        at = [
            ((MARGIN, TITLE_H + i * row_h + LABEL), (MARGIN + crop_w, TITLE_H + i * row_h + LABEL))
            for i in range(len(picked))
        ]
        rows_bottom = TITLE_H + len(picked) * row_h
        out_at = None
    for i, k in enumerate(picked):
        parts.draw_channel(
            image,
            draw,
            trace,
            spec,
            k,
            padded[i],
            pad_mask,
            (cr0, cc0),
            at[i],
            ctx,
            in_numbers,
            integral,
            grids,
            in_exponents[i],
            kernel_cell=cell,
            kernel_numbers=numbers,
            sum_below=focus,
        )
    if n_all > len(picked):
        rest = float(np.delete(trace.channel_sums, picked).sum())
        span_text = f"{int(shown[0])}–{int(shown[-1])}" if len(shown) > 1 else f"{int(shown[0])}"
        note = (
            f"input channels {span_text} of {n_all} shown (page {page + 1} of {pages}); the other "
            f"{n_all - len(picked)} are summed too: Σ = {d.fmt_text(rest, integral)}"
        )
        if draw.textlength(note, font=d.get_font(14)) > lay.width - 2 * MARGIN:
            note = (
                f"channels {span_text} of {n_all} · page {page + 1}/{pages} · "
                f"others Σ = {d.fmt_text(rest, integral)}"
            )
        d.put_text(draw, (MARGIN, rows_bottom + 4), note, font=d.get_font(14), fill=d.MUTED)
        rows_bottom += HIDDEN_NOTE
    if out_at is None:
        out_at = (
            (MARGIN, rows_bottom + 8)
            if lay.arrangement == "below"
            else (MARGIN + crop_w + line_w + GAP, TITLE_H)
        )
    out_bottom = parts.draw_output(
        image,
        draw,
        trace,
        spec,
        (y0, y1, x0, x1),
        out_crop,
        whole,
        done,
        out_scale,
        out_channels,
        out_at,
        ctx,
        integral,
        grids,
        callout=focus,
    )
    if lay.overview:
        ox = out_at[0] + out_w - max(lay.overview, MAP_LABEL_W)
        parts.draw_overviews(
            image,
            draw,
            trace,
            spec,
            layer_input[int(shown[0])],
            crop,
            out_crop,
            out_map if out_map is not None else done,
            (ox, out_at[1]),
            lay.overview,
        )
        out_bottom = max(out_bottom, out_at[1] + out_h)
    text_top = max(rows_bottom, out_bottom) + 18
    parts.draw_sums(
        draw,
        trace,
        spec,
        picked,
        engine_value,
        integral,
        text_top,
        compact=(box or DEFAULT_BOX)[1] < COMPACT_BELOW,
    )
    number_px = d.number_font_size(cell) if numbers else None
    return Frame(
        np.asarray(image),
        tuple(grids),
        page,
        pages,
        tuple(int(c) for c in shown),
        numbers,
        cell,
        number_px,
        crop,
        out_crop,
        ctx,
    )
