"""Model files that cannot be used, as the window tells it (#15.6): the texts from models/sources
shown whole, and no "running…" while a question waits."""

from __future__ import annotations

import sys
import types

import torch
from torch import nn

from tests.gui.conftest import wait_run


def _pickled_model_of_a_gone_script(path) -> None:
    """A whole model pickled from a training script that is not importable here."""
    script = types.ModuleType("gone_training_script")

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c = nn.Conv2d(3, 4, 3)

    Net.__module__, Net.__qualname__ = script.__name__, "Net"
    script.Net = Net
    sys.modules[script.__name__] = script
    try:
        torch.save(Net(), path)
    finally:
        del sys.modules[script.__name__]


def test_a_pickled_model_whose_class_is_gone_says_what_to_do(classic, qtbot, tmp_path, monkeypatch) -> None:
    win = classic
    _pickled_model_of_a_gone_script(tmp_path / "net.pth")
    status: list[str] = []
    monkeypatch.setattr(
        "gui.dialogs.ask_trust",
        lambda parent, path, reason="": status.append(win.status_label.text()) or True,
    )
    win.open_model(str(tmp_path / "net.pth"))
    wait_run(qtbot, win)
    assert status and "running" not in status[0]  # while the question waits
    text = win.last_error
    assert text == win._message.text()  # whole, in the box
    assert "gone_training_script" in text and "TorchScript" in text and "state dict" in text
    assert win.outcome.model.name == "classic"


def test_weights_of_another_architecture_say_which_keys_disagree(
    classic, qtbot, tmp_path, monkeypatch
) -> None:
    from models.sources.catalog import load_catalog

    win = classic
    torch.save(load_catalog("resnet18", untrained=True).module.state_dict(), tmp_path / "w.pth")
    asked: list[tuple[str | None, str]] = []
    answers = ["resnet50", "resnet18"]  # the user picks the wrong one, then the one suggested
    monkeypatch.setattr(
        "gui.dialogs.ask_arch",
        lambda parent, path, guess=None: asked.append((guess, win.status_label.text())) or answers.pop(0),
    )
    win.open_model(str(tmp_path / "w.pth"))
    wait_run(qtbot, win)
    assert asked[0][0] == "resnet18" and "running" not in asked[0][1]  # the guess preselected
    text = win._message.text()
    assert text == win.last_error and "does not fit architecture resnet50" in text
    assert "keys missing" in text and "of another shape" in text and "64x64x3x3 vs 64x64x1x1" in text
    assert "those of resnet18" in text and win.outcome.model.name == "classic"
    # what to do in the window: choose resnet18 when asked, and a button that asks again
    assert text.endswith(
        "Open the file again (Model > Open model file…) and choose resnet18 when asked which architecture."
    )
    again = next(b for b in win._message.buttons() if b.text() == "Choose the architecture again…")
    again.click()
    wait_run(qtbot, win)
    assert [guess for guess, _ in asked] == ["resnet18", "resnet18"]  # preselected again
    assert win.outcome.model.name == str(tmp_path / "w.pth") and win.outcome.model.source == "state_dict"


def test_a_text_file_named_pt_is_not_a_model_file(classic, qtbot, tmp_path) -> None:
    (tmp_path / "notes.pt").write_text("these are my notes\n")
    classic.open_model(str(tmp_path / "notes.pt"))
    wait_run(qtbot, classic)
    assert classic.last_error.startswith("notes.pt is not a model file")
    assert "KeyError" not in classic.last_error
