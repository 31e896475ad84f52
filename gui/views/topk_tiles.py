"""The grid of top examples: one tile per example, its receptive-field crop (the field clipped to
the photo) scaled up pixel for pixel (nearest neighbour: a 3x3 field shows as 3x3 squares),
every crop of a layer at one scale (that of its *frame*: the field, at most the photo), four
amber ticks on the picture's edges pointing at the unit, the unit's activation map laid over it
on demand, and a caption with the rank, the activation value and the file name. Clicking a
tile emits :attr:`TileGrid.clicked` with the tile's index."""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPen
from PySide6.QtWidgets import QGridLayout, QSizePolicy, QWidget

from models import render

OVERLAY_ALPHA = 0.55
CAPTION_LINES = 2
SMALL = 48  # a field up to this many pixels a side is enlarged by whole pixels, unsmoothed
BACKGROUND = QColor(40, 40, 40)
FRAME = QColor(90, 90, 90)
HOVER = QColor(255, 200, 60)
TICK = QColor(255, 196, 40)  # as the exported montage's (models.topk.export.TICK)
TICK_LENGTH = 8


def rgb_image(rgb: np.ndarray) -> QImage:
    """A ``(H, W, 3)`` uint8 array as a QImage that owns its pixels."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w = rgb.shape[:2]
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def blend_overlay(crop: np.ndarray, overlay: np.ndarray, top: float, cmap: str = "inferno") -> np.ndarray:
    """``overlay`` (the channel's map on the crop's pixels, NaN outside the photo) over ``crop``:
    0 .. ``top`` (the largest value over every example shown, so tiles compare) through the
    colour map, opacity growing with the value; negative and NaN pixels are left as they are."""
    values = np.nan_to_num(np.asarray(overlay, dtype=np.float32), nan=0.0)
    v01 = np.clip(values / top, 0.0, 1.0) if top > 0 else np.zeros_like(values)
    colour = render.apply_colormap(v01, cmap).astype(np.float32)
    a = (OVERLAY_ALPHA * np.sqrt(v01))[..., None]
    return (crop.astype(np.float32) * (1 - a) + colour * a).round().astype(np.uint8)


def entry_tip(e) -> str:
    """A tile's tooltip: the file, the unit, its value and rank, what the crop is."""
    return (
        f"{e.path}\nunit (y {e.y}, x {e.x}), activation {e.value:.6g}, rank {e.rank + 1}"
        f"\nThe crop is the unit's receptive field clipped to the photo (what the unit "
        f"sees of it); the ticks point at the unit.\nClick: open this photo in the main "
        f"view at this unit"
    )


class CropTile(QWidget):
    """One example: the picture fills the tile above a two-line caption."""

    clicked = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.image: QImage | None = None
        self.caption = ""
        self.note = ""  # a second caption line
        self.frame: tuple[int, int] | None = None  # the size the picture is scaled against
        self.centre: tuple[float, float] | None = None  # the unit, in picture pixels
        self._hover = False
        self.setMouseTracking(True)
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(72, 72 + self._caption_height())

    def _caption_height(self) -> int:
        return CAPTION_LINES * self.fontMetrics().lineSpacing() + 4

    def sizeHint(self) -> QSize:
        return QSize(160, 160 + self._caption_height())

    def set_content(
        self,
        image: QImage | None,
        caption: str,
        note: str,
        tip: str,
        frame: tuple[int, int] | None = None,
        centre: tuple[float, float] | None = None,
    ) -> None:
        """Show ``image``, scaled as a ``frame`` ``(h, w)`` would be to fit (default: its own
        size), with ticks at ``centre`` ``(y, x)`` in image pixels."""
        self.image, self.caption, self.note = image, caption, note
        self.frame, self.centre = frame, centre
        self.setToolTip(tip)
        self.update()

    def picture_rect(self) -> QRect:
        """Where the picture is drawn: the largest square-pixel fit above the caption."""
        area = self.rect().adjusted(2, 2, -2, -2 - self._caption_height())
        if self.image is None or self.image.isNull() or area.width() < 1 or area.height() < 1:
            return area
        iw, ih = self.image.width(), self.image.height()
        fh, fw = self.frame or (ih, iw)
        scale = min(area.width() / max(fw, iw), area.height() / max(fh, ih))
        if scale >= 1 and max(fw, fh) < SMALL:  # a small field: every pixel the same size
            scale = math.floor(scale)
        w, h = max(1, int(iw * scale)), max(1, int(ih * scale))
        return QRect(area.x() + (area.width() - w) // 2, area.y() + (area.height() - h) // 2, w, h)

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        if not self.caption:  # an empty place (fewer examples than k): a faint outline only
            p.setPen(QPen(FRAME, 1, Qt.PenStyle.DashLine))
            p.drawRect(self.rect().adjusted(0, 0, -1, -1))
            p.end()
            return
        p.fillRect(self.rect(), BACKGROUND)
        target = self.picture_rect()
        if self.image is not None and not self.image.isNull():
            # nearest neighbour for small fields (pixels stay sharp squares), smooth for photos
            p.setRenderHint(
                QPainter.RenderHint.SmoothPixmapTransform,
                max(self.image.width(), self.image.height()) >= SMALL,
            )
            p.drawImage(target, self.image)
        p.setPen(QPen(HOVER if self._hover else FRAME, 2 if self._hover else 1))
        p.drawRect(target.adjusted(0, 0, -1, -1))
        if self.centre is not None and self.image is not None and not self.image.isNull():
            self._ticks(p, target)
        p.setPen(QColor(235, 235, 235))
        fm = self.fontMetrics()
        y = self.height() - self._caption_height() + fm.ascent() + 2
        for i, text in enumerate((self.caption, self.note)):
            if i == 1:
                p.setPen(QColor(175, 175, 175))
            p.drawText(
                4,
                y + i * fm.lineSpacing(),
                fm.elidedText(text, Qt.TextElideMode.ElideMiddle, self.width() - 8),
            )
        p.end()

    def tick_points(self, target: QRect | None = None) -> tuple[int, int]:
        """Where the ticks point: the unit's ``(x, y)`` in widget pixels, kept on the picture."""
        target = target or self.picture_rect()
        cy, cx = self.centre
        x = target.x() + cx * target.width() / self.image.width()
        y = target.y() + cy * target.height() / self.image.height()
        return (
            int(min(max(x, target.left()), target.right())),
            int(min(max(y, target.top()), target.bottom())),
        )

    def _ticks(self, p: QPainter, target: QRect) -> None:
        """Four ticks on the picture's edges at the unit's row and column: where it is,
        without covering what it sees."""
        x, y = self.tick_points(target)
        n = max(2, min(TICK_LENGTH, target.width() // 4, target.height() // 4))
        p.setPen(QPen(TICK, 2))
        p.drawLine(target.left(), y, target.left() + n, y)
        p.drawLine(target.right() - n, y, target.right(), y)
        p.drawLine(x, target.top(), x, target.top() + n)
        p.drawLine(x, target.bottom() - n, x, target.bottom())

    def enterEvent(self, event) -> None:
        self._hover = True
        self.update()

    def leaveEvent(self, event) -> None:
        self._hover = False
        self.update()

    def mouseReleaseEvent(self, event) -> None:
        inside = self.rect().contains(event.position().toPoint())
        if self.caption and event.button() == Qt.MouseButton.LeftButton and inside:
            self.clicked.emit()


class TileGrid(QWidget):
    """``k`` tiles in a near-square grid (3x3 for the usual 9)."""

    clicked = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.tiles: list[CropTile] = []
        self._layout = QGridLayout(self)
        self._layout.setSpacing(6)
        self._layout.setContentsMargins(0, 0, 0, 0)

    def set_count(self, count: int) -> None:
        """Make ``count`` tiles (kept when the count is the same: no flicker on a step)."""
        if count == len(self.tiles):
            return
        for tile in self.tiles:
            self._layout.removeWidget(tile)
            tile.deleteLater()
        self.tiles = []
        columns = max(1, math.ceil(math.sqrt(count)))
        for i in range(count):
            tile = CropTile(self)
            tile.clicked.connect(lambda i=i: self.clicked.emit(i))
            self._layout.addWidget(tile, i // columns, i % columns)
            self.tiles.append(tile)
