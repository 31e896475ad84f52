"""The window's menus and keys (built once; they call the window's methods)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence, QShortcut

from models.sources import available_models

if TYPE_CHECKING:
    from gui.main_window import MainWindow


def build_menus(win: MainWindow) -> None:
    """File (open, samples, recent, paste, export, quit) and Model (catalog, Untrained, a file).
    Sets ``win.samples_menu``, ``win.recent_menu``, ``win.model_actions``, ``win.untrained_action``."""
    from models.images import sample_images

    file_menu = win.menuBar().addMenu("&File")
    file_menu.addAction("Open image…", QKeySequence.StandardKey.Open, win.open_image_dialog)
    win.samples_menu = file_menu.addMenu("Sample photos")
    for name, path in sample_images().items():
        win.samples_menu.addAction(name, lambda p=str(path): win.open_image(p))
    win.recent_menu = file_menu.addMenu("Recent images")
    win._refresh_recent()
    file_menu.addAction("Paste image", QKeySequence.StandardKey.Paste, win.paste_image)
    for action in win.topk.actions_for_menu():  # open a folder for top examples; clear its cache
        file_menu.addAction(action)
    file_menu.addSeparator()
    file_menu.addAction("Export view as PNG…", win.export_view_dialog)
    file_menu.addAction("Export photo with overlay as PNG…", win.export_photo_dialog)
    file_menu.addAction("Export layer activations (.npy)…", win.export_npy_dialog)
    file_menu.addAction("Export everything…", win.export_all_dialog)
    file_menu.addSeparator()
    file_menu.addAction("Quit", QKeySequence.StandardKey.Quit, win.close)

    model_menu = win.menuBar().addMenu("&Model")
    win.model_group = QActionGroup(win)
    win.model_actions: dict[str, QAction] = {}
    for name in available_models():
        action = model_menu.addAction(name, lambda n=name: win.open_model(n))
        action.setCheckable(True)
        win.model_group.addAction(action)
        win.model_actions[name] = action
    model_menu.addSeparator()
    win.untrained_action = model_menu.addAction("Untrained (random weights, offline)")
    win.untrained_action.setCheckable(True)
    win.untrained_action.toggled.connect(win.set_untrained)
    model_menu.addAction("Open model file…", win.open_model_dialog)
    win.settings_action = model_menu.addAction("Model file settings…", win.edit_model_settings)


def build_shortcuts(win: MainWindow) -> None:
    """Arrows step layers, Page Up/Down step convolutions, Home/End the first and last layer."""
    nav = win.navigator
    for keys, fn in (
        ((Qt.Key.Key_Right, Qt.Key.Key_Down), lambda: nav.step(1)),
        ((Qt.Key.Key_Left, Qt.Key.Key_Up), lambda: nav.step(-1)),
        ((Qt.Key.Key_PageDown,), lambda: nav.step_conv(1)),
        ((Qt.Key.Key_PageUp,), lambda: nav.step_conv(-1)),
        ((Qt.Key.Key_Home,), lambda: nav.set_index(0)),
        ((Qt.Key.Key_End,), lambda: nav.set_index(nav.count() - 1)),
    ):
        for key in keys:
            shortcut = QShortcut(QKeySequence(key), win)
            shortcut.setContext(Qt.ShortcutContext.WindowShortcut)
            shortcut.activated.connect(fn)
