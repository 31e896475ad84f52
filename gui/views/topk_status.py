"""The top-examples view's status: the scan's progress bar and what it says, and the files it
skipped. Every line fits the width it is given: text too long is elided with "…" and the
whole of it is in the tooltip (the skipped files' tooltip lists each with why), so a narrow
window clips nothing and never grows to fit a long message. The words are
:mod:`models.topk.messages`', the same as the command line's."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QSizePolicy, QVBoxLayout, QWidget

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
