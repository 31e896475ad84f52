"""--visualize and --cam: the documented files, without Qt; bad input is one `error:` line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import main

ROOT = Path(__file__).resolve().parent.parent
SMALL = ["--model", "resnet18", "--untrained", "--input-size", "64"]


def _png(path: Path) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def test_visualize_and_cam_write_their_pngs_without_qt(tmp_path) -> None:
    code = (
        "import sys, main; rc = main.main(sys.argv[1:]); "
        "print('QT_IMPORTED' if any(m.startswith(('PySide6', 'pyqtgraph', 'gui')) "
        "for m in sys.modules) else 'NO_QT'); sys.exit(rc)"
    )
    args = [
        *SMALL,
        "--visualize",
        "3",
        "--layer",
        "layer3.1.conv2",
        "--steps",
        "4",
        "--cam",
        "7",
        "--export",
        str(tmp_path),
    ]  # --layer is for both
    proc = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, QT_QPA_PLATFORM="offscreen"),
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("NO_QT")
    assert f"wrote 3 files to {tmp_path}" in proc.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "layer3.1.conv2.cam.original.png",
        "layer3.1.conv2.cam.png",
        "layer3.1.conv2.ch3.vis.png",
    ]
    assert _png(tmp_path / "layer3.1.conv2.ch3.vis.png").shape == (64, 64, 3)
    assert _png(tmp_path / "layer3.1.conv2.cam.png").shape == (64, 64, 3)
    assert _png(tmp_path / "layer3.1.conv2.cam.original.png").shape == (300, 451, 3)  # the cat photo
    assert "layer3.1.conv2 channel 3: activation" in proc.stdout and "after 4 steps (seed 0)" in proc.stdout
    assert "Grad-CAM of cock (" in proc.stdout and "at layer3.1.conv2" in proc.stdout  # ImageNet's 7


def test_cam_defaults_to_the_top_class_at_the_last_conv(tmp_path, capsys) -> None:
    assert main.main([*SMALL, "--cam", "--export", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "layer4.1.conv2.cam.original.png",
        "layer4.1.conv2.cam.png",
    ]
    assert "Grad-CAM of " in capsys.readouterr().out


def test_visualization_file_is_the_seeded_image(tmp_path, capsys) -> None:
    from models import featvis
    from models.sources import load_model

    args = [
        "--model",
        "classic",
        "--input-size",
        "32",
        "--visualize",
        "1",
        "--layer",
        "combine",
        "--steps",
        "6",
        "--seed",
        "5",
    ]
    assert main.main([*args, "--export", str(tmp_path / "a")]) == 0
    assert main.main([*args, "--unit", "4,9", "--export", str(tmp_path / "a")]) == 0
    written = _png(tmp_path / "a" / "combine.ch1.vis.png")
    expected = featvis.visualize(load_model("classic", input_size=(32, 32)), "combine", 1, steps=6, seed=5)
    assert np.array_equal(written, expected.image)
    assert (tmp_path / "a" / "combine.ch1.unit4_9.vis.png").exists()
    assert "feature visualization: step 6/6" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "classic", "--visualize", "0"], "error: --visualize needs --layer NAME"),
        (
            ["--model", "classic", "--visualize", "9", "--layer", "combine", "--steps", "1"],
            "error: channel 9 is outside layer 'combine', which has 4 channels (0..3)",
        ),
        (
            ["--model", "classic", "--visualize", "0", "--layer", "combine", "--steps", "0"],
            "error: --steps must be 1 to 4096 (256 is the usual)",
        ),
        (
            ["--model", "classic", "--visualize", "0", "--layer", "combine", "--steps", "1000000"],
            "error: --steps must be 1 to 4096 (256 is the usual)",
        ),
        (
            ["--model", "classic", "--visualize", "0", "--layer", "combine", "--explain"],
            "error: --explain cannot be combined with --visualize or --cam",
        ),
        (
            ["--model", "classic", "--cam"],
            "error: the model's output ([1, 4, 56, 56]) is not one score "
            "per class, so it has no class to explain",
        ),
        (
            [*SMALL, "--cam", "egyptian kat"],
            "error: unknown class 'egyptian kat'; did you mean 'Egyptian cat'",
        ),
        ([*SMALL, "--cam", "1000"], "error: class 1000 is outside the model's 1000 outputs (0..999)"),
        (
            [*SMALL, "--cam", "--layer", "fc"],
            "error: layer 'fc' (Linear, output [1, 1000]) has no "
            "spatial map: a class activation map needs a convolutional layer's maps",
        ),
        (
            [*SMALL, "--cam", "--layer", "avgpool"],
            "error: layer 'avgpool' (AdaptiveAvgPool2d, output [1, 512, 1, 1]) has a 1x1 map",
        ),
        ([*SMALL, "--cam", "--cam-method", "lime"], "error: argument --cam-method: invalid choice"),
    ],
)
def test_bad_requests_are_one_error_line_and_exit_2(args, message, tmp_path, capsys) -> None:
    assert main.main([*args, "--export", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(message), err
    assert not (tmp_path / "out").exists()


def test_visualize_without_export_says_so(capsys) -> None:
    assert main.main(["--model", "classic", "--visualize", "0", "--layer", "combine"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: --visualize and --cam write files: use them with --export DIR"
    )
