"""Crops (the field clipped to the photo, the unit placed in it) and overlays, on a layer whose
units are strided (classic's ``combine``: field 8, jump 2) and on fields larger than the photo."""

from __future__ import annotations

import numpy as np
import pytest

from models.receptive_field import ReceptiveField
from models.sources import load_model
from models.topk import crop, examples, overlay, scan
from models.topk.crops import cut_of, cuts_of, frame
from tests.models.topk_folders import bars_folder


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVSCOPE_CACHE", str(tmp_path / "cache"))


def test_crop_is_the_field_clipped_to_the_view_with_the_unit_placed() -> None:
    view = np.arange(10 * 12 * 3, dtype=np.uint8).reshape(10, 12, 3)
    field = ReceptiveField(size=(5, 4), jump=(2, 3), start=(-2.0, -1.0))
    cut, box, clip, centre = crop(view, field, 0, 0)  # rows -2..3, columns -1..3
    assert box == (-2.0, -1.0, 3.0, 3.0) and clip == (0, 0, 3, 3)
    np.testing.assert_array_equal(cut, view[0:3, 0:3])  # only what the model saw: no padding
    assert centre == (0.5, 1.0)  # the field's centre (row 0.5, column 1) in crop pixels
    cut, box, clip, centre = crop(view, field, 4, 4)  # rows 6..11, columns 11..15
    assert clip == (6, 11, 10, 12)
    np.testing.assert_array_equal(cut, view[6:10, 11:12])
    assert centre == (2.5, 2.0)  # past the crop's right edge: the field's centre is at column 13
    inside = crop(view, field, 2, 1)  # rows 2..7, columns 2..6: all inside
    assert inside[2] == (2, 2, 7, 6) and inside[3] == (2.5, 2.0)
    np.testing.assert_array_equal(inside[0], view[2:7, 2:6])


def test_a_deep_field_is_cut_to_the_photo_and_its_frame_is_the_photo() -> None:
    """A field far larger than the photo (EfficientNet-Lite0's deep layers: 400-900 px on a 224
    input) gives the whole photo, not a grey square with the photo a speck in it."""
    view = np.random.default_rng(0).integers(0, 255, (32, 40, 3), dtype=np.uint8)
    field = ReceptiveField(size=(300, 300), jump=(16, 16), start=(-142.0, -142.0))
    cut, box, clip, centre = crop(view, field, 1, 2)  # centre (24, 40)
    assert clip == (0, 0, 32, 40) and box == (-126.0, -110.0, 174.0, 190.0)
    np.testing.assert_array_equal(cut, view)
    assert centre == (24.0, 40.0)
    assert frame(field, (32, 40)) == (32, 40)
    assert frame(ReceptiveField(size=(3, 3), jump=(1, 1), start=(-1.0, -1.0)), (32, 40)) == (3, 3)
    boxes, clips = cuts_of(field, [1, 0], [2, 0], (32, 40))  # the same, for many units at once
    assert boxes[0].tolist() == list(box) and clips.tolist() == [[0, 0, 32, 40], [0, 0, 32, 40]]
    assert cut_of(field, 1, 2, (32, 40)) == (box, clip, centre)


def test_overlay_gives_each_pixel_its_nearest_unit_and_nan_outside() -> None:
    field = ReceptiveField(size=(6, 6), jump=(2, 2), start=(-2.0, -2.0))  # centres at 0.5 + 2i
    channel_map = np.arange(16, dtype=np.float32).reshape(4, 4)
    got = overlay(channel_map, field, 1, 2, (8, 8))  # box rows 0..5, columns 2..7
    assert got.shape == (6, 6)
    # pixel row p belongs to unit round((p - 0.5) / 2): rows 0,1 -> 0; 2,3 -> 1; 4,5 -> 2
    want_rows = [0, 0, 1, 1, 2, 2]  # floor((p - 0.5) / 2 + 0.5)
    want_cols = [1, 1, 2, 2, 3, 3]
    np.testing.assert_array_equal(got, channel_map[np.ix_(want_rows, want_cols)])
    edge = overlay(channel_map, field, 0, 0, (8, 8))  # box starts at -2: clipped like the crop
    assert edge.shape == (4, 4) and not np.isnan(edge).any()
    np.testing.assert_array_equal(edge, channel_map[np.ix_([0, 0, 1, 1], [0, 0, 1, 1])])


def test_examples_on_a_strided_layer_and_a_deleted_image(tmp_path) -> None:
    bars_folder(tmp_path / "imgs", size=64)
    model = load_model("classic", input_size=(64, 64))
    result = scan(model, tmp_path / "imgs", "reference", k=3)
    shown = examples(model, result, "combine", 0, "reference", maps=True)
    for ex in shown:
        t, l, b, r = ex.box
        # edges 3x3 (pad 1) -> pool 2 -> combine 3x3 (pad 1): field 8, jump 2, unit 0 at -3
        assert (b - t, r - l) == (8, 8) and (t, l) == (2 * ex.entry.y - 3, 2 * ex.entry.x - 3)
        clip = (max(int(t), 0), max(int(l), 0), min(int(b), 64), min(int(r), 64))
        assert ex.clip == clip
        assert ex.crop.shape == (clip[2] - clip[0], clip[3] - clip[1], 3)
        assert ex.overlay.shape == ex.crop.shape[:2] and ex.map.shape == (32, 32)
        assert ex.map[ex.entry.y, ex.entry.x] == pytest.approx(ex.entry.value, rel=1e-5)
        # the unit's centre, 2y + 1 in the photo, in crop pixels
        assert ex.centre == (2 * ex.entry.y + 1 - clip[0], 2 * ex.entry.x + 1 - clip[1])
    gone = shown[0].entry.path
    gone.unlink()
    again = examples(model, result, "combine", 0, "reference", maps=True)
    assert again[0].error and "no such file" in again[0].error
    assert (again[0].crop == 128).all() and again[0].map is None and again[0].crop.shape == (8, 8, 3)
    assert again[1].error is None and again[1].map is not None
