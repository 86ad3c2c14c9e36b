"""What a run leaves beside its image: the JSON report, the side files' names and snapshots.
(The side outputs that must never cost the image, history, TensorBoard and the loss plot, are
callbacks: `tfstyle.integrations.callbacks.side_outputs`.)

The CLI and Python users get the same files:

    >>> result = tfstyle.stylize(content, style, callbacks=[outputs.Snapshots("out.png", 50)])
    >>> report = outputs.save(result, output="out.png", content="photo.jpg", styles=["art.jpg"])
    >>> report["final_losses"]["total"]

Naming: for an output `out.png`, the report is `out.json`, the checkpoint of an interrupted
run `out.ckpt.npz`, the loss plot `out_losses.png` and snapshots `out_step00050.png`. Files are
written through `tfstyle.io` (atomically); nothing here prints.
"""

import os
import re

from tfstyle import __version__
from tfstyle.errors import OutputError, TfstyleError
from tfstyle.io import make_directories, remove_file, save_image, save_json
from tfstyle.io.paths import check_not_input, check_output_file
from tfstyle.ops import tiles

# The loss history files a run can write (`integrations.callbacks.HistoryLogger`).
HISTORY_EXTENSIONS = (".json", ".csv")


def report_path(output):
    """`out.json` for `out.png`: the run's JSON report.

    Args:
        output: the output image's path.

    Returns:
        The report's path.
    """
    return os.path.splitext(output)[0] + ".json"


def checkpoint_path(output):
    """`out.ckpt.npz` for `out.png`: where an interrupted run's checkpoint is kept.

    Args:
        output: the output image's path.

    Returns:
        The checkpoint's path.
    """
    return os.path.splitext(output)[0] + ".ckpt.npz"


def plot_path(output):
    """`out_losses.png` for `out.png`: the loss plot.

    Args:
        output: the output image's path.

    Returns:
        The plot's path.
    """
    return os.path.splitext(output)[0] + "_losses.png"


def snapshot_path(output, step):
    """`out_step00050.png` for `out.png` at step 50.

    Args:
        output: the output image's path.
        step: the step the snapshot was taken at.

    Returns:
        The snapshot's path (the step zero-padded to five digits).
    """
    stem, ext = os.path.splitext(output)
    return f"{stem}_step{step:05d}{ext}"


def history_path(output, extension):
    """`out_history.csv` for `out.png` and ".csv": a batch output's own history file.

    Args:
        output: the output image's path.
        extension: ".json" or ".csv".

    Returns:
        The history file's path.
    """
    return os.path.splitext(output)[0] + "_history" + extension


def side_files(output, *, steps, checkpoint=True, plot=False, history_extension=None, every=0):
    """The files a run may write beside `output` (of its snapshots, the one with the longest
    name, after `steps` steps), for checking their names before any work.

    Args:
        output: the output image's path.
        steps: the run's steps (the last snapshot's number).
        checkpoint: include the checkpoint.
        plot: include the loss plot.
        history_extension: include `history_path(output, history_extension)`, if not None.
        every: snapshots every this many steps (0: none).

    Returns:
        A list of paths.
    """
    files = [report_path(output)] + ([checkpoint_path(output)] if checkpoint else [])
    if plot:
        files.append(plot_path(output))
    if history_extension:
        files.append(history_path(output, history_extension))
    if every:
        files.append(snapshot_path(output, steps))
    return files


def check_side_files(output, *, inputs, plot=False, history=None, every=0):
    """Refuse, before any work, side files that would overwrite an input or cannot be written
    (their folders may still have to be made).

    Args:
        output: the run's output image (absolute).
        inputs: the run's input files.
        plot: a loss plot will be written.
        history: the history file to be written, or None.
        every: snapshots are saved every `every` steps (0: none).

    Raises:
        OutputError: naming the file in the way.
    """
    check_not_input(report_path(output), inputs=inputs)
    check_not_input(checkpoint_path(output), inputs=inputs)
    if plot:
        check_output_file(plot_path(output), extensions=(".png",), create_directory=True)
        check_not_input(plot_path(output), inputs=inputs)
    if history:
        check_output_file(history, extensions=HISTORY_EXTENSIONS, create_directory=True)
        check_not_input(history, inputs=inputs)
        if os.path.abspath(history) == report_path(os.path.abspath(output)):
            raise OutputError(
                f"the history file {history} would overwrite the run's report; rename it"
            )
    if every:
        _check_snapshots_spare_inputs(output, inputs)


def _check_snapshots_spare_inputs(output, inputs):
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


def report(result, *, output, content=None, styles=(), masks=None):
    """The JSON report of a finished run, as a dict (keys in this order).

    Args:
        result: `stylize`'s `StyleResult`.
        output: the image file it was saved to.
        content: the content image's file, or None (an array from elsewhere).
        styles: the style images' files.
        masks: `{"style_masks": [files], "content_mask": file or None, "style_image_masks":
            [files]}`, or None (no masks).

    Returns:
        `version`, `backend`, `content`, `style`, `output`, `size` ([height, width]),
        `settings` (`StyleConfig.to_dict()`), `steps`, `evaluations`, `elapsed_s`,
        `final_losses`, `tiles` (the tiles of the finest scale's step: 1 untiled), `tiling`
        ("none", "asked": tile_size given, or "automatic": chosen because the untiled step
        would not fit the host's memory; `settings.tile_size` is the size that ran),
        `peak_memory_mb` (the process's peak resident memory so far, which includes anything
        it ran before this run); then `masks` (the same, files made absolute) if the run had
        masks.
    """
    import keras  # here, not at the top: the CLI imports this module before Keras

    data = {
        "version": __version__,
        "backend": keras.backend.backend(),
        "content": None if content is None else _where(content),
        "style": [_where(path) for path in styles],
        "output": _where(output),
        "size": list(result.image.shape[:2]),
        "settings": result.config.to_dict(),
        "steps": len(result.history["total"]),
        "evaluations": result.evaluations,
        "elapsed_s": round(result.elapsed_s, 3),
        "final_losses": result.final_losses(),
        "tiles": tiles.tile_count(result.config, result.image.shape[:2]),
        "tiling": _tiling(result),
        "peak_memory_mb": _peak_memory_mb(),
    }
    if masks:
        data["masks"] = {
            key: os.path.abspath(value)
            if isinstance(value, str)
            else [os.path.abspath(path) for path in value or ()]
            for key, value in masks.items()
        }
    return data


def _tiling(result):
    if getattr(result, "automatic_tiles", False):
        return "automatic"
    return "none" if result.config.tile_size is None else "asked"


def _peak_memory_mb():
    """The process's peak resident memory in MiB (Linux reports ru_maxrss in KiB), or None
    where the resource module is missing (Windows)."""
    try:
        import resource
    except ImportError:
        return None
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def painted_report(*, content, model, output, size, preserve_colors, batch, elapsed_s):
    """The JSON report of a photo painted by a trained stylizer (`tfstyle.beam`'s
    `run_stylizer`), as a dict: `version`, `backend`, `content`, `model`, `output`, `size`
    ([height, width]), `preserve_colors`, `batch` (images in its forward pass) and `elapsed_s`
    (that pass's time, shared by its images).

    Args:
        content: the photo's path or URL.
        model: the stylizer's folder.
        output: the painted image's path or URL.
        size: `(height, width)` painted.
        preserve_colors: "none", "luminance" or "histogram".
        batch: the images in the forward pass.
        elapsed_s: that pass's time in seconds.

    Returns:
        The report dict (local paths made absolute).
    """
    import keras

    return {
        "version": __version__,
        "backend": keras.backend.backend(),
        "content": _where(content),
        "model": _where(model),
        "output": _where(output),
        "size": list(size),
        "preserve_colors": preserve_colors,
        "batch": batch,
        "elapsed_s": round(elapsed_s, 3),
    }


def _where(path):
    """A local path made absolute; a URL (`gs://...`, from `tfstyle.beam`) as it is."""
    path = os.fsdecode(path)
    return path if "://" in path else os.path.abspath(path)


def save(
    result,
    *,
    output,
    content=None,
    styles=(),
    side_outputs=(),
    remove_checkpoint=False,
    masks=None,
):
    """Save a finished run: its image, then (with `remove_checkpoint`) delete the checkpoint it
    was resumed from, then write its report; last, raise the first failure of a side output.

    Whatever fails after the image is saved, the image is kept, and the error says so.

    Args:
        result: `stylize`'s `StyleResult`.
        output: the image file (.png, .jpg or .jpeg); its folder is created if need be.
        content, styles, masks: the input files, for the report (see `report`).
        side_outputs: the `SideOutput` callbacks of the run.
        remove_checkpoint: delete `checkpoint_path(output)` once the image is saved.

    Returns:
        The report, as written to `report_path(output)`.

    Raises:
        TfstyleError: a write failed, or a side output did (naming the saved image); a side
            output's bug (any other exception) is raised as it is, after the image is saved.
    """
    save_file(save_image, result.image, output)
    if remove_checkpoint:
        remove_file(checkpoint_path(output))  # the run it belonged to is now complete
    data = report(result, output=output, content=content, styles=styles, masks=masks)
    try:
        save_json(data, report_path(output))
    except TfstyleError as exc:
        raise TfstyleError(f"{exc}; the image was saved to {output}") from exc
    for side in side_outputs:
        if side.error is not None and not isinstance(side.error, TfstyleError):
            raise side.error
        if side.error is not None:
            raise TfstyleError(f"{side.error}; the image was saved to {output}") from side.error
    return data


def save_file(write, data, path):
    """`write(data, path)` after creating the folder the checks before the run accepted.

    Args:
        write: a writer such as `save_image` or `save_json`.
        data: what it writes.
        path: the file.

    Returns:
        What `write` returns.

    Raises:
        OutputError: the folder cannot be made, or the write fails.
    """
    make_directories(os.path.dirname(os.path.abspath(path)))
    return write(data, path)


class Snapshots:
    """A `stylize` callback that saves `<output stem>_step<N><ext>` every `every` steps (on the
    steps that carry an image: make `every` a multiple of `StyleConfig.steps_per_call`).

    Args:
        output: the output image's path (the snapshots are named after it).
        every: a snapshot every this many steps.
    """

    def __init__(self, output, every):
        self.output = output
        self.every = every

    def __call__(self, progress):
        if progress.image is not None and progress.step % self.every == 0:
            save_file(save_image, progress.image, snapshot_path(self.output, progress.step))
