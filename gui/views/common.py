"""Pieces the featvis and CAM views share: a view that computes on a lane of its own
(:class:`LaneView`), a picture that scales to its box, a progress bar with its Cancel button,
and NumPy -> QImage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QRect, QSize, Qt, Signal
from PySide6.QtGui import QImage, QPainter
from PySide6.QtWidgets import QHBoxLayout, QProgressBar, QPushButton, QSizePolicy, QWidget

from gui.view import View, Window
from gui.worker import Worker


class LaneView(View):
    """A tab whose pictures are computed on its own lane, one job per key (what the job
    computes). ``_wanted``: the key shown now; ``_running``: the job's on the lane;
    ``_declined``: the key the user cancelled, not started again by a redraw of the same state
    (a button or another setting asks again). A hidden tab starts nothing and stops its job;
    it asks again when shown."""

    def __init__(self, lane: str, window: Window | None = None, parent: QWidget | None = None) -> None:
        super().__init__(window, parent)
        self.lane = Worker(self, name=lane)
        self._wanted: tuple | None = None
        self._running: tuple | None = None
        self._declined: tuple | None = None

    def workers(self) -> list[Worker]:
        return [self.lane]

    def hideEvent(self, event) -> None:
        super().hideEvent(event)
        if self._running is not None:  # a hidden tab costs nothing: it starts again when shown
            self._running = None
            self.lane.cancel()

    def showEvent(self, event) -> None:
        super().showEvent(event)  # draws what changed meanwhile
        self._request()  # and what was stopped when the tab was hidden

    def _request(self) -> None:
        raise NotImplementedError

    def _may_start(self, key: tuple | None) -> bool:
        """Whether ``key`` is for this view to compute now (not under way, not hidden, not
        what the user cancelled)."""
        return key is not None and key != self._running and self.isVisible() and key != self._declined

    def _cancelled_key(self) -> tuple | None:
        """The lane's job was cancelled: remember it as declined; the key if it was the one
        shown (so the view says so)."""
        self._declined, self._running = self._running, None
        return self._declined if self._declined is not None and self._declined == self._wanted else None

    def _export_dialog_to(self, title: str, name: str, saved: str) -> None:
        """The export button: ask where (the window's dialog), write :meth:`export_png`, and say
        ``saved`` (``{path}`` is the file written) in the status bar, or why it failed."""
        path = self.save_path(title, name, "PNG (*.png)")
        if not path:
            return
        try:
            written = self.export_png(Path(path))
        except OSError as exc:
            if self.window_services is not None:
                self.window_services.show_error(f"cannot export: {exc}")
            return
        if self.window_services is not None:
            self.window_services.show_status(saved.format(path=written))


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
    repaint. A click on the picture emits ``clicked(x, y)`` in the picture's own pixels."""

    clicked = Signal(float, float)

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

    def to_image(self, x: float, y: float) -> tuple[float, float] | None:
        """A point of the widget in the picture's pixels (None outside the picture)."""
        rect = self.target()
        if rect.isEmpty() or not rect.contains(int(x), int(y)):
            return None
        return (
            (x - rect.x()) * self._image.width() / rect.width(),
            (y - rect.y()) * self._image.height() / rect.height(),
        )

    def mousePressEvent(self, event) -> None:
        point = self.to_image(event.position().x(), event.position().y())
        if point is not None and event.button() == Qt.MouseButton.LeftButton:
            self.clicked.emit(*point)
        super().mousePressEvent(event)

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        if self._image is not None and not self._image.isNull():
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            painter.drawImage(self.target(), self._image)
        elif self._text:
            painter.setPen(self.palette().color(self.foregroundRole()))
            painter.drawText(
                self.rect().adjusted(12, 12, -12, -12),
                Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                self._text,
            )
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
