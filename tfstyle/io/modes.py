"""Pillow image modes to float32 RGB in [0, 1]: 8-bit and 16-bit, greyscale and palette, alpha
composited onto white, CMYK, LAB, 32-bit integer and float images. Used by `images` only."""

import numpy as np
from PIL import Image, ImageCms

from tfstyle.errors import ImageError

_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")


def to_float_rgb(im: Image.Image, name: str) -> np.ndarray:
    """Convert a decoded image of any mode to float32 RGB in [0, 1], alpha onto white.

    Args:
        im: a Pillow image, loaded.
        name: how messages name it.

    Returns:
        float32 `[H, W, 3]`.

    Raises:
        ImageError: a float image with NaN or infinite values.
    """
    if im.mode in _SIXTEEN_BIT_MODES:
        # Pillow's own conversion to RGB would clip these at 255 instead of scaling them.
        grey = np.asarray(im).astype(np.float32) / 65535.0
    elif im.mode == "I":
        grey = _scale_int32(np.asarray(im))
    elif im.mode == "F":
        grey = _scale_float(np.asarray(im), name)
    elif im.mode == "LAB":
        # `Image.convert` treats LAB bands as if they were RGB; a colour transform is needed.
        transform = ImageCms.buildTransform(
            ImageCms.createProfile("LAB"), ImageCms.createProfile("sRGB"), "LAB", "RGB"
        )
        return _unit(np.asarray(ImageCms.applyTransform(im, transform)))
    elif _has_alpha(im):
        rgba = _unit(np.asarray(im.convert("RGBA")))
        alpha = rgba[..., 3:]
        return np.ascontiguousarray(rgba[..., :3] * alpha + (1.0 - alpha), dtype=np.float32)
    else:
        # RGB, L, 1, P, CMYK, YCbCr, HSV...: Pillow's conversion is the right one.
        return _unit(np.asarray(im.convert("RGB")))
    return np.repeat(np.clip(grey, 0.0, 1.0)[..., np.newaxis], 3, axis=2)


def _has_alpha(im: Image.Image) -> bool:
    """Tell whether an image has an alpha band or a transparent colour (PNG tRNS, GIF)."""
    bands = im.getbands()
    return "A" in bands or "a" in bands or "transparency" in im.info


def _scale_int32(values: np.ndarray) -> np.ndarray:
    """Scale a 32-bit integer ("I") image to [0, 1].

    Pillow uses this mode for 16-bit data from some formats, so values within 0..65535 are read
    as 16-bit; anything wider has no standard range and is stretched from its minimum to its
    maximum.
    """
    values = values.astype(np.float64)
    low, high = float(values.min()), float(values.max())
    if low >= 0 and high <= 65535:
        return (values / 65535.0).astype(np.float32)
    return ((values - low) / ((high - low) or 1.0)).astype(np.float32)


def _scale_float(values: np.ndarray, name: str) -> np.ndarray:
    """Scale a 32-bit float ("F") image to [0, 1].

    Values already within [0, 1] are taken as they are; otherwise they are read on Pillow's
    scale for "F" images (the one `convert("F")` of an 8-bit image gives), 0..255.
    """
    if not np.isfinite(values).all():
        raise ImageError(f"image file {name} contains NaN or infinite pixel values")
    if values.min() >= 0.0 and values.max() <= 1.0:
        return values.astype(np.float32)
    return (values / np.float32(255.0)).astype(np.float32)


def _unit(values: np.ndarray) -> np.ndarray:
    """Map 8-bit values to float32 in [0, 1]."""
    return values.astype(np.float32) / np.float32(255.0)
