"""A model file's settings in the window: the dialog, what reaches load_model, what is remembered."""

from __future__ import annotations

import os

import pytest
import torch
from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QDialogButtonBox
from torch import nn

from gui.model_settings import ModelSettings, ModelSettingsDialog, SettingsStore, file_key
from models.runner import run_model
from models.sources import load_model


class Tiny(nn.Module):
    def __init__(self, outputs: int = 4) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.conv(x)).flatten(1))


def _save(path, outputs: int = 4) -> str:
    torch.manual_seed(0)
    torch.jit.save(torch.jit.script(Tiny(outputs).eval()), str(path))
    return str(path)


@pytest.fixture
def model_file(tmp_path) -> str:
    return _save(tmp_path / "tiny.pt", 4)


@pytest.fixture
def labels_file(tmp_path) -> str:
    path = tmp_path / "labels.txt"
    path.write_text("cat\ndog\nbird\nfish\n")
    return str(path)


def _dialog(qtbot, path: str, current: ModelSettings | None = None) -> ModelSettingsDialog:
    own = load_model(path).preprocess
    dialog = ModelSettingsDialog(path, current, own)
    qtbot.addWidget(dialog)
    return dialog


def _ok(dialog: ModelSettingsDialog):
    return dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)


def test_the_dialogs_values_reach_load_model(qtbot, model_file, labels_file) -> None:
    dialog = _dialog(qtbot, model_file)
    assert dialog.values() == ModelSettings()  # untouched: the model's own
    dialog.size_box.setChecked(True)
    dialog.height.setValue(40)
    dialog.width.setValue(56)
    dialog.mean.setText("0.5, 0.4, 0.3")
    dialog.std.setText("0.2 0.25 0.3")
    dialog.labels.setText(labels_file)
    assert _ok(dialog).isEnabled()
    values = dialog.values()
    model = load_model(model_file, **values.load_kwargs())
    assert model.preprocess.size == (40, 56)
    assert model.preprocess.mean == (0.5, 0.4, 0.3) and model.preprocess.std == (0.2, 0.25, 0.3)
    assert model.categories == ["cat", "dog", "bird", "fish"]
    result = run_model(model, torch.zeros(1, 3, 40, 56), "reference")
    assert result.input_shape == (1, 3, 40, 56)
    assert {name for name, _ in result.predictions} <= {"cat", "dog", "bird", "fish"}
    assert result.prediction_note is None


def test_one_channel_reaches_load_model(qtbot, tmp_path) -> None:
    path = tmp_path / "grey.pt"
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU())
    torch.jit.save(torch.jit.script(net.eval()), str(path))
    dialog = _dialog(qtbot, str(path))
    assert "(1)" in dialog.channels.itemText(0)  # the model's own, read from its first conv
    dialog.channels.setCurrentIndex(dialog.channels.findData(1))
    dialog.mean.setText("0.45")
    dialog.std.setText("0.2")
    model = load_model(str(path), **dialog.values().load_kwargs())
    assert model.preprocess.channels == 1 and model.preprocess.mean == (0.45,)


def test_what_does_not_make_sense_is_said_and_ok_waits(qtbot, model_file, tmp_path) -> None:
    dialog = _dialog(qtbot, model_file)
    dialog.mean.setText("0.5, 0.5")
    assert not _ok(dialog).isEnabled() and "mean needs 3 values" in dialog.problem.text()
    dialog.mean.setText("0.5, x, 0.5")
    assert "numbers separated by commas" in dialog.problem.text()
    dialog.mean.setText("")
    dialog.std.setText("0.2, 0, 0.2")
    assert "positive" in dialog.problem.text() and not _ok(dialog).isEnabled()
    dialog.std.setText("")
    dialog.labels.setText(str(tmp_path / "missing.txt"))
    assert "does not exist" in dialog.problem.text() and not _ok(dialog).isEnabled()
    dialog.labels.setText("")
    assert _ok(dialog).isEnabled() and not dialog.problem.isVisibleTo(dialog)


def test_remembered_for_the_same_file_and_not_for_another(tmp_path, model_file, labels_file) -> None:
    ini = str(tmp_path / "settings.ini")
    store = SettingsStore(QSettings(ini, QSettings.Format.IniFormat))
    other = _save(tmp_path / "other.pt", 4)
    values = ModelSettings(input_size=(64, 48), mean=(0.1, 0.2, 0.3), std=(1.0, 1.0, 1.0), labels=labels_file)
    store.put(model_file, values)
    assert store.get(model_file) == values
    assert store.get(other) is None
    # a later session (a new QSettings on the same file) applies them again
    again = SettingsStore(QSettings(ini, QSettings.Format.IniFormat))
    assert again.get(model_file) == values
    # through a relative path too: the key is the absolute path
    cwd = os.getcwd()
    try:
        os.chdir(tmp_path)
        assert again.get("tiny.pt") == values
    finally:
        os.chdir(cwd)
    # the same path holding another model since: not applied
    stat = os.stat(model_file)
    os.utime(model_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert again.get(model_file) is None
    # all the model's own: nothing kept
    store.put(other, ModelSettings(channels=3))
    assert store.get(other) == ModelSettings(channels=3)
    store.put(other, ModelSettings())
    assert store.get(other) is None
    assert file_key("resnet18") is None and store.get("resnet18") is None  # a catalog name


def test_the_dialog_opens_with_the_remembered_values(qtbot, model_file, labels_file) -> None:
    current = ModelSettings(input_size=(32, 32), channels=3, mean=(0.5, 0.5, 0.5), labels=labels_file)
    dialog = _dialog(qtbot, model_file, current)
    assert dialog.values() == current
    dialog.restore()
    assert dialog.values() == ModelSettings()


def test_a_thousand_outputs_without_labels_guess_imagenet(tmp_path) -> None:
    model = load_model(_save(tmp_path / "big.pt", 1000))
    result = run_model(model, torch.zeros(1, 3, 224, 224), "reference")
    assert "guess" in result.prediction_note and len(result.predictions) == 5
    model = load_model(_save(tmp_path / "ten.pt", 10))
    result = run_model(model, torch.zeros(1, 3, 224, 224), "reference")
    assert result.predictions[0][0].startswith("class ") and "indices" in result.prediction_note


def test_the_labels_field_has_room_for_a_path(qtbot, model_file, labels_file) -> None:
    dialog = _dialog(qtbot, model_file, ModelSettings(labels=labels_file))
    dialog.show()
    qtbot.waitExposed(dialog)
    assert dialog.labels.width() > 200  # room for a path
