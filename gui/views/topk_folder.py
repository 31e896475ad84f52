"""The top-examples view's folder row: which folder, Open folder…, Recent (the bundled samples
first, then the folders used before, remembered in the window's settings), Scan and Cancel; and
the question before clearing the cache. A folder is *chosen* here (:attr:`FolderBar.chosen`);
the view decides what to do with it."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QMimeData, QSettings, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMenu,
    QMessageBox,
    QPushButton,
    QWidget,
)

from gui.widgets import steady_label
from models.cache import clear_cache
from models.errors import one_line
from models.images import RESOURCES
from models.topk import Store

SAMPLES = RESOURCES / "samples"
MAX_RECENT = 8
RECENT_KEY = "topk/recent_folders"


def ask_folder(parent: QWidget) -> str:
    """The folder dialog (tests replace this function)."""
    return QFileDialog.getExistingDirectory(parent, "Folder of images for top examples")


def ask_clear(parent: QWidget, where: Path) -> bool:
    """Confirm clearing the cache (tests replace this function)."""
    answer = QMessageBox.question(
        parent,
        "Clear the top-k cache?",
        f"Delete every stored top-k scan in {where}?\n\nNothing is lost that cannot be computed "
        f"again, but every folder will have to be scanned again.",
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        QMessageBox.StandardButton.No,
    )
    return answer == QMessageBox.StandardButton.Yes


def remove_store(path: Path) -> list[str]:
    """Delete the database at ``path`` and SQLite's files beside it; the paths removed."""
    removed = []
    for suffix in ("", "-wal", "-shm", "-journal"):
        try:
            os.unlink(f"{path}{suffix}")
        except FileNotFoundError:
            continue
        removed.append(f"{path}{suffix}")
    return removed


def clear_store(store: Store | None) -> tuple[list[str], str | None]:
    """Delete the stored scans: the cache's files (``store`` None: the default store) or
    ``store``'s database. The paths removed, and why in one line when that failed."""
    where = store or Store()
    try:
        removed = [str(p) for p in clear_cache()] if store is None else remove_store(where.path)
    except OSError as exc:  # e.g. the cache "folder" is a file
        blocker = where.not_a_folder()
        if blocker is not None:
            return [], f"nothing to clear: {blocker} is a file, not a folder"
        return [], f"cannot clear the top-k cache: {one_line(exc)}"
    return removed, None


def dropped_folder(mime: QMimeData) -> str | None:
    """The first local folder among dropped URLs, if any."""
    for url in mime.urls():
        if url.isLocalFile() and os.path.isdir(url.toLocalFile()):
            return url.toLocalFile()
    return None


class FolderBar(QWidget):
    chosen = Signal(object)  # a Path the user picked (not checked yet)

    def __init__(self, settings: Callable[[], QSettings | None], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._settings = settings
        self._recent: list[str] = []  # without settings (a view on its own)
        self.label = steady_label("no folder")
        self.open_button = QPushButton("Open folder…")
        self.open_button.clicked.connect(self.choose)
        # a push button with a menu: the style sizes it to its text *and* the menu arrow (a
        # tool button's arrow was drawn over the "t" of "Recent" at every size)
        self.recent_button = QPushButton("Recent")
        self.recent_button.setToolTip("The bundled samples and the folders scanned before")
        self.recent_menu = QMenu(self.recent_button)
        self.recent_menu.aboutToShow.connect(self.fill_recent)
        self.recent_button.setMenu(self.recent_menu)
        self.scan_button = QPushButton("Scan")
        self.scan_button.setToolTip(
            "Run every image of the folder through the model (only new or "
            "changed files when it was scanned before)"
        )
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the scan: what was scanned is kept, Scan goes on from there")
        self.cancel_button.setVisible(False)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QLabel("Folder:"))
        row.addWidget(self.label, 1)
        for w in (self.open_button, self.recent_button, self.scan_button, self.cancel_button):
            row.addWidget(w)

    def choose(self) -> None:
        path = ask_folder(self)
        if path:
            self.chosen.emit(Path(path))

    def show_folder(self, folder: Path) -> None:
        self.label.setText(str(folder))

    def recent_folders(self) -> list[str]:
        settings = self._settings()
        if settings is None:
            return list(self._recent)
        value = settings.value(RECENT_KEY, [])
        return [value] if isinstance(value, str) else list(value or [])

    def remember(self, folder: Path) -> None:
        path = str(folder.absolute())
        recent = ([path] + [p for p in self.recent_folders() if p != path])[:MAX_RECENT]
        settings = self._settings()
        if settings is None:
            self._recent = recent
        else:
            settings.setValue(RECENT_KEY, recent)

    def fill_recent(self) -> None:
        self.recent_menu.clear()
        self.recent_menu.addAction("Bundled samples", lambda: self.chosen.emit(SAMPLES))
        self.recent_menu.addSeparator()
        folders = self.recent_folders()
        for path in folders:
            self.recent_menu.addAction(path, lambda p=path: self.chosen.emit(Path(p)))
        if not folders:
            self.recent_menu.addAction("(no recent folders)").setEnabled(False)
