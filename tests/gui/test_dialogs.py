"""File dialogs open where the user was last (or Pictures), suggest names that say what a file
shows, give the keyboard back to the window; the photo exports with its overlay."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtWidgets import QApplication, QFileDialog

from tests.gui.conftest import wait_run


def test_save_dialogs_start_in_the_last_folder_with_telling_names(
    classic, qtbot, tmp_path, monkeypatch
) -> None:
    win = classic
    asked: list[str] = []
    target = tmp_path / "out" / "view.png"
    target.parent.mkdir()

    def save(parent, title, suggested, filters):
        asked.append(suggested)
        return str(target), filters

    monkeypatch.setattr(QFileDialog, "getSaveFileName", save)
    win.export_view_dialog()
    with Image.open(target) as written:
        assert written.size[0] > 0
    first = Path(asked[0])
    assert first.name == f"classic.{win.current_layer().name}.maps.png"
    assert str(first.parent) != str(Path.cwd())  # Pictures or home, not where the app runs
    win.export_view_dialog()
    assert Path(asked[1]).parent == target.parent  # the folder used last
    assert QApplication.focusWidget() is not None and QApplication.focusWidget().window() is win
    # a tab's own export (a visualization, a CAM, the explainer's GIF) asks through the window:
    # the same folder, remembered
    for key in ("featvis", "cam", "explain"):
        assert win.view(key).save_path("Export", "x.png", "PNG (*.png)") == str(target)
        assert Path(asked[-1]) == target.parent / "x.png"


def test_the_photo_exports_with_its_overlay(classic, qtbot, tmp_path) -> None:
    win = classic
    layer = win.current_layer()
    _, _, h, w = layer.output_shape
    win.select_unit(h // 2, w // 2)
    wait_run(qtbot, win)
    path = win.export_photo(str(tmp_path / "photo"))
    assert path == tmp_path / "photo.png"
    with Image.open(path) as written:
        pixels = np.asarray(written.convert("RGB"))
    assert pixels.shape[0] > 50 and pixels.shape[1] > 50
    # the receptive-field box is drawn in yellow (255, 220, 0) over the photo
    yellow = (pixels[..., 0] > 200) & (pixels[..., 1] > 180) & (pixels[..., 2] < 80)
    assert yellow.sum() > 20
