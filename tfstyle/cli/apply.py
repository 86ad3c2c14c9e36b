"""`tfstyle --model DIR --content PHOTOS (--output OUT | --output_dir DIR)`: paint photos with a
trained fast stylizer (`tfstyle train`), one forward pass each.

`--output` takes one photo (refused if it exists, unless --overwrite); `--output_dir` writes
`<content stem>__<model name>.png` for each, skipping those that exist unless --overwrite.
`--preserve_colors` works as for optimisation.
"""

import os
import sys
import time

from tfstyle.cli import display, shell
from tfstyle.cli.flags import (
    FLAGS,
    MASK_FLAGS,
    loader,
    nothing_to_do,
    refuse_existing_output,
    refuse_flags,
)
from tfstyle.errors import TfstyleError
from tfstyle.io import native_logs

# Flags that set an optimisation, which a trained model does not run.
NOT_FOR_MODEL = (
    "style",
    "iterations",
    "optimizer",
    "learning_rate",
    "schedule",
    "scales",
    "init",
    "resume",
    "save_every",
    "history",
    "plot_losses",
    "tensorboard_dir",
    "style_blend_weights",
    # A trained network paints every pixel in one pass: there is no loss for a mask to weigh.
    *MASK_FLAGS,
)


def command():
    """Run the command; returns the exit status (raises TfstyleError for a user's mistake)."""
    from tfstyle.io import check_output_path, expand_image_paths, model_name

    refuse_flags(NOT_FOR_MODEL, "--model paints with a trained network: it takes no --{name}")
    if not FLAGS.content:
        raise TfstyleError("--content is required")
    if bool(FLAGS.output) == bool(FLAGS.output_dir):
        raise TfstyleError("give --output (one image) or --output_dir (several), not both")
    contents = expand_image_paths(FLAGS.content)
    if FLAGS.output and len(contents) != 1:
        raise TfstyleError(f"--output takes one content image; got {len(contents)}")
    if FLAGS.output:
        output = check_output_path(FLAGS.output, inputs=contents, create_directory=True)
        refuse_existing_output(output)  # one output: refused, never silently skipped
        jobs = [(contents[0], output)]
    else:
        jobs = _plan(contents, model_name(FLAGS.model), FLAGS.output_dir)
        todo = [job for job in jobs if FLAGS.overwrite or not os.path.exists(job[1])]
        if not todo:
            return nothing_to_do(len(jobs), os.path.abspath(FLAGS.output_dir))
        jobs = todo
    with native_logs.quiet_native_logs():
        from tfstyle.fast.stylizer import FastStylizer

    stylizer = FastStylizer.load(FLAGS.model, tile_size=FLAGS.tile_size)
    return _paint(stylizer, jobs)


def _plan(contents, name, output_dir):
    """`(content, output)` for every photo, `<content stem>__<name>.png`; two photos with one
    stem (a.jpg, a.png, or one name in two folders) would write one file: refused before any
    work, as the optimised batch and the Beam pipelines do."""
    from tfstyle.io import check_output_path, output_name

    jobs, made_by = [], {}
    for content in contents:
        output = output_name(content, name)
        if output in made_by:
            raise TfstyleError(
                f"{made_by[output]} and {content} would both be saved as {output}; rename one "
                "of the files"
            )
        made_by[output] = content
        path = os.path.join(output_dir, output)
        jobs.append((content, check_output_path(path, inputs=contents, create_directory=True)))
    return jobs


def _paint(stylizer, jobs):
    from tfstyle.io import make_directories, save_image
    from tfstyle.ops import preprocessing as pp

    load = loader()
    failed = 0
    # Ctrl-C and SIGTERM only set a flag (a second one raises at once): the photo in hand is
    # painted and written whole, then the command stops. Raised from the handler, the
    # interrupt landed inside the network's call or the write, and the command said "nothing
    # was saved" over the outputs it had written.
    with shell.stop_after_step() as request:
        for index, (content_path, output) in enumerate(jobs):
            start = time.perf_counter()
            try:
                content = load(content_path)
                if FLAGS["max_size"].present:  # else the photo's own size: one pass costs little
                    content = pp.fit_to_max_size(content, FLAGS.max_size)
                painted = stylizer(content)  # refuses a photo too small for the network
            except TfstyleError as exc:  # one bad photo of many: say so, paint the others
                if len(jobs) == 1:
                    raise
                print(shell.error_line(exc), file=sys.stderr)
                failed += 1
                continue
            image = pp.keep_content_colors(painted, content, mode=FLAGS.preserve_colors)
            make_directories(os.path.dirname(output))
            save_image(image, output)
            if request.is_set():
                if index + 1 < len(jobs):
                    display.say(
                        f"{shell.PREFIX}: interrupted after {os.path.basename(output)}; the "
                        f"{index + 1 - failed} finished outputs are kept: rerun the same "
                        "command to continue"
                    )
                    return shell.exit_status(shell.SignalInterrupt(request.signum))
                display.say(
                    f"{shell.PREFIX}: interrupted while writing {output}: it was written whole"
                )
            elif not FLAGS.quiet:
                print(f"saved {output} ({time.perf_counter() - start:.2f} s)", file=sys.stderr)
    if failed:
        raise TfstyleError(f"{failed} of {len(jobs)} photos could not be read or painted")
    return 0
