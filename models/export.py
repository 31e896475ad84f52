"""What ``main.py --export DIR`` writes (and the GUI's "Export everything").

Written all or nothing: the files go to a temporary folder beside ``DIR`` and are moved into
place only when every one is written, so a failure leaves no half export, and files already in
``DIR`` are never deleted (a file of the same name is replaced). ``summary.json`` is strict JSON:
a value that is not finite (NaN, infinity: a model can output them) is written as ``null``, and
the document then lists where under ``"non_finite"``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

from models import render
from models.errors import Cancelled, ConvScopeError, LayerError
from models.images import PreparedImage
from models.runner import RunResult, effective_receptive_field, find_layer, layer_weights
from models.sources import LoadedModel

_STAGING = ".convscope-export-"  # prefix of the temporary folder beside the target


def safe_name(layer: str) -> str:
    """A layer name usable as a file name (module paths have dots, which are fine; '/' is not)."""
    return layer.replace("/", "_").replace("#", "_call")


def summary(result: RunResult, image: PreparedImage) -> dict:
    """The ``summary.json`` document: model, engine, image, predictions, the layer table."""
    layers = []
    for la in result.layers:
        rf = la.receptive_field
        layers.append(
            {
                "name": la.name,
                "type": la.type,
                "output_shape": list(la.output_shape),
                "params": la.params,
                "macs": la.macs,
                "time_ms": round(la.time_ms, 4),
                "algorithm": la.algorithm,
                "receptive_field": None
                if rf is None
                else {
                    "size": list(rf.size),
                    "jump": list(rf.jump),
                    "center": list(rf.center),
                    # the unit is also scaled by a gate computed from the whole image (SE)
                    "global_context": rf.global_context,
                    **({"approximate": list(rf.assumed)} if rf.assumed else {}),
                },
                **({"receptive_field_note": la.field_note} if la.field_note else {}),
                **({"grid_axes": list(la.grid_axes)} if la.channels_last else {}),
            }
        )
    doc = {
        "model": result.model_name,
        "engine": result.engine,
        "image": image.source,
        "input_shape": list(result.input_shape),
        "predictions": [{"label": label, "probability": p} for label, p in result.predictions],
        **({"predictions_note": result.prediction_note} if result.prediction_note else {}),
        "layers": layers,
    }
    non_finite: list[str] = []
    doc = _finite(doc, "", non_finite)
    if non_finite:
        doc["non_finite"] = non_finite
    return doc


def _finite(value: object, where: str, found: list[str]) -> object:
    """``value`` with every NaN / infinity replaced by ``None``, their paths (``predictions.0.
    probability``) appended to ``found``."""
    if isinstance(value, dict):
        return {k: _finite(v, f"{where}.{k}" if where else str(k), found) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v, f"{where}.{i}", found) for i, v in enumerate(value)]
    if isinstance(value, float) and not math.isfinite(value):
        found.append(where)
        return None
    return value


def write_rf_png(
    model: LoadedModel,
    image: PreparedImage,
    result: RunResult,
    layer: str,
    unit: tuple[int, int],
    path: Path,
    channel: int | None = None,
) -> Path:
    """The photo as the model sees it, with unit ``(y, x)``'s receptive-field box and its
    effective receptive field (for ``channel``, default: the channel most active there)."""
    info = find_layer(result, layer)
    act = result.maps(info.name)
    if info.receptive_field is None or act.ndim != 3:
        raise LayerError(f"layer {layer!r} has no spatial map, so its units have no box")
    y, x = unit
    if not (0 <= y < act.shape[1] and 0 <= x < act.shape[2]):
        raise LayerError(f"unit ({y}, {x}) is outside layer {layer!r} of size {act.shape[1]}x{act.shape[2]}")
    if channel is None:
        channel = int(np.argmax(act[:, y, x]))
    heat = effective_receptive_field(model.module, image.tensor, info.name, channel, y, x)
    rgb = render.overlay_heatmap(image.model_view, heat)
    rf = info.receptive_field
    rgb = render.draw_receptive_field(rgb, rf.box(y, x), rf.unit_center(y, x))
    return render.save_png(rgb, path)


def export_run(
    result: RunResult,
    model: LoadedModel,
    image: PreparedImage,
    out_dir: Path,
    layers: list[str] | None = None,
    unit: tuple[int, int] | None = None,
    explain: bool = False,
    cmap: str = "viridis",
    progress=None,
    cancel=None,
) -> list[Path]:
    """Write summary.json, activations.npz and per-layer PNGs into ``out_dir``; the paths.

    ``progress(layers_done, layers)`` after each layer; ``cancel()`` is checked before each (raises
    :class:`~models.errors.Cancelled`; a cancelled export leaves ``out_dir`` as it was)."""
    chosen = [find_layer(result, n) for n in layers] if layers else [la for la in result.layers if la.is_conv]
    if explain:  # refuse before writing anything
        from models.explain import require_conv

        for la in chosen:
            require_conv(la)
    out_dir = Path(out_dir).absolute()
    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(f"{out_dir} exists and is not a folder")
    staging = _staging_folder(out_dir)
    try:
        names = _write_all(result, model, image, staging, chosen, unit, explain, cmap, progress, cancel)
        return _move_into_place(staging, names, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _write_all(
    result: RunResult,
    model: LoadedModel,
    image: PreparedImage,
    folder: Path,
    chosen: list,
    unit: tuple[int, int] | None,
    explain: bool,
    cmap: str,
    progress=None,
    cancel=None,
) -> list[str]:
    """Every file of the export, written into ``folder``; their names in order."""
    written = []
    path = folder / "summary.json"
    path.write_text(json.dumps(summary(result, image), indent=2, allow_nan=False))
    written.append(path)
    path = folder / "activations.npz"
    np.savez_compressed(path, **result.activations)
    written.append(path)
    for done, la in enumerate(chosen):
        if cancel is not None and cancel():
            raise Cancelled("export cancelled")
        if progress is not None:
            progress(done, len(chosen))
        base = safe_name(la.name)
        act = result.maps(la.name)
        image_rgb = render.feature_maps_image(act if act.ndim != 1 else act[:, None, None], cmap)[0]
        written.append(render.save_png(image_rgb, folder / f"{base}.features.png"))
        weight = layer_weights(model, la.name)
        if weight is not None:
            filters = render.filters_image(weight, min_kernel=48)
            written.append(render.save_png(filters, folder / f"{base}.filters.png"))
        if unit is not None:
            written.append(write_rf_png(model, image, result, la.name, unit, folder / f"{base}.rf.png"))
        if explain:
            from models.explain import export_layer_gif

            written.append(export_layer_gif(model, result, la.name, folder / f"{base}.explain.gif"))
    return [Path(p).name for p in written]


def check_destination(out_dir: Path) -> None:
    """Before long work whose files go to ``out_dir``: a one-line error now (an existing file, a
    place nothing can be written), not after the work. Tries the staging folder the export will
    use, and removes it."""
    out_dir = Path(out_dir).absolute()
    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(f"{out_dir} exists and is not a folder")
    try:
        _staging_folder(out_dir).rmdir()
    except OSError as exc:
        ancestor = next(p for p in out_dir.parents if p.exists())
        raise PermissionError(f"cannot write into {ancestor}: {exc.strerror or exc}") from None


def _staging_folder(out_dir: Path) -> Path:
    """A new empty folder beside ``out_dir``, in its nearest existing ancestor (the same file
    system, so moves are renames; nothing is created on the way to ``out_dir`` yet). Made with
    ``mkdir``, not ``mkdtemp``: renamed into place it keeps the usual permissions, not 0700."""
    ancestor = out_dir.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    while True:
        staging = ancestor / f"{_STAGING}{secrets.token_hex(6)}"
        try:
            staging.mkdir()
            return staging
        except FileExistsError:
            continue


def _move_into_place(staging: Path, names: list[str], out_dir: Path) -> list[Path]:
    """A new folder is the staging folder renamed (atomic); into an existing one each file is
    renamed over its namesake (same file system, so each move is atomic), other files stay.

    All or nothing there too: a name taken by a folder is refused before anything moves, and if
    a move fails anyway, the files moved so far are taken back and the files they replaced are
    put back (kept aside in the staging folder until every move is done)."""
    if not out_dir.exists():
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(staging, out_dir)
            return [out_dir / n for n in names]
        except OSError:  # created meanwhile, or a platform that will not: file by file
            out_dir.mkdir(parents=True, exist_ok=True)
    for name in names:
        target = out_dir / name
        if target.is_dir() and not target.is_symlink():
            raise ConvScopeError(
                f"cannot write {target}: a folder of that name is in the way (nothing was written)"
            )
    aside = staging / ".replaced"
    aside.mkdir()
    moved: list[str] = []
    try:
        for name in names:
            target = out_dir / name
            if target.exists() or target.is_symlink():
                os.replace(target, aside / name)
            os.replace(staging / name, target)
            moved.append(name)
    except OSError as exc:
        for name in reversed(moved):  # take ours back, put theirs back
            with contextlib.suppress(OSError):
                os.replace(out_dir / name, staging / name)
        for kept in aside.iterdir():
            with contextlib.suppress(OSError):
                os.replace(kept, out_dir / kept.name)
        raise ConvScopeError(f"cannot write {out_dir}: {exc.strerror or exc} (nothing was written)") from None
    return [out_dir / n for n in names]


def export_files(out_dir: Path, write: Callable[[Path], list[Path]]) -> list[Path]:
    """All or nothing, like :func:`export_run`: ``write(folder)`` writes its files into a staging
    folder beside ``out_dir`` and returns them; they are moved into ``out_dir`` when all are
    written (the feature visualization and class activation map exports use this)."""
    out_dir = Path(out_dir).absolute()
    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(f"{out_dir} exists and is not a folder")
    staging = _staging_folder(out_dir)
    try:
        names = [Path(p).name for p in write(staging)]
        return _move_into_place(staging, names, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
