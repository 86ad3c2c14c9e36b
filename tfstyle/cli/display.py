"""What the commands show on stderr while they work: the progress bar, and messages that must
not be drawn over it."""

import sys
import time


class ProgressBar:
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


def say(message, bar=None):
    """Write a line to stderr, starting a fresh line if the bar is half drawn."""
    if bar is not None:
        bar.end_line()
    print(message, file=sys.stderr)
