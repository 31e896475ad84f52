"""Showing a frame: an RGB image scaled to fit (never up), values under the pointer on hover."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRect, QRectF, QSize, Qt
from PySide6.QtGui import QImage, QPainter
from PySide6.QtWidgets import QScrollArea, QSizePolicy, QToolTip, QWidget

from models.errors import Cancelled
from models.explain import Frame

MIN_SCALE = 1.0  # frames are laid out for the pane: never shrunk (numbers stay readable), scrolled


def to_qimage(rgb: np.ndarray) -> QImage:
    """An ``(H, W, 3)`` uint8 array as a QImage of its own (safe on any thread)."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w = rgb.shape[:2]
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).convertToFormat(
        QImage.Format.Format_RGB32
    )


def fit(image: QSize, box: QSize) -> QRect:
    """Where an image of size ``image`` is drawn in a widget of size ``box``: scaled down to fit,
    never up, aspect kept, centred across the top."""
    scale = min(box.width() / image.width(), box.height() / image.height(), 1.0)
    w, h = max(1, round(image.width() * scale)), max(1, round(image.height() * scale))
    return QRect((box.width() - w) // 2, 0, w, h)


def scaled_to(image: QImage, rect: QRect, dpr: float = 1.0) -> QImage:
    """``image`` as drawn in ``rect`` (logical pixels) on a screen of device pixel ratio ``dpr``:
    smoothly scaled down to the device pixels it covers, or itself where it needs no shrinking
    (a HiDPI screen shows the frame's own pixels, not a blurred copy)."""
    size = QSize(round(rect.width() * dpr), round(rect.height() * dpr))
    if size.width() >= image.width():
        return image
    scaled = image.scaled(
        size, Qt.AspectRatioMode.IgnoreAspectRatio, Qt.TransformationMode.SmoothTransformation
    )
    scaled.setDevicePixelRatio(dpr)
    return scaled


class FrameView(QWidget):
    """Paints an RGB image scaled to fit, keeping its aspect ratio (lives in a scroll area).

    The scaled image is kept: repaints only copy it. Smooth scaling of a 1000 px frame took 3-5 ms
    of every paint; a frame drawn off the GUI thread can come scaled already (``scaled``). With a
    :class:`~models.explain.Frame` set, hovering a cell shows its value (cells too small for
    numbers show colours only)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._image: QImage | None = None
        self._scaled: QImage | None = None
        self._frame: Frame | None = None
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(320, 240)
        self.setMouseTracking(True)

    def set_image(
        self, rgb: np.ndarray | QImage | None, scaled: QImage | None = None, frame: Frame | None = None
    ) -> None:
        self._image = rgb if isinstance(rgb, QImage) or rgb is None else to_qimage(rgb)
        self._scaled = scaled
        self._frame = frame
        if self._image is not None:
            self.setMinimumSize(int(self._image.width() * MIN_SCALE), int(self._image.height() * MIN_SCALE))
        else:
            self.setMinimumSize(320, 240)
        self.update()

    def value_at(self, x: float, y: float) -> str | None:
        """The value under widget pixel ``(x, y)``, as the tooltip says it."""
        if self._image is None or self._frame is None:
            return None
        rect = fit(self._image.size(), self.size())
        if not rect.contains(int(x), int(y)):
            return None
        scale = self._image.width() / rect.width()
        return self._frame.value_at((x - rect.x()) * scale, (y - rect.y()) * scale)

    def mouseMoveEvent(self, event) -> None:
        pos = event.position()
        text = self.value_at(pos.x(), pos.y())
        if text:
            QToolTip.showText(event.globalPosition().toPoint(), text, self)
        else:
            QToolTip.hideText()
        super().mouseMoveEvent(event)

    def sizeHint(self) -> QSize:
        return QSize(900, 700) if self._image is None else self._image.size()

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), Qt.GlobalColor.white)
        if self._image is not None:
            rect = fit(self._image.size(), self.size())
            dpr = self.devicePixelRatioF()
            if (
                self._scaled is None
                or self._scaled.deviceIndependentSize().toSize() != rect.size()
                or self._scaled.devicePixelRatio() != dpr
            ):
                self._scaled = scaled_to(self._image, rect, dpr)
            if self._scaled is self._image and self._image.size() != rect.size():
                painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
                painter.drawImage(QRectF(rect), self._image)  # no shrinking in device pixels
            else:
                painter.drawImage(rect.topLeft(), self._scaled)
        painter.end()


def scrolled(widget: QWidget) -> QScrollArea:
    """``widget`` in a frameless scroll area: text that changes on every layer step relays out
    inside it, not the whole tab (7 ms a step), and long text scrolls instead of pushing."""
    area = QScrollArea()
    area.setWidget(widget)
    area.setWidgetResizable(True)
    area.setFrameShape(QScrollArea.Shape.NoFrame)
    return area


def frame_job(cancelled, draw, viewport: QSize, dpr: float) -> tuple[Frame, QImage, QImage]:
    """A frame job: the frame, as an image, and scaled to where the view in ``viewport`` will
    draw it (the view grows to at least ``MIN_SCALE`` of the frame and scrolls)."""
    if cancelled():
        raise Cancelled()
    frame = draw()
    image = to_qimage(frame.image)
    box = QSize(
        max(viewport.width(), int(image.width() * MIN_SCALE)),
        max(viewport.height(), int(image.height() * MIN_SCALE)),
    )
    return frame, image, scaled_to(image, fit(image.size(), box), dpr)
