"""`tfstyle --content C --style S --output OUT [settings]`: one stylized image and its report.

Flags -> `StyleConfig` -> `stylize()` -> `outputs.save()`. An interrupted run saves a
checkpoint (`<output stem>.ckpt.npz`) that `--resume` continues from, and its image to OUT
unless OUT holds a finished image that this run had not yet replaced: that one is kept, and the
interrupted image lives only in the checkpoint (its `image` entry) until the run finishes.
"""

import os
import sys

import numpy as np

from tfstyle.cli import display, shell
from tfstyle.cli.flags import FLAGS, image_run, loader, mask_loader, refuse_existing_output
from tfstyle.errors import CheckpointError, Interrupted, NonFiniteLossError, TfstyleError
from tfstyle.io import (
    check_name_length,
    check_output_path,
    load_npz,
    native_logs,
    outputs,
    save_image,
    save_npz,
)


def command():
    """Run the command; returns the exit status (raises TfstyleError for a user's mistake)."""
    run = image_run()
    config, contents, styles, init_path = run[:4]
    if len(contents) != 1:
        raise TfstyleError(
            f"--output takes one content image but {len(contents)} were given; "
            "use --output_dir for a batch"
        )
    config.blend_weights(len(styles))
    inputs = [*contents, *styles, *run.mask_paths()] + ([init_path] if init_path else [])
    output = check_output_path(FLAGS.output, inputs=inputs, create_directory=True)
    outputs.check_side_files(
        output,
        inputs=inputs,
        plot=FLAGS.plot_losses,
        history=FLAGS.history,
        every=FLAGS.save_every,
    )
    for path in outputs.side_files(
        output, steps=config.most_steps(), plot=FLAGS.plot_losses, every=FLAGS.save_every
    ):
        check_name_length(path)
    resume, output_is_interrupted = _checkpoint_to_resume(output, config)
    if resume is None:  # --resume continues this output's own interrupted run
        refuse_existing_output(output)
    # A file at OUTPUT that is not an earlier interruption's image of this run is a finished
    # result: an interruption must not replace it with an unfinished image.
    keep = os.path.exists(output) and not output_is_interrupted
    load = loader()
    content = load(contents[0])
    style_images = [load(path) for path in styles]
    # stylize() crops it to the content's aspect ratio.
    init_image = load(init_path) if init_path else None
    images = (content, style_images, init_image, load_masks(run))
    sources = (contents[0], styles, run)
    return _run(config, images, output, resume, sources=sources, keep=keep)


def load_masks(run):
    """`{"style_masks": [...] or None, "content_mask": ... or None, "style_image_masks":
    [...] or None}`, the keywords of `stylize`, from the run's mask files."""
    load = mask_loader()
    return {
        "style_masks": [load(p, "style mask") for p in run.style_masks] or None,
        "content_mask": load(run.content_mask, "content mask") if run.content_mask else None,
        "style_image_masks": [load(p, "style image mask") for p in run.style_image_masks] or None,
    }


# The checkpoint entry (written by this command, ignored by `Checkpoint.from_arrays`) that says
# whether the interrupted run saved its image to --output (true) or kept a finished image
# there (false). Checkpoints without it come from before it existed, when the image was
# always saved.
OUTPUT_IS_INTERRUPTED = "cli/output_is_interrupted"


def _checkpoint_to_resume(output, config):
    """`(checkpoint, output_is_interrupted)`: the checkpoint --resume continues from (its
    settings checked against the flags now, before any work), or None, and whether --output
    holds that interrupted run's image; without --resume, an existing checkpoint is refused
    rather than silently made stale."""
    path = outputs.checkpoint_path(output)
    if not FLAGS.resume:
        if os.path.exists(path):
            raise CheckpointError(
                f"{path} holds an interrupted run of this output; continue it with --resume, or "
                "delete it to start again"
            )
        return None, False
    from tfstyle.optimize.checkpoint import Checkpoint

    try:
        arrays = load_npz(path)
        if "format" not in arrays:  # an .npz, but not one of ours
            raise CheckpointError(f"'{path}' is not a tfstyle checkpoint (no 'format' entry)")
        checkpoint = Checkpoint.from_arrays(arrays)
        # Checking the environment imports Keras, and so TensorFlow, for the first time in a
        # --resume run: inside the filter, or TensorFlow's C++ start-up lines reach stderr.
        with native_logs.quiet_native_logs():
            checkpoint.check_settings(config)
    except CheckpointError as exc:
        raise _cannot_resume(exc, path) from exc
    return checkpoint, bool(arrays.get(OUTPUT_IS_INTERRUPTED, True))


def _cannot_resume(exc, path):
    return CheckpointError(
        f"cannot resume: {exc} (to start from the beginning instead, delete {path} if it exists "
        "and run without --resume)"
    )


def _run(config, images, output, resume, *, sources, keep):
    with native_logs.quiet_native_logs():
        from tfstyle.integrations.callbacks import side_outputs as make_side_outputs
        from tfstyle.optimize.stylize import stylize

    content, styles, init_image, masks = images
    bar = None if FLAGS.quiet else display.ProgressBar()
    callbacks = [bar] if bar else []
    if FLAGS.save_every:
        callbacks.append(outputs.Snapshots(output, FLAGS.save_every))
    side_outputs = make_side_outputs(
        output,
        history=FLAGS.history,
        logdir=FLAGS.tensorboard_dir,
        plot=FLAGS.plot_losses,
        previous=None if resume is None else resume.history,
    )
    callbacks += side_outputs
    # Ctrl-C and SIGTERM only set a flag (a second one raises at once): the run stops at the
    # end of its compiled call, and a finished result is written whole. Raised from the
    # handler, the interrupt landed wherever Python was: inside TensorFlow, or inside the
    # write of a finished image, which was then lost ("nothing was saved").
    with shell.stop_after_step() as request:
        callbacks.append(shell.StopAtCallEnd(request))
        try:
            result = stylize(
                content,
                styles,
                config=config,
                callbacks=callbacks,
                init_image=init_image,
                resume=resume,
                **masks,
            )
        except NonFiniteLossError as exc:
            if exc.image is None:
                raise
            outputs.save_file(save_image, exc.image, output)
            which = f"after step {exc.step}" if exc.step else "the starting image"
            raise TfstyleError(
                f"{exc}; the last finite image ({which}) was saved to {output}"
            ) from exc
        except CheckpointError as exc:  # the images differ from the checkpoint's
            raise _cannot_resume(exc, outputs.checkpoint_path(output)) from exc
        except Interrupted as exc:
            return _save_interrupted(exc, output, bar, keep=keep)
        content_path, style_paths, run = sources
        outputs.save(
            result,
            output=output,
            content=content_path,
            styles=style_paths,
            side_outputs=side_outputs,
            remove_checkpoint=True,
            masks=run.mask_report(),
        )
    if request.is_set():  # after the last step: the result was written whole all the same
        display.say(f"{shell.PREFIX}: interrupted while writing {output}: it was written whole")
    elif not FLAGS.quiet:
        print(f"saved {output} ({result.elapsed_s:.1f} s)", file=sys.stderr)
    return 0


def _save_interrupted(exc, output, bar, *, keep):
    """Save what an interrupted run had reached; returns 128 + the signal's number. With
    `keep` (--output holds a finished image), the current image goes only into the checkpoint."""
    total = exc.total_steps
    checkpoint = outputs.checkpoint_path(output)
    if exc.checkpoint is None:
        line = f"interrupted before the first step of {total}; nothing was saved"
    else:
        arrays = exc.checkpoint.to_arrays()
        arrays[OUTPUT_IS_INTERRUPTED] = np.bool_(not keep)
        # A second Ctrl-C now could only lose these two writes; they take milliseconds. The
        # checkpoint first: it holds the image too, so a failed image write loses nothing.
        with shell.signals_ignored():
            save_npz(arrays, checkpoint)
            if not keep:
                try:
                    outputs.save_file(save_image, exc.image, output)
                except TfstyleError as error:
                    raise TfstyleError(
                        f"{error}; interrupted after step {exc.step} of {total}, the checkpoint "
                        f"was saved to {checkpoint}: continue with the same command and --resume"
                    ) from error
        where = (
            f"kept the finished {output} and saved the current image in a checkpoint to "
            if keep
            else f"saved the current image to {output} and a checkpoint to "
        )
        line = (
            f"interrupted after step {exc.step} of {total}; {where}{checkpoint}; continue with "
            "the same command and --resume"
        )
    if bar is not None:
        bar.end_line()  # the process ends here: leave the bar where it stopped
    display.say(f"{shell.PREFIX}: {line}")
    return shell.exit_status(exc.__cause__ or exc)
