"""The `tfstyle` command (also `scripts/stylize.py`): flags -> StyleConfig -> stylize() -> files.

    tfstyle --content photo.jpg --style painting.jpg --output out.png      # one image
    tfstyle --content photos/ --style 'art/*.jpg' --output_dir out/        # every pair
    tfstyle export --output saved_models/NAME/1 [settings]                 # a SavedModel

A thin shell: it parses flags, loads the images, calls the library once and saves. The library
itself never reads flags or prints.

Exit status:
    0    done: the image and its JSON report are written (every output of a batch).
    1    a user error (bad flag, setting, file; a non-finite loss): one `tfstyle: error:` line
         on stderr, and no output written (except the last finite image after a non-finite
         loss, which the line names). In a batch: one line per failed output, the others are
         written.
    130  interrupted by Ctrl-C (SIGINT); 143 by SIGTERM (128 + the signal, as shells report):
         the current image is saved to --output and a checkpoint to <output stem>.ckpt.npz;
         the same command with --resume continues from it. A batch keeps its finished outputs
         and continues where it stopped when run again.
"""

import dataclasses
import os
import re
import sys
import time

from absl import app, flags
from absl import logging as absl_logging

from tfstyle import __version__, shell
from tfstyle import config as config_lib
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


class _PathListParser(flags.ListParser):
    """A comma-separated list of paths, where an existing path is taken whole (its name may
    hold commas); in a list, "double quotes" keep a comma in a name."""

    def parse(self, argument):
        if not isinstance(argument, str):
            return super().parse(argument)
        from tfstyle import image_io

        try:
            return image_io.split_path_list(argument)
        except config_lib.ConfigError as exc:
            raise ValueError(str(exc)) from None


_NAMES_HELP = (
    " An existing file is read as named, even with commas or [ ] in its name; in a list, "
    "quote such a name: '\"a, b.png\",c.png'."
)
flags.DEFINE(
    _PathListParser(),
    "content",
    None,
    "Content image(s): files, directories or glob patterns, comma-separated (several need "
    "--output_dir)." + _NAMES_HELP,
    serializer=flags.CsvListSerializer(","),
)
flags.DEFINE(
    _PathListParser(),
    "style",
    None,
    "Style image(s): files, directories or glob patterns, comma-separated; with --output they "
    "are blended, with --output_dir each is applied to each content image." + _NAMES_HELP,
    serializer=flags.CsvListSerializer(","),
)
flags.DEFINE_string("output", None, "Output image (.png, .jpg or .jpeg).")
flags.DEFINE_string(
    "output_dir",
    None,
    "Batch mode: write every content x every style to <content stem>__<style stem>.png here, "
    "skipping outputs that exist (unless --overwrite).",
)
flags.DEFINE_enum("network", _D.network, config_lib.NETWORKS, "Feature network.")
flags.DEFINE_string(
    "weights", _D.weights, "'imagenet' (Keras download, cached), 'none' (random) or a file path."
)
flags.DEFINE_enum("pooling", _D.pooling, config_lib.POOLINGS, "Pooling in the network.")
flags.DEFINE_integer("max_size", _D.max_size, "Longest side of the output in pixels.")
flags.DEFINE_integer(
    "iterations",
    _D.iterations,
    "Optimisation steps at the first scale; each finer scale runs "
    f"{config_lib.SCALE_ITERATION_RATIO:g} as many.",
)
flags.DEFINE_enum("optimizer", _D.optimizer, config_lib.OPTIMIZERS, "Optimizer.")
flags.DEFINE_float(
    "learning_rate",
    None,
    "Learning rate; default per optimizer: "
    + ", ".join(f"{k} {v:g}" for k, v in config_lib.DEFAULT_LEARNING_RATES.items())
    + ".",
)
flags.DEFINE_enum("schedule", _D.schedule, config_lib.SCHEDULES, "Learning-rate schedule.")
flags.DEFINE_float("momentum", _D.momentum, "SGD momentum (Nesterov's when not 0).")
flags.DEFINE_enum(
    "precondition",
    _D.precondition,
    config_lib.PRECONDITIONERS,
    "SGD's gradient: rms (each value's divided by its running RMS) or none (raw, as the Keras "
    "example).",
)
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
flags.DEFINE_enum(
    "style_loss",
    _D.style_loss,
    config_lib.STYLE_LOSSES,
    "gram, mean_cov (Gaussian Wasserstein-2) or sliced_wasserstein (Heitz et al. 2021).",
)
flags.DEFINE_list("style_blend_weights", None, "One weight per style image (default: equal).")
flags.DEFINE_float("style_scale", _D.style_scale, "Style image size relative to the output.")
flags.DEFINE_enum(
    "preserve_colors", _D.preserve_colors, config_lib.COLOR_MODES, "Keep the content's colours."
)
flags.DEFINE_string(
    "scales",
    _D.scales,
    f"'auto' (from about {config_lib.AUTO_SCALE_MIN_SIZE} px up to --max_size, doubling) or the "
    "number of sizes, coarse to fine (1: one size).",
)
flags.DEFINE_string(
    "init",
    _D.init,
    "content, noise, blurred_noise, style, or an image file to start from (centre-cropped to "
    "the content's aspect ratio, then resized to its size).",
)
flags.DEFINE_float("init_noise_ratio", _D.init_noise_ratio, "Noise mixed into the initial image.")
flags.DEFINE_enum("average", _D.average, config_lib.AVERAGING, "Output averaging.")
flags.DEFINE_integer("seed", _D.seed, "Random seed.")
flags.DEFINE_enum("precision", _D.precision, config_lib.PRECISIONS, "Network dtype policy.")
flags.DEFINE_boolean(
    "remat", _D.remat, "Recompute activations in the backward pass: less memory, slower steps."
)
flags.DEFINE_boolean(
    "memory_check", _D.memory_check, "Check that a step fits the accelerator's free memory."
)
flags.DEFINE_integer(
    "save_every", 0, "Also save the image every N steps (0: only at the end).", lower_bound=0
)
flags.DEFINE_integer(
    "max_pixels", None, "Refuse input images with more pixels than this.", lower_bound=1
)
flags.DEFINE_boolean("quiet", False, "No progress bar.")
flags.DEFINE_boolean("version", False, "Print the version (tfstyle X.Y.Z) and exit.")
flags.DEFINE_boolean(
    "resume",
    False,
    "Continue an interrupted run from its checkpoint, <output stem>.ckpt.npz (same settings and "
    "images as the interrupted run).",
)

flags.DEFINE_boolean("overwrite", False, "Replace outputs that already exist.")
flags.DEFINE_string(
    "tensorboard_dir", None, "Write TensorBoard logs (losses, images) to this directory."
)
flags.DEFINE_string("history", None, "Write the per-step losses to this .json or .csv file.")
flags.DEFINE_boolean("plot_losses", False, "Also write a loss plot, <output stem>_losses.png.")

# Flags about input images, image outputs and runs, which a SavedModel export has no use for.
_NOT_FOR_EXPORT = (
    "content",
    "style",
    "output_dir",
    "style_blend_weights",
    "save_every",
    "max_pixels",
    "resume",
    "history",
    "tensorboard_dir",
    "plot_losses",
)

_INIT_KEYWORDS = tuple(i for i in config_lib.INITS if i != "image")
_HISTORY = (".json", ".csv")  # = callbacks.HISTORY_EXTENSIONS, without importing Keras


def main(argv):
    """Run the command; returns the exit status: 0, 1 for any user error (one line on stderr)."""
    if not FLAGS["verbosity"].present:
        # Library INFO/WARNING logs (TensorFlow's retracing notes...) are not for a CLI user.
        absl_logging.set_verbosity(absl_logging.ERROR)
    shell.quiet_library_loggers()
    if FLAGS.version:
        print(f"{shell.PREFIX} {__version__}")
        return 0
    command = _stylize_command
    if argv[1:2] == ["export"]:
        command, argv = _export_command, argv[1:]
    with shell.one_line_warnings(), shell.stop_on_signals():
        try:
            if len(argv) > 1:
                raise TfstyleError(
                    f"unexpected arguments: {' '.join(argv[1:])}; flags look like --name=value"
                )
            return command()
        except TfstyleError as exc:
            print(shell.error_line(exc), file=sys.stderr)
            return 1
        except KeyboardInterrupt as exc:  # before the optimisation started: nothing to keep
            print(f"{shell.PREFIX}: interrupted; nothing was saved", file=sys.stderr)
            return shell.exit_status(exc)


def _stylize_command():
    from tfstyle import image_io

    for name in ("content", "style"):
        if not getattr(FLAGS, name):
            raise TfstyleError(f"--{name} is required")
    if FLAGS.output and FLAGS.output_dir:
        raise TfstyleError("give --output (one image) or --output_dir (a batch), not both")
    if not (FLAGS.output or FLAGS.output_dir):
        raise TfstyleError("--output is required (or --output_dir for a batch)")
    config = config_from_flags()
    _check_optional_packages()
    init_path = None if FLAGS.init in _INIT_KEYWORDS else FLAGS.init
    if FLAGS.tensorboard_dir:
        image_io.check_directory(FLAGS.tensorboard_dir, create=True)
    contents = image_io.expand_image_paths(FLAGS.content)
    styles = image_io.expand_image_paths(FLAGS.style)
    if FLAGS.output_dir:
        if FLAGS.resume:
            raise TfstyleError("--resume is for one --output; a batch resumes by skipping outputs")
        if FLAGS.style_blend_weights:
            raise TfstyleError(
                "--style_blend_weights blends styles into one --output; a batch applies each "
                "style on its own"
            )
        return _batch_command(config, contents, styles, init_path, image_io)
    if len(contents) != 1:
        raise TfstyleError(
            f"--output takes one content image but {len(contents)} were given; "
            "use --output_dir for a batch"
        )
    config.blend_weights(len(styles))
    inputs = [*contents, *styles] + ([init_path] if init_path else [])
    output = image_io.check_output_path(FLAGS.output, inputs=inputs, create_directory=True)
    _check_side_files(output, inputs, image_io)
    for path in _side_files(output, steps=config.most_steps()):
        image_io.check_name_length(path)
    resume = _checkpoint_to_resume(output, config, image_io)
    load = _loader(image_io)
    content = load(contents[0])
    style_images = [load(path) for path in styles]
    # stylize() crops it to the content's aspect ratio.
    init_image = load(init_path) if init_path else None
    images = (content, style_images, init_image)
    return _run(config, images, output, resume, image_io, sources=(contents[0], styles))


def _export_command():
    """`tfstyle export --output DIR [settings]`: write a SavedModel stylizer (see export.py)."""
    for name in _NOT_FOR_EXPORT:
        if FLAGS[name].present:
            raise TfstyleError(f"export takes no --{name}: it writes a model, not an image")
    if not FLAGS.output:
        raise TfstyleError("--output is required: the SavedModel directory to write")
    config = config_from_flags()
    with shell.quiet_native_logs():
        from tfstyle.export import export_stylizer

    path = export_stylizer(FLAGS.output, config=config, overwrite=FLAGS.overwrite)
    if not FLAGS.quiet:
        print(
            f"exported {path}: serving_default takes content and style (uint8 [H, W, 3]) and "
            f"returns stylized_image after {config.iterations} steps",
            file=sys.stderr,
        )
    return 0


# Flags that need an optional package: (flag, package to import, how to install it).
_OPTIONAL_PACKAGES = (
    ("tensorboard_dir", "tensorboard", "pip install tensorboard"),
    ("plot_losses", "matplotlib", "pip install matplotlib"),
)


def _check_optional_packages():
    """Refuse, before any work, a flag whose optional package is not installed."""
    import importlib

    for flag, package, install in _OPTIONAL_PACKAGES:
        if getattr(FLAGS, flag):
            try:
                importlib.import_module(package)
            except ImportError:
                raise config_lib.ConfigError(
                    f"--{flag} needs the {package} package, which is not installed: {install}"
                ) from None


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
        arrays = image_io.load_npz(path)
        if "format" not in arrays:  # an .npz, but not one of ours
            raise CheckpointError(f"'{path}' is not a tfstyle checkpoint (no 'format' entry)")
        checkpoint = Checkpoint.from_arrays(arrays)
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
    """The files written next to the output must not be inputs either, and the side outputs
    must be writable (their folders made if need be)."""
    image_io.check_not_input(_report_path(output), inputs=inputs)
    image_io.check_not_input(_checkpoint_path(output), inputs=inputs)
    if FLAGS.plot_losses:
        image_io.check_output_file(_plot_path(output), extensions=(".png",), create_directory=True)
        image_io.check_not_input(_plot_path(output), inputs=inputs)
    if FLAGS.history:
        image_io.check_output_file(FLAGS.history, extensions=_HISTORY, create_directory=True)
        image_io.check_not_input(FLAGS.history, inputs=inputs)
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


def _side_files(output, *, steps, batch=False):
    """The files a run writes beside its output (of the snapshots, the one with the longest
    name, after `steps` steps), for checking their names before any work."""
    stem, ext = os.path.splitext(output)
    files = [_report_path(output)] + ([] if batch else [_checkpoint_path(output)])
    if FLAGS.plot_losses:
        files.append(_plot_path(output))
    if batch and FLAGS.history:
        files.append(stem + "_history" + os.path.splitext(FLAGS.history)[1])
    if FLAGS.save_every:
        files.append(f"{stem}_step{steps:05d}{ext}")
    return files


def _plot_path(output):
    return os.path.splitext(output)[0] + "_losses.png"


def _report_path(output):
    return os.path.splitext(output)[0] + ".json"


def _checkpoint_path(output):
    return os.path.splitext(output)[0] + ".ckpt.npz"


def _run(config, images, output, resume, image_io, *, sources):
    with shell.quiet_native_logs():
        from tfstyle.loop import stylize

    content, styles, init_image = images
    progress = None if FLAGS.quiet else _ProgressBar()
    callbacks = [progress] if progress else []
    if FLAGS.save_every:
        callbacks.append(_Snapshots(output, FLAGS.save_every, image_io))
    side_outputs = _logging_callbacks(
        output, history=FLAGS.history, logdir=FLAGS.tensorboard_dir, resume=resume
    )
    callbacks += side_outputs
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
        _save(image_io.save_image, exc.image, output, image_io)
        which = f"after step {exc.step}" if exc.step else "the starting image"
        raise TfstyleError(f"{exc}; the last finite image ({which}) was saved to {output}") from exc
    except CheckpointError as exc:  # the images differ from the checkpoint's
        raise _cannot_resume(exc, _checkpoint_path(output)) from exc
    except Interrupted as exc:
        if progress:
            progress.end_line()
        return _save_interrupted(exc, config, output, image_io)
    _save(image_io.save_image, result.image, output, image_io)
    image_io.remove_file(_checkpoint_path(output))  # the run it belonged to is now complete
    _save_report(result, output, sources, side_outputs, image_io)
    if not FLAGS.quiet:
        print(f"saved {output} ({result.elapsed_s:.1f} s)", file=sys.stderr)
    return 0


def _save_report(result, output, sources, side_outputs, image_io):
    """After the image is saved: its JSON report, then the first failure of a side output (if
    any) raised, naming the saved image. A side output's bug (not a TfstyleError) is raised
    as it is, with its traceback."""
    try:
        image_io.save_json(_report(result, output, *sources), _report_path(output))
    except TfstyleError as exc:
        raise TfstyleError(f"{exc}; the image was saved to {output}") from exc
    for side in side_outputs:
        if side.error is not None and not isinstance(side.error, TfstyleError):
            raise side.error
        if side.error is not None:
            raise TfstyleError(f"{side.error}; the image was saved to {output}") from side.error


def _save_interrupted(exc, config, output, image_io):
    """Save what an interrupted run had reached; returns 128 + the signal's number."""
    total = exc.total_steps
    if exc.checkpoint is None:
        line = f"interrupted before the first step of {total}; nothing was saved"
    else:
        # A second Ctrl-C now could only lose these two writes; they take milliseconds.
        with shell.signals_ignored():
            _save(image_io.save_image, exc.image, output, image_io)
            image_io.save_npz(exc.checkpoint.to_arrays(), _checkpoint_path(output))
        line = (
            f"interrupted after step {exc.step} of {total}; saved the current image to {output} "
            f"and a checkpoint to {_checkpoint_path(output)}; continue with the same command "
            "and --resume"
        )
    print(f"{shell.PREFIX}: {line}", file=sys.stderr)
    return shell.exit_status(exc.__cause__ or exc)


def _batch_command(config, contents, styles, init_path, image_io):
    """Every content x every style into --output_dir, under one progress bar. A pair that fails
    is reported in one line and skipped; the exit status is 1 if any failed. Outputs that
    exist are skipped unless --overwrite, so rerunning a stopped batch resumes it."""
    with shell.quiet_native_logs():
        from tfstyle.loop import RunnerCache, stylize

    jobs = _plan_batch(contents, styles, FLAGS.output_dir, image_io)
    total = config.most_steps()
    for path in (p for job in jobs for p in _side_files(job[2], steps=total, batch=True)):
        image_io.check_name_length(path)
    if FLAGS.history:  # only its extension is used: <stem>_history<ext> beside each output
        image_io.check_output_file(FLAGS.history, extensions=_HISTORY, create_directory=True)
    todo = [job for job in jobs if FLAGS.overwrite or not os.path.exists(job[2])]
    if len(todo) < len(jobs) and not FLAGS.quiet:
        print(
            f"skipping {len(jobs) - len(todo)} of {len(jobs)} outputs that already exist "
            "(--overwrite redoes them)",
            file=sys.stderr,
        )
    inputs = _BatchInputs(_loader(image_io), keep=styles)
    init_image = _loader(image_io)(init_path) if init_path else None
    bar = None if FLAGS.quiet else _ProgressBar()
    runners = RunnerCache()  # one compiled step per image size for the whole batch
    failed = 0
    for index, (content, style, output) in enumerate(todo):
        stem = os.path.splitext(output)[0]
        callbacks = [] if bar is None else [_BatchStep(bar, index, len(todo))]
        try:
            side_outputs = _batch_logging_callbacks(stem)
            callbacks += side_outputs
            if FLAGS.save_every:
                callbacks.append(_Snapshots(output, FLAGS.save_every, image_io))
            result = stylize(
                inputs(content),
                [inputs(style)],
                config=config,
                callbacks=callbacks,
                init_image=init_image,
                runners=runners,
            )
            _save(image_io.save_image, result.image, output, image_io)
            _save_report(result, output, (content, [style]), side_outputs, image_io)
        except Interrupted as exc:
            _fresh_line(bar)
            print(
                f"{shell.PREFIX}: interrupted during {os.path.basename(output)}; the {index} "
                "finished outputs are kept: rerun the same command to continue",
                file=sys.stderr,
            )
            return shell.exit_status(exc.__cause__ or exc)
        except TfstyleError as exc:
            failed += 1
            message = inputs.first_report(exc) if isinstance(exc, _BatchInputs.Failed) else exc
            if message:
                _fresh_line(bar)
                print(f"tfstyle: error: {os.path.basename(output)}: {message}", file=sys.stderr)
    if failed:
        raise TfstyleError(f"{failed} of {len(todo)} outputs failed; rerun to retry them")
    if not FLAGS.quiet:
        print(f"saved {len(todo)} outputs to {os.path.abspath(FLAGS.output_dir)}", file=sys.stderr)
    return 0


def _batch_logging_callbacks(stem):
    """Per output of a batch: <stem>_history.json/.csv, TensorBoard logs in a subdirectory."""
    history = FLAGS.history and stem + "_history" + os.path.splitext(FLAGS.history)[1]
    logdir = FLAGS.tensorboard_dir and os.path.join(FLAGS.tensorboard_dir, os.path.basename(stem))
    return _logging_callbacks(stem + ".png", history=history, logdir=logdir)


def _plan_batch(contents, styles, output_dir, image_io):
    """`(content, style, output)` for every pair, named `<content stem>__<style stem>.png`."""
    jobs, made_by = [], {}
    for content in contents:
        for style in styles:
            name = f"{_stem(content)}__{_stem(style)}.png"
            if name in made_by:
                raise TfstyleError(
                    f"{made_by[name][0]} + {made_by[name][1]} and {content} + {style} would both "
                    f"be saved as {name}; rename one of the files"
                )
            made_by[name] = (content, style)
            output = os.path.join(output_dir, name)
            checked = image_io.check_output_path(
                output, inputs=(content, style), create_directory=True
            )
            jobs.append((content, style, checked))
    return jobs


def _stem(path):
    return os.path.splitext(os.path.basename(path))[0]


class _BatchInputs:
    """Loads each input once per batch: style images are kept, content images one at a time
    (the jobs come content by content). A file that failed to load fails its other jobs too,
    and is reported only the first time."""

    class Failed(TfstyleError):
        pass

    def __init__(self, load, *, keep):
        self.load = load
        self.keep = set(keep)
        self.images = {}
        self.errors = {}
        self.reported = set()

    def __call__(self, path):
        if path in self.errors:
            raise self.Failed(path)
        if path not in self.images:
            try:
                image = self.load(path)
            except TfstyleError as exc:
                self.errors[path] = exc
                raise self.Failed(path) from exc
            self.images = {k: v for k, v in self.images.items() if k in self.keep}
            self.images[path] = image
        return self.images[path]

    def first_report(self, failure):
        """The load error's message the first time `failure`'s file is met, else None."""
        path = str(failure)
        if path in self.reported:
            return None
        self.reported.add(path)
        return self.errors[path]


class _BatchStep:
    """Passes a job's progress records to the batch's one progress bar as steps of the batch
    (counting every job as long as this one: their pyramids differ with the image's size)."""

    def __init__(self, bar, index, jobs):
        self.bar, self.index, self.jobs = bar, index, jobs

    def __call__(self, progress):
        steps = progress.total_steps
        self.bar(
            dataclasses.replace(
                progress, step=self.index * steps + progress.step, total_steps=self.jobs * steps
            )
        )


def _fresh_line(bar):
    if bar is not None and bar.tty:
        bar.stream.write("\n")


def _logging_callbacks(output, *, history, logdir, resume=None):
    """The callbacks asked for by --history, --tensorboard_dir and --plot_losses (a resumed
    run's history and plot start with the checkpoint's earlier steps)."""
    from tfstyle import callbacks

    previous = None if resume is None else resume.history
    made = []
    if history:
        if os.path.abspath(history) == os.path.splitext(output)[0] + ".json":
            raise TfstyleError(f"--history {history} would overwrite the run's report; rename it")
        folder = os.path.dirname(os.path.abspath(history))
        made.append(
            _SideOutput(folder, lambda: callbacks.HistoryLogger(history, previous=previous))
        )
    if logdir:  # tf.summary creates the folder itself
        made.append(_SideOutput(None, lambda: callbacks.TensorBoard(logdir)))
    if FLAGS.plot_losses:
        plot = _plot_path(output)
        folder = os.path.dirname(plot)
        made.append(_SideOutput(folder, lambda: callbacks.LossPlot(plot, previous=previous)))
    return made


class _SideOutput:
    """The callback of a side output (--history, --tensorboard_dir, --plot_losses), made at the
    run's first step, after creating `folder` (if not None): a run refused before its first
    step (by the checks in stylize()) leaves no folder behind. A failure never stops the run:
    the first one is kept in `error` (reported once the image is saved) and the side output
    stops."""

    def __init__(self, folder, make):
        self.folder, self.make = folder, make
        self.callback = None
        self.error = None

    def __call__(self, progress):
        if self.error is not None:
            return
        try:
            if self.callback is None:
                from tfstyle import image_io

                if self.folder is not None:
                    image_io.make_directories(self.folder)
                self.callback = self.make()
            self.callback(progress)
        except Exception as exc:
            self.error = exc


def _save(save, data, path, image_io):
    """`save(data, path)` after creating the folder the checks before the run accepted."""
    image_io.make_directories(os.path.dirname(os.path.abspath(path)))
    return save(data, path)


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
        style_loss=FLAGS.style_loss,
        max_size=FLAGS.max_size,
        style_scale=FLAGS.style_scale,
        style_blend_weights=tuple(_floats("style_blend_weights", blend)) if blend else None,
        preserve_colors=FLAGS.preserve_colors,
        iterations=FLAGS.iterations,
        optimizer=FLAGS.optimizer,
        learning_rate=FLAGS.learning_rate,
        schedule=FLAGS.schedule,
        scales=_scales(FLAGS.scales),
        momentum=FLAGS.momentum,
        precondition=FLAGS.precondition,
        init=FLAGS.init if FLAGS.init in _INIT_KEYWORDS else "image",
        init_noise_ratio=FLAGS.init_noise_ratio,
        average=FLAGS.average,
        seed=FLAGS.seed,
        precision=FLAGS.precision,
        remat=FLAGS.remat,
        memory_check=FLAGS.memory_check,
        steps_per_call=_steps_per_call(FLAGS.save_every),
    )


def _scales(value):
    if value == "auto":
        return value
    try:
        return int(value)
    except ValueError:
        raise config_lib.ConfigError(
            f"--scales must be 'auto' or a whole number; got {value!r}"
        ) from None


def _steps_per_call(save_every):
    """Steps per compiled call: the largest divisor of --save_every up to the default, so that
    calls (which end on multiples of it over the whole run) line up with the snapshots."""
    if save_every <= 0:
        return _D.steps_per_call
    return max(d for d in range(1, min(save_every, _D.steps_per_call) + 1) if save_every % d == 0)


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


def _report(result, output, content, styles):
    import keras

    return {
        "version": __version__,
        "backend": keras.backend.backend(),
        "content": os.path.abspath(content),
        "style": [os.path.abspath(path) for path in styles],
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

    def __init__(self, stream=None, width=30):
        # Looked up at call time: a default of sys.stderr would pin the stream at import.
        self.stream = stream or sys.stderr
        self.width = width
        self.tty = self.stream.isatty()
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
            path = f"{self.stem}_step{progress.step:05d}{self.ext}"
            _save(self.image_io.save_image, progress.image, path, self.image_io)


# absl's help flags (`-?` is --help's short name); they print the usage and exit.
_HELP_FLAGS = ("help", "helpshort", "helpfull", "helpxml", "?")


def parse_flags(argv):
    """absl's flag parsing, with a bad flag reported on one line like every other error, `-h`
    taken for --help, and a help request ending with exit status 0 (absl's exits with 1)."""
    argv = [argv[0], *("--help" if arg == "-h" else arg for arg in argv[1:])]
    try:
        return FLAGS(argv)
    except flags.Error as exc:
        print(shell.error_line(exc), file=sys.stderr)
        sys.exit(1)
    except SystemExit:
        if any(_flag_name(arg) in _HELP_FLAGS for arg in argv[1:]):
            sys.exit(0)
        raise
    except BrokenPipeError:  # `tfstyle --help | head`: the reader has all it wanted
        # Python would report the failed flush of stdout at exit; point it at nothing.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)


def _flag_name(arg):
    """`help` for `--help`, `-help` or `--help=true`; None for an argument that is not a flag."""
    return arg.lstrip("-").split("=", 1)[0] if arg.startswith("-") else None


def run(argv=None):
    """Console entry point (`argv` for tests: program name first)."""
    # absl's --help lists the flags of the module named by sys.argv[0] (the script or console
    # entry point, not this module): register tfstyle's flags under that name too.
    program = (argv or sys.argv)[0]
    for flag in FLAGS.get_key_flags_for_module(__name__):
        FLAGS.register_key_flag_for_module(program, flag)
    app.run(main, argv=argv, flags_parser=parse_flags)


if __name__ == "__main__":
    run()
