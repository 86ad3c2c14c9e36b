"""Tests of `tfstyle.image_io`: every image is generated here with Pillow and numpy."""

import errno
import io
import json
import os
import struct
import warnings
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from tfstyle import image_io
from tfstyle.errors import ConfigError, ImageError, OutputError
from tfstyle.image_io import (
    DEFAULT_MAX_PIXELS,
    atomic_write_bytes,
    check_output_path,
    is_image_file,
    load_image,
    save_image,
    save_json,
)

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
RED, GREEN, BLUE, WHITE, BLACK = (1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 1), (0, 0, 0)


def _write(path, im, **options):
    """Save a Pillow image and return the path."""
    im.save(path, **options)
    return path


def _encode(im, image_format, **options):
    """Encode a Pillow image into bytes."""
    buffer = io.BytesIO()
    im.save(buffer, image_format, **options)
    return buffer.getvalue()


def _noise(height, width, seed=0):
    """A reproducible random uint8 RGB image."""
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _gradient(height, width):
    """A smooth float RGB image in [0, 1], which JPEG compresses faithfully."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    return np.stack([x / (width - 1), y / (height - 1), (x + y) / (width + height - 2)], axis=-1)


def _raises(error_type, match, function, *args, **kwargs):
    """Assert that a call raises `error_type` with a one-line message; return the message."""
    with pytest.raises(error_type, match=match) as info:
        function(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message and message.strip() == message
    return message


def _png_with_size(width, height):
    """A tiny real PNG whose IHDR chunk is patched to declare another size, with a valid CRC."""
    data = bytearray(_encode(Image.new("RGB", (1, 1), (10, 20, 30)), "PNG"))
    # Signature (8 bytes), then the IHDR chunk: length (4), type (4), width (4), height (4)...
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[12:29]))  # type + 13 bytes of data
    data[29:33] = struct.pack(">I", crc)
    return bytes(data)


def _assert_image(pixels, shape):
    """Check the contract of `load_image`'s result."""
    assert pixels.dtype == np.float32
    assert pixels.shape == shape
    assert pixels.min() >= 0.0 and pixels.max() <= 1.0


# ---------------------------------------------------------------------------------------------
# Round trips


def test_png_round_trip_is_exact_to_8_bits(tmp_path):
    original = _noise(12, 17).astype(np.float32) / 255 + 0.001  # off the grid, rounds back
    path = save_image(original, tmp_path / "out.png")
    loaded = load_image(path)
    _assert_image(loaded, (12, 17, 3))
    np.testing.assert_allclose(loaded, original, atol=1 / 255)
    np.testing.assert_array_equal(np.rint(loaded * 255), np.rint(original * 255))


def test_jpeg_round_trip_is_close(tmp_path):
    original = _gradient(32, 48)
    loaded = load_image(save_image(original, tmp_path / "out.jpg", quality=95))
    _assert_image(loaded, (32, 48, 3))
    assert np.abs(loaded - original).mean() < 0.01
    assert np.abs(loaded - original).max() < 0.06


@pytest.mark.parametrize(
    ("name", "image_format"),
    [("OUT.PNG", "PNG"), ("out.JPG", "JPEG"), ("out.Jpeg", "JPEG"), ("out.jpeg", "JPEG")],
)
def test_extension_picks_format_case_insensitively(tmp_path, name, image_format):
    path = save_image(_gradient(8, 8), tmp_path / name)
    with Image.open(path) as im:
        assert im.format == image_format


def test_batched_and_uint8_inputs(tmp_path):
    pixels = _noise(5, 7)
    batched = load_image(
        save_image(pixels[np.newaxis].astype(np.float32) / 255, tmp_path / "a.png")
    )
    np.testing.assert_array_equal(np.rint(batched * 255), pixels)
    exact = load_image(save_image(pixels, tmp_path / "b.png"))
    np.testing.assert_array_equal(np.rint(exact * 255), pixels)


def test_save_clips_and_replaces_nan(tmp_path):
    pixels = np.array([[[-0.5, 1.5, np.nan], [np.inf, -np.inf, 0.5]]], dtype=np.float64)
    loaded = load_image(save_image(pixels, tmp_path / "clip.png"))
    np.testing.assert_allclose(loaded[0, 0], [0, 1, 0])
    np.testing.assert_allclose(loaded[0, 1], [1, 0, 128 / 255])


def test_save_returns_absolute_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert save_image(_gradient(4, 4), "rel.png") == str(tmp_path / "rel.png")
    assert save_json({"a": 1}, "rel.json") == str(tmp_path / "rel.json")
    assert atomic_write_bytes(b"x", "rel.bin") == str(tmp_path / "rel.bin")


@pytest.mark.parametrize("shape", [(4, 4), (4, 4, 4), (2, 4, 4, 3), (0, 4, 3)])
def test_save_rejects_arrays_that_are_not_rgb_images(tmp_path, shape):
    with pytest.raises(ValueError, match="shape"):
        save_image(np.zeros(shape, np.float32), tmp_path / "bad.png")
    assert os.listdir(tmp_path) == []


def test_save_rejects_bad_quality(tmp_path):
    for quality in (0, 101, 9.5, True):
        with pytest.raises(ConfigError, match="quality"):
            save_image(_gradient(4, 4), tmp_path / "q.jpg", quality=quality)


def test_non_ascii_names_with_spaces(tmp_path):
    path = tmp_path / "ünï cödé space.png"
    assert save_image(_gradient(6, 9), path) == str(path)
    _assert_image(load_image(path), (6, 9, 3))
    _assert_image(load_image(str(path)), (6, 9, 3))
    message = _raises(ImageError, "not found", load_image, tmp_path / "nö such fïle.png")
    assert "nö such fïle.png" in message


def test_tiny_and_extreme_aspect_images(tmp_path):
    one = _write(tmp_path / "one.png", Image.new("RGB", (1, 1), (0, 255, 0)))
    np.testing.assert_allclose(load_image(one), [[GREEN]])
    strip = _write(tmp_path / "strip.png", Image.fromarray(_noise(16, 4000)))
    _assert_image(load_image(strip), (16, 4000, 3))
    _assert_image(load_image(strip, max_size=1000), (4, 1000, 3))


# ---------------------------------------------------------------------------------------------
# Modes


def test_rgba_composites_onto_white(tmp_path):
    rgba = np.zeros((1, 3, 4), np.uint8)
    rgba[0, 0] = (255, 0, 0, 0)  # fully transparent red
    rgba[0, 1] = (255, 0, 0, 255)  # opaque red
    rgba[0, 2] = (0, 0, 0, 102)  # 40% black
    loaded = load_image(_write(tmp_path / "rgba.png", Image.fromarray(rgba)))
    np.testing.assert_allclose(loaded[0, 0], WHITE)
    np.testing.assert_allclose(loaded[0, 1], RED)
    np.testing.assert_allclose(loaded[0, 2], [0.6] * 3, atol=1e-6)


def test_la_composites_onto_white(tmp_path):
    im = Image.new("LA", (2, 1))
    im.putpixel((0, 0), (0, 0))
    im.putpixel((1, 0), (51, 255))
    loaded = load_image(_write(tmp_path / "la.png", im))
    np.testing.assert_allclose(loaded[0], [WHITE, [0.2] * 3], atol=1e-6)


def _palette_image():
    im = Image.new("P", (3, 1))
    im.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * 759)
    for x in range(3):
        im.putpixel((x, 0), x)
    return im


def test_palette(tmp_path):
    loaded = load_image(_write(tmp_path / "p.png", _palette_image()))
    np.testing.assert_allclose(loaded[0], [RED, GREEN, BLUE])


@pytest.mark.parametrize("name", ["p_trns.png", "p_trns.gif"])
def test_palette_transparency_becomes_white(tmp_path, name):
    path = _write(tmp_path / name, _palette_image(), transparency=1)
    with Image.open(path) as im:
        assert im.mode == "P" and im.info["transparency"] == 1
    np.testing.assert_allclose(load_image(path)[0], [RED, WHITE, BLUE])


def test_rgb_transparent_colour_becomes_white(tmp_path):
    pixels = np.array([[[1, 2, 3], [200, 100, 50]]], np.uint8)
    path = _write(tmp_path / "rgb_trns.png", Image.fromarray(pixels), transparency=(1, 2, 3))
    np.testing.assert_allclose(load_image(path)[0], [WHITE, np.array([200, 100, 50]) / 255])


def test_greyscale_and_bilevel(tmp_path):
    grey = load_image(_write(tmp_path / "l.png", Image.new("L", (2, 2), 128)))
    np.testing.assert_allclose(grey, np.full((2, 2, 3), 128 / 255))
    bilevel = Image.new("1", (2, 1))
    bilevel.putpixel((1, 0), 1)
    path = _write(tmp_path / "one_bit.png", bilevel)
    with Image.open(path) as im:
        assert im.mode == "1"
    np.testing.assert_allclose(load_image(path)[0], [BLACK, WHITE])


def test_cmyk_jpeg(tmp_path):
    path = _write(tmp_path / "cmyk.jpg", Image.new("CMYK", (16, 16), (0, 255, 255, 0)), quality=95)
    with Image.open(path) as im:
        assert im.mode == "CMYK"
    loaded = load_image(path)
    _assert_image(loaded, (16, 16, 3))
    np.testing.assert_allclose(loaded.mean(axis=(0, 1)), RED, atol=0.03)


def test_sixteen_bit_png_keeps_full_range(tmp_path):
    values = np.array([[0, 1000, 32768, 65535]], np.uint16)
    path = _write(tmp_path / "g16.png", Image.fromarray(values))
    with Image.open(path) as im:
        assert im.mode in ("I;16", "I")
    loaded = load_image(path)
    _assert_image(loaded, (1, 4, 3))
    np.testing.assert_allclose(loaded[0, :, 0], [0, 1000 / 65535, 32768 / 65535, 1], atol=1e-6)
    np.testing.assert_array_equal(loaded[..., 0], loaded[..., 2])


def test_sixteen_bit_big_endian_tiff(tmp_path):
    values = np.array([[0, 32768, 65535]], np.uint16)
    im = Image.frombuffer("I;16B", (3, 1), values.astype(">u2").tobytes(), "raw", "I;16B", 0, 1)
    path = _write(tmp_path / "g16b.tif", im)
    with Image.open(path) as reread:
        assert reread.mode == "I;16B"
    np.testing.assert_allclose(load_image(path)[0, :, 1], [0, 32768 / 65535, 1], atol=1e-6)


def test_thirty_two_bit_integer_tiff(tmp_path):
    sixteen = _write(tmp_path / "i16.tif", Image.fromarray(np.array([[0, 65535]], np.int32)))
    np.testing.assert_allclose(load_image(sixteen)[0, :, 0], [0, 1])
    wide = _write(tmp_path / "i32.tif", Image.fromarray(np.array([[-10, 45, 100]], np.int32)))
    with Image.open(wide) as im:
        assert im.mode == "I"
    np.testing.assert_allclose(load_image(wide)[0, :, 0], [0, 0.5, 1])


def test_float_tiff(tmp_path):
    unit = _write(tmp_path / "f.tif", Image.fromarray(np.array([[0, 0.25, 1]], np.float32)))
    with Image.open(unit) as im:
        assert im.mode == "F"
    np.testing.assert_allclose(load_image(unit)[0, :, 0], [0, 0.25, 1])
    byte_scale = Image.fromarray(np.array([[0, 127.5, 255]], np.float32))
    np.testing.assert_allclose(
        load_image(_write(tmp_path / "f255.tif", byte_scale))[0, :, 2], [0, 0.5, 1]
    )
    nan = _write(tmp_path / "nan.tif", Image.fromarray(np.array([[0, np.nan]], np.float32)))
    _raises(ImageError, "NaN", load_image, nan)


def test_ycbcr_and_lab_tiff(tmp_path):
    red = Image.new("RGB", (4, 4), (255, 0, 0))
    ycbcr = _write(tmp_path / "ycbcr.tif", red.convert("YCbCr"))
    with Image.open(ycbcr) as im:
        assert im.mode == "YCbCr"
    np.testing.assert_allclose(load_image(ycbcr)[0, 0], RED, atol=0.02)
    lab = _write(tmp_path / "lab.tif", Image.new("LAB", (2, 2), (128, 128, 128)))
    with Image.open(lab) as im:
        assert im.mode == "LAB"
    grey = load_image(lab)[0, 0]  # L = 50%, a = b = 0: a neutral mid grey
    assert np.ptp(grey) < 0.02 and 0.4 < grey[0] < 0.55


def test_hsv_converts_to_rgb():
    # Pillow cannot save HSV files, so the converter is tested directly.
    hsv = Image.new("RGB", (2, 2), (0, 0, 255)).convert("HSV")
    np.testing.assert_allclose(image_io._to_float_rgb(hsv, "'x'")[0, 0], BLUE, atol=0.01)


@pytest.mark.parametrize(("orientation", "turns"), [(3, 2), (6, -1), (8, 1)])
def test_exif_orientation_is_applied(tmp_path, orientation, turns):
    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, :] = (0, 0, 255)
    pixels[:10, :10] = (255, 0, 0)  # a red block in the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = _write(tmp_path / "exif.jpg", Image.fromarray(pixels), exif=exif, quality=95)
    loaded = load_image(path)
    expected = np.rot90(pixels, turns).astype(np.float32) / 255
    assert loaded.shape == expected.shape
    assert np.abs(loaded - expected).mean() < 0.02
    if orientation == 6:  # 90 degrees clockwise: stored top-left lands top-right
        assert loaded.shape == (40, 20, 3)
        np.testing.assert_allclose(loaded[2, 17], RED, atol=0.05)
        np.testing.assert_allclose(loaded[2, 2], BLUE, atol=0.05)


@pytest.mark.parametrize("name", ["anim.gif", "anim.png"])
def test_animation_uses_first_frame_with_warning(tmp_path, name):
    frames = [Image.new("RGB", (4, 4), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    path = tmp_path / name
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    with pytest.warns(UserWarning, match="only the first frame"):
        loaded = load_image(path)
    np.testing.assert_allclose(loaded, np.broadcast_to(RED, (4, 4, 3)))


def test_still_gif_does_not_warn(tmp_path):
    path = _write(tmp_path / "still.gif", Image.new("RGB", (4, 4), (0, 255, 0)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_allclose(load_image(path)[0, 0], GREEN)


# ---------------------------------------------------------------------------------------------
# max_size


def test_max_size_downscales_longer_side(tmp_path):
    wide = _write(tmp_path / "wide.png", Image.new("RGB", (400, 200), (255, 128, 0)))
    loaded = load_image(wide, max_size=100)
    _assert_image(loaded, (50, 100, 3))
    np.testing.assert_allclose(loaded, np.broadcast_to([1, 128 / 255, 0], (50, 100, 3)), atol=1e-5)
    tall = _write(tmp_path / "tall.png", Image.new("RGB", (200, 400)))
    _assert_image(load_image(tall, max_size=100), (100, 50, 3))


def test_max_size_never_upscales(tmp_path):
    path = _write(tmp_path / "small.png", Image.fromarray(_noise(20, 40)))
    np.testing.assert_array_equal(load_image(path, max_size=100), load_image(path))
    _assert_image(load_image(path, max_size=40), (20, 40, 3))


def test_max_size_keeps_sixteen_bit_precision(tmp_path):
    path = _write(tmp_path / "g16.png", Image.fromarray(np.full((300, 300), 1000, np.uint16)))
    loaded = load_image(path, max_size=100)
    _assert_image(loaded, (100, 100, 3))
    np.testing.assert_allclose(loaded, 1000 / 65535, atol=1e-6)  # 8 bits would give 4/255


def test_max_size_stays_in_range_at_sharp_edges(tmp_path):
    pixels = np.zeros((64, 64, 3), np.uint8)
    pixels[:, ::2] = 255  # Lanczos overshoots on this
    _assert_image(
        load_image(_write(tmp_path / "edges.png", Image.fromarray(pixels)), max_size=25),
        (25, 25, 3),
    )


@pytest.mark.parametrize("value", [0, -5, 2.5, "100", True])
def test_limits_must_be_positive_integers(tmp_path, value):
    path = _write(tmp_path / "x.png", Image.new("RGB", (2, 2)))
    with pytest.raises(ConfigError, match="max_size"):
        load_image(path, max_size=value)
    with pytest.raises(ConfigError, match="max_pixels"):
        load_image(path, max_pixels=value)


# ---------------------------------------------------------------------------------------------
# Bad input files


def test_missing_file(tmp_path, capsys):
    message = _raises(ImageError, "not found", load_image, tmp_path / "missing.png")
    assert "missing.png" in message
    _raises(ImageError, "not found", load_image, tmp_path / "no_dir" / "missing.png")
    assert capsys.readouterr() == ("", "")


def test_directory(tmp_path):
    (tmp_path / "dir.png").mkdir()
    _raises(ImageError, "dir.png' is a directory", load_image, tmp_path / "dir.png")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "pipe.png")
    _raises(ImageError, "not a regular file", load_image, tmp_path / "pipe.png")


def test_empty_file(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    _raises(ImageError, "empty.png' is empty", load_image, tmp_path / "empty.png")


def test_text_file_named_jpg(tmp_path):
    (tmp_path / "notes.jpg").write_text("this is not a picture\n")
    message = _raises(
        ImageError, "not an image Pillow can read", load_image, tmp_path / "notes.jpg"
    )
    assert "notes.jpg" in message


@pytest.mark.parametrize("image_format", ["PNG", "JPEG"])
def test_truncated_image(tmp_path, capsys, image_format):
    data = _encode(Image.fromarray(_noise(64, 64)), image_format)
    path = tmp_path / "cut.img"
    path.write_bytes(data[: len(data) // 2])
    message = _raises(ImageError, "truncated or corrupt", load_image, path)
    assert "cut.img" in message
    assert capsys.readouterr() == ("", "")


def test_damaged_header_is_not_called_a_non_image(tmp_path):
    data = _encode(Image.new("RGB", (8, 8)), "PNG")
    (tmp_path / "head.png").write_bytes(data[:20])
    _raises(ImageError, "head.png' is truncated or corrupt", load_image, tmp_path / "head.png")
    broken = bytearray(data)
    broken[20] ^= 0xFF  # inside IHDR: its CRC no longer matches, Pillow "cannot identify" it
    (tmp_path / "crc.png").write_bytes(bytes(broken))
    _raises(ImageError, "starts like a PNG but its header is", load_image, tmp_path / "crc.png")


def test_unreadable_file(tmp_path, monkeypatch):
    path = _write(tmp_path / "secret.png", Image.new("RGB", (2, 2)))
    if IS_ROOT:  # root reads anything, so simulate the refusal

        def refuse(*args, **kwargs):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))

        monkeypatch.setattr(image_io, "open", refuse, raising=False)
    else:
        os.chmod(path, 0)
    _raises(ImageError, "secret.png' cannot be read: Permission denied", load_image, path)


def test_decompression_bomb_header_is_refused_before_decoding(tmp_path):
    limit_before = Image.MAX_IMAGE_PIXELS
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_with_size(100_000, 100_000))  # 3 * 10^10 bytes if decoded
    # Over Pillow's hard limit, which raising ours cannot get past: the message names that
    # limit and the size, and does not advise raising --max_pixels.
    for max_pixels in (DEFAULT_MAX_PIXELS, 10**11):
        message = _raises(
            ImageError, "Pillow's hard limit", load_image, path, max_pixels=max_pixels
        )
        assert "is 100000x100000 = 10,000,000,000 pixels" in message and "bomb.png" in message
        assert f"{2 * Image.MAX_IMAGE_PIXELS:,}, which --max_pixels cannot raise" in message
    assert limit_before == Image.MAX_IMAGE_PIXELS


def test_large_header_below_pillows_hard_limit_is_refused_by_ours(tmp_path):
    # 144 million pixels: Pillow only warns at this size; our default limit refuses it. If the
    # pixels were decoded the tiny file would fail as truncated instead.
    path = tmp_path / "big.png"
    path.write_bytes(_png_with_size(12_000, 12_000))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        message = _raises(ImageError, "12000x12000 = 144,000,000 pixels", load_image, path)
    assert "limit of 128,000,000" in message
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]


def test_max_pixels_limit(tmp_path):
    path = _write(tmp_path / "hundred.png", Image.new("RGB", (100, 100)))
    message = _raises(ImageError, "more than the limit of 100 ", load_image, path, max_pixels=100)
    assert "100x100 = 10,000" in message and "--max_pixels" in message
    _assert_image(load_image(path, max_pixels=10_000), (100, 100, 3))


# ---------------------------------------------------------------------------------------------
# Writing


def test_missing_output_directory(tmp_path):
    target = tmp_path / "nowhere" / "out.png"
    _raises(OutputError, "nowhere' does not exist", save_image, _gradient(4, 4), target)
    _raises(OutputError, "does not exist", save_json, {}, tmp_path / "nowhere" / "r.json")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("name", ["out.gif", "out.txt", "out", "out.png.bak"])
def test_unsupported_output_extension(tmp_path, name):
    message = _raises(OutputError, "not supported", save_image, _gradient(4, 4), tmp_path / name)
    assert ".png, .jpg, .jpeg" in message and name in message
    assert os.listdir(tmp_path) == []


def test_output_path_is_a_directory(tmp_path):
    (tmp_path / "out.png").mkdir()
    _raises(OutputError, "is a directory", save_image, _gradient(4, 4), tmp_path / "out.png")


def test_existing_output_is_replaced_completely(tmp_path):
    target = tmp_path / "out.png"
    target.write_bytes(b"old content " * 10_000)
    os.chmod(target, 0o640)
    save_image(_gradient(8, 8), target)
    with Image.open(target) as im:
        assert im.format == "PNG" and im.size == (8, 8)
    assert os.listdir(tmp_path) == ["out.png"]
    assert os.stat(target).st_mode & 0o777 == 0o640  # the old file's permissions are kept


def test_new_file_gets_ordinary_permissions(tmp_path):
    old_umask = os.umask(0o022)
    try:
        save_image(_gradient(4, 4), tmp_path / "out.png")
    finally:
        os.umask(old_umask)
    assert os.stat(tmp_path / "out.png").st_mode & 0o777 == 0o644  # not mkstemp's 0o600


@pytest.mark.parametrize("failing", ["replace", "fsync"])
def test_failed_write_leaves_target_and_no_temporary_file(tmp_path, monkeypatch, failing):
    target = tmp_path / "out.png"
    target.write_bytes(b"previous")

    def fail(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, failing, fail)
    _raises(OutputError, "out.png': No space left on device", save_image, _gradient(4, 4), target)
    assert target.read_bytes() == b"previous"
    assert os.listdir(tmp_path) == ["out.png"]


def test_interrupted_write_cleans_up_and_propagates(tmp_path, monkeypatch):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupt)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_bytes(b"data", tmp_path / "out.bin")
    assert os.listdir(tmp_path) == []


def test_read_only_directory(tmp_path, monkeypatch):
    target = tmp_path / "out.png"
    target.write_bytes(b"previous")
    if IS_ROOT:  # root ignores permissions, so simulate the refusal where it would happen

        def refuse(*args, **kwargs):
            raise PermissionError(errno.EACCES, "Permission denied")

        monkeypatch.setattr(os, "replace", refuse)
    else:
        os.chmod(tmp_path, 0o500)
    try:
        _raises(OutputError, "Permission denied", save_image, _gradient(4, 4), target)
    finally:
        os.chmod(tmp_path, 0o700)
    assert target.read_bytes() == b"previous"
    assert os.listdir(tmp_path) == ["out.png"]


def test_save_json(tmp_path):
    data = {"zeta": 1, "alpha": [1.5, None], "name": "ünï cödé"}
    path = save_json(data, tmp_path / "run.json")
    text = (tmp_path / "run.json").read_text(encoding="utf-8")
    assert json.loads(text) == data
    assert text.endswith("}\n") and '  "zeta": 1' in text and "ünï cödé" in text
    assert text.index("zeta") < text.index("alpha")  # keys keep their order
    assert path == str(tmp_path / "run.json")


def test_atomic_write_bytes_replaces(tmp_path):
    target = tmp_path / "data.bin"
    atomic_write_bytes(b"first", target)
    atomic_write_bytes(b"second", target)
    assert target.read_bytes() == b"second"
    assert os.listdir(tmp_path) == ["data.bin"]


# ---------------------------------------------------------------------------------------------
# check_output_path and is_image_file


def test_check_output_path_accepts_and_creates_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert check_output_path("out.jpg", inputs=("content.jpg",)) == str(tmp_path / "out.jpg")
    assert os.listdir(tmp_path) == []


def test_check_output_path_refuses_inputs(tmp_path, monkeypatch):
    (tmp_path / "sub").mkdir()
    content = _write(tmp_path / "content.png", Image.new("RGB", (2, 2)))
    monkeypatch.chdir(tmp_path / "sub")
    message = _raises(
        OutputError,
        "refusing to overwrite input file",
        check_output_path,
        "../content.png",
        inputs=[str(content)],
    )
    assert "content.png" in message
    os.symlink(content, tmp_path / "link.png")
    _raises(OutputError, "refusing", check_output_path, tmp_path / "link.png", inputs=[content])
    # The same name before the input exists (e.g. an input still to be generated).
    _raises(OutputError, "refusing", check_output_path, "new.png", inputs=["./new.png"])
    assert check_output_path(tmp_path / "other.png", inputs=[content]) == str(
        tmp_path / "other.png"
    )


def test_check_output_path_failures(tmp_path, monkeypatch):
    (tmp_path / "dir.png").mkdir()
    _raises(OutputError, "is a directory", check_output_path, tmp_path / "dir.png")
    _raises(OutputError, "not supported", check_output_path, tmp_path / "out.bmp")
    _raises(OutputError, "does not exist", check_output_path, tmp_path / "missing" / "out.png")
    monkeypatch.setattr(os, "access", lambda *args, **kwargs: False)
    _raises(OutputError, "is not writable", check_output_path, tmp_path / "out.png")
    assert sorted(os.listdir(tmp_path)) == ["dir.png"]


def test_supported_extensions_are_saved(tmp_path):
    image = np.full((4, 6, 3), 0.5, np.float32)
    for extension in (".png", ".jpg", ".jpeg", ".PNG"):
        path = save_image(image, tmp_path / f"out{extension}")
        np.testing.assert_allclose(load_image(path), image, atol=1 / 255)
    message = _raises(OutputError, "not supported", check_output_path, tmp_path / "out.bmp")
    assert "use one of .png, .jpg, .jpeg" in message


def test_default_pixel_limit_is_128_million(tmp_path):
    # 16000x8000 is exactly the limit: not refused by it (the 1x1 file then fails to decode);
    # one row more is.
    path = tmp_path / "limit.png"
    path.write_bytes(_png_with_size(16_000, 8_000))
    _raises(ImageError, "is truncated or corrupt", load_image, path)
    path.write_bytes(_png_with_size(16_000, 8_001))
    _raises(ImageError, "16000x8001 = 128,016,000 pixels", load_image, path)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.png", True),
        ("b.JPG", True),
        ("dir/c.jpeg", True),
        ("d.bmp", True),
        ("e.gif", True),
        ("f.TIF", True),
        ("g.tiff", True),
        ("h.webp", True),
        ("notes.txt", False),
        ("png", False),
        (".png.bak", False),
    ],
)
def test_is_image_file(name, expected):
    assert is_image_file(name) is expected


# ---------------------------------------------------------------------------------------------
# Property: damaged files fail cleanly


def _seed_files():
    """Small valid files of several formats for the fuzzer to damage."""
    rgb = Image.fromarray(_noise(8, 8, seed=1))
    frames = [rgb, Image.fromarray(_noise(8, 8, seed=2))]
    gif = io.BytesIO()
    rgb.save(gif, "GIF", save_all=True, append_images=frames[1:])
    return [
        _encode(rgb, "PNG"),
        _encode(rgb.convert("RGBA"), "PNG"),
        _encode(Image.fromarray(np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000), "PNG"),
        _encode(rgb, "JPEG", quality=90),
        _encode(rgb, "BMP"),
        _encode(rgb, "TIFF"),
        _encode(rgb, "WEBP"),
        gif.getvalue(),
    ]


SEEDS = _seed_files()


@st.composite
def damaged_files(draw):
    """Random bytes, or a valid file with bytes flipped, cut, inserted or removed."""
    if draw(st.integers(0, 4)) == 0:
        return draw(st.binary(max_size=300))
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        operation = draw(st.sampled_from(["flip", "truncate", "insert", "delete"]))
        if operation == "flip" and at < len(data):
            data[at] ^= draw(st.integers(1, 255))
        elif operation == "truncate":
            del data[at:]
        elif operation == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        else:
            del data[at : at + draw(st.integers(1, 16))]
    return bytes(data)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=damaged_files(), max_size=st.sampled_from([None, 4]))
def test_damaged_files_load_or_raise_image_error(tmp_path_factory, data, max_size):
    path = tmp_path_factory.mktemp("fuzz") / "damaged.png"
    path.write_bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "only the first frame", Pillow's EXIF complaints
        try:
            pixels = load_image(path, max_size=max_size, max_pixels=1_000_000)
        except ImageError as error:
            assert "\n" not in str(error) and "damaged.png" in str(error)
            return
    assert pixels.dtype == np.float32 and pixels.ndim == 3 and pixels.shape[2] == 3
    assert np.isfinite(pixels).all() and pixels.min() >= 0 and pixels.max() <= 1
    if max_size is not None:
        assert max(pixels.shape[:2]) <= max_size


def test_creatable_directories_are_checked_without_creating_them(tmp_path):
    from tfstyle.image_io import check_directory, check_output_file, make_directories

    (tmp_path / "file.png").write_bytes(b"x")
    deep = tmp_path / "a" / "b"
    assert check_output_path(deep / "out.png", create_directory=True) == str(deep / "out.png")
    assert check_output_file(deep / "h.csv", extensions=(".csv",), create_directory=True)
    assert check_directory(deep, create=True) == str(deep)
    assert not (tmp_path / "a").exists()
    _raises(OutputError, "does not exist", check_directory, deep)
    blocked = tmp_path / "file.png" / "sub"
    _raises(OutputError, "file.png' is not a directory", check_directory, blocked, create=True)
    _raises(
        OutputError,
        "is not a directory",
        check_output_path,
        blocked / "out.png",
        create_directory=True,
    )
    assert make_directories(deep) == str(deep) and deep.is_dir()
    assert make_directories(deep) == str(deep)  # already there: nothing to do
    _raises(OutputError, "cannot create directory", make_directories, blocked)


def test_existing_paths_are_taken_literally_before_patterns_and_lists(tmp_path, monkeypatch):
    from tfstyle.image_io import expand_image_paths, split_path_list

    monkeypatch.chdir(tmp_path)
    for name in ("photo[1].png", "photo1.png", "a, b.png", "c.png"):
        (tmp_path / name).write_bytes(b"x")
    # `photo[1].png` as a pattern would match photo1.png only.
    assert expand_image_paths(["photo[1].png"]) == ["photo[1].png"]
    assert expand_image_paths(["photo[0-9].png"]) == ["photo1.png"]
    assert split_path_list("a, b.png") == ["a, b.png"]
    assert split_path_list('"a, b.png",c.png') == ["a, b.png", "c.png"]
    assert split_path_list("c.png, photo1.png") == ["c.png", "photo1.png"]
    assert split_path_list("") == []


def test_check_name_length(tmp_path):
    from tfstyle.image_io import check_name_length

    assert check_name_length(tmp_path / ("a" * 255)) == str(tmp_path / ("a" * 255))
    message = _raises(OutputError, "256 bytes long", check_name_length, tmp_path / ("a" * 256))
    assert "at most 255" in message
    # A folder still to be made is a name too; non-ASCII characters count in bytes.
    _raises(OutputError, "too long", check_name_length, tmp_path / ("ü" * 128) / "out.png")
    _raises(OutputError, "path is", check_name_length, tmp_path / "/".join(["d" * 200] * 25))
