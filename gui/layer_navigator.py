"""Every layer in execution order; Previous / Next, a slider, and the keyboard."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QPushButton,
    QSlider,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from models.runner import LayerInfo


class LayerNavigator(QWidget):
    layer_changed = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["layer", "type", "output"])
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        # sized once per model (ResizeToContents would re-measure every row on every setItem:
        # 0.6 s for a 150-layer model, all of it a frozen window)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Interactive)
        self.table.setTextElideMode(Qt.TextElideMode.ElideLeft)  # the tail of a long path says most
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
        layout.addWidget(self.table, 1)
        self._layers: list[LayerInfo] = []
        self._index = -1
        self.prev_button.clicked.connect(lambda: self.step(-1))
        self.next_button.clicked.connect(lambda: self.step(1))
        self.slider.valueChanged.connect(self.set_index)
        self.table.currentCellChanged.connect(lambda row, *_: self.set_index(row))

    def set_layers(self, layers: list[LayerInfo], index: int = 0) -> None:
        rows = [(la.name, la.type, la.output_shape) for la in layers]
        same = rows == [(la.name, la.type, la.output_shape) for la in self._layers]
        self._layers = layers
        if same:  # the same model on another image or engine: the table stands
            self._index = -1
            self.set_index(index)
            return
        self.table.setUpdatesEnabled(False)
        self.table.blockSignals(True)
        self.table.setRowCount(len(layers))
        bold = QFont()
        bold.setBold(True)
        for row, la in enumerate(layers):
            shape = "×".join(str(s) for s in la.output_shape[1:])
            tip = f"{la.name} · {la.type} · output {shape}" + (" · convolution" if la.is_conv else "")
            for col, text in enumerate((la.name, la.type, shape)):
                item = QTableWidgetItem(text)
                item.setToolTip(tip)  # the whole name, which the column may cut
                if la.is_conv:
                    item.setFont(bold)
                    item.setForeground(QBrush(QColor(20, 90, 170)))
                self.table.setItem(row, col, item)
        self.table.blockSignals(False)
        self.table.resizeColumnToContents(1)
        self.table.resizeColumnToContents(2)
        self.table.setUpdatesEnabled(True)
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(0, len(layers) - 1))
        self.slider.blockSignals(False)
        self._index = -1
        self.set_index(index)

    def index(self) -> int:
        return self._index

    def count(self) -> int:
        return len(self._layers)

    def step(self, delta: int) -> None:
        self.set_index(self._index + delta)

    def step_conv(self, delta: int) -> None:
        """To the next (or previous) convolution layer."""
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
        self._index = index
        for widget, setter in ((self.slider, self.slider.setValue),
                               (self.table, lambda i: self.table.setCurrentCell(i, 0))):
            widget.blockSignals(True)
            setter(index)
            widget.blockSignals(False)
        self.table.scrollToItem(self.table.item(index, 0))
        self.prev_button.setEnabled(index > 0)
        self.next_button.setEnabled(index < len(self._layers) - 1)
        self.layer_changed.emit(index)
