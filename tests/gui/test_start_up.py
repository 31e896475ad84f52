"""The first run of the window: remembered choices that no longer hold (a deleted model file,
an engine of another version) and a layer name that does not exist are said, and the window
still shows something; the command line refuses bad names and missing paths at once."""

from __future__ import annotations

import pytest

import main
from models.sources import DEFAULT_MODEL
from tests.gui.conftest import wait_run


@pytest.fixture
def remembered(settings, tmp_path):
    gone = tmp_path / "gone.pt"
    settings.setValue("model", str(gone))
    settings.setValue("engine", "winograd3")  # an engine of another version
    settings.sync()
    return gone


def test_a_deleted_remembered_model_falls_back_to_the_default(remembered, qtbot, settings) -> None:
    from gui.main_window import MainWindow

    win = MainWindow(settings)
    qtbot.addWidget(win)
    try:
        assert win.wanted.engine == "auto"  # not an engine this version lacks
        win.start()
        wait_run(qtbot, win, timeout=120000)
        assert win.outcome is not None and win.outcome.model.name == DEFAULT_MODEL
        assert win.outcome.request.engine == "auto"
        assert win._message is not None and "does not exist" in win._message.text()
        assert f"Showing {DEFAULT_MODEL} instead" in win._message.text()
        assert str(settings.value("model")) == DEFAULT_MODEL  # the next start does not fail again
    finally:
        for lane in win.workers():
            lane.cancel()
        for lane in win.workers():
            assert lane.wait(30000)


def test_a_model_asked_for_now_gives_way_in_a_window_not_in_a_screenshot(window, qtbot, tmp_path) -> None:
    window.start(model=str(tmp_path / "missing.pt"), fall_back=False)  # what --screenshot asks
    wait_run(qtbot, window)
    assert window.outcome is None  # nothing else shown in its place: the screenshot fails
    assert "does not exist" in (window.last_error or "")
    assert "instead" not in window.last_error
    window.start(model=str(tmp_path / "missing.pt"))  # a window the user works in
    wait_run(qtbot, window, timeout=120000)
    assert window.outcome is not None and window.outcome.model.name == DEFAULT_MODEL
    assert f"Showing {DEFAULT_MODEL} instead" in window._message.text()


def test_an_unknown_layer_is_said_and_the_first_conv_shown(window, qtbot) -> None:
    window.start(model="classic", engine="im2col", layer="edgse")
    wait_run(qtbot, window)
    assert window.outcome is not None
    assert window.current_layer().name == "edges"
    assert "unknown layer 'edgse'" in window.last_error and "did you mean edges" in window.last_error
    assert window.last_error.endswith("; showing edges")


def test_the_command_line_refuses_an_unknown_engine_before_anything(capsys, tmp_path) -> None:
    rc = main.main(["--engine", "nope", "--screenshot", str(tmp_path / "x.png")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "unknown engine 'nope'" in err
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["missing.jpg"], "cannot open missing.jpg: no such file"),
        (["--dataset", "no-such-folder"], "cannot scan no-such-folder: no such folder"),
    ],
)
def test_missing_paths_are_said_before_the_model_loads(capsys, tmp_path, monkeypatch, args, words) -> None:
    import models.sources

    def not_now(*_a, **_k):
        raise AssertionError("the model was loaded before the paths were checked")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(models.sources, "load_model", not_now)
    rc = main.main([*args, "--model", "resnet18", "--export", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and words in err


def test_no_display_is_one_line_not_a_qt_abort(capsys, monkeypatch) -> None:
    for name in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(name, raising=False)
    rc = main.main(["--model", "classic"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "no display" in err and "--screenshot" in err
