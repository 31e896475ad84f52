"""The Qt-free pixels: normalising, colour maps, mosaics, filter images, boxes, heat maps."""

from __future__ import annotations

import numpy as np
import pytest

from models import render

RNG = np.random.default_rng(0)


def test_normalize_per_map_and_per_layer() -> None:
    maps = np.array([[[0, 2]], [[10, 20]]], dtype=np.float32)  # (2, 1, 2)
    np.testing.assert_allclose(render.normalize(maps, "map"), [[[0, 1]], [[0, 1]]])
    np.testing.assert_allclose(render.normalize(maps, "layer"), [[[0, 0.1]], [[0.5, 1]]])
    np.testing.assert_allclose(render.normalize(np.full((1, 2, 2), 3.0), "map"), 0)
    np.testing.assert_allclose(render.normalize(np.array([[[-2, 1]]]), "map", symmetric=True), [[[0, 0.75]]])


def test_normalize_a_page_of_channels_on_the_layers_range() -> None:
    maps = np.array([[[0, 2]], [[10, 20]], [[-20, 0]]], dtype=np.float32)  # (3, 1, 2)
    # the page is scaled as it would be in the whole layer, not on its own range
    np.testing.assert_allclose(render.normalize(maps, "layer", channels=[1]), [[[0.75, 1]]])
    np.testing.assert_allclose(render.normalize(maps, "map", channels=[2, 0]), [[[0, 1]], [[0, 1]]])
    np.testing.assert_allclose(render.normalize(maps, "layer", symmetric=True, channels=[2]), [[[0, 0.5]]])


def test_normalize_survives_nan_and_inf() -> None:
    bad = np.array([[[0, np.nan, 2, np.inf, -np.inf]]], dtype=np.float32)
    for out in (render.normalize(bad, "map"), render.normalize(bad, "layer", channels=[0])):
        np.testing.assert_allclose(out, [[[0, 0, 1, 1, 0]]])  # NaN -> 0, +-inf -> the extremes


def test_colormap_endpoints() -> None:
    assert render.apply_colormap(np.array([0.0, 1.0]), "gray").tolist() == [[0, 0, 0], [255, 255, 255]]
    assert render.apply_colormap(np.array(0.0), "viridis").tolist() == [0x44, 0x01, 0x54]
    with pytest.raises(ValueError, match="unknown colour map 'jet'"):
        render.apply_colormap(np.zeros(1), "jet")


def test_mosaic_places_tiles_with_gaps() -> None:
    tiles = np.stack([np.full((2, 3, 3), v, dtype=np.uint8) for v in (10, 20, 30, 40, 50)])
    image, rects = render.mosaic(tiles, columns=3, gap=1, background=0)
    assert image.shape == (2 * 2 + 1, 3 * 3 + 2, 3)
    assert rects[4] == (3, 4, 2, 3)
    assert image[3, 4, 0] == 50 and image[2, 0, 0] == 0 and image[4, 10, 0] == 0


def test_feature_maps_are_upscaled_to_stay_legible() -> None:
    image, rects, scale = render.feature_maps_image(RNG.random((10, 7, 7)), min_tile=48)
    assert scale == 7 and rects[0][2:] == (49, 49)
    assert image.shape[0] == 3 * 49 + 2 * 2 and image.shape[1] == 4 * 49 + 3 * 2


def test_first_layer_filters_are_colour_images_and_deep_ones_a_grid() -> None:
    w = np.zeros((4, 3, 3, 3), dtype=np.float32)
    w[0, 0, 1, 1] = 1.0  # a red centre pixel in filter 0
    rgb = render.filters_image(w, min_kernel=6, gap=0)
    assert rgb.shape == (12, 12, 3)
    assert rgb[3, 3].tolist() == [255, 128, 128]  # +1 in red, 0 (mid grey) elsewhere
    assert rgb[0, 0].tolist() == [128, 128, 128]
    deep = render.filters_image(RNG.standard_normal((5, 7, 3, 3)), min_kernel=3, gap=1)
    assert deep.shape == (5 * 4 - 1, 7 * 4 - 1, 3)  # rows = filters, columns = input channels
    one = render.filters_image(RNG.standard_normal((5, 7, 3, 3)), in_channel=2, min_kernel=3, gap=1)
    assert one.shape == (2 * 4 - 1, 3 * 4 - 1, 3)


def test_receptive_field_box_clipped_with_padding_dashed() -> None:
    rgb = np.zeros((20, 20, 3), dtype=np.uint8)
    out = render.draw_receptive_field(rgb, (-4.0, 5.0, 6.0, 15.0), (1.0, 10.0))
    assert out[0, 7].tolist() == [255, 220, 0]  # clipped top edge, solid, inside the image
    assert out[5, 5].tolist() == [255, 220, 0]  # left edge
    assert out[1, 10].tolist() == [255, 220, 0]  # centre cross
    assert out[12, 12].tolist() == [0, 0, 0]  # outside the box: untouched
    assert rgb.max() == 0  # the input is not modified


def test_heatmap_overlay_changes_only_where_there_is_heat() -> None:
    rgb = np.full((8, 8, 3), 100, dtype=np.uint8)
    heat = np.zeros((8, 8), dtype=np.float32)
    heat[2:4, 2:4] = 1.0
    out = render.overlay_heatmap(rgb, heat)
    assert (out[0, 0] == 100).all() and not (out[2, 2] == 100).all()


def test_save_png_round_trip(tmp_path) -> None:
    from PIL import Image

    rgb = RNG.integers(0, 255, (5, 6, 3), dtype=np.uint8)
    path = render.save_png(rgb, tmp_path / "sub" / "a.png")
    np.testing.assert_array_equal(np.asarray(Image.open(path)), rgb)


def test_filters_mosaic_says_where_each_filter_is() -> None:
    image, rects = render.filters_mosaic(RNG.standard_normal((5, 7, 3, 3)), min_kernel=3, gap=1)
    assert rects == [(f * 4, 0, 3, image.shape[1]) for f in range(5)]  # filter f = row f
    image, rects = render.filters_mosaic(RNG.standard_normal((10, 3, 3, 3)), min_kernel=6, gap=2)
    assert len(rects) == 10 and rects[4] == (8, 0, 6, 6)  # 4 columns: filter 4 opens row 1
    image, rects = render.filters_mosaic(RNG.standard_normal((16, 1, 3, 3)), min_kernel=3, gap=1)
    assert image.shape == (4 * 4 - 1, 4 * 4 - 1, 3)  # depthwise: a 4x4 grid, not a 16-tall strip


def test_filter_tiles_are_the_filter_images_kernels() -> None:
    w = RNG.standard_normal((5, 4, 3, 3)).astype(np.float32)
    tiles, columns, index = render.filter_tiles(w)
    image, _ = render.filters_mosaic(w, min_kernel=3, gap=1)
    assert columns == 4 and index[6] == (1, 2) and tiles.shape == (20, 3, 3, 3)
    assert (image[4:7, 8:11] == tiles[6]).all()  # the same pixels as the filter image, row 1 col 2
    rgb_w = RNG.standard_normal((2, 3, 3, 3)).astype(np.float32)
    tiles, columns, index = render.filter_tiles(rgb_w)
    assert columns is None and index == [(0, None), (1, None)]
    tiles, columns, index = render.filter_tiles(w, in_channel=2)
    assert columns is None and index[3] == (3, 2) and tiles.shape == (5, 3, 3, 3)


def test_a_colour_bars_range_is_what_the_colours_were_scaled_on() -> None:
    maps = np.array([[[-1.0, 3.0], [np.nan, 0.5]]], dtype=np.float32)
    assert render.value_range(maps) == (-1.0, 3.0)
    assert render.value_range(maps, symmetric=True) == (-3.0, 3.0)
    heat = np.abs(RNG.standard_normal((30, 30))).astype(np.float32)
    top = render.heat_top(heat)
    rgba = render.heat_rgba(heat, alpha=1.0)
    saturated = heat >= top
    assert saturated.any() and (rgba[saturated][:, :3] == render.COLORMAPS["inferno"][-1]).all()
    assert render.top_indices(np.array([1.0, 5.0, np.nan, 5.0, 2.0]), 3) == [1, 3, 4]
