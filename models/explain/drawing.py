"""Drawing primitives of the explainer's frames: colours, fonts, cached glyphs, value grids.

Pure NumPy + Pillow. Text is laid out from cached masks (FreeType took half of a frame's time),
and a grid of cells is composed in NumPy and pasted as one block.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

BG = (255, 255, 255)
INK = (33, 37, 41)
MUTED = (120, 126, 134)
GRID = (206, 212, 218)
WINDOW = (255, 133, 0)
WINDOW_INK = (200, 80, 0)  # text about the unit in focus (the window's orange, darker to read)
PAD_INK = (150, 150, 160)
PENDING = (246, 247, 249)


@lru_cache(maxsize=32)
def get_font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    try:
        return ImageFont.truetype(name, size)
    except OSError:  # no DejaVu on this machine: Pillow's bundled font
        return ImageFont.load_default(size=size)


SCALED_BELOW = 0.1  # a grid whose largest |value| is below this shows its numbers scaled
_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def fmt(v: float, integral: bool, exponent: int = 0) -> str:
    """``v`` as a cell shows it, at most five characters: in units of ``10**exponent`` (the
    grid's :func:`grid_exponent`), two decimals below 10, one below 100, none above."""
    if exponent:
        v = v / 10.0**exponent
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


def grid_exponent(values, integral: bool = False) -> int:
    """The power of ten a grid's numbers are written in, from its largest |value| (``values``:
    an array, or that largest magnitude): 0 for integers and for grids whose largest value
    reaches 0.1 (two decimals carry its digits), else ``e`` with ``largest / 10**e`` in
    [1, 10), so the largest shows three significant digits ("2.79" and "×10⁻²" at the caption,
    where two decimals read "0.03", or 0.00 in every cell of an untrained layer)."""
    if integral:
        return 0
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    big = float(np.abs(v).max(initial=0.0))
    if big == 0.0 or big >= SCALED_BELOW:
        return 0
    return math.floor(math.log10(big))


def scale_mark(exponent: int) -> str:
    """What a grid's caption says of its scale: "" (none), or "×10⁻³"."""
    return f"×10{str(exponent).translate(_SUPERSCRIPT)}" if exponent else ""


def caption(draw: ImageDraw.ImageDraw, variants: list[str], width: float, font) -> str:
    """The first of ``variants`` (longest first) that fits ``width`` px, else the last."""
    for text in variants:
        if draw.textlength(text, font=font) <= width:
            return text
    return variants[-1]


def elide_middle(draw: ImageDraw.ImageDraw, text: str, width: float, font) -> str:
    """``text`` with its middle replaced by "…" until it fits ``width`` px (a layer's name keeps
    its block and its last part)."""
    if draw.textlength(text, font=font) <= width:
        return text
    for keep in range(len(text) - 1, 3, -1):
        head = (keep + 1) // 2
        short = text[:head] + "…" + text[len(text) - (keep - head) :]
        if draw.textlength(short, font=font) <= width:
            return short
    return text[:2] + "…" + text[-1:]


def fmt_text(v: float, integral: bool, digits: int = 3) -> str:
    """``v`` in a line of text (a sum, the bias): as a cell would write it, but values below
    0.1 with ``digits`` significant digits ("-0.0111"), not rounded away to 0.00."""
    if integral or v == 0 or abs(v) >= SCALED_BELOW:
        return fmt(v, integral)
    return f"{v:.{digits}g}"


def value_text(v: float) -> str:
    """A unit's value in the frame's text: four decimals, or four significant digits below 0.1."""
    return f"{v:.4f}" if v == 0 or abs(v) >= SCALED_BELOW else f"{v:.4g}"


def value_colors(values: np.ndarray, scale: float | None = None) -> np.ndarray:
    """Light diverging colours (blue negative, red positive, white 0) so dark text stays legible."""
    v = np.asarray(values, dtype=np.float64)
    m = float(np.abs(v).max(initial=0.0)) if scale is None else float(scale)
    t = np.clip(v / (m if m > 0 else 1.0), -1, 1)
    pos = np.array([230, 97, 80], dtype=np.float64)
    neg = np.array([70, 130, 220], dtype=np.float64)
    white = np.array(BG, dtype=np.float64)
    strength = 0.75 * np.abs(t)[..., None]
    target = np.where((t >= 0)[..., None], pos, neg)
    return (white * (1 - strength) + target * strength).round().astype(np.uint8)


NUMERIC = frozenset("0123456789.-")


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


def put_text(
    draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, font, fill, anchor: str = "la"
) -> None:
    """``draw.text`` from cached masks: FreeType took half of a frame's time. A centred number
    (a frame shows a few hundred, most of them new to each layer) is laid out from glyphs."""
    if anchor == "mm" and text and NUMERIC.issuperset(text):
        mask, width = _number_mask(text, font)
        draw.bitmap(
            (round(xy[0] - width / 2), round(xy[1]) - mask.shape[0] // 2), Image.fromarray(mask), fill=fill
        )
        return
    mask, left, top = _text_mask(text, font, anchor)
    draw.bitmap((round(xy[0]) + left, round(xy[1]) + top), mask, fill=fill)


def put_text_center(draw: ImageDraw.ImageDraw, cx: float, cy: float, text: str, font, fill) -> None:
    put_text(draw, (cx, cy), text, font, fill, anchor="mm")


def number_font_size(cell: int) -> int:
    """The size of the numbers in cells of ``cell`` px: at least 11 px, the smallest that reads
    at 100% zoom, and no larger than lets a five-character number ("-0.35") fit, so that a
    larger cell never fits fewer digits."""
    return int(np.clip((cell - 3) / 2.6, 11, 16))


def numbers_fit(values: np.ndarray, cell: int, integral: bool, exponent: int = 0) -> bool:
    """Every value of ``values`` (written in units of ``10**exponent``) fits in a cell of
    ``cell`` px at :func:`number_font_size` (else the grid shows colours only, and the values
    are read on hover)."""
    if cell < 16:  # an 11 px number's line is 14 px tall
        return False
    texts = {fmt(float(v), integral, exponent) for v in np.asarray(values, dtype=np.float64).ravel()}
    return all(text_fits(t, cell) for t in texts if t)


def text_fits(text: str, cell: int) -> bool:
    """``text`` (a number) fits in a cell of ``cell`` px at :func:`number_font_size`."""
    return cell >= 16 and _number_mask(text, get_font(number_font_size(cell)))[1] <= cell - 3


def draw_grid(
    image: Image.Image,
    top: int,
    left: int,
    values: np.ndarray,
    cell: int,
    *,
    colors: np.ndarray | None = None,
    numbers: bool,
    integral: bool,
    padding: np.ndarray | None = None,
    pending: np.ndarray | None = None,
    exponent: int = 0,
) -> None:
    """A grid of value cells; ``padding`` cells hatched with grey numbers, ``pending`` cells
    blank; numbers in units of ``10**exponent`` (the caller marks the grid's caption).

    The grid is composed in NumPy and pasted in as one block: a frame has hundreds of cells, and
    drawing each cell, hatch and number with PIL took half of a frame's time.
    """
    h, w = values.shape
    fill = np.array(value_colors(values) if colors is None else colors, dtype=np.float64)
    is_pad = np.zeros((h, w), bool) if padding is None else np.asarray(padding, bool)
    is_pending = np.zeros((h, w), bool) if pending is None else np.asarray(pending, bool)
    fill[is_pad] = 0.45 * fill[is_pad] + 0.55 * 236  # padding: washed out, as the mode filled it
    fill[is_pending] = PENDING
    block = np.empty((h * cell + 1, w * cell + 1, 3), dtype=np.uint8)
    block[:-1, :-1] = np.rint(fill).astype(np.uint8).repeat(cell, axis=0).repeat(cell, axis=1)
    hatched = is_pad & ~is_pending
    if hatched.any():  # diagonal lines inside each padding cell
        ys, xs = np.ogrid[: h * cell, : w * cell]
        ly, lx = ys % cell, xs % cell
        lines = ((lx - ly) % max(4, cell // 4) == 0) & (lx > 0) & (ly > 0)
        block[:-1, :-1][lines & hatched.repeat(cell, axis=0).repeat(cell, axis=1)] = (214, 214, 222)
    block[::cell, :] = GRID
    block[:, ::cell] = GRID
    image.paste(Image.fromarray(block), (left, top))
    if numbers:  # one mask per ink, drawn over the block by PIL
        font = get_font(number_font_size(cell))
        masks: dict[bool, np.ndarray] = {}
        for r, c in zip(*np.nonzero(~is_pending), strict=True):
            pad = bool(is_pad[r, c])
            if pad not in masks:
                masks[pad] = np.zeros(block.shape[:2], dtype=np.uint8)
            _stamp_number(
                masks[pad],
                c * cell + cell / 2,
                r * cell + cell / 2,
                fmt(float(values[r, c]), integral, exponent),
                font,
            )
        draw = ImageDraw.Draw(image)
        for pad, mask in masks.items():
            draw.bitmap((left, top), Image.fromarray(mask), fill=PAD_INK if pad else INK)


def warm_up(sizes: range = range(11, 17)) -> None:
    """Load the frame's fonts and number glyphs now, so the first frame of each cell size does not
    pay for them (up to 40 ms the first time the explainer shows a layer)."""
    for size, bold in ((17, True), (14, False), (12, False), (22, True), (16, True)):
        get_font(size, bold)
    for size in sizes:  # the sizes of number_font_size
        font = get_font(size)
        for ch in NUMERIC:
            _glyph(ch, font)
