"""Pick the convolution engine; compare every engine: time per layer (the median of several runs
after "Time all engines", else the one run the window made, labelled so), the algorithm each
engine ran per layer, total time against torch's, max difference from torch, and a chart of
per-layer time by engine."""

from __future__ import annotations

import re

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from engine import available_engines, get_engine
from gui.engine_chart import EngineChart, run_label, short_algorithm
from gui.view import Shown, View, Window
from gui.widgets import steady_label
from gui.worker import Worker, error_message
from models.errors import Cancelled
from models.timing import EngineTiming, private_copy, time_engines

DEFAULT_RUNS = 5


MIN_COLUMN = "000.00 · wino"  # an engine's column keeps at least its time and a word visible


def brief_algorithm(engine: str, algorithm: str | None) -> str:
    """:func:`short_algorithm` without its trailing details ("im2col+gemm (phase planes, wide
    rows)" is "im2col+gemm"): a table cell; the whole of it is the cell's tooltip."""
    text = short_algorithm(engine, algorithm)
    return re.sub(r" \([^()]*\)$", "", text)


def remembered_engine(value: object) -> str:
    """The engine remembered in the settings, or ``auto`` when it is not one of this version's
    (a settings file from another version, edited by hand)."""
    name = str(value)
    return name if name in available_engines() else "auto"


class EnginePanel(View):
    """Keeps every run it is shown (drawn at once, hidden or not: a small table), so it compares
    the engines that ran while another tab was in front."""

    engine_changed = Signal(str)
    key = "engines"
    title = "Engines"

    def __init__(self, window: Window | None = None, parent: QWidget | None = None) -> None:
        super().__init__(window, parent)
        self._comparison = None  # torch's comparison run last added as a column
        self.combo = QComboBox()
        for name in available_engines():
            self.combo.addItem(name)
            self.combo.setItemData(
                self.combo.count() - 1, get_engine(name).description, role=Qt.ItemDataRole.ToolTipRole
            )
        self.time_button = QPushButton("Time all engines")
        self.time_button.setToolTip(
            "run the current image through the model on every engine, "
            "several times each, and show each layer's median time"
        )
        self.runs = QSpinBox()
        self.runs.setRange(1, 50)
        self.runs.setValue(DEFAULT_RUNS)
        self.runs.setSuffix(" runs each")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setVisible(False)
        self.progress = QProgressBar()
        self.progress.setVisible(False)
        self.progress.setMaximumWidth(260)
        self.status = steady_label("")
        controls = QHBoxLayout()
        controls.addWidget(self.time_button)
        controls.addWidget(self.runs)
        controls.addWidget(self.progress)
        controls.addWidget(self.cancel_button)
        controls.addWidget(self.status, 1)

        self.table = QTableWidget(0, 0)
        self.table.verticalHeader().setDefaultSectionSize(20)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)  # measurements
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.table.setTextElideMode(Qt.TextElideMode.ElideRight)  # the time first, always seen
        self.table.setWordWrap(False)
        self.table.viewport().installEventFilter(self)  # re-fit the columns to a resized pane
        chart_box = EngineChart()
        self.chart, self.chart_readout = chart_box.plot, chart_box.readout
        self._chart = chart_box
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.table)
        splitter.addWidget(chart_box)
        splitter.setSizes([300, 300])
        splitter.setChildrenCollapsible(False)
        self.splitter = splitter
        self.note = QLabel(
            "Times in ms (each cell: time · the algorithm the engine ran, all of it "
            "on hover); a column "
            "says whether it is one run or the median of several. × torch = total "
            "time over torch's (reference). Δ = max |difference| from torch over all "
            "conv outputs."
        )
        self.note.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(controls)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.note)
        self._runs: dict[str, dict] = {}  # engine -> times, total, diff, runs, algorithms
        self._layers: list[str] = []
        self._current: str | None = None
        self._outcome = None  # the outcome the columns are for
        self._input_key: tuple | None = None
        self.lane = Worker(self, name="engine-timing")
        self._timing_for = None
        self.combo.currentTextChanged.connect(self.engine_changed.emit)
        self.time_button.clicked.connect(self.time_all)
        self.cancel_button.clicked.connect(self.lane.cancel)
        self.lane.progress.connect(self._on_progress)
        self.lane.cancelled.connect(lambda: self._timing_over("timing cancelled"))
        self.lane.abandoned.connect(lambda: self._timing_over("timing cancelled (left behind)"))

    def show_state(self, shown: Shown) -> None:
        self.shown = shown
        self.refresh()  # every run is recorded, even while another tab is in front

    # --- the view protocol -------------------------------------------------------------
    def workers(self) -> list[Worker]:
        return [self.lane]

    def draw(self, shown: Shown) -> None:
        outcome = shown.outcome
        if outcome is None:
            return  # before the first run (or fed by the old window): kept
        if outcome is not self._outcome:
            self._outcome = outcome
            result = outcome.result
            key = (id(outcome.model), outcome.image.source)
            if key != self._input_key:
                self._input_key = key
                self.reset([la.name for la in result.layers if la.is_conv])
            self.add_run(
                outcome.request.engine,
                {la.name: la.time_ms for la in result.layers if la.is_conv},
                result.total_ms,
                getattr(outcome, "max_diff", None),
                algorithms={la.name: la.algorithm for la in result.layers if la.is_conv and la.algorithm},
            )
        comparison = getattr(outcome, "comparison", None)
        if comparison is not None and comparison is not self._comparison:
            self._comparison = comparison
            # torch ran beside the engine's run: the best of its two passes
            self.add_run("reference", comparison.times, comparison.total_ms, 0.0, label="best of 2")
            self.set_diff(outcome.request.engine, outcome.max_diff)
        if shown.layer is not None:
            self.set_current(shown.layer.name)

    # --- public API --------------------------------------------------------------------
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
        if self.lane.busy:
            self.lane.cancel()
        self._refresh()

    def add_run(
        self,
        engine: str,
        times: dict[str, float],
        total_ms: float,
        max_diff: float | None,
        algorithms: dict[str, str] | None = None,
        runs: int = 1,
        label: str | None = None,
    ) -> None:
        """One engine's column: ``times`` per conv layer (a median when ``runs`` > 1). A single
        run does not replace a median already there for the same engine."""
        old = self._runs.get(engine)
        if old is not None and old["runs"] > runs:
            if old["diff"] is None and max_diff is not None:
                old["diff"] = max_diff
                self._refresh()
            return
        self._runs[engine] = {
            "times": times,
            "total": total_ms,
            "diff": max_diff,
            "algorithms": dict(algorithms or {}),
            "runs": runs,
            "label": label or run_label(runs),
        }
        self._refresh()

    def add_timing(self, timing: EngineTiming) -> None:
        self.add_run(
            timing.engine, timing.times, timing.total_ms, timing.max_diff, timing.algorithms, timing.runs
        )

    def set_diff(self, engine: str, max_diff: float | None) -> None:
        """The Δ from torch, when it arrives after the run (the comparison runs second)."""
        if engine in self._runs:
            self._runs[engine]["diff"] = max_diff
            self._refresh()

    def set_current(self, layer: str) -> None:
        """Select ``layer``'s row (a conv layer; any other clears the selection)."""
        self._current = layer
        self._select()

    def engines_run(self) -> list[str]:
        return list(self._runs)

    def run_info(self, engine: str) -> dict:
        return self._runs[engine]

    def chart_heights(self, engine: str) -> list[float]:
        """The bar heights drawn for ``engine``, one per conv layer in order."""
        return self._chart.heights(engine)

    def cell_text(self, engine: str, layer: str) -> str:
        col = list(self._runs).index(engine)
        row = len(self._header_rows()) + self._layers.index(layer)
        item = self.table.item(row, col)
        return "" if item is None else item.text()

    # --- timing all engines ------------------------------------------------------------
    def time_all(self, engines: list[str] | None = None, runs: int | None = None) -> bool:
        """Time every engine (or ``engines``) ``runs`` times on the current image, on this view's
        lane. False (and a message) when there is nothing to time yet."""
        outcome = self._outcome or self.shown.outcome
        if outcome is None:
            self.status.setText("open a model and an image first")
            return False
        engines = engines or [e for e in available_engines()]
        runs = runs or self.runs.value()
        model, image = outcome.model, outcome.image
        asked = object()
        self._timing_for = (asked, outcome)

        def job(progress, cancel) -> list[EngineTiming]:
            own = private_copy(model)
            return time_engines(own, image, engines, runs, progress=progress, cancel=cancel)

        self.progress.setRange(0, len(engines) * runs)
        self.progress.setValue(0)
        self.progress.setVisible(True)
        self.cancel_button.setVisible(True)
        self.time_button.setEnabled(False)
        self.status.setText(f"timing {len(engines)} engines × {runs} runs…")
        self.lane.submit(
            job, lambda t, a=asked: self._on_timed(a, t), lambda exc, a=asked: self._on_timing_failed(a, exc)
        )
        return True

    def _on_progress(self, done: int, total: int | None) -> None:
        if total:
            self.progress.setRange(0, total)
        self.progress.setValue(done)

    def _on_timed(self, asked: object, timings: list[EngineTiming]) -> None:
        if self._timing_for is None or self._timing_for[0] is not asked:
            return
        outcome = self._timing_for[1]
        self._timing_over("")
        if (
            outcome is not self._outcome
            and self._outcome is not None
            and (id(outcome.model), outcome.image.source) != self._input_key
        ):
            return  # another model or image since: these times are for what is gone
        for t in timings:
            self.add_timing(t)
        runs = timings[0].runs if timings else 0
        self.status.setText(
            f"{len(timings)} engines timed: each time is the median of {runs} runs"
            if runs > 1
            else f"{len(timings)} engines timed, 1 run each"
        )

    def _on_timing_failed(self, asked: object, exc: BaseException) -> None:
        if self._timing_for is None or self._timing_for[0] is not asked:
            return
        self._timing_over(
            "timing cancelled" if isinstance(exc, Cancelled) else f"⚠ timing failed: {error_message(exc)}"
        )

    def _timing_over(self, text: str) -> None:
        self.progress.setVisible(False)
        self.cancel_button.setVisible(False)
        self.time_button.setEnabled(True)
        if text:
            self.status.setText(text)

    # --- drawing -----------------------------------------------------------------------
    def _select(self) -> None:
        offset = len(self._header_rows())
        if self._current in self._layers:
            self.table.setCurrentCell(offset + self._layers.index(self._current), 0)
        else:
            self.table.clearSelection()

    def _header_rows(self) -> list[str]:
        return ["total (ms)"] + (["× torch"] if "reference" in self._runs else []) + ["Δ vs torch"]

    def _refresh(self) -> None:
        engines = list(self._runs)
        self.table.clear()
        self.table.setColumnCount(len(engines))
        self.table.setHorizontalHeaderLabels([f"{e}\n({self._runs[e]['label']})" for e in engines])
        header = self._header_rows()
        rows = [*header, *self._layers]
        self.table.setRowCount(len(rows))
        self.table.setVerticalHeaderLabels(rows)
        torch_total = self._runs["reference"]["total"] if "reference" in self._runs else None
        for col, e in enumerate(engines):
            run = self._runs[e]
            values = {
                "total (ms)": f"{run['total']:.1f}",
                "× torch": f"{run['total'] / torch_total:.2f}" if torch_total else "",
                "Δ vs torch": "…" if run["diff"] is None else f"{run['diff']:.1e}",
            }
            cells = [(values[h], "") for h in header]
            for n in self._layers:
                if n not in run["times"]:
                    cells.append(("", ""))
                    continue
                algo = run["algorithms"].get(n)
                brief, whole = brief_algorithm(e, algo), short_algorithm(e, algo)
                time = f"{run['times'][n]:.2f}"
                cells.append(
                    (
                        time + (f" · {brief}" if brief else ""),
                        f"{n} on {e}: {time} ms" + (f" · {whole}" if whole else ""),
                    )
                )
            for row, (v, tip) in enumerate(cells):
                item = QTableWidgetItem(v)
                if tip:
                    item.setToolTip(tip)
                if row >= len(header):
                    # left: an elided cell keeps its time ("51.55 · winogr…")
                    item.setTextAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(row, col, item)
        self._fit_columns()
        # the table as tall as its rows (up to half the room), the chart the rest
        rows_h = (len(rows) + 2) * self.table.verticalHeader().defaultSectionSize() + 30
        total = sum(self.splitter.sizes()) or 600
        table_h = min(rows_h, total // 2)
        self.splitter.setSizes([table_h, total - table_h])
        self._select()
        self._chart.draw(self._runs, self._layers)

    def _fit_columns(self) -> None:
        """Every engine's column in view: as wide as its contents when they fit the pane, else
        the pane's width shared out (a cell elided keeps its time; its tooltip has it all), never
        narrower than :data:`MIN_COLUMN` (then the table scrolls)."""
        table = self.table
        table.resizeColumnsToContents()  # once, not per item
        count = table.columnCount()
        room = table.viewport().width()
        wanted = [table.columnWidth(c) for c in range(count)]
        if not count or sum(wanted) <= room:
            return
        least = table.fontMetrics().horizontalAdvance(MIN_COLUMN) + 12
        share = max(least, room // count)
        small = [w for w in wanted if w <= share]  # narrow columns keep their width...
        wide = count - len(small)
        share = max(least, (room - sum(small)) // max(wide, 1))  # ...the rest share the room
        for c, w in enumerate(wanted):
            table.setColumnWidth(c, min(w, share))

    def eventFilter(self, watched, event) -> bool:
        if watched is self.table.viewport() and event.type() == QEvent.Type.Resize:
            old, new = event.oldSize().width(), event.size().width()
            if old != new and self.table.columnCount():
                self._fit_columns()
        return super().eventFilter(watched, event)
