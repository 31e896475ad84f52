"""A layer without spatial extent (a 1x1 output after a global pool, a flat fc/logits output)
drawn as what it is: one bar per channel or class, the largest few numbered over their bars and
named in a caption over the plot (neighbouring bars' names would print over each other, and a
list inside the plot covered bars), hover to read one, click to select it."""

from __future__ import annotations

import html
from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Signal
from PySide6.QtGui import QFont, QFontMetrics

from models import render

TOP_LABELLED = 5  # bars named over the chart
BAR_COLOR = (60, 110, 190)
TOP_COLOR = (220, 120, 20)
CAPTION_PX = 12


class ValueBars(pg.PlotWidget):
    """Bars of one value per channel. Signals: ``hovered(index)``, ``clicked(index)``."""

    hovered = Signal(int)
    clicked = Signal(int)

    def __init__(self) -> None:
        super().__init__()
        self.setBackground("w")
        self.setMouseEnabled(x=True, y=False)
        self.setMenuEnabled(False)
        self.showGrid(y=True, alpha=0.3)
        self.setLabel("bottom", "channel")
        self.setLabel("left", "value")
        self.bar_item = pg.BarGraphItem(x=[], height=[], width=0.8, brush=BAR_COLOR, pen=None)
        self.addItem(self.bar_item)
        # the selected bar (a click picks another; the readout under the chart says so)
        self.marker = pg.InfiniteLine(angle=90, pen=pg.mkPen((0, 150, 0), width=1))
        self.addItem(self.marker)
        self._labels: list[pg.TextItem] = []  # numbers over the largest bars
        self._named: list[str] = []  # the largest, named, in the caption
        self._entries: list[str] = []  # the caption's entries ("162 beagle = 0.0279")
        self._caption_lines: list[str] = []
        self._count = 0
        self.axis = "channel"  # what one bar is: a channel, or a class of a classifier's output
        self.scene().sigMouseMoved.connect(self._hover)
        self.scene().sigMouseClicked.connect(lambda ev: self._click(ev.scenePos()))

    def set_values(self, values: np.ndarray, name: Callable[[int], str], axis: str) -> list[int]:
        """Draw ``values`` (one per bar), naming the largest with ``name(i)``; returns their
        indices, largest first."""
        n = self._count = len(values)
        top = render.top_indices(values, TOP_LABELLED)
        brushes = [pg.mkBrush(TOP_COLOR if i in top else BAR_COLOR) for i in range(n)] if n <= 4096 else None
        self.bar_item.setOpts(
            x=np.arange(n), height=values, width=0.8 if n <= 200 else 1.0, brushes=brushes, brush=BAR_COLOR
        )
        self._drop_labels()
        gap = max(1, n // 40)  # closer bars than this share the room of one number
        numbered: list[int] = []
        for rank, i in enumerate(top):
            if any(abs(i - j) < gap for j in numbered):
                continue
            numbered.append(i)
            label = pg.TextItem(str(i), color=(30, 30, 30), anchor=(0.5, 1.0 if values[i] >= 0 else 0.0))
            label.setPos(i, float(values[i]))
            label.setZValue(5 - rank)
            self.addItem(label)
            self._labels.append(label)
        self._named = [f"{i} {name(i)}".strip() for i in top]
        self._entries = [f"{text} = {values[i]:.3g}" for text, i in zip(self._named, top, strict=True)]
        self._place_caption()
        self.setLabel("bottom", axis)
        self.axis = axis
        self.enableAutoRange()
        return list(top)

    def mark(self, index: int) -> None:
        self.marker.setValue(index)

    def clear_values(self) -> None:
        self._count = 0
        self.bar_item.setOpts(x=[], height=[])
        self._drop_labels()
        self._named = []
        self._entries = []
        self._place_caption()

    def values(self) -> np.ndarray:
        """The heights of the bars as drawn."""
        return np.asarray(self.bar_item.opts["height"], dtype=np.float32)

    def labels(self) -> list[str]:
        """The largest bars as named in the corner list, largest first."""
        return list(self._named)

    def numbers(self) -> list[str]:
        """The numbers written over bars (the largest, skipping close neighbours of larger ones)."""
        return [item.toPlainText() for item in self._labels]

    def caption(self) -> list[str]:
        """The caption over the plot as its lines ("largest: 162 beagle = 0.0279 · …")."""
        return list(self._caption_lines)

    def _place_caption(self) -> None:
        """The largest bars named over the plot, never on it: as many entries a line as the
        width takes."""
        plot = self.getPlotItem()
        if not self._entries:
            self._caption_lines = []
            plot.setTitle(None)
            return
        font = QFont(plot.titleLabel.item.font())
        font.setPixelSize(CAPTION_PX)
        fm = QFontMetrics(font)
        room = max(self.width() - 40, 120)
        lines = ["largest:"]
        for entry in self._entries:
            joined = f"{lines[-1]} · {entry}" if lines[-1] != "largest:" else f"largest: {entry}"
            if fm.horizontalAdvance(joined) <= room or lines[-1] == "largest:":
                lines[-1] = joined
            else:
                lines.append(entry)
        if lines == self._caption_lines and plot.titleLabel.isVisible():
            return
        self._caption_lines = lines
        text = "<br>".join(html.escape(line) for line in lines)
        plot.setTitle(text, color=(30, 30, 30), size=f"{CAPTION_PX}px")
        height = len(lines) * fm.lineSpacing() + 8
        plot.titleLabel.setMaximumHeight(height)  # setTitle makes room for one line
        plot.layout.setRowFixedHeight(0, height)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if getattr(self, "_entries", None):  # (pyqtgraph resizes while it is being built)
            self._place_caption()

    def index_at(self, scene_pos: QPointF) -> int | None:
        """The bar under a scene position, or None."""
        vb = self.getPlotItem().getViewBox()
        if not vb.sceneBoundingRect().contains(scene_pos):
            return None
        i = round(vb.mapSceneToView(scene_pos).x())
        return i if 0 <= i < self._count else None

    def _drop_labels(self) -> None:
        for item in self._labels:
            self.removeItem(item)
        self._labels = []

    def _hover(self, scene_pos: QPointF) -> None:
        i = self.index_at(scene_pos)
        if i is not None:
            self.hovered.emit(i)

    def _click(self, scene_pos: QPointF) -> None:
        i = self.index_at(scene_pos)
        if i is not None:
            self.clicked.emit(i)
