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
    code = ("import sys, main; rc = main.main(sys.argv[1:]); "
            "print('QT_IMPORTED' if any(m.startswith(('PySide6', 'pyqtgraph', 'gui')) "
            "for m in sys.modules) else 'NO_QT'); sys.exit(rc)")
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    return subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


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
    assert set(edges) == {"name", "type", "output_shape", "params", "macs", "time_ms", "algorithm",
                          "receptive_field"}
    assert edges["algorithm"].startswith("im2col") and edges["output_shape"] == [1, 9, 224, 224]
    assert edges["receptive_field"] == {"size": [3, 3], "jump": [1, 1], "center": [0.0, 0.0]}
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
    for args in ([str(tmp_path / "x.png")], [str(tmp_path / "missing.jpg")],
                 ["--model", str(tmp_path / "m.pt")]):
        rc = main.main([*args, "--model", "classic", "--export", str(tmp_path / "out")]
                       if "--model" not in args else [*args, "--export", str(tmp_path / "out")])
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
    assert main.main(["--model", str(tmp_path / "gray.pt"), "--input-size", "64,48", "--engine", "direct",
                      "--export", str(out)]) == 0
    doc = json.loads((out / "summary.json").read_text())
    assert doc["input_shape"] == [1, 1, 64, 48]  # channels from the first conv, size as asked
    assert doc["layers"][0]["output_shape"] == [1, 4, 62, 46]
