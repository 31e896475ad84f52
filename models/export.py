"""What ``main.py --export DIR`` writes (and the GUI's "Export everything")."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from models import render
from models.errors import Cancelled, LayerError
from models.images import PreparedImage
from models.receptive_field import effective_receptive_field
from models.runner import RunResult, find_layer, layer_weights
from models.zoo import LoadedModel


def safe_name(layer: str) -> str:
    """A layer name usable as a file name (module paths have dots, which are fine; '/' is not)."""
    return layer.replace("/", "_").replace("#", "_call")


def summary(result: RunResult, image: PreparedImage) -> dict:
    """The ``summary.json`` document: model, engine, image, predictions, the layer table."""
    layers = []
    for la in result.layers:
        rf = la.receptive_field
        layers.append({
            "name": la.name, "type": la.type, "output_shape": list(la.output_shape),
            "params": la.params, "macs": la.macs, "time_ms": round(la.time_ms, 4),
            "algorithm": la.algorithm,
            "receptive_field": None if rf is None else {
                "size": list(rf.size), "jump": list(rf.jump), "center": list(rf.center)},
        })
    return {
        "model": result.model_name, "engine": result.engine, "image": image.source,
        "input_shape": list(result.input_shape),
        "predictions": [{"label": label, "probability": p} for label, p in result.predictions],
        "layers": layers,
    }


def write_rf_png(model: LoadedModel, image: PreparedImage, result: RunResult, layer: str,
                 unit: tuple[int, int], path: Path, channel: int | None = None) -> Path:
    """The photo as the model sees it, with unit ``(y, x)``'s receptive-field box and its
    effective receptive field (for ``channel``, default: the channel most active there)."""
    info = find_layer(result, layer)
    act = result.activations[info.name]
    if info.receptive_field is None or act.ndim != 3:
        raise LayerError(f"layer {layer!r} has no spatial map, so its units have no box")
    y, x = unit
    if not (0 <= y < act.shape[1] and 0 <= x < act.shape[2]):
        raise LayerError(f"unit ({y}, {x}) is outside layer {layer!r} of size "
                         f"{act.shape[1]}x{act.shape[2]}")
    if channel is None:
        channel = int(np.argmax(act[:, y, x]))
    heat = effective_receptive_field(model.module, image.tensor, info.name,
                                     channel, y, x)
    rgb = render.overlay_heatmap(image.model_view, heat)
    rf = info.receptive_field
    rgb = render.draw_receptive_field(rgb, rf.box(y, x), rf.unit_center(y, x))
    return render.save_png(rgb, path)


def export_run(result: RunResult, model: LoadedModel, image: PreparedImage, out_dir: Path,
               layers: list[str] | None = None, unit: tuple[int, int] | None = None,
               explain: bool = False, cmap: str = "viridis", progress=None, cancel=None) -> list[Path]:
    """Write summary.json, activations.npz and per-layer PNGs into ``out_dir``; the paths.

    ``progress(layers_done, layers)`` after each layer; ``cancel()`` is checked before each (raises
    :class:`~models.errors.Cancelled`; what was written so far stays)."""
    chosen = [find_layer(result, n) for n in layers] if layers else [
        la for la in result.layers if la.is_conv]
    if explain:  # refuse before writing anything
        from models.explain import require_conv

        for la in chosen:
            require_conv(la)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    path = out_dir / "summary.json"
    path.write_text(json.dumps(summary(result, image), indent=2))
    written.append(path)
    path = out_dir / "activations.npz"
    np.savez_compressed(path, **result.activations)
    written.append(path)
    for done, la in enumerate(chosen):
        if cancel is not None and cancel():
            raise Cancelled("export cancelled")
        if progress is not None:
            progress(done, len(chosen))
        base = safe_name(la.name)
        act = result.activations[la.name]
        image_rgb = render.feature_maps_image(act if act.ndim != 1 else act[:, None, None], cmap)[0]
        written.append(render.save_png(image_rgb, out_dir / f"{base}.features.png"))
        weight = layer_weights(model, la.name)
        if weight is not None:
            filters = render.filters_image(weight, min_kernel=48)
            written.append(render.save_png(filters, out_dir / f"{base}.filters.png"))
        if unit is not None:
            written.append(write_rf_png(model, image, result, la.name, unit, out_dir / f"{base}.rf.png"))
        if explain:
            from models.explain import export_layer_gif

            written.append(export_layer_gif(model, result, la.name, out_dir / f"{base}.explain.gif"))
    return written
