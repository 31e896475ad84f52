"""One mosaic canvas for every view that tiles small pictures: the feature maps of a layer, the
kernels of its filters.

The canvas takes tiles ``(N, h, w, 3)``, lays them out in the grid that makes them as large as
the pane allows (three maps in a wide pane: one row of three big tiles; again on every resize),
names them when there are few, marks one, and answers the mouse in tile coordinates: which tile,
which unit of it.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, QTimer, Signal
from PySide6.QtWidgets import QVBoxLayout, QWidget

from models import render

MAX_LABELS = 36  # tiles named on the canvas; beyond that names are in the hover readout only


class MosaicCanvas(QWidget):
    """Tiles in a fitted grid. Signals (tile index, y, x in tile units): ``hovered``,
    ``clicked``."""

    hovered = Signal(int, int, int)
    clicked = Signal(int, int, int)

    def __init__(
        self,
        parent: QWidget | None = None,
        min_tile: int = 48,
        gap: int | None = None,
        highlight_color: tuple[int, int, int] = (255, 255, 255),
    ) -> None:
        super().__init__(parent)
        self.min_tile = min_tile
        self._gap = gap
        self.graphics = pg.GraphicsLayoutWidget()
        self.view = self.graphics.addViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.item = pg.ImageItem(axisOrder="row-major")
        self.view.addItem(self.item)
        self.highlight = pg.QtWidgets.QGraphicsRectItem()
        self.highlight.setPen(pg.mkPen(highlight_color, width=2))
        self.highlight.setVisible(False)
        self.highlight.setZValue(10)
        self.view.addItem(self.highlight)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.graphics)
        self._tiles: np.ndarray | None = None
        self._columns: int | None = None  # fixed by the caller (a matrix), else fitted
        self._laid_columns = 0
        self._labels: list[str] | None = None
        self._label_items: list[pg.TextItem] = []
        self.scale = 1
        self.gap = 1
        self.rects: list[tuple[int, int, int, int]] = []
        self.image = np.zeros((1, 1, 3), dtype=np.uint8)
        self._relayout = QTimer(self)
        self._relayout.setSingleShot(True)
        self._relayout.setInterval(60)
        self._relayout.timeout.connect(self._refit)
        self.graphics.scene().sigMouseMoved.connect(self._on_move)
        self.graphics.scene().sigMouseClicked.connect(lambda ev: self._on_click(ev.scenePos()))

    # -- content ------------------------------------------------------------------------------
    def set_tiles(
        self,
        tiles: np.ndarray,
        columns: int | None = None,
        labels: list[str] | None = None,
        max_side: int | None = None,
    ) -> None:
        """Show ``tiles`` ``(N, h, w, 3)`` uint8; ``columns`` fixes the grid (a matrix's rows),
        else it is fitted to the pane. ``labels``: one name per tile, drawn when there are few.
        ``max_side`` bounds the image's long side (the view enlarges, pixels cost time)."""
        tiles = np.asarray(tiles)
        n, h, w = tiles.shape[:3]
        scale = render.tile_scale(h, w, self.min_tile)
        gap = self._gap if self._gap is not None else max(1, scale // 2 + 1)
        if max_side:
            cols = columns or render.grid_shape(n, aspect=h / max(w, 1))[1]
            rows = -(-n // cols)
            while scale > 1 and max(rows * (h * scale + gap), cols * (w * scale + gap)) > max_side:
                scale -= 1
            if max(rows * (h * scale + gap), cols * (w * scale + gap)) > max_side or scale * max(h, w) < 6:
                gap = 1
        self._tiles, self._columns, self._labels = tiles, columns, labels
        self.scale, self.gap = scale, gap
        self._layout(self._columns or self._fitted_columns())

    def clear(self) -> None:
        self._tiles = None
        self.rects = []
        self.image = np.zeros((1, 1, 3), dtype=np.uint8)
        self.item.clear()
        self.highlight.setVisible(False)
        self._drop_labels()

    def count(self) -> int:
        return 0 if self._tiles is None else len(self._tiles)

    def columns(self) -> int:
        return self._laid_columns

    def mark(self, index: int | None, rows_of: int | None = None) -> None:
        """Outline tile ``index`` (or, with ``rows_of``, the run of ``rows_of`` tiles from it:
        a filter's row of kernels); None hides the mark."""
        if index is None or not 0 <= index < len(self.rects):
            self.highlight.setVisible(False)
            return
        top, left, h, w = self.rects[index]
        if rows_of:
            last = self.rects[min(index + rows_of, len(self.rects)) - 1]
            w = last[1] + last[3] - left
        m = self.gap / 2  # in the gap around the tile, at any zoom; inside the image at its edges
        height, width = self.image.shape[:2]
        x0, y0 = max(left - m, 0), max(top - m, 0)
        x1, y1 = min(left + w + m, width), min(top + h + m, height)
        self.highlight.setRect(x0, y0, x1 - x0, y1 - y0)
        self.highlight.setVisible(True)

    # -- geometry -----------------------------------------------------------------------------
    def unit_at(self, iy: float, ix: float) -> tuple[int, int, int] | None:
        """(tile, y, x) under image pixel (iy, ix), or None (a gap, or outside)."""
        if self._tiles is None or not self.rects:
            return None
        cols = self._laid_columns
        _, _, h, w = self.rects[0]
        col = int(ix // (w + self.gap)) if ix >= 0 else -1
        row = int(iy // (h + self.gap)) if iy >= 0 else -1
        index = row * cols + col
        if not (0 <= col < cols and row >= 0 and 0 <= index < len(self.rects)):
            return None
        top, left, h, w = self.rects[index]
        if not (top <= iy < top + h and left <= ix < left + w):
            return None
        return index, int((iy - top) // self.scale), int((ix - left) // self.scale)

    def scene_to_unit(self, scene_pos: QPointF) -> tuple[int, int, int] | None:
        if self._tiles is None or not self.view.sceneBoundingRect().contains(scene_pos):
            return None
        p = self.view.mapSceneToView(scene_pos)
        return self.unit_at(p.y(), p.x())

    def tile_center_scene(self, index: int) -> QPointF:
        top, left, h, w = self.rects[index]
        return self.view.mapViewToScene(QPointF(left + w / 2, top + h / 2))

    # -- internals ----------------------------------------------------------------------------
    def _fitted_columns(self) -> int:
        assert self._tiles is not None
        n, h, w = self._tiles.shape[:3]
        size = self.graphics.viewport().size()
        if size.width() < 50 or size.height() < 50:  # not laid out yet: near square
            return render.grid_shape(n, aspect=h / max(w, 1))[1]
        s = self.scale
        return render.fill_columns(n, h * s, w * s, size.height(), size.width(), self.gap)

    def _layout(self, columns: int) -> None:
        assert self._tiles is not None
        self.image, self.rects = render.mosaic(self._tiles, columns=columns, gap=self.gap, scale=self.scale)
        self._laid_columns = min(columns, len(self._tiles))
        self.item.setImage(self.image, levels=(0, 255))
        self.view.setRange(QRectF(0, 0, self.image.shape[1], self.image.shape[0]), padding=0.01)
        self._place_labels()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self._tiles is not None and self._columns is None:
            self._relayout.start()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._tiles is not None and self._columns is None:
            self._relayout.start()

    def _refit(self) -> None:
        if self._tiles is None or self._columns is not None:
            return
        columns = self._fitted_columns()
        if columns != self._laid_columns:
            marked = self._marked_index()
            self._layout(columns)
            self.mark(marked)
        else:
            self.view.setRange(QRectF(0, 0, self.image.shape[1], self.image.shape[0]), padding=0.01)

    def _marked_index(self) -> int | None:
        if not self.highlight.isVisible():
            return None
        r = self.highlight.rect()
        hit = self.unit_at(r.top() + 2, r.left() + 2)
        return None if hit is None else hit[0]

    def _drop_labels(self) -> None:
        for item in self._label_items:
            self.view.removeItem(item)
        self._label_items = []

    def _place_labels(self) -> None:
        self._drop_labels()
        if not self._labels or len(self.rects) > MAX_LABELS:
            return
        for (top, left, _h, _w), text in zip(self.rects, self._labels, strict=False):
            label = pg.TextItem(text, color=(255, 255, 255), fill=pg.mkBrush(0, 0, 0, 150), anchor=(0, 0))
            label.setPos(left, top)
            label.setZValue(5)
            self.view.addItem(label)
            self._label_items.append(label)

    def labels_shown(self) -> list[str]:
        return [item.toPlainText() for item in self._label_items]

    def _on_move(self, scene_pos: QPointF) -> None:
        unit = self.scene_to_unit(scene_pos)
        if unit is not None:
            self.hovered.emit(*unit)

    def _on_click(self, scene_pos: QPointF) -> None:
        unit = self.scene_to_unit(scene_pos)
        if unit is not None:
            self.clicked.emit(*unit)
