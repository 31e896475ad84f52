"""The Top examples tab under a hostile user's hands (#16, an outsider's finds): the model or
engine changed mid-scan, the cache cleared mid-scan, a top photo deleted after the scan, a
cache path that is a file, the Recent button's arrow. What the user sees: the status texts, the
banner, no error dialog, the button's room."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QStyle

from gui.view import Shown
from gui.views import topk as topk_module
from gui.views.common import qimage_to_rgb
from models.cache import ENV
from models.sources import load_model
from models.topk import batches as batches_module
from models.topk import messages
from tests.gui.test_topk_view import idle, layer_of, open_view, outcome_of, scanned
from tests.models.topk_folders import bars_folder, edge_model

SIZE = 64


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV, str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def classic():
    return load_model("classic", input_size=(SIZE, SIZE))


@pytest.fixture
def view(qtbot, settings):
    yield from open_view(qtbot, settings)


@pytest.fixture
def gate(monkeypatch):
    """Images read by scans; after ``gate.after`` of them a scan waits until ``gate`` is set."""
    event = threading.Event()
    event.after, event.read = 4, []
    real = batches_module.load_image

    def slow(path):
        event.read.append(Path(path).name)
        if len(event.read) > event.after:
            event.wait(10)
        return real(path)

    monkeypatch.setattr(batches_module, "load_image", slow)
    return event


@pytest.mark.parametrize("change", ["model", "engine"])
def test_a_model_or_engine_change_stops_the_running_scan_and_says_so_at_once(
    qtbot, view, classic, tmp_path, gate, change
):
    bars_folder(tmp_path / "bars", vertical=2, horizontal=2, blank=0, size=SIZE)
    scanned(qtbot, view, classic, tmp_path / "bars")  # classic's results, on im2col
    more = bars_folder(tmp_path / "bars" / "more", vertical=6, horizontal=6, blank=4, size=SIZE)
    gate.read.clear()
    view.start_scan()  # the new files only
    qtbot.waitUntil(lambda: view._last_progress[0] >= 2, timeout=30000)
    other = edge_model(SIZE)
    if change == "model":
        view.show_state(Shown(outcome_of(other), layer_of(other, "edges"), 0))
        assert view.progress_label.text() == "stopping the classic scan: the window now shows edges…"
    else:
        view.show_state(Shown(outcome_of(classic, "reference"), layer_of(classic, "edges"), 3))
        assert view.progress_label.text() == "stopping the classic scan: the window now runs reference…"
    gate.set()
    idle(qtbot, view)
    done, total = view._last_progress
    assert done < total == 4 + len(more) and len(gate.read) < len(more)  # it did not run on
    reason = "the window now shows edges" if change == "model" else "the window now runs reference"
    assert view.progress_label.text() == (
        f"classic scan stopped at {done} / {total} images: {reason}; what classic scanned is "
        f"kept, scanning with it again goes on from there"
    )
    # the banner at once (no layer step needed), the status line back at the left edge
    assert view.banner.isVisible() and not view.progress.isVisible()
    assert view.progress_label.geometry().x() == 0
    assert view.banner_button.text() == (
        "Scan with edges" if change == "model" else "Scan again on reference"
    )
    assert view.window_services.errors == []
    # a layer step keeps the notice; showing another outcome (classic again) makes it untrue
    view.show_state(Shown(view.shown.outcome, view.shown.layer, 1))
    assert "scan stopped at" in view.progress_label.text()
    gate.read.clear()
    view.show_state(Shown(outcome_of(classic), layer_of(classic, "edges"), 3))
    assert "the window now" not in view.progress_label.text()
    view.start_scan()
    idle(qtbot, view)
    assert view.result.stats.scanned == len(gate.read) == total - done
    assert not view.banner.isVisible()


def test_clearing_the_cache_during_a_scan_stops_it_first_and_says_nothing_is_kept(
    qtbot, view, classic, tmp_path, gate, monkeypatch
):
    bars_folder(tmp_path / "bars", vertical=6, horizontal=6, blank=4, size=SIZE)
    monkeypatch.setattr(topk_module, "ask_clear", lambda parent, where: True)
    view.show_state(Shown(outcome_of(classic), layer_of(classic, "edges"), 3))
    view.set_folder(tmp_path / "bars")
    qtbot.waitUntil(lambda: view._last_progress[0] >= 2, timeout=30000)
    view.clear_action.trigger()
    assert view.progress_label.text() == "stopping the scan to clear the top-k cache…"
    gate.set()
    idle(qtbot, view)
    text = view.progress_label.text()
    assert text.startswith("scan stopped, top-k cache cleared (") and "cancelled" not in text
    assert text.endswith("): nothing is kept, the next scan starts afresh")
    assert not (tmp_path / "cache" / "topk.sqlite3").exists() and view.result is None
    assert view.window_services.statuses[-1] == f"top-k cache cleared: {tmp_path / 'cache'}"
    assert view.window_services.errors == []
    # nothing was kept indeed: the next scan runs every image
    view.scan_button.click()
    idle(qtbot, view)
    assert view.result.stats.scanned == 16
    assert messages.cleared(1) == "top-k cache cleared (1 file): nothing is kept, the next scan starts afresh"


def test_a_top_photo_deleted_after_the_scan_is_skipped_quietly(qtbot, view, classic, tmp_path):
    bars_folder(tmp_path / "bars", size=SIZE)
    scanned(qtbot, view, classic, tmp_path / "bars")
    first = view.result.entries("edges", 3)[0].path
    first.unlink()
    view.show_state(Shown(outcome_of(classic), layer_of(classic, "edges"), 5))
    view.show_state(Shown(outcome_of(classic), layer_of(classic, "edges"), 3))
    idle(qtbot, view)
    assert view.grid.tiles[0].note.startswith(f"unreadable now: cannot open image {first}")
    view.overlay_box.setChecked(True)  # the maps of the others; the gone one is left as it is
    idle(qtbot, view)
    assert view.examples[0].overlay is None and all(ex.overlay is not None for ex in view.examples[1:])
    assert view.grid.tiles[0].note.startswith("unreadable now:")
    qtbot.mouseClick(view.grid.tiles[0], Qt.MouseButton.LeftButton)
    assert view.window_services.opened == []  # stays on the tab
    assert view.window_services.statuses[-1] == (
        f"cannot open {first.name}: it is no longer there "
        f"(changed since the scan; Scan again to update the top examples)"
    )
    qtbot.mouseClick(view.grid.tiles[1], Qt.MouseButton.LeftButton)  # the others still open
    assert [o[0] for o in view.window_services.opened] == [str(view._entries[1].path)]
    assert view.window_services.errors == []


def test_a_cache_path_that_is_a_file_is_named_in_one_line(qtbot, view, classic, tmp_path, monkeypatch):
    bars_folder(tmp_path / "bars", vertical=2, horizontal=2, blank=0, size=SIZE)
    blocker = tmp_path / "convscope"
    blocker.write_text("not a folder")
    monkeypatch.setenv(ENV, str(blocker))
    view.show_state(Shown(outcome_of(classic), layer_of(classic, "edges"), 3))
    view.set_folder(tmp_path / "bars")
    idle(qtbot, view)
    want = (
        f"cannot use the top-k cache: {blocker} is a file, not a folder "
        f"(move it away, or set {ENV} to another folder)"
    )
    assert view.window_services.errors == [want] and "Errno" not in want
    assert view.progress_label.text() == f"⚠ {want}"
    monkeypatch.setattr(topk_module, "ask_clear", lambda parent, where: True)
    view.clear_action.trigger()
    assert view.window_services.errors[-1] == f"nothing to clear: {blocker} is a file, not a folder"
    assert blocker.read_text() == "not a folder"  # the user's file is left alone


def _ink_columns(a, b) -> np.ndarray:
    """The columns where two grabs of a widget differ (what one draws and the other not)."""
    pa, pb = (qimage_to_rgb(g.toImage()).astype(int) for g in (a, b))
    return np.nonzero(np.abs(pa - pb).sum(axis=(0, 2)) > 60)[0]


def test_the_recent_button_draws_its_arrow_beside_its_text_not_over_it(qtbot, view):
    button = view.folder_bar.recent_button
    assert button.menu() is view.folder_bar.recent_menu
    room = button.fontMetrics().horizontalAdvance("Recent") + button.style().pixelMetric(
        QStyle.PixelMetric.PM_MenuButtonIndicator, None, button
    )
    assert button.width() >= room and button.sizeHint().width() >= room
    # what the text draws, what the arrow draws: grabs at the button's size with and without each
    button.setFixedSize(button.size())
    whole = button.grab()
    button.setText("")
    arrow_only = button.grab()
    button.setMenu(None)
    bare = button.grab()
    button.setMenu(view.folder_bar.recent_menu)
    button.setText("Recent")
    text, arrow = _ink_columns(whole, arrow_only), _ink_columns(arrow_only, bare)
    assert text.size > 10 and arrow.size > 2
    assert arrow.min() - text.max() >= 4  # the arrow right of the "t", with room between
