"""What the top-k view draws: each example's receptive-field crop, and its activation map.

A crop is the unit's *theoretical* receptive field (:meth:`ReceptiveField.box`) cut from the
photo as the model saw it (``PreparedImage.model_view``: resized, cropped, before
normalisation), **clipped to the image**: the field of a deep unit covers far more than the
photo (21 of EfficientNet-Lite0's 49 conv layers: up to 851 pixels on a 224 input), and what
lies outside is padding the model never saw. So a crop is the part of the photo the unit can
see; where the unit is inside it is :attr:`Example.centre` (the field's centre, in crop
pixels), which the view and the montage mark. :func:`frame` is the size the clipped crops of
one layer are drawn against (the field, at most the image), so crops at the border keep the
scale of the rest.
All functions return NumPy arrays; nothing here draws on screen.
"""

from __future__ import annotations

import math
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
from models.topk.batches import batch_maps
from models.topk.scanner import CancelFn, Entry, TopKResult, conv_layers

GREY = 128  # an image that cannot be read any more is a grey crop

Box = tuple[float, float, float, float]  # (top, left, bottom, right), model-input pixels
Clip = tuple[int, int, int, int]  # the same in whole pixels, inside the image


@dataclass
class Example:
    """One top example, ready to draw."""

    entry: Entry
    crop: np.ndarray  # (h, w, 3) uint8: the unit's field clipped to the photo
    box: Box  # the whole theoretical field (may reach past the photo)
    clip: Clip = (0, 0, 0, 0)  # where ``crop`` is in the photo (the box clipped to it)
    centre: tuple[float, float] = (0.0, 0.0)  # the unit (its field's centre) in crop pixels
    map: np.ndarray | None = None  # (H, W) float32: the channel's whole map on this image
    overlay: np.ndarray | None = None  # (h, w) float32: that map on the crop's pixels (each
    # pixel takes the unit whose field centre is nearest)
    error: str | None = None  # the image could not be read again (deleted since the scan)


def _rounded(v: float) -> int:
    return math.floor(v + 0.5)


def cut_of(
    field: ReceptiveField | None, y: int, x: int, view_size: tuple[int, int]
) -> tuple[Box, Clip, tuple[float, float]]:
    """Unit ``(y, x)``'s field ``box`` (unclipped), the ``clip`` of it inside an image of
    ``view_size`` ``(H, W)`` (whole pixels, never empty), and the unit's place in that clip (the
    field's centre, in pixels from the clip's top left). Without a known field: the whole image,
    the unit at its centre."""
    h, w = view_size
    if field is None:
        return (0.0, 0.0, float(h), float(w)), (0, 0, h, w), (h / 2, w / 2)
    box = field.box(y, x)
    top, left = _rounded(box[0]), _rounded(box[1])
    sh, sw = field.size
    y0, x0 = min(max(top, 0), h - 1), min(max(left, 0), w - 1)
    y1, x1 = max(min(top + sh, h), y0 + 1), max(min(left + sw, w), x0 + 1)
    centre = (top + sh / 2 - y0, left + sw / 2 - x0)
    return box, (y0, x0, y1, x1), centre


def cuts_of(
    field: ReceptiveField | None, ys: np.ndarray, xs: np.ndarray, view_size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`cut_of` for many units at once: ``(N, 4)`` float64 boxes and ``(N, 4)`` int64
    clips."""
    ys, xs = np.asarray(ys, dtype=np.int64), np.asarray(xs, dtype=np.int64)
    h, w = view_size
    if field is None:
        n = ys.shape[0]
        return (
            np.tile([0.0, 0.0, float(h), float(w)], (n, 1)),
            np.tile(np.array([0, 0, h, w], dtype=np.int64), (n, 1)),
        )
    top = field.start[0] + ys * field.jump[0]
    left = field.start[1] + xs * field.jump[1]
    boxes = np.stack([top, left, top + field.size[0], left + field.size[1]], axis=1).astype(float)
    t, lf = np.floor(boxes[:, 0] + 0.5).astype(np.int64), np.floor(boxes[:, 1] + 0.5).astype(np.int64)
    y0, x0 = np.clip(t, 0, h - 1), np.clip(lf, 0, w - 1)
    y1 = np.maximum(np.minimum(t + field.size[0], h), y0 + 1)
    x1 = np.maximum(np.minimum(lf + field.size[1], w), x0 + 1)
    return boxes, np.stack([y0, x0, y1, x1], axis=1)


def frame(field: ReceptiveField | None, view_size: tuple[int, int]) -> tuple[int, int]:
    """``(h, w)``: the largest a clipped crop of this layer can be (its field, at most the
    image): drawing every crop of a layer against it keeps one scale for all of them."""
    if field is None:
        return tuple(view_size)
    return min(field.size[0], view_size[0]), min(field.size[1], view_size[1])


def crop(
    view: np.ndarray, field: ReceptiveField | None, y: int, x: int
) -> tuple[np.ndarray, Box, Clip, tuple[float, float]]:
    """Unit ``(y, x)``'s receptive field cut from ``view`` ``(H, W, 3)`` uint8 and clipped to
    it: the crop ``(h, w, 3)`` uint8 (a copy), the unclipped box, the clip and the unit's place
    in the crop (:func:`cut_of`). Without a known field the crop is the whole view."""
    box, clip, centre = cut_of(field, y, x, view.shape[:2])
    y0, x0, y1, x1 = clip
    return np.array(view[y0:y1, x0:x1], dtype=np.uint8), box, clip, centre


def overlay(
    channel_map: np.ndarray, field: ReceptiveField | None, y: int, x: int, view_size: tuple[int, int]
) -> np.ndarray:
    """The channel's map ``(H', W')`` on the pixels of unit ``(y, x)``'s crop (its field
    clipped to an image of ``view_size``): ``(h, w)`` float32, each pixel the value of the unit
    whose field centre is nearest."""
    h, w = view_size
    if field is None:
        field = ReceptiveField(
            size=(h, w),
            jump=(max(1, h // channel_map.shape[0]), max(1, w // channel_map.shape[1])),
            start=(0.0, 0.0),
        )
        y = x = 0
    _, (y0, x0, y1, x1), _ = cut_of(field, y, x, view_size)
    rows, cols = np.arange(y0, y1), np.arange(x0, x1)
    cy, cx = field.center
    uy = np.clip(np.floor((rows - cy) / field.jump[0] + 0.5).astype(int), 0, channel_map.shape[0] - 1)
    ux = np.clip(np.floor((cols - cx) / field.jump[1] + 0.5).astype(int), 0, channel_map.shape[1] - 1)
    return np.asarray(channel_map, dtype=np.float32)[np.ix_(uy, ux)].copy()


class ViewCache:
    """The last ``size`` images as the model saw them, by (path, size, mtime, preprocessing):
    stepping through channels reads the same photos again and again. Thread-safe. With
    ``tensors=False`` only the views are kept (a montage needs no model input: a quarter of
    the memory)."""

    def __init__(self, size: int = 64, tensors: bool = True) -> None:
        self.size, self.tensors = size, tensors
        self._items: OrderedDict[tuple, tuple[np.ndarray, torch.Tensor | None]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, path: Path, preprocess: Preprocess) -> tuple[np.ndarray, torch.Tensor | None]:
        """``(model_view (H, W, 3) uint8, tensor (1, C, H, W) or None)``; ``ImageError`` if
        unreadable."""
        try:
            st = path.stat()
            key = (str(path), st.st_size, st.st_mtime_ns, preprocess)
        except OSError:  # gone: load_image below says so
            key = (str(path), None, None, preprocess)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        prepared = prepare_image(load_image(path), preprocess, source=str(path))
        item = (prepared.model_view, prepared.tensor if self.tensors else None)
        with self._lock:
            self._items[key] = item
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return item


VIEWS = ViewCache()


def layer_info(model: LoadedModel, layer: str) -> LayerInfo:
    """The conv layer ``layer`` of ``model`` (from the model's plan, made once per model)."""
    for la in conv_layers(model):
        if la.name == layer:
            return la
    raise LayerError(f"layer {layer!r} is not a convolution of {model.name} with top examples")


def examples(
    model: LoadedModel,
    result: TopKResult,
    layer: str,
    channel: int,
    engine: str = "auto",
    *,
    maps: bool = False,
    cancel: CancelFn | None = None,
    cache: ViewCache | None = None,
) -> list[Example]:
    """The top-k examples of ``channel`` of ``layer``, strongest first: each one's crop and
    box, and with ``maps`` the channel's activation map on that image (one forward pass of
    the k images on ``engine``) and the map on the crop's pixels. An image that can no longer
    be read gives a grey crop and its ``error``."""
    return examples_of(
        model, layer, result.entries(layer, channel), channel, engine, maps=maps, cancel=cancel, cache=cache
    )


def examples_of(
    model: LoadedModel,
    layer: str,
    entries: list[Entry],
    channel: int,
    engine: str = "auto",
    *,
    maps: bool = False,
    cancel: CancelFn | None = None,
    cache: ViewCache | None = None,
    info: LayerInfo | None = None,
) -> list[Example]:
    """:func:`examples` for given entries (``info``: the layer's, when the caller has it)."""
    cache = cache or VIEWS
    info = info or layer_info(model, layer)
    field = info.receptive_field
    out, tensors = [], []
    for entry in entries:
        try:
            view, tensor = cache.get(entry.path, model.preprocess)
        except Exception as exc:  # deleted or damaged since the scan: the view says so
            size = frame(field, model.preprocess.size)
            box, _, _ = cut_of(field, entry.y, entry.x, model.preprocess.size)
            out.append(
                Example(
                    entry,
                    np.full((*size, 3), GREY, np.uint8),
                    box,
                    (0, 0, *size),
                    (size[0] / 2, size[1] / 2),
                    error=one_line(exc),
                )
            )
            continue
        out.append(Example(entry, *crop(view, field, entry.y, entry.x)))
        if maps:
            if tensor is None:
                raise ValueError("a view cache without tensors cannot give activation maps")
            tensors.append((len(out) - 1, tensor, view.shape[:2]))
    if maps and tensors:
        _, outputs = run_batch(
            model, torch.cat([t for _, t, _ in tensors]), engine, layers=[info.name], cancel=cancel
        )
        layer_maps = batch_maps(outputs[info.name], info)[:, channel]
        for (i, _, size), channel_map in zip(tensors, layer_maps, strict=True):
            ex = out[i]
            ex.map = np.array(channel_map, dtype=np.float32)
            ex.overlay = overlay(ex.map, field, ex.entry.y, ex.entry.x, size)
    return out
