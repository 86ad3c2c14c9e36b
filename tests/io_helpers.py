"""Image files made in tests with Pillow and numpy, and a check of one-line errors (shared by
the tests of `tfstyle.io`)."""

import io
import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
RED, GREEN, BLUE, WHITE, BLACK = (1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 1), (0, 0, 0)


def write_file(path, im, **options):
    """Save a Pillow image and return the path."""
    im.save(path, **options)
    return path


def encode(im, image_format, **options):
    """Encode a Pillow image into bytes."""
    buffer = io.BytesIO()
    im.save(buffer, image_format, **options)
    return buffer.getvalue()


def noise(height, width, seed=0):
    """A reproducible random uint8 RGB image."""
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def gradient(height, width):
    """A smooth float RGB image in [0, 1], which JPEG compresses faithfully."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    return np.stack([x / (width - 1), y / (height - 1), (x + y) / (width + height - 2)], axis=-1)


def raises_one_line(error_type, match, function, *args, **kwargs):
    """Assert that a call raises `error_type` with a one-line message; return the message."""
    with pytest.raises(error_type, match=match) as info:
        function(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message and message.strip() == message
    return message


def png_with_size(width, height):
    """A tiny real PNG whose IHDR chunk is patched to declare another size, with a valid CRC."""
    data = bytearray(encode(Image.new("RGB", (1, 1), (10, 20, 30)), "PNG"))
    # Signature (8 bytes), then the IHDR chunk: length (4), type (4), width (4), height (4)...
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[12:29]))  # type + 13 bytes of data
    data[29:33] = struct.pack(">I", crc)
    return bytes(data)


def assert_image(pixels, shape):
    """Check the contract of `load_image`'s result."""
    assert pixels.dtype == np.float32
    assert pixels.shape == shape
    assert pixels.min() >= 0.0 and pixels.max() <= 1.0
