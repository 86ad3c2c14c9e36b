"""`tfstyle video`: a synthetic clip in, a video (or a folder of frames) out with the input's
frame count, rate and audio; interrupted runs resume at the first missing frame; bad inputs and
outputs get one line and leave nothing behind."""

import json
import os
from fractions import Fraction

import numpy as np
import pytest
from cli_runner import assert_clean_failure, run_inprocess
from video_helpers import shifting_frames, write_clip, write_empty_clip

from tfstyle.io import load_image, save_image
from tfstyle.io import video as vio

STYLE = os.path.join(
    os.path.dirname(os.path.dirname(__file__)), "examples/images/style_the_scream.jpg"
)
FRAMES = 4
# Random weights, shallow layers, 32 px frames, a few steps: about a second per run's frames.
TINY = (
    "--weights=none",
    "--max_size=32",
    "--iterations=3",
    "--frame_iterations=2",
    "--content_layers=block2_conv1",
    "--style_layers=block1_conv1,block2_conv1",
)


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    return str(write_clip(path, shifting_frames(FRAMES), rate=Fraction(15), audio=True))


def video(capfd, content, output, *extra, style=STYLE):
    settings = ["--style", style, *TINY] if style else ["--max_size=32"]
    return run_inprocess(
        ["video", "--content", content, "--output", output, "--quiet", *settings, *extra], capfd
    )


def test_video_keeps_frame_count_rate_and_audio(tmp_path, clip, capfd):
    output = tmp_path / "out.mp4"
    result = video(capfd, clip, output)
    assert result.code == 0, result.stderr
    assert result.stderr == ""
    info = vio.probe_video(output)
    assert (info.frame_count, info.frame_rate, info.has_audio) == (FRAMES, Fraction(15), True)
    assert (info.width, info.height) == (32, 20)  # 48x32 fitted to 32 px, rounded to even
    report = json.loads((tmp_path / "out.json").read_text())
    assert [r["index"] for r in report["per_frame"]] == list(range(FRAMES))
    assert [r["steps"] for r in report["per_frame"]] == [3, 2, 2, 2]
    assert report["per_frame"][0]["warping_error"] is None
    errors = [r["warping_error"] for r in report["per_frame"][1:]]
    assert report["mean_warping_error"] == pytest.approx(sum(errors) / 3)
    assert all(r["losses"]["total"] > 0 and r["seconds"] > 0 for r in report["per_frame"])
    # The frames folder is gone once the video is written, and no temporary file is left.
    assert sorted(os.listdir(tmp_path)) == ["out.json", "out.mp4"]


def test_folder_of_frames_in_and_out(tmp_path, capfd):
    frames_in = tmp_path / "in"
    frames_in.mkdir()
    for index, frame in enumerate(shifting_frames(3)):
        save_image(frame, frames_in / f"shot{index + 1}.png")
    result = video(capfd, frames_in, tmp_path / "out", "--video_mode=per_frame")
    assert result.code == 0, result.stderr
    assert sorted(os.listdir(tmp_path / "out")) == [f"frame_{i:06d}.png" for i in (1, 2, 3)]
    report = json.loads((tmp_path / "out.json").read_text())
    assert report["frame_rate"] == "25" and [r["steps"] for r in report["per_frame"]] == [3] * 3
    # A finished folder is not overwritten by accident.
    again = video(capfd, frames_in, tmp_path / "out", "--video_mode=per_frame")
    assert again.code == 1 and again.lines == [
        f"tfstyle: error: {tmp_path / 'out'} already holds frames; pass --overwrite to replace them"
    ]


@pytest.mark.parametrize("bad", ["truncated", "other size"])
def test_a_bad_frame_in_a_folder_is_refused_before_any_work(tmp_path, capfd, bad):
    frames_in = tmp_path / "in"
    frames_in.mkdir()
    for index, frame in enumerate(shifting_frames(3)):
        save_image(frame, frames_in / f"shot{index + 1}.png")
    last = frames_in / "shot3.png"
    if bad == "truncated":
        last.write_bytes(last.read_bytes()[:200])
        match = "shot3.png"
    else:
        save_image(shifting_frames(1, height=30)[0], last)
        match = f"frame {last} is 48x30 px and the first frame 48x32"
    output = tmp_path / "out"
    result = video(capfd, frames_in, output, "--video_mode=per_frame")
    # Found before frame 1 was made: nothing written, not two frames and then an error.
    assert_clean_failure(result, output=output, match=match)


def test_interrupted_run_resumes_at_the_first_missing_frame(tmp_path, clip, capfd, monkeypatch):
    import tfstyle.video.stylize

    calls = []
    real = tfstyle.video.stylize.stylize

    def stylize(content, *args, **kwargs):
        calls.append(content)
        if len(calls) == 3:  # Ctrl-C during the third frame
            raise KeyboardInterrupt
        return real(content, *args, **kwargs)

    monkeypatch.setattr(tfstyle.video.stylize, "stylize", stylize)
    output = tmp_path / "out.mp4"
    result = video(capfd, clip, output)
    assert result.code == 130, result.stderr
    assert result.lines == [
        f"tfstyle: interrupted at frame 3 of {FRAMES}; the 2 finished frame(s) are in "
        f"{tmp_path / 'out.frames'}: continue with --resume"
    ]
    work = tmp_path / "out.frames"
    assert sorted(os.listdir(work)) == ["frame_000001.png", "frame_000002.png", "progress.json"]
    assert not output.exists()
    finished = load_image(work / "frame_000002.png")

    # Without --resume the finished frames are not silently thrown away.
    refused = video(capfd, clip, output)
    assert_clean_failure(refused, output=output, match="continue it with --resume")

    calls.clear()
    resumed = video(capfd, clip, output, "--resume")
    assert resumed.code == 0, resumed.stderr
    assert len(calls) == FRAMES - 2  # frames 3 and 4 only: finished frames are never redone
    assert vio.probe_video(output).frame_count == FRAMES
    report = json.loads((tmp_path / "out.json").read_text())
    assert [r["index"] for r in report["per_frame"]] == list(range(FRAMES))
    assert not work.exists()

    # The frame written before the interruption is the video's frame 2 (H.264 changes it a
    # little, so: the closest of the video's frames to it).
    frames = list(vio.read_video_frames(output))
    differences = [np.abs(frame / 255.0 - finished).mean() for frame in frames]
    assert int(np.argmin(differences)) == 1, differences


def test_an_interrupt_between_a_frame_and_its_record_loses_no_record(
    tmp_path, clip, capfd, monkeypatch
):
    """Ctrl-C while the second frame's record is being saved: resumed, the report still lists
    every frame (the frame is redone rather than left on disk without its record)."""
    import tfstyle.io

    real = tfstyle.io.save_json
    pressed = []

    def save_json(data, path, *args, **kwargs):
        if len(data.get("per_frame", ())) == 2 and not pressed:
            pressed.append(path)
            raise KeyboardInterrupt
        return real(data, path, *args, **kwargs)

    monkeypatch.setattr(tfstyle.io, "save_json", save_json)
    output = tmp_path / "out.mp4"
    assert video(capfd, clip, output).code == 130
    monkeypatch.undo()
    resumed = video(capfd, clip, output, "--resume")
    assert resumed.code == 0, resumed.stderr
    report = json.loads((tmp_path / "out.json").read_text())
    assert [r["index"] for r in report["per_frame"]] == list(range(FRAMES))
    assert vio.probe_video(output).frame_count == FRAMES


def test_an_interrupt_while_the_video_is_written_waits_for_it(tmp_path, clip, capfd, monkeypatch):
    """Ctrl-C after the last frame, while the video is encoded: the run ended with 130 and
    "nothing was saved" (the handler raised inside the writer). Now the video and report are
    written whole, the frames folder removed, and one line says what happened."""
    import signal
    import time

    real = vio.write_video

    def interrupted_write(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.1)  # the handler runs here, in the middle of the write
        return real(*args, **kwargs)

    monkeypatch.setattr(vio, "write_video", interrupted_write)
    output = tmp_path / "out.mp4"
    result = video(capfd, clip, output)
    assert result.code == 0, result.stderr
    assert result.lines == [f"tfstyle: interrupted while writing {output}: it was written whole"]
    assert vio.probe_video(output).frame_count == FRAMES
    assert len(json.loads((tmp_path / "out.json").read_text())["per_frame"]) == FRAMES
    assert not (tmp_path / "out.frames").exists()


@pytest.mark.parametrize("module", ["av", "cv2"])
def test_without_the_video_extra_one_line_names_it(tmp_path, clip, capfd, monkeypatch, module):
    # av and opencv-python-headless are the `video` extra; missing, a video command was an
    # ImportError traceback (and `import tfstyle.video` failed).
    import sys

    from tfstyle.errors import MissingPackageError
    from tfstyle.ops import flow

    monkeypatch.setitem(sys.modules, module, None)  # `import module` raises ImportError
    output = tmp_path / "out.mp4"
    package = {"av": "av", "cv2": "opencv-python-headless"}[module]
    result = video(capfd, clip, output)
    line = assert_clean_failure(result, output=output)
    assert line == (
        f"tfstyle: error: tfstyle video needs the {package} package, which is not installed: "
        'pip install "tfstyle[video]"'
    )
    assert not (tmp_path / "out.frames").exists()
    frame = np.zeros((16, 16, 3), np.float32)
    with pytest.raises(MissingPackageError, match=r"pip install \"tfstyle\[video\]\""):
        if module == "av":
            vio.probe_video(clip)
        else:
            flow.optical_flow(frame, frame)


def test_resume_with_other_settings_is_refused(tmp_path, clip, capfd, monkeypatch):
    import tfstyle.video.stylize

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    output = tmp_path / "out.mp4"
    work = tmp_path / "out.frames"
    monkeypatch.setattr(tfstyle.video.stylize, "stylize", interrupted)
    assert video(capfd, clip, output).code == 130
    monkeypatch.undo()
    result = video(capfd, clip, output, "--resume", "--frame_iterations=5")
    # The setting is named with both values (it said "other video").
    line = assert_clean_failure(result, output=output)
    assert line == (
        f"tfstyle: error: --resume: {work} was made with other --frame_iterations 2, now 5; "
        "use the same flags, or delete it to start again"
    )
    result = video(capfd, clip, output, "--resume", "--style_weight=3", style=STYLE)
    assert "other --style_weight " in assert_clean_failure(result, output=output)
    assert work.exists()


def test_fast_mode_with_a_model(tmp_path, clip, capfd):
    from tfstyle import build_stylizer

    model = tmp_path / "tiny.keras"
    build_stylizer(width=4, residual_blocks=1).save(model)
    output = tmp_path / "fast.mp4"
    result = video(capfd, clip, output, "--model", model, "--flow_blend=0.5", style=None)
    assert result.code == 0, result.stderr
    assert vio.probe_video(output).frame_count == FRAMES
    report = json.loads((tmp_path / "fast.json").read_text())
    assert [r["steps"] for r in report["per_frame"]] == [0] * FRAMES
    assert report["mean_warping_error"] > 0


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda p: p.write_bytes(b"\x00\x01 definitely not a video"), "not a video file"),
        (write_empty_clip, "has no video frames"),
    ],
)
def test_bad_input_gets_one_line_and_no_output(tmp_path, capfd, make, match):
    content = tmp_path / "in.avi"
    make(content)
    output = tmp_path / "out.mp4"
    assert_clean_failure(video(capfd, content, output), output=output, match=match)
    assert sorted(os.listdir(tmp_path)) == ["in.avi"]  # no frames folder, no report


@pytest.mark.parametrize(
    "name, match",
    [
        ("blocker/out.mp4", "is not a directory"),
        ("missing/out.mp4", "does not exist"),
        ("out.gif", "give a video file"),
    ],
)
def test_unwritable_output_gets_one_line_and_no_output(tmp_path, clip, capfd, name, match):
    (tmp_path / "blocker").write_text("a file where a folder should be")
    result = video(capfd, clip, tmp_path / name)
    assert result.code == 1 and "Traceback" not in result.stderr, result.stderr
    assert len(result.lines) == 1 and result.lines[0].startswith("tfstyle: error: ")
    assert match in result.lines[0], result.lines[0]
    assert sorted(os.listdir(tmp_path)) == ["blocker"]  # no video, frames folder or report


def test_image_runs_refuse_video_flags(tmp_path, capfd):
    output = tmp_path / "out.png"
    args = ["--content", STYLE, "--style", STYLE, "--output", output, "--frame_iterations=3"]
    result = run_inprocess(args, capfd)
    assert_clean_failure(result, output=output, match="--frame_iterations is for videos")
