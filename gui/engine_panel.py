"""Pick the convolution engine; compare every engine that has run: time per layer, total time
against torch's, max difference from torch (``reference``, which runs for the comparison)."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine import available_engines, get_engine
from gui.view import Shown, View, Window
from models.pipeline import conv_times


class EnginePanel(View):
    """Keeps every run it is shown (drawn at once, hidden or not: a small table), so it compares
    the engines that ran while another tab was in front."""

    engine_changed = Signal(str)
    key = "engines"
    title = "Engines"

    def __init__(self, window: Window | None = None, parent: QWidget | None = None) -> None:
        super().__init__(window, parent)
        self._outcome = None  # the last outcome added as a run, and its comparison
        self._comparison = None
        self.combo = QComboBox()
        for name in available_engines():
            self.combo.addItem(name)
            self.combo.setItemData(self.combo.count() - 1, get_engine(name).description,
                                   role=3)  # Qt.ToolTipRole
        self.table = QTableWidget(0, 0)
        self.table.verticalHeader().setDefaultSectionSize(20)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)  # measurements
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.note = QLabel("Times in ms, the current layer selected; × torch = total time over "
                           "torch's (reference) on this image. Δ = max |difference| from torch over "
                           "all conv outputs.")
        self.note.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.note)
        self._runs: dict[str, dict] = {}  # engine -> {"times": {layer: ms}, "total": ms, "diff": x}
        self._layers: list[str] = []
        self._current: str | None = None
        self.combo.currentTextChanged.connect(self.engine_changed.emit)

    def show_state(self, shown: Shown) -> None:
        self.shown = shown
        self.refresh()  # every run is recorded, even while another tab is in front

    def draw(self, shown: Shown) -> None:
        outcome = shown.outcome
        if outcome is None:
            return
        if outcome is not self._outcome:
            previous, self._outcome = self._outcome, outcome
            result = outcome.result
            if previous is None or previous.model is not outcome.model or \
                    previous.image.source != outcome.image.source:
                self.reset([la.name for la in result.layers if la.is_conv])
            self.add_run(outcome.request.engine, conv_times(result), result.total_ms,
                         outcome.max_diff)
        comparison = outcome.comparison
        if comparison is not None and comparison is not self._comparison:
            self._comparison = comparison
            self.add_run("reference", comparison.times, comparison.total_ms, 0.0)  # torch ran
            self.set_diff(outcome.request.engine, outcome.max_diff)
        if shown.layer is not None:
            self.set_current(shown.layer.name)

    def engine(self) -> str:
        return self.combo.currentText()

    def set_engine(self, name: str) -> None:
        if name != self.combo.currentText():
            self.combo.blockSignals(True)
            self.combo.setCurrentText(name)
            self.combo.blockSignals(False)

    def reset(self, conv_layers: list[str]) -> None:
        """A new model or image: earlier timings no longer compare."""
        self._runs.clear()
        self._layers = conv_layers
        self._refresh()

    def add_run(self, engine: str, times: dict[str, float], total_ms: float,
                max_diff: float | None) -> None:
        self._runs[engine] = {"times": times, "total": total_ms, "diff": max_diff}
        self._refresh()

    def set_diff(self, engine: str, max_diff: float | None) -> None:
        """The Δ from torch, when it arrives after the run (the comparison runs second)."""
        if engine in self._runs:
            self._runs[engine]["diff"] = max_diff
            self._refresh()

    def set_current(self, layer: str) -> None:
        """Select ``layer``'s row (a conv layer; any other clears the selection)."""
        self._current = layer
        self._select()

    def _select(self) -> None:
        offset = len(self._header_rows())
        if self._current in self._layers:
            self.table.setCurrentCell(offset + self._layers.index(self._current), 0)
        else:
            self.table.clearSelection()

    def _header_rows(self) -> list[str]:
        return ["total (ms)"] + (["× torch"] if "reference" in self._runs else []) + ["Δ vs torch"]

    def engines_run(self) -> list[str]:
        return list(self._runs)

    def run_info(self, engine: str) -> dict:
        return self._runs[engine]

    def _refresh(self) -> None:
        engines = list(self._runs)
        self.table.clear()
        self.table.setColumnCount(len(engines))
        self.table.setHorizontalHeaderLabels(engines)
        header = self._header_rows()
        rows = [*header, *self._layers]
        self.table.setRowCount(len(rows))
        self.table.setVerticalHeaderLabels(rows)
        torch_total = self._runs["reference"]["total"] if "reference" in self._runs else None
        for col, e in enumerate(engines):
            run = self._runs[e]
            values = {"total (ms)": f"{run['total']:.1f}",
                      "× torch": f"{run['total'] / torch_total:.2f}" if torch_total else "",
                      "Δ vs torch": "…" if run["diff"] is None else f"{run['diff']:.1e}"}
            cells = [values[h] for h in header] + [
                f"{run['times'][n]:.2f}" if n in run["times"] else "" for n in self._layers]
            for row, v in enumerate(cells):
                self.table.setItem(row, col, QTableWidgetItem(v))
        self.table.resizeColumnsToContents()  # once, not per item
        self._select()
