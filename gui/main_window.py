"""The main window: wiring only. What it computes is :mod:`models.pipeline` (run on the worker),
what it shows is a list of views (:mod:`gui.view`), each handed the same :class:`Shown` on
every change; menus, dialogs and drops live in :mod:`gui.menus`, :mod:`gui.dialogs`,
:mod:`gui.drops`."""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
from PySide6.QtCore import QByteArray, QSettings, Qt, QTimer
from PySide6.QtWidgets import (
    QApplication,
    QLabel,
    QMainWindow,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
)

from gui import dialogs
from gui.engine_panel import EnginePanel, remembered_engine
from gui.explainer import ExplainerView
from gui.feature_maps_view import FeatureMapsView
from gui.files import IMAGE_FILTER, MODEL_FILTER, Files
from gui.filters_view import FiltersView
from gui.input_panel import InputPanel
from gui.layer_details import LayerDetails
from gui.layer_navigator import LayerNavigator
from gui.menus import build_menus, build_shortcuts
from gui.model_settings import SettingsStore
from gui.predictions_view import PredictionsView
from gui.requests import Requests
from gui.rf_plot import ReceptiveFieldPlot
from gui.tab_titles import FittingTabs
from gui.view import Shown, View
from gui.views.cam import CamView
from gui.views.featvis import FeatureVisView
from gui.views.topk import TopKView
from gui.widgets import steady_label
from gui.worker import Worker
from models import engine_mode, pipeline
from models.pipeline import Outcome, Request
from models.runner import effective_receptive_field
from models.sources import DEFAULT_MODEL

MAX_RECENT = 8
CLOSE_WAIT_S = 1.0  # closing waits this long at most for jobs to stop
DEFAULT_SIZE = (1600, 1000)
__all__ = ["IMAGE_FILTER", "MODEL_FILTER", "MainWindow", "Outcome", "Request"]


class MainWindow(Requests, Files, QMainWindow):
    def __init__(self, settings: QSettings | None = None, size: tuple[int, int] | None = None) -> None:
        super().__init__()
        self.settings = settings or QSettings("ConvScope", "ConvScope")
        self.model_settings = SettingsStore(self.settings)  # per model file (Model file settings…)
        self.setWindowTitle("ConvScope")
        self.setAcceptDrops(True)
        # while a forward pass runs this thread paints and other lanes work: torch's ops keep
        # to one thread beside the engine (models.engine_mode.share_cores says what it saves)
        engine_mode.share_cores()
        # lanes (gui/view.py): runs, then the quiet comparison with torch and effective fields
        # (a new run cancels them); exports queued on their own lane, never cancelling a run
        self.worker = Worker(self, name="run")
        self.exports = Worker(self, name="export")
        self.outcome: Outcome | None = None
        self.shown = Shown()
        self.last_error: str | None = None
        self._message = None
        self._erf_for: tuple | None = None  # (outcome, layer, channel, y, x) of the field asked for
        self._initial_layer: str | None = None
        self._fall_back = self._interactive = False  # see Requests.start
        self._initial_unit: tuple | None = None  # open_image_at's (unit, channel), after the run
        self._status_kind: str | None = None  # "run": the run's line; "readout": a hovered value
        self._comparing = False
        self._untrained_once = self.settings.value("untrained_once", "false") in ("true", True)
        self._models = pipeline.Models()

        self.input_panel = InputPanel()
        self.predictions = PredictionsView()
        self.navigator = LayerNavigator()
        self.details = LayerDetails()
        self.feature_maps = FeatureMapsView(self)
        self.filters = FiltersView(self)
        self.rf_plot = ReceptiveFieldPlot(self)
        self.engine_panel = EnginePanel(self)
        self.topk = TopKView(self)
        # the tabs, in order: adding a view is its module and one entry here
        self.views: list[View] = [
            self.feature_maps,
            self.filters,
            self.rf_plot,
            ExplainerView(self),
            self.engine_panel,
            self.topk,
            FeatureVisView(self),
            CamView(self),
        ]
        self.tabs = FittingTabs()  # every tab in sight at 1024 px: titles shortened, not scrolled
        for view in self.views:
            self.tabs.add_view(view)
        self.show_view(str(self.settings.value("view", "maps")))  # the tab used last (--view overrides)
        self._build_layout()
        toolbar = self.addToolBar("Engine")
        toolbar.setObjectName("engine toolbar")
        toolbar.addWidget(QLabel(" Convolution engine: "))
        toolbar.addWidget(self.engine_panel.combo)
        self.engine_panel.combo.setMinimumWidth(140)
        self._build_status_bar()
        build_menus(self)
        build_shortcuts(self)
        self.navigator.layer_changed.connect(self._show_layer)
        self.engine_panel.engine_changed.connect(self.set_engine)
        self.feature_maps.unit_hovered.connect(self._on_hover)
        self.feature_maps.unit_clicked.connect(self._on_click)
        self.feature_maps.channel_selected.connect(self._on_channel)
        self.feature_maps.colormap.currentTextChanged.connect(
            lambda name: self.settings.setValue("colormap", name)
        )

        self.wanted = Request(
            model=str(self.settings.value("model", DEFAULT_MODEL)),
            untrained=self.settings.value("untrained", "false") in ("true", True),
            trust=False,
            image=None,
            engine=remembered_engine(self.settings.value("engine", "auto")),
        )
        self.feature_maps.set_colormap(str(self.settings.value("colormap", "viridis")))
        geometry = self.settings.value("geometry")
        if size is not None:
            self.resize(*size)
        elif isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        else:  # the first start: the default size, on the screen
            screen = QApplication.primaryScreen()
            room = screen.availableSize() if screen is not None else None
            self.resize(
                min(DEFAULT_SIZE[0], room.width()) if room else DEFAULT_SIZE[0],
                min(DEFAULT_SIZE[1], room.height()) if room else DEFAULT_SIZE[1],
            )

    # ----------------------------------------------------------------- construction
    def _build_layout(self) -> None:
        """Photo | views | layer details and list. Extra room goes to the photo and the views;
        each pane keeps a usable minimum; the splitters' positions are remembered."""
        left = QSplitter(Qt.Orientation.Vertical)
        left.addWidget(self.input_panel)
        left.addWidget(self.predictions)
        left.setStretchFactor(0, 1)
        left.setStretchFactor(1, 0)
        left.setSizes([500, 200])
        details = QScrollArea()
        details.setWidget(self.details)
        details.setWidgetResizable(True)
        details.setFrameShape(QScrollArea.Shape.NoFrame)
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(details)
        right.addWidget(self.navigator)
        right.setStretchFactor(1, 1)
        right.setSizes([230, 770])  # the details need ~10 lines; the layer list the rest
        main = QSplitter()
        main.addWidget(left)
        main.addWidget(self.tabs)
        main.addWidget(right)
        for i, stretch in enumerate((2, 3, 0)):  # the layer list stays as wide as it is
            main.setStretchFactor(i, stretch)
        self.input_panel.setMinimumSize(220, 200)
        self.tabs.setMinimumWidth(360)
        right.setMinimumWidth(260)
        for splitter in (left, main, right):
            splitter.setChildrenCollapsible(False)
        self.splitters = {"left": left, "main": main, "right": right}
        self._splitters_placed = False  # placed for the window's width when first shown
        for name, splitter in self.splitters.items():
            state = self.settings.value(f"splitter/{name}")
            if isinstance(state, QByteArray) and splitter.restoreState(state):
                self._splitters_placed = True
        self.setCentralWidget(main)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if not self._splitters_placed:  # not remembered: the photo and the views get the room
            self._splitters_placed = True
            w = max(self.width(), 640)
            right = int(min(max(0.22 * w, 280), 420))  # the layer list: names, types, shapes
            left = int(min(max(0.25 * w, 230), 700))
            self.splitters["main"].setSizes([left, w - left - right, right])

    def _build_status_bar(self) -> None:
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(240)
        self.progress.setVisible(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setVisible(False)
        self.cancel_button.clicked.connect(self.cancel)
        self.status_label = steady_label()
        self.statusBar().addWidget(self.status_label, 1)
        self.statusBar().addPermanentWidget(self.progress)
        self.statusBar().addPermanentWidget(self.cancel_button)
        self.worker.progress.connect(self._on_progress)
        self.worker.busy_changed.connect(self._on_busy)
        self.worker.cancelled.connect(self._on_cancelled)
        self.worker.abandoned.connect(self._on_abandoned)
        # exports: a bar and a Cancel of their own (a run may go on meanwhile)
        self.export_progress = QProgressBar()
        self.export_progress.setMaximumWidth(160)
        self.export_progress.setFormat("export %v/%m")
        self.export_progress.setVisible(False)
        self.export_cancel_button = QPushButton("Cancel export")
        self.export_cancel_button.setVisible(False)
        self.export_cancel_button.clicked.connect(self.exports.cancel)
        self.statusBar().addPermanentWidget(self.export_progress)
        self.statusBar().addPermanentWidget(self.export_cancel_button)
        self.exports.progress.connect(
            lambda done, total: (self.export_progress.setRange(0, total), self.export_progress.setValue(done))
        )
        self.exports.busy_changed.connect(self._on_export_busy)
        self.exports.cancelled.connect(
            lambda: self.show_status("export cancelled: the files written so far stay")
        )

    # ----------------------------------------------------------------- what views may ask (Window)
    def show_status(self, text: str, kind: str | None = None) -> None:
        self._status_kind = kind
        self.status_label.setText(text)

    def show_error(self, message: str, actions: list[tuple[str, object]] = ()) -> None:
        """A message box that does not block; ``actions``: (button label, callback)."""
        self.last_error = message
        self.show_status(f"⚠ {message}".split("\n")[0])
        if self._message is not None:
            self._message.close()
        self._message = dialogs.message_box(self, message, list(actions))

    def select_layer(self, name: str) -> None:
        names = [la.name for la in self.outcome.result.layers] if self.outcome else []
        if name in names:
            self.navigator.set_index(names.index(name))

    def open_image_at(
        self,
        path: str,
        layer: str | None = None,
        unit: tuple[int, int] | None = None,
        channel: int | None = None,
    ) -> None:
        self._initial_layer = layer or (self.current_layer().name if self.current_layer() else None)
        self._initial_unit = (unit, channel) if unit is not None or channel is not None else None
        self.open_image(path)
        self.show_view("maps")

    # ----------------------------------------------------------------- what is shown
    def _show(self, **changes) -> None:
        """Hand every view what is shown now (each draws it when visible)."""
        self.shown = replace(self.shown, **changes)
        for view in self.views:
            view.show_state(self.shown)

    def current_layer(self):
        if self.outcome is None or self.navigator.index() < 0:
            return None
        return self.outcome.result.layers[self.navigator.index()]

    def _show_layer(self, index: int) -> None:
        """A layer stepped to, or a new outcome: every readout of the last one is cleared."""
        if self.outcome is None or not 0 <= index < len(self.outcome.result.layers):
            return
        outcome = self.outcome
        layer = outcome.result.layers[index]
        self.details.show_layer(layer, index, len(outcome.result.layers), outcome.image.model_view.shape[:2])
        self.input_panel.clear_overlay()  # the box, the field and the unit's line under the photo
        self._erf_for = None  # a field still being computed is for the layer left behind
        if self._status_kind == "readout":
            self._show_run_status()
        self._show(outcome=outcome, layer=layer, channel=None, unit=None)

    def _on_channel(self, channel: int) -> None:
        if channel != self.shown.channel:
            self._show(channel=channel)

    def _on_hover(self, channel: int, y: int, x: int, value: float) -> None:
        layer = self.current_layer()
        if layer is None or layer.receptive_field is None:
            return
        rf = layer.receptive_field
        t, l, b, r = rf.box(y, x)
        self.input_panel.show_receptive_field(
            rf.box(y, x),
            rf.unit_center(y, x),
            f"unit ({y}, {x}) of channel {channel} = {value:.4g} sees rows {t:.0f}…{b - 1:.0f}, "
            f"columns {l:.0f}…{r - 1:.0f} of the input ({rf.size[0]}×{rf.size[1]} px)",
        )
        self.show_status(f"{layer.name} · channel {channel} · (y {y}, x {x}) = {value:.4g}", kind="readout")

    def _on_click(self, channel: int, y: int, x: int) -> None:
        layer = self.current_layer()
        if layer is None:
            return
        self._on_hover(channel, y, x, self.feature_maps.value(channel, y, x))
        self._show(channel=channel, unit=(y, x))
        if layer.receptive_field is None or (self.worker.busy and not self.worker.quiet):
            return  # a model run is under way: its result replaces this layer anyway
        outcome, models = self.outcome, self._models
        asked = (outcome, layer.name, channel, y, x)
        self._erf_for = asked

        def job(progress, cancel):
            model = models.get(outcome.request, outcome.model, progress, cancel)
            with models.using(model):
                return effective_receptive_field(
                    model.module, outcome.image.tensor, layer.name, channel, y, x, cancel
                )

        def failed(exc: BaseException) -> None:
            if self._erf_for is asked:
                self._show_exception(exc)
            self._compare()

        self.show_status("computing the effective receptive field (autograd on torch)…", kind="readout")
        self.worker.submit(job, lambda heat: self._on_erf(asked, heat), failed)

    def _on_erf(self, asked: tuple, heat: np.ndarray) -> None:
        if self._erf_for is asked:  # else the user has moved on (another layer, run or unit)
            self.input_panel.show_effective_rf(heat)
            self.show_status(
                "effective receptive field: |d unit / d input pixel|, brighter = more influence",
                kind="readout",
            )  # of this layer only
        self._compare()  # if the click cancelled it

    def view(self, key: str) -> View | None:
        return next((v for v in self.views if v.key == key), None)

    def show_view(self, key: str) -> None:
        """Bring a tab to the front by its key (``--view``): maps, filters, rf, explain, engines."""
        if self.view(key) is not None:
            self.tabs.setCurrentWidget(self.view(key))

    def current_view(self) -> str:
        """The key of the tab in front."""
        return self.tabs.currentWidget().key

    def select_unit(self, y: int, x: int, channel: int | None = None) -> bool:
        """Click unit (y, x) of the current layer (the selected channel unless given)."""
        layer = self.current_layer()
        if layer is None or len(layer.output_shape) != 4:
            self.show_error("select a layer with a spatial output first")
            return False
        _, c, h, w = layer.output_shape
        if channel is None:
            channel = self.feature_maps.selected_channel() or 0
        if not (0 <= y < h and 0 <= x < w and 0 <= channel < c):
            self.show_error(f"unit ({y}, {x}) is outside {layer.name}, whose maps are {h}×{w}")
            return False
        self._on_click(channel, y, x)
        return True

    # ----------------------------------------------------------------- progress & settings
    def _on_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, total or 0)
        self.progress.setValue(done)

    def _on_busy(self, busy: bool) -> None:
        shown = busy and not self.worker.quiet  # background comparisons run unannounced
        if busy:
            self.progress.setRange(0, 0)  # "working" until the new job reports: not the last bar
        self.progress.setVisible(shown)
        self.cancel_button.setVisible(shown)

    def _on_export_busy(self, busy: bool) -> None:
        if busy:
            self.export_progress.setRange(0, 0)
        self.export_progress.setVisible(busy)
        self.export_cancel_button.setVisible(busy)

    def recent_images(self) -> list[str]:
        value = self.settings.value("recent", [])
        return [value] if isinstance(value, str) else list(value or [])

    def _add_recent(self, path: str) -> None:
        recent = [path] + [p for p in self.recent_images() if p != path]
        self.settings.setValue("recent", recent[:MAX_RECENT])
        self._refresh_recent()

    def _refresh_recent(self) -> None:
        self.recent_menu.clear()
        for path in self.recent_images():
            self.recent_menu.addAction(path, lambda p=path: self.open_image(p))
        self.recent_menu.setEnabled(bool(self.recent_images()))

    def workers(self) -> list[Worker]:
        """Every lane: the window's runs and exports, and every view's own."""
        return [self.worker, self.exports] + [w for v in self.views for w in v.workers()]

    def closeEvent(self, event) -> None:
        self.settings.setValue("geometry", self.saveGeometry())
        self.settings.setValue("view", self.current_view())
        for name, splitter in self.splitters.items():
            self.settings.setValue(f"splitter/{name}", splitter.saveState())
        self.settings.sync()
        # a moment at most: a job that does not stop is left behind on its daemon thread, which
        # does not keep the process alive
        lanes = self.workers()
        for lane in lanes:
            lane.cancel()
        deadline = time.monotonic() + CLOSE_WAIT_S
        for lane in lanes:
            lane.shutdown(max(0, int((deadline - time.monotonic()) * 1000)))
        super().closeEvent(event)

    def idle(self) -> bool:
        """No job is running and no view is still drawing what it was asked (a hidden view
        draws when it is shown: nothing to wait for)."""
        return not any(lane.busy for lane in self.workers()) and not any(v.busy() for v in self.views)

    def wait_idle(self, timeout_ms: int = 120000) -> bool:
        """Process events until :meth:`idle` (for --screenshot and tests)."""
        timer = QTimer()
        timer.start(timeout_ms)
        while not self.idle() and timer.isActive():
            QApplication.processEvents()
            for lane in self.workers():
                lane.wait(10)
        QApplication.processEvents()
        return self.idle()
