"""tfstyle.cli.shell: the stderr hygiene and signal handling the CLI relies on."""

import os
import signal
import warnings

import pytest

from tfstyle.cli import shell
from tfstyle.io import native_logs

NATIVE = (
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
    "I0000 00:00:1795414596.648321    9962 cudart_stub.cc:31] Could not find cuda drivers\n"
    "I0000 00:00:1795414596.786822    9962 cpu_feature_guard.cc:227] This TensorFlow binary\n"
    "To enable the following instructions: AVX2 FMA, in other operations, rebuild.\n"
    "W1123 06:18:52.339054 140409521015680 gpu.cc:6] a warning\n"
    "E0000 00:00:1795414603.618802    9962 cuda_platform.cc:52] failed call to cuInit\n"
    "a line of Python output\n"
)


@pytest.mark.parametrize(
    ("level", "kept"),
    [
        (3, ["a line of Python output"]),
        (2, ["E0000", "a line of Python output"]),
        (1, ["W1123", "E0000", "a line of Python output"]),
        (0, ["WARNING: All", "I0000", "I0000", "To enable", "W1123", "E0000", "a line"]),
    ],
)
def test_native_log_lines_below_the_level_are_dropped(level, kept):
    lines = native_logs._filter_lines(NATIVE, level).splitlines()
    assert [line[: len(prefix)] for line, prefix in zip(lines, kept, strict=True)] == kept


def test_quiet_native_logs_filters_file_descriptor_2(capfd, monkeypatch):
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    with native_logs.quiet_native_logs():
        os.write(2, NATIVE.encode())
    assert capfd.readouterr().err == "a line of Python output\n"


def test_error_and_warning_lines():
    assert shell.error_line(ValueError("two\nlines")) == "tfstyle: error: two lines"
    assert shell.error_line(KeyError()) == "tfstyle: error: KeyError"


def test_one_line_warnings(capsys):
    with shell.one_line_warnings():
        warnings.warn("careful\nnow", UserWarning, stacklevel=1)
    assert capsys.readouterr().err == "tfstyle: warning: careful now\n"


def test_signals_become_interrupts_with_their_exit_status():
    with shell.stop_on_signals(), pytest.raises(shell.SignalInterrupt) as info:
        signal.raise_signal(signal.SIGTERM)
    assert isinstance(info.value, KeyboardInterrupt)
    assert shell.exit_status(info.value) == 143
    assert shell.exit_status(KeyboardInterrupt()) == 130
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # put back
    with shell.signals_ignored():
        signal.raise_signal(signal.SIGINT)  # ignored: no KeyboardInterrupt
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_jax_runs_keep_their_compiled_steps(tmp_path):
    # The CLI on JAX fills tfstyle's cache folder with the compiled step, so the next run of
    # the same shapes skips XLA's compile (BENCHMARKS.md: 12.4 s cold, 0.42 s warm on an H200).
    import subprocess
    import sys

    from cli_runner import ROOT, subprocess_env

    env = subprocess_env() | {
        "KERAS_BACKEND": "jax",
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",  # JAX's default skips short compiles
    }
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    command = [sys.executable, "-m", "tfstyle.cli", "--weights", "none", "--quiet"]
    command += ["--content", os.path.join(ROOT, "examples", "images", "content_chelsea.png")]
    command += ["--style", os.path.join(ROOT, "examples", "images", "style_starry_night.jpg")]
    command += ["--output", str(tmp_path / "out.png"), "--max_size", "48", "--iterations", "2"]
    command += ["--scales", "1", "--network", "vgg16"]
    done = subprocess.run(command, env=env, check=True, capture_output=True, timeout=600)
    assert done.stderr.decode() == ""  # no native start-up lines from the backend's import
    entries = os.listdir(tmp_path / "cache" / "tfstyle" / "jax")
    assert any(name.startswith("jit_run_steps") for name in entries), entries


def test_the_compilation_cache_is_left_to_a_user_who_sets_it(monkeypatch):
    monkeypatch.setenv(shell.COMPILATION_CACHE_VARIABLE, "")  # JAX's "no cache"
    assert shell.keep_compiled_steps() is None
