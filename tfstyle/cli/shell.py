"""What a command-line program around tfstyle needs from its process, and nothing else.

* `quiet_native_logs()`: filter the lines TensorFlow's C++ code writes to stderr while it loads
  (CUDA probing, CPU features), which `TF_CPP_MIN_LOG_LEVEL` does not reach because they are
  logged before absl's C++ logging is initialised.
* `one_line_warnings()`: show Python warnings as `tfstyle: warning: ...`, one line each.
* `error_line(exc)`: the one line a user's mistake is reported with.
* `stop_on_signals()`: turn SIGTERM (and SIGINT) into `SignalInterrupt`, a `KeyboardInterrupt`
  that remembers its signal, so a run stopped by a service manager or `kill` saves its work like
  one stopped by Ctrl-C; `exit_status(exc)` is the shell convention 128 + signal number.

Only the CLI uses this module: the library never prints and never touches signal handlers.
"""

import contextlib
import logging
import os
import re
import signal
import sys
import tempfile
import warnings

PREFIX = "tfstyle"

# The default the CLI sets; a user who sets TF_CPP_MIN_LOG_LEVEL themselves gets their level.
TF_LOG_LEVEL = "3"

# An absl/TF C++ log line: severity letter, MMDD, time (before absl is initialised: 00:00 and
# seconds since the epoch), thread, file:line].
_NATIVE_LINE = re.compile(r"^([IWEF])\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [^\s\]]+:\d+\] ")
# Not log lines themselves: absl's notice before its first line, and the continuation of
# cpu_feature_guard's INFO message.
_NOISE = (
    "WARNING: All log messages before absl::InitializeLog() is called",
    "To enable the following instructions:",
)
_SEVERITIES = "IWEF"


class SignalInterrupt(KeyboardInterrupt):
    """A KeyboardInterrupt raised by `stop_on_signals` for a signal; `signum` names it."""

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def exit_status(interrupt):
    """128 + the signal number (130 for SIGINT/Ctrl-C, 143 for SIGTERM), as shells report."""
    return 128 + (getattr(interrupt, "signum", None) or signal.SIGINT)


def error_line(exc):
    """`tfstyle: error: <message>` on one line (line breaks in a message become spaces)."""
    message = str(exc).replace("\r", " ").replace("\n", " ").strip()
    return f"{PREFIX}: error: {message or type(exc).__name__}"


def set_tf_log_level():
    """Ask TensorFlow's C++ code for errors only, unless the user chose a level; call before
    TensorFlow is imported."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", TF_LOG_LEVEL)


def quiet_library_loggers():
    """Python loggers of libraries whose failures tfstyle reports itself: Pillow logs an error
    before raising on some corrupt TIFFs, and absl (set up by `app.run`) would print it; and
    Beam's notes on what tfstyle asked of it."""
    logging.getLogger("PIL").setLevel(logging.CRITICAL)
    # Beam replacing a pipeline's dead letter file on a rerun: "Deleting 1 existing files in
    # target path matching: " (sic), a warning about what tfstyle means to do.
    logging.getLogger("apache_beam.io.filebasedsink").setLevel(logging.ERROR)


@contextlib.contextmanager
def one_line_warnings(stream=None):
    """Within the block, show each Python warning as `tfstyle: warning: <message>`."""

    def show(message, category, filename, lineno, file=None, line=None):
        text = " ".join(str(message).splitlines()).strip()
        print(f"{PREFIX}: warning: {text}", file=stream or sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


@contextlib.contextmanager
def quiet_native_logs():
    """Within the block, drop C++ log lines below `TF_CPP_MIN_LOG_LEVEL` from file descriptor 2.

    TensorFlow logs some start-up messages through absl before absl's logging is initialised,
    and those ignore `TF_CPP_MIN_LOG_LEVEL`. They are written straight to file descriptor 2, so
    the block's output to it is captured in a temporary file and replayed without them; every
    other line (a real error, Python's output) is kept.
    """
    level = _min_level()
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield  # no usable stderr: nothing to filter
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = _filter_lines(capture.read().decode("utf-8", "replace"), level)
            if kept:
                sys.stderr.write(kept)
                sys.stderr.flush()


def _min_level():
    try:
        return int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0"))
    except ValueError:
        return 0


def _filter_lines(text, level):
    """Drop native log lines whose severity is below `level` (0 INFO .. 3 FATAL only), absl's
    pre-initialisation notice, and the second line of TensorFlow's CPU-features message.
    Anything else is kept, so unknown output is never swallowed."""
    kept = []
    for line in text.splitlines(keepends=True):
        match = _NATIVE_LINE.match(line)
        if match:
            drop = _SEVERITIES.index(match.group(1)) < level
        else:
            drop = level > 0 and line.startswith(_NOISE)
        if not drop:
            kept.append(line)
    return "".join(kept)


@contextlib.contextmanager
def stop_on_signals():
    """Within the block, SIGTERM (and SIGINT, unless it is ignored) raise `SignalInterrupt` in
    the main thread, between Python bytecodes, like Ctrl-C's KeyboardInterrupt."""

    def handler(signum, frame):
        raise SignalInterrupt(signum)

    previous = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        current = signal.getsignal(signum)
        if current is signal.SIG_IGN:
            continue  # e.g. a background job started with nohup: keep ignoring
        previous[signum] = current
        signal.signal(signum, handler)
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


class StopRequest:
    """Set by `stop_after_step`'s signal handler: `is_set()`, and the signal's `signum`."""

    def __init__(self):
        self.signum = None

    def is_set(self):
        return self.signum is not None


@contextlib.contextmanager
def stop_after_step():
    """Within the block, the first SIGTERM or SIGINT only sets the `StopRequest` it yields (the
    work stops at its next step boundary: no exception unwinds through TensorFlow's C++ code,
    which an exception raised from a handler called inside a native call can crash); a second
    one raises `SignalInterrupt` at once, as `stop_on_signals` does."""
    request = StopRequest()

    def handler(signum, frame):
        if request.is_set():
            raise SignalInterrupt(signum)
        request.signum = signum

    previous = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        current = signal.getsignal(signum)
        if current is signal.SIG_IGN:
            continue
        previous[signum] = current
        signal.signal(signum, handler)
    try:
        yield request
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


@contextlib.contextmanager
def signals_ignored():
    """Within the block, SIGINT and SIGTERM are ignored: for the few milliseconds in which an
    interrupted run saves its image and checkpoint, so that a second Ctrl-C cannot lose them."""
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, old in previous.items():
            # None: a handler not installed from Python, which cannot be put back from it.
            signal.signal(signum, signal.SIG_DFL if old is None else old)
