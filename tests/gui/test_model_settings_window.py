"""Model > Model file settings… in the real window: the values reach the model, are remembered
for that file only, and a 1000-output model without labels says its classes are a guess."""

from __future__ import annotations

import torch
from torch import nn

from gui.model_settings import ModelSettings
from tests.gui.conftest import wait_run


class Tiny(nn.Module):
    def __init__(self, outputs: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.conv(x)).flatten(1))


def test_settings_reach_the_model_and_stay_with_their_file(classic, qtbot, tmp_path, monkeypatch) -> None:
    win = classic
    a, b = tmp_path / "a.pt", tmp_path / "b.pt"
    torch.jit.save(torch.jit.script(Tiny(1000).eval()), str(a))
    torch.jit.save(torch.jit.script(Tiny(1000).eval()), str(b))
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(f"n{i}" for i in range(1000)))
    win.open_model(str(a))
    wait_run(qtbot, win)
    assert "guess" in win.predictions.title.text()
    assert win.settings_action.isEnabled()
    chosen = ModelSettings(input_size=(64, 80), labels=str(labels))
    monkeypatch.setattr(
        "gui.model_settings.ask",
        lambda parent, path, store, current, own: (store.put(path, chosen), chosen)[1],
    )
    win.edit_model_settings()
    wait_run(qtbot, win)
    assert win.outcome.model.preprocess.size == (64, 80)
    assert win.outcome.model.categories[0] == "n0" and "guess" not in win.predictions.title.text()
    win.open_model(str(b))  # another file: its own settings
    wait_run(qtbot, win)
    assert win.outcome.model.preprocess.size == (224, 224)
    win.open_model(str(a))  # the first file again: remembered
    wait_run(qtbot, win)
    assert win.outcome.model.preprocess.size == (64, 80) and win.outcome.model.categories[0] == "n0"
    win.open_model("classic")
    wait_run(qtbot, win)
    assert not win.settings_action.isEnabled()
