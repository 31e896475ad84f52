"""Work off the GUI thread, in lanes: one job at a time per lane; a new request cancels the stale
one; a job that will not stop is left behind instead of taking the app with it.

A job is a plain function ``fn(progress, cancel) -> result``: ``progress(done, total)`` reports,
``cancel()`` says whether to stop (raise :class:`models.errors.Cancelled`). A :class:`Worker` is a
lane: its jobs run one after another on the lane's daemon thread (a new one when a job is left
behind, or after ``IDLE_S`` without work).

What cancels what
-----------------
- ``submit(fn)`` supersedes the jobs before it in the lane: they are cancelled and their results
  (or errors) are dropped, so the window only ever shows the latest request.
  ``submit(fn, supersede=False)`` queues behind them instead (exports: every one is wanted).
- ``cancel()`` cancels every job of the lane; the ones that stop say so with ``cancelled``.
- A cancelled job has ``grace_s`` (1.5 s, timed on the event loop) to stop by itself. Then, if
  it is seen running Python code, :class:`Cancelled` is raised inside it
  (``PyThreadState_SetAsyncExc``: lands at its next Python line, so it stops Python loops; a
  thread blocked in one C call is left alone, see :func:`_raise_in`). If it is still running
  ``INTERRUPT_S`` later it is *abandoned*: its thread runs on unwatched, whatever it returns is
  ignored, the lane goes on with the next job at once on a new thread, and ``abandoned`` says
  so. Daemon threads never keep the process from exiting.
- ``shutdown()`` (closing the window) cancels everything and waits a moment at most.

Errors cross the thread as exception objects (``failed(exc)``, ``on_error(exc)``), so the window
branches on the type; :func:`error_message` makes the one line a user reads.
"""

from __future__ import annotations

import ctypes
import gc
import queue
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from models.errors import Cancelled, ConvScopeError

Job = Callable[[Callable[[int, int | None], None], Callable[[], bool]], Any]

GRACE_S = 1.5  # a cancelled job's time to stop by itself (the runner checks on every conv)
INTERRUPT_S = 0.5  # then Cancelled is raised inside it; this long for it to land
PROBE_S = 0.2  # how long a job is watched for running Python before an interruption
IDLE_S = 30.0  # a lane's thread ends after this long without work


def error_message(exc: BaseException) -> str:
    """The one line a user reads: a ConvScope error's own message, else the type and the first
    line (a bug: its traceback went to stderr)."""
    if isinstance(exc, ConvScopeError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


def _raise_in(thread_id: int) -> None:
    """Raise :class:`Cancelled` in the thread at its next Python line.

    Only into a thread seen running Python (:func:`_runs_python`), and never withdrawn: until the
    thread takes it, CPython 3.11 keeps the interpreter-wide "something pending" flag raised, so
    every thread checks it at every call and loop (slower), and under a tracer or profiler (a
    debugger, coverage, cProfile) the GUI thread spins on it for good. Withdrawing with NULL
    leaves the flag raised too; a pending one is taken in the thread instead (:func:`_absorb`).
    """
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(Cancelled))


def _absorb() -> None:
    """A Python call: an interruption still pending for this thread lands here, on entry."""


def _runs_python(thread_id: int, seconds: float, every: float = 0.01) -> bool:
    """Whether the thread executes Python code (its innermost Python frame moves) within
    ``seconds``; a thread blocked in one C call never does."""
    seen = set()
    deadline = time.monotonic() + seconds
    while True:
        frame = sys._current_frames().get(thread_id)
        if frame is None:
            return False
        seen.add((id(frame), frame.f_lasti))
        del frame
        if len(seen) > 1:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(every)


class _Job:
    """One submitted job; thread-side state is guarded by ``lock``."""

    def __init__(self, gen: int, fn: Job, on_done, on_error, quiet: bool) -> None:
        self.gen, self.fn, self.on_done, self.on_error, self.quiet = gen, fn, on_done, on_error, quiet
        self.cancel = threading.Event()  # the job's cancel() answer
        self.stale = False  # superseded: its outcome is dropped (GUI thread only)
        self.started = threading.Event()  # in fn, or over without running it
        self.gone = threading.Event()  # ended, or abandoned
        self.lock = threading.Lock()
        self.in_fn = False  # an interruption may be raised in it now
        self.abandoned = False
        self.watched = False  # a supervisor is on it (after the first cancel)
        self.thread: threading.Thread | None = None  # the lane thread running it

    def interrupt(self, probe_s: float = PROBE_S) -> bool:
        """Raise Cancelled inside the job if it is running Python code; True if raised."""
        ident = self.thread.ident if self.thread is not None else None
        if ident is None or not self.in_fn or not _runs_python(ident, probe_s):
            return False  # over, or stuck in C: where no exception can land
        with self.lock:
            if self.in_fn:
                _raise_in(ident)
                return True
        return False

    def abandon(self) -> bool:
        with self.lock:
            if self.gone.is_set():
                return False
            self.abandoned = True
            self.gone.set()
            return True


class _Signals(QObject):
    ended = Signal(object, str, object)  # job, "done" / "failed" / "cancelled", result or exception
    abandoned = Signal(object)
    progress = Signal(object, int, int)  # job, done, total (0 = unknown)


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
_settled = False


def settle_heap() -> None:
    """Once, when the first model has run: freeze what exists (the model, torch's lazily made
    objects: ~80,000 of them) out of later collections, as ``_keep_the_window_responsive`` did
    for the imports. Without it a full collection fired in a feature visualization's thread
    paused the window 140-160 ms. ``gc.freeze`` moves the objects without collecting (no
    pause); what of them is garbage now stays, once."""
    global _settled
    if not _settled:
        _settled = True
        gc.freeze()


class Worker(QObject):
    """A lane of jobs, run one after another on a daemon thread.

    Signals (for jobs not superseded): ``finished(result)``, ``failed(exception)``,
    ``progress(done, total)``, ``cancelled()`` when a job stopped because :meth:`cancel` was
    called, ``abandoned()`` when it did not stop and was left behind; ``busy_changed(bool)``.
    ``busy`` from a submit until the last job's outcome has been delivered (or it was abandoned).
    """

    finished = Signal(object)
    failed = Signal(object)
    cancelled = Signal()
    abandoned = Signal()
    progress = Signal(int, int)
    busy_changed = Signal(bool)

    def __init__(
        self, parent: QObject | None = None, name: str = "worker", grace_s: float | None = None
    ) -> None:
        super().__init__(parent)
        _keep_the_window_responsive()
        self.name = name
        self.grace_s = GRACE_S if grace_s is None else grace_s
        self._gen = 0
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._runner: threading.Thread | None = None  # the thread taking the lane's jobs
        self._runner_lock = threading.Lock()
        self._live: list[_Job] = []  # submitted and not yet delivered nor abandoned
        self._left: list[_Job] = []  # abandoned
        self._quiet = False
        self._signals = _Signals()
        self._signals.ended.connect(self._on_ended)
        self._signals.abandoned.connect(self._on_abandoned)
        self._signals.progress.connect(self._on_progress)

    # ----------------------------------------------------------------- state
    @property
    def busy(self) -> bool:
        return bool(self._live)

    @property
    def quiet(self) -> bool:
        """The latest job is background work (no progress shown; a click may cancel it)."""
        return self._quiet

    @property
    def left_behind(self) -> int:
        """Abandoned jobs whose threads still run (each may go on working until it ends)."""
        self._left = [j for j in self._left if j.thread is not None and j.thread.is_alive()]
        return len(self._left)

    # ----------------------------------------------------------------- jobs
    def submit(
        self,
        fn: Job,
        on_done: Callable[[Any], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        quiet: bool = False,
        supersede: bool = True,
    ) -> int:
        """Run ``fn`` after the lane's earlier jobs, cancelling them unless ``supersede`` is False.
        Returns the job's generation."""
        if supersede:
            for job in self._live:
                job.stale = True  # also one that ended and whose outcome is not delivered yet
                if not job.gone.is_set():
                    self._cancel(job)
        self._quiet = quiet
        self._gen += 1
        job = _Job(self._gen, fn, on_done, on_error, quiet)
        self._live.append(job)
        self.busy_changed.emit(True)  # on every job: a loud one may follow a quiet one
        self._queue.put(job)
        self._ensure_runner()
        return job.gen

    def cancel(self) -> None:
        """Cancel every job of the lane (the user pressed Cancel)."""
        for job in self._live:
            self._cancel(job)

    def wait(self, msecs: int = 60000) -> bool:
        """Block until every job has ended or been abandoned (their outcomes are delivered by the
        event loop afterwards). False on timeout."""
        deadline = time.monotonic() + msecs / 1000
        for job in list(self._live):
            if not job.gone.wait(max(0.0, deadline - time.monotonic())):
                return False
        return True

    def shutdown(self, msecs: int = 1000) -> bool:
        """Cancel everything and wait ``msecs`` at most: a job still running then is interrupted
        and abandoned, never waited for (closing the window). True when every job stopped."""
        jobs = list(self._live)
        for job in jobs:
            job.stale = True
            job.cancel.set()
        half = max(0, msecs // 2)
        if self.wait(half):
            self._stop_runner()
            return True
        for job in jobs:
            job.interrupt(probe_s=0.05)
        if self.wait(msecs - half):
            self._stop_runner()
            return True
        for job in jobs:
            if job.abandon():
                self._left.append(job)
                self._retire(job)
        self._stop_runner()
        return False

    # ----------------------------------------------------------------- internals
    def _ensure_runner(self) -> None:
        with self._runner_lock:
            if self._runner is None:
                self._runner = threading.Thread(target=self._serve, name=f"{self.name}-lane", daemon=True)
                self._runner.start()

    def _stop_runner(self) -> None:
        with self._runner_lock:
            if self._runner is not None:
                self._runner = None
                self._queue.put(None)  # wakes it: it is no longer the lane's, and ends

    def _serve(self) -> None:
        """The lane's thread: its jobs in order, until it is replaced (its job was left behind),
        stopped, or idle for ``IDLE_S``."""
        me = threading.current_thread()
        while True:
            try:
                job = self._queue.get(timeout=IDLE_S)
            except queue.Empty:
                with self._runner_lock:  # a job put meanwhile finds a runner, old or new
                    if self._runner is me and self._queue.empty():
                        self._runner = None
                        return
                continue
            if job is None:
                if self._runner is not me:
                    return
                continue  # a stop meant for a thread before this one
            self._run(job)
            if self._runner is not me:  # left behind inside that job: the lane has a new thread
                return

    def _cancel(self, job: _Job) -> None:
        job.cancel.set()
        if not job.watched:  # a timer, not a thread: a cancel costs the GUI thread nothing
            job.watched = True
            QTimer.singleShot(int(self.grace_s * 1000), self, lambda: self._check(job))

    def _check(self, job: _Job) -> None:
        """The grace of a cancelled job is over (GUI thread)."""
        if job.gone.is_set():
            return  # it stopped, as nearly every job does
        if not job.started.is_set():  # queued behind a stuck job: it stops as soon as it starts
            QTimer.singleShot(int(self.grace_s * 1000), self, lambda: self._check(job))
            return
        threading.Thread(
            target=self._rescue, args=(job,), name=f"{self.name}-{job.gen}-rescue", daemon=True
        ).start()

    def _rescue(self, job: _Job) -> None:
        """Stop a cancelled job that did not stop by itself; leave it behind if nothing works."""
        job.interrupt()
        if job.gone.wait(INTERRUPT_S):
            return
        if job.abandon():
            with self._runner_lock:
                if self._runner is job.thread:
                    self._runner = None
            self._ensure_runner()  # the lane's next jobs run on a new thread
            self._signals.abandoned.emit(job)

    def _run(self, job: _Job) -> None:
        """Run one job on the lane's thread and report its outcome.

        An interruption sent while ``fn`` runs may land at any call after ``fn`` has returned,
        until ``in_fn`` is cleared: every such line is inside a ``try`` that catches it (the
        ``while`` below has no call in its test, so nothing lands between the ``try`` blocks).
        """
        outcome, value = "cancelled", None
        job.thread = threading.current_thread()
        try:
            if not job.cancel.is_set():  # (a job cancelled before it started never runs)
                with job.lock:
                    job.in_fn = True
                job.started.set()
                try:
                    value = job.fn(
                        lambda d, t: self._signals.progress.emit(job, int(d), int(t or 0)), job.cancel.is_set
                    )
                    outcome = "done"
                except Cancelled as exc:  # asked for; else something else stopped it: an error
                    outcome, value = ("cancelled", None) if job.cancel.is_set() else ("failed", exc)
                except Exception as exc:
                    # stopped on request, whatever the code in between made of the Cancelled
                    outcome, value = ("cancelled", None) if job.cancel.is_set() else ("failed", exc)
        except Cancelled:  # an interruption that landed between the lines above
            outcome, value = "cancelled", None
        stopped = False
        while not stopped:
            try:
                with job.lock:  # no interruption is sent once in_fn is False...
                    job.in_fn = False
                _absorb()  # ...and one sent before lands here
                stopped = True
            except Cancelled:
                outcome, value = "cancelled", None
        if outcome == "failed" and not isinstance(value, ConvScopeError | Cancelled):
            traceback.print_exception(value)  # a bug: its traceback, for the reader
        job.fn = None  # what it holds (e.g. the previous outcome) is not kept by the lane
        job.started.set()
        with job.lock:
            if not job.abandoned:  # an abandoned job's outcome is ignored for good
                self._signals.ended.emit(job, outcome, value)
                job.gone.set()

    def _retire(self, job: _Job) -> None:
        # after the callbacks: one that submits a follow-up job keeps the worker busy throughout
        if job in self._live:
            self._live.remove(job)
            if not self._live:
                self.busy_changed.emit(False)

    def _on_ended(self, job: _Job, outcome: str, value: object) -> None:
        try:
            if job.stale or job.abandoned:
                return
            if outcome == "done":
                if job.on_done:
                    job.on_done(value)
                self.finished.emit(value)
            elif outcome == "failed":
                if job.on_error:
                    job.on_error(value)
                self.failed.emit(value)
            elif job.cancel.is_set():  # stopped by cancel(): the user asked
                self.cancelled.emit()
        finally:
            job.on_done = job.on_error = None
            self._retire(job)

    def _on_abandoned(self, job: _Job) -> None:
        self._left.append(job)
        try:
            if not job.stale:
                self.abandoned.emit()
        finally:
            self._retire(job)

    def _on_progress(self, job: _Job, done: int, total: int) -> None:
        if not job.stale and not job.abandoned:
            self.progress.emit(done, total)
