"""facelive: face liveness (presentation-attack detection) for the web."""

from facelive.errors import FaceliveError, ImageError, ModelError
from facelive.imageio import load_image

__version__ = "0.1.0"
__all__ = ["FaceliveError", "ImageError", "ModelError", "load_image", "__version__"]
