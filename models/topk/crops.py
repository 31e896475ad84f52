"""What the top-k view draws: each example's receptive-field crop, and its activation map.

A crop is the unit's *theoretical* receptive field (:meth:`ReceptiveField.box`) cut from the
photo as the model saw it (``PreparedImage.model_view``: resized, cropped, before
normalisation). A field reaching past the image is filled with grey there, so every crop of a
layer has the field's size and a unit at the border shows where its field leaves the photo.
All functions return NumPy arrays; nothing here draws on screen.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from models.errors import LayerError, one_line
from models.images import Preprocess, load_image, prepare_image
from models.layers import LayerInfo
from models.receptive_field import ReceptiveField
from models.runner import run_batch
from models.sources import LoadedModel
from models.topk.scanner import CancelFn, Entry, TopKResult, batch_maps, conv_layers

GREY = 128  # the fill outside the image: mid-grey reads as "nothing here" on any photo


@dataclass
class Example:
    """One top example, ready to draw."""

    entry: Entry
    crop: np.ndarray  # (Sh, Sw, 3) uint8: the unit's field, grey outside the photo
    box: tuple[float, float, float, float]  # (top, left, bottom, right) in model-input pixels
    map: np.ndarray | None = None  # (H, W) float32: the channel's whole map on this image
    overlay: np.ndarray | None = None  # (Sh, Sw) float32: that map on the crop's pixels, NaN
    # outside the photo (each pixel takes the unit whose field centre is nearest)
    error: str | None = None  # the image could not be read again (deleted since the scan)


def crop(view: np.ndarray, field: ReceptiveField | None, y: int, x: int,
         fill: int = GREY) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """Unit ``(y, x)``'s receptive field cut from ``view`` ``(H, W, 3)`` uint8: the crop
    ``(size_y, size_x, 3)`` uint8 (``fill`` outside the image) and the unclipped box. Without a
    known field the crop is the whole view."""
    h, w = view.shape[:2]
    if field is None:
        return np.array(view, dtype=np.uint8), (0.0, 0.0, float(h), float(w))
    box = field.box(y, x)
    top, left = int(np.floor(box[0] + 0.5)), int(np.floor(box[1] + 0.5))
    sh, sw = field.size
    out = np.full((sh, sw, 3), fill, dtype=np.uint8)
    y0, y1 = max(top, 0), min(top + sh, h)
    x0, x1 = max(left, 0), min(left + sw, w)
    if y1 > y0 and x1 > x0:
        out[y0 - top:y1 - top, x0 - left:x1 - left] = view[y0:y1, x0:x1]
    return out, box


def overlay(channel_map: np.ndarray, field: ReceptiveField | None, y: int, x: int,
            view_size: tuple[int, int]) -> np.ndarray:
    """The channel's map ``(H, W)`` on the pixels of unit ``(y, x)``'s crop: ``(size_y,
    size_x)`` float32, each pixel the value of the unit whose field centre is nearest, NaN
    outside the photo (``view_size``: the model input's ``(H, W)``)."""
    h, w = view_size
    if field is None:
        field = ReceptiveField(size=(h, w), jump=(max(1, h // channel_map.shape[0]),
                                                  max(1, w // channel_map.shape[1])),
                               start=(0.0, 0.0))
        y = x = 0
    top, left = (int(np.floor(v + 0.5)) for v in field.box(y, x)[:2])
    rows = np.arange(top, top + field.size[0])
    cols = np.arange(left, left + field.size[1])
    cy, cx = field.center
    uy = np.clip(np.floor((rows - cy) / field.jump[0] + 0.5).astype(int), 0, channel_map.shape[0] - 1)
    ux = np.clip(np.floor((cols - cx) / field.jump[1] + 0.5).astype(int), 0, channel_map.shape[1] - 1)
    out = np.asarray(channel_map, dtype=np.float32)[np.ix_(uy, ux)].copy()
    out[(rows < 0) | (rows >= h), :] = np.nan
    out[:, (cols < 0) | (cols >= w)] = np.nan
    return out


class ViewCache:
    """The last ``size`` images as the model saw them, by (path, size, mtime, preprocessing):
    stepping through channels reads the same photos again and again. Thread-safe."""

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._items: OrderedDict[tuple, tuple[np.ndarray, torch.Tensor]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, path: Path, preprocess: Preprocess) -> tuple[np.ndarray, torch.Tensor]:
        """``(model_view (H, W, 3) uint8, tensor (1, C, H, W))``; ``ImageError`` if unreadable."""
        st = path.stat() if path.exists() else None
        key = (str(path), st.st_size if st else None, st.st_mtime_ns if st else None, preprocess)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        prepared = prepare_image(load_image(path), preprocess, source=str(path))
        item = (prepared.model_view, prepared.tensor)
        with self._lock:
            self._items[key] = item
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return item


VIEWS = ViewCache()


def layer_info(model: LoadedModel, layer: str) -> LayerInfo:
    for la in conv_layers(model):
        if la.name == layer:
            return la
    raise LayerError(f"layer {layer!r} is not a convolution of {model.name} with top examples")


def examples(model: LoadedModel, result: TopKResult, layer: str, channel: int,
             engine: str = "auto", *, maps: bool = False, cancel: CancelFn | None = None,
             cache: ViewCache | None = None) -> list[Example]:
    """The top-k examples of ``channel`` of ``layer``, strongest first: each one's crop and
    box, and with ``maps`` the channel's activation map on that image (one forward pass of
    the k images on ``engine``) and the map on the crop's pixels. An image that can no longer
    be read gives a grey crop and its ``error``."""
    return examples_of(model, layer, result.entries(layer, channel), channel, engine, maps=maps,
                       cancel=cancel, cache=cache)


def examples_of(model: LoadedModel, layer: str, entries: list[Entry], channel: int,
                engine: str = "auto", *, maps: bool = False, cancel: CancelFn | None = None,
                cache: ViewCache | None = None) -> list[Example]:
    """:func:`examples` for given entries (e.g. a whole layer's, for a montage)."""
    cache = cache or VIEWS
    info = layer_info(model, layer)
    field = info.receptive_field
    out, tensors = [], []
    for entry in entries:
        try:
            view, tensor = cache.get(entry.path, model.preprocess)
        except Exception as exc:  # deleted or damaged since the scan: the view says so
            size = field.size if field is not None else model.preprocess.size
            out.append(Example(entry, np.full((*size, 3), GREY, np.uint8),
                               field.box(entry.y, entry.x) if field else (0.0, 0.0, *map(float, size)),
                               error=one_line(exc)))
            continue
        cut, box = crop(view, field, entry.y, entry.x)
        out.append(Example(entry, cut, box))
        tensors.append((len(out) - 1, tensor, view.shape[:2]))
    if maps and tensors:
        _, outputs = run_batch(model, torch.cat([t for _, t, _ in tensors]), engine,
                               layers=[info.name], cancel=cancel)
        layer_maps = batch_maps(outputs[info.name], info)[:, channel]
        for (i, _, size), channel_map in zip(tensors, layer_maps, strict=True):
            ex = out[i]
            ex.map = np.array(channel_map, dtype=np.float32)
            ex.overlay = overlay(ex.map, field, ex.entry.y, ex.entry.x, size)
    return out
