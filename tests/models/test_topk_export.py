"""The top-k export (``--dataset ... --export``) as a function: a cached rerun does each thing
once (one plan, each photo read once, each distinct crop scaled once), the montage's rows and
crops are labelled, the unit is marked, skipped files are named."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image, ImageDraw

from models.images import prepare_image
from models.sources import load_model
from models.topk import Store, export, labels, scan, scanner
from models.topk import crops as crops_module
from models.topk.crops import frame
from tests.models.topk_folders import bars_folder

SIZE = 64


@pytest.fixture
def scanned(tmp_path):
    made = bars_folder(tmp_path / "imgs", size=SIZE)
    (tmp_path / "imgs" / "notes.png").write_text("not a png")
    model = load_model("classic", input_size=(SIZE, SIZE))
    result = scan(model, tmp_path / "imgs", "reference", k=3, store=Store(tmp_path / "s.db"))
    return model, result, made


def _counting(monkeypatch, module, name: str) -> list:
    calls: list = []
    real = getattr(module, name)
    monkeypatch.setattr(module, name, lambda *a, **kw: (calls.append(a), real(*a, **kw))[1])
    return calls


def test_a_cached_export_plans_once_reads_each_photo_once_and_scales_each_crop_once(
    scanned, tmp_path, monkeypatch
) -> None:
    model, result, _ = scanned
    scanner._conv_layers.clear()  # as in a new process: the layer table must be looked up
    plans = _counting(monkeypatch, scanner, "plan")
    reads = _counting(monkeypatch, crops_module, "prepare_image")
    made = _counting(monkeypatch, export.Tiles, "_make")
    written = export.export_topk(model, result, tmp_path / "out", max_channels=64)
    assert len(written) == 4
    # 13 channels in 2 layers: one plan, not one per channel (the old export made 15)
    assert len(plans) == 1
    # every photo shown is read once for the whole export, not once per channel or layer
    shown = {r[2] for la in result.layers for r in result.layer_rows(la.name)}
    assert len(reads) == len(shown) and len({str(a[0]) for a in reads}) == len(shown)
    # one tile per distinct crop (image, clip, the layer's frame)
    layers = {la.name: la for la in scanner.conv_layers(model)}
    distinct = set()
    for la in result.layers:
        rf = layers[la.name].receptive_field
        for _, _, path, _, y, x in result.layer_rows(la.name):
            distinct.add((path, crops_module.cut_of(rf, y, x, (SIZE, SIZE))[1], frame(rf, (SIZE, SIZE))))
    assert len(made) == len(distinct)
    # the stepping view asks for a layer's field once per channel: no plan either
    for channel in range(9):
        crops_module.examples(model, result, "edges", channel, "reference")
    assert len(plans) == 1


def test_the_json_names_skipped_files_and_the_crop_inside_the_photo(scanned, tmp_path) -> None:
    model, result, _ = scanned
    export.export_topk(model, result, tmp_path / "out", ["combine"])
    text = (tmp_path / "out" / "combine.topk.json").read_text()
    assert "\n" not in text
    doc = json.loads(text)
    assert doc["skipped"] == [
        {
            "path": str(result.folder / "notes.png"),
            "reason": "notes.png is not an image file ConvScope can read",
        }
    ]
    assert doc["input_size"] == [SIZE, SIZE]
    for channel in doc["top"]:
        for e in channel["entries"]:
            t, l, b, r = e["box"]
            assert e["crop"] == [max(int(t), 0), max(int(l), 0), min(int(b), SIZE), min(int(r), SIZE)]


def test_montage_rows_say_their_channel_and_cells_their_value_and_image(scanned, tmp_path) -> None:
    model, result, _ = scanned
    export.export_topk(model, result, tmp_path / "out", ["edges"], max_channels=4)
    rgb = np.asarray(Image.open(tmp_path / "out" / "edges.topk.png").convert("RGB")).astype(int)
    line, left = labels.line_height(export.TEXT), export.label_width()
    top, cell_h = 5 * line + 4, SIZE + 2 * line + 2  # a title of five lines: one file skipped
    assert rgb.shape[:2] == (top + 4 * (cell_h + 2) - 2, left + 3 * (SIZE + 2) - 2)

    def coverage(region: np.ndarray, colour) -> np.ndarray:
        """How much text covers each pixel (0..255), read back from the blend over the
        background."""
        return (region[..., 0] - export.EMPTY) * 255 / (colour[0] - export.EMPTY)

    def drawn(text: str, shape: tuple[int, int], at: tuple[int, int], width: int | None) -> np.ndarray:
        want = np.zeros(shape)
        mask = labels.text_mask(text, export.TEXT, width)[: shape[0] - at[0], : shape[1] - at[1]]
        want[at[0] : at[0] + mask.shape[0], at[1] : at[1] + mask.shape[1]] = mask
        return want

    entries = result.layer_entries("edges")
    for row in range(4):
        y = top + row * (cell_h + 2)
        # the row's label, "ch N", at the left of the row's crops, and nothing else there
        got = coverage(rgb[y : y + SIZE, : left - 2], export.INK)
        want = drawn(f"ch {row}", got.shape, ((SIZE - line) // 2, 3), left - 4)
        assert np.abs(got - want).max() <= 2 and (want > 128).sum() > 20
        for c, e in enumerate(entries[row]):
            x = left + c * (SIZE + 2)
            value = coverage(rgb[y + SIZE + 1 : y + SIZE + 1 + line, x : x + SIZE], export.INK)
            assert np.abs(value - drawn(f"{e.value:.4g}", value.shape, (0, 0), SIZE)).max() <= 2
            name = coverage(rgb[y + SIZE + 1 + line : y + cell_h, x : x + SIZE], export.MUTED)
            assert np.abs(name - drawn(e.path.name, name.shape, (0, 0), SIZE)).max() <= 2
            assert (name > 128).sum() > 10
    # the title says which layer, how many images were scanned and, apart, the files skipped
    title = coverage(rgb[1 : 1 + line, :], export.INK)
    assert np.abs(title - drawn("edges", title.shape, (0, 4), None)).max() <= 2
    width = rgb.shape[1] - 8
    for i, text in (
        (1, "top 3 per channel of 14 images scanned"),
        (2, "1 file skipped (not readable as images)"),
    ):
        got = coverage(rgb[1 + i * line : 1 + (i + 1) * line, :], export.MUTED)
        assert np.abs(got - drawn(text, got.shape, (0, 4), width)).max() <= 2 and (got > 128).sum() > 20


def test_the_montage_title_counts_images_scanned_and_files_skipped_apart(scanned, tmp_path) -> None:
    model, result, _ = scanned  # 14 images and notes.png, which is not one
    assert result.stats.images == 15 and result.stats.unreadable == 1
    assert export.montage_title(result, "edges")[:3] == (
        "edges",
        "top 3 per channel of 14 images scanned",
        "1 file skipped (not readable as images)",
    )
    doc = export.layer_document(model, result, "edges", 64)
    assert (doc["images"], doc["scanned"], doc["unreadable"]) == (15, 14, 1)
    (tmp_path / "imgs" / "notes.png").unlink()  # nothing skipped: no line about it
    again = scan(model, tmp_path / "imgs", "reference", k=3, store=result.store)
    assert export.montage_title(again, "edges")[1:3] == (
        "top 3 per channel of 14 images scanned",
        "the unit's field clipped to the photo;",
    )


def _trimmed(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    return mask[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]


def test_text_masks_match_pillows_own_drawing_and_elide_to_fit() -> None:
    font = labels.font(export.TEXT)
    for text in ("ch 12", "0.4706", "v03.png"):
        mine = labels.text_mask(text, export.TEXT)
        ascent, descent = font.getmetrics()
        theirs = Image.new("L", (mine.shape[1] + 8, ascent + descent), 0)
        ImageDraw.Draw(theirs).text((0, ascent), text, font=font, fill=255, anchor="ls")
        theirs = np.asarray(theirs)
        # laid out glyph by glyph (no kerning): the same ink within a pixel of Pillow's
        assert abs(int(mine.astype(int).sum()) - int(theirs.astype(int).sum())) < 0.05 * theirs.sum()
        assert _trimmed(mine > 128).shape[0] == _trimmed(theirs > 128).shape[0]
        assert abs(_trimmed(mine > 128).shape[1] - _trimmed(theirs > 128).shape[1]) <= 1
    long = "holiday_2026_beach_sunset_0042.jpg"
    short = labels.elide(long, export.TEXT, 64)
    assert "…" in short and short.endswith("42.jpg") and short.startswith("hol")
    assert labels.text_width(short, export.TEXT) <= 64
    assert labels.elide("a.png", export.TEXT, 64) == "a.png"
    # a file name may hold a newline or a tab: drawn as "?", never a crash of the export
    odd = labels.text_mask("naïve\nname\t.png", export.TEXT)
    assert odd.shape == labels.text_mask("naïve?name?.png", export.TEXT).shape
    assert labels.text_width("a\nb", export.TEXT) == labels.text_width("a?b", export.TEXT)


def test_tiles_mark_the_unit_and_cut_the_field_to_the_photo(scanned, tmp_path) -> None:
    model, result, _ = scanned
    layers = {la.name: la for la in scanner.conv_layers(model)}
    rf = layers["combine"].receptive_field  # field 8, jump 2
    e = result.layer_entries("combine", [0])[0][0]
    tiles = export.Tiles(model.preprocess)
    cell, error = tiles.get(e, rf, frame(rf, (SIZE, SIZE)))
    assert error is None and cell.shape == (SIZE, SIZE, 3)
    view = prepare_image(e.path, model.preprocess).model_view
    _, (y0, x0, y1, x1), (cy, cx) = crops_module.cut_of(rf, e.y, e.x, (SIZE, SIZE))
    scale = SIZE // 8  # an 8-pixel frame in a 64-pixel tile: 8 pixels a pixel
    h, w = (y1 - y0) * scale, (x1 - x0) * scale
    oy, ox = (SIZE - h) // 2, (SIZE - w) // 2
    picture = cell[oy : oy + h, ox : ox + w].copy()
    ticks = np.all(picture == export.TICK, axis=2)
    # the ticks sit on the picture's edges at the unit's row and column
    row, col = int(oy + cy * scale) - oy, int(ox + cx * scale) - ox
    assert ticks[min(row, h - 1), 0] and ticks[min(row, h - 1), w - 1]
    assert ticks[0, min(col, w - 1)] and ticks[h - 1, min(col, w - 1)]
    assert ticks.sum() <= 4 * 5
    # elsewhere the picture is the clipped field, enlarged pixel for pixel
    want = np.repeat(np.repeat(view[y0:y1, x0:x1], scale, axis=0), scale, axis=1)
    np.testing.assert_array_equal(picture[~ticks], want[~ticks])
    e.path.unlink()  # gone since the scan: a grey tile and why
    cell, error = export.Tiles(model.preprocess).get(e, rf, frame(rf, (SIZE, SIZE)))
    assert "no such file" in error and (cell == export.GREY_TILE).all()
