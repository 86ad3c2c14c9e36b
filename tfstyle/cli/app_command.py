"""`tfstyle app [--host H] [--port P] [--share] [--models_dir DIR] [settings]`: the web app
(tfstyle.app; needs the `app` extra), served until Ctrl-C.

The image settings on the command line (--network, --weights, --iterations, --optimizer, ...)
become the `StyleConfig` the page starts from, as for `tfstyle --content --style --output`; the
page sets the size, the weights, the style scale, the colours and the quality preset. Flags about
files, outputs and other commands are refused: the page takes its images from the browser.
"""

import os
import sys

from absl import flags

import tfstyle
from tfstyle.cli import video
from tfstyle.cli.flags import FLAGS, INIT_KEYWORDS, MASK_FLAGS, config_from_flags, refuse_flags
from tfstyle.errors import TfstyleError
from tfstyle.io import native_logs
from tfstyle.settings import app as app_settings
from tfstyle.settings.style import MAX_INPUT_PIXELS

flags.DEFINE_string("host", app_settings.HOST, "app: the address to listen on (0.0.0.0: all).")
flags.DEFINE_integer("port", app_settings.PORT, "app: the port to listen on.", lower_bound=1)
flags.DEFINE_boolean("share", False, "app: also ask Gradio for a public share link.")
flags.DEFINE_string(
    "models_dir",
    app_settings.MODELS_DIR,
    "app: a folder of trained stylizers (NAME/VERSION/) for the page's Fast tab.",
)

APP_FLAGS = ("host", "port", "share", "models_dir")

# Flags about input and output files, runs of other kinds, and resuming: the page has its own.
NOT_FOR_APP = (
    "content",
    "style",
    *MASK_FLAGS,
    "output",
    "output_dir",
    "runner",
    "manifest",
    "model",
    "style_blend_weights",
    "save_every",
    "resume",
    "overwrite",
    "history",
    "tensorboard_dir",
    "plot_losses",
    *video.VIDEO_FLAGS,
)

# The examples of a source checkout (a wheel has none: the page then offers uploads only).
EXAMPLES_DIR = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(tfstyle.__file__))), "examples", "images"
)


def command():
    """Serve the page until interrupted; returns the exit status."""
    refuse_flags(NOT_FOR_APP, "app takes no --{name}: the page takes its images from the browser")
    if FLAGS.init not in INIT_KEYWORDS:
        raise TfstyleError(
            f"app takes --init as one of {', '.join(INIT_KEYWORDS)}, not an image file"
        )
    if FLAGS.port > 65535:
        raise TfstyleError(f"--port must be at most 65535; got {FLAGS.port}")
    config = config_from_flags()
    from tfstyle import app

    with native_logs.quiet_native_logs():
        page = app.build(
            config=config,
            models_dir=FLAGS.models_dir,
            examples_dir=EXAMPLES_DIR,
            max_pixels=FLAGS.max_pixels or MAX_INPUT_PIXELS,
            tile_size=FLAGS.tile_size,
        )
    try:
        # Gradio's own lines would tell a CLI user to "set share=True in launch()".
        app.launch(
            page, host=FLAGS.host, port=FLAGS.port, share=FLAGS.share, quiet=True,
            prevent_thread_lock=True,
        )  # fmt: skip
    except OSError as exc:  # the port is taken, the address is not this machine's
        raise TfstyleError(f"cannot serve on {FLAGS.host}:{FLAGS.port}: {exc}") from None
    if not FLAGS.quiet:
        public = f" and {page.share_url}" if page.share_url else ""
        print(f"serving on {page.local_url}{public} (Ctrl-C stops)", file=sys.stderr)
    page.block_thread()  # until Ctrl-C or SIGTERM, which close the server
    return 0
