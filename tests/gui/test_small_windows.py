"""At 1024x700 nothing is hidden or covered: every tab in sight (titles shortened, full names on
the tooltips), the bar chart's names over the plot, never on a bar (#15.4)."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtWidgets import QApplication


@pytest.mark.parametrize(("size", "short"), [((1024, 700), True), ((2560, 1440), False)])
def test_every_tab_is_in_sight_at_any_width(window, qtbot, size, short) -> None:

    window.resize(*size)
    qtbot.wait(50)
    tabs, bar = window.tabs, window.tabs.tabBar()
    assert tabs.count() == 8
    for i in range(tabs.count()):  # whole, inside the bar: no scroll arrows, nothing behind them
        rect = bar.tabRect(i)
        assert rect.left() >= 0 and rect.right() < bar.width() and rect.width() >= bar.tabSizeHint(i).width()
        assert rect.right() < tabs.width()
    titles, views = tabs.titles(), window.views
    if short:  # shortened, not elided
        assert titles != [v.title for v in views]
        assert all(t in (v.title, v.short_title or v.title) for t, v in zip(titles, views, strict=True))
        assert "…" not in "".join(bar.tabText(i) for i in range(bar.count()))
    else:
        assert titles == [v.title for v in views]
    for i, view in enumerate(views):  # the full name on every tab's tooltip
        assert tabs.tabToolTip(i).startswith(view.title)
    window.resize(1024, 700)
    qtbot.wait(20)
    window.resize(*size)  # and back: the titles follow the width both ways
    qtbot.wait(20)
    assert tabs.titles() == titles


@pytest.mark.parametrize("width", [480, 1200])
def test_the_largest_bars_are_named_over_the_plot_not_on_it(qtbot, width) -> None:
    from gui.value_bars import ValueBars

    bars = ValueBars()
    qtbot.addWidget(bars)
    bars.resize(width, 520)
    bars.show()
    values = np.random.default_rng(1).standard_normal(1000).astype(np.float32)
    names = ["beagle", "diamondback", "Samoyed", "hair slide", "cloak <&>"]
    rank = {int(i): r for r, i in enumerate(np.argsort(-values)[:5])}
    top = bars.set_values(values, lambda i: names[rank[i]], "class")
    assert top == list(rank)
    QApplication.instance().processEvents()
    qtbot.wait(50)
    caption = bars.caption()
    text = " · ".join(caption)
    for rank, i in enumerate(top):  # every one named with its value
        assert f"{i} {names[rank]} = {values[i]:.3g}" in text
    assert caption[0].startswith("largest: ")
    plot = bars.getPlotItem()
    label, vb = plot.titleLabel, plot.getViewBox()
    shown = label.mapRectToScene(label.item.boundingRect())
    assert label.isVisible() and shown.bottom() <= vb.sceneBoundingRect().top() + 1  # above the bars
    assert shown.left() >= 0 and shown.right() <= bars.width()  # whole, not cut at the edges
    assert (len(caption) > 1) == (width < 700)  # wrapped in a narrow pane, one line in a wide one
    bars.clear_values()
    assert bars.caption() == [] and not label.isVisible()


@pytest.mark.parametrize("size", [(1024, 700), (1600, 1000), (2560, 1440)])
def test_the_sandbox_settings_fit_their_column(window, qtbot, size) -> None:
    from PySide6.QtWidgets import QAbstractSpinBox, QComboBox, QLabel, QPushButton

    window.resize(*size)
    window.show_view("explain")
    view = window.view("explain")
    view.set_mode("sandbox")
    qtbot.waitUntil(lambda: view.sandbox_panel.isVisible(), timeout=5000)
    qtbot.wait(200)  # the column's relayout
    panel = view.sandbox_panel
    area = panel.parentWidget().parentWidget()  # the column's scroll area
    viewport = panel.parentWidget()
    assert area.horizontalScrollBar().maximum() == 0  # nothing off to the side
    assert panel.width() <= viewport.width()
    controls = [
        *panel.findChildren(QAbstractSpinBox),
        *panel.findChildren(QComboBox),
        *panel.findChildren(QPushButton),
    ]
    assert len(controls) >= 10
    for w in controls:  # whole: inside the column, never narrower than they need (arrows, text)
        left = w.mapTo(viewport, w.rect().topLeft()).x()
        assert left >= 0 and left + w.width() <= viewport.width(), w
        assert w.width() >= w.minimumSizeHint().width(), w
    button = view.random_button
    assert button.width() >= button.fontMetrics().horizontalAdvance(button.text()) + 8  # not elided
    assert "random values" in button.toolTip()
    for label in panel.findChildren(QLabel):  # the formula and captions wrap inside the column
        if label.isVisible() and label.text():
            left = label.mapTo(viewport, label.rect().topLeft()).x()
            assert left + label.width() <= viewport.width(), label.text()
            assert label.height() >= label.heightForWidth(label.width()) - 1 or not label.wordWrap()


@pytest.mark.slow
def test_an_untrained_5x5_depthwise_layer_at_1024_keeps_its_digits(window, qtbot) -> None:
    from models.explain import drawing as d
    from tests.gui.conftest import wait_run

    window.resize(1024, 700)
    window.start(
        model="efficientnet_lite0",
        untrained=True,
        engine="im2col",
        input_size=(96, 96),
        layer="_blocks.3._depthwise_conv",  # 5x5 kernels, one channel per filter
    )
    wait_run(qtbot, window)
    assert window.outcome is not None, window.last_error
    window.show_view("explain")
    wait_run(qtbot, window)
    view = window.view("explain")
    frame = view.frame()
    assert frame is not None
    pane = view.view_scroll.viewport().size()
    assert frame.image.shape[1] <= pane.width() and frame.image.shape[0] <= pane.height()
    grids = {g.name.split(",")[0].split()[0]: g for g in frame.grids}
    assert grids["kernel"].values.shape == (5, 5)
    for name in ("kernel", "products"):  # numbers at 11 px or more, with digits in them
        grid = grids[name]
        assert grid.numbers and d.number_font_size(grid.cell) >= 11
        texts = {grid.text(r, c) for r in range(5) for c in range(5)}
        assert texts - {"0.00", "-0.00"}
    assert grids["products"].exponent < 0  # an untrained layer's products: scaled, marked
    assert view.current_value() == pytest.approx(view.engine_value(), rel=1e-4, abs=1e-7)
