"""Top-5 classes with probability bars."""

from __future__ import annotations

import html

from PySide6.QtWidgets import QLabel, QProgressBar, QVBoxLayout, QWidget

from gui.widgets import steady_label


class PredictionsView(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = steady_label("<b>Predictions</b>", lines=3, wrap=True)  # and a note
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        self.rows: list[tuple[QLabel, QProgressBar]] = []
        for _ in range(5):
            label, bar = steady_label(), QProgressBar()
            bar.setRange(0, 1000)
            bar.setTextVisible(True)
            bar.setMaximumHeight(14)
            layout.addWidget(label)
            layout.addWidget(bar)
            self.rows.append((label, bar))

    def set_predictions(
        self, predictions: list[tuple[str, float]], pretrained: bool = True, note: str | None = None
    ) -> None:
        if not predictions:
            self.title.setText("<b>Predictions</b>: this model is not a classifier we know")
        else:
            self.title.setText(
                "<b>Predictions</b>"
                + ("" if pretrained else " (untrained: random weights, meaningless)")
                + (f"<br><i>{html.escape(note)}</i>" if note else "")
            )
        self.title.setToolTip(note or "")
        for i, (label, bar) in enumerate(self.rows):
            visible = i < len(predictions)
            label.setVisible(visible)
            bar.setVisible(visible)
            if visible:
                name, p = predictions[i]
                label.setText(name)
                bar.setValue(round(p * 1000))
                bar.setFormat(f"{p:.1%}")

    def labels(self) -> list[str]:
        return [label.text() for label, _ in self.rows if label.isVisible()]
