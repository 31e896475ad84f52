"""The "Class activation map" tab: Grad-CAM (or Grad-CAM++, Score-CAM) of a class the model
predicts, at a conv layer, over the model's view of the photo and over the photo.

The work is :func:`models.cam.class_map` (plus the two overlays), a plain function with
``progress`` and ``cancel`` run on the view's own lane; Score-CAM runs a forward pass per channel
of the layer and reports them. The layer is the tab's own choice (*Layer*): the model's last
convolution by default (as :func:`models.cam.default_layer` picks it), the layer selected in the
window ("follow the selected layer"), or any convolution with a map. Results are kept per
(model, photo, layer, class, method); another model or photo clears them.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
from PySide6.QtWidgets import (
    QComboBox,
    QGridLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from gui.view import Shown
from gui.views.common import ImagePane, LaneView, ProgressRow, qimage_to_rgb, to_qimage
from gui.widgets import steady_label
from gui.worker import error_message
from models import cam, render
from models.export import safe_name

CLASSES = 10  # the class picker lists the top 10 predictions
KEEP = 32


LAST, SELECTED = "last", "selected"  # the layer picker's two modes; a layer name is the third


def has_map(layer) -> bool:
    """A convolution whose output is a map larger than 1×1 (what a CAM needs)."""
    return (
        layer.is_conv
        and layer.grid_axes is not None
        and int(np.prod([layer.output_shape[a] for a in layer.grid_axes])) > 1
    )


def last_conv(layers) -> str | None:
    """The last convolution with a map larger than 1×1 (:func:`models.cam.default_layer`'s)."""
    names = [la.name for la in layers if has_map(la) and not la.block]
    return names[-1] if names else None


def cam_layer(layer) -> tuple[str | None, str]:
    """The layer to explain for the selected :class:`~models.layers.LayerInfo` (None: the
    model's last convolution) and why, in words."""
    if layer is None:
        return None, "the last convolution"
    if not layer.is_conv:
        return None, f"the last convolution ({layer.name} is not a convolution)"
    if layer.grid_axes is None or np.prod([layer.output_shape[a] for a in layer.grid_axes]) <= 1:
        return None, f"the last convolution ({layer.name} has no map larger than 1×1)"
    return layer.name, "the selected layer"


def top_classes(logits, categories, count: int = CLASSES) -> list[tuple[int, str]]:
    """The ``count`` highest-scoring classes as (index, "name (probability)"), best first;
    empty when the output is not one score per class."""
    if logits is None:
        return []
    scores = (
        np.asarray(logits, dtype=np.float64).reshape(-1)
        if np.ndim(logits) <= 2 and (np.ndim(logits) < 2 or np.shape(logits)[0] == 1)
        else None
    )
    if scores is None or scores.size < 2:
        return []
    probs = np.exp(scores - scores.max())
    probs /= probs.sum()
    order = np.argsort(-scores, kind="stable")[:count]
    names = categories if categories and len(categories) == scores.size else None
    return [(int(i), f"{names[i] if names else f'class {i}'} ({probs[i]:.1%})") for i in order]


class CamView(LaneView):
    key = "cam"
    title = "Class activation map"
    short_title = "CAM"

    def __init__(self, window=None, parent: QWidget | None = None) -> None:
        super().__init__("cam", window, parent)
        self._cache: OrderedDict[tuple, tuple] = OrderedDict()
        self._for: tuple | None = None  # (model, image) the kept results and classes are for
        self._result: cam.ClassMap | None = None  # shown
        self._why = ""

        self.method = QComboBox()
        for key, name in cam.METHODS.items():
            self.method.addItem(name, key)
        self.method.setToolTip(
            "Grad-CAM and Grad-CAM++: one forward and one backward pass. "
            "Score-CAM: no gradient, one forward pass per channel of the layer"
        )
        self.layer_box = QComboBox()
        self.layer_box.setMinimumContentsLength(14)
        self.layer_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.layer_box.setToolTip(
            "The conv layer whose maps are weighed: the last convolution "
            "(the usual choice), the layer selected in the window, or any "
            "convolution with a map"
        )
        self._layer_choice: str = LAST
        self.classes = QComboBox()
        self.classes.setMinimumContentsLength(16)
        self.classes.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.classes.setToolTip("The class to explain: the model's top predictions, best first")
        self.export_button = QPushButton("Export PNG…")
        self.export_button.setEnabled(False)
        self.where = steady_label()
        controls = QGridLayout()  # two rows: the combos keep their text at 1024 px
        controls.addWidget(QLabel("Layer"), 0, 0)
        controls.addWidget(self.layer_box, 0, 1)
        controls.addWidget(QLabel("Method"), 0, 2)
        controls.addWidget(self.method, 0, 3)
        controls.addWidget(QLabel("Class"), 1, 0)
        controls.addWidget(self.classes, 1, 1)
        controls.addWidget(self.export_button, 1, 2, 1, 2)
        controls.setColumnStretch(1, 1)
        controls.setColumnStretch(4, 1)
        self.progress = ProgressRow()
        self.status = steady_label(lines=2, wrap=True)
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.on_input = ImagePane("Open a classifier and a photo to see where it looks.")
        self.on_photo = ImagePane()
        self.input_caption = QLabel("On the model's input")
        self.photo_caption = QLabel("On the photo (mapped back)")
        for caption in (self.input_caption, self.photo_caption):
            caption.setWordWrap(True)
        panes = QGridLayout()
        panes.addWidget(self.input_caption, 0, 0)
        panes.addWidget(self.photo_caption, 0, 1)
        panes.addWidget(self.on_input, 1, 0)
        panes.addWidget(self.on_photo, 1, 1)
        panes.setRowStretch(1, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(controls)
        layout.addWidget(self.where)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addLayout(panes, 1)
        layout.addWidget(self.note)

        self.method.currentIndexChanged.connect(lambda _i: self._asked())
        self.layer_box.activated.connect(self._on_layer_picked)
        self.classes.currentIndexChanged.connect(lambda _i: self._asked())
        self.export_button.clicked.connect(self._export_dialog)
        self.progress.cancel_clicked.connect(self.lane.cancel)
        self.lane.progress.connect(
            lambda done, total: self.progress.step(done, total, "Score-CAM: channel %v/%m")
        )
        self.lane.cancelled.connect(self._on_cancelled)
        self.lane.abandoned.connect(self._on_cancelled)
        self.lane.busy_changed.connect(lambda busy: None if busy else self.progress.stop())

    # -- the protocol ---------------------------------------------------------------------------
    def draw(self, shown: Shown) -> None:
        outcome = shown.outcome
        if outcome is None:
            self._clear("Open a classifier and a photo to see where it looks.")
            return
        if self._for is None or self._for[0] is not outcome.model or self._for[1] is not outcome.image:
            self._for = (outcome.model, outcome.image)  # another model or photo
            self._cache.clear()
            self._result = None
            self.classes.blockSignals(True)
            self.classes.clear()
            for index, text in top_classes(getattr(outcome.result, "logits", None), outcome.model.categories):
                self.classes.addItem(text, index)
            self.classes.blockSignals(False)
            self._fill_layers(getattr(outcome.result, "layers", []))
        self._request()

    def export_png(self, path: Path) -> Path:
        """The map on the model's input at ``path``, and on the photo at ``<name>.original.png``
        beside it (as ``--cam --export`` writes them). Returns ``path``."""
        if self._result is None:
            raise OSError("no class activation map to export yet")
        path = Path(path)
        render.save_png(qimage_to_rgb(self.on_input.image()), path)
        render.save_png(
            qimage_to_rgb(self.on_photo.image()),
            path.with_name(f"{path.name[: -len(path.suffix)] if path.suffix else path.name}.original.png"),
        )
        return path

    # -- what is shown --------------------------------------------------------------------------
    def class_map(self) -> cam.ClassMap | None:
        """The map shown (None while one is computed, or after an error)."""
        return self._result

    def choose_class(self, index: int) -> bool:
        """Pick class ``index`` in the picker; False when it is not among the classes listed."""
        position = self.classes.findData(index)
        if position >= 0:
            self.classes.setCurrentIndex(position)
        return position >= 0

    def choose_method(self, method: str) -> None:
        self.method.setCurrentIndex(self.method.findData(method))

    def choose_layer(self, choice: str) -> bool:
        """``"last"`` (the default), ``"selected"`` (follow the window's layer) or a layer's
        name; False when it is not in the picker."""
        position = self.layer_box.findData(choice)
        if position >= 0:
            self.layer_box.setCurrentIndex(position)
            self._on_layer_picked(position)
        return position >= 0

    def layer_choice(self) -> str:
        return self._layer_choice

    def _fill_layers(self, layers) -> None:
        """The picker for another model: the last conv, "selected", then every conv with a map;
        the user's choice is kept when the new model has it."""
        last = last_conv(layers)
        self.layer_box.blockSignals(True)
        self.layer_box.clear()
        self.layer_box.addItem(f"last conv ({last})" if last else "last conv", LAST)
        self.layer_box.addItem("follow the selected layer", SELECTED)
        for la in layers:
            if has_map(la) and not la.block:
                self.layer_box.addItem(la.name, la.name)
        position = self.layer_box.findData(self._layer_choice)
        if position < 0:
            self._layer_choice, position = LAST, 0
        self.layer_box.setCurrentIndex(position)
        self.layer_box.blockSignals(False)

    def _on_layer_picked(self, position: int) -> None:
        self._layer_choice = self.layer_box.itemData(position) or LAST
        self._asked()

    def _asked(self) -> None:
        """The user picked a layer, class or method: compute it, even what was cancelled."""
        self._declined = None
        self._request()

    def _layer(self) -> tuple[str | None, str]:
        """The layer to explain (None: the model's last convolution) and why, in words."""
        if self._layer_choice == SELECTED:
            name, why = cam_layer(self.shown.layer)
            return name, why
        if self._layer_choice == LAST:
            return None, "the last convolution"
        return self._layer_choice, "picked under Layer"

    # -- internals ------------------------------------------------------------------------------
    def _key(self) -> tuple | None:
        if self._for is None or self.shown.outcome is None:
            return None
        layer, self._why = self._layer()
        target = self.classes.currentData()
        return (id(self._for[0]), id(self._for[1]), layer, target, self.method.currentData())

    def _request(self) -> None:
        key = self._key()
        if not self._may_start(key):  # a cancelled map comes back with another class or method
            return
        self._wanted = key
        if key in self._cache:
            self._cache.move_to_end(key)
            self._running = None
            self.lane.cancel()
            self._show(*self._cache[key])
            return
        (model, image), (_, _, layer, target, method) = self._for, key

        def job(progress, cancel):
            result = cam.class_map(model, image, layer, target, method, progress=progress, cancel=cancel)
            return (
                result,
                to_qimage(cam.overlay(image.model_view, result.heat)),
                to_qimage(cam.on_original(result, image)),
            )

        self._running = key
        self._result = None
        self.export_button.setEnabled(False)
        name = cam.METHODS[method]
        self.where.setText(f"{name} at {layer} ({self._why})" if layer else f"{name} at {self._why}")
        self.on_input.set_image(None, f"Computing {name}…")
        self.on_photo.set_image(None)
        self.status.setText(f"computing {name}…")
        self.progress.start(0, f"{name}…")  # Score-CAM's channels set the range
        self.lane.submit(
            job, lambda answer: self._on_done(key, answer), lambda exc: self._on_failed(key, exc)
        )

    def _on_done(self, key: tuple, answer: tuple) -> None:
        if key == self._running:
            self._running = None
        if self._for is None or key[:2] != (id(self._for[0]), id(self._for[1])):
            return  # for a model or photo no longer shown
        self._cache[key] = answer
        while len(self._cache) > KEEP:
            self._cache.popitem(last=False)
        if key == self._wanted:
            self._show(*answer)

    def _on_failed(self, key: tuple, exc: BaseException) -> None:
        if key == self._running:
            self._running = None
        if key == self._wanted:
            self.on_input.set_image(None, error_message(exc))
            self.on_photo.set_image(None)
            self.status.setText("no class activation map")
            self.progress.stop()

    def _on_cancelled(self) -> None:
        if self._cancelled_key() is not None:
            self.on_input.set_image(None, "Cancelled. Pick a class or a method to compute again.")
            self.status.setText("cancelled")
            self.note.setText("")  # it was about the map being computed

    def _show(self, result: cam.ClassMap, on_input, on_photo) -> None:
        self._result = result
        self.on_input.set_image(on_input)
        self.on_photo.set_image(on_photo)
        self.export_button.setEnabled(True)
        self.progress.stop()
        label = result.class_name or f"class {result.class_index}"
        self.where.setText(f"{result.method} at {result.layer} ({self._why})")
        self.input_caption.setText(f"On the model's input ({result.heat.shape[1]}×{result.heat.shape[0]})")
        self.status.setText(
            f"{label}: score {result.score:.4g}, probability {result.probability:.1%}; "
            + (f"⚠ {result.empty_note()}" if result.empty else "brighter = more evidence for the class")
        )
        self.note.setText(
            f"{result.note}. The map ({result.cam.shape[1]}×{result.cam.shape[0]} "
            f"at the layer) is upsampled to the input and scaled to its maximum."
        )

    def _clear(self, text: str) -> None:
        self._for = self._wanted = self._running = None
        self._result = None
        self._cache.clear()
        self.lane.cancel()
        self.progress.stop()
        self.classes.clear()
        self.layer_box.clear()
        self.on_input.set_image(None, text)
        self.on_photo.set_image(None)
        self.status.setText("")
        self.where.setText("")
        self.export_button.setEnabled(False)

    def _export_dialog(self) -> None:
        result = self._result
        if result is None:
            return
        self._export_dialog_to(
            "Export the class activation map",
            f"{safe_name(result.layer)}.cam.png",
            "saved the class activation map to {path} and its .original.png",
        )
