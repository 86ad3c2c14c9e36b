"""Tests of `tfstyle.io.images`: decoding and encoding; every image is generated here."""

import errno
import io
import os
import warnings

import numpy as np
import PIL
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from io_helpers import (
    BLACK,
    BLUE,
    GREEN,
    IS_ROOT,
    RED,
    WHITE,
    assert_image,
    encode,
    gradient,
    noise,
    png_with_size,
    raises_one_line,
    write_file,
)
from PIL import Image

from tfstyle.errors import ConfigError, ImageError
from tfstyle.io import (
    atomic_write_bytes,
    images,
    load_image,
    modes,
    save_image,
    save_json,
)
from tfstyle.settings.style import MAX_INPUT_PIXELS

# ---------------------------------------------------------------------------------------------
# Round trips


def test_png_round_trip_is_exact_to_8_bits(tmp_path):
    original = noise(12, 17).astype(np.float32) / 255 + 0.001  # off the grid, rounds back
    path = save_image(original, tmp_path / "out.png")
    loaded = load_image(path)
    assert_image(loaded, (12, 17, 3))
    np.testing.assert_allclose(loaded, original, atol=1 / 255)
    np.testing.assert_array_equal(np.rint(loaded * 255), np.rint(original * 255))


def test_jpeg_round_trip_is_close(tmp_path):
    original = gradient(32, 48)
    loaded = load_image(save_image(original, tmp_path / "out.jpg", quality=95))
    assert_image(loaded, (32, 48, 3))
    assert np.abs(loaded - original).mean() < 0.01
    assert np.abs(loaded - original).max() < 0.06


@pytest.mark.parametrize(
    ("name", "image_format"),
    [("OUT.PNG", "PNG"), ("out.JPG", "JPEG"), ("out.Jpeg", "JPEG"), ("out.jpeg", "JPEG")],
)
def test_extension_picks_format_case_insensitively(tmp_path, name, image_format):
    path = save_image(gradient(8, 8), tmp_path / name)
    with Image.open(path) as im:
        assert im.format == image_format


def test_batched_and_uint8_inputs(tmp_path):
    pixels = noise(5, 7)
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
    assert save_image(gradient(4, 4), "rel.png") == str(tmp_path / "rel.png")
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
            save_image(gradient(4, 4), tmp_path / "q.jpg", quality=quality)


def test_non_ascii_names_with_spaces(tmp_path):
    path = tmp_path / "ünï cödé space.png"
    assert save_image(gradient(6, 9), path) == str(path)
    assert_image(load_image(path), (6, 9, 3))
    assert_image(load_image(str(path)), (6, 9, 3))
    message = raises_one_line(ImageError, "not found", load_image, tmp_path / "nö such fïle.png")
    assert "nö such fïle.png" in message


def test_tiny_and_extreme_aspect_images(tmp_path):
    one = write_file(tmp_path / "one.png", Image.new("RGB", (1, 1), (0, 255, 0)))
    np.testing.assert_allclose(load_image(one), [[GREEN]])
    strip = write_file(tmp_path / "strip.png", Image.fromarray(noise(16, 4000)))
    assert_image(load_image(strip), (16, 4000, 3))
    assert_image(load_image(strip, max_size=1000), (4, 1000, 3))


# ---------------------------------------------------------------------------------------------
# Modes


def test_rgba_composites_onto_white(tmp_path):
    rgba = np.zeros((1, 3, 4), np.uint8)
    rgba[0, 0] = (255, 0, 0, 0)  # fully transparent red
    rgba[0, 1] = (255, 0, 0, 255)  # opaque red
    rgba[0, 2] = (0, 0, 0, 102)  # 40% black
    loaded = load_image(write_file(tmp_path / "rgba.png", Image.fromarray(rgba)))
    np.testing.assert_allclose(loaded[0, 0], WHITE)
    np.testing.assert_allclose(loaded[0, 1], RED)
    np.testing.assert_allclose(loaded[0, 2], [0.6] * 3, atol=1e-6)


def test_la_composites_onto_white(tmp_path):
    im = Image.new("LA", (2, 1))
    im.putpixel((0, 0), (0, 0))
    im.putpixel((1, 0), (51, 255))
    loaded = load_image(write_file(tmp_path / "la.png", im))
    np.testing.assert_allclose(loaded[0], [WHITE, [0.2] * 3], atol=1e-6)


def _palette_image():
    im = Image.new("P", (3, 1))
    im.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * 759)
    for x in range(3):
        im.putpixel((x, 0), x)
    return im


def test_palette(tmp_path):
    loaded = load_image(write_file(tmp_path / "p.png", _palette_image()))
    np.testing.assert_allclose(loaded[0], [RED, GREEN, BLUE])


@pytest.mark.parametrize("name", ["p_trns.png", "p_trns.gif"])
def test_palette_transparency_becomes_white(tmp_path, name):
    path = write_file(tmp_path / name, _palette_image(), transparency=1)
    with Image.open(path) as im:
        assert im.mode == "P" and im.info["transparency"] == 1
    np.testing.assert_allclose(load_image(path)[0], [RED, WHITE, BLUE])


def test_rgb_transparent_colour_becomes_white(tmp_path):
    pixels = np.array([[[1, 2, 3], [200, 100, 50]]], np.uint8)
    path = write_file(tmp_path / "rgb_trns.png", Image.fromarray(pixels), transparency=(1, 2, 3))
    np.testing.assert_allclose(load_image(path)[0], [WHITE, np.array([200, 100, 50]) / 255])


def test_greyscale_and_bilevel(tmp_path):
    grey = load_image(write_file(tmp_path / "l.png", Image.new("L", (2, 2), 128)))
    np.testing.assert_allclose(grey, np.full((2, 2, 3), 128 / 255))
    bilevel = Image.new("1", (2, 1))
    bilevel.putpixel((1, 0), 1)
    path = write_file(tmp_path / "one_bit.png", bilevel)
    with Image.open(path) as im:
        assert im.mode == "1"
    np.testing.assert_allclose(load_image(path)[0], [BLACK, WHITE])


def test_cmyk_jpeg(tmp_path):
    path = write_file(
        tmp_path / "cmyk.jpg", Image.new("CMYK", (16, 16), (0, 255, 255, 0)), quality=95
    )
    with Image.open(path) as im:
        assert im.mode == "CMYK"
    loaded = load_image(path)
    assert_image(loaded, (16, 16, 3))
    np.testing.assert_allclose(loaded.mean(axis=(0, 1)), RED, atol=0.03)


def test_sixteen_bit_png_keeps_full_range(tmp_path):
    values = np.array([[0, 1000, 32768, 65535]], np.uint16)
    path = write_file(tmp_path / "g16.png", Image.fromarray(values))
    with Image.open(path) as im:
        assert im.mode in ("I;16", "I")
    loaded = load_image(path)
    assert_image(loaded, (1, 4, 3))
    np.testing.assert_allclose(loaded[0, :, 0], [0, 1000 / 65535, 32768 / 65535, 1], atol=1e-6)
    np.testing.assert_array_equal(loaded[..., 0], loaded[..., 2])


def test_sixteen_bit_big_endian_tiff(tmp_path):
    values = np.array([[0, 32768, 65535]], np.uint16)
    im = Image.frombuffer("I;16B", (3, 1), values.astype(">u2").tobytes(), "raw", "I;16B", 0, 1)
    path = write_file(tmp_path / "g16b.tif", im)
    with Image.open(path) as reread:
        assert reread.mode == "I;16B"
    np.testing.assert_allclose(load_image(path)[0, :, 1], [0, 32768 / 65535, 1], atol=1e-6)


def test_thirty_two_bit_integer_tiff(tmp_path):
    sixteen = write_file(tmp_path / "i16.tif", Image.fromarray(np.array([[0, 65535]], np.int32)))
    np.testing.assert_allclose(load_image(sixteen)[0, :, 0], [0, 1])
    wide = write_file(tmp_path / "i32.tif", Image.fromarray(np.array([[-10, 45, 100]], np.int32)))
    with Image.open(wide) as im:
        assert im.mode == "I"
    np.testing.assert_allclose(load_image(wide)[0, :, 0], [0, 0.5, 1])


def test_float_tiff(tmp_path):
    unit = write_file(tmp_path / "f.tif", Image.fromarray(np.array([[0, 0.25, 1]], np.float32)))
    with Image.open(unit) as im:
        assert im.mode == "F"
    np.testing.assert_allclose(load_image(unit)[0, :, 0], [0, 0.25, 1])
    byte_scale = Image.fromarray(np.array([[0, 127.5, 255]], np.float32))
    np.testing.assert_allclose(
        load_image(write_file(tmp_path / "f255.tif", byte_scale))[0, :, 2], [0, 0.5, 1]
    )
    nan = write_file(tmp_path / "nan.tif", Image.fromarray(np.array([[0, np.nan]], np.float32)))
    raises_one_line(ImageError, "NaN", load_image, nan)


def test_ycbcr_and_lab_tiff(tmp_path):
    red = Image.new("RGB", (4, 4), (255, 0, 0))
    converted = modes.to_float_rgb(red.convert("YCbCr"), "'x'")[0, 0]
    np.testing.assert_allclose(converted, RED, atol=0.02)
    # Pillow 12 (which apache-beam pins: pillow<13) writes a YCbCr TIFF it then reads as
    # truncated; 13 reads it back as YCbCr.
    if int(PIL.__version__.split(".")[0]) >= 13:
        ycbcr = write_file(tmp_path / "ycbcr.tif", red.convert("YCbCr"))
        with Image.open(ycbcr) as im:
            assert im.mode == "YCbCr"
        np.testing.assert_allclose(load_image(ycbcr)[0, 0], RED, atol=0.02)
    lab = write_file(tmp_path / "lab.tif", Image.new("LAB", (2, 2), (128, 128, 128)))
    with Image.open(lab) as im:
        assert im.mode == "LAB"
    grey = load_image(lab)[0, 0]  # L = 50%, a = b = 0: a neutral mid grey
    assert np.ptp(grey) < 0.02 and 0.4 < grey[0] < 0.55


def test_hsv_converts_to_rgb():
    # Pillow cannot save HSV files, so the converter is tested directly.
    hsv = Image.new("RGB", (2, 2), (0, 0, 255)).convert("HSV")
    np.testing.assert_allclose(modes.to_float_rgb(hsv, "'x'")[0, 0], BLUE, atol=0.01)


@pytest.mark.parametrize(("orientation", "turns"), [(3, 2), (6, -1), (8, 1)])
def test_exif_orientation_is_applied(tmp_path, orientation, turns):
    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, :] = (0, 0, 255)
    pixels[:10, :10] = (255, 0, 0)  # a red block in the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = write_file(tmp_path / "exif.jpg", Image.fromarray(pixels), exif=exif, quality=95)
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
    path = write_file(tmp_path / "still.gif", Image.new("RGB", (4, 4), (0, 255, 0)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_allclose(load_image(path)[0, 0], GREEN)


# ---------------------------------------------------------------------------------------------
# max_size


def test_max_size_downscales_longer_side(tmp_path):
    wide = write_file(tmp_path / "wide.png", Image.new("RGB", (400, 200), (255, 128, 0)))
    loaded = load_image(wide, max_size=100)
    assert_image(loaded, (50, 100, 3))
    np.testing.assert_allclose(loaded, np.broadcast_to([1, 128 / 255, 0], (50, 100, 3)), atol=1e-5)
    tall = write_file(tmp_path / "tall.png", Image.new("RGB", (200, 400)))
    assert_image(load_image(tall, max_size=100), (100, 50, 3))


def test_max_size_never_upscales(tmp_path):
    path = write_file(tmp_path / "small.png", Image.fromarray(noise(20, 40)))
    np.testing.assert_array_equal(load_image(path, max_size=100), load_image(path))
    assert_image(load_image(path, max_size=40), (20, 40, 3))


def test_max_size_keeps_sixteen_bit_precision(tmp_path):
    path = write_file(tmp_path / "g16.png", Image.fromarray(np.full((300, 300), 1000, np.uint16)))
    loaded = load_image(path, max_size=100)
    assert_image(loaded, (100, 100, 3))
    np.testing.assert_allclose(loaded, 1000 / 65535, atol=1e-6)  # 8 bits would give 4/255


def test_max_size_stays_in_range_at_sharp_edges(tmp_path):
    pixels = np.zeros((64, 64, 3), np.uint8)
    pixels[:, ::2] = 255  # Lanczos overshoots on this
    assert_image(
        load_image(write_file(tmp_path / "edges.png", Image.fromarray(pixels)), max_size=25),
        (25, 25, 3),
    )


@pytest.mark.parametrize("value", [0, -5, 2.5, "100", True])
def test_limits_must_be_positive_integers(tmp_path, value):
    path = write_file(tmp_path / "x.png", Image.new("RGB", (2, 2)))
    with pytest.raises(ConfigError, match="max_size"):
        load_image(path, max_size=value)
    with pytest.raises(ConfigError, match="max_pixels"):
        load_image(path, max_pixels=value)


# ---------------------------------------------------------------------------------------------
# Bad input files


def test_missing_file(tmp_path, capsys):
    message = raises_one_line(ImageError, "not found", load_image, tmp_path / "missing.png")
    assert "missing.png" in message
    raises_one_line(ImageError, "not found", load_image, tmp_path / "no_dir" / "missing.png")
    assert capsys.readouterr() == ("", "")


def test_directory(tmp_path):
    (tmp_path / "dir.png").mkdir()
    raises_one_line(ImageError, "dir.png' is a directory", load_image, tmp_path / "dir.png")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifo_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "pipe.png")
    raises_one_line(ImageError, "not a regular file", load_image, tmp_path / "pipe.png")


def test_empty_file(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    raises_one_line(ImageError, "empty.png' is empty", load_image, tmp_path / "empty.png")


def test_text_file_named_jpg(tmp_path):
    (tmp_path / "notes.jpg").write_text("this is not a picture\n")
    message = raises_one_line(
        ImageError, "not an image Pillow can read", load_image, tmp_path / "notes.jpg"
    )
    assert "notes.jpg" in message


@pytest.mark.parametrize("image_format", ["PNG", "JPEG"])
def test_truncated_image(tmp_path, capsys, image_format):
    data = encode(Image.fromarray(noise(64, 64)), image_format)
    path = tmp_path / "cut.img"
    path.write_bytes(data[: len(data) // 2])
    message = raises_one_line(ImageError, "truncated or corrupt", load_image, path)
    assert "cut.img" in message
    assert capsys.readouterr() == ("", "")


def test_damaged_header_is_not_called_a_non_image(tmp_path):
    data = encode(Image.new("RGB", (8, 8)), "PNG")
    (tmp_path / "head.png").write_bytes(data[:20])
    raises_one_line(
        ImageError, "head.png' is truncated or corrupt", load_image, tmp_path / "head.png"
    )
    broken = bytearray(data)
    broken[20] ^= 0xFF  # inside IHDR: its CRC no longer matches, Pillow "cannot identify" it
    (tmp_path / "crc.png").write_bytes(bytes(broken))
    raises_one_line(
        ImageError, "starts like a PNG but its header is", load_image, tmp_path / "crc.png"
    )


def test_unreadable_file(tmp_path, monkeypatch):
    path = write_file(tmp_path / "secret.png", Image.new("RGB", (2, 2)))
    if IS_ROOT:  # root reads anything, so simulate the refusal

        def refuse(*args, **kwargs):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))

        monkeypatch.setattr(images, "open", refuse, raising=False)
    else:
        os.chmod(path, 0)
    raises_one_line(ImageError, "secret.png' cannot be read: Permission denied", load_image, path)


def test_decompression_bomb_header_is_refused_before_decoding(tmp_path):
    limit_before = Image.MAX_IMAGE_PIXELS
    path = tmp_path / "bomb.png"
    path.write_bytes(png_with_size(100_000, 100_000))  # 3 * 10^10 bytes if decoded
    # Over Pillow's hard limit, which raising ours cannot get past: the message names that
    # limit and the size, and does not advise raising --max_pixels.
    for max_pixels in (MAX_INPUT_PIXELS, 10**11):
        message = raises_one_line(
            ImageError, "Pillow's hard limit", load_image, path, max_pixels=max_pixels
        )
        assert "is 100000x100000 = 10,000,000,000 pixels" in message and "bomb.png" in message
        assert f"{2 * Image.MAX_IMAGE_PIXELS:,}, which --max_pixels cannot raise" in message
    assert limit_before == Image.MAX_IMAGE_PIXELS


def test_large_header_below_pillows_hard_limit_is_refused_by_ours(tmp_path):
    # 144 million pixels: Pillow only warns at this size; our default limit refuses it. If the
    # pixels were decoded the tiny file would fail as truncated instead.
    path = tmp_path / "big.png"
    path.write_bytes(png_with_size(12_000, 12_000))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        message = raises_one_line(ImageError, "12000x12000 = 144,000,000 pixels", load_image, path)
    assert "limit of 128,000,000" in message
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]


def test_max_pixels_limit(tmp_path):
    path = write_file(tmp_path / "hundred.png", Image.new("RGB", (100, 100)))
    message = raises_one_line(
        ImageError, "more than the limit of 100 ", load_image, path, max_pixels=100
    )
    assert "100x100 = 10,000" in message and "--max_pixels" in message
    assert_image(load_image(path, max_pixels=10_000), (100, 100, 3))


# ---------------------------------------------------------------------------------------------
# Property: damaged files fail cleanly


def _seed_files():
    """Small valid files of several formats for the fuzzer to damage."""
    rgb = Image.fromarray(noise(8, 8, seed=1))
    frames = [rgb, Image.fromarray(noise(8, 8, seed=2))]
    gif = io.BytesIO()
    rgb.save(gif, "GIF", save_all=True, append_images=frames[1:])
    return [
        encode(rgb, "PNG"),
        encode(rgb.convert("RGBA"), "PNG"),
        encode(Image.fromarray(np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000), "PNG"),
        encode(rgb, "JPEG", quality=90),
        encode(rgb, "BMP"),
        encode(rgb, "TIFF"),
        encode(rgb, "WEBP"),
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
