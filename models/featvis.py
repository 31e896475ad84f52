"""Feature visualization: the image a channel (or one unit) of a layer responds to most.

Gradient ascent on the input, as in Olah, Mordvintsev & Schubert, "Feature Visualization"
(Distill, 2017) and the Lucid / Lucent libraries (Lucent's constants):

- the image is parameterised in a **decorrelated Fourier basis**: a random spectrum per colour
  channel, each frequency scaled by ``1/f`` (so every frequency band moves at the same rate and
  the image does not fill with high-frequency noise), an inverse FFT, then Lucent's colour
  decorrelation matrix (the square root of ImageNet's colour covariance) and a sigmoid to [0, 1];
- every step the image is **jittered, scaled and rotated** at random (transformation
  robustness): what survives is a pattern that excites the channel wherever it sits, not
  adversarial noise. Here the three are one affine resampling at a constant size (grey beyond
  the border), so a ``.pt2`` program with a fixed input shape runs too;
- **Adam** on the spectrum maximises the mean activation of the channel (or one unit's
  activation), the image normalised with the model's own mean and std. The activation is the
  channel **as the network uses it**: when the layer is followed by per-channel element-wise
  layers (a BatchNorm, an activation; :func:`objective_layer`), after them. A convolution's
  raw output is linear in the image, and an edge detector's kernel sums to about zero per colour
  (EfficientNet-Lite0's ``_conv_stem`` channel 0: 0.017, -0.057, 0.025 against an absolute sum
  of 21.9), so its mean over the map is about zero for *any* image: only a 2-pixel pattern
  locked to the stride grid moves it, which the jitter and the 1/f spectrum average away.
  After its BatchNorm and ReLU6, the negative half is cut off and the mean counts edges.

Gradients come from torch's autograd (the convolution engines compute forward passes only),
and each forward pass stops at the layer (:func:`models.runner.layer_output`): a deep layer
never runs the classifier. A seed makes a run reproducible (same seed, same image, bit for
bit on CPU). Long work: ``progress(step, total, preview)`` gets an RGB preview every few steps,
``cancel()`` stops it (``Cancelled``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
import torch
from torch import nn

from models import render
from models.capture import model_form
from models.errors import Cancelled, LayerError
from models.featvis_image import JITTER, FourierImage, random_transform
from models.layers import find_layer, split_layer_key
from models.runner import layer_output, plan
from models.sources import LoadedModel

# progress(step, total, preview): preview is (H, W, 3) uint8 every ``preview_every`` steps, else None
VisProgress = Callable[[int, int, np.ndarray | None], None]

NOTE = (
    "gradients from torch's autograd: the convolution engines compute forward passes only; "
    "the model ran up to layer {layer} on every step"
)
GREY = 128 / 255  # the baseline image: mid-grey (128), about where the optimisation starts

# Lucent's 0.05 is for its 512 steps; at our default 256 the early layers' fine textures (which
# the 1/f spectrum moves slowly) stayed faint: _blocks.1._expand_conv channel 3 rose 0.08 at 0.05
# and 1.7 at 0.1 in 128 steps, and no layer measured did worse at 0.1
LEARNING_RATE = 0.1
MAX_STEPS = 4096  # the window's Steps box and --steps: beyond it a run takes hours
LEAK = 0.1  # the gradient through an activation's off region (see _leak)


@dataclass
class Visualization:
    """What :func:`visualize` / :func:`visualize_channels` found.

    ``images``: ``(N, H, W, 3)`` uint8, one per channel (a 1-channel model's grey repeated);
    ``activations``: ``(N,)`` the objective on each final image as it is, untransformed (the
    channel's mean activation, or the unit's value, at ``objective_layer``); ``baseline``:
    ``(N,)`` the same on a plain mid-grey image (the channel's resting level: a BatchNorm's
    bias lifts it above 0); ``history``: ``(steps, N)`` the objective during the run (on the
    transformed images). ``objective_layer``: ``layer``, or the last of the per-channel
    element-wise layers right after it (its BatchNorm and activation) whose output was maximised.
    """

    layer: str
    channels: list[int]
    unit: tuple[int, int] | None
    images: np.ndarray = field(repr=False)
    activations: np.ndarray
    history: np.ndarray = field(repr=False)
    steps: int
    seed: int
    size: tuple[int, int]
    note: str
    objective_layer: str = ""
    baseline: np.ndarray | None = None

    @property
    def image(self) -> np.ndarray:
        """The first (for :func:`visualize`, the only) image, ``(H, W, 3)`` uint8."""
        return self.images[0]

    def mosaic(self, columns: int | None = None, gap: int = 2) -> np.ndarray:
        """All images tiled, ``(H', W', 3)`` uint8."""
        return render.mosaic(self.images, columns, gap=gap)[0]


def _maps(out: torch.Tensor, axes: tuple[int, int] | None) -> torch.Tensor:
    """A batch's layer output as ``(N, C, H, W)`` (grid last, channels-last moved) or ``(N, C)``."""
    if axes is None:
        return out.reshape(out.shape[0], -1) if out.dim() != 4 else out
    if axes != (out.dim() - 2, out.dim() - 1):
        out = torch.movedim(out, axes, (-2, -1))
    return out.reshape(out.shape[0], -1, *out.shape[-2:])


def layer_channels(
    model: LoadedModel | nn.Module, layer: str, size: tuple[int, int], channels: int = 3
) -> tuple[int, tuple[int, int] | None]:
    """How many channels ``layer`` has and its grid ``(H, W)`` (None without one), for inputs of
    ``size``; ``LayerError`` for an unknown layer or one whose output has no channels."""
    module = model if isinstance(model, nn.Module) else model.module
    rows = plan(module, torch.zeros(1, channels, *size)).rows
    if layer not in rows:  # raises, naming close matches
        name = model.name if isinstance(model, LoadedModel) else type(module).__name__
        find_layer(SimpleNamespace(model_name=name, layers=list(rows.values())), layer)
    row = rows[layer]
    shape = row.output_shape
    if row.grid_axes is not None:
        y, x = row.grid_axes
        return int(np.prod(shape[1:])) // (shape[y] * shape[x]), (shape[y], shape[x])
    if len(shape) == 2:
        return int(shape[1]), None
    raise LayerError(f"layer {layer!r} has no channels to visualize (output {list(shape)})")


def objective_layer(
    model: LoadedModel | nn.Module, layer: str, size: tuple[int, int], channels: int = 3
) -> str:
    """The layer whose output a visualization of ``layer`` maximises (the last of
    :func:`objective_chain`): ``_conv_stem`` -> ``_act_stem``."""
    return objective_chain(model, layer, size, channels)[-1]


def objective_chain(
    model: LoadedModel | nn.Module, layer: str, size: tuple[int, int], channels: int = 3
) -> list[str]:
    """``layer`` followed through the per-channel element-wise layers that take its output, one
    after another (BatchNorm, activations, dropout: the plan's derived rows,
    ``models.runner._DERIVABLE``), so a convolution is seen as the network uses it
    (``_conv_stem``, ``_bn0``, ``_act_stem``). Only while exactly one such layer takes the
    output; a residual add or a block ends it. Eager models only (only for them does the plan
    know where a layer's input came from): for a ``.pt2`` or TorchScript model, ``[layer]``."""
    module = model if isinstance(model, nn.Module) else model.module
    the_plan = plan(module, torch.zeros(1, channels, *size))
    rows, chain = the_plan.rows, [layer]
    while True:
        nxt = [
            k
            for k, source in the_plan.derive.items()
            if source == chain[-1]
            and not rows[k].block
            and rows[k].output_shape == rows[chain[-1]].output_shape
        ]
        if len(nxt) != 1:
            return chain
        chain.append(nxt[0])


def visualize(
    model: LoadedModel,
    layer: str,
    channel: int,
    *,
    unit: tuple[int, int] | None = None,
    steps: int = 256,
    seed: int = 0,
    size: tuple[int, int] | None = None,
    preview_every: int = 8,
    progress: VisProgress | None = None,
    cancel: Callable[[], bool] | None = None,
    as_used: bool = True,
) -> Visualization:
    """The image that maximises ``channel``'s mean activation at ``layer`` (or, with ``unit``
    ``(y, x)``, that unit's activation); ``as_used``: after the BatchNorm and activation that
    follow the layer (:func:`objective_layer`), else the layer's own output. ``size``: the
    optimised image (default: the model's input size). Raises ``LayerError`` (unknown layer,
    channel or unit outside it), ``Cancelled``."""
    return visualize_channels(
        model,
        layer,
        [channel],
        unit=unit,
        steps=steps,
        seed=seed,
        size=size,
        preview_every=preview_every,
        progress=progress,
        cancel=cancel,
        as_used=as_used,
    )


def visualize_channels(
    model: LoadedModel,
    layer: str,
    channels: Sequence[int] | int = 16,
    *,
    unit: tuple[int, int] | None = None,
    steps: int = 256,
    seed: int = 0,
    size: tuple[int, int] | None = None,
    preview_every: int = 8,
    progress: VisProgress | None = None,
    cancel: Callable[[], bool] | None = None,
    as_used: bool = True,
) -> Visualization:
    """One image per channel of ``layer`` optimised together in one batch; ``channels`` an int
    ``n`` means the first ``n`` (fewer if the layer has fewer). The preview is their mosaic.
    Each channel's image depends on the seed and the channel only (:func:`channel_generator`):
    the grid's image of a channel is :func:`visualize`'s (up to float rounding). A ``.pt2``
    program with a fixed batch size runs the channels one batch of that size at a time (its
    previews show the batch under way)."""
    module = model.module
    pre = model.preprocess
    size = tuple(int(v) for v in (size or pre.size))
    count, grid = layer_channels(model, layer, size, pre.channels)
    if isinstance(channels, int):
        wanted = list(range(min(channels, count)))
    else:
        wanted = [int(c) for c in channels]
    if not wanted:
        raise LayerError("no channel to visualize")
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    bad = [c for c in wanted if not 0 <= c < count]
    if bad:
        raise LayerError(
            f"channel {bad[0]} is outside layer {layer!r}, which has {count} channels (0..{count - 1})"
        )
    if unit is not None:
        if grid is None:
            raise LayerError(f"layer {layer!r} has no spatial map, so it has no unit {unit}")
        if not (0 <= unit[0] < grid[0] and 0 <= unit[1] < grid[1]):
            raise LayerError(f"unit {tuple(unit)} is outside layer {layer!r} of size {grid[0]}x{grid[1]}")
    row = plan(module, torch.zeros(1, pre.channels, *size)).rows[layer]
    axes, jitter, center = row.grid_axes, JITTER, None
    if unit is not None and row.receptive_field is not None:
        # one unit sees only its field: move it by at most a quarter of the field, and turn and
        # scale about the field's centre, so the unit keeps seeing the image it is shaping
        rf = row.receptive_field
        jitter = (max(1, min(sum(JITTER), min(rf.size) // 4)),)
        cy, cx = rf.unit_center(*unit)
        center = (cy + 0.5, cx + 0.5)  # pixel i covers [i, i + 1)
    chain = objective_chain(module, layer, size, pre.channels) if as_used else [layer]
    target = chain[-1]
    # the last element-wise layer is applied here, to the one before it, for the leak through
    # its off region (the plan checked that this gives exactly the layer's output)
    objective = (
        chain[0] if len(chain) == 1 else (chain[-2], dict(module.named_modules())[split_layer_key(target)[0]])
    )
    mean = torch.tensor(pre.mean[: pre.channels], dtype=torch.float32).view(1, -1, 1, 1)
    std = torch.tensor(pre.std[: pre.channels], dtype=torch.float32).view(1, -1, 1, 1)
    batch = fixed_batch(module) or len(wanted)
    parts = [wanted[i : i + batch] for i in range(0, len(wanted), batch)]
    images, finals, histories, baselines = [], [], [], []
    for index, part in enumerate(parts):
        done = index * steps

        def report(step: int, preview: np.ndarray | None, done: int = done) -> None:
            if progress is not None:
                progress(done + step, len(parts) * steps, preview)

        generators = [channel_generator(seed, c) for c in part]
        image, final, history, baseline = _optimize(
            module,
            objective,
            part,
            unit,
            axes,
            steps,
            size,
            pre.channels,
            mean,
            std,
            generators,
            (jitter, center),
            preview_every,
            report,
            cancel,
        )
        images.append(image)
        baselines.append(baseline)
        finals.append(final)
        histories.append(history)
    return Visualization(
        layer=layer,
        channels=wanted,
        unit=tuple(unit) if unit is not None else None,
        images=np.concatenate(images),
        activations=np.concatenate(finals),
        history=np.concatenate(histories, axis=1),
        steps=steps,
        seed=int(seed),
        size=size,
        note=NOTE.format(layer=target),
        objective_layer=target,
        baseline=np.concatenate(baselines),
    )


def channel_generator(seed: int, channel: int) -> torch.Generator:
    """The random numbers of one channel's image: its start and its transforms depend on the
    seed and the channel only, so an image is the same in a grid, alone, or in any batch."""
    state = np.random.SeedSequence([int(seed), int(channel)]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def fixed_batch(module: nn.Module) -> int | None:
    """The batch size a ``torch.export`` program was exported with when it is fixed, else None."""
    if model_form(module) != "program":
        return None
    for node in module.graph.nodes:
        if node.op == "placeholder":
            val = node.meta.get("val")
            shape = getattr(val, "shape", None)
            if shape is not None and len(shape) == 4:
                return int(shape[0]) if isinstance(shape[0], int) else None
    return None


def _optimize(
    module: nn.Module,
    layer: str | tuple[str, nn.Module],
    channels: list[int],
    unit: tuple[int, int] | None,
    axes: tuple[int, int] | None,
    steps: int,
    size: tuple[int, int],
    in_channels: int,
    mean: torch.Tensor,
    std: torch.Tensor,
    generators: list[torch.Generator],
    transform: tuple[tuple[int, ...], tuple[float, float] | None],
    preview_every: int,
    report: Callable[[int, np.ndarray | None], None],
    cancel: Callable[[], bool] | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Adam on one batch of Fourier images: (images uint8, final objective, history, the
    objective on a mid-grey image). ``layer``: the layer maximised, or (the layer before it,
    the element-wise module that makes it from that one's output)."""
    n = len(channels)
    index = torch.tensor(channels)
    param = FourierImage(in_channels, size, generators)
    optimizer = torch.optim.Adam([param.spectrum], lr=LEARNING_RATE)
    history = np.zeros((steps, n), dtype=np.float32)

    captured, act = (layer, None) if isinstance(layer, str) else layer

    def pick(out: torch.Tensor) -> torch.Tensor:
        picked = _maps(out, axes)[torch.arange(n), index]  # (N, H, W) or (N,)
        return picked[:, unit[0], unit[1]] if unit is not None else picked.reshape(n, -1)

    def objective(images: torch.Tensor, surrogate: bool = False):
        out, _ = layer_output(module, (images - mean) / std, captured, stop=True, cancel=cancel)
        if act is None:
            value = pick(out)
            return (value if unit is not None else value.mean(1)), None
        value = pick(_apply(act, out))
        value = value if unit is not None else value.mean(1)
        return value, (_leak(act, out, pick) if surrogate else None)

    for step in range(steps):
        if cancel is not None and cancel():
            raise Cancelled("feature visualization cancelled")
        with torch.enable_grad():
            value, leak = objective(random_transform(param(), generators, *transform), True)
            goal = value if leak is None else value + leak
            (grad,) = torch.autograd.grad(-goal.sum(), [param.spectrum])
        param.spectrum.grad = grad  # the model's own parameters are never given a .grad
        optimizer.step()
        history[step] = value.detach().numpy()
        last = step + 1 == steps
        preview = None
        if last or (preview_every > 0 and (step + 1) % preview_every == 0):
            with torch.no_grad():
                preview = _mosaic(_to_uint8(param()))
        report(step + 1, preview)
    with torch.no_grad():
        final_images = param()
        final = objective(final_images)[0].numpy().astype(np.float32)
        baseline = objective(torch.full_like(final_images, GREY))[0].numpy().astype(np.float32)
    return _to_uint8(final_images), final, history, baseline


def _apply(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """An element-wise layer on ``x`` with gradients, without its hooks (a capture may be under
    way on another thread) and never writing into ``x``."""
    return module.forward(x.clone() if getattr(module, "inplace", False) else x)


def _leak(
    activation: nn.Module, before: torch.Tensor, pick: Callable[[torch.Tensor], torch.Tensor]
) -> torch.Tensor:
    """A gradient through the last activation's off region: ``LEAK`` times the mean of its input
    over the positions of the channel where it is off below (slope 0 and input <= 0: a ReLU's
    negative side, a ReLU6's, a hard-swish's). Added to the objective for the gradient only (the
    reported activation is the plain one). Without it, a channel off everywhere on the grey
    start (a deep channel with a negative BatchNorm bias often is) gets no gradient at all and
    stays 0; with it, its positions climb until they fire. Lucid's "redirected ReLU gradient"
    does this when the whole gradient is 0; a small constant leak keeps Adam's step sizes
    steady instead of switching between two objectives. ``(N,)``."""
    probe = before.detach().requires_grad_(True)
    with torch.enable_grad():
        (slope,) = torch.autograd.grad(_apply(activation, probe).sum(), [probe])
    x = pick(before)
    off = ((pick(slope) == 0) & (x.detach() <= 0)).to(x.dtype)
    return LEAK * (x * off).reshape(len(x), -1).mean(1)


def _to_uint8(images: torch.Tensor) -> np.ndarray:
    """``(N, C, H, W)`` in [0, 1] -> ``(N, H, W, 3)`` uint8 (grey repeated)."""
    rgb = (images.detach().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return np.ascontiguousarray(np.repeat(rgb, 3, axis=3) if rgb.shape[3] == 1 else rgb)


def _mosaic(images: np.ndarray) -> np.ndarray:
    return images[0] if len(images) == 1 else render.mosaic(images, gap=2)[0]


def model_input(model: LoadedModel, rgb: np.ndarray) -> torch.Tensor:
    """A visualization image ``(H, W, 3)`` uint8 as the model's normalised input ``(1, C, H, W)``
    (for a grey model the first channel, which the others repeat)."""
    pre = model.preprocess
    pixels = torch.from_numpy(np.asarray(rgb, dtype=np.float32) / 255).permute(2, 0, 1)[: pre.channels]
    mean = torch.tensor(pre.mean[: pre.channels], dtype=torch.float32).view(-1, 1, 1)
    std = torch.tensor(pre.std[: pre.channels], dtype=torch.float32).view(-1, 1, 1)
    return ((pixels - mean) / std)[None].contiguous()
