"""How an explainer frame is laid out in a box: readable numbers first, then context, maps,
channels, crop sizes, cell size (:func:`layout`), and where a crop that follows the kernel
starts (:func:`follow`, :func:`follow_out`). Plain integers in, plain integers out (cached)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from models.explain import drawing as d

MARGIN, TITLE_H, OP_W, SUM_W, GAP = 16, 62, 26, 76, 24
LABEL = 20  # a grid's label above it
LINE_H = 22
_OVERVIEWS = (128, 96, 64)  # px: sizes of the small maps of a whole channel (when a crop is drawn)
HIDDEN_NOTE = 30
CAPTION_W = 150  # the output grid's label and caption
OUT_LABEL_W = 124  # its label ("output channel 0 of 4", 12 px)
MAP_LABEL_W = 88  # a small map's label ("input 112×112")
COMPACT_BELOW = 760  # a box less tall than this leaves the size formulas to the side panel
_MAX_CELL, _MIN_CELL = 44, 8
DEFAULT_BOX = (1400, 1000)  # the GIF's frames, and a frame drawn without a box


def text_h(compact: bool) -> int:
    return 18 + (3 if compact else 6) * LINE_H + MARGIN


@dataclass(frozen=True)
class Layout:
    cell: int  # the kernel's and products' cells (and the others', but in "focus")
    rows: int
    # "beside" / "below": channel rows, the output beside or below; "split": one channel, its
    # kernel line under it; "focus": as split, the input crop and the output in smaller cells
    # (colours only) so that the kernel and products keep readable numbers
    arrangement: str
    crop: tuple[int, int]  # input cells drawn (rows, cols)
    out: tuple[int, int]  # output cells drawn
    overview: int  # the small maps' size (0: none)
    width: int
    height: int
    context: int = 0  # "focus": the input crop's and output's cells (else ``cell``)

    @property
    def ctx(self) -> int:
        """The cells of the input crop and the output grid."""
        return self.context or self.cell


@dataclass(frozen=True)
class Shape:
    """What a layout depends on (all plain ints: layouts are cached)."""

    region_in: tuple[int, int]  # the input block the played positions read
    span: tuple[int, int]  # the window's extent (dilated kernel)
    kernel: tuple[int, int]
    region_out: tuple[int, int]
    channels: int
    max_rows: int
    deck: int
    readable: int  # the smallest cell whose numbers fit
    overview: bool  # a crop is not the whole map: offer the small maps


def out_block(cell: int, out: tuple[int, int], deck: int, overview: int, caption: bool) -> tuple[int, int]:
    """Width and height of the output grid (label, stacked channels, caption) and its maps."""
    grid_w = max(out[1] * cell + 6 * deck, CAPTION_W if caption else OUT_LABEL_W)
    grid_h = LABEL + 6 * deck + out[0] * cell + 24
    if not overview:
        return grid_w, grid_h
    return grid_w + 14 + max(overview, MAP_LABEL_W), max(grid_h, 2 * (overview + LABEL) + 8)


def _measure(
    s: Shape,
    cell: int,
    rows: int,
    arrangement: str,
    crop: tuple[int, int],
    out: tuple[int, int],
    overview: int,
    compact: bool,
    context: int = 0,
) -> tuple[int, int]:
    (kh, kw) = s.kernel
    hidden = HIDDEN_NOTE if s.channels > rows else 0
    # "focus": the input crop and the output in context cells of their own, the kernel line
    # without its Σ (drawn beside the products), the unit's value under the output
    ctx = (context or cell) if arrangement == "focus" else cell
    out_w, out_h = out_block(ctx, out, s.deck, overview, s.overview)
    if arrangement == "focus":
        line_w = 2 * OP_W + 2 * kw * cell
    else:
        line_w = 3 * OP_W + 2 * kw * cell + SUM_W  # × kernel = products → Σ
    if arrangement in ("focus", "split"):
        top_w = crop[1] * ctx + GAP + out_w
        width = 2 * MARGIN + max(top_w, line_w)
        height = (
            TITLE_H
            + max(crop[0] * ctx + LABEL + 6, out_h)
            + kh * cell
            + LABEL
            + 10
            + hidden
            + text_h(compact)
        )
        return max(width, 280), height
    row_w = crop[1] * cell + line_w
    rows_h = rows * (max(crop[0], kh) * cell + LABEL + 6) + hidden
    if arrangement == "below":
        width = 2 * MARGIN + max(row_w, out_w)
        height = TITLE_H + rows_h + 8 + out_h + text_h(compact)
    else:
        width = 2 * MARGIN + row_w + GAP + out_w
        height = TITLE_H + max(rows_h, out_h) + text_h(compact)
    return max(width, 280), height


def _crop_sizes(s: Shape, least_context: int) -> list[tuple[int, int]]:
    """The input blocks to try, largest first: the played block, then crops round the window
    with ``c`` cells of context (down to ``least_context``)."""
    sizes = [s.region_in]
    for c in range(max(s.region_in) // 2, least_context - 1, -1):
        size = (min(s.span[0] + 2 * c, s.region_in[0]), min(s.span[1] + 2 * c, s.region_in[1]))
        if size not in sizes:
            sizes.append(size)
    return sizes


def _out_sizes(s: Shape) -> list[tuple[int, int]]:
    sizes = [s.region_out]
    for q in (5, 3):
        size = (min(q, s.region_out[0]), min(q, s.region_out[1]))
        if size not in sizes:
            sizes.append(size)
    return sizes


@lru_cache(maxsize=256)
def layout(box: tuple[int, int], s: Shape) -> Layout:
    """The frame's layout in ``box``, in this order of preference: numbers readable; a cell of
    context round the window; the small maps when a crop is drawn; more channel rows; a larger
    input block, then a larger output block; larger cells. When no such layout fits, numbers
    readable in the kernel and products only (:func:`_focus`); then colours only. The smallest
    frame when nothing fits (the view scrolls)."""
    box_w, box_h = box
    compact = box_h < COMPACT_BELOW
    most = max(1, min(s.max_rows, s.channels))

    def fits(cell: int, rows: int, arrangement: str, crop, out, overview) -> bool:
        w, h = _measure(s, cell, rows, arrangement, crop, out, overview, compact)
        return w <= box_w and h <= box_h

    def largest_cell(smallest: int, *args) -> int | None:
        """Sizes grow with the cell: the largest that fits, by halving."""
        lo, hi = smallest, _MAX_CELL
        if not fits(lo, *args):
            return None
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if fits(mid, *args):
                lo = mid
            else:
                hi = mid - 1
        return lo

    readable = max(s.readable, _MIN_CELL)
    # readable numbers first
    found = _search(s, readable, most, fits, largest_cell, compact)
    if found is not None:
        return found
    # then readable numbers where the arithmetic is (kernel, products, the unit's value), the
    # input crop and the output in smaller cells, colours only (the 5x5 kernels of a small pane)
    found = _focus(s, readable, box, compact)
    if found is not None:
        return found
    # else colours only, in cells as large as can be
    for smallest in (c for c in (24, 16, _MIN_CELL) if c < readable):
        found = _search(s, smallest, most, fits, largest_cell, compact)
        if found is not None:
            return found
    crop = (min(s.span[0], s.region_in[0]), min(s.span[1], s.region_in[1]))
    out = (min(1, s.region_out[0]), min(1, s.region_out[1]))
    w, h = _measure(s, _MIN_CELL, 1, "split", crop, out, 0, compact)
    return Layout(_MIN_CELL, 1, "split", crop, out, 0, w, h)


def _search(s: Shape, smallest: int, most: int, fits, largest_cell, compact: bool) -> Layout | None:
    """Every grid in cells of at least ``smallest`` px, in the order of :func:`layout`."""
    for least_context in (1, 0):
        for overviews in (_OVERVIEWS, (0,)) if s.overview else ((0,),):
            for rows in range(most, 0, -1):
                for crop in _crop_sizes(s, least_context):
                    for out in _out_sizes(s):
                        best = None  # the arrangement with the largest cells (the first on a tie)
                        for arrangement in ("beside", "below", "split")[: 3 if rows == 1 else 2]:
                            for overview in overviews:
                                args = (rows, arrangement, crop, out, overview)
                                cell = largest_cell(smallest, *args)
                                if cell is not None and (best is None or cell > best[0]):
                                    best = (cell, args)
                        if best is not None:
                            cell, args = best
                            w, h = _measure(s, cell, *args, compact)
                            return Layout(cell, *args, w, h)
    return None


def _focus(s: Shape, readable: int, box: tuple[int, int], compact: bool) -> Layout | None:
    """The "focus" arrangement: the kernel and products in readable cells, the input crop and
    the output in the largest smaller cells that fit (at least 8 px; then the kernel's cells
    grow if they can). None when even that does not fit."""
    if readable > _MAX_CELL:
        return None

    def fits(cell: int, ctx: int, crop, out, overview) -> bool:
        w, h = _measure(s, cell, 1, "focus", crop, out, overview, compact, ctx)
        return w <= box[0] and h <= box[1]

    for floor in (16, 12, _MIN_CELL):  # context cells large enough to see first
        for least_context in (1, 0):
            for overview in (*_OVERVIEWS, 0) if s.overview else (0,):
                for crop in _crop_sizes(s, least_context):
                    for out in _out_sizes(s):
                        ctx = next(
                            (
                                c
                                for c in range(readable - 1, floor - 1, -1)
                                if fits(readable, c, crop, out, overview)
                            ),
                            None,
                        )
                        if ctx is None:
                            continue
                        cell = readable
                        while cell < _MAX_CELL and fits(cell + 1, ctx, crop, out, overview):
                            cell += 1
                        w, h = _measure(s, cell, 1, "focus", crop, out, overview, compact, ctx)
                        w = max(w, min(box[0], w + SUM_W))  # room for the Σ over the products
                        return Layout(cell, 1, "focus", crop, out, overview, w, h, ctx)
    return None


def number_cell(values: np.ndarray, integral: bool) -> int:
    """The smallest cell (px) whose numbers, at :func:`~models.explain.drawing.number_font_size`,
    fit every value in ``values``' range (its largest magnitude, signed if any is negative)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return _MIN_CELL
    big = float(np.abs(v).max())
    sign = "-" if float(v.min()) < -0.005 else ""
    if integral or big >= 100:
        widest = sign + "8" * len(f"{big:.0f}")
    elif big >= 10:
        widest = sign + "88.8"
    else:
        widest = sign + "8.88"
    for cell in range(16, _MAX_CELL + 1):  # as numbers_fit measures them
        if d.text_fits(widest, cell):
            return cell
    return _MAX_CELL + 1  # never readable: colours only


def follow(p: int, first: int, stride: int, span: int, size: int, lo: int, hi: int, total: int) -> int:
    """Where a crop of ``size`` cells starts so that it shows the window of position ``p``: the
    played block ``[lo, hi)`` when it fits; else a page of positions (from the block's ``first``
    position on) with a cell of context round the window, moving on when the window leaves it."""
    if size >= hi - lo:
        return lo
    context = 1 if size >= span + 2 else 0
    per_page = max(1, (size - span - 2 * context) // stride + 1)
    page = (p - first) // per_page
    start = (first + page * per_page) * stride - context
    return int(np.clip(start, 0, total - size))


def follow_out(p: int, first: int, size: int, end: int) -> int:
    if size >= end - first:
        return first
    return min(first + (p - first) // size * size, end - size)
