"""tfstyle.beam.video: a video in fixed segments on the DirectRunner (in this process), stitched
with cross-faded overlaps; finished segments skipped on reruns, failed ones in dead letters."""

import json
import os
from fractions import Fraction

import numpy as np
import pytest
from cli_runner import assert_clean_failure, run_inprocess
from video_helpers import shifting_frames, write_clip

from tfstyle import StyleConfig
from tfstyle.errors import ConfigError, VideoError
from tfstyle.io import filesystems, load_image
from tfstyle.io import video as vio
from tfstyle.settings.video import SegmentConfig, VideoConfig

beam_video = pytest.importorskip("tfstyle.beam.video", reason="the beam extra is not installed")
IN_PROCESS = ("--direct_num_workers=1", "--direct_running_mode=in_memory")
STYLE = os.path.join(
    os.path.dirname(os.path.dirname(__file__)), "examples/images/style_the_scream.jpg"
)
FRAMES = 12
VIDEO = VideoConfig(frame_iterations=2)
SEGMENTS = SegmentConfig(frames=4, overlap=1)


@pytest.fixture
def config(fixed_random_weights):
    return StyleConfig(
        weights=fixed_random_weights,
        content_layers=("block2_conv1",),
        style_layers=("block1_conv1", "block2_conv1"),
        max_size=32,
        iterations=3,
        scales=1,
        steps_per_call=3,
    )


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    return str(write_clip(path, shifting_frames(FRAMES), rate=Fraction(12), audio=True))


def run(clip, output, config, **options):
    return beam_video.run_video(
        clip,
        output=output,
        styles=[STYLE],
        config=config,
        video=VIDEO,
        segmenting=SEGMENTS,
        options=IN_PROCESS,
        **options,
    )


def snapshot(folder):
    return {
        str(path.relative_to(folder)): (path.stat().st_mtime_ns, path.read_bytes())
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_segments_by_hand():
    def bounds(*args, **kwargs):
        found = beam_video.segments(*args, **kwargs)
        assert [s.index for s in found] == list(range(len(found)))
        return [(s.start, s.stop, s.first) for s in found]

    assert bounds(12, segment_frames=4, overlap=1) == [(0, 4, 0), (4, 8, 3), (8, 12, 7)]
    assert bounds(10, segment_frames=4, overlap=3) == [(0, 4, 0), (4, 8, 1), (8, 10, 5)]
    assert bounds(10, segment_frames=4, overlap=0) == [(0, 4, 0), (4, 8, 4), (8, 10, 8)]
    assert bounds(3, segment_frames=4, overlap=2) == [(0, 3, 0)]
    for frames, overlap, match in [
        (4, 4, r"segment_overlap \(4\) must be smaller than segment_frames \(4\)"),
        (0, 0, "segment_frames must be"),
        (4, -1, "segment_overlap must be"),
    ]:
        with pytest.raises(ConfigError, match=match):
            beam_video.segments(12, segment_frames=frames, overlap=overlap)
        with pytest.raises(ConfigError, match=match):
            SegmentConfig(frames=frames, overlap=overlap)
    with pytest.raises(ConfigError, match="at least one frame"):
        beam_video.segments(0, segment_frames=4, overlap=1)


def test_crossfade_by_hand():
    found = beam_video.segments(7, segment_frames=3, overlap=2)
    # Segment 1 keeps 3..5 and makes 1 and 2 too: they fade 1/3, then 2/3, into its version.
    assert beam_video.frame_sources(found) == [
        (0, 0, None, 0.0),
        (1, 0, 1, 1 / 3),
        (2, 0, 1, 2 / 3),
        (3, 1, None, 0.0),
        (4, 1, 2, 1 / 3),
        (5, 1, 2, 2 / 3),
        (6, 2, None, 0.0),
    ]
    previous = np.full((2, 2, 3), 51 / 255, np.float32)
    current = np.full((2, 2, 3), 204 / 255, np.float32)
    # 2/3 * 51 + 1/3 * 204 = 102, and 1/3 * 51 + 2/3 * 204 = 153, in 8-bit steps.
    assert np.all(beam_video.crossfade(previous, current, 1 / 3) == np.float32(102 / 255))
    assert np.all(beam_video.crossfade(previous, current, 2 / 3) == np.float32(153 / 255))


def test_segments_stitch_in_order_and_segment_0_is_the_in_process_run(tmp_path, clip, config):
    from tfstyle.video.stylize import stylize_video

    summary = run(clip, tmp_path / "out", config)
    assert (summary.written, summary.skipped, summary.failed) == (3, 0, 0)
    assert summary.output == str(tmp_path / "out")
    names = sorted(os.listdir(tmp_path / "out"))
    assert names == [f"frame_{i:06d}.png" for i in range(1, FRAMES + 1)]
    assert sorted(os.listdir(tmp_path)) == ["out", "out.json"]  # the segments folder is gone
    report = json.loads((tmp_path / "out.json").read_text())
    assert [r["index"] for r in report["per_frame"]] == list(range(FRAMES))
    assert [r["segment"] for r in report["per_frame"]] == [0] * 4 + [1] * 4 + [2] * 4
    assert [r["index"] for r in report["per_frame"] if "blend" in r] == [3, 7]
    assert [r["index"] for r in report["per_frame"] if r.get("boundary")] == [3, 4, 7, 8]
    assert [s["first"] for s in report["per_segment"]] == [0, 3, 7]
    # Each segment starts like a new video: its first frame in full (3 steps), then 2 a frame.
    assert [r["steps"] for r in report["per_frame"][:5]] == [3, 2, 2, 2, 2]
    errors = [r["warping_error"] for r in report["per_frame"][1:]]
    assert report["mean_warping_error"] == pytest.approx(np.mean(errors))
    assert report["boundary_warping_error"] > max(errors[0], errors[1])  # a boundary costs

    # Segment 0 is exactly (bit for bit) what the in-process frame loop makes of the first frames.
    frames = list(vio.read_frame_range(clip, 0, 4))
    alone = []
    stylize_video(frames, [load_image(STYLE)], config=config, video=VIDEO, on_frame=alone.append)
    for record in alone[:3]:  # frame 3 is cross-faded with segment 1's version
        written = load_image(vio.frame_path(tmp_path / "out", record.index))
        assert np.array_equal(written, record.image)


def test_a_failed_segment_is_a_dead_letter_and_a_rerun_redoes_only_it(
    tmp_path, clip, config, monkeypatch
):
    real = vio.read_frame_range

    def broken(content, start, stop):
        if start == 3:  # segment 1's frames
            raise VideoError("the disk went away")
        return real(content, start, stop)

    monkeypatch.setattr(vio, "read_frame_range", broken)
    output = tmp_path / "out.mp4"
    failed = run(clip, output, config)
    assert (failed.written, failed.skipped, failed.failed, failed.output) == (2, 0, 1, None)
    work = tmp_path / "out.segments"
    assert sorted(os.listdir(tmp_path)) == ["out.segments"]  # no video, no report
    assert failed.dead_letter == str(work / "dead_letter.jsonl")
    rows = [json.loads(line) for line in (work / "dead_letter.jsonl").read_text().splitlines()]
    assert rows == [{"segment": 1, "frames": [3, 8], "reason": "the disk went away"}]
    kept = {k: v for k, v in snapshot(work).items() if k != "dead_letter.jsonl"}
    assert sorted(k for k in kept if k.endswith("segment.json")) == [
        "0000/segment.json",
        "0002/segment.json",
    ]

    # Rerun, still failing: the finished segments are skipped, none of their files touched.
    again = run(clip, output, config)
    assert (again.written, again.skipped, again.failed) == (0, 2, 1)
    assert {k: v for k, v in snapshot(work).items() if k != "dead_letter.jsonl"} == kept

    # Other settings would mix two runs' segments in one video: refused before any work.
    with pytest.raises(ConfigError, match=r"other settings \(settings.iterations\)"):
        run(clip, output, config.replace(iterations=4))

    monkeypatch.undo()
    writes = []
    write_image = filesystems.write_image
    monkeypatch.setattr(
        filesystems,
        "write_image",
        lambda image, path: writes.append(path) or write_image(image, path),
    )
    fixed = run(clip, output, config)
    assert (fixed.written, fixed.skipped, fixed.failed) == (1, 2, 0)
    made = sorted(os.path.relpath(p, work) for p in writes)
    # Segment 1's 5 frames, and the two cross-faded frames (3 and 7) for the encoder.
    assert made == [f"0001/frame_{i:06d}.png" for i in range(4, 9)] + [
        "blend/frame_000004.png",
        "blend/frame_000008.png",
    ]
    info = vio.probe_video(output)
    assert (info.frame_count, info.frame_rate, info.has_audio) == (FRAMES, Fraction(12), True)
    assert sorted(os.listdir(tmp_path)) == ["out.json", "out.mp4"]

    # A finished video: a rerun runs nothing and changes no file.
    done = snapshot(tmp_path)
    rerun = run(clip, output, config)
    assert (rerun.written, rerun.skipped, rerun.failed) == (0, 3, 0) and rerun.finished_before
    assert snapshot(tmp_path) == done


def test_a_segment_or_the_stitch_processed_twice_writes_once(tmp_path, clip, config, monkeypatch):
    job = beam_video._job(clip, tmp_path / "out", [STYLE], None, config, VIDEO, SEGMENTS, None)
    fn = beam_video.SegmentFn(job=job, config=config, styles=[STYLE])
    fn.setup()
    writes = []
    real = filesystems.write_bytes
    monkeypatch.setattr(filesystems, "write_bytes", lambda *a: writes.append(a[1]) or real(*a))
    segment = job.found[2]
    first = list(fn.process(segment))
    second = list(fn.process(segment))  # a retried bundle meets the element again
    assert first == second and [r["index"] for r in first[0]["per_frame"]] == list(range(7, 12))
    # Written once (write_image goes through write_bytes): the second time read the record back.
    assert writes == [job.frame(2, i) for i in range(7, 12)] + [job.record(2)]

    records = [next(iter(fn.process(s))) for s in job.found]
    assert beam_video.stitch(records, [], job=job) == job.output
    done = snapshot(tmp_path)
    assert sorted(done) == sorted([*(f"out/frame_{i:06d}.png" for i in range(1, 13)), "out.json"])
    # A retried stitch, its work folder gone: nothing to redo, nothing changed.
    assert beam_video.stitch(records, [], job=job) == job.output
    assert snapshot(tmp_path) == done


def test_a_folder_of_frames_at_its_frame_rate(tmp_path, config):
    from tfstyle.io import save_image

    folder = tmp_path / "shot"
    folder.mkdir()
    for index, frame in enumerate(shifting_frames(5)):
        save_image(frame, folder / f"f{index + 1}.png")
    summary = beam_video.run_video(
        folder,
        output=tmp_path / "out.mkv",
        styles=[STYLE],
        config=config,
        video=VIDEO,
        segmenting=SegmentConfig(frames=3, overlap=1),
        frame_rate="10",
        options=IN_PROCESS,
    )
    assert (summary.written, summary.failed) == (2, 0)
    info = vio.probe_video(tmp_path / "out.mkv")
    assert (info.frame_count, info.frame_rate, info.has_audio) == (5, Fraction(10), False)
    with pytest.raises(ConfigError, match="frame_rate is for a folder of frames"):
        run(str(tmp_path / "out.mkv"), tmp_path / "again.mp4", config, frame_rate=24)


def test_remote_paths_are_refused(tmp_path, clip, config):
    with pytest.raises(ConfigError, match=r"local paths.*gs://bucket/out\.mp4"):
        run(clip, "gs://bucket/out.mp4", config)


def video(capfd, *extra):
    tiny = [
        "--weights=none",
        "--max_size=32",
        "--iterations=2",
        "--frame_iterations=1",
        "--content_layers=block2_conv1",
        "--style_layers=block1_conv1,block2_conv1",
    ]
    return run_inprocess(["video", "--style", STYLE, *tiny, *extra], capfd)


def test_the_cli_runs_a_video_on_beam(tmp_path, clip, capfd):
    output = tmp_path / "out.mp4"
    args = ["--content", clip, "--output", output, "--runner", "direct"]
    result = video(capfd, *args, "--segment_frames=6", "--segment_overlap=2", "--", *IN_PROCESS)
    assert result.code == 0, result.stderr
    assert result.lines[-1] == (
        f"tfstyle: wrote {output} (2 segments: 2 written, 0 skipped, 0 failed)"
    )
    assert vio.probe_video(output).frame_count == FRAMES
    report = json.loads((tmp_path / "out.json").read_text())
    assert report["segments"] == {"frames": 6, "overlap": 2}
    assert [r["index"] for r in report["per_frame"] if "blend" in r] == [4, 5]
    assert sorted(os.listdir(tmp_path)) == ["out.json", "out.mp4"]


def test_the_cli_paints_a_video_on_beam_with_a_model(tmp_path, clip, capfd):
    from tfstyle import build_stylizer

    model = tmp_path / "tiny.keras"
    build_stylizer(width=4, residual_blocks=1).save(model)
    output = tmp_path / "painted"
    args = ["video", "--content", clip, "--model", model, "--output", output, "--max_size=32"]
    beam = ["--runner=direct", "--segment_frames=5", "--segment_overlap=1", "--flow_blend=0.5"]
    result = run_inprocess([*args, *beam, "--quiet", "--", *IN_PROCESS], capfd)
    assert result.code == 0 and result.stderr == "", result.stderr
    again = run_inprocess([*args, *beam, "--", *IN_PROCESS], capfd)
    assert again.code == 0 and again.lines == [
        f"tfstyle: nothing to do: {output} is finished (its report exists); pass --overwrite "
        "to redo it"
    ]
    assert len(os.listdir(output)) == FRAMES
    report = json.loads((tmp_path / "painted.json").read_text())
    assert [r["steps"] for r in report["per_frame"]] == [0] * FRAMES
    assert [r["index"] for r in report["per_frame"] if "blend" in r] == [4, 9]
    assert report["model"] == str(model) and report["video"]["flow_blend"] == 0.5
    other = tmp_path / "other.mp4"
    missing = ["video", "--content", clip, "--model", tmp_path / "nothing", "--output", other]
    refused = run_inprocess([*missing, *beam, "--", *IN_PROCESS], capfd)
    assert_clean_failure(refused, output=other, match="no stylizer at")


@pytest.mark.parametrize(
    "extra, match",
    [
        (["--segment_frames=4"], "--segment_frames is for a video on Apache Beam (--runner)"),
        (["--", "--direct_num_workers=1"], "unexpected arguments"),
        (["--runner=direct", "--resume"], "--resume is for the in-process video command"),
        (
            ["--runner=direct", "--segment_frames=2", "--segment_overlap=2"],
            "segment_overlap (2) must be smaller than segment_frames (2)",
        ),
        (["--runner=direct", "--output_dir=x"], "video takes no --output_dir"),
        (["--runner=direct", "--output=gs://b/v.mp4"], "a video pipeline reads and writes local"),
    ],
)
def test_the_cli_refuses_bad_flags_in_one_line(tmp_path, clip, capfd, extra, match):
    output = tmp_path / "out.mp4"
    result = video(capfd, "--content", clip, "--output", output, *extra)
    assert_clean_failure(result, output=output, match=match)
    assert os.listdir(tmp_path) == []
