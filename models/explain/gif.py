"""The explainer's animation as a GIF: the window slides, the output grid fills up."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from engine import ConvSpec
from models.errors import Cancelled, LayerError
from models.explain.arithmetic import check_conv, explain_unit, positions, region_of
from models.explain.frame import render_frame


def render_explain_gif(
    weight: np.ndarray,
    bias: np.ndarray | None,
    layer_input: np.ndarray,
    conv: ConvSpec,
    path: str | Path,
    out_channel: int = 0,
    max_steps: int = 36,
    positions: Sequence[tuple[int, int]] | None = None,
    duration_ms: int = 500,
    max_channels: int = 3,
    title: str = "",
    progress=None,
    cancel=None,
) -> int:
    """Write the explainer animation of one filter as an animated GIF; returns the frame count.

    One frame per step: the window visits ``positions`` (default: every output position when
    there are at most ``max_steps``, else a block of about ``max_steps`` around the centre of
    the map) and the output grid fills up. Only the first ``max_channels`` input channels are
    drawn; the sums always use all of them.

    Parameters
    ----------
    weight : ``(O, C/groups, kH, kW)``; bias : ``(O,)`` or None
    layer_input : ``(C, H, W)`` the layer's input activation
    conv : the layer's convolution (``LayerInfo.conv``)
    progress, cancel : ``progress(frames_done, frames)`` after each frame; ``cancel()`` is
        checked before each (raises :class:`~models.errors.Cancelled`; nothing is written)
    """
    weight = np.asarray(weight)
    spec = check_conv(conv, np.shape(layer_input), weight.shape)
    if not 0 <= out_channel < spec.c_out:
        raise LayerError(f"filter {out_channel} is outside the layer (it has {spec.c_out} filters)")
    steps = list(positions) if positions is not None else _play_positions(spec, max_steps)
    if not steps:
        raise LayerError("no output positions to animate")
    traces = [explain_unit(weight, bias, layer_input, spec, out_channel, y, x) for y, x in steps]
    region = region_of(steps)
    done = np.full((spec.out_h, spec.out_w), np.nan)
    scale = max(abs(t.value) for t in traces)
    frames = []
    for t in traces:
        if cancel is not None and cancel():
            raise Cancelled("GIF export cancelled")
        done[t.y, t.x] = t.value
        frames.append(
            Image.fromarray(
                render_frame(
                    t,
                    layer_input,
                    spec,
                    done=done,
                    region=region,
                    max_channels=max_channels,
                    title=title,
                    out_scale=scale,
                    out_channels=spec.c_out,
                )
            )
        )
        if progress is not None:
            progress(len(frames), len(traces))
    # one palette from the last (fullest) frame keeps colours stable and the file small
    palette = frames[-1].quantize(colors=255, method=Image.Quantize.MEDIANCUT)
    frames = [f.quantize(palette=palette, dither=Image.Dither.NONE) for f in frames]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frames[0].save(
        path,
        format="GIF",
        save_all=True,
        append_images=frames[1:],
        duration=int(duration_ms),
        loop=0,
        disposal=1,
    )
    return len(frames)


def _play_positions(spec: ConvSpec, max_steps: int) -> list[tuple[int, int]]:
    return positions(spec.out_h, spec.out_w, max_steps)


def not_a_conv(info) -> str:
    """Why layer ``info`` (a :class:`models.layers.LayerInfo`) cannot be explained (the CLI and
    the window add their own words: which option, what to pick instead)."""
    return f"{info.name!r} is a {info.type}, not a convolution: it has no kernel to explain"


def require_conv(info):
    """``info`` (a :class:`models.layers.LayerInfo`) if it is a convolution; ``LayerError`` if not."""
    if not info.is_conv:
        raise LayerError(not_a_conv(info))
    return info


def export_layer_gif(
    model, result, layer: str, path: str | Path, out_channel: int = 0, max_steps: int = 36
) -> Path:
    """Write ``layer``'s explainer animation (filter ``out_channel``) to ``path``.

    ``model`` is a :class:`models.sources.LoadedModel`, ``result`` the :class:`models.runner.RunResult`
    of the image (its ``conv_inputs`` are traced); the layer must be a convolution. Used by
    ``main.py --explain --export``.
    """
    from models.runner import conv_bias, find_layer, layer_weights

    info = require_conv(find_layer(result, layer))
    weight = layer_weights(model, info.name)
    x = result.conv_inputs[info.name]
    render_explain_gif(
        weight,
        conv_bias(model, info.name),
        x,
        info.conv,
        path,
        out_channel=out_channel,
        max_steps=max_steps,
        title=f"{info.name} · filter {out_channel}",
    )
    return Path(path)
