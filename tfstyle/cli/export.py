"""`tfstyle export --output DIR [settings]`: write a SavedModel stylizer (see
tfstyle/export/optimization.py).
`tfstyle export --model DIR --tflite_size WxH --output FILE.tflite`: a trained stylizer as a
TFLite model of one image size (see tfstyle/export/tflite.py).
"""

import sys

from absl import flags

from tfstyle.cli.flags import FLAGS, NOT_FOR_EXPORT, config_from_flags, refuse_flags
from tfstyle.errors import TfstyleError
from tfstyle.io import native_logs
from tfstyle.settings.style import EXPORT_DEFAULTS

flags.DEFINE_string(
    "tflite_size",
    None,
    "export --model: write a TFLite model that paints images of this size, WIDTHxHEIGHT "
    "(e.g. 512x384) or one number for a square.",
)


def command():
    """Run the command; returns the exit status (raises TfstyleError for a user's mistake)."""
    refuse_flags(NOT_FOR_EXPORT, "export takes no --{name}: it writes a model, not an image")
    if not FLAGS.output:
        target = "the .tflite file" if FLAGS.model else "the SavedModel directory"
        raise TfstyleError(f"--output is required: {target} to write")
    if FLAGS.model:
        return _tflite()
    if FLAGS.tflite_size:
        raise TfstyleError("--tflite_size converts a trained stylizer: give --model too")
    config = config_from_flags()
    one_scale = not FLAGS["scales"].present
    if one_scale:  # the graph runs no pyramid: export's default is one scale (EXPORT_DEFAULTS)
        config = config.replace(scales=EXPORT_DEFAULTS.scales)
    with native_logs.quiet_native_logs():
        from tfstyle.export.optimization import export_optimization

    path = export_optimization(FLAGS.output, config=config, overwrite=FLAGS.overwrite)
    if not FLAGS.quiet:
        print(
            f"exported {path}: serving_default takes content and style (uint8 [H, W, 3]) and "
            f"returns stylized_image after {config.iterations} steps"
            + (" at one scale (export runs no pyramid)" if one_scale else ""),
            file=sys.stderr,
        )
    return 0


def _tflite():
    from tfstyle.cli.apply import NOT_FOR_MODEL

    refuse_flags(NOT_FOR_MODEL, "export --model converts a trained network: it takes no --{name}")
    if not FLAGS.tflite_size:
        raise TfstyleError("export --model writes a TFLite model: give --tflite_size, e.g. 512x384")
    width, height = parse_size(FLAGS.tflite_size)
    with native_logs.quiet_native_logs():
        from tfstyle.export.stylizer import check_backend
        from tfstyle.export.tflite import export_tflite
        from tfstyle.fast.stylizer import FastStylizer

    check_backend("export --model")  # before loading the model

    model = FastStylizer.load(FLAGS.model).model
    path = export_tflite(model, FLAGS.output, height=height, width=width, overwrite=FLAGS.overwrite)
    if not FLAGS.quiet:
        print(
            f"exported {path}: paints uint8 [{height}, {width}, 3] images (TFLite)",
            file=sys.stderr,
        )
    return 0


def parse_size(text):
    """(width, height) from "512x384" or "512"."""
    parts = text.lower().split("x")
    try:
        sizes = [int(p) for p in parts]
    except ValueError:
        sizes = []
    if len(sizes) not in (1, 2) or min(sizes, default=0) < 16:
        raise TfstyleError(
            f"--tflite_size takes WIDTHxHEIGHT or one number, each at least 16; got {text!r}"
        )
    return (sizes[0], sizes[-1])
