"""The bad-input corpus, through the real command: every file a user may feed the CLI gives
either a correct image (exit 0) or exactly one `tfstyle: error:` line (exit 1), never a
traceback, and never an output or temporary file left behind on failure.

Every input is generated here. Most cases run the CLI in-process (absl flag parsing, `main`,
`sys.exit`, with file descriptors 1 and 2 captured); `test_real_processes` runs a few in fresh
processes, side by side, for what only a new process shows: TensorFlow's start-up output.
"""

import io
import struct
import zlib

import numpy as np
import pytest
from cli_runner import (
    FAST,
    assert_clean_failure,
    assert_success,
    run_inprocess,
    run_subprocesses,
)
from PIL import Image

from tfstyle.io import load_image
from tfstyle.ops import preprocessing as pp

# The output stays close to the content at this rate, so a run shows how the file was read.
GENTLE = ("--learning_rate", "1e-4")


def _pattern(height=40, width=56):
    """Float RGB: red top-left quarter, blue elsewhere, a soft gradient over all (smooth, so
    JPEG keeps it faithfully; asymmetric, so a wrong rotation or flip shows)."""
    x = np.mgrid[0:height, 0:width][1].astype(np.float32)
    image = np.empty((height, width, 3), np.float32)
    image[:] = (0.1, 0.2, 0.8)
    image[: height // 2, : width // 2] = (0.9, 0.15, 0.1)
    image += 0.1 * (x / width)[..., None]
    return np.clip(image, 0, 1)


def _uint8(image):
    return np.rint(image * 255).astype(np.uint8)


def _encode(im, image_format, **options):
    buffer = io.BytesIO()
    im.save(buffer, image_format, **options)
    return buffer.getvalue()


def _png_declaring(width, height):
    """A tiny real PNG whose header declares another size (valid CRC): a decompression bomb."""
    data = bytearray(_encode(Image.new("RGB", (1, 1)), "PNG"))
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


@pytest.fixture
def style(tmp_path):
    path = tmp_path / "style.png"
    stripes = (np.sin(np.arange(48) / 2.0)[None, :, None] + 1) / 2
    Image.fromarray(_uint8(np.broadcast_to(stripes * [0.9, 0.5, 0.1], (48, 48, 3)))).save(path)
    return path


# ---------------------------------------------------------------------------------------------
# Files that must be refused with one line


def _truncated(image_format):
    def make(path):
        data = _encode(Image.fromarray(_uint8(_pattern(64, 64))), image_format)
        path.write_bytes(data[: len(data) // 2])

    return make


def _write_image(array_or_image, **options):
    def make(path):
        im = array_or_image if isinstance(array_or_image, Image.Image) else None
        (im or Image.fromarray(_uint8(array_or_image))).save(path, **options)

    return make


FAILURES = [
    ("cut.jpg", _truncated("JPEG"), (), "cut.jpg' is truncated or corrupt"),
    ("cut.png", _truncated("PNG"), (), "cut.png' is truncated or corrupt"),
    ("empty.png", lambda p: p.write_bytes(b""), (), "empty.png' is empty (0 bytes)"),
    ("notes.jpg", lambda p: p.write_text("not a picture\n"), (), "not an image Pillow can read"),
    (
        "bomb.png",
        lambda p: p.write_bytes(_png_declaring(12_000, 12_000)),
        (),
        "12000x12000 = 144,000,000 pixels, more than the limit of 128,000,000",
    ),
    # Raising the limit lets the header through; the tiny file then fails as what it is.
    (
        "bomb.png",
        lambda p: p.write_bytes(_png_declaring(12_000, 12_000)),
        ("--max_pixels", "200000000"),
        "bomb.png' is truncated or corrupt",
    ),
    # Beyond Pillow's hard limit, raising --max_pixels cannot help: the message says so.
    (
        "huge.png",
        lambda p: p.write_bytes(_png_declaring(60_000, 60_000)),
        (),
        "huge.png' is 60000x60000 = 3,600,000,000 pixels, more than Pillow's hard limit of "
        "178,956,970, which --max_pixels cannot raise; downscale it with another tool first",
    ),
    (
        "huge.png",
        lambda p: p.write_bytes(_png_declaring(14_000, 14_000)),
        ("--max_pixels", "4000000000"),
        "huge.png' is 14000x14000 = 196,000,000 pixels, more than Pillow's hard limit of "
        "178,956,970, which --max_pixels cannot raise",
    ),
    (
        "hundred.png",
        _write_image(Image.new("RGB", (100, 100))),
        ("--max_pixels", "9999"),
        "more than the limit of 9,999 that guards against decompression bombs; if you trust "
        "the file, raise it with --max_pixels",
    ),
    (
        "one.png",
        _write_image(Image.new("RGB", (1, 1), (0, 255, 0))),
        (),
        "the image is too small: 1x1 px gives a shorter side of 1 px at the first scale "
        "(max_size 32, 1 scale(s)), and vgg19 with layers up to block5_conv1 needs at least "
        "16 px; use a larger image or shallower layers",
    ),
    # Fitted into 32 px, a 4000x16 strip is 1 px tall; at 3875 px it would be 16 px tall.
    (
        "strip.png",
        _write_image(np.full((16, 4000, 3), 0.5)),
        (),
        "4000x16 px gives a shorter side of 1 px at the first scale (max_size 32, 1 scale(s)), "
        "and vgg19 with layers up to block5_conv1 needs at least 16 px; use scales=1 and max_size "
        "3875 or more",
    ),
    ("missing.png", lambda p: None, (), "missing.png' not found"),
    ("folder.png", lambda p: p.mkdir(), (), "folder.png' holds no image files"),
]


@pytest.mark.parametrize(
    ("name", "make", "args", "message"),
    FAILURES,
    ids=[f"{case[0]}{'+' + case[2][0] if case[2] else ''}" for case in FAILURES],
)
def test_bad_content_file_gives_one_line(tmp_path, capfd, style, name, make, args, message):
    content = tmp_path / name
    make(content)
    output = tmp_path / "out.png"
    result = run_inprocess(
        ["--content", content, "--style", style, "--output", output, *FAST, *args], capfd
    )
    line = assert_clean_failure(result, output=output, match=message)
    assert str(tmp_path) in line or name not in line  # files are named by their full path


def test_bad_style_file_is_named(tmp_path, capfd):
    content = tmp_path / "content.png"
    Image.fromarray(_uint8(_pattern())).save(content)
    good = tmp_path / "good.png"
    Image.fromarray(_uint8(_pattern())).save(good)
    bad = tmp_path / "bad style.jpg"
    _truncated("JPEG")(bad)
    output = tmp_path / "out.png"
    result = run_inprocess(
        ["--content", content, "--style", f"{good},{bad}", "--output", output, *FAST], capfd
    )
    assert_clean_failure(result, output=output, match=f"'{bad}' is truncated or corrupt")


# ---------------------------------------------------------------------------------------------
# Files that must give a correct image


def _sixteen_bit(path):
    grey = (_pattern().mean(axis=-1) * 65535).astype(np.uint16)
    Image.fromarray(grey).save(path)
    with Image.open(path) as im:
        assert im.mode in ("I;16", "I")
    return np.repeat(grey[..., None] / 65535.0, 3, axis=-1)


def _cmyk(path):
    Image.fromarray(_uint8(_pattern())).convert("CMYK").save(path, quality=95)
    with Image.open(path) as im:
        assert im.mode == "CMYK"
    return _pattern()


def _palette_with_transparency(path):
    im = Image.fromarray(_uint8(_pattern())).quantize(colors=16)
    index = im.getpixel((0, 0))  # the red quarter's colour becomes transparent: white
    im.save(path, transparency=index)
    with Image.open(path) as reread:
        assert reread.mode == "P" and "transparency" in reread.info
    expected = np.asarray(im.convert("RGB"), np.float32) / 255
    expected[np.asarray(im) == index] = 1.0
    return expected


def _greyscale(path):
    grey = _uint8(_pattern().mean(axis=-1))
    Image.fromarray(grey, "L").save(path)
    return np.repeat(grey[..., None] / 255.0, 3, axis=-1)


def _exif_rotated(path):
    stored = _pattern(24, 40)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    Image.fromarray(_uint8(stored)).save(path, exif=exif, quality=95)
    return np.rot90(stored, -1)


def _plain(path):
    Image.fromarray(_uint8(_pattern())).save(path)
    return _pattern()


def _animated(path):
    first = Image.fromarray(_uint8(_pattern()))
    second = Image.new("RGB", first.size, (0, 255, 0))
    first.save(path, save_all=True, append_images=[second], duration=100, loop=0)
    return np.asarray(Image.open(path).convert("RGB"), np.float32) / 255  # GIF's palette


SUCCESSES = [
    ("g16.png", _sixteen_bit, "out.png", (23, 32)),
    ("cmyk.jpg", _cmyk, "out.png", (23, 32)),
    ("palette transparent.png", _palette_with_transparency, "out.jpg", (23, 32)),
    ("grey.png", _greyscale, "out.png", (23, 32)),
    ("exif rotated.jpg", _exif_rotated, "out.png", (32, 19)),
    ("ünï cödé ✓ space.png", _plain, "résultat final ü.png", (23, 32)),
    ("anim.gif", _animated, "out.png", (23, 32)),
]


@pytest.mark.parametrize(
    ("name", "make", "output_name", "shape"), SUCCESSES, ids=[case[0] for case in SUCCESSES]
)
def test_unusual_file_gives_correct_image(tmp_path, capfd, style, name, make, output_name, shape):
    content = tmp_path / name
    expected = make(content)
    output = tmp_path / output_name
    result = run_inprocess(
        ["--content", content, "--style", style, "--output", output, *FAST, *GENTLE], capfd
    )
    animated = name.endswith(".gif")
    assert_success(result, output=output, warnings=1 if animated else 0)
    if animated:
        assert result.lines == [
            f"tfstyle: warning: '{content}' has 2 frames; only the first frame is used"
        ]
    written = load_image(output)
    assert written.shape[:2] == shape
    # Read the right way round and in the right colours: close to the input as it should look.
    assert np.abs(written - pp.resize(expected, *shape)).mean() < 0.03
    assert (tmp_path / output_name).with_suffix(".json").is_file()


def test_strip_works_with_layers_it_is_big_enough_for(tmp_path, capfd, style):
    # Fitted into 32 px the strip is 1x32; block-1 layers need only 1 px (and the total
    # variation of a 1 px tall image is its horizontal part alone, not NaN).
    content = tmp_path / "strip.png"
    Image.fromarray(_uint8(np.tile(_pattern(16, 16), (1, 250, 1)))).save(content)
    output = tmp_path / "strip out.png"
    layers = ("--content_layers", "block1_conv2", "--style_layers", "block1_conv1,block1_conv2")
    result = run_inprocess(
        ["--content", content, "--style", style, "--output", output, *FAST, *layers], capfd
    )
    assert_success(result, output=output)
    assert load_image(output).shape == (1, 32, 3)


# ---------------------------------------------------------------------------------------------
# Fresh processes


def test_real_processes(tmp_path, style):
    """Three runs side by side: a load error before TensorFlow is imported, a size error after
    it is imported (its start-up logging must not leak), and an animated GIF that works."""
    truncated, tiny, animated = tmp_path / "cut.jpg", tmp_path / "one.png", tmp_path / "a ü.gif"
    _truncated("JPEG")(truncated)
    Image.new("RGB", (1, 1)).save(tiny)
    _animated(animated)
    outputs = [tmp_path / f"out{i}.png" for i in range(3)]
    results = run_subprocesses(
        [
            ["--content", content, "--style", style, "--output", output, *FAST]
            for content, output in zip((truncated, tiny, animated), outputs, strict=True)
        ]
    )
    assert_clean_failure(results[0], output=outputs[0], match="cut.jpg' is truncated or corrupt")
    assert_clean_failure(results[1], output=outputs[1], match="needs at least 16 px")
    assert_success(results[2], output=outputs[2], warnings=1)
    assert "only the first frame is used" in results[2].lines[0]
    assert load_image(outputs[2]).shape == (23, 32, 3)


# ---------------------------------------------------------------------------------------------
# --init FILE of another shape


def _bands(height, width):
    """Red top quarter, green middle half, blue bottom quarter."""
    image = np.zeros((height, width, 3), np.float32)
    image[: height // 4] = (1, 0, 0)
    image[height // 4 : height - height // 4] = (0, 1, 0)
    image[height - height // 4 :] = (0, 0, 1)
    return image


@pytest.mark.parametrize("batch", [False, True])
def test_init_image_of_another_aspect_ratio_is_centre_cropped(tmp_path, capfd, style, batch):
    Image.fromarray(_uint8(np.full((32, 32, 3), 0.5))).save(tmp_path / "square.png")
    Image.fromarray(_uint8(_bands(64, 32))).save(tmp_path / "tall.png")
    where = ("--output_dir", tmp_path) if batch else ("--output", tmp_path / "square__style.png")
    result = run_inprocess(
        ["--content", tmp_path / "square.png", "--style", style, *where, *FAST,
         "--init", tmp_path / "tall.png", "--learning_rate", "1e-12", "--iterations", "1"],
        capfd,
    )  # fmt: skip
    output = tmp_path / "square__style.png"
    assert_success(result, output=output)
    # The middle 32x32 of the tall image is all green; stretched, it would be red and blue
    # at the top and bottom.
    pixels = load_image(output)
    assert pixels.shape == (32, 32, 3)
    np.testing.assert_allclose(pixels, _bands(64, 32)[16:48], atol=0.02)


def test_centre_crop_to_aspect():
    image = np.arange(6 * 4 * 3, dtype=np.float32).reshape(6, 4, 3) / 100
    np.testing.assert_array_equal(pp.crop_to_aspect(image, height=1, width=1), image[1:5])
    np.testing.assert_array_equal(pp.crop_to_aspect(image, height=1, width=4), image[2:3])
    np.testing.assert_array_equal(pp.crop_to_aspect(image, height=3, width=2), image)
    np.testing.assert_array_equal(pp.crop_to_aspect(image, height=60, width=1), image[:, 1:2])
