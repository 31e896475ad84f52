"""A conv layer's filters: one kernel per input channel each, as many filters as output channels.
Drawn on the shared :class:`~gui.mosaic.MosaicCanvas`; hovering a kernel shows its weights as
numbers, per input channel; filters with names (the classic model's Sobel, Laplacian, ...) carry
them on their tiles."""

from __future__ import annotations

import html

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from gui.mosaic import MosaicCanvas
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


def kernel_table(kernel: np.ndarray, title: str, tap: tuple[int, int] | None = None) -> str:
    """A kernel's weights as an HTML table of numbers (the hovered tap in bold)."""
    rows = []
    for y, row in enumerate(np.asarray(kernel)):
        cells = []
        for x, v in enumerate(row):
            text = f"{v:+.3f}" if abs(v) >= 1e-3 or v == 0 else f"{v:+.1e}"
            color = "#b40426" if v > 0 else "#3b4cc0" if v < 0 else "#666"
            cell = f"<span style='color:{color}'>{text}</span>"
            if tap == (y, x):
                cell = f"<b><u>{cell}</u></b>"
            cells.append(f"<td align='right'>{cell}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (f"<p style='margin:2px'><b>{html.escape(title)}</b></p>"
            f"<table cellspacing='0' cellpadding='2' style='font-family:monospace'>"
            + "".join(rows) + "</table>")


MATRIX_FILTERS, MATRIX_INPUTS = 256, 32  # the all-channels matrix; one channel shows every filter


MAX_TABLE_KERNELS = 4  # kernels written out as numbers at once (RGB: three)
MAX_TABLE_SIDE = 11  # larger kernels: the hovered tap only


class FiltersView(View):
    key = "filters"
    title = "Filters"

    def __init__(self, window: Window | None = None, parent: QWidget | None = None) -> None:
        super().__init__(window, parent)
        self._weight: np.ndarray | None = None
        self._groups = 1
        self._names: list[str] | None = None
        self._layer = ""
        self._highlight: int | None = None
        self._index: list[tuple[int, int | None]] = []  # tile -> (filter, input channel)
        self._matrix_inputs: int | None = None  # inputs per row in the all-channels matrix
        self._stale = False
        self.caption = steady_label("select a convolution layer to see its filters", lines=2, wrap=True)
        self.channel = QComboBox()
        self.channel.setToolTip("which input channel's kernels to show")
        self.legend = steady_label(lines=2, wrap=True)
        top = QHBoxLayout()
        top.addWidget(QLabel("Input channel"))
        top.addWidget(self.channel)
        top.addWidget(self.legend, 1)
        self.canvas = MosaicCanvas(min_tile=8, highlight_color=(255, 255, 0))
        self.graphics, self.view, self.item = self.canvas.graphics, self.canvas.view, self.canvas.item
        self.marker = self.canvas.highlight
        self.weights = QLabel("hover a kernel to read its weights")
        self.weights.setTextFormat(Qt.TextFormat.RichText)
        self.weights.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.weights.setWordWrap(True)
        self.weights.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.weights.setMinimumWidth(self.fontMetrics().horizontalAdvance("+0.000 ") * 3 + 40)
        self.weights.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Expanding)
        self.readout = steady_label("hover a kernel: its weights appear on the right")
        body = QHBoxLayout()
        body.addWidget(self.canvas, 1)
        body.addWidget(self.weights)
        layout = QVBoxLayout(self)
        layout.addWidget(self.caption)
        layout.addLayout(top)
        layout.addLayout(body, 1)
        layout.addWidget(self.readout)
        self.channel.currentIndexChanged.connect(self._redraw)
        self.canvas.hovered.connect(self._hover_tile)

    # --- the view protocol -------------------------------------------------------------
    def show_state(self, shown: Shown) -> None:
        """Taken at once, visible or not: the caption is a sentence, and the filters' pixels are
        painted only when the tab is shown (``_redraw``)."""
        self.shown = shown
        self.refresh()

    def draw(self, shown: Shown) -> None:
        outcome, layer = shown.outcome, shown.layer
        if outcome is None or layer is None:
            if outcome is not None:
                self.clear()
            return  # before the first run (or fed through set_weights by the old window): kept
        weight = layer_weights(outcome.model, layer.name) if layer.is_conv else None
        names = outcome.model.channel_names.get(layer.name) if layer.is_conv else None
        self.set_weights(layer.name, weight, layer.conv.groups if layer.conv else 1, layer.type,
                         names=names)
        self.set_highlight(shown.channel)

    def refresh(self) -> None:
        super().refresh()
        if self._stale:
            self._paint()

    # --- public API --------------------------------------------------------------------
    def set_weights(self, layer: str, weight: np.ndarray | None, groups: int = 1,
                    layer_type: str = "", names: list[str] | None = None) -> None:
        """Show ``weight`` ``(O, I/g, kH, kW)`` (None: the layer has no filters); ``names``: one
        per filter (the classic model's kernel names)."""
        self._weight, self._groups, self._layer = weight, groups, layer
        self._names = names if names and weight is not None and len(names) >= len(weight) else None
        self.channel.blockSignals(True)
        self.channel.clear()
        if weight is None:
            self.caption.setText(f"<b>{layer}</b> ({layer_type or 'this layer'}) has no filters: it "
                                 f"transforms each value or pools, it does not convolve.")
            self.canvas.clear()
            self._index = []
            self.weights.setText("")
            self.legend.setText("")
            self.channel.setEnabled(False)
            self.channel.blockSignals(False)
            self._stale = False
            return
        i = weight.shape[1]
        self.channel.setEnabled(i > 1)
        self.channel.addItem("RGB colour" if i == 3 and groups == 1 else "all")
        self.channel.addItems([f"{c}" for c in range(i)])
        self.channel.blockSignals(False)
        self.caption.setText(f"<b>{layer}</b>: {caption(weight, groups)}")
        self._redraw()

    def clear(self) -> None:
        self.set_weights("", None)

    def set_highlight(self, out_channel: int | None) -> None:
        self._highlight = out_channel
        self._place_marker()

    def render_image(self) -> np.ndarray:
        if self._stale:
            self._paint()
        return self.canvas.image

    @property
    def _rects(self) -> list[tuple[int, int, int, int]]:
        """Each filter's place in the image: its tile, or its row of kernels."""
        rects = self.canvas.rects
        n = self._matrix_inputs
        if not n:
            return rects
        rows = []
        for f in range(0, len(rects), n):
            top, left, h, _ = rects[f]
            last = rects[f + n - 1]
            rows.append((top, left, h, last[1] + last[3] - left))
        return rows

    def tile_of(self, out_channel: int, in_channel: int | None = None) -> int | None:
        """The canvas tile showing filter ``out_channel`` (its ``in_channel`` kernel in the matrix)."""
        for t, (f, c) in enumerate(self._index):
            if f == out_channel and (in_channel is None or c is None or c == in_channel):
                return t
        return None

    # --- drawing -----------------------------------------------------------------------
    def _in_channel(self) -> int | None:
        index = self.channel.currentIndex()
        return None if index <= 0 else index - 1

    def _redraw(self) -> None:
        self._stale = self._weight is not None
        if self.isVisible():  # else painted when the tab is shown: stepping layers stays fast
            self._paint()

    def _paint(self) -> None:
        self._stale = False
        if self._weight is None:
            return
        in_channel = self._in_channel()
        w = self._weight
        # small kernels are enlarged by the view, not in memory (max_side): 256 filters x 32
        # inputs of 1x1 kernels at 24 px would be a 16 MB image to build and paint on every step
        one_each = in_channel is not None or w.shape[1] == 1  # one kernel per filter: a grid
        shown_filters = len(w) if one_each else min(len(w), MATRIX_FILTERS)
        tiles, columns, self._index = render.filter_tiles(
            w, in_channel=in_channel, max_filters=shown_filters, max_inputs=MATRIX_INPUTS)
        self._matrix_inputs = columns
        labels = None
        if columns is None and len(tiles) <= 36:
            labels = [f"{f} {self._names[f]}" if self._names else f"{f}" for f, _ in self._index]
        self.canvas.set_tiles(tiles, columns=columns, labels=labels, max_side=1600)
        rgb_first = w.shape[1] == 3 and in_channel is None
        if rgb_first:
            legend = "colour filters: mid-grey = 0 · hover a filter for its R, G, B kernels"
        elif one_each:
            legend = "blue < 0 < red · hover a kernel for its weights"
        else:
            legend = "blue < 0 < red · rows: filters · columns: input channels"
            cut = [f"the first {shown_filters} of {len(w)} filters" if shown_filters < len(w) else "",
                   f"the first {MATRIX_INPUTS} of {w.shape[1]} input channels"
                   if w.shape[1] > MATRIX_INPUTS else ""]
            if any(cut):
                legend += (" · showing " + " and ".join(c for c in cut if c)
                           + " (pick an input channel to see every filter)")
        self.legend.setText(legend)
        self._place_marker()

    def _place_marker(self) -> None:
        h = self._highlight
        tile = None if self._weight is None or h is None else self.tile_of(h)
        self.canvas.mark(tile, rows_of=self._matrix_inputs)
        if self._weight is not None and self._index:  # the marked filter's weights, until a hover
            shown = tile if tile is not None else 0
            self.weights.setText(self.hover_text(shown, -1, -1)[1])

    # --- hover -------------------------------------------------------------------------
    def hover_text(self, tile: int, ky: int, kx: int) -> tuple[str, str]:
        """(readout line, weights panel HTML) for tap (ky, kx) of canvas tile ``tile``."""
        assert self._weight is not None
        f, c = self._index[tile]
        w = self._weight[f]  # (I, kH, kW)
        name = f" “{self._names[f]}”" if self._names else ""
        if c is None:  # a colour filter: its three kernels, R, G and B
            channels = list(range(w.shape[0]))
            taps = " · ".join(f"{'RGB'[k] if w.shape[0] == 3 else k} {w[k, ky, kx]:+.4g}"
                              for k in channels)
            line = f"filter {f}{name} · tap (y {ky}, x {kx}): {taps}"
        else:
            channels = [c]
            line = f"filter {f}{name} · input channel {c} · tap (y {ky}, x {kx}) = {w[c, ky, kx]:+.4g}"
        parts = [f"<p style='margin:2px'><b>filter {f}</b>{html.escape(name)}</p>"]
        if max(w.shape[1:]) <= MAX_TABLE_SIDE:
            for k in channels[:MAX_TABLE_KERNELS]:
                label = ("input " + ("RGB"[k] if c is None and w.shape[0] == 3 else str(k)))
                parts.append(kernel_table(w[k], label, (ky, kx)))
        else:
            parts.append(f"<p>{w.shape[1]}×{w.shape[2]} kernels: the readout below has the tap "
                         f"under the mouse</p>")
        return line, "".join(parts)

    def _hover_tile(self, tile: int, ky: int, kx: int) -> None:
        if self._weight is None or not 0 <= tile < len(self._index):
            return
        line, panel = self.hover_text(tile, ky, kx)
        self.readout.setText(line)
        self.weights.setText(panel)
