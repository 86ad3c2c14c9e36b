"""The top of `tfstyle.cli`: which command a command line asks for, run with one-line errors.

`COMMANDS` is the one table of named commands (`tfstyle NAME --flags`); a command line without
a name is an image run: one image with --output, a batch with --output_dir (on Apache Beam
with --runner). `video` with --runner is the video pipeline on Apache Beam.
"""

import functools
import os
import sys

from absl import app, flags
from absl import logging as absl_logging

from tfstyle import __version__
from tfstyle.cli import app_command, apply, batch, export, shell, stylize, train, video
from tfstyle.cli import beam_batch as scale
from tfstyle.cli import beam_video as video_beam
from tfstyle.cli.flags import FLAGS, refuse_flags
from tfstyle.errors import TfstyleError

# Each takes no arguments (it reads FLAGS), returns the exit status and raises TfstyleError for
# a user's mistake. New commands (train, video) add a module and a row here.
COMMANDS = {
    "app": app_command.command,
    "export": export.command,
    "train": train.command,
    "video": video.command,
}


def image_command(extra=()):
    """The command of a command line without a command name (`extra`: what follows a `--`,
    Beam's pipeline options)."""
    if FLAGS.runner:
        return functools.partial(scale.command, list(extra))
    if extra:
        raise TfstyleError(
            f"unexpected arguments: {' '.join(extra)}; flags look like --name=value "
            "(options after a '--' are for --runner)"
        )
    if FLAGS.manifest:
        raise TfstyleError("--manifest is for a batch on Apache Beam (--runner)")
    if FLAGS.model:
        return apply.command
    refuse_flags(video.VIDEO_FLAGS, "--{name} is for videos: tfstyle video --content CLIP ...")
    return batch.command if FLAGS.output_dir else stylize.command


def refuse_foreign_flags(name):
    """The flags of another command given to command `name` ("image" for a command line with
    no command name), refused in one line: the training flags outside `train` (but
    --batch_size, which also sizes the batches of --model --runner), --tflite_size outside
    `export`."""
    if name != "train":
        if not (name == "image" and FLAGS.model and FLAGS.runner):
            refuse_flags(
                ("batch_size",),
                "--batch_size is for training a stylizer (tfstyle train) or for the batches "
                "of --model --runner",
            )
        refuse_flags(
            [flag for flag in train.TRAIN_FLAGS if flag != "batch_size"],
            "--{name} is for training a stylizer: tfstyle train --style ART --content_dir "
            "PHOTOS ...",
        )
    if name != "export" and FLAGS.tflite_size:
        raise TfstyleError("--tflite_size is for tfstyle export --model")
    if name != "app":
        refuse_flags(app_command.APP_FLAGS, "--{name} is for the web app: tfstyle app --{name} ...")


def main(argv):
    """Run the command; returns the exit status: 0, 1 for any user error (one line on stderr)."""
    if not FLAGS["verbosity"].present:
        # Library INFO/WARNING logs (TensorFlow's retracing notes...) are not for a CLI user.
        absl_logging.set_verbosity(absl_logging.ERROR)
    shell.quiet_library_loggers()
    shell.keep_compiled_steps()
    if FLAGS.version:
        print(f"{shell.PREFIX} {__version__}")
        return 0
    name = argv[1] if argv[1:2] and argv[1] in COMMANDS else "image"
    if name != "image":
        command, argv = COMMANDS[name], argv[1:]
        if command is video.command and FLAGS.runner:
            # What follows a '--' is Beam's pipeline options, as for the image batch.
            command, argv = functools.partial(video_beam.command, argv[1:]), argv[:1]
    else:
        command = None
    with shell.one_line_warnings(), shell.stop_on_signals():
        try:
            refuse_foreign_flags(name)
            if len(argv) > 1 and command is not None:
                raise TfstyleError(
                    f"unexpected arguments: {' '.join(argv[1:])}; flags look like --name=value"
                )
            return (command or image_command(argv[1:]))()
        except TfstyleError as exc:
            print(shell.error_line(exc), file=sys.stderr)
            return 1
        except KeyboardInterrupt as exc:
            if FLAGS.runner:  # a pipeline keeps every output (or segment) it finished
                message = "interrupted; what finished is kept: run the same command to go on"
            else:  # before the optimisation started: nothing to keep
                message = "interrupted; nothing was saved"
            print(f"{shell.PREFIX}: {message}", file=sys.stderr)
            return shell.exit_status(exc)


# The modules that define flags: --help lists all of theirs.
_FLAG_MODULES = (
    "tfstyle.cli.flags",
    "tfstyle.cli.train",
    "tfstyle.cli.video",
    "tfstyle.cli.export",
    "tfstyle.cli.app_command",
)
# absl's help flags (`-?` is --help's short name); they print the usage and exit.
_HELP_FLAGS = ("help", "helpshort", "helpfull", "helpxml", "?")


def parse_flags(argv):
    """absl's flag parsing, with a bad flag reported on one line like every other error, `-h`
    taken for --help, and a help request ending with exit status 0 (absl's exits with 1)."""
    argv = [argv[0], *("--help" if arg == "-h" else arg for arg in argv[1:])]
    try:
        return FLAGS(argv)
    except flags.Error as exc:
        print(shell.error_line(exc), file=sys.stderr)
        sys.exit(1)
    except SystemExit:
        if any(_flag_name(arg) in _HELP_FLAGS for arg in argv[1:]):
            sys.exit(0)
        raise
    except BrokenPipeError:  # `tfstyle --help | head`: the reader has all it wanted
        # Python would report the failed flush of stdout at exit; point it at nothing.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)


def _flag_name(arg):
    """`help` for `--help`, `-help` or `--help=true`; None for an argument that is not a flag."""
    return arg.lstrip("-").split("=", 1)[0] if arg.startswith("-") else None


def run(argv=None):
    """Console entry point (`argv` for tests: program name first)."""
    # absl's --help lists the flags of the module named by sys.argv[0] (the script or console
    # entry point, not the module that defines them): register tfstyle's flags under it too.
    program = (argv or sys.argv)[0]
    for module in _FLAG_MODULES:
        for flag in FLAGS.get_key_flags_for_module(module):
            FLAGS.register_key_flag_for_module(program, flag)
    app.run(main, argv=argv, flags_parser=parse_flags)
