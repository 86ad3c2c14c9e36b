"""Filtering the lines TensorFlow's C++ code writes to stderr while it loads (CUDA probing, CPU
features), which `TF_CPP_MIN_LOG_LEVEL` does not reach because they are logged before absl's C++
logging is initialised. Used by the CLI and by Beam's worker processes; it works on file
descriptor 2 through a temporary file, which is why it lives in the I/O room.

* `set_tf_log_level()`: ask TensorFlow for errors only, unless the user chose a level.
* `quiet_native_logs()`: within the block, drop native log lines below that level.
* `dropped_lines(patterns)`: within the block, drop lines matching `patterns` from file
  descriptor 2 as they come (`BEAM_WORKER_NOISE`: what Beam's worker processes print on start).
"""

import contextlib
import os
import re
import sys
import tempfile
import threading

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

# What each of Beam's DirectRunner worker processes (--direct_running_mode=multi_processing)
# writes to the stderr it inherits as it starts, before any log level reaches it: about eight
# lines on every `--runner direct` run, none about tfstyle's work (Beam 2.6x).
BEAM_WORKER_NOISE = tuple(
    re.compile(pattern)
    for pattern in (
        r"^WARNING:root:apitools not found, and bigquery client libraries are not available",
        r"^INFO:__main__:Logging handler created\.$",
        r"^WARNING:__main__:No semi_persistent_directory found",
        # Beam lists these two from a set: in either order (both seen on one machine).
        r"^WARNING:apache_beam\.options\.pipeline_options:Discarding unparseable args: "
        r"\['--pipeline_type_check', '--direct_runner_use_stacked_bundle'\]$",
        r"^WARNING:apache_beam\.options\.pipeline_options:Discarding unparseable args: "
        r"\['--direct_runner_use_stacked_bundle', '--pipeline_type_check'\]$",
    )
)


def set_tf_log_level():
    """Ask TensorFlow's C++ code for errors only, unless the user chose a level; call before
    TensorFlow is imported."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", TF_LOG_LEVEL)


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


@contextlib.contextmanager
def dropped_lines(patterns):
    """Within the block, lines written to file descriptor 2 (by this process or by the child
    processes it starts, which inherit it) that match one of the compiled `patterns` are
    dropped; every other line is copied through as it comes, by a thread reading a pipe."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield  # no usable stderr: nothing to filter
        return
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def keep(line):
        text = line.decode("utf-8", "replace").rstrip("\r\n")
        return not any(pattern.search(text) for pattern in patterns)

    def copy():
        pending = b""
        while chunk := os.read(read_end, 65536):
            *lines, pending = (pending + chunk).split(b"\n")
            os.write(saved, b"".join(line + b"\n" for line in lines if keep(line)))
        if pending and keep(pending):
            os.write(saved, pending)

    thread = threading.Thread(target=copy, name="tfstyle-stderr-filter", daemon=True)
    thread.start()
    try:
        yield
    finally:
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.flush()
        os.dup2(saved, 2)  # closes this process's write end of the pipe
        # The copy ends when every writer has closed the pipe; a child process still running
        # holds it open, and its lines then go on through the thread, so its ends are left open.
        thread.join(timeout=10)
        if not thread.is_alive():
            os.close(read_end)
            os.close(saved)


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
