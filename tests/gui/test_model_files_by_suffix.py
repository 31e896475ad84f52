"""The open dialog and drag-and-drop know a model file by the one list of suffixes."""

from __future__ import annotations

import pytest
import torch
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from torch import nn

from models.sources import MODEL_SUFFIXES
from tests.gui.conftest import wait_run


def test_the_open_dialog_lists_every_model_suffix() -> None:
    from gui.main_window import MODEL_FILTER

    assert all(f"*{suffix}" in MODEL_FILTER.split(";;")[0] for suffix in MODEL_SUFFIXES)


@pytest.mark.parametrize("suffix", [".bin", ".PTH"])
def test_a_dropped_model_file_opens_as_a_model(classic, qtbot, tmp_path, suffix) -> None:
    # a dropped .bin model used to be opened as an image ("not an image file")
    net = nn.Sequential(nn.Conv2d(3, 5, 3), nn.ReLU()).eval()
    path = tmp_path / f"weights{suffix}"
    torch.jit.save(torch.jit.script(net), path)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    classic.dropEvent(
        QDropEvent(
            QPointF(10, 10),
            Qt.DropAction.CopyAction,
            mime,
            Qt.MouseButton.LeftButton,
            Qt.KeyboardModifier.NoModifier,
        )
    )
    wait_run(qtbot, classic)
    assert classic.last_error is None
    assert classic.outcome.model.name == str(path) and classic.outcome.model.source == "torchscript"
