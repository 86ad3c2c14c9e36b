"""`tfstyle train --style S --content_dir PHOTOS --output DIR [settings]`: a fast stylizer.

Flags -> `TrainConfig` -> `train_stylizer()` -> `export_stylizer()`. Beside the output folder,
while training: `DIR.ckpt.npz` (every --checkpoint_every steps and on Ctrl-C; `--resume`
continues from it; removed once the model is written) and `DIR.previews/step_NNNNNN.png`. The
folder itself appears whole at the end: a SavedModel, `stylizer.keras` and `training.json`
(the report: settings, losses, time, skipped files).
"""

import os
import sys

from absl import flags

from tfstyle import __version__
from tfstyle.cli import display, shell
from tfstyle.cli.flags import FLAGS, MASK_FLAGS, check_optional_packages, refuse_flags
from tfstyle.errors import CheckpointError, Interrupted, TfstyleError
from tfstyle.io import native_logs
from tfstyle.settings import train as train_config

_T = train_config.TRAIN_DEFAULTS

flags.DEFINE_string(
    "content_dir", None, "train: folder of training photos (not recursive), or a glob pattern."
)
flags.DEFINE_integer("size", _T.size, "train: side of the square training crops.", lower_bound=16)
flags.DEFINE_integer(
    "batch_size",
    _T.batch_size,
    f"train: crops per step. With --model --runner: photos per RunInference batch (default "
    f"{train_config.BEAM_BATCH_SIZE}).",
    lower_bound=1,
)
flags.DEFINE_integer("steps", _T.steps, "train: optimizer steps in all.", lower_bound=1)
flags.DEFINE_integer(
    "width",
    _T.width,
    "train: channels of the first layer (32: Johnson et al.; 8, 16: small).",
    lower_bound=1,
)
flags.DEFINE_integer(
    "residual_blocks", _T.residual_blocks, "train: residual blocks.", lower_bound=0
)
flags.DEFINE_integer(
    "style_size", _T.style_size, "train: longest side of the style image.", lower_bound=16
)
flags.DEFINE_integer(
    "checkpoint_every",
    _T.checkpoint_every,
    "train: steps between checkpoints (0: none).",
    lower_bound=0,
)
flags.DEFINE_integer(
    "preview_every",
    _T.preview_every,
    "train: steps between preview images (0: none).",
    lower_bound=0,
)

# The flags only `tfstyle train` reads (image runs refuse them; --batch_size also sizes the
# batches of --model --runner).
TRAIN_FLAGS = (
    "content_dir",
    "size",
    "batch_size",
    "steps",
    "width",
    "residual_blocks",
    "style_size",
    "checkpoint_every",
    "preview_every",
)
# Flags of image runs that training has no use for.
_NOT_FOR_TRAIN = (
    "content",
    "output_dir",
    "max_size",
    "iterations",
    "optimizer",
    "schedule",
    "scales",
    "init",
    "average",
    "save_every",
    "history",
    "plot_losses",
    "style_blend_weights",
    "max_pixels",
    # The network learns one style for the whole photo: a per-image mask has no place in it.
    *MASK_FLAGS,
)


def command():
    """Run the command; returns the exit status (raises TfstyleError for a user's mistake)."""
    from tfstyle.io import check_directory, check_new_directory, load_image

    refuse_flags(_NOT_FOR_TRAIN, "train takes no --{name}")
    for name in ("style", "content_dir", "output"):
        if not getattr(FLAGS, name):
            raise TfstyleError(f"--{name} is required")
    if len(FLAGS.style) != 1:
        raise TfstyleError(f"train takes one --style image; got {len(FLAGS.style)}")
    config = config_from_flags()
    with native_logs.quiet_native_logs():
        from tfstyle.export.stylizer import check_backend

    # Before any work: the model is exported at the end, as a TensorFlow graph (on JAX,
    # training ran to the end and then the export failed, again on every --resume).
    check_backend("train (its model is exported as a SavedModel)")
    check_optional_packages()
    if FLAGS.tensorboard_dir:
        check_directory(FLAGS.tensorboard_dir, create=True)
    output = check_new_directory(FLAGS.output, overwrite=FLAGS.overwrite)
    style = load_image(FLAGS.style[0])
    resume = _checkpoint_to_resume(output, config)
    with native_logs.quiet_native_logs():
        from tfstyle.fast import data

        source = data.training_source(FLAGS.content_dir)
    if source.skipped and not FLAGS.quiet:
        first = source.skipped[0]
        display.say(f"skipping {len(source.skipped)} file(s) (first: {first[0]}: {first[1]})")
    return _train(config, style, output, resume, source)


def config_from_flags():
    """`TrainConfig` from the parsed flags (raises ConfigError for bad values); layers and the
    learning rate keep the training defaults unless given, and so does the style weight (the
    flag's default, None, is the optimisation's per-loss default; training's loss is gram's)."""
    given = {
        name: getattr(FLAGS, name)
        for name in ("content_layers", "style_layers", "learning_rate", "style_weight")
        if FLAGS[name].present
    }
    weights = FLAGS.weights
    return train_config.TrainConfig(
        width=FLAGS.width,
        residual_blocks=FLAGS.residual_blocks,
        network=FLAGS.network,
        weights=None if weights.lower() == "none" else weights,
        pooling=FLAGS.pooling,
        content_weight=FLAGS.content_weight,
        tv_weight=FLAGS.tv_weight,
        style_size=FLAGS.style_size,
        size=FLAGS.size,
        batch_size=FLAGS.batch_size,
        steps=FLAGS.steps,
        seed=FLAGS.seed,
        precision=FLAGS.precision,
        checkpoint_every=FLAGS.checkpoint_every,
        preview_every=FLAGS.preview_every,
        **given,
    )


def checkpoint_path(output):
    """`DIR.ckpt.npz` for the output folder DIR."""
    return output.rstrip(os.sep) + ".ckpt.npz"


def preview_path(output, step):
    return os.path.join(output.rstrip(os.sep) + ".previews", f"step_{step:06d}.png")


def _checkpoint_to_resume(output, config):
    from tfstyle.io import load_npz

    with native_logs.quiet_native_logs():
        from tfstyle.fast.train import TrainCheckpoint

    path = checkpoint_path(output)
    if not FLAGS.resume:
        if os.path.exists(path):
            raise CheckpointError(
                f"{path} holds an interrupted training of this output; continue it with "
                "--resume, or delete it to start again"
            )
        return None
    if not os.path.exists(path):
        raise CheckpointError(f"--resume: no checkpoint {path} to continue from")
    checkpoint = TrainCheckpoint.from_arrays(load_npz(path))
    # All steps done (the run stopped while exporting): resuming only writes the model.
    if checkpoint.step > config.steps:
        raise CheckpointError(
            f"{path} has done {checkpoint.step} steps, more than --steps {config.steps}; give "
            "at least as many to continue"
        )
    return checkpoint


def _train(config, style, output, resume, source):
    from tfstyle.io import make_directories, remove_file, save_image, save_npz

    with native_logs.quiet_native_logs():
        from tfstyle.export.stylizer import export_stylizer
        from tfstyle.fast.train import train_stylizer

    bar = None if FLAGS.quiet else display.ProgressBar(describe=_loss_text)
    callbacks = [_progress_callback(bar, config.steps)] if bar else []
    if FLAGS.tensorboard_dir:
        import keras

        callbacks.append(keras.callbacks.TensorBoard(FLAGS.tensorboard_dir, update_freq="epoch"))
    checkpoint_file = checkpoint_path(output)
    make_directories(os.path.dirname(checkpoint_file))

    def save_preview(step, image):
        # The folder is made with the first preview: a run that fails before one leaves none.
        path = preview_path(output, step)
        make_directories(os.path.dirname(path))
        save_image(image, path)

    try:
        # Ctrl-C and SIGTERM end the training at the next step boundary (a second one at once).
        with shell.stop_after_step() as stop:
            result = train_stylizer(
                style,
                source,  # checked and decoded once, in command()
                config=config,
                resume=resume,
                on_checkpoint=lambda c: save_npz(c.to_arrays(), checkpoint_file),
                on_preview=save_preview,
                callbacks=callbacks,
                stop=stop,
            )
    except Interrupted as exc:
        if bar:
            bar.end_line()
        save_npz(exc.checkpoint.to_arrays(), checkpoint_file)
        display.say(
            f"{shell.PREFIX}: interrupted after step {exc.step} of {exc.total_steps}; saved "
            f"{checkpoint_file}: continue with --resume"
        )
        return shell.exit_status(exc.__cause__ or stop)
    report = _report(result, result.config)  # its precision: the one that ran
    # A signal while the model is written only sets a flag: raised from the handler, it landed
    # inside TensorFlow's saving code ("Exception ignored ... SignalInterrupt" and exit 0). The
    # write takes seconds and every step is done, so it finishes (a second signal stops it:
    # the checkpoint is still there for --resume).
    with shell.stop_after_step() as late:
        export_stylizer(result.model, output, overwrite=FLAGS.overwrite, report=report)
        remove_file(checkpoint_file)
    if late.is_set():
        display.say(f"{shell.PREFIX}: interrupted while writing {output}: it was written whole")
    if not FLAGS.quiet:
        loss = result.history["loss"]
        print(
            f"wrote {output} ({len(loss)} steps, loss {loss[0]:.4g} -> {loss[-1]:.4g})",
            file=sys.stderr,
        )
    return 0


def _report(result, config):
    loss = result.history["loss"]
    return {
        "version": __version__,
        "style": os.path.abspath(FLAGS.style[0]),
        "content_dir": os.path.abspath(FLAGS.content_dir),
        "settings": config.to_dict(),
        "steps": len(loss),
        "seconds": round(result.total_seconds, 1),  # every run's, a resumed one's included
        "this_run_seconds": round(result.seconds, 1),
        "losses": {"first": loss[0], "last": loss[-1], "history": loss},
        "skipped": [{"path": p, "reason": r} for p, r in result.skipped],
    }


def _loss_text(losses):
    return f"loss {losses['loss']:.4g}"


def _progress_callback(bar, total):
    """A Keras callback (one epoch is one step) that feeds the progress bar."""
    import keras

    class Progress(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            bar(display.Step(epoch + 1, total, dict(logs or {}), epoch + 1 == total))

    return Progress()
