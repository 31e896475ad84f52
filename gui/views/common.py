"""Pieces the featvis and CAM views share: a picture that scales to its box, a progress bar with
its Cancel button, and NumPy -> QImage."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRect, QSize, Qt, Signal
from PySide6.QtGui import QImage, QPainter
from PySide6.QtWidgets import QHBoxLayout, QProgressBar, QPushButton, QSizePolicy, QWidget


def to_qimage(rgb: np.ndarray) -> QImage:
    """An ``(H, W, 3)`` uint8 array as a QImage owning its pixels (safe on any thread)."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w = rgb.shape[:2]
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def qimage_to_rgb(image: QImage) -> np.ndarray:
    """A QImage's pixels as ``(H, W, 3)`` uint8 (tests and exports read what is drawn)."""
    image = image.convertToFormat(QImage.Format.Format_RGB888)
    w, h = image.width(), image.height()
    data = np.frombuffer(image.constBits(), dtype=np.uint8, count=image.sizeInBytes())
    return data.reshape(h, image.bytesPerLine())[:, : w * 3].reshape(h, w, 3).copy()


class ImagePane(QWidget):
    """One picture, scaled to fit its box with its aspect ratio kept (smoothly), centred across
    the top; a text in its place when there is none. Setting a picture is one assignment and a
    repaint."""

    def __init__(self, placeholder: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._image: QImage | None = None
        self._text = placeholder
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(120, 120)

    def image(self) -> QImage | None:
        return self._image

    def set_image(self, image: QImage | None, text: str = "") -> None:
        self._image, self._text = image, text
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(420, 420)

    def target(self) -> QRect:
        """Where the picture is drawn (empty without one)."""
        if self._image is None or self._image.isNull():
            return QRect()
        iw, ih = self._image.width(), self._image.height()
        scale = min(self.width() / iw, self.height() / ih)
        w, h = max(1, int(iw * scale)), max(1, int(ih * scale))
        return QRect((self.width() - w) // 2, 0, w, h)  # top: the captions sit above

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        if self._image is not None and not self._image.isNull():
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            painter.drawImage(self.target(), self._image)
        elif self._text:
            painter.setPen(self.palette().color(self.foregroundRole()))
            painter.drawText(self.rect().adjusted(12, 12, -12, -12),
                             Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self._text)
        painter.end()


class ProgressRow(QWidget):
    """A progress bar and its Cancel button, shown while a job of the view runs."""

    cancel_clicked = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.bar = QProgressBar()
        self.bar.setTextVisible(True)
        self.button = QPushButton("Cancel")
        self.button.clicked.connect(self.cancel_clicked)
        layout.addWidget(self.bar, 1)
        layout.addWidget(self.button)
        self.setVisible(False)

    def start(self, total: int, text: str) -> None:
        self.bar.setRange(0, max(0, total))
        self.bar.setValue(0)
        self.bar.setFormat(text)
        self.setVisible(True)

    def step(self, done: int, total: int, text: str | None = None) -> None:
        if total and self.bar.maximum() != total:
            self.bar.setRange(0, total)
        self.bar.setValue(done)
        if text is not None:
            self.bar.setFormat(text)

    def stop(self) -> None:
        self.setVisible(False)
