"""The parts of an explainer frame, each drawn where :func:`models.explain.frame.draw_frame`
laid it out: the title, one input channel's row (input × kernel = products → Σ), the output
grid, the small maps of the whole channels, and the sums. :class:`Grid` records what each grid
holds, for values on hover."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from engine import ConvSpec
from engine.direct import UnitTrace
from models.explain import drawing as d
from models.explain.arithmetic import agrees, layer_formulas
from models.explain.layout import (
    CAPTION_W,
    GAP,
    LABEL,
    LINE_H,
    MARGIN,
    OP_W,
    OUT_LABEL_W,
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
    exponent: int = 0  # numbers written in units of 10**exponent (the caption's "×10⁻³")
    integral: bool = False
    numbers: bool = False  # numbers written in the cells (else colours only)

    def text(self, r: int, c: int) -> str | None:
        """The number written in cell ``(r, c)`` (None: colours only, or no value yet)."""
        if not self.numbers or (self.missing is not None and self.missing[r, c]):
            return None
        return d.fmt(float(self.values[r, c]), self.integral, self.exponent)

    def value_at(self, x: float, y: float) -> str | None:
        r, c = int((y - self.top) // self.cell), int((x - self.left) // self.cell)
        h, w = self.values.shape
        if not (0 <= r < h and 0 <= c < w and x >= self.left and y >= self.top):
            return None
        if self.missing is not None and self.missing[r, c]:
            return f"{self.name} [{r + self.origin[0]}, {c + self.origin[1]}]: not computed yet"
        return f"{self.name} [{r + self.origin[0]}, {c + self.origin[1]}] = {float(self.values[r, c]):.5g}"


def draw_title(draw, trace: UnitTrace, spec: ConvSpec, title: str, out_channels: int | None) -> None:
    """The layer's name and the unit, shortened to the frame's width (a narrow pane's frame)."""
    o = trace.out_channel
    of_o = f" of {out_channels}" if out_channels else ""
    room = draw.im.size[0] - 2 * MARGIN
    f_title = d.get_font(17, True)
    text = d.elide_middle(draw, title or "Convolution, step by step", room, f_title)
    d.put_text(draw, (MARGIN, 10), text, font=f_title, fill=d.INK)
    where = f"y={trace.y}, x={trace.x}"
    line = d.caption(
        draw,
        [
            f"filter {o}{of_o} → output channel {o}, position ({where})",
            f"filter {o}{of_o} → output channel {o} at ({where})",
            f"filter {o}{of_o} at ({where})",
            f"filter {o} ({where})",
        ],
        room,
        d.get_font(13),
    )
    d.put_text(draw, (MARGIN, 34), line, font=d.get_font(13), fill=d.MUTED)


def draw_channel(
    image,
    draw,
    trace: UnitTrace,
    spec: ConvSpec,
    k: int,
    padded: np.ndarray,
    pad_mask: np.ndarray,
    origin: tuple[int, int],
    at,
    cell: int,
    numbers: bool,
    integral: bool,
    grids: list[Grid],
    in_exponent: int = 0,
    *,
    kernel_cell: int | None = None,
    kernel_numbers: bool | None = None,
    sum_below: bool = False,
) -> None:
    """One input channel: its crop at ``at[0]``, then × kernel = products → Σ from ``at[1]`` on
    (beside the crop, or on a line of its own under it). Each grid writes its numbers on its own
    scale (:func:`~models.explain.drawing.grid_exponent`; the input's, ``in_exponent``, is the
    played block's, so it holds while the crop moves), marked at its caption. The kernel line's
    cells are ``kernel_cell`` (default ``cell``), with numbers if ``kernel_numbers`` (default
    ``numbers``); ``sum_below`` writes the channel's Σ over the products instead of beside them
    (a narrow pane)."""
    r0, c0 = origin
    (x, y), (lx, ly) = at
    _, kh, kw = trace.kernel.shape
    kcell = kernel_cell or cell
    knumbers = numbers if kernel_numbers is None else kernel_numbers
    in_h = cell * padded.shape[0]
    k_h, k_w = kcell * kh, kcell * kw
    tap_r = trace.rows + spec.pad[0] - r0  # taps of the window, in the crop's coordinates
    tap_c = trace.cols + spec.pad[2] - c0
    f_small, f_op = d.get_font(13), d.get_font(22, True)
    c = int(trace.input_channels[k])
    mark = d.scale_mark(in_exponent)
    room = padded.shape[1] * cell + (OP_W if ly == y else GAP) - 6  # up to the next label
    caption = d.caption(
        draw, [f"input channel {c} {mark}".strip(), f"input {c} {mark}".strip()], room, f_small
    )
    d.put_text(draw, (x, y - 18), caption, font=f_small, fill=d.MUTED)
    d.draw_grid(
        image,
        y,
        x,
        padded,
        cell,
        colors=d.value_colors(padded),
        numbers=numbers,
        integral=integral,
        padding=pad_mask,
        exponent=in_exponent,
    )
    grids.append(
        Grid(
            f"input channel {c} (padded)", x, y, cell, padded, (r0, c0), None, in_exponent, integral, numbers
        )
    )
    # the window's span (light) and its taps (bold): dilation leaves visible gaps
    draw.rectangle(
        (x + tap_c[0] * cell, y + tap_r[0] * cell, x + (tap_c[-1] + 1) * cell, y + (tap_r[-1] + 1) * cell),
        outline=(255, 196, 140),
        width=1,
    )
    for rr in tap_r:
        for cc in tap_c:
            draw.rectangle(
                (x + cc * cell, y + rr * cell, x + (cc + 1) * cell, y + (rr + 1) * cell),
                outline=d.WINDOW,
                width=max(2, cell // 10),
            )
    if ly == y:  # beside the crop: centred on it
        mid = y + max(in_h, k_h) / 2
        ky = y + (max(in_h, k_h) - k_h) // 2
    else:
        mid, ky = ly + k_h / 2, ly
    total = d.fmt_text(float(trace.channel_sums[k]), integral)
    kscale = float(np.abs(trace.kernel).max(initial=0.0))
    pscale = float(np.abs(trace.products).max(initial=0.0))
    x = lx
    for op, label, values, scale in (
        ("×", "kernel", trace.kernel, kscale),
        ("=", "products", trace.products, pscale),
    ):
        d.put_text_center(draw, x + OP_W / 2, mid, op, f_op, d.MUTED)
        x += OP_W
        exponent = d.grid_exponent(values[k], integral)
        caption = f"{label} {d.scale_mark(exponent)}".strip()
        if sum_below and label == "products":  # a narrow pane: the channel's Σ over its products
            f_sum, sum_text = d.get_font(15, True), f"Σ {total}"
            room = draw.im.size[0] - MARGIN // 2 - x - draw.textlength(sum_text, font=f_sum) - 10
            caption = d.caption(draw, [caption, d.scale_mark(exponent)], room, f_small)
            sum_x = x + (draw.textlength(caption, font=f_small) + 10 if caption else 0)
            d.put_text(draw, (sum_x, ky - 19), sum_text, font=f_sum, fill=d.INK)
        d.put_text(draw, (x, ky - 17), caption, font=f_small, fill=d.MUTED)
        d.draw_grid(
            image,
            ky,
            x,
            values[k],
            kcell,
            colors=d.value_colors(values[k], scale),
            numbers=knumbers,
            integral=integral,
            exponent=exponent,
        )
        grids.append(
            Grid(f"{label}, channel {c}", x, ky, kcell, values[k], (0, 0), None, exponent, integral, knumbers)
        )
        x += k_w
    if sum_below:
        return
    d.put_text_center(draw, x + OP_W / 2, mid, "→", f_op, d.MUTED)
    x += OP_W
    d.put_text(draw, (x, mid - 20), "Σ", font=f_small, fill=d.MUTED)
    d.put_text(
        draw,
        (x, mid - 4),
        total,
        font=d.get_font(16, True),
        fill=d.INK,
    )


def draw_output(
    image,
    draw,
    trace: UnitTrace,
    spec: ConvSpec,
    region,
    out_crop,
    whole: bool,
    done,
    out_scale,
    out_channels,
    at: tuple[int, int],
    cell: int,
    integral: bool,
    grids: list[Grid],
    callout: bool = False,
) -> int:
    """The output grid filling up, this filter's channel in front of the others; with
    ``callout``, the unit's value written under it (instead of the rows and columns shown) when
    its cells are too small for numbers.
    Returns its bottom."""
    y0, y1, x0, x1 = region
    oy0, ox0, oh, ow = out_crop
    ox, top = at
    o = trace.out_channel
    deck = min(out_channels - 1, 3) if out_channels else 0
    oy = top + LABEL + 6 * deck
    out_w_px, out_h_px = cell * ow, cell * oh
    out_vals = np.full((oh, ow), np.nan)
    if done is not None:
        out_vals[:] = np.asarray(done, dtype=np.float64)[oy0 : oy0 + oh, ox0 : ox0 + ow]
    out_vals[trace.y - oy0, trace.x - ox0] = trace.value
    pending = np.isnan(out_vals)
    values = np.nan_to_num(out_vals)
    if out_scale:
        scale = out_scale
    else:
        scale = float(np.nanmax(np.abs(out_vals), initial=0.0))
    exponent = d.grid_exponent(scale, integral)  # the animation's range: one scale all along
    mark = d.scale_mark(exponent)
    room = max(out_w_px + 6 * deck, OUT_LABEL_W if whole else CAPTION_W) + 10  # up to the small maps
    label = d.caption(
        draw,
        [
            f"output channel {o}" + (f" of {out_channels}" if deck else "") + f" {mark}".rstrip(),
            f"output channel {o} {mark}".strip(),
            f"output {o} {mark}".strip(),
        ],
        room,
        d.get_font(12),
    )
    d.put_text(draw, (ox, top), label, font=d.get_font(12), fill=d.MUTED)
    for k in range(deck, 0, -1):  # the other filters' channels, stacked behind this one
        s = 6 * k
        draw.rectangle((ox + s, oy - s, ox + out_w_px + s, oy + out_h_px - s), fill=d.PENDING, outline=d.GRID)
    numbers = d.numbers_fit(values[~pending], cell, integral, exponent)
    d.draw_grid(
        image,
        oy,
        ox,
        values,
        cell,
        colors=d.value_colors(values, scale),
        numbers=numbers,
        integral=integral,
        pending=pending,
        exponent=exponent,
    )
    grids.append(
        Grid(f"output channel {o}", ox, oy, cell, values, (oy0, ox0), pending, exponent, integral, numbers)
    )
    cy, cx = trace.y - oy0, trace.x - ox0
    draw.rectangle(
        (ox + cx * cell, oy + cy * cell, ox + (cx + 1) * cell, oy + (cy + 1) * cell),
        outline=d.WINDOW,
        width=3,
    )
    bottom = oy + out_h_px
    if callout and not numbers:  # the value in focus, readable whatever the cells' size
        text = f"[{trace.y}, {trace.x}] = {d.fmt_text(trace.value, integral)}"
        d.put_text(draw, (ox, bottom + 3), text, font=d.get_font(13, True), fill=d.WINDOW_INK)
    elif not whole or (oh, ow) != (y1 - y0, x1 - x0):
        d.put_text(
            draw,
            (ox, bottom + 4),
            f"rows {oy0}–{oy0 + oh - 1} · cols {ox0}–{ox0 + ow - 1}",
            font=d.get_font(12),
            fill=d.MUTED,
        )
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


def draw_overviews(
    image,
    draw,
    trace: UnitTrace,
    spec: ConvSpec,
    channel: np.ndarray,
    crop,
    out_crop,
    out_map: np.ndarray | None,
    at: tuple[int, int],
    side: int,
) -> None:
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
        draw.rectangle(
            (
                x + max(0, (c - pc)) * s,
                top + max(0, (r - pr)) * s,
                x + min(spec.w, c - pc + w) * s,
                top + min(spec.h, r - pr + h) * s,
            ),
            outline=color,
            width=width,
        )

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
    draw.rectangle(
        (x + ox0 * s, top + oy0 * s, x + (ox0 + ow) * s, top + (oy0 + oh) * s), outline=d.INK, width=1
    )
    draw.rectangle(
        (x + trace.x * s - 1, top + trace.y * s - 1, x + (trace.x + 1) * s + 1, top + (trace.y + 1) * s + 1),
        outline=d.WINDOW,
        width=2,
    )


def draw_sums(
    draw,
    trace: UnitTrace,
    spec: ConvSpec,
    picked: list[int],
    engine_value: float | None,
    integral: bool,
    ty: int,
    compact: bool,
) -> None:
    """The sum over channels, the bias, the result, the engine's value and (unless ``compact``:
    the side panel shows them) the size formulas."""
    f_text = d.get_font(14)
    sums = [d.fmt_text(float(trace.channel_sums[k]), integral) for k in picked]
    terms = " + ".join(f"({s})" if s.startswith("-") else s for s in sums)
    others = len(trace.channel_sums) - len(picked)
    if others:
        rest = float(np.delete(trace.channel_sums, picked).sum())
        terms += f" + … ({others} more: {d.fmt_text(rest, integral)})"
    total = d.fmt_text(float(trace.channel_sums.sum()), integral)
    line = f"sum over channels: {terms}  =  {total}"
    if draw.textlength(line, font=f_text) > draw.im.size[0] - 2 * MARGIN:  # a narrow frame: the total
        line = f"sum over all {len(trace.channel_sums)} channels  =  {total}"
    d.put_text(draw, (MARGIN, ty), line, font=f_text, fill=d.INK)
    line = f"+ bias {d.fmt_text(trace.bias, integral)}  =  "
    d.put_text(draw, (MARGIN, ty + LINE_H + 2), line, font=f_text, fill=d.INK)
    vx = MARGIN + draw.textlength(line, font=f_text)
    value_text = d.fmt(trace.value, integral) if integral else d.value_text(trace.value)
    d.put_text(
        draw,
        (vx, ty + LINE_H - 1),
        f"out[{trace.out_channel}, {trace.y}, {trace.x}] = {value_text}",
        font=d.get_font(17, True),
        fill=(200, 80, 0),
    )
    if engine_value is not None:
        ok = agrees(trace.value, engine_value)
        shown_value = d.fmt(engine_value, True) if integral else d.value_text(engine_value)
        line = f"engine's feature map at this unit: {shown_value}   {'✓ equal' if ok else '✗ differs'}"
        if draw.textlength(line, font=f_text) > draw.im.size[0] - 2 * MARGIN:  # a narrow frame
            line = f"engine: {shown_value}  {'✓ equal' if ok else '✗ differs'}"
        d.put_text(
            draw,
            (MARGIN, ty + 2 * LINE_H + 4),
            line,
            font=f_text,
            fill=(30, 130, 60) if ok else (200, 30, 30),
        )
    if compact:
        return
    lines = [
        *layer_formulas(spec),
        f"stride {spec.stride[0]}×{spec.stride[1]} · dilation {spec.dilation[0]}×"
        f"{spec.dilation[1]} · padding {spec.pad[0]},{spec.pad[2]} ({spec.padding_mode})",
    ]
    for i, line in enumerate(lines):
        d.put_text(draw, (MARGIN, ty + (3 + i) * LINE_H + 4), line, font=d.get_font(13), fill=d.MUTED)
