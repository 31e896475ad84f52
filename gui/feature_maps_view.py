"""All channels of a layer, tiled on one :class:`~gui.mosaic.MosaicCanvas` sized to fill the
pane; hover to read a value, click to enlarge a channel (which reads and clicks the same way).
A colour bar says what the colours stand for. A layer without spatial extent (a 1x1 output after
a global pool, a flat fc/logits output) is a bar chart of its values, its largest named."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from gui.colorbar import ColorBar
from gui.map_detail import MapDetail
from gui.mosaic import MosaicCanvas
from gui.value_bars import ValueBars
from gui.view import Shown, View, Window
from gui.widgets import steady_label
from models import render

PAGE_SIZE = 64  # tiles per page: hundreds of channels stay fast and each tile stays readable


def maps_and_names(shown: Shown) -> tuple[np.ndarray, list[str] | None] | None:
    """The shown layer's maps and channel names (the model's own; a classifier's categories for
    its output), or None when nothing is shown."""
    outcome, layer = shown.outcome, shown.layer
    if outcome is None or layer is None:
        return None
    result, model = outcome.result, outcome.model
    maps = result.maps(layer.name)
    names = model.channel_names.get(layer.name)
    categories = getattr(model, "categories", None)
    if (
        names is None
        and categories
        and result.layers
        and layer.name == result.layers[-1].name
        and np.asarray(maps).size == len(categories)
    ):
        names = list(categories)
    return maps, names


class FeatureMapsView(View):
    """Feature maps of one layer: a paged mosaic plus the selected channel enlarged, each with a
    colour bar; a bar chart when the layer has no spatial extent.

    Signals: ``unit_hovered(channel, y, x, value)``, ``unit_clicked(channel, y, x)``,
    ``channel_selected(channel)``.
    """

    key = "maps"
    title = "Feature maps"
    short_title = "Maps"

    unit_hovered = Signal(int, int, int, float)
    unit_clicked = Signal(int, int, int)
    channel_selected = Signal(int)
    HINT = "hover a map to read its values"

    def __init__(self, window: Window | None = None, parent: QWidget | None = None) -> None:
        super().__init__(window, parent)
        self._drawn_for: tuple | None = None  # (outcome, layer name) whose maps are shown
        self._maps: np.ndarray | None = None  # (C, H, W)
        self._layer = ""
        self._order = np.zeros(0, dtype=int)
        self._page = 0
        self._selected: int | None = None
        self._stale = False  # data or settings changed while hidden: painted when shown
        self._names: list[str] | None = None

        self.colormap = QComboBox()
        self.colormap.addItems(list(render.COLORMAPS))
        self.normalization = QComboBox()
        self.normalization.addItems(["per map", "per layer"])
        self.normalization.setToolTip(
            "per map: each map on its own range (shapes show);\n"
            "per layer: one range for all, so channels compare"
        )
        self.sort = QComboBox()
        self.sort.addItems(["channel order", "by mean ↓", "by max ↓"])
        self.prev_page = QPushButton("◀")
        self.next_page = QPushButton("▶")
        for button in (self.prev_page, self.next_page):
            button.setFixedWidth(36)  # an arrow, not a 90 px default: the maps pane can be narrow
        self.page_label = steady_label(width_of="page 20/20 · 1280 channels")
        self.page_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.readout = steady_label(self.HINT)
        controls = QHBoxLayout()
        # short words: the row fits the maps pane of a 1024 px window; the paging sits by the readout
        for label, widget, tip in (
            ("Colours", self.colormap, "colour map"),
            ("Scale", self.normalization, self.normalization.toolTip()),
            ("Sort", self.sort, "order of the tiles"),
        ):
            words = QLabel(label)
            words.setToolTip(tip)
            controls.addWidget(words)
            controls.addWidget(widget)
        controls.addStretch(1)
        bottom = QHBoxLayout()
        bottom.addWidget(self.readout, 1)
        bottom.addWidget(self.prev_page)
        bottom.addWidget(self.page_label)
        bottom.addWidget(self.next_page)

        self.canvas = MosaicCanvas(min_tile=48)
        # the names the window and the tests use
        self.graphics, self.view, self.item = self.canvas.graphics, self.canvas.view, self.canvas.item
        self.highlight = self.canvas.highlight
        self.colorbar = ColorBar("values")
        mosaic_box = QWidget()
        ml = QVBoxLayout(mosaic_box)
        ml.setContentsMargins(0, 0, 0, 0)
        ml.addWidget(self.canvas, 1)
        ml.addWidget(self.colorbar)

        self.bars = ValueBars()
        self.stack = QStackedWidget()
        self.stack.addWidget(mosaic_box)
        self.stack.addWidget(self.bars)

        self.detail_box = MapDetail()
        # the names the window, the monkey and the tests use
        self.detail, self.detail_view = self.detail_box.graphics, self.detail_box.view
        self.detail_label, self.detail_colorbar = self.detail_box.label, self.detail_box.colorbar

        splitter = QSplitter()
        splitter.addWidget(self.stack)
        splitter.addWidget(self.detail_box)
        splitter.setSizes([700, 300])
        splitter.setStretchFactor(0, 3)  # the mosaic takes most of the room
        splitter.setStretchFactor(1, 1)
        splitter.setChildrenCollapsible(False)
        self.splitter = splitter
        layout = QVBoxLayout(self)
        layout.addLayout(controls)
        layout.addWidget(splitter, 1)
        layout.addLayout(bottom)

        self.colormap.currentTextChanged.connect(self._redraw)
        self.normalization.currentIndexChanged.connect(self._redraw)
        self.sort.currentIndexChanged.connect(self._resort)
        self.prev_page.clicked.connect(lambda: self.set_page(self._page - 1))
        self.next_page.clicked.connect(lambda: self.set_page(self._page + 1))
        # hover is a lookup and a label: handled directly, no rate-limiting proxy
        self.canvas.hovered.connect(lambda i, y, x: self._hover_unit(self._channel_of(i), y, x))
        self.canvas.clicked.connect(lambda i, y, x: self._click_unit(self._channel_of(i), y, x))
        # the enlarged map reads and clicks the same way: it is where one looks closely
        self.detail_box.hovered.connect(lambda y, x: self._hover_unit(self._selected, y, x))
        self.detail_box.clicked.connect(lambda y, x: self._click_unit(self._selected, y, x))
        self.bars.hovered.connect(self._hover_bar)
        self.bars.clicked.connect(lambda i: self._click_unit(i, 0, 0))

    # --- the view protocol -------------------------------------------------------------
    def draw(self, shown: Shown) -> None:
        data = maps_and_names(shown)
        if data is None:
            if shown.outcome is not None:  # an outcome, no layer picked: nothing to show
                self.clear()
            return  # before the first run (or fed through set_maps by the old window): kept
        key = (shown.outcome, shown.layer.name)
        if key != self._drawn_for:  # a new layer, image, model or engine: no value read before
            self._drawn_for = key
            self.readout.setText(self.HINT)
        self.set_maps(shown.layer.name, *data)
        if shown.channel is not None and shown.channel != self._selected:
            self.select_channel(shown.channel)

    def refresh(self) -> None:
        super().refresh()
        if self._stale:
            self._paint()

    # --- public API --------------------------------------------------------------------
    def set_maps(self, layer: str, maps: np.ndarray, names: list[str] | None = None) -> None:
        """Show ``maps``: ``(C, H, W)`` float32, or ``(F,)`` for a layer without a spatial grid."""
        maps = np.asarray(maps, dtype=np.float32)
        if maps.ndim == 1:
            maps = maps[:, None, None]
        elif maps.ndim == 2:
            maps = maps[None]
        elif maps.ndim > 3:  # e.g. a transformer's (tokens, heads, d): flattened to channels
            maps = maps.reshape(-1, *maps.shape[-2:])
        keep_page = layer == self._layer and self._maps is not None and self._maps.shape == maps.shape
        if not keep_page:  # a readout of the layer left behind would lie about this one
            self.readout.setText("hover a map to read its values")
        self._layer, self._maps, self._names = layer, maps, names
        if self._selected is None or self._selected >= len(maps):
            self._selected = 0  # the detail pane is never empty
        self._order = self._sorted_order()
        self._page = self._page if keep_page else 0
        self._redraw()  # the mosaic and the detail pane

    def clear(self) -> None:
        self._maps = None
        self._layer = ""
        self._stale = False
        self.canvas.clear()
        self.detail_box.clear()
        self.colorbar.clear()
        self.bars.clear_values()

    def set_colormap(self, name: str) -> None:
        self.colormap.setCurrentText(name)

    def set_normalization(self, mode: str) -> None:
        self.normalization.setCurrentIndex(0 if mode == "map" else 1)

    def set_sort(self, mode: str) -> None:
        self.sort.setCurrentIndex({"index": 0, "mean": 1, "max": 2}[mode])

    def selected_channel(self) -> int | None:
        return self._selected

    def select_channel(self, channel: int) -> None:
        if self._maps is None or not 0 <= channel < len(self._maps):
            return
        self._selected = channel
        if self.is_flat():
            self.bars.mark(channel)
        else:
            position = int(np.nonzero(self._order == channel)[0][0])
            if position // PAGE_SIZE != self._page:
                self.set_page(position // PAGE_SIZE)
            self._show_detail()
            self._place_highlight()
        self.channel_selected.emit(channel)

    def is_flat(self) -> bool:
        """The layer has no spatial extent: its values are drawn as bars."""
        return self._maps is not None and self._maps.shape[1:] == (1, 1) and len(self._maps) > 1

    def page_count(self) -> int:
        if self._maps is None:
            return 0
        return 1 if self.is_flat() else -(-len(self._maps) // PAGE_SIZE)

    def page_channels(self) -> list[int]:
        """The channels on the current page, in display order."""
        return [int(c) for c in self._order[self._page * PAGE_SIZE : (self._page + 1) * PAGE_SIZE]]

    def set_page(self, page: int) -> None:
        if self._maps is None:
            return
        self._page = max(0, min(page, self.page_count() - 1))
        self._redraw()

    def render_image(self) -> np.ndarray:
        """The mosaic as shown: ``(H, W, 3)`` uint8."""
        self._ensure_drawn()
        return self.canvas.image

    def tile_rect(self, channel: int) -> tuple[int, int, int, int] | None:
        """``(top, left, height, width)`` of a channel's tile on the current page, in image pixels."""
        self._ensure_drawn()
        channels = self.page_channels()
        if self.is_flat() or channel not in channels:
            return None
        return self.canvas.rects[channels.index(channel)]

    def unit_at(self, iy: float, ix: float) -> tuple[int, int, int] | None:
        """The (channel, y, x) under mosaic pixel (iy, ix), or None (gap or outside)."""
        self._ensure_drawn()
        hit = self.canvas.unit_at(iy, ix)
        return None if hit is None else (self._channel_of(hit[0]), hit[1], hit[2])

    def value(self, channel: int, y: int, x: int) -> float:
        assert self._maps is not None
        return float(self._maps[channel, y, x])

    def mode(self) -> str:
        return "map" if self.normalization.currentIndex() == 0 else "layer"

    def bar_values(self) -> np.ndarray:
        """The heights of the bars as drawn (a layer without spatial extent)."""
        return self.bars.values()

    def bar_labels(self) -> list[str]:
        """The names written over the largest bars, largest first."""
        return self.bars.labels()

    # --- drawing -----------------------------------------------------------------------
    def _channel_of(self, tile: int) -> int:
        return int(self._order[self._page * PAGE_SIZE + tile])

    def _name(self, c: int) -> str:
        return self._names[c] if self._names and c < len(self._names) else ""

    def _sorted_order(self) -> np.ndarray:
        assert self._maps is not None
        c = len(self._maps)
        if self.sort.currentIndex() == 1:
            return np.argsort(-self._maps.reshape(c, -1).mean(1), kind="stable")
        if self.sort.currentIndex() == 2:
            return np.argsort(-self._maps.reshape(c, -1).max(1), kind="stable")
        return np.arange(c)

    def _resort(self) -> None:
        if self._maps is not None:
            self._order = self._sorted_order()
            self._page = 0
            self._redraw()

    def _ensure_drawn(self) -> None:
        if self._stale:
            self._paint()

    def _redraw(self) -> None:
        """Paint now if shown, else when shown: stepping layers on another tab stays fast."""
        self._stale = self._maps is not None
        if self.isVisible():
            self._ensure_drawn()

    def _paint(self) -> None:
        self._stale = False
        if self._maps is None:
            return
        flat = self.is_flat()
        for control in (self.colormap, self.normalization, self.sort):
            control.setEnabled(not flat)  # bars have one colour, one scale, channel order
        if flat:
            self._paint_bars()
            return
        self.stack.setCurrentIndex(0)
        self.detail_box.setVisible(True)
        maps = self._maps
        cmap = self.colormap.currentText()
        symmetric = cmap in render.DIVERGING
        # per layer: one scale for the whole layer, so channels compare; only this page is drawn
        channels = self.page_channels()
        values = render.normalize(maps, self.mode(), symmetric, channels=channels)
        tiles = render.apply_colormap(values, cmap)
        labels = None
        if len(channels) <= 36:
            labels = [f"{c} {self._name(c)}".strip() for c in channels]
        self.canvas.set_tiles(tiles, labels=labels)
        self.colorbar.set_colormap(cmap)
        if self.mode() == "layer":
            self.colorbar.set_title("values (whole layer)", "layer")
            self.colorbar.set_range(*render.value_range(maps, symmetric))
        else:
            self.colorbar.set_title("values (each map on its own range)", "values")
            self.colorbar.set_text_ends(
                "−max |map|" if symmetric else "each map's min",
                "+max |map|" if symmetric else "each map's max",
            )
        pages = self.page_count()
        self.page_label.setText(f"page {self._page + 1}/{pages} · {len(maps)} channels")
        self.prev_page.setEnabled(self._page > 0)
        self.next_page.setEnabled(self._page < pages - 1)
        self._place_highlight()
        self._show_detail()

    def _paint_bars(self) -> None:
        """A layer without spatial extent: one bar per channel (or class), the largest named."""
        assert self._maps is not None
        self.stack.setCurrentIndex(1)
        self.detail_box.setVisible(False)
        values = self._maps[:, 0, 0]
        n = len(values)
        axis = "class" if self._names and n > 100 else "channel"
        top = self.bars.set_values(values, self._name, axis)
        self.bars.mark(self._selected or 0)
        self.page_label.setText(f"{n} values, as bars")
        self.prev_page.setEnabled(False)
        self.next_page.setEnabled(False)
        self.colorbar.clear()
        self.canvas.clear()
        self.detail_box.clear()
        best = top[0] if top else 0
        name = self._name(best)
        self.readout.setText(
            f"{self._layer} has no spatial extent: {n} values, one bar each · "
            f"largest: {best}{' ' + name if name else ''} = {values[best]:.4g} · "
            f"green line: the selected {axis} ({self._selected or 0}; click a bar for another)"
        )

    def _place_highlight(self) -> None:
        channels = self.page_channels()
        sel = self._selected
        self.canvas.mark(channels.index(sel) if sel in channels and not self.is_flat() else None)

    def _show_detail(self) -> None:
        if self._maps is None or self._selected is None:
            self.detail_box.clear()
            return
        c = self._selected
        self.detail_box.show_map(self._maps[c], c, self._name(c), self.colormap.currentText())

    # --- mouse -------------------------------------------------------------------------
    def _tile_unit(self, scene_pos: QPointF) -> tuple[int, int, int] | None:
        hit = self.canvas.scene_to_unit(scene_pos)
        if hit is None or self._maps is None or self.is_flat():
            return None
        return self._channel_of(hit[0]), hit[1], hit[2]

    def _hover(self, scene_pos: QPointF) -> None:
        unit = self._tile_unit(scene_pos)
        if unit is not None:
            self._hover_unit(*unit)

    def _click(self, scene_pos: QPointF) -> None:
        unit = self._tile_unit(scene_pos)
        if unit is not None:
            self._click_unit(*unit)

    def _hover_unit(self, c: int, y: int, x: int) -> None:
        if self._maps is None:
            return
        value = self.value(c, y, x)
        name = f" {self._name(c)}" if self._name(c) else ""
        self.readout.setText(f"channel {c}{name} · (y {y}, x {x}) = {value:.4g}")
        self.unit_hovered.emit(c, y, x, value)

    def _click_unit(self, c: int, y: int, x: int) -> None:
        self.select_channel(c)
        self.unit_clicked.emit(c, y, x)

    def _hover_bar(self, i: int) -> None:
        name = f" {self._name(i)}" if self._name(i) else ""
        value = self.value(i, 0, 0)
        self.readout.setText(f"{self.bars.axis} {i}{name} = {value:.4g}")
        self.unit_hovered.emit(i, 0, 0, value)
