"""The web app (`tfstyle app`; needs the `app` extra: `pip install "tfstyle[app]"`).

    jobs.py   what the page does, without Gradio: `paint` (stylize() with a StyleConfig, live
              previews, Stop at a step boundary, the PNG and its report) and `FastPainter`
    page.py   the Gradio page over it

`build()` returns the page (a `gradio.Blocks`) for notebooks and Hugging Face Spaces; `launch()`
serves it with the app's limits (127.0.0.1, the upload size limit).
"""

from tfstyle.errors import TfstyleError
from tfstyle.settings import app as app_settings

INSTALL = 'the web app needs the app extra, which is not installed: pip install "tfstyle[app]"'


def _page():
    try:
        import gradio

        gradio.Blocks  # noqa: B018 - a folder named gradio in the working directory imports too
    except (ImportError, AttributeError):
        raise TfstyleError(INSTALL) from None
    from tfstyle.app import page

    return page


def build(**options):
    """The page, queued and not launched: `tfstyle.app.page.build`'s keyword options (config,
    models_dir, examples_dir, max_pixels, tile_size).

    Raises:
        TfstyleError: Gradio is not installed (the message names the extra).
    """
    return _page().build(**options)


def launch(page, *, host=app_settings.HOST, port=app_settings.PORT, share=False, **options):
    """Serve `page` (from `build`) on `host`:`port` until interrupted, uploads limited to
    `app_settings.MAX_UPLOAD`; `share` asks Gradio for a public link. `options` go to
    `gradio.Blocks.launch`."""
    options.setdefault("max_file_size", app_settings.MAX_UPLOAD)
    return page.launch(server_name=host, server_port=port, share=share, **options)
