"""A catalog model whose weights cannot be downloaded, as a window user meets it (#15.5)."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import torch

from gui.dialogs import RANDOM_WEIGHTS
from models.errors import WeightsUnavailableError
from tests.gui.conftest import wait_run

URL = "https://download.pytorch.org/models/squeezenet1_1-b8a52dc0.pth"


def _menus(win) -> tuple[str | None, bool]:
    checked = [name for name, a in win.model_actions.items() if a.isChecked()]
    return (checked[0] if checked else None, win.untrained_action.isChecked())


def _button(win, label: str):
    return next(b for b in win._message.buttons() if b.text() == label)


def test_offline_offers_random_weights_for_that_model_only(classic, qtbot, monkeypatch) -> None:
    from models.sources import load_model

    calls: list[tuple[str, bool]] = []

    def loader(name, **kwargs):
        calls.append((name, kwargs["untrained"]))
        if name != "classic" and not kwargs["untrained"]:
            raise WeightsUnavailableError(
                "cannot download squeezenet1_1-b8a52dc0.pth (no network connection)",
                url=URL,
                path="/home/me/.cache/torch/hub/checkpoints/squeezenet1_1-b8a52dc0.pth",
            )
        return load_model(name, **kwargs)

    monkeypatch.setattr("models.pipeline.load_model", loader)
    win = classic
    win.open_model("squeezenet1_1")
    wait_run(qtbot, win)
    text = win._message.text()
    assert URL in text and "/home/me/.cache/torch/hub/checkpoints/squeezenet1_1-b8a52dc0.pth" in text
    assert "--" not in text and "Errno" not in text  # the window's words, not the CLI's
    assert win.outcome.model.name == "classic" and _menus(win) == ("classic", False)
    _button(win, RANDOM_WEIGHTS).click()  # this model, with random weights
    wait_run(qtbot, win)
    assert win.last_error is None
    assert win.outcome.model.name == "squeezenet1_1" and not win.outcome.model.pretrained
    assert _menus(win) == ("squeezenet1_1", True)  # the tick says what is shown
    win.open_model("resnet18")  # the next model is asked for with its weights, not silently random
    wait_run(qtbot, win)
    assert calls[-1] == ("resnet18", False)
    assert "the pretrained weights of resnet18" in win._message.text()
    assert win.outcome.model.name == "squeezenet1_1" and _menus(win) == ("squeezenet1_1", True)
    win.set_untrained(True)  # the user's own tick is a standing choice: it applies to the next
    wait_run(qtbot, win)
    win.open_model("resnet18")
    wait_run(qtbot, win)
    assert calls[-1] == ("resnet18", True) and win.outcome.model.name == "resnet18"


def test_a_real_catalog_model_offline_then_with_the_file_put_in_place(
    classic, qtbot, monkeypatch, tmp_path
) -> None:
    from models.sources.catalog import load_catalog

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def offline(url, timeout=None):
        raise urllib.error.URLError(OSError(-2, "Name or service not known"))

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    win = classic
    win.open_model("squeezenet1_1")
    wait_run(qtbot, win)
    text = win.last_error
    target = tmp_path / "torch" / "hub" / "checkpoints" / "squeezenet1_1-b8a52dc0.pth"
    assert URL in text and str(target) in text and "no network connection" in text
    assert "Errno" not in text and "--untrained" not in text
    assert win.outcome.model.name == "classic"
    saved = load_catalog("squeezenet1_1", untrained=True).module.state_dict()
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    torch.save(saved, target)  # fetched elsewhere, put where the message said
    win._message.close()
    win.open_model("squeezenet1_1")
    wait_run(qtbot, win)
    assert win.last_error is None and win.outcome.model.pretrained
    torch.testing.assert_close(
        win.outcome.model.module.state_dict()["features.0.weight"], saved["features.0.weight"]
    )
