"""Reading a user's photo and turning it into what a model sees, reversibly.

``load_image`` opens any common format (PNG, JPEG, BMP, GIF's first frame, TIFF, WebP), turns
it the way the camera meant (EXIF orientation) and converts any pixel mode to RGB.
``prepare_image`` resizes and centre-crops like the model's own transforms and keeps the
:class:`InputMapping` from model-input pixels back to the photo, which the overlays need.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from models.errors import ImageError

RESOURCES = Path(__file__).resolve().parent.parent / "resources"
DEFAULT_SAMPLE = "chelsea"
MAX_PIXELS = 64_000_000  # ~8000x8000: beyond this a file is a decompression bomb to us
# what a model may be fed: every layer's output is kept for the views, so memory grows with the
# input's area (vgg16 at 1024x1024 keeps ~1.3 GB of feature maps; 224x224 is the usual size)
MAX_INPUT_SIDE = 4096
MAX_INPUT_PIXELS = 1024 * 1024

# the one list of image-file suffixes (lower case) the app opens: the open dialog, drag-and-drop,
# and the folders a top-k scan walks (what a file *is* is still decided by reading it)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")

_RESAMPLE = {
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "nearest": Image.Resampling.NEAREST,
}


@dataclass(frozen=True)
class Preprocess:
    """How a model wants its input: resize, centre-crop, normalise."""

    size: tuple[int, int]
    resize: int | None = None  # shorter side to this first; None: straight to ``size``
    crop: bool = True
    mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    std: tuple[float, ...] = (0.229, 0.224, 0.225)
    channels: int = 3
    interpolation: str = "bilinear"


@dataclass(frozen=True)
class InputMapping:
    """Model-input pixel ``(y, x)`` <-> original-photo pixel: ``orig = input * scale + offset``.

    Coordinates are continuous (pixel ``i`` covers ``[i, i+1)``), so boxes map exactly.
    """

    scale: tuple[float, float]  # original pixels per input pixel (y, x)
    offset: tuple[float, float]  # original coordinate of input coordinate 0 (y, x)
    original_size: tuple[int, int]  # (H0, W0)
    input_size: tuple[int, int]  # (H, W)

    def to_original(self, y: float, x: float) -> tuple[float, float]:
        return y * self.scale[0] + self.offset[0], x * self.scale[1] + self.offset[1]

    def to_input(self, y: float, x: float) -> tuple[float, float]:
        return (y - self.offset[0]) / self.scale[0], (x - self.offset[1]) / self.scale[1]

    def box_to_original(
        self, top: float, left: float, bottom: float, right: float
    ) -> tuple[float, float, float, float]:
        t, l = self.to_original(top, left)
        b, r = self.to_original(bottom, right)
        return t, l, b, r


@dataclass
class PreparedImage:
    """A photo ready for a model, with what is needed to draw back onto it."""

    source: str
    original: np.ndarray  # (H0, W0, 3) uint8 RGB
    model_view: np.ndarray  # (H, W, 3) uint8: resized and cropped, before normalisation
    tensor: torch.Tensor  # (1, C, H, W) float32, normalised
    mapping: InputMapping


def is_image_file(path: str | Path) -> bool:
    """Whether ``path``'s suffix is one of :data:`IMAGE_SUFFIXES` (any case)."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def check_input_size(size: tuple[int, ...]) -> None:
    """Refuse a model input size (H, W) ConvScope would run out of memory on, or that is empty.

    Raises ``ImageError`` (one line).
    """
    h, w = (int(v) for v in size)
    if h < 1 or w < 1:
        raise ImageError(f"model input size {h}x{w} is empty")
    if max(h, w) > MAX_INPUT_SIDE or h * w > MAX_INPUT_PIXELS:
        raise ImageError(
            f"model input size {h}x{w} is too large: at most {MAX_INPUT_SIDE} pixels "
            f"a side and {MAX_INPUT_PIXELS:,} in all"
        )


def sample_images() -> dict[str, Path]:
    """The bundled sample photos, name -> path; ``chelsea`` (a cat) is the default."""
    return {p.stem: p for p in sorted((RESOURCES / "samples").glob("*.png"))}


def _to_rgb(image: Image.Image) -> Image.Image:
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(image, dtype=np.float64)
        lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
        scaled = (a - lo) / (hi - lo) * 255 if hi > lo else np.zeros_like(a)
        return Image.fromarray(scaled.astype(np.uint8), "L").convert("RGB")
    if mode == "P":
        image = image.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        # transparent pixels on white, as a viewer would show them
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def load_image(path: str | Path) -> Image.Image:
    """Open an image file as an RGB ``PIL.Image``, EXIF-oriented.

    Raises ``ImageError`` (one line) for a missing, unreadable, truncated or oversized file.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"cannot open image {path}: no such file")
    try:
        with warnings.catch_warnings():
            # PIL warns before it refuses; we refuse at our own limit below either way
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                w, h = image.size
                if w * h > MAX_PIXELS:
                    raise ImageError(
                        f"image {path.name} is {w}x{h} pixels, more than the {MAX_PIXELS:,} allowed"
                    )
                image.seek(0)  # GIF / multi-page TIFF: the first frame
                image.load()
                image = ImageOps.exif_transpose(image) or image
                return _to_rgb(image)
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageError(f"image {path.name} is too large to open safely: {exc}") from None
    except UnidentifiedImageError:
        raise ImageError(f"{path.name} is not an image file ConvScope can read") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"cannot read image {path.name}: {exc}") from None


def prepare_image(
    image: Image.Image | str | Path, preprocess: Preprocess, source: str | None = None
) -> PreparedImage:
    """Resize, centre-crop and normalise ``image`` for a model, keeping the pixel mapping.

    Only the part of the photo that survives the crop is resampled, straight to the model's input
    size: a 1x10000 strip whose shorter side goes to 256 would otherwise be a 256x2,560,000
    intermediate (2 GB). The pixels are those of resize-then-crop (same filter, same centres).
    """
    check_input_size(preprocess.size)
    if not isinstance(image, Image.Image):
        source = source or str(image)
        image = load_image(image)
    source = source or "image"
    image = image.convert("RGB")
    w0, h0 = image.size
    out_h, out_w = preprocess.size
    if preprocess.resize is not None:
        s = preprocess.resize / min(h0, w0)  # shorter side -> resize
        rh, rw = max(out_h, round(h0 * s)), max(out_w, round(w0 * s))
    else:
        rh, rw = out_h, out_w
    if preprocess.crop:
        top, left = (rh - out_h) // 2, (rw - out_w) // 2
    else:
        rh, rw, top, left = out_h, out_w, 0, 0
    scale = (h0 / rh, w0 / rw)
    box = (left * scale[1], top * scale[0], (left + out_w) * scale[1], (top + out_h) * scale[0])
    resized = image.resize((out_w, out_h), _RESAMPLE.get(preprocess.interpolation, Image.BILINEAR), box=box)
    view = np.ascontiguousarray(np.asarray(resized, dtype=np.uint8))
    pixels = view.astype(np.float32) / 255.0
    if preprocess.channels == 1:
        gray = pixels @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        pixels = gray[..., None]
        view = np.repeat(np.round(gray * 255).astype(np.uint8)[..., None], 3, axis=2)
    elif preprocess.channels != 3:
        raise ImageError(f"models with {preprocess.channels} input channels are not supported")
    mean = np.asarray(preprocess.mean, dtype=np.float32)[: preprocess.channels]
    std = np.asarray(preprocess.std, dtype=np.float32)[: preprocess.channels]
    tensor = torch.from_numpy(((pixels - mean) / std).transpose(2, 0, 1).copy())[None]
    mapping = InputMapping(
        scale=scale,
        offset=(top * scale[0], left * scale[1]),
        original_size=(h0, w0),
        input_size=(out_h, out_w),
    )
    return PreparedImage(source, np.asarray(image, dtype=np.uint8), view, tensor, mapping)
