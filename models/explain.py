"""The convolution explainer: one output element term by term, the sandbox, frames and a GIF.

Built on :meth:`engine.direct.DirectEngine.explain`, which reports every term of one output
element (the padded patch, the kernels, the products, the per-channel sums and the bias). This
module turns those reports into the animations of the notes the product grew from: a kernel
sliding over an input (padding drawn as the padding mode fills it, stride and dilation as the
jumps and gaps of the window), per-channel sums added to a bias, and the output grid filling up.

Pure NumPy + Pillow, no Qt: the GUI shows the same :func:`render_frame` images the headless
``--explain`` GIF is made of.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from engine import get_engine
from engine._common import PADDING_MODES, ConvSpec, make_spec, pad_input
from engine._common import output_size as _output_size
from engine.direct import DirectEngine, UnitTrace
from models.errors import Cancelled, ConvScopeError, LayerError

__all__ = [
    "SANDBOX_LIMITS",
    "Sandbox",
    "UnitTrace",
    "agrees",
    "conv_kwargs",
    "conv_spec",
    "explain_unit",
    "export_layer_gif",
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

_DIRECT = DirectEngine()


# ----------------------------------------------------------------------------- arithmetic


def conv_kwargs(conv: ConvSpec | dict | None) -> dict:
    """The engine keyword arguments of a layer's convolution (``LayerInfo.conv``, a
    :class:`ConvSpec`) or of a dict of them (the sandbox's).

    Missing keys take torch's defaults; extra keys (channels, kernel) are ignored.
    """
    if isinstance(conv, ConvSpec):
        top, bottom, left, right = conv.pad
        return {"stride": conv.stride,
                "padding": (top, left) if (top, left) == (bottom, right) else "same",
                "dilation": conv.dilation, "groups": conv.groups, "padding_mode": conv.padding_mode}
    conv = conv or {}
    return {
        "stride": conv.get("stride", 1),
        "padding": conv.get("padding", 0),
        "dilation": conv.get("dilation", 1),
        "groups": int(conv.get("groups", 1)),
        "padding_mode": conv.get("padding_mode", "zeros"),
    }


def conv_spec(input_shape: Sequence[int], weight_shape: Sequence[int], conv: dict | None) -> ConvSpec:
    """The :class:`ConvSpec` of a layer on one ``(C, H, W)`` input; ``LayerError`` if invalid."""
    try:
        return make_spec((1, *input_shape), tuple(weight_shape), None, **conv_kwargs(conv))
    except ValueError as exc:
        raise LayerError(str(exc)) from None


def explain_unit(weight: np.ndarray, bias: np.ndarray | None, layer_input: np.ndarray, conv: dict | None,
                 out_channel: int, y: int, x: int) -> UnitTrace:
    """Every term of output element ``[out_channel, y, x]`` of a conv layer, by the direct engine.

    Parameters
    ----------
    weight : ``(O, C/groups, kH, kW)`` the layer's filters
    bias : ``(O,)`` or None
    layer_input : ``(C, H, W)`` the layer's input activation (batch element 0)
    conv : stride, padding, dilation, groups, padding_mode (``LayerInfo.conv``)

    Raises ``LayerError`` when the unit is outside the output or the arguments do not fit.
    """
    try:
        return _DIRECT.explain(np.asarray(layer_input)[None], weight, bias, **conv_kwargs(conv),
                               out_channel=int(out_channel), y=int(y), x_pos=int(x))
    except ValueError as exc:
        raise LayerError(str(exc)) from None


def agrees(traced: float, engine_value: float) -> bool:
    """The traced value equals the engine's within the engines' float32 tolerance
    (1e-4 x (1 + |value|), the one the engine tests use)."""
    return abs(engine_value - traced) <= 1e-4 * (1 + abs(engine_value))


def output_size(h: int, k: int, s: int = 1, p: int = 0, d: int = 1) -> int:
    """``floor((H + 2p - d(k-1) - 1) / s) + 1`` (may be < 1 when the kernel does not fit)."""
    return _output_size(int(h), int(k), int(s), 2 * int(p), int(d))


def output_size_formula(h: int, k: int, s: int = 1, p: int | tuple[int, int] = 0, d: int = 1,
                        name: str = "H_out", symbol: str | None = None) -> str:
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


def layer_formulas(input_shape: Sequence[int], weight_shape: Sequence[int], conv: dict | None) -> list[str]:
    """``[H_out formula, W_out formula]`` of a layer on a ``(C, H, W)`` input."""
    spec = conv_spec(input_shape, weight_shape, conv)
    return [
        output_size_formula(spec.h, spec.kh, spec.stride[0], spec.pad[0:2], spec.dilation[0], "H_out"),
        output_size_formula(spec.w, spec.kw, spec.stride[1], spec.pad[2:4], spec.dilation[1], "W_out"),
    ]


def positions(out_h: int, out_w: int, max_steps: int | None = None,
              center: tuple[int, int] | None = None) -> list[tuple[int, int]]:
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


def why_convolution(weight_shape: Sequence[int], input_shape: Sequence[int], output_shape: Sequence[int],
                    bias: bool = False) -> dict:
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


# ----------------------------------------------------------------------------- sandbox

SANDBOX_LIMITS: dict[str, tuple[int, int]] = {
    "size": (5, 9), "channels": (1, 4), "out_channels": (1, 4), "kernel_size": (1, 5),
    "stride": (1, 4), "padding": (0, 4), "dilation": (1, 4),
}


@dataclass
class Sandbox:
    """A small square convolution to play with: integer values so the arithmetic can be followed.

    ``input`` is ``(channels, size, size)``, ``weight`` ``(out_channels, channels, k, k)``,
    ``bias`` ``(out_channels,)``, all float32. Arrays left as None are filled at random from
    ``seed`` (inputs 0..9, kernels −1..1, bias −1..1).
    """

    size: int = 5
    channels: int = 1
    out_channels: int = 1
    kernel_size: int = 3
    stride: int = 1
    padding: int = 0
    dilation: int = 1
    padding_mode: str = "zeros"
    seed: int = 0
    input: np.ndarray | None = field(default=None, repr=False)
    weight: np.ndarray | None = field(default=None, repr=False)
    bias: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        for name, (lo, hi) in SANDBOX_LIMITS.items():
            value = getattr(self, name)
            if not lo <= int(value) <= hi:
                raise ConvScopeError(f"sandbox {name.replace('_', ' ')} must be {lo}..{hi}, got {value}")
            setattr(self, name, int(value))
        if self.padding_mode not in PADDING_MODES:
            raise ConvScopeError(f"padding mode must be one of {', '.join(PADDING_MODES)}, "
                                 f"got {self.padding_mode!r}")
        rng = np.random.default_rng(self.seed)
        c, s, o, k = self.channels, self.size, self.out_channels, self.kernel_size
        self.input = _fit(self.input, (c, s, s), lambda shape: rng.integers(0, 10, shape))
        self.weight = _fit(self.weight, (o, c, k, k), lambda shape: rng.integers(-1, 2, shape))
        self.bias = _fit(self.bias, (o,), lambda shape: rng.integers(-1, 2, shape))

    @property
    def conv(self) -> dict:
        return {"stride": self.stride, "padding": self.padding, "dilation": self.dilation,
                "groups": 1, "padding_mode": self.padding_mode}

    def with_settings(self, **changes: object) -> Sandbox:
        """A copy with other settings; values already there are kept where the shapes overlap."""
        return replace(self, **changes)

    def randomized(self, seed: int | None = None) -> Sandbox:
        """The same settings with fresh random values."""
        seed = self.seed + 1 if seed is None else seed
        return replace(self, seed=seed, input=None, weight=None, bias=None)

    def with_value(self, array: str, index: tuple[int, ...], value: float) -> Sandbox:
        """A copy with one value of ``"input"``, ``"weight"`` or ``"bias"`` edited."""
        arrays = {"input": self.input, "weight": self.weight, "bias": self.bias}
        if array not in arrays:
            raise ConvScopeError(f"unknown sandbox array {array!r}")
        new = np.array(arrays[array], copy=True)
        new[index] = value
        return replace(self, **{array: new})

    def output_hw(self) -> tuple[int, int]:
        """``(H_out, W_out)`` by the formula (may be < 1 when the kernel does not fit)."""
        n = output_size(self.size, self.kernel_size, self.stride, self.padding, self.dilation)
        return n, n

    def formula(self) -> str:
        text = output_size_formula(self.size, self.kernel_size, self.stride, self.padding, self.dilation,
                                   name="H_out = W_out")
        return text

    def problem(self) -> str | None:
        """Why these settings have no output (one line), or None when they do."""
        try:
            make_spec((1, *self.input.shape), self.weight.shape, self.bias.shape, **self.conv)
        except ValueError as exc:
            return str(exc)
        return None

    def compute(self, engine: str = "direct") -> np.ndarray:
        """The output ``(out_channels, H_out, W_out)`` on an engine; ``ConvScopeError`` if invalid."""
        problem = self.problem()
        if problem:
            raise ConvScopeError(problem)
        return get_engine(engine).conv2d(self.input[None], self.weight, self.bias, **self.conv)[0]


def _fit(current: np.ndarray | None, shape: tuple[int, ...], fill) -> np.ndarray:
    """``current`` cropped or extended (new cells from ``fill``) to ``shape``, float32."""
    out = np.asarray(fill(shape), dtype=np.float32)
    if current is not None:
        current = np.asarray(current, dtype=np.float32)
        if current.ndim == len(shape):
            overlap = tuple(slice(0, min(a, b)) for a, b in zip(current.shape, shape, strict=True))
            out[overlap] = current[overlap]
    return out


# ----------------------------------------------------------------------------- frames

_BG = (255, 255, 255)
_INK = (33, 37, 41)
_MUTED = (120, 126, 134)
_GRID = (206, 212, 218)
_WINDOW = (255, 133, 0)
_PAD_INK = (150, 150, 160)
_PENDING = (246, 247, 249)


@lru_cache(maxsize=32)
def _font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    try:
        return ImageFont.truetype(name, size)
    except OSError:  # no DejaVu on this machine: Pillow's bundled font
        return ImageFont.load_default(size=size)


def _fmt(v: float, integral: bool) -> str:
    if abs(v) < 0.005:
        v = 0.0  # no "-0.00"
    if integral:
        return f"{v:.0f}"
    a = abs(v)
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def _colors(values: np.ndarray, scale: float | None = None) -> np.ndarray:
    """Light diverging colours (blue negative, red positive, white 0) so dark text stays legible."""
    v = np.asarray(values, dtype=np.float64)
    m = float(np.abs(v).max(initial=0.0)) if scale is None else float(scale)
    t = np.clip(v / (m if m > 0 else 1.0), -1, 1)
    pos = np.array([230, 97, 80], dtype=np.float64)
    neg = np.array([70, 130, 220], dtype=np.float64)
    white = np.array(_BG, dtype=np.float64)
    strength = 0.75 * np.abs(t)[..., None]
    target = np.where((t >= 0)[..., None], pos, neg)
    return (white * (1 - strength) + target * strength).round().astype(np.uint8)


_NUMERIC = frozenset("0123456789.-")


@lru_cache(maxsize=1024)
def _glyph(ch: str, font) -> tuple[np.ndarray, float]:
    """One character as an 8-bit mask (the font's line tall, drawn from its origin) and its
    advance. Both cached: asking FreeType for one advance takes 28 µs."""
    ascent, descent = font.getmetrics()
    advance = font.getlength(ch)
    mask = Image.new("L", (math.ceil(advance) + 4, ascent + descent), 0)
    ImageDraw.Draw(mask).text((0, ascent), ch, font=font, fill=255, anchor="ls")
    return np.asarray(mask), advance


@lru_cache(maxsize=8192)
def _number_mask(text: str, font) -> tuple[np.ndarray, float]:
    """``text`` (digits, '.' and '-') as an 8-bit mask laid out from cached glyphs (DejaVu's
    digits share one advance and are not kerned), and its advance. Cached too: a frame shows a
    few hundred numbers, but two-decimal numbers are few enough to be met again."""
    glyphs = [_glyph(ch, font) for ch in text]
    width = sum(advance for _, advance in glyphs)
    out = np.zeros((glyphs[0][0].shape[0], math.ceil(width) + 4), dtype=np.uint8)
    x = 0.0
    for mask, advance in glyphs:
        left = round(x)
        x += advance
        region = out[:, left : left + mask.shape[1]]
        np.maximum(region, mask[:, : region.shape[1]], out=region)
    return out, width


def _stamp_number(alpha: np.ndarray, cx: float, cy: float, text: str, font) -> None:
    """Lay ``text`` centred on (cx, cy) into the 8-bit mask ``alpha``, clipped to its edges."""
    mask, width = _number_mask(text, font)
    left, top = round(cx - width / 2), round(cy) - mask.shape[0] // 2
    y0, y1 = max(top, 0), min(top + mask.shape[0], alpha.shape[0])
    x0, x1 = max(left, 0), min(left + mask.shape[1], alpha.shape[1])
    if y0 < y1 and x0 < x1:
        region = alpha[y0:y1, x0:x1]
        np.maximum(region, mask[y0 - top : y1 - top, x0 - left : x1 - left], out=region)


@lru_cache(maxsize=4096)
def _text_mask(text: str, font, anchor: str) -> tuple[Image.Image, int, int]:
    """``text`` rendered once as an 8-bit mask, with its offset from the anchor point."""
    left, top, right, bottom = font.getbbox(text, anchor=anchor)
    mask = Image.new("L", (max(1, right - left), max(1, bottom - top)), 0)
    ImageDraw.Draw(mask).text((-left, -top), text, font=font, fill=255, anchor=anchor)
    return mask, left, top


def _text(draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, font, fill,
          anchor: str = "la") -> None:
    """``draw.text`` from cached masks: FreeType took half of a frame's time. A centred number
    (a frame shows a few hundred, most of them new to each layer) is laid out from glyphs."""
    if anchor == "mm" and text and _NUMERIC.issuperset(text):
        mask, width = _number_mask(text, font)
        draw.bitmap((round(xy[0] - width / 2), round(xy[1]) - mask.shape[0] // 2), Image.fromarray(mask),
                    fill=fill)
        return
    mask, left, top = _text_mask(text, font, anchor)
    draw.bitmap((round(xy[0]) + left, round(xy[1]) + top), mask, fill=fill)


def _text_center(draw: ImageDraw.ImageDraw, cx: float, cy: float, text: str, font, fill) -> None:
    _text(draw, (cx, cy), text, font, fill, anchor="mm")


def _grid(image: Image.Image, top: int, left: int, values: np.ndarray, cell: int, *,
          colors: np.ndarray | None = None, numbers: bool, integral: bool,
          padding: np.ndarray | None = None, pending: np.ndarray | None = None) -> None:
    """A grid of value cells; ``padding`` cells hatched with grey numbers, ``pending`` cells blank.

    The grid is composed in NumPy and pasted in as one block: a frame has hundreds of cells, and
    drawing each cell, hatch and number with PIL took half of a frame's time.
    """
    h, w = values.shape
    fill = np.array(_colors(values) if colors is None else colors, dtype=np.float64)
    is_pad = np.zeros((h, w), bool) if padding is None else np.asarray(padding, bool)
    is_pending = np.zeros((h, w), bool) if pending is None else np.asarray(pending, bool)
    fill[is_pad] = 0.45 * fill[is_pad] + 0.55 * 236  # padding: washed out, as the mode filled it
    fill[is_pending] = _PENDING
    block = np.empty((h * cell + 1, w * cell + 1, 3), dtype=np.uint8)
    block[:-1, :-1] = np.rint(fill).astype(np.uint8).repeat(cell, axis=0).repeat(cell, axis=1)
    hatched = is_pad & ~is_pending
    if hatched.any():  # diagonal lines inside each padding cell
        ys, xs = np.ogrid[: h * cell, : w * cell]
        ly, lx = ys % cell, xs % cell
        lines = ((lx - ly) % max(4, cell // 4) == 0) & (lx > 0) & (ly > 0)
        block[:-1, :-1][lines & hatched.repeat(cell, axis=0).repeat(cell, axis=1)] = (214, 214, 222)
    block[::cell, :] = _GRID
    block[:, ::cell] = _GRID
    image.paste(Image.fromarray(block), (left, top))
    if numbers:  # one mask per ink, drawn over the block by PIL
        font = _font(max(9, int(cell * 0.34)))
        masks: dict[bool, np.ndarray] = {}
        for r, c in zip(*np.nonzero(~is_pending), strict=True):
            pad = bool(is_pad[r, c])
            if pad not in masks:
                masks[pad] = np.zeros(block.shape[:2], dtype=np.uint8)
            _stamp_number(masks[pad], c * cell + cell / 2, r * cell + cell / 2,
                          _fmt(float(values[r, c]), integral), font)
        draw = ImageDraw.Draw(image)
        for pad, mask in masks.items():
            draw.bitmap((left, top), Image.fromarray(mask), fill=_PAD_INK if pad else _INK)


def warm_up(sizes: range = range(9, 16)) -> None:
    """Load the frame's fonts and number glyphs now, so the first frame of each cell size does not
    pay for them (up to 40 ms the first time the explainer shows a layer)."""
    for size, bold in ((17, True), (14, False), (12, False), (22, True), (16, True)):
        _font(size, bold)
    for size in sizes:  # cells of 9-44 px: numbers of 9-14 pt
        font = _font(size)
        for ch in _NUMERIC:
            _glyph(ch, font)


def _cell_size(n: int, budget: int, lo: int = 9, hi: int = 40) -> int:
    return int(np.clip(budget // max(n, 1), lo, hi))


def _default_region(out_h: int, out_w: int, y: int, x: int, cap: int = 49) -> tuple[int, int, int, int]:
    return region_of(positions(out_h, out_w, cap, center=(y, x)))


def render_frame(trace: UnitTrace, layer_input: np.ndarray, conv: dict | None, *,
                 done: np.ndarray | None = None, region: tuple[int, int, int, int] | None = None,
                 max_channels: int = 3, title: str = "", engine_value: float | None = None,
                 out_scale: float | None = None, out_channels: int | None = None) -> np.ndarray:
    """One explainer frame for one output element: ``(H, W, 3)`` uint8 RGB.

    Shows, for the first ``max_channels`` input channels the filter reads: the padded input
    around the window (tapped cells outlined, so stride and dilation show as jumps and gaps;
    padding hatched with the values the padding mode put there), the kernel, the element-wise
    products and their sum; then the sum over all channels plus the bias, and the output grid
    filling up.

    Parameters
    ----------
    trace : the unit's terms, from :func:`explain_unit`
    layer_input : ``(C, H, W)`` the layer's (unpadded) input
    conv : stride, padding, dilation, groups, padding_mode
    done : ``(H_out, W_out)`` output values computed so far, NaN where not yet (None: only this unit)
    region : ``(y0, y1, x0, x1)`` the output block shown (None: the whole output when small,
        else up to 7x7 around the unit); the input shown is what that block's windows cover.
        The frame size depends only on the region, the kernel and the channel count, so frames
        of one animation share a size.
    engine_value : the engine's feature-map value at this unit, shown beside the traced value
    out_scale : colour scale of the output grid (max |value|), fixed across an animation
    out_channels : how many filters the layer has (for the "filter o of O" caption)
    """
    layer_input = np.asarray(layer_input)
    cg, kh, kw = trace.kernel.shape
    kw_conv = conv_kwargs(conv)
    spec = make_spec((1, *layer_input.shape), (kw_conv["groups"], cg, kh, kw), None, **kw_conv)
    sh, sw = spec.stride
    dh, dw = spec.dilation
    if region is None:
        if spec.out_h * spec.out_w <= 64:
            region = (0, spec.out_h, 0, spec.out_w)
        else:
            region = _default_region(spec.out_h, spec.out_w, trace.y, trace.x)
    y0, y1, x0, x1 = region
    y0, y1 = min(y0, trace.y), max(y1, trace.y + 1)
    x0, x1 = min(x0, trace.x), max(x1, trace.x + 1)
    whole = (y0, y1, x0, x1) == (0, spec.out_h, 0, spec.out_w)
    if whole:  # the whole padded input, rows the stride never reaches included
        r0, r1, c0, c1 = 0, spec.hp, 0, spec.wp
    else:
        r0, r1 = y0 * sh, (y1 - 1) * sh + (kh - 1) * dh + 1
        c0, c1 = x0 * sw, (x1 - 1) * sw + (kw - 1) * dw + 1

    shown = trace.input_channels[:max_channels]
    hidden = len(trace.input_channels) - len(shown)
    padded = pad_input(layer_input[None, shown], spec.pad, spec.padding_mode)[0][:, r0:r1, c0:c1]
    prow = np.arange(r0, r1) - spec.pad[0]
    pcol = np.arange(c0, c1) - spec.pad[2]
    pad_mask = ((prow < 0) | (prow >= spec.h))[:, None] | ((pcol < 0) | (pcol >= spec.w))[None, :]
    integral = bool(np.all(np.mod(padded, 1) == 0) and np.all(np.mod(trace.kernel, 1) == 0)
                    and float(trace.bias).is_integer())

    n_rows = len(shown)
    budget = {1: 360, 2: 270}.get(n_rows, 225)
    icell = _cell_size(max(r1 - r0, c1 - c0), budget)
    kcell = _cell_size(max(kh, kw), 150, lo=8, hi=40)
    ocell = _cell_size(max(y1 - y0, x1 - x0), 260, lo=9, hi=44)
    in_w, in_h = icell * (c1 - c0), icell * (r1 - r0)
    k_w, k_h = kcell * kw, kcell * kh
    row_h = max(in_h, k_h) + 26
    op_w, sum_w = 36, 120
    out_w_px, out_h_px = ocell * (x1 - x0), ocell * (y1 - y0)
    left_w = in_w + op_w + k_w + op_w + k_w + op_w + sum_w
    margin, title_h = 16, 62
    width = max(margin * 2 + left_w + 28 + max(out_w_px, 200) + 20, 760)
    rows_h = n_rows * row_h + (30 if hidden else 0)
    text_lines = 4
    height = title_h + max(rows_h, out_h_px + 80) + 18 + text_lines * 22 + margin
    image = Image.new("RGB", (int(width), int(height)), _BG)
    draw = ImageDraw.Draw(image)
    f_title, f_text, f_small = _font(17, bold=True), _font(14), _font(12)
    f_op = _font(22, bold=True)

    o = trace.out_channel
    of_o = f" of {out_channels}" if out_channels else ""
    _text(draw, (margin, 10), title or "Convolution, step by step", font=f_title, fill=_INK)
    _text(draw, (margin, 32), f"filter {o}{of_o} → output channel {o}, position (y={trace.y}, x={trace.x})   "
              f"stride {spec.stride[0]}×{spec.stride[1]} · dilation {dh}×{dw} · padding "
              f"{spec.pad[0]},{spec.pad[2]} ({spec.padding_mode})", font=f_small, fill=_MUTED)

    # taps of the window, in the shown crop's coordinates
    tap_r = trace.rows + spec.pad[0] - r0
    tap_c = trace.cols + spec.pad[2] - c0
    top = title_h
    kscale = float(np.abs(trace.kernel).max(initial=0.0))
    pscale = float(np.abs(trace.products).max(initial=0.0))
    numbers_in = icell >= 24
    numbers_k = kcell >= 24
    for ch_idx in range(n_rows):
        c = int(shown[ch_idx])
        y = top + ch_idx * row_h + 20
        x = margin
        _text(draw, (x, y - 18), f"input channel {c}", font=f_small, fill=_MUTED)
        grid_top = y
        _grid(image, grid_top, x, padded[ch_idx], icell, colors=_colors(padded[ch_idx]),
              numbers=numbers_in, integral=integral, padding=pad_mask)
        # the window's span (light) and its taps (bold): dilation leaves visible gaps
        draw.rectangle((x + tap_c[0] * icell, grid_top + tap_r[0] * icell, x + (tap_c[-1] + 1) * icell,
                        grid_top + (tap_r[-1] + 1) * icell), outline=(255, 196, 140), width=1)
        for rr in tap_r:
            for cc in tap_c:
                draw.rectangle((x + cc * icell, grid_top + rr * icell, x + (cc + 1) * icell,
                                grid_top + (rr + 1) * icell), outline=_WINDOW, width=max(2, icell // 10))
        x += in_w
        mid = grid_top + max(in_h, k_h) / 2
        ky = grid_top + (max(in_h, k_h) - k_h) // 2
        # "× kernel = products": two grids of kernel size, each after its operator
        for op, label, values, scale in (("×", "kernel", trace.kernel, kscale),
                                         ("=", "products", trace.products, pscale)):
            _text_center(draw, x + op_w / 2, mid, op, f_op, _MUTED)
            x += op_w
            _text(draw, (x, ky - 16), label, font=f_small, fill=_MUTED)
            _grid(image, ky, x, values[ch_idx], kcell, colors=_colors(values[ch_idx], scale),
                  numbers=numbers_k, integral=integral)
            x += k_w
        _text_center(draw, x + op_w / 2, mid, "→", f_op, _MUTED)
        x += op_w
        _text(draw, (x, mid - 20), "Σ", font=f_small, fill=_MUTED)
        _text(draw, (x, mid - 4), _fmt(float(trace.channel_sums[ch_idx]), integral), font=_font(16, True),
                  fill=_INK)
    if hidden:
        rest = float(trace.channel_sums[len(shown):].sum())
        _text(draw, (margin, top + n_rows * row_h + 4),
                  f"… +{hidden} more input channels (all of them are summed: Σ = {_fmt(rest, integral)})",
                  font=f_text, fill=_MUTED)

    # the output grid, filling up
    ox = margin + left_w + 28
    deck = min(out_channels - 1, 3) if out_channels else 0
    oy = title_h + 20 + 6 * deck
    label = f"output channel {o}" + (f"  (1 of {out_channels} stacked)" if deck else "")
    _text(draw, (ox, title_h), label, font=f_small, fill=_MUTED)
    for k in range(deck, 0, -1):  # the other filters' channels, stacked behind this one
        d = 6 * k
        draw.rectangle((ox + d, oy - d, ox + out_w_px + d, oy + out_h_px - d), fill=_PENDING, outline=_GRID)
    out_vals = np.full((y1 - y0, x1 - x0), np.nan)
    if done is not None:
        out_vals[:] = np.asarray(done, dtype=np.float64)[y0:y1, x0:x1]
    out_vals[trace.y - y0, trace.x - x0] = trace.value
    pending = np.isnan(out_vals)
    scale = out_scale if out_scale else float(np.nanmax(np.abs(out_vals), initial=0.0))
    _grid(image, oy, ox, np.nan_to_num(out_vals), ocell, colors=_colors(np.nan_to_num(out_vals), scale),
          numbers=ocell >= 30, integral=integral, pending=pending)
    cy, cx = trace.y - y0, trace.x - x0
    draw.rectangle((ox + cx * ocell, oy + cy * ocell, ox + (cx + 1) * ocell, oy + (cy + 1) * ocell),
                   outline=_WINDOW, width=3)
    if not whole:
        _text(draw, (ox, oy + out_h_px + 4),
                  f"rows {y0}–{y1 - 1}, cols {x0}–{x1 - 1} of {spec.out_h}×{spec.out_w}",
                  font=f_small, fill=_MUTED)

    # the sum, the bias and the result
    ty = title_h + max(rows_h, out_h_px + 80) + 18
    sums = [_fmt(float(v), integral) for v in trace.channel_sums[:max_channels]]
    terms = " + ".join(f"({s})" if s.startswith("-") else s for s in sums)
    if hidden:
        terms += f" + … ({hidden} more: {_fmt(float(trace.channel_sums[len(shown):].sum()), integral)})"
    bias = _fmt(trace.bias, integral)
    total = _fmt(float(trace.channel_sums.sum()), integral)
    _text(draw, (margin, ty), f"sum over channels: {terms}  =  {total}", font=f_text, fill=_INK)
    line = f"+ bias {bias}  =  "
    _text(draw, (margin, ty + 24), line, font=f_text, fill=_INK)
    vx = margin + draw.textlength(line, font=f_text)
    value_text = _fmt(trace.value, integral) if integral else f"{trace.value:.4f}"
    _text(draw, (vx, ty + 21), f"out[{o}, {trace.y}, {trace.x}] = {value_text}", font=_font(17, True),
              fill=(200, 80, 0))
    if engine_value is not None:
        ok = agrees(trace.value, engine_value)
        mark = "✓ equal" if ok else "✗ differs"
        shown_value = _fmt(engine_value, True) if integral else f"{engine_value:.4f}"
        _text(draw, (margin, ty + 48), f"engine's feature map at this unit: {shown_value}   {mark}",
                  font=f_text, fill=(30, 130, 60) if ok else (200, 30, 30))
    formulas = [
        output_size_formula(spec.h, kh, sh, spec.pad[0:2], dh, "H_out"),
        output_size_formula(spec.w, kw, sw, spec.pad[2:4], dw, "W_out"),
    ]
    _text(draw, (margin, ty + 72), "    ".join(formulas), font=f_small, fill=_MUTED)
    return np.asarray(image)


# ----------------------------------------------------------------------------- GIF


def render_explain_gif(weight: np.ndarray, bias: np.ndarray | None, layer_input: np.ndarray,
                       conv: dict | None, path: str | Path, out_channel: int = 0, max_steps: int = 36,
                       positions: Sequence[tuple[int, int]] | None = None, duration_ms: int = 500,
                       max_channels: int = 3, title: str = "", progress=None, cancel=None) -> int:
    """Write the explainer animation of one filter as an animated GIF; returns the frame count.

    One frame per step: the window visits ``positions`` (default: every output position when
    there are at most ``max_steps``, else a block of about ``max_steps`` around the centre of
    the map) and the output grid fills up. Only the first ``max_channels`` input channels are
    drawn; the sums always use all of them.

    Parameters
    ----------
    weight : ``(O, C/groups, kH, kW)``; bias : ``(O,)`` or None
    layer_input : ``(C, H, W)`` the layer's input activation
    conv : stride, padding, dilation, groups, padding_mode (``LayerInfo.conv``)
    progress, cancel : ``progress(frames_done, frames)`` after each frame; ``cancel()`` is
        checked before each (raises :class:`~models.errors.Cancelled`; nothing is written)
    """
    weight = np.asarray(weight)
    spec = conv_spec(np.shape(layer_input), weight.shape, conv)
    if not 0 <= out_channel < spec.c_out:
        raise LayerError(f"filter {out_channel} is outside the layer (it has {spec.c_out} filters)")
    steps = list(positions) if positions is not None else _play_positions(spec, max_steps)
    if not steps:
        raise LayerError("no output positions to animate")
    traces = [explain_unit(weight, bias, layer_input, conv, out_channel, y, x) for y, x in steps]
    region = region_of(steps)
    done = np.full((spec.out_h, spec.out_w), np.nan)
    scale = max(abs(t.value) for t in traces)
    frames = []
    for t in traces:
        if cancel is not None and cancel():
            raise Cancelled("GIF export cancelled")
        done[t.y, t.x] = t.value
        frames.append(Image.fromarray(render_frame(
            t, layer_input, conv, done=done, region=region, max_channels=max_channels, title=title,
            out_scale=scale, out_channels=spec.c_out)))
        if progress is not None:
            progress(len(frames), len(traces))
    # one palette from the last (fullest) frame keeps colours stable and the file small
    palette = frames[-1].quantize(colors=255, method=Image.Quantize.MEDIANCUT)
    frames = [f.quantize(palette=palette, dither=Image.Dither.NONE) for f in frames]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    frames[0].save(path, format="GIF", save_all=True, append_images=frames[1:], duration=int(duration_ms),
                   loop=0, disposal=1)
    return len(frames)


def _play_positions(spec: ConvSpec, max_steps: int) -> list[tuple[int, int]]:
    return positions(spec.out_h, spec.out_w, max_steps)


def require_conv(info):
    """``info`` (a :class:`models.runner.LayerInfo`) if it is a convolution; ``LayerError`` if not."""
    if not info.is_conv:
        raise LayerError(f"--explain needs a convolution layer; {info.name!r} is a {info.type}")
    return info


def export_layer_gif(model, result, layer: str, path: str | Path, out_channel: int = 0,
                     max_steps: int = 36) -> Path:
    """Write ``layer``'s explainer animation (filter ``out_channel``) to ``path``.

    ``model`` is a :class:`models.sources.LoadedModel`, ``result`` the :class:`models.runner.RunResult`
    of the image (its ``conv_inputs`` are traced); the layer must be a convolution. Used by
    ``main.py --explain --export``.
    """
    from models.runner import conv_bias, find_layer, layer_weights

    info = require_conv(find_layer(result, layer))
    weight = layer_weights(model, info.name)
    x = result.conv_inputs[info.name]
    render_explain_gif(weight, conv_bias(model, info.name), x, info.conv, path, out_channel=out_channel,
                       max_steps=max_steps, title=f"{info.name} · filter {out_channel}")
    return Path(path)
