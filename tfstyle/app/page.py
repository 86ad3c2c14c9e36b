"""The page: Gradio Blocks over `tfstyle.app.jobs` (which holds everything but the layout).

Two tabs. **Paint**: a photo and one or more paintings (uploads or the bundled examples), the
settings people touch, a live preview, a progress bar, Stop, and the PNG and its JSON report to
download. **Fast**: a trained stylizer paints an uploaded photo, or the webcam's frames as they
stream. Every job runs in Gradio's queue, one at a time per process (`concurrency_limit=1`,
one `concurrency_id` for all of them); Stop is not a job and never waits behind one.
"""

import html
import threading

import gradio as gr

from tfstyle.app import jobs
from tfstyle.errors import TfstyleError
from tfstyle.io.atomic import scratch_directory
from tfstyle.io.paths import file_stem, list_images
from tfstyle.settings import app as app_settings
from tfstyle.settings.style import COLOR_MODES, MAX_INPUT_PIXELS, StyleConfig

# The one queue slot every job shares (Gradio's concurrency_id).
JOB = "tfstyle-job"


def upload(**options):
    """An image input (upload, paste, example) whose file reaches tfstyle as it was sent:
    `tfstyle.io.load_image` decodes and checks it (not an image, too many pixels, a
    decompression bomb) with the CLI's messages, and composites transparency onto white as the
    CLI does; gr.Image's own decoding would fail with a traceback on a text file and drop the
    alpha channel of a PNG. (An instance's method, not a subclass: Gradio writes a .pyi stub
    beside the module of every Component subclass, into the installed package.)"""
    component = gr.Image(type="filepath", **options)
    decode = component.preprocess

    def preprocess(payload):
        if payload is None or payload.path is None:
            return decode(payload)
        return payload.path

    component.preprocess = preprocess
    return component


class _Sessions:
    """The `Stop` of each browser session's running job, so that Stop stops only its own."""

    def __init__(self):
        self._stops = {}
        self._lock = threading.Lock()

    def start(self, session):
        stop = jobs.Stop()
        with self._lock:
            self._stops[session] = stop
        return stop

    def end(self, session, stop):
        with self._lock:
            if self._stops.get(session) is stop:
                del self._stops[session]

    def stop(self, session):
        with self._lock:
            stop = self._stops.get(session)
        if stop is not None:
            stop.set()
        return stop is not None


def progress_html(update):
    """The progress bar and its line: steps, time so far and time left."""
    if update is None:
        return ""
    if update.done:
        what = "stopped" if update.stopped else "done"
        line = f"{what} after step {update.step} of {update.total_steps} · {update.elapsed_s:.1f} s"
        if update.note:
            line = update.note
        value = update.step
    else:
        left = update.seconds_left
        line = f"step {update.step} of {update.total_steps} · {update.elapsed_s:.1f} s"
        line += "" if left is None else f" · about {left:.0f} s left"
        value = update.step
    return (
        f'<div class="tfstyle-progress"><progress value="{value}" max="{update.total_steps}">'
        f"</progress> <span>{html.escape(line)}</span></div>"
    )


def _error(exc):
    """A Gradio error (a message in the page) from a TfstyleError: its one line."""
    return gr.Error(str(exc), print_exception=False)


def build(
    *,
    config=None,
    models_dir=app_settings.MODELS_DIR,
    examples_dir=None,
    max_pixels=MAX_INPUT_PIXELS,
    tile_size=None,
):
    """The page as a `gradio.Blocks`, queued (one job at a time), not launched.

    Args:
        config: the `StyleConfig` the page's settings start from (network, weights, optimizer,
            iterations and every other setting the page does not show); None for the defaults.
        models_dir: a folder of trained stylizers for the Fast tab (`find_stylizers`).
        examples_dir: a folder of bundled images: `content_*` offered as photos, `style_*` as
            paintings; None for none.
        max_pixels: uploads with more pixels are refused (as the CLI's --max_pixels).
        tile_size: the Fast tab's `FastStylizer` tile size (None: its default).
    """
    base = config or StyleConfig()
    sessions = _Sessions()
    painter = jobs.FastPainter(models_dir, tile_size=tile_size)
    bundled = list_images(examples_dir) if examples_dir else []
    photos = [p for p in bundled if file_stem(p).startswith("content_")]
    paintings = {
        file_stem(p).removeprefix("style_"): p for p in bundled if file_stem(p).startswith("style_")
    }

    def run_paint(photo, uploads, chosen, size, strength, content_weight, scale, colours,
                  preset, request: gr.Request):  # fmt: skip
        # Gradio refuses a name that is not one of the choices before this runs.
        style_paths = [*(uploads or []), *(paintings[name] for name in chosen or [])]
        try:
            config = base.replace(
                max_size=int(size),
                style_weight=float(strength),
                content_weight=float(content_weight),
                style_scale=float(scale),
                preserve_colors=colours,
                **app_settings.preset_settings(
                    preset, iterations=base.iterations, scales=base.scales
                ),
            )
        except TfstyleError as exc:
            raise _error(exc) from None
        session = request.session_hash if request is not None else None
        stop = sessions.start(session)
        try:
            with scratch_directory() as folder:
                updates = jobs.paint(
                    photo, style_paths, config=config, stop=stop, folder=folder,
                    max_pixels=max_pixels,
                )  # fmt: skip
                for update in updates:
                    files = list(update.files) if update.done else None
                    yield (
                        gr.skip() if update.image is None else update.image,
                        progress_html(update),
                        files if update.done else gr.skip(),
                    )
                # Gradio copied the files into its cache on that last yield; the folder goes.
        except TfstyleError as exc:
            raise _error(exc) from None
        finally:
            sessions.end(session, stop)

    def stop_paint(request: gr.Request):
        session = request.session_hash if request is not None else None
        if not sessions.stop(session):
            gr.Info("nothing to stop")

    def run_fast(photo, name, colours, size):
        try:
            image = jobs.load_upload(photo, max_pixels=max_pixels, what="photo")
            return painter.paint(image, name, preserve_colors=colours, max_size=int(size))
        except TfstyleError as exc:
            raise _error(exc) from None

    def run_webcam(frame, name, colours, size):
        if frame is None or not name:
            return None
        try:
            return painter.paint(frame, name, preserve_colors=colours, max_size=int(size))
        except TfstyleError as exc:
            raise _error(exc) from None

    with gr.Blocks(
        title="tfstyle",
        analytics_enabled=False,
        delete_cache=(app_settings.CACHE_MAX_AGE_S, app_settings.CACHE_MAX_AGE_S),
    ) as page:
        gr.Markdown("# tfstyle\nPaint a photo in the style of a painting.")
        with gr.Tab("Paint"):
            with gr.Row():
                with gr.Column():
                    photo = upload(
                        label="Photo",
                        sources=["upload", "clipboard"],
                        elem_id="photo",
                    )
                    if photos:
                        gr.Examples(photos, inputs=photo, label="Example photos")
                    uploads = gr.File(
                        label="Paintings",
                        file_count="multiple",
                        type="filepath",
                        elem_id="paintings",
                    )
                    chosen = gr.CheckboxGroup(
                        list(paintings),
                        label="Bundled paintings",
                        elem_id="bundled",
                        visible=bool(paintings),
                    )
                    with gr.Accordion("Settings", open=True):
                        size = gr.Slider(
                            *app_settings.SIZE_RANGE,
                            value=min(base.max_size, app_settings.PAGE_MAX_SIZE),
                            step=16,
                            label="Size (longest side, px)",
                            elem_id="size",
                        )
                        strength = gr.Number(
                            base.effective_style_weight,
                            label="Style strength (style weight)",
                            minimum=0,
                        )
                        content_weight = gr.Number(
                            base.content_weight, label="Content weight", minimum=0
                        )
                        scale = gr.Slider(
                            0.25, 2.0, value=base.style_scale, step=0.05, label="Style scale"
                        )
                        colours = gr.Radio(
                            list(COLOR_MODES),
                            value=base.preserve_colors,
                            label="Keep the photo's colours",
                        )
                        preset = gr.Radio(
                            list(app_settings.PRESETS),
                            value=app_settings.PRESET,
                            label=f"Quality (iterations: {base.iterations} for standard)",
                        )
                    with gr.Row():
                        start = gr.Button("Paint", variant="primary", elem_id="paint")
                        stop = gr.Button("Stop", variant="stop", elem_id="stop")
                with gr.Column():
                    preview = gr.Image(
                        label="Preview",
                        type="numpy",
                        format="png",
                        interactive=False,
                        elem_id="preview",
                    )
                    progress = gr.HTML(elem_id="progress")
                    files = gr.File(
                        label="Download", file_count="multiple", interactive=False, elem_id="files"
                    )
            start.click(
                run_paint,
                [photo, uploads, chosen, size, strength, content_weight, scale, colours, preset],
                [preview, progress, files],
                concurrency_limit=1,
                concurrency_id=JOB,
                show_progress="minimal",
            )
            stop.click(stop_paint, None, None, queue=False)
        with gr.Tab("Fast"):
            names = list(painter.models)
            if not names:
                gr.Markdown(
                    "No trained stylizers found: pass a folder with `tfstyle app --models_dir` "
                    "(see docs/fast.md to train one)."
                )
            with gr.Row():
                with gr.Column():
                    model = gr.Dropdown(names, value=names[0] if names else None, label="Stylizer")
                    fast_colours = gr.Radio(
                        list(COLOR_MODES), value="none", label="Keep the photo's colours"
                    )
                    fast_size = gr.Slider(
                        *app_settings.SIZE_RANGE,
                        value=app_settings.PAGE_MAX_SIZE,
                        step=16,
                        label="Size (longest side, px)",
                    )
                    fast_photo = upload(
                        label="Photo", sources=["upload", "clipboard"], elem_id="fast_photo"
                    )
                    fast_button = gr.Button("Paint", variant="primary", elem_id="fast_paint")
                with gr.Column():
                    fast_out = gr.Image(
                        label="Painted",
                        type="numpy",
                        format="png",
                        interactive=False,
                        elem_id="fast_out",
                    )
            fast_button.click(
                run_fast,
                [fast_photo, model, fast_colours, fast_size],
                fast_out,
                concurrency_limit=1,
                concurrency_id=JOB,
            )
            with gr.Accordion("Webcam, live", open=False), gr.Row():
                webcam = gr.Image(
                    label="Webcam", sources=["webcam"], streaming=True, elem_id="webcam"
                )
                webcam_out = gr.Image(label="Painted", interactive=False, elem_id="webcam_out")
            webcam.stream(
                run_webcam,
                [webcam, model, fast_colours, fast_size],
                webcam_out,
                concurrency_limit=1,
                concurrency_id=JOB,
                stream_every=0.5,
            )
    return page.queue(default_concurrency_limit=1)
