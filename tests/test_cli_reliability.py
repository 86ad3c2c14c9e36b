"""The command under failure: a non-finite loss, refused settings, and (in
test_cli_interrupt.py) interruption and resume."""

import io
import json

import numpy as np
import pytest
from cli_runner import FAST, assert_clean_failure, run_inprocess, temporary_files
from PIL import Image

from tfstyle.io import load_image, save_npz
from tfstyle.ops import preprocessing as pp


def _command(content, style, output, *extra):
    return ["--content", content, "--style", style, "--output", output, *FAST, *extra]


@pytest.fixture
def images(tmp_path):
    y, x = np.mgrid[0:40, 0:56] / 56.0
    content = np.stack([x, y, 1 - x], axis=-1)
    Image.fromarray(np.rint(content * 255).astype(np.uint8)).save(tmp_path / "content.png")
    stripes = (np.sin(np.arange(48) / 2.0)[None, :, None] + 1) / 2 * [0.9, 0.4, 0.1]
    style = np.broadcast_to(stripes, (48, 48, 3))
    Image.fromarray(np.rint(style * 255).astype(np.uint8)).save(tmp_path / "style.png")
    return tmp_path / "content.png", tmp_path / "style.png"


def test_non_finite_loss_saves_the_last_finite_image(tmp_path, capfd, images):
    content, style = images
    output = tmp_path / "out.png"
    # An absurd weight overflows the first gradient: the second step's loss is NaN. (An absurd
    # learning rate does not do it: pixels are clipped to [0, 1] after every step.)
    result = run_inprocess(
        _command(
            content,
            style,
            output,
            "--iterations",
            "6",
            "--style_weight",
            "1e38",
            "--learning_rate",
            "0.0002",
        ),
        capfd,
    )
    assert result.code == 1 and "Traceback" not in result.stderr
    assert result.lines == [
        "tfstyle: error: the loss became non-finite at step 2; lower the learning_rate "
        "(now 0.0002) or the loss weights (content_weight 1, style_weight 1e+38, tv_weight 1); "
        f"the last finite image (the starting image) was saved to {output}"
    ]
    saved = load_image(output)
    expected = pp.resize(load_image(content), 23, 32)  # content init, at 32 px
    assert np.abs(saved - expected).max() <= 1 / 255 + 1e-6
    assert not (tmp_path / "out.json").exists()
    assert temporary_files(tmp_path) == []


# ---------------------------------------------------------------------------------------------
# Settings refused before any work


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--style_blend_weights", "1,2,3"],
            "style_blend_weights has 3 values for 2 style image(s); give one weight per style",
        ),
        (
            ["--style_layers", "block1_conv1,block6_conv1"],
            "unknown vgg19 layer(s) block6_conv1; valid: block1_conv1, block1_conv2,",
        ),
        (
            ["--network", "vgg16", "--content_layers", "block3_conv4"],
            "unknown vgg16 layer(s) block3_conv4; valid:",
        ),
        (
            ["--max_size", "12"],
            "max_size must be at least 16 for vgg19 with layers up to block5_conv1 and 1 "
            "scale(s) (the first scale needs 16 px); got 12",
        ),
        (
            ["--scales", "3", "--max_size", "40"],
            "max_size must be at least 64 for vgg19 with layers up to block5_conv1 and 3 scale(s)",
        ),
        (["--style_weight", "-1"], "style_weight must be in [0.0, inf]; got -1.0"),
        (["--tv_weight", "nan"], "tv_weight must be a finite number; got nan"),
        (["--style_layer_weights", "1,2"], "style_layer_weights has 2 values but there are 5"),
        (["--iterations", "0"], "iterations must be at least 1; got 0"),
        (["--learning_rate", "0"], "learning_rate must be in (0.0, inf]; got 0.0"),
        (["--style_scale", "20"], "style_scale must be in (0.0, 10.0]; got 20.0"),
        (["--save_every", "-5"], "flag --save_every=-5: -5 is not a non-negative integer"),
        (["--max_pixels", "0"], "flag --max_pixels=0:"),
        (["--iterations", "ten"], "flag --iterations=ten: invalid literal for int()"),
        (["--optimizer", "rmsprop"], "flag --optimizer=rmsprop: value should be one of"),
    ],
)
def test_bad_settings_are_refused_before_any_work(tmp_path, capfd, images, args, message):
    content, style = images
    output = tmp_path / "out.png"
    # The weights file does not exist: a settings error reported instead of the weights error
    # shows the settings were checked before the weights are loaded.
    styles = f"{style},{_second_style(style)}"
    result = run_inprocess(
        _command(content, styles, output, "--weights", tmp_path / "no.h5", *args), capfd
    )
    assert_clean_failure(result, output=output, match=message)


def _second_style(style):
    """A second, distinct style file (the same path twice would count as one image)."""
    second = style.with_name("style2.png")
    second.write_bytes(style.read_bytes())
    return second


def test_good_settings_reach_the_weights(tmp_path, capfd, images):
    # The control for the test above: the same command with good settings fails on the
    # missing weights file, after the settings and images were accepted.
    content, style = images
    output = tmp_path / "out.png"
    blend = ("--weights", tmp_path / "no.h5", "--style_blend_weights", "1,2")
    styles = f"{style},{_second_style(style)}"
    result = run_inprocess(_command(content, styles, output, *blend), capfd)
    assert_clean_failure(result, output=output, match="weights file not found")


def test_report_records_the_settings(tmp_path, capfd, images):
    content, style = images
    output = tmp_path / "out.png"
    result = run_inprocess(_command(content, style, output), capfd)
    assert result.code == 0, result
    report = json.loads((tmp_path / "out.json").read_text())
    assert report["settings"]["iterations"] == 2 and report["steps"] == 2


def _npy(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "make",
    [
        lambda p: p.write_text("notes, not a checkpoint\n"),
        lambda p: p.write_bytes(_npy(np.zeros(3))),  # a .npy array, not an .npz archive
        lambda p: save_npz({"weights": np.zeros(3)}, p),  # another program's .npz
    ],
    ids=["text", "npy", "other-npz"],
)
def test_resume_from_a_file_that_is_not_a_checkpoint_is_one_line(tmp_path, capfd, images, make):
    content, style = images
    output = tmp_path / "out.png"
    make(tmp_path / "out.ckpt.npz")
    result = run_inprocess(_command(content, style, output, "--resume"), capfd)
    line = assert_clean_failure(result, output=output, match="cannot resume: ")
    assert "is not a tfstyle checkpoint" in line and "pickle" not in line, line
    assert "out.ckpt.npz" in line
