"""The top-examples view's status: the scan's progress bar and what it says, the files it
skipped, and the banner when the results shown are another model's or engine's. Every line
fits the width it is given: text too long is elided with "…" and the whole of it is in the
tooltip (the skipped files' tooltip lists each with why), so a narrow
window clips nothing and never grows to fit a long message. The words are
:mod:`models.topk.messages`', the same as the command line's."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from models.topk import messages


class ElidedLabel(QLabel):
    """One line of text, elided at the end to the label's width (the whole text in
    :meth:`text` and, unless set otherwise, the tooltip); it never asks for more width."""

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.setFixedHeight(self.fontMetrics().lineSpacing() + 6)
        self.setText(text)

    def setText(self, text: str, tip: str | None = None) -> None:
        super().setText(text)
        self.setToolTip(text if tip is None else tip)

    def shown_text(self) -> str:
        """The text as painted (elided to the current width)."""
        return self.fontMetrics().elidedText(
            self.text(), Qt.TextElideMode.ElideRight, max(0, self.contentsRect().width())
        )

    def minimumSizeHint(self) -> QSize:
        return QSize(0, self.height())

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.setPen(self.palette().color(self.foregroundRole()))
        p.drawText(
            self.contentsRect(), Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, self.shown_text()
        )
        p.end()


class ScanStatus(QWidget):
    """Progress bar and status line; under them, when a scan skipped files, which ones."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.bar = QProgressBar()
        self.bar.setMaximumWidth(220)
        self.bar.setVisible(False)
        self.label = ElidedLabel()
        self.skipped = ElidedLabel()
        self.skipped.setStyleSheet("color: #e0b040;")
        self.skipped.setVisible(False)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.bar)
        row.addWidget(self.label, 1)
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addLayout(row)
        column.addWidget(self.skipped)

    def show_text(self, text: str) -> None:
        self.label.setText(text)

    def show_progress(self, done: int, total: int, rate: float, left: float | None) -> None:
        self.bar.setRange(0, total)
        self.bar.setValue(done)
        self.label.setText(messages.progress(done, total, rate, left))

    def show_busy(self, busy: bool) -> None:
        if busy:
            self.bar.setRange(0, 0)
        self.bar.setVisible(busy)
        # lay the row out now, not on the next turn of the event loop: the text starts at the
        # left edge as soon as the bar is gone (a grab at once showed it shifted right)
        self.layout().activate()

    def show_skipped(self, skipped: list[tuple[Path, str]], root: Path | None) -> None:
        """``⚠ 3 files skipped (not readable as images): a.jpg, …``; each with why in the
        tooltip."""
        self.skipped.setVisible(bool(skipped))
        if skipped:
            self.skipped.setText(
                f"⚠ {messages.skipped_line(skipped, root)}", messages.skipped_details(skipped, root)
            )

    def clear_skipped(self) -> None:
        self.skipped.setVisible(False)


class StaleBanner(QFrame):
    """Says the results shown were found by another model or on another engine than the window
    shows, with a button to scan again. Signal ``scan(rescan)``: rescan also recomputes what the
    cache holds (another engine), else the cache answers (another model)."""

    scan = Signal(bool)

    def __init__(self) -> None:
        super().__init__()
        self.setStyleSheet("QFrame { background: #5a4a12; border-radius: 4px; } QLabel { color: #fff3c4; }")
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.button = QPushButton("Scan again")
        self.button.clicked.connect(lambda: self.scan.emit(self._rescan))
        row = QHBoxLayout(self)
        row.addWidget(self.label, 1)
        row.addWidget(self.button)
        self.setVisible(False)
        self._rescan = False

    def say(self, why: str, result, model_name: str, engine: str) -> None:
        """``why``: "model" or "engine" (see ``TopKView.stale``)."""
        if why == "model":
            now = model_name + (" with other weights" if model_name == result.model_name else "")
            self.label.setText(
                f"These top examples were found by {result.model_name}; the window now shows "
                f"{now}. Scan the folder again with it (instant if it was scanned before)."
            )
            self.button.setText(f"Scan with {model_name}")
            self._rescan = False
        else:
            self.label.setText(
                f"Computed on {', '.join(result.engines)}; the window now runs {engine}. Engines "
                f"agree within 1e-4 of torch, so the ranking holds; scan again to compute it on {engine}."
            )
            self.button.setText(f"Scan again on {engine}")
            self._rescan = True
