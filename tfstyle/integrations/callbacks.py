"""Callbacks for `stylize(..., callbacks=[...])`: TensorBoard logs, a loss history file, a plot.

Each is a callable taking the `Progress` record of every step. They are the library's only
writers besides `tfstyle.io`, and they write only where the user pointed them:

* `TensorBoard(logdir)` writes TensorBoard event files through `tf.summary` (TensorBoard's own
  format and writer, which also creates `logdir`); it needs the `tensorboard` package.
* `HistoryLogger(path)` and `LossPlot(path)` write through `tfstyle.io`'s atomic writers.

`plot_losses(history, path)` draws a finished run's `StyleResult.history` the same way.
`side_outputs(output, ...)` wraps the ones a command asked for in `SideOutput`s, whose failures
never cost the run its image.
"""

import io
import os

import numpy as np

from tfstyle.errors import ConfigError, OutputError
from tfstyle.io import (
    atomic_write_bytes,
    check_output_file,
    make_directories,
    save_csv,
    save_json,
)
from tfstyle.io.outputs import HISTORY_EXTENSIONS, plot_path
from tfstyle.settings.style import LOSS_NAMES, PREVIEW_EVERY

_RECORD_FIELDS = ("step", "total_steps", "scale", "height", "width", "elapsed_s")


class EveryKSteps:
    """Decides when an image-showing callback shows: the first record carrying an image at or
    after each multiple of `every`, and the last step.

    Images arrive only every `steps_per_call` steps, so "every K steps" means "at the first
    image on or after step K, 2K, ...".

    Args:
        every: the interval in steps.

    Raises:
        ConfigError: `every` is not a positive integer.
    """

    def __init__(self, every):
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ConfigError(f"the image interval must be a positive integer; got {every!r}")
        self.every = every
        self._next = every

    def __call__(self, progress):
        if progress.image is None or not (progress.step >= self._next or progress.is_last):
            return False
        self._next = (progress.step // self.every + 1) * self.every
        return True


class TensorBoard:
    """Logs every named loss as a scalar at every step, and the image every `image_every` steps.

    Scalars are `loss/content`, `loss/style`, `loss/tv`, `loss/total` and `time/elapsed_s`, the
    image is `image`; the step axis is `Progress.step`. View with `tensorboard --logdir LOGDIR`.

    Args:
        logdir: directory for the event files (created if missing). Use one directory per run:
            two runs in one directory share the step axis.
        image_every: steps between images (see `EveryKSteps`); the last image is always logged.

    Raises:
        ConfigError: the `tensorboard` package (which implements `tf.summary`) is missing.
        OutputError: `logdir` cannot be created.
    """

    def __init__(self, logdir, *, image_every=PREVIEW_EVERY):
        self._due = EveryKSteps(image_every)
        try:
            import tensorboard  # noqa: F401 - tf.summary.scalar/image live in this package
        except ImportError:
            raise ConfigError(
                "TensorBoard logging needs the tensorboard package: pip install tensorboard"
            ) from None
        import tensorflow as tf

        self.logdir = os.path.abspath(os.fsdecode(logdir))
        try:
            self._writer = tf.summary.create_file_writer(self.logdir)
        except (tf.errors.OpError, OSError) as exc:
            raise OutputError(f"cannot write TensorBoard logs to {self.logdir!r}: {exc}") from exc

    def __call__(self, progress):
        import tensorflow as tf

        with self._writer.as_default(step=progress.step):
            for name, value in progress.losses.items():
                tf.summary.scalar(f"loss/{name}", value)
            tf.summary.scalar("time/elapsed_s", progress.elapsed_s)
            if self._due(progress):
                tf.summary.image("image", progress.image[None], max_outputs=1)
        if progress.is_last:
            self._writer.flush()

    def close(self):
        """Flush and close the event file (also done when the object is garbage collected)."""
        self._writer.close()


class HistoryLogger:
    """Keeps one row per step and writes them to a JSON or CSV file, chosen by the extension.

    Columns: step, total_steps, scale, height, width, elapsed_s, then each named loss. JSON is a
    list of row objects. The file is rewritten (atomically) whenever the step carries an image
    (every `steps_per_call` steps) and at the last step, so a stopped run leaves its history so
    far.

    Args:
        path: the .json or .csv file.
        previous: the loss history of the steps before a resumed run (`Checkpoint.history`);
            they become the first rows (step and losses only).

    Raises:
        OutputError: the extension is not .json or .csv, or the directory is missing.
    """

    def __init__(self, path, *, previous=None):
        self.path = check_output_file(path, extensions=HISTORY_EXTENSIONS)
        self.rows = _previous_rows(previous)

    def __call__(self, progress):
        self.rows.append(_row(progress))
        if progress.image is not None or progress.is_last:
            self.write()

    def write(self):
        """Write every row so far to `path` (atomically), replacing the file.

        Raises:
            OutputError: the file cannot be written.
        """
        if self.path.lower().endswith(".csv"):
            columns = list(_RECORD_FIELDS) + _loss_names(self.rows)
            save_csv(self.rows, self.path, columns=columns)
        else:
            save_json(self.rows, self.path)


class LossPlot:
    """Draws the loss curves to a PNG file at the last step (see `plot_losses`).

    Args:
        path: the .png file.
        previous: a resumed run's earlier history, as for `HistoryLogger`.

    Raises:
        OutputError: not a .png name, or its folder is missing.
    """

    def __init__(self, path, *, previous=None):
        self.path = check_output_file(path, extensions=(".png",))
        self.rows = _previous_rows(previous)

    def __call__(self, progress):
        self.rows.append(_row(progress))
        if progress.is_last:
            history = {name: [row[name] for row in self.rows] for name in _loss_names(self.rows)}
            plot_losses(history, self.path, steps=[row["step"] for row in self.rows])


def plot_losses(history, path, *, steps=None):
    """Save the loss curves of a run as a PNG: one line per named loss, log scale.

    Args:
        history: `{loss name: values per step}`, e.g. `StyleResult.history`.
        path: the .png file to write (atomically).
        steps: the x values (default 1, 2, ...).

    Returns:
        The absolute path written.
    """
    path = check_output_file(path, extensions=(".png",))
    return atomic_write_bytes(render_loss_plot(history, steps=steps), path)


def render_loss_plot(history, *, steps=None):
    """The PNG bytes of `plot_losses`' figure (matplotlib's Agg canvas; no pyplot, no display).

    Args:
        history: `{loss name: values}`, plotted on a log scale (values <= 0 left out).
        steps: the x value of each entry, or None for 1, 2, ...

    Returns:
        PNG bytes.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for name, values in history.items():
        values = np.asarray(values, np.float64)
        x = np.arange(1, len(values) + 1) if steps is None else np.asarray(steps)
        positive = values > 0  # log scale: zero losses (content at a content init) are left out
        width = 2 if name == "total" else 1
        if positive.any():
            axes.plot(x[positive], values[positive], label=name, linewidth=width)
    axes.set_yscale("log")
    axes.set_xlabel("step")
    axes.set_ylabel("loss")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _previous_rows(history):
    """Rows (step and losses) for a history `{loss name: per-step values}` of earlier steps."""
    if not history:
        return []
    steps = len(next(iter(history.values())))
    return [
        {"step": i + 1, **{name: float(values[i]) for name, values in history.items()}}
        for i in range(steps)
    ]


def _row(progress):
    return {
        "step": progress.step,
        "total_steps": progress.total_steps,
        "scale": progress.scale,
        "height": progress.size[0],
        "width": progress.size[1],
        "elapsed_s": round(progress.elapsed_s, 4),
        **progress.losses,
    }


def _loss_names(rows):
    names = [k for k in rows[0] if k not in _RECORD_FIELDS] if rows else list(LOSS_NAMES)
    return sorted(names, key=lambda k: (LOSS_NAMES.index(k) if k in LOSS_NAMES else 99, k))


class SideOutput:
    """A side output's callback (history, TensorBoard, loss plot), made at the run's first step
    after creating `folder` (if not None): a run refused before its first step leaves no folder
    behind. A failure never stops the run: the first one is kept in `error` (`save` raises it
    once the image is saved) and the side output stops.

    Args:
        folder: a folder to create at the first step, or None.
        make: builds the real callback (called once, at the first step).
    """

    def __init__(self, folder, make):
        self.folder, self.make = folder, make
        self.callback = None
        self.error = None

    def __call__(self, progress):
        if self.error is not None:
            return
        try:
            if self.callback is None:
                if self.folder is not None:
                    make_directories(self.folder)
                self.callback = self.make()
            self.callback(progress)
        except Exception as exc:
            self.error = exc


def side_outputs(output, *, history=None, logdir=None, plot=False, previous=None):
    """The `SideOutput`s of a run: a loss history file, TensorBoard logs, a loss plot.

    Args:
        output: the run's output image (the plot is named after it).
        history: a .json or .csv file for the per-step losses, or None.
        logdir: a TensorBoard log directory, or None.
        plot: write `plot_path(output)`.
        previous: a resumed run's earlier history (`Checkpoint.history`), which the history
            file and the plot start with.
    """
    made = []
    if history:
        folder = os.path.dirname(os.path.abspath(history))
        made.append(SideOutput(folder, lambda: HistoryLogger(history, previous=previous)))
    if logdir:  # tf.summary creates the folder itself
        made.append(SideOutput(None, lambda: TensorBoard(logdir)))
    if plot:
        path = plot_path(output)
        made.append(SideOutput(os.path.dirname(path), lambda: LossPlot(path, previous=previous)))
    return made
