"""tfstyle.io.video: probing, reading and writing videos (frame count, rate, size, audio), folders
of frames, and the one-line errors for files that are not videos."""

import os
from fractions import Fraction

import numpy as np
import pytest
from video_helpers import shifting_frames, write_clip, write_empty_clip

from tfstyle.errors import OutputError, VideoError
from tfstyle.io import save_image
from tfstyle.io import video as vio


def test_probe_and_read_a_clip_with_audio(tmp_path):
    frames = shifting_frames(5)
    clip = write_clip(tmp_path / "clip.mp4", frames, rate=Fraction(30000, 1001), audio=True)
    info = vio.probe_video(clip)
    assert (info.frame_count, info.width, info.height) == (5, 48, 32)
    assert info.frame_rate == Fraction(30000, 1001)
    assert info.has_audio
    read = list(vio.read_video_frames(clip, start=3))
    assert len(read) == 2 and read[0].dtype == np.uint8 and read[0].shape == (32, 48, 3)
    # H.264 (crf 10, half-resolution chroma) keeps this fine texture to within a few levels.
    assert np.abs(read[0] / 255.0 - frames[3]).mean() < 0.05


def test_write_video_keeps_count_rate_and_copies_audio(tmp_path):
    clip = write_clip(tmp_path / "clip.mp4", shifting_frames(4), rate=Fraction(15), audio=True)
    folder = tmp_path / "frames"
    folder.mkdir()
    for index, frame in enumerate(vio.read_video_frames(clip)):
        save_image(frame / 255.0, vio.frame_path(folder, index))
    paths = vio.frame_folder_paths(folder)
    assert [os.path.basename(p) for p in paths] == [f"frame_{i:06d}.png" for i in range(1, 5)]
    out = vio.write_video(paths, tmp_path / "out.mp4", frame_rate=Fraction(15), audio_from=clip)
    info = vio.probe_video(out)
    assert (info.frame_count, info.frame_rate, info.has_audio) == (4, Fraction(15), True)
    assert sorted(os.listdir(tmp_path)) == ["clip.mp4", "frames", "out.mp4"]  # no temporaries


def test_a_range_of_frames_from_a_video_or_a_folder(tmp_path):
    frames = shifting_frames(6)
    clip = write_clip(tmp_path / "clip.mp4", frames)
    whole = list(vio.read_video_frames(clip))
    part = list(vio.read_frame_range(str(clip), 2, 5))
    assert len(part) == 3
    assert all(np.array_equal(a, b) for a, b in zip(part, whole[2:5], strict=True))
    files = [tmp_path / f"f{index}.png" for index in range(len(frames))]
    for frame, path in zip(frames, files, strict=True):
        save_image(frame, path)
    from_files = list(vio.read_frame_range(files, 4, 9))  # past the end: what there is
    assert len(from_files) == 2 and from_files[0].dtype == np.uint8
    assert np.array_equal(from_files[1], np.rint(frames[5] * 255).astype(np.uint8))
    assert vio.segments_folder(tmp_path / "out.mp4") == str(tmp_path / "out.segments")
    assert vio.segments_folder(f"{tmp_path}/painted/") == str(tmp_path / "painted.segments")


def test_frame_folder_is_read_in_natural_order(tmp_path):
    for name in ("f10.png", "f2.png", "f1.png", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    assert [os.path.basename(p) for p in vio.frame_folder_paths(tmp_path)] == [
        "f1.png",
        "f2.png",
        "f10.png",
    ]


def test_count_finished_frames_stops_at_the_first_gap(tmp_path):
    for index in (0, 1, 3):
        save_image(np.zeros((4, 4, 3)), vio.frame_path(tmp_path, index))
    assert vio.count_finished_frames(tmp_path, 10) == 2


@pytest.mark.parametrize(
    "name, make, message",
    [
        ("in.mp4", lambda p: p.write_bytes(b"not a video at all"), "not a video file"),
        ("in.avi", write_empty_clip, "has no video frames"),
        ("in.mp4", write_empty_clip, "has no video frames"),
        ("in.mp4", lambda p: None, "not found"),
    ],
)
def test_bad_inputs_are_one_line_errors(tmp_path, name, make, message):
    path = tmp_path / name
    make(path)
    with pytest.raises(VideoError, match=message) as info:
        vio.probe_video(path)
    assert "\n" not in str(info.value)


def test_failed_write_leaves_no_file(tmp_path):
    frame = tmp_path / "odd.png"
    save_image(np.zeros((33, 47, 3)), frame)  # yuv420p needs even sides: the encoder refuses
    with pytest.raises(OutputError):
        vio.write_video([str(frame)], tmp_path / "out.mp4", frame_rate=12)
    assert sorted(os.listdir(tmp_path)) == ["odd.png"]


def test_check_video_output(tmp_path):
    assert vio.check_video_output(tmp_path / "a.mp4").endswith("a.mp4")
    with pytest.raises(OutputError, match="use a name ending in"):
        vio.check_video_output(tmp_path / "a.gif")
    with pytest.raises(OutputError):
        vio.check_video_output(tmp_path / "missing" / "a.mp4")
