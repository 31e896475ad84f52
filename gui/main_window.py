"""The main window: input, layers, filters, feature maps, receptive fields, engines."""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtCore import QByteArray, QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QActionGroup, QImage, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QInputDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QWidget,
)

from gui.engine_panel import EnginePanel
from gui.feature_maps_view import FeatureMapsView
from gui.filters_view import FiltersView
from gui.input_panel import InputPanel
from gui.layer_details import LayerDetails
from gui.layer_navigator import LayerNavigator
from gui.predictions_view import PredictionsView
from gui.rf_plot import ReceptiveFieldPlot
from gui.widgets import steady_label
from gui.worker import Worker
from models.export import export_run
from models.images import DEFAULT_SAMPLE, PreparedImage, load_image, prepare_image, sample_images
from models.runner import RunResult, effective_receptive_field, layer_weights, run_model
from models.sources import (
    DEFAULT_MODEL,
    MODEL_SUFFIXES,
    LoadedModel,
    available_models,
    is_model_file,
    load_model,
)

IMAGE_FILTER = "Images (*.png *.jpg *.jpeg *.bmp *.gif *.tif *.tiff *.webp);;All files (*)"
MODEL_FILTER = f"Models ({' '.join('*' + s for s in MODEL_SUFFIXES)});;All files (*)"
MAX_RECENT = 8


def ask_trust(parent: QWidget, path: str) -> bool:
    """Ask before unpickling: it runs code from the file. (Tests replace this function.)"""
    answer = QMessageBox.question(
        parent, "Trust this model file?",
        f"{Path(path).name} is a pickled model. Loading it runs code from the file, which could "
        f"do anything your account can do.\n\nLoad it only if you trust where it came from. Load it?",
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
    return answer == QMessageBox.StandardButton.Yes


def ask_arch(parent: QWidget, path: str) -> str | None:
    """A state dict holds weights only: ask which catalog architecture they belong to."""
    names = available_models()
    name, ok = QInputDialog.getItem(
        parent, "Which architecture?", f"{Path(path).name} holds weights only (a state dict).\n"
        "Which architecture are they for?", names, 0, False)
    return name if ok and name else None


@dataclass
class Request:
    """What the user asked to see."""

    model: str
    untrained: bool
    trust: bool
    image: str | None  # a path; None: the bundled sample
    engine: str
    arch: str | None = None  # a state dict's architecture
    input_size: tuple[int, int] | None = None  # for a model file that does not tell
    channels: int | None = None


@dataclass
class Outcome:
    request: Request
    model: LoadedModel
    pil: Image.Image
    source: str
    image: PreparedImage
    result: RunResult
    reference: dict[str, np.ndarray] | None
    max_diff: float | None


class MainWindow(QMainWindow):
    def __init__(self, settings: QSettings | None = None) -> None:
        super().__init__()
        self.settings = settings or QSettings("ConvScope", "ConvScope")
        self.setWindowTitle("ConvScope")
        self.setAcceptDrops(True)
        self.worker = Worker(self)
        self.outcome: Outcome | None = None
        self.last_error: str | None = None
        self._message: QMessageBox | None = None
        self._pending_pil: tuple[Image.Image, str] | None = None

        # views
        self.input_panel = InputPanel()
        self.predictions = PredictionsView()
        self.navigator = LayerNavigator()
        self.details = LayerDetails()
        self.engine_panel = EnginePanel()
        self.feature_maps = FeatureMapsView()
        self.filters = FiltersView()
        self.rf_plot = ReceptiveFieldPlot()
        self.tabs = QTabWidget()
        self.tabs.addTab(self.feature_maps, "Feature maps")
        self.tabs.addTab(self.filters, "Filters")
        self.tabs.addTab(self.rf_plot, "Receptive field vs depth")
        self._add_explainer()

        left = QSplitter(Qt.Orientation.Vertical)
        left.addWidget(self.input_panel)
        left.addWidget(self.predictions)
        left.setSizes([500, 200])
        details = QScrollArea()
        details.setWidget(self.details)
        details.setWidgetResizable(True)
        details.setFrameShape(QScrollArea.Shape.NoFrame)
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(details)
        right.addWidget(self.navigator)
        right.setSizes([230, 770])  # the details need ~10 lines; the layer list the rest
        main = QSplitter()
        main.addWidget(left)
        main.addWidget(self.tabs)
        main.addWidget(right)
        main.setSizes([340, 840, 420])
        self.setCentralWidget(main)
        self.tabs.addTab(self.engine_panel, "Engines")
        toolbar = self.addToolBar("Engine")
        toolbar.setObjectName("engine toolbar")
        toolbar.addWidget(QLabel(" Convolution engine: "))
        toolbar.addWidget(self.engine_panel.combo)
        self.engine_panel.combo.setMinimumWidth(140)

        # status bar: progress and cancel
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(240)
        self.progress.setVisible(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setVisible(False)
        self.cancel_button.clicked.connect(self.worker.cancel)
        self.status_label = steady_label()
        self.statusBar().addWidget(self.status_label, 1)
        self.statusBar().addPermanentWidget(self.progress)
        self.statusBar().addPermanentWidget(self.cancel_button)
        self.worker.progress.connect(self._on_progress)
        self.worker.busy_changed.connect(self._on_busy)
        self.worker.cancelled.connect(self._on_cancelled)

        self._build_menus()
        self._build_shortcuts()
        self.navigator.layer_changed.connect(self._show_layer)
        self.engine_panel.engine_changed.connect(self.set_engine)
        self.feature_maps.unit_hovered.connect(self._on_hover)
        self.feature_maps.unit_clicked.connect(self._on_click)
        self.feature_maps.channel_selected.connect(self.filters.set_highlight)
        self.feature_maps.colormap.currentTextChanged.connect(
            lambda name: self.settings.setValue("colormap", name))

        self.request = Request(
            model=str(self.settings.value("model", DEFAULT_MODEL)),
            untrained=self.settings.value("untrained", "false") in ("true", True),
            trust=False, image=None, engine=str(self.settings.value("engine", "auto")))
        self.feature_maps.set_colormap(str(self.settings.value("colormap", "viridis")))
        geometry = self.settings.value("geometry")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        else:
            self.resize(1600, 1000)

    # ----------------------------------------------------------------- construction
    def _add_explainer(self) -> None:
        try:
            from gui.explainer import ExplainerView
        except ImportError:
            self.explainer = None
            return
        self.explainer = ExplainerView()
        self.tabs.addTab(self.explainer, "Explain the convolution")

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        file_menu.addAction("Open image…", QKeySequence.StandardKey.Open, self.open_image_dialog)
        self.samples_menu = file_menu.addMenu("Sample photos")
        for name, path in sample_images().items():
            self.samples_menu.addAction(name, lambda p=str(path): self.open_image(p))
        self.recent_menu = file_menu.addMenu("Recent images")
        self._refresh_recent()
        file_menu.addAction("Paste image", QKeySequence.StandardKey.Paste, self.paste_image)
        file_menu.addSeparator()
        file_menu.addAction("Export view as PNG…", self.export_view_dialog)
        file_menu.addAction("Export layer activations (.npy)…", self.export_npy_dialog)
        file_menu.addAction("Export everything…", self.export_all_dialog)
        file_menu.addSeparator()
        file_menu.addAction("Quit", QKeySequence.StandardKey.Quit, self.close)

        model_menu = self.menuBar().addMenu("&Model")
        self.model_group = QActionGroup(self)
        self.model_actions: dict[str, QAction] = {}
        for name in available_models():
            action = model_menu.addAction(name, lambda n=name: self.open_model(n))
            action.setCheckable(True)
            self.model_group.addAction(action)
            self.model_actions[name] = action
        model_menu.addSeparator()
        self.untrained_action = model_menu.addAction("Untrained (random weights, offline)")
        self.untrained_action.setCheckable(True)
        self.untrained_action.toggled.connect(self.set_untrained)
        model_menu.addAction("Open model file…", self.open_model_dialog)


    def _build_shortcuts(self) -> None:
        nav = self.navigator
        for keys, fn in (((Qt.Key.Key_Right, Qt.Key.Key_Down), lambda: nav.step(1)),
                         ((Qt.Key.Key_Left, Qt.Key.Key_Up), lambda: nav.step(-1)),
                         ((Qt.Key.Key_PageDown,), lambda: nav.step_conv(1)),
                         ((Qt.Key.Key_PageUp,), lambda: nav.step_conv(-1)),
                         ((Qt.Key.Key_Home,), lambda: nav.set_index(0)),
                         ((Qt.Key.Key_End,), lambda: nav.set_index(nav.count() - 1))):
            for key in keys:
                shortcut = QShortcut(QKeySequence(key), self)
                shortcut.setContext(Qt.ShortcutContext.WindowShortcut)
                shortcut.activated.connect(fn)

    # ----------------------------------------------------------------- requests
    def start(self, image: str | None = None, model: str | None = None, engine: str | None = None,
              untrained: bool | None = None, trust: bool = False, layer: str | None = None,
              arch: str | None = None, input_size: tuple[int, int] | None = None,
              channels: int | None = None) -> None:
        """The first run: command-line choices over remembered settings over defaults."""
        self.request.image = image
        self.request.arch, self.request.input_size, self.request.channels = arch, input_size, channels
        if model:
            self.request.model = model
        if engine:
            self.request.engine = engine
        if untrained is not None and (untrained or model):
            self.request.untrained = untrained
        self.request.trust = trust
        self._initial_layer = layer
        self.engine_panel.set_engine(self.request.engine)
        self._sync_model_menu()
        self._submit(self.request)

    def open_image(self, path: str) -> None:
        self._submit(replace(self.request, image=path))

    def open_pil_image(self, image: Image.Image, source: str) -> None:
        """An image that is not a file (pasted)."""
        self._pending_pil = (image, source)
        self._submit(replace(self.request, image=f"<{source}>"))

    def open_model(self, name: str, trust: bool = False) -> None:
        self._submit(replace(self.request, model=name, trust=trust, arch=None, input_size=None,
                             channels=None))

    def set_untrained(self, untrained: bool) -> None:
        if untrained != self.request.untrained:
            self._submit(replace(self.request, untrained=untrained))

    def set_engine(self, engine: str) -> None:
        if engine != self.request.engine or self.outcome is None:
            self._submit(replace(self.request, engine=engine))

    def _submit(self, request: Request) -> None:
        previous = self.outcome
        pending = self._pending_pil
        self._pending_pil = None

        def job(progress, cancel) -> Outcome:
            same_model = previous is not None and (previous.request.model, previous.request.untrained) == (
                request.model, request.untrained)
            if same_model:
                model = previous.model
            else:
                model = load_model(request.model, untrained=request.untrained, trust=request.trust,
                                   arch=request.arch, input_size=request.input_size,
                                   channels=request.channels,
                                   progress=progress, cancel=cancel)
            if pending is not None:
                pil, source = pending
            elif previous is not None and request.image == previous.request.image:
                pil, source = previous.pil, previous.source
            elif request.image is None:
                pil = load_image(sample_images()[DEFAULT_SAMPLE])
                source = f"sample: {DEFAULT_SAMPLE}"
            else:
                pil, source = load_image(request.image), request.image
            image = prepare_image(pil, model.preprocess, source=source)
            result = run_model(model, image, request.engine, progress=progress, cancel=cancel)
            reusable = previous is not None and same_model and previous.image.source == source
            reference = previous.reference if reusable else None
            if request.engine == "reference":
                reference = _conv_outputs(result)
            # without a reference yet, the maps are shown first and compared after (_compare)
            return Outcome(request, model, pil, source, image, result, reference,
                           _max_diff(result, reference))

        self.status_label.setText(f"running {request.model} on {request.engine}…")
        self.worker.submit(job, self._on_outcome, lambda msg, r=request: self._on_failed(msg, r))

    def _compare(self) -> None:
        """Run torch on the shown image (once per model and image) for the engine's Δ."""
        outcome = self.outcome
        if outcome is None or outcome.max_diff is not None:  # called as a job finishes
            return

        painted = threading.Event()
        QTimer.singleShot(0, painted.set)  # runs after the pending paint events

        def job(progress, cancel) -> tuple[dict[str, np.ndarray], dict[str, float], float]:
            painted.wait(1.0)  # the user's maps first, then the comparison
            ref = run_model(outcome.model, outcome.image, "reference", cancel=cancel)
            return _conv_outputs(ref), _conv_times(ref), ref.total_ms

        def done(answer: tuple[dict[str, np.ndarray], dict[str, float], float]) -> None:
            reference, times, total_ms = answer
            outcome.reference = reference
            outcome.max_diff = _max_diff(outcome.result, reference)
            if outcome is self.outcome:
                self.engine_panel.add_run("reference", times, total_ms, 0.0)  # torch ran: a column
                self.engine_panel.set_diff(outcome.request.engine, outcome.max_diff)
                self.status_label.setText(self.status_label.text().replace(
                    " · comparing with torch…", f" · max |Δ| from torch {outcome.max_diff:.1e}"
                    if outcome.max_diff is not None else ""))

        self.worker.submit(job, done, self.show_error, quiet=True)
        self.status_label.setText(self.status_label.text() + " · comparing with torch…")

    def _on_failed(self, message: str, request: Request) -> None:
        if "pickled model" in message and not request.trust and ask_trust(self, request.model):
            self._submit(replace(request, trust=True))
            return
        if "is a state dict" in message and not request.arch:
            arch = ask_arch(self, request.model)
            if arch:
                self._submit(replace(request, arch=arch))
                return
        self.show_error(message)
        self.engine_panel.set_engine(self.request.engine)  # back to what is shown
        self._sync_model_menu()

    def _on_cancelled(self) -> None:
        shown = self.outcome
        self.status_label.setText("cancelled" + (
            f" · still showing {shown.model.name} on {shown.source}" if shown else ""))
        self.engine_panel.set_engine(self.request.engine)  # back to what is shown
        self._sync_model_menu()

    def show_error(self, message: str) -> None:
        self.last_error = message
        self.status_label.setText(f"⚠ {message}")
        if self._message is not None:
            self._message.close()
        self._message = QMessageBox(QMessageBox.Icon.Warning, "ConvScope", message,
                                    QMessageBox.StandardButton.Ok, self)
        self._message.open()  # not modal to the event loop: the app keeps working

    def _on_outcome(self, outcome: Outcome) -> None:
        previous = self.outcome
        self.outcome = outcome
        self.request = outcome.request
        self.last_error = None
        result = outcome.result
        new_input = previous is None or previous.model is not outcome.model or \
            previous.image.source != outcome.image.source
        if new_input:
            self.input_panel.set_image(outcome.image)
        self.engine_panel.set_engine(outcome.request.engine)

        def side_panels() -> None:  # a second event-loop turn: the maps paint in between
            if new_input:
                self.engine_panel.reset([la.name for la in result.layers if la.is_conv])
            self.engine_panel.add_run(outcome.request.engine, _conv_times(result), result.total_ms,
                                      outcome.max_diff)
            self.engine_panel.set_current(self.current_layer().name)
            self.predictions.set_predictions(result.predictions, outcome.model.pretrained)
            self.rf_plot.set_layers(result.layers)
            self.rf_plot.set_current(self.navigator.index())

        QTimer.singleShot(0, side_panels)
        names = [la.name for la in result.layers]
        keep = previous.result.layers[self.navigator.index()].name if previous and \
            0 <= self.navigator.index() < len(previous.result.layers) else None
        wanted = getattr(self, "_initial_layer", None) or keep
        self._initial_layer = None
        if wanted in names:
            index = names.index(wanted)
        else:
            index = next((i for i, la in enumerate(result.layers) if la.is_conv), 0)
        self.navigator.set_layers(result.layers, index)
        # set_layers announces the layer (layer_changed -> _show_layer): drawn once, not twice
        self._remember()
        top = ""
        if result.predictions:
            top = f" · top-1 {result.predictions[0][0]} ({result.predictions[0][1]:.0%})"
        self.status_label.setText(
            f"{outcome.model.name} on {outcome.request.engine}: {len(result.layers)} layers, "
            f"{result.conv_calls} convolutions in {result.total_ms:.0f} ms{top}")
        self.setWindowTitle(f"ConvScope — {outcome.model.name} — {outcome.source}")
        if outcome.request.image and not outcome.request.image.startswith("<"):
            self._add_recent(outcome.request.image)
        self._compare()  # on the worker thread while the maps paint

    # ----------------------------------------------------------------- layer display
    def current_layer(self):
        if self.outcome is None or self.navigator.index() < 0:
            return None
        return self.outcome.result.layers[self.navigator.index()]

    def _show_layer(self, index: int) -> None:
        if self.outcome is None or not 0 <= index < len(self.outcome.result.layers):
            return
        outcome = self.outcome
        layer = outcome.result.layers[index]
        names = outcome.model.channel_names.get(layer.name)
        self.feature_maps.set_maps(layer.name, outcome.result.maps(layer.name), names)
        weight = layer_weights(outcome.model, layer.name) if layer.is_conv else None
        self.filters.set_weights(layer.name, weight, layer.conv.groups if layer.conv else 1,
                                 layer.type)
        self.details.show_layer(layer, index, len(outcome.result.layers),
                                outcome.image.model_view.shape[:2])
        self.rf_plot.set_current(index)
        self.engine_panel.set_current(layer.name)
        self.input_panel.clear_overlay()
        if self.explainer is not None:
            self.explainer.set_layer(outcome.model, outcome.result, layer.name)

    def _on_hover(self, channel: int, y: int, x: int, value: float) -> None:
        layer = self.current_layer()
        if layer is None or layer.receptive_field is None:
            return
        rf = layer.receptive_field
        t, l, b, r = rf.box(y, x)
        self.input_panel.show_receptive_field(
            rf.box(y, x), rf.unit_center(y, x),
            f"unit ({y}, {x}) of channel {channel} = {value:.4g} sees rows {t:.0f}…{b - 1:.0f}, "
            f"columns {l:.0f}…{r - 1:.0f} of the input ({rf.size[0]}×{rf.size[1]} px)")
        self.status_label.setText(f"{layer.name} · channel {channel} · (y {y}, x {x}) = {value:.4g}")

    def _on_click(self, channel: int, y: int, x: int) -> None:
        layer = self.current_layer()
        if layer is None:
            return
        self._on_hover(channel, y, x, self.feature_maps.value(channel, y, x))
        if self.explainer is not None and layer.is_conv:
            self.explainer.set_unit(channel, y, x)
        if layer.receptive_field is None or (self.worker.busy and not self.worker.quiet):
            return  # a model run is under way: its result replaces this layer anyway
        outcome = self.outcome

        def job(progress, cancel):
            return effective_receptive_field(outcome.model.module, outcome.image.tensor, layer.name,
                                             channel, y, x, cancel)

        self.status_label.setText("computing the effective receptive field (autograd on torch)…")
        self.worker.submit(job, self._on_erf, self.show_error)

    def _on_erf(self, heat: np.ndarray) -> None:
        self.input_panel.show_effective_rf(heat)
        self.status_label.setText("effective receptive field: |d unit / d input pixel|, brighter = "
                                  "more influence")
        self._compare()  # if the click cancelled it

    def _views(self) -> dict[str, QWidget]:
        return {"maps": self.feature_maps, "filters": self.filters, "rf": self.rf_plot,
                "explain": self.explainer, "engines": self.engine_panel}

    def show_view(self, view: str) -> None:
        """Bring a tab to the front: maps, filters, rf, explain or engines (``--view``)."""
        widgets = self._views()
        if widgets.get(view) is not None:
            self.tabs.setCurrentWidget(widgets[view])

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

    # ----------------------------------------------------------------- opening
    def open_image_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open image", "", IMAGE_FILTER)
        if path:
            self.open_image(path)

    def open_model_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open model file", "", MODEL_FILTER)
        if path:
            self.open_model(path)

    def paste_image(self) -> None:
        qimage = QApplication.clipboard().image()
        if qimage.isNull():
            self.show_error("the clipboard holds no image")
            return
        self.open_pil_image(qimage_to_pil(qimage), "pasted image")

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls() or event.mimeData().hasImage():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        mime = event.mimeData()
        urls = [u.toLocalFile() for u in mime.urls() if u.isLocalFile()]
        if urls:
            path = urls[0]
            if is_model_file(path):
                self.open_model(path)
            else:
                self.open_image(path)
            event.acceptProposedAction()
        elif mime.hasImage():
            self.open_pil_image(qimage_to_pil(QImage(mime.imageData())), "dropped image")
            event.acceptProposedAction()

    # ----------------------------------------------------------------- exporting
    def current_view(self) -> str:
        """The tab in front, by its ``--view`` name."""
        return next(name for name, w in self._views().items() if w is self.tabs.currentWidget())

    def export_view(self, path: str) -> Path | None:
        """The tab in front as a PNG (``.png`` added when the name has no suffix)."""
        target = _with_suffix(path, ".png")
        if not self.tabs.currentWidget().grab().save(str(target), "PNG"):
            self.show_error(f"cannot write {target}: check the folder exists and is writable")
            return None
        self.status_label.setText(f"saved the {self.current_view()} view to {target}")
        return target

    def export_npy(self, path: str) -> Path | None:
        """The current layer's activations, ``(C, H, W)`` float32, as ``.npy``."""
        layer = self.current_layer()
        if layer is None:
            return None
        target = _with_suffix(path, ".npy")
        try:
            np.save(target, self.outcome.result.activations[layer.name])
        except OSError as exc:
            self.show_error(f"cannot write {target}: {exc.strerror or exc}")
            return None
        self.status_label.setText(f"saved the activations of {layer.name} to {target}")
        return target

    def export_all(self, directory: str) -> None:
        outcome = self.outcome
        if outcome is None:
            return

        def job(progress, cancel):
            return export_run(outcome.result, outcome.model, outcome.image, Path(directory))

        def done(paths: list[Path]) -> None:
            self.status_label.setText(f"wrote {len(paths)} files to {directory}")
            self._compare()  # if the export cancelled it

        self.worker.submit(job, done, self.show_error)

    def export_view_dialog(self) -> None:
        layer = self.current_layer()
        name = f"{layer.name if layer else 'convscope'}.{self.current_view()}.png".replace("/", "_")
        path, _ = QFileDialog.getSaveFileName(self, "Export view", name, "PNG (*.png)")
        if path:
            self.export_view(path)

    def export_npy_dialog(self) -> None:
        layer = self.current_layer()
        if layer is None:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export activations", f"{layer.name}.npy",
                                              "NumPy (*.npy)")
        if path:
            self.export_npy(path)

    def export_all_dialog(self) -> None:
        directory = QFileDialog.getExistingDirectory(self, "Export everything to")
        if directory:
            self.export_all(directory)

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

    def _sync_model_menu(self) -> None:
        action = self.model_actions.get(self.request.model)
        for a in self.model_actions.values():
            a.setChecked(a is action)
        self.untrained_action.blockSignals(True)
        self.untrained_action.setChecked(self.request.untrained)
        self.untrained_action.blockSignals(False)

    def _remember(self) -> None:
        if self.request.model in available_models():
            self.settings.setValue("model", self.request.model)
            self.settings.setValue("untrained", self.request.untrained)
        self.settings.setValue("engine", self.request.engine)
        self._sync_model_menu()

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

    def closeEvent(self, event) -> None:
        self.settings.setValue("geometry", self.saveGeometry())
        self.settings.sync()
        self.worker.cancel()
        self.worker.wait(10000)
        if self.explainer is not None:
            self.explainer.wait_frame(10000)
        super().closeEvent(event)

    def idle(self) -> bool:
        """No job is running and the explainer, if shown, has drawn its frame (a hidden one draws
        when it is shown: nothing to wait for)."""
        drawing = self.explainer is not None and self.explainer.isVisible() and self.explainer.loading()
        return not self.worker.busy and not drawing

    def wait_idle(self, timeout_ms: int = 120000) -> bool:
        """Process events until :meth:`idle` (for --screenshot and tests)."""
        timer = QTimer()
        timer.start(timeout_ms)
        while not self.idle() and timer.isActive():
            QApplication.processEvents()
            self.worker.wait(20)
            if self.explainer is not None:
                self.explainer.wait_frame(20)
        QApplication.processEvents()
        return self.idle()


def _conv_outputs(result: RunResult) -> dict[str, np.ndarray]:
    return {la.name: result.activations[la.name] for la in result.layers if la.is_conv}


def _with_suffix(path: str, suffix: str) -> Path:
    """``path``, with ``suffix`` added when the name typed has none."""
    p = Path(path)
    return p if p.suffix else p.with_name(p.name + suffix)


def _conv_times(result: RunResult) -> dict[str, float]:
    return {la.name: la.time_ms for la in result.layers if la.is_conv}


def _max_diff(result: RunResult, reference: dict[str, np.ndarray] | None) -> float | None:
    if reference is None:
        return None
    diffs = [float(np.abs(result.activations[n] - a).max()) for n, a in reference.items()
             if n in result.activations]
    return max(diffs) if diffs else None


def qimage_to_pil(qimage: QImage) -> Image.Image:
    qimage = qimage.convertToFormat(QImage.Format.Format_RGB888)
    w, h = qimage.width(), qimage.height()
    data = np.frombuffer(qimage.constBits(), dtype=np.uint8, count=qimage.sizeInBytes())
    rgb = data.reshape(h, qimage.bytesPerLine())[:, : w * 3].reshape(h, w, 3)
    return Image.fromarray(rgb.copy())
