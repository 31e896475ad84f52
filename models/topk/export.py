"""What ``main.py --dataset DIR --export OUT`` writes: per layer a montage and the top-k as JSON.

``L.topk.png``: one row per channel (the first ``max_channels``), the channel's k crops left to
right, strongest first, each scaled to a ``tile``-pixel square (nearest-neighbour when
enlarged, so small fields stay sharp); an empty cell (fewer images than k) is dark.
``L.topk.json``: every channel's entries. Written all or nothing, like ``--export``
(:mod:`models.export`'s staging folder).
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from models import render
from models.export import _move_into_place, _staging_folder, safe_name
from models.sources import LoadedModel
from models.topk.crops import Example, ViewCache, examples_of, layer_info
from models.topk.scanner import Entry, TopKResult

MAX_CHANNELS = 64
TILE = 64
EMPTY = 40  # the montage's background, and a cell without an example


def tile_of(crop: np.ndarray, tile: int = TILE) -> np.ndarray:
    """A crop scaled into a ``tile`` square, aspect kept, centred on the background."""
    h, w = crop.shape[:2]
    scale = tile / max(h, w)
    th, tw = max(1, round(h * scale)), max(1, round(w * scale))
    filt = Image.Resampling.NEAREST if scale >= 1 else Image.Resampling.BOX
    small = np.asarray(Image.fromarray(crop).resize((tw, th), filt))
    out = np.full((tile, tile, 3), EMPTY, dtype=np.uint8)
    top, left = (tile - th) // 2, (tile - tw) // 2
    out[top:top + th, left:left + tw] = small
    return out


def montage(rows: list[list[Example]], k: int, tile: int = TILE, gap: int = 2) -> np.ndarray:
    """``(rows * (tile + gap) - gap, k * (tile + gap) - gap, 3)`` uint8: one row per channel."""
    tiles = np.full((max(len(rows), 1) * k, tile, tile, 3), EMPTY, dtype=np.uint8)
    for r, row in enumerate(rows):
        for c, ex in enumerate(row[:k]):
            tiles[r * k + c] = tile_of(ex.crop, tile)
    return render.mosaic(tiles, columns=k, gap=gap, background=EMPTY)[0]


def _number(v: float) -> float | None:
    return v if math.isfinite(v) else None


def layer_document(model: LoadedModel, result: TopKResult, layer: str,
                   entries: dict[int, list[Entry]], max_channels: int) -> dict:
    """The ``L.topk.json`` document: every channel's entries (image path, value, unit, rank,
    and the unit's field in model-input pixels)."""
    info = result.layer(layer)
    rf = layer_info(model, layer).receptive_field

    def box(e: Entry) -> list[float] | None:
        return None if rf is None else [float(v) for v in rf.box(e.y, e.x)]

    return {
        "model": result.model_name, "folder": str(result.folder), "layer": info.name,
        "k": result.k, "channels": info.channels,
        "montage_channels": min(info.channels, max_channels), "map_size": [info.height, info.width],
        "receptive_field": None if rf is None else {"size": list(rf.size), "jump": list(rf.jump)},
        "images": result.stats.images, "unreadable": result.stats.unreadable,
        "top": [{"channel": c, "entries": [
            {"rank": e.rank, "image": str(e.path), "value": _number(e.value), "unit": [e.y, e.x],
             "box": box(e)} for e in entries.get(c, [])]} for c in range(info.channels)],
    }


def export_topk(model: LoadedModel, result: TopKResult, out_dir: Path,
                layers: list[str] | None = None, max_channels: int = MAX_CHANNELS,
                tile: int = TILE) -> list[Path]:
    """Write ``L.topk.png`` and ``L.topk.json`` for ``layers`` (default: every scanned conv
    layer) into ``out_dir``; the paths written."""
    chosen = [result.layer(n).name for n in layers] if layers else [la.name for la in result.layers]
    out_dir = Path(out_dir).absolute()
    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(f"{out_dir} exists and is not a folder")
    staging = _staging_folder(out_dir)
    cache = ViewCache(size=256)  # a photo is read once per layer, not once per channel
    try:
        names = []
        for layer in chosen:
            entries = result.layer_entries(layer)
            shown = [examples_of(model, layer, entries.get(c, []), c, cache=cache)
                     for c in range(min(result.layer(layer).channels, max_channels))]
            base = safe_name(layer)
            render.save_png(montage(shown, result.k, tile), staging / f"{base}.topk.png")
            doc = layer_document(model, result, layer, entries, max_channels)
            (staging / f"{base}.topk.json").write_text(json.dumps(doc, indent=1, allow_nan=False))
            names += [f"{base}.topk.png", f"{base}.topk.json"]
        return _move_into_place(staging, names, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
