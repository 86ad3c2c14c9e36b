"""Running the `tfstyle` command in tests: as a real subprocess, or in-process through absl.

In-process runs go through the same `tfstyle.cli.run` (absl flag parsing, `main`, `sys.exit`)
and, with pytest's `capfd`, see everything written to file descriptors 1 and 2, native code
included. Only a fresh process shows what importing TensorFlow prints and how the process exits
on a signal, so a few tests use real subprocesses (each costs seconds of TensorFlow import).
"""

import dataclasses
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAST = ("--weights", "none", "--max_size", "32", "--iterations", "2", "--quiet")


@dataclasses.dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def lines(self):
        return self.stderr.splitlines()


def subprocess_env():
    """The environment of a CLI subprocess: this worktree first on the path, and TensorFlow's
    log level left for the CLI to choose (the tests' conftest sets it for this process)."""
    env = dict(os.environ)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [ROOT, env.get("PYTHONPATH")]))
    env["PYTHONIOENCODING"] = "utf-8"
    return env


def start(args, *, cwd=None, env=None):
    """Start `python -m tfstyle.cli ARGS` without waiting (`env`: variables to add, such as
    KERAS_BACKEND); returns the Popen."""
    return subprocess.Popen(
        [sys.executable, "-m", "tfstyle.cli", *map(str, args)],
        cwd=cwd or ROOT,
        env={**subprocess_env(), **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )


def finish(process, timeout=240):
    stdout, stderr = process.communicate(timeout=timeout)
    return Result(process.returncode, stdout, stderr)


def run_subprocesses(arg_lists, *, cwd=None):
    """Run several CLI processes side by side (TensorFlow's import dominates each); results in
    the order given."""
    processes = [start(args, cwd=cwd) for args in arg_lists]
    return [finish(p) for p in processes]


def run_inprocess(args, capfd):
    """Run the CLI in this process; returns its exit status and what it wrote."""
    from absl import flags

    from tfstyle import cli

    capfd.readouterr()
    flags.FLAGS.unparse_flags()
    try:
        cli.run(["tfstyle", *map(str, args)])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        flags.FLAGS.unparse_flags()
    out, err = capfd.readouterr()
    return Result(code, out, err)


def temporary_files(directory):
    """Leftovers of atomic writes (`.<name>.<random>.tmp`) in a directory."""
    return sorted(name for name in os.listdir(directory) if name.endswith(".tmp"))


def assert_clean_failure(result, *, output, match=None):
    """Exit status 1, exactly one `tfstyle: error:` line on stderr, no traceback, no output."""
    assert result.code == 1, result
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    assert len(result.lines) == 1, result.stderr
    assert result.lines[0].startswith("tfstyle: error: "), result.stderr
    if match is not None:
        assert match in result.lines[0], result.lines[0]
    assert not os.path.exists(output)
    assert temporary_files(os.path.dirname(os.fspath(output))) == []
    return result.lines[0]


def assert_success(result, *, output, warnings=0):
    """Exit status 0, the output written, nothing on stderr but `warnings` warning lines."""
    assert result.code == 0, result
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    assert len(result.lines) == warnings, result.stderr
    assert all(line.startswith("tfstyle: warning: ") for line in result.lines), result.stderr
    assert os.path.isfile(output)
    assert temporary_files(os.path.dirname(os.fspath(output))) == []


TINY = ("--weights", "none", "--max_size", "32", "--iterations", "2")


def run_cli(*args):
    """Parse `args` as the command line and run `tfstyle.cli.main`; returns its exit status."""
    from absl import flags

    from tfstyle import cli

    flags.FLAGS.unparse_flags()
    argv = flags.FLAGS(["tfstyle", *map(str, args)])
    return cli.main(argv)
