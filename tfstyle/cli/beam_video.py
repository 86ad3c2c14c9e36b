"""`tfstyle video --content clip.mp4 --style art.jpg --output out.mp4 --runner RUNNER
[--segment_frames N] [--segment_overlap K] [-- OPTIONS]`: one video as an Apache Beam pipeline
(`tfstyle.beam.run_video`), its frames cut into segments that stylize in parallel and are
stitched with cross-faded overlaps.

The same flags as the in-process `video` command (`settings_from_flags`), less `--resume`: a
rerun of the same command already skips the finished segments, so it is refused rather than
accepted and ignored. A finished output (its report exists) is skipped unless `--overwrite`.
"""

import sys

from tfstyle.cli import shell
from tfstyle.cli import video as video_cli
from tfstyle.cli.beam_batch import import_beam, pipeline_options, quiet_workers
from tfstyle.cli.flags import FLAGS, MASK_FLAGS, loader, nothing_left, refuse_flags
from tfstyle.errors import TfstyleError
from tfstyle.settings.video import SegmentConfig


def command(pipeline_args):
    """Run the pipeline; returns the exit status (raises TfstyleError for a user's mistake)."""
    refuse_flags(
        ("resume",),
        "--{name} is for the in-process video command: with --runner, the same command run "
        "again skips the finished segments",
    )
    refuse_flags(("manifest",), "--{name} is for a batch of images on Apache Beam")
    refuse_flags(
        MASK_FLAGS,
        "--{name} is for the in-process video command: the segments on Apache Beam do not "
        "read masks",
    )
    video_cli.require_video_extra()
    content, styles, config, video = video_cli.settings_from_flags()
    segmenting = SegmentConfig(frames=FLAGS.segment_frames, overlap=FLAGS.segment_overlap)
    _check_output(content, styles)
    # An unreadable style or model gets its one line here, not a failure on every worker.
    for path in styles:
        loader()(path)
    if FLAGS.model:
        video_cli.load_stylizer()
    beam = import_beam()
    with quiet_workers():
        summary = beam.run_video(
            content,
            output=FLAGS.output,
            styles=styles,
            model=FLAGS.model,
            config=config,
            video=video,
            segmenting=segmenting,
            frame_rate=FLAGS.frame_rate,
            tile_size=FLAGS.tile_size,
            overwrite=FLAGS.overwrite,
            options=pipeline_options(FLAGS.runner, pipeline_args),
        )
    counts = f"{summary.written} written, {summary.skipped} skipped, {summary.failed} failed"
    if summary.finished_before:
        # A rerun on Beam resumes (it skips finished segments), as a batch does: a finished
        # output is a batch with nothing left to do.
        return nothing_left(f"{summary.output} is finished (its report exists)")
    if summary.output is None:
        raise TfstyleError(
            f"segments: {counts}: see {summary.dead_letter}; the finished ones are kept in "
            f"{summary.work}: run the command again to retry the others"
        )
    if not FLAGS.quiet:
        print(
            f"{shell.PREFIX}: wrote {summary.output} ({summary.segments} "
            f"segment{'s' if summary.segments != 1 else ''}: {counts})",
            file=sys.stderr,
        )
    return 0


def _check_output(content, styles):
    """The output, checked before any work: a writable video file name or folder."""
    from tfstyle.io import check_directory
    from tfstyle.io import video as vio

    if "://" in FLAGS.output:
        raise TfstyleError(
            f"cannot write {FLAGS.output}: a video pipeline reads and writes local paths (a "
            "disk every worker sees)"
        )
    if vio.is_video_path(FLAGS.output):
        vio.check_video_output(FLAGS.output, inputs=[content, *styles])
    else:
        video_cli.refuse_image_output()
        check_directory(FLAGS.output, create=True)
    check_directory(vio.segments_folder(FLAGS.output), create=True)
