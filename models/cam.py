"""Class activation maps: where in the photo a classifier found the evidence for a class.

- **Grad-CAM** (Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via
  Gradient-based Localization", ICCV 2017): the gradient of the class score with respect to a
  conv layer's output, averaged over the map, weighs each channel;
  ``ReLU(sum_k alpha_k A_k)``.
- **Grad-CAM++** (Chattopadhay et al., WACV 2018): per-position weights from the second and third
  powers of the gradient, which share the credit between several instances of the class.
- **Score-CAM** (Wang et al., CVPR-W 2020): no gradient at all; each channel's map, upsampled
  and scaled to [0, 1], masks the input, and the class's score on that masked input, softmaxed
  over the channels (the paper's Algorithm 1), weighs the channel. It needs one forward pass
  per channel, but it runs on every model form, TorchScript included.

The maps are at the layer's resolution (``ClassMap.cam``) and upsampled to the model input
(``ClassMap.heat``, bilinear); :func:`heat_on_original` maps them back onto the photo with the
image's :class:`~models.images.InputMapping`. Gradients come from torch's autograd (the engines
compute forward passes only); the layer is found by the runner's capture
(:func:`models.runner.layer_output`), so any layer key works, on eager models and ``.pt2``
programs. We wrote these rather than adopt torchcam or pytorch-grad-cam: see the README
(*Class activation maps*) for the comparison.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models import render
from models.capture import model_form
from models.errors import Cancelled, LayerError, ModelError
from models.featvis import fixed_batch
from models.images import InputMapping, PreparedImage
from models.runner import layer_output, plan
from models.sources import LoadedModel

METHODS = {"gradcam": "Grad-CAM", "gradcam++": "Grad-CAM++", "scorecam": "Score-CAM"}
ProgressFn = Callable[[int, int], None]


@dataclass
class ClassMap:
    """One class activation map.

    ``cam``: ``(h, w)`` float32, >= 0, at the layer's resolution, as the method computes it
    (not rescaled). ``heat``: ``(H, W)`` float32 in [0, 1], ``cam`` upsampled bilinearly to
    the model input and divided by its maximum (all zeros when the class has no positive
    evidence at this layer). ``score``: the model's output for the class (a logit);
    ``probability``: its softmax.
    """

    method: str
    layer: str
    class_index: int
    class_name: str | None
    score: float
    probability: float
    cam: np.ndarray = field(repr=False)
    heat: np.ndarray = field(repr=False)
    note: str = ""

    @property
    def empty(self) -> bool:
        """The map is zero everywhere: no unit of the layer speaks for the class once the
        weighted sum goes through the ReLU (e.g. a linear projection layer before its add)."""
        return not float(np.max(self.cam)) > 0

    def empty_note(self) -> str:
        return (
            f"the map is zero everywhere at {self.layer}: no unit there adds evidence for the "
            f"class; try the last convolution (the default) or a layer after an activation"
        )


def default_layer(model: LoadedModel | nn.Module, x: torch.Tensor) -> str:
    """The last convolution (in execution order) whose output is a map larger than 1x1."""
    rows = plan(_module(model), x[:1]).rows
    convs = [k for k, r in rows.items() if r.is_conv and _grid(r) is not None and np.prod(_grid(r)) > 1]
    if not convs:
        raise LayerError("the model has no convolution with a spatial map to explain")
    return convs[-1]


def resolve_class(model: LoadedModel | None, target: int | str | None, logits: np.ndarray) -> int:
    """The class to explain: ``None`` (top-1), an index (int or digits), or a category name
    (any case). ``LayerError`` (one line) for an index out of range, an unknown name, or a name
    when the model has no category names."""
    count = int(logits.shape[-1])
    if target is None or (isinstance(target, str) and not target.strip()):
        return int(np.argmax(logits))
    text = str(target).strip()
    if isinstance(target, int) or text.lstrip("-").isdigit():
        index = int(text)
        if not 0 <= index < count:
            raise LayerError(f"class {index} is outside the model's {count} outputs (0..{count - 1})")
        return index
    categories = model.categories if model is not None else None
    if not categories:
        raise LayerError(
            f"the model has no category names, so class {text!r} is unknown; give an index 0..{count - 1}"
        )
    folded = [c.casefold() for c in categories]
    if text.casefold() in folded:
        return folded.index(text.casefold())
    close = difflib.get_close_matches(text, categories, n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise LayerError(f"unknown class {text!r}{hint}")


def class_map(
    model: LoadedModel,
    image: PreparedImage | torch.Tensor,
    layer: str | None = None,
    target: int | str | None = None,
    method: str = "gradcam",
    *,
    progress: ProgressFn | None = None,
    cancel: Callable[[], bool] | None = None,
    batch: int = 32,
) -> ClassMap:
    """The class activation map of ``target`` (default: the top-1 class) at ``layer``
    (default: :func:`default_layer`) by ``method`` (a key of :data:`METHODS`).

    Raises ``LayerError`` (a layer without a spatial map, an unknown class), ``ModelError``
    (the model's output is not one score per class; Grad-CAM on TorchScript, whose layer
    outputs carry no gradient back from the model's output: use Score-CAM), ``Cancelled``.
    ``progress(done, total)`` counts Score-CAM's channels (Grad-CAM is one pass).
    """
    if method not in METHODS:
        raise ModelError(f"unknown CAM method {method!r}; one of {', '.join(METHODS)}")
    module = _module(model)
    x = (image.tensor if isinstance(image, PreparedImage) else image).detach().float()[:1]
    layer = layer or default_layer(module, x)
    axes = _spatial_axes(module, x, layer)
    if method != "scorecam" and model_form(module) == "script":
        raise ModelError(
            f"{METHODS[method]} needs the gradient at layer {layer!r}, and a "
            f"TorchScript model gives none there; Score-CAM needs no gradient"
        )
    if method == "scorecam":
        maps, logits = _activations(module, x, layer, axes, cancel)
        index = resolve_class(model, target, logits)
        cam = _score_cam(module, x, maps, index, batch, progress, cancel)
        note = "Score-CAM: forward passes on torch, one per channel of the layer"
    else:
        maps, grads, logits = _gradients(module, x, layer, axes, target, model, cancel)
        index = resolve_class(model, target, logits)
        cam = grad_cam_weights(maps, grads, plus_plus=method == "gradcam++")
        note = (
            f"{METHODS[method]}: gradients from torch's autograd (the convolution engines "
            f"compute forward passes only)"
        )
    probs = torch.softmax(torch.from_numpy(logits.astype(np.float64)), 0).numpy()
    return ClassMap(
        method=METHODS[method],
        layer=layer,
        class_index=index,
        class_name=_category(model, index),
        score=float(logits[index]),
        probability=float(probs[index]),
        cam=cam,
        heat=upsample(cam, tuple(x.shape[-2:])),
        note=note,
    )


def grad_cam_weights(maps: np.ndarray, grads: np.ndarray, plus_plus: bool = False) -> np.ndarray:
    """Grad-CAM (or Grad-CAM++) from a layer's maps ``A`` and the class score's gradient ``G``,
    both ``(C, h, w)``: ``ReLU(sum_k w_k A_k)`` with ``w_k`` the mean of ``G_k`` (Grad-CAM) or
    ``sum_ij a_kij ReLU(G_kij)``, ``a = G^2 / (2 G^2 + sum_ij A_k G^3)`` (Grad-CAM++, as its
    paper's closed form under an exponential score). ``(h, w)`` float32."""
    a = maps.astype(np.float64)
    g = grads.astype(np.float64)
    if plus_plus:
        g2 = g * g
        denominator = 2 * g2 + a.sum(axis=(1, 2), keepdims=True) * g2 * g
        alpha = np.divide(g2, denominator, out=np.zeros_like(g2), where=denominator != 0)
        weights = (alpha * np.maximum(g, 0)).sum(axis=(1, 2))
    else:
        weights = g.mean(axis=(1, 2))
    return np.maximum(np.tensordot(weights, a, axes=1), 0).astype(np.float32)


def upsample(cam: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``cam`` ``(h, w)`` bilinearly to ``size`` and scaled to a maximum of 1: ``(H, W)``."""
    t = torch.from_numpy(np.ascontiguousarray(cam, dtype=np.float32))[None, None]
    up = F.interpolate(t, size=size, mode="bilinear", align_corners=False)[0, 0].clamp_min(0).numpy()
    top = float(up.max()) if up.size else 0.0
    return (up / top if top > 0 else np.zeros_like(up)).astype(np.float32)


def heat_on_original(
    heat: np.ndarray, mapping: InputMapping, size: tuple[int, int] | None = None
) -> np.ndarray:
    """A heat map on the model input ``(H, W)`` mapped back onto the original photo: ``(H0, W0)``
    float32 (or ``size`` ``(h, w)``, the photo scaled to it), 0 outside the model's crop."""
    h0, w0 = mapping.original_size
    h, w = size or (h0, w0)
    # each output pixel's centre in original pixels, then in model-input pixels
    ys = (torch.arange(h, dtype=torch.float64) + 0.5) * (h0 / h)
    xs = (torch.arange(w, dtype=torch.float64) + 0.5) * (w0 / w)
    yi = (ys - mapping.offset[0]) / mapping.scale[0]
    xi = (xs - mapping.offset[1]) / mapping.scale[1]
    hi, wi = heat.shape
    # grid_sample with align_corners=False: -1 and 1 are the outer edges of the border pixels
    gy = (2 * yi / hi - 1).float()[:, None].expand(h, w)
    gx = (2 * xi / wi - 1).float()[None, :].expand(h, w)
    grid = torch.stack([gx, gy], dim=-1)[None]
    src = torch.from_numpy(np.ascontiguousarray(heat, dtype=np.float32))[None, None]
    return F.grid_sample(src, grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0, 0].numpy()


def overlay(rgb: np.ndarray, heat: np.ndarray, alpha: float = 0.6) -> np.ndarray:
    """The heat map over ``rgb`` ``(H, W, 3)`` uint8 (:func:`models.render.overlay_heatmap`)."""
    return render.overlay_heatmap(rgb, heat, alpha=alpha, cmap="inferno")


def on_original(cam: ClassMap, image: PreparedImage, max_side: int = 2048) -> np.ndarray:
    """The original photo (scaled down to ``max_side`` when larger) with the map mapped back:
    ``(h, w, 3)`` uint8."""
    h0, w0 = image.original.shape[:2]
    f = min(1.0, max_side / max(h0, w0))
    size = (max(1, round(h0 * f)), max(1, round(w0 * f)))
    photo = image.original
    if size != (h0, w0):
        from PIL import Image

        photo = np.asarray(Image.fromarray(photo).resize((size[1], size[0]), Image.Resampling.BILINEAR))
    return overlay(photo, heat_on_original(cam.heat, image.mapping, size))


# ------------------------------------------------------------------------------------------
def _module(model: LoadedModel | nn.Module) -> nn.Module:
    return model if isinstance(model, nn.Module) else model.module


def _grid(row) -> tuple[int, int] | None:
    if row.grid_axes is None:
        return None
    return row.output_shape[row.grid_axes[0]], row.output_shape[row.grid_axes[1]]


def _spatial_axes(module: nn.Module, x: torch.Tensor, layer: str) -> tuple[int, int]:
    rows = plan(module, x).rows
    row = rows.get(layer)
    if row is None:
        from types import SimpleNamespace

        from models.layers import find_layer

        find_layer(SimpleNamespace(model_name=type(module).__name__, layers=list(rows.values())), layer)
    grid = _grid(row)
    if grid is None or grid[0] * grid[1] <= 1:
        what = "no spatial map" if grid is None else "a 1x1 map"
        raise LayerError(
            f"layer {layer!r} ({row.type}, output {list(row.output_shape)}) has {what}: "
            f"a class activation map needs a convolutional layer's maps"
        )
    return row.grid_axes


def _as_maps(t: torch.Tensor, axes: tuple[int, int]) -> torch.Tensor:
    """One image's layer output ``(1, ...)`` as ``(C, h, w)``."""
    if axes != (t.dim() - 2, t.dim() - 1):
        t = torch.movedim(t, axes, (-2, -1))
    return t.reshape(-1, *t.shape[-2:])


def _logits(output: object) -> torch.Tensor:
    """One image's class scores ``(K,)`` from the model's output ``(1, K)``."""
    return _logits_batch(output, 1)[0]


def _logits_batch(output: object, n: int | None = None) -> torch.Tensor:
    if not isinstance(output, torch.Tensor) or output.dim() != 2 or (n is not None and output.shape[0] != n):
        shape = list(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__
        raise ModelError(
            f"the model's output ({shape}) is not one score per class, so it has no class to explain"
        )
    return output


def _gradients(
    module: nn.Module,
    x: torch.Tensor,
    layer: str,
    axes: tuple[int, int],
    target: int | str | None,
    model: LoadedModel | nn.Module,
    cancel: Callable[[], bool] | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The layer's maps, the class score's gradient there (both ``(C, h, w)``), the logits."""
    kept: list[torch.Tensor] = []
    grads: list[torch.Tensor] = []

    def on_output(out: torch.Tensor) -> None:
        kept.append(out.detach().clone())  # as made: a later in-place op cannot change it
        if out.requires_grad:  # the gradient w.r.t. this value, even if it is overwritten later
            out.register_hook(lambda g: grads.append(g.detach().clone()))

    inp = x.clone().requires_grad_(True)  # a graph even when the weights are frozen
    with torch.enable_grad():
        _, output = layer_output(module, inp, layer, stop=False, on_output=on_output, cancel=cancel)
        logits = _logits(output)
        index = resolve_class(
            model if isinstance(model, LoadedModel) else None, target, logits.detach().numpy()
        )
        torch.autograd.grad(logits[index], [inp], allow_unused=True)
    if not grads:
        raise ModelError(f"the model's output does not depend on layer {layer!r}")
    maps = _as_maps(kept[0], axes).numpy()
    return maps, _as_maps(grads[0], axes).numpy(), logits.detach().numpy().astype(np.float32)


def _activations(
    module: nn.Module, x: torch.Tensor, layer: str, axes: tuple[int, int], cancel: Callable[[], bool] | None
) -> tuple[np.ndarray, np.ndarray]:
    with torch.no_grad():
        out, _ = layer_output(module, x, layer, stop=True, cancel=cancel)
        maps = _as_maps(out, axes).float().numpy().copy()
        logits = _logits(module(x)).float().numpy()
    return maps, logits


def _score_cam(
    module: nn.Module,
    x: torch.Tensor,
    maps: np.ndarray,
    index: int,
    batch: int,
    progress: ProgressFn | None,
    cancel: Callable[[], bool] | None,
) -> np.ndarray:
    """Score-CAM: each channel's upsampled map, scaled to [0, 1], masks the (normalised) input;
    the class's score on each masked input, softmaxed over the channels, weighs the channel."""
    c = maps.shape[0]
    up = F.interpolate(
        torch.from_numpy(maps)[:, None], size=tuple(x.shape[-2:]), mode="bilinear", align_corners=False
    )[:, 0]
    lo = up.flatten(1).min(1).values[:, None, None]
    hi = up.flatten(1).max(1).values[:, None, None]
    masks = torch.where(hi > lo, (up - lo) / (hi - lo).clamp_min(1e-12), torch.zeros_like(up))
    batch = fixed_batch(module) or max(1, batch)
    scores = torch.zeros(c, dtype=torch.float64)
    with torch.no_grad():
        for start in range(0, c, batch):
            if cancel is not None and cancel():
                raise Cancelled("Score-CAM cancelled")
            m = masks[start : start + batch]
            out = module(x * m[:, None])
            scores[start : start + len(m)] = _logits_batch(out)[:, index].double()
            if progress is not None:
                progress(min(start + batch, c), c)
    weights = torch.softmax(scores, 0).numpy()
    return np.maximum(np.tensordot(weights, maps.astype(np.float64), axes=1), 0).astype(np.float32)


def _category(model: LoadedModel | nn.Module, index: int) -> str | None:
    categories = getattr(model, "categories", None)
    return categories[index] if categories and 0 <= index < len(categories) else None
