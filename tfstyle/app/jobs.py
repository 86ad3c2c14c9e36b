"""What the web app does, without Gradio: the same library calls as the CLI, one job at a time.

`paint` runs `stylize()` with a `StyleConfig` (the CLI's path: `tfstyle --content --style
--output`) in a worker thread and yields an `Update` per preview and per progress tick, then
one with the result and its files (the PNG and the JSON report, named as the CLI names them).
`Stop` is a `stylize` callback: once set, it raises `StopRequested` (a KeyboardInterrupt) at the
next step boundary, so `stylize` ends as on Ctrl-C, with the current image, which is kept.
`FastPainter` paints with trained stylizers (`FastStylizer`, as `tfstyle --model`).

Uploaded files are read with `tfstyle.io.load_image` (the CLI's checks: not an image, too
many pixels, a decompression bomb), and its one-line messages name the file as the user named
it, never by its path on the server.
"""

import dataclasses
import os
import queue
import threading
import time

from tfstyle.errors import ImageError, Interrupted, NonFiniteLossError, TfstyleError
from tfstyle.io import native_logs, outputs, save_image, save_json
from tfstyle.io.images import load_image
from tfstyle.io.paths import file_stem, find_stylizers, output_name, quote
from tfstyle.ops import preprocessing as pp
from tfstyle.settings.style import MAX_INPUT_PIXELS

# A progress-only update (no new picture) at most this often: the page redraws its bar, and a
# queue of thousands of tiny updates would lag behind the run.
PROGRESS_EVERY_S = 0.5


class StopRequested(KeyboardInterrupt):
    """Raised by `Stop` inside `stylize`'s callbacks; `stylize` turns it into `Interrupted`,
    carrying the current image."""


class Stop:
    """A `stylize` callback that ends the run at the next step boundary once `set()`: the
    exception is raised from Python between compiled calls, never inside TensorFlow's native
    code (as the CLI's `stop_after_step` ends training)."""

    def __init__(self):
        self._event = threading.Event()

    def set(self):
        self._event.set()

    def is_set(self):
        return self._event.is_set()

    def __call__(self, progress):
        if self._event.is_set():
            raise StopRequested(f"stopped after step {progress.step} of {progress.total_steps}")


@dataclasses.dataclass(frozen=True)
class Update:
    """One message of a running `paint` job.

    Attributes:
        step, total_steps: steps done and to do (all scales).
        elapsed_s: seconds since the job started, loading included.
        image: a new preview (float32 `[H, W, 3]` in [0, 1]) or None (progress only); on the
            last update, the result.
        done: the last update of the job; then `files` is (PNG, JSON report) and `stopped`
            says whether Stop ended it early; `note`, if not empty, why it ended (a loss that
            became NaN: then `files` is the last finite image alone).
    """

    step: int
    total_steps: int
    elapsed_s: float
    image: object = None
    done: bool = False
    stopped: bool = False
    files: tuple[str, ...] = ()
    note: str = ""

    @property
    def seconds_left(self):
        """Time left at the rate so far (compilation included, so pessimistic early on), or
        None before the first step."""
        if not self.step or self.done:
            return None
        return self.elapsed_s / self.step * (self.total_steps - self.step)


def load_upload(path, *, max_pixels=MAX_INPUT_PIXELS, what="image"):
    """`load_image(path)` for a file the page received: the CLI's checks and messages, naming
    the file by its own name (`photo.jpg`), not the server's folder it was uploaded to.

    Raises:
        ImageError: no file, or `load_image`'s refusal (not an image, too large, corrupt).
    """
    if not path:
        raise ImageError(f"no {what} given: upload one or pick an example")
    path = os.fsdecode(path)
    try:
        return load_image(path, max_pixels=max_pixels)
    except ImageError as exc:
        raise ImageError(hide_folder(str(exc), path)) from None


def hide_folder(message, path):
    """`message` with `path` (and its folder) replaced by the file's own name."""
    name = os.path.basename(path)
    for long, short in ((quote(path), quote(name)), (path, name)):
        message = message.replace(long, short)
    return message.replace(os.path.dirname(path) + os.sep, "")


def paint(content_path, style_paths, *, config, stop=None, folder, max_pixels=MAX_INPUT_PIXELS):
    """Stylize an uploaded photo with uploaded paintings: `stylize(content, styles,
    config=config)`, as the CLI runs it; yields `Update`s, the last with the files written to
    `folder` (`<photo stem>__<painting stem>.png` and its `.json` report, whose `content` and
    `style` are the files' own names).

    Raises:
        TfstyleError: a bad upload or setting (before any work), or a failed run; a run whose
            loss became NaN or infinite, after keeping its last finite image.
    """
    start = time.perf_counter()
    if not style_paths:
        raise ImageError("no painting given: upload one or pick a bundled one")
    content = load_upload(content_path, max_pixels=max_pixels, what="photo")
    styles = [load_upload(p, max_pixels=max_pixels, what="painting") for p in style_paths]
    config.blend_weights(len(styles))
    stop = stop or Stop()
    records = queue.Queue()
    outcome = {}

    def work():
        with native_logs.quiet_native_logs():
            from tfstyle.optimize.stylize import stylize
        try:
            outcome["result"] = stylize(
                content, styles, config=config, callbacks=[records.put, stop]
            )
        except BaseException as exc:  # handed to the generator, which re-raises it
            outcome["error"] = exc
        finally:
            records.put(None)

    worker = threading.Thread(target=work, name="tfstyle-paint", daemon=True)
    worker.start()
    total = config.most_steps()
    last_sent = 0.0
    try:
        while (record := records.get()) is not None:
            total = record.total_steps
            now = time.perf_counter()
            if record.image is not None or now - last_sent >= PROGRESS_EVERY_S:
                last_sent = now
                yield Update(record.step, total, now - start, record.image)
    finally:
        # Closed early (the page was left, the job cancelled): the run stops at its next step
        # instead of holding the one job slot's CPU to the end. After a finished run, a no-op.
        stop.set()
        worker.join()
    yield _finish(outcome, content_path, style_paths, folder, start, total)


def _finish(outcome, content_path, style_paths, folder, start, total):
    """The last `Update`: the result (or the picture Stop kept) saved with its report."""
    from tfstyle.optimize.stylize import StyleResult

    error = outcome.get("error")
    stopped = isinstance(error, Interrupted) and isinstance(error.__cause__, StopRequested)
    names = [os.path.basename(os.fsdecode(p)) for p in style_paths]
    output = os.path.join(folder, output_name(content_path, file_stem(names[0])))
    if isinstance(error, NonFiniteLossError) and error.image is not None:
        # As the CLI does: the last finite image is kept (there is no history for a report).
        save_image(error.image, output)
        which = f"after step {error.step}" if error.step else "the starting image"
        return Update(
            error.step,
            total,
            time.perf_counter() - start,
            error.image,
            done=True,
            files=(output,),
            note=f"{error}; the last finite image ({which}) was kept",
        )
    if error is not None and not stopped:
        raise error
    if stopped:
        if error.checkpoint is None:
            raise TfstyleError("stopped before the first step: there is no picture yet")
        checkpoint = error.checkpoint
        result = StyleResult(
            error.image,
            checkpoint.history,
            checkpoint.config,
            checkpoint.evaluations,
            time.perf_counter() - start,
        )
    else:
        result = outcome["result"]
    save_image(result.image, output)
    data = outputs.report(result, output=output)
    # Names as the user gave them: the report never shows the server's folders.
    data.update(
        content=os.path.basename(os.fsdecode(content_path)),
        style=names,
        output=os.path.basename(output),
        stopped=stopped,
    )
    report = save_json(data, outputs.report_path(output))
    steps = len(result.history["total"])
    return Update(
        steps,
        total,
        time.perf_counter() - start,
        result.image,
        done=True,
        stopped=stopped,
        files=(output, report),
    )


class FastPainter:
    """Paints photos with the trained stylizers under a folder (`saved_models/`), each loaded
    once, as `tfstyle --model DIR --content PHOTO` paints them."""

    def __init__(self, root, *, tile_size=None):
        with native_logs.quiet_native_logs():
            from tfstyle.fast import stylizer as fast

        self._fast = fast
        self.models = find_stylizers(root, marker=fast.KERAS_FILE) if root else {}
        self._options = {} if tile_size is None else {"tile_size": tile_size}
        self._loaded = {}
        self._lock = threading.Lock()

    def stylizer(self, name):
        """The `FastStylizer` called `name` (raises TfstyleError for an unknown name)."""
        if name not in self.models:
            known = ", ".join(self.models) or "none"
            raise TfstyleError(f"no trained stylizer called {name!r} (there are: {known})")
        with self._lock:
            if name not in self._loaded:
                self._loaded[name] = self._fast.FastStylizer.load(
                    self.models[name], **self._options
                )
            return self._loaded[name]

    def paint(self, image, name, *, preserve_colors="none", max_size=None):
        """`image` (an array, as the page's webcam sends it) painted by stylizer `name`,
        scaled first to `max_size` on its longer side if given; float32 `[H, W, 3]`."""
        content = pp.as_float_image(image)
        if max_size:
            content = pp.fit_to_max_size(content, max_size)
        painted = self.stylizer(name)(content)
        return pp.keep_content_colors(painted, content, mode=preserve_colors)
