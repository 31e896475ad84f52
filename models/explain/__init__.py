"""The convolution explainer: one output element term by term, the sandbox, frames and a GIF.

Built on :meth:`engine.direct.DirectEngine.explain`, which reports every term of one output
element (the padded patch, the kernels, the products, the per-channel sums and the bias). This
package turns those reports into the animations of the notes the product grew from: a kernel
sliding over an input (padding drawn as the padding mode fills it, stride and dilation as the
jumps and gaps of the window), per-channel sums added to a bias, and the output grid filling up.

Pure NumPy + Pillow, no Qt: the GUI shows the same frames the headless ``--explain`` GIF is made
of, and drives the same :class:`Player`.

- ``arithmetic``: :func:`explain_unit`, the output-size formula, positions, why convolution
- ``sandbox``: :class:`Sandbox`, a small integer convolution to play with
- ``drawing``: colours, fonts, cached glyphs, value grids
- ``layout``: how a frame is laid out in a box (readable numbers first; crops that follow the kernel)
- ``frame``: :func:`draw_frame` / :func:`render_frame`, one frame drawn to that layout
- ``gif``: :func:`render_explain_gif`, :func:`export_layer_gif`
- ``player``: :class:`Source` (what is animated) and :class:`Player` (where the animation is)

A convolution is described by the engine's :class:`~engine.ConvSpec` everywhere.
"""

from __future__ import annotations

from engine.direct import UnitTrace
from models.explain.arithmetic import (
    agrees,
    check_conv,
    explain_unit,
    layer_formulas,
    output_size,
    output_size_formula,
    positions,
    region_of,
    why_convolution,
)
from models.explain.drawing import warm_up
from models.explain.frame import Frame, Grid, default_region, draw_frame, render_frame
from models.explain.gif import export_layer_gif, not_a_conv, render_explain_gif, require_conv
from models.explain.player import LAYER_STEPS, Player, Source
from models.explain.sandbox import SANDBOX_LIMITS, Sandbox

__all__ = [
    "LAYER_STEPS",
    "SANDBOX_LIMITS",
    "Frame",
    "Grid",
    "Player",
    "Sandbox",
    "Source",
    "UnitTrace",
    "agrees",
    "check_conv",
    "default_region",
    "draw_frame",
    "explain_unit",
    "export_layer_gif",
    "layer_formulas",
    "not_a_conv",
    "output_size",
    "output_size_formula",
    "positions",
    "region_of",
    "render_explain_gif",
    "render_frame",
    "require_conv",
    "warm_up",
    "why_convolution",
]
