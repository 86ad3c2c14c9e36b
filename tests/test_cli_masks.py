"""--style_masks, --content_mask and --mask_content_weight through the real command (in-process):
a masked run, batch mode, and every bad mask as exactly one `tfstyle: error:` line."""

import json

import numpy as np
import pytest
from cli_runner import FAST, assert_clean_failure, assert_success, run_inprocess
from PIL import Image

SIZE = 32


def _save(path, array):
    Image.fromarray(np.rint(np.clip(array, 0, 1) * 255).astype(np.uint8)).save(path)
    return str(path)


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    left = (x < 0.5).astype(np.float32)
    return {
        "content": _save(tmp_path / "photo.png", np.stack([x, y, 1 - x], -1)),
        "a": _save(tmp_path / "a.png", rng.uniform(size=(48, 48, 3)) * [0.9, 0.4, 0.1]),
        "b": _save(tmp_path / "b.png", rng.uniform(size=(48, 48, 3)) * [0.1, 0.3, 0.9]),
        "left": _save(tmp_path / "left.png", left),
        "right": _save(tmp_path / "right.png", 1 - left),
        "corner": _save(tmp_path / "corner.png", (x < 0.5) & (y < 0.5)),
        "small": _save(tmp_path / "small.png", left[::2, ::4]),  # 8x16: another aspect ratio
        "black": _save(tmp_path / "black.png", np.zeros((SIZE, SIZE))),
        "white": _save(tmp_path / "white.png", np.ones((SIZE, SIZE))),
        "broken": str(tmp_path / "broken.png"),
        "out": tmp_path / "out.png",
    }


def _args(files, *extra):
    return (*FAST, "--content", files["content"], "--output", files["out"], *extra)


def test_two_styles_split_by_masks_and_a_content_mask(files, capfd):
    styles = f"{files['a']},{files['b']}"
    masks = f"{files['left']},{files['right']}"
    args = _args(
        files, "--style", styles, "--style_masks", masks, "--content_mask", files["corner"]
    )
    result = run_inprocess((*args, "--mask_content_weight", "5"), capfd)
    assert_success(result, output=files["out"])
    report = json.loads((files["out"].parent / "out.json").read_text())
    assert report["settings"]["mask_content_weight"] == 5.0
    assert report["masks"] == {
        "style_masks": [files["left"], files["right"]],
        "content_mask": files["corner"],
        "style_image_masks": [],
    }


def test_a_style_image_mask(files, capfd):
    args = _args(files, "--style", files["a"], "--style_image_masks", files["left"])
    result = run_inprocess(args, capfd)
    # The style image is 48x48, the mask 32x32: stretched to it, with a line that says so.
    assert_success(result, output=files["out"], warnings=1)
    assert "style image mask 1 of 1 is 32x32 px and its style image 48x48 px" in result.lines[0]
    report = json.loads((files["out"].parent / "out.json").read_text())
    assert report["masks"]["style_image_masks"] == [files["left"]]


def test_a_mask_of_another_shape_is_stretched_with_one_warning(files, capfd):
    args = _args(files, "--style", files["a"], "--style_masks", files["small"])
    result = run_inprocess(args, capfd)
    assert_success(result, output=files["out"], warnings=1)
    assert "style mask 1 of 1 is 8x16 px and the content image 32x32 px" in result.lines[0]
    assert "another aspect ratio" in result.lines[0]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--style_masks", "{broken}"), "broken.png' not found"),
        (("--style_masks", "{black}"), "style mask '{black}' is blank (black everywhere)"),
        (("--content_mask", "{black}"), "content mask '{black}' is blank"),
        (("--content_mask", "{white}"), "the content mask is white everywhere"),
        (("--style_masks", "{left},{right}"), "2 style mask(s) for 1 style image(s)"),
        (("--content_mask", "{left}", "--style_loss", "mean_cov"), "style_loss 'gram' only"),
        (("--mask_content_weight", "3"), "--mask_content_weight needs a --content_mask"),
        (("--style_image_masks", "{left},{right}"), "2 style image mask(s) for 1 style image(s)"),
        (("--style_image_masks", "{black}"), "style image mask '{black}' is blank"),
        (("--content_mask", "{left}", "--mask_content_weight", "-1"), "mask_content_weight"),
        (("--content_mask", "{left}", "--output", "{left}"), "left.png"),
    ],
)
def test_bad_masks_give_one_line(files, capfd, extra, message):
    extra = [e.format(**files) for e in extra]
    result = run_inprocess(_args(files, "--style", files["a"], *extra), capfd)
    if "--output" in extra:  # the output would overwrite a mask: refused, the mask intact
        assert result.code == 1 and len(result.lines) == 1, result.stderr
        assert result.lines[0].startswith("tfstyle: error: ") and message in result.lines[0]
        assert np.asarray(Image.open(files["left"])).max() == 255
        return
    assert_clean_failure(result, output=files["out"], match=message.format(**files))


def test_batch_gives_each_style_its_mask_and_every_content_the_content_mask(files, capfd):
    out = files["out"].parent / "batch"
    args = (
        *FAST,
        "--content",
        files["content"],
        "--style",
        f"{files['a']},{files['b']}",
        "--style_masks",
        f"{files['left']},{files['white']}",
        "--content_mask",
        files["right"],
        "--style_image_masks",
        f"{files['corner']},{files['small']}",
        "--output_dir",
        out,
    )
    result = run_inprocess(args, capfd)
    assert result.code == 0, result.stderr
    assert sorted(p.name for p in out.glob("*.png")) == ["photo__a.png", "photo__b.png"]
    # Each job got its style image mask: both are stretched to their 48x48 paintings.
    stretched = [line for line in result.lines if "px and its style image 48x48 px" in line]
    assert [line.split(" is ")[1][:8] for line in stretched] == ["32x32 px", "8x16 px "], stretched
    report = json.loads((out / "photo__b.json").read_text())
    assert report["masks"] == {
        "style_masks": [files["white"]],
        "content_mask": files["right"],
        "style_image_masks": [files["small"]],
    }
    # A content mask white everywhere leaves nothing to stylize: each job fails with a line.
    # (The masks are read before any job, so that is where a blank one fails; this one is not.)
    args = (*args[:-6], "--content_mask", files["white"], "--output_dir", out, "--overwrite")
    result = run_inprocess(args, capfd)
    assert result.code == 1 and "2 of 2 outputs failed" in result.lines[-1], result.stderr
    assert result.lines[0].endswith(
        "lies wholly inside the content mask: nothing would be stylized there"
    )


# ---------------------------------------------------------------------------------------------
# Masks where they make sense (every frame of an optimised video), refused in one line where
# they do not (a trained network: --model, train; the pipelines on Beam)


@pytest.fixture
def frames(tmp_path):
    """Three 32x48 frames in a folder, and masks of the shape they are stylized at (21x32 at
    --max_size 32)."""
    from video_helpers import shifting_frames

    from tfstyle.io import save_image

    folder = tmp_path / "frames"
    folder.mkdir()
    for index, frame in enumerate(shifting_frames(3)):
        save_image(frame, folder / f"shot{index + 1}.png")
    left = (np.mgrid[0:21, 0:32][1] < 16).astype(np.float32)
    return {
        "in": folder,
        "left": _save(tmp_path / "vleft.png", left),
        "right": _save(tmp_path / "vright.png", 1 - left),
        "black": _save(tmp_path / "vblack.png", np.zeros((21, 32))),
    }


VIDEO = (
    "--weights=none",
    "--max_size=32",
    "--iterations=3",
    "--frame_iterations=2",
    "--content_layers=block2_conv1",
    "--style_layers=block1_conv1,block2_conv1",
    "--quiet",
)


@pytest.mark.parametrize("mode", ["temporal", "per_frame"])
def test_an_optimised_video_applies_the_masks_to_every_frame(
    tmp_path, files, frames, capfd, monkeypatch, mode
):
    import tfstyle.video.stylize
    from tfstyle.io import load_image, load_mask

    calls = []
    real = tfstyle.video.stylize.stylize

    def stylize(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(tfstyle.video.stylize, "stylize", stylize)
    common = ["video", "--content", frames["in"], "--style", files["a"], *VIDEO]
    common.append(f"--video_mode={mode}")
    plain = run_inprocess([*common, "--output", tmp_path / "plain"], capfd)
    assert plain.code == 0, plain.stderr
    assert all("content_mask" not in call for call in calls)
    calls.clear()
    masks = ["--content_mask", frames["right"], "--style_masks", frames["left"]]
    masked = run_inprocess([*common, "--output", tmp_path / "masked", *masks], capfd)
    assert masked.code == 0 and masked.stderr == "", masked.stderr
    # Each of the three frames' optimisations got both masks, as read from the file.
    assert len(calls) == 3
    for call in calls:
        np.testing.assert_array_equal(call["content_mask"], load_mask(frames["right"]))
        np.testing.assert_array_equal(call["style_masks"][0], load_mask(frames["left"]))
    # And they change every frame.
    report = json.loads((tmp_path / "masked.json").read_text())
    assert report["masks"] == [frames["left"], frames["right"]]
    for index in (1, 2, 3):
        name = f"frame_{index:06d}.png"
        with_masks = load_image(tmp_path / "masked" / name)
        without = load_image(tmp_path / "plain" / name)
        assert np.abs(with_masks - without).mean() > 1e-3


def test_a_stretched_mask_is_reported_once_not_once_a_frame(tmp_path, files, frames, capfd):
    args = ["video", "--content", frames["in"], "--style", files["a"], *VIDEO]
    # files["left"] is 32x32; the frames are stylized at 32x21.
    result = run_inprocess(
        [*args, "--output", tmp_path / "out", "--content_mask", files["left"]], capfd
    )
    assert result.code == 0, result.stderr
    assert result.lines == [
        "tfstyle: warning: the content mask is 32x32 px and the content image 32x21 px (another "
        "aspect ratio): the mask is stretched to fit"
    ]


def test_a_video_refuses_a_blank_mask(tmp_path, files, frames, capfd):
    args = ["video", "--content", frames["in"], "--style", files["a"], *VIDEO]
    result = run_inprocess(
        [*args, "--output", tmp_path / "out", "--content_mask", frames["black"]], capfd
    )
    assert_clean_failure(
        result, output=tmp_path / "out", match=f"content mask '{frames['black']}' is blank"
    )


@pytest.mark.parametrize("command", ["model", "video_model", "train", "runner", "video_runner"])
@pytest.mark.parametrize("flag", ["content_mask", "style_masks"])
def test_masks_are_refused_where_nothing_applies_them(
    tmp_path, files, frames, capfd, command, flag
):
    from tfstyle import build_stylizer

    model = tmp_path / "tiny.keras"
    build_stylizer(width=4, residual_blocks=1).save(model)
    out = tmp_path / "out"
    args = {
        "model": ["--model", model, "--content", files["content"], "--output", out / "o.png"],
        "video_model": ["video", "--model", model, "--content", frames["in"], "--output", out],
        "train": ["train", "--style", files["a"], "--content_dir", frames["in"], "--output", out],
        "runner": ["--content", files["content"], "--style", files["a"], "--runner=direct"],
        "video_runner": ["video", "--runner=direct", "--content", frames["in"], "--output", out],
    }[command]
    if command == "runner":
        args += ["--output_dir", out]
    if command == "video_runner":
        args += ["--style", files["a"]]
    result = run_inprocess([*args, f"--{flag}", files["left"]], capfd)
    expected = {
        "model": f"--model paints with a trained network: it takes no --{flag}",
        "video_model": f"--{flag} is for optimising frames, not for --model",
        "train": f"train takes no --{flag}",
        "runner": f"--runner does not support --{flag}",
        "video_runner": f"--{flag} is for the in-process video command: the segments on "
        "Apache Beam do not read masks",
    }[command]
    assert result.code == 1 and result.lines == [f"tfstyle: error: {expected}"], result
    assert not out.exists()
