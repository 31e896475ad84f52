"""``main.py --dataset DIR --export OUT``: montages and JSON of the top-k, one-line errors, no Qt."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

import main
from models.sources import load_model
from models.topk import Store, export, labels, scan
from tests.models.topk_folders import bars_folder, expected_top

ROOT = Path(__file__).resolve().parent.parent


def _run(cache: Path, *args: str) -> subprocess.CompletedProcess:
    code = (
        "import sys, main; rc = main.main(sys.argv[1:]); "
        "print('QT_IMPORTED' if any(m.startswith(('PySide6', 'pyqtgraph', 'gui')) "
        "for m in sys.modules) else 'NO_QT'); sys.exit(rc)"
    )
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", CONVSCOPE_CACHE=str(cache))
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


def test_dataset_export_writes_a_montage_and_the_entries_per_layer(tmp_path) -> None:
    made = bars_folder(tmp_path / "imgs", size=64)
    (tmp_path / "imgs" / "broken.jpg").write_bytes(b"nope")
    args = [
        "--dataset",
        str(tmp_path / "imgs"),
        "--model",
        "classic",
        "--input-size",
        "64",
        "--engine",
        "reference",
        "--topk",
        "3",
        "--topk-channels",
        "6",
    ]
    proc = _run(tmp_path / "cache", *args, "--export", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().endswith("NO_QT")
    assert "classic on reference: 14 images (14 run now, 0 from the cache), 1 file skipped" in proc.stdout
    assert "1 file skipped (not readable as images): broken.jpg (every .topk.json lists" in proc.stdout
    assert (
        "wrote the top 3 of each of the 2 conv layers (montages: up to 6 channels each, "
        f"the JSON: all): 4 files in {tmp_path / 'out'}"
    ) in proc.stdout
    assert "scanning" in proc.stderr and "15/15 images" in proc.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "combine.topk.json",
        "combine.topk.png",
        "edges.topk.json",
        "edges.topk.png",
    ]
    text = (tmp_path / "out" / "edges.topk.json").read_text()
    assert "\n" not in text and ": " not in text  # compact
    doc = json.loads(text)
    assert doc["k"] == 3 and doc["channels"] == 9 and doc["montage_channels"] == 6
    assert doc["images"] == 15 and doc["unreadable"] == 1
    assert [s["path"] for s in doc["skipped"]] == [str((tmp_path / "imgs" / "broken.jpg").resolve())]
    assert "not an image file" in doc["skipped"][0]["reason"] and "\n" not in doc["skipped"][0]["reason"]
    assert [t["channel"] for t in doc["top"]] == list(range(9))  # the JSON has every channel
    sobel_x = doc["top"][3]["entries"]
    assert [Path(e["image"]).name for e in sobel_x] == expected_top(made, "v", 3)
    assert [e["rank"] for e in sobel_x] == [0, 1, 2]
    # the same entries the API gives (an independent scan, in another store)
    model = load_model("classic", input_size=(64, 64))
    api = scan(model, tmp_path / "imgs", "reference", k=3, store=Store(tmp_path / "api.db"))
    for entry, e in zip(api.entries("edges", 3), sobel_x, strict=True):
        assert (str(entry.path), entry.value, [entry.y, entry.x]) == (e["image"], e["value"], e["unit"])
        assert e["box"] == [entry.y - 1.0, entry.x - 1.0, entry.y + 2.0, entry.x + 2.0]
        assert e["crop"] == [
            max(entry.y - 1, 0),
            max(entry.x - 1, 0),
            min(entry.y + 2, 64),
            min(entry.x + 2, 64),
        ]
    with Image.open(tmp_path / "out" / "edges.topk.png") as im:
        rgb = np.asarray(im.convert("RGB"))
    line = labels.line_height(export.TEXT)
    top, cell_h, left = 5 * line + 4, 64 + 2 * line + 2, export.label_width()  # 1 skipped: 5 lines
    assert rgb.shape == (top + 6 * (cell_h + 2) - 2, left + 3 * 66 - 2, 3)  # 6 rows of 3 crops
    # row 3, first crop: a vertical edge, dark on the left and bright on the right
    cell = rgb[top + 3 * (cell_h + 2) : top + 3 * (cell_h + 2) + 64, left : left + 64].astype(int)
    assert cell[20, 6:20].mean() < cell[20, -20:-6].mean() - 50
    # a second run reads the cache: nothing is run again, and it says so (no "0.0 images/s")
    again = _run(tmp_path / "cache", *args, "--layer", "edges", "--export", str(tmp_path / "out2"))
    assert again.returncode == 0, again.stderr
    assert "classic on reference: 14 images (all 14 from the cache), 1 file skipped" in again.stdout
    assert (
        "wrote the top 3 of layer edges (channels 0-5 of 9 in the montage, all in the JSON): "
        f"2 files in {tmp_path / 'out2'}"
    ) in again.stdout
    assert "all 15 images cached: nothing to run" in again.stderr and "images/s" not in again.stderr
    assert sorted(p.name for p in (tmp_path / "out2").iterdir()) == ["edges.topk.json", "edges.topk.png"]
    one = _run(
        tmp_path / "cache",
        *args[:-2],
        "--topk-channels",
        "4",
        "--layer",
        "combine",
        "--export",
        str(tmp_path / "out3"),
    )
    assert ("wrote the top 3 of layer combine (all 4 channels): 2 files in") in one.stdout


def test_an_empty_file_is_skipped_as_empty(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("CONVSCOPE_CACHE", str(tmp_path / "cache"))
    bars_folder(tmp_path / "imgs", vertical=2, horizontal=1, blank=0)
    (tmp_path / "imgs" / "zero.jpg").write_bytes(b"")
    args = ["--model", "classic", "--engine", "reference", "--topk", "2", "--layer", "edges"]
    assert main.main([*args, "--dataset", str(tmp_path / "imgs"), "--export", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert "1 file skipped (not readable as images): zero.jpg" in out
    doc = json.loads((tmp_path / "o" / "edges.topk.json").read_text())
    assert doc["skipped"] == [
        {"path": str((tmp_path / "imgs" / "zero.jpg").resolve()), "reason": "empty file (0 bytes)"}
    ]
    assert (doc["images"], doc["scanned"], doc["unreadable"]) == (4, 3, 1)


def test_dataset_errors_are_one_line(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("CONVSCOPE_CACHE", str(tmp_path / "cache"))
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "a.png").write_bytes(b"not a png")
    bars_folder(tmp_path / "imgs", vertical=2, horizontal=0, blank=0)
    cases = [
        (["--dataset", str(tmp_path / "empty")], "no images in"),
        (["--dataset", str(tmp_path / "missing")], "no such folder"),
        (["--dataset", str(tmp_path / "bad")], "none of the 1 images"),
        (["--dataset", str(tmp_path / "imgs"), "--layer", "edgs"], "unknown layer 'edgs'"),
        (["--dataset", str(tmp_path / "imgs"), "--layer", "relu1"], "is not a convolution"),
        (["--dataset", str(tmp_path / "imgs"), "--topk", "0"], "positive integer"),
        (["photo.png", "--dataset", str(tmp_path / "imgs")], "without IMAGE"),
    ]
    for extra, message in cases:
        rc = main.main(["--model", "classic", *extra, "--export", str(tmp_path / "o")])
        err = capsys.readouterr().err
        lines = [line for line in err.replace("\r", "\n").splitlines() if line.strip()]
        assert rc == 2, (extra, err)
        assert lines[-1].startswith("error: ") and message in lines[-1], (extra, err)
        assert not any(line.startswith("Traceback") for line in lines)
    assert not (tmp_path / "o").exists()
    assert main.main(["--dataset", str(tmp_path / "imgs")]) == 2
    assert "use it with --export" in capsys.readouterr().err
    # where the files go is checked before the scan, not after it
    (tmp_path / "afile").write_text("x")
    for out, message in (
        (tmp_path / "afile", "exists and is not a folder"),
        ("/proc/x", "cannot write into /proc"),
    ):
        rc = main.main(["--model", "classic", "--dataset", str(tmp_path / "imgs"), "--export", str(out)])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and err[-1].startswith("error: ") and message in err[-1], err
        assert ".convscope-export" not in err[-1] and len(err) == 1  # no scan ran, no temp name shown


def test_ctrl_c_stores_what_was_scanned_and_the_next_run_resumes(tmp_path) -> None:
    import signal

    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(800):
        Image.fromarray(rng.integers(0, 255, (48, 48, 3), dtype=np.uint8)).save(folder / f"{i:04d}.png")
    code = "import sys, main; sys.exit(main.main(sys.argv[1:]))"
    args = [
        "--dataset",
        str(folder),
        "--model",
        "classic",
        "--engine",
        "reference",
        "--layer",
        "edges",
        "--export",
        str(tmp_path / "out"),
    ]
    env = dict(os.environ, CONVSCOPE_CACHE=str(tmp_path / "cache"))
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args], cwd=ROOT, env=env, stderr=subprocess.PIPE, stdout=subprocess.PIPE
    )
    seen = b""
    while b"images/s" not in seen:  # the first batch is done
        byte = proc.stderr.read(1)
        assert byte, seen
        seen += byte
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, (seen + err).decode()
    assert b"run the same command again to resume" in err
    assert not (tmp_path / "out").exists()
    again = _run(tmp_path / "cache", *args)
    assert again.returncode == 0, again.stderr
    reused = int(again.stdout.split(" run now, ")[1].split(" from the cache")[0])
    assert 0 < reused < 800


def test_an_export_inside_the_scanned_folder_is_not_scanned_next_time(tmp_path, monkeypatch, capsys) -> None:
    bars_folder(tmp_path / "imgs", size=64)
    monkeypatch.setenv("CONVSCOPE_CACHE", str(tmp_path / "cache"))
    args = ["--dataset", str(tmp_path / "imgs"), "--model", "classic", "--input-size", "64", "--topk", "3"]
    out = tmp_path / "imgs" / "out"
    assert main.main([*args, "--export", str(out)]) == 0
    first = capsys.readouterr().out
    assert any(p.suffix == ".png" for p in out.iterdir())  # montages now lie inside the folder
    assert main.main([*args, "--export", str(out)]) == 0
    second = capsys.readouterr().out
    assert "classic on auto: 14 images (14 run now" in first
    assert "classic on auto: 14 images (all 14 from the cache)" in second, second
    entries = json.loads(next(out.glob("*.topk.json")).read_text())
    assert entries["images"] == 14
    assert not any("/out/" in e["image"] for ch in entries["top"] for e in ch["entries"])


def test_montages_of_an_earlier_export_are_not_photos(tmp_path, monkeypatch, capsys) -> None:
    bars_folder(tmp_path / "imgs", size=64)
    monkeypatch.setenv("CONVSCOPE_CACHE", str(tmp_path / "cache"))
    args = ["--dataset", str(tmp_path / "imgs"), "--model", "classic", "--input-size", "64", "--topk", "3"]
    assert main.main([*args, "--export", str(tmp_path / "imgs" / "out")]) == 0
    assert main.main([*args, "--layer", "edges", "--export", str(tmp_path / "imgs" / "out2")]) == 0
    second = capsys.readouterr().out.splitlines()
    assert [line for line in second if line.startswith("classic on auto")][-1].startswith(
        "classic on auto: 14 images (all 14 from the cache)"
    )


def test_montage_channels_are_capped_while_parsing(capsys, tmp_path) -> None:
    rc = main.main(["--dataset", str(tmp_path), "--topk-channels", "100000", "--export", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "--topk-channels: at most 256 channels per montage" in err
