"""The player's controls: first/back/play/forward with the style's icons, a slider, speed,
filter, the page of input channels drawn, the GIF export and a status line."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QStyle,
    QVBoxLayout,
    QWidget,
)

SPEEDS = {"0.5×": 1600, "1×": 800, "2×": 400, "4×": 200, "8×": 100}  # ms per step


class PlayerBar(QWidget):
    """Widgets only; the explainer connects them."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        icon = self.style().standardIcon
        pix = QStyle.StandardPixmap
        self.play_icon, self.pause_icon = icon(pix.SP_MediaPlay), icon(pix.SP_MediaPause)
        self.first_button = QPushButton(icon(pix.SP_MediaSkipBackward), "")
        self.first_button.setToolTip("back to the first position")
        self.back_button = QPushButton(icon(pix.SP_MediaSeekBackward), "")
        self.back_button.setToolTip("one step back")
        self.play_button = QPushButton(self.play_icon, "Play")
        self.play_button.setToolTip("play / pause")
        self.forward_button = QPushButton(icon(pix.SP_MediaSeekForward), "")
        self.forward_button.setToolTip("one step forward")
        self.position_slider = QSlider(Qt.Orientation.Horizontal)
        self.position_slider.setToolTip("scrub through the positions")
        self.step_label = QLabel()
        self.speed_combo = QComboBox()
        self.speed_combo.addItems(list(SPEEDS))
        self.speed_combo.setCurrentText("2×")
        self.speed_combo.setToolTip("animation speed")
        self.filter_spin = QSpinBox()
        self.filter_spin.setToolTip("which filter (= output channel) is explained")
        self.next_filter_button = QPushButton("Next filter")
        self.next_filter_button.setToolTip("the next filter fills the next output channel")
        self.page_label = QLabel("Channels")
        self.page_spin = QSpinBox()
        self.page_spin.setToolTip("which input channels are drawn (all of them are summed)")
        self.page_spin.setMinimum(1)
        self.export_button = QPushButton("Export GIF…")
        self.gif_progress = QProgressBar()
        self.gif_progress.setMaximumWidth(120)
        self.gif_progress.setVisible(False)
        self.gif_cancel_button = QPushButton("Cancel export")
        self.gif_cancel_button.setVisible(False)
        self.status = QLabel()
        self.status.setStyleSheet("color: gray")
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.status.setMinimumWidth(60)
        self.set_pages(1, 0, ())
        row = QHBoxLayout()
        for w in (self.first_button, self.back_button, self.play_button, self.forward_button):
            row.addWidget(w)
        row.addWidget(self.position_slider, 1)
        row.addWidget(self.step_label)
        row2 = QHBoxLayout()  # two rows: the tab fits beside the photo and the layer list
        for w in (
            QLabel("Speed"),
            self.speed_combo,
            QLabel("Filter"),
            self.filter_spin,
            self.next_filter_button,
        ):
            row2.addWidget(w)
        self._rows = (row, row2, QHBoxLayout())  # the third row only in a narrow pane
        self._narrow = False
        self._place()
        rows = QVBoxLayout(self)
        rows.setContentsMargins(0, 0, 0, 0)
        for r in self._rows:
            rows.addLayout(r)

    def set_narrow(self, narrow: bool) -> None:
        """Three rows in a narrow pane (the channel page and the export below the rest)."""
        if narrow != self._narrow:
            self._narrow = narrow
            self._place()

    def _place(self) -> None:
        row, row2, row3 = self._rows
        pages, export = (row2, row3) if self._narrow else (row, row2)
        for w in (self.page_label, self.page_spin):
            pages.addWidget(w)  # (moved from the other row if it was there)
        for w in (self.export_button, self.gif_progress, self.gif_cancel_button):
            export.addWidget(w)
        export.addWidget(self.status, 1)

    def set_playing(self, playing: bool) -> None:
        self.play_button.setIcon(self.pause_icon if playing else self.play_icon)
        self.play_button.setText("Pause" if playing else "Play")

    def set_pages(self, pages: int, page: int, channels: tuple[int, ...]) -> None:
        """The page of input channels drawn; hidden when every channel fits on one page."""
        self.page_spin.blockSignals(True)
        self.page_spin.setMaximum(max(pages, 1))
        self.page_spin.setValue(page + 1)
        self.page_spin.setSuffix(f" of {pages}")
        self.page_spin.blockSignals(False)
        if channels:
            span = f"{channels[0]}–{channels[-1]}" if len(channels) > 1 else f"{channels[0]}"
            self.page_spin.setToolTip(f"input channels {span} are drawn (all of them are summed)")
        for w in (self.page_label, self.page_spin):
            w.setVisible(pages > 1)
