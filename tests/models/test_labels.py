"""Class names: labels files, the honest guess for 1000 outputs, indices otherwise."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

import main
from models.errors import ModelError
from models.labels import read_labels, top_predictions
from models.sources import imagenet_categories, load_model


def test_labels_files_in_every_form(tmp_path) -> None:
    (tmp_path / "a.txt").write_text("cat\n\ndog\nbird\n")
    (tmp_path / "b.json").write_text(json.dumps(["cat", "dog"]))
    (tmp_path / "c.json").write_text(json.dumps({"1": ["n02", "dog"], "0": ["n01", "cat"]}))
    assert read_labels(tmp_path / "a.txt") == ["cat", "dog", "bird"]
    assert read_labels(tmp_path / "b.json") == ["cat", "dog"]
    assert read_labels(tmp_path / "c.json") == ["cat", "dog"]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "no class names"),
        ("[1, 2", "not valid JSON"),
        ('{"a": "x"}', "class indices"),
        ('{"0": "x", "2": "y"}', "must run 0..1"),
    ],
)
def test_bad_labels_files_are_one_line(tmp_path, text: str, words: str) -> None:
    (tmp_path / "l.json").write_text(text)
    with pytest.raises(ModelError, match=words):
        read_labels(tmp_path / "l.json")
    with pytest.raises(ModelError, match="does not exist"):
        read_labels(tmp_path / "missing.txt")


def test_predictions_name_what_they_can_and_say_when_they_guess() -> None:
    logits = np.zeros(1000)
    logits[281] = 5.0  # ImageNet's "tabby"
    top, note = top_predictions(logits, None, imagenet=imagenet_categories())
    assert top[0][0] == imagenet_categories()[281] and "a guess" in note
    top, note = top_predictions(np.array([0.1, 3.0, 0.2]), None)
    assert top[0][0] == "class 1" and "indices" in note
    assert abs(sum(p for _, p in top) - 1.0) < 1e-9
    top, note = top_predictions(np.array([0.1, 3.0, 0.2]), ["a", "b", "c"])
    assert top[0] == ("b", pytest.approx(top[0][1])) and note is None
    _, note = top_predictions(np.array([0.1, 3.0, 0.2]), ["a", "b"])
    assert "name 2 classes but the model has 3 outputs" in note


def test_a_model_file_takes_labels_mean_and_std(tmp_path, capsys) -> None:
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
    path = tmp_path / "net.pt"
    torch.jit.save(torch.jit.script(net.eval()), path)
    (tmp_path / "labels.txt").write_text("red\ngreen\nblue\n")
    model = load_model(
        str(path), mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), labels=tmp_path / "labels.txt"
    )
    assert model.preprocess.mean == (0.5, 0.5, 0.5) and model.preprocess.std == (0.25,) * 3
    assert model.categories == ["red", "green", "blue"]
    with pytest.raises(ModelError, match="mean needs 3 values"):
        load_model(str(path), mean=(0.5,))
    out = tmp_path / "out"
    assert (
        main.main(["--model", str(path), "--labels", str(tmp_path / "labels.txt"), "--export", str(out)]) == 0
    )
    doc = json.loads((out / "summary.json").read_text())
    assert {p["label"] for p in doc["predictions"]} == {"red", "green", "blue"}
    assert "predictions_note" not in doc
    assert main.main(["--model", str(path), "--std", "0,1,1", "--export", str(out)]) == 2
    assert capsys.readouterr().err.strip().endswith("std values must be positive")
