"""The window shows every model form a user brings as it shows the catalog model itself."""

from __future__ import annotations

import numpy as np
import torch

from models.sources import load_catalog
from tests.gui.conftest import wait_run


def _save_forms(tmp_path) -> dict[str, str]:
    module = load_catalog("mobilenet_v3_small", untrained=True).module
    x = torch.randn(1, 3, 224, 224)
    files = {"torchscript": tmp_path / "net.pt", "export": tmp_path / "net.pt2"}
    torch.jit.save(torch.jit.script(module), files["torchscript"])
    torch.export.save(torch.export.export(module, (x,)), files["export"])
    return {form: str(path) for form, path in files.items()}


def test_torchscript_and_program_files_list_their_layers(classic, qtbot, tmp_path) -> None:
    win = classic
    win.set_untrained(True)  # catalog weights need the network
    wait_run(qtbot, win)
    win.open_model("mobilenet_v3_small")
    wait_run(qtbot, win)
    eager = [la.name for la in win.outcome.result.layers if not la.block]  # files: leaves
    for form, path in _save_forms(tmp_path).items():
        win.open_model(path)
        wait_run(qtbot, win)
        assert win.last_error is None, form
        assert win.outcome.model.source == form
        names = [la.name for la in win.outcome.result.layers]
        leaves = [la.name for la in win.outcome.result.layers if not la.block]
        # every layer that computes something (a no-op Dropout has no op in a compiled file)
        assert leaves == [n for n in eager if n in leaves] and len(leaves) >= len(eager) - 2, form
        assert win.navigator.count() == len(names), form
        assert "0 layers" not in win.status_label.text()
        win.navigator.set_index(names.index("features.9.block.3.0"))  # after several SE blocks
        assert win.current_layer().receptive_field.global_context
        assert "global context" in win.details.text()


def test_channels_last_layers_draw_as_maps(classic, qtbot) -> None:
    win = classic
    win.set_untrained(True)
    wait_run(qtbot, win)
    win.open_model("convnext_tiny")
    wait_run(qtbot, win, timeout=120000)
    assert win.last_error is None
    names = [la.name for la in win.outcome.result.layers]
    win.navigator.set_index(names.index("features.1.0.block.3"))  # Linear over channels, NHWC
    layer = win.current_layer()
    assert layer.channels_last and layer.receptive_field is not None
    maps = win.outcome.result.maps(layer.name)
    assert maps.shape == (384, 56, 56)
    assert win.feature_maps.value(5, 10, 20) == maps[5, 10, 20]
    assert "channels-last" in win.details.text()
    assert np.asarray(win.feature_maps.render_image()).std() > 0
