"""A model file's settings in the window: input size, channels, mean / std, labels file.

The command line has them (``--input-size --channels --mean --std --labels``); a window user
sets them in :class:`ModelSettingsDialog` and they are remembered per model file
(:class:`SettingsStore`, in the window's ``QSettings``), keyed by the file's absolute path, size
and modification time: opening the same file again applies them, another file (or the same
path holding another model since) starts from the model's own.

:class:`ModelSettings` is what the window puts into its request; ``load_kwargs()`` is what
``models.sources.load_model`` takes.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from models.errors import ImageError, ModelError
from models.images import MAX_INPUT_SIDE, Preprocess, check_input_size
from models.labels import read_labels

GROUP = "model_settings"  # the QSettings group: file key -> JSON of ModelSettings


@dataclass(frozen=True)
class ModelSettings:
    """A model file's settings; None: the model's own (what the file says, or the default)."""

    input_size: tuple[int, int] | None = None
    channels: int | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    labels: str | None = None  # a labels file (absolute path)

    def load_kwargs(self) -> dict:
        """Keyword arguments of ``load_model`` (all of them, None for the model's own)."""
        return asdict(self)

    def is_default(self) -> bool:
        return self == ModelSettings()

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ModelSettings:
        """Read back :meth:`to_json`'s text; ``ValueError`` when it is not that."""
        doc = json.loads(text)
        if not isinstance(doc, dict):
            raise ValueError("not a settings object")

        def floats(v: object) -> tuple[float, ...] | None:
            return None if v is None else tuple(float(f) for f in v)

        size = doc.get("input_size")
        return cls(
            input_size=None if size is None else (int(size[0]), int(size[1])),
            channels=None if doc.get("channels") is None else int(doc["channels"]),
            mean=floats(doc.get("mean")),
            std=floats(doc.get("std")),
            labels=None if doc.get("labels") is None else str(doc["labels"]),
        )

    def describe(self) -> str:
        """One line for the status bar: what is set (``""`` when nothing is)."""
        parts = []
        if self.input_size:
            parts.append(f"input {self.input_size[0]}×{self.input_size[1]}")
        if self.channels:
            parts.append(f"{self.channels} channel{'s' if self.channels > 1 else ''}")
        if self.mean:
            parts.append("mean " + ", ".join(f"{v:g}" for v in self.mean))
        if self.std:
            parts.append("std " + ", ".join(f"{v:g}" for v in self.std))
        if self.labels:
            parts.append(f"labels {Path(self.labels).name}")
        return " · ".join(parts)


def file_key(path: str | os.PathLike) -> str | None:
    """The key a model file's settings are kept under: its absolute path, size and
    modification time (a file replaced by another model is another model). None for a path
    that is not a file (a catalog name)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not os.path.isfile(path):
        return None
    ident = f"{os.path.abspath(path)}\0{st.st_size}\0{st.st_mtime_ns}"
    return hashlib.sha256(ident.encode("utf-8", "surrogatepass")).hexdigest()[:32]


class SettingsStore:
    """Model settings remembered per model file, in ``settings`` (the window's QSettings)."""

    def __init__(self, settings: QSettings) -> None:
        self._settings = settings

    def get(self, path: str | os.PathLike) -> ModelSettings | None:
        """The settings last saved for this file (same path, size and time), or None."""
        key = file_key(path)
        if key is None:
            return None
        text = self._settings.value(f"{GROUP}/{key}")
        if not text:
            return None
        try:
            return ModelSettings.from_json(str(text))
        except (ValueError, TypeError, KeyError, IndexError):
            return None  # written by something else: as if never set

    def put(self, path: str | os.PathLike, values: ModelSettings) -> None:
        """Remember ``values`` for this file (forget them when they are all the model's own)."""
        key = file_key(path)
        if key is None:
            return
        if values.is_default():
            self._settings.remove(f"{GROUP}/{key}")
        else:
            self._settings.setValue(f"{GROUP}/{key}", values.to_json())
        self._settings.sync()


def parse_floats(text: str) -> tuple[float, ...] | None:
    """``"0.5, 0.5 0.5"`` -> ``(0.5, 0.5, 0.5)``; ``""`` -> None; ``ValueError`` otherwise."""
    words = text.replace(",", " ").split()
    if not words:
        return None
    values = tuple(float(w) for w in words)
    if any(v != v or v in (float("inf"), float("-inf")) for v in values):
        raise ValueError("not a finite number")
    return values


class ModelSettingsDialog(QDialog):
    """The settings of one model file. ``current``: what it is opened with now; ``own``: the
    model's own preprocessing (shown as the placeholders of the fields left empty)."""

    def __init__(
        self,
        path: str,
        current: ModelSettings | None = None,
        own: Preprocess | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Model settings — {Path(path).name}")
        current = current or ModelSettings()
        own = own or Preprocess(size=(224, 224))
        self._own = own

        intro = QLabel(
            f"How ConvScope feeds <b>{Path(path).name}</b>. Left as they are, the "
            f"model's own values are used. Remembered for this file."
        )
        intro.setWordWrap(True)
        intro.setTextFormat(Qt.TextFormat.RichText)

        self.size_box = QCheckBox("Input size (H × W)")
        self.height = QSpinBox()
        self.width = QSpinBox()
        for spin, value in ((self.height, own.size[0]), (self.width, own.size[1])):
            spin.setRange(8, MAX_INPUT_SIDE)
            spin.setValue(value)
            spin.setSuffix(" px")
        if current.input_size:
            self.size_box.setChecked(True)
            self.height.setValue(current.input_size[0])
            self.width.setValue(current.input_size[1])
        self.size_box.toggled.connect(self._update)
        size_row = QHBoxLayout()
        size_row.addWidget(self.height)
        size_row.addWidget(QLabel("×"))
        size_row.addWidget(self.width)
        size_row.addStretch(1)

        self.channels = QComboBox()
        self.channels.addItem(f"the model's own ({own.channels})", None)
        self.channels.addItem("1 (grey)", 1)
        self.channels.addItem("3 (RGB)", 3)
        self.channels.setCurrentIndex(self.channels.findData(current.channels) if current.channels else 0)
        self.channels.currentIndexChanged.connect(self._update)

        self.mean = QLineEdit(", ".join(f"{v:g}" for v in current.mean or ()))
        self.mean.setPlaceholderText(", ".join(f"{v:g}" for v in own.mean))
        self.std = QLineEdit(", ".join(f"{v:g}" for v in current.std or ()))
        self.std.setPlaceholderText(", ".join(f"{v:g}" for v in own.std))
        for edit in (self.mean, self.std):
            edit.textChanged.connect(self._update)

        self.labels = QLineEdit(current.labels or "")
        self.labels.setPlaceholderText("none: ImageNet's for 1000 outputs (a guess), else indices")
        self.labels.textChanged.connect(self._update)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        labels_row = QHBoxLayout()
        labels_row.addWidget(self.labels, 1)
        labels_row.addWidget(browse)

        form = QFormLayout()
        form.addRow(self.size_box, size_row)
        form.addRow("Input channels", self.channels)
        form.addRow("Mean per channel", self.mean)
        form.addRow("Std per channel", self.std)
        form.addRow("Labels file", labels_row)

        self.problem = QLabel()
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet("color: #b00020")
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok
            | QDialogButtonBox.StandardButton.Cancel
            | QDialogButtonBox.StandardButton.RestoreDefaults
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults).setText("Model's own")
        self.buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults).clicked.connect(self.restore)

        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(self.problem)
        layout.addWidget(self.buttons)
        self.setMinimumWidth(480)
        self._update()

    def _browse(self) -> None:
        start = str(Path(self.labels.text()).parent) if self.labels.text() else ""
        path, _ = QFileDialog.getOpenFileName(
            self, "Labels file", start, "Labels (*.txt *.json);;All files (*)"
        )
        if path:
            self.labels.setText(path)

    def restore(self) -> None:
        """Every field back to the model's own."""
        self.size_box.setChecked(False)
        self.height.setValue(self._own.size[0])
        self.width.setValue(self._own.size[1])
        self.channels.setCurrentIndex(0)
        self.mean.clear()
        self.std.clear()
        self.labels.clear()

    def _update(self) -> None:
        self.height.setEnabled(self.size_box.isChecked())
        self.width.setEnabled(self.size_box.isChecked())
        try:
            self.values()
            problem = ""
        except ValueError as exc:
            problem = str(exc)
        self.problem.setText(problem)
        self.problem.setVisible(bool(problem))
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(not problem)

    def values(self) -> ModelSettings:
        """The settings as entered; ``ValueError`` (one line, for the dialog) when they do not
        make sense."""
        size = (self.height.value(), self.width.value()) if self.size_box.isChecked() else None
        if size is not None:
            try:
                check_input_size(size)
            except ImageError as exc:
                raise ValueError(str(exc)) from None
        channels = self.channels.currentData()
        count = channels or self._own.channels
        values = {}
        for name, edit in (("mean", self.mean), ("std", self.std)):
            try:
                values[name] = parse_floats(edit.text())
            except ValueError:
                raise ValueError(f"{name}: numbers separated by commas, one per channel") from None
            v = values[name]
            if v is not None and len(v) != count:
                raise ValueError(
                    f"{name} needs {count} value{'s' if count > 1 else ''} (one per "
                    f"input channel), got {len(v)}"
                )
        if values["std"] is not None and any(not v > 0 for v in values["std"]):
            raise ValueError("std values must be positive")
        labels = self.labels.text().strip() or None
        if labels is not None:
            try:
                read_labels(labels)
            except ModelError as exc:
                raise ValueError(str(exc)) from None
            labels = os.path.abspath(labels)
        return ModelSettings(
            input_size=size, channels=channels, mean=values["mean"], std=values["std"], labels=labels
        )


def ask(
    parent: QWidget | None,
    path: str,
    store: SettingsStore,
    current: ModelSettings | None,
    own: Preprocess | None,
) -> ModelSettings | None:
    """Show the dialog for the model file ``path``; the settings chosen (remembered in
    ``store``), or None when cancelled."""
    dialog = ModelSettingsDialog(path, current, own, parent)
    if dialog.exec() != QDialog.DialogCode.Accepted:
        return None
    values = dialog.values()
    store.put(path, values)
    return values
