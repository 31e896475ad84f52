"""Small widgets shared by the views."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtWidgets import QLabel, QSizePolicy


def configure_pyqtgraph(antialias: bool = True) -> None:
    """pyqtgraph options the views rely on (the app, the tests and benchmarks/gui.py).

    - images are indexed ``[row, column]``, as NumPy arrays are;
    - no mouse-move rate limit: pyqtgraph drops moves closer than 10 ms apart by default, and
      the last of them too, so the readout could name a unit the mouse had left. Qt already
      merges queued moves, and a hover costs a lookup and a label.
    """
    pg.setConfigOptions(imageAxisOrder="row-major", antialias=antialias, mouseRateLimit=0)


def steady_label(text: str = "", lines: int = 1, wrap: bool = False,
                 width_of: str | None = None) -> QLabel:
    """A label whose text changes often (on every layer step or mouse move) without moving
    anything around it.

    A plain QLabel asks its layout for room on every ``setText``, and an unwrapped label's minimum
    width is its whole text: a long readout widened its pane, the splitter re-balanced, and the
    window repainted everything several times per layer step. This one has a fixed height of
    ``lines`` lines and takes the width its layout gives it (or, with ``width_of``, exactly the
    width of that sample text); text that does not fit is clipped and the whole of it is in the
    tooltip.
    """
    label = _SteadyLabel(text)
    label.setWordWrap(wrap)
    label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
    label.setFixedHeight(lines * label.fontMetrics().lineSpacing() + 6)
    if width_of is not None:
        label.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        label.setFixedWidth(label.fontMetrics().horizontalAdvance(width_of) + 8)
    return label


class _SteadyLabel(QLabel):
    def setText(self, text: str) -> None:
        super().setText(text)
        self.setToolTip(text)
