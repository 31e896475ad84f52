"""All channels of a layer, tiled; hover to read a value, click to enlarge a channel (which reads
and clicks the same way)."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from gui.view import Shown, View, Window
from gui.widgets import steady_label
from models import render

PAGE_SIZE = 64  # tiles per page: hundreds of channels stay fast and each tile stays readable


class FeatureMapsView(View):
    """Feature maps of one layer: a paged mosaic plus the selected channel enlarged.

    Signals: ``unit_hovered(channel, y, x, value)``, ``unit_clicked(channel, y, x)``,
    ``channel_selected(channel)``.
    """

    unit_hovered = Signal(int, int, int, float)
    unit_clicked = Signal(int, int, int)
    channel_selected = Signal(int)
    key = "maps"
    title = "Feature maps"
    HINT = "hover a map to read its values"

    def __init__(self, window: Window | None = None, parent: QWidget | None = None) -> None:
        super().__init__(window, parent)
        self._drawn_for: tuple | None = None  # (outcome, layer name) whose maps are shown
        self._maps: np.ndarray | None = None  # (C, H, W)
        self._layer = ""
        self._order = np.zeros(0, dtype=int)
        self._page = 0
        self._rects: list[tuple[int, int, int, int]] = []
        self._scale = 1
        self._selected: int | None = None
        self._image = np.zeros((1, 1, 3), dtype=np.uint8)
        self._names: list[str] | None = None

        self.colormap = QComboBox()
        self.colormap.addItems(list(render.COLORMAPS))
        self.normalization = QComboBox()
        self.normalization.addItems(["per map", "per layer"])
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
        for label, widget in (("Colour map", self.colormap), ("Normalise", self.normalization),
                              ("Sort", self.sort)):
            controls.addWidget(QLabel(label))
            controls.addWidget(widget)
        controls.addStretch(1)
        controls.addWidget(self.prev_page)
        controls.addWidget(self.page_label)
        controls.addWidget(self.next_page)

        self.graphics = pg.GraphicsLayoutWidget()
        self.view = self.graphics.addViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.item = pg.ImageItem(axisOrder="row-major")
        self.view.addItem(self.item)
        self.highlight = pg.QtWidgets.QGraphicsRectItem()
        self.highlight.setPen(pg.mkPen((255, 255, 255), width=2))
        self.highlight.setVisible(False)
        self.view.addItem(self.highlight)

        self.detail = pg.GraphicsLayoutWidget()
        self.detail_view = self.detail.addViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.detail_item = pg.ImageItem(axisOrder="row-major")
        self.detail_view.addItem(self.detail_item)
        self.detail_label = steady_label("click a map to enlarge it", lines=2, wrap=True)
        detail_box = QWidget()
        dl = QVBoxLayout(detail_box)
        dl.setContentsMargins(0, 0, 0, 0)
        dl.addWidget(self.detail_label)
        dl.addWidget(self.detail, 1)

        splitter = QSplitter()
        splitter.addWidget(self.graphics)
        splitter.addWidget(detail_box)
        splitter.setSizes([700, 300])
        splitter.setStretchFactor(0, 3)  # the mosaic takes most of the room
        splitter.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(controls)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.readout)

        self.colormap.currentTextChanged.connect(self._redraw)
        self.normalization.currentIndexChanged.connect(self._redraw)
        self.sort.currentIndexChanged.connect(self._resort)
        self.prev_page.clicked.connect(lambda: self.set_page(self._page - 1))
        self.next_page.clicked.connect(lambda: self.set_page(self._page + 1))
        # hover handling is arithmetic only; the proxy collapses bursts of mouse moves
        # direct, not through a rate-limiting SignalProxy: the handler is a lookup and a label,
        # and a proxy's timer alone would add up to 17 ms to every hover
        self.graphics.scene().sigMouseMoved.connect(self._hover)
        self.graphics.scene().sigMouseClicked.connect(lambda ev: self._click(ev.scenePos()))
        # the enlarged map reads and clicks the same way: it is where one looks closely
        self.detail.scene().sigMouseMoved.connect(lambda pos: self._hover(pos, detail=True))
        self.detail.scene().sigMouseClicked.connect(
            lambda ev: self._click(ev.scenePos(), detail=True))

    # --- the view protocol ---------------------------------------------------------------
    def draw(self, shown: Shown) -> None:
        """The layer's maps (a new layer, image, model or engine: the readout starts empty), and
        the channel picked."""
        if shown.outcome is None or shown.layer is None:
            self._drawn_for = None
            self.clear()
            return
        key = (shown.outcome, shown.layer.name)
        if key != self._drawn_for:
            self._drawn_for = key
            self.readout.setText(self.HINT)  # a value read on what was shown before is no more
            name = shown.layer.name
            self.set_maps(name, shown.outcome.result.maps(name),
                          shown.outcome.model.channel_names.get(name))
        if shown.channel is not None and shown.channel != self._selected:
            self.select_channel(shown.channel)

    # --- public API --------------------------------------------------------------------
    def set_maps(self, layer: str, maps: np.ndarray, names: list[str] | None = None) -> None:
        """Show ``maps``: ``(C, H, W)`` float32, or ``(F,)`` for a layer without a spatial grid."""
        maps = np.asarray(maps, dtype=np.float32)
        if maps.ndim == 1:
            maps = maps[:, None, None]
        elif maps.ndim == 2:
            maps = maps[None]
        keep_page = layer == self._layer and self._maps is not None and self._maps.shape == maps.shape
        self._layer, self._maps, self._names = layer, maps, names
        if self._selected is None or self._selected >= len(maps):
            self._selected = 0  # the detail pane is never empty
        self._order = self._sorted_order()
        self._page = self._page if keep_page else 0
        self._redraw()  # the mosaic and the detail pane

    def clear(self) -> None:
        self._maps = None
        self._layer = ""
        self.readout.setText(self.HINT)
        self.item.clear()
        self.detail_item.clear()
        self.highlight.setVisible(False)

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
        position = int(np.nonzero(self._order == channel)[0][0])
        if position // PAGE_SIZE != self._page:
            self.set_page(position // PAGE_SIZE)
        self._show_detail()
        self._place_highlight()
        self.channel_selected.emit(channel)

    def page_count(self) -> int:
        return 0 if self._maps is None else -(-len(self._maps) // PAGE_SIZE)

    def page_channels(self) -> list[int]:
        """The channels on the current page, in display order."""
        return [int(c) for c in self._order[self._page * PAGE_SIZE:(self._page + 1) * PAGE_SIZE]]

    def set_page(self, page: int) -> None:
        if self._maps is None:
            return
        self._page = max(0, min(page, self.page_count() - 1))
        self._redraw()

    def render_image(self) -> np.ndarray:
        """The mosaic as shown: ``(H, W, 3)`` uint8."""
        self._ensure_drawn()
        return self._image

    def tile_rect(self, channel: int) -> tuple[int, int, int, int] | None:
        """``(top, left, height, width)`` of a channel's tile on the current page, in image pixels."""
        self._ensure_drawn()
        channels = self.page_channels()
        return self._rects[channels.index(channel)] if channel in channels else None

    def unit_at(self, iy: float, ix: float) -> tuple[int, int, int] | None:
        """The (channel, y, x) under mosaic pixel (iy, ix), or None (gap or outside)."""
        self._ensure_drawn()
        for i, (top, left, h, w) in enumerate(self._rects):
            if top <= iy < top + h and left <= ix < left + w:
                channel = self.page_channels()[i]
                return channel, int((iy - top) // self._scale), int((ix - left) // self._scale)
        return None

    def value(self, channel: int, y: int, x: int) -> float:
        assert self._maps is not None
        return float(self._maps[channel, y, x])

    def mode(self) -> str:
        return "map" if self.normalization.currentIndex() == 0 else "layer"

    # --- drawing -----------------------------------------------------------------------
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
        """What the window showed last is drawn, even while hidden (asked for its pixels)."""
        self.refresh()

    def _redraw(self) -> None:
        self._draw()

    def _draw(self) -> None:
        if self._maps is None:
            return
        maps = self._maps
        cmap = self.colormap.currentText()
        symmetric = cmap in render.DIVERGING
        # per layer: one scale for the whole layer, so channels compare; only this page is drawn
        values = render.normalize(maps, self.mode(), symmetric, channels=self.page_channels())
        tiles = render.apply_colormap(values, cmap)
        scale = max(1, int(np.ceil(48 / max(maps.shape[1], maps.shape[2]))))
        self._image, self._rects = render.mosaic(tiles, gap=max(1, scale // 2 + 1), scale=scale)
        self._scale = scale
        self.item.setImage(self._image, levels=(0, 255))
        self.view.autoRange(padding=0.01)
        pages = self.page_count()
        self.page_label.setText(f"page {self._page + 1}/{pages} · {len(maps)} channels")
        self.prev_page.setEnabled(self._page > 0)
        self.next_page.setEnabled(self._page < pages - 1)
        self._place_highlight()
        self._show_detail()

    def _place_highlight(self) -> None:
        rect = self.tile_rect(self._selected) if self._selected is not None else None
        self.highlight.setVisible(rect is not None)
        if rect is not None:
            top, left, h, w = rect
            self.highlight.setRect(left - 1, top - 1, w + 2, h + 2)

    def _show_detail(self) -> None:
        if self._maps is None or self._selected is None:
            self.detail_item.clear()
            self.detail_label.setText("click a map to enlarge it")
            return
        c = self._selected
        m = self._maps[c]
        cmap = self.colormap.currentText()
        rgb = render.apply_colormap(render.normalize(m[None], "map", cmap in render.DIVERGING)[0], cmap)
        self.detail_item.setImage(rgb, levels=(0, 255))
        self.detail_view.autoRange(padding=0.01)
        name = f" ({self._names[c]})" if self._names and c < len(self._names) else ""
        self.detail_label.setText(
            f"<b>channel {c}</b>{name} · {m.shape[0]}×{m.shape[1]} · min {m.min():.3g} · "
            f"mean {m.mean():.3g} · max {m.max():.3g}")

    # --- mouse -------------------------------------------------------------------------
    def _scene_to_unit(self, scene_pos: QPointF, detail: bool = False) -> tuple[int, int, int] | None:
        view = self.detail_view if detail else self.view
        if self._maps is None or not view.sceneBoundingRect().contains(scene_pos):
            return None
        p = view.mapSceneToView(scene_pos)
        if not detail:
            return self.unit_at(p.y(), p.x())
        y, x = int(np.floor(p.y())), int(np.floor(p.x()))  # one image pixel per unit
        c = self._selected
        inside = c is not None and 0 <= y < self._maps.shape[1] and 0 <= x < self._maps.shape[2]
        return (c, y, x) if inside else None

    def _hover(self, scene_pos: QPointF, detail: bool = False) -> None:
        unit = self._scene_to_unit(scene_pos, detail)
        if unit is None:
            return
        c, y, x = unit
        value = self.value(c, y, x)
        name = f" {self._names[c]}" if self._names and c < len(self._names) else ""
        self.readout.setText(f"channel {c}{name} · (y {y}, x {x}) = {value:.4g}")
        self.unit_hovered.emit(c, y, x, value)

    def _click(self, scene_pos: QPointF, detail: bool = False) -> None:
        unit = self._scene_to_unit(scene_pos, detail)
        if unit is None:
            return
        self.select_channel(unit[0])
        self.unit_clicked.emit(*unit)
