"""The layer list as a tree: stages and blocks as rows, stepping, and what survives a new run."""

from __future__ import annotations

import pytest
import torch
from PySide6.QtCore import Qt

from gui.layer_navigator import INDEX, LayerNavigator
from models.layers import LayerInfo
from models.runner import run_model
from models.sources import load_catalog
from tests.gui.conftest import wait_run


@pytest.fixture(scope="module")
def resnet_layers() -> list[LayerInfo]:
    model = load_catalog("resnet18", untrained=True)
    return run_model(model, torch.zeros(1, 3, 64, 64), "reference").layers


@pytest.fixture
def nav(qtbot) -> LayerNavigator:
    widget = LayerNavigator()
    qtbot.addWidget(widget)
    widget.resize(420, 700)
    widget.show()
    return widget


def _names(nav: LayerNavigator, item) -> list[str]:
    return [item.child(i).text(0) for i in range(item.childCount())]


def _row(nav: LayerNavigator, layers: list[LayerInfo], name: str):
    return nav.item([la.name for la in layers].index(name))


def test_stages_hold_blocks_and_blocks_hold_their_layers(nav, resnet_layers) -> None:
    nav.set_layers(resnet_layers)
    top = [nav.tree.topLevelItem(i).text(0) for i in range(nav.tree.topLevelItemCount())]
    assert top == ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool", "fc"]
    layer2 = _row(nav, resnet_layers, "layer2")
    assert _names(nav, layer2) == ["layer2.0", "layer2.1"]
    assert _names(nav, layer2.child(0)) == [
        "layer2.0.conv1",
        "layer2.0.bn1",
        "layer2.0.relu",
        "layer2.0.conv2",
        "layer2.0.bn2",
        "layer2.0.downsample",
        "layer2.0.relu#2",
    ]
    # the stage's row is a layer: its index is the stage's output row, after its blocks
    index = layer2.data(0, INDEX)
    assert resnet_layers[index].name == "layer2" and resnet_layers[index].block
    assert layer2.text(1) == "Sequential" and layer2.text(2) == "128×8×8"
    assert "block output" in layer2.toolTip(0)
    assert layer2.font(0).bold() and _row(nav, resnet_layers, "layer2.0.conv1").font(0).bold()
    assert not _row(nav, resnet_layers, "layer2.0.bn1").font(0).bold()
    # names are cut in the middle, keeping the block and the layer
    assert nav.tree.textElideMode() == Qt.TextElideMode.ElideMiddle


def test_a_new_model_opens_to_its_stages_and_blocks(nav, resnet_layers) -> None:
    nav.set_layers(resnet_layers)
    shown = [resnet_layers[i].name for i in nav.visible_rows()]
    assert "layer2.0" in shown and "layer2.1" in shown  # the blocks of every stage
    assert "layer2.0.conv1" not in shown  # their layers, one click away
    assert len(shown) == 18


def test_selecting_a_block_shows_it_and_stepping_follows_the_rows_shown(nav, resnet_layers, qtbot) -> None:
    nav.set_layers(resnet_layers)
    names = [la.name for la in resnet_layers]
    chosen = []
    nav.layer_changed.connect(chosen.append)
    nav.tree.setCurrentItem(_row(nav, resnet_layers, "layer3"))  # a click on the stage
    assert names[nav.index()] == "layer3" and chosen[-1] == nav.index()
    nav.step(1)  # the next row shown: the stage's first block
    assert names[nav.index()] == "layer3.0"
    nav.step(1)  # a closed block is one row
    assert names[nav.index()] == "layer3.1"
    nav.step(1)
    assert names[nav.index()] == "layer4"
    nav.step(-3)
    assert names[nav.index()] == "layer3"
    nav.step_conv(1)  # the next convolution, inside a closed block: opened to show it
    assert names[nav.index()] == "layer4.0.conv1"
    assert _row(nav, resnet_layers, "layer4.0").isExpanded()
    assert nav.slider.value() == nav.index()
    nav.set_index(0)
    nav.step(-1)  # stays at the first row
    assert nav.index() == 0


def test_opened_and_closed_blocks_survive_a_new_image(nav, resnet_layers) -> None:
    nav.set_layers(resnet_layers)
    _row(nav, resnet_layers, "layer1").setExpanded(False)
    _row(nav, resnet_layers, "layer3.1").setExpanded(True)
    again = [LayerInfo(**{**la.__dict__, "time_ms": 1.0}) for la in resnet_layers]
    at = [la.name for la in again].index("layer2")
    nav.set_layers(again, at)
    assert not _row(nav, again, "layer1").isExpanded()
    assert _row(nav, again, "layer3.1").isExpanded()
    assert nav.index() == at
    nav.set_layers(again, 5)  # a layer inside a closed block: opened to show it
    assert _row(nav, again, "layer1").isExpanded() and nav.item(5).isSelected()


def test_leaf_only_forms_group_their_layers_by_path(nav) -> None:
    def row(name: str, conv: bool = False) -> LayerInfo:
        from engine import make_spec

        spec = (
            make_spec((1, 3, 8, 8), (4, 3, 3, 3), None, (1, 1), (1, 1), (1, 1), 1, "zeros") if conv else None
        )
        return LayerInfo(name, "X", (1, 4, 8, 8), 0, 0, 0.0, None, None, conv=spec)

    layers = [row("stem.0", True), row("stem.1"), row("body.a.conv", True), row("body.a.relu"), row("head")]
    nav.set_layers(layers)
    stem = nav.tree.topLevelItem(0)
    assert stem.text(0) == "stem" and stem.data(0, INDEX) == -1  # a group, not a layer
    assert "group" in stem.toolTip(0)
    body = nav.tree.topLevelItem(1)
    assert _names(nav, body.child(0)) == ["body.a.conv", "body.a.relu"]
    assert nav.visible_rows() == [0, 1, 2, 3, 4]  # small: everything open
    assert nav.layer_rows() == 5 and nav.tree.topLevelItemCount() == 3  # + 3 group rows
    nav.set_index(1)
    nav.step(1)  # over the group rows "body" and "body.a"
    assert nav.index() == 2
    nav.tree.setCurrentItem(body)  # a click on a group leaves the layer as it is
    assert nav.index() == 2


def test_a_block_in_the_window_shows_its_maps(classic, qtbot) -> None:
    win = classic
    win.set_untrained(True)
    wait_run(qtbot, win)
    win.open_model("resnet18")
    wait_run(qtbot, win)
    assert win.last_error is None
    names = [la.name for la in win.outcome.result.layers]
    win.navigator.tree.setCurrentItem(win.navigator.item(names.index("layer2")))
    wait_run(qtbot, win)
    layer = win.current_layer()
    assert layer.name == "layer2" and layer.block and not layer.is_conv
    assert layer.receptive_field is not None and "receptive field" in win.details.text()
    image = win.feature_maps.render_image()
    assert image.shape[0] > 100 and image.std() > 5  # its 128 maps were drawn


def test_long_names_keep_their_stage_and_their_layer(qtbot) -> None:
    from PySide6.QtGui import QFont, QFontMetrics

    from gui.layer_navigator import elide_path

    metrics = QFontMetrics(QFont())
    name = "inception3a.branch2.0.conv"

    def fits(text: str) -> int:
        return metrics.horizontalAdvance(text)

    assert elide_path(name, metrics, fits(name)) == name
    assert elide_path(name, metrics, fits("inception3a.…0.conv")) == "inception3a.…0.conv"
    assert elide_path(name, metrics, fits("inception3a.…conv")) == "inception3a.…conv"
    assert elide_path(name, metrics, fits("…0.conv")) == "…0.conv"
    short = elide_path(name, metrics, fits("…conv") - 1)  # not even the last part: cut inside
    assert fits(short) <= fits("…conv") - 1


def test_a_bold_row_keeps_its_stage_as_its_plain_neighbours_do(nav) -> None:
    """A convolution's row is bold, so wider: it lost its stage ("…0.conv") at widths where its
    plain neighbours kept theirs ("inception4a.…0.bn"). Every row is now measured in bold."""
    from PySide6.QtCore import QRect
    from PySide6.QtGui import QFontMetrics
    from PySide6.QtWidgets import QStyleOptionViewItem

    from engine import make_spec

    spec = make_spec((1, 3, 8, 8), (4, 3, 3, 3), None, (1, 1), (1, 1), (1, 1), 1, "zeros")
    layers = [
        LayerInfo(
            "inception4a.branch3.0.conv", "Conv2d", (1, 4, 8, 8), 0, 0, 0.0, None, None, conv=spec
        ),  # bold
        LayerInfo("inception4a.branch3.1.conv", "Conv2d", (1, 4, 8, 8), 0, 0, 0.0, None, None),
    ]  # the same length, plain
    nav.set_layers(layers)
    assert nav.item(0).font(0).bold() and not nav.item(1).font(0).bold()
    delegate = nav._names
    for width in range(60, 260, 3):
        shown = []
        for i in (0, 1):
            option = QStyleOptionViewItem()
            option.rect = QRect(0, 0, width, 20)
            delegate.initStyleOption(option, nav.tree.indexFromItem(nav.item(i), 0))
            assert QFontMetrics(option.font).horizontalAdvance(option.text) <= width - delegate.MARGIN
            shown.append(option.text)
        assert shown[0].replace("0", "1") == shown[1], width  # the same form, bold or not


@pytest.mark.parametrize(("width", "types"), [(350, True), (280, False)])  # 1600x1000, 1024x700
def test_the_type_column_shows_at_the_default_size(nav, width, types) -> None:
    names = [
        ("conv1", "Conv2d"),
        ("inception4a", "Inception"),
        ("mobile.features.1", "Conv2dNormActivation"),
        ("avgpool", "AdaptiveAvgPool2d"),
        ("scripted.block", "__torch__.torchvision.models.resnet.BasicBlock"),
    ]
    layers = [LayerInfo(n, t, (1, 1024, 14, 14), 0, 0, 0.0, None, None) for n, t in names]
    nav.resize(width, 600)
    nav.set_layers(layers)
    assert nav.tree.isColumnHidden(1) is not types and not nav.tree.isColumnHidden(2)
    assert nav.item(4).text(1) == "BasicBlock"  # the class, not a TorchScript path
    assert nav.item(3).toolTip(1).startswith("avgpool · AdaptiveAvgPool2d")  # elided: whole here
    if types:  # the names keep their room
        assert nav.tree.columnWidth(0) >= 130
