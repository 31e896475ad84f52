"""Pixels in one place: colour maps, normalising, mosaics, filter grids, boxes, heat maps.

Pure NumPy (+ Pillow for text and files); no Qt. The GUI and the headless export draw with the
same functions, so a PNG written by ``--export`` shows what the window shows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

# control points sampled from matplotlib's perceptually uniform maps (CC0) and a diverging map
_CONTROL = {
    "viridis": [
        "#440154",
        "#482878",
        "#3e4989",
        "#31688e",
        "#26828e",
        "#1f9e89",
        "#35b779",
        "#6ece58",
        "#b5de2b",
        "#fde725",
    ],
    "magma": [
        "#000004",
        "#180f3d",
        "#440f76",
        "#721f81",
        "#9e2f7f",
        "#cd4071",
        "#f1605d",
        "#fd9668",
        "#feca8d",
        "#fcfdbf",
    ],
    "inferno": [
        "#000004",
        "#1b0c41",
        "#4a0c6b",
        "#781c6d",
        "#a52c60",
        "#cf4446",
        "#ed6925",
        "#fb9b06",
        "#f7d13d",
        "#fcffa4",
    ],
    "gray": ["#000000", "#ffffff"],
    "coolwarm": ["#3b4cc0", "#6788ee", "#9abbff", "#c9d7f0", "#edd1c2", "#f7a889", "#e26952", "#b40426"],
}


def _lut(colors: list[str]) -> np.ndarray:
    rgb = np.array([[int(c[i : i + 2], 16) for i in (1, 3, 5)] for c in colors], dtype=np.float64)
    pos = np.linspace(0, 1, len(colors))
    t = np.linspace(0, 1, 256)
    return np.stack([np.interp(t, pos, rgb[:, k]) for k in range(3)], axis=1).round().astype(np.uint8)


COLORMAPS: dict[str, np.ndarray] = {name: _lut(c) for name, c in _CONTROL.items()}
DIVERGING = {"coolwarm"}


def _finite_range(a: np.ndarray, axes: tuple[int, ...] | None) -> tuple[np.ndarray, np.ndarray, bool]:
    """(lo, hi, clean): the range of the finite values of ``a`` over ``axes``; ``clean`` when
    every value was finite (the common case: two passes, no copy)."""
    keep = axes is not None
    lo, hi = a.min(axis=axes, keepdims=keep), a.max(axis=axes, keepdims=keep)
    if np.isfinite(lo).all() and np.isfinite(hi).all():
        return lo, hi, True
    finite = np.isfinite(a)
    lo = np.where(finite, a, np.inf).min(axis=axes, keepdims=keep)
    hi = np.where(finite, a, -np.inf).max(axis=axes, keepdims=keep)
    nothing = lo > hi  # no finite value at all
    return np.where(nothing, 0, lo), np.where(nothing, 0, hi), False


def normalize(
    maps: np.ndarray,
    mode: Literal["map", "layer"] = "map",
    symmetric: bool = False,
    channels: np.ndarray | list[int] | None = None,
) -> np.ndarray:
    """Scale ``(C, H, W)`` maps to ``[0, 1]``: each map on its own range, or all on the layer's.

    ``symmetric`` puts 0 at 0.5 (for signed values such as filter weights). Constant maps become
    0 (or 0.5 when symmetric). NaN reads as 0 and +-inf as the extremes of the finite values.
    ``channels`` scales only those maps, as they would be scaled in the whole set (in "layer"
    mode on the whole layer's range): a page of a 1280-channel layer costs a page.
    """
    src = np.asarray(maps)
    per_map = mode == "map" and src.ndim > 1
    page = src if channels is None else src[np.asarray(channels, dtype=np.intp)]
    a = np.array(page, dtype=np.float32)  # our own copy, scaled in place: one allocation
    if a.size == 0:
        return a
    ranged = a if per_map or channels is None else src  # "layer": the range of every channel
    lo, hi, clean = _finite_range(ranged, tuple(range(1, a.ndim)) if per_map else None)
    lo, hi = lo.astype(np.float32), hi.astype(np.float32)
    if not clean:
        np.nan_to_num(a, copy=False, nan=0.0)
        np.clip(a, lo, hi, out=a)
    if symmetric:
        m = np.maximum(np.abs(lo), np.abs(hi))
        a *= np.where(m > 0, 0.5 / np.where(m > 0, m, 1), 0).astype(np.float32)
        a += np.float32(0.5)
    else:
        span = hi - lo
        a -= lo
        a *= np.where(span > 0, 1 / np.where(span > 0, span, 1), 0).astype(np.float32)
    return np.clip(a, 0, 1, out=a)


def apply_colormap(values01: np.ndarray, name: str = "viridis") -> np.ndarray:
    """``(...)`` values in ``[0, 1]`` -> ``(..., 3)`` uint8 RGB."""
    if name not in COLORMAPS:
        raise ValueError(f"unknown colour map {name!r}; available: {', '.join(COLORMAPS)}")
    # 255 * v + 0.5, in one float32 pass into our own buffer, then uint8 indices (3x faster take)
    x = np.multiply(np.asarray(values01), np.float32(255), dtype=np.float32)
    x = np.atleast_1d(x) if x.ndim == 0 else x
    x += np.float32(0.5)
    np.clip(x, 0, 255, out=x)
    rgb = COLORMAPS[name].take(x.astype(np.uint8), axis=0)
    return rgb[0] if np.ndim(values01) == 0 else rgb


def grid_shape(count: int, columns: int | None = None, aspect: float = 1.0) -> tuple[int, int]:
    """(rows, columns) for ``count`` tiles, near square on screen for tiles of this aspect."""
    if columns is None:
        columns = max(1, int(np.ceil(np.sqrt(count * aspect))))
    columns = max(1, min(columns, count))
    return int(np.ceil(count / columns)), columns


def mosaic(
    tiles: np.ndarray, columns: int | None = None, gap: int = 1, scale: int = 1, background: int = 40
) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """Tile ``(C, H, W, 3)`` uint8 images into one image with ``gap`` pixels between tiles.

    Returns the image ``(rows*(H*scale+gap)-gap, cols*(...)-gap, 3)`` and each tile's rectangle
    ``(top, left, height, width)`` in it, in the order given.
    """
    tiles = np.asarray(tiles)
    c, h, w = tiles.shape[:3]
    if scale > 1:  # nearest-neighbour enlargement in one copy
        tiles = np.broadcast_to(tiles[:, :, None, :, None], (c, h, scale, w, scale, *tiles.shape[3:]))
        h, w = h * scale, w * scale
        tiles = tiles.reshape(c, h, w, *tiles.shape[5:])
    rows, cols = grid_shape(c, columns, aspect=h / max(w, 1))
    # one block copy instead of a Python loop per tile (a 256 x 32 filter matrix has 8192 tiles)
    cells = np.full((rows * cols, h + gap, w + gap, 3), background, dtype=np.uint8)
    cells[:c, :h, :w] = tiles
    out = cells.reshape(rows, cols, h + gap, w + gap, 3).transpose(0, 2, 1, 3, 4)
    out = out.reshape(rows * (h + gap), cols * (w + gap), 3)
    out = out[: rows * (h + gap) - gap, : cols * (w + gap) - gap]
    index = np.arange(c)
    table = np.stack(
        [(index // cols) * (h + gap), (index % cols) * (w + gap), np.full(c, h), np.full(c, w)], axis=1
    )
    return np.ascontiguousarray(out), list(map(tuple, table.tolist()))


def feature_maps_image(
    maps: np.ndarray,
    cmap: str = "viridis",
    mode: Literal["map", "layer"] = "map",
    min_tile: int = 48,
    columns: int | None = None,
    gap: int = 2,
) -> tuple[np.ndarray, list[tuple[int, int, int, int]], int]:
    """All channels of ``(C, H, W)`` maps, coloured and tiled; small maps upscaled to stay legible.

    Returns (image, tile rectangles, scale).
    """
    maps = np.asarray(maps, dtype=np.float32)
    if maps.ndim == 1:
        maps = maps[:, None, None]
    scale = max(1, int(np.ceil(min_tile / max(maps.shape[1], maps.shape[2]))))
    rgb = apply_colormap(normalize(maps, mode, symmetric=cmap in DIVERGING), cmap)
    image, rects = mosaic(rgb, columns=columns, gap=gap, scale=scale)
    return image, rects, scale


def filters_mosaic(
    weight: np.ndarray,
    in_channel: int | None = None,
    min_kernel: int = 24,
    max_filters: int = 256,
    max_inputs: int = 32,
    gap: int = 2,
    max_side: int | None = None,
) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """The filters of a conv layer as an RGB image, and each filter's ``(top, left, height,
    width)`` in it (its tile, or its whole row of kernels).

    - weight ``(O, 3, kH, kW)`` of a first layer on RGB and ``in_channel`` None: each filter as
      one colour image (0 -> mid-grey, per-filter symmetric scale), in a near-square grid;
    - otherwise one row per filter and one column per input channel (or only ``in_channel``),
      each kernel in a diverging map (blue negative, red positive) with 0 white-ish.
    Small kernels are upscaled (nearest) to at least ``min_kernel`` pixels, less if the image's
    long side would pass ``max_side`` (then the gap narrows to 1 pixel).
    """
    w = np.asarray(weight, dtype=np.float32)[:max_filters]
    o, i, kh, kw = w.shape
    scale = max(1, int(np.ceil(min_kernel / max(kh, kw))))
    if max_side:  # no bigger than a screen shows: the view zooms (nearest), pixels cost time
        grid = (i == 3 and in_channel is None) or in_channel is not None or i == 1
        rows, cols = grid_shape(o, aspect=kh / kw) if grid else (o, min(i, max_inputs))

        def longest(s: int, g: int) -> int:
            return max(rows * (kh * s + g), cols * (kw * s + g))

        while scale > 1 and longest(scale, gap) > max_side:
            scale -= 1
        if longest(scale, gap) > max_side or scale * max(kh, kw) < 6:
            gap = 1
    if i == 3 and in_channel is None:
        rgb = (normalize(w, "map", symmetric=True).transpose(0, 2, 3, 1) * 255).round().astype(np.uint8)
        return mosaic(rgb, gap=gap, scale=scale)
    if in_channel is not None or i == 1:  # one kernel per filter (e.g. depthwise): a grid, not a strip
        c = in_channel or 0
        k = w[:, c : c + 1]
        rgb = apply_colormap(normalize(k[:, 0], "map", symmetric=True), "coolwarm")
        return mosaic(rgb, gap=gap, scale=scale)
    k = w[:, :max_inputs]
    flat = k.reshape(o * k.shape[1], kh, kw)
    per_filter = np.repeat(np.abs(k).reshape(o, -1).max(1), k.shape[1])
    norm = np.clip(flat / (2 * np.where(per_filter > 0, per_filter, 1))[:, None, None] + 0.5, 0, 1)
    image, kernels = mosaic(apply_colormap(norm, "coolwarm"), columns=k.shape[1], gap=gap, scale=scale)
    rows = [kernels[f * k.shape[1]] for f in range(o)]  # a filter's first kernel starts its row
    return image, [(top, 0, h, image.shape[1]) for top, _, h, _ in rows]


def filters_image(
    weight: np.ndarray,
    in_channel: int | None = None,
    min_kernel: int = 24,
    max_filters: int = 256,
    max_inputs: int = 32,
    gap: int = 2,
) -> np.ndarray:
    """:func:`filters_mosaic`'s image alone."""
    return filters_mosaic(weight, in_channel, min_kernel, max_filters, max_inputs, gap)[0]


def clip_box(
    box: tuple[float, float, float, float], height: int, width: int
) -> tuple[float, float, float, float] | None:
    """``(top, left, bottom, right)`` clipped to the image; None if nothing is left."""
    t, l, b, r = max(box[0], 0), max(box[1], 0), min(box[2], height), min(box[3], width)
    return (t, l, b, r) if b > t and r > l else None


def draw_rect(
    rgb: np.ndarray,
    box: tuple[float, float, float, float],
    color: tuple[int, int, int],
    thickness: int = 2,
    dashed: bool = False,
) -> None:
    """Outline ``box`` (top, left, bottom, right; bottom/right exclusive) in place, clipped."""
    h, w = rgb.shape[:2]
    t, l, b, r = (round(v) for v in box)
    for k in range(thickness):
        rows = [y for y in (t + k, b - 1 - k) if 0 <= y < h]
        cols = [x for x in (l + k, r - 1 - k) if 0 <= x < w]
        xs = np.arange(max(l, 0), min(r, w))
        ys = np.arange(max(t, 0), min(b, h))
        if dashed:
            xs = xs[(xs // 4) % 2 == 0]
            ys = ys[(ys // 4) % 2 == 0]
        for y in rows:
            rgb[y, xs] = color
        for x in cols:
            rgb[ys, x] = color


def draw_receptive_field(
    rgb: np.ndarray,
    box: tuple[float, float, float, float],
    center: tuple[float, float],
    color: tuple[int, int, int] = (255, 220, 0),
    padding_color: tuple[int, int, int] = (255, 80, 80),
) -> np.ndarray:
    """A copy of ``rgb`` with a unit's receptive field: solid inside the image, dashed where it
    reaches into padding, a cross on the unit's centre."""
    out = np.array(rgb, dtype=np.uint8, copy=True)
    h, w = out.shape[:2]
    inside = clip_box(box, h, w)
    if tuple(box) != inside:
        draw_rect(out, box, padding_color, thickness=2, dashed=True)
    if inside:
        draw_rect(out, inside, color, thickness=2)
    cy, cx = int(np.floor(center[0])), int(np.floor(center[1]))
    for d in range(-4, 5):
        if 0 <= cy < h and 0 <= cx + d < w:
            out[cy, cx + d] = color
        if 0 <= cy + d < h and 0 <= cx < w:
            out[cy + d, cx] = color
    return out


def heat_rgba(heat: np.ndarray, alpha: float = 0.6, cmap: str = "inferno") -> np.ndarray:
    """A ``(H, W)`` non-negative heat map as ``(H, W, 4)`` uint8 RGBA, opacity growing with it.

    |gradient| maps are peaky: the scale saturates at the 99.5th percentile of the non-zero
    values, so a field's extent shows and not only its few strongest pixels; sqrt opacity keeps
    the faint tails visible.
    """
    heat = np.asarray(heat, dtype=np.float32)
    top = heat_top(heat)
    h01 = np.clip(heat / max(top, 1e-30), 0.0, 1.0)
    rgba = np.empty((*heat.shape, 4), dtype=np.uint8)
    rgba[..., :3] = apply_colormap(h01, cmap)
    rgba[..., 3] = (alpha * np.sqrt(h01) * 255).round()
    return rgba


def overlay_heatmap(
    rgb: np.ndarray, heat: np.ndarray, alpha: float = 0.6, cmap: str = "inferno"
) -> np.ndarray:
    """Blend :func:`heat_rgba` over ``rgb``."""
    rgba = heat_rgba(heat, alpha, cmap).astype(np.float32)
    a = rgba[..., 3:] / 255
    return (rgb.astype(np.float32) * (1 - a) + rgba[..., :3] * a).round().astype(np.uint8)


def save_png(rgb: np.ndarray, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8)).save(path)
    return path


def fill_columns(count: int, tile_h: int, tile_w: int, view_h: float, view_w: float, gap: int = 0) -> int:
    """The number of columns that makes ``count`` tiles of ``tile_h`` x ``tile_w`` (plus ``gap``)
    as large as they can be in a view of ``view_h`` x ``view_w``: three maps in a wide pane sit in
    one row, in a tall pane in one column, a hundred in the grid that fills the pane best."""
    if count <= 1 or view_h <= 0 or view_w <= 0:
        return 1
    best, best_scale = 1, -1.0
    for cols in range(1, count + 1):
        rows = -(-count // cols)
        width, height = cols * (tile_w + gap) - gap, rows * (tile_h + gap) - gap
        scale = min(view_w / width, view_h / height)
        if scale > best_scale * (1 + 1e-9):  # ties go to fewer columns
            best, best_scale = cols, scale
    return best


def tile_scale(tile_h: int, tile_w: int, min_tile: int) -> int:
    """The integer enlargement that makes a tile's long side at least ``min_tile`` pixels."""
    return max(1, int(np.ceil(min_tile / max(tile_h, tile_w, 1))))


def filter_tiles(
    weight: np.ndarray, in_channel: int | None = None, max_filters: int = 256, max_inputs: int = 32
) -> tuple[np.ndarray, int | None, list[tuple[int, int | None]]]:
    """The kernels of a conv layer as coloured tiles ``(N, kH, kW, 3)`` uint8, the columns they
    must be laid out in (None: any grid), and which ``(filter, input channel)`` each tile is
    (input channel None: a colour filter over all three inputs).

    The same three cases as :func:`filters_mosaic`: a first layer on RGB as colour filters (0 is
    mid-grey), one kernel per filter (``in_channel``, or depthwise) in a diverging map, else a
    matrix of filters (rows) by input channels (columns), each filter on its own symmetric scale.
    """
    w = np.asarray(weight, dtype=np.float32)[:max_filters]
    o, i, kh, kw = w.shape
    if i == 3 and in_channel is None:
        rgb = (normalize(w, "map", symmetric=True).transpose(0, 2, 3, 1) * 255).round().astype(np.uint8)
        return rgb, None, [(f, None) for f in range(o)]
    if in_channel is not None or i == 1:
        c = in_channel or 0
        rgb = apply_colormap(normalize(w[:, c], "map", symmetric=True), "coolwarm")
        return rgb, None, [(f, c) for f in range(o)]
    k = w[:, :max_inputs]
    n = k.shape[1]
    flat = k.reshape(o * n, kh, kw)
    per_filter = np.repeat(np.abs(k).reshape(o, -1).max(1), n)
    norm = np.clip(flat / (2 * np.where(per_filter > 0, per_filter, 1))[:, None, None] + 0.5, 0, 1)
    return apply_colormap(norm, "coolwarm"), n, [(f, c) for f in range(o) for c in range(n)]


def value_range(maps: np.ndarray, symmetric: bool = False) -> tuple[float, float]:
    """The values the ends of a colour bar stand for, as :func:`normalize` scales ``maps`` with
    one range (a map, or a whole layer): its finite min and max, or +-max|v| when symmetric."""
    a = np.asarray(maps, dtype=np.float32)
    finite = a[np.isfinite(a)]
    if finite.size == 0:
        return 0.0, 0.0
    lo, hi = float(finite.min()), float(finite.max())
    if symmetric:
        m = max(abs(lo), abs(hi))
        return -m, m
    return lo, hi


def heat_top(heat: np.ndarray) -> float:
    """The value at which :func:`heat_rgba` saturates (its colour bar's top)."""
    heat = np.asarray(heat, dtype=np.float32)
    nonzero = heat[heat > 0]
    return float(np.percentile(nonzero, 99.5)) if nonzero.size else 1.0


def top_indices(values: np.ndarray, k: int) -> list[int]:
    """The indices of the ``k`` largest values, largest first (ties: the lower index)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    v = np.where(np.isfinite(v), v, -np.inf)
    return [int(i) for i in np.argsort(-v, kind="stable")[:k]]
