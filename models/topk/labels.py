r"""Small text on NumPy images, for the montages (no Qt in models/): glyphs rendered once by
FreeType and laid out in NumPy, so a montage's thousands of captions cost milliseconds, and
text too long for its room elided in the middle ("img000…12.jpg") as the view does.

Any file name: a character DejaVu has no glyph for (Chinese, Japanese, Korean...) is drawn with
the first installed font that has it, the usual CJK fonts first (:data:`FALLBACK_FONTS`), then
the one ``fc-match`` names for it; where no installed font has it, it is written as its escape
(``猫`` as ``\u732b``), never as a box."""

from __future__ import annotations

import math
import shutil
import subprocess
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

ELLIPSIS = "…"
# fonts with CJK (and much else) where platforms usually have them, by the names Pillow finds
FALLBACK_FONTS = (
    "NotoSansCJK-Regular.ttc",
    "NotoSansCJKsc-Regular.otf",
    "NotoSansCJKjp-Regular.otf",
    "NotoSansSC-Regular.otf",
    "wqy-microhei.ttc",
    "wqy-zenhei.ttc",
    "DroidSansFallbackFull.ttf",
    "DroidSansFallback.ttf",
    "msyh.ttc",  # Windows
    "msgothic.ttc",
    "malgun.ttf",
    "PingFang.ttc",  # macOS
    "Hiragino Sans GB.ttc",
    "Arial Unicode.ttf",
)
MISSING = "\U0010ffff"  # a noncharacter: no font maps it, so it draws the font's "missing" glyph


@lru_cache(maxsize=8)
def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """DejaVu Sans Condensed (narrow: more of a file name fits) or Pillow's bundled font."""
    for name in ("DejaVuSansCondensed.ttf", "DejaVuSans.ttf"):
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default(size=size)


@lru_cache(maxsize=1)
def _fallback_files() -> tuple[str, ...]:
    """The files of :data:`FALLBACK_FONTS` installed here (looked for once)."""
    found = []
    for name in FALLBACK_FONTS:
        try:
            found.append(str(ImageFont.truetype(name, 12).path))
        except OSError:
            continue
    return tuple(found)


@lru_cache(maxsize=64)
def _font_file(path: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size)


@lru_cache(maxsize=4096)
def covers(path: str, ch: str) -> bool:
    """Whether the font file at ``path`` has a glyph for ``ch`` (it draws ``ch`` otherwise
    than its "missing" glyph)."""
    try:
        f = _font_file(path, 16)
        mine, missing = f.getmask(ch), f.getmask(MISSING)
    except (OSError, ValueError):
        return False
    same = mine.size == missing.size and bytes(mine) == bytes(missing)
    return not (same and f.getlength(ch) == f.getlength(MISSING))


@lru_cache(maxsize=4096)
def _fc_match(ch: str) -> str | None:
    """The font file fontconfig picks for ``ch`` (may lack it: fontconfig always names one)."""
    if shutil.which("fc-match") is None:
        return None
    try:
        done = subprocess.run(
            ["fc-match", "-f", "%{file}", f":charset={ord(ch):x}"], capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


@lru_cache(maxsize=4096)
def face_for(ch: str) -> str | None:
    """The file of the font to draw ``ch`` with: DejaVu's when it has it, else the first
    installed font that has it; None when none has it (:func:`drawable` escapes it)."""
    primary = getattr(font(12), "path", None)
    candidates = [primary, *_fallback_files()] if primary else list(_fallback_files())
    for path in candidates:
        if covers(str(path), ch):
            return str(path)
    if ch.isascii():  # Pillow's own font (no DejaVu here) draws ASCII
        return None
    matched = _fc_match(ch)
    return matched if matched and covers(matched, ch) else None


def escape(ch: str) -> str:
    r"""``\u732b`` for 猫 (``\U0001f600`` beyond the first plane)."""
    return f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08x}"


@lru_cache(maxsize=4096)
def drawable(text: str) -> str:
    """``text`` with each printable character no installed font has written as its escape."""
    return "".join(ch if ch.isascii() or not ch.isprintable() or face_for(ch) else escape(ch) for ch in text)


def line_height(size: int) -> int:
    ascent, descent = font(size).getmetrics()
    return ascent + descent


@lru_cache(maxsize=1024)
def _glyph(ch: str, size: int) -> tuple[np.ndarray, float]:
    """One character as an 8-bit mask (a line tall, drawn from its origin) and its advance; a
    control character (a newline in a file name) is drawn as "?" (the layout engine refuses it)."""
    if not ch.isprintable():
        return _glyph("?", size)
    ascent, descent = font(size).getmetrics()  # the line is the main font's; the glyph is the
    path = None if ch.isascii() else face_for(ch)  # first font's that has it (baseline shared)
    f = font(size) if path is None else _font_file(path, size)
    advance = f.getlength(ch)
    mask = Image.new("L", (math.ceil(advance) + 3, ascent + descent), 0)
    ImageDraw.Draw(mask).text((0, ascent), ch, font=f, fill=255, anchor="ls")
    return np.asarray(mask), advance


def text_width(text: str, size: int) -> float:
    return sum(_glyph(ch, size)[1] for ch in drawable(text))


def elide(text: str, size: int, width: float | None) -> str:
    """``text`` (:func:`drawable`), or its start and end around "…" so that it fits ``width``
    pixels."""
    text = drawable(text)
    if width is None or text_width(text, size) <= width:
        return text
    room = width - _glyph(ELLIPSIS, size)[1]
    if room <= 0:
        return ""
    advances = [_glyph(ch, size)[1] for ch in text]
    head, tail, used = 0, 0, 0.0
    while head + tail < len(text):  # take from the end and the start in turn (the end first:
        take_tail = tail <= head  # a file's number and suffix are what tell files apart)
        i = len(text) - 1 - tail if take_tail else head
        if used + advances[i] > room:
            break
        used += advances[i]
        tail, head = (tail + 1, head) if take_tail else (tail, head + 1)
    return text[:head] + ELLIPSIS + (text[len(text) - tail :] if tail else "")


@lru_cache(maxsize=16384)
def text_mask(text: str, size: int, width: float | None = None) -> np.ndarray:
    """``text`` (elided to ``width`` pixels) as an ``(line height, w)`` uint8 coverage mask."""
    text = elide(text, size, width)
    glyphs = [_glyph(ch, size) for ch in text]
    out = np.zeros((line_height(size), max(1, math.ceil(sum(a for _, a in glyphs)) + 2)), dtype=np.uint8)
    x = 0.0
    for mask, advance in glyphs:
        left = round(x)
        x += advance
        region = out[:, left : left + mask.shape[1]]
        np.maximum(region, mask[:, : region.shape[1]], out=region)
    return out


class Ink:
    """Text laid on an image in one colour: each :meth:`write` is a NumPy ``maximum`` into a
    coverage mask, and :meth:`blend` mixes the colour in once for all of them (a blend per
    caption cost ten times more)."""

    def __init__(self, shape: tuple[int, int], colour: tuple[int, int, int], size: int) -> None:
        self.cover = np.zeros(shape, dtype=np.uint8)
        self.colour, self.size = colour, size

    def write(self, top: int, left: int, text: str, width: float | None = None) -> None:
        """``text`` with its line's top left at ``(top, left)``, elided to ``width`` pixels,
        clipped to the image."""
        if not text:
            return
        mask = text_mask(text, self.size, width)
        y0, x0 = max(top, 0), max(left, 0)
        y1 = min(top + mask.shape[0], self.cover.shape[0])
        x1 = min(left + mask.shape[1], self.cover.shape[1])
        if y1 > y0 and x1 > x0:
            region = self.cover[y0:y1, x0:x1]
            np.maximum(region, mask[y0 - top : y1 - top, x0 - left : x1 - left], out=region)

    def blend(self, rgb: np.ndarray) -> None:
        """Mix the text into ``rgb`` ``(H, W, 3)`` uint8, in place (only the pixels with text)."""
        where = np.nonzero(self.cover)
        if not where[0].size:
            return
        a = self.cover[where].astype(np.uint32)[:, None]
        mixed = rgb[where].astype(np.uint32) * (255 - a) + np.asarray(self.colour, np.uint32) * a
        rgb[where] = ((mixed + 127) // 255).astype(np.uint8)


def stamp(
    canvas: np.ndarray,
    top: int,
    left: int,
    text: str,
    colour: tuple[int, int, int],
    size: int,
    width: float | None = None,
) -> None:
    """Draw one ``text`` into ``canvas`` ``(H, W, 3)`` uint8 (:class:`Ink` for many)."""
    ink = Ink(canvas.shape[:2], colour, size)
    ink.write(top, left, text, width)
    ink.blend(canvas)
