"""A wrapped caption that is as tall as its text needs at the width it is given.

:func:`gui.widgets.steady_label` reserves a fixed number of lines, and a wrapped text longer than
that was clipped at the top and the bottom (a filters caption at 1024x700). This one re-measures
its height when its text or its width changes (not on every mouse move: captions change per layer),
between ``min_lines`` and ``max_lines``; beyond ``max_lines`` the whole text is in the tooltip.
"""

from __future__ import annotations

from PySide6.QtGui import Qt, QTextDocument
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget


class FitLabel(QLabel):
    def __init__(
        self, text: str = "", min_lines: int = 1, max_lines: int = 4, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.min_lines, self.max_lines = min_lines, max_lines
        self.setWordWrap(True)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.setText(text)

    def setText(self, text: str) -> None:
        super().setText(text)
        self.setToolTip(text)
        self._fit()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if event.oldSize().width() != event.size().width():
            self._fit()

    def lines_needed(self) -> int:
        """Lines the text takes at the current width (a hidden label: its width so far)."""
        doc = QTextDocument()  # heightForWidth answers within the fixed height set before
        doc.setDefaultFont(self.font())
        doc.setDocumentMargin(0)
        if Qt.mightBeRichText(self.text()):
            doc.setHtml(self.text())
        else:
            doc.setPlainText(self.text())
        margins = self.contentsMargins()
        doc.setTextWidth(max(self.width() - margins.left() - margins.right(), 50))
        height = int(doc.size().height() + 0.5)
        return max(1, -(-height // self.fontMetrics().lineSpacing()))

    def _fit(self) -> None:
        lines = min(max(self.lines_needed(), self.min_lines), self.max_lines)
        height = lines * self.fontMetrics().lineSpacing() + 6
        if height != self.height() or self.minimumHeight() != height:
            self.setFixedHeight(height)
