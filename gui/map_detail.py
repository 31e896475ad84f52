"""One feature map enlarged, with its numbers in a caption and its own colour bar; it reads and
clicks like the tiles (one image pixel per unit), because it is where one looks closely."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Signal
from PySide6.QtWidgets import QVBoxLayout, QWidget

from gui.colorbar import ColorBar
from gui.widgets import steady_label
from models import render

EMPTY = "click a map to enlarge it"


class MapDetail(QWidget):
    """Signals: ``hovered(y, x)``, ``clicked(y, x)`` for a unit of the shown map."""

    hovered = Signal(int, int)
    clicked = Signal(int, int)

    def __init__(self) -> None:
        super().__init__()
        self.graphics = pg.GraphicsLayoutWidget()
        self.view = self.graphics.addViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.item = pg.ImageItem(axisOrder="row-major")
        self.view.addItem(self.item)
        self.label = steady_label(EMPTY, lines=3, wrap=True)
        self.colorbar = ColorBar("map")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.label)
        layout.addWidget(self.graphics, 1)
        layout.addWidget(self.colorbar)
        self._shape: tuple[int, int] | None = None
        self.graphics.scene().sigMouseMoved.connect(lambda pos: self._emit(self.hovered, pos))
        self.graphics.scene().sigMouseClicked.connect(lambda ev: self._emit(self.clicked, ev.scenePos()))

    def show_map(self, m: np.ndarray, channel: int, name: str, cmap: str) -> None:
        """Draw map ``m`` (H, W) of ``channel`` in colour map ``cmap``."""
        symmetric = cmap in render.DIVERGING
        rgb = render.apply_colormap(render.normalize(m[None], "map", symmetric)[0], cmap)
        self._shape = m.shape
        self.item.setImage(rgb, levels=(0, 255))
        self.view.autoRange(padding=0.01)
        self.colorbar.set_colormap(cmap)
        self.colorbar.set_title(f"channel {channel}", "")  # named above the map: may go
        self.colorbar.set_range(*render.value_range(m, symmetric))
        named = f" ({name})" if name else ""
        self.label.setText(
            f"<b>channel {channel}</b>{named} · {m.shape[0]}×{m.shape[1]} · min {m.min():.3g} · "
            f"mean {m.mean():.3g} · max {m.max():.3g}"
        )

    def clear(self) -> None:
        self._shape = None
        self.item.clear()
        self.label.setText(EMPTY)
        self.colorbar.clear()

    def unit_at(self, scene_pos: QPointF) -> tuple[int, int] | None:
        """The (y, x) of the shown map under a scene position, or None."""
        if self._shape is None or not self.view.sceneBoundingRect().contains(scene_pos):
            return None
        p = self.view.mapSceneToView(scene_pos)
        y, x = int(np.floor(p.y())), int(np.floor(p.x()))  # one image pixel per unit
        return (y, x) if 0 <= y < self._shape[0] and 0 <= x < self._shape[1] else None

    def _emit(self, signal, scene_pos: QPointF) -> None:
        unit = self.unit_at(scene_pos)
        if unit is not None:
            signal.emit(*unit)
