"""`tfstyle export --output DIR [settings]`: write a SavedModel stylizer (see tfstyle/export.py)."""

import sys

from tfstyle import shell
from tfstyle.cli.flags import FLAGS, NOT_FOR_EXPORT, config_from_flags, refuse_flags
from tfstyle.errors import TfstyleError


def command():
    """Run the command; returns the exit status (raises TfstyleError for a user's mistake)."""
    refuse_flags(NOT_FOR_EXPORT, "export takes no --{name}: it writes a model, not an image")
    if not FLAGS.output:
        raise TfstyleError("--output is required: the SavedModel directory to write")
    config = config_from_flags()
    with shell.quiet_native_logs():
        from tfstyle.export import export_stylizer

    path = export_stylizer(FLAGS.output, config=config, overwrite=FLAGS.overwrite)
    if not FLAGS.quiet:
        print(
            f"exported {path}: serving_default takes content and style (uint8 [H, W, 3]) and "
            f"returns stylized_image after {config.iterations} steps",
            file=sys.stderr,
        )
    return 0
