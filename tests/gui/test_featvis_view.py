"""The "What excites it" view: its live preview, its final image against featvis.visualize's
for the same seed, Cancel (stops within a step, the view keeps working), results kept per
layer and never shown for another layer or model, the 16-channel grid, export, and the tab
in the real window."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from gui.view import Shown
from gui.views.common import qimage_to_rgb
from models import featvis
from models.images import prepare_image, sample_images
from models.runner import run_model
from models.sources import load_catalog
from models.sources.catalog import with_input_size

SIZE = (40, 40)


def _outcome(model):
    image = prepare_image(sample_images()["chelsea"], model.preprocess)
    return SimpleNamespace(model=model, image=image, result=run_model(model, image, "im2col"))


@pytest.fixture(scope="module")
def classic():
    """The classic model, small inputs (fast steps), with its outcome on the sample photo."""
    return _outcome(with_input_size(load_catalog("classic"), SIZE))


def _layer(outcome, name):
    return next(la for la in outcome.result.layers if la.name == name)


@pytest.fixture
def view(qtbot):
    from gui.views.featvis import FeatureVisView

    v = FeatureVisView()
    qtbot.addWidget(v)
    v.resize(700, 600)
    v.show()
    yield v
    for lane in v.workers():
        lane.cancel()
        assert lane.wait(10000)
        lane.shutdown()  # its thread ends: no thread outlives the test


def _idle(qtbot, view, timeout=60000):
    qtbot.waitUntil(lambda: not view.lane.busy, timeout=timeout)


def test_preview_updates_during_the_run_and_the_result_is_visualize_s_for_the_seed(
    qtbot, view, classic
) -> None:
    view.steps.setValue(48)
    view.seed.setValue(3)
    previews = []
    view.lane.progress.connect(
        lambda done, total: previews.append(
            (done, view.pane.image().cacheKey() if view.pane.image() is not None else None)
        )
    )
    view.show_state(Shown(classic, _layer(classic, "combine"), channel=1))
    assert view.lane.busy and view.visualization() is None  # off the GUI thread
    _idle(qtbot, view)
    shown_images = {key for _, key in previews if key is not None}
    assert len(shown_images) >= 4  # a preview every 8 steps, each drawn while the run went on
    assert previews[-1][0] == 48
    expected = featvis.visualize(classic.model, "combine", 1, steps=48, seed=3)
    np.testing.assert_array_equal(view.image(), expected.image)
    np.testing.assert_array_equal(qimage_to_rgb(view.pane.image()), expected.image)  # drawn
    assert view.visualization().activations[0] == pytest.approx(float(expected.activations[0]))
    assert "torch's autograd" in view.note.text() and "forward passes only" in view.note.text()
    assert "channel 1 of combine" in view.status.text()


def test_cancel_stops_within_a_step_and_the_view_keeps_working(qtbot, view, classic, monkeypatch) -> None:
    after_cancel = []
    real = featvis.visualize

    def counting(*args, progress=None, cancel=None, **kwargs):
        def report(step, total, preview):
            if cancel():
                after_cancel.append(step)  # a step reported after Cancel was pressed
            progress(step, total, preview)

        return real(*args, progress=report, cancel=cancel, **kwargs)

    monkeypatch.setattr(featvis, "visualize", counting)
    view.steps.setValue(4096)
    cancelled = []
    view.lane.cancelled.connect(lambda: cancelled.append(True))
    view.lane.abandoned.connect(lambda: cancelled.append("abandoned"))
    view.show_state(Shown(classic, _layer(classic, "combine"), channel=0))
    qtbot.waitUntil(lambda: view.progress.bar.value() >= 3, timeout=30000)
    assert view.progress.isVisible()
    view.progress.button.click()
    _idle(qtbot, view)
    assert cancelled == [True]  # it stopped by itself, not interrupted nor left behind
    assert len(after_cancel) <= 1
    assert "cancelled" in view.status.text() and not view.progress.isVisible()
    assert view.visualization() is None
    view.steps.setValue(16)  # the app keeps working: the next request runs to its end
    _idle(qtbot, view)
    np.testing.assert_array_equal(view.image(), real(classic.model, "combine", 0, steps=16).image)


def test_results_are_kept_per_layer_and_never_shown_for_another_layer_or_model(qtbot, view, classic) -> None:
    view.steps.setValue(2000)
    view.show_state(Shown(classic, _layer(classic, "combine"), channel=0))
    qtbot.waitUntil(lambda: view.progress.bar.value() >= 2, timeout=30000)
    view.steps.blockSignals(True)
    view.steps.setValue(24)
    view.steps.blockSignals(False)
    view.show_state(Shown(classic, _layer(classic, "edges"), channel=2))  # stepped on mid-run
    _idle(qtbot, view)
    vis = view.visualization()
    assert (vis.layer, vis.channels, vis.steps) == ("edges", [2], 24)  # not combine's
    view.show_state(Shown(classic, _layer(classic, "combine"), channel=0))
    _idle(qtbot, view)
    combine = view.visualization()
    assert combine.layer == "combine"
    # stepping back shows the kept result at once: no job
    view.show_state(Shown(classic, _layer(classic, "edges"), channel=2))
    assert view.visualization() is vis and not view.lane.busy

    # another model (other weights) with the same layer names: nothing kept is shown for it
    other = with_input_size(load_catalog("classic"), SIZE)
    with torch.no_grad():
        other.module.edges.weight.mul_(-1)
    second = _outcome(other)
    view.show_state(Shown(second, _layer(second, "edges"), channel=2))
    assert view.visualization() is None and view.lane.busy
    _idle(qtbot, view)
    np.testing.assert_array_equal(view.image(), featvis.visualize(other, "edges", 2, steps=24).image)
    assert not np.array_equal(view.image(), vis.image)
    # back to the first model: what was kept for it went with the model change, so it runs again
    view.seed.setValue(5)
    view.show_state(Shown(classic, _layer(classic, "edges"), channel=2))
    _idle(qtbot, view)
    assert view.visualization().seed == 5
    np.testing.assert_array_equal(
        view.image(), featvis.visualize(classic.model, "edges", 2, steps=24, seed=5).image
    )


def test_the_grid_is_the_layers_first_channels_in_one_batch_and_exports(
    qtbot, view, classic, tmp_path
) -> None:
    view.steps.setValue(16)
    view.show_state(Shown(classic, _layer(classic, "edges"), channel=0))
    _idle(qtbot, view)
    view.grid_button.click()
    _idle(qtbot, view)
    vis = view.visualization()
    expected = featvis.visualize_channels(classic.model, "edges", 16, steps=16)
    assert vis.channels == list(range(9))  # edges has 9 channels
    np.testing.assert_array_equal(view.image(), expected.mosaic())
    path = view.export_png(tmp_path / "grid.png")
    from PIL import Image

    np.testing.assert_array_equal(np.asarray(Image.open(path).convert("RGB")), expected.mosaic())
    view.one_button.click()  # back to one channel: kept, shown at once
    assert view.visualization().channels == [0] and not view.lane.busy


def test_a_click_on_a_tile_of_the_grid_shows_that_channel_alone(qtbot, view, classic) -> None:
    from PySide6.QtCore import QPoint, Qt

    from models import render

    view.steps.setValue(16)
    view.show_state(Shown(classic, _layer(classic, "edges"), channel=0))
    _idle(qtbot, view)
    view.grid_button.click()
    _idle(qtbot, view)
    vis = view.visualization()
    top, left, h, w = render.mosaic(vis.images, gap=2)[1][5]  # channel 5's tile
    rect = view.pane.target()
    scale = rect.width() / view.image().shape[1]
    point = QPoint(int(rect.x() + (left + w / 2) * scale), int(rect.y() + (top + h / 2) * scale))
    qtbot.mouseClick(view.pane, Qt.MouseButton.LeftButton, pos=point)
    _idle(qtbot, view)
    assert view.channel.value() == 5 and view.visualization().channels == [5]
    np.testing.assert_array_equal(view.image(), featvis.visualize(classic.model, "edges", 5, steps=16).image)
    qtbot.mouseClick(view.pane, Qt.MouseButton.LeftButton, pos=point)  # one image: nothing
    assert view.visualization().channels == [5] and not view.lane.busy


def test_steps_and_seed_are_remembered_in_the_window_s_settings(qtbot, tmp_path) -> None:
    from PySide6.QtCore import QSettings

    from gui.views.featvis import FeatureVisView

    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    window = SimpleNamespace(settings=settings)
    first = FeatureVisView(window)
    qtbot.addWidget(first)
    assert (first.steps.value(), first.seed.value()) == (256, 0)  # the defaults
    first.steps.setValue(96)
    first.seed.setValue(7)
    again = FeatureVisView(window)  # the next start
    qtbot.addWidget(again)
    assert (again.steps.value(), again.seed.value()) == (96, 7)
    settings.setValue("featvis/steps", "junk")  # a damaged file: the default, no crash
    damaged = FeatureVisView(window)
    qtbot.addWidget(damaged)
    assert damaged.steps.value() == 256
    for v in (first, again, damaged):
        for lane in v.workers():
            lane.shutdown()


def test_the_unit_toggle_visualizes_the_clicked_unit(qtbot, view, classic) -> None:
    view.steps.setValue(16)
    layer = _layer(classic, "combine")
    view.show_state(Shown(classic, layer, channel=0))
    assert not view.unit.isEnabled()
    view.show_state(Shown(classic, layer, channel=0, unit=(3, 4)))
    assert view.unit.isEnabled() and "(3, 4)" in view.unit.text()
    view.unit.setChecked(True)
    _idle(qtbot, view)
    assert view.visualization().unit == (3, 4)
    np.testing.assert_array_equal(
        view.image(), featvis.visualize(classic.model, "combine", 0, unit=(3, 4), steps=16).image
    )


def test_a_layer_without_channels_says_so(qtbot, view, classic) -> None:
    from dataclasses import replace

    odd = replace(_layer(classic, "combine"), output_shape=(1, 2, 3, 4, 5), grid_axes=None)
    view.show_state(Shown(classic, odd))
    assert "no channels to visualize" in view.pane._text and not view.lane.busy
    assert not view.one_button.isEnabled()
    with pytest.raises(OSError):
        view.export_png("nothing.png")


def test_the_tab_in_the_window_visualizes_the_selected_layer(qtbot, classic_window) -> None:
    from tests.gui.conftest import wait_run

    win = classic_window
    view = win.view("featvis")
    view.steps.setValue(8)
    win.show_view("featvis")
    assert win.current_view() == "featvis"
    wait_run(qtbot, win)  # the window waits for the view's lane too
    vis = view.visualization()
    assert vis is not None and vis.layer == win.current_layer().name
    assert vis.channels == [win.feature_maps.selected_channel()]
    win.navigator.step(1)  # the next layer is drawn (the tab is shown)
    wait_run(qtbot, win)
    assert view.visualization().layer == win.current_layer().name


@pytest.fixture
def classic_window(window, qtbot):
    from tests.gui.conftest import wait_run

    window.start(model="classic", engine="im2col")
    wait_run(qtbot, window)
    assert window.outcome is not None, window.last_error
    return window


def test_a_run_on_the_window_s_lane_during_a_visualization_changes_neither(qtbot, classic_window) -> None:
    """The window runs the same model on its engine while the view runs it on torch with
    autograd, on two threads: the capture's hooks and the swapped convolutions answer only
    their own thread."""
    from tests.gui.conftest import wait_run

    win = classic_window
    view = win.view("featvis")
    view.steps.setValue(40)
    win.show_view("featvis")
    qtbot.waitUntil(lambda: view.progress.bar.value() >= 2, timeout=30000)
    model, layer, channel = win.outcome.model, win.current_layer().name, view.channel.value()
    before = win.outcome.result.maps(layer).copy()
    win.set_engine("direct")  # a run on the window's lane, on the same model
    wait_run(qtbot, win)
    assert win.outcome.model is model and win.outcome.request.engine == "direct"
    np.testing.assert_allclose(win.outcome.result.maps(layer), before, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(view.image(), featvis.visualize(model, layer, channel, steps=40).image)


def test_hiding_the_tab_stops_its_work_and_showing_it_starts_again(qtbot, view, classic) -> None:
    view.steps.setValue(24)
    view.show_state(Shown(classic, _layer(classic, "combine"), channel=0))
    qtbot.waitUntil(lambda: view.progress.bar.value() >= 1, timeout=30000)
    view.hide()  # another tab in front: a hidden tab costs nothing
    _idle(qtbot, view)
    assert view.visualization() is None
    view.show()
    assert view.lane.busy
    _idle(qtbot, view)
    np.testing.assert_array_equal(
        view.image(), featvis.visualize(classic.model, "combine", 0, steps=24).image
    )
