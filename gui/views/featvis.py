"""The "What excites it" tab: feature visualization of the selected channel (or unit) or of a
layer's first 16 channels, computed on the view's own lane with a live preview.

The work is :func:`models.featvis.visualize` / :func:`~models.featvis.visualize_channels`, a plain
function with ``progress`` and ``cancel``; this view only starts it and shows what comes back.
A preview (a QImage made on the worker's thread) rides along with each progress report, so the
GUI thread only swaps a picture. Results are kept per (model, layer, channels, unit, seed,
steps): stepping back to a layer shows its image at once; another model clears them.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
from PySide6.QtGui import QImage
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from gui.view import Shown
from gui.views.common import ImagePane, LaneView, ProgressRow, to_qimage
from gui.widgets import steady_label
from gui.worker import error_message
from models import featvis, render
from models.export import safe_name

GRID = 16  # channels in "Visualize 16 channels"
STEPS_KEY, SEED_KEY = "featvis/steps", "featvis/seed"  # in the window's settings
KEEP = 32  # results kept for stepping back
NOTE = (
    "Gradient ascent on the input (Olah et al., Distill 2017): the image that makes the "
    "channel's mean activation (or the unit's) largest, measured as the network uses it: "
    "after the BatchNorm and activation that follow the layer. The gradients come from "
    "torch's autograd — ConvScope's own engines compute forward passes only — and every "
    "step runs the model only up to the layer."
)


def channel_count(layer) -> int | None:
    """How many channels a layer's output has (None: none to visualize), from its
    :class:`~models.layers.LayerInfo` (as :func:`models.featvis.layer_channels` counts them)."""
    shape = layer.output_shape
    if layer.grid_axes is not None:
        y, x = layer.grid_axes
        return int(np.prod(shape[1:])) // max(1, shape[y] * shape[x])
    return int(shape[1]) if len(shape) == 2 else None


class _Preview:
    """The latest preview of one job, handed from its thread to the GUI thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._image: QImage | None = None

    def put(self, image: QImage) -> None:
        with self._lock:
            self._image = image

    def take(self) -> QImage | None:
        with self._lock:
            image, self._image = self._image, None
        return image


class FeatureVisView(LaneView):
    key = "featvis"
    title = "What excites it"
    short_title = "Excites"

    def __init__(self, window=None, parent: QWidget | None = None) -> None:
        super().__init__("featvis", window, parent)
        self._cache: OrderedDict[tuple, featvis.Visualization] = OrderedDict()
        self._model = None  # the model the kept results are for
        self._preview: _Preview | None = None
        self._vis: featvis.Visualization | None = None  # shown
        self._seen_channel: int | None = None
        self._grid = False  # the last button pressed: one channel, or the layer's first 16
        self._tiles: list[tuple[int, int, int, int]] = []  # the grid's tiles (top, left, h, w)

        self.channel = QSpinBox()
        self.channel.setKeyboardTracking(False)
        self.channel.setToolTip("The channel to visualize (follows the channel picked in the feature maps)")
        self.unit = QCheckBox("one unit")
        self.unit.setEnabled(False)
        self.unit.setToolTip(
            "Click a unit in the feature maps, then tick this to visualize what "
            "that one unit responds to instead of the whole channel"
        )
        self.steps = QSpinBox()
        self.steps.setRange(1, featvis.MAX_STEPS)
        self.steps.setSingleStep(64)
        self.steps.setValue(256)
        self.steps.setKeyboardTracking(False)
        self.steps.setToolTip("Optimisation steps (gradient ascent on the image)")
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setKeyboardTracking(False)
        self.seed.setToolTip("The random start and transforms: the same seed gives the same image")
        settings = self._settings()
        if settings is not None:  # remembered like the window's other fields
            for box, name in ((self.steps, STEPS_KEY), (self.seed, SEED_KEY)):
                try:
                    box.setValue(int(settings.value(name, box.value())))
                except (TypeError, ValueError):
                    pass
        self.one_button = QPushButton("Visualize channel")
        self.grid_button = QPushButton(f"Visualize {GRID} channels")
        self.grid_button.setToolTip(f"The layer's first {GRID} channels, optimised together in one batch")
        self.export_button = QPushButton("Export PNG…")
        self.export_button.setEnabled(False)
        controls = QHBoxLayout()
        for widget in (
            QLabel("Channel"),
            self.channel,
            self.unit,
            QLabel("Steps"),
            self.steps,
            QLabel("Seed"),
            self.seed,
        ):
            controls.addWidget(widget)
        controls.addStretch(1)
        buttons = QHBoxLayout()
        for widget in (self.one_button, self.grid_button, self.export_button):
            buttons.addWidget(widget)
        buttons.addStretch(1)
        self.progress = ProgressRow()
        self.status = steady_label(lines=2, wrap=True)
        self.note = QLabel(NOTE)
        self.note.setWordWrap(True)
        self.pane = ImagePane("Open a model to see what its channels respond to.")
        layout = QVBoxLayout(self)
        layout.addLayout(controls)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.pane, 1)
        layout.addWidget(self.note)

        self.channel.valueChanged.connect(lambda _v: self._request())
        self.unit.toggled.connect(lambda _v: self._request())
        self.steps.valueChanged.connect(lambda v: self._remember(STEPS_KEY, v))
        self.seed.valueChanged.connect(lambda v: self._remember(SEED_KEY, v))
        self.pane.clicked.connect(self._on_tile_clicked)
        self.one_button.clicked.connect(lambda: self._set_grid(False))
        self.grid_button.clicked.connect(lambda: self._set_grid(True))
        self.export_button.clicked.connect(self._export_dialog)
        self.progress.cancel_clicked.connect(self.lane.cancel)
        self.lane.progress.connect(self._on_progress)
        self.lane.cancelled.connect(self._on_cancelled)
        self.lane.abandoned.connect(self._on_cancelled)
        self.lane.busy_changed.connect(lambda busy: None if busy else self.progress.stop())
        self._enable(False)

    # -- the protocol ---------------------------------------------------------------------------
    def draw(self, shown: Shown) -> None:
        outcome, layer = shown.outcome, shown.layer
        if outcome is None or layer is None:
            self._stop("Open a model to see what its channels respond to.")
            return
        if outcome.model is not self._model:  # another model: nothing kept is its
            self._model = outcome.model
            self._cache.clear()
            self._vis = None
        count = channel_count(layer)
        if not count:
            self._stop(
                f"Layer {layer.name} ({layer.type}, output "
                f"{'×'.join(map(str, layer.output_shape[1:]))}) has no channels to visualize."
            )
            return
        widgets = (self.channel, self.unit)
        for w in widgets:
            w.blockSignals(True)
        self.channel.setRange(0, count - 1)
        if shown.channel is not None and shown.channel != self._seen_channel:
            self.channel.setValue(min(shown.channel, count - 1))  # follow the feature maps
        self._seen_channel = shown.channel
        has_unit = shown.unit is not None and layer.grid_axes is not None
        self.unit.setEnabled(has_unit)
        if not has_unit:
            self.unit.setChecked(False)
        self.unit.setText(f"unit {tuple(shown.unit)}" if has_unit else "one unit")
        for w in widgets:
            w.blockSignals(False)
        self._enable(True)
        self._request()

    def export_png(self, path: Path) -> Path:
        """The visualization shown (the image, or the 16-channel mosaic) at full resolution."""
        if self._vis is None:
            raise OSError("no visualization to export yet")
        return render.save_png(self.image(), path)

    # -- what is shown --------------------------------------------------------------------------
    def image(self) -> np.ndarray | None:
        """The finished visualization shown, ``(H, W, 3)`` uint8 (the mosaic for a grid)."""
        if self._vis is None:
            return None
        return self._vis.mosaic() if len(self._vis.channels) > 1 else self._vis.image

    def visualization(self) -> featvis.Visualization | None:
        return self._vis

    def wanted(self) -> dict | None:
        """What the view asks for now: layer, channels (list, or the grid's count), unit, seed,
        steps."""
        key = self._key()
        if key is None:
            return None
        _, layer, channels, unit, seed, steps = key
        return {"layer": layer, "channels": channels, "unit": unit, "seed": seed, "steps": steps}

    # -- internals ------------------------------------------------------------------------------
    def _settings(self):
        return getattr(self.window_services, "settings", None)

    def _remember(self, key: str, value: int) -> None:
        settings = self._settings()
        if settings is not None:
            settings.setValue(key, int(value))
        self._request()

    def _on_tile_clicked(self, x: float, y: float) -> None:
        """A click on a tile of the grid: visualize that channel alone."""
        vis = self._vis
        if vis is None or len(vis.channels) < 2:
            return
        for channel, (top, left, h, w) in zip(vis.channels, self._tiles, strict=False):
            if top <= y < top + h and left <= x < left + w:
                self.channel.blockSignals(True)
                self.channel.setValue(channel)
                self.channel.blockSignals(False)
                self._set_grid(False)
                return

    def _key(self) -> tuple | None:
        layer = self.shown.layer
        if self.shown.outcome is None or layer is None or not self.channel.isEnabled():
            return None
        channels = ("first", GRID) if self._grid else (self.channel.value(),)
        unit = tuple(self.shown.unit) if self.unit.isChecked() and self.shown.unit else None
        return (id(self._model), layer.name, channels, unit, self.seed.value(), self.steps.value())

    def _set_grid(self, grid: bool) -> None:
        self._grid = grid
        self._declined = None  # a button: the user asks, even for what they cancelled
        self._request()

    def _request(self) -> None:
        key = self._key()
        if not self._may_start(key):  # a cancelled one runs again on a button or a setting
            return
        self._wanted = key
        if key in self._cache:
            self._cache.move_to_end(key)
            self._running = None
            self.lane.cancel()  # whatever runs is for something no longer shown
            self._show(self._cache[key])
            return
        model, (_, layer, channels, unit, seed, steps) = self._model, key
        preview = self._preview = _Preview()

        def job(progress, cancel) -> featvis.Visualization:
            def report(step: int, total: int, image: np.ndarray | None) -> None:
                if image is not None:
                    preview.put(to_qimage(image))  # made here: the GUI thread only swaps it
                progress(step, total)

            if channels[0] == "first":
                return featvis.visualize_channels(
                    model,
                    layer,
                    channels[1],
                    unit=unit,
                    steps=steps,
                    seed=seed,
                    progress=report,
                    cancel=cancel,
                )
            return featvis.visualize(
                model, layer, channels[0], unit=unit, steps=steps, seed=seed, progress=report, cancel=cancel
            )

        self._running = key
        self._vis = None
        self.export_button.setEnabled(False)
        what = self._describe(key)
        self.pane.set_image(None, f"Visualizing {what}…")
        self.status.setText(f"visualizing {what}: {steps} steps, seed {seed}")
        self.progress.start(steps, f"{what}: step %v/%m")
        self.lane.submit(job, lambda vis: self._on_done(key, vis), lambda exc: self._on_failed(key, exc))

    def _describe(self, key: tuple) -> str:
        _, layer, channels, unit, _, _ = key
        what = f"the first {channels[1]} channels" if channels[0] == "first" else f"channel {channels[0]}"
        return f"{what}{f' at unit {unit}' if unit else ''} of {layer}"

    def _on_progress(self, done: int, total: int) -> None:
        self.progress.step(done, total)
        image = self._preview.take() if self._preview is not None else None
        if image is not None and self._running == self._wanted:
            self.pane.set_image(image)

    def _on_done(self, key: tuple, vis: featvis.Visualization) -> None:
        if key == self._running:
            self._running = None
        if key[0] != id(self._model):
            return  # made for a model no longer shown
        self._cache[key] = vis
        while len(self._cache) > KEEP:
            self._cache.popitem(last=False)
        if key == self._wanted:
            self._show(vis)

    def _on_failed(self, key: tuple, exc: BaseException) -> None:
        if key == self._running:
            self._running = None
        if key == self._wanted:
            self.pane.set_image(None, error_message(exc))
            self.status.setText(f"could not visualize {self._describe(key)}")

    def _on_cancelled(self) -> None:
        cancelled = self._cancelled_key()
        if cancelled is not None:
            self.status.setText(
                f"cancelled: {self._describe(cancelled)} (the last preview "
                f"stays; change a setting or press a button to run again)"
            )

    def _show(self, vis: featvis.Visualization) -> None:
        self._vis = vis
        image = self.image()
        self._tiles = render.mosaic(vis.images, gap=2)[1] if len(vis.channels) > 1 else []
        self.pane.set_image(to_qimage(image))
        self.export_button.setEnabled(True)
        self.progress.stop()
        after = f", measured after {vis.objective_layer}" if vis.objective_layer != vis.layer else ""
        base = vis.baseline if vis.baseline is not None else np.zeros(len(vis.channels))
        if len(vis.channels) > 1:
            text = (
                f"the first {len(vis.channels)} channels of {vis.layer} (left to right, top "
                f"to bottom; click one to see it alone){after}: mean activation "
                f"{float(vis.activations.mean()):.4g} (a grey image: {float(base.mean()):.4g})"
            )
        else:
            where = f" unit {vis.unit}" if vis.unit else ""
            text = (
                f"channel {vis.channels[0]}{where} of {vis.layer}{after}: activation "
                f"{float(vis.activations[0]):.4g} (a grey image: {float(base[0]):.4g})"
            )
        self.status.setText(f"{text} after {vis.steps} steps (seed {vis.seed})")

    def _stop(self, text: str) -> None:
        self._wanted = self._running = None
        self._vis = None
        self.lane.cancel()
        self.progress.stop()
        self.pane.set_image(None, text)
        self.status.setText("")
        self._enable(False)

    def _enable(self, on: bool) -> None:
        for w in (self.channel, self.steps, self.seed, self.one_button, self.grid_button):
            w.setEnabled(on)
        if not on:
            self.unit.setEnabled(False)
            self.export_button.setEnabled(False)

    def _export_dialog(self) -> None:
        vis = self._vis
        if vis is None:
            return
        grid = f".first{len(vis.channels)}" if len(vis.channels) > 1 else f".ch{vis.channels[0]}"
        unit = f".unit{vis.unit[0]}_{vis.unit[1]}" if vis.unit else ""
        self._export_dialog_to(
            "Export the visualization",
            f"{safe_name(vis.layer)}{grid}{unit}.vis.png",
            "saved the visualization to {path}",
        )
