"""The worker: jobs off the GUI thread, the latest one wins, cancel and errors reach the window."""

from __future__ import annotations

import threading

import pytest

from gui.worker import Worker
from models.errors import Cancelled, ModelError


@pytest.fixture
def worker(qtbot):
    w = Worker()
    yield w
    w.cancel()
    assert w.wait(10000)  # no thread outlives its test


def test_a_job_runs_off_the_gui_thread_and_reports_progress(worker, qtbot) -> None:
    main = threading.get_ident()
    seen: list[tuple[int, int]] = []
    worker.progress.connect(lambda d, t: seen.append((d, t)))

    def job(progress, cancel):
        for i in range(3):
            progress(i + 1, 3)
        return threading.get_ident()

    results = []
    with qtbot.waitSignals([worker.busy_changed, worker.finished, worker.busy_changed],
                           order="strict", timeout=10000):
        worker.submit(job, results.append)
    assert results[0] != main
    assert seen == [(1, 3), (2, 3), (3, 3)]
    assert not worker.busy


def test_a_new_request_cancels_the_stale_one_and_drops_its_result(worker, qtbot) -> None:
    started, stopped = threading.Event(), threading.Event()

    def slow(progress, cancel):
        started.set()
        while not cancel():
            threading.Event().wait(0.005)
        stopped.set()
        raise Cancelled("superseded")

    done: list[str] = []
    cancelled: list[bool] = []
    worker.cancelled.connect(lambda: cancelled.append(True))
    worker.submit(slow, lambda r: done.append("slow"))
    assert started.wait(5)
    worker.submit(lambda p, c: "fast", done.append)  # the user clicked ahead
    qtbot.waitUntil(lambda: not worker.busy, timeout=10000)
    assert stopped.is_set()
    assert done == ["fast"]  # the stale job's result never reaches the window
    assert cancelled == []  # superseded, not cancelled by the user: no message


def test_cancel_stops_the_latest_job_and_says_so(worker, qtbot) -> None:
    started = threading.Event()

    def slow(progress, cancel):
        started.set()
        while not cancel():
            threading.Event().wait(0.005)
        raise Cancelled("stopped")

    done: list[object] = []
    worker.submit(slow, done.append, done.append)
    assert started.wait(5)
    with qtbot.waitSignal(worker.cancelled, timeout=10000):
        worker.cancel()
    qtbot.waitUntil(lambda: not worker.busy, timeout=10000)
    assert done == []


def test_errors_arrive_as_one_line(worker, qtbot) -> None:
    def bad_model(progress, cancel):
        raise ModelError("not a model: notes.txt")

    def bug(progress, cancel):
        raise KeyError("line one\nline two")

    errors: list[str] = []
    with qtbot.waitSignal(worker.failed, timeout=10000):
        worker.submit(bad_model, on_error=errors.append)
    with qtbot.waitSignal(worker.failed, timeout=10000):
        worker.submit(bug, on_error=errors.append)
    assert errors[0] == "not a model: notes.txt"
    assert errors[1].startswith("KeyError: ") and "\n" not in errors[1]
