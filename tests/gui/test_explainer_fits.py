"""The explainer fits its pane with numbers readable at 100% zoom (#15.3), shows the engine's own
values in the cells it draws, and is a View itself: drawn lazily, exported as a PNG (#14.2)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from engine import pad_input
from gui.view import Shown
from models.explain.drawing import numbers_fit
from models.layers import conv_bias, layer_weights
from tests.gui.conftest import wait_run

SIZES = [(1024, 700), (1600, 1000), (2560, 1440)]


@pytest.mark.parametrize("size", SIZES)
def test_a_real_112x112_layer_shows_readable_numbers_inside_the_pane(classic, qtbot, size):
    win = classic
    win.resize(*size)
    win.navigator.set_index(3)  # combine: 9×112×112 → 4×112×112, 3×3 kernels
    win.show_view("explain")
    explainer = win.view("explain")
    wait_run(qtbot, win)
    frame = explainer.frame()
    assert frame is not None and explainer.current_unit() is not None
    # numbers in the cells, at 11 px or more, in cells large enough for every one of them
    assert frame.numbers and frame.number_px >= 11 and frame.cell >= 24
    assert all(
        numbers_fit(g.values, frame.cell, integral=False)
        for g in frame.grids
        if not g.name.startswith("output")
    )
    # the frame fits the pane: nothing clipped, nothing to scroll
    h, w = frame.image.shape[:2]
    pane = explainer.view_scroll.viewport().size()
    assert w <= pane.width() and h <= pane.height()
    assert explainer.view_scroll.horizontalScrollBar().maximum() == 0
    assert explainer.view_scroll.verticalScrollBar().maximum() == 0
    assert explainer.width() <= win.tabs.width()  # the tab is not wider than its place
    if size == (1600, 1000):  # the pane of the brief: a crop with a cell of context, the maps
        assert frame.crop[2] >= 5 and frame.crop[3] >= 5

    # the cells hold the layer's own numbers: its input, its kernel, the engine's output
    result, model = win.outcome.result, win.outcome.model
    x = result.conv_inputs["combine"]
    conv = win.current_layer().conv
    weight = layer_weights(model, "combine")
    filt, y, xx = explainer.current_unit()
    padded = pad_input(x[None], conv.pad, conv.padding_mode)[0]
    fm = result.activations["combine"]
    for grid in frame.grids:
        gh, gw = grid.values.shape
        r0, c0 = grid.origin
        if grid.name.startswith("input channel"):
            channel = int(grid.name.split()[2])
            np.testing.assert_allclose(grid.values, padded[channel, r0 : r0 + gh, c0 : c0 + gw], atol=1e-6)
        elif grid.name.startswith("kernel"):
            channel = int(grid.name.rsplit(" ", 1)[1])
            np.testing.assert_allclose(grid.values, weight[filt, channel], atol=1e-6)
        elif grid.name.startswith("output"):
            shown = ~grid.missing
            assert shown[y - r0, xx - c0]  # the unit explained is among them
            np.testing.assert_allclose(
                grid.values[shown], fm[filt, r0 : r0 + gh, c0 : c0 + gw][shown], atol=1e-4
            )
    assert explainer.current_value() == pytest.approx(float(fm[filt, y, xx]), abs=1e-4)
    bias = conv_bias(model, "combine")
    assert bias is None or np.isfinite(bias).all()


def test_a_narrow_explainer_gives_the_frame_the_room_and_the_sandbox_its_settings(explainer_view, qtbot):
    view = explainer_view
    assert view.side.isVisible() and view.side_button.isChecked()
    view.resize(480, 600)
    qtbot.waitUntil(lambda: not view.side.isVisible(), timeout=2000)  # "This layer": the frame
    assert view.modes.isVisible()  # the modes stay reachable
    view.set_mode("sandbox")
    assert view.side.isVisible() and view.sandbox_panel.isVisible()  # the settings are needed
    view.side_button.click()  # the user's choice holds
    assert not view.side.isVisible()
    view.resize(1300, 800)
    qtbot.waitUntil(view.side.isVisible, timeout=2000)


def test_the_explainer_is_a_view_drawn_only_when_shown_and_exported_as_png(qtbot, tmp_path):
    from gui.explainer import ExplainerView
    from models.images import prepare_image, sample_images
    from models.runner import run_model
    from models.sources import load_model

    model = load_model("classic")
    result = run_model(model, prepare_image(sample_images()["chelsea"], model.preprocess), "im2col")

    class Outcome:  # what the window's outcome carries for a view
        pass

    outcome = Outcome()
    outcome.model, outcome.result = model, result
    view = ExplainerView()
    qtbot.addWidget(view)
    view.resize(1000, 700)
    drawn = []
    view.draw = lambda shown, draw=view.draw: (drawn.append(shown), draw(shown))
    shown = Shown(outcome, result.layers[3], channel=1, unit=(40, 50))
    view.show_state(shown)  # hidden: kept, not drawn
    assert drawn == [] and view.frame() is None
    view.show()
    qtbot.waitUntil(lambda: view.frame() is not None and not view.busy(), timeout=10000)
    assert drawn == [shown] and view.current_unit() == (1, 40, 50)
    view.show_state(shown)  # the same state again: not drawn twice
    assert drawn == [shown]
    path = view.export_png(tmp_path / "explainer.png")
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == (view.width(), view.height())
    view.pause()
    for lane in view.workers():
        lane.cancel()
        assert lane.wait(10000)
        lane.shutdown()
