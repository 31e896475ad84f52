"""The main window: input, layers, filters, feature maps, receptive fields, engines."""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field, replace
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
from gui.worker import Worker, error_message
from models.errors import (
    ArchitectureNeededError,
    ImageError,
    ModelError,
    UntrustedModelError,
    WeightsUnavailableError,
)
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
CLOSE_WAIT_S = 1.0  # closing waits this long at most for jobs to stop


def ask_trust(parent: QWidget, path: str) -> bool:
    """Ask before unpickling: it runs code from the file. (Tests replace this function.)"""
    answer = QMessageBox.question(
        parent, "Trust this model file?",
        f"{Path(path).name} holds pickled Python objects. Loading it runs code from the file, which "
        f"could do anything your account can do.\n\nLoad it only if you trust where it came from. "
        f"Load it?",
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
    return answer == QMessageBox.StandardButton.Yes


def ask_arch(parent: QWidget, path: str, guess: str | None = None) -> str | None:
    """A state dict holds weights only: ask which catalog architecture they belong to
    (``guess``, the architecture the file's keys suggest, is preselected)."""
    names = available_models()
    name, ok = QInputDialog.getItem(
        parent, "Which architecture?", f"{Path(path).name} holds weights only (a state dict).\n"
        "Which architecture are they for?", names, names.index(guess) if guess in names else 0, False)
    return name if ok and name else None


def _asks_trust(exc: BaseException) -> bool:
    return isinstance(exc, UntrustedModelError)


def _asks_arch(exc: BaseException) -> bool:
    return isinstance(exc, ArchitectureNeededError)


@dataclass
class Request:
    """What the user asked to see. The window keeps two: ``wanted`` (every choice the user has
    made so far, submitted as it is made) and the request of the outcome shown."""

    model: str
    untrained: bool
    trust: bool
    image: str | None  # a path; None: the bundled sample
    engine: str
    arch: str | None = None  # a state dict's architecture
    input_size: tuple[int, int] | None = None  # for a model file that does not tell
    channels: int | None = None
    # a pasted or dropped picture (not a file): the picture and how to name it
    pasted: tuple[Image.Image, str] | None = field(default=None, compare=False, repr=False)


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
        # lanes: model runs, then the quiet comparison with torch and effective fields (a new
        # run cancels them); exports on their own lane, queued, so they never cancel a run
        self.worker = Worker(self, name="run")
        self.exports = Worker(self, name="export")
        self.outcome: Outcome | None = None
        self.last_error: str | None = None
        self._message: QMessageBox | None = None
        self._erf_for: tuple | None = None  # (outcome, layer, channel, y, x) of the field asked for
        self._initial_layer: str | None = None
        self._models = _Models()

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
        self.exports.progress.connect(lambda done, total: (self.export_progress.setRange(0, total),
                                                           self.export_progress.setValue(done)))
        self.exports.busy_changed.connect(self._on_export_busy)
        self.exports.cancelled.connect(
            lambda: self.status_label.setText("export cancelled: the files written so far stay"))

        self._build_menus()
        self._build_shortcuts()
        self.navigator.layer_changed.connect(self._show_layer)
        self.engine_panel.engine_changed.connect(self.set_engine)
        self.feature_maps.unit_hovered.connect(self._on_hover)
        self.feature_maps.unit_clicked.connect(self._on_click)
        self.feature_maps.channel_selected.connect(self.filters.set_highlight)
        self.feature_maps.colormap.currentTextChanged.connect(
            lambda name: self.settings.setValue("colormap", name))

        self.wanted = Request(
            model=str(self.settings.value("model", DEFAULT_MODEL)),
            untrained=self.settings.value("untrained", "false") in ("true", True),
            trust=False, image=None, engine=str(self.settings.value("engine", "auto")))
        self.feature_maps.set_colormap(str(self.settings.value("colormap", "viridis")))
        geometry = self.settings.value("geometry")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        else:
            self.resize(1600, 1000)
        from gui.views.bridge import attach_views  # views on the protocol, until #14 lists them

        self.protocol_views = attach_views(self)  # "What excites it", "Class activation map"

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
    # Every user action updates ``wanted`` (all the choices so far) and submits it, superseding
    # the run before it: a click made while a run is under way builds on what was asked, not on
    # what is shown. The menus show ``wanted``; when the latest run fails or is cancelled,
    # ``wanted`` goes back to what is shown, so a choice that never ran is never shown as made.
    def start(self, image: str | None = None, model: str | None = None, engine: str | None = None,
              untrained: bool | None = None, trust: bool = False, layer: str | None = None,
              arch: str | None = None, input_size: tuple[int, int] | None = None,
              channels: int | None = None) -> None:
        """The first run: command-line choices over remembered settings over defaults."""
        changes: dict = {"image": image, "arch": arch, "input_size": input_size, "channels": channels,
                         "trust": trust}
        if model:
            changes["model"] = model
        if engine:
            changes["engine"] = engine
        if untrained is not None and (untrained or model):
            changes["untrained"] = untrained
        self._initial_layer = layer
        self._ask(**changes)

    @property
    def request(self) -> Request:
        """What the user has asked for so far (``wanted``)."""
        return self.wanted

    def open_image(self, path: str) -> None:
        self._ask(image=path, pasted=None)

    def open_pil_image(self, image: Image.Image, source: str) -> None:
        """An image that is not a file (pasted, dropped)."""
        self._ask(image=f"<{source}>", pasted=(image, source))

    def open_model(self, name: str, trust: bool = False) -> None:
        self._ask(model=name, trust=trust, arch=None, input_size=None, channels=None)

    def set_untrained(self, untrained: bool) -> None:
        if untrained != self.wanted.untrained:
            self._ask(untrained=untrained)

    def set_engine(self, engine: str) -> None:
        if engine != self.wanted.engine or self.outcome is None:
            self._ask(engine=engine)

    def cancel(self) -> None:
        """The Cancel button: stop the run (a run that does not stop is left behind)."""
        if self.worker.busy and not self.worker.quiet:
            self.status_label.setText("cancelling…")
        self.worker.cancel()

    def _ask(self, **changes) -> None:
        self.wanted = replace(self.wanted, **changes)
        self._sync_menus()
        self._submit(self.wanted)

    def _back_to_shown(self) -> None:
        """The latest request was cancelled: what is wanted is what is shown again."""
        if self.outcome is not None:
            self.wanted = self.outcome.request
        self._sync_menus()

    def _drop_failed_choice(self, exc: BaseException) -> None:
        """The latest request failed: take back the choice that failed (the image for an image
        error, the model for a model error, everything for anything else) and run the user's
        other choices made meanwhile, e.g. an engine picked while a broken photo was opening."""
        shown = self.outcome.request if self.outcome is not None else None
        if shown is None:
            if isinstance(exc, ImageError):
                self.wanted = replace(self.wanted, image=None, pasted=None)  # the sample, next time
            self._sync_menus()
            return
        fields = _IMAGE_FIELDS if isinstance(exc, ImageError) else \
            _MODEL_FIELDS if isinstance(exc, ModelError) else _ALL_FIELDS
        kept = replace(self.wanted, **{f: getattr(shown, f) for f in fields})
        if _same(kept, shown) or _same(kept, self.wanted):  # nothing else was asked for
            self._back_to_shown()
            return
        self._ask(**{f: getattr(kept, f) for f in _ALL_FIELDS})

    def _submit(self, request: Request) -> None:
        previous = self.outcome

        def job(progress, cancel) -> Outcome:
            same_model = previous is not None and (previous.request.model, previous.request.untrained) == (
                request.model, request.untrained)
            model = self._models.get(request, previous.model if same_model else None, progress, cancel)
            same_image = previous is not None and request.image == previous.request.image and \
                request.pasted is previous.request.pasted
            if same_image:
                pil, source = previous.pil, previous.source
            elif request.pasted is not None:
                pil, source = request.pasted
            elif request.image is None:
                pil = load_image(sample_images()[DEFAULT_SAMPLE])
                source = f"sample: {DEFAULT_SAMPLE}"
            else:
                pil, source = load_image(request.image), request.image
            image = prepare_image(pil, model.preprocess, source=source)
            with self._models.using(model):
                result = run_model(model, image, request.engine, progress=progress, cancel=cancel)
            reusable = previous is not None and same_model and previous.image.source == source
            reference = previous.reference if reusable else None
            if request.engine == "reference":
                reference = _conv_outputs(result)
            # without a reference yet, the maps are shown first and compared after (_compare)
            return Outcome(request, model, pil, source, image, result, reference,
                           _max_diff(result, reference))

        self._erf_for = None  # a field still being computed is for what this run replaces
        self.status_label.setText(f"running {request.model} on {request.engine}…")
        self.worker.submit(job, self._on_outcome, lambda exc, r=request: self._on_failed(exc, r))

    def _compare(self) -> None:
        """Run torch on the shown image (once per model and image) for the engine's Δ."""
        outcome = self.outcome
        if outcome is None or outcome.max_diff is not None:  # called as a job finishes
            return

        painted = threading.Event()
        QTimer.singleShot(0, painted.set)  # runs after the pending paint events

        def job(progress, cancel) -> tuple[dict[str, np.ndarray], dict[str, float], float]:
            painted.wait(1.0)  # the user's maps first, then the comparison
            model = self._models.get(outcome.request, outcome.model, progress, cancel)
            with self._models.using(model):
                ref = run_model(model, outcome.image, "reference", cancel=cancel)
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

        self.worker.submit(job, done, self._show_exception, quiet=True)
        self.status_label.setText(self.status_label.text() + " · comparing with torch…")

    def _on_failed(self, exc: BaseException, request: Request) -> None:
        name = Path(request.model).name
        if _asks_trust(exc) and not request.trust:
            if ask_trust(self, request.model):
                self._ask(trust=True)
                return
            message = f"{name} was not opened: it is a pickled model (or holds pickled parts), and " \
                      f"loading it runs code from the file. Open it again and answer Yes only if you " \
                      f"trust where it came from."
        elif _asks_arch(exc) and not request.arch:
            arch = ask_arch(self, request.model, getattr(exc, "guess", None))
            if arch:
                self._ask(arch=arch)
                return
            message = f"{name} was not opened: it holds weights only, and no architecture was chosen."
        elif isinstance(exc, WeightsUnavailableError):
            message = error_message(exc)
            if exc.url:
                message += f"\n\nThe weights: {exc.url}"
            if exc.path:
                message += f"\nPut the file here: {exc.path}"
            message += "\n\nTo see the architecture without them, tick Model ▸ Untrained (random weights)."
        else:
            message = error_message(exc)
        self.show_error(message)
        self._drop_failed_choice(exc)

    def _on_cancelled(self) -> None:
        self.status_label.setText("cancelled" + self._still_showing())
        self._back_to_shown()

    def _on_abandoned(self) -> None:
        left = self.worker.left_behind
        self.status_label.setText(
            "cancelled: the run did not stop and was left behind" +
            (f" ({left} runs go on in the background until they end)" if left > 1 else
             " (it may go on in the background until it ends)") + self._still_showing())
        self._back_to_shown()

    def _still_showing(self) -> str:
        shown = self.outcome
        return f" · still showing {shown.model.name} on {shown.source}" if shown else ""

    def _show_exception(self, exc: BaseException) -> None:
        self.show_error(error_message(exc))

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
        self.outcome = outcome  # the latest request's: outcome.request is what is wanted
        self.last_error = None
        result = outcome.result
        new_input = previous is None or previous.model is not outcome.model or \
            previous.image.source != outcome.image.source
        if new_input:
            self.input_panel.set_image(outcome.image)
        self._sync_menus()

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
        layer_name = self._initial_layer or keep
        self._initial_layer = None
        if layer_name in names:
            index = names.index(layer_name)
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
        self._erf_for = None  # a field still being computed is for the layer left behind
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
        asked = (outcome, layer.name, channel, y, x)
        self._erf_for = asked

        def job(progress, cancel):
            model = self._models.get(outcome.request, outcome.model, progress, cancel)
            with self._models.using(model):
                return effective_receptive_field(model.module, outcome.image.tensor, layer.name,
                                                 channel, y, x, cancel)

        def failed(exc: BaseException) -> None:
            if self._erf_for is asked:
                self._show_exception(exc)
            self._compare()

        self.status_label.setText("computing the effective receptive field (autograd on torch)…")
        self.worker.submit(job, lambda heat: self._on_erf(asked, heat), failed)

    def _on_erf(self, asked: tuple, heat: np.ndarray) -> None:
        if self._erf_for is asked:  # else the user has moved on (another layer, run or unit)
            self.input_panel.show_effective_rf(heat)
            self.status_label.setText("effective receptive field: |d unit / d input pixel|, "
                                      "brighter = more influence")
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
        """Everything about what is shown, written to ``directory`` on the export lane: a run
        under way goes on (and is not what is written), exports queue one after another."""
        outcome = self.outcome
        if outcome is None:
            return
        what = f"{outcome.model.name} on {outcome.source}"

        def job(progress, cancel):
            return export_run(outcome.result, outcome.model, outcome.image, Path(directory),
                              progress=progress, cancel=cancel)

        def done(paths: list[Path]) -> None:
            self.status_label.setText(f"wrote {len(paths)} files ({what}) to {directory}")

        running = self.worker.busy and not self.worker.quiet
        self.status_label.setText(f"exporting {what} to {directory}…" + (
            " (what is shown; the run under way goes on)" if running else ""))
        self.exports.submit(job, done, self._show_exception, supersede=False)

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

    def _on_export_busy(self, busy: bool) -> None:
        if busy:
            self.export_progress.setRange(0, 0)
        self.export_progress.setVisible(busy)
        self.export_cancel_button.setVisible(busy)

    def _sync_menus(self) -> None:
        """The model menu, the Untrained tick and the engine box show what is wanted (what is
        shown, once nothing runs)."""
        wanted = self.wanted
        action = self.model_actions.get(wanted.model)
        for a in self.model_actions.values():
            a.setChecked(a is action)
        self.untrained_action.blockSignals(True)
        self.untrained_action.setChecked(wanted.untrained)
        self.untrained_action.blockSignals(False)
        self.engine_panel.set_engine(wanted.engine)

    def _remember(self) -> None:
        shown = self.outcome.request
        if shown.model in available_models():
            self.settings.setValue("model", shown.model)
            self.settings.setValue("untrained", shown.untrained)
        self.settings.setValue("engine", shown.engine)

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
        """Every lane of the window: runs, exports, and the explainer's."""
        return [self.worker, self.exports] + (self.explainer.workers() if self.explainer else [])

    def closeEvent(self, event) -> None:
        self.settings.setValue("geometry", self.saveGeometry())
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
        """No job is running and the explainer, if shown, has drawn its frame (a hidden one draws
        when it is shown: nothing to wait for)."""
        drawing = self.explainer is not None and self.explainer.isVisible() and self.explainer.loading()
        return not any(lane.busy for lane in self.workers()) and not drawing

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


class _Models:
    """Which models a job is running on. The lane runs one job at a time, so a model still in
    use when a job starts is in the hands of a job that was left behind, stuck inside it; its
    hooks are still on the modules and would fire in our run too. Such a model is not reused:
    the job loads a fresh copy."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._in_use: dict[int, int] = {}

    def get(self, request: Request, model: LoadedModel | None, progress, cancel) -> LoadedModel:
        """``model`` if given and free, else ``request``'s model, loaded."""
        if model is not None:
            with self._lock:
                if id(model.module) not in self._in_use:
                    return model
        return load_model(request.model, untrained=request.untrained, trust=request.trust,
                          arch=request.arch, input_size=request.input_size, channels=request.channels,
                          progress=progress, cancel=cancel)

    @contextlib.contextmanager
    def using(self, model: LoadedModel):
        key = id(model.module)  # alive while in use: the job holds it
        with self._lock:
            self._in_use[key] = self._in_use.get(key, 0) + 1
        try:
            yield
        finally:
            with self._lock:
                self._in_use[key] -= 1
                if not self._in_use[key]:
                    del self._in_use[key]


_MODEL_FIELDS = ("model", "untrained", "trust", "arch", "input_size", "channels")
_IMAGE_FIELDS = ("image", "pasted")
_ALL_FIELDS = (*_MODEL_FIELDS, *_IMAGE_FIELDS, "engine")


def _same(a: Request, b: Request) -> bool:
    """The same request (a pasted picture is the same only if it is the same paste)."""
    return a == b and a.pasted is b.pasted


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
