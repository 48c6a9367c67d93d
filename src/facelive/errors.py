"""Exceptions raised by facelive.

Every error carries a short machine-readable ``code`` (used by the CLI's JSON output and the web
API's ``{"error": {"code", "message"}}`` body) and a human-readable message.
"""

from __future__ import annotations


class FaceliveError(Exception):
    """Base class of every facelive error."""

    code = "facelive_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class ImageError(FaceliveError):
    """The input could not be used as an image."""

    code = "invalid_image"


class EmptyImageError(ImageError):
    code = "empty_image"


class UnsupportedImageError(ImageError):
    code = "unsupported_image"


class TruncatedImageError(ImageError):
    code = "truncated_image"


class ImageTooSmallError(ImageError):
    code = "image_too_small"


class ImageTooLargeError(ImageError):
    code = "image_too_large"


class ImageAspectRatioError(ImageError):
    """Width and height too unequal (a thin strip costs more than its pixel count says)."""

    code = "image_aspect_ratio"


class ModelError(FaceliveError):
    """A model file is missing, corrupt or fails its checksum."""

    code = "model_error"


class DatasetError(FaceliveError):
    """A dataset folder is missing or not laid out as expected."""

    code = "dataset_error"
