"""Reading and writing images, JSON and checkpoint files: the only module of tfstyle that touches
the disk.

Images come in as float32 `[H, W, 3]` RGB arrays in [0, 1], whatever their file's mode, and go
out as 8-bit PNG or JPEG. Every problem with a user's file surfaces as a one-line `ImageError`
(input) or `OutputError` (output) naming the file; this module never prints.

Writes are atomic: the bytes go to a hidden temporary file in the target's directory, which is
then renamed onto the target, so an interrupted run never leaves a half-written output.
"""

import contextlib
import csv
import functools
import glob
import io
import json
import os
import re
import shutil
import stat
import tempfile
import warnings
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from tfstyle.config import MAX_PIXELS
from tfstyle.errors import CheckpointError, ConfigError, ImageError, OutputError

SUPPORTED_EXTENSIONS = (".png", ".jpg", ".jpeg")
# The limit lives with every other default, in config.py.
DEFAULT_MAX_PIXELS = MAX_PIXELS
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")

_SAVE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}
# Raster formats we let Pillow open. An allowlist because some plugins do risky things on
# untrusted input (EPS runs Ghostscript) and others only decode niche scientific data.
_COMMON_FORMATS = ("PNG", "JPEG", "MPO", "BMP", "DIB", "GIF", "TIFF", "WEBP", "AVIF")
_READ_FORMATS = (*_COMMON_FORMATS, "JPEG2000", "PPM", "TGA", "QOI", "PSD", "ICO", "PCX", "SGI")
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")
_MAX_DETAIL = 160  # characters of a Pillow message quoted in ours
_LANCZOS = Image.Resampling.LANCZOS
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


def is_image_file(path: str | os.PathLike) -> bool:
    """Tell whether a path names an image file, judging by its extension only.

    Args:
        path: file name or path; the file need not exist.

    Returns:
        True for .png, .jpg, .jpeg, .bmp, .gif, .tif, .tiff and .webp (any case).
    """
    return os.path.splitext(os.fsdecode(path))[1].lower() in IMAGE_EXTENSIONS


def expand_image_paths(specs: list[str | os.PathLike]) -> list[str]:
    """The files a list of command-line specs names: files, directories and glob patterns.

    An existing file gives itself (even if its name holds `*`, `?` or `[`), a directory its
    image files (by extension, not recursive) in sorted order, a pattern with `*`, `?` or `[`
    its matches in sorted order, anything else itself (so that loading it reports what is
    wrong). Order is kept and duplicates dropped.

    Raises:
        ImageError: a directory holds no image files, or a pattern matches nothing.
    """
    found = []
    for spec in specs:
        spec = os.fsdecode(spec)
        if os.path.isfile(spec):  # before patterns: `photo[1].png` is a file, not a pattern
            paths = [spec]
        elif os.path.isdir(spec):
            names = sorted(n for n in os.listdir(spec) if is_image_file(n))
            paths = [p for p in (os.path.join(spec, n) for n in names) if os.path.isfile(p)]
            if not paths:
                raise ImageError(f"directory {_quote(spec)} holds no image files")
        elif any(char in spec for char in "*?["):
            paths = sorted(p for p in glob.glob(os.path.expanduser(spec)) if os.path.isfile(p))
            if not paths:
                raise ImageError(f"no files match {_quote(spec)}")
        else:
            paths = [spec]
        found.extend(paths)
    return list(dict.fromkeys(found))


def split_path_list(text: str) -> list[str]:
    """Split a command-line list of paths: an existing path is taken whole (commas and all),
    anything else is split at commas as one CSV row, so `"a, b.png",c.png` names two files.

    Raises:
        ConfigError: the text is not a valid CSV row (a stray quote, a line break).
    """
    if not text:
        return []
    if os.path.exists(text):
        return [text]
    try:
        (row,) = csv.reader([text], strict=True)
    except (csv.Error, ValueError) as exc:
        raise ConfigError(f"cannot read {text!r} as a comma-separated list: {exc}") from None
    return [item.strip() for item in row]


# ---------------------------------------------------------------------------------------------
# Loading


def load_image(
    path: str | os.PathLike,
    *,
    max_size: int | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Load an image file as float32 RGB in [0, 1], upright as its EXIF orientation says.

    Transparent areas are composited onto white, greyscale is repeated into three channels and
    16-bit images keep their full range. Of an animated image only the first frame is used,
    with a `UserWarning`.

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
    name = _quote(path)
    with _open_file(path, name) as fp:
        pixels = _decode(fp, name, max_pixels)
    if max_size is not None:
        pixels = _downscale(pixels, max_size)
    return pixels


def _open_file(path: str | os.PathLike, name: str) -> io.BufferedReader:
    """Open an image file for reading, turning every OS-level problem into an ImageError."""
    try:
        info = os.stat(path)
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise ImageError(f"image file {name} not found") from exc
    except OSError as exc:
        raise ImageError(f"image file {name} cannot be read: {_reason(exc)}") from exc
    if stat.S_ISDIR(info.st_mode):
        raise ImageError(f"{name} is a directory, not an image file")
    if not stat.S_ISREG(info.st_mode):
        # Opening a FIFO or a device could block forever or read without end.
        raise ImageError(f"{name} is not a regular file, so it cannot be an image")
    try:
        fp = open(path, "rb")  # noqa: SIM115 - the caller closes it with `with`
    except OSError as exc:
        raise ImageError(
            f"image file {name} cannot be read: {_reason(exc)}; check its permissions"
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
                return _to_float_rgb(im, name)
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
    for image_format in _readable_formats():
        factory, accept = Image.OPEN[image_format]
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
        f"image file {name} is truncated or corrupt ({_detail(exc)}); re-export or re-download it"
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


def _to_float_rgb(im: Image.Image, name: str) -> np.ndarray:
    """Convert a decoded image of any mode to float32 RGB in [0, 1], alpha onto white."""
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


def _downscale(pixels: np.ndarray, max_size: int) -> np.ndarray:
    """Shrink an image so its longer side is `max_size`, keeping its aspect ratio."""
    height, width = pixels.shape[:2]
    longest = max(height, width)
    if longest <= max_size:
        return pixels
    size = (max(1, round(width * max_size / longest)), max(1, round(height * max_size / longest)))
    # Each channel as a float ("F") image, so 16-bit precision survives the resampling.
    channels = [
        np.asarray(Image.fromarray(np.ascontiguousarray(pixels[..., c])).resize(size, _LANCZOS))
        for c in range(3)
    ]
    # Lanczos overshoots at sharp edges.
    return np.clip(np.stack(channels, axis=-1), 0.0, 1.0).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Saving


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
    image_format = _save_format(target)
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:
        raise ConfigError(f"quality must be an integer from 1 to 100, got {quality!r}")
    buffer = io.BytesIO()
    # Full-resolution chroma: stylized images have fine colour texture that 4:2:0 smears.
    options = {"quality": quality, "subsampling": 0} if image_format == "JPEG" else {}
    Image.fromarray(_to_uint8(image)).save(buffer, image_format, **options)
    return atomic_write_bytes(buffer.getvalue(), target)


def save_json(data: object, path: str | os.PathLike) -> str:
    """Write a JSON document atomically (UTF-8, indented by 2, keys in their given order).

    Args:
        data: anything `json.dumps` accepts.
        path: the output file.

    Returns:
        The absolute path written.

    Raises:
        OutputError: missing directory or a failed write.
    """
    text = json.dumps(data, indent=2, sort_keys=False, ensure_ascii=False) + "\n"
    return atomic_write_bytes(text.encode("utf-8"), path)


def save_csv(rows: list[dict], path: str | os.PathLike, *, columns: list[str]) -> str:
    """Write rows as a CSV file atomically (UTF-8, a header line, `\n` line ends).

    Args:
        rows: one dict per line; keys missing from a row are left empty, extra keys ignored.
        path: the output file.
        columns: the header, in order.

    Returns:
        The absolute path written.

    Raises:
        OutputError: missing directory or a failed write.
    """
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return atomic_write_bytes(buffer.getvalue().encode("utf-8"), path)


def check_output_file(
    path: str | os.PathLike, *, extensions: tuple[str, ...], create_directory: bool = False
) -> str:
    """Check, before any work, that a non-image output file (a log, a plot) can be written.

    Args:
        path: the intended file.
        extensions: the allowed extensions, lower case with the dot (".json", ".csv").
        create_directory: accept a missing directory that `make_directories` could create.

    Returns:
        The absolute path.

    Raises:
        OutputError: a wrong extension, the path is a directory, or its directory is missing
            (or, with `create_directory`, cannot be created).
    """
    target = os.path.abspath(os.fsdecode(path))
    extension = os.path.splitext(target)[1].lower()
    if extension not in extensions:
        raise OutputError(
            f"cannot write {_quote(target)}: use a name ending in {' or '.join(extensions)}"
        )
    if os.path.isdir(target):
        raise OutputError(f"cannot write {_quote(target)}: it is a directory")
    _check_directory(target, create=create_directory)
    check_name_length(target)
    return target


def save_npz(arrays: dict[str, np.ndarray], path: str | os.PathLike) -> str:
    """Write NumPy arrays atomically as an uncompressed `.npz` file (a checkpoint).

    Args:
        arrays: `{name: array}`; no object arrays (they would need pickling to load).
        path: the output file.

    Returns:
        The absolute path written.

    Raises:
        OutputError: missing directory or a failed write.
    """
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return atomic_write_bytes(buffer.getvalue(), path)


def load_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read every array of an `.npz` file written by `save_npz` (pickles are refused).

    Args:
        path: the file.

    Returns:
        `{name: array}`.

    Raises:
        CheckpointError: the file is missing, unreadable or not an intact `.npz` file.
    """
    name = _quote(path)
    _check_npz_signature(path, name)
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except FileNotFoundError as exc:
        raise CheckpointError(f"checkpoint {name} not found") from exc
    except OSError as exc:
        raise CheckpointError(f"checkpoint {name} cannot be read: {_reason(exc)}") from exc
    except Exception as exc:  # zipfile.BadZipFile, ValueError, EOFError...: a damaged file
        raise CheckpointError(
            f"checkpoint {name} is damaged or not a checkpoint ({_detail(exc)})"
        ) from exc


def _check_npz_signature(path: str | os.PathLike, name: str) -> None:
    """Refuse a file that is not a zip archive (as every .npz is) before NumPy reads it: NumPy
    takes any other file for a pickle and advises `allow_pickle=`."""
    try:
        with open(path, "rb") as file:
            head = file.read(4)
    except OSError:
        return  # np.load reports it below, with the OS's reason
    if head not in (b"PK\x03\x04", b"PK\x05\x06"):
        raise CheckpointError(f"{name} is not a tfstyle checkpoint (not an .npz file)")


def remove_file(path: str | os.PathLike) -> bool:
    """Delete a file if it exists; returns whether it did.

    Raises:
        OutputError: the file exists and cannot be deleted.
    """
    try:
        os.remove(path)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise OutputError(f"cannot remove {_quote(path)}: {_reason(exc)}") from exc
    return True


def atomic_write_bytes(data: bytes, path: str | os.PathLike) -> str:
    """Write bytes to a file so that it holds either its old content or all of the new one.

    The bytes go to a hidden temporary file in the same directory (a rename is only atomic
    within one file system), are flushed to disk, and the file is renamed onto the target.
    On any failure the temporary file is removed.

    Args:
        data: the file's complete content.
        path: the file to create or replace.

    Returns:
        The absolute path written.

    Raises:
        OutputError: the directory is missing or not writable, the path is a directory, or
            writing fails (disk full...).
    """
    target = os.path.abspath(os.fsdecode(path))
    _check_directory(target)
    if os.path.isdir(target):
        raise OutputError(f"cannot write {_quote(target)}: it is a directory")
    mode = _new_file_mode(target)
    try:
        fd, temporary = tempfile.mkstemp(
            prefix="." + os.path.basename(target)[:100] + ".",
            suffix=".tmp",
            dir=os.path.dirname(target),
        )
    except OSError as exc:
        raise OutputError(f"cannot write {_quote(target)}: {_reason(exc)}") from exc
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException as exc:
        _remove_quietly(temporary)
        if isinstance(exc, OSError):
            raise OutputError(f"cannot write {_quote(target)}: {_reason(exc)}") from exc
        raise
    _fsync_directory(os.path.dirname(target))
    return target


def write_directory(
    path: str | os.PathLike,
    write: Callable[[str], object],
    *,
    overwrite: bool = False,
) -> str:
    """Create a directory whole or not at all: `write` fills a hidden temporary directory beside
    it, which is then renamed into place (a SavedModel export, for instance).

    Missing parent directories are created. With `overwrite`, an existing directory is replaced
    only after the new one is complete.

    Args:
        path: the directory to create.
        write: called with the temporary directory's path; writes the content there.
        overwrite: replace `path` if it exists.

    Returns:
        The absolute path written.

    Raises:
        OutputError: `path` exists and `overwrite` is false, is a file, or cannot be written.
    """
    target = check_new_directory(path, overwrite=overwrite)
    parent = os.path.dirname(target)
    hidden = "." + os.path.basename(target)[:100] + "."
    try:
        os.makedirs(parent, exist_ok=True)
        temporary = tempfile.mkdtemp(prefix=hidden, dir=parent)
    except OSError as exc:
        raise OutputError(f"cannot write {_quote(target)}: {_reason(exc)}") from exc
    old = None
    try:
        write(temporary)
        if os.path.exists(target):
            # Moved aside, not deleted, until the new directory is in place.
            old = tempfile.mkdtemp(prefix=hidden + "old.", dir=parent)
            os.replace(target, os.path.join(old, "previous"))
        try:
            os.replace(temporary, target)
        except OSError:
            if old is not None:
                os.replace(os.path.join(old, "previous"), target)
            raise
    except BaseException as exc:
        shutil.rmtree(temporary, ignore_errors=True)
        if isinstance(exc, OSError):
            raise OutputError(f"cannot write {_quote(target)}: {_reason(exc)}") from exc
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    _fsync_directory(parent)
    return target


def check_new_directory(path: str | os.PathLike, *, overwrite: bool = False) -> str:
    """Check, before any work, that `write_directory(path, ..., overwrite=overwrite)` may write
    there: no file has that name, and it does not exist unless `overwrite`.

    Returns:
        The absolute path.

    Raises:
        OutputError: a file has that name, or the directory exists and not `overwrite`.
    """
    target = os.path.abspath(os.fsdecode(path))
    if os.path.isfile(target):
        raise OutputError(f"cannot write directory {_quote(target)}: a file has that name")
    if os.path.exists(target) and not overwrite:
        raise OutputError(f"{_quote(target)} already exists; remove it or pass --overwrite")
    return target


def check_output_path(
    path: str | os.PathLike,
    *,
    inputs: tuple[str | os.PathLike, ...] = (),
    create_directory: bool = False,
) -> str:
    """Check that an image can be written to a path, before any work starts; creates nothing.

    Args:
        path: the intended output image.
        inputs: the run's input files, none of which may be overwritten.
        create_directory: accept a missing directory that `make_directories` could create.

    Returns:
        The absolute output path.

    Raises:
        OutputError: unsupported extension, the path is a directory, its directory is missing
            (or, with `create_directory`, cannot be created) or not writable, or it is one of
            the inputs.
    """
    target = os.path.abspath(os.fsdecode(path))
    if os.path.isdir(target):
        raise OutputError(f"output {_quote(target)} is a directory; give a file name like out.png")
    _save_format(target)
    _check_directory(target, create=create_directory, writable=True)
    check_name_length(target)
    check_not_input(target, inputs=inputs)
    return target


def check_directory(path: str | os.PathLike, *, create: bool = False) -> str:
    """Check, creating nothing, that files can be written in a directory: it exists (or, with
    `create`, it or its missing parents can be created where the nearest existing folder is)
    and is writable.

    Returns:
        The absolute path.

    Raises:
        OutputError: naming the part of the path that is in the way.
    """
    target = os.path.abspath(os.fsdecode(path))
    problem = _directory_problem(target, create=create, writable=True)
    if problem:
        raise OutputError(f"cannot write in {_quote(target)}: {problem}")
    check_name_length(target)
    return target


def check_name_length(path: str | os.PathLike) -> str:
    """Check, creating nothing, that the file system can hold a path's name: no part of it (the
    file's name, a folder still to be made) longer than its limit (NAME_MAX, usually 255 bytes),
    nor the whole path longer than PATH_MAX.

    Returns:
        The absolute path.

    Raises:
        OutputError: naming the limit and the length.
    """
    target = os.path.abspath(os.fsdecode(path))
    existing = os.path.dirname(target)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    name_max = _path_limit(existing, "PC_NAME_MAX", 255)
    path_max = _path_limit(existing, "PC_PATH_MAX", 4096)
    for part in os.path.relpath(target, existing).split(os.sep):
        if len(os.fsencode(part)) > name_max:
            raise OutputError(
                f"cannot write {_quote(target)}: the name {_quote(part[:40] + '...')} is "
                f"{len(os.fsencode(part))} bytes long, too long for this file system (at most "
                f"{name_max}); choose a shorter name"
            )
    if len(os.fsencode(target)) >= path_max:
        raise OutputError(
            f"cannot write {_quote(target)}: the path is {len(os.fsencode(target))} bytes long, "
            f"too long for this file system (less than {path_max}); choose a shorter path"
        )
    return target


def _path_limit(directory: str, name: str, default: int) -> int:
    try:
        return os.pathconf(directory, name)
    except (OSError, ValueError, AttributeError):  # not POSIX, or no limit reported
        return default


def make_directories(path: str | os.PathLike) -> str:
    """Create a directory and its missing parents (nothing if it exists), like `mkdir -p`.

    Returns:
        The absolute path.

    Raises:
        OutputError: it cannot be created (a file in the way, no permission...).
    """
    target = os.path.abspath(os.fsdecode(path))
    try:
        os.makedirs(target, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create directory {_quote(target)}: {_reason(exc)}") from exc
    return target


def check_not_input(path: str | os.PathLike, *, inputs: tuple[str | os.PathLike, ...]) -> str:
    """Refuse a path that names one of `inputs` (through links or any relative spelling).

    Args:
        path: a file the run will write (an image, its JSON report, a checkpoint).
        inputs: the run's input files.

    Returns:
        The absolute path.

    Raises:
        OutputError: `path` is one of the inputs.
    """
    target = os.path.abspath(os.fsdecode(path))
    for source in inputs:
        if _same_file(target, source):
            raise OutputError(
                f"refusing to overwrite input file {_quote(target)}; choose another output path"
            )
    return target


def _save_format(target: str) -> str:
    """Return Pillow's format name for an output path's extension, or raise OutputError."""
    extension = os.path.splitext(target)[1]
    if extension.lower() in _SAVE_FORMATS:
        return _SAVE_FORMATS[extension.lower()]
    found = f"extension {extension!r}" if extension else "no extension"
    raise OutputError(
        f"cannot write {_quote(target)}: {found} is not supported; "
        f"use one of {', '.join(SUPPORTED_EXTENSIONS)}"
    )


def _check_directory(target: str, *, create: bool = False, writable: bool = False) -> None:
    """Raise OutputError unless the directory that would hold `target` exists (or, with
    `create`, could be created), and, with `writable`, lets files be created in it."""
    problem = _directory_problem(os.path.dirname(target), create=create, writable=writable)
    if problem:
        raise OutputError(f"cannot write {_quote(target)}: {problem}")


def _directory_problem(directory: str, *, create: bool, writable: bool) -> str | None:
    """Why files cannot be written in `directory` (see `_check_directory`), or None."""
    if not os.path.exists(directory):
        if not create:
            return f"directory {_quote(directory)} does not exist; create it first"
        existing = directory
        while not os.path.exists(existing):
            existing = os.path.dirname(existing)
        if not os.path.isdir(existing):
            return f"{_quote(existing)} is not a directory"
        if not os.access(existing, os.W_OK | os.X_OK):
            return f"directory {_quote(existing)} is not writable, so no folder can be made in it"
        return None
    if not os.path.isdir(directory):
        return f"{_quote(directory)} is not a directory"
    if writable and not os.access(directory, os.W_OK | os.X_OK):
        return f"directory {_quote(directory)} is not writable"
    return None


def _same_file(target: str, other: str | os.PathLike) -> bool:
    """Tell whether two paths name the same file, following links and relative spellings."""
    other = os.fsdecode(other)
    if os.path.exists(target) and os.path.exists(other):
        try:
            return os.path.samefile(target, other)
        except OSError:
            pass  # fall back on comparing names
    return os.path.realpath(target) == os.path.realpath(other)


def _to_uint8(image: np.ndarray) -> np.ndarray:
    """Convert an RGB image (float in [0, 1] or uint8, optionally batched by 1) to uint8."""
    pixels = np.asarray(image)
    if pixels.ndim == 4 and pixels.shape[0] == 1:
        pixels = pixels[0]
    if pixels.ndim != 3 or pixels.shape[-1] != 3 or 0 in pixels.shape:
        raise ValueError(
            f"expected an image of shape [H, W, 3] or [1, H, W, 3], got {pixels.shape}"
        )
    if pixels.dtype == np.uint8:
        return np.ascontiguousarray(pixels)
    if not np.issubdtype(pixels.dtype, np.floating):
        raise ValueError(f"expected a float or uint8 image, got dtype {pixels.dtype}")
    # NaN would become an arbitrary byte; black makes the damage visible instead.
    pixels = np.nan_to_num(pixels.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0)
    return np.rint(np.clip(pixels, 0.0, 1.0) * 255.0).astype(np.uint8)


def _new_file_mode(target: str) -> int:
    """Permissions for the written file: the old file's, or what `open` would give a new one."""
    try:
        return stat.S_IMODE(os.stat(target).st_mode)
    except OSError:
        pass
    # mkstemp creates files readable by the owner only; there is no way to read the umask
    # without setting it.
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _fsync_directory(directory: str) -> None:
    """Flush a directory entry to disk so the rename survives a crash; best effort."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot sync directories; the file itself is already safe
    finally:
        os.close(fd)


def _remove_quietly(path: str) -> None:
    """Delete a file if it exists, ignoring failures (used while handling another error)."""
    with contextlib.suppress(OSError):
        os.remove(path)


# ---------------------------------------------------------------------------------------------
# Messages


def _check_positive_int(name: str, value: int | None) -> None:
    """Raise ConfigError unless `value` is None or a positive int."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")


def _quote(path: str | os.PathLike) -> str:
    """Quote a path for a one-line message (escaped where it holds control characters)."""
    text = os.fsdecode(path)
    return f"'{text}'" if text.isprintable() else repr(text)


def _reason(exc: OSError) -> str:
    """The OS's words for a failure, e.g. 'Permission denied'."""
    return exc.strerror or _detail(exc)


def _detail(exc: BaseException) -> str:
    """An exception's message squeezed onto one short line."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 3] + "..."
