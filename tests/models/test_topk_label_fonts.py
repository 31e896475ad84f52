r"""File names in any script in the montages' label strips: a character DejaVu lacks is drawn
with an installed font that has it (fontconfig's own answer, ``fc-list :charset=...``, is the
oracle of what this machine can draw), and one no installed font has is written as its escape
(``\u732b``), never as the box a font draws for a glyph it does not have."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from models.sources import load_model
from models.topk import Store, export, labels, scan
from tests.models.topk_folders import bars_folder

SIZE = 64
CAT = "猫"  # CJK: no font has it on a machine with DejaVu only
MATH = "𝐀𝐁"  # mathematical bold: not in DejaVu Sans, in DejaVu Math TeX Gyre (fonts-dejavu)


def fonts_with(ch: str) -> list[str]:
    """The font files fontconfig says have ``ch`` (the oracle; [] without fontconfig)."""
    if shutil.which("fc-list") is None:
        return []
    out = subprocess.run(
        ["fc-list", f":charset={ord(ch):x}", "file"], capture_output=True, text=True, check=False
    ).stdout
    return [line.split(":")[0].strip() for line in out.splitlines() if line.strip()]


def pillow_drawing(ch: str, path: str | None) -> np.ndarray:
    """``ch`` drawn by Pillow itself on the label line (the main font's ascent and descent),
    with the font file ``path`` (None: the main font, DejaVu)."""
    main = labels.font(export.TEXT)
    f = main if path is None else ImageFont.truetype(path, export.TEXT)
    ascent, descent = main.getmetrics()
    image = Image.new("L", (int(f.getlength(ch)) + 3, ascent + descent), 0)
    ImageDraw.Draw(image).text((0, ascent), ch, font=f, fill=255, anchor="ls")
    return np.asarray(image)


def _ink(mask: np.ndarray) -> np.ndarray:
    """The mask cut to its ink (compare glyphs wherever they were drawn)."""
    ys, xs = np.nonzero(mask > 64)
    return (mask[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1] > 128) if ys.size else mask[:0, :0]


def test_a_character_no_installed_font_has_is_written_as_its_escape() -> None:
    mask = labels.text_mask(f"{CAT}.png", export.TEXT)
    box = pillow_drawing(CAT, None)  # what the montage drew before: DejaVu's "missing" box
    if fonts_with(CAT):  # a CJK font is installed: drawn with one of them, not as a box
        face = labels.face_for(CAT)
        assert face in fonts_with(CAT)
        glyph = labels.text_mask(CAT, export.TEXT)
        assert np.array_equal(_ink(glyph), _ink(pillow_drawing(CAT, face)))
        assert not np.array_equal(_ink(glyph), _ink(box))
    else:
        assert labels.face_for(CAT) is None
        assert labels.drawable(f"{CAT}.png") == "\\u732b.png"
        assert np.array_equal(mask, labels.text_mask("\\u732b.png", export.TEXT))
        assert labels.escape("😀") == "\\U0001f600"  # beyond the first plane: 8 digits


@pytest.mark.skipif(not fonts_with("𝐀"), reason="no installed font has mathematical bold letters")
def test_a_character_dejavu_sans_lacks_is_drawn_with_a_font_that_has_it() -> None:
    face = labels.face_for("𝐀")
    assert face is not None and face in fonts_with("𝐀")
    assert labels.drawable(MATH) == MATH  # nothing escaped
    glyph = labels.text_mask("𝐀", export.TEXT)
    assert np.array_equal(_ink(glyph), _ink(pillow_drawing("𝐀", face)))
    assert not np.array_equal(_ink(glyph), _ink(pillow_drawing("𝐀", None)))  # not the box
    # on the label's line: as tall as the main font's, the advance the fallback font's own
    assert glyph.shape[0] == labels.line_height(export.TEXT)
    width = sum(ImageFont.truetype(face, export.TEXT).getlength(ch) for ch in MATH)
    assert labels.text_width(f"{MATH}.png", export.TEXT) == pytest.approx(
        width + labels.text_width(".png", export.TEXT)
    )


def test_montage_label_strips_draw_or_escape_non_latin_names(tmp_path) -> None:
    folder = tmp_path / "imgs"
    bars_folder(folder, size=SIZE)
    (folder / "v04.png").rename(folder / f"{CAT}04.png")  # channel 3's strongest (Sobel x)
    (folder / "v03.png").rename(folder / f"{MATH}03.png")  # its second
    model = load_model("classic", input_size=(SIZE, SIZE))
    result = scan(model, folder, "reference", k=3, store=Store(tmp_path / "s.db"))
    export.export_topk(model, result, tmp_path / "out", ["edges"], max_channels=4)
    rgb = np.asarray(Image.open(tmp_path / "out" / "edges.topk.png").convert("RGB")).astype(int)
    line, left = labels.line_height(export.TEXT), export.label_width()
    top, cell_h = 4 * line + 4, SIZE + 2 * line + 2
    y = top + 3 * (cell_h + 2)  # channel 3's row
    names = [e.path.name for e in result.layer_entries("edges")[3]]
    assert names[:2] == [f"{CAT}04.png", f"{MATH}03.png"]

    def strip(c: int) -> np.ndarray:
        """How much text covers the name line under cell ``c`` (0..255)."""
        x = left + c * (SIZE + 2)
        region = rgb[y + SIZE + 1 + line : y + cell_h, x : x + SIZE]
        return (region[..., 0] - export.EMPTY) * 255 / (export.MUTED[0] - export.EMPTY)

    def drawn(text: str, shape: tuple[int, int]) -> np.ndarray:
        want = np.zeros(shape)
        mask = labels.text_mask(text, export.TEXT, SIZE)[: shape[0], : shape[1]]
        want[: mask.shape[0], : mask.shape[1]] = mask
        return want

    cat = strip(0)
    expected = f"{CAT}04.png" if fonts_with(CAT) else "\\u732b04.png"
    assert np.abs(cat - drawn(expected, cat.shape)).max() <= 2 and (cat > 128).sum() > 10
    math_name = strip(1)
    assert np.abs(math_name - drawn(f"{MATH}03.png", math_name.shape)).max() <= 2
    if fonts_with("𝐀"):  # drawn with the font that has them: the glyphs are there, not boxes
        box = np.zeros(math_name.shape)
        dejavu = pillow_drawing("𝐀", None)[: box.shape[0], : box.shape[1]]
        box[: dejavu.shape[0], : dejavu.shape[1]] = dejavu
        first = math_name[:, : dejavu.shape[1]]
        assert np.abs(first - box[:, : dejavu.shape[1]]).max() > 64
