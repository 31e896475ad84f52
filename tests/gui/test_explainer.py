"""The explainer widget: traced values equal the feature map, the sandbox follows its controls,
the player plays, the export writes a GIF."""

from __future__ import annotations

import re

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QSize

from engine import get_engine, make_spec
from models.explain import Sandbox, output_size


@pytest.fixture
def view(explainer_view):
    return explainer_view  # tests/gui/conftest.py


def _layer(groups=1, dilation=1, padding_mode="zeros", seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((6, 15, 13)).astype(np.float32)
    w = rng.standard_normal((4, 6 // groups, 3, 3)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    conv = make_spec(
        (1, *x.shape),
        w.shape,
        b.shape,
        stride=(2, 2),
        padding=(1, 1),
        dilation=(dilation, dilation),
        groups=groups,
        padding_mode=padding_mode,
    )
    fm = get_engine("im2col").conv2d(
        x[None], w, b, stride=2, padding=1, dilation=dilation, groups=groups, padding_mode=padding_mode
    )[0]
    return w, b, x, conv, fm


@pytest.mark.parametrize("groups,dilation,mode", [(1, 1, "zeros"), (2, 2, "reflect"), (1, 1, "circular")])
def test_unit_value_equals_the_feature_map(view, qtbot, groups, dilation, mode):
    w, b, x, conv, fm = _layer(groups, dilation, mode)
    view.set_context(w, b, x, conv, fm, "block.conv")
    assert view.mode() == "layer"
    for unit in [(3, 0, 0), (1, fm.shape[1] - 1, fm.shape[2] - 1), (2, 3, 4)]:
        with qtbot.waitSignal(view.unit_changed) as signal:
            view.set_unit(*unit)
        assert signal.args == list(unit)
        assert view.current_unit() == unit
        assert view.current_value() == pytest.approx(float(fm[unit]), abs=1e-4)
        assert view.engine_value() == pytest.approx(float(fm[unit]))
        assert f"{fm[unit]:.5g}" in view.value_label.text() and "✓ equal" in view.value_label.text()
    frame = view.render_image()
    assert frame is not None and frame.ndim == 3 and frame.shape[0] > 300
    assert "block.conv" in view.layer_label.text()
    assert "4 filters" in view.layer_label.text()
    assert "parameters in this convolution" in view.why.text()


def test_feature_map_that_differs_is_shown_as_differing(view):
    w, b, x, conv, fm = _layer()
    view.set_context(w, b, x, conv, fm + 1.0, "wrong")
    view.set_unit(0, 1, 1)
    assert "✗ differs" in view.value_label.text()


def test_sandbox_controls_change_formula_and_output(view):
    view.set_sandbox(Sandbox(size=7, kernel_size=3, stride=1, padding=0))
    assert view.mode() == "sandbox"
    settings = [(7, 3, 2, 1, 1), (9, 5, 1, 2, 1), (5, 3, 3, 0, 1), (8, 3, 2, 1, 2), (6, 1, 1, 0, 1)]
    for size, k, s, p, d in settings:
        view.size_spin.setValue(size)
        view.kernel_spin.setValue(k)
        view.stride_spin.setValue(s)
        view.padding_spin.setValue(p)
        view.dilation_spin.setValue(d)
        n = output_size(size, k, s, p, d)
        box = view.sandbox()
        assert (box.size, box.kernel_size, box.stride, box.padding, box.dilation) == (size, k, s, p, d)
        label = view.formula_label.text()
        assert f"⌊({size} + 2·{p} − {d}·({k}−1) − 1)/{s}⌋ + 1 = {n}" in label
        assert re.search(rf"output: \d+×{n}×{n}", label)
        assert view.step_count() == n * n
        out = box.compute("reference")
        assert out.shape[1:] == (n, n)
        assert view.engine_value() == pytest.approx(float(out[view.current_unit()]), abs=1e-4)
        assert view.current_value() == pytest.approx(view.engine_value(), abs=1e-4)
    view.padding_mode_combo.setCurrentText("replicate")
    assert view.sandbox().padding_mode == "replicate"
    # a kernel that does not fit: no output, said in the formula label, nothing to play
    view.set_sandbox(Sandbox(size=5, kernel_size=5, dilation=2, padding=0))
    assert "no output" in view.formula_label.text() and view.step_count() == 0
    view.play()
    assert not view.is_playing()
    assert view.render_image() is None


def test_editing_the_input_table_recomputes(view):
    view.set_sandbox(Sandbox(size=5, kernel_size=3, padding=0, seed=2))
    box = view.sandbox()
    before, old, weight = box.compute()[0, 0, 0], box.input[0, 0, 0], box.weight[0, 0, 0, 0]
    view.input_table.item(0, 0).setText("100")
    assert view.sandbox().input[0, 0, 0] == 100
    after = view.sandbox().compute()[0, 0, 0]
    assert after - before == pytest.approx(weight * (100 - old))
    view.go_to(0)
    assert view.current_value() == pytest.approx(float(after))
    view.kernel_table.item(1, 1).setText("3")
    assert view.sandbox().weight[0, 0, 1, 1] == 3
    view.input_table.item(1, 1).setText("not a number")
    assert "not a number" in view.status.text()
    assert view.input_table.item(1, 1).text() == f"{view.sandbox().input[0, 1, 1]:g}"


def test_play_advances_and_filters_fill_output_channels(view, qtbot):
    view.set_sandbox(Sandbox(size=5, kernel_size=3, padding=1, out_channels=3))
    view.set_speed("8×")
    assert view.timer.interval() == 100
    start = view.step_index()
    view.play()
    assert view.is_playing()
    qtbot.waitUntil(lambda: view.step_index() >= start + 2, timeout=3000)
    view.pause()
    assert not view.is_playing()
    view.step(1)
    view.step(-1)
    view.go_to(24)
    view.step(1)  # wraps round
    assert view.step_index() == 0
    view.next_filter()
    assert view.current_unit() == (1, 0, 0) and view.filter_spin.value() == 1
    assert view.current_value() == pytest.approx(float(view.sandbox().compute()[1, 0, 0]))


def test_export_writes_one_frame_per_step(view, tmp_path):
    w, b, x, conv, fm = _layer()
    view.set_context(w, b, x, conv, fm, "block.conv")
    view.set_unit(1, 2, 3)
    path = tmp_path / "layer.gif"
    n = view.export_gif(path)
    assert fm.shape[1:] == (8, 7)  # 56 positions > 49: the block around the unit, 7 rows x 7 columns
    assert n == view.step_count() == 49
    with Image.open(path) as gif:
        assert gif.n_frames == n
    view.set_sandbox(Sandbox(size=5, padding=0))
    assert view.export_gif(tmp_path / "sandbox.gif") == 9


def test_set_layer_on_the_classic_model(view, qtbot):
    from models.images import prepare_image, sample_images
    from models.runner import run_model
    from models.sources import load_model

    model = load_model("classic")
    image = prepare_image(sample_images()["chelsea"], model.preprocess)
    result = run_model(model, image, "im2col")
    view.set_layer(model, result, "relu1")
    assert "not a convolution" in view.layer_label.text()
    view.hide()  # drawing waits until the view is shown
    view.set_layer(model, result, "edges")  # replicate padding, on the cat
    view.set_unit(4, 0, 0)
    assert view.current_value() is None and "loading" in view.layer_label.text()
    view.show()  # the frame is drawn off the GUI thread: the last one stays until it is ready
    qtbot.waitUntil(lambda: not view.loading(), timeout=5000)
    assert view.current_unit() == (4, 0, 0) and view.render_image() is not None
    fm = result.activations["edges"]
    assert view.current_value() == pytest.approx(float(fm[4, 0, 0]), abs=1e-4)
    assert "✓ equal" in view.value_label.text()


def test_a_frame_drawn_in_the_background_never_replaces_a_later_one(view, qtbot):
    from models.images import prepare_image, sample_images
    from models.runner import run_model
    from models.sources import load_model

    model = load_model("classic")
    result = run_model(model, prepare_image(sample_images()["chelsea"], model.preprocess), "im2col")
    view.show()
    view.set_layer(model, result, "combine")  # shown: its frame is drawn off the GUI thread
    assert view.loading() and view.current_unit() is None
    view.set_unit(1, 5, 5)  # the user clicks a unit before it is ready: drawn here, at once
    view.step(1)
    stepped = view.render_image()
    assert not view.loading() and view.current_unit() == (1, 5, 6)
    assert view.wait_frame(5000)
    qtbot.wait(50)  # the background frame's signal is delivered, and dropped
    assert view.render_image() is stepped


def test_a_frame_drawn_for_a_layer_left_behind_is_not_shown(view, qtbot):
    from models.images import prepare_image, sample_images
    from models.runner import run_model
    from models.sources import load_model

    model = load_model("classic")
    result = run_model(model, prepare_image(sample_images()["chelsea"], model.preprocess), "im2col")
    view.show()
    view.set_layer(model, result, "combine")
    assert view.loading()  # its frame is being drawn off the GUI thread
    view.set_layer(model, result, "relu2")  # the user steps on before it is ready
    assert view.wait_frame(5000)
    qtbot.wait(50)
    assert view.render_image() is None and not view.loading()
    assert "not a convolution" in view.layer_label.text()


def test_frames_are_shrunk_to_the_device_pixels_they_cover_never_blurred_up():
    from PySide6.QtCore import QRect

    from gui.explainer import fit, scaled_to, to_qimage

    image = to_qimage(np.random.default_rng(0).integers(0, 255, (800, 1000, 3), dtype=np.uint8))
    rect = fit(image.size(), QSize(500, 900))  # half the width: the whole frame, aspect kept
    assert rect == QRect(0, 0, 500, 400)
    assert scaled_to(image, rect).size() == QSize(500, 400)
    on_hidpi = scaled_to(image, rect, dpr=1.5)
    assert on_hidpi.size() == QSize(750, 600) and on_hidpi.devicePixelRatio() == 1.5
    assert scaled_to(image, rect, dpr=2.0) is image  # every pixel of the frame has a device pixel
    assert fit(image.size(), QSize(2000, 2000)) == QRect(500, 0, 1000, 800)  # never scaled up


def test_the_gif_export_runs_on_its_own_thread_with_progress_and_cancel(view, qtbot, tmp_path):
    w, b, x, conv, fm = _layer()
    view.set_context(w, b, x, conv, fm, "block.conv")
    view.set_unit(1, 2, 3)
    view.set_speed("8×")
    view.play()
    shown: list[int] = []
    view.gif_progress.valueChanged.connect(shown.append)
    view.start_gif_export(tmp_path / "layer.gif")
    assert view.exporting() and view.gif_cancel_button.isVisible()  # returned before it is done
    qtbot.waitUntil(lambda: not view.exporting(), timeout=30000)
    assert view.is_playing()  # the player played on
    view.pause()
    assert shown[-1] == 49 and view.status.text() == "saved 49 frames to layer.gif"
    with Image.open(tmp_path / "layer.gif") as gif:
        assert gif.n_frames == 49
    assert not view.gif_progress.isVisible() and not view.gif_cancel_button.isVisible()
    view.start_gif_export(tmp_path / "cancelled.gif")
    view.gif_cancel_button.click()
    qtbot.waitUntil(lambda: not view.exporting(), timeout=30000)
    assert view.status.text() == "GIF export cancelled"
    assert not (tmp_path / "cancelled.gif").exists()  # nothing half-written
    view.start_gif_export(tmp_path / "no such folder" / "x.gif")  # made, like the headless export
    qtbot.waitUntil(lambda: not view.exporting(), timeout=30000)
    assert (tmp_path / "no such folder" / "x.gif").exists()
    (tmp_path / "a file").write_text("")
    view.start_gif_export(tmp_path / "a file" / "x.gif")  # cannot be written: said, no crash
    qtbot.waitUntil(lambda: not view.exporting(), timeout=30000)
    assert view.status.text().startswith("could not export: cannot write")


def test_the_view_protocol_draws_a_shown_layer_and_unit(view, qtbot):
    from gui.view import Shown
    from models.images import prepare_image, sample_images
    from models.runner import run_model
    from models.sources import load_model

    assert (view.key, view.title) == ("explain", "Explain")
    model = load_model("classic")
    result = run_model(model, prepare_image(sample_images()["chelsea"], model.preprocess), "im2col")

    class Outcome:  # what the window's outcome carries for a view
        pass

    outcome = Outcome()
    outcome.model, outcome.result = model, result
    layer = result.layers[0]
    view.show_state(Shown(outcome, layer, channel=3, unit=(2, 5)))
    qtbot.waitUntil(lambda: not view.loading(), timeout=5000)
    assert view.current_unit() == (3, 2, 5)
    assert view.current_value() == pytest.approx(float(result.activations[layer.name][3, 2, 5]), abs=1e-4)
    view.show_state(Shown(outcome, result.layers[1]))  # not a convolution
    assert "not a convolution" in view.layer_label.text() and view.render_image() is None


def test_player_icons_kernel_nine_and_scroll_kept_per_mode(view, qtbot):
    assert not view.play_button.icon().isNull() and "▶" not in view.play_button.text()
    view.set_sandbox(Sandbox(size=9, kernel_size=3))
    view.kernel_spin.setValue(9)  # the user types 9: kept, not reverted
    assert view.kernel_spin.value() == 9 and view.sandbox().kernel_size == 9
    assert view.step_count() == 1 and "1–9" in view.kernel_spin.toolTip()
    view.size_spin.setValue(5)  # the kernel no longer fits: said, and still 9
    assert view.sandbox().kernel_size == 9 and "no output" in view.formula_label.text()
    w, b, x, conv, fm = _layer()
    view.set_context(w, b, x, conv, fm, "block.conv")
    view.resize(700, 330)  # small: the frame scrolls
    qtbot.wait(300)  # the frame is laid out again for the smaller pane
    bar = view.view_scroll.verticalScrollBar()
    assert bar.maximum() > 0
    bar.setValue(bar.maximum())
    kept = bar.value()
    view.set_mode("sandbox")
    bar.setValue(0)  # the sandbox scrolled elsewhere
    view.set_mode("layer")
    qtbot.wait(50)
    assert bar.value() == kept  # the layer's place, not the sandbox's
    view.set_mode("sandbox")
    qtbot.wait(50)
    assert bar.value() == 0


def test_hovering_a_cell_reads_its_value(view):
    view.set_sandbox(Sandbox(size=6, padding=1, seed=3))
    frame = view.frame()
    kernel = next(g for g in frame.grids if g.name.startswith("kernel"))
    image_w = frame.image.shape[1]
    from gui.explainer import fit

    rect = fit(view.view._image.size(), view.view.size())
    scale = rect.width() / image_w
    x = rect.x() + (kernel.left + 2.5 * kernel.cell) * scale
    y = rect.y() + (kernel.top + 1.5 * kernel.cell) * scale
    expected = float(view.sandbox().weight[0, 0, 1, 2])
    assert view.view.value_at(x, y) == f"kernel, channel 0 [1, 2] = {expected:.5g}"
    assert view.view.value_at(1, 1) is None
