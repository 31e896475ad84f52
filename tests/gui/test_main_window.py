"""The real main window, driven like a user would: images, layers, engines, units, export, errors."""

from __future__ import annotations

import argparse
import time
import urllib.request

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QEvent, QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent, QMouseEvent
from PySide6.QtWidgets import QApplication

from tests.gui.conftest import wait_run


def test_starts_on_the_sample_and_shows_the_first_conv_layer(classic) -> None:
    win = classic
    assert win.outcome.source == "sample: chelsea"
    layer = win.current_layer()
    assert layer.name == "edges" and layer.is_conv
    assert win.navigator.count() == 6 and win.navigator.visible_rows() == list(range(6))
    assert win.navigator.item(0).font(0).bold()  # conv layers are marked
    assert not win.navigator.item(1).font(0).bold()
    assert win.navigator.item(0).toolTip(2) == "edges · Conv2d · output 9×224×224 · convolution"
    image = win.feature_maps.render_image()
    assert image.shape[0] > 100 and image.std() > 10  # maps were drawn
    assert "9 filters · each = 3 kernels of 3×3" in win.filters.caption.text()
    assert "receptive field 3×3" in win.details.text()
    assert win.engine_panel.engines_run() == ["im2col", "reference"]  # torch ran for the Δ
    assert win.engine_panel.run_info("im2col")["diff"] < 1e-4


def test_keys_step_through_layers(classic, qtbot) -> None:
    win = classic
    qtbot.keyClick(win, Qt.Key.Key_Right)
    assert win.current_layer().name == "relu1"
    assert win.filters.caption.text().startswith("<b>relu1</b> (ReLU) has no filters")
    qtbot.keyClick(win, Qt.Key.Key_PageDown)  # next convolution
    assert win.current_layer().name == "combine"
    # combine maps 9x112x112 to 4x112x112 with 4 filters of 9x3x3 and a bias: 328 parameters;
    # fully connected, every output value has a weight per input value and its own bias
    fc = 9 * 112 * 112 * 4 * 112 * 112 + 4 * 112 * 112
    assert "328 parameters here" in win.details.text()
    assert "Why convolution?" in win.details.text() and f"{fc:,}" in win.details.text()
    assert win.feature_maps.render_image().shape != (1, 1, 3)
    qtbot.keyClick(win, Qt.Key.Key_End)
    assert win.current_layer().name == "pool2" and win.navigator.slider.value() == 5
    qtbot.keyClick(win, Qt.Key.Key_Home)
    assert win.current_layer().name == "edges"
    qtbot.keyClick(win, Qt.Key.Key_Left)  # stays at the first layer
    assert win.navigator.index() == 0
    win.navigator.next_button.click()
    assert win.navigator.index() == 1


def test_open_image_by_api_and_by_drop(classic, qtbot, tmp_path) -> None:
    win = classic
    photo = np.zeros((120, 160, 3), dtype=np.uint8)
    photo[:, 80:] = 255
    Image.fromarray(photo).save(tmp_path / "half.png")
    win.open_image(str(tmp_path / "half.png"))
    wait_run(qtbot, win)
    assert win.outcome.source == str(tmp_path / "half.png")
    assert win.recent_images()[0] == str(tmp_path / "half.png")
    view = win.input_panel.displayed_image()
    assert view[:, :100].max() < 10 and view[:, 130:].min() > 245  # the photo as the model sees it
    Image.fromarray(255 - photo).save(tmp_path / "dropped.jpg")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(tmp_path / "dropped.jpg"))])
    event = QDropEvent(
        QPointF(10, 10),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    win.dropEvent(event)
    wait_run(qtbot, win)
    assert win.outcome.source.endswith("dropped.jpg")
    assert win.input_panel.displayed_image()[:, :80].min() > 200


def test_paste_from_clipboard(classic, qtbot) -> None:
    from PySide6.QtGui import QColor, QImage

    image = QImage(64, 48, QImage.Format.Format_RGB888)
    image.fill(QColor(200, 30, 30))
    QApplication.clipboard().setImage(image)
    classic.paste_image()
    wait_run(qtbot, classic)
    assert classic.outcome.source == "pasted image"
    assert classic.input_panel.displayed_image()[10, 10].tolist() == [200, 30, 30]


def test_switching_engine_reruns_and_compares(classic, qtbot) -> None:
    win = classic
    win.engine_panel.combo.setCurrentText("winograd")
    wait_run(qtbot, win)
    assert win.outcome.result.engine == "winograd"
    assert "winograd F(4x4,3x3)" in win.details.text()
    panel = win.engine_panel
    assert panel.engines_run() == ["im2col", "reference", "winograd"]
    assert panel.run_info("winograd")["diff"] < 1e-3
    table = panel.table
    rows = [table.verticalHeaderItem(r).text() for r in range(table.rowCount())]
    assert rows == ["total (ms)", "× torch", "Δ vs torch", "edges", "combine"]
    col = panel.engines_run().index("winograd")
    run, torch_run = panel.run_info("winograd"), panel.run_info("reference")
    assert float(table.item(1, col).text()) == pytest.approx(run["total"] / torch_run["total"], abs=0.01)
    time_text, algorithm = table.item(4, col).text().split(" · ")  # "0.65 · winograd F(4x4,3x3)"
    assert float(time_text) == pytest.approx(run["times"]["combine"], abs=0.01)
    assert algorithm.startswith("winograd")
    qtbot.keyClick(win, Qt.Key.Key_End)  # pool2: not a conv layer, no row
    assert not table.selectedItems()
    qtbot.keyClick(win, Qt.Key.Key_PageUp)  # combine
    assert table.currentRow() == 4
    assert win.settings.value("engine") == "winograd"


def test_hover_draws_the_units_box_and_click_computes_the_effective_field(classic, qtbot) -> None:
    win = classic
    win.navigator.set_index(3)  # combine: RF 8x8, jump 2, start -3
    layer = win.current_layer()
    win.feature_maps.unit_hovered.emit(2, 0, 5, 1.0)
    rf = layer.receptive_field
    assert win.input_panel.overlay_box() == (0.0, 7.0, 5.0, 15.0)  # (−3, 7, 5, 15) clipped at the top
    assert win.input_panel.padding_box() == (rf.box(0, 5)[0], 7.0, 5.0, 15.0)
    win.feature_maps.unit_clicked.emit(2, 40, 50)
    wait_run(qtbot, win)
    heat = win.input_panel._heat
    assert heat is not None and heat.shape == (224, 224)
    t, l, b, r = (int(v) for v in rf.box(40, 50))
    assert heat[t:b, l:r].sum() > 0 and heat.sum() == heat[t:b, l:r].sum()


def test_the_readout_follows_the_mouse_however_fast_it_moves(classic, qtbot) -> None:
    fm = classic.feature_maps
    viewport = fm.graphics.viewport()
    for channel in (1, 4, 7):  # three moves in a row, well under pyqtgraph's default 10 ms apart
        top, left, h, w = fm.tile_rect(channel)
        pos = QPointF(fm.graphics.mapFromScene(fm.view.mapViewToScene(QPointF(left + w / 2, top + h / 2))))
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
        assert fm.readout.text().startswith(f"channel {channel} ")  # where the mouse is, not was


def test_clicking_a_tile_selects_that_channel(classic, qtbot) -> None:
    win = classic
    fm = win.feature_maps
    top, left, h, w = fm.tile_rect(4)
    scene = fm.view.mapViewToScene(QPointF(left + w / 2, top + h / 2))
    with qtbot.waitSignal(fm.unit_clicked) as blocker:
        fm._click(scene)
    channel, y, x = blocker.args
    assert channel == 4 and 0 <= y < 224 and 0 <= x < 224
    assert fm.selected_channel() == 4
    assert "channel 4" in fm.detail_label.text() and "Sobel x" in fm.detail_label.text()
    # the filters view marks filter 4 where it drew it (first layer on RGB: one tile per filter)
    win.show_view("filters")
    tile = win.filters.marker.rect()
    image = win.filters.render_image()
    assert win.filters.marker.isVisible() and tile.width() == tile.height() < image.shape[1] / 2
    inside = image[int(tile.top()) + 2 : int(tile.bottom()) - 1, int(tile.left()) + 2 : int(tile.right()) - 1]
    assert inside.shape[0] > 5 and (inside != 40).any()  # a filter's pixels, not the gap colour
    view_pos = fm.graphics.mapFromScene(scene)
    assert isinstance(view_pos, QPoint)


def test_sorting_and_colormap_change_the_pixels(classic) -> None:
    fm = classic.feature_maps
    before = fm.render_image().copy()
    fm.set_sort("max")
    maxes = classic.outcome.result.activations["edges"].reshape(9, -1).max(1)
    assert fm.page_channels() == list(np.argsort(-maxes, kind="stable"))
    fm.set_sort("index")
    fm.set_colormap("gray")
    gray = fm.render_image()
    assert (gray[..., 0] == gray[..., 1]).all() and not np.array_equal(gray, before)


def test_export_view_npy_and_everything(classic, qtbot, tmp_path) -> None:
    win = classic
    win.show_view("filters")
    assert win.export_view(str(tmp_path / "view")) == tmp_path / "view.png"  # the suffix added
    with Image.open(tmp_path / "view.png") as view:
        assert view.size == (win.filters.width(), win.filters.height())
        assert np.asarray(view.convert("RGB")).std() > 10
    assert "saved the filters view" in win.status_label.text()
    win.export_npy(str(tmp_path / "edges.npy"))
    np.testing.assert_array_equal(np.load(tmp_path / "edges.npy"), win.outcome.result.activations["edges"])
    assert "saved the activations of edges" in win.status_label.text()
    assert win.export_npy(str(tmp_path / "no such folder" / "x.npy")) is None  # a message, no crash
    assert "cannot write" in win.last_error and win.outcome is not None
    win._message.close()
    win.export_all(str(tmp_path / "all"))
    wait_run(qtbot, win)
    assert (tmp_path / "all" / "summary.json").exists()
    assert (tmp_path / "all" / "combine.filters.png").exists()


def test_errors_show_a_message_and_keep_the_previous_state(classic, qtbot, tmp_path) -> None:
    win = classic
    good = win.outcome
    (tmp_path / "broken.png").write_text("no pixels here")
    win.open_image(str(tmp_path / "broken.png"))
    wait_run(qtbot, win)
    assert "broken.png is not an image file" in win.last_error
    assert win.outcome is good and win._message.isVisible()
    (tmp_path / "model.pt").write_text("not a model")
    win.open_model(str(tmp_path / "model.pt"))
    wait_run(qtbot, win)
    assert "model.pt is not a model file" in win.last_error and win.outcome is good
    win.navigator.set_index(2)  # still fully usable
    assert win.current_layer().name == "pool1"


def test_pickled_model_asks_before_running_its_code(classic, qtbot, tmp_path, monkeypatch) -> None:
    import torch
    from torch import nn

    torch.save(nn.Sequential(nn.Conv2d(3, 2, 3)), tmp_path / "full.pth")
    asked = []
    monkeypatch.setattr("gui.dialogs.ask_trust", lambda parent, path, reason="": asked.append(path) or False)
    classic.open_model(str(tmp_path / "full.pth"))
    wait_run(qtbot, classic)
    assert asked and "pickled model" in classic.last_error and classic.outcome.model.name == "classic"
    monkeypatch.setattr("gui.dialogs.ask_trust", lambda parent, path, reason="": True)
    classic.open_model(str(tmp_path / "full.pth"))
    wait_run(qtbot, classic)
    wait_run(qtbot, classic)
    assert classic.outcome.model.source == "pickle"


def test_settings_are_remembered(window, qtbot, settings) -> None:
    window.start(model="classic", engine="fft")
    wait_run(qtbot, window)
    window.feature_maps.set_colormap("magma")
    window.close()
    assert settings.value("model") == "classic" and settings.value("engine") == "fft"
    assert settings.value("colormap") == "magma" and settings.value("geometry") is not None


def test_screenshot_writes_the_window(qtbot, tmp_path) -> None:
    from gui.app import run_app
    from main import build_parser

    args: argparse.Namespace = build_parser().parse_args(
        ["--model", "classic", "--layer", "combine", "--screenshot", str(tmp_path / "shot.png")]
    )
    assert run_app(args) == 0
    with Image.open(tmp_path / "shot.png") as image:
        shot = np.asarray(image)
    assert shot.shape[0] >= 900 and shot.shape[1] >= 1500 and shot.std() > 20
    args = build_parser().parse_args(
        ["--model", "classic", "--screenshot", str(tmp_path / "small.png"), "--window-size", "1024x700"]
    )
    assert run_app(args) == 0
    with Image.open(tmp_path / "small.png") as image:
        assert image.size == (1024, 700)


def test_views_and_units_by_name_as_the_command_line_uses_them(classic, qtbot) -> None:
    win = classic
    win.show_view("explain")
    assert win.current_view() == "explain" and win.tabs.currentWidget() is win.view("explain")
    win.navigator.set_index(3)  # combine: 4 maps of 112x112
    assert not win.select_unit(112, 0) and "outside combine" in win.last_error
    assert win.select_unit(40, 50, channel=2)
    wait_run(qtbot, win)
    rf = win.current_layer().receptive_field
    t, l, b, r = rf.box(40, 50)
    assert win.input_panel.overlay_box() == (t, l, b, r)  # inside the image: drawn unclipped
    assert win.view("explain").current_unit() == (2, 40, 50)


def test_state_dict_asks_for_its_architecture(classic, qtbot, tmp_path, monkeypatch) -> None:
    from models.sources import load_model

    state = load_model("classic").module.state_dict()
    import torch

    torch.save(state, tmp_path / "weights.pth")
    asked = []
    monkeypatch.setattr(
        "gui.dialogs.ask_arch", lambda parent, path, guess=None: asked.append(path) or "classic"
    )
    classic.open_model(str(tmp_path / "weights.pth"))
    wait_run(qtbot, classic)
    wait_run(qtbot, classic)
    assert asked and classic.last_error is None
    assert classic.outcome.model.source == "state_dict" and classic.outcome.request.arch == "classic"


def test_long_names_never_widen_the_window(classic, qtbot, tmp_path) -> None:
    # a label sized to its text made the window grow with every long path or class name
    win = classic
    app = QApplication.instance()
    app.processEvents()
    size, minimum = win.size(), win.minimumSizeHint().width()
    folder = tmp_path.joinpath(*["a-folder-with-a-rather-long-name"] * 6)
    folder.mkdir(parents=True)
    path = folder / ("a photo whose file name goes on and on " * 3).strip().replace(" ", "_")
    path = path.with_suffix(".png")
    Image.fromarray(np.full((64, 64, 3), 128, dtype=np.uint8)).save(path)
    win.open_image(str(path))
    wait_run(qtbot, win)
    for _ in range(win.navigator.count()):
        qtbot.keyClick(win, Qt.Key.Key_Right)
    app.processEvents()
    assert win.size() == size and win.minimumSizeHint().width() <= minimum
    assert str(path) in win.input_panel.title.toolTip()  # clipped on screen, whole on hover


class _SlowDownload:
    """A weights download that trickles in: 64 KiB every 10 ms."""

    length = 400 * 64 * 1024

    def __init__(self) -> None:
        self.sent = 0

    def __enter__(self) -> _SlowDownload:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def read(self, n: int) -> bytes:
        time.sleep(0.01)
        n = min(n, self.length - self.sent)
        self.sent += n
        return b"\0" * n


def test_download_shows_progress_and_cancel_keeps_what_was_shown(
    classic, qtbot, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # nothing cached: a real download
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout=None: _SlowDownload())
    win = classic
    win.open_model("squeezenet1_1")
    qtbot.waitUntil(lambda: win.progress.isVisible() and win.progress.value() > 0, timeout=20000)
    assert win.progress.maximum() == _SlowDownload.length and win.cancel_button.isVisible()
    win.cancel_button.click()
    wait_run(qtbot, win)
    assert win.outcome.model.name == "classic"  # the previous good state stays
    assert win.status_label.text().startswith("cancelled · still showing classic")
    assert win.model_actions["classic"].isChecked()
    assert not win.progress.isVisible() and not win.cancel_button.isVisible()
    assert not list((tmp_path / "torch").rglob("*.pth*"))  # nothing half-written left behind


def test_the_enlarged_map_reads_and_clicks_like_the_tiles(classic, qtbot) -> None:
    fm = classic.feature_maps
    fm.select_channel(2)
    classic.resize(1400, 900)
    QApplication.instance().processEvents()
    # the centre of unit (y 10, x 20) of the enlarged 224x224 map
    scene = fm.detail_view.mapViewToScene(QPointF(20.5, 10.5))
    fm.detail.scene().sigMouseMoved.emit(scene)
    assert fm.readout.text().startswith("channel 2") and "(y 10, x 20)" in fm.readout.text()
    assert f"{fm.value(2, 10, 20):.4g}" in fm.readout.text()
    assert classic.input_panel.overlay_box() is not None  # its receptive field on the photo
    with qtbot.waitSignal(fm.unit_clicked) as blocker:
        fm.detail_box._emit(fm.detail_box.clicked, scene)
    assert blocker.args == [2, 10, 20]
    wait_run(qtbot, classic)
    fm.detail.scene().sigMouseMoved.emit(fm.detail_view.mapViewToScene(QPointF(-5, -5)))  # outside: no change
    assert "(y 10, x 20)" in fm.readout.text()


def test_stepping_with_the_explainer_open_explains_each_conv_layer(classic, qtbot) -> None:
    win = classic
    win.show_view("explain")
    qtbot.keyClick(win, Qt.Key.Key_PageDown)  # to combine, the next convolution
    assert win.current_layer().name == "combine"
    explainer = win.view("explain")
    qtbot.waitUntil(lambda: explainer.current_value() is not None, timeout=5000)
    filt, y, x = explainer.current_unit()
    fm = win.outcome.result.activations["combine"]
    assert explainer.current_value() == pytest.approx(float(fm[filt, y, x]), abs=1e-4)
    assert "✓ equal" in explainer.value_label.text()


def test_maps_stepped_past_on_another_tab_are_drawn_when_shown(classic, qtbot) -> None:
    win = classic
    fm = win.feature_maps
    win.show_view("filters")
    qtbot.keyClick(win, Qt.Key.Key_PageDown)  # to combine: 4 maps of 112x112, not 9 of 224x224
    win.show_view("maps")
    QApplication.instance().processEvents()
    shown = np.asarray(fm.item.image)
    assert shown.shape == fm.render_image().shape and (shown == fm.render_image()).all()
    assert "4 channels" in fm.page_label.text()
    assert fm.tile_rect(0)[2:] == (112, 112)


def _hover_tile(win, channel: int) -> None:
    fm = win.feature_maps
    top, left, h, w = fm.tile_rect(channel)
    fm._hover(fm.view.mapViewToScene(QPointF(left + w / 2, top + h / 2)))


def _readouts(win) -> tuple[str, str, str]:
    return (win.feature_maps.readout.text(), win.input_panel.caption.text(), win.status_label.text())


def test_readouts_are_cleared_on_every_layer_image_model_and_engine_change(classic, qtbot, tmp_path) -> None:
    win = classic
    empty = _readouts(win)[:2]
    assert all("=" not in text for text in empty)

    def hovered() -> None:
        _hover_tile(win, 1)
        maps, photo, status = _readouts(win)
        assert maps.startswith("channel 1 ") and " = " in maps  # a unit's value, three times
        assert photo.startswith("unit (") and " = " in photo and " = " in status

    def cleared() -> None:
        maps, photo, status = _readouts(win)
        assert (maps, photo) == empty and " = " not in status

    hovered()
    qtbot.keyClick(win, Qt.Key.Key_End)  # pool2: no conv unit's value stays on it
    assert win.current_layer().name == "pool2"
    cleared()
    qtbot.keyClick(win, Qt.Key.Key_Home)
    hovered()
    win.engine_panel.combo.setCurrentText("fft")  # another engine
    wait_run(qtbot, win)
    cleared()
    hovered()
    Image.fromarray(np.full((60, 80, 3), 90, dtype=np.uint8)).save(tmp_path / "grey.png")
    win.open_image(str(tmp_path / "grey.png"))  # another image
    wait_run(qtbot, win)
    cleared()
    hovered()
    model = win.outcome.model
    win.open_model("classic", trust=True)  # the model loaded again: another model object
    wait_run(qtbot, win)
    assert win.outcome.model is not model
    cleared()
    win.show_view("filters")  # a hidden maps tab is cleared too, when shown
    qtbot.keyClick(win, Qt.Key.Key_Right)
    win.show_view("maps")
    hovered()
    win.show_view("filters")
    qtbot.keyClick(win, Qt.Key.Key_Right)
    win.show_view("maps")
    cleared()
    # a clicked unit's effective field: its status line does not stay on the next layer
    qtbot.keyClick(win, Qt.Key.Key_Home)
    assert win.select_unit(5, 5, channel=1)
    qtbot.waitUntil(lambda: "effective receptive field:" in win.status_label.text(), timeout=20_000)
    qtbot.keyClick(win, Qt.Key.Key_Right)
    assert "effective receptive field" not in win.status_label.text()


@pytest.mark.parametrize("size", [(1024, 700), (2560, 1440)])
def test_the_room_goes_to_the_photo_and_the_maps(qtbot, tmp_path, size) -> None:
    from PySide6.QtCore import QSettings

    from gui.main_window import MainWindow

    win = MainWindow(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat), size=size)
    qtbot.addWidget(win)
    win.show()
    QApplication.instance().processEvents()
    assert (win.width(), win.height()) == size
    photo, maps, layers = win.input_panel.width(), win.tabs.width(), win.navigator.width()
    assert photo >= 220 and win.input_panel.graphics.height() >= 200 and layers >= 260  # usable
    if size[0] > 2000:
        assert maps > photo > layers and maps > size[0] / 2  # the extra room: photo and maps
    win.close()


def test_splitter_positions_and_the_tab_are_remembered(window, qtbot, settings) -> None:
    from gui.main_window import MainWindow

    main = window.splitters["main"]
    main.setSizes([500, 500, 400])
    window.show_view("rf")
    QApplication.instance().processEvents()
    sizes = main.sizes()
    window.close()
    assert settings.value("geometry") is not None  # restored at the next start (by the screen's rules)
    again = MainWindow(settings, size=(window.width(), window.height()))
    qtbot.addWidget(again)
    again.show()
    QApplication.instance().processEvents()
    assert again.splitters["main"].sizes() == sizes
    assert again.current_view() == "rf"  # the tab used last
    again.close()


def test_view_names_are_the_windows_views(classic) -> None:
    from main import VIEWS

    assert tuple(v.key for v in classic.views) == VIEWS
    for key in VIEWS:
        classic.show_view(key)
        assert classic.current_view() == key and classic.tabs.currentWidget().title
    rf = classic.tabs.indexOf(classic.rf_plot)  # short titles, the long names on the tooltips
    assert (
        classic.tabs.tabToolTip(rf)
        == "Receptive fields — Receptive field size and jump of every layer, against depth"
    )


def test_a_view_can_open_an_image_at_a_layer_and_unit(classic, qtbot, tmp_path) -> None:
    win = classic
    Image.fromarray(np.full((50, 70, 3), 200, dtype=np.uint8)).save(tmp_path / "light.png")
    win.open_image_at(str(tmp_path / "light.png"), layer="combine", unit=(3, 4))
    wait_run(qtbot, win)
    assert win.outcome.source == str(tmp_path / "light.png")
    assert win.current_layer().name == "combine" and win.shown.unit == (3, 4)
    assert win.shown.layer is win.current_layer()
    assert win.input_panel.overlay_box() is not None  # the unit's field on the photo


def test_window_size_must_be_w_x_h(capsys) -> None:
    from main import build_parser

    assert build_parser().parse_args(["--window-size", "1024x700"]).window_size == (1024, 700)
    for bad in ("1024", "10x10", "axb"):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["--window-size", bad])
        assert "--window-size" in capsys.readouterr().err
