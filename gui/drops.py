"""Pictures and files that arrive by drag-and-drop or the clipboard."""

from __future__ import annotations

import numpy as np
from PIL import Image
from PySide6.QtCore import QMimeData
from PySide6.QtGui import QImage

from models.sources import is_model_file


def qimage_to_pil(qimage: QImage) -> Image.Image:
    qimage = qimage.convertToFormat(QImage.Format.Format_RGB888)
    w, h = qimage.width(), qimage.height()
    data = np.frombuffer(qimage.constBits(), dtype=np.uint8, count=qimage.sizeInBytes())
    rgb = data.reshape(h, qimage.bytesPerLine())[:, : w * 3].reshape(h, w, 3)
    return Image.fromarray(rgb.copy())


def accepts(mime: QMimeData) -> bool:
    return mime.hasUrls() or mime.hasImage()


def dropped(mime: QMimeData) -> tuple[str, object] | None:
    """What was dropped: ``("model", path)``, ``("image", path)`` (by the file's suffix, the
    table :data:`models.sources.MODEL_SUFFIXES`), ``("picture", PIL image)`` or None."""
    paths = [u.toLocalFile() for u in mime.urls() if u.isLocalFile()]
    if paths:
        return ("model" if is_model_file(paths[0]) else "image", paths[0])
    if mime.hasImage():
        return ("picture", qimage_to_pil(QImage(mime.imageData())))
    return None
