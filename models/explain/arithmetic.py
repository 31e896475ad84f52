"""The explainer's arithmetic: one output element term by term, the output-size formula, the
positions the window visits, and why a convolution instead of a fully connected layer.

A layer's convolution is described once, by the engine's :class:`~engine.ConvSpec` (the
``LayerInfo.conv`` of a run, ``Sandbox.conv``, or ``make_spec`` on one ``(1, C, H, W)`` input).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from engine import ConvSpec
from engine import output_size as _output_size
from engine.direct import DirectEngine, UnitTrace
from models.errors import LayerError

_DIRECT = DirectEngine()


def explain_unit(
    weight: np.ndarray,
    bias: np.ndarray | None,
    layer_input: np.ndarray,
    conv: ConvSpec,
    out_channel: int,
    y: int,
    x: int,
) -> UnitTrace:
    """Every term of output element ``[out_channel, y, x]`` of a conv layer, by the direct engine.

    Parameters
    ----------
    weight : ``(O, C/groups, kH, kW)`` the layer's filters
    bias : ``(O,)`` or None
    layer_input : ``(C, H, W)`` the layer's input activation (batch element 0)
    conv : the layer's convolution (``LayerInfo.conv``)

    Raises ``LayerError`` when the unit is outside the output or the arguments do not fit.
    """
    try:
        return _DIRECT.explain(
            np.asarray(layer_input)[None],
            weight,
            bias,
            **conv.engine_kwargs(),
            out_channel=int(out_channel),
            y=int(y),
            x_pos=int(x),
        )
    except ValueError as exc:
        raise LayerError(str(exc)) from None


def agrees(traced: float, engine_value: float) -> bool:
    """The traced value equals the engine's within the engines' float32 tolerance
    (1e-4 x (1 + |value|), the one the engine tests use)."""
    return abs(engine_value - traced) <= 1e-4 * (1 + abs(engine_value))


def output_size(h: int, k: int, s: int = 1, p: int = 0, d: int = 1) -> int:
    """``floor((H + 2p - d(k-1) - 1) / s) + 1`` (may be < 1 when the kernel does not fit)."""
    return _output_size(int(h), int(k), int(s), 2 * int(p), int(d))


def output_size_formula(
    h: int,
    k: int,
    s: int = 1,
    p: int | tuple[int, int] = 0,
    d: int = 1,
    name: str = "H_out",
    symbol: str | None = None,
) -> str:
    """The output-size formula with the numbers filled in, for display.

    >>> output_size_formula(7, 3, 2, 1, 1)
    'H_out = ⌊(7 + 2·1 − 1·(3−1) − 1)/2⌋ + 1 = 4'

    ``p`` may be a ``(before, after)`` pair (asymmetric ``"same"`` padding). ``symbol`` prefixes
    a symbolic form (``"H_out = ⌊(H + 2p − d(k−1) − 1)/s⌋ + 1 = ..."``) when given.
    """
    if isinstance(p, (tuple, list)):
        before, after = int(p[0]), int(p[1])
        pad_text = f"2·{before}" if before == after else f"{before} + {after}"
    else:
        before = after = int(p)
        pad_text = f"2·{before}"
    result = _output_size(int(h), int(k), int(s), before + after, int(d))
    text = f"⌊({h} + {pad_text} − {d}·({k}−1) − 1)/{s}⌋ + 1 = {result}"
    if symbol:
        text = f"⌊({symbol} + 2p − d(k−1) − 1)/s⌋ + 1 = " + text
    return f"{name} = {text}"


def layer_formulas(conv: ConvSpec) -> list[str]:
    """``[H_out formula, W_out formula]`` of a convolution."""
    return [
        output_size_formula(conv.h, conv.kh, conv.stride[0], conv.pad[0:2], conv.dilation[0], "H_out"),
        output_size_formula(conv.w, conv.kw, conv.stride[1], conv.pad[2:4], conv.dilation[1], "W_out"),
    ]


def positions(
    out_h: int, out_w: int, max_steps: int | None = None, center: tuple[int, int] | None = None
) -> list[tuple[int, int]]:
    """Output positions in play order (row by row, as the kernel slides).

    All of them when they fit in ``max_steps``; otherwise a near-square block of at most
    ``max_steps`` positions around ``center`` (default: the middle of the map), clipped to the map.
    """
    if out_h < 1 or out_w < 1:
        return []
    if max_steps is None or out_h * out_w <= max_steps:
        return [(y, x) for y in range(out_h) for x in range(out_w)]
    max_steps = max(1, int(max_steps))
    rows = min(out_h, max(1, math.isqrt(max_steps)))
    cols = min(out_w, max(1, max_steps // rows))
    rows = min(out_h, max(1, max_steps // cols))  # a narrow map leaves room for more rows
    cy, cx = center if center is not None else (out_h // 2, out_w // 2)
    y0 = int(np.clip(cy - rows // 2, 0, out_h - rows))
    x0 = int(np.clip(cx - cols // 2, 0, out_w - cols))
    return [(y, x) for y in range(y0, y0 + rows) for x in range(x0, x0 + cols)]


def region_of(steps: Sequence[tuple[int, int]]) -> tuple[int, int, int, int]:
    """Bounding box ``(y0, y1, x0, x1)`` (ends exclusive) of output positions."""
    ys = [p[0] for p in steps]
    xs = [p[1] for p in steps]
    return (min(ys), max(ys) + 1, min(xs), max(xs) + 1)


def why_convolution(
    weight_shape: Sequence[int], input_shape: Sequence[int], output_shape: Sequence[int], bias: bool = False
) -> dict:
    """A conv layer's parameters beside a fully connected layer mapping the same input to the
    same output.

    Parameters
    ----------
    weight_shape : ``(O, C/groups, kH, kW)``
    input_shape : ``(C, H, W)``
    output_shape : ``(O, H_out, W_out)``
    bias : count one bias per output channel (conv) / per output value (fully connected)

    Returns
    -------
    dict with ``conv_params``, ``fc_params``, ``ratio`` (fc / conv), ``inputs``, ``outputs``,
    ``window`` (values one output reads), ``positions`` (where each filter is reused), and the
    sentences ``locality``, ``sharing`` and ``summary``.

    The notes' example: a 4x4 input to a 2x2 output is ``16 * 4 = 64`` weights fully connected
    and 9 for one 3x3 kernel.
    """
    o, cg, kh, kw = (int(v) for v in weight_shape)
    c, h, w = (int(v) for v in input_shape)
    oc, ho, wo = (int(v) for v in output_shape)
    inputs, outputs = c * h * w, oc * ho * wo
    conv_params = o * cg * kh * kw + (o if bias else 0)
    fc_params = inputs * outputs + (outputs if bias else 0)
    window = cg * kh * kw
    where = ho * wo
    chan = "channel" if cg == 1 else "channels"
    return {
        "conv_params": conv_params,
        "fc_params": fc_params,
        "ratio": fc_params / max(conv_params, 1),
        "inputs": inputs,
        "outputs": outputs,
        "window": window,
        "positions": where,
        "locality": (
            f"Locality: each output value looks only at a {kh}×{kw} window of {cg} input {chan} "
            f"({window:,} values), not at all {inputs:,} input values — in images, nearby pixels "
            "belong together."
        ),
        "sharing": (
            f"Weight sharing: each filter's {window:,} weights are reused at all {where:,} positions, "
            "so a pattern is found wherever it appears, with no extra weights."
        ),
        "summary": (
            f"This layer: {conv_params:,} parameters. A fully connected layer from the same "
            f"{c}×{h}×{w} input to the same {oc}×{ho}×{wo} output: {fc_params:,} "
            f"({fc_params / max(conv_params, 1):,.0f}× more)."
        ),
    }


def check_conv(conv: ConvSpec, input_shape: Sequence[int], weight_shape: Sequence[int]) -> ConvSpec:
    """``conv`` if it describes a convolution of a ``(C, H, W)`` input with these filters;
    ``LayerError`` naming what disagrees otherwise."""
    if tuple(input_shape) != (conv.c_in, conv.h, conv.w):
        raise LayerError(
            f"the input is {tuple(input_shape)}, the convolution expects {(conv.c_in, conv.h, conv.w)}"
        )
    if tuple(weight_shape) != conv.weight_shape:
        raise LayerError(
            f"the filters are {tuple(weight_shape)}, the convolution expects "
            f"{conv.weight_shape} "
            f"(input channels per group × kernel)"
        )
    return conv
