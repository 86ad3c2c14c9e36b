"""Run the `tfstyle` command in-process, absl flags reset each time (no TensorFlow start-up)."""

from absl import flags

TINY = ("--weights", "none", "--max_size", "32", "--iterations", "2")


def run_cli(*args):
    """Parse `args` as the command line and run `tfstyle.cli.main`; returns its exit status."""
    from tfstyle import cli

    flags.FLAGS.unparse_flags()
    argv = flags.FLAGS(["tfstyle", *map(str, args)])
    return cli.main(argv)
