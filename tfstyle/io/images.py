"""Images: decoding any common file into float32 RGB, and encoding 8-bit PNG or JPEG.

Images come in as float32 `[H, W, 3]` RGB arrays in [0, 1], whatever their file's mode, and go
out as 8-bit PNG or JPEG, written atomically (`tfstyle.io.atomic`). Every problem with a user's
file surfaces as a one-line `ImageError` (input) or `OutputError` (output) naming the file.
"""

import functools
import io
import os
import re
import stat
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from tfstyle.errors import ConfigError, ImageError
from tfstyle.io.atomic import atomic_write_bytes
from tfstyle.io.modes import to_float_rgb
from tfstyle.io.paths import detail, image_format, quote, reason
from tfstyle.ops.preprocessing import fit_to_max_size, rgb_to_yuv, to_uint8
from tfstyle.settings.style import MAX_INPUT_PIXELS

# Raster formats we let Pillow open. An allowlist because some plugins do risky things on
# untrusted input (EPS runs Ghostscript) and others only decode niche scientific data.
_COMMON_FORMATS = ("PNG", "JPEG", "MPO", "BMP", "DIB", "GIF", "TIFF", "WEBP", "AVIF")
_READ_FORMATS = (*_COMMON_FORMATS, "JPEG2000", "PPM", "TGA", "QOI", "PSD", "ICO", "PCX", "SGI")
# Leading bytes of the formats users meet most, to tell a damaged image from a non-image.
_SIGNATURES = {
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"\xff\xd8\xff": "JPEG",
    b"GIF8": "GIF",
    b"BM": "BMP",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
    b"RIFF": "WebP",
}


def load_image(
    path: str | os.PathLike,
    *,
    max_size: int | None = None,
    max_pixels: int | None = MAX_INPUT_PIXELS,
) -> np.ndarray:
    """Load an image file as float32 RGB in [0, 1], upright as its EXIF orientation says.

    Transparent areas are composited onto white, greyscale is repeated into three channels, and
    16-bit greyscale images and 16- and 32-bit TIFFs keep their full range; a 16-bit RGB PNG is
    read with 8 bits per channel (Pillow decodes it so). Of an animated image only the first
    frame is used, with a `UserWarning`.

    Args:
        path: the image file.
        max_size: if given, an image whose longer side exceeds it is downscaled (Lanczos) so
            that its longer side equals `max_size`; smaller images are never upscaled.
        max_pixels: images with more than this many pixels (width * height, read from the
            header before any decoding) are refused as possible decompression bombs; None
            leaves only Pillow's own hard limit.

    Returns:
        A float32 array of shape `[H, W, 3]` with values in [0, 1].

    Raises:
        ImageError: the file is missing, unreadable, not an image, corrupt or too large.
        ConfigError: `max_size` or `max_pixels` is not a positive integer.
    """
    _check_positive_int("max_size", max_size)
    _check_positive_int("max_pixels", max_pixels)
    name = quote(path)
    with _open_file(path, name) as fp:
        pixels = _decode(fp, name, max_pixels)
    if max_size is not None:
        pixels = fit_to_max_size(pixels, max_size)
    return pixels


def load_mask(path: str | os.PathLike, *, max_pixels: int | None = MAX_INPUT_PIXELS) -> np.ndarray:
    """Load a mask file (tfstyle.ops.masks) as float32 greyscale `[H, W]` in [0, 1], white where it
    applies: any image `load_image` reads, as its luminance (BT.601), so a colour or
    transparent file (composited onto white) is read as it looks.

    Args:
        path: the mask file.
        max_pixels: refuse larger images (None: no limit).

    Returns:
        float32 `[H, W]` in [0, 1].

    Raises:
        ImageError: as `load_image` (missing, unreadable, not an image, too large).
    """
    pixels = load_image(path, max_pixels=max_pixels)
    return np.clip(rgb_to_yuv(pixels)[..., 0], 0.0, 1.0)


def _open_file(path: str | os.PathLike, name: str) -> io.BufferedReader:
    """Open an image file for reading, turning every OS-level problem into an ImageError."""
    try:
        info = os.stat(path)
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise ImageError(f"image file {name} not found") from exc
    except OSError as exc:
        raise ImageError(f"image file {name} cannot be read: {reason(exc)}") from exc
    if stat.S_ISDIR(info.st_mode):
        raise ImageError(f"{name} is a directory, not an image file")
    if not stat.S_ISREG(info.st_mode):
        # Opening a FIFO or a device could block forever or read without end.
        raise ImageError(f"{name} is not a regular file, so it cannot be an image")
    try:
        fp = open(path, "rb")  # noqa: SIM115 - the caller closes it with `with`
    except OSError as exc:
        raise ImageError(
            f"image file {name} cannot be read: {reason(exc)}; check its permissions"
        ) from exc
    # Checked on the open file, not by name, so it is the same file Pillow will read.
    if os.fstat(fp.fileno()).st_size == 0:
        fp.close()
        raise ImageError(f"image file {name} is empty (0 bytes)")
    return fp


def _decode(fp: io.BufferedReader, name: str, max_pixels: int | None) -> np.ndarray:
    """Decode an open image file into float32 RGB, refusing oversized images before decoding."""
    with warnings.catch_warnings():
        # Our own `max_pixels` check replaces Pillow's global limit; its warning is noise.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with _open_pillow(fp, name) as im:
            width, height = im.size
            if width * height == 0:
                raise ImageError(f"image file {name} has no pixels ({width}x{height})")
            if max_pixels is not None and width * height > max_pixels:
                raise _too_many_pixels(name, f"{width}x{height} = {width * height:,}", max_pixels)
            try:
                _warn_if_animated(im, name)
                # A full decode now, so that truncation is detected here and not later.
                im.load()
                ImageOps.exif_transpose(im, in_place=True)
                return to_float_rgb(im, name)
            except ImageError:
                raise
            except Exception as exc:
                # Pillow's decoders raise many types on corrupt data (OSError, SyntaxError,
                # struct.error, IndexError, ...); none of them is a bug of ours.
                raise _decode_failure(name, exc) from exc


def _open_pillow(fp: io.BufferedReader, name: str) -> Image.Image:
    """Read the image header with Pillow, turning its exceptions into ImageError."""
    try:
        return Image.open(fp, formats=_readable_formats())
    except UnidentifiedImageError as exc:
        kind = _signature(fp)
        if kind is not None:
            # Pillow reports a damaged header as "cannot identify", which would mislead.
            raise ImageError(
                f"image file {name} starts like a {kind} but its header is truncated or corrupt; "
                "re-export or re-download it"
            ) from exc
        raise ImageError(
            f"{name} is not an image Pillow can read (expected PNG, JPEG, BMP, GIF, TIFF, WebP...)"
        ) from exc
    except Image.DecompressionBombError as exc:
        raise _pillow_bomb(name, exc, _header_size(fp)) from exc
    except Exception as exc:
        raise _decode_failure(name, exc) from exc


def _header_size(fp: io.BufferedReader) -> tuple[int, int] | None:
    """(width, height) from the header, read by the format's plugin as `Image.open` does but
    without its size check (which refuses to say the size); None if no plugin reads it."""
    fp.seek(0)
    prefix = fp.read(16)
    for fmt in _readable_formats():
        factory, accept = Image.OPEN[fmt]
        verdict = accept(prefix) if accept else True
        if not verdict or isinstance(verdict, str):  # a string: "not this format, because"
            continue
        try:
            fp.seek(0)
            return factory(fp, "").size
        except Exception:
            continue
    return None


@functools.cache
def _readable_formats() -> tuple[str, ...]:
    """The allowed formats this Pillow has plugins for (it opens MPO via JPEG, AVIF is new)."""
    Image.init()
    return tuple(name for name in _READ_FORMATS if name in Image.OPEN)


def _signature(fp: io.BufferedReader) -> str | None:
    """Name the format whose signature a file starts with, if it is a common one."""
    fp.seek(0)
    head = fp.read(8)
    return next((kind for magic, kind in _SIGNATURES.items() if head.startswith(magic)), None)


def _decode_failure(name: str, exc: Exception) -> ImageError:
    """Describe why Pillow failed to decode a file, as one line."""
    if isinstance(exc, Image.DecompressionBombError):
        return _pillow_bomb(name, exc)
    if isinstance(exc, MemoryError):
        return ImageError(f"not enough memory to decode {name}; downscale it or lower max_pixels")
    return ImageError(
        f"image file {name} is truncated or corrupt ({detail(exc)}); re-export or re-download it"
    )


def _pillow_bomb(
    name: str, exc: Image.DecompressionBombError, size: tuple[int, int] | None = None
) -> ImageError:
    """Explain Pillow's own refusal, which happens in `Image.open` above twice its global limit:
    a hard limit that --max_pixels cannot raise, so the message must not advise raising it."""
    hard_limit = 2 * (Image.MAX_IMAGE_PIXELS or 0)
    if size is not None:
        width, height = size
        described = f"is {width}x{height} = {width * height:,} pixels"
    else:  # Pillow states the pixel count in its message only
        match = re.search(r"\((\d+) pixels\)", str(exc))
        described = f"has {int(match.group(1)):,} pixels" if match else "has too many pixels"
    return ImageError(
        f"{name} {described}, more than Pillow's hard limit of {hard_limit:,}, which "
        "--max_pixels cannot raise; downscale it with another tool first"
    )


def _too_many_pixels(name: str, described: str, max_pixels: int) -> ImageError:
    """The error for an image over `max_pixels`, saying how to raise the limit."""
    return ImageError(
        f"{name} is {described} pixels, more than the limit of {max_pixels:,} that guards "
        "against decompression bombs; if you trust the file, raise it with --max_pixels"
    )


def _warn_if_animated(im: Image.Image, name: str) -> None:
    """Warn that only the first frame of an animation or multi-page file is used."""
    # MPO is how Pillow opens many camera JPEGs: frame 0 is the photo, the rest are previews
    # or depth maps, so there is nothing to warn about.
    if im.format != "MPO" and getattr(im, "is_animated", False):
        warnings.warn(
            f"{name} has {im.n_frames} frames; only the first frame is used",
            UserWarning,
            stacklevel=4,
        )


def save_image(image: np.ndarray, path: str | os.PathLike, *, quality: int = 95) -> str:
    """Write an RGB image atomically as PNG or JPEG, chosen by the file's extension.

    Args:
        image: float `[H, W, 3]` or `[1, H, W, 3]` with values in [0, 1] (clipped; NaN becomes
            0), or uint8 `[H, W, 3]`. Anything array-like (a tensor) is accepted.
        path: the output file; .png, .jpg or .jpeg in any case.
        quality: JPEG quality, 1 to 100 (ignored for PNG).

    Returns:
        The absolute path written.

    Raises:
        OutputError: unsupported extension, missing directory or a failed write.
        ConfigError: `quality` is out of range.
        ValueError: the array does not have the shape of an RGB image (a bug of the caller).
    """
    target = os.path.abspath(os.fsdecode(path))
    return atomic_write_bytes(encode_image(image, image_format(target), quality=quality), target)


def encode_image(image: np.ndarray, kind: str = "PNG", *, quality: int = 95) -> bytes:
    """The bytes of `image` (as for `save_image`) as a "PNG" or "JPEG" file.

    Args:
        image: float `[H, W, 3]` in [0, 1] or uint8 (`[1, H, W, 3]` too).
        kind: "PNG" or "JPEG".
        quality: JPEG quality from 1 to 100 (4:4:4 chroma); ignored for PNG.

    Returns:
        The encoded file's bytes.

    Raises:
        ConfigError: `quality` is not an integer from 1 to 100.
        ValueError: the array does not have the shape of an RGB image (a bug of the caller).
    """
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:
        raise ConfigError(f"quality must be an integer from 1 to 100, got {quality!r}")
    buffer = io.BytesIO()
    # Full-resolution chroma: stylized images have fine colour texture that 4:2:0 smears.
    options = {"quality": quality, "subsampling": 0} if kind == "JPEG" else {}
    Image.fromarray(to_uint8(image)).save(buffer, kind, **options)
    return buffer.getvalue()


def decode_image(
    data: bytes,
    *,
    name: str = "image",
    max_size: int | None = None,
    max_pixels: int | None = MAX_INPUT_PIXELS,
) -> np.ndarray:
    """`load_image` for a file's bytes read elsewhere (a Beam filesystem, a network); `name`
    names it in errors.

    Args:
        data: the encoded file's bytes.
        name: how messages name it.
        max_size: downscale so the longer side is at most this, or None.
        max_pixels: refuse larger images (None: no limit).

    Returns:
        float32 `[H, W, 3]` in [0, 1].

    Raises:
        ImageError: empty, not an image, or too large.
        ConfigError: `max_size` or `max_pixels` is not a positive integer.
    """
    _check_positive_int("max_size", max_size)
    _check_positive_int("max_pixels", max_pixels)
    if not data:
        raise ImageError(f"image file {name} is empty (0 bytes)")
    pixels = _decode(io.BytesIO(data), name, max_pixels)
    return pixels if max_size is None else fit_to_max_size(pixels, max_size)


def _check_positive_int(name: str, value: int | None) -> None:
    """Raise ConfigError unless `value` is None or a positive int."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
