"""Reading the pictures: the mosaic fills its pane, colour bars say the values, a layer without
spatial extent is a bar chart, kernels read on hover (and the classic ones by name), the RF plot
answers the mouse, the photo zooms with its overlay, the Engines tab times medians."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from gui.view import Shown
from models import render


def _move(graphics, scene_pos: QPointF) -> None:
    """A real mouse move over a pyqtgraph widget, at a scene position."""
    viewport = graphics.viewport()
    pos = QPointF(graphics.mapFromScene(scene_pos))
    QApplication.sendEvent(
        viewport,
        QMouseEvent(
            QEvent.Type.MouseMove,
            pos,
            QPointF(viewport.mapToGlobal(pos)),
            Qt.MouseButton.NoButton,
            Qt.MouseButton.NoButton,
            Qt.KeyboardModifier.NoModifier,
        ),
    )


@pytest.fixture
def maps_view(qtbot):
    from gui.feature_maps_view import FeatureMapsView

    view = FeatureMapsView()
    qtbot.addWidget(view)
    view.resize(1200, 600)
    view.show()
    QApplication.instance().processEvents()
    return view


def _settle(qtbot) -> None:
    qtbot.wait(120)  # the canvas refits on a short timer after a resize
    QApplication.instance().processEvents()


# --- the mosaic ----------------------------------------------------------------------------
def test_few_channels_fill_the_pane_as_big_tiles_in_the_shape_of_the_pane(maps_view, qtbot) -> None:
    maps = np.random.default_rng(0).standard_normal((3, 20, 20)).astype(np.float32)
    maps_view.set_maps("three", maps)
    _settle(qtbot)
    canvas = maps_view.canvas
    assert canvas.columns() == 3  # a wide pane: one row of three
    viewport = canvas.graphics.viewport().width()
    top, left, _, w = maps_view.tile_rect(2)
    on_screen = (
        canvas.view.mapViewToDevice(QPointF(left + w, top)).x()
        - canvas.view.mapViewToDevice(QPointF(left, top)).x()
    )
    assert on_screen > viewport / 4  # a big tile, not a stamp
    maps_view.resize(400, 1000)  # a tall pane: the three stack
    _settle(qtbot)
    assert canvas.columns() == 1
    # the hover still finds the right unit in the new layout
    top, left, _, _ = maps_view.tile_rect(2)
    s = canvas.scale
    assert maps_view.unit_at(top + 5 * s + 0.5, left + 7 * s + 0.5) == (2, 5, 7)


def test_fill_columns_picks_the_largest_tiles() -> None:
    assert render.fill_columns(3, 10, 10, 100, 300) == 3
    assert render.fill_columns(3, 10, 10, 300, 100) == 1
    assert render.fill_columns(64, 10, 10, 400, 400) == 8
    assert render.fill_columns(1, 10, 10, 50, 50) == 1


# --- colour bars ---------------------------------------------------------------------------
def test_colour_bars_carry_the_maps_values(maps_view, qtbot) -> None:
    maps = np.random.default_rng(1).standard_normal((6, 16, 16)).astype(np.float32) * 3 + 1
    maps_view.set_maps("layer", maps)
    maps_view.set_normalization("layer")
    bar = maps_view.colorbar
    assert bar.value_range() == pytest.approx((maps.min(), maps.max()))
    assert bar.labels()[0] == f"{maps.min():.3g}" and bar.labels()[-1] == f"{maps.max():.3g}"
    maps_view.select_channel(4)
    detail = maps_view.detail_colorbar
    assert detail.value_range() == pytest.approx((maps[4].min(), maps[4].max()))
    maps_view.set_colormap("coolwarm")  # diverging: 0 in the middle, the ends at +-max|v|
    m = np.abs(maps[4]).max()
    assert detail.value_range() == pytest.approx((-m, m))
    assert detail.labels()[1] == "0"
    maps_view.set_normalization("map")  # each map on its own range: words, not one pair of numbers
    assert bar.value_range() is None and bar.labels() == ["−max |map|", "+max |map|"]
    # the bar's pixels are the colour map, low on the left, high on the right
    maps_view.set_colormap("viridis")
    image = detail.grab().toImage()
    rect = detail._bar_rect()
    y = rect.center().y()
    left = image.pixelColor(rect.left() + 2, y)
    right = image.pixelColor(rect.right() - 3, y)
    lut = render.COLORMAPS["viridis"]
    assert np.abs(np.array([left.red(), left.green(), left.blue()]) - lut[2]).max() < 20
    assert np.abs(np.array([right.red(), right.green(), right.blue()]) - lut[-3]).max() < 20


def test_a_narrow_colour_bar_never_overprints_its_labels(qtbot) -> None:
    from gui.colorbar import ColorBar

    bar = ColorBar("values (each map on its own range)")
    qtbot.addWidget(bar)
    bar.resize(200, bar.height())
    bar.set_text_ends("each map's min", "each map's max")
    fm = bar.fontMetrics()
    room = bar._bar_rect().width()
    drawn = bar.fitted_labels()
    assert sum(fm.horizontalAdvance(t) for t in drawn) + 12 * (len(drawn) - 1) <= room
    assert "each map's max" in bar.toolTip() and "values (each map" in bar.toolTip()
    bar.set_range(-7.16e-07, -2.3e-07)  # long numbers: the middle goes first, the ends stay whole
    bar.resize(170, bar.height())
    drawn = bar.fitted_labels()
    assert drawn[0] == "-7.16e-07" and drawn[-1] == "-2.3e-07" and len(drawn) == 2
    bar.resize(800, bar.height())  # room enough: all three, unelided
    assert bar.fitted_labels() == bar.labels()
    # a title with a short form: the short one where the whole one would be cut
    bar.set_title("values (each map on its own range)", "values")
    bar.set_text_ends("each map's min", "each map's max")
    assert bar.shown_title() == "values (each map on its own range)"
    bar.resize(300, bar.height())
    assert bar.shown_title() == "values"
    assert bar._title_width() >= fm.horizontalAdvance("values") + 8  # written whole, not "val…"
    assert "values (each map on its own range)" in bar.toolTip()
    bar.set_title("channel 0", "")  # a title that may go: none rather than "chan…"
    bar.set_range(0.00685, 1.25)
    bar.resize(150, bar.height())
    assert bar.shown_title() == "" and bar._title_width() == 0


# --- layers without spatial extent ---------------------------------------------------------
def test_a_layer_without_spatial_extent_is_a_bar_chart_of_its_values(maps_view, qtbot) -> None:
    values = np.random.default_rng(2).standard_normal(1000).astype(np.float32)
    names = [f"class{i}" for i in range(1000)]
    maps_view.set_maps("fc", values, names)
    assert maps_view.is_flat() and maps_view.stack.currentIndex() == 1
    np.testing.assert_array_equal(maps_view.bar_values(), values)
    top = np.argsort(-values)[:5]
    assert maps_view.bar_labels() == [f"{i} class{i}" for i in top]
    assert f"largest: {top[0]} class{top[0]}" in maps_view.readout.text()
    assert "green line: the selected class (0; click a bar for another)" in maps_view.readout.text()
    # a 1x1 output after a global pool is the same chart
    pooled = values[:512].reshape(512, 1, 1)
    maps_view.set_maps("avgpool", pooled)
    np.testing.assert_array_equal(maps_view.bar_values(), values[:512])
    assert maps_view.tile_rect(0) is None
    # hover and click read and pick a bar
    qtbot.wait(50)
    vb = maps_view.bars.getPlotItem().getViewBox()
    i = int(np.argmax(values[:512]))
    scene = vb.mapViewToScene(QPointF(i, float(values[i]) / 2))
    maps_view.bars.scene().sigMouseMoved.emit(scene)
    assert maps_view.readout.text() == f"channel {i} = {values[i]:.4g}"
    with qtbot.waitSignal(maps_view.unit_clicked) as blocker:
        maps_view.bars._click(scene)
    assert blocker.args == [i, 0, 0] and maps_view.selected_channel() == i
    assert maps_view.bars.marker.value() == i  # the green line is the selection
    # neighbouring large bars: one number over them, all named in the corner list
    close = np.zeros(1000, np.float32)
    close[[281, 282, 285, 600, 10]] = [5, 6, 9, 4, 3]
    maps_view.set_maps("fc", close, names)
    assert maps_view.bar_labels() == [
        "285 class285",
        "282 class282",
        "281 class281",
        "600 class600",
        "10 class10",
    ]
    assert maps_view.bars.numbers() == ["285", "600", "10"]
    qtbot.wait(50)  # the new range
    maps_view.bars.scene().sigMouseMoved.emit(vb.mapViewToScene(QPointF(600, 2)))
    assert maps_view.readout.text() == "class 600 class600 = 4"
    # back to a spatial layer: the mosaic again
    maps_view.set_maps("conv", np.ones((4, 8, 8), np.float32))
    assert maps_view.stack.currentIndex() == 0 and maps_view.tile_rect(0) is not None


# --- filters -------------------------------------------------------------------------------
@pytest.fixture
def filters(filters_view):
    return filters_view


def test_hovering_a_kernel_reads_its_weights_per_input_channel(filters, qtbot) -> None:
    from models.classic import KERNELS, classic

    model = classic()
    weight = model.edges.weight.detach().numpy()
    filters.resize(1200, 700)
    filters.set_weights("edges", weight, names=list(KERNELS))
    _settle(qtbot)
    assert "3 Sobel x (dark→light)" in filters.canvas.labels_shown()
    canvas = filters.canvas
    top, left, _, _ = canvas.rects[3]
    s = canvas.scale
    _move(canvas.graphics, canvas.view.mapViewToScene(QPointF(left + 2.5 * s, top + 0.5 * s)))
    text = filters.readout.text()
    assert text.startswith("filter 3 “Sobel x (dark→light)” · tap (y 0, x 2)")
    for k, channel in enumerate("RGB"):
        assert f"{channel} {weight[3, k, 0, 2]:+.4g}" in text  # luma-weighted: +0.299, +0.587, ...
    panel = filters.weights.text()
    assert panel.count("<table") == 3 and f"{weight[3, 1, 1, 0]:+.3f}" in panel
    # one input channel: that channel's kernel of the filter, by the same hover
    filters.channel.setCurrentIndex(1 + 2)  # input B
    _settle(qtbot)
    top, left, _, _ = canvas.rects[5]
    _move(
        canvas.graphics,
        canvas.view.mapViewToScene(QPointF(left + 1.5 * canvas.scale, top + 2.5 * canvas.scale)),
    )
    assert filters.readout.text() == (
        f"filter 5 “Sobel y (dark→light)” · input channel 2 · tap (y 2, x 1) = {weight[5, 2, 2, 1]:+.4g}"
    )


def test_the_filter_matrix_hovers_each_kernel_and_marks_a_filters_row(filters, qtbot) -> None:
    weight = np.random.default_rng(3).standard_normal((6, 5, 3, 3)).astype(np.float32)
    filters.set_weights("conv", weight)
    filters.set_highlight(4)
    _settle(qtbot)
    canvas = filters.canvas
    assert canvas.columns() == 5 and len(canvas.rects) == 30
    tile = filters.tile_of(4, 3)
    f, c = filters._index[tile]
    assert (f, c) == (4, 3)
    filters._hover_tile(tile, 1, 2)
    assert filters.readout.text().endswith(f"input channel 3 · tap (y 1, x 2) = {weight[4, 3, 1, 2]:+.4g}")
    row = filters.marker.rect()  # the whole row of filter 4
    first, last = canvas.rects[20], canvas.rects[24]
    assert row.left() <= first[1] and row.right() >= last[1] + last[3]  # the whole row...
    assert (
        first[0] - canvas.gap <= row.top() < first[0]
        and first[0] + first[2] < row.bottom() <= first[0] + first[2] + canvas.gap
    )  # ...and only it


# --- the receptive-field plot --------------------------------------------------------------
class _Services:
    def __init__(self) -> None:
        self.selected: list[str] = []

    def select_layer(self, name: str) -> None:
        self.selected.append(name)


def test_the_rf_plot_reads_on_hover_and_steps_to_a_clicked_layer(classic, qtbot) -> None:
    from gui.rf_plot import ReceptiveFieldPlot

    services = _Services()
    plot = ReceptiveFieldPlot(services)
    qtbot.addWidget(plot)
    plot.resize(900, 500)
    plot.show()
    outcome = classic.outcome
    plot.show_state(Shown(outcome, outcome.result.layer("edges")))
    qtbot.wait(50)
    combine = outcome.result.index("combine")
    rf = outcome.result.layers[combine].receptive_field
    scene = plot.point_scene_pos(combine)
    _move(plot.plot, scene + QPointF(3, 40))  # near the point along x: that layer
    assert plot.hovered_layer() == "combine"
    assert f"combine (Conv2d) · field {rf.size[0]}×{rf.size[1]} px · jump {rf.jump[0]}" in plot.readout.text()
    with qtbot.waitSignal(plot.layer_clicked) as blocker:
        plot._click(scene)
    assert blocker.args == ["combine"] and services.selected == ["combine"]
    # the caption says it whole in a narrow pane (the tab at 1024x700 cut it on one line)
    plot.resize(430, 500)
    plot.set_current(combine)
    qtbot.wait(20)
    caption = plot.caption
    assert caption.text().endswith(f"neighbours are {rf.jump[0]} pixels apart")
    assert caption.lines_needed() >= 2  # independent of the label: a text document's layout
    assert caption.height() >= caption.lines_needed() * caption.fontMetrics().lineSpacing()


# --- the photo -----------------------------------------------------------------------------
def test_the_photo_zooms_and_the_box_and_heat_stay_on_the_same_pixels(classic, qtbot) -> None:
    panel = classic.input_panel
    classic.feature_maps.unit_hovered.emit(0, 100, 120, 1.0)
    box = panel.overlay_box()
    t, l, _, _ = box

    def box_in_photo_pixels():
        corner = panel.item.mapFromScene(panel.box_rect.mapToScene(panel.box_rect.rect().topLeft()))
        return corner.y(), corner.x()

    def box_on_screen():
        return panel.view.mapViewToDevice(QPointF(l, t))

    before_zoom, before_screen = panel.zoom(), box_on_screen()
    assert box_in_photo_pixels() == pytest.approx((t, l))
    panel.zoom_by(4)
    QApplication.instance().processEvents()
    assert panel.zoom() == pytest.approx(4 * before_zoom, rel=1e-3)
    assert box_in_photo_pixels() == pytest.approx((t, l))  # the same photo pixels
    assert panel.overlay_box() == box
    assert (box_on_screen() - before_screen).manhattanLength() > 1  # but it moved on screen
    # a field drawn while zoomed keeps the zoom, and its colour bar says its scale
    classic.feature_maps.unit_clicked.emit(0, 100, 120)
    qtbot.waitUntil(lambda: panel._heat is not None, timeout=60000)
    assert panel.zoom() == pytest.approx(4 * before_zoom, rel=1e-3)
    assert panel.heat_bar.isVisible()
    assert panel.heat_bar.value_range() == pytest.approx((0.0, render.heat_top(panel._heat)))
    assert panel.heat_bar.labels()[-1].startswith("≥ ")
    heat_rect = panel.heat_item.mapRectToItem(panel.item, panel.heat_item.boundingRect())
    assert (heat_rect.width(), heat_rect.height()) == (224, 224)  # on the model input's pixels
    panel.fit_photo()
    assert panel.zoom() == pytest.approx(before_zoom, rel=1e-3)
    qtbot.waitUntil(classic.idle, timeout=60000)


# --- the view protocol ---------------------------------------------------------------------
def test_the_views_draw_what_the_window_shows(classic, qtbot) -> None:
    from models.classic import COMBINED

    outcome = classic.outcome
    keys = {
        v.key: v.title for v in (classic.feature_maps, classic.filters, classic.rf_plot, classic.engine_panel)
    }
    assert keys == {
        "maps": "Feature maps",
        "filters": "Filters",
        "rf": "Receptive fields",
        "engines": "Engines",
    }
    # the window's own state: a channel picked in the maps is handed to every view in a Shown
    classic.select_layer("combine")
    classic.feature_maps.select_channel(2)
    assert classic.feature_maps.shown.layer.name == "combine"
    assert classic.feature_maps.shown.channel == 2 and isinstance(classic.filters.shown, Shown)

    def show(key: str) -> None:
        classic.show_view(key)

    show("maps")
    fm = classic.feature_maps
    assert fm.selected_channel() == 2 and fm.canvas.count() == 4
    assert f"2 {COMBINED[2]}" in fm.canvas.labels_shown()
    show("filters")
    assert "combine" in classic.filters.caption.text() and classic.filters.marker.isVisible()
    show("rf")
    assert classic.rf_plot.current.value() == outcome.result.index("combine")
    show("engines")
    panel = classic.engine_panel
    assert panel.table.currentRow() == len(panel._header_rows()) + 1  # then edges, combine
    assert panel.run_info("im2col")["runs"] == 1
    assert panel.table.horizontalHeaderItem(0).text() == "im2col\n(1 run)"  # labelled as such
    qtbot.waitUntil(lambda: "reference" in panel.engines_run(), timeout=30000)  # torch's, compared
    assert panel.table.horizontalHeaderItem(1).text() == "reference\n(best of 2)"


# --- the Engines tab -----------------------------------------------------------------------
@pytest.fixture
def engines(classic):
    """The classic window's Engines tab, its timing lane ended after the test (the window the
    lead merges lists a view's lanes among its own)."""
    yield classic.engine_panel
    classic.engine_panel.lane.cancel()
    assert classic.engine_panel.lane.wait(30000)
    classic.engine_panel.lane.shutdown()


def test_time_all_engines_shows_medians_algorithms_and_a_chart(classic, engines, qtbot) -> None:
    panel = engines
    outcome = classic.outcome
    panel.show_state(Shown(outcome, outcome.result.layer("edges")))
    classic.show_view("engines")
    assert panel.time_all(engines=["im2col", "reference"], runs=2)
    assert panel.progress.isVisible() and panel.cancel_button.isVisible()
    qtbot.waitUntil(lambda: not panel.lane.busy, timeout=120000)
    assert not panel.progress.isVisible() and panel.time_button.isEnabled()
    assert "median of 2" in panel.status.text()
    im2col = panel.run_info("im2col")
    assert im2col["runs"] == 2 and im2col["diff"] < 1e-4
    headers = [panel.table.horizontalHeaderItem(c).text() for c in range(panel.table.columnCount())]
    assert "im2col\n(median of 2)" in headers and "reference\n(median of 2)" in headers
    assert panel.cell_text("im2col", "edges") == f"{im2col['times']['edges']:.2f} · im2col+gemm"
    assert panel.chart_heights("im2col") == pytest.approx(
        [im2col["times"]["edges"], im2col["times"]["combine"]]
    )
    # a later single run of the same engine does not replace its median
    panel.add_run("im2col", {"edges": 123.0, "combine": 1.0}, 5.0, None)
    assert panel.run_info("im2col")["runs"] == 2


def test_timing_can_be_cancelled(classic, engines, qtbot) -> None:
    panel = engines
    outcome = classic.outcome
    panel.show_state(Shown(outcome, outcome.result.layer("edges")))
    panel.time_all(engines=["direct", "fft", "im2col"], runs=50)
    qtbot.waitUntil(lambda: panel.progress.value() >= 1, timeout=60000)
    panel.cancel_button.click()
    qtbot.waitUntil(lambda: not panel.lane.busy, timeout=60000)
    assert panel.status.text() == "timing cancelled"
    assert panel.time_button.isEnabled() and not panel.cancel_button.isVisible()
    assert panel.run_info("im2col")["runs"] == 1  # what was there stays


def test_the_readout_of_a_layer_left_behind_is_cleared(maps_view) -> None:
    maps_view.set_maps("avgpool", np.arange(8, dtype=np.float32).reshape(8, 1, 1))
    assert "avgpool has no spatial extent" in maps_view.readout.text()
    maps_view.set_maps("conv", np.ones((4, 8, 8), np.float32))
    assert maps_view.readout.text() == "hover a map to read its values"
