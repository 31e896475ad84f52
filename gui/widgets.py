"""Small widgets shared by the views."""

from __future__ import annotations

import html
import re

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import QLabel, QSizePolicy

_TAG = re.compile(r"<[^>]+>")


def configure_pyqtgraph(antialias: bool = True) -> None:
    """pyqtgraph options the views rely on (the app, the tests and benchmarks/gui.py).

    - images are indexed ``[row, column]``, as NumPy arrays are;
    - no mouse-move rate limit: pyqtgraph drops moves closer than 10 ms apart by default, and
      the last of them too, so the readout could name a unit the mouse had left. Qt already
      merges queued moves, and a hover costs a lookup and a label.
    """
    pg.setConfigOptions(imageAxisOrder="row-major", antialias=antialias, mouseRateLimit=0)


def steady_label(text: str = "", lines: int = 1, wrap: bool = False, width_of: str | None = None) -> QLabel:
    """A label whose text changes often (on every layer step or mouse move) without moving
    anything around it.

    A plain QLabel asks its layout for room on every ``setText``, and an unwrapped label's minimum
    width is its whole text: a long readout widened its pane, the splitter re-balanced, and the
    window repainted everything several times per layer step. This one has a fixed height of
    ``lines`` lines and takes the width its layout gives it (or, with ``width_of``, exactly the
    width of that sample text); text that does not fit ends in "…" (never a line cut in half) and
    the whole of it is in the tooltip.
    """
    label = _SteadyLabel(text)
    label.setWordWrap(wrap)
    label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
    label.setFixedHeight(lines * label.fontMetrics().lineSpacing() + 6)
    if width_of is not None:
        label.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        label.setFixedWidth(label.fontMetrics().horizontalAdvance(width_of) + 8)
    return label


class _SteadyLabel(QLabel):
    def __init__(self, text: str = "") -> None:
        super().__init__(text)
        self._fitted: tuple[tuple, str | None] = ((), None)

    def setText(self, text: str) -> None:
        super().setText(text)
        self.setToolTip(text)

    def shown_text(self) -> str:
        """The text as drawn: all of it, or its start and "…" when it does not fit."""
        fitted = self._fit()
        return _TAG.sub("", self.text()) if fitted is None else fitted

    def _fit(self) -> str | None:
        """None when the text fits as it is; else the plain text, cut to fit and ending in "…" if
        it must be."""
        rect = self.contentsRect()
        key = (self.text(), rect.width(), rect.height(), self.wordWrap())
        if self._fitted[0] == key:
            return self._fitted[1]
        plain = html.unescape(_TAG.sub("", self.text().replace("<br>", "\n")))
        fm = self.fontMetrics()
        flags = int(self.alignment()) | (int(Qt.TextFlag.TextWordWrap) if self.wordWrap() else 0)

        def fits(text: str) -> bool:
            box = fm.boundingRect(rect.adjusted(0, 0, 0, 10_000), flags, text)
            return box.height() <= rect.height() and box.width() <= rect.width()

        # the text as QLabel lays it out (rich text through its own document) fits: drawn by QLabel
        if self.wordWrap():
            as_is = self.heightForWidth(self.width()) <= self.height()
        else:
            as_is = QLabel.sizeHint(self).width() <= self.width()
        fitted = None
        if not as_is and fits(plain):
            fitted = plain  # fits once plain (no bold): drawn plain
        elif not as_is:
            lo, hi = 0, len(plain)  # the longest start that fits with its "…"
            while lo < hi:
                mid = (lo + hi + 1) // 2
                lo, hi = (mid, hi) if fits(plain[:mid].rstrip() + "…") else (lo, mid - 1)
            fitted = plain[:lo].rstrip() + "…"
        self._fitted = (key, fitted)
        return fitted

    def paintEvent(self, event) -> None:
        fitted = self._fit() if self.text() else None
        if fitted is None:
            super().paintEvent(event)
            return
        painter = QPainter(self)
        painter.setPen(self.palette().windowText().color())
        flags = self.alignment() | (Qt.TextFlag.TextWordWrap if self.wordWrap() else Qt.AlignmentFlag(0))
        painter.drawText(self.contentsRect(), flags, fitted)
        painter.end()
