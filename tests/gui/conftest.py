"""The real main window, offscreen, with settings in a temporary file."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSettings


@pytest.fixture
def settings(tmp_path) -> QSettings:
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def window(qtbot, settings):
    from gui.main_window import MainWindow
    from gui.widgets import configure_pyqtgraph

    configure_pyqtgraph(antialias=False)

    win = MainWindow(settings)
    qtbot.addWidget(win)
    win.resize(1400, 900)
    win.show()
    yield win
    win.worker.cancel()
    win.worker.wait(30000)  # no thread may outlive its test


def wait_run(qtbot, win, timeout: int = 60000) -> None:
    qtbot.waitUntil(win.idle, timeout=timeout)  # the run, and the explainer's frame if shown
    qtbot.wait(10)


@pytest.fixture
def classic(window, qtbot):
    """The window showing the classic model on the sample cat."""
    window.start(model="classic", engine="im2col")
    wait_run(qtbot, window)
    assert window.outcome is not None, window.last_error
    return window
