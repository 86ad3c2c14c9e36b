"""`tfstyle --content PHOTOS --style ART --output_dir OUT --runner RUNNER [-- OPTIONS]`: the
batch as an Apache Beam pipeline (`tfstyle.beam`), on this machine's cores (`direct`) or on
Dataflow, Flink or Spark. Beam pipeline options follow a `--` at the end of the command line;
`--manifest` takes the pairs, with per-row settings, from a CSV or JSON Lines file. With
`--model` instead of `--style`, a trained stylizer paints the photos through Beam's
`RunInference` (`tfstyle.beam.run_stylizer`).
"""

import contextlib
import os
import sys

from tfstyle.cli import shell
from tfstyle.cli.flags import FLAGS, MASK_FLAGS, config_from_flags, nothing_to_do, refuse_flags
from tfstyle.errors import TfstyleError
from tfstyle.io import native_logs

# Flags of the in-process batch that the pipeline does not carry to its workers.
_NOT_ON_BEAM = (
    "init",
    "resume",
    "save_every",
    "history",
    "plot_losses",
    "tensorboard_dir",
    "style_blend_weights",
    *MASK_FLAGS,  # the pipeline's workers do not read masks
)
# --runner direct: Beam's DirectRunner with a worker process per core (Beam's own default is
# one thread, which leaves the other cores idle), whose INFO logs (every bundle) stay quiet.
_DIRECT_DEFAULTS = {
    "direct_num_workers": "0",
    "direct_running_mode": "multi_processing",
    "default_sdk_harness_log_level": "WARNING",
}


def command(pipeline_args):
    """Run the pipeline; returns the exit status (raises TfstyleError for a user's mistake)."""
    refuse_flags(_NOT_ON_BEAM, "--runner does not support --{name}")
    if not FLAGS.output_dir:
        raise TfstyleError("--runner runs a batch: give --output_dir")
    if FLAGS.model:
        return _paint(pipeline_args)
    if bool(FLAGS.manifest) == bool(FLAGS.content or FLAGS.style):
        raise TfstyleError("give --content and --style, or --manifest, for --runner")
    config = config_from_flags()
    beam = import_beam()
    if FLAGS.manifest:
        found = beam.read_manifest(FLAGS.manifest, config=config)
    else:
        found = beam.pairs(FLAGS.content, FLAGS.style)
    with quiet_workers():
        summary = beam.run(
            found,
            output_dir=FLAGS.output_dir,
            config=config,
            overwrite=FLAGS.overwrite,
            options=pipeline_options(FLAGS.runner, pipeline_args),
        )
    return _report(summary)


def _paint(pipeline_args):
    """--model: the photos painted by the trained stylizer, through RunInference."""
    from tfstyle.cli.apply import NOT_FOR_MODEL

    refuse_flags(
        (*NOT_FOR_MODEL, "manifest"), "--model paints with a trained network: it takes no --{name}"
    )
    if not FLAGS.content:
        raise TfstyleError("--content is required")
    beam = import_beam()
    settings = {"batch_size": FLAGS.batch_size} if FLAGS["batch_size"].present else {}
    with quiet_workers():
        summary = beam.run_stylizer(
            FLAGS.content,
            model=FLAGS.model,
            output_dir=FLAGS.output_dir,
            max_size=FLAGS.max_size if FLAGS["max_size"].present else None,
            preserve_colors=FLAGS.preserve_colors,
            tile_size=FLAGS.tile_size,
            overwrite=FLAGS.overwrite,
            options=pipeline_options(FLAGS.runner, pipeline_args),
            **settings,
        )
    return _report(summary)


def quiet_workers():
    """Around a pipeline's run: Beam's worker processes' start-up lines kept out of the
    command's output, unless --verbosity is given (then everything is shown)."""
    if FLAGS["verbosity"].present:
        return contextlib.nullcontext()
    return native_logs.dropped_lines(native_logs.BEAM_WORKER_NOISE)


def import_beam():
    """`tfstyle.beam`, or the missing extra as a TfstyleError."""
    with native_logs.quiet_native_logs():
        try:
            from tfstyle import beam
        except ImportError as exc:
            raise TfstyleError(str(exc)) from None
        # TensorFlow, without its start-up lines (the pipelines import it when they run).
        import tfstyle.fast.stylizer  # noqa: F401
    return beam


def _report(summary):
    counts = f"{summary.written} written, {summary.skipped} skipped, {summary.failed} failed"
    if summary.failed:
        raise TfstyleError(f"{counts}: see {summary.dead_letter}; rerun to retry them")
    if summary.skipped and not summary.written:
        return nothing_to_do(summary.skipped, os.path.abspath(FLAGS.output_dir))
    if not FLAGS.quiet:
        print(f"{shell.PREFIX}: {counts} in {os.path.abspath(FLAGS.output_dir)}", file=sys.stderr)
    return 0


def pipeline_options(runner, args):
    """Beam's option strings: `--runner=...` and the user's, with the direct defaults where
    the user gave none."""
    name = "DirectRunner" if runner.lower() == "direct" else runner
    options = [f"--runner={name}", *args]
    if name == "DirectRunner":
        given = {arg.lstrip("-").split("=", 1)[0] for arg in args}
        options += [f"--{k}={v}" for k, v in _DIRECT_DEFAULTS.items() if k not in given]
    return options
