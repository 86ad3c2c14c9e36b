"""The `tfstyle` command (also `scripts/stylize.py`): flags -> StyleConfig -> stylize() -> files.

A thin shell: it parses flags, loads the images, calls the library once and saves. The library
itself never reads flags or prints.

Exit status:
    0    done: the image and its JSON report are written.
    1    a user error (bad flag, setting, file; a non-finite loss): one `tfstyle: error:` line
         on stderr, and no output written (except the last finite image after a non-finite
         loss, which the line names).
    130  interrupted by Ctrl-C (SIGINT); 143 by SIGTERM (128 + the signal, as shells report):
         the current image is saved to --output and a checkpoint to <output stem>.ckpt.npz;
         the same command with --resume continues from it.
"""

import math
import os
import re
import sys
import time

from absl import app, flags
from absl import logging as absl_logging

from tfstyle import config as config_lib
from tfstyle import shell
from tfstyle.errors import (
    CheckpointError,
    Interrupted,
    NonFiniteLossError,
    OutputError,
    TfstyleError,
)

# TensorFlow reads its C++ log level once, when it loads; `import tfstyle.cli` does not import
# TensorFlow (see tfstyle/__init__.py), so this is early enough.
shell.set_tf_log_level()

FLAGS = flags.FLAGS
_D = config_lib.DEFAULTS

flags.DEFINE_string("content", None, "Content image file.")
flags.DEFINE_list("style", None, "Style image file(s), comma-separated; several are blended.")
flags.DEFINE_string("output", None, "Output image (.png, .jpg or .jpeg).")
flags.DEFINE_enum("network", _D.network, config_lib.NETWORKS, "Feature network.")
flags.DEFINE_string(
    "weights", _D.weights, "'imagenet' (Keras download, cached), 'none' (random) or a file path."
)
flags.DEFINE_enum("pooling", _D.pooling, config_lib.POOLINGS, "Pooling in the network.")
flags.DEFINE_integer("max_size", _D.max_size, "Longest side of the output in pixels.")
flags.DEFINE_integer("iterations", _D.iterations, "Optimisation steps (per scale).")
flags.DEFINE_enum("optimizer", _D.optimizer, config_lib.OPTIMIZERS, "Optimizer.")
flags.DEFINE_float(
    "learning_rate",
    None,
    "Learning rate; default per optimizer: "
    + ", ".join(f"{k} {v:g}" for k, v in config_lib.DEFAULT_LEARNING_RATES.items())
    + ".",
)
flags.DEFINE_enum("schedule", _D.schedule, config_lib.SCHEDULES, "Learning-rate schedule.")
flags.DEFINE_float("content_weight", _D.content_weight, "Weight of the content loss.")
flags.DEFINE_float("style_weight", _D.style_weight, "Weight of the style loss.")
flags.DEFINE_float("tv_weight", _D.tv_weight, "Weight of the total-variation loss.")
flags.DEFINE_list("content_layers", list(_D.content_layers), "Content layer names.")
flags.DEFINE_list("style_layers", list(_D.style_layers), "Style layer names.")
flags.DEFINE_list(
    "style_layer_weights",
    [_D.style_layer_weights],
    "'equal', 'decreasing', or one comma-separated weight per style layer.",
)
flags.DEFINE_list("style_blend_weights", None, "One weight per style image (default: equal).")
flags.DEFINE_float("style_scale", _D.style_scale, "Style image size relative to the output.")
flags.DEFINE_enum(
    "preserve_colors", _D.preserve_colors, config_lib.COLOR_MODES, "Keep the content's colours."
)
flags.DEFINE_integer("scales", _D.scales, "Number of sizes, coarse to fine (1: one size).")
flags.DEFINE_string(
    "init", _D.init, "content, noise, blurred_noise, style, or an image file to start from."
)
flags.DEFINE_float("init_noise_ratio", _D.init_noise_ratio, "Noise mixed into the initial image.")
flags.DEFINE_enum("average", _D.average, config_lib.AVERAGING, "Output averaging.")
flags.DEFINE_integer("seed", _D.seed, "Random seed.")
flags.DEFINE_enum("precision", _D.precision, config_lib.PRECISIONS, "Network dtype policy.")
flags.DEFINE_integer(
    "save_every", 0, "Also save the image every N steps (0: only at the end).", lower_bound=0
)
flags.DEFINE_integer(
    "max_pixels", None, "Refuse input images with more pixels than this.", lower_bound=1
)
flags.DEFINE_boolean("quiet", False, "No progress bar.")
flags.DEFINE_boolean(
    "resume",
    False,
    "Continue an interrupted run from its checkpoint, <output stem>.ckpt.npz (same settings and "
    "images as the interrupted run).",
)

_INIT_KEYWORDS = tuple(i for i in config_lib.INITS if i != "image")


def main(argv):
    """Run the command; returns the exit status: 0, 1 for any user error (one line on stderr)."""
    if not FLAGS["verbosity"].present:
        # Library INFO/WARNING logs (TensorFlow's retracing notes...) are not for a CLI user.
        absl_logging.set_verbosity(absl_logging.ERROR)
    shell.quiet_library_loggers()
    with shell.one_line_warnings(), shell.stop_on_signals():
        try:
            if len(argv) > 1:
                raise TfstyleError(
                    f"unexpected arguments: {' '.join(argv[1:])}; flags look like --name=value"
                )
            return _stylize_command()
        except TfstyleError as exc:
            print(shell.error_line(exc), file=sys.stderr)
            return 1
        except KeyboardInterrupt as exc:  # before the optimisation started: nothing to keep
            print(f"{shell.PREFIX}: interrupted; nothing was saved", file=sys.stderr)
            return shell.exit_status(exc)


def _stylize_command():
    from tfstyle import image_io

    for name in ("content", "style", "output"):
        if not getattr(FLAGS, name):
            raise TfstyleError(f"--{name} is required")
    config = config_from_flags()
    config.blend_weights(len(FLAGS.style))
    init_path = None if FLAGS.init in _INIT_KEYWORDS else FLAGS.init
    inputs = [FLAGS.content, *FLAGS.style] + ([init_path] if init_path else [])
    output = image_io.check_output_path(FLAGS.output, inputs=inputs)
    _check_side_files(output, inputs, image_io)
    resume = _checkpoint_to_resume(output, config, image_io)
    load = _loader(image_io)
    content = load(FLAGS.content)
    styles = [load(path) for path in FLAGS.style]
    init_image = load(init_path) if init_path else None
    return _run(config, (content, styles, init_image), output, resume, image_io)


def _checkpoint_to_resume(output, config, image_io):
    """The checkpoint --resume continues from (its settings checked against the flags now,
    before any work), or None; without --resume, an existing checkpoint is refused rather
    than silently made stale."""
    from tfstyle.checkpoint import Checkpoint

    path = _checkpoint_path(output)
    if not FLAGS.resume:
        if os.path.exists(path):
            raise CheckpointError(
                f"{path} holds an interrupted run of this output; continue it with --resume, or "
                "delete it to start again"
            )
        return None
    try:
        checkpoint = Checkpoint.from_arrays(image_io.load_npz(path))
        checkpoint.check_settings(config)
    except CheckpointError as exc:
        raise _cannot_resume(exc, path) from exc
    return checkpoint


def _cannot_resume(exc, path):
    return CheckpointError(
        f"cannot resume: {exc} (to start from the beginning instead, delete {path} if it exists "
        "and run without --resume)"
    )


def _check_side_files(output, inputs, image_io):
    """The files written next to the output must not be inputs either."""
    image_io.check_not_input(_report_path(output), inputs=inputs)
    image_io.check_not_input(_checkpoint_path(output), inputs=inputs)
    if not FLAGS.save_every:
        return
    # Snapshots are <stem>_step<N><ext> for steps not known yet: compare by name.
    stem, ext = os.path.splitext(output)
    snapshot = re.compile(re.escape(os.path.basename(stem)) + r"_step\d{5,}" + re.escape(ext))
    folder = os.path.realpath(os.path.dirname(output))
    for source in inputs:
        real = os.path.realpath(source)
        if os.path.dirname(real) == folder and snapshot.fullmatch(os.path.basename(real)):
            raise OutputError(
                f"refusing to overwrite input file {real!r} with a --save_every snapshot; "
                "choose another output name"
            )


def _report_path(output):
    return os.path.splitext(output)[0] + ".json"


def _checkpoint_path(output):
    return os.path.splitext(output)[0] + ".ckpt.npz"


def _run(config, images, output, resume, image_io):
    with shell.quiet_native_logs():
        from tfstyle.loop import stylize

    content, styles, init_image = images
    progress = None if FLAGS.quiet else _ProgressBar()
    callbacks = [progress] if progress else []
    if FLAGS.save_every:
        callbacks.append(_Snapshots(output, FLAGS.save_every, image_io))
    try:
        result = stylize(
            content,
            styles,
            config=config,
            callbacks=callbacks,
            init_image=init_image,
            resume=resume,
        )
    except NonFiniteLossError as exc:
        if exc.image is None:
            raise
        image_io.save_image(exc.image, output)
        which = f"after step {exc.step}" if exc.step else "the starting image"
        raise TfstyleError(f"{exc}; the last finite image ({which}) was saved to {output}") from exc
    except CheckpointError as exc:  # the images differ from the checkpoint's
        raise _cannot_resume(exc, _checkpoint_path(output)) from exc
    except Interrupted as exc:
        if progress:
            progress.end_line()
        return _save_interrupted(exc, config, output, image_io)
    image_io.save_image(result.image, output)
    image_io.save_json(_report(result, output), _report_path(output))
    image_io.remove_file(_checkpoint_path(output))  # the run it belonged to is now complete
    if not FLAGS.quiet:
        print(f"saved {output} ({result.elapsed_s:.1f} s)", file=sys.stderr)
    return 0


def _save_interrupted(exc, config, output, image_io):
    """Save what an interrupted run had reached; returns 128 + the signal's number."""
    total = config.iterations * config.scales
    if exc.checkpoint is None:
        line = f"interrupted before the first step of {total}; nothing was saved"
    else:
        # A second Ctrl-C now could only lose these two writes; they take milliseconds.
        with shell.signals_ignored():
            image_io.save_image(exc.image, output)
            image_io.save_npz(exc.checkpoint.to_arrays(), _checkpoint_path(output))
        line = (
            f"interrupted after step {exc.step} of {total}; saved the current image to {output} "
            f"and a checkpoint to {_checkpoint_path(output)}; continue with the same command "
            "and --resume"
        )
    print(f"{shell.PREFIX}: {line}", file=sys.stderr)
    return shell.exit_status(exc.__cause__ or exc)


def config_from_flags():
    """`StyleConfig` from the parsed flags (raises ConfigError for bad values)."""
    layer_weights = FLAGS.style_layer_weights
    if len(layer_weights) == 1 and layer_weights[0] in config_lib.LAYER_WEIGHT_PRESETS:
        layer_weights = layer_weights[0]
    else:
        layer_weights = tuple(_floats("style_layer_weights", layer_weights))
    blend = FLAGS.style_blend_weights
    weights = FLAGS.weights
    return config_lib.StyleConfig(
        network=FLAGS.network,
        weights=None if weights.lower() == "none" else weights,
        pooling=FLAGS.pooling,
        content_layers=tuple(FLAGS.content_layers),
        style_layers=tuple(FLAGS.style_layers),
        style_layer_weights=layer_weights,
        content_weight=FLAGS.content_weight,
        style_weight=FLAGS.style_weight,
        tv_weight=FLAGS.tv_weight,
        max_size=FLAGS.max_size,
        style_scale=FLAGS.style_scale,
        style_blend_weights=tuple(_floats("style_blend_weights", blend)) if blend else None,
        preserve_colors=FLAGS.preserve_colors,
        iterations=FLAGS.iterations,
        optimizer=FLAGS.optimizer,
        learning_rate=FLAGS.learning_rate,
        schedule=FLAGS.schedule,
        scales=FLAGS.scales,
        init=FLAGS.init if FLAGS.init in _INIT_KEYWORDS else "image",
        init_noise_ratio=FLAGS.init_noise_ratio,
        average=FLAGS.average,
        seed=FLAGS.seed,
        precision=FLAGS.precision,
        steps_per_call=_steps_per_call(FLAGS.save_every),
    )


def _steps_per_call(save_every):
    # Images come back from the compiled loop only between calls: make the calls line up with
    # the snapshots.
    return math.gcd(_D.steps_per_call, save_every) if save_every > 0 else _D.steps_per_call


def _floats(name, values):
    try:
        return [float(v) for v in values]
    except ValueError:
        raise config_lib.ConfigError(
            f"--{name} takes comma-separated numbers; got {','.join(values)}"
        ) from None


def _loader(image_io):
    kwargs = {} if FLAGS.max_pixels is None else {"max_pixels": FLAGS.max_pixels}
    return lambda path: image_io.load_image(path, **kwargs)


def _report(result, output):
    import keras

    from tfstyle import __version__

    return {
        "tfstyle_version": __version__,
        "backend": keras.backend.backend(),
        "content": os.path.abspath(FLAGS.content),
        "style": [os.path.abspath(path) for path in FLAGS.style],
        "output": output,
        "size": list(result.image.shape[:2]),
        "settings": result.config.to_dict(),
        "steps": len(result.history["total"]),
        "evaluations": result.evaluations,
        "elapsed_s": round(result.elapsed_s, 3),
        "final_losses": result.final_losses(),
    }


class _ProgressBar:
    """One self-rewriting line on a terminal; a line every 10% otherwise (logs, CI)."""

    def __init__(self, stream=sys.stderr, width=30):
        self.stream = stream
        self.width = width
        self.tty = stream.isatty()
        self.start = time.perf_counter()
        self.open_line = False

    def end_line(self):
        """Finish a half-drawn terminal line, so that the next message starts on its own."""
        if self.open_line:
            self.stream.write("\n")
            self.open_line = False

    def __call__(self, progress):
        fraction = progress.step / progress.total_steps
        tenth = max(1, progress.total_steps // 10)
        if not self.tty and progress.step % tenth and not progress.is_last:
            return
        filled = int(self.width * fraction)
        rate = progress.step / max(time.perf_counter() - self.start, 1e-9)
        line = (
            f"[{'#' * filled}{'.' * (self.width - filled)}] {progress.step}/{progress.total_steps}"
            f" total {progress.losses['total']:.4g} (content {progress.losses['content']:.3g},"
            f" style {progress.losses['style']:.3g}, tv {progress.losses['tv']:.3g})"
            f" {rate:.2f} steps/s"
        )
        end = "\n" if progress.is_last or not self.tty else ""
        self.stream.write(("\r" if self.tty else "") + line + end)
        self.open_line = not end
        self.stream.flush()


class _Snapshots:
    """Saves `<output stem>_step<N><ext>` every `every` steps."""

    def __init__(self, output, every, image_io):
        self.stem, self.ext = os.path.splitext(output)
        self.every = every
        self.image_io = image_io

    def __call__(self, progress):
        if progress.image is not None and progress.step % self.every == 0:
            self.image_io.save_image(
                progress.image, f"{self.stem}_step{progress.step:05d}{self.ext}"
            )


def parse_flags(argv):
    """absl's flag parsing, with a bad flag reported on one line like every other error."""
    try:
        return FLAGS(argv)
    except flags.Error as exc:
        print(shell.error_line(exc), file=sys.stderr)
        sys.exit(1)


def run(argv=None):
    """Console entry point (`argv` for tests: program name first)."""
    app.run(main, argv=argv, flags_parser=parse_flags)


if __name__ == "__main__":
    run()
