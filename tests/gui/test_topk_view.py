"""The Top examples tab: on the classic model (its ``edges`` channels 3 and 5 are Sobel x / y
detectors) over generated folders of bars whose answer is known: progress to the total, the
right crops with the right values, cancel then resume equal to one scan, a click opens the
photo at the unit, a layer step runs nothing, stale results are said to be stale."""

from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from gui.view import Shown
from gui.views import topk as topk_module
from gui.views.topk import TopKView
from models.images import prepare_image
from models.sources import load_model
from models.topk import Store, conv_layers, scan
from models.topk import batches as scanner_module  # where a scan reads and runs its batches
from models.topk import crops as crops_module
from tests.models.topk_folders import bars_folder, edge_model, expected_top

SIZE = 64
K = 3


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVSCOPE_CACHE", str(tmp_path / "cache"))


class FakeWindow:
    """The window services a view may use, recorded."""

    def __init__(self, settings) -> None:
        self.settings = settings
        self.opened: list[tuple] = []
        self.errors: list[str] = []
        self.statuses: list[str] = []

    def select_layer(self, name: str) -> None:
        pass

    def open_image_at(self, path, layer=None, unit=None, channel=None) -> None:
        self.opened.append((path, layer, unit, channel))

    def show_status(self, text: str) -> None:
        self.statuses.append(text)

    def show_error(self, message: str) -> None:
        self.errors.append(message)


@pytest.fixture(scope="module")
def classic():
    return load_model("classic", input_size=(SIZE, SIZE))


def outcome_of(model, engine: str = "im2col"):
    """What the view reads of the window's outcome: the model and the request's engine."""
    return SimpleNamespace(model=model, request=SimpleNamespace(engine=engine))


def layer_of(model, name: str):
    return next(la for la in conv_layers(model) if la.name == name)


def open_view(qtbot, settings):
    """The tab on its own (k=K, batches of 2), its lanes stopped after the test."""
    widget = TopKView(FakeWindow(settings), k=K, batch=2)
    qtbot.addWidget(widget)
    widget.resize(1000, 700)
    widget.show()
    yield widget
    for lane in widget.workers():
        lane.cancel()
        assert lane.wait(30000)
        lane.shutdown()


@pytest.fixture
def view(qtbot, settings):
    yield from open_view(qtbot, settings)


def idle(qtbot, view) -> None:
    qtbot.waitUntil(lambda: not any(lane.busy for lane in view.workers()), timeout=60000)


def scanned(qtbot, view, model, folder, layer="edges", channel=3, engine="im2col"):
    view.show_state(Shown(outcome_of(model, engine), layer_of(model, layer), channel))
    view.set_folder(folder)
    idle(qtbot, view)
    assert view.result is not None, view.window_services.errors


def test_scan_reaches_the_total_and_shows_the_right_crops_and_values(qtbot, view, classic, tmp_path):
    made = bars_folder(tmp_path / "bars", size=SIZE)
    seen: list[tuple[int, int]] = []
    view.scans.progress.connect(lambda done, total: seen.append((done, total)))
    scanned(qtbot, view, classic, tmp_path / "bars")
    assert seen[-1] == (len(made), len(made)) and len(seen) > 1
    assert view.progress_label.text().startswith(f"classic: {len(made)} images")
    for channel, kind in ((3, "v"), (5, "h")):  # Sobel x finds vertical bars, Sobel y horizontal
        view.show_state(Shown(outcome_of(classic), layer_of(classic, "edges"), channel))
        idle(qtbot, view)
        names = [Path(t.note).name for t in view.grid.tiles]
        assert names == expected_top(made, kind, K)
        for tile, ex in zip(view.grid.tiles, view.examples, strict=True):
            # the value: torch's own conv at that unit, the strongest of the map
            image = prepare_image(ex.entry.path, classic.preprocess)
            with torch.no_grad():
                fmap = classic.module.edges(image.tensor)[0, channel].numpy()
            assert ex.entry.value == pytest.approx(float(fmap.max()), rel=1e-4, abs=1e-5)
            assert fmap[ex.entry.y, ex.entry.x] == pytest.approx(ex.entry.value, rel=1e-4, abs=1e-5)
            assert tile.caption == f"#{ex.entry.rank + 1}  {ex.entry.value:.4g}"
            # the tile's picture is the unit's 3x3 field clipped to the photo, pixel for pixel
            t, left = (int(np.floor(v + 0.5)) for v in ex.box[:2])
            want = image.model_view[max(t, 0) : min(t + 3, SIZE), max(left, 0) : min(left + 3, SIZE)]
            h, w = want.shape[:2]
            got = tile.image.convertToFormat(tile.image.Format.Format_RGB888)
            assert (got.height(), got.width()) == (h, w) and tile.frame == (3, 3)
            pixels = np.frombuffer(got.constBits(), np.uint8).reshape(h, got.bytesPerLine())[:, : 3 * w]
            np.testing.assert_array_equal(pixels.reshape(h, w, 3), want)
            # drawn at the scale of a whole 3x3 field, the ticks at the unit's pixel
            rect = tile.picture_rect()
            scale = rect.width() / w
            assert rect.height() == round(h * scale) and scale == int(scale) >= 1
            tx, ty = tile.tick_points(rect)
            assert (ty - rect.y()) // scale == ex.entry.y - max(t, 0)
            assert (tx - rect.x()) // scale == ex.entry.x - max(left, 0)


def test_cancel_then_resume_gives_the_result_of_one_scan(qtbot, view, classic, tmp_path, monkeypatch):
    made = bars_folder(tmp_path / "bars", vertical=8, horizontal=8, blank=6, size=SIZE)
    whole = scan(classic, tmp_path / "bars", "im2col", k=K, store=Store(tmp_path / "whole.db"))
    gate = threading.Event()
    read: list[str] = []
    real = scanner_module.load_image

    def slow(path):  # after 6 images the scan waits until the test has pressed Cancel
        read.append(Path(path).name)
        if len(read) > 6:
            gate.wait(10)
        return real(path)

    monkeypatch.setattr(scanner_module, "load_image", slow)
    view.show_state(Shown(outcome_of(classic), layer_of(classic, "edges"), 3))
    view.set_folder(tmp_path / "bars")
    qtbot.waitUntil(lambda: view._last_progress[0] >= 4, timeout=30000)
    with qtbot.waitSignal(view.scans.cancelled, timeout=30000):
        view.cancel_button.click()
        gate.set()
    stopped = view._last_progress[0]
    assert 4 <= stopped < len(made) and view.result is None
    assert view.progress_label.text().startswith(f"cancelled at {stopped} / {len(made)} images")
    read.clear()
    view.scan_button.click()  # resumes where it stopped
    idle(qtbot, view)
    assert view.result.stats.scanned == len(made) - stopped == len(read)
    for layer in ("edges", "combine"):
        got = {
            c: [(e.path.name, e.value, e.y, e.x) for e in es]
            for c, es in view.result.layer_entries(layer).items()
        }
        want = {
            c: [(e.path.name, e.value, e.y, e.x) for e in es] for c, es in whole.layer_entries(layer).items()
        }
        assert got == want


def test_stepping_layers_and_channels_reads_the_store_and_runs_nothing(
    qtbot, view, classic, tmp_path, monkeypatch
):
    bars_folder(tmp_path / "bars", size=SIZE)
    scanned(qtbot, view, classic, tmp_path / "bars")
    runs: list[str] = []
    for module in (crops_module, scanner_module):
        real = module.run_batch
        monkeypatch.setattr(
            module, "run_batch", lambda *a, real=real, **kw: (runs.append("run"), real(*a, **kw))[1]
        )
    monkeypatch.setattr(topk_module, "scan", lambda *a, **kw: runs.append("scan"))
    before = [t.note for t in view.grid.tiles]
    for layer, channel in (("combine", 0), ("edges", 5), ("combine", 1)):
        view.show_state(Shown(outcome_of(classic), layer_of(classic, layer), channel))
        idle(qtbot, view)
        entries = view.result.entries(layer, channel)
        assert [t.caption for t in view.grid.tiles] == [f"#{e.rank + 1}  {e.value:.4g}" for e in entries]
        assert len(view.examples) == len(entries)
    view.channel_box.setValue(2)
    idle(qtbot, view)
    assert [t.note for t in view.grid.tiles] != before
    assert runs == []
    view.overlay_box.setChecked(True)  # the map overlay is what runs the model: the k images
    idle(qtbot, view)
    assert runs == ["run"]
    assert all(ex.overlay is not None for ex in view.examples)


def test_a_click_opens_the_photo_at_the_unit(qtbot, view, classic, tmp_path):
    bars_folder(tmp_path / "bars", size=SIZE)
    scanned(qtbot, view, classic, tmp_path / "bars", "combine", 1)
    entry = view.result.entries("combine", 1)[1]
    qtbot.mouseClick(view.grid.tiles[1], Qt.MouseButton.LeftButton)
    assert view.window_services.opened == [(str(entry.path), "combine", (entry.y, entry.x), 1)]


def test_non_conv_layer_and_other_model_or_engine(qtbot, view, classic, tmp_path):
    bars_folder(tmp_path / "bars", size=SIZE)
    scanned(qtbot, view, classic, tmp_path / "bars")
    relu = SimpleNamespace(name="relu1", type="ReLU")
    view.show_state(Shown(outcome_of(classic), relu, 0))
    assert not view.grid.isVisible() and "relu1 (ReLU) is not a convolution" in view.message.text()
    # another engine: the ranking holds, and the view says so and offers a scan on it
    view.show_state(Shown(outcome_of(classic, "reference"), layer_of(classic, "edges"), 3))
    assert view.grid.isVisible() and view.banner.isVisible()
    assert view.banner_button.text() == "Scan again on reference"
    # another model (other weights): its results are never shown as this one's
    other = edge_model(SIZE)
    view.show_state(Shown(outcome_of(other), layer_of(other, "edges"), 0))
    assert view.stale() == "model" and not view.grid.isVisible() and view.banner.isVisible()
    assert "found by classic" in view.banner_label.text()
    view.banner_button.click()
    idle(qtbot, view)
    assert view.stale() is None and view.result.model_name == "edges" and view.grid.isVisible()
    view.show_state(Shown(outcome_of(classic), layer_of(classic, "edges"), 3))
    assert view.stale() == "model"  # back to classic: the view holds the edges model's scan
    # the same weights in another module object are the same model; other weights are not
    again = load_model("classic", input_size=(SIZE, SIZE))
    assert topk_module.same_model(again, classic) and again.module is not classic.module
    changed = load_model("classic", input_size=(SIZE, SIZE))
    with torch.no_grad():
        changed.module.edges.weight[0, 0, 0, 0] += 1
    assert not topk_module.same_model(changed, classic)


def test_unreadable_files_are_counted_and_shown(qtbot, view, classic, tmp_path):
    bars_folder(tmp_path / "bars", vertical=2, horizontal=2, blank=0, size=SIZE)
    (tmp_path / "bars" / "broken.png").write_bytes(b"not a png")
    scanned(qtbot, view, classic, tmp_path / "bars")
    assert view.skipped_label.isVisible()
    assert view.skipped_label.text() == "⚠ 1 file skipped (not readable as images): broken.png"
    assert view.skipped_label.toolTip() == "broken.png: broken.png is not an image file ConvScope can read"
    view.set_folder(tmp_path / "bars")  # scanned: all from the cache, said without a rate
    idle(qtbot, view)
    assert view.progress_label.text().startswith(
        "classic: 4 images · all from the cache · 1 file skipped · top 3 per channel"
    )
    assert view.skipped_label.isVisible()
    (tmp_path / "bars" / "empty.png").write_bytes(b"")  # an empty file says so
    view.set_folder(tmp_path / "bars")
    idle(qtbot, view)
    assert view.skipped_label.text() == "⚠ 2 files skipped (not readable as images): broken.png, empty.png"
    assert view.skipped_label.toolTip().splitlines() == [
        "broken.png: broken.png is not an image file ConvScope can read",
        "empty.png: empty file (0 bytes)",
    ]


def test_folders_by_drop_recent_and_samples_and_bad_folders(qtbot, view, classic, tmp_path):
    bars_folder(tmp_path / "bars", vertical=2, horizontal=2, blank=0, size=SIZE)
    view.show_state(Shown(outcome_of(classic), layer_of(classic, "edges"), 3))
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(tmp_path / "bars"))])
    event = QDropEvent(
        QPointF(10, 10),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    view.dropEvent(event)
    idle(qtbot, view)
    assert view.result is not None and view.result.folder == (tmp_path / "bars").resolve()
    assert view.folder_bar.recent_folders() == [str(tmp_path / "bars")]
    assert view.window_services.settings.value("topk/recent_folders") in (
        [str(tmp_path / "bars")],
        str(tmp_path / "bars"),
    )
    view.folder_bar.fill_recent()
    texts = [a.text() for a in view.folder_bar.recent_menu.actions()]
    assert texts[0] == "Bundled samples" and str(tmp_path / "bars") in texts
    view.folder_bar.recent_menu.actions()[0].trigger()  # the bundled samples: three photos
    idle(qtbot, view)
    assert view.result.folder == topk_module.SAMPLES.resolve() and view.result.stats.images == 3
    view.set_folder(tmp_path / "missing")
    assert view.window_services.errors[-1].endswith("no such folder")
    assert view.result.folder == topk_module.SAMPLES.resolve()  # what was shown stays


def test_clear_cache_asks_first(qtbot, view, classic, tmp_path, monkeypatch):
    bars_folder(tmp_path / "bars", vertical=2, horizontal=2, blank=0, size=SIZE)
    scanned(qtbot, view, classic, tmp_path / "bars")
    db = tmp_path / "cache" / "topk.sqlite3"
    assert db.exists()
    assert [a.text() for a in view.actions_for_menu()] == [
        "Open folder for top examples…",
        "Clear top-k cache…",
    ]
    monkeypatch.setattr(topk_module, "ask_clear", lambda parent, where: False)
    view.clear_action.trigger()
    assert db.exists() and view.result is not None
    monkeypatch.setattr(topk_module, "ask_clear", lambda parent, where: True)
    view.clear_action.trigger()
    assert not db.exists() and view.result is None and not view.grid.isVisible()
    view.scan_button.click()  # scanning again works on a new database
    idle(qtbot, view)
    assert view.result is not None and view.result.stats.scanned == 4


def test_in_the_window_a_click_opens_the_photo_at_the_unit(qtbot, window, tmp_path):
    from tests.gui.conftest import wait_run

    bars_folder(tmp_path / "bars", vertical=3, horizontal=3, blank=2, size=SIZE)
    window.start(model="classic", engine="im2col", layer="edges")
    wait_run(qtbot, window)
    window.show_view("topk")
    assert window.current_view() == "topk"
    window.feature_maps.select_channel(3)
    view = window.topk
    view.set_folder(tmp_path / "bars")
    wait_run(qtbot, window)  # the window waits for the view's lanes too
    assert view.result is not None and view.channel_box.value() == 3
    entry = view.result.entries("edges", 3)[0]
    assert entry.path.name.startswith("v")
    qtbot.mouseClick(view.grid.tiles[0], Qt.MouseButton.LeftButton)
    wait_run(qtbot, window)
    assert window.outcome.source == str(entry.path)
    assert window.current_layer().name == "edges" and window.current_view() == "maps"
    assert window.feature_maps.selected_channel() == 3
    assert window.input_panel.caption.text().startswith(f"unit ({entry.y}, {entry.x}) of channel 3 ")


def test_screenshot_of_the_view_scans_the_folder_first(qtbot, tmp_path, monkeypatch) -> None:
    from PIL import Image

    from gui.app import run_app
    from main import build_parser

    made = bars_folder(tmp_path / "bars", vertical=2, horizontal=2, blank=1, size=SIZE)
    shown: list = []
    real = TopKView._show_crops
    monkeypatch.setattr(
        TopKView,
        "_show_crops",
        lambda self, entries, found, *rest: (shown.append(found), real(self, entries, found, *rest)),
    )
    args = build_parser().parse_args(
        [
            "--model",
            "classic",
            "--layer",
            "edges",
            "--view",
            "topk",
            "--dataset",
            str(tmp_path / "bars"),
            "--screenshot",
            str(tmp_path / "shot.png"),
        ]
    )
    assert run_app(args) == 0
    with Image.open(tmp_path / "shot.png") as image:
        assert image.size == (1600, 1000)
    assert shown and len(shown[-1]) == len(made)  # the crops were drawn before the shot
    again = scan(load_model("classic"), tmp_path / "bars", "auto")
    assert again.stats.scanned == 0  # the scan the window made is stored


def test_status_lines_fit_a_narrow_view_and_keep_the_whole_text(qtbot, view, classic, tmp_path):
    """At 1024x700 the tab's pane is about 480 pixels wide: nothing is clipped mid-letter and
    nothing widens the window; what does not fit ends in "…" and is whole in the tooltip."""
    bars_folder(tmp_path / "bars", vertical=2, horizontal=2, blank=0, size=SIZE)
    for name in ("a_really_long_name_for_a_file_that_is_not_a_picture.png", "b.jpg", "c.gif"):
        (tmp_path / "bars" / name).write_bytes(b"junk")
    scanned(qtbot, view, classic, tmp_path / "bars")
    view.resize(480, 600)
    qtbot.waitUntil(lambda: view.width() == 480)
    assert view.minimumSizeHint().width() <= 480
    skipped = view.skipped_label
    assert skipped.text() == (
        "⚠ 3 files skipped (not readable as images): "
        "a_really_long_name_for_a_file_that_is_not_a_picture.png, b.jpg, c.gif"
    )
    assert skipped.toolTip().splitlines()[1] == "b.jpg: b.jpg is not an image file ConvScope can read"
    for label in (view.progress_label, skipped, view.layer_label):
        shown = label.shown_text()
        assert label.fontMetrics().horizontalAdvance(shown) <= label.contentsRect().width()
        assert shown.endswith("…") and label.text().startswith(shown[:-1])
        assert label.geometry().right() <= view.width()
    view.resize(1400, 600)
    qtbot.waitUntil(lambda: view.width() == 1400)
    assert view.progress_label.shown_text() == view.progress_label.text()  # room: all of it
