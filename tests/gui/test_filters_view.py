"""The filters view: every filter, one kernel per input channel, paged and fitted to the pane so
the kernels stay readable, and it says what it leaves out."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QPointF


@pytest.fixture
def view(filters_view):
    return filters_view  # tests/gui/conftest.py


def _settle(qtbot) -> None:
    qtbot.wait(200)  # the canvas fits the pane and the matrix re-pages after a resize (timers)


def _screen_side(view, rect) -> float:
    """A kernel's side on the screen, in pixels: the view fits the image to the pane."""
    top, left, h, w = rect
    canvas = view.canvas
    a = canvas.view.mapViewToScene(QPointF(left, top))
    b = canvas.view.mapViewToScene(QPointF(left + w, top + h))
    return min(b.x() - a.x(), b.y() - a.y())


def test_a_big_layer_pages_its_filter_matrix_with_readable_kernels_and_one_channel_shows_every_filter(
    view, qtbot
) -> None:
    weight = np.random.default_rng(0).standard_normal((512, 64, 3, 3)).astype(np.float32)
    view.set_weights("layer4.0.conv1", weight)
    _settle(qtbot)
    assert "512 filters · each = 64 kernels of 3×3" in view.caption.text()
    n, _, per_page = view._fit
    assert view.legend.text().startswith(
        f"blue < 0 < red · each row is a filter: its kernels for "
        f"input channels 0–{n - 1} left to right (of 64"
    )
    assert view.page_count() == -(-512 // per_page) > 1 and view.page_label.isVisible()
    assert view.page_label.text() == f"filters 0–{per_page - 1} of 512"
    image = view.render_image()
    assert max(image.shape[:2]) <= 1600  # no bigger than a screen shows
    rects = view.canvas.rects
    assert _screen_side(view, rects[view.tile_of(0, 0)]) >= 10  # readable kernels
    # every filter is on some page, its strip of kernels in filter order; hover reads the weight
    seen = []
    for page in range(view.page_count()):
        view.next_page.click() if page else None
        assert view._page == page
        seen += list(view.page_filters())
        last = view.page_filters()[-1]
        tile = view.tile_of(last, n - 1)
        assert view._index[tile] == (last, n - 1)
        top, left, h, w = view.canvas.rects[tile]
        assert (view.render_image()[top : top + h, left : left + w] != 40).any()  # drawn
        view._hover_tile(tile, 2, 0)
        assert view.readout.text() == (
            f"filter {last} · input channel {n - 1} · tap (y 2, x 0) = {weight[last, n - 1, 2, 0]:+.4g}"
        )
    assert seen == list(range(512)) and not view.next_page.isEnabled()
    # marking a filter from elsewhere (a clicked map) turns to its page
    view.set_highlight(3)
    assert view._page == 0 and view.marker.isVisible() and view.tile_of(3) is not None
    view.channel.setCurrentIndex(1 + 5)  # input channel 5
    assert len(view._rects) == 512 and not view.page_label.isVisible()  # every filter's kernel
    top, left, h, w = view._rects[511]
    kernel = view.render_image()[top : top + h, left : left + w]
    assert kernel.shape[:2] == (h, w) and (kernel != 40).any()  # drawn, not background
    assert view.legend.text() == "blue < 0 < red · hover a kernel for its weights"


@pytest.mark.parametrize("size", [(470, 560), (1270, 1300)])  # the tab at 1024x700, 2560x1440
def test_the_matrix_fills_the_pane_wrapping_filters_into_strips(view, qtbot, size) -> None:
    weight = np.random.default_rng(1).standard_normal((256, 256, 3, 3)).astype(np.float32)
    view.resize(*size)
    view.set_weights("layer3.0.conv2", weight)
    _settle(qtbot)
    n, strips, per_page = view._fit
    assert view.canvas.columns() == strips * (n + 1) - 1
    if size[0] > 1000:  # a wide pane: strips side by side, not one thin column
        assert strips >= 2
    strip = view._rects  # one (top, left, h, w) per filter on the page
    image = view.render_image()
    assert max(r[1] + r[3] for r in strip) > 0.9 * image.shape[1]
    canvas = view.canvas.graphics.viewport()
    a = view.canvas.view.mapViewToScene(QPointF(0, 0))
    b = view.canvas.view.mapViewToScene(QPointF(image.shape[1], image.shape[0]))
    used = max((b.x() - a.x()) / canvas.width(), (b.y() - a.y()) / canvas.height())
    assert used > 0.9  # the image fills the pane's width or height
    assert _screen_side(view, view.canvas.rects[view.tile_of(0, 0)]) >= 10
    for f in (0, per_page // 2, per_page - 1):  # each kernel under its own filter and channel
        for c in (0, n - 1):
            tile = view.tile_of(f, c)
            top, left, h, _ = view.canvas.rects[tile]
            assert view.canvas.unit_at(top + h - 1, left) == (tile, 2, 0)
            assert view._index[tile] == (f, c)


def test_the_caption_and_legend_are_as_tall_as_their_text_in_a_narrow_pane(view, qtbot) -> None:
    view.resize(400, 600)  # narrower than the tab at 1024x700
    weight = np.random.default_rng(2).standard_normal((96, 3, 5, 5)).astype(np.float32)
    view.set_weights("features.3.block.0.conv", weight, groups=32)
    _settle(qtbot)
    for label in (view.caption, view.legend):
        lines = label.lines_needed()
        assert label.height() >= lines * label.fontMetrics().lineSpacing()  # nothing clipped
    assert view.caption.lines_needed() >= 3  # the sentence did need more than two lines here
