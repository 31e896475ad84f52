"""Receptive-field size and jump against depth, for the whole model."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtWidgets import QGraphicsItem, QVBoxLayout, QWidget

from gui.view import Shown, View, Window
from gui.widgets import steady_label
from models.runner import LayerInfo


class ReceptiveFieldPlot(View):
    key = "rf"
    title = "Receptive field vs depth"

    def __init__(self, window: Window | None = None, parent: QWidget | None = None) -> None:
        super().__init__(window, parent)
        self.plot = pg.PlotWidget()
        self.plot.setBackground("w")
        self.plot.showGrid(x=True, y=True, alpha=0.3)
        self.plot.setLabel("bottom", "layer (execution order)")
        self.plot.setLabel("left", "input pixels")
        self.plot.setLogMode(y=True)
        self.plot.addLegend(offset=(10, 10))
        self.size_curve = self.plot.plot([], [], name="receptive field size", symbol="o",
                                         symbolSize=4, pen=pg.mkPen((200, 80, 0), width=2),
                                         symbolBrush=(200, 80, 0))
        self.jump_curve = self.plot.plot([], [], name="jump (effective stride)",
                                         pen=pg.mkPen((40, 90, 200), width=2))
        self.current = pg.InfiniteLine(angle=90, pen=pg.mkPen((0, 150, 0), width=2))
        self.plot.addItem(self.current)
        # the axes draw the grid across the plot, so every move of the layer line repainted both
        # axes' text and lines (12 ms a step); cached, they are redrawn only when they change
        for axis in ("left", "bottom"):
            self.plot.getAxis(axis).setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.caption = steady_label()
        layout = QVBoxLayout(self)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.caption)
        self._layers: list[LayerInfo] = []

    def draw(self, shown: Shown) -> None:
        """The model's curves (once per run), the layer shown marked."""
        layers = shown.outcome.result.layers if shown.outcome is not None else []
        if layers is not self._layers:
            self.set_layers(layers)
        self.set_current(next((i for i, la in enumerate(layers) if la is shown.layer), -1))

    def set_layers(self, layers: list[LayerInfo]) -> None:
        self._layers = layers
        xs = [i for i, la in enumerate(layers) if la.receptive_field is not None]
        self.size_curve.setData(xs, [layers[i].receptive_field.size[0] for i in xs])
        self.jump_curve.setData(xs, [layers[i].receptive_field.jump[0] for i in xs])

    def curves(self) -> tuple[tuple[list, list], tuple[list, list]]:
        """((x, size), (x, jump)) as plotted."""
        sx, sy = self.size_curve.getData()
        jx, jy = self.jump_curve.getData()
        return (list(sx), list(sy)), (list(jx), list(jy))

    def set_current(self, index: int) -> None:
        self.current.setValue(index)
        if 0 <= index < len(self._layers):
            la = self._layers[index]
            rf = la.receptive_field
            text = f"<b>{la.name}</b>: " + (
                f"each unit sees {rf.size[0]}×{rf.size[1]} input pixels; neighbours are "
                f"{rf.jump[0]} pixels apart" if rf else "no spatial grid (after flatten/pooling)")
            self.caption.setText(text)
