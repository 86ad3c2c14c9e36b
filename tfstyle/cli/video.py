"""`tfstyle video --content clip.mp4 --style painting.jpg --output out.mp4 [settings]`.

Flags -> `StyleConfig` + `VideoConfig` -> `stylize_video()` -> frames -> video. The input is a
video file or a folder of frames; the output a video file (.mp4, .mov, .mkv: the input's frame
rate, its size or --max_size, its audio copied) or a folder of frames. With `--model`, a
trained stylizer paints each frame instead of the optimisation.

Every finished frame is written at once, atomically, to the frames folder: for `out.mp4`,
`out.frames/frame_000001.png`... beside a `progress.json` holding the settings and each
frame's record; an interrupted run continues with `--resume` from the first missing frame.
When all frames are done the video is encoded (whole or not at all) and the frames folder
removed; the report `out.json` (settings, per-frame losses, times and warping errors, the mean
warping error) is written last. For a folder output, the frames stay there and the report is
`<folder>.json`.
"""

import os
import sys
import time

from absl import flags

from tfstyle import __version__
from tfstyle.cli import display, shell
from tfstyle.cli.flags import (
    FLAGS,
    INIT_KEYWORDS,
    MASK_FLAGS,
    check_mask_options,
    config_from_flags,
    loader,
    mask_loader,
    refuse_flags,
)
from tfstyle.errors import CheckpointError, Interrupted, TfstyleError
from tfstyle.io import native_logs, outputs
from tfstyle.settings.video import (
    DEFAULT_FRAME_RATE,
    FLOW_METHODS,
    SEGMENT_DEFAULTS,
    VIDEO_DEFAULTS,
    VIDEO_MODES,
    VideoConfig,
    as_frame_rate,
)

flags.DEFINE_enum(
    "video_mode",
    VIDEO_DEFAULTS.mode,
    VIDEO_MODES,
    "video: temporal (each frame starts from the previous one warped by the optical flow, "
    "with a temporal loss; Ruder et al. 2016) or per_frame (each frame alone).",
)
flags.DEFINE_float(
    "temporal_weight",
    VIDEO_DEFAULTS.temporal_weight,
    "video: weight of the temporal loss (mean squared difference from the warped previous "
    "frame where the flow is reliable).",
)
flags.DEFINE_integer(
    "frame_iterations",
    VIDEO_DEFAULTS.frame_iterations,
    "video: optimisation steps per frame after the first (at the final size).",
)
flags.DEFINE_enum("flow", VIDEO_DEFAULTS.flow, FLOW_METHODS, "video: optical flow method (OpenCV).")
flags.DEFINE_float(
    "flow_blend",
    VIDEO_DEFAULTS.flow_blend,
    "video with --model: fraction of the warped previous output blended into each frame "
    "where the flow is reliable, against flicker (0: none).",
)
flags.DEFINE_string(
    "frame_rate",
    None,
    f"video: frame rate of a video made from a folder of frames (default "
    f"{DEFAULT_FRAME_RATE}; a video input keeps its own), e.g. 24 or 30000/1001.",
)

flags.DEFINE_integer(
    "segment_frames",
    SEGMENT_DEFAULTS.frames,
    "video with --runner: frames per segment; segments stylize in parallel, each from its own "
    "full first frame.",
)
flags.DEFINE_integer(
    "segment_overlap",
    SEGMENT_DEFAULTS.overlap,
    "video with --runner: frames each later segment shares with the previous one, cross-faded "
    "at the stitch (0: a hard cut).",
)

# The flags of `tfstyle video` on Apache Beam only (the in-process command refuses them).
SEGMENT_FLAGS = ("segment_frames", "segment_overlap")
# The flags only `tfstyle video` reads (image runs refuse them).
VIDEO_FLAGS = (
    "video_mode",
    "temporal_weight",
    "frame_iterations",
    "flow",
    "flow_blend",
    "frame_rate",
    *SEGMENT_FLAGS,
)
# Flags of image runs that a video run has no use for.
_NOT_FOR_VIDEO = (
    "output_dir",
    "save_every",
    "history",
    "plot_losses",
    "tensorboard_dir",
)
PROGRESS_FILE = "progress.json"


def require_video_extra():
    """Refuse, before any work, a video command without the `video` extra (PyAV and OpenCV)."""
    from tfstyle.errors import import_optional

    import_optional("av", package="av", extra="video", purpose="tfstyle video")
    import_optional("cv2", package="opencv-python-headless", extra="video", purpose="tfstyle video")


def command():
    """Run the command; returns the exit status (raises TfstyleError for a user's mistake)."""
    from tfstyle.io import check_directory
    from tfstyle.io import video as vio

    refuse_flags(SEGMENT_FLAGS, "--{name} is for a video on Apache Beam (--runner)")
    require_video_extra()
    content, styles, config, video = settings_from_flags()
    # The output, checked before anything is read or made.
    to_video = vio.is_video_path(FLAGS.output)
    if to_video:
        output = vio.check_video_output(FLAGS.output, inputs=[content, *styles, *_mask_paths()])
        work = os.path.splitext(output)[0] + ".frames"
        check_directory(work, create=True)
        if os.path.exists(output) and not FLAGS.overwrite:
            raise TfstyleError(f"{output} already exists; remove it or pass --overwrite")
    else:
        refuse_image_output()
        output = work = check_directory(FLAGS.output, create=True)
    source = _source(content)
    size = _frame_size(source, config, even=to_video)
    start, previous_records = _resume_point(work, source, config, video)
    style_images = [loader()(path) for path in styles]
    masks = _load_masks()  # a blank mask is refused here, as by the image command
    stylizer = load_stylizer() if FLAGS.model else None
    return _run(
        source,
        style_images,
        stylizer,
        masks=masks,
        config=config,
        video=video,
        size=size,
        output=output,
        work=work,
        to_video=to_video,
        start=start,
        previous_records=previous_records,
    )


def settings_from_flags():
    """(content, style paths, `StyleConfig`, `VideoConfig`) from the flags, checked as every
    video run needs them (in process or on Beam)."""
    refuse_flags(_NOT_FOR_VIDEO, "video takes no --{name}")
    required = ("content", "output") if FLAGS.model else ("content", "style", "output")
    for name in required:
        if not getattr(FLAGS, name):
            raise TfstyleError(f"--{name} is required")
    if len(FLAGS.content) != 1:
        raise TfstyleError(f"video takes one --content video or folder; got {len(FLAGS.content)}")
    if FLAGS.init not in INIT_KEYWORDS:
        raise TfstyleError(f"video takes --init {', '.join(INIT_KEYWORDS)}; not an image file")
    if FLAGS["tile_size"].present and not FLAGS.model:
        raise TfstyleError("--tile_size is for --model videos: optimised frames are not tiled")
    config = config_from_flags()
    video = VideoConfig(
        mode=FLAGS.video_mode,
        temporal_weight=FLAGS.temporal_weight,
        frame_iterations=FLAGS.frame_iterations,
        flow=FLAGS.flow,
        flow_blend=FLAGS.flow_blend,
    )
    content = FLAGS.content[0]
    styles = [] if FLAGS.model else list(FLAGS.style)
    if FLAGS.model:
        refuse_flags(
            ("style", "video_mode", "temporal_weight", "frame_iterations", *MASK_FLAGS),
            "--{name} is for optimising frames, not for --model",
        )
    else:
        config.blend_weights(len(styles))
        if FLAGS["flow_blend"].present:
            raise TfstyleError("--flow_blend is for --model; optimised frames use --video_mode")
        check_mask_options(
            config,
            style_masks=len(FLAGS.style_masks or []),
            content_mask=bool(FLAGS.content_mask),
            styles=len(styles),
            style_image_masks=len(FLAGS.style_image_masks or []),
        )
    return content, styles, config, video


def _mask_paths():
    """Every mask file of the run (inputs the output must not overwrite)."""
    content = [FLAGS.content_mask] if FLAGS.content_mask else []
    return [*(FLAGS.style_masks or []), *content, *(FLAGS.style_image_masks or [])]


def _load_masks():
    """The mask keywords of `stylize_video` from the mask flags, each mask checked (readable,
    not blank) before any work."""
    load = mask_loader()
    return {
        "style_masks": [load(p, "style mask") for p in FLAGS.style_masks or []] or None,
        "content_mask": load(FLAGS.content_mask, "content mask") if FLAGS.content_mask else None,
        "style_image_masks": [load(p, "style image mask") for p in FLAGS.style_image_masks or []]
        or None,
    }


def refuse_image_output():
    """A video's output is a video file or a folder: an image file name is a mistake."""
    from tfstyle.io import video as vio

    if os.path.splitext(FLAGS.output)[1].lower() in (".png", ".jpg", ".jpeg", ".gif"):
        raise TfstyleError(
            f"cannot write {FLAGS.output}: give a video file ({', '.join(vio.VIDEO_FORMATS)})"
            " or a folder for the frames"
        )


class _Source:
    """The input frames: a video file or a folder of image files."""

    def __init__(self, path, *, shape, rate, info=None, files=None):
        self.path, self.shape, self.rate, self.info, self.files = path, shape, rate, info, files
        self.count = info.frame_count if info else len(files)
        self.has_audio = bool(info and info.has_audio)

    def frames(self, start):
        """Every frame from the first, None for those before `start - 1` (never looked at)."""
        from tfstyle.io import load_image
        from tfstyle.io import video as vio

        skip = max(0, start - 1)
        yield from [None] * skip
        if self.info is not None:
            yield from vio.read_video_frames(self.path, start=skip)
        else:
            for path in self.files[skip:]:
                yield load_image(path)


def _source(path):
    from tfstyle.io import video as vio

    if os.path.isdir(path):
        files = vio.frame_folder_paths(path)
        rate = as_frame_rate(FLAGS.frame_rate or DEFAULT_FRAME_RATE)
        return _Source(path, shape=_check_frames(files), rate=rate, files=files)
    if FLAGS.frame_rate:
        raise TfstyleError("--frame_rate is for a folder of frames; a video keeps its own rate")
    info = vio.probe_video(path)
    return _Source(path, shape=(info.height, info.width, 3), rate=info.frame_rate, info=info)


def _check_frames(files):
    """The shape of a folder's frames, each read whole now (a damaged or odd-sized frame is
    refused before any work, not found mid-run); one at a time, so memory holds one frame."""
    load = loader()
    shape = None
    for path in files:
        frame_shape = load(path).shape
        if shape is None:
            shape = frame_shape
        elif frame_shape != shape:
            raise TfstyleError(
                f"frame {path} is {frame_shape[1]}x{frame_shape[0]} px and the first frame "
                f"{shape[1]}x{shape[0]}: the frames of a folder must share one size"
            )
    return shape


def _frame_size(source, config, *, even):
    with native_logs.quiet_native_logs():
        from tfstyle.video.stylize import frame_size  # imports TensorFlow: after the cheap checks

    return frame_size(source.shape, config.max_size, even=even)


def _settings(source, config, video):
    """What a resumed run must share with the interrupted one."""
    return {
        "content": os.path.abspath(source.path),
        "frames": source.count,
        "model": os.path.abspath(FLAGS.model) if FLAGS.model else None,
        "style": [os.path.abspath(p) for p in FLAGS.style or []] if not FLAGS.model else [],
        "settings": config.to_dict(),
        "video": video.to_dict(),
        # The mask files, so that --resume refuses other masks (None without: as before masks
        # were applied, so older runs still resume).
        "masks": [os.path.abspath(p) for p in _mask_paths()] or None,
    }


def _resume_point(work, source, config, video):
    """(first frame to make, records of the finished ones): (0, []) for a new run."""
    import json

    from tfstyle.io import video as vio

    progress = os.path.join(work, PROGRESS_FILE)
    done = vio.count_finished_frames(work, source.count) if os.path.isdir(work) else 0
    if not FLAGS.resume:
        interrupted = os.path.exists(progress)
        if (done or interrupted) and FLAGS.overwrite:
            vio.remove_frame_folder(work, extra=(PROGRESS_FILE,))
        elif interrupted:
            raise CheckpointError(
                f"{work} holds {done} finished frame(s) of an interrupted run; continue it with "
                "--resume, or pass --overwrite to start again"
            )
        elif done:
            raise CheckpointError(f"{work} already holds frames; pass --overwrite to replace them")
        return 0, []
    if not os.path.exists(progress):
        raise CheckpointError(f"--resume: no interrupted run in {work} to continue from")
    try:
        with open(progress, encoding="utf-8") as file:
            saved = json.load(file)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"--resume: cannot read {progress}: {exc}") from None
    changed = _changed(saved.get("run", {}), _settings(source, config, video))
    if changed:
        raise CheckpointError(
            f"--resume: {work} was made with other {'; '.join(changed)}; use the same flags, "
            "or delete it to start again"
        )
    records = [r for r in saved.get("per_frame", []) if r["index"] < done]
    # A frame written without its record (by a run before the record came first): redo it
    # and those after it, so that the report lists every frame.
    listed = 0
    while listed < len(records) and records[listed]["index"] == listed:
        listed += 1
    return listed, records[:listed]


def _changed(saved, expected):
    """What differs between a saved run's `_settings` and this one's, each named: a setting as
    its flag with both values (`--frame_iterations 2, now 5`), not as "other video"."""
    changed = []
    for key in sorted(expected):
        old, new = saved.get(key), expected[key]
        if old == new:
            continue
        if isinstance(new, dict) and isinstance(old, dict):
            changed += [
                f"--{name} {old.get(name)!r}, now {new.get(name)!r}"
                for name in sorted(set(old) | set(new))
                if old.get(name) != new.get(name)
            ]
        else:
            changed.append(key)
    return changed


def load_stylizer():
    with native_logs.quiet_native_logs():
        from tfstyle.fast.stylizer import FastStylizer

        return FastStylizer.load(FLAGS.model, tile_size=FLAGS.tile_size, jit_compile=True)


def _run(
    source,
    styles,
    stylizer,
    *,
    masks,
    config,
    video,
    size,
    output,
    work,
    to_video,
    start,
    previous_records,
):
    from tfstyle.io import load_image, make_directories, save_image, save_json
    from tfstyle.io import video as vio

    with native_logs.quiet_native_logs():
        from tfstyle.video.stylize import stylize_video

    total = source.count
    previous = load_image(vio.frame_path(work, start - 1)) if start else None
    make_directories(work)
    run_settings = _settings(source, config, video)
    records = list(previous_records)
    progress_file = os.path.join(work, PROGRESS_FILE)
    bar = (
        None
        if FLAGS.quiet
        else display.ProgressBar(describe=_frame_text, unit="frame", initial=start)
    )
    began = time.perf_counter()

    def save_progress():
        save_json({"run": run_settings, "per_frame": records}, progress_file)

    def on_frame(record):
        # The record before the frame: a resumed run starts at the first missing frame file,
        # and drops records past it, so an interrupt between the two writes redoes the frame
        # (the other order would leave a frame on disk that the report never lists).
        records.append(record.to_dict())
        save_progress()
        save_image(record.image, vio.frame_path(work, record.index))
        if bar:
            losses = dict(record.losses, seconds=record.seconds, error=record.warping_error)
            bar(display.Step(record.index + 1, total, losses, record.index + 1 == total))

    save_progress()
    try:
        if start < total:
            stylize_video(
                source.frames(start),
                styles,
                config=config,
                video=video,
                stylizer=stylizer,
                size=size,
                start=start,
                previous_output=previous,
                on_frame=on_frame,
                masks=masks,
            )
    except (Interrupted, KeyboardInterrupt) as exc:
        if bar:
            bar.end_line()
        done = len(records)
        display.say(
            f"{shell.PREFIX}: interrupted at frame {done + 1} of {total}; the {done} finished "
            f"frame(s) are in {work}: continue with --resume"
        )
        return shell.exit_status(getattr(exc, "__cause__", None) or exc)
    # Every frame is done: a signal while the video and report are written only sets a flag
    # (raised from the handler, it landed inside PyAV or TensorFlow, and a finished run ended
    # with 130 and "nothing was saved"); the frames folder stays until both are written, so a
    # second signal loses nothing.
    with shell.stop_after_step() as late:
        _finish(source, records, run_settings, output, work, to_video, size, began)
    if late.is_set():
        display.say(f"{shell.PREFIX}: interrupted while writing {output}: it was written whole")
    return 0


def _finish(source, records, run_settings, output, work, to_video, size, began):
    """Write the video (or keep the frames) and the report, then remove the work files."""
    from tfstyle.io import remove_file, save_json
    from tfstyle.io import video as vio

    total = source.count
    progress_file = os.path.join(work, PROGRESS_FILE)
    if to_video:
        paths = [vio.frame_path(work, i) for i in range(total)]
        audio = source.path if source.has_audio else None
        vio.write_video(paths, output, frame_rate=source.rate, audio_from=audio)
    report = {
        "version": __version__,
        **run_settings,
        "output": output,
        "frame_rate": str(source.rate),
        "size": [size[1], size[0]],
        "audio": to_video and source.has_audio,
        "mean_warping_error": _mean_warping_error(records),
        "seconds": round(sum(r["seconds"] for r in records), 1),
        "this_run_seconds": round(time.perf_counter() - began, 1),
        "per_frame": records,
    }
    save_json(report, outputs.report_path(output.rstrip(os.sep)))
    if to_video:
        vio.remove_frame_folder(work, extra=(PROGRESS_FILE,))
    else:
        remove_file(progress_file)
    if not FLAGS.quiet:
        error = report["mean_warping_error"]
        stability = "" if error is None else f", mean warping error {error:.3g}"
        print(f"wrote {output} ({total} frames at {source.rate} fps{stability})", file=sys.stderr)


def _mean_warping_error(records):
    """`video.mean_warping_error` of the report's records (this run's and the resumed ones)."""
    errors = [r["warping_error"] for r in records if r["warping_error"] is not None]
    return sum(errors) / len(errors) if errors else None


def _frame_text(losses):
    text = f"{losses['seconds']:.1f} s/frame"
    if "total" in losses:
        text += f", total {losses['total']:.4g}"
    if losses.get("error") is not None:
        text += f", warping error {losses['error']:.3g}"
    return text
