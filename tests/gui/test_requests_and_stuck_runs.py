"""The window keeps the user's choices when they click ahead, drops stale results, and survives a
model that never returns (issue 11.4, 11.5)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest
import torch
from PIL import Image

from tests.gui import hanging
from tests.gui.conftest import wait_run

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def no_downloads(monkeypatch, tmp_path) -> list[str]:
    """Nothing cached, and any download attempt is recorded (and fails as it does offline)."""
    tried: list[str] = []

    def urlopen(url, timeout=None):
        tried.append(str(url))
        raise urllib.error.URLError("offline (test)")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    return tried


@pytest.fixture
def stuck_model(tmp_path):
    """A pickled model file whose forward pass hangs while ``hanging.HANG`` is set; whatever is
    stuck is released when the test ends."""
    hanging.reset()
    path = tmp_path / "hanging.pth"
    torch.save(hanging.Hanging(), path)
    yield path
    hanging.RELEASE.set()


def _menus(win) -> tuple[str | None, bool, str]:
    checked = [name for name, a in win.model_actions.items() if a.isChecked()]
    return (
        checked[0] if checked else None,
        win.untrained_action.isChecked(),
        win.engine_panel.combo.currentText(),
    )


# ----------------------------------------------------------------- clicking ahead
def test_untrained_then_a_model_clicked_within_ms_runs_untrained(classic, qtbot, no_downloads) -> None:
    win = classic
    win.untrained_action.trigger()  # tick Untrained: a run starts
    qtbot.wait(5)
    win.model_actions["squeezenet1_1"].trigger()  # and pick a model before it has finished
    wait_run(qtbot, win)
    assert no_downloads == []  # the tick was not lost: no download was tried
    assert win.last_error is None
    assert win.outcome.model.name == "squeezenet1_1" and not win.outcome.model.pretrained
    assert win.outcome.request.engine == "im2col"
    assert _menus(win) == ("squeezenet1_1", True, "im2col")


def test_an_engine_then_a_model_clicked_within_ms_run_together(classic, qtbot, no_downloads) -> None:
    win = classic
    win.engine_panel.combo.setCurrentText("fft")
    qtbot.wait(3)
    win.untrained_action.trigger()
    qtbot.wait(3)
    win.model_actions["squeezenet1_1"].trigger()
    assert _menus(win) == ("squeezenet1_1", True, "fft")  # the menus say what was asked at once
    wait_run(qtbot, win)
    assert no_downloads == [] and win.last_error is None
    assert win.outcome.model.name == "squeezenet1_1" and win.outcome.result.engine == "fft"
    assert _menus(win) == ("squeezenet1_1", True, "fft")
    assert win.settings.value("engine") == "fft" and win.settings.value("model") == "squeezenet1_1"


def test_a_failed_choice_is_taken_back_and_the_others_still_run(classic, qtbot, tmp_path) -> None:
    win = classic
    (tmp_path / "broken.png").write_text("no pixels here")
    win.open_image(str(tmp_path / "broken.png"))
    win.engine_panel.combo.setCurrentText("winograd")  # picked while the broken photo opens
    wait_run(qtbot, win)
    assert "broken.png is not an image file" in win._message.text()
    assert win.outcome.source == "sample: chelsea"  # the photo shown stays
    assert win.outcome.result.engine == "winograd"  # and the engine picked meanwhile ran
    assert _menus(win) == ("classic", False, "winograd")


def test_a_download_that_fails_leaves_the_menus_on_what_is_shown(classic, qtbot, no_downloads) -> None:
    win = classic
    win.model_actions["squeezenet1_1"].trigger()  # pretrained: a download, which fails here
    wait_run(qtbot, win)
    assert no_downloads and win.outcome.model.name == "classic"
    assert "Untrained" in win._message.text()  # the window's own hint, in its own words
    assert _menus(win) == ("classic", False, "im2col")
    win.untrained_action.trigger()  # the next choice does not carry the failed model along
    wait_run(qtbot, win)
    assert win.outcome.model.name == "classic" and win.outcome.request.untrained


def test_an_effective_field_for_a_layer_left_behind_is_not_drawn(classic, qtbot) -> None:
    win = classic
    win.navigator.set_index(3)  # combine
    win.feature_maps.unit_clicked.emit(2, 40, 50)  # the field is computed on the worker...
    win.navigator.step(1)  # ...while the user steps on
    wait_run(qtbot, win)
    assert win.current_layer().name == "relu2"
    assert win.input_panel._heat is None  # combine's field is not drawn over relu2
    win.feature_maps.unit_clicked.emit(1, 30, 30)  # the same, unhurried: drawn
    wait_run(qtbot, win)
    assert win.input_panel._heat is not None


# ----------------------------------------------------------------- a model that never returns
def test_export_everything_during_a_run_neither_cancels_it_nor_waits_for_it(
    classic, qtbot, tmp_path, stuck_model
) -> None:
    win = classic
    hanging.HANG.set()
    win.open_model(str(stuck_model), trust=True)
    assert hanging.IN_FORWARD.wait(30)  # the run is under way (and stays so)
    win.export_all(str(tmp_path / "all"))
    assert "the run under way goes on" in win.status_label.text()
    qtbot.waitUntil(lambda: not win.exports.busy, timeout=60000)
    assert (tmp_path / "all" / "combine.filters.png").exists()  # what was shown: classic
    assert "wrote" in win.status_label.text() and "classic" in win.status_label.text()
    assert win.worker.busy  # the run was not cancelled
    hanging.HANG.clear()
    hanging.RELEASE.set()
    wait_run(qtbot, win)
    assert win.outcome.model.source == "pickle" and win.last_error is None  # and it finished


def test_export_everything_shows_progress_and_can_be_cancelled(classic, qtbot, tmp_path) -> None:
    win = classic
    seen: list[tuple[int, int]] = []
    win.exports.progress.connect(lambda d, t: seen.append((d, t)))
    win.export_all(str(tmp_path / "all"))
    assert win.export_progress.isVisible() and win.export_cancel_button.isVisible()
    qtbot.waitUntil(lambda: not win.exports.busy, timeout=60000)
    assert seen == [(0, 2), (1, 2)]  # before each of the two conv layers
    assert not win.export_progress.isVisible() and "wrote 6 files" in win.status_label.text()
    win.export_all(str(tmp_path / "cancelled"))
    win.export_cancel_button.click()
    qtbot.waitUntil(lambda: not win.exports.busy, timeout=60000)
    assert win.status_label.text() == "export cancelled: the files written so far stay"
    assert not (tmp_path / "cancelled" / "combine.filters.png").exists()
    assert win.outcome.model.name == "classic" and win.last_error is None


@pytest.mark.parametrize("where,when", [("python", "open"), ("python", "rerun"), ("c", "rerun")])
def test_cancel_gives_the_app_back_from_a_model_that_never_returns(
    classic, qtbot, stuck_model, where, when
) -> None:
    """A forward pass stuck in Python (opening the model, or running it again on another engine)
    is stopped by the Cancelled raised into it; one stuck in C is left behind."""
    win = classic
    win.worker.grace_s = 0.3  # the app's 1.5 s, shortened for the test
    hanging.HOW["where"] = where
    if when == "rerun":  # shown first, then it hangs
        win.open_model(str(stuck_model), trust=True)
        wait_run(qtbot, win)
    shown = win.outcome.model.name
    hanging.HANG.set()
    if when == "open":
        win.open_model(str(stuck_model), trust=True)
    else:
        win.engine_panel.combo.setCurrentText("winograd")
    assert hanging.IN_FORWARD.wait(30)
    assert win.cancel_button.isVisible()
    t0 = time.monotonic()
    win.cancel_button.click()
    qtbot.waitUntil(lambda: not win.worker.busy, timeout=10000)
    assert time.monotonic() - t0 < 5
    if where == "python":  # Cancelled was raised inside the loop: the run stopped
        assert win.status_label.text().startswith(f"cancelled · still showing {shown}")
        assert win.worker.left_behind == 0
    else:  # stuck in C: left behind, and the user is told
        assert win.status_label.text().startswith("cancelled: the run did not stop and was left behind")
        assert f"still showing {shown}" in win.status_label.text()
        assert win.worker.left_behind == 1
    assert win.last_error is None  # a cancel is no error
    assert win.outcome.model.name == shown and win.outcome.result.engine == "im2col"
    assert _menus(win)[1:] == (False, "im2col")
    hanging.HANG.clear()
    win.engine_panel.combo.setCurrentText("fft")  # a following request runs
    wait_run(qtbot, win)
    assert win.outcome.model.name == shown and win.outcome.result.engine == "fft"
    t0 = time.monotonic()
    win.close()  # and closing does not wait for what was left behind
    assert time.monotonic() - t0 < 2.5


def test_closing_during_a_run_that_never_returns_does_not_wait_for_it(classic, qtbot, stuck_model) -> None:
    win = classic
    hanging.HOW["where"] = "c"
    win.open_model(str(stuck_model), trust=True)
    wait_run(qtbot, win)
    hanging.HANG.set()
    win.engine_panel.combo.setCurrentText("fft")
    assert hanging.IN_FORWARD.wait(30)
    t0 = time.monotonic()
    win.close()
    assert time.monotonic() - t0 < 2.5  # CLOSE_WAIT_S, and a little
    assert not win.worker.busy and win.worker.left_behind == 1


def test_the_process_exits_when_the_window_closes_on_a_run_that_never_returns(tmp_path) -> None:
    """Closing the window ends the app even with a model stuck in C on the worker (before, the
    pool's thread kept the process alive for ever)."""
    path = tmp_path / "hanging.pth"
    torch.save(hanging.Hanging(), path)
    script = textwrap.dedent(f"""
        import sys, time
        from PySide6.QtCore import QSettings, QTimer
        from PySide6.QtWidgets import QApplication
        from tests.gui import hanging
        app = QApplication([])
        from gui.main_window import MainWindow
        win = MainWindow(QSettings({str(tmp_path / "s.ini")!r}, QSettings.Format.IniFormat))
        win.show()
        hanging.HOW["where"] = "c"
        hanging.HANG.set()
        win.start(model={str(path)!r}, trust=True, engine="im2col")
        def close_when_stuck():
            if hanging.IN_FORWARD.is_set():
                print("stuck", flush=True)
                win.close()
                app.quit()
            else:
                QTimer.singleShot(20, close_when_stuck)
        QTimer.singleShot(20, close_when_stuck)
        app.exec()
        print("closed", flush=True)
    """)
    t0 = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**_env(), "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["stuck", "closed"]
    assert time.monotonic() - t0 < 120


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"QT_QPA_PLATFORM": "offscreen"}


def test_a_pasted_photo_followed_at_once_by_an_engine_keeps_the_photo(classic, qtbot) -> None:
    win = classic
    win.open_pil_image(Image.new("RGB", (64, 48), (200, 30, 30)), "pasted image")
    win.engine_panel.combo.setCurrentText("fft")  # before the paste's run is done
    wait_run(qtbot, win)
    assert win.last_error is None
    assert win.outcome.source == "pasted image" and win.outcome.result.engine == "fft"
    assert win.input_panel.displayed_image()[10, 10].tolist() == [200, 30, 30]


# ----------------------------------------------------------------- typed errors from loading
def _loader(monkeypatch, first_error: Exception) -> list[dict]:
    """``load_model`` as the window calls it: raises ``first_error`` for the file until the
    question's answer comes back, then gives the classic model."""
    from models.sources import load_model

    calls: list[dict] = []

    def fake(name, **kwargs):
        calls.append({"name": name, **kwargs})
        if name.endswith(".pth") and not (kwargs.get("trust") or kwargs.get("arch")):
            raise first_error
        return load_model("classic")

    monkeypatch.setattr("models.pipeline.load_model", fake)
    return calls


def test_an_untrusted_model_error_asks_for_trust(classic, qtbot, monkeypatch) -> None:
    from models.errors import UntrustedModelError

    calls = _loader(monkeypatch, UntrustedModelError("x.pth would run code from the file"))
    asked = []
    monkeypatch.setattr("gui.dialogs.ask_trust", lambda parent, path, reason="": asked.append(path) or True)
    classic.open_model("/somewhere/x.pth")
    wait_run(qtbot, classic)
    assert asked == ["/somewhere/x.pth"] and classic.last_error is None
    assert [c["trust"] for c in calls] == [False, True] and classic.outcome.request.trust


def test_declining_trust_says_so_in_the_windows_words(classic, qtbot, monkeypatch) -> None:
    from models.errors import UntrustedModelError

    _loader(monkeypatch, UntrustedModelError("x.pth: pass --trust-model to load it"))
    monkeypatch.setattr("gui.dialogs.ask_trust", lambda parent, path, reason="": False)
    classic.open_model("/somewhere/x.pth")
    wait_run(qtbot, classic)
    assert "x.pth was not opened" in classic.last_error and "--" not in classic.last_error
    assert classic.outcome.model.name == "classic" and _menus(classic)[0] == "classic"


def test_an_architecture_needed_error_asks_with_the_guess_preselected(classic, qtbot, monkeypatch) -> None:
    from models.errors import ArchitectureNeededError

    calls = _loader(monkeypatch, ArchitectureNeededError("x.pth holds weights only", guess="resnet18"))
    asked = []
    monkeypatch.setattr(
        "gui.dialogs.ask_arch", lambda parent, path, guess=None: asked.append(guess) or "classic"
    )
    classic.open_model("/somewhere/x.pth")
    wait_run(qtbot, classic)
    assert asked == ["resnet18"] and classic.last_error is None
    assert calls[-1]["arch"] == "classic" and classic.outcome.request.arch == "classic"


def test_weights_unavailable_shows_where_to_get_them(classic, qtbot, monkeypatch) -> None:
    from models.errors import WeightsUnavailableError

    _loader(
        monkeypatch,
        WeightsUnavailableError(
            "cannot download x.pth (offline)", url="https://example.org/x.pth", path="/cache/x.pth"
        ),
    )
    classic.open_model("/somewhere/x.pth")
    wait_run(qtbot, classic)
    text = classic.last_error
    assert text.startswith("cannot download x.pth (offline)")
    assert "https://example.org/x.pth" in text and "/cache/x.pth" in text and "Untrained" in text
    assert classic.outcome.model.name == "classic"


def test_the_ask_arch_dialog_preselects_the_guess(window, qtbot) -> None:
    from PySide6.QtWidgets import QApplication, QInputDialog

    from gui.dialogs import ask_arch

    seen = []

    def answer() -> None:
        dialog = next(
            w for w in QApplication.topLevelWidgets() if isinstance(w, QInputDialog) and w.isVisible()
        )
        seen.append(dialog.textValue())
        dialog.accept()

    from PySide6.QtCore import QTimer

    QTimer.singleShot(50, answer)
    assert ask_arch(window, "/x/weights.pth", guess="resnet50") == "resnet50"
    assert seen == ["resnet50"]


class _ScriptedHang(torch.nn.Module):
    """A TorchScript loop that never ends and never looks at Cancel."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        while bool(y.sum() > -1e30):
            y = y + 0.0
        return y


def test_closing_after_a_compiled_run_was_left_behind_exits_cleanly(tmp_path) -> None:
    path = tmp_path / "hang.pt"
    torch.jit.script(_ScriptedHang().eval()).save(str(path))
    script = textwrap.dedent(f"""
        import sys
        from PySide6.QtCore import QSettings, QTimer
        from PySide6.QtWidgets import QApplication
        app = QApplication([])
        from gui.app import finish
        from gui.main_window import MainWindow
        win = MainWindow(QSettings({str(tmp_path / "s.ini")!r}, QSettings.Format.IniFormat))
        win.show()
        win.start(model={str(path)!r}, engine="reference")
        def step():  # Cancel; if it came while loading (which stops), ask again and retry
            if win.worker.left_behind:
                print("left", flush=True)
                win.close()
                app.quit()
                return
            if win.worker.busy:
                win.cancel()
            else:
                win.start(model={str(path)!r}, engine="reference")
            QTimer.singleShot(3000, step)
        QTimer.singleShot(3000, step)
        code = finish(win, app.exec())
        print("closed", flush=True)
        sys.exit(code)
    """)
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**_env(), "PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["left"]  # ended at once: nothing after finish() ran
    assert "terminate" not in done.stderr
