"""The Engines tab's table fits its pane: at 1024x700 the auto and reference columns were both
wanted and only auto was in view (reference behind the horizontal scrollbar)."""

from __future__ import annotations

import pytest

LAYERS = [
    "conv1",
    "layer1.0.conv1",
    "layer2.0.conv1",
    "layer2.0.downsample.0",
    "layer3.0.conv2",
    "layer4.1.conv2",
]
ALGORITHMS = {
    "conv1": "auto → im2col+gemm (phase planes, wide rows)",
    "layer1.0.conv1": "auto → winograd F(4x4,3x3)",
    "layer2.0.conv1": "auto → im2col+gemm (phase planes, wide rows)",
    "layer2.0.downsample.0": "auto → im2col+gemm",
    "layer3.0.conv2": "auto → winograd F(2x2,3x3)",
    "layer4.1.conv2": "auto → winograd F(2x2,3x3)",
}


@pytest.fixture
def panel(qtbot):
    from gui.engine_panel import EnginePanel

    view = EnginePanel()
    qtbot.addWidget(view)
    view.resize(470, 600)  # the tab at 1024x700
    view.show()
    yield view
    view.lane.shutdown()


def _times(scale: float) -> dict[str, float]:
    return {n: scale * (i + 1.25) for i, n in enumerate(LAYERS)}


def _in_view(panel) -> list[bool]:
    table = panel.table
    room = table.viewport().width()
    return [
        table.columnViewportPosition(c) + table.columnWidth(c) <= room for c in range(table.columnCount())
    ]


def test_auto_and_reference_are_both_in_view_with_the_whole_algorithm_on_hover(panel, qtbot) -> None:
    panel.reset(LAYERS)
    panel.add_run("auto", _times(10.0), 300.0, 1e-5, algorithms=ALGORITHMS)
    panel.add_run("reference", _times(20.0), 600.0, 0.0)
    qtbot.wait(20)
    assert _in_view(panel) == [True, True] and panel.table.horizontalScrollBar().maximum() == 0
    row = len(panel._header_rows()) + LAYERS.index("conv1")
    item = panel.table.item(row, 0)
    assert panel.cell_text("auto", "conv1") == "12.50 · im2col+gemm"  # details in the tooltip
    assert item.toolTip() == "conv1 on auto: 12.50 ms · im2col+gemm (phase planes, wide rows)"
    assert panel.cell_text("reference", "conv1") == "25.00"


def test_many_engines_share_the_width_and_every_time_stays_readable(panel, qtbot) -> None:
    panel.reset(LAYERS)
    for k, engine in enumerate(["auto", "direct", "im2col", "fft", "winograd", "reference"]):
        algorithms = ALGORITHMS if engine == "auto" else {n: f"{engine} → {engine} tiled (x)" for n in LAYERS}
        panel.add_run(engine, _times(k + 1.0), 100.0 * (k + 1), 1e-5, algorithms=algorithms)
    qtbot.wait(20)
    from gui.engine_panel import MIN_COLUMN

    table = panel.table
    metrics = table.fontMetrics()
    count, room = table.columnCount(), table.viewport().width()
    least = metrics.horizontalAdvance(MIN_COLUMN) + 12
    assert sum(table.columnWidth(c) for c in range(count)) <= max(room, count * least)  # shared
    for c in range(table.columnCount()):
        for r in range(len(panel._header_rows()), table.rowCount()):
            time = table.item(r, c).text().split(" · ")[0]
            assert metrics.horizontalAdvance(time) < table.columnWidth(c)  # never elided away
    # wider panes give the columns their whole contents back
    panel.resize(1400, 600)
    qtbot.wait(20)
    assert all(_in_view(panel))
    widths = [table.columnWidth(c) for c in range(table.columnCount())]
    table.resizeColumnsToContents()
    assert widths == [table.columnWidth(c) for c in range(table.columnCount())]
