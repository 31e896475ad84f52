"""The photo as the model sees it (or the original), with a unit's receptive field on top, and
the effective field's heat map with a colour bar. The photo zooms (wheel, buttons, Fit) so a
small field can be seen; the box, cross and heat map are items in the photo's coordinates, so
they stay on the same photo pixels at every zoom."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QPushButton, QVBoxLayout, QWidget

from gui.colorbar import ColorBar
from gui.widgets import steady_label
from models import render
from models.images import PreparedImage

BOX_PEN = pg.mkPen((255, 220, 0), width=2)
PAD_PEN = pg.mkPen((255, 80, 80), width=2, style=Qt.PenStyle.DashLine)
ZOOM_STEP = 1.5  # one click of + or -
HEAT_CMAP = "inferno"
HINT = "hover a feature map: the unit's receptive field appears here"


class InputPanel(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._image: PreparedImage | None = None
        self._box: tuple[float, float, float, float] | None = None
        self._center: tuple[float, float] | None = None
        self._heat: np.ndarray | None = None
        self.title = steady_label("Input", lines=2, wrap=True)
        self.original = QCheckBox("original photo")
        self.original.setToolTip("show the whole photo instead of the model's resized, cropped view")
        self.zoom_in = QPushButton("+")
        self.zoom_out = QPushButton("−")
        self.fit = QPushButton("Fit")
        for button, tip in (
            (self.zoom_in, "zoom in (or the mouse wheel)"),
            (self.zoom_out, "zoom out (or the mouse wheel)"),
            (self.fit, "the whole photo (drag to pan when zoomed)"),
        ):
            button.setToolTip(tip)
            button.setFixedWidth(button.fontMetrics().horizontalAdvance(button.text()) + 22)
        tools = QHBoxLayout()  # under the title: the title keeps the whole width for the name
        tools.addWidget(self.zoom_out)
        tools.addWidget(self.zoom_in)
        tools.addWidget(self.fit)
        tools.addStretch(1)
        tools.addWidget(self.original)
        self.graphics = pg.GraphicsLayoutWidget()
        # wheel zooms about the mouse, drag pans; the aspect stays the photo's
        self.view = self.graphics.addViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.item = pg.ImageItem(axisOrder="row-major")
        self.heat_item = pg.ImageItem(axisOrder="row-major")
        self.view.addItem(self.item)
        self.view.addItem(self.heat_item)
        self.pad_rect = pg.QtWidgets.QGraphicsRectItem()
        self.pad_rect.setPen(PAD_PEN)
        self.box_rect = pg.QtWidgets.QGraphicsRectItem()
        self.box_rect.setPen(BOX_PEN)
        self.cross = pg.ScatterPlotItem(symbol="+", size=14, pen=pg.mkPen((255, 220, 0), width=2), brush=None)
        for item in (self.pad_rect, self.box_rect, self.cross):
            self.view.addItem(item)
        self.caption = steady_label(HINT, lines=2, wrap=True)
        self.heat_bar = ColorBar("|∂ unit / ∂ pixel|", HEAT_CMAP)
        self.heat_bar.setToolTip(
            "effective receptive field: how much each input pixel changes the "
            "clicked unit (the scale saturates at the 99.5th percentile)"
        )
        self.heat_bar.setVisible(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addLayout(tools)
        layout.addWidget(self.graphics, 1)
        layout.addWidget(self.heat_bar)
        layout.addWidget(self.caption)
        self.original.toggled.connect(self._on_original)
        self.zoom_in.clicked.connect(lambda: self.zoom_by(ZOOM_STEP))
        self.zoom_out.clicked.connect(lambda: self.zoom_by(1 / ZOOM_STEP))
        self.fit.clicked.connect(self.fit_photo)
        self.clear_overlay()

    def set_image(self, image: PreparedImage) -> None:
        self._image = image
        self._heat = None
        h0, w0 = image.original.shape[:2]
        h, w = image.model_view.shape[:2]
        name = Path(image.source).name or image.source  # the whole path is in the tooltip
        self.title.setText(f"<b>{html.escape(name)}</b> · {w0}×{h0} → model input {w}×{h}")
        self.title.setToolTip(f"{image.source}: {w0}×{h0} → model input {w}×{h}")
        self._redraw()
        self.fit_photo()

    # -- zoom ---------------------------------------------------------------------------------
    def zoom_by(self, factor: float) -> None:
        """Zoom in (``factor`` > 1) or out about the centre of what is shown."""
        if self._image is None:
            return
        self.view.scaleBy((1 / factor, 1 / factor))

    def fit_photo(self) -> None:
        """The whole photo in the pane."""
        if self.item.image is None:
            return
        h, w = np.asarray(self.item.image).shape[:2]
        self.view.setRange(pg.QtCore.QRectF(0, 0, w, h), padding=0.01)

    def zoom(self) -> float:
        """Screen pixels per photo pixel."""
        return 1.0 / max(self.view.viewPixelSize()[0], 1e-12)

    def _on_original(self) -> None:
        self._redraw()
        self.fit_photo()  # another picture: its whole

    def show_receptive_field(
        self, box: tuple[float, float, float, float], center: tuple[float, float], label: str = ""
    ) -> None:
        """``box`` = (top, left, bottom, right) in model-input pixels, unclipped."""
        self._box, self._center = box, center
        if label:
            self.caption.setText(label)
        self._place_overlay()

    def show_effective_rf(self, heat: np.ndarray | None) -> None:
        self._heat = heat
        self._redraw()

    def clear_overlay(self) -> None:
        """No unit: no box, no field, and no unit's value under the photo."""
        self.caption.setText(HINT)
        self._box = self._center = None
        self._heat = None
        for item in (self.pad_rect, self.box_rect, self.cross):
            item.setVisible(False)
        self.heat_item.clear()
        self.heat_bar.setVisible(False)

    def overlay_box(self) -> tuple[float, float, float, float] | None:
        """The solid box as drawn, clipped to the image, in displayed-image pixels (t, l, b, r)."""
        if not self.box_rect.isVisible():
            return None
        r = self.box_rect.rect()
        return (r.top(), r.left(), r.bottom(), r.right())

    def padding_box(self) -> tuple[float, float, float, float] | None:
        """The dashed whole box when part of the field lies in padding, else None."""
        if not self.pad_rect.isVisible():
            return None
        r = self.pad_rect.rect()
        return (r.top(), r.left(), r.bottom(), r.right())

    def displayed_image(self) -> np.ndarray | None:
        return None if self.item.image is None else np.asarray(self.item.image)

    # ------------------------------------------------------------------------------------
    def _to_display(self, box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        assert self._image is not None
        if self.original.isChecked():
            return self._image.mapping.box_to_original(*box)
        return box

    def _redraw(self) -> None:
        if self._image is None:
            return
        use_original = self.original.isChecked()
        rgb = self._image.original if use_original else self._image.model_view
        self.item.setImage(rgb, levels=(0, 255))
        self.heat_item.clear()
        self.heat_bar.setVisible(self._heat is not None)
        if self._heat is not None:
            heat = self._heat
            # the heat map lives on the model input; on the photo it covers the crop's area
            self.heat_item.setImage(render.heat_rgba(heat, alpha=0.78, cmap=HEAT_CMAP), levels=(0, 255))
            t, l, b, r = self._to_display((0, 0, heat.shape[0], heat.shape[1]))
            self.heat_item.setRect(pg.QtCore.QRectF(l, t, r - l, b - t))
            self.heat_bar.set_range(0.0, render.heat_top(heat), top_open=True)
        self._place_overlay()  # the zoom stays: the user may be looking closely

    def _place_overlay(self) -> None:
        if self._image is None or self._box is None or self._center is None:
            return
        h, w = self._image.model_view.shape[:2]
        inside = render.clip_box(self._box, h, w)
        t, l, b, r = self._to_display(self._box)
        self.pad_rect.setRect(l, t, r - l, b - t)
        self.pad_rect.setVisible(inside != tuple(self._box))
        if inside is not None:
            t, l, b, r = self._to_display(inside)
            self.box_rect.setRect(l, t, r - l, b - t)
        self.box_rect.setVisible(inside is not None)
        cy, cx = self._center
        cy, cx, _, _ = self._to_display((cy + 0.5, cx + 0.5, cy + 0.5, cx + 0.5))
        self.cross.setData([cx], [cy])
        self.cross.setVisible(True)
