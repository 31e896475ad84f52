"""A conv layer's filters: one kernel per input channel each, as many filters as output channels.
Drawn on the shared :class:`~gui.mosaic.MosaicCanvas`; hovering a kernel shows its weights as
numbers, per input channel; filters with names (the classic model's Sobel, Laplacian, ...) carry
them on their tiles."""

from __future__ import annotations

import html

import numpy as np
from PySide6.QtCore import QEvent, Qt
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QVBoxLayout, QWidget

from gui.fit_label import FitLabel
from gui.mosaic import MosaicCanvas
from gui.view import Shown, View, Window
from gui.widgets import steady_label
from models import render
from models.layers import layer_weights


def caption(weight: np.ndarray, groups: int = 1) -> str:
    """The sentence that teaches what a filter is, for this layer's weight ``(O, I/g, kH, kW)``."""
    o, i, kh, kw = weight.shape
    if i == 1 and groups > 1:
        return (
            f"{o} filters · depthwise: each filter is a single {kh}×{kw} kernel that reads one "
            f"input channel → {o} output channels"
        )
    kernels = "kernel" if i == 1 else "kernels"
    per = "" if groups == 1 else f" of its group ({groups} groups)"
    return (
        f"{o} filters · each = {i} {kernels} of {kh}×{kw} (one per input channel{per}), "
        f"summed, plus a bias → {o} output channels"
    )


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
    return (
        f"<p style='margin:2px'><b>{html.escape(title)}</b></p>"
        f"<table cellspacing='0' cellpadding='2' style='font-family:monospace'>" + "".join(rows) + "</table>"
    )


MATRIX_INPUTS = 32  # input channels in the all-channels matrix; one channel shows every filter
MIN_INPUTS = 8  # a narrow pane still shows this many input channels per filter
MIN_CELL = 14  # screen pixels a kernel (with its gap) gets at least in the matrix: readable 3x3


def matrix_page(
    filters: int, inputs: int, view_w: float, view_h: float, min_cell: float = MIN_CELL
) -> tuple[int, int, int]:
    """How the all-channels matrix fits a ``view_w`` x ``view_h`` pane with kernels of at least
    ``min_cell`` pixels: (input channels per filter, strips side by side, filters per page).

    A filter is a strip of its kernels, one per input channel; strips stack down the pane and
    wrap into further strips side by side when the pane is wide, and what does not fit at
    ``min_cell`` goes to further pages."""
    n = min(inputs, MATRIX_INPUTS)
    if view_w < 50 or view_h < 50:  # not laid out yet
        return n, 1, min(filters, 64)
    n = min(n, max(MIN_INPUTS, int(view_w // min_cell)))
    most_strips = max(1, int((view_w / min_cell + 1) // (n + 1)))
    rows = max(4, int(view_h // min_cell))
    per_page = min(filters, most_strips * rows)
    best, best_cell = 1, -1.0
    for strips in range(1, most_strips + 1):  # the count that makes the kernels largest
        cell = min(view_w / (strips * (n + 1) - 1), view_h / -(-per_page // strips))
        if cell > best_cell * (1 + 1e-9):
            best, best_cell = strips, cell
    return n, best, per_page


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
        # tile -> (filter, input channel); None: a blank tile between strips of the matrix
        self._index: list[tuple[int, int | None] | None] = []
        self._matrix_inputs: int | None = None  # inputs per row in the all-channels matrix
        self._fit = (MATRIX_INPUTS, 1, 64)  # the matrix's (inputs, strips, filters per page)
        self._page = 0
        self._wanted: int | None = None  # a filter whose page the next paint turns to
        self._stale = False
        self.caption = FitLabel("select a convolution layer to see its filters", min_lines=2)
        self.channel = QComboBox()
        self.channel.setToolTip("which input channel's kernels to show")
        self.prev_page, self.next_page = QPushButton("◀"), QPushButton("▶")
        for button, tip in ((self.prev_page, "previous filters"), (self.next_page, "next filters")):
            button.setFixedWidth(self.fontMetrics().horizontalAdvance("◀") + 24)
            button.setToolTip(tip)
        self.page_label = steady_label(width_of="filters 1000–1023 of 1024")
        self.page_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.legend = FitLabel(max_lines=3)
        top = QHBoxLayout()
        top.addWidget(QLabel("Input channel"))
        top.addWidget(self.channel)
        top.addSpacing(12)
        for widget in (self.prev_page, self.page_label, self.next_page):
            policy = widget.sizePolicy()  # shown or not, the row keeps its height: no refit
            policy.setRetainSizeWhenHidden(True)
            widget.setSizePolicy(policy)
            top.addWidget(widget)
        top.addStretch(1)
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
        layout.addWidget(self.legend)
        layout.addLayout(body, 1)
        layout.addWidget(self.readout)
        self._show_pager(False)
        # a resized pane may hold more (or fewer) filters per page: re-paged at once (a page is
        # a few ms to build), so a screenshot or the first paint never shows the old fit
        self.canvas.installEventFilter(self)
        self.channel.currentIndexChanged.connect(self._redraw)
        self.prev_page.clicked.connect(lambda: self.set_page(self._page - 1))
        self.next_page.clicked.connect(lambda: self.set_page(self._page + 1))
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
        self.set_weights(layer.name, weight, layer.conv.groups if layer.conv else 1, layer.type, names=names)
        self.set_highlight(shown.channel)

    def refresh(self) -> None:
        super().refresh()
        if self._stale:
            self._paint()

    # --- public API --------------------------------------------------------------------
    def set_weights(
        self,
        layer: str,
        weight: np.ndarray | None,
        groups: int = 1,
        layer_type: str = "",
        names: list[str] | None = None,
    ) -> None:
        """Show ``weight`` ``(O, I/g, kH, kW)`` (None: the layer has no filters); ``names``: one
        per filter (the classic model's kernel names)."""
        same = (
            layer == self._layer
            and weight is not None
            and self._weight is not None
            and weight.shape == self._weight.shape
        )
        self._page = self._page if same else 0
        self._weight, self._groups, self._layer = weight, groups, layer
        self._names = names if names and weight is not None and len(names) >= len(weight) else None
        self.channel.blockSignals(True)
        self.channel.clear()
        if weight is None:
            self.caption.setText(
                f"<b>{layer}</b> ({layer_type or 'this layer'}) has no filters: it "
                f"transforms each value or pools, it does not convolve."
            )
            self.canvas.clear()
            self._index = []
            self.weights.setText("")
            self.legend.setText("")
            self.channel.setEnabled(False)
            self.channel.blockSignals(False)
            self._show_pager(False)
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
        """Mark filter ``out_channel`` (turning the matrix to its page)."""
        self._highlight = out_channel
        if (
            out_channel is not None
            and self._matrix_inputs
            and self._weight is not None
            and 0 <= out_channel < len(self._weight)
            and out_channel // self._fit[2] != self._page
        ):
            self._wanted = out_channel  # the page is found when painted, at the pane's size then
            self._redraw()
            return
        self._place_marker()

    # --- pages of the all-channels matrix ------------------------------------------------
    def page_count(self) -> int:
        if not self._matrix_inputs or self._weight is None:
            return 1
        return -(-len(self._weight) // self._fit[2])

    def page_filters(self) -> range:
        """The filters on the current page (every filter when there are no pages)."""
        if self._weight is None:
            return range(0)
        if not self._matrix_inputs:
            return range(len(self._weight))
        per_page = self._fit[2]
        return range(self._page * per_page, min((self._page + 1) * per_page, len(self._weight)))

    def set_page(self, page: int) -> None:
        self._page = max(0, min(page, self.page_count() - 1))
        self._redraw()

    def _show_pager(self, on: bool) -> None:
        for widget in (self.prev_page, self.page_label, self.next_page):
            widget.setVisible(on)

    def _matrix_fit(self) -> tuple[int, int, int]:
        assert self._weight is not None
        size = self.canvas.graphics.viewport().size()
        return matrix_page(len(self._weight), self._weight.shape[1], size.width(), size.height())

    def eventFilter(self, watched, event) -> bool:
        if (
            watched is self.canvas
            and event.type() in (QEvent.Type.Resize, QEvent.Type.Show)
            and self._matrix_inputs
        ):
            self._refit_matrix()
        return super().eventFilter(watched, event)

    def _refit_matrix(self) -> None:
        if self._weight is None or not self._matrix_inputs or self._stale:
            return
        fit = self._matrix_fit()
        if fit != self._fit:
            first = self.page_filters().start
            self._fit = fit
            self._page = first // fit[2]  # the page that holds the first filter shown so far
            self._redraw()

    def render_image(self) -> np.ndarray:
        if self._stale:
            self._paint()
        return self.canvas.image

    @property
    def _rects(self) -> list[tuple[int, int, int, int]]:
        """Each shown filter's place in the image (in filter order): its tile, or its strip of
        kernels."""
        rects = self.canvas.rects
        n = self._matrix_inputs
        if not n:
            return rects
        strips = []
        for f in self.page_filters():
            first = self.tile_of(f, 0)
            assert first is not None
            top, left, h, _ = rects[first]
            last = rects[first + n - 1]
            strips.append((top, left, h, last[1] + last[3] - left))
        return strips

    def tile_of(self, out_channel: int, in_channel: int | None = None) -> int | None:
        """The canvas tile showing filter ``out_channel`` (its ``in_channel`` kernel in the matrix),
        None when it is not on this page."""
        for t, entry in enumerate(self._index):
            if entry is None:
                continue
            f, c = entry
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
        one_each = in_channel is not None or w.shape[1] == 1  # one kernel per filter: a grid
        matrix = not one_each and not (w.shape[1] == 3 and in_channel is None)
        self._show_pager(False)
        if matrix:
            self._paint_matrix(w)
        else:
            # small kernels are enlarged by the view, not in memory (max_side)
            tiles, _, self._index = render.filter_tiles(w, in_channel=in_channel, max_filters=len(w))
            self._matrix_inputs = None
            labels = None
            if len(tiles) <= 36:
                labels = [f"{f} {self._names[f]}" if self._names else f"{f}" for f, _ in self._index]
            self.canvas.set_tiles(tiles, labels=labels, max_side=1600)
            self.legend.setText(
                "colour filters: mid-grey = 0 · hover a filter for its R, G, B kernels"
                if not one_each
                else "blue < 0 < red · hover a kernel for its weights"
            )
        self._place_marker()

    def _paint_matrix(self, w: np.ndarray) -> None:
        """A page of filters, each a strip of its kernels (one per input channel), the strips
        stacked down the pane and wrapped side by side, blank tiles between the strips."""
        self._fit = n, strips, per_page = self._matrix_fit()
        self._matrix_inputs = n
        if self._wanted is not None:
            self._page, self._wanted = self._wanted // per_page, None
        self._page = max(0, min(self._page, self.page_count() - 1))
        shown = self.page_filters()
        tiles, _, local = render.filter_tiles(
            w[shown.start : shown.stop], max_filters=len(shown), max_inputs=n
        )
        rows = -(-len(shown) // strips)
        columns = strips * (n + 1) - 1
        grid = np.full((rows * columns, *tiles.shape[1:]), 40, dtype=np.uint8)  # the gap colour
        index: list[tuple[int, int | None] | None] = [None] * (rows * columns)
        for t, (f, c) in enumerate(local):  # filter f goes down strip f // rows, row f % rows
            place = (f % rows) * columns + (f // rows) * (n + 1) + c
            grid[place] = tiles[t]
            index[place] = (shown.start + f, c)
        self._index = index
        self.canvas.set_tiles(grid, columns=columns, max_side=1600)
        pages = self.page_count()
        self._show_pager(pages > 1)
        self.prev_page.setEnabled(self._page > 0)
        self.next_page.setEnabled(self._page < pages - 1)
        self.page_label.setText(f"filters {shown.start}–{shown.stop - 1} of {len(w)}")
        legend = (
            f"blue < 0 < red · each row is a filter: its kernels for input channels 0–{n - 1} left to right"
        )
        if w.shape[1] > n:
            legend += f" (of {w.shape[1]}: pick an input channel to see any one for every filter)"
        self.legend.setText(legend)

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
        entry = self._index[tile]
        assert entry is not None, "a blank tile between strips"
        f, c = entry
        w = self._weight[f]  # (I, kH, kW)
        name = f" “{self._names[f]}”" if self._names else ""
        if c is None:  # a colour filter: its three kernels, R, G and B
            channels = list(range(w.shape[0]))
            taps = " · ".join(f"{'RGB'[k] if w.shape[0] == 3 else k} {w[k, ky, kx]:+.4g}" for k in channels)
            line = f"filter {f}{name} · tap (y {ky}, x {kx}): {taps}"
        else:
            channels = [c]
            line = f"filter {f}{name} · input channel {c} · tap (y {ky}, x {kx}) = {w[c, ky, kx]:+.4g}"
        parts = [f"<p style='margin:2px'><b>filter {f}</b>{html.escape(name)}</p>"]
        if max(w.shape[1:]) <= MAX_TABLE_SIDE:
            for k in channels[:MAX_TABLE_KERNELS]:
                label = "input " + ("RGB"[k] if c is None and w.shape[0] == 3 else str(k))
                parts.append(kernel_table(w[k], label, (ky, kx)))
        else:
            parts.append(
                f"<p>{w.shape[1]}×{w.shape[2]} kernels: the readout below has the tap under the mouse</p>"
            )
        return line, "".join(parts)

    def _hover_tile(self, tile: int, ky: int, kx: int) -> None:
        if self._weight is None or not 0 <= tile < len(self._index) or self._index[tile] is None:
            return
        line, panel = self.hover_text(tile, ky, kx)
        self.readout.setText(line)
        self.weights.setText(panel)
