"""What the commands show on stderr while they work: the progress bar, and messages that must
not be drawn over it.

The bar is tqdm's on a terminal. Elsewhere (a log file, CI) a redrawn bar would leave one
carriage-return-joined line per update, so a plain line is written every tenth of the run
instead, formatted by tqdm (steps, elapsed, ETA, rate) all the same.
"""

import sys
import time
import typing

from tqdm import tqdm

_UNIT = "step"


class Step(typing.NamedTuple):
    """What the bar needs of a step: the fields of `tfstyle.optimize.progress.Progress` it reads
    (for commands whose library call reports otherwise, as training does through Keras)."""

    step: int
    total_steps: int
    losses: dict
    is_last: bool


def _losses(losses):
    return (
        f"total {losses['total']:.4g} (content {losses['content']:.3g}, "
        f"style {losses['style']:.3g}, tv {losses['tv']:.3g})"
    )


class ProgressBar:
    """A `stylize` callback that shows the run's progress and losses on `stream` (stderr).

    `describe(losses)` formats a step's losses (default: a stylization's four terms); `unit`
    names what is counted, and `initial` how many were done before (a resumed video), so that
    the rate and ETA count only this run's."""

    def __init__(self, stream=None, *, describe=_losses, unit=_UNIT, initial=0):
        # Looked up at call time: a default of sys.stderr would pin the stream at import.
        self.stream = stream or sys.stderr
        self.describe = describe
        self.tty = self.stream.isatty()
        self.start = time.perf_counter()
        self.bar = None
        self.unit = unit
        self.initial = initial

    def __call__(self, progress):
        losses = self.describe(progress.losses)
        tiles = getattr(progress, "tiles", 1)  # training's `Step` records have none
        if tiles > 1:
            losses = f"{losses}, {tiles} tiles"
        if not self.tty:
            self._log_line(progress, losses)
            return
        if self.bar is None:
            self.bar = tqdm(
                total=progress.total_steps,
                initial=self.initial,
                file=self.stream,
                unit=self.unit,
                leave=True,
            )
        if self.bar.total != progress.total_steps:  # a batch's later image has another pyramid
            self.bar.total = progress.total_steps
        self.bar.set_postfix_str(losses, refresh=False)
        self.bar.update(progress.step - self.bar.n)
        if progress.is_last:
            self.end_line()

    def _log_line(self, progress, losses):
        tenth = max(1, progress.total_steps // 10)
        if progress.step % tenth and not progress.is_last:
            return
        line = tqdm.format_meter(
            progress.step,
            progress.total_steps,
            time.perf_counter() - self.start,
            unit=self.unit,
            initial=self.initial,
            postfix=losses,
            ascii=True,
        )
        self.stream.write(line + "\n")
        self.stream.flush()

    def end_line(self):
        """Close a terminal bar (it stays on screen), so that the next message has its own line."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def write(self, message):
        """A message line that the terminal bar is redrawn below, not over."""
        if self.bar is not None:
            self.bar.write(message, file=self.stream)
        else:
            self.stream.write(message + "\n")
            self.stream.flush()


def say(message, bar=None):
    """Write a line to stderr, below the progress bar `bar` if there is one."""
    if bar is None:
        print(message, file=sys.stderr)
    else:
        bar.write(message)
