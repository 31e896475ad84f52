"""Reading photos in any format and mode, refusing bad files, and mapping pixels back."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from models.errors import ImageError
from models.images import Preprocess, load_image, prepare_image, sample_images

RGB = np.zeros((30, 40, 3), dtype=np.uint8)
RGB[:10, :, 0] = 255  # red band on top
RGB[:, 30:, 2] = 255  # blue band on the right


@pytest.mark.parametrize("suffix", ["png", "jpg", "bmp", "gif", "tiff", "webp"])
def test_formats_open_as_rgb(tmp_path, suffix: str) -> None:
    path = tmp_path / f"photo.{suffix}"
    Image.fromarray(RGB).save(path)
    image = load_image(path)
    assert image.mode == "RGB" and image.size == (40, 30)
    a = np.asarray(image).astype(int)
    assert a[2, 2, 0] > 200 and a[20, 35, 2] > 200 and a[20, 5].max() < 60


def test_gif_first_frame_only(tmp_path) -> None:
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 255, 0))]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    assert np.asarray(load_image(tmp_path / "a.gif"))[0, 0, 0] > 200


def test_exif_orientation_is_honoured(tmp_path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    Image.fromarray(RGB).save(tmp_path / "r.jpg", exif=exif)
    image = load_image(tmp_path / "r.jpg")
    assert image.size == (30, 40)  # width and height swapped
    assert np.asarray(image)[2, 2, 0] < 60 and np.asarray(image)[2, 25, 0] > 200  # red now right


@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGBA", "CMYK", "I;16", "1", "F"])
def test_any_mode_converts_to_rgb(tmp_path, mode: str) -> None:
    if mode == "I;16":
        src = Image.fromarray(np.tile(np.arange(64, dtype=np.uint16)[None] * 1000, (64, 1)))
    elif mode == "F":
        src = Image.fromarray(np.tile(np.linspace(0, 1, 64, dtype=np.float32)[None], (64, 1)))
    else:
        src = Image.fromarray(np.tile(np.arange(64, dtype=np.uint8)[None] * 4, (64, 1))).convert(mode)
    path = tmp_path / ("x.tiff" if mode in ("CMYK", "I;16", "F") else "x.png")
    src.save(path)
    a = np.asarray(load_image(path))
    assert a.shape == (64, 64, 3) and a.dtype == np.uint8
    if mode != "1":
        assert a[:, -1].mean() > a[:, 0].mean() + 100  # the gradient survived


def test_transparent_pixels_composite_on_white(tmp_path) -> None:
    Image.new("RGBA", (4, 4), (0, 0, 0, 0)).save(tmp_path / "t.png")
    assert np.asarray(load_image(tmp_path / "t.png")).min() == 255


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"not an image at all", "not an image file"), (None, "no such file")],
)
def test_unreadable_files_raise_one_line_image_error(tmp_path, content, message) -> None:
    path = tmp_path / "broken.png"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ImageError, match=message) as info:
        load_image(path)
    assert "\n" not in str(info.value)


def test_truncated_file_is_an_image_error(tmp_path) -> None:
    Image.fromarray(RGB).save(tmp_path / "ok.png")
    data = (tmp_path / "ok.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError):
        load_image(tmp_path / "cut.png")


def test_decompression_bomb_is_refused(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr("models.images.MAX_PIXELS", 100)
    Image.new("RGB", (20, 20)).save(tmp_path / "big.png")
    with pytest.raises(ImageError, match="more than the 100 allowed"):
        load_image(tmp_path / "big.png")


def test_prepare_resizes_crops_normalises_and_maps_back() -> None:
    photo = Image.fromarray(np.zeros((300, 600, 3), dtype=np.uint8))
    pre = Preprocess(size=(224, 224), resize=256, crop=True, mean=(0.5,) * 3, std=(0.25,) * 3)
    prepared = prepare_image(photo, pre, source="test")
    assert prepared.tensor.shape == (1, 3, 224, 224)
    assert prepared.model_view.shape == (224, 224, 3)
    assert float(prepared.tensor.min()) == pytest.approx(-2.0)  # (0 - 0.5) / 0.25
    m = prepared.mapping
    # resized to 256x512, crop offset (16, 144); one input pixel = 300/256 original pixels
    assert m.to_original(0, 0) == pytest.approx((16 * 300 / 256, 144 * 600 / 512))
    assert m.to_original(224, 224) == pytest.approx((240 * 300 / 256, 368 * 600 / 512))
    assert m.to_input(*m.to_original(17.5, 100.25)) == pytest.approx((17.5, 100.25))
    assert m.box_to_original(0, 0, 224, 224) == pytest.approx((18.75, 168.75, 281.25, 431.25))


def test_samples_are_bundled_and_grayscale_models_get_one_channel() -> None:
    samples = sample_images()
    assert {"chelsea", "coffee", "astronaut"} <= set(samples)
    prepared = prepare_image(
        samples["chelsea"], Preprocess(size=(32, 48), channels=1, crop=False, mean=(0.5,), std=(0.5,))
    )
    assert prepared.tensor.shape == (1, 1, 32, 48)
    assert prepared.model_view.shape == (32, 48, 3)


@pytest.mark.parametrize("interpolation", ["bilinear", "bicubic", "nearest"])
@pytest.mark.parametrize("size", [(224, 224), (100, 160)])
def test_cropped_resize_is_resize_then_crop(interpolation: str, size: tuple[int, int]) -> None:
    # the oracle: the whole photo resized (shorter side to `resize`), then centre-cropped, as
    # torchvision's Resize + CenterCrop do
    photo = Image.open(sample_images()["chelsea"]).convert("RGB")
    pre = Preprocess(size=size, resize=round(max(size) * 256 / 224), interpolation=interpolation)
    w0, h0 = photo.size
    s = pre.resize / min(h0, w0)
    rh, rw = max(size[0], round(h0 * s)), max(size[1], round(w0 * s))
    top, left = (rh - size[0]) // 2, (rw - size[1]) // 2
    method = getattr(Image.Resampling, interpolation.upper())
    expected = np.asarray(photo.resize((rw, rh), method))[top : top + size[0], left : left + size[1]]
    got = prepare_image(photo, pre).model_view
    assert got.shape == expected.shape
    differs = np.abs(got.astype(int) - expected.astype(int)).max(axis=2) > 1
    if interpolation == "nearest":  # a sample exactly between two source rows rounds either way
        assert differs.sum() <= sum(size)  # at most one row and one column
    else:
        assert not differs.any()  # rounding only


@pytest.mark.parametrize("shape", [(1, 10000), (2, 60000), (60000, 2)])
def test_a_thin_strip_is_never_resized_whole(tmp_path, monkeypatch, shape) -> None:
    # a 1x10000 PNG whose shorter side goes to 256 was a 256x2,560,000 intermediate (5.6 GB)
    h, w = shape
    Image.new("RGB", (w, h), (200, 30, 30)).save(tmp_path / "strip.png")
    sizes = []
    original = Image.Image.resize

    def recording(self, size, *args, **kwargs):
        sizes.append(size)
        return original(self, size, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "resize", recording)
    prepared = prepare_image(tmp_path / "strip.png", Preprocess(size=(224, 224), resize=256))
    assert prepared.tensor.shape == (1, 3, 224, 224) and sizes == [(224, 224)]
    assert prepared.model_view[100, 100, 0] > 150  # the strip's colour, stretched
    m = prepared.mapping  # the crop maps back inside the photo
    t, l, b, r = m.box_to_original(0, 0, 224, 224)
    assert 0 <= t < b <= h and 0 <= l < r <= w


@pytest.mark.parametrize(
    ("size", "ok"),
    [
        ((224, 224), True),
        ((4096, 256), True),
        ((1024, 1024), True),
        ((4097, 8), False),
        ((1025, 1024), False),
        ((0, 5), False),
    ],
)
def test_model_input_size_is_bounded(size, ok) -> None:
    from models.images import check_input_size

    if ok:
        check_input_size(size)
    else:
        with pytest.raises(ImageError) as info:
            check_input_size(size)
        assert "\n" not in str(info.value)
        with pytest.raises(ImageError):  # nothing is allocated for it either
            prepare_image(Image.new("RGB", (8, 8)), Preprocess(size=size, resize=None))
