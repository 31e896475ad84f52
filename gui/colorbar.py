"""A colour bar with values: which number each colour of a map stands for."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRect, QSize, Qt
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtWidgets import QSizePolicy, QWidget

from models import render


def _fmt(v: float) -> str:
    return f"{v:.3g}" if v != 0 else "0"  # never "-0"


class ColorBar(QWidget):
    """A horizontal colour bar: the map's colours from left to right, the value at each end and
    in the middle written under it, and a title (what the values are) on the left.

    ``set_range(lo, hi)`` sets the numbers; ``set_text_ends(lo, hi)`` words instead (for maps each
    on its own range); ``top_open`` marks the top as "≥" (a scale that saturates)."""

    def __init__(self, title: str = "", cmap: str = "viridis", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._title = title
        self._short: str | None = None
        self._cmap = cmap
        self._range: tuple[float, float] | None = None
        self._words: tuple[str, str] | None = None
        self._top_open = False
        fm = self.fontMetrics()
        self.setFixedHeight(fm.height() + 18)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setMinimumWidth(160)

    def sizeHint(self) -> QSize:
        return QSize(320, self.height())

    # -- state ------------------------------------------------------------------------------
    def set_colormap(self, cmap: str) -> None:
        self._cmap = cmap
        self._changed()

    def set_title(self, title: str, short: str | None = None) -> None:
        """``title`` before the bar; ``short`` in its place when the whole one does not fit
        (rather than the whole one cut off; "" for none)."""
        self._title, self._short = title, short
        self._changed()

    def set_range(self, lo: float, hi: float, top_open: bool = False) -> None:
        self._range, self._words, self._top_open = (float(lo), float(hi)), None, top_open
        self._changed()

    def set_text_ends(self, lo: str, hi: str) -> None:
        self._range, self._words = None, (lo, hi)
        self._changed()

    def clear(self) -> None:
        self._range = self._words = None
        self._changed()

    def _changed(self) -> None:
        self.setToolTip(" · ".join([self._title, *self.labels()]).strip(" ·"))  # all of it, unelided
        self.update()

    def value_range(self) -> tuple[float, float] | None:
        return self._range

    def labels(self) -> list[str]:
        """The words written under the bar, left to right."""
        if self._words is not None:
            return list(self._words)
        if self._range is None:
            return []
        lo, hi = self._range
        top = ("≥ " if self._top_open else "") + _fmt(hi)
        return [_fmt(lo), _fmt((lo + hi) / 2), top]

    def colormap(self) -> str:
        return self._cmap

    # -- painting ---------------------------------------------------------------------------
    def _title_room(self) -> int:
        fm = self.fontMetrics()
        ends = self.labels()[:1] + self.labels()[-1:]
        needed = sum(fm.horizontalAdvance(t) for t in ends) + 12 * (len(ends) - 1) + 10
        return min(int(self.width() * 0.4), self.width() - needed - 10)

    def shown_title(self) -> str:
        """The title as written: the whole one if it fits, else the short one (elided last)."""
        room = self._title_room()
        if self._short is not None and self.fontMetrics().horizontalAdvance(self._title) + 8 > room:
            return self._short
        return self._title

    def _title_width(self) -> int:
        """Room for the title: all of it if it fits, at most 40% of the widget, and less when the
        end values need it (numbers are never elided; the full title is in the tooltip)."""
        title = self.shown_title()
        if not title:
            return 0
        return max(0, min(self.fontMetrics().horizontalAdvance(title) + 8, self._title_room()))

    def _bar_rect(self) -> QRect:
        left = self._title_width() + 4
        return QRect(left, 2, max(20, self.width() - left - 6), 12)

    def fitted_labels(self) -> list[str]:
        """The labels as drawn: the middle one dropped, then the ends elided, until they fit under
        the bar without touching."""
        labels = self.labels()
        fm = self.fontMetrics()
        width = self._bar_rect().width()

        def room(texts: list[str]) -> int:
            return sum(fm.horizontalAdvance(t) for t in texts) + 12 * (len(texts) - 1)

        if len(labels) == 3 and room(labels) > width:
            labels = [labels[0], labels[2]]
        if len(labels) == 2 and room(labels) > width:
            half = max(8, (width - 12) // 2)
            labels = [fm.elidedText(t, Qt.TextElideMode.ElideRight, half) for t in labels]
        return labels

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        fm = self.fontMetrics()
        painter.setPen(self.palette().windowText().color())
        title_w = self._title_width()
        if title_w > 12:
            title = fm.elidedText(self.shown_title(), Qt.TextElideMode.ElideRight, title_w - 4)
            painter.drawText(
                QRect(0, 0, title_w, self.height()),
                Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                title,
            )
        if self._range is None and self._words is None:
            painter.end()
            return
        bar = self._bar_rect()
        lut = render.COLORMAPS[self._cmap]
        row = np.ascontiguousarray(np.repeat(lut[None], 2, axis=0))  # (2, 256, 3)
        image = QImage(row.data, 256, 2, 256 * 3, QImage.Format.Format_RGB888)
        painter.drawImage(bar, image)
        painter.setPen(QColor(90, 90, 90))
        painter.drawRect(bar.adjusted(0, 0, -1, -1))
        painter.setPen(self.palette().windowText().color())
        labels = self.fitted_labels()
        y = bar.bottom() + 2
        h = self.height() - y
        xs = [bar.left(), bar.center().x(), bar.right()] if len(labels) == 3 else [bar.left(), bar.right()]
        for i, (x, text) in enumerate(zip(xs, labels, strict=True)):
            w = fm.horizontalAdvance(text) + 4
            if i == 0:
                rect, align = QRect(x, y, w, h), Qt.AlignmentFlag.AlignLeft
            elif i == len(labels) - 1:
                rect, align = QRect(x - w + 2, y, w + 2, h), Qt.AlignmentFlag.AlignRight
            else:
                rect, align = QRect(x - w // 2, y, w, h), Qt.AlignmentFlag.AlignHCenter
            painter.drawText(rect, align | Qt.AlignmentFlag.AlignTop, text)
        painter.end()
