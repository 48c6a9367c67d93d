"""Image loading: formats, conversions, orientation and every kind of bad input."""

from __future__ import annotations

import io
import struct
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from facelive.errors import (
    EmptyImageError,
    ImageAspectRatioError,
    ImageError,
    ImageTooLargeError,
    ImageTooSmallError,
    TruncatedImageError,
    UnsupportedImageError,
)
from facelive.imageio import decode_image, iter_image_paths, load_image


def _encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


@pytest.fixture
def rgb() -> Image.Image:
    a = np.zeros((48, 64, 3), np.uint8)
    a[:, :, 0] = 200  # red in RGB
    a[:, 32:, 1] = 100
    return Image.fromarray(a, "RGB")


@pytest.mark.parametrize("fmt", ["PNG", "BMP", "TIFF", "WEBP"])
def test_lossless_formats_give_bgr(rgb: Image.Image, fmt: str) -> None:
    kw = {"lossless": True} if fmt == "WEBP" else {}
    out = decode_image(_encode(rgb, fmt, **kw))
    assert out.shape == (48, 64, 3) and out.dtype == np.uint8
    assert out.flags.c_contiguous
    np.testing.assert_array_equal(out[0, 0], [0, 0, 200])  # BGR order
    np.testing.assert_array_equal(out[0, 40], [0, 100, 200])


def test_jpeg(rgb: Image.Image) -> None:
    out = decode_image(_encode(rgb, "JPEG", quality=95))
    assert out.shape == (48, 64, 3)
    assert abs(int(out[10, 10, 2]) - 200) < 8 and int(out[10, 10, 0]) < 10


def test_grey_alpha_16bit(rgb: Image.Image) -> None:
    grey = decode_image(_encode(rgb.convert("L"), "PNG"))
    assert grey.shape == (48, 64, 3) and np.all(grey[..., 0] == grey[..., 2])
    rgba = rgb.convert("RGBA")
    rgba.putalpha(0)  # fully transparent -> composited on white
    assert np.all(decode_image(_encode(rgba, "PNG")) == 255)
    a16 = (np.arange(64 * 48, dtype=np.uint32).reshape(48, 64) * 21).astype(np.uint16)
    out = decode_image(_encode(Image.fromarray(a16), "PNG"))
    assert out.dtype == np.uint8
    assert out[-1, -1, 0] == round(int(a16[-1, -1]) * 255 / 65535)


def test_exif_orientation_applied(rgb: Image.Image) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    out = decode_image(_encode(rgb, "JPEG", exif=exif, quality=95))
    assert out.shape == (64, 48, 3)


def test_array_inputs() -> None:
    grey = np.full((40, 40), 7, np.uint8)
    assert load_image(grey).shape == (40, 40, 3)
    bgr = np.zeros((40, 40, 3), np.uint8)
    bgr[..., 0] = 9
    np.testing.assert_array_equal(load_image(bgr)[0, 0], [9, 0, 0])
    f = np.zeros((40, 40, 3), np.float32)
    f[..., 0] = 1.0
    np.testing.assert_array_equal(load_image(f)[0, 0], [255, 0, 0])  # stays BGR


def test_bad_inputs(tmp_path, rgb: Image.Image) -> None:
    with pytest.raises(EmptyImageError):
        decode_image(b"")
    with pytest.raises(UnsupportedImageError):
        decode_image(b"this is not an image at all" * 10)
    with pytest.raises(ImageError):
        load_image(tmp_path / "missing.jpg")
    with pytest.raises(ImageError):
        load_image(tmp_path)
    with pytest.raises(ImageError):
        load_image(12345)  # type: ignore[arg-type]
    jpg = _encode(rgb.resize((640, 480)), "JPEG")
    with pytest.raises((TruncatedImageError, ImageError)):
        decode_image(jpg[: len(jpg) // 2])
    png = _encode(rgb.resize((640, 480)), "PNG")
    with pytest.raises(ImageError):
        decode_image(png[: len(png) // 2])
    with pytest.raises(ImageTooSmallError):
        decode_image(_encode(rgb.resize((20, 20)), "PNG"))
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(EmptyImageError):
        load_image(tmp_path / "empty.jpg")


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height, with a tiny (invalid) data stream."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 10))
            + chunk(b"IEND", b""))


def test_decompression_bomb_rejected_before_decoding() -> None:
    with pytest.raises(ImageTooLargeError):
        decode_image(_png_header_only(50_000, 50_000))
    with pytest.raises(ImageTooLargeError):
        decode_image(_png_header_only(8000, 6000))  # 48 MP > 40 MP


def test_thin_images_rejected_before_decoding(rgb: Image.Image) -> None:
    """An 8000x32 PNG of 2 KB is within the pixel limit but would become a 60000x240 working
    frame in the quality test: the aspect ratio is checked from the header, before decoding."""
    with pytest.raises(ImageAspectRatioError, match="8000x32") as info:
        decode_image(_png_header_only(8000, 32))  # header only: never decoded
    assert info.value.code == "image_aspect_ratio"
    with pytest.raises(ImageAspectRatioError):
        decode_image(_png_header_only(32, 8000))
    thin = _encode(Image.new("RGB", (8000, 32)), "PNG")
    assert len(thin) < 4096
    with pytest.raises(ImageAspectRatioError):
        decode_image(thin)
    assert decode_image(_encode(Image.new("RGB", (128, 32)), "PNG")).shape == (32, 128, 3)
    with pytest.raises(ImageAspectRatioError):
        decode_image(_encode(Image.new("RGB", (129, 32)), "PNG"))
    wide = _encode(Image.new("RGB", (320, 32)), "PNG")
    assert decode_image(wide, max_aspect_ratio=10).shape == (32, 320, 3)
    assert decode_image(wide, max_aspect_ratio=None).shape == (32, 320, 3)
    with pytest.raises(ImageAspectRatioError):
        load_image(np.zeros((32, 200, 3), np.uint8))
    assert load_image(np.zeros((32, 200, 3), np.uint8), max_aspect_ratio=None).shape == (32, 200, 3)


def test_iter_image_paths(tmp_path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    img = np.zeros((40, 40, 3), np.uint8)
    cv2.imwrite(str(tmp_path / "a" / "x.png"), img)
    cv2.imwrite(str(tmp_path / "a" / "b" / "y.JPG"), img)
    (tmp_path / "a" / "notes.txt").write_text("hi")
    found = iter_image_paths([tmp_path])
    assert [p.name for p in found] == ["y.JPG", "x.png"]
    assert iter_image_paths([tmp_path / "a" / "notes.txt"]) == [tmp_path / "a" / "notes.txt"]


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "TIFF", "BMP"])
def test_mutated_files_never_crash(rgb: Image.Image, fmt: str) -> None:
    """Random byte flips, truncations and garbage appended: a decoded image or an ImageError,
    never another exception."""
    good = _encode(rgb.resize((96, 64)), fmt)
    r = np.random.default_rng(1)
    for _ in range(150):
        data = bytearray(good)
        for pos in r.integers(0, len(data), size=r.integers(1, 12)):
            data[pos] = int(r.integers(0, 256))
        if r.random() < 0.3:
            data = data[: int(r.integers(1, len(data)))]
        try:
            out = decode_image(bytes(data))
        except ImageError:
            continue
        assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3


def _pillow_reference(data: bytes) -> np.ndarray:
    """What decode_image gave before the simplejpeg path: Pillow, EXIF applied, BGR."""
    from PIL import ImageOps

    img = Image.open(io.BytesIO(data))
    img = ImageOps.exif_transpose(img)
    return np.ascontiguousarray(np.asarray(img.convert("RGB"))[..., ::-1])


@pytest.mark.parametrize("kw", [
    {"quality": 90},  # 4:2:0
    {"quality": 95, "subsampling": 0},  # 4:4:4
    {"quality": 80, "subsampling": 1},  # 4:2:2
    {"quality": 85, "progressive": True},
    {"quality": 75, "optimize": True},
])
def test_jpeg_fast_path_gives_pillows_pixels(kw) -> None:
    """The simplejpeg path (baseline or progressive colour JPEGs) gives exactly Pillow's pixels."""
    import facelive.imageio as imageio

    r = np.random.default_rng(3)
    base = cv2.resize(r.integers(0, 256, (24, 32, 3), dtype=np.uint8), (333, 251),
                      interpolation=cv2.INTER_CUBIC)  # odd sizes: partial MCUs
    data = _encode(Image.fromarray(base), "JPEG", **kw)
    fast = decode_image(data)
    np.testing.assert_array_equal(fast, _pillow_reference(data))
    assert fast.flags.c_contiguous and fast.dtype == np.uint8
    if imageio._simplejpeg is not None:
        assert imageio._decode_jpeg_fast(data, Image.open(io.BytesIO(data))) is not None


def test_jpeg_fast_path_leaves_the_rest_to_pillow(rgb: Image.Image) -> None:
    import facelive.imageio as imageio

    def fast(data: bytes):
        return imageio._decode_jpeg_fast(data, Image.open(io.BytesIO(data)))

    exif = Image.Exif()
    exif[0x0112] = 6
    rotated = _encode(rgb, "JPEG", exif=exif, quality=95)
    grey = _encode(rgb.convert("L"), "JPEG", quality=95)
    cmyk = _encode(rgb.convert("CMYK"), "JPEG", quality=95)
    for data in (rotated, grey, cmyk, _encode(rgb, "PNG")):
        assert fast(data) is None
        np.testing.assert_array_equal(decode_image(data), _pillow_reference(data))
    jpg = _encode(rgb.resize((640, 480)), "JPEG")
    assert fast(jpg[: len(jpg) // 2]) is None  # libjpeg-turbo warns: Pillow decides
    with pytest.raises(ImageError):
        decode_image(jpg[: len(jpg) // 2])


def test_decoding_in_threads_leaves_warnings_alone(rgb: Image.Image) -> None:
    """Images decode in worker threads: decoding must not touch the process-wide warning
    filters, so that another thread's warnings (here Pillow's decompression-bomb warning, and a
    plain ``UserWarning``) are shown as the application set them, during and after decoding."""
    import threading
    import warnings

    png = _encode(rgb, "PNG")
    bomb = _png_header_only(10_000, 10_000)  # over Pillow's limit but under twice it: a warning
    n_threads, rounds = 6, 40
    start = threading.Barrier(n_threads + 1)
    failures: list[BaseException] = []
    seen_bomb_warnings = [0]

    def decode() -> None:
        try:
            start.wait()
            for _ in range(rounds):
                assert decode_image(png).shape == (48, 64, 3)
                with pytest.raises(ImageTooLargeError, match="decompression bomb"):
                    decode_image(bomb)
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)

    def other() -> None:  # the application's own thread, relying on warnings being shown
        try:
            start.wait()
            for _ in range(rounds):
                warnings.warn("still shown", UserWarning, stacklevel=1)
                Image.open(io.BytesIO(bomb))  # Pillow warns; it must not raise here
                seen_bomb_warnings[0] += 1
        except BaseException as exc:
            failures.append(exc)

    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        filters = list(warnings.filters)
        threads = [threading.Thread(target=decode) for _ in range(n_threads)]
        threads.append(threading.Thread(target=other))
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert warnings.filters == filters  # nothing left behind by a decoding thread
    assert not failures, failures
    assert seen_bomb_warnings[0] == rounds
    assert sum(str(w.message) == "still shown" for w in shown) == rounds
    assert sum(w.category is Image.DecompressionBombWarning for w in shown) >= rounds
