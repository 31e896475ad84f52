"""The "Class activation map" view: the map shown is models.cam.class_map's for the same
layer and class (and drawn as its overlay), the class picker and the method change it, a layer
that is not a convolution falls back to the last one, Score-CAM reports progress and cancels,
and a map for another model or photo is never shown."""

from __future__ import annotations

import time
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from gui.view import Shown
from gui.views.common import qimage_to_rgb
from models import cam
from models.images import Preprocess, prepare_image, sample_images
from models.runner import run_model
from models.sources import LoadedModel

PLAIN = Preprocess(size=(32, 32), resize=32, crop=True, mean=(0.5,) * 3, std=(0.25,) * 3)
NAMES = ["ant", "bee", "cat", "dog", "eel"]


def _net(seed: int = 0, width: int = 8) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, width, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(width, 5),
    ).eval()


def _outcome(net: nn.Module, photo: str = "chelsea"):
    model = LoadedModel("net", net, "catalog", PLAIN, NAMES, False)
    image = prepare_image(sample_images()[photo], model.preprocess)
    return SimpleNamespace(model=model, image=image, result=run_model(model, image, "im2col"))


@pytest.fixture(scope="module")
def net():
    return _outcome(_net())


def _layer(outcome, name):
    return next(la for la in outcome.result.layers if la.name == name)


@pytest.fixture
def view(qtbot):
    from gui.views.cam import CamView

    v = CamView()
    qtbot.addWidget(v)
    v.resize(900, 600)
    v.show()
    yield v
    for lane in v.workers():
        lane.cancel()
        assert lane.wait(10000)
        lane.shutdown()


def _idle(qtbot, view, timeout=60000):
    qtbot.waitUntil(lambda: not view.lane.busy, timeout=timeout)


def test_the_map_shown_is_class_map_s_heat_for_the_layer_and_the_top_class(qtbot, view, net) -> None:
    view.show_state(Shown(net, _layer(net, "2")))
    _idle(qtbot, view)
    shown = view.class_map()
    top = int(np.argmax(net.result.logits))
    expected = cam.class_map(net.model, net.image, "2", top, "gradcam")
    assert (shown.layer, shown.class_index, shown.method) == ("2", top, "Grad-CAM")
    np.testing.assert_allclose(shown.heat, expected.heat, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(
        qimage_to_rgb(view.on_input.image()), cam.overlay(net.image.model_view, shown.heat)
    )
    np.testing.assert_array_equal(qimage_to_rgb(view.on_photo.image()), cam.on_original(shown, net.image))
    assert view.classes.count() == 5 and view.classes.currentData() == top  # best first
    assert NAMES[top] in view.classes.currentText() and NAMES[top] in view.status.text()
    assert "torch's autograd" in view.note.text()


def test_the_class_picker_and_the_method_change_the_map(qtbot, view, net) -> None:
    view.show_state(Shown(net, _layer(net, "2")))
    _idle(qtbot, view)
    first = view.class_map()
    other = int(np.argsort(net.result.logits.reshape(-1))[0])  # the least likely class
    assert view.choose_class(other)
    _idle(qtbot, view)
    picked = view.class_map()
    assert picked.class_index == other
    np.testing.assert_allclose(
        picked.heat, cam.class_map(net.model, net.image, "2", other).heat, rtol=1e-5, atol=1e-6
    )
    assert not np.allclose(picked.heat, first.heat)
    view.choose_method("gradcam++")
    _idle(qtbot, view)
    plus = view.class_map()
    assert (plus.method, plus.class_index) == ("Grad-CAM++", other)
    np.testing.assert_allclose(
        plus.heat, cam.class_map(net.model, net.image, "2", other, "gradcam++").heat, rtol=1e-5, atol=1e-6
    )
    view.choose_method("gradcam")  # kept: shown at once
    assert view.class_map() is picked and not view.lane.busy


def test_the_layer_is_the_last_conv_by_default_or_the_selected_one_or_one_picked(qtbot, view, net) -> None:
    view.show_state(Shown(net, _layer(net, "0")))  # a fresh start: the first conv is selected
    _idle(qtbot, view)
    assert view.layer_choice() == "last"
    assert view.class_map().layer == cam.default_layer(net.model, net.image.tensor) == "2"
    assert view.where.text() == "Grad-CAM at 2 (the last convolution)"
    assert [view.layer_box.itemText(i) for i in range(view.layer_box.count())] == [
        "last conv (2)",
        "follow the selected layer",
        "0",
        "2",
    ]
    assert view.choose_layer("selected")
    _idle(qtbot, view)
    assert view.class_map().layer == "0" and view.where.text() == "Grad-CAM at 0 (the selected layer)"
    np.testing.assert_allclose(
        view.class_map().heat, cam.class_map(net.model, net.image, "0").heat, rtol=1e-5, atol=1e-6
    )
    view.show_state(Shown(net, _layer(net, "1")))  # a ReLU: following it, the last conv
    _idle(qtbot, view)
    assert view.class_map().layer == "2" and "1 is not a convolution" in view.where.text()
    assert view.choose_layer("0")  # a layer picked stays, whatever is selected
    view.show_state(Shown(net, _layer(net, "2")))
    _idle(qtbot, view)
    assert view.class_map().layer == "0" and "picked under Layer" in view.where.text()
    assert not view.choose_layer("1")  # not a convolution: not offered


def test_score_cam_reports_its_channels_and_cancels(qtbot, view, monkeypatch) -> None:
    wide = _outcome(_net(width=96))  # 96 channels: three batches of 32
    view.show_state(Shown(wide, _layer(wide, "2")))
    _idle(qtbot, view)
    seen = []
    view.lane.progress.connect(lambda done, total: seen.append((done, total)))
    view.choose_method("scorecam")
    assert view.progress.isVisible()
    _idle(qtbot, view)
    assert seen == [(32, 96), (64, 96), (96, 96)]
    np.testing.assert_allclose(
        view.class_map().heat,
        cam.class_map(wide.model, wide.image, "2", None, "scorecam").heat,
        rtol=1e-5,
        atol=1e-6,
    )

    real = cam.class_map

    def slow_class_map(*args, cancel=None, **kwargs):  # Score-CAM on a big model, until Cancel
        deadline = time.monotonic() + 10
        while not cancel() and time.monotonic() < deadline:
            time.sleep(0.005)
        return real(*args, cancel=cancel, **kwargs)  # raises Cancelled at its first check

    monkeypatch.setattr(cam, "class_map", slow_class_map)
    cancelled = []
    view.lane.cancelled.connect(lambda: cancelled.append(True))
    view.choose_class(int(np.argsort(wide.result.logits.reshape(-1))[0]))
    qtbot.wait(50)
    view.progress.button.click()
    _idle(qtbot, view)
    monkeypatch.setattr(cam, "class_map", real)
    assert cancelled == [True] and view.class_map() is None and "cancelled" in view.status.text()
    assert view.note.text() == ""  # no note about a map that is not there
    view.choose_method("gradcam")  # the view keeps working
    _idle(qtbot, view)
    assert view.class_map().method == "Grad-CAM"


def test_a_map_for_another_model_or_photo_is_never_shown(qtbot, view, net) -> None:
    view.show_state(Shown(net, _layer(net, "2")))
    _idle(qtbot, view)
    old = view.class_map()
    other = _outcome(_net(seed=1))
    view.show_state(Shown(other, _layer(other, "2")))
    assert view.class_map() is None  # not the old model's, even for a moment
    _idle(qtbot, view)
    np.testing.assert_allclose(
        view.class_map().heat, cam.class_map(other.model, other.image, "2").heat, rtol=1e-5, atol=1e-6
    )
    photo = SimpleNamespace(
        model=net.model, image=prepare_image(sample_images()["astronaut"], PLAIN), result=net.result
    )
    view.show_state(Shown(net, _layer(net, "2")))
    view.show_state(Shown(photo, _layer(net, "2")))  # another photo while the first runs
    _idle(qtbot, view)
    shown = view.class_map()
    np.testing.assert_allclose(
        shown.heat, cam.class_map(net.model, photo.image, "2", shown.class_index).heat, rtol=1e-5, atol=1e-6
    )
    assert not np.allclose(shown.heat, old.heat)


def test_export_writes_both_pictures_and_errors_are_one_line(qtbot, view, net, tmp_path) -> None:
    with pytest.raises(OSError):
        view.export_png(tmp_path / "none.png")
    view.show_state(Shown(net, _layer(net, "2")))
    _idle(qtbot, view)
    path = view.export_png(tmp_path / "map.png")
    np.testing.assert_array_equal(
        np.asarray(Image.open(path).convert("RGB")), cam.overlay(net.image.model_view, view.class_map().heat)
    )
    assert (tmp_path / "map.original.png").exists()
    # a model whose output is not one score per class: said in the view, the app goes on
    flat = _outcome(nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU()).eval())
    view.show_state(Shown(flat, _layer(flat, "0")))
    _idle(qtbot, view)
    assert view.class_map() is None and "not one score per class" in view.on_input._text
    assert view.classes.count() == 0


def test_in_the_window_all_three_methods_run_and_score_cam_cancels(qtbot, window) -> None:
    from tests.gui.conftest import wait_run

    window.start(model="resnet18", untrained=True, engine="im2col", input_size=(64, 64))
    wait_run(qtbot, window)
    assert window.outcome is not None, window.last_error
    view = window.view("cam")
    window.show_view("cam")
    _idle(qtbot, view)
    outcome = window.outcome
    assert view.class_map().layer == "layer4.1.conv2"  # the last conv, whatever is selected
    for method in ("gradcam++", "gradcam"):
        view.choose_method(method)
        _idle(qtbot, view)
        np.testing.assert_allclose(
            view.class_map().heat,
            cam.class_map(outcome.model, outcome.image, "layer4.1.conv2", None, method).heat,
            rtol=1e-5,
            atol=1e-6,
        )
    seen = []
    view.lane.progress.connect(lambda done, total: seen.append((done, total)))
    view.choose_method("scorecam")  # 512 channels, 16 batches: cancelled after the first
    qtbot.waitUntil(lambda: bool(seen), timeout=60000)
    assert view.progress.isVisible() and seen[0] == (32, 512)
    view.progress.button.click()
    _idle(qtbot, view)
    assert view.class_map() is None and "cancelled" in view.status.text()
    assert len(seen) < 16
    view.choose_method("gradcam++")  # kept: shown at once, the window keeps working
    assert view.class_map().method == "Grad-CAM++"
    view.choose_method("scorecam")  # asked again: runs to its end
    _idle(qtbot, view, timeout=120000)
    assert view.class_map().method == "Score-CAM" and seen[-1] == (512, 512)
