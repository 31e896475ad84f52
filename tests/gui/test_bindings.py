"""The Qt bindings keep the references they are given (issue 11.1).

PySide6-Essentials 6.12.0 on Python 3.11 released a reference to ``True`` on every ``Signal(bool)``
emit and to ``None`` on every ``QGraphicsItem.parentItem()`` that returned None. pyqtgraph's hover
and paint paths make both calls all the time: after a few thousand mouse moves the interpreter
aborted with ``Fatal Python error: bool_dealloc``. pyproject.toml pins a release without the
fault; these tests fail on one that has it.

Each count is taken with a ballast of extra references held, so a faulty binding fails the test
instead of aborting the whole test run, and the references it dropped are given back afterwards.
(From Python 3.12 ``True`` and ``None`` are immortal: the counts never move and the fault is
harmless; the tests then pass trivially.)
"""

from __future__ import annotations

import ctypes
import sys

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QGraphicsRectItem

CALLS = 400


class _Flag(QObject):
    toggled = Signal(bool)


def _references_lost(obj: object, call) -> int:
    """How many references to ``obj`` ``CALLS`` calls of ``call()`` lost (0 when none)."""
    ballast = [obj] * (4 * CALLS)  # the counts stay far from zero even if every call drops one
    before = sys.getrefcount(obj)
    for _ in range(CALLS):
        call()
    lost = before - sys.getrefcount(obj)
    for _ in range(lost):  # repair the damage for good (never released, even at exit): the rest
        ctypes.pythonapi.Py_IncRef(ctypes.py_object(obj))  # of the run and its exit stay alive
    del ballast
    return lost


def test_emitting_a_bool_signal_keeps_the_reference_to_true(qtbot) -> None:
    flag = _Flag()
    assert _references_lost(True, lambda: flag.toggled.emit(True)) <= 0  # nobody listening
    received = [0]

    def slot(value: bool) -> None:  # keeps no reference of its own, so none hides a drop
        received[0] += 1

    flag.toggled.connect(slot)
    assert _references_lost(True, lambda: flag.toggled.emit(True)) <= 0  # a Python slot
    assert _references_lost(False, lambda: flag.toggled.emit(False)) <= 0
    assert received[0] == 2 * CALLS


def test_a_graphics_item_without_a_parent_keeps_the_reference_to_none(qtbot) -> None:
    item = QGraphicsRectItem()
    assert item.parentItem() is None
    assert _references_lost(None, item.parentItem) <= 0
