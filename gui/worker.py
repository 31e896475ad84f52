"""Model work off the GUI thread: one job at a time per lane; a new request cancels the stale one.

A job is a plain function ``fn(progress, cancel) -> result``: ``progress(done, total)`` reports,
``cancel()`` says whether to stop (raise :class:`models.errors.Cancelled`). Results of a job
that was superseded are dropped, so the window only ever shows the latest request.
"""

from __future__ import annotations

import gc
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from models.errors import Cancelled, ConvScopeError

Job = Callable[[Callable[[int, int | None], None], Callable[[], bool]], Any]


class _Signals(QObject):
    done = Signal(int, object)
    failed = Signal(int, str)
    progress = Signal(int, int, int)  # generation, done, total (0 = unknown)


class _Runnable(QRunnable):
    def __init__(self, gen: int, fn: Job, signals: _Signals, cancelled: threading.Event) -> None:
        super().__init__()
        self.gen, self.fn, self.signals, self.cancelled = gen, fn, signals, cancelled

    def run(self) -> None:
        try:
            result = self.fn(lambda d, t: self.signals.progress.emit(self.gen, int(d), int(t or 0)),
                             self.cancelled.is_set)
        except Cancelled:
            self.signals.failed.emit(self.gen, "")
        except ConvScopeError as exc:
            self.signals.failed.emit(self.gen, str(exc))
        except Exception as exc:
            traceback.print_exc()
            self.signals.failed.emit(self.gen, f"{type(exc).__name__}: {exc}".splitlines()[0])
        else:
            self.signals.done.emit(self.gen, result)


def _keep_the_window_responsive() -> None:
    """Two interpreter settings that the window's worst pauses came from (benchmarks/gui.py).

    - Python hands the GIL between threads every switch interval (5 ms by default). A paint calls
      into Python (pyqtgraph) dozens of times, and while a job runs Python code each call could
      wait up to 5 ms for the worker to let go: one repaint became a 150 ms freeze. 1 ms keeps the
      waits short; the worker loses little (its heavy work is in NumPy and torch, which release
      the GIL).
    - A full garbage collection walks every object the imports made (torch alone makes hundreds
      of thousands): a 300-430 ms freeze, every few dozen layer steps. Freezing what exists once
      the window is built takes those objects out of every later collection; cycles among them
      are never freed, and they are the modules and classes that live as long as the app.
    """
    global _responsive
    if _responsive:  # once: a second collection would only cost start-up time
        return
    _responsive = True
    sys.setswitchinterval(min(sys.getswitchinterval(), 0.001))
    gc.collect()
    gc.freeze()


_responsive = False


class Worker(QObject):
    """Runs jobs on a thread pool; emits ``finished(result)``, ``failed(message)``,
    ``progress(done, total)`` for the latest job only, and ``cancelled()`` when the latest job
    stopped because :meth:`cancel` was called (a superseded job ends silently). ``busy`` while one
    runs."""

    finished = Signal(object)
    failed = Signal(str)
    cancelled = Signal()
    progress = Signal(int, int)
    busy_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = QThreadPool()
        self._pool.setMaxThreadCount(1)  # one model at a time: 2 cores, and torch is not re-entrant
        _keep_the_window_responsive()
        self._gen = 0
        self._cancel = threading.Event()
        self._callbacks: dict[int, tuple[Callable | None, Callable | None]] = {}
        self._signals = _Signals()
        self._signals.done.connect(self._on_done)
        self._signals.failed.connect(self._on_failed)
        self._signals.progress.connect(self._on_progress)
        self._running = 0
        self._quiet = False

    @property
    def busy(self) -> bool:
        return self._running > 0

    @property
    def quiet(self) -> bool:
        """The latest job is background work (no progress shown; a click may cancel it)."""
        return self._quiet

    def submit(self, fn: Job, on_done: Callable[[Any], None] | None = None,
               on_error: Callable[[str], None] | None = None, quiet: bool = False) -> int:
        """Start ``fn``; cancels whatever ran before. Returns the job's generation."""
        self._quiet = quiet
        self._cancel.set()
        self._gen += 1
        self._cancel = threading.Event()
        self._callbacks[self._gen] = (on_done, on_error)
        self._running += 1
        self.busy_changed.emit(True)  # on every job: a loud one may follow a quiet one
        self._pool.start(_Runnable(self._gen, fn, self._signals, self._cancel))
        return self._gen

    def cancel(self) -> None:
        self._cancel.set()

    def wait(self, msecs: int = 60000) -> bool:
        return self._pool.waitForDone(msecs)

    def _finish(self, gen: int) -> None:
        # after the callbacks: one that submits a follow-up job keeps the worker busy throughout
        self._running -= 1
        if self._running == 0:
            self.busy_changed.emit(False)

    def _on_done(self, gen: int, result: object) -> None:
        callbacks = self._callbacks.pop(gen, (None, None))
        try:
            if gen == self._gen:  # else stale
                if callbacks[0]:
                    callbacks[0](result)
                self.finished.emit(result)
        finally:
            self._finish(gen)

    def _on_failed(self, gen: int, message: str) -> None:
        callbacks = self._callbacks.pop(gen, (None, None))
        try:
            if gen == self._gen and message:  # else stale, or cancelled
                if callbacks[1]:
                    callbacks[1](message)
                self.failed.emit(message)
            elif gen == self._gen:  # the latest job, stopped by cancel(): the user asked
                self.cancelled.emit()
        finally:
            self._finish(gen)

    def _on_progress(self, gen: int, done: int, total: int) -> None:
        if gen == self._gen:
            self.progress.emit(done, total)
