"""Receptive-field size and jump against depth, for the whole model: hover a point to read its
layer, size and jump; click it to step to that layer."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Signal
from PySide6.QtWidgets import QGraphicsItem, QVBoxLayout, QWidget

from gui.fit_label import FitLabel
from gui.view import Shown, View, Window
from gui.widgets import steady_label
from models.runner import LayerInfo

PICK_PX = 12  # how near (screen pixels, along x) the mouse must be to a layer to pick it


class ReceptiveFieldPlot(View):
    """Signal ``layer_clicked(name)`` (also asked of the window: ``select_layer``)."""

    key = "rf"
    title = "Receptive fields"
    short_title = "RF"
    tab_tip = "Receptive field size and jump of every layer, against depth"

    layer_clicked = Signal(str)

    def __init__(self, window: Window | None = None, parent: QWidget | None = None) -> None:
        super().__init__(window, parent)
        self.plot = pg.PlotWidget()
        self.plot.setBackground("w")
        self.plot.setMenuEnabled(False)
        self.plot.showGrid(x=True, y=True, alpha=0.3)
        self.plot.setLabel("bottom", "layer (execution order) · click a point to step there")
        self.plot.setLabel("left", "input pixels")
        self.plot.setLogMode(y=True)
        self.plot.addLegend(offset=(10, 10))
        self.size_curve = self.plot.plot(
            [],
            [],
            name="receptive field size",
            symbol="o",
            symbolSize=5,
            pen=pg.mkPen((200, 80, 0), width=2),
            symbolBrush=(200, 80, 0),
        )
        self.jump_curve = self.plot.plot(
            [], [], name="jump (effective stride)", pen=pg.mkPen((40, 90, 200), width=2)
        )
        self.current = pg.InfiniteLine(angle=90, pen=pg.mkPen((0, 150, 0), width=2))
        self.plot.addItem(self.current)
        self.hover_dot = pg.ScatterPlotItem(size=11, pen=pg.mkPen((0, 0, 0), width=1.5), brush=None)
        self.plot.addItem(self.hover_dot)
        self.tip = pg.TextItem(
            "",
            color=(20, 20, 20),
            fill=pg.mkBrush(255, 255, 225, 235),
            border=pg.mkPen((120, 120, 120)),
            anchor=(0, 1),
        )
        self.tip.setZValue(20)
        self.tip.setVisible(False)
        self.plot.addItem(self.tip, ignoreBounds=True)
        # the axes draw the grid across the plot, so every move of the layer line repainted both
        # axes' text and lines (12 ms a step); cached, they are redrawn only when they change
        for axis in ("left", "bottom"):
            self.plot.getAxis(axis).setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.caption = FitLabel()  # as many lines as it needs: cut at 1024x700 on one line
        self.readout = steady_label("hover a point: its layer, size and jump")
        layout = QVBoxLayout(self)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.readout)
        layout.addWidget(self.caption)
        self._layers: list[LayerInfo] = []
        self._xs = np.zeros(0)
        self._hovered: int | None = None
        self.plot.scene().sigMouseMoved.connect(self._hover)
        self.plot.scene().sigMouseClicked.connect(lambda ev: self._click(ev.scenePos()))

    # --- the view protocol -------------------------------------------------------------
    def draw(self, shown: Shown) -> None:
        outcome = shown.outcome
        if outcome is None:
            return  # before the first run (or fed by the old window): kept
        layers = outcome.result.layers
        if layers is not self._layers:
            self.set_layers(layers)
        names = [la.name for la in layers]
        if shown.layer is not None and shown.layer.name in names:
            self.set_current(names.index(shown.layer.name))

    # --- public API --------------------------------------------------------------------
    def set_layers(self, layers: list[LayerInfo]) -> None:
        self._layers = layers
        xs = [i for i, la in enumerate(layers) if la.receptive_field is not None]
        self._xs = np.asarray(xs, dtype=float)
        self.size_curve.setData(xs, [layers[i].receptive_field.size[0] for i in xs])
        self.jump_curve.setData(xs, [layers[i].receptive_field.jump[0] for i in xs])
        self._hovered = None
        self.tip.setVisible(False)
        self.hover_dot.setData([], [])

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
                f"{rf.jump[0]} pixels apart"
                if rf
                else "no spatial grid (after flatten/pooling)"
            )
            self.caption.setText(text)

    def point_scene_pos(self, index: int) -> QPointF:
        """Where layer ``index``'s size point is drawn, in scene coordinates (for tests)."""
        rf = self._layers[index].receptive_field
        vb = self.plot.getPlotItem().getViewBox()
        return vb.mapViewToScene(QPointF(index, np.log10(rf.size[0])))

    def hovered_layer(self) -> str | None:
        return None if self._hovered is None else self._layers[self._hovered].name

    # --- mouse -------------------------------------------------------------------------
    def layer_at(self, scene_pos: QPointF) -> int | None:
        """The layer (with a receptive field) nearest the mouse along x, if within reach."""
        vb = self.plot.getPlotItem().getViewBox()
        if not len(self._xs) or not vb.sceneBoundingRect().contains(scene_pos):
            return None
        x = vb.mapSceneToView(scene_pos).x()
        i = int(np.argmin(np.abs(self._xs - x)))
        per_px = vb.viewPixelSize()[0]  # view units per screen pixel along x
        reach = max(0.5, PICK_PX * per_px)
        return int(self._xs[i]) if abs(self._xs[i] - x) <= reach else None

    def _hover(self, scene_pos: QPointF) -> None:
        index = self.layer_at(scene_pos)
        if index is None:
            return
        self._hovered = index
        la = self._layers[index]
        rf = la.receptive_field
        text = f"{la.name} ({la.type}) · field {rf.size[0]}×{rf.size[1]} px · jump {rf.jump[0]}"
        self.readout.setText(f"layer {index + 1}: {text}")  # the axis says a click steps there
        y = np.log10(rf.size[0])
        self.hover_dot.setData([index], [y])
        self.tip.setText(f"{la.name}\nfield {rf.size[0]}×{rf.size[1]} · jump {rf.jump[0]}")
        vb = self.plot.getPlotItem().getViewBox()
        (x0, x1), _ = vb.viewRange()
        # keep the tip inside the plot: to the left of the point in the right half
        self.tip.setAnchor((1, 1) if index > (x0 + x1) / 2 else (0, 1))
        self.tip.setPos(index, y)
        self.tip.setVisible(True)

    def _click(self, scene_pos: QPointF) -> None:
        index = self.layer_at(scene_pos)
        if index is None:
            return
        name = self._layers[index].name
        self.layer_clicked.emit(name)
        if self.window_services is not None:
            self.window_services.select_layer(name)
