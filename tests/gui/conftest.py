"""Shared fixtures of the GUI tests: the real main window (offscreen, settings in a temporary
file), the views on their own, a worker lane; and a check that no test leaves a thread running."""

from __future__ import annotations

import threading
import time

import pytest
from PySide6.QtCore import QSettings, QThreadPool

THREAD_GRACE_S = 10.0  # a thread still running this long after its test is a leak
# process-wide pools made once and kept by design (the engines' own threads), not leaks
LONG_LIVED = ("convscope-engine",)


@pytest.fixture(autouse=True)
def no_thread_left_running():
    """Fail a test that leaves a worker (or any other) thread running (napari's
    ``_dangling_qthreads``): every job has ended, or was left behind and then released."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + THREAD_GRACE_S

    def left() -> list[threading.Thread]:
        return [
            t
            for t in threading.enumerate()
            if t not in before and t.is_alive() and not t.name.startswith(LONG_LIVED)
        ]

    while left() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not left(), f"threads left running: {[t.name for t in left()]}"
    assert QThreadPool.globalInstance().activeThreadCount() == 0


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
    for lane in win.workers():
        lane.cancel()
    for lane in win.workers():
        assert lane.wait(30000)  # no thread may outlive its test


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


@pytest.fixture
def explainer_view(qtbot):
    from gui.explainer import ExplainerView

    widget = ExplainerView()
    qtbot.addWidget(widget)
    widget.resize(1300, 800)
    widget.show()
    yield widget
    widget.pause()
    for lane in widget.workers():
        lane.cancel()
        assert lane.wait(10000)
        lane.shutdown()  # its thread ends


@pytest.fixture
def filters_view(qtbot):
    from gui.filters_view import FiltersView

    view = FiltersView()
    qtbot.addWidget(view)
    view.resize(800, 700)
    view.show()
    return view


@pytest.fixture
def worker(qtbot):
    from gui.worker import Worker

    w = Worker()
    yield w
    w.cancel()
    assert w.wait(10000)  # no thread outlives its test
    w.shutdown()


@pytest.fixture
def lane(qtbot):
    """A worker whose cancelled jobs are interrupted after 0.2 s (not 1.5); ``lane.release``
    ends the stuck jobs a test made, when it ends."""
    from gui.worker import Worker

    w = Worker(name="test-lane", grace_s=0.2)
    w.release = threading.Event()
    yield w
    w.release.set()  # whatever was left behind ends now: no thread outlives its test
    w.cancel()
    assert w.wait(10000)
    w.shutdown()
