"""`tfstyle --content PHOTOS --style ART --output_dir OUT [settings]`: every content x every
style, `<content stem>__<style stem>.png` and its report each, under one progress bar.

A pair that fails is reported in one line and skipped; the exit status is 1 if any failed.
Outputs that exist are skipped unless --overwrite, so rerunning a stopped batch resumes it.
"""

import dataclasses
import os
import sys

from tfstyle.cli import display, shell
from tfstyle.cli.flags import FLAGS, image_run, loader, mask_loader, nothing_to_do
from tfstyle.errors import Interrupted, TfstyleError
from tfstyle.io import (
    check_name_length,
    check_output_file,
    check_output_path,
    file_stem,
    native_logs,
    output_name,
    outputs,
)


def command():
    """Run the batch; returns the exit status (raises TfstyleError for a user's mistake)."""
    run = image_run()
    config, contents, styles = run.config, run.contents, run.styles
    if FLAGS.resume:
        raise TfstyleError("--resume is for one --output; a batch resumes by skipping outputs")
    if FLAGS.style_blend_weights:
        raise TfstyleError(
            "--style_blend_weights blends styles into one --output; a batch applies each "
            "style on its own"
        )
    jobs = _plan(contents, styles, FLAGS.output_dir, masks=run.mask_paths())
    _check_side_files(jobs, steps=config.most_steps())
    todo = [job for job in jobs if FLAGS.overwrite or not os.path.exists(job[2])]
    if not todo:
        return nothing_to_do(len(jobs), os.path.abspath(FLAGS.output_dir))
    if len(todo) < len(jobs) and not FLAGS.quiet:
        print(
            f"skipping {len(jobs) - len(todo)} of {len(jobs)} outputs that already exist "
            "(--overwrite redoes them)",
            file=sys.stderr,
        )
    failed = _run(config, todo, run)
    if isinstance(failed, KeyboardInterrupt):
        return shell.exit_status(failed.__cause__ or failed)
    if failed:
        raise TfstyleError(f"{failed} of {len(todo)} outputs failed; rerun to retry them")
    if not FLAGS.quiet:
        print(f"saved {len(todo)} outputs to {os.path.abspath(FLAGS.output_dir)}", file=sys.stderr)
    return 0


def _plan(contents, styles, output_dir, *, masks=()):
    """`(content, style, output)` for every pair, named `<content stem>__<style stem>.png`."""
    jobs, made_by = [], {}
    for content in contents:
        for style in styles:
            name = output_name(content, file_stem(style))
            if name in made_by:
                raise TfstyleError(
                    f"{made_by[name][0]} + {made_by[name][1]} and {content} + {style} would both "
                    f"be saved as {name}; rename one of the files"
                )
            made_by[name] = (content, style)
            output = os.path.join(output_dir, name)
            checked = check_output_path(
                output, inputs=(content, style, *masks), create_directory=True
            )
            jobs.append((content, style, checked))
    return jobs


def _check_side_files(jobs, *, steps):
    """Every output's side files must have names the file system can hold."""
    extension = FLAGS.history and os.path.splitext(FLAGS.history)[1]
    for job in jobs:
        for path in outputs.side_files(
            job[2],
            steps=steps,
            checkpoint=False,
            plot=FLAGS.plot_losses,
            history_extension=extension,
            every=FLAGS.save_every,
        ):
            check_name_length(path)
    if FLAGS.history:  # only its extension is used: <stem>_history<ext> beside each output
        check_output_file(
            FLAGS.history, extensions=outputs.HISTORY_EXTENSIONS, create_directory=True
        )


def _load_masks(run):
    """`(style mask by style path, content mask, style image mask by style path)`: each job
    gets its style's masks, and every content image the one content mask (stretched to it,
    with a warning, if need be)."""
    load = mask_loader()

    def per_style(paths, what):
        # check_options made sure there is one per style, or none.
        pairs = zip(run.styles, paths, strict=True) if paths else ()
        return {style: load(path, what) for style, path in pairs}

    content_mask = load(run.content_mask, "content mask") if run.content_mask else None
    return (
        per_style(run.style_masks, "style mask"),
        content_mask,
        per_style(run.style_image_masks, "style image mask"),
    )


def _run(config, todo, run):
    """Stylize every job; returns how many failed, or the KeyboardInterrupt (`Interrupted`, or
    the signal's `SignalInterrupt`) that stopped the batch."""
    styles, init_path = run.styles, run.init_path
    masks = _load_masks(run)
    with native_logs.quiet_native_logs():
        from tfstyle.optimize.runners import RunnerCache
        from tfstyle.optimize.stylize import stylize

    inputs = _Inputs(loader(), keep=styles)
    init_image = loader()(init_path) if init_path else None
    bar = None if FLAGS.quiet else display.ProgressBar()
    runners = RunnerCache()  # one compiled step per image size for the whole batch
    failed = 0
    # Ctrl-C and SIGTERM only set a flag (a second one raises at once): the current output
    # stops at the end of its compiled call, or, once its steps are done, is written whole
    # and the batch stops before the next. Raised from the handler, the interrupt landed
    # inside TensorFlow or inside the write of a finished output, which was then lost.
    with shell.stop_after_step() as request:
        for index, (content, style, output) in enumerate(todo):
            callbacks = [] if bar is None else [_BatchStep(bar, index, len(todo))]
            try:
                side_outputs = _side_outputs(output)
                callbacks += side_outputs
                if FLAGS.save_every:
                    callbacks.append(outputs.Snapshots(output, FLAGS.save_every))
                callbacks.append(shell.StopAtCallEnd(request))  # last: after the snapshots
                result = stylize(
                    inputs(content),
                    [inputs(style)],
                    config=config,
                    callbacks=callbacks,
                    init_image=init_image,
                    runners=runners,
                    style_masks=[masks[0][style]] if masks[0] else None,
                    content_mask=masks[1],
                    style_image_masks=[masks[2][style]] if masks[2] else None,
                )
                outputs.save(
                    result,
                    output=output,
                    content=content,
                    styles=[style],
                    side_outputs=side_outputs,
                    masks=run.mask_report(style),
                )
            except Interrupted as exc:
                if bar is not None:
                    bar.end_line()  # the process ends here: leave the bar where it stopped
                display.say(
                    f"{shell.PREFIX}: interrupted during {os.path.basename(output)}; the "
                    f"{index} finished outputs are kept: rerun the same command to continue"
                )
                return exc
            except TfstyleError as exc:
                failed += 1
                message = inputs.first_report(exc) if isinstance(exc, _Inputs.Failed) else exc
                if message:
                    display.say(f"tfstyle: error: {os.path.basename(output)}: {message}", bar)
            if request.is_set() and index + 1 < len(todo):
                if bar is not None:
                    bar.end_line()
                display.say(
                    f"{shell.PREFIX}: interrupted after {os.path.basename(output)}; the "
                    f"{index + 1 - failed} finished outputs are kept: rerun the same command "
                    "to continue"
                )
                return shell.SignalInterrupt(request.signum)
    if request.is_set():  # while the last output was written: it was written whole
        display.say(f"{shell.PREFIX}: interrupted while writing {output}: it was written whole")
    return failed


def _side_outputs(output):
    """Per output of a batch: <stem>_history.json/.csv, TensorBoard logs in a subdirectory."""
    from tfstyle.integrations.callbacks import side_outputs

    history = FLAGS.history and outputs.history_path(output, os.path.splitext(FLAGS.history)[1])
    logdir = FLAGS.tensorboard_dir and os.path.join(FLAGS.tensorboard_dir, file_stem(output))
    return side_outputs(output, history=history, logdir=logdir, plot=FLAGS.plot_losses)


class _Inputs:
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
