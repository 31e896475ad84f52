"""The scan: every image of a folder through the model, the top-k examples of every conv channel.

:func:`scan` is a plain function for the app's worker (progress and cancel, no Qt). It lists the
folder, compares the list with the store (:mod:`.store`), and runs only what is new: images of a
folder seen before with the same model and preprocessing are not run again, deleted or changed
files are taken out of the stored ranking (:mod:`.running` explains the reserve that makes that
exact), new or changed files are run and merged. Progress is stored after a batch whenever
:data:`CHECKPOINT_SECONDS` have passed (after every batch of a slow model), and on cancel: a
cancelled scan resumes after its last whole batch, a crashed or killed one loses at most those
seconds.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from models.errors import ConvScopeError, ImageError, LayerError
from models.images import IMAGE_SUFFIXES
from models.layers import LayerInfo
from models.runner import plan
from models.sources import LoadedModel
from models.topk.batches import CancelFn, ScanProgress, _grid, run_batches
from models.topk.folder import list_images, tie_order
from models.topk.keys import model_key, preprocess_key
from models.topk.running import LayerTopK
from models.topk.store import Store

DEFAULT_K = 9
MAX_K = 50  # the state is channels x 3k entries: EfficientNet-Lite0 at k=50 holds 50 MB
RESERVE = 3  # the store keeps RESERVE * k candidates per channel (for deleted files)
BATCH_BYTES = 256 * 2**20  # the conv outputs of one batch (two are alive while one is ranked)
MAX_BATCH = 16


@dataclass(frozen=True)
class Entry:
    """One top example: the image, the activation and the unit ``(y, x)`` in the channel's map."""

    rank: int  # 0 is the strongest
    path: Path  # absolute
    value: float
    y: int
    x: int


@dataclass(frozen=True)
class LayerSummary:
    name: str
    channels: int
    height: int  # the map's size in units
    width: int


@dataclass
class ScanStats:
    """What one :func:`scan` call did."""

    images: int  # image files in the folder now
    scanned: int  # read and run through the model by this call
    unreadable: int  # skipped in all (this call and earlier ones)
    removed: int  # images taken out because they were deleted or changed
    rescanned_all: bool  # deletions ate into a reserve: every image was run again
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)  # load, forward, rank, store


@dataclass
class TopKResult:
    """A finished scan in the store; reading it queries the store (any thread)."""

    store: Store
    scan_id: int
    folder: Path
    model_name: str
    k: int
    layers: list[LayerSummary]
    stats: ScanStats
    engines: list[str] = field(default_factory=list)  # the engines that computed it

    def layer(self, name: str) -> LayerSummary:
        for la in self.layers:
            if la.name == name:
                return la
        raise LayerError(
            f"layer {name!r} has no top examples (conv layers: "
            f"{', '.join(la.name for la in self.layers[:8])}"
            f"{', ...' if len(self.layers) > 8 else ''})"
        )

    def entries(self, layer: str, channel: int) -> list[Entry]:
        """The top-k of one channel, strongest first (fewer with fewer readable images)."""
        info = self.layer(layer)
        if not 0 <= channel < info.channels:
            raise LayerError(f"channel {channel} is outside layer {layer!r} ({info.channels} channels)")
        return self.layer_entries(layer, [channel]).get(channel, [])

    def layer_entries(self, layer: str, channels: list[int] | None = None) -> dict[int, list[Entry]]:
        """Channel -> its top-k, for ``channels`` (default: all) of ``layer``."""
        index = [la.name for la in self.layers].index(self.layer(layer).name)
        rows = self.store.entries(self.scan_id, index, channels, self.k)
        paths: dict[str, Path] = {}  # joining a path costs 30 us; a layer names each image often

        def full(path: str) -> Path:
            made = paths.get(path)
            if made is None:
                made = paths[path] = self.folder / path
            return made

        return {
            c: [Entry(rank, full(path), value, y, x) for rank, path, value, y, x in found]
            for c, found in rows.items()
        }

    def layer_rows(self, layer: str) -> list[tuple[int, int, str, float, int, int]]:
        """Every channel's top-k as rows ``(channel, rank, image path relative to the folder,
        value, y, x)``, by channel and rank (for writing them all out)."""
        index = [la.name for la in self.layers].index(self.layer(layer).name)
        return self.store.layer_rows(self.scan_id, index, self.k)

    def skipped(self) -> list[tuple[Path, str]]:
        """The unreadable files and why, by path."""
        return [(self.folder / p, why) for p, why in self.store.skipped(self.scan_id)]


# module -> {(input channels, height, width): its conv layers}: a plan lookup and a zero input
# cost ~10 ms, and crops and exports ask for a layer's field once per channel
_conv_layers: weakref.WeakKeyDictionary[nn.Module, dict[tuple, list[LayerInfo]]] = weakref.WeakKeyDictionary()


def conv_layers(model: LoadedModel) -> list[LayerInfo]:
    """The layers a scan ranks: every convolution whose output has a (y, x) grid (from the
    model's plan, looked up once per module and input shape)."""
    pre = model.preprocess
    shape = (pre.channels, *pre.size)
    known = _conv_layers.setdefault(model.module, {})
    if shape not in known:
        rows = plan(model, torch.zeros(1, *shape)).rows.values()
        known[shape] = [la for la in rows if la.is_conv and _grid(la) is not None]
    return list(known[shape])


def map_shape(la: LayerInfo) -> tuple[int, int, int]:
    """``(C, H, W)`` of a conv layer's maps for one image, grid last (channels-last layers
    count every non-grid axis as channels, as :func:`models.layers.grid_maps` does)."""
    gy, gx = _grid(la)
    shape = la.output_shape
    return (
        int(np.prod([s for i, s in enumerate(shape) if i not in (0, gy, gx)])),
        int(shape[gy]),
        int(shape[gx]),
    )


def default_batch(layers: list[LayerInfo]) -> int:
    """Images per batch: as many as keep the conv outputs under :data:`BATCH_BYTES`."""
    per_image = 4 * sum(int(np.prod(la.output_shape[1:])) for la in layers)
    return int(max(1, min(MAX_BATCH, BATCH_BYTES // max(per_image, 1))))


def scan(
    model: LoadedModel,
    folder: str | Path,
    engine: str = "auto",
    *,
    k: int = DEFAULT_K,
    batch: int | None = None,
    progress: ScanProgress | None = None,
    cancel: CancelFn | None = None,
    store: Store | None = None,
    rescan: bool = False,
    exclude: str | Path | None = None,
) -> TopKResult:
    """The top-``k`` examples of every channel of every conv layer of ``model`` over the images
    under ``folder`` (recursively, :data:`~models.images.IMAGE_SUFFIXES`), computed on
    ``engine`` in batches of ``batch`` images (default: :func:`default_batch`).

    Reuses what ``store`` (default: the cache's) holds for this model, preprocessing, folder
    and k, and runs only new or changed files. ``progress(done, total, rate, eta)`` after each
    batch (images of the folder done, all of them, images per second, seconds left or None);
    ``cancel()`` is checked before each image and inside the forward pass: a cancelled scan
    raises :class:`~models.errors.Cancelled` and resumes on the next call. Unreadable files
    are skipped and counted (:meth:`TopKResult.skipped`). ``rescan``: forget what the store
    holds for this model, folder and k first, and run every image (on ``engine``). ``exclude``:
    a folder inside ``folder`` left out (an export's destination). Raises
    ``ImageError`` for a missing folder, one without images, or one where no image can be read.
    """
    started = time.perf_counter()
    if not 1 <= k <= MAX_K:
        raise ConvScopeError(f"k (examples per channel) must be 1 to {MAX_K}, got {k}")
    if batch is not None and batch < 1:
        raise ConvScopeError(f"batch must be at least 1 image, got {batch}")
    store = store or Store()
    root = Path(folder).expanduser().absolute()
    files = list_images(root, exclude)
    if not files:
        raise ImageError(f"no images in {folder} (looked for {' '.join(IMAGE_SUFFIXES)}, in subfolders too)")
    root = root.resolve()
    layers = conv_layers(model)
    if not layers:
        raise LayerError(f"{model.name} has no convolution with a spatial map to rank")
    summaries = [LayerSummary(la.name, *map_shape(la)) for la in layers]
    keys = (model_key(model.module, layers), preprocess_key(model.preprocess), str(root), k)
    owner = f"{os.getpid()}:{secrets.token_hex(6)}"
    with store.connect() as conn:
        sid = store.scan_id(conn, *keys)
        if sid is not None and rescan:
            store.forget(conn, sid)
            sid = None
        if sid is None:
            try:
                sid = store.create_scan(
                    conn,
                    *keys,
                    RESERVE * k,
                    model.name,
                    [(s.name, s.channels, s.height, s.width) for s in summaries],
                )
            except sqlite3.IntegrityError:  # another process made it a moment ago
                sid = store.scan_id(conn, *keys)
        info = store.info(conn, sid)
        known = store.images(conn, sid)
        listed = {f.path: f for f in files}
        gone = [
            r
            for r in known.values()
            if r.path not in listed or (r.size, r.mtime_ns) != (listed[r.path].size, listed[r.path].mtime_ns)
        ]
        changed = {r.path for r in gone}
        fresh = [f for f in files if f.path not in known or f.path in changed]
        stats = ScanStats(
            images=len(files), scanned=0, unreadable=0, removed=len(gone), rescanned_all=False, seconds=0.0
        )
        if not (info["complete"] and not gone and not fresh):
            added = [(info["next_image"] + i, f.path, f.size, f.mtime_ns) for i, f in enumerate(fresh)]
            order = tie_order(files, {p: r.id for p, r in known.items() if p not in changed}, added)
            states = store.load_state(conn, sid)
            dropped = [r.id for r in gone if r.state == "done"]
            for state in states:
                state.order = order
                state.remove(dropped)
            if dropped and not all(state.complete(k) for state in states):
                stats.rescanned_all = True
                states = [LayerTopK(s.channels, RESERVE * k) for s in summaries]
                for state in states:
                    state.order = order
            store.update_files(conn, sid, [r.id for r in gone], added, stats.rescanned_all)
            store.checkpoint(conn, sid, states)
            store.set_owner(conn, sid, owner)
            pending = store.pending(conn, sid)
        else:
            pending, states = [], None
    if states is not None:
        with store.session() as conn:
            run_batches(
                model,
                root,
                engine,
                layers,
                states,
                pending,
                store,
                conn,
                sid,
                owner,
                batch or default_batch(layers),
                len(files),
                progress,
                cancel,
                stats,
            )
    elif progress is not None:
        progress(len(files), len(files), 0.0, 0.0)
    counts = store.counts(sid)
    stats.unreadable = counts.get("unreadable", 0)
    if not counts.get("done"):
        first = store.skipped(sid)[:1]
        why = f" ({first[0][0]}: {first[0][1]})" if first else ""
        raise ImageError(f"none of the {len(files)} images in {folder} could be read{why}")
    stats.seconds = time.perf_counter() - started
    return TopKResult(store, sid, root, model.name, k, summaries, stats, store.engines(sid))
