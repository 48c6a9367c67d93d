"""Image loading shared by every facelive feature.

Convention: every image inside facelive is a C-contiguous ``uint8`` array of shape ``(H, W, 3)``
in **BGR** channel order (OpenCV's order). :func:`load_image` accepts a path, raw bytes or an
array and always returns that form, with the EXIF orientation applied, grey/alpha/palette/16-bit
input converted, and clear errors for everything that is not a usable image.

The header is read first (Pillow decodes lazily), so a decompression bomb is rejected from its
declared size before any pixel is decoded; so is a thin strip (an aspect ratio over
:data:`MAX_ASPECT_RATIO`), whose short side the quality test would scale up (an 8000x32 PNG of
2 KB became a 60000x240 working frame, 4 GB of memory). Together the two limits bound the work
one accepted image can cause (docs/deployment.md gives the measured worst case). Pillow's own
limit (``PIL.Image.MAX_IMAGE_PIXELS``) is enforced by an explicit check, never by changing the
warning filters, which are process-wide and so not safe while images decode in threads; the
``DecompressionBombWarning`` Pillow gives is left to the application's warning settings.

Baseline JPEGs in colour without an EXIF rotation (what cameras and browsers upload) are decoded
by simplejpeg (libjpeg-turbo, straight to BGR) when it is installed, after the same header checks:
the pixels are identical to Pillow's (both libjpeg-turbo with its default IDCT and upsampling;
``tests/test_imageio.py``) and it is 1.5-1.9x faster (``benchmarks/bench_jpeg.py``). Anything
else (other formats, grey/CMYK JPEGs, EXIF rotations, files libjpeg-turbo warns about) takes
the Pillow path, so errors and results stay what Pillow gives.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

try:  # optional speed-up for JPEG (see the module docstring)
    import simplejpeg as _simplejpeg
except ImportError:  # pragma: no cover - simplejpeg is a dependency; Pillow remains the fallback
    _simplejpeg = None

from facelive.errors import (
    EmptyImageError,
    ImageAspectRatioError,
    ImageError,
    ImageTooLargeError,
    ImageTooSmallError,
    TruncatedImageError,
    UnsupportedImageError,
)

MIN_SIDE = 32
"""Smallest accepted width and height, in pixels."""
MAX_PIXELS = 40_000_000
"""Largest accepted width x height (40 megapixels)."""
MAX_ASPECT_RATIO = 4.0
"""Largest accepted long side / short side (``None`` turns the check off)."""
MAX_FILE_BYTES = 200 * 1024 * 1024
"""Largest accepted encoded file size."""
SUPPORTED_FORMATS = ("JPEG", "PNG", "BMP", "WEBP", "TIFF", "MPO")
EXIF_ORIENTATION = 0x0112
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")

# Never let Pillow silently return a partial image.
ImageFile.LOAD_TRUNCATED_IMAGES = False


def _check_size(width: int, height: int, *, max_pixels: int, min_side: int,
                max_aspect_ratio: float | None = MAX_ASPECT_RATIO) -> None:
    if width < min_side or height < min_side:
        raise ImageTooSmallError(
            f"image is {width}x{height}; at least {min_side}x{min_side} pixels are needed"
        )
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"image is {width}x{height} = {width * height / 1e6:.1f} megapixels; "
            f"the limit is {max_pixels / 1e6:.0f} megapixels"
        )
    if max_aspect_ratio is not None and max(width, height) > max_aspect_ratio * min(width, height):
        raise ImageAspectRatioError(
            f"image is {width}x{height}, an aspect ratio of "
            f"{max(width, height) / min(width, height):.1f}:1; the limit is "
            f"{max_aspect_ratio:g}:1"
        )


def _check_bomb(size: tuple[int, int], name: str) -> None:
    """Reject an image over Pillow's decompression-bomb limit, as an error.

    Pillow raises :class:`PIL.Image.DecompressionBombError` over twice
    ``Image.MAX_IMAGE_PIXELS`` but only warns between once and twice the limit. Turning that
    warning into an error with ``warnings.catch_warnings`` is not thread safe (images decode in
    worker threads; the filters are process-wide and the context manager can restore another
    thread's filters), so the limit is checked here instead and the warning is left to the
    application's own warning settings.

    Parameters
    ----------
    size : tuple of int
        The declared ``(width, height)`` from the header.
    name : str
        What to call the image in the message.

    Raises
    ------
    facelive.errors.ImageTooLargeError
        With Pillow's message, when ``width * height`` is over ``Image.MAX_IMAGE_PIXELS``
        (not when that is ``None``).
    """
    limit = Image.MAX_IMAGE_PIXELS
    pixels = max(1, size[0]) * max(1, size[1])
    if limit is not None and pixels > limit:
        raise ImageTooLargeError(
            f"{name}: Image size ({pixels} pixels) exceeds limit of {limit} pixels, "
            "could be decompression bomb DOS attack."
        )


def _to_uint8_3ch(array: np.ndarray) -> np.ndarray:
    """Grey / 3-channel / 4-channel array of any integer or float depth -> (H, W, 3) uint8,
    channel order kept (alpha composited on white)."""
    a = np.asarray(array)
    if a.dtype == np.bool_:
        a = a.astype(np.uint8) * 255
    elif a.dtype == np.uint16 or a.dtype == np.int32 or a.dtype == np.uint32:
        # 16-bit (or Pillow's 32-bit "I" mode holding 16-bit data): scale to 8 bits
        top = 65535.0 if a.max(initial=0) > 255 else 255.0
        a = np.clip(np.rint(a.astype(np.float64) * (255.0 / top)), 0, 255).astype(np.uint8)
    elif a.dtype.kind == "f":
        top = 1.0 if float(np.nanmax(a, initial=0.0)) <= 1.0 else 255.0
        a = np.clip(np.rint(np.nan_to_num(a) * (255.0 / top)), 0, 255).astype(np.uint8)
    elif a.dtype != np.uint8:
        a = np.clip(a, 0, 255).astype(np.uint8)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    elif a.ndim == 3 and a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    elif a.ndim == 3 and a.shape[2] == 4:
        # composite on white so transparent regions do not turn black
        rgb = a[:, :, :3].astype(np.float64)
        alpha = a[:, :, 3:4].astype(np.float64) / 255.0
        a = np.rint(rgb * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
    elif not (a.ndim == 3 and a.shape[2] == 3):
        raise UnsupportedImageError(f"unsupported array shape {a.shape}")
    return np.ascontiguousarray(a)


def _to_bgr_uint8(array: np.ndarray) -> np.ndarray:
    """A decoded grey / RGB / RGBA array (any depth) as BGR uint8 (a new contiguous array)."""
    return cv2.cvtColor(_to_uint8_3ch(array), cv2.COLOR_RGB2BGR)


def _decode_pil(img: Image.Image) -> np.ndarray:
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.uint32 if mode == "I" else np.uint16)
        if mode == "I":
            arr = np.clip(arr, 0, 65535).astype(np.uint16)
        return _to_bgr_uint8(arr)
    if mode == "F":
        return _to_bgr_uint8(np.asarray(img, dtype=np.float32))
    if mode in ("1", "L"):
        return _to_bgr_uint8(np.asarray(img.convert("L")))
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        return _to_bgr_uint8(np.asarray(img.convert("RGBA")))
    return _to_bgr_uint8(np.asarray(img if mode == "RGB" else img.convert("RGB")))


def _decode_jpeg_fast(data: bytes, img: Image.Image) -> np.ndarray | None:
    """``data`` decoded by simplejpeg to BGR when ``img`` (Pillow, header read) is a colour JPEG
    without EXIF rotation and libjpeg-turbo decodes it without a warning; else ``None`` (the
    caller then decodes with Pillow)."""
    if _simplejpeg is None or img.format != "JPEG" or img.mode != "RGB":
        return None
    if img.getexif().get(EXIF_ORIENTATION, 1) not in (0, 1):
        return None
    try:
        out = _simplejpeg.decode_jpeg(data, colorspace="BGR", strict=True)
    except ValueError:  # libjpeg-turbo's errors and (strict) warnings: Pillow decides
        return None
    if out.shape != (img.size[1], img.size[0], 3) or out.dtype != np.uint8:
        return None
    return np.ascontiguousarray(out)


def decode_image(
    data: bytes,
    *,
    max_pixels: int = MAX_PIXELS,
    min_side: int = MIN_SIDE,
    max_aspect_ratio: float | None = MAX_ASPECT_RATIO,
    name: str = "image",
    fit_pixels: int | None = None,
) -> np.ndarray:
    """Decode encoded image bytes to a BGR uint8 array (see the module docstring).

    The size limits (``min_side``, ``max_pixels``, ``max_aspect_ratio``) are checked on the
    header's declared size before any pixel is decoded, and again on the decoded array.

    With ``fit_pixels``, the decoded array has at most that many pixels: a JPEG declared larger
    is decoded at 1/2, 1/4 or 1/8 of its size (libjpeg's DCT scaling, the largest scale that
    fits: the full-size image is never in memory); any other image larger than ``fit_pixels``
    raises :class:`~facelive.errors.ImageTooLargeError` before decoding.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ImageError(f"{name}: expected bytes, got {type(data).__name__}")
    if len(data) == 0:
        raise EmptyImageError(f"{name}: empty file")
    raw = bytes(data)
    try:
        img = Image.open(io.BytesIO(raw))
        _check_bomb(img.size, name)
        fmt = img.format or "unknown"
        if fmt not in SUPPORTED_FORMATS:
            raise UnsupportedImageError(
                f"{name}: format {fmt} is not supported (use JPEG, PNG, BMP, WebP or TIFF)"
            )
        width, height = img.size
        _check_size(width, height, max_pixels=max_pixels, min_side=min_side,
                    max_aspect_ratio=max_aspect_ratio)
        out = None
        if fit_pixels is not None and width * height > fit_pixels:
            _reduce_on_decode(img, fit_pixels, name)
        else:
            out = _decode_jpeg_fast(raw, img)
        if out is None:
            img.load()
            if img.getexif().get(EXIF_ORIENTATION, 1) not in (0, 1):
                img = ImageOps.exif_transpose(img)
            out = _decode_pil(img)
    except ImageError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError,
            Image.DecompressionBombWarning) as exc:  # the warning: where the application
        # has made warnings errors, Pillow raises it from ``Image.open``
        if isinstance(exc, UnidentifiedImageError):
            raise UnsupportedImageError(f"{name}: not a recognised image file") from None
        raise ImageTooLargeError(f"{name}: {exc}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        msg = str(exc)
        if "truncated" in msg.lower() or "premature" in msg.lower() or isinstance(exc, EOFError):
            raise TruncatedImageError(f"{name}: truncated or incomplete image data") from None
        raise ImageError(f"{name}: cannot decode image ({msg})") from None
    except MemoryError:
        raise ImageTooLargeError(f"{name}: not enough memory to decode the image") from None
    h, w = out.shape[:2]
    _check_size(w, h, max_pixels=max_pixels, min_side=min_side, max_aspect_ratio=max_aspect_ratio)
    if fit_pixels is not None and w * h > fit_pixels:  # an EXIF rotation cannot grow it
        raise ImageTooLargeError(f"{name}: decoded at {w}x{h}, over {fit_pixels} pixels")
    return out


def _reduce_on_decode(img: Image.Image, fit_pixels: int, name: str) -> None:
    """Set ``img`` (header read, nothing decoded) to decode at the largest of 1/2, 1/4 or 1/8 of
    its size that has at most ``fit_pixels`` pixels (JPEG DCT scaling, Pillow's ``draft``);
    :class:`ImageTooLargeError` when it is not a JPEG or even 1/8 is too large."""
    width, height = img.size
    for d in (2, 4, 8):
        if -(-width // d) * -(-height // d) <= fit_pixels:
            break
    else:
        d = 0
    if d and img.format in ("JPEG", "MPO"):
        img.draft(img.mode, (max(1, width // d), max(1, height // d)))
    if img.size[0] * img.size[1] > fit_pixels:
        how = "even at 1/8 of its size" if img.format in ("JPEG", "MPO") else (
            "only a JPEG is decoded reduced")
        raise ImageTooLargeError(f"{name}: image is {width}x{height}, over {fit_pixels} pixels "
                                 f"({how})")


def load_image(
    source: str | os.PathLike[str] | bytes | np.ndarray,
    *,
    max_pixels: int = MAX_PIXELS,
    min_side: int = MIN_SIDE,
    max_aspect_ratio: float | None = MAX_ASPECT_RATIO,
) -> np.ndarray:
    """Load an image as a ``(H, W, 3)`` BGR ``uint8`` array.

    The format, size and aspect ratio are checked from the header before any pixel is decoded;
    the EXIF orientation is applied; grey, alpha, palette and 16-bit input is converted.

    Parameters
    ----------
    source : str, os.PathLike, bytes or numpy.ndarray
        A path, encoded bytes (JPEG, PNG, BMP, WebP or TIFF), or an array (grey, BGR or BGRA;
        arrays are taken to be in BGR order already).
    max_pixels : int, optional
        Largest accepted width x height (default 40 megapixels).
    min_side : int, optional
        Smallest accepted width and height (default 32).
    max_aspect_ratio : float or None, optional
        Largest accepted long side / short side (default 4); ``None`` turns the check off.

    Returns
    -------
    numpy.ndarray
        A C-contiguous ``uint8`` array of shape ``(H, W, 3)``, BGR.

    Raises
    ------
    facelive.ImageError
        A subclass with a specific message and ``code`` for missing, empty, truncated,
        unsupported, too small, too large or too thin input.

    Examples
    --------
    >>> import numpy as np
    >>> load_image(np.zeros((48, 64), np.uint8)).shape    # grey in, BGR out
    (48, 64, 3)
    >>> try:
    ...     load_image(b"not an image")
    ... except ImageError as exc:
    ...     print(exc.code)
    unsupported_image
    """
    if isinstance(source, np.ndarray):
        if source.ndim not in (2, 3) or source.size == 0:
            raise ImageError(f"expected a 2-D or 3-D image array, got shape {source.shape}")
        h, w = source.shape[:2]
        _check_size(w, h, max_pixels=max_pixels, min_side=min_side,
                    max_aspect_ratio=max_aspect_ratio)
        return _to_uint8_3ch(source)  # arrays are already BGR (or grey / BGRA)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return decode_image(bytes(source), max_pixels=max_pixels, min_side=min_side,
                            max_aspect_ratio=max_aspect_ratio)
    if not isinstance(source, (str, os.PathLike)):
        raise ImageError(f"expected a path, bytes or array, got {type(source).__name__}")
    path = Path(source)
    if not path.exists():
        raise ImageError(f"{path}: no such file", code="not_found")
    if not path.is_file():
        raise ImageError(f"{path}: not a regular file", code="not_a_file")
    size = path.stat().st_size
    if size == 0:
        raise EmptyImageError(f"{path}: empty file")
    if size > MAX_FILE_BYTES:
        raise ImageTooLargeError(f"{path}: file is {size} bytes, over {MAX_FILE_BYTES}")
    return decode_image(path.read_bytes(), max_pixels=max_pixels, min_side=min_side,
                        max_aspect_ratio=max_aspect_ratio, name=str(path))


def iter_image_paths(paths: list[str | os.PathLike[str]]) -> list[Path]:
    """Expand files and folders (recursively, sorted) into a list of image paths.

    Folders contribute files whose suffix is a known image suffix; files named explicitly are
    always kept (so that a bad file given by name is reported, not skipped).
    """
    out: list[Path] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            out.extend(
                sorted(
                    f for f in path.rglob("*")
                    if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES
                )
            )
        else:
            out.append(path)
    return out
