"""Crops and overlays on a layer whose units are strided (classic's ``combine``: field 8, jump 2)."""

from __future__ import annotations

import numpy as np
import pytest

from models.receptive_field import ReceptiveField
from models.sources import load_model
from models.topk import crop, examples, overlay, scan
from tests.models.topk_folders import bars_folder


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVSCOPE_CACHE", str(tmp_path / "cache"))


def test_crop_is_the_field_cut_from_the_view_grey_outside() -> None:
    view = np.arange(10 * 12 * 3, dtype=np.uint8).reshape(10, 12, 3)
    field = ReceptiveField(size=(5, 4), jump=(2, 3), start=(-2.0, -1.0))
    cut, box = crop(view, field, 0, 0)
    assert box == (-2.0, -1.0, 3.0, 3.0) and cut.shape == (5, 4, 3)
    assert (cut[:2] == 128).all() and (cut[:, :1] == 128).all()
    np.testing.assert_array_equal(cut[2:, 1:], view[0:3, 0:3])
    cut, box = crop(view, field, 4, 4)  # rows 6..11, columns 11..15: mostly outside
    np.testing.assert_array_equal(cut[:4, :1], view[6:10, 11:12])
    assert (cut[4:] == 128).all() and (cut[:, 1:] == 128).all()


def test_overlay_gives_each_pixel_its_nearest_unit_and_nan_outside() -> None:
    field = ReceptiveField(size=(6, 6), jump=(2, 2), start=(-2.0, -2.0))  # centres at 0.5 + 2i
    channel_map = np.arange(16, dtype=np.float32).reshape(4, 4)
    got = overlay(channel_map, field, 1, 2, (8, 8))  # box rows 0..5, columns 2..7
    assert got.shape == (6, 6)
    # pixel row p belongs to unit round((p - 0.5) / 2): rows 0,1 -> 0; 2,3 -> 1; 4,5 -> 2
    want_rows = [0, 0, 1, 1, 2, 2]  # floor((p - 0.5) / 2 + 0.5)
    want_cols = [1, 1, 2, 2, 3, 3]
    np.testing.assert_array_equal(got, channel_map[np.ix_(want_rows, want_cols)])
    edge = overlay(channel_map, field, 0, 0, (8, 8))  # box starts at -2: two rows outside
    assert np.isnan(edge[:2]).all() and np.isnan(edge[:, :2]).all()
    assert not np.isnan(edge[2:, 2:]).any()


def test_examples_on_a_strided_layer_and_a_deleted_image(tmp_path) -> None:
    bars_folder(tmp_path / "imgs", size=64)
    model = load_model("classic", input_size=(64, 64))
    result = scan(model, tmp_path / "imgs", "reference", k=3)
    shown = examples(model, result, "combine", 0, "reference", maps=True)
    for ex in shown:
        assert ex.crop.shape == (8, 8, 3) and ex.overlay.shape == (8, 8)
        assert ex.map.shape == (32, 32)
        assert ex.map[ex.entry.y, ex.entry.x] == pytest.approx(ex.entry.value, rel=1e-5)
        t, l, b, r = ex.box
        # edges 3x3 (pad 1) -> pool 2 -> combine 3x3 (pad 1): field 8, jump 2, unit 0 at -3
        assert (b - t, r - l) == (8, 8) and (t, l) == (2 * ex.entry.y - 3, 2 * ex.entry.x - 3)
    gone = shown[0].entry.path
    gone.unlink()
    again = examples(model, result, "combine", 0, "reference", maps=True)
    assert again[0].error and "no such file" in again[0].error
    assert (again[0].crop == 128).all() and again[0].map is None
    assert again[1].error is None and again[1].map is not None
