"""Every layer, as a tree by module path; Previous / Next, a slider, and the keyboard.

The tree shows the network's shape: a stage (a ResNet's ``layer2``) holds its blocks, a block
its layers. A block whose output the run recorded (``LayerInfo.block``: after its residual add
or its concatenation) is a row like any layer: selecting it shows that output. A path with no
row of its own (a model form that records leaves only, a container that returns a tuple) is a
grey group row that only holds its children.

Indices are positions in the run's layer list (execution order: a block's row comes after its
layers); the slider walks them in that order, Page Down / Up the convolutions among them;
Previous / Next (and the arrow keys) go to the next row the tree shows, so a collapsed block is
stepped over as one row.
"""

from __future__ import annotations

import shiboken6
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetrics
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QPushButton,
    QSlider,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTreeWidget,
    QTreeWidgetItem,
    QTreeWidgetItemIterator,
    QVBoxLayout,
    QWidget,
)

from models.layers import split_layer_key
from models.runner import LayerInfo

INDEX = Qt.ItemDataRole.UserRole  # item data: the layer's index, -1 for a group row
NAME_ROOM = 140  # px the layer names keep before the other columns are hidden
TYPE_ROOM = "BatchNorm2d"  # the type column is at most this wide: longer types are elided
OPEN_ROWS = 60  # a new model's tree opens level by level while it shows at most this many rows
CONV = QColor(20, 90, 170)
BLOCK = QColor(30, 110, 60)
GROUP = QColor(120, 120, 120)


class LayerNavigator(QWidget):
    layer_changed = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tree = QTreeWidget()
        self.tree.setColumnCount(3)
        self.tree.setHeaderLabels(["layer", "type", "output"])
        self.tree.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.tree.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.tree.setUniformRowHeights(True)
        self.tree.setIndentation(8)  # deep rows keep room for their names
        self.tree.setAllColumnsShowFocus(True)
        header = self.tree.header()
        header.setStretchLastSection(False)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        # sized once per model (ResizeToContents would re-measure every row on every change)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Interactive)
        # "layer3.…conv2": the block and the layer, not "…ption3a.branch2.0.conv"
        self.tree.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self._names = _PathDelegate(self.tree)
        self.tree.setItemDelegateForColumn(0, self._names)
        self.prev_button = QPushButton("◀ Previous")
        self.next_button = QPushButton("Next ▶")
        self.slider = QSlider(Qt.Orientation.Horizontal)
        buttons = QHBoxLayout()
        buttons.addWidget(self.prev_button)
        buttons.addWidget(self.next_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(buttons)
        layout.addWidget(self.slider)
        layout.addWidget(self.tree, 1)
        self._widths = (0, 0)  # the type and output columns' widths when shown
        self._layers: list[LayerInfo] = []
        self._items: list[QTreeWidgetItem] = []
        self._index = -1
        self.prev_button.clicked.connect(lambda: self.step(-1))
        self.next_button.clicked.connect(lambda: self.step(1))
        self.slider.valueChanged.connect(self.set_index)
        self.tree.currentItemChanged.connect(self._on_current)

    # ----------------------------------------------------------------- building
    def set_layers(self, layers: list[LayerInfo], index: int = 0) -> None:
        rows = [(la.name, la.type, la.output_shape, la.block) for la in layers]
        same = rows == [(la.name, la.type, la.output_shape, la.block) for la in self._layers]
        self._layers = layers
        if same:  # the same model on another image or engine: the tree stands, opened as it was
            self._index = -1
            self.set_index(index)
            return
        self.tree.setUpdatesEnabled(False)
        self.tree.blockSignals(True)
        self.tree.clear()
        self._items = self._build(layers)
        self._open_levels()
        self.tree.blockSignals(False)
        for col in (1, 2):
            self.tree.setColumnHidden(col, False)
            self.tree.resizeColumnToContents(col)
        cap = self.tree.fontMetrics().horizontalAdvance(TYPE_ROOM) + 14
        self.tree.setColumnWidth(1, min(self.tree.columnWidth(1), cap))
        self._widths = (self.tree.columnWidth(1), self.tree.columnWidth(2))
        self._fit_columns()
        self.tree.setUpdatesEnabled(True)
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(0, len(layers) - 1))
        self.slider.blockSignals(False)
        self._index = -1
        self.set_index(index)

    def _build(self, layers: list[LayerInfo]) -> list[QTreeWidgetItem]:
        """One item per layer, under the item of its parent path (made as a group row when no
        layer of that path has come yet: a block's row comes after its layers)."""
        nodes: dict[str, QTreeWidgetItem] = {}  # module path -> its first call's item
        root = self.tree.invisibleRootItem()

        def node(path: str) -> QTreeWidgetItem:
            if not path:
                return root
            if path not in nodes:
                item = QTreeWidgetItem([path, "", ""])
                item.setData(0, INDEX, -1)
                _style_group(item, path)
                node(path.rpartition(".")[0]).addChild(item)
                nodes[path] = item
            return nodes[path]

        items = []
        for i, la in enumerate(layers):
            path, call = split_layer_key(la.name)
            if la.block and call == 0 and path in nodes:  # its layers made its group row
                item = nodes[path]
            else:
                item = QTreeWidgetItem()
                node(path.rpartition(".")[0]).addChild(item)
                if la.block and call == 0:
                    nodes[path] = item
            _fill(item, la, i)
            items.append(item)
        return items

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit_columns()

    def _fit_columns(self) -> None:
        """In a narrow pane the names keep their room (``NAME_ROOM``): the type column goes
        first, then the output's (both stay in the row's tooltip). The type column is at most as
        wide as "BatchNorm2d", so that types show at the default window size."""
        room = self.tree.viewport().width() - NAME_ROOM
        w_type, w_out = self._widths
        self.tree.setColumnHidden(2, w_out > room)
        self.tree.setColumnHidden(1, w_type + w_out > room)

    def _open_levels(self) -> None:
        """Open the tree level by level while it shows at most OPEN_ROWS rows: a small net
        shows every layer, a ResNet its stages and blocks."""
        level = [self.tree.topLevelItem(i) for i in range(self.tree.topLevelItemCount())]
        shown = len(level)
        while level:
            parents = [it for it in level if it.childCount()]
            more = sum(it.childCount() for it in parents)
            if not parents or shown + more > OPEN_ROWS:
                return
            for it in parents:
                it.setExpanded(True)
            shown += more
            level = [it.child(j) for it in parents for j in range(it.childCount())]

    # ----------------------------------------------------------------- reading
    def index(self) -> int:
        return self._index

    def count(self) -> int:
        return len(self._layers)

    def layer_rows(self) -> int:
        """How many rows of the tree are layers (group rows not counted)."""
        count = 0
        it = QTreeWidgetItemIterator(self.tree)
        while it.value() is not None:
            count += it.value().data(0, INDEX) >= 0
            it += 1
        return count

    def item(self, index: int) -> QTreeWidgetItem:
        """The tree row of layer ``index``."""
        return self._items[index]

    def visible_rows(self) -> list[int]:
        """The layer indices of the rows the tree shows (opened), top to bottom."""
        found, item = [], self.tree.topLevelItem(0)
        while item is not None:
            i = item.data(0, INDEX)
            if i is not None and i >= 0:
                found.append(i)
            item = self.tree.itemBelow(item)
        return found

    # ----------------------------------------------------------------- moving
    def step(self, delta: int) -> None:
        """To the next (``delta`` > 0) or previous row the tree shows that is a layer."""
        if not self._layers:
            return
        if self._index < 0:
            self.set_index(0)
            return
        item = self._shown(self._items[self._index])
        below = self.tree.itemBelow if delta > 0 else self.tree.itemAbove
        for _ in range(abs(delta)):
            nxt = below(item)
            while nxt is not None and nxt.data(0, INDEX) < 0:  # a group row: not a layer
                nxt = below(nxt)
            if nxt is None:
                break
            item = nxt
        i = item.data(0, INDEX)
        if i is not None and i >= 0:
            self.set_index(i)

    def _shown(self, item: QTreeWidgetItem) -> QTreeWidgetItem:
        """``item``, or its outermost closed ancestor when it is hidden inside one."""
        shown, parent = item, item.parent()
        while parent is not None:
            if not parent.isExpanded():
                shown = parent
            parent = parent.parent()
        return shown

    def step_conv(self, delta: int) -> None:
        """To the next (or previous) convolution layer, in execution order (opening the
        blocks it is in)."""
        i = self._index + delta
        while 0 <= i < len(self._layers) and not self._layers[i].is_conv:
            i += delta
        if 0 <= i < len(self._layers):
            self.set_index(i)

    def set_index(self, index: int) -> None:
        if not self._layers:
            return
        index = max(0, min(index, len(self._layers) - 1))
        if index == self._index:
            return
        item = self._items[index]
        if not shiboken6.isValid(item):  # seen once in the suite: items gone under us; rebuild
            layers, self._layers = self._layers, []
            self.set_layers(layers, index)
            return
        self._index = index
        parent = item.parent()
        while parent is not None:  # a layer inside a closed block: open it
            parent.setExpanded(True)
            parent = parent.parent()
        for widget, setter in (
            (self.slider, self.slider.setValue),
            (self.tree, lambda _i: self.tree.setCurrentItem(item)),
        ):
            widget.blockSignals(True)
            setter(index)
            widget.blockSignals(False)
        self.tree.scrollToItem(item)
        self.prev_button.setEnabled(index > 0)
        self.next_button.setEnabled(index < len(self._layers) - 1)
        self.layer_changed.emit(index)

    def _on_current(self, item: QTreeWidgetItem | None, _previous: object) -> None:
        i = item.data(0, INDEX) if item is not None else None
        if i is not None and i >= 0:
            self.set_index(i)


def _fill(item: QTreeWidgetItem, la: LayerInfo, index: int) -> None:
    shape = "×".join(str(s) for s in la.output_shape[1:])
    kind = " · convolution" if la.is_conv else " · block output" if la.block else ""
    tip = f"{la.name} · {la.type} · output {shape}{kind}"
    if la.block:
        tip += "\n(the block's own output: after its residual add or concatenation)"
    item.setData(0, INDEX, index)
    for col, text in enumerate((la.name, la.type.rpartition(".")[2], shape)):
        item.setText(col, text)
        item.setToolTip(col, tip)  # the whole name, which the column may cut
        colour = CONV if la.is_conv else BLOCK if la.block else None
        # a plain layer keeps the palette's text colour (a group row it replaces had grey)
        item.setData(col, Qt.ItemDataRole.ForegroundRole, QBrush(colour) if colour else None)
        font = QFont()
        font.setBold((la.is_conv or la.block) and col == 0)  # the name; type and shape keep
        item.setFont(col, font)  # their room (a colour says it too)


def _style_group(item: QTreeWidgetItem, path: str) -> None:
    tip = f"{path}: a group of layers (its own output is not recorded)"
    font = QFont()
    font.setItalic(True)
    for col in range(3):
        item.setToolTip(col, tip)
        item.setForeground(col, QBrush(GROUP))
        item.setFont(col, font)


def elide_path(name: str, metrics: QFontMetrics, width: int) -> str:
    """``name`` as it fits ``width`` px: whole, else its first part and as many of its last
    parts as fit (``layer3.…1.conv2``, ``layer3.…conv2``),
    else its last parts (``…0.conv2``; the rows above show the stage), else cut in the middle.
    ``metrics`` must be the row's own font's: a bold row measured in the regular font was judged
    to fit and then cut again by the view ("…0.conv" beside "inception4a.…0.bn")."""
    if metrics.horizontalAdvance(name) <= width:
        return name
    parts = name.split(".")
    tails = [".".join(parts[-keep:]) for keep in range(len(parts) - 1, 0, -1)]
    for text in [f"{parts[0]}.…{tail}" for tail in tails[1:]] + [f"…{tail}" for tail in tails]:
        if metrics.horizontalAdvance(text) <= width:
            return text
    return metrics.elidedText(name, Qt.TextElideMode.ElideMiddle, width)


class _PathDelegate(QStyledItemDelegate):
    """Layer names elided by path parts, keeping the first (the stage) and the last."""

    MARGIN = 8  # px the style takes around the text (2 x (focus frame margin + 1) = 6, and 2)

    def initStyleOption(self, option: QStyleOptionViewItem, index) -> None:
        super().initStyleOption(option, index)
        width = option.rect.width() - self.MARGIN
        if option.text and width > 0:
            # measured in bold, the font of the widest rows: a bold row measured in the regular
            # font was cut again by the view, and every row at a width takes the same form
            bold = QFont(option.font)
            bold.setBold(True)
            option.text = elide_path(option.text, QFontMetrics(bold), width)
