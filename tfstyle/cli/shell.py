"""What a command-line program around tfstyle needs from its process, and nothing else.

* `one_line_warnings()`: show Python warnings as `tfstyle: warning: ...`, one line each.
* `error_line(exc)`: the one line a user's mistake is reported with.
* `keep_compiled_steps()`: on JAX, JAX's persistent compilation cache in tfstyle's cache folder.
* `stop_after_step()` and `StopAtCallEnd`: a signal only sets a flag, and the work stops at
  its next step boundary, or once a finished result is written whole.
* `stop_on_signals()`: turn SIGTERM (and SIGINT) into `SignalInterrupt`, a `KeyboardInterrupt`
  that remembers its signal, so a run stopped by a service manager or `kill` saves its work like
  one stopped by Ctrl-C; `exit_status(exc)` is the shell convention 128 + signal number.

Only the CLI uses this module: the library never prints and never touches signal handlers.
(Filtering TensorFlow's native start-up lines, which Beam's workers need too, is
`tfstyle.io.native_logs`.)
"""

import contextlib
import logging
import os
import signal
import sys
import warnings

from tfstyle.io.paths import user_cache_dir

PREFIX = "tfstyle"
# JAX's own switch: set (to a folder, or empty for none), tfstyle leaves the cache to it.
COMPILATION_CACHE_VARIABLE = "JAX_COMPILATION_CACHE_DIR"


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


class StopAtCallEnd:
    """A `stylize` callback that, once `request` (a `StopRequest`) is set, raises
    `SignalInterrupt` at the end of the current compiled call: from Python, between two calls,
    after that call's other callbacks (snapshots, the progress bar) have run, and never inside
    TensorFlow's code. Not on the run's last step: the finished result is then saved whole.
    `stylize` turns the exception into `Interrupted`, carrying the image and a checkpoint."""

    def __init__(self, request):
        self.request = request

    def __call__(self, progress):
        if self.request.is_set() and progress.image is not None and not progress.is_last:
            raise SignalInterrupt(self.request.signum)


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


def keep_compiled_steps():
    """On the JAX backend, keep compiled steps between runs in JAX's persistent compilation
    cache (`user_cache_dir("jax")`), unless JAX_COMPILATION_CACHE_DIR is set (a folder of the
    user's, or empty: no cache). Returns the folder chosen, or None.

    Why: a default run compiles one step per scale, about 10 s each on an H200, where the steps
    of a 512 px picture take under a second (BENCHMARKS.md, GPU); a cached compile took 0.4 s
    instead of 12.4. TensorFlow's backend has no such cache. JAX writes each entry atomically,
    so runs side by side may share the folder.

    It sets the variable, which JAX reads when it is imported, rather than JAX's config: so
    nothing is imported here (a command that stops before any work never loads Keras), and on
    the TensorFlow backend, where JAX is never imported, the variable does nothing.
    """
    if COMPILATION_CACHE_VARIABLE in os.environ:
        return None
    folder = user_cache_dir("jax")
    os.environ[COMPILATION_CACHE_VARIABLE] = folder
    return folder
