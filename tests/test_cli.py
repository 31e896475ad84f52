"""The command-line contract: --export writes the documented files without Qt; bad input is
one `error:` line and exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import main

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str) -> subprocess.CompletedProcess:
    code = (
        "import sys, main; rc = main.main(sys.argv[1:]); "
        "print('QT_IMPORTED' if any(m.startswith(('PySide6', 'pyqtgraph', 'gui')) "
        "for m in sys.modules) else 'NO_QT'); sys.exit(rc)"
    )
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


def test_export_writes_summary_activations_and_pngs_without_qt(tmp_path) -> None:
    proc = _run("--model", "classic", "--engine", "im2col", "--export", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("NO_QT")
    doc = json.loads((tmp_path / "summary.json").read_text())
    assert set(doc) == {"model", "engine", "image", "input_shape", "predictions", "layers"}
    assert doc["model"] == "classic" and doc["engine"] == "im2col"
    assert doc["input_shape"] == [1, 3, 224, 224] and doc["predictions"] == []
    assert [la["name"] for la in doc["layers"]] == ["edges", "relu1", "pool1", "combine", "relu2", "pool2"]
    edges = doc["layers"][0]
    assert set(edges) == {
        "name",
        "type",
        "output_shape",
        "params",
        "macs",
        "time_ms",
        "algorithm",
        "receptive_field",
    }
    assert edges["algorithm"].startswith("im2col") and edges["output_shape"] == [1, 9, 224, 224]
    assert edges["receptive_field"] == {
        "size": [3, 3],
        "jump": [1, 1],
        "center": [0.0, 0.0],
        "global_context": False,
    }
    assert doc["layers"][3]["receptive_field"]["size"] == [8, 8]
    npz = np.load(tmp_path / "activations.npz")
    assert sorted(npz.files) == sorted(la["name"] for la in doc["layers"])
    assert npz["combine"].shape == (4, 112, 112)
    for name in ("edges", "combine"):
        for kind in ("features", "filters"):
            with Image.open(tmp_path / f"{name}.{kind}.png") as im:
                assert min(im.size) >= 48 and np.asarray(im).std() > 5
    assert not (tmp_path / "relu1.features.png").exists()  # default: conv layers only


@pytest.mark.slow
def test_defaults_are_the_pretrained_model_on_the_sample_cat(tmp_path) -> None:
    proc = _run("--layer", "_blocks.1._depthwise_conv", "--unit", "20,30", "--export", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((tmp_path / "summary.json").read_text())
    assert doc["model"] == "efficientnet_lite0" and doc["engine"] == "auto"
    assert doc["image"] == "sample: chelsea"
    assert len(doc["predictions"]) == 5 and "cat" in doc["predictions"][0]["label"]
    assert sum(p["probability"] for p in doc["predictions"]) <= 1.0
    assert (tmp_path / "_blocks.1._depthwise_conv.rf.png").exists()
    assert (tmp_path / "_blocks.1._depthwise_conv.features.png").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--engine", "cudnn"], "unknown engine 'cudnn'"),
        (["--layer", "edgse"], "unknown layer 'edgse'"),
        (["--unit", "3,4"], "--unit and --explain need --layer"),
        (["--layer", "relu1", "--explain"], "--explain needs a convolution layer"),
        (["--model", "resnet19"], "unknown model 'resnet19'"),
    ],
)
def test_bad_input_is_one_error_line_and_exit_2(tmp_path, capsys, args, message) -> None:
    rc = main.main(["--model", "classic", *args, "--export", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_bad_image_and_bad_model_files(tmp_path, capsys) -> None:
    (tmp_path / "x.png").write_text("not a picture")
    (tmp_path / "m.pt").write_text("not a model")
    for args in (
        [str(tmp_path / "x.png")],
        [str(tmp_path / "missing.jpg")],
        ["--model", str(tmp_path / "m.pt")],
    ):
        rc = main.main(
            [*args, "--model", "classic", "--export", str(tmp_path / "out")]
            if "--model" not in args
            else [*args, "--export", str(tmp_path / "out")]
        )
        err = capsys.readouterr().err
        assert rc == 2 and err.startswith("error: ") and err.count("\n") == 1, err


def test_cli_error_has_no_traceback_in_a_real_process(tmp_path) -> None:
    proc = _run("--model", "classic", "--layer", "nope", "--export", str(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: unknown layer 'nope'") and "Traceback" not in proc.stderr


def test_explain_export_writes_one_gif_for_the_chosen_layer(tmp_path) -> None:
    args = ["--model", "classic", "--layer", "combine", "--explain", "--export", str(tmp_path)]
    assert main.main(args) == 0
    path = tmp_path / "combine.explain.gif"
    with Image.open(path) as gif:
        assert gif.format == "GIF" and gif.n_frames == 36  # 112x112 outputs: a 6x6 block is played
        sizes = set()
        for i in range(gif.n_frames):
            gif.seek(i)
            sizes.add(gif.size)
        assert len(sizes) == 1
    assert not (tmp_path / "edges.explain.gif").exists()  # only the chosen layer


def test_input_size_and_channels_for_a_model_file(tmp_path) -> None:
    import torch
    from torch import nn

    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU()).eval()
    torch.jit.save(torch.jit.script(net), tmp_path / "gray.pt")
    out = tmp_path / "out"
    assert (
        main.main(
            [
                "--model",
                str(tmp_path / "gray.pt"),
                "--input-size",
                "64,48",
                "--engine",
                "direct",
                "--export",
                str(out),
            ]
        )
        == 0
    )
    doc = json.loads((out / "summary.json").read_text())
    assert doc["input_shape"] == [1, 1, 64, 48]  # channels from the first conv, size as asked
    assert doc["layers"][0]["output_shape"] == [1, 4, 62, 46]


class _Mkdir:
    """Unpickling this creates the folder ``path``: proof that code from the file ran."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (self.path,))


def _hostile(tmp_path: Path, case: str) -> list[str]:
    """The arguments of one hostile case, with the files it needs made in ``tmp_path``."""
    import torch
    from torch import nn

    from tests.models.pt2_traps import trapped_program

    marker = str(tmp_path / "ran")
    script = tmp_path / "script.pt"
    torch.jit.save(torch.jit.script(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())), script)
    files = {
        "text.pt": b"hello",
        "text.pt2": b"hello",
        "text.pth": b"hello",
        "empty.pt": b"",
        "truncated.pt": script.read_bytes()[:300],
    }
    if case in files:
        (tmp_path / case).write_bytes(files[case])
        return ["--model", str(tmp_path / case)]
    if case == "trapped.pth":
        torch.save({"weights": _Mkdir(marker)}, tmp_path / case)
        return ["--model", str(tmp_path / case)]
    if case in ("trapped.pt2", "trapped-named.pt"):
        return ["--model", str(trapped_program("sample_inputs", tmp_path / case, Path(marker)))]
    if case == "zero-channel conv":
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            zero = nn.Sequential(nn.Conv2d(3, 0, 3), nn.Conv2d(0, 2, 1))
        torch.jit.save(torch.jit.script(zero), tmp_path / "zero.pt")
        return ["--model", str(tmp_path / "zero.pt")]
    if case == "state dict, no --arch":
        torch.save(nn.Conv2d(3, 4, 3).state_dict(), tmp_path / "w.pth")
        return ["--model", str(tmp_path / "w.pth")]
    if case == "--unit outside a TorchScript layer":
        return ["--model", str(script), "--layer", "0", "--unit", "9999,9999"]
    if case == "export folder is a file":
        (tmp_path / "out").write_text("mine")
        return ["--model", "classic"]
    return {
        "--input-size 100000": ["--model", "classic", "--input-size", "100000"],
        "--input-size 4": ["--model", "classic", "--input-size", "4"],
        "--input-size abc": ["--model", "classic", "--input-size", "abc"],
        "--channels 2": ["--model", "classic", "--channels", "2"],
        "unknown option": ["--model", "classic", "--bogus"],
        "unknown engine": ["--model", "classic", "--engine", "cudnn"],
        "unknown layer": ["--model", "classic", "--layer", "nope"],
        "unknown model": ["--model", "resnet19"],
        "missing model file": ["--model", str(tmp_path / "missing.pt")],
    }[case]


HOSTILE = {  # case -> words the one line must hold
    "text.pt": "not a model file",
    "text.pt2": "not a model file",
    "text.pth": "not a model file",
    "empty.pt": "is empty",
    "truncated.pt": "damaged or truncated",
    "trapped.pth": "--trust-model",
    "trapped.pt2": "--trust-model",
    "trapped-named.pt": "--trust-model",
    "zero-channel conv": "expected weight to be at least 1",
    "state dict, no --arch": "--arch",
    "--unit outside a TorchScript layer": "outside",
    "export folder is a file": "not a folder",
    "--input-size 100000": "too large",
    "--input-size 4": "at least 8",
    "--input-size abc": "expected H or H,W",
    "--channels 2": "invalid choice",
    "unknown option": "unrecognized arguments: --bogus",
    "unknown engine": "unknown engine 'cudnn'",
    "unknown layer": "unknown layer 'nope'",
    "unknown model": "unknown model 'resnet19'",
    "missing model file": "does not exist",
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_input_is_one_error_line_and_exit_2(tmp_path, capsys, case) -> None:
    args = _hostile(tmp_path, case)
    rc = main.main([*args, "--export", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert rc == 2, captured.err
    assert captured.err.startswith("error: ") and captured.err.count("\n") == 1, captured.err
    assert HOSTILE[case] in captured.err
    assert not (tmp_path / "ran").exists()  # no code from a file ran
    if case != "export folder is a file":
        assert not (tmp_path / "out").exists()  # nothing written, not even a folder


@pytest.mark.parametrize("case", ["text.pt2", "unknown option", "--unit outside a TorchScript layer"])
def test_hostile_input_in_a_real_process_is_one_line(tmp_path, case) -> None:
    # torch logs (a 12-line traceback for a text file named .pt2) and warns (TorchScript's
    # FutureWarning) straight to stderr: only a real process shows them
    proc = _run(*_hostile(tmp_path, case), "--export", str(tmp_path / "out"))
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1, proc.stderr


def test_unit_on_a_torchscript_model_draws_its_fields(tmp_path, capsys) -> None:
    args = _hostile(tmp_path, "--unit outside a TorchScript layer")[:2]
    out = tmp_path / "out"
    assert main.main([*args, "--layer", "0", "--unit", "1,1", "--export", str(out)]) == 0
    rf = np.asarray(Image.open(out / "0.rf.png"))
    assert rf.ndim == 3 and rf.shape[2] == 3 and rf.std() > 0  # a picture, not a blank


def test_a_torchscript_export_writes_nothing_on_stderr(tmp_path) -> None:
    args = _hostile(tmp_path, "--unit outside a TorchScript layer")[:2]
    proc = _run(*args, "--engine", "direct", "--export", str(tmp_path / "out"))
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


@pytest.mark.parametrize("shape", [(1, 10000), (2, 60000)])
def test_a_thin_strip_photo_runs(tmp_path, capsys, shape) -> None:
    h, w = shape
    Image.new("RGB", (w, h), (10, 200, 30)).save(tmp_path / "strip.png")
    out = tmp_path / "out"
    assert main.main([str(tmp_path / "strip.png"), "--model", "classic", "--export", str(out)]) == 0
    assert json.loads((out / "summary.json").read_text())["input_shape"] == [1, 3, 224, 224]


def test_a_catalog_model_takes_input_size(tmp_path) -> None:
    out = tmp_path / "out"
    assert main.main(["--model", "classic", "--input-size", "64,96", "--export", str(out)]) == 0
    doc = json.loads((out / "summary.json").read_text())
    assert doc["input_shape"] == [1, 3, 64, 96] and doc["layers"][0]["output_shape"] == [1, 9, 64, 96]


def _strict_json(text: str) -> dict:
    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_summary_is_valid_json_when_the_model_outputs_nan(tmp_path) -> None:
    import torch
    import torchvision

    torch.manual_seed(0)
    state = torchvision.models.squeezenet1_1().state_dict()
    state["classifier.1.bias"][:] = float("nan")  # every logit NaN: so is every probability
    torch.save(state, tmp_path / "nan.pth")
    out = tmp_path / "out"
    args = [
        "--model",
        str(tmp_path / "nan.pth"),
        "--arch",
        "squeezenet1_1",
        "--layer",
        "classifier.1",
        "--export",
        str(out),
    ]
    assert main.main(args) == 0
    text = (out / "summary.json").read_text()
    doc = _strict_json(text)  # plain json.dumps wrote NaN, which is no JSON
    assert len(doc["predictions"]) == 5
    assert all(p["probability"] is None for p in doc["predictions"])
    assert doc["non_finite"] == [f"predictions.{i}.probability" for i in range(5)]
    assert np.isnan(np.load(out / "activations.npz")["classifier.1"]).all()


def test_summary_lists_where_values_were_not_finite() -> None:
    from models.export import _finite

    found: list[str] = []
    doc = _finite(
        {
            "predictions": [{"label": "a", "probability": float("nan")}],
            "layers": [{"time_ms": float("inf"), "params": 3}],
        },
        "",
        found,
    )
    assert doc == {
        "predictions": [{"label": "a", "probability": None}],
        "layers": [{"time_ms": None, "params": 3}],
    }
    assert found == ["predictions.0.probability", "layers.0.time_ms"]


def test_a_failed_export_leaves_no_half_export_and_keeps_the_users_files(
    tmp_path, monkeypatch, capsys
) -> None:
    from models import render

    out = tmp_path / "results"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / "summary.json").write_text('{"old": true}')
    calls = []
    original = render.save_png

    def failing(image, path):
        calls.append(path)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        return original(image, path)

    monkeypatch.setattr(render, "save_png", failing)
    assert main.main(["--model", "classic", "--export", str(out)]) == 2
    assert "No space left on device" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "summary.json"]
    assert json.loads((out / "summary.json").read_text()) == {"old": True}  # not half replaced
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]  # no staging folder left
    fresh = tmp_path / "new" / "deeper"
    calls.clear()
    assert main.main(["--model", "classic", "--export", str(fresh)]) == 2
    assert not (tmp_path / "new").exists()
    monkeypatch.setattr(render, "save_png", original)
    assert main.main(["--model", "classic", "--export", str(out)]) == 0  # a full export now
    assert (out / "notes.txt").read_text() == "mine" and (out / "edges.features.png").exists()
    assert json.loads((out / "summary.json").read_text())["model"] == "classic"
    assert oct(out.stat().st_mode & 0o777) != "0o700"


def test_a_move_that_fails_takes_every_file_back(tmp_path, monkeypatch, capsys) -> None:
    out = tmp_path / "results"
    out.mkdir()
    (out / "summary.json").write_text('{"old": true}')
    (out / "combine.filters.png").mkdir()  # a folder where a file would go
    assert main.main(["--model", "classic", "--export", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "combine.filters.png" in err and "folder" in err
    assert ".convscope-export" not in err
    assert sorted(p.name for p in out.iterdir()) == ["combine.filters.png", "summary.json"]
    assert json.loads((out / "summary.json").read_text()) == {"old": True}
    (out / "combine.filters.png").rmdir()
    # a move that fails halfway (after some files replaced theirs): all put back
    from models import export

    real, moves = os.replace, []

    def failing(src, dst):
        moves.append(dst)
        if len(moves) == 5:
            raise OSError(5, "Input/output error")
        return real(src, dst)

    monkeypatch.setattr(export.os, "replace", failing)
    assert main.main(["--model", "classic", "--export", str(out)]) == 2
    assert "Input/output error" in capsys.readouterr().err
    monkeypatch.setattr(export.os, "replace", real)
    assert sorted(p.name for p in out.iterdir()) == ["summary.json"]
    assert json.loads((out / "summary.json").read_text()) == {"old": True}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]


def test_a_terminated_export_leaves_no_staging_folder(tmp_path) -> None:
    import signal
    import time

    out = tmp_path / "out"
    proc = subprocess.Popen(
        [
            sys.executable,
            "main.py",
            "--model",
            "classic",
            "--export",
            str(out),
            "--layer",
            "edges",
            "--explain",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not any(
        p.name.startswith(".convscope-export") for p in tmp_path.iterdir()
    ):
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert proc.returncode in (0, 143)  # finished first, or stopped
    assert not any(p.name.startswith(".convscope-export") for p in tmp_path.iterdir())
