"""A conv layer's filters: one kernel per input channel each, as many filters as output channels."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from gui.view import Shown, View, Window
from gui.widgets import steady_label
from models import render
from models.layers import layer_weights


def caption(weight: np.ndarray, groups: int = 1) -> str:
    """The sentence that teaches what a filter is, for this layer's weight ``(O, I/g, kH, kW)``."""
    o, i, kh, kw = weight.shape
    if i == 1 and groups > 1:
        return (f"{o} filters · depthwise: each filter is a single {kh}×{kw} kernel that reads one "
                f"input channel → {o} output channels")
    kernels = "kernel" if i == 1 else "kernels"
    per = "" if groups == 1 else f" of its group ({groups} groups)"
    return (f"{o} filters · each = {i} {kernels} of {kh}×{kw} (one per input channel{per}), "
            f"summed, plus a bias → {o} output channels")


MATRIX_FILTERS, MATRIX_INPUTS = 256, 32  # the all-channels matrix; one channel shows every filter


class FiltersView(View):
    key = "filters"
    title = "Filters"

    def __init__(self, window: Window | None = None, parent: QWidget | None = None) -> None:
        super().__init__(window, parent)
        self._drawn_for: tuple | None = None  # (outcome, layer name) whose filters are shown
        self._weight: np.ndarray | None = None
        self._groups = 1
        self._highlight: int | None = None
        self.caption = steady_label("select a convolution layer to see its filters", lines=2, wrap=True)
        self.channel = QComboBox()
        self.channel.setToolTip("which input channel's kernels to show")
        self.legend = steady_label(lines=2, wrap=True)
        top = QHBoxLayout()
        top.addWidget(QLabel("Input channel"))
        top.addWidget(self.channel)
        top.addWidget(self.legend, 1)
        self.graphics = pg.GraphicsLayoutWidget()
        self.view = self.graphics.addViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.item = pg.ImageItem(axisOrder="row-major")
        self.view.addItem(self.item)
        self.marker = pg.QtWidgets.QGraphicsRectItem()
        self.marker.setPen(pg.mkPen((255, 255, 0), width=2))
        self.marker.setVisible(False)
        self.view.addItem(self.marker)
        layout = QVBoxLayout(self)
        layout.addWidget(self.caption)
        layout.addLayout(top)
        layout.addWidget(self.graphics, 1)
        self.channel.currentIndexChanged.connect(self._redraw)
        self._image = np.zeros((1, 1, 3), dtype=np.uint8)
        self._rects: list[tuple[int, int, int, int]] = []  # each filter's place in the image

        self._pixels_for: tuple | None = None

    def show_state(self, shown: Shown) -> None:
        """The caption follows at once (a sentence); the filters are drawn when visible."""
        self._take(shown)
        super().show_state(shown)

    def _take(self, shown: Shown) -> None:
        layer = shown.layer
        key = None if shown.outcome is None or layer is None else (shown.outcome, layer.name)
        if key == self._drawn_for:
            return
        self._drawn_for = key
        if key is None:
            self.clear()
            return
        weight = layer_weights(shown.outcome.model, layer.name) if layer.is_conv else None
        self.set_weights(layer.name, weight, layer.conv.groups if layer.conv else 1, layer.type,
                         draw=False)

    def draw(self, shown: Shown) -> None:
        """The layer's filters, the channel picked in the feature maps marked."""
        self._take(shown)
        if self._pixels_for != self._drawn_for:
            self._pixels_for = self._drawn_for
            self._redraw()
        self.set_highlight(shown.channel)

    def set_weights(self, layer: str, weight: np.ndarray | None, groups: int = 1,
                    layer_type: str = "", draw: bool = True) -> None:
        self._weight, self._groups = weight, groups
        self.channel.blockSignals(True)
        self.channel.clear()
        if weight is None:
            self.caption.setText(f"<b>{layer}</b> ({layer_type or 'this layer'}) has no filters: it "
                                 f"transforms each value or pools, it does not convolve.")
            self.item.clear()
            self.marker.setVisible(False)
            self.channel.setEnabled(False)
            self.channel.blockSignals(False)
            return
        i = weight.shape[1]
        self.channel.setEnabled(i > 1)
        self.channel.addItem("RGB colour" if i == 3 and groups == 1 else "all")
        self.channel.addItems([f"{c}" for c in range(i)])
        self.channel.blockSignals(False)
        self.caption.setText(f"<b>{layer}</b>: {caption(weight, groups)}")
        if draw:  # the window's layers are drawn by draw(), when the view is visible
            self._redraw()

    def clear(self) -> None:
        self.set_weights("", None)

    def set_highlight(self, out_channel: int | None) -> None:
        self._highlight = out_channel
        self._place_marker()

    def render_image(self) -> np.ndarray:
        self.refresh()  # what the window showed last, drawn even while hidden
        return self._image

    def _redraw(self) -> None:
        if self._weight is None:
            return
        index = self.channel.currentIndex()
        in_channel = None if index <= 0 else index - 1
        w = self._weight
        # small kernels are enlarged by the view, not in memory: 256 filters x 32 inputs of
        # 1x1 kernels at 24 px would be a 16 MB image to build and paint on every step
        one_each = in_channel is not None or w.shape[1] == 1  # one kernel per filter: a grid
        shown_filters = len(w) if one_each else min(len(w), MATRIX_FILTERS)
        self._image, self._rects = render.filters_mosaic(
            w, in_channel=in_channel, min_kernel=8, max_filters=shown_filters,
            max_inputs=MATRIX_INPUTS, max_side=1600)
        rgb_first = w.shape[1] == 3 and in_channel is None
        if rgb_first:
            legend = "colour filters: mid-grey = 0"
        elif one_each:
            legend = "blue < 0 < red"
        else:
            legend = "blue < 0 < red · rows: filters · columns: input channels"
            cut = [f"the first {shown_filters} of {len(w)} filters" if shown_filters < len(w) else "",
                   f"the first {MATRIX_INPUTS} of {w.shape[1]} input channels"
                   if w.shape[1] > MATRIX_INPUTS else ""]
            if any(cut):
                legend += (" · showing " + " and ".join(c for c in cut if c)
                           + " (pick an input channel to see every filter)")
        self.legend.setText(legend)
        self.item.setImage(self._image, levels=(0, 255))
        self.view.autoRange(padding=0.01)
        self._place_marker()

    def _place_marker(self) -> None:
        h = self._highlight
        if self._weight is None or h is None or h >= len(self._rects):
            self.marker.setVisible(False)
            return
        top, left, height, width = self._rects[h]
        self.marker.setRect(left - 1, top - 1, width + 2, height + 2)
        self.marker.setVisible(True)
