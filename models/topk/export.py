"""What ``main.py --dataset DIR --export OUT`` writes: per layer a montage and the top-k as JSON.

``L.topk.png``: a title line, then one row per channel (the first ``max_channels``), labelled
with the channel's number on the left, its k crops left to right, strongest first. Each crop is
the unit's receptive field clipped to the photo (:mod:`.crops`), scaled into a ``tile``-pixel
square against the layer's :func:`~.crops.frame` (nearest-neighbour when enlarged, so small
fields stay sharp), with four amber ticks on its edges pointing at the unit, and under it the
activation value and the image's name (elided to fit). An empty cell (fewer images than k) is
dark. ``L.topk.json``: every channel's entries, and the files that were skipped and why.
Written all or nothing, like ``--export`` (:mod:`models.export`'s staging folder).

A cached rerun is dominated by this module, so it does each thing once: the layers' fields come
from one plan, each photo is read once for the whole export (while the views fit in
:data:`VIEW_BYTES`), each distinct crop is scaled once (deep layers' clipped fields are often the
whole photo, shared by many channels), and the JSON is compact.
"""

from __future__ import annotations

import json
import math
import shutil
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from models.errors import one_line
from models.export import _move_into_place, _staging_folder, safe_name
from models.layers import LayerInfo
from models.sources import LoadedModel
from models.topk import labels
from models.topk.crops import GREY, ViewCache, cut_of, cuts_of, frame
from models.topk.folder import MONTAGE_SUFFIX
from models.topk.labels import Ink
from models.topk.messages import plural
from models.topk.scanner import Entry, TopKResult, conv_layers

MAX_CHANNELS = 64
TILE = 64
GAP = 2
EMPTY = 40  # the montage's background, and a cell without an example
TEXT = 10  # caption font size, pixels
INK, MUTED, TICK = (235, 235, 235), (165, 165, 165), (255, 196, 40)
VIEW_BYTES = 512 * 2**20  # photos as the model saw them, kept for the whole export
TILE_CACHE = 4096  # tiles kept (12 KB each at 64 px)
SCALED_BYTES = 256 * 2**20  # photos scaled down for a layer's tiles, kept
GREY_TILE = GREY  # a photo that cannot be read any more
PNG_LEVEL = 1  # zlib level: 6 (Pillow's default) took 2.5 times as long for 15% smaller files


def _line() -> int:
    return labels.line_height(TEXT)


def label_width() -> int:
    """The row labels' column: room for "ch 1279"."""
    return math.ceil(labels.text_width("ch 0000", TEXT)) + 6


def scaled(
    crop: np.ndarray, tile: int, frame_size: tuple[int, int] | None = None
) -> tuple[np.ndarray, float]:
    """``crop`` scaled so that ``frame_size`` (default: the crop's own) fits a ``tile`` square:
    the scaled pixels and the scale."""
    h, w = crop.shape[:2]
    fh, fw = frame_size or (h, w)
    scale = tile / max(fh, fw, 1)
    th, tw = max(1, min(tile, round(h * scale))), max(1, min(tile, round(w * scale)))
    if (th, tw) == (h, w):
        return crop, scale
    filt = Image.Resampling.NEAREST if scale >= 1 else Image.Resampling.BOX
    return np.asarray(Image.fromarray(crop).resize((tw, th), filt)), scale


def tile_of(
    crop: np.ndarray,
    tile: int = TILE,
    frame_size: tuple[int, int] | None = None,
    centre: tuple[float, float] | None = None,
) -> np.ndarray:
    """A crop scaled into a ``tile`` square (:func:`scaled`), centred on the background; with
    ``centre`` (the unit, in crop pixels) four ticks on the picture's edges point at it."""
    small, scale = scaled(crop, tile, frame_size)
    th, tw = small.shape[:2]
    out = np.full((tile, tile, 3), EMPTY, dtype=np.uint8)
    top, left = (tile - th) // 2, (tile - tw) // 2
    out[top : top + th, left : left + tw] = small
    if centre is not None:
        mark_unit(out, (top, left, top + th, left + tw), (top + centre[0] * scale, left + centre[1] * scale))
    return out


def mark_unit(
    rgb: np.ndarray, rect: tuple[int, int, int, int], at: tuple[float, float], length: int = 5
) -> None:
    """Four ticks on the edges of ``rect`` ``(top, left, bottom, right)`` of ``rgb``, at the row
    and column of ``at``: where the unit is, without covering what it sees."""
    top, left, bottom, right = rect
    y = int(min(max(at[0], top), bottom - 1))
    x = int(min(max(at[1], left), right - 1))
    n = max(1, min(length, (bottom - top) // 3, (right - left) // 3))
    rgb[y, left : left + n] = rgb[y, right - n : right] = TICK
    rgb[top : top + n, x] = rgb[bottom - n : bottom, x] = TICK


class Tiles:
    """Each distinct crop of an export as a montage tile, made once: by (image, clip, frame).

    A crop scaled down is cut from the whole photo scaled once per image and scale (resizing
    the photo and slicing costs what resizing one crop did, and deep layers of one scale show
    an image in many channels), so the export resizes about once per image and layer scale,
    not once per crop."""

    def __init__(self, preprocess, tile: int = TILE, views: ViewCache | None = None) -> None:
        h, w = preprocess.size
        self.preprocess, self.tile = preprocess, tile
        self.views = views or ViewCache(size=max(64, VIEW_BYTES // (3 * h * w)), tensors=False)
        self._tiles: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._scaled: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._scaled_bytes = 0
        self.made = 0  # tiles composed (the rest came from the cache)

    def get(self, entry: Entry, field, frame_size: tuple[int, int]) -> tuple[np.ndarray, str | None]:
        """The tile of ``entry``'s unit (its field clipped to the photo, scaled against
        ``frame_size``, ticks at the unit), and why the photo could not be read, if it could not."""
        _, clip, centre = cut_of(field, entry.y, entry.x, self.preprocess.size)
        key = (entry.path, clip, frame_size)
        cell = self._tiles.get(key)
        if cell is None:
            try:
                view, _ = self.views.get(entry.path, self.preprocess)
            except Exception as exc:  # deleted or damaged since the scan
                return np.full((self.tile, self.tile, 3), GREY_TILE, np.uint8), one_line(exc)
            cell = self._tiles[key] = self._make(entry.path, view, clip, centre, frame_size)
            if len(self._tiles) > TILE_CACHE:
                self._tiles.popitem(last=False)
        return cell, None

    def _make(self, path: Path, view: np.ndarray, clip, centre, frame_size) -> np.ndarray:
        self.made += 1
        y0, x0, y1, x1 = clip
        scale = self.tile / max(frame_size)
        if scale >= 1:  # a small field: enlarged pixel for pixel
            return tile_of(view[y0:y1, x0:x1], self.tile, frame_size, centre)
        small = self._scaled_view(path, view, scale)
        sy, sx = small.shape[0] / view.shape[0], small.shape[1] / view.shape[1]
        top, left = min(round(y0 * sy), small.shape[0] - 1), min(round(x0 * sx), small.shape[1] - 1)
        part = small[top : max(round(y1 * sy), top + 1), left : max(round(x1 * sx), left + 1)]
        part = part[: self.tile, : self.tile]
        th, tw = part.shape[:2]
        out = np.full((self.tile, self.tile, 3), EMPTY, dtype=np.uint8)
        oy, ox = (self.tile - th) // 2, (self.tile - tw) // 2
        out[oy : oy + th, ox : ox + tw] = part
        mark_unit(out, (oy, ox, oy + th, ox + tw), (oy + centre[0] * sy, ox + centre[1] * sx))
        return out

    def _scaled_view(self, path: Path, view: np.ndarray, scale: float) -> np.ndarray:
        key = (path, round(scale, 6))
        found = self._scaled.get(key)
        if found is not None:
            self._scaled.move_to_end(key)
            return found
        h, w = view.shape[:2]
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        found = self._scaled[key] = np.asarray(Image.fromarray(view).resize(size, Image.Resampling.BOX))
        self._scaled_bytes += found.nbytes
        while self._scaled_bytes > SCALED_BYTES and len(self._scaled) > 1:
            self._scaled_bytes -= self._scaled.popitem(last=False)[1].nbytes
        return found


Cell = tuple[np.ndarray, str, str]  # a tile, its value line, its name line


def montage(
    rows: list[tuple[int, list[Cell]]], k: int, title: tuple[str, ...] = (), tile: int = TILE
) -> np.ndarray:
    """The montage ``(H, W, 3)`` uint8 of ``rows`` ``(channel, its cells)``: the ``title``
    lines on top, a "ch N" label per row, ``k`` cells of a tile over its value and image name."""
    line, label = _line(), label_width()
    cell_h, title_h = tile + 2 * line + 2, (len(title) * line + 4 if title else 0)
    out = np.full(
        (title_h + max(len(rows), 1) * (cell_h + GAP) - GAP, label + k * (tile + GAP) - GAP, 3),
        EMPTY,
        dtype=np.uint8,
    )
    ink, muted = Ink(out.shape[:2], INK, TEXT), Ink(out.shape[:2], MUTED, TEXT)
    for i, text in enumerate(title):
        (ink if i == 0 else muted).write(1 + i * line, 4, text, out.shape[1] - 8)
    for r, (channel, row) in enumerate(rows):
        y = title_h + r * (cell_h + GAP)
        ink.write(y + (tile - line) // 2, 3, f"ch {channel}", label - 4)
        for c, (cell, value, name) in enumerate(row[:k]):
            x = label + c * (tile + GAP)
            out[y : y + tile, x : x + tile] = cell
            ink.write(y + tile + 1, x, value, tile)
            muted.write(y + tile + 1 + line, x, name, tile)
    ink.blend(out)
    muted.blend(out)
    return out


def montage_title(result: TopKResult, layer: str) -> tuple[str, ...]:
    """The montage's title lines: the layer, the images scanned (readable ones only) and, on a
    line of its own, the files skipped, then how to read a crop."""
    stats = result.stats
    lines = [
        layer,
        f"top {result.k} per channel of {plural(stats.images - stats.unreadable, 'image')} scanned",
    ]
    if stats.unreadable:
        lines.append(f"{plural(stats.unreadable, 'file')} skipped (not readable as images)")
    return (*lines, "the unit's field clipped to the photo;", "ticks point at the unit")


def _number(v: float) -> float | None:
    return v if math.isfinite(v) else None


Row = tuple[int, int, str, float, int, int]  # channel, rank, image (relative), value, y, x


def layer_document(
    model: LoadedModel,
    result: TopKResult,
    layer: str,
    max_channels: int,
    info: LayerInfo | None = None,
    skipped: list[tuple[Path, str]] | None = None,
    rows: list[Row] | None = None,
) -> dict:
    """The ``L.topk.json`` document: every channel's entries (image path, value, unit, rank,
    the unit's whole field ``box`` and the ``crop`` of it inside the photo, in model-input
    pixels), and the files skipped with a one-line reason."""
    summary = result.layer(layer)
    rf = (info or next(la for la in conv_layers(model) if la.name == summary.name)).receptive_field
    size = tuple(model.preprocess.size)
    rows = result.layer_rows(layer) if rows is None else rows
    boxes, clips = cuts_of(rf, [r[4] for r in rows], [r[5] for r in rows], size)
    boxes = boxes.tolist() if rf is not None else [None] * len(rows)
    paths: dict[str, str] = {}
    top = [{"channel": c, "entries": []} for c in range(summary.channels)]
    for (c, rank, path, value, y, x), box, clip in zip(rows, boxes, clips.tolist(), strict=True):
        image = paths.get(path)
        if image is None:
            image = paths[path] = str(result.folder / path)
        top[c]["entries"].append(
            {"rank": rank, "image": image, "value": _number(value), "unit": [y, x], "box": box, "crop": clip}
        )
    skipped = result.skipped() if skipped is None else skipped
    return {
        "model": result.model_name,
        "folder": str(result.folder),
        "layer": summary.name,
        "k": result.k,
        "channels": summary.channels,
        "montage_channels": min(summary.channels, max_channels),
        "map_size": [summary.height, summary.width],
        "input_size": list(size),
        "receptive_field": None if rf is None else {"size": list(rf.size), "jump": list(rf.jump)},
        "images": result.stats.images,
        "scanned": result.stats.images - result.stats.unreadable,
        "unreadable": result.stats.unreadable,
        "skipped": [{"path": str(p), "reason": why} for p, why in skipped],
        "top": top,
    }


def _save_png(rgb: np.ndarray, path: Path) -> None:
    Image.fromarray(rgb).save(path, compress_level=PNG_LEVEL)


def export_topk(
    model: LoadedModel,
    result: TopKResult,
    out_dir: Path,
    layers: list[str] | None = None,
    max_channels: int = MAX_CHANNELS,
    tile: int = TILE,
) -> list[Path]:
    """Write ``L.topk.png`` and ``L.topk.json`` for ``layers`` (default: every scanned conv
    layer) into ``out_dir``; the paths written."""
    chosen = [result.layer(n).name for n in layers] if layers else [la.name for la in result.layers]
    out_dir = Path(out_dir).absolute()
    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(f"{out_dir} exists and is not a folder")
    infos = {la.name: la for la in conv_layers(model)}  # one plan for every layer and channel
    size = tuple(model.preprocess.size)
    tiles = Tiles(model.preprocess, tile)
    skipped = result.skipped()
    staging = _staging_folder(out_dir)
    encoder = ThreadPoolExecutor(max_workers=2, thread_name_prefix="topk-png")  # zlib lets go
    try:  # of the GIL: the PNGs compress while the next montage is laid out
        names, pending = [], []
        for layer in chosen:
            info, summary = infos[layer], result.layer(layer)
            table = result.layer_rows(layer)
            field, frame_size = info.receptive_field, frame(info.receptive_field, size)
            shown = min(summary.channels, max_channels)
            rows: list[tuple[int, list[Cell]]] = [(c, []) for c in range(shown)]
            paths: dict[str, Path] = {}
            for c, rank, path, value, y, x in table:
                if c >= shown:
                    break
                full = paths.get(path) or paths.setdefault(path, result.folder / path)
                cell, error = tiles.get(Entry(rank, full, value, y, x), field, frame_size)
                rows[c][1].append(
                    (cell, "unreadable" if error else f"{value:.4g}", path.rsplit("/", 1)[-1])
                )  # the whole path is in the JSON
            image = montage(rows, result.k, montage_title(result, layer), tile)
            base = safe_name(layer)
            pending.append(encoder.submit(_save_png, image, staging / f"{base}{MONTAGE_SUFFIX}"))
            while len(pending) > 2:  # at most three montages in memory
                pending.pop(0).result()
            doc = layer_document(model, result, layer, max_channels, info, skipped, table)
            (staging / f"{base}.topk.json").write_text(
                json.dumps(doc, separators=(",", ":"), allow_nan=False)
            )
            names += [f"{base}{MONTAGE_SUFFIX}", f"{base}.topk.json"]
        for job in pending:
            job.result()
        return _move_into_place(staging, names, out_dir)
    finally:
        encoder.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(staging, ignore_errors=True)
