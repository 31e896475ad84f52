"""The Engines tab's chart: per-layer time by engine, one group of bars per convolution layer,
hover a layer for its name and every engine's time and algorithm."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QVBoxLayout, QWidget

from engine import available_engines
from gui.widgets import steady_label

# one colour per engine in the chart (a qualitative palette, readable on white)
PALETTE = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
]


def short_algorithm(engine: str, algorithm: str | None) -> str:
    """What the engine ran, without repeating the engine's name: "direct" on direct says
    nothing, "auto → winograd F(4x4,3x3)" on auto is "winograd F(4x4,3x3)"."""
    if not algorithm or algorithm == engine:
        return ""
    prefix = f"{engine} → "
    return algorithm[len(prefix) :] if algorithm.startswith(prefix) else algorithm


def run_label(runs: int) -> str:
    return "1 run" if runs == 1 else f"median of {runs}"


class EngineChart(QWidget):
    """The plot (``plot``) and the line under it (``readout``)."""

    def __init__(self) -> None:
        super().__init__()
        self.plot = pg.PlotWidget()
        self.plot.setBackground("w")
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(x=True, y=False)
        self.plot.showGrid(y=True, alpha=0.3)
        self.plot.setLabel("left", "ms per layer")
        self.plot.setLabel("bottom", "convolution layer (hover for its name)")
        self.legend = self.plot.addLegend(offset=(-10, 10))
        self._bars: dict[str, pg.BarGraphItem] = {}
        self._runs: dict[str, dict] = {}
        self._layers: list[str] = []
        self.readout = steady_label("")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.readout)
        self.plot.scene().sigMouseMoved.connect(self._hover)

    def heights(self, engine: str) -> list[float]:
        """The bar heights drawn for ``engine``, one per conv layer in order."""
        bars = self._bars.get(engine)
        return [] if bars is None else [float(h) for h in bars.opts["height"]]

    def draw(self, runs: dict[str, dict], layers: list[str]) -> None:
        """One group of bars per conv layer, one bar per engine that has run."""
        self._runs, self._layers = runs, layers
        for bars in self._bars.values():
            self.plot.removeItem(bars)
        self._bars.clear()
        self.legend.clear()
        engines = list(self._runs)
        if not engines or not self._layers:
            return
        width = 0.8 / len(engines)
        xs = np.arange(len(self._layers), dtype=float)
        for k, e in enumerate(engines):
            run = self._runs[e]
            heights = [run["times"].get(n, 0.0) for n in self._layers]
            color = (
                PALETTE[available_engines().index(e) % len(PALETTE)]
                if e in available_engines()
                else PALETTE[k % len(PALETTE)]
            )
            bars = pg.BarGraphItem(
                x=xs + (k - (len(engines) - 1) / 2) * width,
                height=heights,
                width=width,
                brush=color,
                pen=None,
            )
            self.plot.addItem(bars)
            self.legend.addItem(bars, f"{e} ({run['label']})")
            self._bars[e] = bars
        if len(self._layers) <= 12:
            ticks = [(i, n if len(n) <= 14 else "…" + n[-13:]) for i, n in enumerate(self._layers)]
        else:
            step = max(1, len(self._layers) // 12)
            ticks = [(i, str(i)) for i in range(0, len(self._layers), step)]
        self.plot.getAxis("bottom").setTicks([ticks])
        self.plot.enableAutoRange()

    def _hover(self, scene_pos) -> None:
        vb = self.plot.getPlotItem().getViewBox()
        if not self._layers or not vb.sceneBoundingRect().contains(scene_pos):
            return
        i = round(vb.mapSceneToView(scene_pos).x())
        if not 0 <= i < len(self._layers):
            return
        name = self._layers[i]
        parts = []
        for e, run in self._runs.items():
            if name in run["times"]:
                algo = short_algorithm(e, run["algorithms"].get(name))
                parts.append(f"{e} {run['times'][name]:.2f}" + (f" ({algo})" if algo else ""))
        self.readout.setText(f"{i}: {name} · " + " · ".join(parts) + " ms")
