"""The explainer as a :class:`~gui.view.View`: a thin wrapper until ``gui.explainer`` implements
the protocol itself (then this module goes, and the window lists ``ExplainerView``)."""

from __future__ import annotations

from PySide6.QtWidgets import QScrollArea, QVBoxLayout, QWidget

from gui.explainer import ExplainerView
from gui.view import Shown, View, Window
from gui.worker import Worker


class ExplainTab(View):
    key = "explain"
    title = "Explain the convolution"

    def __init__(self, window: Window | None = None, parent: QWidget | None = None) -> None:
        super().__init__(window, parent)
        self.explainer = ExplainerView()
        # scrolled, so a small window is not held taller than the screen by the explainer's panes
        area = QScrollArea()
        area.setWidget(self.explainer)
        area.setWidgetResizable(True)
        area.setFrameShape(QScrollArea.Shape.NoFrame)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(area)
        self._layer_for: tuple | None = None  # (outcome, layer name) explained
        self._unit_for: tuple | None = None

    def draw(self, shown: Shown) -> None:
        if shown.outcome is None or shown.layer is None:
            self._layer_for = self._unit_for = None
            self.explainer.clear()
            return
        key = (shown.outcome, shown.layer.name)
        if key != self._layer_for:
            self._layer_for, self._unit_for = key, None
            self.explainer.set_layer(shown.outcome.model, shown.outcome.result, shown.layer.name)
        unit = (shown.channel, *shown.unit) if shown.unit and shown.channel is not None else None
        if unit is not None and shown.layer.is_conv and unit != self._unit_for:
            self._unit_for = unit
            self.explainer.set_unit(*unit)

    def workers(self) -> list[Worker]:
        return self.explainer.workers()

    def busy(self) -> bool:
        """Its frame is drawn off the GUI thread: busy until it is (only while shown)."""
        return self.explainer.isVisible() and self.explainer.loading()
